"""One train-and-evaluate run: dataset → features/kernels → models → table, JSON, plots.

This is what ``qgnn train`` and ``qgnn demo`` call; notebooks can call it too.
Every model in one run sees the same graphs and the same folds. The models
are listed in :data:`MODELS` (``qgnn models`` prints them).

Adding a model is one :class:`ModelSpec` in ``_SPECS``: a kernel SVM gives
``gram``, a function of the :class:`RunContext` returning its Gram source (a
family, or one per fold; tuned by inner CV on each training fold, and
joining ``quantum-best`` / ``classical-best`` unless ``selectable=False``);
anything else gives ``evaluate``, a function of the :class:`RunContext`
returning a :class:`~qgnn.evaluation.ModelResult` (one
:class:`~qgnn.evaluation.FoldRecord` per ``ctx.folds``). A model living
elsewhere is imported only when it runs (``_external``), as the trained-pulse
models of :mod:`qgnn.nn.qegnn` are.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from qgnn.backends.base import Backend, check_evaluation_times, check_shots
from qgnn.errors import InvalidInputError, QgnnError, format_failures
from qgnn.evaluation import (
    Candidate,
    Fold,
    GramSource,
    KernelModels,
    ModelResult,
    format_table,
    make_folds,
    write_results,
)

LABEL_DMM_DETUNING = -2 * math.pi * 2.0
"""δ_DMM (rad/µs) of the labelled-QEK models: an atom of weight 1 is detuned by 2π·2 rad/µs, twice Ω."""
LABEL_RANKS = 4
"""Labels weighted by frequency rank in ``qek-label-svm`` (k-th most frequent: (k − 1)/4; the rest 1)."""
BACKENDS = ("subspace", "emu-sv", "emu-mps", "qutip")


def make_backend(name: str, **options: Any) -> Backend:
    """A backend from its command-line name.

    Names: ``subspace`` (the default: exact evolution in a truncated Rydberg
    basis, Jensen–Shannon error ≤ 1e-3 on the excitation distribution, checked
    and reported), ``emu-sv`` (exact state vector, the reference),
    ``emu-mps``, ``qutip``, ``pasqal:<DEVICE>`` (Pasqal cloud, e.g.
    ``pasqal:EMU_MPS`` or ``pasqal:FRESNEL``).
    """
    from qgnn import backends

    _check_backend_name(name)
    simple = {"emu-sv": "EmuSV", "emu-mps": "EmuMPS", "qutip": "QutipEmulator", "subspace": "Subspace"}
    if name in simple:
        return getattr(backends, simple[name])(**options)  # type: ignore[no-any-return]
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


# --------------------------------------------------------------------------- the model registry


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


@dataclass(frozen=True)
class ModelSpec:
    """A model ``qgnn train --model`` can evaluate.

    Args:
        name: the ``--model`` name.
        summary: one line for ``qgnn models``.
        quantum: True when quantum features enter the model.
        features: featurisations run before the folds (``"plain"``: the
            pipeline; ``"chem"``: the pipeline with electronegativity DMM weights).
        gram: kernel SVMs: the Gram source for a run (tuned per fold by inner CV).
        evaluate: other models: a function of the run returning its ModelResult.
        members: models it selects among or combines (their time counts in its own).
        selectable: a kernel model ``quantum-best`` / ``classical-best`` choose among.
        needs: a check of the loaded dataset and run; returns why the model
            cannot run there, or ``None``.
        classification: True when it only classifies.
    """

    name: str
    summary: str
    quantum: bool
    features: tuple[str, ...] = ()
    gram: Callable[[RunContext], GramSource] | None = None
    evaluate: Callable[[RunContext], ModelResult] | None = None
    members: tuple[str, ...] = ()
    needs: Callable[[Any, ExperimentConfig], str | None] | None = None
    classification: bool = True
    selectable: bool = True


def _external(module: str, function: str) -> Callable[[RunContext], Any]:
    """``module.function(ctx)``, imported only when the model runs (a Gram source or a ModelResult)."""

    def run(ctx: RunContext) -> Any:
        return getattr(importlib.import_module(module), function)(ctx)

    return run


def _labelled(dataset: Any, config: ExperimentConfig) -> str | None:
    if dataset.num_node_labels is None:
        return f"{dataset.name} has no node labels"
    return None


def _elements(dataset: Any, config: ExperimentConfig) -> str | None:
    if any(e is None for g in dataset for _, e in g.nodes(data="element")):
        return f"{dataset.name}'s nodes carry no element names (the electronegativity scale needs them)"
    return None


def _several_times(dataset: Any, config: ExperimentConfig) -> str | None:
    if len(config.evaluation_times) < 2:
        return "time pooling needs at least two evaluation times, e.g. --times 0.25,0.5,0.75,1"
    return None


def _wl(ctx: RunContext) -> GramSource:
    from qgnn.kernels.families import weisfeiler_lehman_family

    return weisfeiler_lehman_family(ctx.graphs)


def _sp(ctx: RunContext) -> GramSource:
    from qgnn.kernels.families import shortest_path_family

    return shortest_path_family(ctx.graphs)


def _label_histogram(ctx: RunContext) -> GramSource:
    from qgnn.features import label_vocabulary
    from qgnn.kernels.classical import label_histograms
    from qgnn.kernels.families import rbf_family

    def source(fold: Fold) -> dict[Any, np.ndarray]:
        vocabulary = label_vocabulary(ctx.train_graphs(fold))
        return rbf_family(label_histograms(ctx.graphs, vocabulary), fold.train)

    return source


def _qek(ctx: RunContext) -> GramSource:
    from qgnn.features import excitation_matrix
    from qgnn.kernels.families import qek_family

    return qek_family(excitation_matrix(ctx.results["plain"], t_index=-1))


def _qek_pooled(ctx: RunContext) -> GramSource:
    from qgnn.features import excitation_matrix
    from qgnn.kernels.families import qek_family

    X = excitation_matrix(ctx.results["plain"], t_index=None)
    return qek_family(X, n_times=ctx.n_times, poolings=("concat", "mean"))


def _qek_chem(ctx: RunContext) -> GramSource:
    from qgnn.features import excitation_matrix
    from qgnn.kernels.families import qek_family

    return qek_family(excitation_matrix(ctx.results["chem"], t_index=-1))


def fold_label_weights(
    train_graphs: Sequence[nx.Graph], all_graphs: Sequence[nx.Graph], ranks: int = LABEL_RANKS
) -> dict[Hashable, float]:
    """DMM weights from label frequencies on the training graphs only.

    The ``ranks`` most frequent labels of the training graphs (ties broken as
    :func:`qgnn.pulses.label_frequency_weights` does) get 0, 1/ranks, …,
    (ranks − 1)/ranks; every rarer label, and any label only a test graph
    has, gets 1. So the common atoms are well apart in detuning, and folds
    whose training graphs rank their common labels alike share one
    featurisation.

    Args:
        train_graphs: the training graphs (their labels set the ranks).
        all_graphs: every graph the map must cover.
        ranks: how many labels get a weight below 1 (≥ 1).
    """
    from qgnn.features import label_vocabulary
    from qgnn.pulses import label_frequency_weights

    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise InvalidInputError(f"ranks must be a positive integer, got {ranks!r}")
    ranked = sorted(label_frequency_weights(train_graphs, attribute="label").items(), key=lambda kv: kv[1])
    weights = {value: k / ranks for k, (value, _) in enumerate(ranked[:ranks])}
    return {value: weights.get(value, 1.0) for value in label_vocabulary(all_graphs)}


def _qek_label(ctx: RunContext) -> GramSource:
    from qgnn.features import excitation_matrix
    from qgnn.kernels.families import qek_family
    from qgnn.pulses import NodeDetuning

    def source(fold: Fold) -> dict[Any, np.ndarray]:
        weights = fold_label_weights(ctx.train_graphs(fold), ctx.graphs)
        ranked = sorted((w, repr(k)) for k, w in weights.items() if w < 1.0)
        key = tuple((label, w) for w, label in ranked)  # the fold's weights: labels below 1, in rank order
        if key not in ctx.label_pipelines:  # folds with the same weights share one featurisation
            pipeline = labelled_pipeline(ctx.pipeline, NodeDetuning(weights, LABEL_DMM_DETUNING, "label"))
            ctx.settings.setdefault("label-folds", []).append(_settings(pipeline))
            start = time.perf_counter()
            results = pipeline.run(ctx.graphs)  # its time also counts in the fold (KernelModels times it)
            ctx.label_seconds += time.perf_counter() - start
            failed = {r.index: str(r.error) for r in results if not r.ok}
            if failed:
                raise QgnnError(
                    "qek-label-svm: graphs featurised without labels failed with them:\n"
                    + format_failures(failed)
                )
            ctx.label_pipelines[key] = results
        family = qek_family(excitation_matrix(ctx.label_pipelines[key], t_index=-1))
        ranks = (("label_ranks", ",".join(label for label, _ in key)),)  # recorded with each fold's choice
        return {(*ranks, *params): gram for params, gram in family.items()}

    return source


def _gdqc(ctx: RunContext) -> GramSource:
    from qgnn.features import node_observables
    from qgnn.kernels import encode_observables
    from qgnn.kernels.families import gdqc_family

    poolings = ("last", "mean") if ctx.n_times > 1 else ("last",)
    results = ctx.results["plain"]
    encoded = {
        p: encode_observables(
            [node_observables(r, g, pooling=p) for r, g in zip(results, ctx.graphs, strict=True)]  # type: ignore[arg-type]
        )
        for p in poolings
    }
    return gdqc_family(encoded)


def _label_observables(ctx: RunContext) -> GramSource:
    from qgnn.features import label_observables_matrix, label_vocabulary
    from qgnn.features.maps import TimePooling
    from qgnn.kernels.families import rbf_family

    pooling: TimePooling = "concat" if ctx.n_times > 1 else "last"

    def source(fold: Fold) -> dict[Any, np.ndarray]:
        vocabulary = label_vocabulary(ctx.train_graphs(fold))
        X = label_observables_matrix(ctx.results["plain"], ctx.graphs, vocabulary, pooling=pooling)
        return rbf_family(X, fold.train)

    return source


def _hybrid(classical: str, quantum: str) -> Callable[[RunContext], GramSource]:
    def gram(ctx: RunContext) -> GramSource:
        from qgnn.kernels.families import HYBRID_LAMBDAS

        return ctx.kernels.hybrid_source(classical, quantum, HYBRID_LAMBDAS)

    return gram


def _quantum_part(candidate: Candidate) -> bool:
    """False for a hybrid's λ = 0 grid point: the classical kernel alone is not a quantum model."""
    return dict(candidate.params).get("lambda", 1.0) != 0.0


