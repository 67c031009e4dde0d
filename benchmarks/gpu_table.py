"""EmuSV(gpu=True) on MUTAG registers of 20–28 atoms, and Subspace on this machine checked against it.

A GPU machine is lent for minutes and holds no datasets and no qgnn install,
so the benchmark has three steps:

1. ``prepare`` (here): one MUTAG molecule per size (the first of each size in
   dataset order), embedded by the pipeline on AnalogDevice, for the QEK
   pulse and the adiabatic sweep; their Pulser sequences (abstract repr) go
   to ``--cases`` (JSON, a few hundred kB).
2. ``gpu`` (on the GPU machine, with ``PYTHONPATH`` holding this checkout):
   each case through ``EmuSV(gpu=True)`` (default settings: dt = 10 ns,
   Krylov tolerance 1e-10) in its own process, in the order of
   :data:`GPU_ORDER`, until ``--deadline-s``; per run wall time, peak RSS,
   peak GPU memory (``torch.cuda.max_memory_allocated``) and the features
   (⟨n_i⟩, C_ij, P(k)). The rows are rewritten after every case, so a run cut
   short keeps what it measured. A 12-atom case runs first and stops the
   step at once if emu-sv cannot run there.
3. ``compare`` (here): ``Subspace()`` on the same cases, one thread each, with
   the memory budget of a graph the pipeline runs alone (30 % of this machine's RAM),
   and ``Subspace(over_budget="coarsen")`` where the default refuses the
   graph for its memory budget; errors (JS of P(k), max |Δ⟨n_i⟩|, max
   |ΔC_ij|) against the GPU rows, and the Subspace's own error estimates
   beside them. Writes ``benchmarks/results/gpu_table.json`` and prints the table.

Times of the two machines are not comparable as a speed-up (an H200 against
one core of this 2-core machine); each row names the machine it ran on.

Run::

    .venv/bin/python benchmarks/gpu_table.py prepare --cases .gpucases/cases.json
    # on the GPU machine, from the checkout's root:
    cd benchmarks && python3 gpu_table.py gpu --cases ../.gpucases/cases.json --out $OUT/gpu_rows.json
    .venv/bin/python benchmarks/gpu_table.py compare --cases .gpucases/cases.json --gpu-rows gpu_rows.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from backend_runs import Case, dataset_cases, errors, machine, run_isolated, write_report

#: (schedule, atoms) in the order the GPU step runs them: a smoke case, then the QEK sizes the
#: table needs most, the sweep, and the sizes in between while time is left.
GPU_ORDER: tuple[tuple[str, int], ...] = (
    ("qek", 12),
    ("qek", 20),
    ("qek", 22),
    ("qek", 24),
    ("qek", 26),
    ("qek", 28),
    ("sweep", 20),
    ("sweep", 22),
    ("sweep", 24),
    ("qek", 23),
    ("qek", 25),
    ("qek", 27),
    ("sweep", 26),
)
#: No GPU case runs longer than this (s), so one slow size leaves time for the others.
CASE_LIMIT_S = 240.0
ESTIMATES = ("truncation_js", "truncation_occupation_error", "truncation_correlation_error", "energy_cutoff")


def prepare(path: Path) -> None:
    """Write the cases of :data:`GPU_ORDER` (sequences as abstract repr) to ``path``."""
    cases: list[dict[str, Any]] = []
    for schedule in ("qek", "sweep"):
        sizes = {n for s, n in GPU_ORDER if s == schedule}
        for case in dataset_cases("MUTAG", schedule, sizes=sizes, per_size=1):
            cases.append({"schedule": schedule, **case.__dict__})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cases))
    print(f"wrote {len(cases)} cases to {path}")


def _case(entry: dict[str, Any]) -> Case:
    return Case(entry["source"], entry["index"], entry["n_atoms"], entry["sequence"])


def _gpu_name() -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def gpu(cases_path: Path, out: Path, deadline_s: float) -> None:
    """Run EmuSV(gpu=True) on the cases in :data:`GPU_ORDER` until ``deadline_s``; rows to ``out``."""
    import torch

    start = time.perf_counter()
    entries = {(e["schedule"], e["n_atoms"]): e for e in json.loads(cases_path.read_text())}
    report: dict[str, Any] = {
        "machine": {**machine(), "gpu": _gpu_name(), "torch": torch.__version__},
        "backend": "emu-sv-gpu",
        "deadline_s": deadline_s,
        "rows": [],
    }
    for schedule, n_atoms in GPU_ORDER:
        entry = entries.get((schedule, n_atoms))
        if entry is None:
            continue
        left = deadline_s - (time.perf_counter() - start)
        if left < 40:
            report["rows"].append({"schedule": schedule, "n_atoms": n_atoms, "status": "skipped (deadline)"})
            continue
        limit = min(left - 30, CASE_LIMIT_S)
        row = run_isolated("emu-sv-gpu", _case(entry), timeout_s=limit, import_allowance_s=25)
        row["schedule"] = schedule
        report["rows"].append(row)
        print(
            f"{schedule:5s} {n_atoms:2d} atoms graph {entry['index']:3d} {row['status']:8s} "
            f"{row.get('seconds', float('nan')):8.2f} s  RSS {row.get('peak_rss_mb', float('nan')):7.0f} MB  "
            f"GPU {row.get('peak_gpu_mb') or float('nan'):8.0f} MB  {row.get('error', '')}",
            flush=True,
        )
        out.write_text(json.dumps(report))
        if (schedule, n_atoms) == GPU_ORDER[0] and not row.get("peak_gpu_mb"):
            # EmuSV(gpu=True) falls back to the CPU where torch sees no GPU
            raise SystemExit(f"emu-sv did not run on the GPU: {row.get('error') or 'no GPU memory used'}")
    out.write_text(json.dumps(report))


def _reference_rows(paths: list[Path]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The GPU machine and its rows from one or more ``gpu`` step outputs; a later run of a case wins.

    A run that finished past its case limit (status ``timeout`` with features) is kept as a reference.
    """
    reports = [json.loads(p.read_text()) for p in paths]
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for report in reports:
        for row in report["rows"]:
            if "occupations" in row:
                rows[(row["schedule"], row["n_atoms"])] = row
    return reports[0]["machine"], sorted(rows.values(), key=lambda r: (r["schedule"], r["n_atoms"]))


