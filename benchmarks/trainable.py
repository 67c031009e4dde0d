"""Trainable pulses: engine speed and accuracy, epoch time, and trained vs untrained pulse.

Four stages (PTC_FM / MUTAG graphs embedded on AnalogDMMDevice, node labels
as trainable DMM weights, 660 ns pulse of 5 segments unless stated):

1. **Speed**: forward + backward time per graph of :class:`qgnn.nn.RydbergEvolution`
   at 4–14 atoms, for the ``torch`` engine (exact, one graph per call and all
   graphs of a size in one call) and the ``pennylane`` engine (Trotter step
   ``--trotter-step`` ns, up to ``--pennylane-max`` atoms).
2. **Accuracy of the engines**: max |Δ⟨n_i⟩| of the torch engine against
   emu-sv run on the exported sequence, of the PennyLane engine against the
   torch engine for Trotter steps 4, 2, 1 ns, and of the torch engine's
   energy-truncated basis (``energy_cutoff`` = 2, 5) against its full space,
   on random pulses.
3. **Epoch time**: one kernel-alignment epoch (forward + backward of every
   mini-batch of 32) over the PTC_FM graphs with ≤ 14 atoms, one thread,
   for the full space and ``energy_cutoff=5``.
4. **Trained vs untrained pulse**, same folds, same head: ``qek-trained``
   (kernel-target alignment per training fold, then QEK-SVM tuned by inner
   CV) against the same QEK-SVM on the initial pulse (Ω = 2π rad/µs, δ = 0,
   weights ½, δ_DMM = −2π rad/µs), and ``qegnn`` (pulse and GIN head trained
   together) against ``qegnn-fixed`` (the head on the initial pulse).

Run the full benchmark (hours on one core; the accuracy stage dominates):
``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/trainable.py``
writes ``benchmarks/results/trainable.json``; ``--quick`` (a few minutes:
small graphs for the speed and accuracy stages, 3 folds, few epochs; the
epoch-time stage is the same) writes ``benchmarks/results/trainable.quick.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qgnn.backends import EmuSV
from qgnn.data import load_dataset
from qgnn.embedding import embed
from qgnn.evaluation import KernelModels, make_folds
from qgnn.nn.alignment import kernel_target_alignment, qek_trained_source
from qgnn.nn.qegnn import qegnn_folds
from qgnn.nn.rydberg import RydbergEvolution
from qgnn.pulses import AnalogDMMDevice, build_sequence

RESULTS = Path(__file__).parent / "results"


def _labels(graphs: Sequence[Any]) -> list[Any]:
    return sorted({v for g in graphs for _, v in g.nodes(data="label")}, key=repr)


def _embedded(name: str, max_nodes: int, limit: int | None, seed: int) -> tuple[Any, list[Any]]:
    """The dataset's graphs with ≤ max_nodes nodes that embed exactly, and their embeddings."""
    ds = load_dataset(name, max_nodes=max_nodes)
    if limit is not None and limit < len(ds):
        rng = np.random.default_rng(seed)
        y = np.asarray(ds.y)
        per_class = [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]
        share = [max(2, round(limit * len(p) / len(y))) for p in per_class]
        ds = ds[np.sort(np.concatenate([p[:k] for p, k in zip(per_class, share, strict=True)]))]
    keep, embs = [], []
    for pos, g in enumerate(ds):
        emb = embed(g, AnalogDMMDevice, seed=seed)
        if emb.is_exact:
            keep.append(pos)
            embs.append(emb)
    return ds[np.asarray(keep)], embs


def _randomise(layer: RydbergEvolution, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 1.5)


def _loss(out: Any) -> torch.Tensor:
    return sum(
        ((p**2).sum() + occ.sum() for p, occ in zip(out.excitations, out.occupations, strict=True)),
        torch.zeros((), dtype=torch.float64),
    )


