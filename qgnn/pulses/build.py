"""The one route from a graph and its embedding to a validated Pulser sequence.

The feature pipeline, the PyG transform, the cloud command and the trainable
layer's export all build sequences here, so that one graph always gives one
sequence (and one cache / job-ledger entry), whichever entry point sent it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import networkx as nx
import pulser

from qgnn.errors import InvalidInputError, ScheduleError, graph_label
from qgnn.pulses.devices import AnyDevice
from qgnn.pulses.schedules import Schedule

if TYPE_CHECKING:
    from qgnn.embedding import Embedding


def qubit_weights(graph: nx.Graph, embedding: Embedding, schedule: Schedule) -> dict[str, float] | None:
    """Qubit id → DMM weight of the schedule's node detuning, or ``None`` without one.

    Args:
        graph: the graph that was embedded (its nodes are ``embedding.qubit_of``'s keys).
        embedding: the graph's :class:`~qgnn.embedding.Embedding`.
        schedule: a :mod:`qgnn.pulses` schedule.

    Raises:
        InvalidInputError: the graph's nodes are not the embedding's, or a
            node's attribute has no weight (see :class:`~qgnn.pulses.NodeDetuning`).
    """
    node_detuning = schedule.node_detuning
    if node_detuning is None:
        return None
    where = graph_label(embedding.index)
    if set(graph.nodes) != set(embedding.qubit_of):
        raise InvalidInputError(
            f"{where}: the graph's nodes are not those of its embedding; pass the graph that was embedded"
        )
    weights = node_detuning.node_weights(graph, where=where)
    return {embedding.qubit_of[node]: w for node, w in weights.items()}


def build_sequence(
    graph: nx.Graph, embedding: Embedding, schedule: Schedule, device: AnyDevice
) -> pulser.Sequence:
    """Build and validate ``schedule`` on ``embedding``'s register, node labels included.

    Args:
        graph: the graph that was embedded (node attributes feed the schedule's
            ``node_detuning``).
        embedding: the graph's :class:`~qgnn.embedding.Embedding` (register in µm).
        schedule: a :mod:`qgnn.pulses` schedule.
        device: the Pulser device the sequence must satisfy.

    Returns:
        The validated ``pulser.Sequence``.

    Raises:
        ScheduleError: the schedule violates the device's limits (or the device
            has no DMM for a node detuning), or its largest Ω is not the one
            the embedding's blockade radius was chosen for.
        InvalidInputError: a node label has no weight.

    Example:
        >>> import math, networkx as nx
        >>> from qgnn.embedding import embed
        >>> from qgnn.pulses import AnalogDMMDevice, ConstantDrive, NodeDetuning
        >>> g = nx.path_graph(3)
        >>> nx.set_node_attributes(g, {0: 0, 1: 1, 2: 0}, "label")
        >>> emb = embed(g, AnalogDMMDevice)
        >>> drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.0, 1: 1.0}, -2 * math.pi))
        >>> sorted(build_sequence(g, emb, drive, AnalogDMMDevice).declared_channels)
        ['dmm_0', 'rydberg_global']
    """
    omega = schedule.embedding_rabi_frequency
    if not math.isclose(omega, embedding.rabi_frequency, rel_tol=1e-9):
        raise ScheduleError(
            f"{graph_label(embedding.index)} was embedded for Ω = {embedding.rabi_frequency:.6g} rad/µs "
            f"but the schedule's registers are meant for Ω = {omega:.6g} rad/µs, so the blockade graph "
            "is not the embedded one; build the schedule for the embedding's rabi_frequency"
        )
    return schedule.build(embedding.register, device, qubit_weights(graph, embedding, schedule))
