"""One train-and-evaluate run: dataset → features/kernels → models → table, JSON, plots.

This is what ``qgnn train`` and ``qgnn demo`` call; notebooks can call it too.
Every model in one run sees the same graphs and the same folds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qgnn.backends.base import Backend
from qgnn.errors import InvalidInputError, QgnnError, format_failures
from qgnn.evaluation import (
    ModelResult,
    evaluate_precomputed,
    evaluate_qek,
    format_table,
    make_folds,
    shortest_path_grams,
    weisfeiler_lehman_grams,
    write_results,
)

KERNEL_MODELS = ("qek-svm", "wl-svm", "sp-svm")
GNN_MODELS = ("gin", "qgin", "qgps")
QUANTUM_MODELS = ("qek-svm", "qgin", "qgps")
MODELS = KERNEL_MODELS + GNN_MODELS


def make_backend(name: str, **options: Any) -> Backend:
    """A backend from its command-line name.

    Names: ``subspace`` (the default: exact evolution in a truncated Rydberg
    basis, Jensen–Shannon error ≤ 1e-3 on the excitation distribution, checked
    and reported), ``emu-sv`` (exact state vector, the reference),
    ``emu-mps``, ``qutip``, ``pasqal:<DEVICE>`` (Pasqal cloud, e.g.
    ``pasqal:EMU_MPS`` or ``pasqal:FRESNEL``).
    """
    from qgnn import backends

    simple = {"emu-sv": "EmuSV", "emu-mps": "EmuMPS", "qutip": "QutipEmulator", "subspace": "Subspace"}
    if name in simple:
        return getattr(backends, simple[name])(**options)  # type: ignore[no-any-return]
    if name.startswith("pasqal:"):
        from qgnn.backends.pasqal import backend_from_spec

        return backend_from_spec(name, **options)
    raise QgnnError(f"unknown backend {name!r}: choose one of {sorted(simple)} or pasqal:<DEVICE>")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a training run (recorded in the results JSON).

    Args:
        dataset: shipped dataset name (see ``qgnn datasets``).
        models: model names, e.g. ``("qek-svm", "wl-svm")``.
        max_nodes: keep graphs with at most this many nodes (= atoms).
        folds: outer folds k.
        repeats: repetitions of the k-fold split.
        seed: seed for folds, inner CV, embedding and model initialisation.
        backend: backend name (see :func:`make_backend`).
        workers: worker processes for the quantum features (default: one per core).
        executor: ``None`` or ``"dask://host:port"``.
        shots: ``None`` for exact probabilities, else samples per graph.
        out: output folder for results JSON and plots.
        limit: evaluate at most this many graphs (stratified subsample), or all.
        gnn_epochs: maximum training epochs of the GNN models (early stopping).
        evaluation_times: fractions of the pulse at which the state is
            measured; QEK multiplies one kernel per time, GNNs get one
            feature per time.
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

    def table(self) -> str:
        """The results table as text."""
        return format_table(self.results)


def run_experiment(
    config: ExperimentConfig, *, progress: bool = True, pipeline: Any = None
) -> ExperimentReport:
    """Load the dataset, featurise, evaluate every model on the same folds, write outputs."""
    from qgnn.data import load_dataset

    unknown = [m for m in config.models if m not in MODELS]
    if unknown or not config.models:
        raise InvalidInputError(
            f"unknown model(s) {unknown or config.models}: choose from {', '.join(MODELS)}"
        )
    for name in ("folds", "repeats", "limit", "gnn_epochs"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    dataset = load_dataset(config.dataset, max_nodes=config.max_nodes)
    kernels = [m for m in config.models if m in KERNEL_MODELS]
    if kernels and dataset.task != "classification":
        raise InvalidInputError(
            f"{', '.join(kernels)} classify; {config.dataset} is a regression dataset: use gin, qgin or qgps"
        )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)  # an unwritable output folder fails now, not after the work
    if config.limit is not None:
        dataset = dataset[_stratified_subsample(dataset.y, config.limit, config.seed, dataset.task)]
    graphs = list(dataset)
    if not graphs:
        raise QgnnError(f"{config.dataset} has no graph with at most {config.max_nodes} nodes")
    failures: dict[int, str] = {}
    approximate: list[int] = []
    results_q: list[Any] = []
    feature_seconds = 0.0
    if any(m in QUANTUM_MODELS for m in config.models):
        from qgnn.features import FeaturePipeline

        if pipeline is None:
            pipeline = FeaturePipeline(
                backend=make_backend(config.backend),
                shots=config.shots,
                n_workers=config.workers,
                executor=config.executor,
                embed_seed=config.seed,
                evaluation_times=config.evaluation_times,
                progress=progress,
            )
        start = time.perf_counter()
        results_q = pipeline.run(graphs)
        feature_seconds = time.perf_counter() - start
        failures = {r.index: str(r.error) for r in results_q if not r.ok}
        approximate = [r.index for r in results_q if r.ok and not r.embedding.is_exact]
        keep = [i for i, r in enumerate(results_q) if r.ok]
        graphs = [graphs[i] for i in keep]
        results_q = [results_q[i] for i in keep]
        dataset = dataset[keep]
        if not graphs:
            raise QgnnError(f"no graph could be featurised; first failures:\n{format_failures(failures)}")
    y = np.asarray(dataset.y)
    task = dataset.task
    folds = make_folds(y, folds=config.folds, repeats=config.repeats, seed=config.seed, task=task)
    files: list[Path] = []
    model_results: list[ModelResult] = []
    for model in config.models:
        start = time.perf_counter()
        if model == "qek-svm":
            from qgnn.features import excitation_matrix

            X = excitation_matrix(results_q, t_index=None)
            result = evaluate_qek(X, y, folds, seed=config.seed, n_times=len(config.evaluation_times))
            n_times = len(config.evaluation_times)
            files.append(_kernel_plot(X, y, result, n_times, out / f"{config.dataset}-qek-kernel.png"))
        elif model in ("wl-svm", "sp-svm"):
            grams = weisfeiler_lehman_grams(graphs) if model == "wl-svm" else shortest_path_grams(graphs)
            setup = time.perf_counter() - start
            result = evaluate_precomputed(model, grams, y, folds, seed=config.seed)
            result.setup_seconds = setup
        else:
            from qgnn.nn.training import evaluate_gnn

            result, curve_png = evaluate_gnn(
                model,  # type: ignore[arg-type]  # one of GNN_MODELS here
                dataset,
                results_q if model != "gin" else None,
                folds,
                seed=config.seed,
                epochs=config.gnn_epochs,
                out=out,
                progress=progress,
            )
            files.append(curve_png)
        if model in QUANTUM_MODELS:
            result.setup_seconds += feature_seconds
        if task == "classification":
            files.append(_confusion(result, dataset.classes, out / f"{config.dataset}-{model}-confusion.png"))
        model_results.append(result)
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
        },
    )
    files.insert(0, json_path)
    return ExperimentReport(
        config, model_results, len(graphs), failures, approximate, files, feature_seconds, y.tolist()
    )


def _stratified_subsample(y: np.ndarray, limit: int, seed: int, task: str) -> np.ndarray:
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


def _kernel_plot(X: np.ndarray, y: np.ndarray, result: ModelResult, n_times: int, path: Path) -> Path:
    from qgnn.kernels import QuantumEvolutionKernel
    from qgnn.plots import kernel_heatmap

    mu = float(np.median([f.best_params["mu"] for f in result.folds]))
    K = QuantumEvolutionKernel(mu=mu, n_times=n_times).kernel_matrix(X)
    return kernel_heatmap(K, y, path, title=f"QEK, μ = {mu:g}")


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
