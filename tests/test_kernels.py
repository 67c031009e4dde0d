"""QEK: the JS divergence against scipy, kernel properties, the scikit-learn contract."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from qgnn.errors import InvalidInputError, QgnnError
from qgnn.kernels import QuantumEvolutionKernel, jensen_shannon


def _random_distributions(n: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.dirichlet(np.ones(length), size=n)
    x[rng.random(x.shape) < 0.2] = 0.0  # zeros must be handled (0 log 0 = 0)
    x[:, 0] += 1e-3
    return x / x.sum(1, keepdims=True)


def test_js_matches_scipy_natural_log() -> None:
    p, q = _random_distributions(5, 7, 0), _random_distributions(4, 7, 1)
    expected = np.array([[jensenshannon(a, b) ** 2 for b in q] for a in p])  # scipy returns √JS, natural log
    np.testing.assert_allclose(jensen_shannon(p, q), expected, atol=1e-12)


def test_js_bounds_identical_and_disjoint() -> None:
    p = np.array([[1.0, 0.0], [0.0, 1.0]])
    js = jensen_shannon(p, p)
    assert js[0, 0] == pytest.approx(0.0) and js[0, 1] == pytest.approx(np.log(2))


def test_kernel_symmetric_unit_diagonal_psd() -> None:
    X = _random_distributions(40, 9, 2)
    for mu in (0.1, 1.0, 10.0, 100.0):
        K = QuantumEvolutionKernel(mu=mu).kernel_matrix(X)
        np.testing.assert_allclose(K, K.T, atol=1e-14)
        np.testing.assert_allclose(np.diag(K), 1.0, atol=1e-12)
        assert np.linalg.eigvalsh(K).min() > -1e-10


def test_zero_padding_does_not_change_kernel() -> None:
    X = _random_distributions(6, 5, 3)
    padded = np.hstack([X, np.zeros((6, 4))])
    np.testing.assert_allclose(
        QuantumEvolutionKernel(mu=2.0).kernel_matrix(X), QuantumEvolutionKernel(mu=2.0).kernel_matrix(padded)
    )


def test_numpy_integer_mu_works_in_a_grid() -> None:
    X = _random_distributions(6, 4, 1)
    for mu in np.arange(1, 3):
        K = QuantumEvolutionKernel(mu=mu).fit(X).transform(X)
        np.testing.assert_allclose(K, QuantumEvolutionKernel(mu=float(mu)).kernel_matrix(X))


def test_sklearn_contract_fit_returns_self_and_transform_shape() -> None:
    X = _random_distributions(10, 4, 4)
    qek = QuantumEvolutionKernel(mu=3.0)
    assert qek.get_params() == {"mu": 3.0, "n_times": 1}
    assert not hasattr(qek, "X_fit_")
    assert qek.fit(X) is qek
    K = qek.transform(X[:3])
    assert K.shape == (3, 10)
    np.testing.assert_allclose(K, QuantumEvolutionKernel(mu=3.0).kernel_matrix(X[:3], X))


def test_pipeline_and_grid_search_learn_a_separable_task() -> None:
    rng = np.random.default_rng(5)
    low = rng.dirichlet([8, 2, 1, 1], size=20)
    high = rng.dirichlet([1, 1, 2, 8], size=20)
    X, y = np.vstack([low, high]), np.array([0] * 20 + [1] * 20)
    model = Pipeline([("qek", QuantumEvolutionKernel()), ("svc", SVC(kernel="precomputed"))])
    search = GridSearchCV(
        model,
        {"qek__mu": [0.5, 5.0], "svc__C": [0.1, 10.0]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    search.fit(X, y)
    assert search.best_score_ > 0.9
    test = np.vstack([rng.dirichlet([8, 2, 1, 1], size=5), rng.dirichlet([1, 1, 2, 8], size=5)])
    assert (search.predict(test) == np.array([0] * 5 + [1] * 5)).mean() >= 0.9


@pytest.mark.parametrize("mu", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_bad_mu_is_rejected(mu: object) -> None:
    with pytest.raises(QgnnError, match="mu must be"):
        QuantumEvolutionKernel(mu=mu).fit(_random_distributions(3, 3, 0))  # type: ignore[arg-type]


def test_bad_distributions_are_rejected() -> None:
    qek = QuantumEvolutionKernel()
    with pytest.raises(QgnnError, match="Negative values"):
        qek.fit(np.array([[0.5, -0.5, 1.0]]))
    with pytest.raises(QgnnError, match="all-zero"):
        qek.fit(np.zeros((2, 3)))
    with pytest.raises(InvalidInputError, match="NaN"):
        qek.fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(InvalidInputError):
        qek.fit(np.zeros((0, 3)))
    with pytest.raises(InvalidInputError):
        qek.fit(np.array([0.5, 0.5]))  # 1-D: one distribution must still be a row
    qek.fit(_random_distributions(4, 3, 0))
    with pytest.raises(QgnnError, match="features"):
        qek.transform(_random_distributions(2, 5, 0))


@parametrize_with_checks(
    [QuantumEvolutionKernel()],
    expected_failed_checks=lambda est: {
        "check_estimators_dtypes": "int-cast random data has all-zero rows, not distributions",
        "check_fit2d_1feature": "its one-column integer data has all-zero rows, which are not distributions",
    },
)
def test_sklearn_estimator_checks(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_several_evaluation_times_multiply_the_per_time_kernels() -> None:
    a, b = _random_distributions(5, 4, 10), _random_distributions(5, 4, 11)
    X = np.hstack([a, b])  # two evaluation times side by side
    K = QuantumEvolutionKernel(mu=2.0, n_times=2).kernel_matrix(X)
    expected = np.sqrt(
        QuantumEvolutionKernel(mu=2.0).kernel_matrix(a) * QuantumEvolutionKernel(mu=2.0).kernel_matrix(b)
    )
    np.testing.assert_allclose(K, expected, atol=1e-12)  # exp(-mu (JS_a + JS_b)/2)
    assert np.linalg.eigvalsh(K).min() > -1e-10
    with pytest.raises(InvalidInputError, match="multiple of n_times"):
        QuantumEvolutionKernel(n_times=3).fit(X)
    with pytest.raises(InvalidInputError, match="n_times"):
        QuantumEvolutionKernel(n_times=0).fit(X)


def test_precomputed_qek_evaluation_matches_the_sklearn_pipeline() -> None:
    """evaluate_qek's precomputed Gram family gives the GridSearchCV-over-Pipeline predictions."""
    from qgnn.evaluation import QEK_MU_GRID, SVM_C_GRID, evaluate_qek, inner_cv, make_folds

    rng = np.random.default_rng(3)
    X = np.vstack([rng.dirichlet([6, 3, 1, 1], size=15), rng.dirichlet([2, 3, 3, 3], size=15)])
    y = np.array([0] * 15 + [1] * 15)
    folds = make_folds(y, folds=3, repeats=1, seed=0)
    fast = evaluate_qek(X, y, folds, seed=0)
    for fold, record in zip(folds, fast.folds, strict=True):
        search = GridSearchCV(
            Pipeline([("qek", QuantumEvolutionKernel()), ("svc", SVC(kernel="precomputed"))]),
            {"qek__mu": list(QEK_MU_GRID), "svc__C": list(SVM_C_GRID)},
            cv=inner_cv(y[fold.train], seed=0, task="classification"),
        )
        search.fit(X[fold.train], y[fold.train])
        assert record.best_params["mu"] in QEK_MU_GRID
        assert search.best_score_ == pytest.approx(
            max(
                GridSearchCV(SVC(kernel="precomputed"), {"C": list(SVM_C_GRID)},
                             cv=inner_cv(y[fold.train], seed=0, task="classification"))
                .fit(QuantumEvolutionKernel(mu=mu).kernel_matrix(X[fold.train]), y[fold.train])
                .best_score_
                for mu in QEK_MU_GRID
            )
        )  # fmt: skip
        assert (search.predict(X[fold.test]) == np.array(record.y_pred)).mean() >= 0.8
