"""Feature-extraction throughput: the pipeline against a plain per-graph emu-sv loop, on the same registers.

Every measurement runs in a fresh child process (spawned, so its wall time,
peak RSS and imports are its own; imports are not timed). Three stages, all
on PTC_FM with the pipeline's defaults (AnalogDevice, QEK pulse: Ω = 2π rad/µs,
δ = 0, 660 ns, features at the end of the pulse):

1. **Size bands** (≤ 12, 13–14, 15–16 atoms; ``--graphs`` per band, the same
   graphs for every method):

   - ``naive-emusv``: a plain loop calling emu-sv per graph with its default
     settings, in one process, on the sequences the pipeline builds
     (``FeaturePipeline.build_sequences``, not timed), so every method evolves
     the same registers. The exact reference.
   - ``pipeline-emusv``: ``FeaturePipeline(backend=EmuSV())``.
   - ``pipeline-default``: ``FeaturePipeline()`` with its default backend,
     whatever it is on this commit (the row records its settings).
   - ``pipeline-subspace-tol1e-5``: ``FeaturePipeline(backend=Subspace(tolerance=1e-5))``.

   Pipelines run cold (no cache), embedding included, with ``--workers``
   worker processes of one thread each. Each row records the settings it ran
   with, read back from the backend (``backend.cache_key()``) and from every
   Measurement (``Measurement.settings``), whether its registers are the
   naive loop's (pairwise-distance fingerprints), and the largest
   Jensen–Shannon divergence (natural log) of the excitation distributions
   against the naive loop.
2. **Whole set**: the default pipeline and the naive loop on every PTC_FM
   graph with ≤ ``--whole-max-atoms`` atoms: time per graph, the ratio
   between the two (measured here, in this run), and the ratio against the
   recorded external anchor (:data:`ANCHOR`: Pasqal's quantum-evolution-kernel
   0.3.4 with emu-mps, recorded once on this machine kind; not run by this
   script).
3. **Largest register within ``--limit-s``**: per backend (the default
   Subspace, EmuSV), the first PTC_FM graph of each size, growing from
   ``--start-atoms`` until a size fails or takes longer than the limit (or
   PTC_FM has no larger graph). Each size runs in its own process under an
   address-space limit (``--memory-gb``, ``RLIMIT_AS``), so a run that needs
   too much memory fails alone; the Subspace memory guard (``max_memory``)
   gets all of it but :data:`PROCESS_OVERHEAD_BYTES` (interpreter, torch).

Run (an idle 2-core machine: 20–35 min, depending on how far Subspace grows):
``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/feature_throughput.py``
writes ``benchmarks/results/feature_throughput.json`` (read by
``benchmarks/readme_figures.py``). ``--quick`` (about 5 min) runs small
settings and writes ``benchmarks/results/feature_throughput.quick.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import platform
import queue as queue_module
import resource
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from backend_runs import RESULTS, plain, provenance

#: Version of this JSON layout; benchmarks/readme_figures.py reads only this one.
SCHEMA = 2
#: A recorded external figure, not run here (issue 6): the reference pipeline's time on this machine kind.
ANCHOR: dict[str, Any] = {
    "what": "Pasqal's quantum-evolution-kernel 0.3.4, emu-mps (dt = 10 ns, 1000 shots), one graph at a time",
    "dataset": "PTC_FM",
    "max_atoms": 14,
    "graphs": 197,
    "seconds": 1167.0,
    "machine": "this machine kind (2 cores)",
    "source": "recorded external figure (issue 6), not run by this script",
}
METHODS: dict[str, str] = {
    "naive-emusv": "plain emu-sv loop, one process, default SVConfig, on the pipeline's sequences",
    "pipeline-emusv": "FeaturePipeline(backend=EmuSV())",
    "pipeline-default": "FeaturePipeline() with its default backend",
    "pipeline-subspace-tol1e-5": "FeaturePipeline(backend=Subspace(tolerance=1e-5))",
}
FULL = {
    "bands": ((1, 12), (13, 14), (15, 16)),
    "graphs": 40,
    "whole_max_atoms": 14,
    "limit_s": 60.0,
    "start_atoms": 12,
    "memory_gb": 6.0,
}
QUICK = {
    "bands": ((1, 12),),
    "graphs": 4,
    "whole_max_atoms": 8,
    "limit_s": 5.0,
    "start_atoms": 14,
    "memory_gb": 3.0,
}
#: Address space a child uses besides the run's own arrays (interpreter, torch, emu-sv, qgnn imported).
PROCESS_OVERHEAD_BYTES = 3 * 2**29
#: Seconds a child may take to import torch, emu-sv and qgnn before it counts as hung.
IMPORT_TIMEOUT_S = 300.0


# ---------------------------------------------------------------------------- helpers (any process)


def _ptc_fm() -> Any:
    from qgnn.data import load_dataset

    return load_dataset("PTC_FM")


def register_fingerprint(register: Any) -> str:
    """Hash of a register's sorted pairwise distances (µm, to 1e-4): equal for the same atom geometry."""
    pos = np.array(list(register.qubits.values()), dtype=np.float64).reshape(len(register.qubits), -1)
    iu, ju = np.triu_indices(len(pos), k=1)
    distances = np.sort(np.round(np.linalg.norm(pos[iu] - pos[ju], axis=1), 4))
    return hashlib.sha256(distances.tobytes()).hexdigest()[:16]


