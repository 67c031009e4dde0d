"""``qgnn train`` and ``qgnn demo``: evaluate models on a shipped dataset."""

from __future__ import annotations

import argparse
from collections import Counter

from qgnn.evaluation import ModelResult
from qgnn.experiment import MODELS, ExperimentConfig, describe_failures, run_experiment, validate_config

DEMO = ExperimentConfig(
    dataset="PTC_FM",
    models=("qek-svm", "quantum-best", "wl-svm", "classical-best"),
    max_nodes=12,
    folds=5,
    repeats=1,
    seed=0,
    backend="subspace",
    out="results/demo",
    evaluation_times=(0.25, 0.5, 0.75, 1.0),
)
"""``qgnn demo``: plain QEK and the best quantum model (chosen inside each training fold among
every quantum kernel), next to WL and the best classical kernel, on the same folds."""


def _models(text: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {bad}: choose from {', '.join(MODELS)} (`qgnn models` describes them)"
        )
    return models


def _times(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"comma-separated fractions expected, got {text!r}") from exc


def _integer(low: int) -> type[int]:
    """An argparse type: an integer ≥ ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ {low}, got {text}")
        return value

    parse.__name__ = f"integer ≥ {low}"
    return parse  # type: ignore[return-value]


_positive = _integer(1)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``demo`` sub-commands."""
    train = subparsers.add_parser("train", help="evaluate models with repeated stratified k-fold")
    train.add_argument("--dataset", default="PTC_FM")
    train.add_argument(
        "--model",
        type=_models,
        default=("qek-svm",),
        help=f"comma-separated, from: {', '.join(MODELS)} (see `qgnn models`)",
    )
    train.add_argument("--max-nodes", type=_positive, default=16)
    train.add_argument("--folds", type=_integer(2), default=5)
    train.add_argument("--repeats", type=_positive, default=3)
    train.add_argument("--seed", type=_integer(0), default=0)
    train.add_argument(
        "--backend",
        default="subspace",
        help="subspace (default: exact within a bounded, reported truncation), subspace-coarsen "
        "(approximates graphs past the memory budget), emu-sv (exact reference), emu-mps, qutip, "
        "or pasqal:<DEVICE>",
    )
    train.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="worker processes for quantum features (default: one per core)",
    )
    train.add_argument("--executor", default=None, help="dask://host:port to use a Dask cluster")
    train.add_argument("--shots", type=_positive, default=None, help="samples per graph (default: exact)")
    train.add_argument("--limit", type=_positive, default=None, help="evaluate a stratified subsample")
    train.add_argument("--epochs", type=_positive, default=100, help="max epochs of the GNN models")
    train.add_argument(
        "--times",
        type=_times,
        default=(1.0,),
        help="evaluation times as fractions of the pulse, e.g. 0.25,0.5,0.75,1 (default 1)",
    )
    train.add_argument("--out", default="results")
    train.set_defaults(handler=_train)
    demo = subparsers.add_parser(
        "demo", help="QEK and the best quantum kernel next to WL and the best classical kernel, on PTC_FM"
    )
    demo.add_argument("--out", default=DEMO.out)
    demo.set_defaults(handler=_demo)


def _train(args: argparse.Namespace) -> int:
    config = ExperimentConfig(
        dataset=args.dataset,
        models=args.model,
        max_nodes=args.max_nodes,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        backend=args.backend,
        workers=args.workers,
        executor=args.executor,
        shots=args.shots,
        out=args.out,
        limit=args.limit,
        gnn_epochs=args.epochs,
        evaluation_times=args.times,
    )
    return _run(config)


def _demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    return _run(replace(DEMO, out=args.out))


def _run(config: ExperimentConfig) -> int:
    config = validate_config(config)  # every argument, before the header and before any work
    print(
        f"{config.dataset}, graphs with ≤ {config.max_nodes} nodes, {config.folds}-fold × {config.repeats}, "
        f"seed {config.seed}, backend {config.backend}"
    )
    report = run_experiment(config)
    print(f"\n{report.n_graphs} graphs; {describe_failures(report)}")
    print(f"quantum features: {report.feature_seconds:.1f} s\n")
    print(report.table())
    for line in _choices(report.results):
        print(line)
    print("\nwritten:")
    for path in report.files:
        print(f"  {path}")
    return 0


def _choices(results: list[ModelResult]) -> list[str]:
    """What each selection model chose and the λ each hybrid gave its quantum kernel, per fold."""
    lines = []
    for result in results:
        params = [f.best_params for f in result.folds]
        if params and all("model" in p for p in params):
            counts = Counter(p["model"] for p in params)
            lines.append(f"{result.model} chose: " + ", ".join(f"{m} × {k}" for m, k in counts.most_common()))
        if params and all("lambda" in p for p in params):
            lambdas = ", ".join(f"{p['lambda']:g}" for p in params)
            lines.append(f"{result.model}: λ of the quantum kernel per fold: {lambdas}")
    return ["", *lines] if lines else []
