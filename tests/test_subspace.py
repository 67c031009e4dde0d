"""Tests of the energy-truncated Rydberg backend against emu-sv and dense numpy references."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pulser
import pytest
import scipy.linalg
from pulser.devices import AnalogDevice, MockDevice
from pulser.waveforms import BlackmanWaveform, ConstantWaveform, RampWaveform

from qgnn.backends.base import Backend, Measurement, bit_matrix, js_divergence
from qgnn.backends.emulators import EmuSV
from qgnn.backends.subspace import (
    BasisTooLargeError,
    Subspace,
    TruncationWarning,
    interaction_matrix,
    rydberg_basis,
)
from qgnn.errors import BackendError, InvalidInputError, QgnnError
from qgnn.pulses import ConstantDrive

TWO_PI = 2 * math.pi


# --------------------------------------------------------------------------- helpers


def _molecule(n: int, seed: int) -> np.ndarray:
    """Random molecule-like layout: each atom 5–6.5 µm from an earlier one, none closer than 5 µm."""
    rng = np.random.default_rng(seed)
    pts = [np.zeros(2)]
    while len(pts) < n:
        angle, r = rng.uniform(0, 2 * np.pi), rng.uniform(5.0, 6.5)
        p = pts[rng.integers(len(pts))] + r * np.array([np.cos(angle), np.sin(angle)])
        if min(np.linalg.norm(p - q) for q in pts) >= 5.0:
            pts.append(p)
    return np.array(pts)


def _line(n: int, spacing: float = 5.5) -> np.ndarray:
    return np.array([[spacing * i, 0.0] for i in range(n)])


def _ring(n: int, spacing: float = 6.0) -> np.ndarray:
    radius = spacing / (2 * np.sin(np.pi / n))
    angles = 2 * np.pi * np.arange(n) / n
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _register(coords: np.ndarray) -> pulser.Register:
    return pulser.Register.from_coordinates(np.asarray(coords), prefix="q")


def _qek(coords: np.ndarray, device=AnalogDevice, **kw) -> pulser.Sequence:
    return ConstantDrive(**kw).build(_register(coords), device)


def _sequence(coords: np.ndarray, pulses: list[pulser.Pulse], device=AnalogDevice) -> pulser.Sequence:
    seq = pulser.Sequence(_register(coords), device)
    seq.declare_channel("rydberg_global", "rydberg_global")
    for p in pulses:
        seq.add(p, "rydberg_global")
    return seq


def _dense_hamiltonian(coords: np.ndarray, c6: float, omega: float, delta: float, phi: float) -> np.ndarray:
    """Pulser's H on the full 2**n space, built from Kronecker products (qubit 0 = most significant)."""
    n = len(coords)
    eye = np.eye(2)
    proj = np.diag([0.0, 1.0]).astype(complex)  # |1⟩ = Rydberg
    raise_ = np.array([[0, 0], [1, 0]], dtype=complex)  # |1⟩⟨0|
    drive = 0.5 * omega * (np.exp(1j * phi) * raise_ + np.exp(-1j * phi) * raise_.conj().T)

    def site(op: np.ndarray, i: int) -> np.ndarray:
        out = np.eye(1)
        for k in range(n):
            out = np.kron(out, op if k == i else eye)
        return out

    h = sum(site(drive, i) - delta * site(proj, i) for i in range(n))
    for i, j in itertools.combinations(range(n), 2):
        h = h + c6 / np.linalg.norm(coords[i] - coords[j]) ** 6 * site(proj, i) @ site(proj, j)
    return h


def _evolve_dense(h_segments: list[tuple[np.ndarray, float]], n: int) -> np.ndarray:
    psi = np.zeros(2**n, complex)
    psi[0] = 1.0
    for h, t_ns in h_segments:
        psi = scipy.linalg.expm(-1j * h * t_ns * 1e-3) @ psi
    return np.abs(psi) ** 2


# --------------------------------------------------------------------------- exactness