def summarise_settings(settings: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One entry per setting key over many Measurements: the value if all agree, else its range or values."""
    out: dict[str, Any] = {}
    for key in sorted({k for s in settings for k in s}):
        values = [plain(s.get(key)) for s in settings]
        distinct = {json.dumps(v, sort_keys=True) for v in values}
        if len(distinct) == 1:
            out[key] = values[0]
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = {"min": min(values), "max": max(values)}
        else:
            out[key] = {"values": [json.loads(v) for v in sorted(distinct)]}
    return out


def _peak_rss_mb() -> float:
    """This process's peak RSS plus the largest peak among its finished children (MB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def _pipeline(backend: Any = None, **kwargs: Any) -> Any:
    from qgnn.features import FeaturePipeline

    return FeaturePipeline(backend=backend, cache_dir=False, progress=False, **kwargs)


def _default_cache_key() -> dict[str, Any]:
    return dict(_pipeline().backend.cache_key())


def _backend(method: str) -> Any:
    """The backend a pipeline method is constructed with (``None`` = the pipeline's default)."""
    from qgnn.backends import EmuSV, Subspace

    return {
        "pipeline-emusv": EmuSV,
        "pipeline-default": lambda: None,
        "pipeline-subspace-tol1e-5": lambda: Subspace(tolerance=1e-5),
    }[method]()


# ---------------------------------------------------------------------------- child-process work


def _naive(graph_indices: list[int]) -> dict[str, Any]:
    """emu-sv per graph, default settings, full state → excitation distribution (the exact reference)."""
    import logging

    import emu_sv
    import torch

    from qgnn.backends.base import moments

    ds = _ptc_fm()
    prepared = _pipeline(n_workers=1).build_sequences([ds[i] for i in graph_indices])
    config = emu_sv.SVConfig(observables=[emu_sv.StateResult(evaluation_times=[1.0])], log_level=logging.WARN)
    dists: list[list[float] | None] = []
    start = time.perf_counter()
    for p in prepared:
        if p.sequence is None:
            dists.append(None)
            continue
        (observable,) = config.observables
        state = emu_sv.SVBackend(p.sequence, config=config).run().get_result(observable.tag, 1.0)
        probs = (torch.abs(state.data) ** 2).double().cpu().numpy()
        n = len(p.sequence.register.qubits)
        dists.append(moments(np.arange(2**n), probs[None, :], n)[2][0].tolist())
    seconds = time.perf_counter() - start
    options = {k: getattr(config, k) for k in ("dt", "krylov_tolerance", "max_krylov_dim", "gpu")}
    return {
        "seconds": seconds,
        "dists": dists,
        "errors": [p.error for p in prepared],
        "fingerprints": [
            None if p.sequence is None else register_fingerprint(p.sequence.register) for p in prepared
        ],
        "settings": {"backend": "emu-sv", "version": emu_sv.__version__, **options},
        "workers": {"processes": 1, "torch_threads": torch.get_num_threads()},
    }


def _run_pipeline(method: str, graph_indices: list[int], workers: int) -> dict[str, Any]:
    """A FeaturePipeline, cold (no cache), embedding included."""
    ds = _ptc_fm()
    pipeline = _pipeline(_backend(method), n_workers=workers)
    start = time.perf_counter()
    results = pipeline.run([ds[i] for i in graph_indices])
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "dists": [
            None if r.measurement is None else r.measurement.excitation_distribution[-1].tolist()
            for r in results
        ],
        "errors": [r.error for r in results],
        "fingerprints": [
            None if r.embedding is None else register_fingerprint(r.embedding.register) for r in results
        ],
        "settings": summarise_settings(
            [r.measurement.settings for r in results if r.measurement is not None]
        ),
        "backend_cache_key": plain(pipeline.backend.cache_key()),
        "is_default_backend": pipeline.backend.cache_key() == _default_cache_key(),
        "workers": {"processes": pipeline.n_workers, "threads_per_process": pipeline.threads_per_worker},
    }


