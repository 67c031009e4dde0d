"""The README's "Measured" section, generated from ``benchmarks/results/*.json``.

Every figure in the block between ``<!-- measured:start -->`` and
``<!-- measured:end -->`` in README.md is computed here from the JSON the
benchmark scripts write; a figure whose JSON is missing or predates its
script's current layout reads "not measured on this commit" instead.

Run: ``.venv/bin/python benchmarks/readme_figures.py --write`` rewrites the
block; ``--check`` exits 1 (and prints the difference) when README.md does
not match the JSON (``tests/test_readme_figures.py`` runs it).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
START = "<!-- measured:start -->"
END = "<!-- measured:end -->"
GENERATED = "<!-- generated from benchmarks/results/*.json by benchmarks/readme_figures.py --write -->"
#: The feature_throughput.json layout this generator reads (feature_throughput.SCHEMA).
THROUGHPUT_SCHEMA = 2
NOT_MEASURED = "not measured on this commit"


class FiguresError(Exception):
    """A results file is missing or lacks a figure; the message says which."""


def _load(results: Path, name: str) -> dict[str, Any]:
    path = results / name
    if not path.is_file():
        raise FiguresError(f"{name} is missing")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _sci(x: float) -> str:
    """1.2e-4 style (no zero-padded exponent)."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _times(x: float) -> str:
    """A speed ratio: 242×, 18×, 3.6×."""
    return f"{x:.0f}×" if x >= 10 else f"{x:.1f}×"


def _rabi(omega: float) -> str:
    turns = omega / (2 * math.pi)
    if math.isclose(turns, round(turns), rel_tol=1e-9) and round(turns) >= 1:
        return "2π rad/µs" if round(turns) == 1 else f"{round(turns)}·2π rad/µs"
    return f"{omega:.2f} rad/µs"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def embedding(results: Path) -> str:
    """Exact unit-disk registers per dataset and the RDKit-coordinate reference (embedding_quality.json)."""
    data = _load(results, "embedding_quality.json")
    rows = data["rows"]
    sizes = sorted({r["max_nodes"] for r in rows})
    if len(sizes) != 1:
        raise FiguresError(f"embedding_quality.json mixes node limits {sizes}")
    exact = _and([f"{r['qgnn_exact']} / {r['graphs']} {r['dataset']}" for r in rows])
    reference = _and([str(r["rdkit_at_r"]) for r in rows])
    per_graph = _and([f"{r['seconds_mean'] * 1e3:.0f} ms ({r['dataset']})" for r in rows])
    return (
        f"Embedding on {data['device']} at Ω = {_rabi(data['rabi_frequency_rad_per_us'])}, graphs with "
        f"≤ {sizes[0]} nodes: {exact} graphs are exact unit-disk registers (RDKit 2D coordinates "
        f"with the closest atoms {data['min_atom_distance_um']:g} µm apart, tested at the "
        f"{data['blockade_radius_um']:.2f} µm blockade radius: {reference}); mean time per graph "
        f"{per_graph} (`benchmarks/embedding_quality.py`)."
    )


def _throughput(results: Path) -> dict[str, Any]:
    data = _load(results, "feature_throughput.json")
    if data.get("schema") != THROUGHPUT_SCHEMA or data.get("mode") != "full":
        raise FiguresError("feature_throughput.json predates the script's current layout")
    return data


def _backend_words(cache_key: dict[str, Any]) -> str:
    settings = cache_key.get("settings", {})
    keys = ("tolerance", "occupation_tolerance")
    named = [f"{k.replace('_', ' ')} {settings[k]:g}" for k in keys if settings.get(k)]
    return "; ".join([f"`{cache_key['name']}` backend", *named])


def _provenance(data: dict[str, Any]) -> str:
    where = f"commit {str(data['commit'])[:7]}"
    if data.get("uncommitted_changes_in"):
        where += f" with uncommitted changes in {', '.join(data['uncommitted_changes_in'])}"
    load = data["load_average_at_start"][0]
    return f"Measured on {data['cpus']} cores (load average {load:.1f} at the start) at {where}"


