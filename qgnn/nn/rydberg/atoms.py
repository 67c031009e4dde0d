"""What an evolution engine is given: a graph's atoms, and the drive as tensors."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import networkx as nx
import numpy as np
from torch import Tensor

from qgnn.errors import InvalidGraphError, InvalidInputError, graph_label


@dataclass(frozen=True, eq=False)
class AtomGraph:
    """A graph's atoms as the layer evolves them (qubit order of its embedding).

    Args:
        positions: ``(n, 2)`` read-only atom positions (µm), row ``k`` = qubit ``k``.
        node_ids: the graph node of each qubit.
        labels: the node attribute of each qubit (``None`` when not read).
        index: the graph's dataset index, or ``None``.
    """

    positions: np.ndarray
    node_ids: tuple[Hashable, ...]
    labels: tuple[Hashable, ...] | None
    index: int | None

    @property
    def n_atoms(self) -> int:
        """Number of atoms n."""
        return int(self.positions.shape[0])

    @property
    def where(self) -> str:
        """``"graph 17"`` (or ``"graph"``) for error messages."""
        return graph_label(self.index)

    @classmethod
    def from_embedding(cls, graph: nx.Graph, embedding: Any, attribute: str | None = None) -> AtomGraph:
        """The atoms of ``embedding`` (a :class:`qgnn.embedding.Embedding` of ``graph``).

        Args:
            graph: the embedded graph (node attributes are read from it).
            embedding: its embedding (positions in µm, ``node_ids`` in qubit order).
            attribute: node attribute to read per qubit (e.g. ``"label"``), or ``None``.

        Raises:
            InvalidInputError: the embedding is not one of ``graph``, or a node lacks ``attribute``.
        """
        index = getattr(embedding, "index", None)
        positions = getattr(embedding, "positions", None)
        node_ids = getattr(embedding, "node_ids", None)
        if not isinstance(positions, np.ndarray) or node_ids is None:
            raise InvalidInputError(
                f"{graph_label(index)}: expected a qgnn.embedding.Embedding, got {type(embedding).__name__}"
            )
        pos = np.array(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[0] != len(node_ids) or pos.shape[0] == 0 or not np.isfinite(pos).all():
            raise InvalidGraphError(f"{graph_label(index)}: malformed embedding positions {pos.shape}")
        if set(node_ids) != set(graph.nodes):
            raise InvalidInputError(
                f"{graph_label(index)}: the embedding's nodes differ from the graph's; pass the embedding of "
                "this graph (qgnn.embedding.embed(graph))"
            )
        labels = None
        if attribute is not None:
            missing = [v for v in node_ids if attribute not in graph.nodes[v]]
            if missing:
                raise InvalidInputError(
                    f"{graph_label(index)}: node(s) {missing[:5]} have no {attribute!r} attribute, which the "
                    "layer's DMM weights are read from"
                )
            labels = tuple(graph.nodes[v][attribute] for v in node_ids)
        pos.setflags(write=False)
        return cls(pos, tuple(node_ids), labels, index)


class Drive(NamedTuple):
    """The piecewise-constant drive as tensors (float64, differentiable).

    Args:
        durations_us: segment durations τ_k (µs).
        amplitude: Ω_k (rad/µs), shape ``(K,)``.
        detuning: δ_k (rad/µs), shape ``(K,)``.
        dmm_detuning: δ_DMM (rad/µs), scalar (0 without labels).
    """

    durations_us: tuple[float, ...]
    amplitude: Tensor
    detuning: Tensor
    dmm_detuning: Tensor


class Evolved(NamedTuple):
    """An engine's final state of one graph, over the basis it kept.

    Args:
        probabilities: |ψ(x)|² per kept bitstring, shape ``(D,)``.
        bits: occupations of each kept bitstring, shape ``(D, n)`` (qubit 0 first).
        n_excited: excitations per kept bitstring, shape ``(D,)`` (int64).
    """

    probabilities: Tensor
    bits: Tensor
    n_excited: Tensor


class Engine(Protocol):
    """Evolves graphs from all-ground under a drive; differentiable in the drive and the weights."""

    name: str

    def evolve(self, atoms: list[AtomGraph], weights: list[Tensor], drive: Drive) -> list[Evolved]:
        """Final states, one per graph; ``weights[g]`` is the DMM weight per qubit of graph ``g``."""
        ...