def _best(label: str, quantum: bool) -> Callable[[RunContext], ModelResult]:
    def evaluate(ctx: RunContext) -> ModelResult:
        members = [m for m in MODELS[label].members if m in ctx.kernels]
        keep = _quantum_part if quantum else (lambda c: True)
        return ctx.kernels.evaluate_best(label, members, keep=keep)

    return evaluate


def _gnn(name: str, *, model: str | None = None, **options: Any) -> Callable[[RunContext], ModelResult]:
    """A GNN head's evaluation; ``model`` names a variant of head ``name`` run with ``options``."""

    def evaluate(ctx: RunContext) -> ModelResult:
        from qgnn.nn.training import evaluate_gnn

        result, curve_png = evaluate_gnn(
            name,  # type: ignore[arg-type]
            ctx.dataset,
            ctx.results["plain"] if name != "gin" else None,
            ctx.folds,
            seed=ctx.config.seed,
            epochs=ctx.config.gnn_epochs,
            out=ctx.out,
            progress=ctx.progress,
            name=model,
            **options,
        )
        ctx.files.append(curve_png)
        return result

    return evaluate


_SPECS: tuple[ModelSpec, ...] = (
    # classical
    ModelSpec(
        "wl-svm", "Weisfeiler–Lehman subtree kernel on node labels (depth tuned), SVM", False, gram=_wl
    ),
    ModelSpec("sp-svm", "labelled shortest-path kernel, SVM", False, gram=_sp),
    ModelSpec(
        "hist-svm",
        "node-label histogram (atoms per label; vocabulary from the training graphs), RBF SVM",
        False,
        gram=_label_histogram,
        needs=_labelled,
    ),
    ModelSpec("gin", "GIN on node labels (qgnn.nn)", False, evaluate=_gnn("gin"), classification=False),
    # quantum kernels
    ModelSpec(
        "qek-svm",
        "quantum evolution kernel on the excitation distribution at the last evaluation time, SVM",
        True,
        ("plain",),
        gram=_qek,
    ),
    ModelSpec(
        "qek-pooled-svm",
        "QEK on every evaluation time, pooled by mean or concatenation (chosen by inner CV), SVM",
        True,
        ("plain",),
        gram=_qek_pooled,
        needs=_several_times,
    ),
    ModelSpec(
        "qek-label-svm",
        "QEK with node labels as DMM local detuning on AnalogDMMDevice: the 4 most frequent labels of "
        "each training fold get weights 0, ¼, ½, ¾, the rest 1; δ_DMM = −2π·2 rad/µs, SVM",
        True,
        ("plain",),
        gram=_qek_label,
        needs=_labelled,
    ),
    ModelSpec(
        "qek-chem-svm",
        "QEK with DMM weights from the Pauling electronegativity of each atom's element "
        "(fixed scale), δ_DMM = −2π·2 rad/µs, AnalogDMMDevice, SVM",
        True,
        ("chem",),
        gram=_qek_chem,
        needs=_elements,
    ),
    ModelSpec(
        "gdqc-svm",
        "GDQC kernel: WL-style refinement of (label, binned ⟨n_i⟩) over connected correlations C_ij "
        "(arXiv:2509.09421), SVM",
        True,
        ("plain",),
        gram=_gdqc,
        needs=_labelled,
    ),
    ModelSpec(
        "label-obs-svm",
        "per-label mean and sum of ⟨n_i⟩ (vocabulary from the training graphs), RBF SVM",
        True,
        ("plain",),
        gram=_label_observables,
        needs=_labelled,
    ),
    ModelSpec(
        "wl+qek-svm",
        "K_WL + λ·K_QEK, λ ∈ {0, 0.1, 0.3, 1, 3} tuned by inner CV (recorded per fold), SVM",
        True,
        ("plain",),
        gram=_hybrid("wl-svm", "qek-svm"),
        members=("wl-svm", "qek-svm"),
    ),
    ModelSpec(
        "wl+gdqc-svm",
        "K_WL + λ·K_GDQC, λ tuned by inner CV (recorded per fold), SVM",
        True,
        ("plain",),
        gram=_hybrid("wl-svm", "gdqc-svm"),
        members=("wl-svm", "gdqc-svm"),
        needs=_labelled,
    ),
    # GNN heads with quantum features
    ModelSpec(
        "qgin",
        "GIN with quantum node features and correlation encodings (qgnn.nn)",
        True,
        ("plain",),
        evaluate=_gnn("qgin"),
        classification=False,
    ),
    ModelSpec(
        "qgps",
        "GPS-style model with quantum positional encodings (qgnn.nn)",
        True,
        ("plain",),
        evaluate=_gnn("qgps"),
        classification=False,
    ),
    ModelSpec(
        "qgin-labels",
        "qgin with per-label mean and sum of ⟨n_i⟩ as graph-level inputs (vocabulary from each "
        "training fold)",
        True,
        ("plain",),
        evaluate=_gnn("qgin", model="qgin-labels", label_observables=True),
        classification=False,
        needs=_labelled,
    ),
    ModelSpec(
        "qgin-pooled",
        "qgin with its quantum features mean-pooled over the evaluation times",
        True,
        ("plain",),
        evaluate=_gnn("qgin", model="qgin-pooled", pooling="mean"),
        classification=False,
        needs=_several_times,
    ),
    # trained pulses (qgnn.nn.rydberg): the pulse is chosen inside each training fold
    ModelSpec(
        "qek-trained",
        "QEK with the pulse (5 segments of Ω, δ over 660 ns) and DMM label weights trained on each "
        "training fold by kernel-target alignment (AnalogDMMDevice), SVM",
        True,
        ("plain",),
        gram=_external("qgnn.nn.qegnn", "qek_trained_gram"),
        selectable=False,  # quantum-best would retrain it for every inner split
    ),
    ModelSpec(
        "qegnn",
        "trainable RydbergEvolution layer into a GIN head, trained end to end (qgnn.nn)",
        True,
        ("plain",),
        evaluate=_external("qgnn.nn.qegnn", "evaluate_qegnn"),
        classification=False,
    ),
    ModelSpec(
        "qegnn-fixed",
        "the qegnn head on the untrained initial pulse (qgnn.nn): the baseline of qegnn",
        True,
        ("plain",),
        evaluate=_external("qgnn.nn.qegnn", "evaluate_qegnn_fixed"),
        classification=False,
    ),
)
_KERNELS = [s for s in _SPECS if s.gram is not None and s.selectable]
_SELECTIONS = (
    ModelSpec(
        "classical-best",
        "picks wl-svm, sp-svm or hist-svm (and its parameters) by inner CV on each training fold",
        False,
        evaluate=_best("classical-best", quantum=False),
        members=tuple(s.name for s in _KERNELS if not s.quantum),
    ),
    ModelSpec(
        "quantum-best",
        "picks among every quantum kernel model above that can run (hybrids only with λ > 0; pooled "
        "QEK only with ≥ 2 evaluation times) by inner CV on each training fold",
        True,
        evaluate=_best("quantum-best", quantum=True),
        members=tuple(s.name for s in _KERNELS if s.quantum),
    ),
)
MODELS: dict[str, ModelSpec] = {s.name: s for s in (*_SPECS, *_SELECTIONS)}
"""Every model ``qgnn train --model`` accepts, by name."""
QUANTUM_MODELS: tuple[str, ...] = tuple(n for n, s in MODELS.items() if s.quantum)


