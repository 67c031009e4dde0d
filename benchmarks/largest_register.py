"""The largest register whose QEK features come back within a time limit on one core, at the default bound.

Grows the register size from ``--start`` one atom at a time until a size
fails; nothing caps it. Per size: ``--graphs`` MUTAG molecules of that size
(embedded by the pipeline on AnalogDevice; the largest MUTAG graph has 28
atoms), and beyond MUTAG's sizes (or where it has none) molecule-like random
layouts (:func:`backend_runs.molecule_layout`). Each register runs with the
pipeline's default backend, ``Subspace()``, on the QEK pulse, in its own
process with one thread (:mod:`backend_runs`; imports are not timed) and a
memory budget of ``--memory-gb``. A size passes when every register of it
returns within ``--limit-s`` seconds (``--clock wall``, default, or ``cpu``
on a machine shared with other work) with the truncation estimates read back
from the Measurement within the default tolerances (``truncation_js`` ≤ 1e-3,
``truncation_occupation_error`` and ``truncation_correlation_error`` ≤ 1e-3);
the first size that does not pass ends the run, and why (time, memory budget,
error estimate) is recorded.

Run: ``.venv/bin/python benchmarks/largest_register.py`` (limit 60 s, from 16
atoms; 10–20 minutes) writes ``benchmarks/results/largest_register.json``;
``--quick`` (limit 2 s, from 10 atoms; about a minute) writes
``largest_register.quick.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from backend_runs import RESULTS, dataset_cases, machine, plain, run_isolated, synthetic_case

FULL = {"limit_s": 60.0, "start": 16}
QUICK = {"limit_s": 2.0, "start": 10}
#: The default tolerances every passing register must meet (read back from its settings).
BOUNDS = {"truncation_js": 1e-3, "truncation_occupation_error": 1e-3, "truncation_correlation_error": 1e-3}


def verdict(row: dict[str, Any], limit_s: float, clock: str) -> str | None:
    """Why a run does not pass, or ``None``."""
    if row["status"] != "ok":
        return row.get("error", row["status"])
    seconds = row["seconds" if clock == "wall" else "cpu_seconds"]
    if seconds > limit_s:
        return f"took {seconds:.1f} s ({clock}) > {limit_s:g} s"
    for key, bound in BOUNDS.items():
        value = row["settings"].get(key)
        if value is None or float(value) > bound:
            return f"{key} = {value} > {bound:g}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s limit from 10 atoms")
    parser.add_argument("--limit-s", type=float)
    parser.add_argument("--start", type=int, help="first register size")
    parser.add_argument("--graphs", type=int, default=1, help="registers per size")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="Subspace max_memory of each run")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="which time the limit applies to (cpu on a busy machine)",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    preset = QUICK if args.quick else FULL
    limit_s = args.limit_s or preset["limit_s"]
    n = args.start or int(preset["start"])
    budget = int(args.memory_gb * 2**30)
    mutag = {}
    for case in dataset_cases("MUTAG", "qek", sizes=None, per_size=args.graphs):
        mutag.setdefault(case.n_atoms, []).append(case)
    rows: list[dict[str, Any]] = []
    largest, stop = None, None
    while stop is None:
        cases = mutag.get(n) or [synthetic_case(n, seed, "qek") for seed in range(args.graphs)]
        for case in cases:
            timeout = limit_s if args.clock == "wall" else 5 * limit_s
            row = run_isolated("subspace", case, timeout, max_memory=budget)
            row["verdict"] = verdict(row, limit_s, args.clock)
            rows.append(row)
            s = row.get("settings", {})
            print(
                f"{n:3d} atoms ({case.source} {case.index}): {row['status']:7s} "
                f"{row.get('seconds', float('nan')):7.2f} s, "
                f"CPU {row.get('cpu_seconds', float('nan')):7.2f} s, "
                f"{row.get('peak_rss_mb', float('nan')):6.0f} MB, basis {s.get('basis_dim')}, "
                f"cutoff {s.get('energy_cutoff')}, JS {s.get('truncation_js')}, "
                f"Δn {s.get('truncation_occupation_error')}"
                + (f" — {row['verdict']}" if row["verdict"] else ""),
                flush=True,
            )
            if row["verdict"]:
                stop = f"{n} atoms: {row['verdict']}"
                break
        else:
            largest = n
            n += 1
    print(
        f"largest register within {limit_s:g} s at the default error bound: {largest} atoms "
        f"(stopped at {stop})"
    )
    report = {
        "machine": machine(),
        "settings": {
            "limit_s": limit_s,
            "clock": args.clock,
            "graphs_per_size": args.graphs,
            "memory_gb": args.memory_gb,
        },
        "bounds": BOUNDS,
        "largest_atoms": largest,
        "stopped_at": stop,
        "rows": rows,
    }
    output = args.output or RESULTS / (
        "largest_register.quick.json" if args.quick else "largest_register.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(plain(report), indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