def compare(
    cases_path: Path, gpu_rows: list[Path], limit_s: float, output: Path | None, only: list[str] | None = None
) -> None:
    """Subspace on the cases the GPU step ran; errors against those runs; write gpu_table.json."""
    from qgnn.backends.subspace.memory import default_max_memory

    entries = {(e["schedule"], e["n_atoms"]): e for e in json.loads(cases_path.read_text())}
    gpu_machine, references = _reference_rows(gpu_rows)
    unknown = sorted(set(only or ()) - {f"{r['schedule']}:{r['n_atoms']}" for r in references})
    if unknown:
        raise SystemExit(f"--only: no GPU run of {', '.join(unknown)} (schedule:atoms, e.g. qek:24)")
    budget = default_max_memory(workers=1)  # what the pipeline gives a graph that runs alone
    started = machine()
    rows: list[dict[str, Any]] = []

    def report() -> dict[str, Any]:
        return {
            "machine": started,
            "gpu_machine": gpu_machine,
            "settings": {
                "limit_s": limit_s,
                "max_memory_bytes": budget,
                "gpu_rows_from": [p.name for p in gpu_rows],
                "only": only,
            },
            "gpu_rows": [
                {k: v for k, v in r.items() if k not in ("connected", "occupations")} for r in references
            ],
            "rows": [{k: v for k, v in r.items() if k not in ("connected", "occupations")} for r in rows],
        }

    for ref in references:
        if ref["n_atoms"] < 20 or (only and f"{ref['schedule']}:{ref['n_atoms']}" not in only):
            continue
        case = _case(entries[(ref["schedule"], ref["n_atoms"])])
        for spec in ("subspace", "subspace-coarsen"):
            row = run_isolated(spec, case, limit_s, max_memory=budget)
            row.update(schedule=ref["schedule"])
            if row["status"] == "ok":
                row.update(errors(row, ref))
                row.update({k: row["settings"].get(k) for k in ESTIMATES})
            rows.append(row)
            write_report(report(), "gpu_table", quick=False, output=output)  # a cut-short run keeps its rows
            print(
                f"{ref['schedule']:5s} {case.n_atoms:2d} atoms graph {case.index:3d} {spec:16s} "
                f"{row['status']:8s} {row.get('seconds', float('nan')):8.2f} s "
                f"RSS {row.get('peak_rss_mb', float('nan')):7.0f} MB  "
                f"JS {row.get('js', float('nan')):.1e} (est {row.get('truncation_js') or float('nan'):.1e})  "
                f"Δn {row.get('occupation_error', float('nan')):.1e} "
                f"(est {row.get('truncation_occupation_error') or float('nan'):.1e})  {row.get('error', '')}",
                flush=True,
            )
            if row["status"] == "ok" or "MemoryBudgetError" not in str(row.get("error", "")):
                break  # the default ran (or failed for another reason): no coarsened run needed
    write_report(report(), "gpu_table", quick=False, output=output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="write the cases (here)")
    p.add_argument("--cases", type=Path, required=True)
    g = sub.add_parser("gpu", help="EmuSV(gpu=True) on the cases (on the GPU machine)")
    g.add_argument("--cases", type=Path, required=True)
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--deadline-s", type=float, default=420.0, help="no case starts after this")
    c = sub.add_parser("compare", help="Subspace on the same cases (here), errors against the GPU rows")
    c.add_argument("--cases", type=Path, required=True)
    c.add_argument("--gpu-rows", type=Path, nargs="+", required=True, help="outputs of the gpu step")
    c.add_argument("--limit-s", type=float, default=900.0, help="a Subspace run longer than this is killed")
    c.add_argument("--only", nargs="+", help="cases to compare, e.g. qek:24 sweep:20 (default: all)")
    c.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.cases)
    elif args.step == "gpu":
        gpu(args.cases, args.out, args.deadline_s)
    else:
        compare(args.cases, args.gpu_rows, args.limit_s, args.output, args.only)


if __name__ == "__main__":
    main()