def test_full_space_matches_dense_expm_on_four_atoms() -> None:
    coords = np.array([[0.0, 0.0], [5.5, 0.0], [11.0, 1.0], [4.0, 6.0]])
    seq = _qek(coords, amplitude=TWO_PI, detuning=0.7 * TWO_PI, duration=660)
    (m,) = Subspace(energy_cutoff=math.inf).run([seq])
    h = _dense_hamiltonian(coords, AnalogDevice.interaction_coeff, TWO_PI, 0.7 * TWO_PI, 0.0)
    ref = _evolve_dense([(h, 660.0)], 4)
    assert m.exact and m.probabilities.shape == (1, 16)
    assert np.abs(m.probabilities[0] - ref).max() < 1e-10
    assert m.settings["basis_dim"] == 16 and m.settings["truncation_js"] == 0.0


def test_phase_convention_matches_dense_reference() -> None:
    # a detuned pulse then a phase-shifted one: the populations depend on the sign of φ
    coords = np.array([[0.0, 0.0], [7.0, 0.0], [3.0, 6.5]])
    c6 = AnalogDevice.interaction_coeff
    p1 = pulser.Pulse.ConstantPulse(300, TWO_PI, TWO_PI, 0.0)
    p2 = pulser.Pulse.ConstantPulse(400, TWO_PI, -0.5 * TWO_PI, 1.1)
    seq = _sequence(coords, [p1, p2])
    (m,) = Subspace(energy_cutoff=math.inf).run([seq])
    # Pulser waits (fall time + phase-jump time) before the second pulse, which starts at t2; each jump of
    # the per-ns samples (ns 299 → 300 and t2 − 1 → t2) is one 1-ns step at the average of its two sides
    t2 = seq.get_duration() - 400
    assert t2 > 300
    segments = [
        (_dense_hamiltonian(coords, c6, TWO_PI, TWO_PI, 0.0), 299.0),
        (_dense_hamiltonian(coords, c6, 0.5 * TWO_PI, 0.5 * TWO_PI, 0.0), 1.0),
        (_dense_hamiltonian(coords, c6, 0.0, 0.0, 0.0), t2 - 301.0),
        (_dense_hamiltonian(coords, c6, 0.5 * TWO_PI, -0.25 * TWO_PI, 0.55), 1.0),
        (_dense_hamiltonian(coords, c6, TWO_PI, -0.5 * TWO_PI, 1.1), 400.0),
    ]
    ref = _evolve_dense(segments, 3)
    wrong_sign = _evolve_dense([(h.conj(), t) for h, t in segments], 3)
    assert np.abs(m.probabilities[0] - ref).max() < 1e-10
    assert np.abs(ref - wrong_sign).max() > 1e-2  # the check above does see the sign
    (emu,) = EmuSV(dt=1.0).run([seq])
    assert np.abs(m.probabilities[0] - emu.probabilities[0]).max() < 1e-6


@pytest.mark.parametrize(
    ("coords", "device"),
    [
        (_molecule(7, seed=1), AnalogDevice),
        (_molecule(9, seed=2), AnalogDevice),
        (_line(8), AnalogDevice),
        (_ring(8), AnalogDevice),
        (_molecule(8, seed=3) * 1.5, MockDevice),  # another C6, read from the device
    ],
    ids=["molecule7", "molecule9", "line8", "ring8", "mockdevice8"],
)
def test_qek_drive_matches_emu_sv_within_tolerance(coords: np.ndarray, device) -> None:
    seq = _qek(coords, device=device)
    (ref,) = EmuSV().run([seq])
    (m,) = Subspace(tolerance=1e-3).run([seq])
    js = js_divergence(m.excitation_distribution, ref.excitation_distribution)
    assert js.max() <= 1e-3
    assert m.settings["truncation_js"] <= 1e-3
    assert np.abs(m.occupations - ref.occupations).max() < 0.02
    assert m.settings["basis_dim"] < 2 ** len(coords)  # it did truncate
    # an exact run agrees with emu-sv to its Krylov precision
    (full,) = Subspace(energy_cutoff=math.inf).run([seq])
    assert np.abs(full.probabilities - ref.probabilities).max() < 1e-6


