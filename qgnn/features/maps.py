"""Feature maps: from Measurements to arrays a model can use.

Node-level arrays are returned in the order of the graph nodes the caller
asks for; the embedding's ``node_ids`` (qubit k ↔ node) does the mapping.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from qgnn.errors import QgnnError, graph_label
from qgnn.features.pipeline import GraphResult


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
    corr = m.correlations
    if connected:
        corr = corr - np.einsum("ti,tj->tij", m.occupations, m.occupations)
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
