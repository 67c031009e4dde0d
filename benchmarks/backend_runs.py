"""Shared by the backend benchmarks: registers to run, and one backend run per fresh process.

Every timed run happens in its own spawned child (one thread), so its wall
time, CPU time and peak RSS are its own and imports are not timed; a run that
exceeds its time limit is killed and reported as such. Sequences travel to
the child as Pulser abstract representations.

Backends are named by a short spec (see :data:`BACKENDS`); every row records
the settings it ran with, read back from the backend (``cache_key()``) and
from the Measurement (``settings``).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import queue as queue_module
import resource
import subprocess
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one core per run: the Subspace kernels too

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: Short names of the backends the scripts compare.
BACKENDS: dict[str, str] = {
    "subspace": "Subspace() — the pipeline's default (JS and |Δ⟨n_i⟩|, |ΔC_ij| ≤ 1e-3)",
    "subspace-tight": "Subspace(tolerance=1e-6, occupation_tolerance=1e-5) — reference beyond emu-sv",
    "emu-sv": "EmuSV() — exact state vector, default settings (dt = 10 ns)",
    "emu-mps": "EmuMPS() — default settings (dt = 10 ns, precision 1e-5, max bond 1024)",
    "emu-sv-gpu": "EmuSV(gpu=True) — where a CUDA GPU is available",
    "subspace-coarsen": "Subspace(over_budget='coarsen') — over the budget: the largest cutoff that fits",
}
SCHEDULES = ("qek", "sweep", "trained")
#: The trained pulse the ``trained`` schedule runs: fold 0 of the committed MUTAG QEK training run.
TRAINED_PULSE = RESULTS / "trainable-pulses" / "MUTAG-qek-trained-pulses.json"


def make_backend(spec: str, max_memory: int | None = None) -> Any:
    """The backend of a spec in :data:`BACKENDS`."""
    from qgnn.backends import EmuMPS, EmuSV, Subspace

    if spec == "subspace":
        return Subspace(max_memory=max_memory)
    if spec == "subspace-tight":
        return Subspace(tolerance=1e-6, occupation_tolerance=1e-5, max_memory=max_memory)
    if spec == "emu-sv":
        return EmuSV()
    if spec == "emu-mps":
        return EmuMPS()
    if spec == "emu-sv-gpu":
        return EmuSV(gpu=True)
    if spec == "subspace-coarsen":
        return Subspace(over_budget="coarsen", max_memory=max_memory)
    raise ValueError(f"unknown backend {spec!r}; one of {sorted(BACKENDS)}")


def make_schedule(name: str) -> Any:
    """A schedule of :data:`SCHEDULES`.

    ``qek``: ConstantDrive() (Ω = 2π rad/µs, δ = 0, 660 ns); ``sweep``:
    AdiabaticSweep() (2752 ns); ``trained``: the piecewise-constant pulse
    training exports (:data:`TRAINED_PULSE`: 5 segments of 132 ns, node labels
    as DMM detuning, on AnalogDMMDevice).
    """
    from qgnn.nn.rydberg.pulse import schedule_from_values
    from qgnn.pulses import AdiabaticSweep, ConstantDrive

    if name == "trained":
        return schedule_from_values(json.loads(TRAINED_PULSE.read_text())["folds"][0]["pulse"])
    return {"qek": ConstantDrive, "sweep": AdiabaticSweep}[name]()


def make_device(schedule: str) -> Any:
    """The device a schedule's registers are embedded and built on (a DMM for node labels)."""
    from pulser.devices import AnalogDevice

    from qgnn.pulses import AnalogDMMDevice

    return AnalogDMMDevice if schedule == "trained" else AnalogDevice


@dataclass(frozen=True)
class Case:
    """One register to run: where it comes from, its size, and its sequence (abstract repr)."""

    source: str
    index: int
    n_atoms: int
    sequence: str


