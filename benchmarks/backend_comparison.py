"""Which backend to pick: Subspace, emu-sv and emu-mps on the same registers, per size band, in one run.

For each schedule (``qek``: the QEK pulse, ConstantDrive; ``sweep``:
AdiabaticSweep, time-dependent; ``trained``: a trained piecewise-constant
pulse with node labels as DMM detuning, :func:`backend_runs.make_schedule`)
and each size band, ``--graphs`` MUTAG molecules of the band (the largest
first), embedded by the pipeline on the schedule's device (AnalogDevice;
AnalogDMMDevice for ``trained``), run by every backend of ``--backends`` in
its own process (one thread; :mod:`backend_runs`). Per row: wall and CPU seconds of the run
(imports excluded), peak RSS of the process, and the errors against the
reference of that register — emu-sv where it ran, else
``Subspace(tolerance=1e-6, occupation_tolerance=1e-5)`` (a tighter
truncation): JS divergence (natural log) of P(k excitations), max |Δ⟨n_i⟩|,
max |ΔC_ij| (connected correlations). A backend that gave no result within
``--limit-s`` on a band is not run on the larger bands of that schedule
(rows ``"skipped"``). The table gives per band and backend
the mean and max time, the max peak RSS, the max errors, failures, and the
time ratio emu-sv / Subspace measured in this run. Settings are read back
from each backend and Measurement.

Run: ``.venv/bin/python benchmarks/backend_comparison.py`` (full: bands
10–12 … 21–22, 2 graphs each, every schedule; hours on an idle
2-core machine, emu-sv dominating at 21–22 atoms) writes
``benchmarks/results/backend_comparison.json``; ``--quick`` (about a minute)
writes ``backend_comparison.quick.json``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from backend_runs import BACKENDS, SCHEDULES, dataset_cases, errors, machine, run_isolated, write_report

FULL = {"bands": ["10-12", "13-15", "16-18", "19-20", "21-22"], "graphs": 2, "schedules": list(SCHEDULES)}
QUICK = {"bands": ["10-11"], "graphs": 1, "schedules": ["qek"]}


def _band(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


#: Seconds a run's process is given for its imports on top of the run's own limit.
IMPORT_ALLOWANCE_S = 30.0


def compare(
    schedule: str,
    band: tuple[int, int],
    graphs: int,
    backends: list[str],
    limit_s: float,
    timed_out: set[str],
) -> list[dict[str, Any]]:
    """Every backend on the band's registers, with errors against the register's reference.

    ``timed_out``: backends that already gave no result within ``limit_s`` on a
    smaller band of this schedule; they are not run again (rows with status
    ``"skipped"``), and backends timing out here are added to it.
    """
    cases = dataset_cases("MUTAG", schedule, sizes=set(range(band[0], band[1] + 1)))
    cases = sorted(cases, key=lambda c: -c.n_atoms)[:graphs]
    rows = []
    for case in cases:
        runs = {}
        for spec in backends:
            if spec in timed_out:
                runs[spec] = {
                    "backend": spec,
                    "source": case.source,
                    "index": case.index,
                    "n_atoms": case.n_atoms,
                    "status": "skipped",
                    "error": f"no result within {limit_s:g} s on a smaller band",
                }
                continue
            runs[spec] = run_isolated(spec, case, limit_s, import_allowance_s=IMPORT_ALLOWANCE_S)
            if runs[spec]["status"] == "timeout":
                timed_out.add(spec)
        ref = runs.get("emu-sv")
        if ref is None or ref["status"] != "ok":
            ref = run_isolated("subspace-tight", case, limit_s, import_allowance_s=IMPORT_ALLOWANCE_S)
        for spec, row in runs.items():
            row.update(schedule=schedule, band=f"{band[0]}-{band[1]}", reference=ref["backend"])
            if row["status"] == "ok" and ref["status"] == "ok":
                row.update(errors(row, ref))
            rows.append(row)
            print(
                f"  {schedule:7s} {case.n_atoms:2d} atoms graph {case.index:3d} {spec:8s} {row['status']:7s} "
                f"{row.get('seconds', float('nan')):8.2f} s {row.get('peak_rss_mb', float('nan')):7.0f} MB "
                f"JS {row.get('js', float('nan')):.1e} Δn {row.get('occupation_error', float('nan')):.1e}",
                flush=True,
            )
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per schedule, band and backend: time, memory, errors, failures; and emu-sv / Subspace time."""
    table = []
    keys = sorted(
        {(r["schedule"], r["band"], r["backend"]) for r in rows}, key=lambda k: (k[0], _band(k[1]), k[2])
    )
    for schedule, band, backend in keys:
        sel = [r for r in rows if (r["schedule"], r["band"], r["backend"]) == (schedule, band, backend)]
        ok = [r for r in sel if r["status"] == "ok"]
        entry: dict[str, Any] = {
            "schedule": schedule,
            "band": band,
            "backend": backend,
            "graphs": len(sel),
            "failed": len(sel) - len(ok),
            "skipped": sum(r["status"] == "skipped" for r in sel),
        }
        if ok:
            entry.update(
                mean_s=statistics.mean(r["seconds"] for r in ok),
                max_s=max(r["seconds"] for r in ok),
                max_peak_rss_mb=max(r["peak_rss_mb"] for r in ok),
                max_js=max((r["js"] for r in ok if "js" in r), default=None),
                max_occupation_error=max((r["occupation_error"] for r in ok if "js" in r), default=None),
                max_correlation_error=max((r["correlation_error"] for r in ok if "js" in r), default=None),
            )
        table.append(entry)
    for entry in table:
        if entry["backend"] != "subspace" or "mean_s" not in entry:
            continue
        for other in table:
            same = (other["schedule"], other["band"]) == (entry["schedule"], entry["band"])
            if same and other["backend"] != "subspace" and "mean_s" in other:
                entry[f"speedup_vs_{other['backend']}"] = other["mean_s"] / entry["mean_s"]
    return table


