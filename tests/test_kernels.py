"""Graph kernels: QEK (JS vs scipy, pooling), GDQC (vs a plain reference), families, the sklearn contract."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from qgnn.errors import InvalidInputError, QgnnError
from qgnn.kernels import GDQCKernel, QuantumEvolutionKernel, encode_observables, gdqc_grams, jensen_shannon


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
    assert qek.get_params() == {"mu": 3.0, "n_times": 1, "pooling": "concat"}
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


def test_precomputed_qek_evaluation_gives_the_sklearn_pipeline_predictions() -> None:
    """KernelModels on qek_family picks what GridSearchCV on Pipeline(QEK, SVC) picks: same predictions."""
    from qgnn.evaluation import SVM_C_GRID, KernelModels, inner_cv, make_folds
    from qgnn.kernels.families import QEK_MU_GRID, qek_family

    rng = np.random.default_rng(3)
    X = np.vstack([rng.dirichlet([6, 3, 1, 1], size=15), rng.dirichlet([2, 3, 3, 3], size=15)])
    y = np.array([0] * 15 + [1] * 15)
    folds = make_folds(y, folds=3, repeats=1, seed=0)
    models = KernelModels(y, folds, seed=0)
    models.add("qek-svm", qek_family(X))
    fast = models.evaluate("qek-svm")
    for fold, record in zip(folds, fast.folds, strict=True):
        search = GridSearchCV(
            Pipeline([("qek", QuantumEvolutionKernel()), ("svc", SVC(kernel="precomputed"))]),
            {"qek__mu": list(QEK_MU_GRID), "svc__C": list(SVM_C_GRID)},
            cv=inner_cv(y[fold.train], seed=0, task="classification"),
            scoring="balanced_accuracy",
        )
        search.fit(X[fold.train], y[fold.train])
        assert record.best_params["mu"] == search.best_params_["qek__mu"]
        assert record.best_params["C"] == search.best_params_["svc__C"]
        assert record.best_params["inner_score"] == pytest.approx(search.best_score_, abs=1e-12)
        np.testing.assert_array_equal(search.predict(X[fold.test]), record.y_pred)


def test_concatenated_pooling_is_js_of_the_concatenated_distribution() -> None:
    a, b = _random_distributions(4, 5, 20), _random_distributions(4, 5, 21)
    X = np.hstack([a, b])
    concat = QuantumEvolutionKernel(n_times=2, pooling="concat").divergence_matrix(X)
    joint = jensen_shannon(X / 2.0, X / 2.0)  # one distribution over (time, k), each time weighted ½
    np.testing.assert_allclose(concat, joint, atol=1e-12)


def test_mean_pooling_is_qek_of_the_time_averaged_distribution() -> None:
    a, b = _random_distributions(6, 4, 30), _random_distributions(6, 4, 31)
    X = np.hstack([a, b])
    pooled = QuantumEvolutionKernel(mu=3.0, n_times=2, pooling="mean").kernel_matrix(X)
    expected = np.exp(-3.0 * np.array([[jensenshannon(p, q) ** 2 for q in (a + b) / 2] for p in (a + b) / 2]))
    np.testing.assert_allclose(pooled, expected, atol=1e-12)
    assert np.linalg.eigvalsh(pooled).min() > -1e-10
    assert not np.allclose(pooled, QuantumEvolutionKernel(mu=3.0, n_times=2).kernel_matrix(X))
    with pytest.raises(InvalidInputError, match="pooling"):
        QuantumEvolutionKernel(n_times=2, pooling="max").fit(X)  # type: ignore[arg-type]


def test_qek_family_covers_the_grid_with_one_js_per_pooling() -> None:
    from qgnn.kernels.families import QEK_MU_GRID, qek_family

    X = np.hstack([_random_distributions(5, 3, 40), _random_distributions(5, 3, 41)])
    family = qek_family(X, n_times=2, poolings=("concat", "mean"))
    assert len(family) == 2 * len(QEK_MU_GRID)
    for params, K in family.items():
        kernel = QuantumEvolutionKernel(n_times=2, **dict(params))
        np.testing.assert_allclose(K, kernel.kernel_matrix(X), atol=1e-12)


# --------------------------------------------------------------------------- GDQC


def _random_observables(n: int, seed: int, n_labels: int = 3) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Labels, ⟨n_i⟩ and a symmetric connected-correlation matrix of a random n-atom graph."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_labels, size=n).tolist()
    occ = rng.uniform(0.0, 1.0, size=n)
    corr = rng.uniform(-0.25, 0.25, size=(n, n))
    corr = (corr + corr.T) / 2
    np.fill_diagonal(corr, occ - occ**2)
    return labels, occ, corr


def _reference_gdqc(graphs: list, n_iter: int, occ_bins: int, corr_bins: int) -> np.ndarray:
    """GD-WL on (label, binned ⟨n⟩) over binned C, written plainly with tuples (no hashing, no numpy)."""
    from collections import Counter

    def occ_bin(v: float) -> int:
        return min(int(v * occ_bins), occ_bins - 1)

    def corr_bin(v: float) -> int:
        return min(max(int(np.floor((v + 0.25) / 0.5 * corr_bins)), 0), corr_bins - 1)

    features = []
    for labels, occ, corr in graphs:
        n = len(labels)
        colours: list = [("init", labels[i], occ_bin(occ[i])) for i in range(n)]
        counts = Counter(colours)
        for _ in range(n_iter):
            colours = [
                (colours[i], tuple(sorted((corr_bin(corr[i][j]), colours[j]) for j in range(n) if j != i)))
                for i in range(n)
            ]
            counts.update(colours)
        features.append(counts)
    dots = np.array([[sum(a[c] * b[c] for c in a) for b in features] for a in features], dtype=float)
    norms = np.sqrt(np.diag(dots))
    return dots / np.outer(norms, norms)


@pytest.mark.parametrize(("n_iter", "occ_bins", "corr_bins"), [(0, 4, 5), (1, 3, 3), (2, 4, 5), (3, 2, 7)])
def test_gdqc_matches_a_plain_reference_implementation(n_iter: int, occ_bins: int, corr_bins: int) -> None:
    graphs = [_random_observables(n, seed) for seed, n in enumerate([3, 4, 4, 5, 6, 3, 5])]
    graphs.append(graphs[1])  # an identical graph: K = 1 with it
    X = encode_observables(graphs)
    K = GDQCKernel(n_iter=n_iter, occupation_bins=occ_bins, correlation_bins=corr_bins).kernel_matrix(X)
    np.testing.assert_allclose(K, _reference_gdqc(graphs, n_iter, occ_bins, corr_bins), atol=1e-12)
    assert K[1, -1] == pytest.approx(1.0)
    assert np.linalg.eigvalsh(K).min() > -1e-10


def test_gdqc_is_invariant_to_atom_order_and_padding() -> None:
    graphs = [_random_observables(n, 10 + n) for n in (4, 5, 6)]
    perm = np.random.default_rng(0).permutation(6)
    labels, occ, corr = graphs[2]
    shuffled = ([labels[p] for p in perm], occ[perm], corr[np.ix_(perm, perm)])
    K = GDQCKernel(n_iter=3).kernel_matrix(encode_observables(graphs))
    K_shuffled = GDQCKernel(n_iter=3).kernel_matrix(encode_observables([*graphs[:2], shuffled], size=9))
    np.testing.assert_allclose(K, K_shuffled, atol=1e-12)


def test_gdqc_sees_correlations_only_through_their_bins() -> None:
    labels, occ, corr = _random_observables(5, 3)
    flipped = (labels, occ, -corr)  # same labels and occupations, anti- instead of positively correlated
    X = encode_observables([(labels, occ, corr), flipped])
    assert GDQCKernel(n_iter=1, correlation_bins=5).kernel_matrix(X)[0, 1] < 0.99
    # one correlation bin: the refinement only counts the other atoms' colours, the same multiset here
    np.testing.assert_allclose(GDQCKernel(n_iter=3, correlation_bins=1).kernel_matrix(X), 1.0, atol=1e-12)


def test_gdqc_fit_transform_is_the_gram_block_and_grams_share_one_refinement() -> None:
    graphs = [_random_observables(n, 50 + k, n_labels=2) for k, n in enumerate([3, 4, 5, 4, 3, 5, 4, 6])]
    X = encode_observables(graphs)
    train, test = np.arange(5), np.arange(5, 8)
    grams = gdqc_grams(X, n_iter=2, occupation_bins=3, correlation_bins=3)
    for depth in range(3):
        kernel = GDQCKernel(n_iter=depth, occupation_bins=3, correlation_bins=3)
        assert kernel.fit(X[train]) is kernel
        np.testing.assert_allclose(kernel.transform(X[test]), grams[depth][np.ix_(test, train)], atol=1e-12)
        np.testing.assert_allclose(kernel.kernel_matrix(X), grams[depth], atol=1e-12)


def test_gdqc_rejects_bad_parameters_and_inputs() -> None:
    X = encode_observables([_random_observables(3, 0)])
    for params, match in [
        ({"correlation_bins": 4}, "odd"),
        ({"n_iter": -1}, "n_iter"),
        ({"occupation_bins": 0}, "occupation_bins"),
        ({"n_iter": 1.5}, "n_iter"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            GDQCKernel(**params).fit(X)
    with pytest.raises(InvalidInputError, match="NaN"):
        GDQCKernel().fit(np.full((2, 3), np.nan))
    fitted = GDQCKernel().fit(X)
    with pytest.raises(InvalidInputError, match="atom slots"):
        fitted.transform(encode_observables([_random_observables(3, 0)], size=4))
    with pytest.raises(InvalidInputError, match="numbers"):
        encode_observables([(["C", "N"], np.zeros(2), np.zeros((2, 2)))])
    with pytest.raises(InvalidInputError, match="shape"):
        encode_observables([([0, 1], np.zeros(3), np.zeros((2, 2)))])


def test_gdqc_in_a_grid_search_learns_a_label_placement_task() -> None:
    """Class 0: the rare label is on the most excited atom; class 1: on the least (label × ⟨n⟩ colours)."""
    graphs, y = [], []
    for k in range(30):
        labels, occ, corr = _random_observables(5, 100 + k, n_labels=1)
        target = int(np.argmax(occ)) if k % 2 == 0 else int(np.argmin(occ))
        labels[target] = 1
        graphs.append((labels, occ, corr))
        y.append(k % 2)
    X = encode_observables(graphs)
    search = GridSearchCV(
        Pipeline([("gdqc", GDQCKernel(correlation_bins=1)), ("svc", SVC(kernel="precomputed"))]),
        {"gdqc__occupation_bins": [2, 4], "gdqc__n_iter": [0, 1], "svc__C": [1.0, 100.0]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    search.fit(X, y)
    assert search.best_score_ > 0.8


@parametrize_with_checks([GDQCKernel(), GDQCKernel(n_iter=0, occupation_bins=1, correlation_bins=1)])
def test_gdqc_sklearn_estimator_checks(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]


# --------------------------------------------------------------------------- families


def test_rbf_family_scales_features_on_the_training_rows_only() -> None:
    from qgnn.kernels.families import RBF_GAMMA_GRID, rbf_family

    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    train = np.arange(7)
    family = rbf_family(X, train)
    moved = X.copy()
    moved[7:] += 100.0  # a test row far away must not change the training rows' scaling
    family_moved = rbf_family(moved, train)
    for (params, K), K_moved in zip(family.items(), family_moved.values(), strict=True):
        gamma = dict(params)["gamma"] / 3
        Z = (X - X[train].mean(0)) / X[train].std(0)
        expected = np.exp(-gamma * ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1))
        np.testing.assert_allclose(K, expected, atol=1e-12)
        np.testing.assert_allclose(K_moved[np.ix_(train, train)], K[np.ix_(train, train)], atol=1e-12)
    assert [dict(p)["gamma"] for p in family] == list(RBF_GAMMA_GRID)
    with pytest.raises(InvalidInputError, match="finite"):
        rbf_family(np.full((3, 2), np.nan), np.arange(2))


def test_label_histograms_count_the_training_vocabulary() -> None:
    import networkx as nx

    from qgnn.kernels.classical import label_histograms

    g = nx.path_graph(4)
    nx.set_node_attributes(g, {0: 6, 1: 8, 2: 6, 3: 17}, "label")
    np.testing.assert_array_equal(label_histograms([g], (6, 8)), [[2.0, 1.0]])  # 17 is not in the vocabulary
    del g.nodes[3]["label"]
    with pytest.raises(InvalidInputError, match="no 'label'"):
        label_histograms([g], (6, 8))
