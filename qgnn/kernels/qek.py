"""The quantum evolution kernel (QEK) of Henry et al. (2021) / Albrecht et al. (2023).

    K(G, G') = exp(−μ · JS(P_G, P_G'))

where P_G is the distribution of the number of Rydberg excitations measured
after evolving G's register, and JS is the Jensen–Shannon divergence with the
natural logarithm: JS(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2, so
0 ≤ JS ≤ ln 2. √JS is a metric embeddable in Hilbert space, so K is positive
semi-definite for every μ > 0.

Time pooling (Djellabi, Hecker, Acheche 2025, arXiv:2509.09421): with the
distributions P_G(t) at T evaluation times, ``pooling="concat"`` compares the
T distributions side by side, K = exp(−μ · (1/T) Σ_t JS(P_G(t), P_G'(t))) —
this is exactly JS of the concatenated distributions, each weighted 1/T — and
``pooling="mean"`` compares the time-averaged distributions,
K = exp(−μ · JS((1/T) Σ_t P_G(t), (1/T) Σ_t P_G'(t))). Both are PSD.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from qgnn.backends.base import js_divergence
from qgnn.errors import InvalidInputError


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Pairwise Jensen–Shannon divergences (natural log) between rows of p and q.

    Args:
        p: distributions, shape ``(n, L)``, rows summing to 1.
        q: distributions, shape ``(m, L)``.

    Returns:
        Array of shape ``(n, m)`` with values in [0, ln 2].
    """
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    if p.shape[1] != q.shape[1]:
        raise InvalidInputError(f"distributions must have the same length, got {p.shape[1]} and {q.shape[1]}")
    pairs_p, pairs_q = np.broadcast_arrays(p[:, None, :], q[None, :, :])
    return np.clip(js_divergence(pairs_p, pairs_q), 0.0, np.log(2.0))