def print_table(table: list[dict[str, Any]]) -> None:
    head = f"{'schedule':8s} {'band':6s} {'backend':9s} {'n':>2s} {'fail':>4s} {'mean s':>8s} {'max s':>8s}"
    print(head + f" {'RSS MB':>7s} {'max JS':>8s} {'max Δn':>8s} {'max ΔC':>8s} {'×emu-sv':>8s}")

    def fmt(value: Any, spec: str) -> str:
        return (
            format(value, spec) if isinstance(value, int | float) else format("-", ">" + spec.split(".")[0])
        )

    for e in table:
        print(
            f"{e['schedule']:8s} {e['band']:6s} {e['backend']:9s} {e['graphs']:2d} {e['failed']:4d} "
            f"{fmt(e.get('mean_s'), '8.2f')} {fmt(e.get('max_s'), '8.2f')} "
            f"{fmt(e.get('max_peak_rss_mb'), '7.0f')} "
            f"{fmt(e.get('max_js'), '8.1e')} {fmt(e.get('max_occupation_error'), '8.1e')} "
            f"{fmt(e.get('max_correlation_error'), '8.1e')} {fmt(e.get('speedup_vs_emu-sv'), '8.1f')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small band, one graph, QEK only")
    parser.add_argument("--bands", nargs="+", help="size bands, e.g. 10-12 21-22")
    parser.add_argument("--graphs", type=int, help="registers per band")
    parser.add_argument("--schedules", nargs="+", choices=SCHEDULES)
    parser.add_argument(
        "--backends", nargs="+", choices=sorted(BACKENDS), default=["subspace", "emu-sv", "emu-mps"]
    )
    parser.add_argument("--limit-s", type=float, default=1800.0, help="a run longer than this is killed")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    preset = QUICK if args.quick else FULL
    bands = [_band(b) for b in (args.bands or preset["bands"])]
    graphs = args.graphs or int(preset["graphs"])
    schedules = args.schedules or list(preset["schedules"])
    report: dict[str, Any] = {
        "machine": machine(),
        "backends": {b: BACKENDS[b] for b in [*args.backends, "subspace-tight"]},
        "settings": {"bands": bands, "graphs": graphs, "schedules": schedules, "limit_s": args.limit_s},
    }
    rows = []
    for schedule in schedules:
        timed_out: set[str] = set()
        for band in sorted(bands):
            rows += compare(schedule, band, graphs, args.backends, args.limit_s, timed_out)
    table = summarise(rows)
    print_table(table)
    report.update(table=table, rows=rows)
    write_report(report, "backend_comparison", quick=args.quick, output=args.output)


if __name__ == "__main__":
    main()