def speed(
    sizes: Sequence[int], pennylane_max: int, trotter_step: float, per_size: int
) -> list[dict[str, Any]]:
    """Forward + backward seconds per graph, by engine and register size."""
    ds = load_dataset("PTC_FM", max_nodes=max(sizes))
    labels = _labels(ds)
    rows = []
    for n in sizes:
        graphs = [g for g in ds if g.number_of_nodes() == n][:per_size]
        embs = [embed(g, AnalogDMMDevice) for g in graphs]
        for engine in ("torch", "pennylane"):
            if engine == "pennylane" and n > pennylane_max:
                continue
            layer = RydbergEvolution(labels=labels, engine=engine, trotter_step=trotter_step)
            atoms = layer.prepare(graphs, embs)
            layer(atoms[:1])  # warm caches (basis, QNode) outside the timing
            calls = [[a] for a in atoms] + ([atoms] if engine == "torch" and len(atoms) > 1 else [])
            for batch in calls:
                start = time.perf_counter()
                layer.zero_grad()
                _loss(layer(batch)).backward()
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "atoms": n,
                        "engine": engine,
                        "graphs_per_call": len(batch),
                        "seconds_per_graph": seconds / len(batch),
                    }
                )
            done = [r for r in rows if r["atoms"] == n and r["engine"] == engine]
            single = np.mean([r["seconds_per_graph"] for r in done if r["graphs_per_call"] == 1])
            print(f"speed: {n:2d} atoms {engine:9s} {single:8.3f} s/graph (one per call)", flush=True)
    return rows


def engine_accuracy(sizes: Sequence[int], emu_sizes: Sequence[int]) -> dict[str, Any]:
    """Max |Δ⟨n_i⟩| of torch vs emu-sv, pennylane vs torch (by Trotter step), cutoff vs full space."""
    ds = load_dataset("PTC_FM", max_nodes=max([*sizes, *emu_sizes]))
    labels = _labels(ds)
    out: dict[str, Any] = {"torch_vs_emusv": {}, "pennylane_vs_torch": {}, "cutoff_vs_full": {}}
    for n in sorted({*sizes, *emu_sizes}):
        g = next(g for g in ds if g.number_of_nodes() == n)
        emb = embed(g, AnalogDMMDevice)
        exact = RydbergEvolution(labels=labels)
        _randomise(exact, n)
        atoms = exact.prepare([g], [emb])
        with torch.no_grad():
            reference = exact(atoms).occupations[0]
        if n in emu_sizes:
            (m,) = EmuSV().run([build_sequence(g, emb, exact.to_schedule(), exact.device)])
            out["torch_vs_emusv"][n] = float(np.abs(m.occupations[-1] - reference.numpy()).max())
        if n in sizes:
            out["pennylane_vs_torch"][n] = {}
            for step in (4.0, 2.0, 1.0):
                layer = RydbergEvolution(labels=labels, engine="pennylane", trotter_step=step)
                layer.load_state_dict(exact.state_dict())
                with torch.no_grad():
                    diff = (layer(atoms).occupations[0] - reference).abs().max()
                out["pennylane_vs_torch"][n][step] = float(diff)
        out["cutoff_vs_full"][n] = {}
        for cutoff in (2.0, 5.0):
            layer = RydbergEvolution(labels=labels, energy_cutoff=cutoff)
            layer.load_state_dict(exact.state_dict())
            with torch.no_grad():
                out["cutoff_vs_full"][n][cutoff] = float(
                    (layer(atoms).occupations[0] - reference).abs().max()
                )
        print(f"engine accuracy: {n} atoms {json.dumps({k: v.get(n) for k, v in out.items()})}", flush=True)
    return out


def epoch_time(max_nodes: int, batch_size: int, seed: int) -> list[dict[str, Any]]:
    """Seconds of one kernel-alignment epoch (forward + backward of every mini-batch) over PTC_FM."""
    ds, embs = _embedded("PTC_FM", max_nodes, None, seed)
    y = torch.as_tensor(np.asarray(ds.y))
    rows = []
    for cutoff in (None, 5.0):
        layer = RydbergEvolution(labels=_labels(ds), energy_cutoff=cutoff)
        atoms = layer.prepare(list(ds), embs)
        start = time.perf_counter()
        basis = sum(layer.engine.basis_size(a) for a in atoms)  # type: ignore[attr-defined]
        setup = time.perf_counter() - start
        order = np.random.default_rng(seed).permutation(len(atoms))
        start = time.perf_counter()
        for begin in range(0, len(order), batch_size):
            idx = order[begin : begin + batch_size]
            out = layer([atoms[i] for i in idx])
            layer.zero_grad()
            (-kernel_target_alignment(out.excitation_matrix(max_nodes + 1), y[idx], 1.0)).backward()
        seconds = time.perf_counter() - start
        rows.append(
            {
                "energy_cutoff": cutoff,
                "graphs": len(atoms),
                "max_nodes": max_nodes,
                "basis_states": basis,
                "basis_seconds": setup,
                "epoch_seconds": seconds,
            }
        )
        print(
            f"epoch: {len(atoms)} PTC_FM graphs ≤ {max_nodes} atoms, cutoff {cutoff}: {seconds:.1f} s "
            f"(+ {setup:.1f} s basis, {basis} states)",
            flush=True,
        )
    return rows


