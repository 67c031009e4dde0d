"""Feature maps: from Measurements to arrays a model can use.

Node-level arrays are returned in the order of the graph nodes the caller
asks for; the embedding's ``node_ids`` (qubit k ↔ node) does the mapping.

Time pooling: a Measurement holds its observables at T evaluation times
(leading axis). :func:`pool_times` reduces that axis the three ways the
models use: ``"last"`` (the end of the pulse), ``"mean"`` (average over the
times) or ``"concat"`` (every time kept, as a trailing axis).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import networkx as nx
import numpy as np

from qgnn.errors import InvalidInputError, QgnnError, graph_label
from qgnn.features.pipeline import GraphResult

TimePooling = Literal["last", "mean", "concat"]
TIME_POOLINGS: tuple[str, ...] = ("last", "mean", "concat")


def _require_ok(result: GraphResult) -> None:
    if not result.ok:
        raise QgnnError(f"{graph_label(result.index)} has no measurement: {result.error}")


def _qubit_positions(result: GraphResult, nodes: Sequence[Hashable]) -> np.ndarray:
    node_ids = list(result.embedding.node_ids)
    where = {node: k for k, node in enumerate(node_ids)}
    missing = [n for n in nodes if n not in where]
    if missing:
        raise QgnnError(f"{graph_label(result.index)} has no atom for node(s) {missing[:5]}")
    return np.array([where[n] for n in nodes], dtype=np.int64)


def node_occupations(result: GraphResult, nodes: Sequence[Hashable]) -> np.ndarray:
    """⟨n_i⟩ of the given nodes at each evaluation time, shape ``(len(nodes), T)``."""
    _require_ok(result)
    assert result.measurement is not None
    order = _qubit_positions(result, nodes)
    return result.measurement.occupations[:, order].T.copy()


def node_correlations(
    result: GraphResult, nodes: Sequence[Hashable], *, connected: bool = True
) -> np.ndarray:
    """Pair correlations of the given nodes, shape ``(T, n, n)``.

    ``connected=True`` gives C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩; otherwise ⟨n_i n_j⟩.
    """
    _require_ok(result)
    m = result.measurement
    assert m is not None
    order = _qubit_positions(result, nodes)
    if connected:
        corr = np.stack([m.connected_correlations(t) for t in range(len(m.evaluation_times))])
    else:
        corr = np.asarray(m.correlations)
    return corr[:, order][:, :, order].copy()


def excitation_histogram(result: GraphResult, length: int) -> np.ndarray:
    """P(k atoms excited), k = 0..length−1, at each evaluation time; shape ``(T, length)``.

    Zero-padded beyond the graph's size, so graphs of different sizes share
    one length. Raises if the graph has more than ``length − 1`` atoms.
    """
    _require_ok(result)
    m = result.measurement
    assert m is not None
    dist = m.excitation_distribution
    if dist.shape[1] > length:
        raise QgnnError(
            f"{graph_label(result.index)} has {dist.shape[1] - 1} atoms: "
            f"histogram length must be at least {dist.shape[1]}, got {length}"
        )
    out = np.zeros((dist.shape[0], length))
    out[:, : dist.shape[1]] = dist
    return out


def excitation_matrix(
    results: Sequence[GraphResult], *, length: int | None = None, t_index: int | None = -1
) -> np.ndarray:
    """Stack the excitation distributions of successful results, shape ``(n_graphs, length)``.

    The input of :class:`qgnn.kernels.QuantumEvolutionKernel`. ``length``
    defaults to 1 + the largest graph's size. ``t_index=None`` puts every
    evaluation time side by side, shape ``(n_graphs, T · length)``, for
    ``QuantumEvolutionKernel(n_times=T)``.
    """
    ok = [r for r in results if r.ok]
    if not ok:
        raise QgnnError("no graph was featurised: nothing to stack")
    if length is None:
        length = max(r.n_nodes for r in ok) + 1
    if t_index is None:
        return np.stack([excitation_histogram(r, length).reshape(-1) for r in ok])
    return np.stack([excitation_histogram(r, length)[t_index] for r in ok])


def pool_times(values: np.ndarray, pooling: TimePooling) -> np.ndarray:
    """Reduce the leading time axis of ``values`` (shape ``(T, ...)``).

    ``"last"`` → ``values[-1]`` (the latest evaluation time), ``"mean"`` → the
    mean over times, ``"concat"`` → every time kept as a trailing axis, shape
    ``(..., T)``.
    """
    arr = np.asarray(values)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise InvalidInputError(f"pool_times needs a leading time axis of length ≥ 1, got shape {arr.shape}")
    if pooling == "last":
        return arr[-1].copy()
    if pooling == "mean":
        return arr.mean(axis=0)
    if pooling == "concat":
        return np.moveaxis(arr, 0, -1).copy()
    raise InvalidInputError(f"time pooling must be one of {TIME_POOLINGS}, got {pooling!r}")


def _node_labels(graph: nx.Graph, attribute: str, where: str) -> list[Hashable]:
    missing = [n for n, value in graph.nodes(data=attribute) if value is None]
    if missing:
        raise InvalidInputError(
            f"{where}: node(s) {missing[:5]} have no {attribute!r} attribute; per-label features "
            "need a labelled dataset (or choose another attribute)"
        )
    return [graph.nodes[n][attribute] for n in graph.nodes]


def label_vocabulary(graphs: Sequence[nx.Graph], attribute: str = "label") -> tuple[Hashable, ...]:
    """The sorted distinct values of a node attribute over ``graphs`` (pass the training graphs only)."""
    values = {v for k, g in enumerate(graphs) for v in _node_labels(g, attribute, graph_label(k))}
    return tuple(sorted(values, key=repr))


def label_observables(
    result: GraphResult,
    graph: nx.Graph,
    vocabulary: Sequence[Hashable],
    *,
    attribute: str = "label",
    pooling: TimePooling = "last",
) -> np.ndarray:
    """Per-label observables: for each label value, the mean and the sum of ⟨n_i⟩ over its atoms.

    A fixed-length graph-level vector: ``[mean_l for l in vocabulary] +
    [sum_l for l in vocabulary]`` (0 for a label the graph lacks; a label
    outside ``vocabulary`` is ignored), shape ``(2·V,)``, or ``(2·V·T,)``
    time-major with ``pooling="concat"``. Take ``vocabulary`` from the
    training graphs (:func:`label_vocabulary`).
    """
    nodes = list(graph.nodes)
    labels = _node_labels(graph, attribute, graph_label(result.index))
    occupations = pool_times(node_occupations(result, nodes).T, pooling)  # (n,) or (n, T)
    occ = occupations.reshape(len(nodes), -1)
    column = {value: k for k, value in enumerate(vocabulary)}
    sums = np.zeros((len(vocabulary), occ.shape[1]))
    counts = np.zeros(len(vocabulary))
    for label, row in zip(labels, occ, strict=True):
        if label in column:
            sums[column[label]] += row
            counts[column[label]] += 1
    means = sums / np.maximum(counts, 1)[:, None]
    return np.concatenate([means, sums]).T.reshape(-1)


def label_observables_matrix(
    results: Sequence[GraphResult],
    graphs: Sequence[nx.Graph],
    vocabulary: Sequence[Hashable],
    *,
    attribute: str = "label",
    pooling: TimePooling = "last",
) -> np.ndarray:
    """:func:`label_observables` of every graph, shape ``(n_graphs, 2·V)`` (× T with ``"concat"``)."""
    if len(results) != len(graphs):
        raise InvalidInputError(f"{len(results)} results for {len(graphs)} graphs: pass aligned lists")
    return np.stack(
        [
            label_observables(r, g, vocabulary, attribute=attribute, pooling=pooling)
            for r, g in zip(results, graphs, strict=True)
        ]
    )


def node_observables(
    result: GraphResult, graph: nx.Graph, *, attribute: str = "label", pooling: TimePooling = "last"
) -> tuple[list[Hashable], np.ndarray, np.ndarray]:
    """Node labels, ⟨n_i⟩ (shape ``(n,)``) and C_ij (shape ``(n, n)``) in ``graph.nodes`` order.

    The input of :func:`qgnn.kernels.encode_observables` (the GDQC kernel's
    rows). ``pooling`` is ``"last"`` or ``"mean"`` over the evaluation times.
    """
    if pooling not in ("last", "mean"):
        raise InvalidInputError(f"node observables pool times as 'last' or 'mean', got {pooling!r}")
    nodes = list(graph.nodes)
    labels = _node_labels(graph, attribute, graph_label(result.index))
    occupations = pool_times(node_occupations(result, nodes).T, pooling)
    correlations = pool_times(node_correlations(result, nodes), pooling)
    return labels, occupations, correlations
