"""Feature-extraction throughput: the pipeline against a naive per-graph emu-sv loop.

On PTC_FM graphs (AnalogDevice, QEK pulse: Ω = 2π rad/µs, δ = 0, 660 ns,
features at the end of the pulse), in three size bands (≤ 12, 13–14, 15–16
atoms; ``--graphs`` per band, the same registers for every method), each
method runs in a fresh child process so its wall time and peak RSS are its own:

- ``naive``: a plain loop calling emu-sv per graph with default settings, as a
  user would write by hand (default torch threads, dt = 10 ns, exact state).
  It is the exact reference.
- ``pipeline-emusv``: FeaturePipeline with EmuSV, 2 worker processes, 1 thread each.
- ``pipeline-subspace-1e-3`` (the default pipeline) and ``pipeline-subspace-1e-5``.

Reported per band: seconds per graph, graphs/s, speed-up against the naive
loop and against the anchor (5.9 s/graph: Pasqal's quantum-evolution-kernel
0.3.4 with emu-mps on this machine), peak RSS, and the largest Jensen–Shannon
divergence (natural log) of the excitation distributions against the naive
emu-sv result. Then the default pipeline on *every* PTC_FM graph with ≤ 14
atoms, and per backend the largest PTC_FM register whose features come back
within 60 s.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/feature_throughput.py``
(prints tables, writes ``benchmarks/results/feature_throughput.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

ANCHOR_S_PER_GRAPH = 5.9
RESULTS = Path(__file__).resolve().parent / "results" / "feature_throughput.json"
BANDS = ((1, 12), (13, 14), (15, 16))
METHODS = ("naive", "pipeline-emusv", "pipeline-subspace-1e-3", "pipeline-subspace-1e-5")


def _ptc_fm() -> Any:
    from qgnn.data import load_dataset

    return load_dataset("PTC_FM")


def _select(band: tuple[int, int], count: int) -> list[int]:
    sizes = np.array([g.number_of_nodes() for g in _ptc_fm()])
    chosen = np.flatnonzero((sizes >= band[0]) & (sizes <= band[1]))
    rng = np.random.default_rng(0)
    return sorted(int(i) for i in rng.choice(chosen, size=min(count, len(chosen)), replace=False))


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def _naive(positions: list[np.ndarray]) -> list[np.ndarray]:
    """What a user writes by hand: emu-sv per graph, default settings, full state → excitation counts."""
    import logging

    import emu_sv
    import pulser
    import torch
    from pulser.devices import AnalogDevice

    out = []
    for pos in positions:
        seq = pulser.Sequence(pulser.Register.from_coordinates(pos, prefix="q"), AnalogDevice)
        seq.declare_channel("rydberg_global", "rydberg_global")
        seq.add(pulser.Pulse.ConstantPulse(660, 2 * np.pi, 0.0, 0.0), "rydberg_global")
        observable = emu_sv.StateResult(evaluation_times=[1.0])
        config = emu_sv.SVConfig(observables=[observable], log_level=logging.WARN)
        state = emu_sv.SVBackend(seq, config=config).run().get_result(observable.tag, 1.0)
        probs = (torch.abs(state.data) ** 2).double().cpu().numpy()
        excitations = np.array([bin(k).count("1") for k in range(2 ** len(pos))])
        out.append(np.bincount(excitations, weights=probs, minlength=len(pos) + 1))
    return out


def _pipeline(method: str, graph_indices: list[int]) -> list[np.ndarray]:
    """The FeaturePipeline, embedding included (deterministic: the same registers as the naive loop)."""
    from qgnn.backends import EmuSV, Subspace
    from qgnn.features import FeaturePipeline

    backend = EmuSV() if method == "pipeline-emusv" else Subspace(tolerance=float(method.rsplit("-", 1)[1]))
    ds = _ptc_fm()
    pipeline = FeaturePipeline(backend=backend, n_workers=2, cache_dir=False, progress=False)
    results = pipeline.run([ds[i] for i in graph_indices])
    return [r.measurement.excitation_distribution[-1] for r in results]


def _child(method: str, graph_indices: list[int], positions: list[np.ndarray], queue: Any) -> None:
    import emu_sv  # noqa: F401  imports are not part of anyone's time per graph
    import torch  # noqa: F401

    import qgnn.features  # noqa: F401

    _ptc_fm()
    start = time.perf_counter()
    dists = _naive(positions) if method == "naive" else _pipeline(method, graph_indices)
    queue.put({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), "dists": dists})


def run_method(method: str, graph_indices: list[int], positions: list[np.ndarray]) -> dict[str, Any]:
    """Run one method in a fresh process; its wall time, peak RSS and distributions."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(method, graph_indices, positions, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return dict(result)


def _positions(graph_indices: list[int]) -> list[np.ndarray]:
    """Embedding positions (µm), computed once so every method evolves the same registers."""
    from qgnn.embedding import embed

    ds = _ptc_fm()
    return [np.asarray(embed(ds[i]).positions) for i in graph_indices]


