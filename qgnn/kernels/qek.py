"""The quantum evolution kernel (QEK) of Henry et al. (2021) / Albrecht et al. (2023).

    K(G, G') = exp(−μ · JS(P_G, P_G'))

where P_G is the distribution of the number of Rydberg excitations measured
after evolving G's register, and JS is the Jensen–Shannon divergence with the
natural logarithm: JS(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M), M = (P + Q)/2, so
0 ≤ JS ≤ ln 2. √JS is a metric embeddable in Hilbert space, so K is positive
semi-definite for every μ > 0.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

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


def _check_distributions(X: object, *, name: str) -> np.ndarray:
    try:
        arr = check_array(X, dtype=np.float64, ensure_all_finite=True)
    except ValueError as exc:  # NaN, empty, 1-D: say so as a qgnn error (still a ValueError)
        raise InvalidInputError(f"{name}: {exc}") from exc
    if (arr < -1e-12).any():
        raise InvalidInputError(
            f"Negative values in data passed to QuantumEvolutionKernel ({name}): "
            "rows must be probability distributions"
        )
    sums = arr.sum(axis=1)
    if (sums <= 0).any():
        raise InvalidInputError(f"{name} has an all-zero row: each row must be a probability distribution")
    return np.clip(arr, 0.0, None) / sums[:, None]


class QuantumEvolutionKernel(TransformerMixin, BaseEstimator):
    """QEK as a scikit-learn transformer that outputs a precomputed kernel.

    ``fit(X)`` stores the training distributions; ``transform(X)`` returns
    K(X, X_train) of shape ``(n_samples, n_train)``, ready for
    ``SVC(kernel="precomputed")``. Rows of ``X`` are excitation-count
    distributions (see :func:`qgnn.features.excitation_matrix`); rows are
    renormalised to sum to 1, and zero padding does not change JS.

    Args:
        mu: kernel scale μ > 0 (dimensionless; JS is in nats). Default 1.0.

    Example:
        >>> import numpy as np
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.svm import SVC
        >>> X = np.array([[0.9, 0.1, 0.0], [0.2, 0.6, 0.2], [0.85, 0.15, 0.0], [0.1, 0.6, 0.3]])
        >>> model = make_pipeline(QuantumEvolutionKernel(mu=2.0), SVC(kernel="precomputed"))
        >>> model.fit(X, [0, 1, 0, 1]).predict(X).tolist()
        [0, 1, 0, 1]
    """

    def __init__(self, mu: float = 1.0) -> None:
        self.mu = mu

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _check_mu(self) -> float:
        mu = self.mu
        if isinstance(mu, bool) or not isinstance(mu, Real) or not np.isfinite(float(mu)) or mu <= 0:
            raise InvalidInputError(f"mu must be a positive finite number, got {mu!r}")
        return float(mu)

    def fit(self, X: object, y: object = None) -> QuantumEvolutionKernel:
        """Store the training distributions ``X`` (shape ``(n_train, L)``)."""
        self._check_mu()
        self.X_fit_ = _check_distributions(X, name="X")
        self.n_features_in_ = self.X_fit_.shape[1]
        return self

    def transform(self, X: object) -> np.ndarray:
        """Kernel between ``X`` and the training distributions, shape ``(n, n_train)``."""
        check_is_fitted(self, "X_fit_")
        arr = _check_distributions(X, name="X")
        if arr.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {arr.shape[1]} features, but QuantumEvolutionKernel is expecting "
                f"{self.n_features_in_} features as input: pad every distribution to the same length"
            )
        return np.exp(-self._check_mu() * jensen_shannon(arr, self.X_fit_))

    def kernel_matrix(self, X: object, Y: object | None = None) -> np.ndarray:
        """K(X, Y) (``Y`` defaults to ``X``) without fitting."""
        x = _check_distributions(X, name="X")
        y = x if Y is None else _check_distributions(Y, name="Y")
        return np.exp(-self._check_mu() * jensen_shannon(x, y))