def test_truncation_error_is_large_and_reported_at_a_tiny_cutoff() -> None:
    coords = _molecule(8, seed=4)
    seq = _qek(coords)
    (exact,) = Subspace(energy_cutoff=math.inf).run([seq])
    with pytest.warns(TruncationWarning, match="leaked weight"):
        (coarse,) = Subspace(energy_cutoff=0.5, tolerance=1e-3).run([seq])
    js_coarse = js_divergence(coarse.excitation_distribution, exact.excitation_distribution).max()
    assert js_coarse > 1e-3
    assert coarse.settings["leaked_weight"] > 1e-2
    (auto,) = Subspace(tolerance=1e-3).run([seq])
    js_auto = js_divergence(auto.excitation_distribution, exact.excitation_distribution).max()
    assert js_auto <= 1e-3 < js_coarse
    assert auto.settings["leaked_weight"] < coarse.settings["leaked_weight"]
    with pytest.raises(BackendError, match="truncation error above tolerance"):
        Subspace(energy_cutoff=0.5, on_excess="raise").run([seq])


def test_tighter_tolerance_gives_smaller_error() -> None:
    seq = _qek(_molecule(9, seed=5))
    (exact,) = Subspace(energy_cutoff=math.inf).run([seq])
    errors = []
    for tol in (1e-2, 1e-4, 1e-6):
        (m,) = Subspace(tolerance=tol).run([seq])
        err = js_divergence(m.excitation_distribution, exact.excitation_distribution).max()
        assert err <= tol
        errors.append(err)
    assert errors[2] < errors[0]
    (bits,) = Subspace(tolerance=1e-4, criterion="bitstrings").run([seq])
    assert js_divergence(bits.probabilities, exact.probabilities).max() <= 1e-4


def test_time_dependent_pulse_matches_emu_sv() -> None:
    coords = _molecule(5, seed=6)
    pulses = [
        pulser.Pulse(RampWaveform(200, 0.0, TWO_PI), RampWaveform(200, -TWO_PI, TWO_PI), 0.3),
        pulser.Pulse(BlackmanWaveform(300, 0.4 * np.pi), ConstantWaveform(300, TWO_PI), 1.2),
        pulser.Pulse(RampWaveform(100, TWO_PI, 0.0), ConstantWaveform(100, 0.5 * TWO_PI), 1.2),
    ]
    seq = _sequence(coords, pulses)
    times = (0.3, 0.55, 1.0)
    (ref,) = EmuSV(dt=1.0).run([seq], evaluation_times=times)
    (m,) = Subspace(energy_cutoff=math.inf, dt=2.0).run([seq], evaluation_times=times)
    assert np.abs(m.probabilities - ref.probabilities).max() < 1e-4
    (auto,) = Subspace(tolerance=1e-4).run([seq], evaluation_times=times)
    assert js_divergence(auto.excitation_distribution, ref.excitation_distribution).max() <= 1e-4


def test_multiple_evaluation_times_match_emu_sv_and_single_runs() -> None:
    seq = _qek(_molecule(7, seed=7))
    times = (0.2, 0.37, 1.0)  # 0.37 × 660 ns = 244.2 ns, off the ns grid
    (ref,) = EmuSV().run([seq], evaluation_times=times)
    (m,) = Subspace(energy_cutoff=math.inf).run([seq], evaluation_times=times)
    assert m.evaluation_times == times and m.probabilities.shape == (3, 2**7)
    assert np.abs(m.probabilities - ref.probabilities).max() < 1e-6
    (single,) = Subspace(energy_cutoff=math.inf).run([seq], evaluation_times=(0.37,))
    assert np.abs(single.probabilities[0] - m.probabilities[1]).max() < 1e-10
    # the three times really differ
    assert js_divergence(m.excitation_distribution[0], m.excitation_distribution[2]) > 1e-3


def test_measurement_fields_are_consistent() -> None:
    (m,) = Subspace().run([_qek(_ring(6))], evaluation_times=(0.5, 1.0))
    bits = bit_matrix(6)
    assert np.allclose(m.probabilities.sum(1), 1.0)
    assert np.allclose(m.occupations, m.probabilities @ bits)
    assert np.allclose(m.correlations, np.einsum("tk,ki,kj->tij", m.probabilities, bits, bits))
    assert np.allclose(m.excitation_distribution.sum(1), 1.0)
    assert m.backend == "subspace" and m.qubit_ids == tuple(f"q{i}" for i in range(6))
    back = Measurement.from_arrays(m.to_arrays())
    assert json.loads(json.dumps(back.settings))["basis_dim"] == m.settings["basis_dim"]
    assert np.array_equal(back.probabilities, m.probabilities)


