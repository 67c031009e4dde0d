"""The leaderboard: every model on the same graphs and folds of five molecule datasets.

For each dataset, every model of ``qgnn models`` runs in ONE ``run_experiment``
call, so all see the same graphs (those with at most ``--max-nodes`` atoms that
every featurisation succeeded on; AIDS subsampled, stratified, to
``--aids-limit``) and the same 5-fold × 3 stratified splits (seed 0). Kernel
SVMs tune their parameters and C by inner 3-fold CV (balanced accuracy) on the
training folds; ``quantum-best`` and ``classical-best`` pick their model the
same way, inside each training fold, so their scores are results, not a
maximum over test tables.

Reported: balanced accuracy mean ± std over the 15 outer folds and each
model's time; per dataset, the paired per-fold difference quantum-best −
classical-best with a 95 % t-interval over the folds (and the Nadeau–Bengio
corrected interval, which accounts for overlapping training sets); what
quantum-best chose; the λ the hybrids gave the quantum kernel. Every figure in
the tables is computed from this run's results; the settings are read back
from the run (``report.config`` and the pipeline).

Writes ``benchmarks/results/<name>.md`` and ``<name>.json`` (``accuracy`` by
default, ``accuracy-quick`` with ``--quick``).

Run (the full table):
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/accuracy.py
A smoke run (few graphs, 3-fold × 1, minutes):
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/accuracy.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from qgnn.experiment import MODELS, ExperimentConfig, ExperimentReport, run_experiment

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("MUTAG", "PTC_FM", "PTC_FR", "PTC_MM", "AIDS")
QUANTUM_BEST, CLASSICAL_BEST = "quantum-best", "classical-best"
QUICK = {"MUTAG": (13, 40), "PTC_FM": (9, 40), "PTC_FR": (9, 40), "PTC_MM": (9, 40), "AIDS": (20, 100)}
"""--quick: (max atoms, stratified graphs) per dataset — small, yet every fold keeps both classes."""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="default: every model")
    parser.add_argument("--max-nodes", type=int, default=16, help="largest graphs (atoms) kept")
    parser.add_argument(
        "--aids-max-nodes", type=int, default=20, help="AIDS's small molecules are nearly all inactive"
    )
    parser.add_argument("--aids-limit", type=int, default=600, help="stratified AIDS subsample")
    parser.add_argument("--limit", type=int, default=None, help="stratified subsample of every dataset")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60, help="max epochs of the GNN models")
    parser.add_argument("--times", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: few small graphs (see QUICK), 3-fold × 1, 5 epochs"
    )
    parser.add_argument("--name", default=None, help="output file stem (default accuracy / accuracy-quick)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.folds, args.repeats, args.epochs = 3, 1, 5
    args.name = args.name or ("accuracy-quick" if args.quick else "accuracy")
    return args


def paired_difference(a: list[float], b: list[float], test_fraction: float) -> dict[str, float]:
    """Mean of a − b over paired folds, its 95 % t-interval, and the Nadeau–Bengio corrected interval.

    Args:
        a: per-fold scores of one model.
        b: per-fold scores of the other, same folds in the same order.
        test_fraction: n_test / n_train of one fold (1/(k−1) for k-fold), for the correction.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    mean, var = float(d.mean()), float(d.var(ddof=1)) if n > 1 else 0.0
    t = float(stats.t.ppf(0.975, n - 1)) if n > 1 else float("nan")
    half = t * np.sqrt(var / n)
    half_nb = t * np.sqrt(var * (1.0 / n + test_fraction))
    wins = int(np.sum(d > 0))
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "low_corrected": mean - half_nb,
        "high_corrected": mean + half_nb,
        "folds": n,
        "quantum_fold_wins": wins,
    }


def _fold_scores(report: ExperimentReport, model: str) -> list[float]:
    result = next(r for r in report.results if r.model == model)
    return [f.metrics["balanced_accuracy"] for f in result.folds]