def features(results: Path) -> str:
    """Default pipeline vs the plain emu-sv loop on the whole ≤ 14-atom set, and the recorded anchor."""
    data = _throughput(results)
    whole = data["whole_set"]
    pipe, naive = whole["pipeline"], whole["naive"]
    if pipe["status"] != "ok" or naive["status"] != "ok":
        raise FiguresError(f"the whole-set run failed: {pipe.get('error') or naive.get('error')}")
    if not pipe["is_default_backend"]:
        raise FiguresError("the whole-set pipeline did not run the default backend")
    workers = pipe["workers"]
    failed = len(pipe["failures"])
    differing = pipe["registers_differing_from_naive"]
    anchor = data["anchor"]
    anchor_per_graph = anchor["seconds"] / anchor["graphs"]
    return (
        f"Features, default pipeline ({_backend_words(pipe['backend_cache_key'])}; "
        f"{workers['processes']} worker processes × {workers['threads_per_process']} thread; cold cache, "
        f"embedding included): {whole['graphs'] - failed} / {whole['graphs']} {whole['dataset']} graphs "
        f"with ≤ {whole['max_atoms']} atoms in {pipe['s_per_graph'] * 1e3:.1f} ms per graph. The plain "
        f"emu-sv loop the benchmark runs on the same registers ({naive['workers']['processes']} process, "
        f"{naive['workers']['torch_threads']} torch thread) takes {naive['s_per_graph']:.2f} s per graph: "
        f"the pipeline is {_times(pipe['speedup_vs_naive'])} faster, with a largest Jensen–Shannon "
        f"divergence of {_sci(pipe['max_js_vs_naive'])} against it over the {pipe['js_checked']} graphs "
        "checked"
        + (f" ({differing} registers differed)" if differing else "")
        + f". Recorded external anchor, not rerun here: {anchor['what']}: {anchor['seconds']:g} s for "
        f"{anchor['graphs']} {anchor['dataset']} graphs of ≤ {anchor['max_atoms']} atoms on "
        f"{anchor['machine']}, i.e. {anchor_per_graph:.2f} s per graph, "
        f"{_times(anchor_per_graph / pipe['s_per_graph'])} the pipeline's time per graph. "
        f"{_provenance(data)} (`benchmarks/feature_throughput.py`)."
    )


def largest(results: Path) -> str:
    """Largest register per backend whose features come back within the limit, and why the growth stopped."""
    data = _throughput(results)
    info = data["largest_within"]
    parts = []
    for backend, run in info["backends"].items():
        atoms = run["largest_within_limit"]
        stopped = run["stopped"]
        reason = str(stopped["reason"])
        reason = reason if len(reason) <= 90 else reason[:87] + "..."
        at = f"{stopped['atoms']} atoms: " if stopped["atoms"] is not None else ""
        notes = [f"stopped at {at}{reason}"]
        if run["runs"] and run["runs"][0].get("is_default_backend"):
            notes.insert(0, "the default backend")
        got = "none" if atoms is None else atoms
        parts.append(f"{got} atoms with `{backend}` ({'; '.join(notes)})")
    return (
        f"Largest register whose features come back within {info['limit_s']:g} s, one PTC_FM graph per "
        f"size from {info['start_atoms']} atoms up, grown until a size failed or took longer, each size in "
        f"its own process limited to {info['memory_limit_bytes'] / 2**30:g} GiB of address space: "
        f"{_and(parts)} "
        "(`benchmarks/feature_throughput.py`)."
    )


def _quantum_variants() -> set[str]:
    """The single quantum models (``quantum-best`` picks among them, it is not one)."""
    from qgnn.models import MODELS

    return {name for name, spec in MODELS.items() if spec.quantum and name != "quantum-best"}


def accuracy(results: Path) -> str:
    """The leaderboard's headline: quantum-best against classical-best per dataset, and where it is."""
    data = _load(results, "accuracy.json")
    config = data["config"]
    if not (results / "accuracy.md").is_file():
        raise FiguresError("accuracy.md is missing")
    if not data.get("complete"):
        raise FiguresError("accuracy.json is from an unfinished run")
    rows, closest, ahead = [], [], 0
    quantum_variants = _quantum_variants()
    for name, entry in data["datasets"].items():
        models = entry["models"]
        variants = [(m["balanced_accuracy"][0], n) for n, m in models.items() if n in quantum_variants]
        if variants:
            score, variant = max(variants)
            closest.append(f"{name} {variant} {100 * score:.1f}")
        diff = entry["quantum_minus_classical"]
        if diff["low"] > 0:
            ahead += 1
        rows.append(
            f"{name} {100 * models['quantum-best']['balanced_accuracy'][0]:.1f} vs "
            f"{100 * models['classical-best']['balanced_accuracy'][0]:.1f} "
            f"(paired difference {100 * diff['mean']:+.1f}, 95 % interval "
            f"[{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}])"
        )
    return (
        f"Accuracy (`benchmarks/accuracy.py`, {len(rows)} datasets, {config['folds']}-fold × "
        f"{config['repeats']} repeats, every model on the same graphs and folds): balanced accuracy (%) of "
        "quantum-best against classical-best, each picking its model by inner CV inside the training "
        f"folds: {_and(rows)}. Quantum-best is ahead, with the interval above 0, on {ahead} of "
        f"{len(rows)} datasets. The single quantum variant that came closest (the best test-fold mean, "
        f"descriptive only): {_and(closest)}. Every model's row is in `benchmarks/results/accuracy.md`."
    )