# --------------------------------------------------------------------------- basis and helpers


def test_basis_matches_brute_force_enumeration() -> None:
    coords = _molecule(9, seed=8)
    u = interaction_matrix(coords, AnalogDevice.interaction_coeff)
    cutoff = 5 * TWO_PI
    basis = rydberg_basis(u, cutoff)
    bits = bit_matrix(9)
    energy = 0.5 * np.einsum("ki,ij,kj->k", bits, u, bits)
    assert np.array_equal(basis.states, np.flatnonzero(energy <= cutoff))
    assert np.allclose(basis.interaction, energy[basis.states])
    assert np.array_equal(basis.n_excited, bits[basis.states].sum(1))
    k_from, k_to = basis.up
    diff = basis.states[k_to] ^ basis.states[k_from]
    assert np.all((diff & (diff - 1)) == 0) and np.all(basis.states[k_to] > basis.states[k_from])
    kept = set(basis.states.tolist())
    expected_edges = sum(
        1 for s in kept for j in range(9) if not s >> (8 - j) & 1 and (s | 1 << (8 - j)) in kept
    )
    assert k_from.size == expected_edges
    src, _, d_e = basis.boundary
    assert d_e.size > 0 and np.all(basis.interaction[src] + d_e > cutoff)
    assert rydberg_basis(u, math.inf).dim == 2**9
    with pytest.raises(BasisTooLargeError, match="more than 10 bitstrings"):
        rydberg_basis(u, cutoff, max_states=10)
    for bad in (u[:3], -u, u + np.eye(9), np.full((2, 2), np.nan)):
        with pytest.raises(BackendError, match="interactions"):
            rydberg_basis(bad, cutoff)


def test_js_divergence_properties() -> None:
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.0, 1.0])
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    assert js_divergence(p, q) == pytest.approx(math.log(2))
    r = np.array([0.2, 0.3, 0.5])
    m = 0.5 * (p + r)
    direct = 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m, strict=True) if a > 0) + 0.5 * sum(
        b * math.log(b / c) for b, c in zip(r, m, strict=True) if b > 0
    )
    assert js_divergence(p, r) == pytest.approx(direct)
    assert js_divergence(r, p) == pytest.approx(direct)
    assert js_divergence(np.stack([p, r]), np.stack([r, r])).shape == (2,)
    with pytest.raises(InvalidInputError):
        js_divergence(p, r[:2])
    with pytest.raises(InvalidInputError):
        js_divergence(np.array([np.nan, 1.0]), np.array([0.5, 0.5]))


# --------------------------------------------------------------------------- sampling


def test_sampled_counts_follow_the_exact_distribution() -> None:
    seq = _qek(_molecule(6, seed=9))
    (exact,) = Subspace().run([seq])
    backend = Subspace(seed=7)
    (m,) = backend.run([seq], shots=4000, evaluation_times=(0.5, 1.0))
    assert not m.exact and m.counts is not None
    assert [sum(c.values()) for c in m.counts] == [4000, 4000]
    assert all(len(s) == 6 and set(s) <= {"0", "1"} for s in m.counts[1])
    p = exact.excitation_distribution[0]
    sigma = np.sqrt(p * (1 - p) / 4000)
    assert np.all(np.abs(m.excitation_distribution[1] - p) <= 5 * sigma + 1e-12)
    (again,) = Subspace(seed=7).run([seq], shots=4000, evaluation_times=(0.5, 1.0))
    assert again.counts == m.counts
    (other,) = Subspace(seed=8).run([seq], shots=4000, evaluation_times=(0.5, 1.0))
    assert other.counts != m.counts


def test_more_than_twenty_atoms_sample_but_refuse_dense_probabilities() -> None:
    grid = np.array([[5.5 * i, 5.5 * j] for i in range(7) for j in range(3)])
    seq = _qek(grid, duration=100)
    backend = Subspace(energy_cutoff=1.0, on_excess="ignore", seed=1)
    with pytest.raises(BackendError, match="at most 20 atoms"):
        backend.run([seq])
    (m,) = backend.run([seq], shots=50)
    assert m.n_qubits == 21 and sum(m.counts[0].values()) == 50