def dataset_cases(
    dataset: str, schedule: str, sizes: set[int] | None = None, per_size: int | None = None
) -> list[Case]:
    """Sequences of a shipped dataset's graphs, embedded by the pipeline on the schedule's device.

    ``per_size`` graphs of each size in ``sizes`` (all when ``None``), taken in dataset order.
    """
    from qgnn.data import load_dataset
    from qgnn.features import FeaturePipeline

    ds = load_dataset(dataset)
    taken: dict[int, int] = {}
    chosen = []
    for i in range(len(ds)):
        n = ds[i].number_of_nodes()
        if (sizes is not None and n not in sizes) or (per_size is not None and taken.get(n, 0) >= per_size):
            continue
        taken[n] = taken.get(n, 0) + 1
        chosen.append(i)
    pipe = FeaturePipeline(
        schedule=make_schedule(schedule),
        device=make_device(schedule),
        cache_dir=False,
        progress=False,
        n_workers=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = pipe.build_sequences([ds[i] for i in chosen])
    cases = []
    for i, item in zip(chosen, built, strict=True):
        seq = getattr(item, "sequence", None)
        if seq is not None:
            cases.append(Case(dataset, i, len(seq.register.qubit_ids), seq.to_abstract_repr()))
    return cases


def _child(spec: str, sequence: str, max_memory: int | None, out: Any) -> None:
    """Run one backend on one sequence; put its features, settings, times and peak RSS on ``out``."""
    try:
        import pulser
        import torch

        torch.set_num_threads(1)
        seq = pulser.Sequence.from_abstract_repr(sequence)
        backend = make_backend(spec, max_memory)
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        wall, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (m,) = backend.run([seq])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_initialized() else None
        out.put(
            {
                "status": "ok",
                "seconds": wall,
                "cpu_seconds": cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "import_rss_mb": base_rss,
                "peak_gpu_mb": gpu_mb,
                "occupations": m.occupations[-1].tolist(),
                "connected": m.connected_correlations().tolist(),
                "excitations": m.excitation_distribution[-1].tolist(),
                "settings": plain(m.settings),
                "backend_settings": plain(backend.cache_key()["settings"]),
            }
        )
    except Exception as exc:  # reported per run, never fatal to the benchmark
        out.put({"status": "error", "error": f"{type(exc).__name__}: {exc}"})


def run_isolated(
    spec: str, case: Case, timeout_s: float, max_memory: int | None = None, import_allowance_s: float = 120.0
) -> dict[str, Any]:
    """Run ``spec`` on ``case`` in a fresh process; kill it after ``timeout_s`` plus ``import_allowance_s``.

    The run's own clock excludes imports; a run that reports more than ``timeout_s`` counts as a timeout.
    """
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(spec, case.sequence, max_memory, out))
    start = time.perf_counter()
    proc.start()
    try:
        row = out.get(timeout=timeout_s + import_allowance_s)
    except queue_module.Empty:
        proc.kill()
        allowed = f"{timeout_s:g} s (+{import_allowance_s:g} s for imports)"
        row = {"status": "timeout", "error": f"no result within {allowed}"}
    proc.join(timeout=30)
    if proc.is_alive():
        proc.kill()
    row["process_seconds"] = time.perf_counter() - start
    if row["status"] == "ok" and row["seconds"] > timeout_s:
        row["status"] = "timeout"
    return {"backend": spec, "source": case.source, "index": case.index, "n_atoms": case.n_atoms, **row}


def errors(row: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, float]:
    """JS (natural log) of P(k), max |Δ⟨n_i⟩| and max |ΔC_ij| of a run against a reference run."""
    from qgnn.backends.base import js_divergence

    return {
        "js": float(js_divergence(np.array(row["excitations"]), np.array(ref["excitations"]))),
        "occupation_error": float(np.abs(np.subtract(row["occupations"], ref["occupations"])).max()),
        "correlation_error": float(np.abs(np.subtract(row["connected"], ref["connected"])).max()),
    }


def plain(value: Any) -> Any:
    """JSON-ready copy: mappings → dicts, sequences → lists, numpy scalars → Python, ±inf/NaN → strings."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_report(report: Mapping[str, Any], name: str, *, quick: bool, output: Path | None) -> Path:
    """Write ``report`` as JSON (:func:`plain`) to ``output``, by default ``results/<name>[.quick].json``."""
    path = output or RESULTS / (f"{name}.quick.json" if quick else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(report), indent=2))
    print(f"wrote {path}")
    return path


def provenance() -> dict[str, Any]:
    """The git commit the benchmark runs from and the top folders (qgnn, benchmarks) with uncommitted changes.

    ``commit`` is None where the checkout has no git history (e.g. a copy on another machine).
    """
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=root, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout

    head, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--", "qgnn", "benchmarks")
    return {
        "commit": head.strip() if head else None,
        "uncommitted_changes_in": sorted({line[3:].split("/")[0] for line in (status or "").splitlines()}),
    }


def machine() -> dict[str, Any]:
    """Platform, CPU count, memory, load average and commit at the time of the run."""
    import qgnn

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        **provenance(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(pages / 2**30, 1),
        "load_average": list(os.getloadavg()),
        "qgnn": qgnn.__version__,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