def _closure(names: Sequence[str]) -> list[str]:
    """The models and, recursively, their members, in first-seen order."""
    out: list[str] = []
    stack = list(names)
    while stack:
        name = stack.pop(0)
        if name not in out:
            out.append(name)
            stack.extend(MODELS[name].members)
    return out


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
    _check_models_on(dataset, config)
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


def _runs_on(name: str, dataset: Any, config: ExperimentConfig) -> bool:
    needs = MODELS[name].needs
    return needs is None or needs(dataset, config) is None


def _check_models_on(dataset: Any, config: ExperimentConfig) -> None:
    """Models that cannot run on this dataset (regression, no labels, one time) fail before any feature."""
    for name in config.models:
        spec = MODELS[name]
        if spec.classification and dataset.task != "classification":
            raise InvalidInputError(
                f"{name} classifies; {config.dataset} is a regression dataset: use gin, qgin or qgps"
            )
        reason = spec.needs(dataset, config) if spec.needs is not None else None
        if reason is not None:
            raise InvalidInputError(f"{name} cannot run here: {reason}")


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


def labelled_pipeline(base: Any, node_detuning: Any) -> Any:
    """``base`` with node labels as DMM local detuning: same backend, times, shots, seed and cache.

    The schedule gains ``node_detuning``; ``AnalogDevice`` becomes
    :data:`qgnn.pulses.AnalogDMMDevice` (same C6, so the same registers), a
    device with a DMM is kept, any other is a typed error.
    """
    from qgnn.pulses import DMM_DEVICE_NAMES, AnalogDMMDevice, has_dmm

    device = base.device
    if not has_dmm(device):
        if device.name != "AnalogDevice":
            raise InvalidInputError(
                f"node labels need a device with a DMM; {device.name} has none: use one of {DMM_DEVICE_NAMES}"
            )
        device = AnalogDMMDevice
    schedule = dataclasses.replace(base.schedule, node_detuning=node_detuning)
    return base.replace(device=device, schedule=schedule)


