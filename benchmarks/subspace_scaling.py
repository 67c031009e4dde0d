"""Speed and accuracy of the Subspace backend against emu-sv on the QEK drive.

The QEK pulse (``qgnn.pulses.ConstantDrive``: Ω = 2π rad/µs, δ = 0, 660 ns) on
Pulser's AnalogDevice, evaluated at the end of the pulse, one thread per
process. Registers are PTC_FM molecules embedded with :func:`qgnn.embedding.embed`
(``--source ptc_fm``, default) or random molecule-like layouts (each atom
5–6.5 µm from an earlier one, none closer than 5 µm; ``--source random``).

Two parts, printed as tables and written to
``benchmarks/results/subspace_scaling.json``:

1. Scaling: for each atom count, ``--graphs`` registers; per graph the
   emu-sv time (``EmuSV()``, dt = 10 ns, exact state) and the Subspace time at
   each tolerance, the chosen cutoff and basis size, and the error against
   emu-sv: Jensen–Shannon divergence (natural log) of the excitation
   distribution and the largest |Δ⟨n_i⟩|.
2. Throughput (``--throughput``): every PTC_FM graph with at most 14 atoms,
   Subspace at tolerance 1e-3 in ``--processes`` worker processes; wall-clock
   seconds per graph (sequence pickling included), against the 5.9 s/graph
   anchor, and the error against emu-sv on ``--check`` of them.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/subspace_scaling.py``
(``--sizes 10 12 14 16 --graphs 3 --tolerances 1e-3 1e-5 --throughput``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pulser
from pulser.devices import AnalogDevice

from qgnn.backends.base import js_divergence
from qgnn.backends.emulators import EmuSV
from qgnn.backends.subspace import Subspace
from qgnn.pulses import ConstantDrive

RESULTS = Path(__file__).resolve().parent / "results" / "subspace_scaling.json"
ANCHOR_S_PER_GRAPH = 5.9  # the anchor: the reference pipeline's time per PTC_FM graph


def random_layout(n: int, seed: int) -> np.ndarray:
    """Molecule-like random layout (µm): each atom 5–6.5 µm from an earlier one, all ≥ 5 µm apart."""
    rng = np.random.default_rng(seed)
    pts = [np.zeros(2)]
    while len(pts) < n:
        angle, r = rng.uniform(0, 2 * np.pi), rng.uniform(5.0, 6.5)
        p = pts[rng.integers(len(pts))] + r * np.array([np.cos(angle), np.sin(angle)])
        if min(np.linalg.norm(p - q) for q in pts) >= 5.0:
            pts.append(p)
    return np.array(pts)


def ptc_fm_sequences(
    max_atoms: int, sizes: set[int] | None, per_size: int | None
) -> list[tuple[int, pulser.Sequence]]:
    """(dataset index, QEK sequence) of exactly embedded PTC_FM graphs."""
    from qgnn.data import load_dataset
    from qgnn.embedding import embed

    ds = load_dataset("PTC_FM", max_nodes=max_atoms)
    taken: dict[int, int] = {}
    out = []
    for i in range(len(ds)):
        graph = ds[i]
        n = graph.number_of_nodes()
        if (sizes is not None and n not in sizes) or (per_size is not None and taken.get(n, 0) >= per_size):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = embed(graph, AnalogDevice)
        if not emb.quality.is_exact:
            continue
        taken[n] = taken.get(n, 0) + 1
        out.append((int(graph.graph["index"]), ConstantDrive().build(emb.register, AnalogDevice)))
    return out


def random_sequences(sizes: list[int], per_size: int) -> list[tuple[int, pulser.Sequence]]:
    out = []
    for n in sizes:
        for k in range(per_size):
            reg = pulser.Register.from_coordinates(random_layout(n, seed=1000 * n + k), prefix="q")
            out.append((k, ConstantDrive().build(reg, AnalogDevice)))
    return out


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def errors(m: Any, ref: Any) -> dict[str, float]:
    return {
        "js_excitations": float(js_divergence(m.excitation_distribution, ref.excitation_distribution).max()),
        "max_occupation_error": float(np.abs(m.occupations - ref.occupations).max()),
    }


def scaling(seqs: list[tuple[int, pulser.Sequence]], tolerances: list[float]) -> list[dict[str, Any]]:
    rows = []
    for index, seq in seqs:
        n = len(seq.register.qubit_ids)
        (ref,), t_ref = timed(lambda seq=seq: EmuSV().run([seq]))
        row: dict[str, Any] = {"n_atoms": n, "graph": index, "emu_sv_s": t_ref, "subspace": {}}
        for tol in tolerances:
            (m,), t = timed(lambda seq=seq, tol=tol: Subspace(tolerance=tol).run([seq]))
            row["subspace"][str(tol)] = {
                "seconds": t,
                "energy_cutoff": m.settings["energy_cutoff"],
                "basis_dim": m.settings["basis_dim"],
                "truncation_js": m.settings["truncation_js"],
                **errors(m, ref),
            }
        rows.append(row)
        print(
            f"  n={n:2d} graph {index:4d}: emu-sv {t_ref:6.2f} s, "
            + ", ".join(
                f"tol {tol:g}: {row['subspace'][str(tol)]['seconds'] * 1e3:6.1f} ms "
                f"(JS {row['subspace'][str(tol)]['js_excitations']:.1e})"
                for tol in tolerances
            ),
            flush=True,
        )
    return rows


def summarise(rows: list[dict[str, Any]], tolerances: list[float]) -> list[dict[str, Any]]:
    table = []
    for n in sorted({r["n_atoms"] for r in rows}):
        sub = [r for r in rows if r["n_atoms"] == n]
        entry: dict[str, Any] = {
            "n_atoms": n,
            "graphs": len(sub),
            "emu_sv_s": statistics.mean(r["emu_sv_s"] for r in sub),
        }
        for tol in tolerances:
            cells = [r["subspace"][str(tol)] for r in sub]
            t = statistics.mean(c["seconds"] for c in cells)
            entry[str(tol)] = {
                "seconds": t,
                "speedup": entry["emu_sv_s"] / t,
                "basis_fraction": statistics.mean(c["basis_dim"] / 2**n for c in cells),
                "max_js": max(c["js_excitations"] for c in cells),
                "max_occupation_error": max(c["max_occupation_error"] for c in cells),
            }
        table.append(entry)
    head = f"{'atoms':>5} {'graphs':>6} {'emu-sv s':>9}"
    for tol in tolerances:
        head += f" | tol {tol:<7g}{'ms':>6} {'×':>6} {'basis':>6} {'max JS':>8} {'max Δn':>8}"
    print(head)
    for e in table:
        line = f"{e['n_atoms']:5d} {e['graphs']:6d} {e['emu_sv_s']:9.2f}"
        for tol in tolerances:
            c = e[str(tol)]
            line += (
                f" | {'':11}{c['seconds'] * 1e3:6.1f} {c['speedup']:6.0f} {c['basis_fraction']:6.2f}"
                f" {c['max_js']:8.1e} {c['max_occupation_error']:8.1e}"
            )
        print(line)
    return table


def _worker(batch: list[pulser.Sequence]) -> list[Any]:
    import torch

    torch.set_num_threads(1)
    return Subspace(tolerance=1e-3).run(batch)


def throughput(processes: int, check: int) -> dict[str, Any]:
    seqs = [s for _, s in ptc_fm_sequences(14, None, None)]
    chunks = [seqs[k::processes] for k in range(processes)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        parts = list(pool.map(_worker, chunks))
    wall = time.perf_counter() - t0
    per_graph = wall / len(seqs)
    # undo the round-robin split
    results: list[Any] = [None] * len(seqs)
    for k, part in enumerate(parts):
        results[k::processes] = part
    checked = []
    for seq, m in list(zip(seqs, results, strict=True))[:check]:
        (ref,) = EmuSV().run([seq])
        checked.append(errors(m, ref))
    out = {
        "graphs": len(seqs),
        "processes": processes,
        "wall_s": wall,
        "s_per_graph": per_graph,
        "speedup_vs_anchor": ANCHOR_S_PER_GRAPH / per_graph,
        "checked_against_emu_sv": len(checked),
        "max_js": max((c["js_excitations"] for c in checked), default=None),
        "max_occupation_error": max((c["max_occupation_error"] for c in checked), default=None),
        "max_truncation_js": max(m.settings["truncation_js"] for m in results),
    }
    print(
        f"throughput: {len(seqs)} PTC_FM graphs (≤ 14 atoms) in {wall:.2f} s with {processes} processes = "
        f"{per_graph * 1e3:.1f} ms/graph, {out['speedup_vs_anchor']:.0f}× the {ANCHOR_S_PER_GRAPH} s anchor; "
        f"max JS vs emu-sv on {len(checked)} of them: {out['max_js']}"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 12, 14, 16])
    parser.add_argument("--graphs", type=int, default=3, help="registers per atom count")
    parser.add_argument("--tolerances", type=float, nargs="+", default=[1e-3, 1e-5])
    parser.add_argument("--source", choices=["ptc_fm", "random"], default="ptc_fm")
    parser.add_argument("--throughput", action="store_true", help="also time all PTC_FM graphs ≤ 14 atoms")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--check", type=int, default=20, help="throughput results checked against emu-sv")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON report path")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    if args.source == "ptc_fm":
        seqs = ptc_fm_sequences(max(args.sizes), set(args.sizes), args.graphs)
    else:
        seqs = random_sequences(args.sizes, args.graphs)
    print(f"scaling ({args.source}, QEK drive, one thread, load average {os.getloadavg()[0]:.1f}):")
    rows = scaling(seqs, args.tolerances)
    table = summarise(rows, args.tolerances)
    report: dict[str, Any] = {
        "source": args.source,
        "tolerances": args.tolerances,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "table": table,
        "rows": rows,
    }
    if args.throughput:
        report["throughput"] = throughput(args.processes, args.check)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
