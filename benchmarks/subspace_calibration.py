"""Calibration of the Subspace error estimate: actual truncation error against the difference between cutoffs.

For MUTAG molecules of ``--sizes`` atoms (``--graphs`` per size), each
schedule (``qek``: ConstantDrive; ``sweep``: AdiabaticSweep) is evolved in
the energy-truncated basis at every cutoff of the automatic ladder
c = 20·2^(k/4) (units of E_drive) from 14.1 to 23.8, and in a reference basis
(the full space up to 20 atoms, else c = 33.6, whose own error is ~1e-3 of
c = 23.8's). Per cutoff: the actual error of ⟨n_i⟩, of the connected C_ij
and the JS divergence of P(k) against the reference, the difference to the
previous cutoff (what the backend can measure), and their ratio. The summary
gives the largest ratio per accepted cutoff and feature: below 1, the
difference :class:`qgnn.backends.Subspace` reports as its error estimate is
an upper bound (see qgnn/backends/subspace/backend.py).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/subspace_calibration.py``
(15–21 atoms, 2 graphs each, both schedules; about 25 minutes) writes
``benchmarks/results/subspace_calibration.json``.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from backend_runs import machine, write_report

LADDER = tuple(20.0 * 2.0 ** (k / 4) for k in (-3, -2, -1, 0, 1))
FEATURES = ("occupation", "correlation", "js")
FULL_SPACE_UP_TO = 20
REFERENCE_CUTOFF = 20.0 * 2.0 ** (3 / 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="15,16,17,18,19,20,21", help="atom counts, comma-separated")
    parser.add_argument("--graphs", type=int, default=2, help="molecules per size")
    parser.add_argument("--schedules", nargs="+", default=["qek", "sweep"], choices=["qek", "sweep"])
    args = parser.parse_args()

    from qgnn.backends.subspace.basis import rydberg_basis
    from qgnn.backends.subspace.drive import pieces, read_sequence
    from qgnn.backends.subspace.error import Observables, difference
    from qgnn.backends.subspace.propagator import Operators, evolve
    from qgnn.data import load_dataset
    from qgnn.features import FeaturePipeline
    from qgnn.pulses import AdiabaticSweep, ConstantDrive

    ds = load_dataset("MUTAG")
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [ds[i].number_of_nodes() for i in range(len(ds))]
    picked = [i for n in sizes for i in [j for j, c in enumerate(counts) if c == n][: args.graphs]]
    times = (0.25, 0.5, 0.75, 1.0)
    rows: list[dict[str, Any]] = []
    for name in args.schedules:
        schedule = AdiabaticSweep() if name == "sweep" else ConstantDrive()
        prepared = FeaturePipeline(schedule=schedule, n_workers=1, progress=False).build_sequences(
            [ds[i] for i in picked]
        )
        for index, item in zip(picked, prepared, strict=True):
            drive = read_sequence(item.sequence, f"graph {index}")
            steps = pieces(drive, [t * drive.duration for t in times], 40.0)

            def run(cutoff: float, drive: Any = drive, steps: Any = steps) -> Observables:
                basis = rydberg_basis(drive.interactions, cutoff * drive.drive_scale)
                return Observables.of(evolve(Operators(basis, drive.groups), steps))

            n = drive.n_qubits
            reference_cutoff = math.inf if n <= FULL_SPACE_UP_TO else REFERENCE_CUTOFF
            reference = run(reference_cutoff)
            results = [run(c) for c in LADDER]
            for k in range(1, len(LADDER)):
                error = difference(results[k], reference, "excitations")
                step = difference(results[k - 1], results[k], "excitations")
                row = {"schedule": name, "graph": index, "atoms": n, "cutoff": LADDER[k]}
                for f in FEATURES:
                    row[f"error_{f}"] = getattr(error, f)
                    row[f"difference_{f}"] = getattr(step, f)
                    row[f"ratio_{f}"] = getattr(error, f) / max(getattr(step, f), 1e-300)
                rows.append(row)
            at20, at24 = rows[-2], rows[-1]
            print(
                f"{name:5s} graph {index:3d} ({n} atoms): |Δ⟨n_i⟩| at c = 20 {at20['error_occupation']:.1e} "
                f"(difference {at20['difference_occupation']:.1e}), "
                f"at c = 23.8 {at24['error_occupation']:.1e} "
                f"(difference {at24['difference_occupation']:.1e})",
                flush=True,
            )
    summary = []
    for name in args.schedules:
        for c in LADDER[1:]:
            sel = [r for r in rows if r["schedule"] == name and math.isclose(r["cutoff"], c)]
            largest = {f"max_ratio_{f}": max(r[f"ratio_{f}"] for r in sel) for f in FEATURES}
            summary.append({"schedule": name, "cutoff": c, **largest})
    print("largest actual error / difference to the previous cutoff:")
    for s in summary:
        print(
            f"  {s['schedule']:5s} c = {s['cutoff']:5.1f}: "
            + "  ".join(f"{f} {s[f'max_ratio_{f}']:.2f}" for f in FEATURES)
        )
    report = {
        "machine": machine(),
        "settings": {
            "sizes": sizes,
            "graphs_per_size": args.graphs,
            "schedules": args.schedules,
            "ladder": list(LADDER),
            "reference": f"full space up to {FULL_SPACE_UP_TO} atoms, else cutoff {REFERENCE_CUTOFF:.1f}",
            "evaluation_times": list(times),
            "dt_ns": 40.0,
        },
        "summary": summary,
        "rows": rows,
    }
    write_report(report, "subspace_calibration", quick=False, output=None)


if __name__ == "__main__":
    main()