def backends(results: Path) -> str:
    """Subspace against emu-sv and emu-mps per schedule and size band: mean time and largest Δ⟨n_i⟩."""
    data = _load(results, "backend_comparison.json")
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for e in data["table"]:
        cells.setdefault((e["schedule"], e["band"]), {})[e["backend"]] = e
    rows = []
    limit = data["settings"]["limit_s"]
    for (schedule, band), by_backend in cells.items():
        parts = []
        for name in ("subspace", "emu-sv", "emu-mps"):
            e = by_backend.get(name)
            if e is None:
                continue
            if "mean_s" not in e:
                tail = " on a smaller band, not rerun" if e.get("skipped") == e.get("graphs") else ""
                parts.append(f"{name} no result within {limit:g} s{tail}")
                continue
            error, js = e.get("max_occupation_error"), e.get("max_js")
            rss = f"{e['max_peak_rss_mb'] / 1024:.1f} GB"
            accuracy = f", JS ≤ {_sci(js)}, Δ⟨n_i⟩ ≤ {_sci(error)}" if error else ""
            ratio = e.get("speedup_vs_emu-sv")
            faster = f"; {ratio:.1f}× emu-sv's speed" if ratio else ""
            parts.append(f"{name} {e['mean_s']:.2f} s ({rss}{accuracy}{faster})")
        rows.append(f"{schedule} {band} atoms: {', '.join(parts)}")
    settings = data["settings"]
    legend = {
        "qek": "qek: the QEK pulse",
        "sweep": "sweep: AdiabaticSweep",
        "trained": "trained: the trained MUTAG pulse, 5 constant segments with node labels as DMM detuning",
    }
    schedules = _and([legend.get(name, name) for name in settings["schedules"]])
    return (
        f"Backends on the same registers ({schedules}; {settings['graphs']} graph(s) per band, each run "
        "in its own one-thread process: mean time, peak RSS of the process, errors against emu-sv or, "
        f"where it gave no result, a tighter Subspace; `benchmarks/backend_comparison.py`{_run_at(data)}): "
        f"{_and(rows)}."
    )


def mutag(results: Path) -> str:
    """Every MUTAG graph through the default pipeline, cold cache: time, memory, failures, error estimates."""
    data = _load(results, "mutag_full.json")
    settings = data["settings"]
    bands = data["bands"]
    coarsened = sum(b.get("coarsened", 0) for b in bands)
    failed = len(data["failed"])
    estimates = [
        f"{b['band']} atoms: |Δ⟨n_i⟩| ≤ {_sci(b['max_truncation_occupation_error'])}"
        for b in bands
        if b["max_truncation_occupation_error"] is not None
    ]
    outcome = f"{data['featurised']} / {settings['graphs']} featurised"
    if coarsened:
        outcome += f" ({coarsened} of them coarsened to fit the memory budget)"
    compact = data.get("compact_lists", [])
    if compact:
        runs = [
            f"graph {g['graph']} ({g['atoms']} atoms, cutoff {g['energy_cutoff']:.3g}, search's peak "
            f"{g['memory_bytes'] / 2**30:.1f} GiB, |Δ⟨n_i⟩| ≤ {_sci(g['truncation_occupation_error'])})"
            for g in compact
        ]
        outcome += f" ({len(compact)} with compact parents' lists: {_and(runs)})"
    if failed:
        kinds = sorted({str(why).split(":")[0] for why in data["failed"].values()})
        outcome += f", {failed} failed ({_and(kinds)}: graphs {_and([str(g) for g in data['failed']])})"
    return (
        "Every MUTAG graph, default pipeline with "
        f"`Subspace(over_budget='{settings['over_budget']}')` (memory budget"
        f" {settings['memory_budget_bytes'] / 2**30:.1f} GiB per worker's run and "
        f"{settings['memory_budget_bytes'] * data['machine']['cpus'] / 2**30:.1f} GiB for a graph run "
        "alone), cold cache, "
        f"{settings['workers']} workers: {outcome} in {data['wall_s'] / 60:.1f} min, peak RSS "
        f"{data['peak_rss_mb']['main'] / 1024:.2f} GiB (main process, which runs the big graphs alone) and "
        f"{data['peak_rss_mb']['largest_worker'] / 1024:.2f} GiB (largest worker); largest error estimates "
        f"{_and(estimates)} (`benchmarks/mutag_full.py`{_run_at(data)})." + _mutag_memory(results)
    )


