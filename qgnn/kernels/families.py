"""Gram-matrix families: each kernel model's Gram matrices over its hyperparameter grid.

A family maps a parameter tuple ``(("name", value), ...)`` to the Gram matrix
over every evaluated graph; :class:`qgnn.evaluation.KernelModels` tunes the
grid point and the SVM's C by inner cross-validation on each training fold.
Families built from features fitted on data (a label vocabulary, feature
scaling) take the training rows, so nothing is fitted on a test fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

from qgnn.errors import InvalidInputError
from qgnn.kernels.classical import shortest_path_gram, weisfeiler_lehman_gram
from qgnn.kernels.gdqc import gdqc_grams
from qgnn.kernels.qek import QuantumEvolutionKernel

Params = tuple[tuple[str, Any], ...]
Family = dict[Params, np.ndarray]

QEK_MU_GRID: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
"""μ of K = exp(−μ·JS) (JS in nats)."""
WL_ITERATIONS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Weisfeiler–Lehman refinement depths h."""
GDQC_DEPTHS: tuple[int, ...] = (1, 2, 3)
"""Refinement depths of the GDQC kernel."""
GDQC_BINS: tuple[tuple[int, int], ...] = ((3, 3), (3, 7), (6, 3), (6, 7))
"""(occupation_bins, correlation_bins) of the GDQC kernel."""
RBF_GAMMA_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
"""γ·d of the RBF kernel exp(−γ‖x − x'‖²) on standardised features of dimension d."""
HYBRID_LAMBDAS: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0, 3.0)
"""λ of K = K_classical + λ·K_quantum (λ = 0: the classical kernel alone)."""


def qek_family(X: np.ndarray, *, n_times: int = 1, poolings: Sequence[str] = ("concat",)) -> Family:
    """QEK Gram matrices for each pooling and μ; the JS matrix is computed once per pooling.

    Args:
        X: excitation distributions, shape ``(n_graphs, n_times · L)``.
        n_times: evaluation times side by side in each row.
        poolings: ``"concat"`` and/or ``"mean"`` (see :class:`QuantumEvolutionKernel`);
            a single pooling adds no ``pooling`` parameter.
    """
    family: Family = {}
    for pooling in poolings:
        js = QuantumEvolutionKernel(n_times=n_times, pooling=pooling).divergence_matrix(X)  # type: ignore[arg-type]
        tag: Params = (("pooling", pooling),) if len(poolings) > 1 else ()
        for mu in QEK_MU_GRID:
            family[(*tag, ("mu", mu))] = np.exp(-mu * js)
    return family


def weisfeiler_lehman_family(graphs: Sequence[nx.Graph]) -> Family:
    """Normalised WL-subtree Gram matrices on node labels, one per depth h."""
    return {(("h", h),): weisfeiler_lehman_gram(graphs, h) for h in WL_ITERATIONS}


def shortest_path_family(graphs: Sequence[nx.Graph]) -> Family:
    """The normalised labelled shortest-path Gram matrix (no parameter)."""
    return {(): shortest_path_gram(graphs)}


def gdqc_family(encoded: Mapping[str, np.ndarray]) -> Family:
    """GDQC Gram matrices over :data:`GDQC_DEPTHS` × :data:`GDQC_BINS`, for each time pooling.

    Args:
        encoded: time pooling (``"last"``, ``"mean"``) → rows of
            :func:`qgnn.kernels.encode_observables`; one entry adds no
            ``pooling`` parameter.
    """
    family: Family = {}
    for pooling, X in encoded.items():
        tag: Params = (("pooling", pooling),) if len(encoded) > 1 else ()
        for occ, corr in GDQC_BINS:
            grams = gdqc_grams(X, n_iter=max(GDQC_DEPTHS), occupation_bins=occ, correlation_bins=corr)
            for depth in GDQC_DEPTHS:
                params = (("n_iter", depth), ("occupation_bins", occ), ("correlation_bins", corr))
                family[(*tag, *params)] = grams[depth]
    return family


def rbf_family(features: np.ndarray, train: np.ndarray) -> Family:
    """RBF Gram matrices on features standardised with the training rows' mean and std.

    Args:
        features: one row per graph, shape ``(n_graphs, d)``.
        train: indices of the training rows (the scaling is fitted on them only).
    """
    from sklearn.metrics.pairwise import rbf_kernel

    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] == 0 or not np.isfinite(X).all():
        raise InvalidInputError(
            f"RBF features must be a finite 2-D array with ≥ 1 column, got shape {X.shape}"
        )
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    Z = (X - mean) / np.where(std > 0, std, 1.0)
    return {(("gamma", g),): rbf_kernel(Z, gamma=g / X.shape[1]) for g in RBF_GAMMA_GRID}
