"""Sequences to submit from the command line: a shipped dataset, or a file of abstract representations.

Graphs become sequences only through :meth:`qgnn.features.FeaturePipeline.build_sequences`
(canonical node order, embedding cache, node-label detuning, the cloud's
fetched device), the route ``FeaturePipeline.run`` and ``qgnn train --backend
pasqal:…`` send through; so what ``qgnn cloud submit --dataset`` pays for is
what training later asks for, and the job ledger reuses it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx
import pulser

from qgnn.errors import BackendError, graph_label

if TYPE_CHECKING:
    from qgnn.features import FeaturePipeline


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
    name: str, pipeline: FeaturePipeline, *, max_nodes: int | None = None, limit: int | None = None
) -> SequenceSet:
    """Build the sequences of a shipped dataset's graphs, as ``pipeline.run`` would send them.

    Args:
        name: dataset name (see :data:`qgnn.data.DATASET_NAMES`).
        pipeline: the pipeline whose embedding and schedule to use; its
            backend is the :class:`~qgnn.backends.pasqal.PasqalCloud` submitted to.
        max_nodes: keep graphs with at most this many nodes.
        limit: keep the first ``limit`` graphs (after ``max_nodes``).
    """
    from qgnn.data import load_dataset

    dataset = load_dataset(name, max_nodes=max_nodes)
    graphs = list(dataset) if limit is None else list(itertools.islice(dataset, max(limit, 0)))
    return graph_sequences(graphs, pipeline)


def graph_sequences(graphs: Iterable[nx.Graph], pipeline: FeaturePipeline) -> SequenceSet:
    """Build each graph's sequence with ``pipeline.build_sequences``; graphs that fail are skipped.

    Args:
        graphs: networkx graphs; each is named by its integer ``graph.graph["index"]``,
            else by its position.
        pipeline: the pipeline whose embedding, schedule and device to use.
    """
    out = SequenceSet([], [], [])
    for prepared in pipeline.build_sequences(graphs):
        if prepared.sequence is None:
            out.skipped.append(f"{graph_label(prepared.index)}: {prepared.error}")
        else:
            out.sequences.append(prepared.sequence)
            out.labels.append(graph_label(prepared.index))
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