def _check_distributions(X: object, *, name: str, n_times: int = 1) -> np.ndarray:
    """Validate rows of ``n_times`` side-by-side distributions; return them renormalised, shape (n, T, L)."""
    try:
        arr = check_array(X, dtype=np.float64, ensure_all_finite=True)
    except ValueError as exc:  # NaN, empty, 1-D: say so as a qgnn error (still a ValueError)
        raise InvalidInputError(f"{name}: {exc}") from exc
    if arr.shape[1] % n_times:
        raise InvalidInputError(f"{name} has {arr.shape[1]} columns, not a multiple of n_times={n_times}")
    if (arr < -1e-12).any():
        raise InvalidInputError(
            f"Negative values in data passed to QuantumEvolutionKernel ({name}): "
            "rows must be probability distributions"
        )
    blocks = np.clip(arr, 0.0, None).reshape(arr.shape[0], n_times, arr.shape[1] // n_times)
    sums = blocks.sum(axis=2)
    if (sums <= 0).any():
        raise InvalidInputError(f"{name} has an all-zero row: each row must be a probability distribution")
    return blocks / sums[:, :, None]


POOLINGS = ("concat", "mean")
Pooling = Literal["concat", "mean"]


def _mean_divergence(a: np.ndarray, b: np.ndarray, pooling: str = "concat") -> np.ndarray:
    """Pooled pairwise JS for blocks of shape (n, T, L) and (m, T, L) (see the module docstring)."""
    if pooling == "mean":
        return jensen_shannon(a.mean(axis=1), b.mean(axis=1))
    return sum(jensen_shannon(a[:, t], b[:, t]) for t in range(a.shape[1])) / a.shape[1]


class QuantumEvolutionKernel(TransformerMixin, BaseEstimator):
    """QEK as a scikit-learn transformer that outputs a precomputed kernel.

    ``fit(X)`` stores the training distributions; ``transform(X)`` returns
    K(X, X_train) of shape ``(n_samples, n_train)``, ready for
    ``SVC(kernel="precomputed")``. Rows of ``X`` are excitation-count
    distributions (see :func:`qgnn.features.excitation_matrix`); rows are
    renormalised to sum to 1, and zero padding does not change JS.

    With ``n_times = T > 1``, each row holds T distributions side by side
    (one per evaluation time, each of length L = n_features / T, see
    ``excitation_matrix(results, t_index=None)``), pooled as ``pooling``
    says: ``"concat"`` gives exp(−μ · (1/T) Σ_t JS(P_t, P'_t)), a product of
    per-time QEKs; ``"mean"`` gives the QEK of the time-averaged
    distributions. Both are PSD.

    Args:
        mu: kernel scale μ > 0 (dimensionless; JS is in nats). Default 1.0.
        n_times: number of evaluation times side by side in each row. Default 1.
        pooling: ``"concat"`` (default) or ``"mean"``; no effect when ``n_times = 1``.

    Example:
        >>> import numpy as np
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.svm import SVC
        >>> X = np.array([[0.9, 0.1, 0.0], [0.2, 0.6, 0.2], [0.85, 0.15, 0.0], [0.1, 0.6, 0.3]])
        >>> model = make_pipeline(QuantumEvolutionKernel(mu=2.0), SVC(kernel="precomputed"))
        >>> model.fit(X, [0, 1, 0, 1]).predict(X).tolist()
        [0, 1, 0, 1]
    """

    def __init__(self, mu: float = 1.0, n_times: int = 1, pooling: Pooling = "concat") -> None:
        self.mu = mu
        self.n_times = n_times
        self.pooling = pooling

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _check_mu(self) -> float:
        mu = self.mu
        if isinstance(mu, bool) or not isinstance(mu, Real) or not np.isfinite(float(mu)) or mu <= 0:
            raise InvalidInputError(f"mu must be a positive finite number, got {mu!r}")
        return float(mu)

    def _pooling(self) -> str:
        if self.pooling not in POOLINGS:
            raise InvalidInputError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        return str(self.pooling)

    def _blocks(self, X: object, name: str) -> np.ndarray:
        n_times = self.n_times
        if isinstance(n_times, bool) or not isinstance(n_times, int | np.integer) or n_times < 1:
            raise InvalidInputError(f"n_times must be a positive integer, got {n_times!r}")
        return _check_distributions(X, name=name, n_times=int(n_times))

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-self._check_mu() * _mean_divergence(a, b, self._pooling()))

    def fit(self, X: object, y: object = None) -> QuantumEvolutionKernel:
        """Store the training distributions ``X`` (shape ``(n_train, n_times · L)``)."""
        self._check_mu()
        self._pooling()
        self.X_fit_ = self._blocks(X, "X")
        self.n_features_in_ = self.X_fit_.shape[1] * self.X_fit_.shape[2]
        return self

    def transform(self, X: object) -> np.ndarray:
        """Kernel between ``X`` and the training distributions, shape ``(n, n_train)``."""
        check_is_fitted(self, "X_fit_")
        blocks = self._blocks(X, "X")
        width = blocks.shape[1] * blocks.shape[2]
        if width != self.n_features_in_:
            raise InvalidInputError(
                f"X has {width} features, but QuantumEvolutionKernel is expecting "
                f"{self.n_features_in_} features as input: pad every distribution to the same length"
            )
        return self._kernel(blocks, self.X_fit_)

    def divergence_matrix(self, X: object, Y: object | None = None) -> np.ndarray:
        """The pooled JS between rows (``Y`` defaults to ``X``): the kernel is exp(−μ · this)."""
        x = self._blocks(X, "X")
        return _mean_divergence(x, x if Y is None else self._blocks(Y, "Y"), self._pooling())

    def kernel_matrix(self, X: object, Y: object | None = None) -> np.ndarray:
        """K(X, Y) (``Y`` defaults to ``X``) without fitting."""
        x = self._blocks(X, "X")
        return self._kernel(x, x if Y is None else self._blocks(Y, "Y"))
