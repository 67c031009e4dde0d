"""How the Subspace truncation error falls with the energy cutoff, and how honest its error estimate is.

For ``--graphs`` MUTAG molecules of each size in ``--sizes`` (embedded by the
pipeline on AnalogDevice, QEK pulse, evaluated at the end), the exact result
(full 2**n space, ``Subspace(energy_cutoff=math.inf)``) and the result at each
cutoff c of :data:`CUTOFFS` (units of E_drive): basis size and the error of
every feature the pipeline returns — JS divergence (natural log) of P(k),
max |Δ⟨n_i⟩|, max |ΔC_ij| (connected correlations). Then the default
automatic search (``Subspace()``): the cutoff it accepted, its reported
estimates (``truncation_js``, ``truncation_occupation_error``,
``truncation_correlation_error``) and their ratio to the true errors (≥ 1:
the estimate is conservative).

The summary gives, for each step between consecutive cutoffs (5 → 10 → 14.1
→ 20 below the automatic ladder, then its steps 20 → 23.8 → 28.3 → 33.6 →
40), the smallest factor by which the step divided each error over all
graphs: the calibration behind the ladder described in
:mod:`qgnn.backends.subspace.backend` (the search's difference between two
cutoffs over-estimates the error of the finer one when that factor is ≥ 2).

Run: ``.venv/bin/python benchmarks/subspace_scaling.py`` (sizes 12 14 16 18,
3 graphs each; about 10 minutes on one core) writes
``benchmarks/results/subspace_scaling.json``; ``--quick`` (one 10-atom
graph, seconds) writes ``subspace_scaling.quick.json``.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from backend_runs import dataset_cases, machine, write_report

#: The automatic ladder (from 20, ×2^¼ per step) and, below it, the cutoffs that show why it starts at 20.
LADDER = (20.0, 20.0 * 2**0.25, 20.0 * 2**0.5, 20.0 * 2**0.75, 40.0)
CUTOFFS = (5.0, 10.0, 20.0 / math.sqrt(2.0), *LADDER)
METRICS = ("js", "occupation_error", "correlation_error")
ESTIMATES = {
    "js": "truncation_js",
    "occupation_error": "truncation_occupation_error",
    "correlation_error": "truncation_correlation_error",
}


def feature_errors(m: Any, exact: Any) -> dict[str, float]:
    from qgnn.backends.base import js_divergence

    return {
        "js": float(js_divergence(m.excitation_distribution, exact.excitation_distribution).max()),
        "occupation_error": float(np.abs(m.occupations - exact.occupations).max()),
        "correlation_error": float(np.abs(m.connected_correlations() - exact.connected_correlations()).max()),
    }


def calibrate(case: Any) -> dict[str, Any]:
    """Errors per cutoff against the full space; the automatic search's estimates against its true errors."""
    import pulser

    from qgnn.backends import Subspace

    seq = pulser.Sequence.from_abstract_repr(case.sequence)
    start = time.process_time()
    (exact,) = Subspace(energy_cutoff=math.inf).run([seq])
    row: dict[str, Any] = {
        "index": case.index,
        "n_atoms": case.n_atoms,
        "exact_cpu_s": time.process_time() - start,
        "cutoffs": [],
    }
    for c in CUTOFFS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (m,) = Subspace(energy_cutoff=c, on_excess="ignore").run([seq])
        row["cutoffs"].append({"cutoff": c, "basis_dim": m.settings["basis_dim"], **feature_errors(m, exact)})
    start = time.process_time()
    (auto,) = Subspace().run([seq])
    true = feature_errors(auto, exact)
    row["auto"] = {
        "cpu_s": time.process_time() - start,
        "energy_cutoff": auto.settings["energy_cutoff"],
        "cutoffs_tried": list(auto.settings["cutoffs_tried"]),
        "basis_dim": auto.settings["basis_dim"],
        "true": true,
        "estimate": {k: auto.settings[v] for k, v in ESTIMATES.items()},
        "estimate_over_true": {
            k: (auto.settings[v] / true[k] if true[k] > 0 else None) for k, v in ESTIMATES.items()
        },
    }
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Smallest error reduction per ladder step, and smallest estimate / true ratio, over all graphs."""
    steps = []
    for prev, nxt in zip(CUTOFFS[:-1], CUTOFFS[1:], strict=True):
        entry: dict[str, Any] = {"from": prev, "to": nxt, "ladder_step": prev in LADDER}
        for metric in METRICS:
            factors = []
            for row in rows:
                by_c = {round(c["cutoff"], 6): c for c in row["cutoffs"]}
                e_prev, e_next = by_c[round(prev, 6)][metric], by_c[round(nxt, 6)][metric]
                if e_next > 1e-14:  # below, both are at machine precision
                    factors.append(e_prev / e_next)
            entry[f"min_reduction_{metric}"] = min(factors) if factors else None
        steps.append(entry)
    ratios = {
        k: min(
            (r["auto"]["estimate_over_true"][k] for r in rows if r["auto"]["estimate_over_true"][k]),
            default=None,
        )
        for k in METRICS
    }
    return {"ladder_steps": steps, "min_estimate_over_true": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one 10-atom graph")
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 14, 16, 18])
    parser.add_argument("--graphs", type=int, default=3, help="graphs per size")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sizes, graphs = ([10], 1) if args.quick else (args.sizes, args.graphs)

    import torch

    torch.set_num_threads(1)
    rows = []
    for case in dataset_cases("MUTAG", "qek", sizes=set(sizes), per_size=graphs):
        row = calibrate(case)
        rows.append(row)
        a = row["auto"]
        print(
            f"{row['n_atoms']:2d} atoms graph {row['index']:3d}: "
            + " ".join(f"{c['cutoff']:.3g}:{c['occupation_error']:.0e}" for c in row["cutoffs"])
            + f" | auto c={a['energy_cutoff']:.3g} Δn true {a['true']['occupation_error']:.1e} "
            f"est {a['estimate']['occupation_error']:.1e}",
            flush=True,
        )
    summary = summarise(rows)
    print(f"{'step':>12s} " + " ".join(f"{'min ÷ ' + m:>24s}" for m in METRICS))
    for s in summary["ladder_steps"]:
        cells = [s[f"min_reduction_{m}"] for m in METRICS]
        print(
            f"{s['from']:5.3g} → {s['to']:5.3g} "
            + " ".join(f"{c:24.3g}" if c is not None else f"{'-':>24s}" for c in cells)
        )
    print("smallest estimate / true error of the automatic search:", summary["min_estimate_over_true"])
    report = {
        "machine": machine(),
        "sizes": sizes,
        "graphs_per_size": graphs,
        "summary": summary,
        "rows": rows,
    }
    write_report(report, "subspace_scaling", quick=args.quick, output=args.output)


if __name__ == "__main__":
    main()