def _run_at(data: dict[str, Any]) -> str:
    commit = data["machine"].get("commit")
    return f", run at commit {commit[:7]}" if commit else ", run before the script recorded its commit"


def _mutag_memory(results: Path) -> str:
    """The memory estimates of every MUTAG graph against the budget (``mutag_full.py --estimate-only``)."""
    try:
        data = _load(results, "mutag_memory.json")
    except FiguresError:
        return ""
    bands = data["bands"]
    over = [g for g in data["graphs"] if g["fits"] == "over"]
    needs = [f"{g['bytes'] / 2**30:.1f} GiB ({g['atoms']} atoms)" for g in over]
    alone = [g for g in data["graphs"] if g["fits"] == "alone"]
    lower = sorted({g["cutoff"] for g in alone} - {max(g["cutoff"] for g in data["graphs"])})
    at_lower = [str(g["graph"]) for g in alone if g["cutoff"] in lower]
    text = (
        f" Memory estimates (`--estimate-only`{_run_at(data)}): "
        f"{sum(b['worker'] for b in bands)} graphs fit a worker's share, {len(alone)} only the whole budget"
    )
    compact = [str(g["graph"]) for g in alone if g.get("compact_lists")]
    if compact:
        text += f" (graphs {_and(compact)} with compact parents' lists, from the counts: a lower bound)"
    if at_lower:
        text += (
            f" (graphs {_and(at_lower)} at cutoff {_and([f'{c:.3g}' for c in lower])}, estimated from below)"
        )
    return text + (f", {len(over)} are over it, needing {_and(needs)}." if over else ", none is over it.")


def calibration(results: Path) -> str:
    """How far the Subspace error estimate (difference between cutoffs) is above the actual error."""
    data = _load(results, "subspace_calibration.json")
    settings = data["settings"]
    accepted = [s for s in data["summary"] if s["cutoff"] >= 19.99]
    worst = max(max(s[f"max_ratio_{f}"] for f in ("occupation", "correlation", "js")) for s in accepted)
    return (
        "Subspace error estimate: on MUTAG molecules of "
        f"{min(settings['sizes'])}–{max(settings['sizes'])} atoms ({settings['graphs_per_size']} per size; "
        f"{_and(settings['schedules'])}), the actual error of ⟨n_i⟩, C_ij and P(k) at cutoffs ≥ 20 × E_drive "
        f"was at most {worst:.2f}× the difference to the previous cutoff, which the backend reports as its "
        "estimate (`benchmarks/subspace_calibration.py`)."
    )


