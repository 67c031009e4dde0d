"""Sequences to submit from the command line: a shipped dataset, or a file of abstract representations."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pulser
from pulser.devices import Device

from qgnn.data import graph_index
from qgnn.errors import BackendError, QgnnError, graph_label


@dataclass(frozen=True)
class SequenceSet:
    """Sequences with the labels that name them in messages, and what was skipped.

    Args:
        sequences: the built sequences.
        labels: one per sequence (e.g. ``"graph 17"``).
        skipped: one message per graph that could not be embedded or built.
    """

    sequences: list[pulser.Sequence]
    labels: list[str]
    skipped: list[str]


def dataset_sequences(
    name: str,
    device: Device,
    *,
    max_nodes: int | None = None,
    limit: int | None = None,
    schedule: Any = None,
    seed: int = 0,
) -> SequenceSet:
    """Embed a shipped dataset's graphs on ``device`` and build each one's sequence.

    Args:
        name: dataset name (see :data:`qgnn.data.DATASET_NAMES`).
        device: the device fetched from the cloud.
        max_nodes: keep graphs with at most this many nodes.
        limit: keep the first ``limit`` graphs (after ``max_nodes``).
        schedule: a :class:`qgnn.pulses.Schedule`; default ``ConstantDrive()``.
        seed: embedding seed.
    """
    from qgnn.data import load_dataset

    dataset = load_dataset(name, max_nodes=max_nodes)
    graphs = list(dataset) if limit is None else list(itertools.islice(dataset, max(limit, 0)))
    return graph_sequences(graphs, device, schedule=schedule, seed=seed)


def graph_sequences(
    graphs: Iterable[nx.Graph], device: Device, *, schedule: Any = None, seed: int = 0
) -> SequenceSet:
    """Embed graphs on ``device`` and build each one's sequence; graphs that fail are skipped.

    Args:
        graphs: networkx graphs; each is named by its integer ``graph.graph["index"]``,
            else by its position.
        device: the device fetched from the cloud.
        schedule: a :class:`qgnn.pulses.Schedule`; default ``ConstantDrive()``.
        seed: embedding seed.
    """
    from qgnn.embedding import embed
    from qgnn.pulses import ConstantDrive

    schedule = schedule if schedule is not None else ConstantDrive()
    out = SequenceSet([], [], [])
    for position, graph in enumerate(graphs):
        index = graph_index(graph, position)
        try:
            embedding = embed(
                graph, device, rabi_frequency=schedule.max_rabi_frequency, seed=seed, strict=True, index=index
            )
            out.sequences.append(schedule.build(embedding.register, device))
            out.labels.append(graph_label(index))
        except QgnnError as exc:
            out.skipped.append(f"{graph_label(index)}: {exc}")
    return out


def load_sequences(path: str | Path) -> SequenceSet:
    """Read a JSON list of sequence abstract representations (strings or objects).

    Raises:
        BackendError: the file is missing, not JSON, or holds an invalid sequence.
    """
    path = Path(path)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read sequences from {path}: {exc}") from None
    if not isinstance(items, list) or not items:
        raise BackendError(f"{path} must hold a non-empty JSON list of sequence abstract representations")
    out = SequenceSet([], [], [])
    for k, item in enumerate(items):
        text = item if isinstance(item, str) else json.dumps(item)
        try:
            out.sequences.append(pulser.Sequence.from_abstract_repr(text))
        except Exception as exc:  # pulser raises jsonschema, ValueError, TypeError, ...
            raise BackendError(
                f"{path}: item {k} is not a valid sequence abstract representation ({exc})"
            ) from None
        out.labels.append(f"{path.name}[{k}]")
    return out
