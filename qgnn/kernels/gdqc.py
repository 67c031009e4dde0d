"""The generalized-distance quantum-correlation (GDQC) kernel.

After Djellabi, Hecker & Acheche (2025), arXiv:2509.09421: a
Weisfeiler–Lehman-style colour refinement driven by local quantum
observables instead of the graph's edges.

- Initial colour of atom i: its node label and its Rydberg occupation ⟨n_i⟩
  binned into ``occupation_bins`` equal bins of [0, 1].
- Refinement: the new colour of i hashes its colour with the multiset
  {(b(C_ij), colour_j) : j ≠ i} over every other atom, where
  C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩ is the connected correlation and b bins it
  into ``correlation_bins`` (odd) equal bins of [−¼, ¼] centred on 0. The
  correlation plays the role of a generalized distance (GD-WL): the graph
  reaches the kernel only through the physics that produced C.
- Kernel: φ(G) counts the colours of every depth 0..``n_iter``;
  K(G, G') = ⟨φ(G), φ(G')⟩ / √(⟨φ(G), φ(G)⟩⟨φ(G'), φ(G')⟩), a normalised
  linear kernel on colour histograms, hence positive semi-definite.

Rows of ``X`` encode one graph each (:func:`encode_observables`): for each of
N atom slots, ``[label, ⟨n_i⟩, C_i1, …, C_iN]``, N·(N + 2) columns; a slot
with ⟨n_i⟩ < 0 is padding (no atom). Build them from pipeline results with
:func:`qgnn.features.node_observables`. Any numeric matrix is read this way
(N = the largest slot count that fits its width; columns past N·(N + 2) —
``encode_observables`` writes none — carry nothing), so the estimator meets
scikit-learn's estimator checks on their random data.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from qgnn.errors import InvalidInputError

CORRELATION_RANGE = 0.25
"""|C_ij| ≤ ¼ for two-level occupations; correlation bins span [−¼, ¼]."""


def encode_observables(
    graphs: Sequence[tuple[Sequence[Hashable], np.ndarray, np.ndarray]], size: int | None = None
) -> np.ndarray:
    """Encode (labels, ⟨n_i⟩, C_ij) of each graph as one row of the GDQC input.

    Args:
        graphs: per graph, numeric node labels (length n), occupations shape
            ``(n,)`` in [0, 1] and connected correlations shape ``(n, n)``
            (see :func:`qgnn.features.node_observables`).
        size: atom slots N per row (default: the largest graph's n).

    Returns:
        Array of shape ``(n_graphs, N·(N + 2))``; unused slots are padding
        (occupation −1).
    """
    if not graphs:
        raise InvalidInputError("encode_observables needs at least one graph")
    sizes = [len(labels) for labels, _, _ in graphs]
    n_max = max(sizes) if size is None else size
    if n_max < max(sizes) or n_max < 1:
        raise InvalidInputError(f"size={size} is smaller than the largest graph ({max(sizes)} atoms)")
    rows = np.zeros((len(graphs), n_max, n_max + 2))
    rows[:, :, 1] = -1.0
    for k, (labels, occupations, correlations) in enumerate(graphs):
        n = sizes[k]
        occ = np.asarray(occupations, dtype=np.float64)
        corr = np.asarray(correlations, dtype=np.float64)
        if occ.shape != (n,) or corr.shape != (n, n):
            raise InvalidInputError(
                f"graph {k}: {n} labels need occupations of shape ({n},) and correlations ({n}, {n}), "
                f"got {occ.shape} and {corr.shape}"
            )
        try:
            rows[k, :n, 0] = np.asarray(labels, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"graph {k}: node labels must be numbers (the dataset's integer codes), "
                f"got {list(labels)[:5]}"
            ) from exc
        rows[k, :n, 1] = np.clip(occ, 0.0, 1.0)
        rows[k, :n, 2 : 2 + n] = corr
    return rows.reshape(len(graphs), -1)


def _slots(width: int) -> int:
    """Atom slots N of a row of ``width`` columns: the largest N with N·(N + 2) ≤ width."""
    return math.isqrt(width + 1) - 1


def _bins(values: np.ndarray, n_bins: int, low: float, high: float) -> np.ndarray:
    """Index of the equal-width bin of [low, high] (values outside go to the end bins)."""
    scaled = np.floor((values - low) / (high - low) * n_bins)
    return np.clip(scaled, 0, n_bins - 1).astype(np.int64)


def _hash_rows(rows: np.ndarray) -> np.ndarray:
    """A 64-bit colour per row of int64 values (BLAKE2b: stable across processes and machines)."""
    out = np.empty(len(rows), dtype=np.int64)
    for k, row in enumerate(np.ascontiguousarray(rows, dtype=np.int64)):
        out[k] = np.frombuffer(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), dtype=np.int64)[0]
    return out


def refine_colours(
    row: np.ndarray, *, n_iter: int, occupation_bins: int, correlation_bins: int
) -> list[np.ndarray]:
    """The colour of every atom of one encoded graph at depths 0..n_iter (see the module docstring).

    Returns:
        One int64 array of atom colours per depth; equal colours mean equal
        refined neighbourhoods, in any graph.
    """
    slots = _slots(row.shape[0])
    blocks = row[: slots * (slots + 2)].reshape(slots, slots + 2)
    present = np.flatnonzero(blocks[:, 1] >= 0.0)
    n = len(present)
    labels = np.ascontiguousarray(blocks[present, 0], dtype=np.float64).view(np.int64)  # exact label bits
    occ_bins = _bins(blocks[present, 1], occupation_bins, 0.0, 1.0)
    colours = _hash_rows(np.stack([np.zeros(n, dtype=np.int64), labels, occ_bins], axis=1))
    depths = [colours]
    if n == 0:
        return depths * (n_iter + 1)
    corr_bins = _bins(
        blocks[np.ix_(present, 2 + present)], correlation_bins, -CORRELATION_RANGE, CORRELATION_RANGE
    )
    others = ~np.eye(n, dtype=bool)
    pair_bins = corr_bins[others].reshape(n, n - 1)
    for depth in range(1, n_iter + 1):
        pair_colours = np.broadcast_to(colours, (n, n))[others].reshape(n, n - 1)
        order = np.lexsort((pair_colours, pair_bins), axis=-1)  # the multiset, as sorted (bin, colour) pairs
        rows = np.concatenate(
            [
                np.full((n, 1), depth, dtype=np.int64),
                colours[:, None],
                np.take_along_axis(pair_bins, order, axis=-1),
                np.take_along_axis(pair_colours, order, axis=-1),
            ],
            axis=1,
        )
        colours = _hash_rows(rows)
        depths.append(colours)
    return depths


def _histograms(
    rows: np.ndarray,
    vocabulary: np.ndarray | None,
    *,
    n_iter: int,
    occupation_bins: int,
    correlation_bins: int,
) -> tuple[list[sparse.csr_matrix], list[np.ndarray], np.ndarray]:
    """Per-depth colour-count matrices (graphs × vocabulary) and per-depth squared norms.

    ``vocabulary=None`` takes every colour of ``rows`` (sorted); otherwise
    colours outside it are left out of the matrices but not of the norms.
    """
    per_graph = [
        refine_colours(r, n_iter=n_iter, occupation_bins=occupation_bins, correlation_bins=correlation_bins)
        for r in rows
    ]
    if vocabulary is None:
        vocabulary = np.unique(np.concatenate([c for depths in per_graph for c in depths] or [np.zeros(0)]))
        vocabulary = vocabulary.astype(np.int64)
    matrices, norms = [], []
    for depth in range(n_iter + 1):
        ids, colours, counts = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
        squared = np.zeros(len(rows))
        for k, depths in enumerate(per_graph):
            values, count = np.unique(depths[depth], return_counts=True)
            squared[k] = float(np.sum(count.astype(np.float64) ** 2))
            ids.append(np.full(len(values), k))
            colours.append(values)
            counts.append(count.astype(np.float64))
        graph_ids, colour_ids, values = np.concatenate(ids), np.concatenate(colours), np.concatenate(counts)
        where = np.minimum(np.searchsorted(vocabulary, colour_ids), max(len(vocabulary) - 1, 0))
        known = vocabulary[where] == colour_ids if len(vocabulary) else np.zeros(len(colour_ids), bool)
        matrices.append(
            sparse.csr_matrix(
                (values[known], (graph_ids[known], where[known])), shape=(len(rows), len(vocabulary))
            )
        )
        norms.append(squared)
    return matrices, norms, vocabulary


def _normalised(dots: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """dots / √(left ⊗ right), 0 where a graph has no atom."""
    scale = np.sqrt(np.outer(left, right))
    return np.where(scale > 0, dots / np.where(scale > 0, scale, 1.0), 0.0)


def gdqc_grams(
    X: np.ndarray, *, n_iter: int, occupation_bins: int, correlation_bins: int
) -> list[np.ndarray]:
    """The GDQC Gram matrix of the rows of ``X`` at every depth 0..n_iter, from one refinement.

    Element ``h`` equals ``GDQCKernel(n_iter=h, ...).kernel_matrix(X)``.
    """
    matrices, norms, _ = _histograms(
        np.asarray(X, dtype=np.float64),
        None,
        n_iter=n_iter,
        occupation_bins=occupation_bins,
        correlation_bins=correlation_bins,
    )
    grams = []
    dots = np.zeros((len(norms[0]),) * 2)
    squared = np.zeros(len(norms[0]))
    for matrix, norm in zip(matrices, norms, strict=True):
        dots = dots + (matrix @ matrix.T).toarray()
        squared = squared + norm
        grams.append(_normalised(dots, squared, squared))
    return grams


class GDQCKernel(TransformerMixin, BaseEstimator):
    """GDQC graph kernel as a scikit-learn transformer that outputs a precomputed kernel.

    ``fit(X)`` refines the training graphs' colours and stores their
    histograms; ``transform(X)`` returns K(X, X_train), shape
    ``(n_samples, n_train)``, for ``SVC(kernel="precomputed")``. Colours no
    training graph has add to a graph's own norm only.

    Args:
        n_iter: refinement depth h ≥ 0 (0: histogram of (label, binned ⟨n_i⟩)). Default 2.
        occupation_bins: equal bins of ⟨n_i⟩ ∈ [0, 1] (≥ 1). Default 4.
        correlation_bins: equal bins of C_ij ∈ [−¼, ¼], odd (≥ 1) so that 0 is
            a bin centre (1: correlations ignored). Default 5.

    Example:
        >>> import numpy as np
        >>> from qgnn.kernels import GDQCKernel, encode_observables
        >>> C = np.array([[0, -0.1, 0.05], [-0.1, 0, -0.1], [0.05, -0.1, 0]])
        >>> path = ([0, 1, 0], np.array([0.6, 0.1, 0.6]), C)
        >>> star = ([1, 0, 0], np.array([0.1, 0.6, 0.6]), C)  # the same atoms, the label moved
        >>> X = encode_observables([path, star])
        >>> K = GDQCKernel().fit(X).transform(X)  # only the depth-0 colours agree: 5 / √(15 · 11)
        >>> K.round(3).tolist()
        [[1.0, 0.389], [0.389, 1.0]]
    """

    def __init__(self, n_iter: int = 2, occupation_bins: int = 4, correlation_bins: int = 5) -> None:
        self.n_iter = n_iter
        self.occupation_bins = occupation_bins
        self.correlation_bins = correlation_bins

    def _check_params(self) -> dict[str, int]:
        params = {
            "n_iter": (self.n_iter, 0),
            "occupation_bins": (self.occupation_bins, 1),
            "correlation_bins": (self.correlation_bins, 1),
        }
        for name, (value, low) in params.items():
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InvalidInputError(f"{name} must be an integer ≥ {low}, got {value!r}")
        if self.correlation_bins % 2 == 0:
            raise InvalidInputError(
                f"correlation_bins must be odd (0 must be a bin centre), got {self.correlation_bins}"
            )
        return {name: int(value) for name, (value, _) in params.items()}

    def _rows(self, X: object) -> np.ndarray:
        try:
            return check_array(X, dtype=np.float64, ensure_all_finite=True)
        except ValueError as exc:  # NaN, empty, 1-D: say so as a qgnn error (still a ValueError)
            raise InvalidInputError(f"X: {exc}") from exc

    def fit(self, X: object, y: object = None) -> GDQCKernel:
        """Refine the training graphs (rows of ``X``) and store their colour histograms."""
        params = self._check_params()
        rows = self._rows(X)
        matrices, norms, vocabulary = _histograms(rows, None, **params)
        self.vocabulary_ = vocabulary
        self.features_ = sparse.hstack(matrices).tocsr()
        self.squared_norms_ = np.sum(norms, axis=0)
        self.n_features_in_ = rows.shape[1]
        return self

    def transform(self, X: object) -> np.ndarray:
        """Kernel between ``X`` and the training graphs, shape ``(n, n_train)``."""
        check_is_fitted(self, "features_")
        params = self._check_params()
        rows = self._rows(X)
        if rows.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {rows.shape[1]} features, but GDQCKernel is expecting {self.n_features_in_} "
                "features as input: encode every graph with the same number of atom slots"
            )
        matrices, norms, _ = _histograms(rows, self.vocabulary_, **params)
        dots = (sparse.hstack(matrices).tocsr() @ self.features_.T).toarray()
        return _normalised(dots, np.sum(norms, axis=0), self.squared_norms_)

    def kernel_matrix(self, X: object, Y: object | None = None) -> np.ndarray:
        """K(X, Y) (``Y`` defaults to ``X``) without keeping a fit."""
        return GDQCKernel(**self.get_params()).fit(X if Y is None else Y).transform(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