def bands(per_band: int) -> list[dict[str, Any]]:
    """Every method on the same graphs of each size band."""
    from qgnn.backends.base import js_divergence

    rows = []
    for band in BANDS:
        indices = _select(band, per_band)
        positions = _positions(indices)
        runs = {m: run_method(m, indices, positions) for m in METHODS}
        reference = runs["naive"]
        for method, run in runs.items():
            per_graph = run["seconds"] / len(positions)
            js = [float(js_divergence(a, b)) for a, b in zip(run["dists"], reference["dists"], strict=True)]
            rows.append(
                {
                    "band": f"{band[0]}-{band[1]} atoms",
                    "graphs": len(positions),
                    "method": method,
                    "s_per_graph": per_graph,
                    "graphs_per_s": 1.0 / per_graph,
                    "speedup_vs_naive": reference["seconds"] / run["seconds"],
                    "speedup_vs_anchor": ANCHOR_S_PER_GRAPH / per_graph,
                    "peak_rss_mb": run["peak_rss_mb"],
                    "max_js_vs_naive": max(js),
                }
            )
    return rows


def _whole_set_child(queue: Any) -> None:
    from qgnn.features import FeaturePipeline

    graphs = [g for g in _ptc_fm() if g.number_of_nodes() <= 14]
    start = time.perf_counter()
    results = FeaturePipeline(n_workers=2, cache_dir=False, progress=False).run(graphs)
    seconds = time.perf_counter() - start
    queue.put(
        {
            "graphs": len(graphs),
            "ok": sum(r.ok for r in results),
            "seconds": seconds,
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def whole_set() -> dict[str, Any]:
    """The default pipeline (embedding included, cold cache) on every PTC_FM graph with ≤ 14 atoms."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_whole_set_child, args=(queue,))
    proc.start()
    out = dict(queue.get())
    proc.join()
    out["s_per_graph"] = out["seconds"] / out["graphs"]
    out["speedup_vs_anchor"] = ANCHOR_S_PER_GRAPH / out["s_per_graph"]
    return out


def largest_within(limit_s: float, sizes: list[int]) -> dict[str, Any]:
    """Per backend, the largest PTC_FM register (by atoms) whose features return within ``limit_s``."""
    from qgnn.backends import EmuSV, Subspace
    from qgnn.embedding import embed
    from qgnn.pulses import ConstantDrive

    ds = _ptc_fm()
    out: dict[str, Any] = {}
    for name, backend in (("subspace-1e-3", Subspace(tolerance=1e-3)), ("emu-sv", EmuSV())):
        timings: dict[int, Any] = {}
        for n in sizes:
            graph = next((g for g in ds if g.number_of_nodes() == n), None)
            if graph is None:
                continue
            emb = embed(graph)
            seq = ConstantDrive().build(emb.register, emb.device)
            start = time.perf_counter()
            try:
                backend.run([seq])
            except Exception as exc:  # report why a size could not run (e.g. a memory cap), then stop
                timings[n] = f"failed: {type(exc).__name__}: {exc}"[:160]
                break
            timings[n] = time.perf_counter() - start
            if timings[n] > limit_s:
                break
        fits = [n for n, t in timings.items() if isinstance(t, float) and t <= limit_s]
        out[name] = {"seconds_by_atoms": timings, "largest_within_limit": max(fits) if fits else None}
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["band", "method", "s/graph", "graphs/s", "x naive", "x anchor", "peak RSS MB", "max JS"]
    lines = [head]
    for r in rows:
        lines.append(
            [
                r["band"],
                r["method"],
                f"{r['s_per_graph']:.3f}",
                f"{r['graphs_per_s']:.1f}",
                f"{r['speedup_vs_naive']:.1f}",
                f"{r['speedup_vs_anchor']:.0f}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['max_js_vs_naive']:.1e}",
            ]
        )
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=12, help="graphs per size band")
    parser.add_argument("--limit-s", type=float, default=60.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 18, 19, 20])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": platform.platform(), "cpus": multiprocessing.cpu_count()}
    report["bands"] = rows = bands(args.graphs)
    print(_table(rows))
    report["all_ptc_fm_le14"] = whole = whole_set()
    print(
        f"\ndefault pipeline (cold, embedding included), all {whole['graphs']} PTC_FM graphs ≤ 14 atoms: "
        f"{whole['s_per_graph'] * 1000:.1f} ms/graph = {whole['speedup_vs_anchor']:.0f}× the anchor's "
        f"{ANCHOR_S_PER_GRAPH} s/graph; peak RSS {whole['peak_rss_mb']:.0f} MB"
    )
    report["largest_within_limit"] = largest = largest_within(args.limit_s, args.sizes)
    for name, info in largest.items():
        print(
            f"{name}: largest register within {args.limit_s:.0f} s: {info['largest_within_limit']} atoms "
            f"(seconds by atoms: {info['seconds_by_atoms']})"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {args.output}")


if __name__ == "__main__":
    main()