# --------------------------------------------------------------------------- protocol and bad input


def test_protocol_and_cache_key() -> None:
    backend = Subspace()
    assert isinstance(backend, Backend) and backend.name == "subspace"
    key = backend.cache_key()
    assert key["name"] == "subspace" and key["settings"]["tolerance"] == 1e-3
    json.dumps(key)
    assert Subspace(tolerance=1e-5).cache_key() != key
    assert Subspace(energy_cutoff=10).cache_key() != key
    assert Subspace(dt=1.0).cache_key() != key
    assert Subspace().cache_key() == key


@pytest.mark.parametrize("shots", [0, -3, 1.5, True, "10"])
def test_bad_shots(shots) -> None:
    with pytest.raises(BackendError, match="shots"):
        Subspace().run([_qek(_line(2))], shots=shots)


@pytest.mark.parametrize("times", [(), (0.0,), (1.5,), (0.5, 0.2), (float("nan"),)])
def test_bad_evaluation_times(times) -> None:
    with pytest.raises(BackendError, match="evaluation_times"):
        Subspace().run([_qek(_line(2))], evaluation_times=times)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"energy_cutoff": 0},
        {"energy_cutoff": -1.0},
        {"energy_cutoff": float("nan")},
        {"energy_cutoff": "5"},
        {"tolerance": -1e-3},
        {"tolerance": math.inf},
        {"dt": 0.0},
        {"max_basis": 0},
        {"max_basis": 2.5},
        {"criterion": "occupations"},
        {"on_excess": "shout"},
        {"seed": 1.5},
    ],
)
def test_bad_settings(kwargs) -> None:
    with pytest.raises(BackendError):
        Subspace(**kwargs)


def test_unsupported_sequences_are_rejected_with_the_supported_set() -> None:
    reg = _register(_line(3, 6.0))
    local = pulser.Sequence(reg, MockDevice)
    local.declare_channel("ryd", "rydberg_local", initial_target="q0")
    local.add(pulser.Pulse.ConstantPulse(100, 1.0, 0.0, 0.0), "ryd")
    raman = pulser.Sequence(reg, MockDevice)
    raman.declare_channel("ram", "raman_global")
    raman.add(pulser.Pulse.ConstantPulse(100, 1.0, 0.0, 0.0), "ram")
    slm = pulser.Sequence(reg, MockDevice)
    slm.declare_channel("ryd", "rydberg_global")
    slm.config_slm_mask(["q0"])
    slm.add(pulser.Pulse.ConstantPulse(100, 1.0, 0.0, 0.0), "ryd")
    for seq in (local, raman, slm):
        with pytest.raises(BackendError, match="exactly one global Rydberg channel"):
            Subspace().run([seq])
    empty = pulser.Sequence(reg, AnalogDevice)
    empty.declare_channel("ryd", "rydberg_global")
    with pytest.raises(BackendError, match="empty"):
        Subspace().run([empty])
    param = pulser.Sequence(reg, AnalogDevice)
    param.declare_channel("ryd", "rydberg_global")
    amp = param.declare_variable("amp")
    param.add(pulser.Pulse.ConstantPulse(100, amp, 0.0, 0.0), "ryd")
    with pytest.raises(BackendError, match="parametrized"):
        Subspace().run([param])


def test_bad_batches() -> None:
    seq = _qek(_line(2))
    with pytest.raises(BackendError, match="wrap the single sequence"):
        Subspace().run(seq)
    with pytest.raises(BackendError, match="sequence 1 of 2"):
        Subspace().run([seq, "not a sequence"])
    with pytest.raises(BackendError, match="list of pulser.Sequence"):
        Subspace().run({"a": seq})
    assert Subspace().run([]) == []


def test_max_basis_is_enforced() -> None:
    seq = _qek(_molecule(8, seed=10))
    with pytest.raises(BackendError, match="max_basis"):
        Subspace(energy_cutoff=math.inf, max_basis=100).run([seq])
    with pytest.warns(TruncationWarning, match="max_basis"):
        (m,) = Subspace(tolerance=1e-6, max_basis=150).run([seq])
    assert m.settings["basis_dim"] <= 150
    assert issubclass(BackendError, QgnnError)
