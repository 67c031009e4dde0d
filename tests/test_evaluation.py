"""Fold machinery and the results table."""

from __future__ import annotations

import numpy as np
import pytest

from qgnn.errors import QgnnError
from qgnn.evaluation import FoldRecord, ModelResult, format_table, make_folds, score


def test_same_seed_same_folds_and_stratified_partition() -> None:
    y = np.array([0] * 30 + [1] * 12)
    a = make_folds(y, folds=3, repeats=2, seed=7)
    b = make_folds(y, folds=3, repeats=2, seed=7)
    c = make_folds(y, folds=3, repeats=2, seed=8)
    assert len(a) == 6
    assert all(np.array_equal(f.test, g.test) for f, g in zip(a, b, strict=True))
    assert not all(np.array_equal(f.test, g.test) for f, g in zip(a, c, strict=True))
    for repeat in range(2):
        tests = np.concatenate([f.test for f in a if f.repeat == repeat])
        assert sorted(tests.tolist()) == list(range(len(y)))  # each graph tested once per repeat
    for f in a:
        assert not set(f.train) & set(f.test)
        assert abs(np.mean(y[f.test]) - np.mean(y)) < 0.1  # stratified


def test_folds_reject_impossible_splits() -> None:
    with pytest.raises(QgnnError, match="smallest class"):
        make_folds([0, 0, 0, 0, 1], folds=2)
    with pytest.raises(QgnnError, match="two classes"):
        make_folds([1, 1, 1, 1], folds=2)
    with pytest.raises(QgnnError, match="folds"):
        make_folds([0, 1], folds=1)


def test_regression_folds_and_scores() -> None:
    folds = make_folds(np.linspace(0, 1, 10), folds=5, repeats=1, seed=0, task="regression")
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(10))
    m = score(np.array([1.0, 2.0]), np.array([1.0, 4.0]), "regression")
    assert m["mae"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(np.sqrt(2.0))


def test_classification_scores_and_table() -> None:
    m = score(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), "classification")
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    result = ModelResult(
        "toy", "classification", [FoldRecord(0, 0, m, {}, 1.0, [], []), FoldRecord(0, 1, m, {}, 1.0, [], [])]
    )
    assert result.summary()["accuracy"] == (pytest.approx(0.75), pytest.approx(0.0))
    table = format_table([result])
    assert "toy" in table and "0.750 ± 0.000" in table


def _label_kernel(y: np.ndarray, flip: float, seed: int) -> np.ndarray:
    """A PSD kernel that sees the class of each graph, with a fraction ``flip`` of them wrong."""
    rng = np.random.default_rng(seed)
    seen = np.where(rng.random(len(y)) < flip, 1 - y, y)
    onehot = np.eye(2)[seen]
    return onehot @ onehot.T + 0.1 * np.eye(len(y))


def test_inner_scores_are_gridsearchcv_balanced_accuracy() -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    from qgnn.evaluation import SVM_C_GRID, inner_cv, inner_scores

    y = np.array([0] * 14 + [1] * 7)
    K = _label_kernel(y, 0.3, 0)
    splits = list(inner_cv(y, seed=0, task="classification").split(np.zeros(len(y)), y))
    search = GridSearchCV(
        SVC(kernel="precomputed"), {"C": list(SVM_C_GRID)}, cv=splits, scoring="balanced_accuracy"
    )
    search.fit(K, y)
    np.testing.assert_allclose(inner_scores(K, y, splits), search.cv_results_["mean_test_score"], atol=1e-12)


def test_selection_among_models_never_looks_at_the_test_fold() -> None:
    """A 'model' perfect on test rows but noise on the training block must lose the inner-CV selection."""
    from qgnn.evaluation import KernelModels

    y = np.array([0, 1] * 20)
    folds = make_folds(y, folds=4, repeats=1, seed=1)
    honest = {(("flip", 0.15),): _label_kernel(y, 0.15, 1)}
    noise = np.random.default_rng(2).normal(size=(len(y), 5))

    def peek(fold):  # perfect on test × train, random on train × train
        K = noise @ noise.T
        onehot = np.eye(2)[y]
        block = onehot @ onehot.T
        K[np.ix_(fold.test, fold.train)] = block[np.ix_(fold.test, fold.train)]
        return {(("peek", True),): K + np.eye(len(y))}

    models = KernelModels(y, folds, seed=0)
    models.add("honest", honest)
    models.add("peek", peek)
    assert models.evaluate("peek").summary()["accuracy"][0] == pytest.approx(1.0)  # it would win on test
    best = models.evaluate_best("best", ["honest", "peek"])
    assert [f.best_params["model"] for f in best.folds] == ["honest"] * 4
    for record, own in zip(best.folds, models.evaluate("honest").folds, strict=True):
        assert record.y_pred == own.y_pred
        assert record.best_params["inner_score"] >= models.candidates("peek", record.fold)[0].score
    assert best.seconds >= sum(f.seconds for f in models.evaluate("honest").folds)


def test_hybrid_records_lambda_per_fold_and_quantum_best_can_refuse_lambda_zero() -> None:
    from qgnn.evaluation import KernelModels

    y = np.array([0, 1] * 15)
    folds = make_folds(y, folds=3, repeats=1, seed=0)
    classical = {(("h", 1),): _label_kernel(y, 0.0, 3)}  # already perfect: any λ > 0 only adds noise
    rng = np.random.default_rng(4)
    noise = rng.normal(size=(len(y), 3))
    quantum = {(("mu", 1.0),): noise @ noise.T}
    models = KernelModels(y, folds, seed=0)
    models.add("c", classical)
    models.add("q", quantum)
    models.add("c+q", models.hybrid_source("c", "q", (0.0, 0.5, 2.0)), members=("c", "q"))
    hybrid = models.evaluate("c+q")
    lambdas = [f.best_params["lambda"] for f in hybrid.folds]
    assert lambdas == [0.0, 0.0, 0.0]  # ties go to the first grid point: the quantum part earned nothing
    assert all(f.best_params["h"] == 1 and f.best_params["mu"] == 1.0 for f in hybrid.folds)
    family = models.family("c+q", 0)
    np.testing.assert_allclose(
        family[(("h", 1), ("mu", 1.0), ("lambda", 2.0))],
        classical[(("h", 1),)] + 2.0 * quantum[(("mu", 1.0),)],
    )
    strict = models.evaluate_best("q-best", ["c+q"], keep=lambda c: dict(c.params)["lambda"] != 0.0)
    assert all(f.best_params["lambda"] > 0 for f in strict.folds)
    with pytest.raises(QgnnError, match="no candidate"):
        models.evaluate_best("none", ["c+q"], keep=lambda c: False)