def _summary(result: Any) -> dict[str, Any]:
    summ = result.summary()
    return {
        "model": result.model,
        "summary": {k: list(v) for k, v in summ.items()},
        "seconds": result.seconds,
        "folds": [{"metrics": f.metrics, "best_params": f.best_params} for f in result.folds],
    }


def accuracy(
    name: str,
    max_nodes: int,
    limit: int | None,
    folds: int,
    repeats: int,
    seed: int,
    kta_epochs: int,
    gnn_epochs: int,
    out: Path,
) -> dict[str, Any]:
    """Trained vs untrained pulse, same folds: qek-trained vs QEK on the initial pulse; qegnn vs fixed."""
    ds, embs = _embedded(name, max_nodes, limit, seed)
    y = np.asarray(ds.y)
    split = make_folds(y, folds=folds, repeats=repeats, seed=seed)
    results = []
    models = KernelModels(y, split, seed=seed)
    for label, epochs in (("qek-initial-pulse", 0), ("qek-trained", kta_epochs)):
        models.add(
            label,
            qek_trained_source(
                list(ds), embs, y, seed=seed, out=out, dataset_name=name, name=label, epochs=epochs
            ),
        )
        results.append(_summary(models.evaluate(label)))
    for train_pulse in (False, True):
        result, _ = qegnn_folds(
            ds, embs, split, seed=seed, epochs=gnn_epochs, out=out, progress=False, train_pulse=train_pulse
        )
        results.append(_summary(result))
    for r in results:
        acc, bal = r["summary"]["accuracy"], r["summary"]["balanced_accuracy"]
        print(
            f"{name} ({len(ds)} graphs ≤ {max_nodes} atoms, {folds}-fold × {repeats}): {r['model']:18s} "
            f"acc {acc[0]:.3f} ± {acc[1]:.3f}, balanced {bal[0]:.3f} ± {bal[1]:.3f} ({r['seconds']:.0f} s)",
            flush=True,
        )
    return {
        "dataset": name,
        "graphs": len(ds),
        "max_nodes": max_nodes,
        "folds": folds,
        "repeats": repeats,
        "kta_epochs": kta_epochs,
        "gnn_epochs": gnn_epochs,
        "models": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small settings (a few minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trotter-step", type=float, default=4.0, help="PennyLane Trotter step (ns)")
    parser.add_argument(
        "--figures",
        type=Path,
        default=None,
        help="folder of the learned pulses and learning curves "
        "(default benchmarks/results/trainable-pulses/; --quick: a temporary folder)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/)")
    parser.add_argument("--max-nodes", type=int, default=14, help="largest graphs of the accuracy stage")
    parser.add_argument("--folds", type=int, default=5, help="outer folds of the accuracy stage")
    parser.add_argument("--kta-epochs", type=int, default=10, help="kernel-alignment epochs of qek-trained")
    parser.add_argument("--gnn-epochs", type=int, default=30, help="epochs of qegnn / qegnn-fixed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    quick = args.quick
    started = time.perf_counter()
    payload: dict[str, Any] = {
        "quick": quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
        "speed": speed(
            (4, 6, 8) if quick else tuple(range(4, 15, 2)),
            6 if quick else 10,
            args.trotter_step,
            2 if quick else 3,
        ),
        "engine_accuracy": engine_accuracy((4, 6) if quick else (4, 6, 8), (4, 8) if quick else (4, 8, 12)),
        "epoch": epoch_time(14, 32, args.seed),
    }
    figures = args.figures or (Path(tempfile.mkdtemp()) if quick else RESULTS / "trainable-pulses")
    runs = (
        [("PTC_FM", 8, 60, 3, 1, 3, 5), ("MUTAG", 12, None, 3, 1, 3, 5)]
        if quick
        else [
            (name, args.max_nodes, None, args.folds, 1, args.kta_epochs, args.gnn_epochs)
            for name in ("PTC_FM", "MUTAG")
        ]
    )
    payload["accuracy"] = [accuracy(*run[:5], args.seed, *run[5:], figures) for run in runs]
    payload["seconds"] = time.perf_counter() - started
    path = args.out or RESULTS / ("trainable.quick.json" if quick else "trainable.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(payload, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    )
    print(f"wrote {path} ({payload['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