def _featurise(name: str, pipeline: Any, graphs: list[nx.Graph]) -> tuple[list[Any], float, dict[str, Any]]:
    """Run one featurisation over the graphs; returns results, seconds and its settings."""
    if name == "chem":
        from qgnn.pulses import NodeDetuning

        pipeline = labelled_pipeline(pipeline, NodeDetuning.electronegativity(LABEL_DMM_DETUNING))
    start = time.perf_counter()
    results = pipeline.run(graphs)
    return results, time.perf_counter() - start, _settings(pipeline)


def _settings(pipeline: Any) -> dict[str, Any]:
    """What produced a featurisation, read back from its pipeline."""
    node_detuning = getattr(pipeline.schedule, "node_detuning", None)
    return {
        "backend": pipeline.backend.name,
        "backend_cache_key": pipeline.backend.cache_key(),
        "device": pipeline.device.name,
        "schedule": repr(pipeline.schedule),
        "node_detuning": None if node_detuning is None else node_detuning.cache_key(),
        "evaluation_times": list(pipeline.evaluation_times),
        "shots": pipeline.shots,
        "embed_seed": pipeline.embed_seed,
    }


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
        dataset = dataset[_stratified_subsample(dataset.y, config.limit, config.seed, dataset.task)]
    graphs = list(dataset)
    if not graphs:
        raise QgnnError(f"{config.dataset} has no graph with at most {config.max_nodes} nodes")
    needed = [m for m in _closure(config.models) if _runs_on(m, dataset, config)]
    featurisations = [f for f in ("plain", "chem") if any(f in MODELS[m].features for m in needed)]
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
        used = {f for m in _closure([name]) if m in needed for f in MODELS[m].features}
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