def gpu(results: Path) -> str:
    """EmuSV(gpu=True) per size on the GPU machine, and Subspace on this machine checked against it."""
    data = _load(results, "gpu_table.json")
    card = str(data["gpu_machine"]["gpu"]).split(",")[0]
    ours = {(r["schedule"], r["n_atoms"]): r for r in data["rows"] if r["status"] == "ok"}
    sizes = []
    for ref in sorted(data["gpu_rows"], key=_size):
        if ref["schedule"] != "qek" or ref["n_atoms"] < 20 or "seconds" not in ref:
            continue
        mine = ours.get(("qek", ref["n_atoms"]))
        if mine is None:
            subspace = "not run"
        elif mine["settings"].get("coarsened"):
            cutoff = mine["energy_cutoff"]
            subspace = f"over its memory budget, coarsened (cutoff {cutoff:.3g}): {mine['seconds']:.0f} s"
        elif _from_below(mine["settings"]):
            subspace = (
                f"{mine['seconds']:.1f} s (cutoff {mine['energy_cutoff']:.3g}, estimated from the step below:"
                " the next did not fit its memory budget)"
            )
        else:
            subspace = f"{mine['seconds']:.1f} s"
        sizes.append(
            f"{ref['n_atoms']} atoms {ref['seconds']:.1f} s "
            f"({ref['peak_gpu_mb'] / 1024:.1f} GiB{'' if ref['status'] == 'ok' else ', past the case limit'})"
            f" / {subspace}"
        )
    settings = _and(
        sorted(
            {
                f"dt {r['settings']['dt']:g} ns, Krylov tolerance {r['settings']['krylov_tolerance']:g}"
                for r in data["gpu_rows"]
            }
        )
    )
    text = (
        f"`EmuSV(gpu=True)` on one {card} ({settings}; QEK, one MUTAG molecule per size; peak GPU "
        f"memory) against the default `subspace` on one core of this machine: {_and(sizes)}. "
    )
    sweeps = [
        f"{r['n_atoms']} atoms {r['seconds']:.1f} s"
        for r in sorted(data["gpu_rows"], key=_size)
        if r["schedule"] == "sweep" and "seconds" in r
    ]
    if sweeps:
        text += f"The adiabatic sweep on the GPU: {_and(sweeps)}. "
    exact = [r for r in ours.values() if not r["settings"].get("coarsened")]
    parts = []
    for schedule in sorted({r["schedule"] for r in exact}):
        sel = [r for r in exact if r["schedule"] == schedule]
        atoms = sorted(r["n_atoms"] for r in sel)
        span = f"{atoms[0]}–{atoms[-1]} atoms" if len(atoms) > 1 else f"{atoms[0]} atoms"
        worst = {f: max(r[f] for r in sel) for f in ("occupation_error", "correlation_error", "js")}
        estimate = {f: max(r[f"truncation_{f}"] for r in sel) for f in worst}
        within = all(r[f] <= r[f"truncation_{f}"] for r in sel for f in worst)
        parts.append(
            f"{schedule} {span}: |Δ⟨n_i⟩| ≤ {_sci(worst['occupation_error'])}, "
            f"|ΔC_ij| ≤ {_sci(worst['correlation_error'])}, JS ≤ {_sci(worst['js'])}"
            + (
                ", each within the run's own estimate"
                if within
                else f" (estimates up to {_sci(estimate['occupation_error'])}, "
                f"{_sci(estimate['correlation_error'])}, {_sci(estimate['js'])})"
            )
        )
    if parts:
        text += f"Subspace against emu-sv: {'; '.join(parts)}. "
    for r in (r for r in ours.values() if r["settings"].get("coarsened")):
        text += (
            f"The coarsened {r['n_atoms']}-atom run (cutoff {r['energy_cutoff']:.3g}) is off by |Δ⟨n_i⟩| "
            f"{_sci(r['occupation_error'])}, |ΔC_ij| {_sci(r['correlation_error'])}, JS {_sci(r['js'])} "
            f"(estimates {_sci(r['truncation_occupation_error'])}, "
            f"{_sci(r['truncation_correlation_error'])}, {_sci(r['truncation_js'])}). "
        )
    return text + f"(`benchmarks/gpu_table.py`, Subspace{_run_at(data)})." + _gpu_compact(results)


def _gpu_compact(results: Path) -> str:
    """The runs that needed compact parents' lists, against the same GPU rows (``--only``, a later commit)."""
    try:
        data = _load(results, "gpu_table_compact.json")
    except FiguresError:
        return ""
    runs = [r for r in data["rows"] if r["status"] == "ok" and r["settings"].get("compact_lists")]
    parts = [
        f"the {r['n_atoms']}-atom molecule (graph {r['index']}, {r['schedule']}) at cutoff "
        f"{r['energy_cutoff']:.3g} in {r['seconds']:.0f} s "
        f"(one core, peak RSS {r['peak_rss_mb'] / 1024:.1f} GiB), "
        f"off by |Δ⟨n_i⟩| {_sci(r['occupation_error'])}, |ΔC_ij| {_sci(r['correlation_error'])}, "
        f"JS {_sci(r['js'])} (estimates {_sci(r['truncation_occupation_error'])}, "
        f"{_sci(r['truncation_correlation_error'])}, {_sci(r['truncation_js'])})"
        for r in runs
    ]
    if not parts:
        return ""
    return (
        f" With compact parents' lists the default `subspace` returns {_and(parts)} "
        f"(`benchmarks/gpu_table.py compare --only`{_run_at(data)})."
    )


def _from_below(settings: dict[str, Any]) -> bool:
    """The run's result was estimated from a lower cutoff, tried after it (the next did not fit)."""
    tried = settings.get("cutoffs_tried") or []
    cutoff = settings["energy_cutoff"]
    return len(tried) > 1 and math.isfinite(cutoff) and tried[-1] < cutoff


