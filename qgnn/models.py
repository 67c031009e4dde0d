"""The models ``qgnn train --model`` accepts: what each is, and how it is evaluated.

:data:`MODELS` lists them (``qgnn models`` prints it); :func:`qgnn.experiment.run_experiment`
runs them on shared graphs and folds, giving each the run as a
:class:`~qgnn.experiment.RunContext`.

Adding a model is one :class:`ModelSpec` in ``_SPECS``: a kernel SVM gives
``gram``, a function of the :class:`~qgnn.experiment.RunContext` returning
its Gram source (a family, or one per fold; tuned by inner CV on each
training fold, and joining ``quantum-best`` / ``classical-best`` unless
``selectable=False``); anything else gives ``evaluate``, a function of the
run returning a :class:`~qgnn.evaluation.ModelResult` (one
:class:`~qgnn.evaluation.FoldRecord` per ``ctx.folds``). A model living
elsewhere is imported only when it runs (``_external``), as the trained-pulse
models of :mod:`qgnn.nn.alignment` and :mod:`qgnn.nn.qegnn` are. A model's ``features`` name the
featurisations (:data:`FEATURISATIONS`) the run computes before the folds.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from qgnn.errors import InvalidInputError, QgnnError, format_failures
from qgnn.evaluation import Candidate, Fold, GramSource, ModelResult, with_members

if TYPE_CHECKING:  # the protocol imports this registry; the registry only names its types
    from qgnn.experiment import ExperimentConfig, RunContext

    Needs = Callable[[Any, ExperimentConfig], str | None]
    """Why a model cannot run on a loaded dataset with a configuration, or ``None``."""

LABEL_DMM_DETUNING = -2 * math.pi * 2.0
"""δ_DMM (rad/µs) of the labelled-QEK models: an atom of weight 1 is detuned by 2π·2 rad/µs, twice Ω."""
LABEL_RANKS = 4
"""Labels weighted by frequency rank in ``qek-label-svm`` (k-th most frequent: (k − 1)/4; the rest 1)."""
FEATURISATIONS = ("plain", "chem")
"""What ``ModelSpec.features`` may name, in the order a run computes them (:func:`featurisation_pipeline`)."""


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
    needs: Needs | None = None
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
            ctx.settings.setdefault("label-folds", []).append(pipeline_settings(pipeline))
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


def _hybrid(
    classical: str,
    quantum: str,
    summary: str,
    needs: Needs | None = None,
) -> ModelSpec:
    """K_classical + λ·K_quantum of two kernel models, named like ``wl-svm``, ``qek-svm`` → ``wl+qek-svm``."""

    def gram(ctx: RunContext) -> GramSource:
        from qgnn.kernels.families import HYBRID_LAMBDAS

        return ctx.kernels.hybrid_source(classical, quantum, HYBRID_LAMBDAS)

    name = f"{classical.removesuffix('-svm')}+{quantum}"
    return ModelSpec(name, summary, True, ("plain",), gram=gram, members=(classical, quantum), needs=needs)


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


def _quantum_gnn(
    name: str, summary: str, evaluate: Callable[[RunContext], ModelResult], needs: Needs | None = None
) -> ModelSpec:
    """A GNN on the ``plain`` quantum features; it classifies or regresses."""
    return ModelSpec(name, summary, True, ("plain",), evaluate=evaluate, needs=needs, classification=False)


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
    _hybrid(
        "wl-svm",
        "qek-svm",
        "K_WL + λ·K_QEK, λ ∈ {0, 0.1, 0.3, 1, 3} tuned by inner CV (recorded per fold), SVM",
    ),
    _hybrid(
        "wl-svm", "gdqc-svm", "K_WL + λ·K_GDQC, λ tuned by inner CV (recorded per fold), SVM", needs=_labelled
    ),
    # GNN heads with quantum features
    _quantum_gnn("qgin", "GIN with quantum node features and correlation encodings (qgnn.nn)", _gnn("qgin")),
    _quantum_gnn("qgps", "GPS-style model with quantum positional encodings (qgnn.nn)", _gnn("qgps")),
    _quantum_gnn(
        "qgin-labels",
        "qgin with per-label mean and sum of ⟨n_i⟩ as graph-level inputs (vocabulary from each "
        "training fold)",
        _gnn("qgin", model="qgin-labels", label_observables=True),
        needs=_labelled,
    ),
    _quantum_gnn(
        "qgin-pooled",
        "qgin with its quantum features mean-pooled over the evaluation times",
        _gnn("qgin", model="qgin-pooled", pooling="mean"),
        needs=_several_times,
    ),
    # trained pulses (qgnn.nn.rydberg): the pulse is chosen inside each training fold
    ModelSpec(
        "qek-trained",
        "QEK with the pulse (5 segments of Ω, δ over 660 ns) and DMM label weights trained on each "
        "training fold by kernel-target alignment (AnalogDMMDevice), SVM",
        True,
        ("plain",),
        gram=_external("qgnn.nn.alignment", "qek_trained_gram"),
        selectable=False,  # quantum-best would retrain it for every inner split
    ),
    _quantum_gnn(
        "qegnn",
        "trainable RydbergEvolution layer into a GIN head, trained end to end (qgnn.nn)",
        _external("qgnn.nn.qegnn", "evaluate_qegnn"),
    ),
    _quantum_gnn(
        "qegnn-fixed",
        "the qegnn head on the untrained initial pulse (qgnn.nn): the baseline of qegnn",
        _external("qgnn.nn.qegnn", "evaluate_qegnn_fixed"),
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
_MEMBERS = {n: s.members for n, s in MODELS.items()}


def closure(names: Sequence[str]) -> list[str]:
    """The models and, recursively, their members, in first-seen order."""
    return with_members(names, _MEMBERS)


def runs_on(name: str, dataset: Any, config: ExperimentConfig) -> bool:
    """True when model ``name`` can run on the loaded ``dataset`` with this configuration (its ``needs``)."""
    needs = MODELS[name].needs
    return needs is None or needs(dataset, config) is None


def check_models_on(dataset: Any, config: ExperimentConfig) -> None:
    """Models that cannot run on this dataset (regression, no labels, one time) fail before any feature.

    Raises:
        InvalidInputError: a model of ``config.models`` that cannot run on
            ``dataset``, saying why.
    """
    for name in config.models:
        spec = MODELS[name]
        if spec.classification and dataset.task != "classification":
            raise InvalidInputError(
                f"{name} classifies; {config.dataset} is a regression dataset: use gin, qgin or qgps"
            )
        reason = spec.needs(dataset, config) if spec.needs is not None else None
        if reason is not None:
            raise InvalidInputError(f"{name} cannot run here: {reason}")


# --------------------------------------------------------------------------- featurisations


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


def featurisation_pipeline(name: str, pipeline: Any) -> Any:
    """The pipeline of featurisation ``name`` (one of :data:`FEATURISATIONS`), from the run's ``pipeline``.

    ``"plain"`` is the run's pipeline itself; ``"chem"`` adds DMM weights from
    each atom's Pauling electronegativity, δ_DMM = :data:`LABEL_DMM_DETUNING` (rad/µs).
    """
    if name not in FEATURISATIONS:
        raise InvalidInputError(f"unknown featurisation {name!r}: choose one of {FEATURISATIONS}")
    if name == "chem":
        from qgnn.pulses import NodeDetuning

        return labelled_pipeline(pipeline, NodeDetuning.electronegativity(LABEL_DMM_DETUNING))
    return pipeline


def pipeline_settings(pipeline: Any) -> dict[str, Any]:
    """What produced a featurisation, read back from its pipeline (recorded in the results JSON)."""
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
