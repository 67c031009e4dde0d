"""Every MUTAG graph through the default FeaturePipeline, cold cache: time, peak memory, error estimates.

``FeaturePipeline()`` with its defaults (AnalogDevice, QEK pulse, the default
backend ``Subspace()`` with its default memory budget), a fresh cache folder,
``--workers`` worker processes of one thread. Recorded: wall time, peak RSS
(this process and the largest worker), the graphs that failed and why (e.g.
the memory guard's ``MemoryBudgetError``, which names the memory a graph
needs), and over the featurised graphs the largest truncation estimates read
back from their Measurements (``truncation_js``,
``truncation_occupation_error``, ``truncation_correlation_error``), basis
size and estimated run memory, per size band, and the graphs whose run
needed compact parents' lists (``settings["compact_lists"]``) to fit the
budget. Workers run one thread each; a graph over a worker's share of the
memory budget runs alone afterwards on every core. ``--over-budget
coarsen`` (``Subspace(over_budget="coarsen")``) approximates the graphs
past the whole budget instead of failing them
(counted per band, with their larger error estimates).

Run: ``.venv/bin/python benchmarks/mutag_full.py`` (all 188 graphs, 2
workers) writes ``benchmarks/results/mutag_full.json``; ``--quick`` (the 24
smallest graphs, about a minute) writes ``mutag_full.quick.json``.
``--estimate-only`` (a few minutes) evolves nothing: it embeds every graph
and asks the default backend for its memory estimate
(``Subspace.memory_estimate``, at the cutoff the search ends at for typical
molecules), and counts per band the graphs that fit a worker's share of the
budget at the cutoff their search plans to end at (the pipeline runs them
there), those that fit only alone (it runs them alone), and
those over the whole budget (refused, or coarsened with ``--over-budget
coarsen``); writes ``mutag_memory.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NUMBA_NUM_THREADS", str(os.cpu_count() or 1))  # a graph running alone: every core

from backend_runs import machine, plain, write_report  # noqa: E402

ESTIMATES = ("truncation_js", "truncation_occupation_error", "truncation_correlation_error")
BANDS = ((1, 14), (15, 18), (19, 22), (23, 28))


def _max(values: list[Any]) -> Any:
    numbers = [float(v) for v in values if v is not None]
    return max(numbers) if numbers else None


def estimate_only(workers: int, output: Path | None) -> None:
    """Per band: graphs whose estimated run fits a worker's share, only the whole budget, or neither."""
    from qgnn.backends import Subspace
    from qgnn.backends.subspace import default_max_memory
    from qgnn.data import load_dataset
    from qgnn.features import FeaturePipeline
    from qgnn.features.pipeline import _search_fits

    ds = load_dataset("MUTAG")
    graphs = [ds[i] for i in range(len(ds))]
    share, alone = default_max_memory(workers), default_max_memory(1)
    worker, backend = Subspace(max_memory=share), Subspace(max_memory=alone)
    prepared = FeaturePipeline(n_workers=1, progress=False, cache_dir=False).build_sequences(graphs)
    rows = []
    for index, item in enumerate(prepared):
        if item.sequence is None:
            raise SystemExit(f"graph {index}: {item.error}")
        # as the pipeline decides: in a worker when its search's planned cutoff fits a worker's share
        estimate = worker.memory_estimate(item.sequence)
        in_worker = _search_fits(worker, estimate, item.n_nodes)
        if not in_worker:
            estimate = backend.memory_estimate(item.sequence)
        fits = "worker" if in_worker else "alone" if estimate.fits else "over"
        rows.append(
            {
                "graph": index,
                "atoms": item.n_nodes,
                "bytes": estimate.bytes,
                "basis_dim": estimate.basis_dim,
                "cutoff": estimate.energy_cutoff,
                "complete": estimate.complete,
                "compact_lists": estimate.compact_lists,
                "fits": fits,
            }
        )
    bands = [
        {
            "band": f"{lo}-{hi}",
            **{
                k: sum(r["fits"] == k for r in rows if lo <= r["atoms"] <= hi)
                for k in ("worker", "alone", "over")
            },
        }
        for lo, hi in BANDS
    ]
    over = [r for r in rows if r["fits"] == "over"]
    print(f"budget {share / 2**30:.2f} GiB per worker ({workers}), {alone / 2**30:.2f} GiB alone")
    for b in bands:
        print(f"{b['band']:6s} fit a worker {b['worker']:3d}  alone {b['alone']:3d}  over {b['over']:3d}")
    for r in over:
        print(
            f"  graph {r['graph']} ({r['atoms']} atoms): {'' if r['complete'] else 'more than '}"
            f"{r['bytes'] / 2**30:.1f} GiB at cutoff {r['cutoff']:.3g}"
        )
    report = {
        "machine": machine(),
        "settings": {
            "workers": workers,
            "budget_per_worker_bytes": share,
            "budget_alone_bytes": alone,
            "backend": plain(backend.cache_key()),
        },
        "bands": bands,
        "graphs": rows,
    }
    write_report(report, "mutag_memory", quick=False, output=output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 24 smallest graphs only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--over-budget",
        choices=("raise", "coarsen"),
        default="raise",
        help="Subspace(over_budget=...): 'coarsen' approximates the graphs past the memory budget",
    )
    parser.add_argument("--estimate-only", action="store_true", help="memory estimates only, no evolution")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.estimate_only:
        estimate_only(args.workers, args.output)
        return

    from qgnn.backends import Subspace
    from qgnn.data import load_dataset
    from qgnn.features import FeaturePipeline

    ds = load_dataset("MUTAG")
    graphs = [ds[i] for i in range(len(ds))]
    if args.quick:
        graphs = sorted(graphs, key=lambda g: g.number_of_nodes())[:24]
    with tempfile.TemporaryDirectory(prefix="qgnn-mutag-cold-") as cache:
        pipe = FeaturePipeline(
            backend=Subspace(over_budget=args.over_budget), cache_dir=cache, n_workers=args.workers
        )
        start = time.perf_counter()
        results = pipe.run(graphs)
        wall = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ok = [r for r in results if r.ok]
    failed = {r.index: r.error for r in results if not r.ok}
    bands = []
    for lo, hi in BANDS:
        sel = [r for r in ok if lo <= r.n_nodes <= hi]
        all_in_band = [r for r in results if lo <= r.n_nodes <= hi]
        if not all_in_band:
            continue
        settings = [r.measurement.settings for r in sel]
        bands.append(
            {
                "band": f"{lo}-{hi}",
                "graphs": len(all_in_band),
                "failed": len(all_in_band) - len(sel),
                "coarsened": sum(bool(s.get("coarsened")) for s in settings),
                "compact_lists": sum(bool(s.get("compact_lists")) for s in settings),
                **{f"max_{k}": _max([s.get(k) for s in settings]) for k in ESTIMATES},
                "max_basis_dim": _max([s.get("basis_dim") for s in settings]),
                "max_memory_bytes": _max([s.get("memory_bytes") for s in settings]),
            }
        )
    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "graphs": len(graphs),
            "workers": args.workers,
            "over_budget": args.over_budget,
            "backend": plain(pipe.backend.cache_key()),
            "memory_budget_bytes": getattr(pipe.backend, "memory_budget", None),
        },
        "wall_s": wall,
        "peak_rss_mb": {"main": own, "largest_worker": child},
        "featurised": len(ok),
        "failed": failed,
        "compact_lists": [  # the graphs whose run needed compact parents' lists to fit the budget
            {
                "graph": r.index,
                "atoms": r.n_nodes,
                **{k: r.measurement.settings.get(k) for k in ("energy_cutoff", "basis_dim", "memory_bytes")},
                **{k: r.measurement.settings.get(k) for k in ESTIMATES},
            }
            for r in ok
            if r.measurement.settings.get("compact_lists")
        ],
        "bands": bands,
        **{f"max_{k}": _max([r.measurement.settings.get(k) for r in ok]) for k in ESTIMATES},
    }
    print(
        f"MUTAG: {len(ok)}/{len(graphs)} graphs in {wall:.1f} s with {args.workers} workers "
        f"(cold cache); peak RSS {own:.0f} MB main, {child:.0f} MB largest worker"
    )
    print(
        f"{'band':6s} {'graphs':>6s} {'failed':>6s} {'max JS':>8s} {'max Δn':>8s} {'max ΔC':>8s} "
        f"{'basis':>9s} {'coarsened':>9s} {'compact':>7s}"
    )
    for b in bands:
        print(
            f"{b['band']:6s} {b['graphs']:6d} {b['failed']:6d} "
            + " ".join(
                f"{b[f'max_{k}']:8.1e}" if b[f"max_{k}"] is not None else f"{'-':>8s}" for k in ESTIMATES
            )
            + f" {b['max_basis_dim'] or 0:9.0f} {b['coarsened']:9d} {b['compact_lists']:7d}"
        )
    for index, why in list(failed.items())[:10]:
        print(f"  graph {index}: {why}")
    write_report(report, "mutag_full", quick=args.quick, output=args.output)


if __name__ == "__main__":
    main()
