"""The trainable Rydberg layer: physics against independent references, gradients, device safety, training."""

from __future__ import annotations

import json
import math

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