def _row(report: ExperimentReport, seconds: float) -> dict[str, Any]:
    """Everything the tables show for one dataset, computed from its one run."""
    models = {
        r.model: {
            "balanced_accuracy": r.summary()["balanced_accuracy"],
            "accuracy": r.summary()["accuracy"],
            "seconds": r.seconds,
            "folds": [
                {"repeat": f.repeat, "fold": f.fold, "metrics": f.metrics, "params": f.best_params}
                for f in r.folds
            ],
        }
        for r in report.results
    }
    row: dict[str, Any] = {
        "config": dataclasses.asdict(report.config),
        "features": report.features,
        "graphs": report.n_graphs,
        "class_counts": np.bincount(np.asarray(report.targets)).tolist(),
        "failures": len(report.failures),
        "approximate_embeddings": len(report.approximate),
        "feature_seconds": report.feature_seconds,
        "seconds": seconds,
        "models": models,
    }
    if QUANTUM_BEST in models and CLASSICAL_BEST in models:
        row["quantum_minus_classical"] = paired_difference(
            _fold_scores(report, QUANTUM_BEST),
            _fold_scores(report, CLASSICAL_BEST),
            1.0 / (report.config.folds - 1),
        )
        row["quantum_best_choices"] = dict(
            Counter(f.best_params["model"] for f in _folds(report, QUANTUM_BEST))
        )
        row["classical_best_choices"] = dict(
            Counter(f.best_params["model"] for f in _folds(report, CLASSICAL_BEST))
        )
    row["hybrid_lambdas"] = {
        r.model: [f.best_params["lambda"] for f in r.folds] for r in report.results if "+" in r.model
    }
    return row


def _folds(report: ExperimentReport, model: str) -> list[Any]:
    return next(r for r in report.results if r.model == model).folds


def _cell(info: dict[str, Any] | None) -> str:
    if info is None:
        return "—"
    mean, std = info["balanced_accuracy"]
    return f"{100 * mean:.1f} ± {100 * std:.1f} ({info['seconds']:.0f} s)"


