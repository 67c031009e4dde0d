"""One train-and-evaluate run: dataset → features/kernels → models → table, JSON, plots.

This is what ``qgnn train`` and ``qgnn demo`` call; notebooks can call it too.
Every model in one run sees the same graphs and the same folds, handed to it
as a :class:`RunContext`. The models live in :mod:`qgnn.models` (:data:`MODELS`;
``qgnn models`` prints them); their names are re-exported here.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from qgnn.backends.base import Backend, check_evaluation_times, check_shots
from qgnn.errors import InvalidInputError, QgnnError, format_failures
from qgnn.evaluation import Fold, KernelModels, ModelResult, format_table, make_folds, write_results
from qgnn.models import (
    FEATURISATIONS,
    LABEL_DMM_DETUNING,
    LABEL_RANKS,
    MODELS,
    QUANTUM_MODELS,
    ModelSpec,
    check_models_on,
    closure,
    featurisation_pipeline,
    fold_label_weights,
    labelled_pipeline,
    pipeline_settings,
    runs_on,
)

__all__ = [
    "BACKENDS",
    "LABEL_DMM_DETUNING",
    "LABEL_RANKS",
    "MODELS",
    "QUANTUM_MODELS",
    "ExperimentConfig",
    "ExperimentReport",
    "ModelSpec",
    "RunContext",
    "describe_failures",
    "fold_label_weights",
    "labelled_pipeline",
    "make_backend",
    "run_experiment",
    "stratified_subsample",
    "validate_config",
]

BACKENDS = ("subspace", "subspace-coarsen", "emu-sv", "emu-mps", "qutip")


def make_backend(name: str, **options: Any) -> Backend:
    """A backend from its command-line name.

    Names: ``subspace`` (the default: exact evolution in a truncated Rydberg
    basis, Jensen–Shannon error ≤ 1e-3 on the excitation distribution, checked
    and reported), ``subspace-coarsen`` (the same, but a graph past the
    memory budget is approximated at the largest cutoff that fits, its larger
    error estimate reported, instead of failing: ``Subspace(over_budget="coarsen")``),
    ``emu-sv`` (exact state vector, the reference),
    ``emu-mps``, ``qutip``, ``pasqal:<DEVICE>`` (Pasqal cloud, e.g.
    ``pasqal:EMU_MPS`` or ``pasqal:FRESNEL``).
    """
    from qgnn import backends

    _check_backend_name(name)
    simple = {"emu-sv": "EmuSV", "emu-mps": "EmuMPS", "qutip": "QutipEmulator", "subspace": "Subspace"}
    if name in simple:
        return getattr(backends, simple[name])(**options)  # type: ignore[no-any-return]
    if name == "subspace-coarsen":
        return backends.Subspace(over_budget="coarsen", **options)
    from qgnn.backends.pasqal import backend_from_spec

    return backend_from_spec(name, **options)


def _check_backend_name(name: object) -> None:
    if not isinstance(name, str) or not (name in BACKENDS or (name.startswith("pasqal:") and len(name) > 7)):
        raise InvalidInputError(
            f"unknown backend {name!r}: choose one of {sorted(BACKENDS)} or pasqal:<DEVICE>"
        )


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a training run (recorded in the results JSON).

    Args:
        dataset: shipped dataset name (see ``qgnn datasets``) or a TU-format folder.
        models: model names (see :data:`MODELS`), e.g. ``("qek-svm", "wl-svm")``.
        max_nodes: keep graphs with at most this many nodes (= atoms).
        folds: outer folds k (≥ 2).
        repeats: repetitions of the k-fold split (≥ 1).
        seed: seed for folds, inner CV, embedding and model initialisation.
        backend: backend name (see :func:`make_backend`).
        workers: worker processes for the quantum features (default: one per core).
        executor: ``None`` or ``"dask://host:port"``.
        shots: ``None`` for exact probabilities, else samples per graph.
        out: output folder for results JSON and plots.
        limit: evaluate at most this many graphs (stratified subsample), or all.
        gnn_epochs: maximum training epochs of the GNN models (early stopping).
        evaluation_times: fractions of the pulse at which the state is
            measured. ``qek-svm`` uses the last; the pooled models
            (``qek-pooled-svm``, and the time pooling of ``gdqc-svm`` and
            ``label-obs-svm``) use all; GNNs get one feature per time.

    With a pipeline passed to :func:`run_experiment`, ``backend``,
    ``evaluation_times``, ``shots``, ``workers`` and ``executor`` are read from
    it (the results record what produced the features).
    """

    dataset: str = "PTC_FM"
    models: tuple[str, ...] = ("qek-svm",)
    max_nodes: int | None = 16
    folds: int = 5
    repeats: int = 3
    seed: int = 0
    backend: str = "subspace"
    workers: int | None = None
    executor: str | None = None
    shots: int | None = None
    out: str = "results"
    limit: int | None = None
    gnn_epochs: int = 100
    evaluation_times: tuple[float, ...] = (1.0,)