def _size(row: dict[str, Any]) -> int:
    return int(row["n_atoms"])


def _atoms(entry: dict[str, Any]) -> str:
    return f" with ≤ {entry['max_nodes']} atoms" if "max_nodes" in entry else ""


def trainable(results: Path) -> str:
    """Trained against untrained pulse on the same folds, the epoch time and the engines' errors."""
    data = _load(results, "trainable.json")
    if data.get("quick"):
        raise FiguresError("trainable.json is a quick run")
    epoch = next(e for e in data["epoch"] if e["energy_cutoff"] is None)
    accuracy = data["engine_accuracy"]
    torch_err = max(accuracy["torch_vs_emusv"].values())
    trotter = max(steps["4.0"] for steps in accuracy["pennylane_vs_torch"].values())
    rows = []
    for run in data["accuracy"]:
        score = {m["model"]: 100 * m["summary"]["balanced_accuracy"][0] for m in run["models"]}
        rows.append(
            f"{run['dataset']} ({run['graphs']} graphs ≤ {run['max_nodes']} atoms, {run['folds']}-fold): "
            f"QEK {score['qek-initial-pulse']:.1f} untrained → {score['qek-trained']:.1f} trained "
            f"({run['kta_epochs']} alignment epochs per fold), GIN head {score['qegnn-fixed']:.1f} on the "
            f"untrained pulse → {score['qegnn']:.1f} trained end to end"
        )
    return (
        "Trainable pulses (`benchmarks/trainable.py`, one thread): one kernel-alignment epoch over "
        f"{epoch['graphs']} PTC_FM graphs{_atoms(epoch)} takes {epoch['epoch_seconds']:.0f} s with the "
        f"exact torch engine, which agrees with emu-sv on the exported sequence to {_sci(torch_err)} "
        "in ⟨n_i⟩; "
        f"the PennyLane engine's Trotter error at 4 ns steps is ≤ {_sci(trotter)}. Balanced accuracy (%), "
        f"pulse chosen inside each training fold: {_and(rows)}."
    )


FIGURES: dict[str, tuple[str, Callable[[Path], str]]] = {
    "embedding": ("Embedding (`benchmarks/embedding_quality.py`)", embedding),
    "features": ("Features (`benchmarks/feature_throughput.py`)", features),
    "largest": ("Largest register within the time limit (`benchmarks/feature_throughput.py`)", largest),
    "accuracy": ("Accuracy (`benchmarks/accuracy.py`)", accuracy),
    "backends": ("Backends (`benchmarks/backend_comparison.py`)", backends),
    "mutag": ("Every MUTAG graph (`benchmarks/mutag_full.py`)", mutag),
    "calibration": ("Subspace error estimate (`benchmarks/subspace_calibration.py`)", calibration),
    "gpu": ("GPU emulator and Subspace beyond 22 atoms (`benchmarks/gpu_table.py`)", gpu),
    "trainable": ("Trainable pulses (`benchmarks/trainable.py`)", trainable),
}


def render(results: Path = RESULTS) -> str:
    """The generated block's lines (markers excluded), one wrapped bullet per figure."""
    lines = [GENERATED]
    for label, figure in FIGURES.values():
        try:
            text = figure(results)
        except (FiguresError, KeyError, TypeError, ValueError) as exc:
            detail = str(exc) if isinstance(exc, FiguresError) else f"{type(exc).__name__} {exc}"
            text = f"{label}: {NOT_MEASURED} ({detail})."
        lines.append(
            textwrap.fill(
                text,
                width=80,
                initial_indent="- ",
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines) + "\n"


def replace_block(readme: str, body: str) -> str:
    """README text with the lines between the markers replaced by ``body``; the rest untouched."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise FiguresError(f"README must hold one {START} line followed by one {END} line")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the block in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md differs from the JSON")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    current = args.readme.read_text()
    try:
        wanted = replace_block(current, render(args.results))
    except FiguresError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    if args.write:
        if wanted != current:
            args.readme.write_text(wanted)
        print(f"{args.readme}: measured block {'rewritten' if wanted != current else 'already up to date'}")
        return 0
    if wanted == current:
        return 0
    diff = difflib.unified_diff(
        current.splitlines(), wanted.splitlines(), "README.md", "generated", lineterm="", n=1
    )
    print("\n".join(diff))
    print(f"{args.readme} differs from benchmarks/results: run benchmarks/readme_figures.py --write")
    return 1


if __name__ == "__main__":
    sys.exit(main())
