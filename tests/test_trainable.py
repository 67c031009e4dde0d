"""The trainable Rydberg layer: physics against independent references, gradients, device safety, training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.linalg
import torch
from pulser.devices import AnalogDevice

from qgnn.backends import EmuSV
from qgnn.backends.base import bit_matrix
from qgnn.embedding import embed
from qgnn.errors import InvalidInputError, ScheduleError
from qgnn.nn.rydberg import AtomGraph, RydbergEvolution, schedule_from_values
from qgnn.pulses import AnalogDMMDevice, build_sequence

TWO_PI = 2 * math.pi


def _labelled(graph: nx.Graph, labels: list[int]) -> nx.Graph:
    nx.set_node_attributes(graph, dict(zip(graph.nodes, labels, strict=True)), "label")
    return graph


def _randomise(layer: RydbergEvolution, seed: int, scale: float = 1.5) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def _dense_occupations(atoms: AtomGraph, layer: RydbergEvolution) -> tuple[np.ndarray, np.ndarray]:
    """⟨n_i⟩ and P(k) from numpy expm of the full 2**n Hamiltonian, segment by segment."""
    values = layer.pulse_values()
    n = atoms.n_atoms
    bits = bit_matrix(n)
    pos = atoms.positions
    r = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    u = np.where(np.eye(n, dtype=bool), 0.0, layer.device.interaction_coeff / np.where(r > 0, r, 1) ** 6)
    energy = 0.5 * np.einsum("ki,ij,kj->k", bits, u, bits)
    if values["labels"] is None:
        w = np.zeros(n)
    else:
        table = dict(zip(values["labels"], values["weights"], strict=True))
        w = np.array([table[label] for label in atoms.labels])
    dmm = values["dmm_detuning"] or 0.0
    sx = np.zeros((2**n, 2**n))
    for i in range(n):
        ops = [np.eye(2)] * n
        ops[i] = np.array([[0.0, 1.0], [1.0, 0.0]])
        term = ops[0]
        for op in ops[1:]:
            term = np.kron(term, op)
        sx += term
    psi = np.zeros(2**n, complex)
    psi[0] = 1.0
    for dur, omega, delta in zip(
        values["durations_ns"], values["amplitude"], values["detuning"], strict=True
    ):
        diag = energy - bits @ (delta + w * dmm)
        psi = scipy.linalg.expm(-1j * (omega / 2 * sx + np.diag(diag)) * dur / 1000.0) @ psi
    p = np.abs(psi) ** 2
    return bits.T @ p, np.bincount(bits.sum(1).astype(int), weights=p, minlength=n + 1)


@pytest.fixture(scope="module")
def triangle_tail() -> tuple[nx.Graph, object]:
    g = _labelled(nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)]), [0, 1, 1, 2])
    return g, embed(g, AnalogDMMDevice)


def test_torch_engine_matches_dense_expm_with_labels(triangle_tail) -> None:
    g, emb = triangle_tail
    layer = RydbergEvolution(labels=[0, 1, 2], segments=3, duration=300)
    _randomise(layer, 0)
    (atoms,) = layer.prepare([g], [emb])
    with torch.no_grad():
        out = layer([atoms])
    occ, dist = _dense_occupations(atoms, layer)
    assert np.abs(out.occupations[0].numpy() - occ).max() < 1e-10
    assert np.abs(out.excitations[0].numpy() - dist).max() < 1e-10
    assert torch.allclose(out.correlations[0].diagonal(), out.occupations[0])


@pytest.mark.parametrize(
    ("graph", "labels"),
    [
        (nx.path_graph(2), [0, 1]),
        (nx.cycle_graph(5), [0, 1, 2, 0, 1]),
        (nx.ladder_graph(4), [0, 1, 2, 0, 1, 2, 0, 1]),
    ],
)
def test_forward_matches_emu_sv_on_exported_sequence(graph: nx.Graph, labels: list[int]) -> None:
    g = _labelled(graph, labels)
    emb = embed(g, AnalogDMMDevice)
    layer = RydbergEvolution(labels=[0, 1, 2], segments=4, duration=400)
    _randomise(layer, len(labels))
    with torch.no_grad():
        out = layer(layer.prepare([g], [emb]))
    seq = build_sequence(g, emb, layer.to_schedule(), layer.device)
    (m,) = EmuSV().run([seq])
    # emu-sv steps onto every segment edge, so both are exact up to its Krylov tolerance
    assert np.abs(m.occupations[-1] - out.occupations[0].numpy()).max() < 1e-6
    assert np.abs(m.correlations[-1] - out.correlations[0].numpy()).max() < 1e-6
    assert np.abs(m.excitation_distribution[-1] - out.excitations[0].numpy()).max() < 1e-6


def test_pennylane_engine_converges_quadratically_in_the_trotter_step(triangle_tail) -> None:
    g, emb = triangle_tail
    exact = RydbergEvolution(labels=[0, 1, 2], segments=2, duration=200)
    _randomise(exact, 3)
    atoms = exact.prepare([g], [emb])
    with torch.no_grad():
        reference = exact(atoms).occupations[0]
    errors = []
    for step in (8.0, 2.0):
        layer = RydbergEvolution(
            labels=[0, 1, 2], segments=2, duration=200, engine="pennylane", trotter_step=step
        )
        layer.load_state_dict(exact.state_dict())
        with torch.no_grad():
            errors.append(float((layer(atoms).occupations[0] - reference).abs().max()))
    assert errors[1] < 2e-3
    assert errors[0] / errors[1] > 8  # O(Δ²): a 4× smaller step cuts the error ~16×


def _loss(out) -> torch.Tensor:  # type: ignore[no-untyped-def]
    weights = torch.arange(1.0, out.occupations[0].numel() + 1, dtype=torch.float64)
    return (out.occupations[0] * weights).sum() + out.connected(0).sum() + out.excitations[0][1]


@pytest.mark.parametrize("engine", ["torch", "pennylane"])
def test_gradients_match_finite_differences(triangle_tail, engine: str) -> None:
    g, emb = triangle_tail
    graph = g.subgraph([0, 1, 2]).copy()
    emb3 = embed(graph, AnalogDMMDevice)
    layer = RydbergEvolution(labels=[0, 1, 2], segments=2, duration=120, engine=engine, trotter_step=4.0)
    _randomise(layer, 5, scale=1.0)
    atoms = layer.prepare([graph], [emb3])
    layer.zero_grad()
    _loss(layer(atoms)).backward()
    eps = 1e-6
    for name, p in layer.named_parameters():
        assert p.grad is not None
        for k in range(p.numel()):
            flat = p.data.view(-1)
            values = []
            for sign in (1.0, -1.0):
                flat[k] += sign * eps
                with torch.no_grad():
                    values.append(float(_loss(layer(atoms))))
                flat[k] -= sign * eps
            fd = (values[0] - values[1]) / (2 * eps)
            assert abs(float(p.grad.view(-1)[k]) - fd) < 1e-6 * max(1.0, abs(fd)), (name, k)


@pytest.mark.parametrize("labels", [None, [0, 1, 2]])
def test_any_raw_parameters_build_on_the_device(triangle_tail, labels: list[int] | None) -> None:
    g, emb = triangle_tail
    layer = RydbergEvolution(labels=labels, segments=3, duration=240)
    device = AnalogDMMDevice if labels else AnalogDevice
    assert layer.device is device
    gen = torch.Generator().manual_seed(0)
    trials = [torch.randn(1, generator=gen).item() * 20 for _ in range(6)] + [1e6, -1e6, math.inf, -math.inf]
    for value in trials:
        with torch.no_grad():
            for p in layer.parameters():
                p.fill_(value)
        values = layer.pulse_values()
        assert all(0.0 <= a <= AnalogDevice.channels["rydberg_global"].max_amp for a in values["amplitude"])
        seq = build_sequence(g, emb, layer.to_schedule(), device)  # Pulser validates every pulse
        assert seq.get_duration() == 240
        if labels:
            local = [w * values["dmm_detuning"] for w in values["weights"]]
            dmm = AnalogDMMDevice.dmm_channels["dmm_0"]
            assert all(dmm.bottom_detuning <= d <= -dmm.min_avg_abs_detuning for d in local)
    with torch.no_grad():
        layer.pulse.raw_amplitude[0] = math.nan
    with pytest.raises(ScheduleError, match="non-finite"):
        layer.to_schedule()


def test_mixed_sizes_in_chunks_match_one_by_one() -> None:
    graphs = [_labelled(nx.path_graph(n), [k % 3 for k in range(n)]) for n in (2, 5, 3, 6)]
    embs = [embed(g, AnalogDMMDevice) for g in graphs]
    layer = RydbergEvolution(labels=[0, 1, 2], segments=2, duration=200, max_states=40)
    _randomise(layer, 7)
    atoms = layer.prepare(graphs, embs)
    with torch.no_grad():
        together = layer(atoms)
        alone = [layer([a]) for a in atoms]
    for g, single in enumerate(alone):
        assert torch.allclose(together.occupations[g], single.occupations[0], atol=1e-12)
        assert torch.allclose(together.excitations[g], single.excitations[0], atol=1e-12)
    assert together.excitation_matrix().shape == (4, 7)


def test_energy_cutoff_error_shrinks_towards_the_full_space() -> None:
    g = nx.wheel_graph(6)
    emb = embed(g, AnalogDevice)
    full = RydbergEvolution(segments=2, duration=400)
    atoms = full.prepare([g], [emb])
    with torch.no_grad():
        exact = full(atoms).occupations[0]
    errors, sizes = [], []
    for cutoff in (1.0, 3.0):
        cut = RydbergEvolution(segments=2, duration=400, energy_cutoff=cutoff)
        sizes.append(cut.engine.basis_size(atoms[0]))  # type: ignore[attr-defined]
        with torch.no_grad():
            errors.append(float((cut(atoms).occupations[0] - exact).abs().max()))
    assert sizes[0] < sizes[1] < 2**6
    assert errors[1] < errors[0] / 5 and errors[1] < 2e-3


def test_training_lowers_the_loss() -> None:
    """A fresh layer learns to reproduce the occupations of a random teacher pulse."""
    graphs = [_labelled(nx.path_graph(n), [k % 2 for k in range(n)]) for n in (3, 4)]
    graphs.append(_labelled(nx.star_graph(3), [1, 0, 0, 0]))
    embs = [embed(g, AnalogDMMDevice) for g in graphs]
    teacher = RydbergEvolution(labels=[0, 1], segments=3, duration=300)
    _randomise(teacher, 2, scale=1.0)
    atoms = teacher.prepare(graphs, embs)
    with torch.no_grad():
        target = torch.cat(teacher(atoms).occupations)
    layer = RydbergEvolution(labels=[0, 1], segments=3, duration=300)
    optimiser = torch.optim.Adam(layer.parameters(), lr=0.1)

    def loss() -> torch.Tensor:
        return ((torch.cat(layer(atoms).occupations) - target) ** 2).sum()

    first = float(loss().detach())
    for _ in range(20):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
    assert float(loss().detach()) < 0.3 * first


def test_save_writes_json_and_plot_that_rebuild_the_schedule(tmp_path, triangle_tail) -> None:
    layer = RydbergEvolution(labels=[0, 1, 2], segments=3, duration=300)
    _randomise(layer, 11)
    json_path, png = layer.save(tmp_path / "pulse.json")
    assert png.stat().st_size > 0
    loaded = json.loads(json_path.read_text())
    rebuilt, schedule = schedule_from_values(loaded), layer.to_schedule()
    assert rebuilt.segments == schedule.segments
    assert rebuilt.node_detuning.cache_key() == schedule.node_detuning.cache_key()
    assert loaded["durations_ns"] == [100, 100, 100]
    assert rebuilt.embedding_rabi_frequency == TWO_PI  # the registers' Ω, not the trained largest Ω
    assert rebuilt.max_rabi_frequency != TWO_PI


def test_bad_configurations_raise_typed_errors(triangle_tail) -> None:
    g, emb = triangle_tail
    with pytest.raises(ScheduleError, match="clock period"):
        RydbergEvolution(duration=662)
    with pytest.raises(ScheduleError, match="min_duration"):
        RydbergEvolution(segments=50, duration=400)
    with pytest.raises(ScheduleError, match="no DMM"):
        RydbergEvolution(AnalogDevice, labels=[0, 1])
    with pytest.raises(InvalidInputError, match="engine"):
        RydbergEvolution(engine="qutip")
    with pytest.raises(InvalidInputError, match="outside"):
        RydbergEvolution(amplitude=100.0)
    layer = RydbergEvolution(labels=[0, 1], segments=2, duration=200)
    with pytest.raises(InvalidInputError, match="label=2"):
        layer(layer.prepare([g], [emb]))
    with pytest.raises(InvalidInputError, match="no 'label'"):
        layer.prepare([nx.path_graph(4)], [emb])
    with pytest.raises(InvalidInputError, match="AtomGraph"):
        layer([])
    with pytest.raises(InvalidInputError, match="embedding_rabi_frequency"):
        RydbergEvolution(labels=[0, 1, 2], embedding_rabi_frequency=2.0).prepare([g], [emb])


# ----------------------------------------------------------------------------- qek-trained and qegnn


@pytest.fixture(scope="module")
def small_ptc():
    from qgnn.data import load_dataset

    ds = load_dataset("PTC_FM", max_nodes=6)
    y = np.asarray(ds.y)
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:6] for c in (0, 1)]))
    ds = ds[keep]
    return ds, [embed(g, AnalogDMMDevice) for g in ds]


def test_js_matrix_and_row_statistics_match_the_numpy_definitions() -> None:
    from qgnn.kernels import jensen_shannon
    from qgnn.nn.alignment import js_matrix
    from qgnn.nn.qegnn import row_statistics
    from qgnn.nn.transforms import correlation_encodings

    rng = np.random.default_rng(0)
    p = rng.random((5, 6))
    p[1, 3:] = 0.0  # zeros, as in padded excitation distributions
    p[2, :2] = 0.0
    p /= p.sum(1, keepdims=True)
    assert np.allclose(js_matrix(torch.from_numpy(p)).numpy(), jensen_shannon(p, p), atol=1e-12)
    c = rng.normal(size=(4, 4))
    c = c + c.T
    assert np.allclose(row_statistics(torch.from_numpy(c)).numpy(), correlation_encodings(c, 0))


def test_kernel_alignment_is_one_for_a_perfect_kernel_and_training_raises_it(small_ptc) -> None:
    from qgnn.nn.alignment import fit_kernel_alignment, kernel_target_alignment

    perfect = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    assert float(kernel_target_alignment(perfect, y, 50.0)) > 0.999
    assert abs(float(kernel_target_alignment(perfect, torch.tensor([0, 1, 0, 1]), 50.0))) < 1e-12
    ds, embs = small_ptc
    layer = RydbergEvolution(labels=sorted({v for g in ds for _, v in g.nodes(data="label")}), segments=3)
    fit = fit_kernel_alignment(layer, layer.prepare(list(ds), embs), ds.y, epochs=4, batch_size=12, lr=0.1)
    assert len(fit.alignment) == 5
    assert fit.alignment[-1] > fit.alignment[0]


def test_qek_trained_trains_on_training_graphs_only_and_saves_every_fold(
    small_ptc, tmp_path, monkeypatch
) -> None:
    import qgnn.nn.alignment as alignment
    from qgnn.evaluation import KernelModels, make_folds

    ds, embs = small_ptc
    y = np.asarray(ds.y)
    folds = make_folds(y, folds=2, seed=0)
    seen: list[int] = []
    original = alignment.fit_kernel_alignment

    def spy(layer, atoms, labels, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(len(atoms))
        return original(layer, atoms, labels, **kwargs)

    monkeypatch.setattr(alignment, "fit_kernel_alignment", spy)
    source = alignment.qek_trained_source(
        list(ds), embs, y, seed=0, out=tmp_path, dataset_name="PTC", epochs=1, batch_size=6, segments=2
    )
    models = KernelModels(y, folds, seed=0)
    models.add("qek-trained", source)
    result = models.evaluate("qek-trained")
    assert seen == [len(f.train) for f in folds]
    assert len(result.folds) == 2
    assert {"alignment_before", "alignment_after", "mu", "C"} <= set(result.folds[0].best_params)
    json_path, png = alignment.pulse_files("PTC", "qek-trained", tmp_path)
    saved = json.loads(json_path.read_text())["folds"]
    assert [(f["repeat"], f["fold"]) for f in saved] == [(0, 0), (0, 1)]
    assert schedule_from_values(saved[0]["pulse"]).duration == 660
    assert png.stat().st_size > 0


def test_quantum_evolution_gnn_reads_the_layer_in_node_order_and_backpropagates(small_ptc) -> None:
    from qgnn.nn.qegnn import QuantumEvolutionGNN, attach_qubits

    ds, embs = small_ptc
    graphs = list(ds)[:3]
    layer = RydbergEvolution(labels=sorted({v for g in ds for _, v in g.nodes(data="label")}), segments=2)
    atoms = layer.prepare(graphs, embs[:3])
    datas = [
        attach_qubits(d, a, list(g.nodes)) for d, a, g in zip(ds[:3].to_pyg(), atoms, graphs, strict=True)
    ]
    model = QuantumEvolutionGNN(layer, int(datas[0].x.shape[1]), 2, hist_length=7, edge_dim=None)
    feats = model.featurise(datas, atoms)
    out = layer(atoms)
    for g, data in enumerate(feats):
        node = list(graphs[g].nodes)[1]
        qubit = atoms[g].node_ids.index(node)
        assert float(data.x_q[1, 0].detach()) == pytest.approx(
            float(out.occupations[g][qubit].detach()), abs=1e-6
        )
        assert data.hist_q.shape == (1, 7)
        assert data.edge_attr_q.shape == (data.edge_index.shape[1], 1)
    logits = model(datas, atoms)
    assert logits.shape == (3, 2)
    logits[:, 0].sum().backward()
    assert layer.pulse.raw_amplitude.grad is not None and layer.pulse.raw_amplitude.grad.abs().sum() > 0
    assert layer.pulse.raw_weights.grad is not None and layer.pulse.raw_weights.grad.abs().sum() > 0


@pytest.mark.parametrize("train_pulse", [True, False])
def test_qegnn_folds_train_and_save_the_pulses(small_ptc, tmp_path, train_pulse: bool) -> None:
    from qgnn.evaluation import make_folds
    from qgnn.nn.alignment import pulse_files
    from qgnn.nn.qegnn import qegnn_folds

    ds, embs = small_ptc
    folds = make_folds(ds.y, folds=2, seed=0)
    result, files = qegnn_folds(
        ds,
        embs,
        folds,
        seed=0,
        epochs=2,
        out=tmp_path,
        progress=False,
        train_pulse=train_pulse,
        hidden=8,
        layers=1,
        segments=2,
        duration=200,
    )
    name = "qegnn" if train_pulse else "qegnn-fixed"
    assert result.model == name and len(result.folds) == 2
    assert all(0.0 <= f.metrics["accuracy"] <= 1.0 for f in result.folds)
    assert set(pulse_files(ds.name, name, tmp_path)) <= set(files)
    pulses = json.loads(pulse_files(ds.name, name, tmp_path)[0].read_text())["folds"]
    initial = RydbergEvolution(labels=[0], segments=2, duration=200).pulse_values()["amplitude"]
    moved = any(
        abs(a - b) > 1e-9 for p in pulses for a, b in zip(p["pulse"]["amplitude"], initial, strict=True)
    )
    assert moved == train_pulse


def test_run_context_entry_reads_the_pipeline_embeddings(small_ptc, tmp_path) -> None:
    from types import SimpleNamespace

    from qgnn.evaluation import make_folds
    from qgnn.nn.alignment import pulse_files, qek_trained_gram

    ds, embs = small_ptc
    ctx = SimpleNamespace(
        dataset=ds,
        graphs=list(ds),
        y=np.asarray(ds.y),
        results={"plain": [SimpleNamespace(embedding=e) for e in embs]},
        config=SimpleNamespace(seed=0),
        out=tmp_path,
        files=[],
    )
    source = qek_trained_gram(ctx)
    assert ctx.files == pulse_files(ds.name, "qek-trained", tmp_path)
    family = source(make_folds(ctx.y, folds=2, seed=0)[0])
    assert all(gram.shape == (len(ds), len(ds)) for gram in family.values())


def test_qgnn_train_runs_the_trained_pulse_models_inside_each_training_fold(tmp_path: Path) -> None:
    from qgnn.experiment import ExperimentConfig, run_experiment

    config = ExperimentConfig(
        dataset="PTC_FM",
        models=("qek-svm", "qek-trained", "qegnn", "qegnn-fixed"),
        max_nodes=6,
        limit=24,
        folds=2,
        repeats=1,
        gnn_epochs=2,
        out=str(tmp_path),
    )
    report = run_experiment(config, progress=False)
    assert [r.model for r in report.results] == list(config.models)
    assert all(len(r.folds) == 2 for r in report.results)
    pulses = json.loads((tmp_path / "PTC_FM-qek-trained-pulses.json").read_text())["folds"]
    assert [(p["repeat"], p["fold"]) for p in pulses] == [(0, 0), (0, 1)]
    for fold in pulses:  # alignment on the training graphs rose, and the pulse moved off its start
        assert fold["alignment"][-1] > fold["alignment"][0]
        assert max(abs(a - 2 * math.pi) for a in fold["pulse"]["amplitude"]) > 1e-3