def _one_size(backend_name: str, graph_index: int, max_memory: int) -> dict[str, Any]:
    """Features of one graph with a fresh backend, in this process (no workers), embedding included."""
    from qgnn.backends import EmuSV, Subspace

    backend = Subspace(max_memory=max_memory) if backend_name == "subspace" else EmuSV()
    pipeline = _pipeline(backend, n_workers=1)
    graph = _ptc_fm()[graph_index]
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pipeline.run_one(graph)
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "seconds": seconds,
        "error": result.error,
        "warnings": sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught}),
        "is_default_backend": backend.cache_key() == _default_cache_key(),
    }
    if result.measurement is not None:
        keep = ("energy_cutoff", "basis_dim", "truncation_js", "leaked_weight", "memory_bytes", "dt")
        out["settings"] = {k: plain(v) for k, v in result.measurement.settings.items() if k in keep}
    return out


def _child(
    target: Callable[..., dict[str, Any]], args: tuple[Any, ...], memory_bytes: int | None, q: Any
) -> None:
    """Child entry point: memory limit first, then the (untimed) imports, then the work."""
    if memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        import emu_sv  # noqa: F401  imports are nobody's time per graph
        import torch  # noqa: F401

        import qgnn.features  # noqa: F401

        _ptc_fm()
        q.put(("ready", None))
        result = target(*args)
        result["peak_rss_mb"] = _peak_rss_mb()
        q.put(("done", result))
    except BaseException as exc:  # reported to the parent, which records why the run failed
        q.put(("error", f"{type(exc).__name__}: {exc}"[:400]))