def markdown(rows: dict[str, dict[str, Any]], args: argparse.Namespace, started: str, wall: float) -> str:
    """The tables of one run (every figure computed from ``rows``)."""
    names = list(rows)
    models = [m for m in args.models if any(m in r["models"] for r in rows.values())]
    first = next(iter(rows.values()))
    feat = first["features"]
    cfg = first["config"]
    partial = "" if len(rows) == len(args.datasets) else f" — partial: {len(rows)} of {len(args.datasets)}"
    labelled = [
        (f["device"], f["node_detuning"]["detuning"])
        for r in rows.values()
        for runs in r["features"].get("featurisations", {}).values()
        for f in (runs if isinstance(runs, list) else [runs])
        if f.get("node_detuning")
    ]
    dmm_text = ", ".join(f"δ_DMM = {d:.4g} rad/µs on `{dev}`" for dev, d in sorted(set(labelled))) or "—"
    lines = [
        f"# Leaderboard ({cfg['folds']}-fold × {cfg['repeats']}, seed {cfg['seed']}; "
        f"one run, {started}{partial})",
        "",
        "Balanced accuracy (%) mean ± std over the outer folds, and each model's total time (features,",
        "kernels, tuning, every fold). Every model of a dataset ran in one `run_experiment` call: same",
        "graphs, same folds. `quantum-best` / `classical-best` pick their model by inner CV inside each",
        "training fold. (Q) quantum features enter the model, (C) classical.",
        "",
        f"Settings read back from the run: backend `{feat.get('backend')}`, device `{feat.get('device')}`, "
        f"schedule `{feat.get('schedule')}`, evaluation times {feat.get('evaluation_times')} (fractions of "
        f"the pulse), shots {feat.get('shots')}, embedding seed {feat.get('embed_seed')}; labelled models: "
        f"{dmm_text}; GNNs ≤ {cfg['gnn_epochs']} epochs. "
        f"Wall time {wall / 60:.1f} min.",
        "",
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for model in models:
        kind = "Q" if MODELS[model].quantum else "C"
        lines.append(
            f"| {model} ({kind}) | " + " | ".join(_cell(rows[n]["models"].get(model)) for n in names) + " |"
        )
    lines += [
        "",
        "| dataset | graphs (≤ atoms) | classes | quantum-best − classical-best | 95 % interval | "
        "corrected 95 % | folds quantum ahead |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        diff = row.get("quantum_minus_classical")
        cells = (
            ["—"] * 4
            if diff is None
            else [
                f"{100 * diff['mean']:+.1f}",
                f"[{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}]",
                f"[{100 * diff['low_corrected']:+.1f}, {100 * diff['high_corrected']:+.1f}]",
                f"{diff['quantum_fold_wins']} / {diff['folds']}",
            ]
        )
        lines.append(
            f"| {name} | {row['graphs']} (≤ {row['config']['max_nodes']}) | {row['class_counts']} | "
            + " | ".join(cells)
            + " |"
        )
    ahead = [
        n
        for n, r in rows.items()
        if "quantum_minus_classical" in r and r["quantum_minus_classical"]["low"] > 0
    ]
    behind = [
        n
        for n, r in rows.items()
        if "quantum_minus_classical" in r and r["quantum_minus_classical"]["high"] < 0
    ]
    lines += [
        "",
        f"Quantum-best ahead of classical-best with the 95 % interval above 0 on {len(ahead)} of "
        f"{len(rows)} dataset(s) ({', '.join(ahead) or 'none'}); below 0 on {len(behind)} "
        f"({', '.join(behind) or 'none'}).",
        "",
        "What quantum-best chose (folds per model) and the λ each hybrid gave its quantum kernel per fold:",
        "",
    ]
    for name, row in rows.items():
        choice = ", ".join(f"{m} × {k}" for m, k in sorted(row.get("quantum_best_choices", {}).items()))
        lambdas = "; ".join(
            f"{m}: {', '.join(f'{lam:g}' for lam in ls)}" for m, ls in row.get("hybrid_lambdas", {}).items()
        )
        lines.append(f"- {name}: quantum-best chose {choice or '—'}; λ {lambdas or '—'}")
    quantum_models = [m for m in models if MODELS[m].quantum and m != QUANTUM_BEST]
    if quantum_models:
        lines += [
            "",
            "Closest single quantum variant per dataset (a maximum over test tables: descriptive only):",
            "",
        ]
        for name, row in rows.items():
            present = [
                (row["models"][m]["balanced_accuracy"][0], m) for m in quantum_models if m in row["models"]
            ]
            if present:
                score, model = max(present)
                lines.append(f"- {name}: {model} {100 * score:.1f}")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _arguments()
    started = time.strftime("%Y-%m-%d %H:%M")
    begin = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    for name in args.datasets:
        start = time.perf_counter()
        max_nodes, limit = (
            QUICK.get(name, (args.max_nodes, 40))
            if args.quick
            else (args.aids_max_nodes, args.aids_limit)
            if name == "AIDS"
            else (args.max_nodes, args.limit)
        )
        config = ExperimentConfig(
            dataset=name,
            models=tuple(args.models),
            max_nodes=max_nodes,
            folds=args.folds,
            repeats=args.repeats,
            seed=0,
            workers=args.workers,
            out=str(args.out / "accuracy-runs" / args.name),
            limit=limit,
            gnn_epochs=args.epochs,
            evaluation_times=tuple(args.times),
        )
        report = run_experiment(config, progress=False)
        rows[name] = _row(report, time.perf_counter() - start)
        print(
            f"\n{name}: {report.n_graphs} graphs (≤ {config.max_nodes} atoms)\n{report.table()}", flush=True
        )
        write(rows, args, started, time.perf_counter() - begin)  # a long run keeps what it has done


def write(rows: dict[str, dict[str, Any]], args: argparse.Namespace, started: str, wall: float) -> None:
    """Write the markdown tables and the JSON of this run (only this run: nothing is merged)."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text(markdown(rows, args, started, wall))
    payload = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "started": started,
        "wall_seconds": wall,
        "complete": len(rows) == len(args.datasets),
        "datasets": rows,
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(payload, indent=2, default=str))
    print(f"wrote {args.out / f'{args.name}.md'} and .json ({len(rows)} dataset(s), {wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
