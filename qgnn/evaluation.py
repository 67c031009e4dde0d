"""Honest model evaluation: repeated stratified k-fold with inner tuning.

Every model sees the same folds for the same seed. Hyperparameters are tuned
by inner cross-validation on the training folds only; the test fold is used
once, for the reported metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, mean_absolute_error
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.svm import SVC

from qgnn.errors import QgnnError
from qgnn.kernels import QuantumEvolutionKernel

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
REGRESSION_METRICS = ("mae", "rmse")
SVM_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
QEK_MU_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
WL_ITERATIONS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Fold:
    """One outer fold: indices into the evaluated graph list."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def make_folds(
    y: Sequence[Any] | np.ndarray,
    *,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    task: str = "classification",
) -> list[Fold]:
    """Repeated (stratified, for classification) k-fold splits; same seed ⇒ same folds.

    Args:
        y: targets, one per graph.
        folds: number of folds k (≥ 2).
        repeats: number of shuffled repetitions (≥ 1).
        seed: random seed of the shuffles.
        task: ``"classification"`` (stratified) or ``"regression"``.
    """
    y_arr = np.asarray(y)
    if folds < 2 or repeats < 1:
        raise QgnnError(f"need folds ≥ 2 and repeats ≥ 1, got folds={folds}, repeats={repeats}")
    if task == "classification":
        _, counts = np.unique(y_arr, return_counts=True)
        if len(counts) < 2:
            raise QgnnError("classification needs at least two classes among the selected graphs")
        if counts.min() < folds:
            raise QgnnError(
                f"the smallest class has {counts.min()} graphs, fewer than folds={folds}: "
                "use fewer folds or more graphs (raise --max-nodes)"
            )
        splitter: Any = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    else:
        if len(y_arr) < folds:
            raise QgnnError(f"{len(y_arr)} graphs cannot be split into {folds} folds")
        splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return [
        Fold(i // folds, i % folds, train, test)
        for i, (train, test) in enumerate(splitter.split(np.zeros(len(y_arr)), y_arr))
    ]


def inner_cv(y: np.ndarray, *, seed: int, task: str, folds: int = 3) -> Any:
    """The inner cross-validation splitter used for tuning on a training fold."""
    if task == "classification":
        folds = max(2, min(folds, int(np.unique(y, return_counts=True)[1].min())))
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def score(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> dict[str, float]:
    """Fold metrics: accuracy/balanced accuracy/macro-F1, or MAE/RMSE."""
    if task == "classification":
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
        }
    err = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return {"mae": float(mean_absolute_error(y_true, y_pred)), "rmse": float(np.sqrt(np.mean(err**2)))}


@dataclass
class FoldRecord:
    """Outcome of one model on one outer fold."""

    repeat: int
    fold: int
    metrics: dict[str, float]
    best_params: dict[str, Any]
    seconds: float
    y_true: list[Any]
    y_pred: list[Any]


@dataclass
class ModelResult:
    """All folds of one model, with mean ± std summaries."""

    model: str
    task: str
    folds: list[FoldRecord] = field(default_factory=list)
    setup_seconds: float = 0.0

    def summary(self) -> dict[str, tuple[float, float]]:
        """Metric → (mean, std) over all outer folds."""
        names = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        return {
            name: (
                float(np.mean([f.metrics[name] for f in self.folds])),
                float(np.std([f.metrics[name] for f in self.folds])),
            )
            for name in names
        }

    @property
    def seconds(self) -> float:
        """Total time: setup (features, kernels) plus every fold."""
        return self.setup_seconds + sum(f.seconds for f in self.folds)


def _tune_precomputed(
    grams: dict[Any, np.ndarray], y: np.ndarray, fold: Fold, *, seed: int
) -> tuple[np.ndarray, tuple[Any, float]]:
    """Pick (kernel parameter, C) by inner CV on the training fold; predict the test fold."""
    y_train = y[fold.train]
    best: tuple[float, Any, GridSearchCV] | None = None
    for param, gram in grams.items():
        search = GridSearchCV(
            SVC(kernel="precomputed"),
            {"C": list(SVM_C_GRID)},
            cv=inner_cv(y_train, seed=seed, task="classification"),
            scoring="accuracy",
        )
        search.fit(gram[np.ix_(fold.train, fold.train)], y_train)
        if best is None or search.best_score_ > best[0]:
            best = (float(search.best_score_), param, search)
    assert best is not None
    _, param, search = best
    y_pred = search.predict(grams[param][np.ix_(fold.test, fold.train)])
    return y_pred, (param, search.best_params_["C"])


def _grakel_graphs(graphs: Sequence[nx.Graph]) -> list[Any]:
    from grakel.utils import graph_from_networkx

    labelled = []
    for g in graphs:
        h = nx.Graph(g)
        for _, data in h.nodes(data=True):
            data.setdefault("label", 0)
        for _, _, data in h.edges(data=True):
            data.setdefault("label", 0)
        labelled.append(h)
    return list(graph_from_networkx(labelled, node_labels_tag="label", edge_labels_tag="label"))


def weisfeiler_lehman_grams(graphs: Sequence[nx.Graph]) -> dict[int, np.ndarray]:
    """Normalised WL-subtree Gram matrices on node labels, one per iteration count h."""
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    return {
        h: WeisfeilerLehman(n_iter=h, normalize=True, base_graph_kernel=VertexHistogram).fit_transform(
            _grakel_graphs(graphs)
        )
        for h in WL_ITERATIONS
    }


def shortest_path_grams(graphs: Sequence[nx.Graph]) -> dict[str, np.ndarray]:
    """Normalised labelled shortest-path Gram matrix (no kernel parameter to tune)."""
    from grakel.kernels import ShortestPath

    return {"sp": ShortestPath(normalize=True, with_labels=True).fit_transform(_grakel_graphs(graphs))}


def evaluate_precomputed(
    name: str,
    grams: dict[Any, np.ndarray],
    y: np.ndarray,
    folds: Sequence[Fold],
    *,
    seed: int,
    param_name: str = "kernel_param",
) -> ModelResult:
    """Evaluate an SVM on a family of precomputed Gram matrices over the outer folds."""
    result = ModelResult(name, "classification")
    for fold in folds:
        start = time.perf_counter()
        y_pred, (param, c) = _tune_precomputed(grams, y, fold, seed=seed)
        result.folds.append(
            FoldRecord(
                fold.repeat,
                fold.fold,
                score(y[fold.test], y_pred, "classification"),
                {param_name: param, "C": c},
                time.perf_counter() - start,
                y[fold.test].tolist(),
                y_pred.tolist(),
            )
        )
    return result


def evaluate_qek(
    X: np.ndarray, y: np.ndarray, folds: Sequence[Fold], *, seed: int, n_times: int = 1
) -> ModelResult:
    """QEK-SVM: μ and C tuned by inner CV on each training fold; scored on its test fold.

    The Jensen–Shannon matrix does not depend on μ, so it is computed once and
    every K = exp(−μ·JS) of the grid is a precomputed Gram matrix (the same
    kernel :class:`QuantumEvolutionKernel` computes, without recomputing JS
    for each grid point and inner fold).

    Args:
        X: excitation distributions, shape ``(n_graphs, n_times · L)``.
        y: class indices.
        folds: the outer folds.
        seed: seed of the inner splits.
        n_times: evaluation times side by side in each row of ``X``.
    """
    divergence = QuantumEvolutionKernel(n_times=n_times).divergence_matrix(X)
    grams = {mu: np.exp(-mu * divergence) for mu in QEK_MU_GRID}
    return evaluate_precomputed("qek-svm", grams, y, folds, seed=seed, param_name="mu")


def format_table(results: Sequence[ModelResult]) -> str:
    """A plain-text table: one row per model, mean ± std of each metric, and time."""
    if not results:
        return "(no results)"
    names = CLASSIFICATION_METRICS if results[0].task == "classification" else REGRESSION_METRICS
    header = ["model", *names, "time (s)"]
    rows = [header]
    for r in results:
        summ = r.summary()
        cells = [f"{summ[n][0]:.3f} ± {summ[n][1]:.3f}" for n in names]
        rows.append([r.model, *cells, f"{r.seconds:.1f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(
    path: Path, config: dict[str, Any], results: Sequence[ModelResult], extra: dict[str, Any]
) -> Path:
    """Write a results JSON: configuration, per-fold records, summaries, extras."""
    payload = {
        "config": config,
        "models": {
            r.model: {"summary": r.summary(), "seconds": r.seconds, "folds": [asdict(f) for f in r.folds]}
            for r in results
        },
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
    tmp.replace(path)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