def in_child(
    target: Callable[..., dict[str, Any]],
    *args: Any,
    memory_bytes: int | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run ``target(*args)`` in a fresh spawned process.

    Returns its result with ``status="ok"``, or ``status`` ``"error"`` (an
    exception, message in ``error``), ``"died"`` (killed, e.g. by the memory
    limit) or ``"timeout"`` (no result ``timeout_s`` seconds after its imports;
    the process is killed).
    """
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, memory_bytes, q))
    proc.start()
    deadline = time.monotonic() + IMPORT_TIMEOUT_S
    try:
        while True:
            try:
                kind, payload = q.get(timeout=0.5)
            except queue_module.Empty:
                if not proc.is_alive():
                    return {"status": "died", "error": f"process exited with code {proc.exitcode}, no result"}
                if time.monotonic() > deadline:
                    return {"status": "timeout", "error": "no result in time (process killed)"}
                continue
            if kind == "ready":
                deadline = math.inf if timeout_s is None else time.monotonic() + timeout_s
            elif kind == "error":
                return {"status": "error", "error": payload}
            else:
                return {"status": "ok", **payload}
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        q.close()
        q.join_thread()


# ---------------------------------------------------------------------------- stages


def select_band(band: tuple[int, int], count: int) -> list[int]:
    """``count`` PTC_FM graph indices with ``band[0]`` to ``band[1]`` atoms (seeded draw, sorted)."""
    sizes = np.array([g.number_of_nodes() for g in _ptc_fm()])
    chosen = np.flatnonzero((sizes >= band[0]) & (sizes <= band[1]))
    rng = np.random.default_rng(0)
    return sorted(int(i) for i in rng.choice(chosen, size=min(count, len(chosen)), replace=False))


def _check(run: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Largest JS against the reference over the graphs both computed, and whether the registers match."""
    from qgnn.backends.base import js_divergence

    pairs = [
        (a, b)
        for a, b in zip(run["dists"], reference["dists"], strict=True)
        if a is not None and b is not None
    ]
    js = [float(js_divergence(np.asarray(a), np.asarray(b))) for a, b in pairs]
    mismatched = sum(
        a != b for a, b in zip(run["fingerprints"], reference["fingerprints"], strict=True) if a and b
    )
    return {
        "js_checked": len(js),
        "max_js_vs_naive": max(js) if js else None,
        "registers_differing_from_naive": mismatched,
    }


def _row(
    name: str, run: dict[str, Any], reference: dict[str, Any], graph_indices: list[int]
) -> dict[str, Any]:
    if run["status"] != "ok":
        return {"method": name, "description": METHODS[name], "status": run["status"], "error": run["error"]}
    failures = [
        {"index": i, "error": e} for i, e in zip(graph_indices, run["errors"], strict=True) if e is not None
    ]
    row = {
        "method": name,
        "description": METHODS[name],
        "status": "ok",
        "graphs": len(graph_indices),
        "failures": failures,
        "seconds": run["seconds"],
        "s_per_graph": run["seconds"] / len(graph_indices),
        "peak_rss_mb": run["peak_rss_mb"],
        "workers": run["workers"],
        "settings_read_back": run["settings"],
    }
    for key in ("backend_cache_key", "is_default_backend"):
        if key in run:
            row[key] = run[key]
    if name != "naive-emusv" and reference["status"] == "ok":
        row["speedup_vs_naive"] = reference["seconds"] / run["seconds"]
        row.update(_check(run, reference))
    return row


def bands(band_list: tuple[tuple[int, int], ...], per_band: int, workers: int) -> list[dict[str, Any]]:
    """Every method on the same graphs of each size band."""
    rows = []
    for band in band_list:
        indices = select_band(band, per_band)
        runs = {"naive-emusv": in_child(_naive, indices)}
        runs.update({m: in_child(_run_pipeline, m, indices, workers) for m in METHODS if m != "naive-emusv"})
        for name, run in runs.items():
            row = _row(name, run, runs["naive-emusv"], indices)
            rows.append({"band": f"{band[0]}-{band[1]} atoms", "graph_indices": indices, **row})
            print(_format_row(rows[-1]), flush=True)
    return rows


def whole_set(max_atoms: int, workers: int) -> dict[str, Any]:
    """The default pipeline and the naive loop on every PTC_FM graph with ≤ ``max_atoms`` atoms."""
    indices = [i for i, g in enumerate(_ptc_fm()) if g.number_of_nodes() <= max_atoms]
    naive = in_child(_naive, indices)
    pipeline = in_child(_run_pipeline, "pipeline-default", indices, workers)
    out: dict[str, Any] = {
        "dataset": "PTC_FM",
        "max_atoms": max_atoms,
        "graphs": len(indices),
        "naive": _row("naive-emusv", naive, naive, indices),
        "pipeline": _row("pipeline-default", pipeline, naive, indices),
    }
    if pipeline["status"] == "ok":
        anchor_per_graph = ANCHOR["seconds"] / ANCHOR["graphs"]
        out["speedup_vs_recorded_anchor"] = anchor_per_graph / out["pipeline"]["s_per_graph"]
    return out


def subspace_budget(memory_bytes: int) -> int:
    """Subspace's ``max_memory`` under an address-space limit: the limit less the process overhead."""
    return max(memory_bytes - PROCESS_OVERHEAD_BYTES, 2**29)


def largest_within(limit_s: float, start_atoms: int, memory_bytes: int) -> dict[str, Any]:
    """Per backend, grow the register (first PTC_FM graph of each size) until a size fails or is too slow."""
    ds = _ptc_fm()
    first_of_size: dict[int, int] = {}
    for i, g in enumerate(ds):
        first_of_size.setdefault(g.number_of_nodes(), i)
    sizes = sorted(n for n in first_of_size if n >= start_atoms)
    out: dict[str, Any] = {}
    for backend in ("subspace", "emu-sv"):
        runs: list[dict[str, Any]] = []
        stopped: dict[str, Any] = {"atoms": None, "reason": f"no PTC_FM graph larger than {max(sizes)} atoms"}
        for n in sizes:
            index = first_of_size[n]
            run = in_child(
                _one_size,
                backend,
                index,
                subspace_budget(memory_bytes),
                memory_bytes=memory_bytes,
                timeout_s=limit_s + 5.0,
            )
            runs.append({"atoms": n, "graph_index": index, **run})
            print(f"  {backend} {n} atoms (graph {index}): {_describe_size(run)}", flush=True)
            if run["status"] != "ok" or run.get("error"):
                stopped = {"atoms": n, "reason": run.get("error") or run["status"]}
                break
            if run["seconds"] > limit_s:
                stopped = {"atoms": n, "reason": f"took {run['seconds']:.1f} s > {limit_s:g} s"}
                break
        within = [
            r["atoms"] for r in runs if r["status"] == "ok" and not r.get("error") and r["seconds"] <= limit_s
        ]
        out[backend] = {
            "largest_within_limit": max(within) if within else None,
            "stopped": stopped,
            "runs": runs,
        }
    return out


# ---------------------------------------------------------------------------- report


def _describe_size(run: dict[str, Any]) -> str:
    if run["status"] != "ok":
        return f"{run['status']}: {run['error']}"
    return f"{run['seconds']:.2f} s" + (f", failed: {run['error']}" if run.get("error") else "")


def _format_row(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['band']:<12} {r['method']:<26} {r['status']}: {r['error']}"
    speed = f"{r['speedup_vs_naive']:6.1f}x" if "speedup_vs_naive" in r else "   ref "
    js = r.get("max_js_vs_naive")
    return (
        f"{r['band']:<12} {r['method']:<26} {r['s_per_graph']:8.3f} s/graph {speed} naive  "
        f"peak RSS {r['peak_rss_mb']:5.0f} MB  max JS {'-' if js is None else f'{js:.1e}'}"
        f"  failures {len(r['failures'])}"
    )


def _provenance() -> dict[str, Any]:
    import emu_sv
    import pulser
    import torch

    import qgnn

    return {
        **provenance(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "threads_env": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
        },
        "versions": {
            "python": platform.python_version(),
            "qgnn": qgnn.__version__,
            "pulser": pulser.__version__,
            "emu-sv": emu_sv.__version__,
            "torch": torch.__version__,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings (about 5 min), own output file")
    parser.add_argument("--graphs", type=int, help=f"graphs per size band (default {FULL['graphs']})")
    parser.add_argument("--workers", type=int, default=2, help="pipeline worker processes (default 2)")
    parser.add_argument("--whole-max-atoms", type=int, help="whole-set stage: largest graph (default 14)")
    parser.add_argument("--limit-s", type=float, help="time limit of the largest-register stage (default 60)")
    parser.add_argument("--start-atoms", type=int, help="largest-register stage starts here (default 12)")
    parser.add_argument("--memory-gb", type=float, help="address-space limit per size (GiB, default 6)")
    parser.add_argument(
        "--output", type=Path, help="JSON path (default benchmarks/results/feature_throughput[.quick].json)"
    )
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    graphs = args.graphs or preset["graphs"]
    whole_max = args.whole_max_atoms or preset["whole_max_atoms"]
    limit_s = args.limit_s or preset["limit_s"]
    start_atoms = args.start_atoms or preset["start_atoms"]
    memory_bytes = int((args.memory_gb or preset["memory_gb"]) * 2**30)
    output = args.output or RESULTS / (
        "feature_throughput.quick.json" if args.quick else "feature_throughput.json"
    )

    started = time.perf_counter()
    report: dict[str, Any] = {"schema": SCHEMA, "mode": "quick" if args.quick else "full", **_provenance()}
    report["anchor"] = {**ANCHOR, "s_per_graph": ANCHOR["seconds"] / ANCHOR["graphs"]}
    report["pipeline_workers"] = args.workers
    report["default_backend"] = plain(_default_cache_key())
    print(f"size bands, {graphs} graphs each, pipelines with {args.workers} workers:", flush=True)
    report["bands"] = bands(preset["bands"], graphs, args.workers)
    report["whole_set"] = whole = whole_set(whole_max, args.workers)
    if "speedup_vs_recorded_anchor" in whole:
        p, n = whole["pipeline"], whole["naive"]
        print(
            f"\nall {whole['graphs']} PTC_FM graphs ≤ {whole_max} atoms: default pipeline "
            f"{p['s_per_graph'] * 1e3:.1f} ms/graph ({args.workers} workers), naive emu-sv "
            f"{n['s_per_graph']:.3f} s/graph: {p['speedup_vs_naive']:.1f}× in this run; "
            f"max JS {p['max_js_vs_naive']:.1e} on {p['js_checked']} graphs; "
            f"{whole['speedup_vs_recorded_anchor']:.0f}× the recorded anchor "
            f"({ANCHOR['seconds']:g} s / {ANCHOR['graphs']} graphs, not run here)",
            flush=True,
        )
    print(
        f"\nlargest register within {limit_s:g} s (limit {memory_bytes / 2**30:g} GiB per size):", flush=True
    )
    report["largest_within"] = {
        "limit_s": limit_s,
        "start_atoms": start_atoms,
        "memory_limit_bytes": memory_bytes,
        "subspace_max_memory_bytes": subspace_budget(memory_bytes),
        "backends": largest_within(limit_s, start_atoms, memory_bytes),
    }
    for name, info in report["largest_within"]["backends"].items():
        print(f"{name}: {info['largest_within_limit']} atoms (stopped at {info['stopped']})")
    report["load_average_at_end"] = list(os.getloadavg())
    report["total_seconds"] = time.perf_counter() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(plain(report), indent=2) + "\n")
    print(f"\nwritten {output} in {report['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
