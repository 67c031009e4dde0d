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