# --------------------------------------------------------------------------- what a model sees


@dataclass
class RunContext:
    """What a model is evaluated on: the graphs every model shares, their folds, their features.

    Args:
        config: the effective configuration (backend and times read back from the pipeline).
        dataset: the evaluated graphs as a :class:`~qgnn.data.GraphDataset`.
        graphs: the same graphs as networkx graphs (fold indices point into both).
        y: targets.
        folds: the outer folds.
        out: output folder.
        progress: show progress bars.
        pipeline: the feature pipeline (``None`` when no model is quantum).
        results: featurisation name (``"plain"``, ``"chem"``) → results aligned with ``graphs``.
        kernels: the kernel SVMs, tuned on the shared folds.
        label_pipelines: per-fold labelled featurisations, keyed by their weight map.
        settings: what each featurisation ran with, read back from its pipeline.
        label_seconds: time spent on the per-fold labelled featurisations.
        files: files a model wrote (plots), listed in the report.
    """

    config: ExperimentConfig
    dataset: Any
    graphs: list[nx.Graph]
    y: np.ndarray
    folds: list[Fold]
    out: Path
    progress: bool
    pipeline: Any
    results: dict[str, list[Any]]
    kernels: KernelModels
    label_pipelines: dict[tuple[tuple[str, float], ...], list[Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    label_seconds: float = 0.0
    files: list[Path] = field(default_factory=list)

    @property
    def n_times(self) -> int:
        """Evaluation times of the features."""
        return len(self.config.evaluation_times)

    def train_graphs(self, fold: Fold) -> list[nx.Graph]:
        """The training graphs of an outer fold."""
        return [self.graphs[i] for i in fold.train]


# --------------------------------------------------------------------------- validation


def _positive_int(name: str, value: object, low: int = 1, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InvalidInputError(
            f"{name} must be an integer ≥ {low}{' or None' if optional else ''}, got {value!r}"
        )


def validate_config(config: ExperimentConfig, pipeline: Any = None) -> ExperimentConfig:
    """Check every argument before any work; return the effective configuration.

    Reads the dataset (cheap: no feature is computed) to check that every
    model can run on it. With a ``pipeline``, its backend, evaluation times,
    shots, workers and executor replace the config's: the features and every
    record of them come from one source.

    Raises:
        InvalidInputError: a bad argument or a model that cannot run on the
            dataset (the message says which and how to fix it).
        DatasetError: an unknown or unreadable dataset.
    """
    return _prepare(config, pipeline)[0]


def _prepare(config: ExperimentConfig, pipeline: Any) -> tuple[ExperimentConfig, Any]:
    """The effective configuration and the dataset, every argument checked."""
    from qgnn.data import load_dataset

    config = _checked_arguments(config, pipeline)
    dataset = load_dataset(config.dataset, max_nodes=config.max_nodes)
    check_models_on(dataset, config)
    return config, dataset


def _checked_arguments(config: ExperimentConfig, pipeline: Any) -> ExperimentConfig:
    if not isinstance(config, ExperimentConfig):
        raise InvalidInputError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    models = config.models
    if isinstance(models, str) or not isinstance(models, Sequence) or not models:
        raise InvalidInputError(f"models must be a non-empty tuple of names from: {', '.join(MODELS)}")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise InvalidInputError(f"unknown model(s) {unknown}: choose from {', '.join(MODELS)}")
    repeated = [m for m, n in Counter(models).items() if n > 1]
    if repeated:
        raise InvalidInputError(f"model(s) listed twice: {repeated}")
    _positive_int("folds", config.folds, 2)
    _positive_int("repeats", config.repeats)
    _positive_int("seed", config.seed, 0)
    _positive_int("max_nodes", config.max_nodes, optional=True)
    _positive_int("limit", config.limit, optional=True)
    _positive_int("gnn_epochs", config.gnn_epochs)
    _positive_int("workers", config.workers, optional=True)
    if not isinstance(config.out, str | Path) or not str(config.out):
        raise InvalidInputError(f"out must be a folder path, got {config.out!r}")
    _check_dataset_name(config.dataset)
    if pipeline is None:
        _check_backend_name(config.backend)
        if config.executor is not None and not str(config.executor).startswith("dask://"):
            raise InvalidInputError(f"executor must be None or 'dask://host:port', got {config.executor!r}")
        return dataclasses.replace(
            config,
            models=tuple(models),
            evaluation_times=check_evaluation_times(config.evaluation_times),
            shots=check_shots(config.shots),
        )
    from qgnn.features import FeaturePipeline

    if not isinstance(pipeline, FeaturePipeline):
        raise InvalidInputError(f"pipeline must be a qgnn FeaturePipeline, got {type(pipeline).__name__}")
    return dataclasses.replace(
        config,
        models=tuple(models),
        backend=pipeline.backend.name,
        evaluation_times=tuple(pipeline.evaluation_times),
        shots=pipeline.shots,
        workers=pipeline.n_workers,
        executor=pipeline.executor,
    )


def _check_dataset_name(name: object) -> None:
    from qgnn.data.registry import canonical_name

    if isinstance(name, str | Path) and Path(name).is_dir():
        return  # a TU-format folder: its files are checked when loaded
    canonical_name(name)


# --------------------------------------------------------------------------- the run


@dataclass
class ExperimentReport:
    """Results of :func:`run_experiment`."""

    config: ExperimentConfig
    results: list[ModelResult]
    n_graphs: int
    failures: dict[int, str] = field(default_factory=dict)
    approximate: list[int] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    feature_seconds: float = 0.0
    targets: list[Any] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """The results table as text."""
        return format_table(self.results)


def _featurise(name: str, pipeline: Any, graphs: list[nx.Graph]) -> tuple[list[Any], float, dict[str, Any]]:
    """Run one featurisation over the graphs; returns results, seconds and its settings."""
    pipeline = featurisation_pipeline(name, pipeline)
    start = time.perf_counter()
    results = pipeline.run(graphs)
    return results, time.perf_counter() - start, pipeline_settings(pipeline)


def run_experiment(
    config: ExperimentConfig, *, progress: bool = True, pipeline: Any = None
) -> ExperimentReport:
    """Load the dataset, featurise, evaluate every model on the same folds, write outputs.

    Args:
        config: the run (see :class:`ExperimentConfig`); validated before any work.
        progress: show progress bars.
        pipeline: a :class:`~qgnn.features.FeaturePipeline` to use instead of
            one built from the config; its backend, times and shots are then
            the run's (recorded in the results).
    """
    config, dataset = _prepare(config, pipeline)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable output folder fails now, not after the work
    if config.limit is not None:
        dataset = dataset[stratified_subsample(dataset.y, config.limit, config.seed, dataset.task)]
    graphs = list(dataset)
    if not graphs:
        raise QgnnError(f"{config.dataset} has no graph with at most {config.max_nodes} nodes")
    needed = [m for m in closure(config.models) if runs_on(m, dataset, config)]
    featurisations = [f for f in FEATURISATIONS if any(f in MODELS[m].features for m in needed)]
    if featurisations and pipeline is None:
        from qgnn.features import FeaturePipeline

        pipeline = FeaturePipeline(
            backend=make_backend(config.backend),
            shots=config.shots,
            n_workers=config.workers,
            executor=config.executor,
            embed_seed=config.seed,
            evaluation_times=config.evaluation_times,
            progress=progress,
        )
    results: dict[str, list[Any]] = {}
    seconds: dict[str, float] = {}
    settings: dict[str, Any] = {}
    failures: dict[int, str] = {}
    for name in featurisations:
        results[name], seconds[name], settings[name] = _featurise(name, pipeline, graphs)
        for r in results[name]:
            if not r.ok:
                failures.setdefault(r.index, str(r.error))
    approximate = sorted(
        {r.index for rs in results.values() for r in rs if r.ok and not r.embedding.is_exact}
    )
    if failures:
        keep = [i for i, g in enumerate(graphs) if all(rs[i].ok for rs in results.values())]
        graphs = [graphs[i] for i in keep]
        results = {name: [rs[i] for i in keep] for name, rs in results.items()}
        dataset = dataset[keep]
        if not graphs:
            raise QgnnError(f"no graph could be featurised; first failures:\n{format_failures(failures)}")
    y = np.asarray(dataset.y)
    folds = make_folds(y, folds=config.folds, repeats=config.repeats, seed=config.seed, task=dataset.task)
    kernels = KernelModels(y, folds, seed=config.seed)
    ctx = RunContext(config, dataset, graphs, y, folds, out, progress, pipeline, results, kernels)
    ctx.settings.update(settings)
    for name in needed:
        spec = MODELS[name]
        if spec.gram is not None:
            kernels.add(name, spec.gram(ctx), members=spec.members)
    files: list[Path] = []
    model_results: list[ModelResult] = []
    for name in config.models:
        spec = MODELS[name]
        result = spec.evaluate(ctx) if spec.evaluate is not None else kernels.evaluate(name)
        used = {f for m in closure([name]) if m in needed for f in MODELS[m].features}
        result.setup_seconds += sum(seconds[f] for f in used)
        if dataset.task == "classification":
            files.append(_confusion(result, dataset.classes, out / f"{config.dataset}-{name}-confusion.png"))
        model_results.append(result)
    files.extend(ctx.files)
    if "qek-svm" in config.models:
        qek = model_results[config.models.index("qek-svm")]
        files.append(_kernel_plot(ctx, qek, out / f"{config.dataset}-qek-kernel.png"))
    features = {**ctx.settings.get("plain", {}), "featurisations": ctx.settings}
    feature_seconds = sum(seconds.values()) + ctx.label_seconds
    json_path = write_results(
        out / f"{config.dataset}-results.json",
        asdict(config),
        model_results,
        {
            "n_graphs": len(graphs),
            "graph_indices": [int(g.graph["index"]) for g in graphs],
            "failures": {str(k): v for k, v in failures.items()},
            "approximate_embeddings": approximate,
            "feature_seconds": feature_seconds,
            "features": features,
        },
    )
    files.insert(0, json_path)
    return ExperimentReport(
        config,
        model_results,
        len(graphs),
        failures,
        approximate,
        files,
        feature_seconds,
        y.tolist(),
        features,
    )


def stratified_subsample(y: np.ndarray, limit: int, seed: int, task: str = "classification") -> np.ndarray:
    """Sorted indices of the ``limit`` graphs ``run_experiment(limit=...)`` evaluates.

    Args:
        y: targets of the dataset's graphs.
        limit: graphs to keep (all when ``limit ≥ len(y)``).
        seed: the split's random seed (``ExperimentConfig.seed``).
        task: ``"classification"`` (stratified by class) or ``"regression"``.

    Raises:
        InvalidInputError: a stratified subsample of that size cannot keep every class.
    """
    if limit >= len(y):
        return np.arange(len(y))
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if min(limit, len(y) - limit) < len(counts) or counts.min() < 2:
            raise InvalidInputError(
                f"limit={limit} cannot keep every class in a stratified subsample (class sizes "
                f"{counts.tolist()}, {len(y)} graphs): choose another limit, or none"
            )
    from sklearn.model_selection import train_test_split

    stratify = y if task == "classification" else None
    keep, _ = train_test_split(np.arange(len(y)), train_size=limit, random_state=seed, stratify=stratify)
    return np.sort(keep)


def _kernel_plot(ctx: RunContext, result: ModelResult, path: Path) -> Path:
    """Heatmap of the QEK Gram matrix at the μ chosen most often over the folds."""
    from qgnn.plots import kernel_heatmap

    mu = Counter(f.best_params["mu"] for f in result.folds).most_common(1)[0][0]
    K = ctx.kernels.family("qek-svm", 0)[(("mu", mu),)]
    return kernel_heatmap(K, ctx.y, path, title=f"QEK, μ = {mu:g}")


def _confusion(result: ModelResult, classes: Sequence[Any], path: Path) -> Path:
    from qgnn.plots import confusion_plot

    y_true = [v for f in result.folds for v in f.y_true]
    y_pred = [v for f in result.folds for v in f.y_pred]
    return confusion_plot(
        y_true, y_pred, [str(c) for c in classes], path, title=f"{result.model} (all folds)"
    )


def describe_failures(report: ExperimentReport) -> str:
    """Human-readable note on graphs embedded approximately or left out."""
    lines = []
    if report.approximate:
        lines.append(
            f"{len(report.approximate)} graph(s) embedded approximately (blockade graph differs "
            f"from the graph; see the results JSON): {report.approximate[:20]}"
        )
    if report.failures:
        lines.append(f"{len(report.failures)} graph(s) could not be featurised; left out of every model:")
        lines.append(format_failures(report.failures))
    return "\n".join(lines) or "every selected graph was embedded exactly and featurised"
