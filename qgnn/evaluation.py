"""Honest model evaluation: repeated stratified k-fold with inner tuning.

Every model sees the same folds for the same seed. Hyperparameters — and,
for a selection among models, the model itself — are tuned by inner
cross-validation (balanced accuracy) on the training folds only; the test
fold is used once, for the reported metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import config_context
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, mean_absolute_error
from sklearn.model_selection import (
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.svm import SVC

from qgnn.errors import QgnnError

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
REGRESSION_METRICS = ("mae", "rmse")
SVM_C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


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


Params = tuple[tuple[str, Any], ...]
"""Hyperparameters of one Gram matrix of a family, as sorted-free (name, value) pairs."""
GramFamily = Mapping[Params, np.ndarray]
"""A model's Gram matrices over its hyperparameter grid, each over every evaluated graph."""
GramSource = GramFamily | Callable[[Fold], GramFamily]
"""A fixed family, or one built for an outer fold (features fitted on its training graphs)."""


@dataclass(frozen=True)
class Candidate:
    """One grid point of one model, tuned on a training fold.

    Args:
        model: the model name.
        params: the Gram matrix's hyperparameters.
        C: the SVM C with the best inner-CV score for these params.
        score: that score (mean inner-CV balanced accuracy).
    """

    model: str
    params: Params
    C: float
    score: float


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (sklearn's ``balanced_accuracy_score``)."""
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def inner_scores(
    gram: np.ndarray, y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Mean inner-CV balanced accuracy of ``SVC(kernel="precomputed", C)`` for each C of ``SVM_C_GRID``.

    Args:
        gram: Gram matrix over the training graphs, shape ``(n, n)``.
        y: their classes.
        splits: inner (train, validation) index pairs into ``gram``.
    """
    scores = np.zeros(len(SVM_C_GRID))
    with config_context(assume_finite=True, skip_parameter_validation=True):  # thousands of tiny fits
        for train, val in splits:
            block, cross = gram[np.ix_(train, train)], gram[np.ix_(val, train)]
            for k, c in enumerate(SVM_C_GRID):
                pred = SVC(kernel="precomputed", C=c).fit(block, y[train]).predict(cross)
                scores[k] += _balanced_accuracy(y[val], pred)
    return scores / len(splits)


def select(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate with the best inner score; ties go to the first (grids list simpler models first)."""
    if not candidates:
        raise QgnnError("no candidate model to select from")
    best = candidates[0]
    for cand in candidates[1:]:
        if cand.score > best.score + 1e-12:
            best = cand
    return best


def with_members(names: Sequence[str], members: Mapping[str, Sequence[str]]) -> list[str]:
    """``names`` and, recursively, their ``members``, in first-seen order.

    Args:
        names: model names.
        members: model → the models it selects among or combines (its time
            includes theirs); a name missing here has none.
    """
    out: list[str] = []
    stack = list(names)
    while stack:
        name = stack.pop(0)
        if name not in out:
            out.append(name)
            stack.extend(members.get(name, ()))
    return out


class KernelModels:
    """Kernel SVMs on shared outer folds: inner-CV tuning, selection among models, hybrids.

    Every model registers a :data:`GramSource`. On each outer fold, each grid
    point's C is tuned by inner CV on the training graphs (balanced
    accuracy, the same inner splits for every model), the best grid point
    is refitted on the whole training fold and scored once on the test
    fold. Inner-CV results are memoised, so a selection among models
    (:meth:`evaluate_best`) or a hybrid re-uses them.

    Args:
        y: class indices of the evaluated graphs.
        folds: the outer folds.
        seed: seed of the inner splits.
    """

    def __init__(self, y: np.ndarray, folds: Sequence[Fold], *, seed: int) -> None:
        self.y = np.asarray(y)
        self.folds = list(folds)
        self.seed = seed
        self._sources: dict[str, GramSource] = {}
        self._members: dict[str, tuple[str, ...]] = {}
        self._setup: dict[str, float] = {}
        self._cost: dict[tuple[str, int], float] = {}
        self._candidates: dict[tuple[str, int], list[Candidate]] = {}
        self._families: dict[str, tuple[int, GramFamily]] = {}
        self._splits: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}

    def add(
        self, name: str, source: GramSource, *, members: Sequence[str] = (), setup_seconds: float = 0.0
    ) -> None:
        """Register a model's Gram source; ``members`` are models its time includes (hybrids)."""
        self._sources[name] = source
        self._members[name] = tuple(members)
        self._setup[name] = setup_seconds

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    def family(self, name: str, i: int) -> GramFamily:
        """The Gram family of ``name`` for outer fold ``i`` (fixed families are built once)."""
        source = self._sources[name]
        cached = self._families.get(name)
        if cached is not None and (cached[0] == i or not callable(source)):
            return cached[1]
        start = time.perf_counter()
        family = source(self.folds[i]) if callable(source) else source
        if not family:
            raise QgnnError(f"{name} has an empty Gram family")
        spent = time.perf_counter() - start
        if callable(source):
            self._cost[(name, i)] = self._cost.get((name, i), 0.0) + spent
        else:
            self._setup[name] += spent
        self._families[name] = (i, family)
        return family

    def _inner_splits(self, i: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if i not in self._splits:
            y_train = self.y[self.folds[i].train]
            cv = inner_cv(y_train, seed=self.seed, task="classification")
            self._splits[i] = list(cv.split(np.zeros(len(y_train)), y_train))
        return self._splits[i]

    def candidates(self, name: str, i: int) -> list[Candidate]:
        """Every grid point of ``name`` with its tuned C and inner score on outer fold ``i``."""
        key = (name, i)
        if key not in self._candidates:
            family = self.family(name, i)
            start = time.perf_counter()
            train = self.folds[i].train
            out = []
            for params, gram in family.items():
                scores = inner_scores(gram[np.ix_(train, train)], self.y[train], self._inner_splits(i))
                k = int(np.argmax(scores))
                out.append(Candidate(name, params, SVM_C_GRID[k], float(scores[k])))
            self._candidates[key] = out
            self._cost[key] = self._cost.get(key, 0.0) + time.perf_counter() - start
        return self._candidates[key]

    def _record(self, chosen: Candidate, i: int, seconds: float, extra: dict[str, Any]) -> FoldRecord:
        fold = self.folds[i]
        gram = self.family(chosen.model, i)[chosen.params]
        start = time.perf_counter()
        model = SVC(kernel="precomputed", C=chosen.C).fit(
            gram[np.ix_(fold.train, fold.train)], self.y[fold.train]
        )
        y_pred = model.predict(gram[np.ix_(fold.test, fold.train)])
        return FoldRecord(
            fold.repeat,
            fold.fold,
            score(self.y[fold.test], y_pred, "classification"),
            {**extra, **dict(chosen.params), "C": chosen.C, "inner_score": chosen.score},
            seconds + time.perf_counter() - start,
            self.y[fold.test].tolist(),
            y_pred.tolist(),
        )

    def _evaluate(
        self, label: str, names: Sequence[str], keep: Callable[[Candidate], bool], record_model: bool
    ) -> ModelResult:
        result = ModelResult(label, "classification")
        timed = with_members(names, self._members)
        for i in range(len(self.folds)):
            pool = [c for name in names for c in self.candidates(name, i) if keep(c)]
            if not pool:
                raise QgnnError(f"{label}: no candidate left on fold {i} (every grid point excluded)")
            chosen = select(pool)
            seconds = sum(self._cost.get((name, i), 0.0) for name in timed)
            extra = {"model": chosen.model} if record_model else {}
            result.folds.append(self._record(chosen, i, seconds, extra))
        result.setup_seconds = sum(self._setup[name] for name in timed)
        return result

    def evaluate(self, name: str) -> ModelResult:
        """Tune ``name`` on each training fold, score it on each test fold."""
        return self._evaluate(name, [name], lambda c: True, record_model=False)

    def evaluate_best(
        self, label: str, names: Sequence[str], *, keep: Callable[[Candidate], bool] = lambda c: True
    ) -> ModelResult:
        """Pick, on each training fold, the best grid point of any of ``names`` by inner CV.

        The honest "best of several models": the choice never sees the test
        fold. Each fold records the chosen model and its parameters; its time
        is that of every model it chose among. ``keep`` drops candidates (e.g.
        hybrids with λ = 0, which are not quantum).
        """
        return self._evaluate(label, names, keep, record_model=True)

    def hybrid_source(
        self, classical: str, quantum: str, lambdas: Sequence[float]
    ) -> Callable[[Fold], GramFamily]:
        """Gram source of K = K_classical + λ·K_quantum on each fold.

        The classical and quantum parameters are those each model picks by
        inner CV on the fold's training graphs; λ (0 allowed: the classical
        model alone) and C are then tuned by the same inner CV.
        """

        def source(fold: Fold) -> GramFamily:
            i = next(k for k, f in enumerate(self.folds) if f is fold)
            c_best = select(self.candidates(classical, i))
            q_best = select(self.candidates(quantum, i))
            k_c = self.family(classical, i)[c_best.params]
            k_q = self.family(quantum, i)[q_best.params]
            clash = {n for n, _ in c_best.params} & {n for n, _ in q_best.params}
            if clash:
                raise QgnnError(f"{classical} and {quantum} share parameter names {sorted(clash)}")
            return {
                (*c_best.params, *q_best.params, ("lambda", float(lam))): k_c + lam * k_q for lam in lambdas
            }

        return source


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
