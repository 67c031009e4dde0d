"""Tests of the energy-truncated Rydberg backend against emu-sv and dense numpy references.

Per-atom (DMM) detuning is tested with the other local backends in test_dmm_backends.py.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pulser
import pytest
import scipy.linalg
import scipy.sparse
from pulser.devices import AnalogDevice, MockDevice
from pulser.waveforms import BlackmanWaveform, ConstantWaveform, RampWaveform

from qgnn.backends.base import Backend, Measurement, bit_matrix, js_divergence
from qgnn.backends.emulators import EmuSV
from qgnn.backends.subspace import (
    BasisTooLargeError,
    MemoryBudgetError,
    Subspace,
    TruncationWarning,
    interaction_matrix,
    kernels,
    rydberg_basis,
)
from qgnn.backends.subspace import backend as subspace_backend
from qgnn.backends.subspace.basis import BasisCount, SubspaceBasis, count_basis, couplings
from qgnn.backends.subspace.drive import pieces, read_sequence
from qgnn.backends.subspace.error import Observables
from qgnn.backends.subspace.memory import _FIXED_BYTES, run_bytes, states_within
from qgnn.backends.subspace.propagator import vector_bytes
from qgnn.errors import BackendError, InvalidInputError, QgnnError
from qgnn.pulses import AdiabaticSweep, ConstantDrive

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
    # every feature the pipeline returns is within the occupation tolerance, as estimated
    assert np.abs(m.occupations - ref.occupations).max() <= 1e-3
    assert np.abs(m.connected_correlations() - ref.connected_correlations()).max() <= 1e-3
    assert m.settings["truncation_occupation_error"] <= 1e-3
    assert m.settings["truncation_correlation_error"] <= 1e-3
    # the JS criterion alone truncates harder, with a larger occupation error
    (js_only,) = Subspace(tolerance=1e-3, occupation_tolerance=None).run([seq])
    assert js_only.settings["energy_cutoff"] <= m.settings["energy_cutoff"]
    assert js_only.settings["basis_dim"] < 2 ** len(coords) or device is MockDevice  # it did truncate
    assert js_divergence(js_only.excitation_distribution, ref.excitation_distribution).max() <= 1e-3
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
    seq = _qek(_molecule(10, seed=5))
    (exact,) = Subspace(energy_cutoff=math.inf).run([seq])
    errors, cutoffs = [], []
    for tol in (1e-3, 1e-5, 1e-7):
        (m,) = Subspace(occupation_tolerance=tol).run([seq])
        err = max(
            np.abs(m.occupations - exact.occupations).max(),
            np.abs(m.connected_correlations() - exact.connected_correlations()).max(),
        )
        estimate = max(m.settings["truncation_occupation_error"], m.settings["truncation_correlation_error"])
        assert err <= estimate <= tol
        errors.append(err)
        cutoffs.append(m.settings["energy_cutoff"])
    assert errors[2] < errors[0] and cutoffs[2] > cutoffs[0]
    for tol in (1e-2, 1e-6):
        (m,) = Subspace(tolerance=tol, occupation_tolerance=None).run([seq])
        assert js_divergence(m.excitation_distribution, exact.excitation_distribution).max() <= tol
    (bits,) = Subspace(tolerance=1e-4, criterion="bitstrings", occupation_tolerance=None).run([seq])
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
    (m,) = Subspace(energy_cutoff=math.inf).run([seq], evaluation_times=times)
    # fourth-order steps of 40 ns (2e-5 measured)
    assert np.abs(m.probabilities - ref.probabilities).max() < 5e-5
    (fine,) = Subspace(energy_cutoff=math.inf, dt=5.0).run([seq], evaluation_times=times)
    assert np.abs(fine.probabilities - ref.probabilities).max() < 1e-5
    (auto,) = Subspace(tolerance=1e-4).run([seq], evaluation_times=times)
    assert js_divergence(auto.excitation_distribution, ref.excitation_distribution).max() <= 1e-4
    assert np.abs(auto.occupations - ref.occupations).max() <= 1e-3


def test_adiabatic_sweep_matches_emu_sv_with_fewer_exponentials() -> None:
    """The sweep's ramps are stepped with the fourth-order integrator: 40-ns steps are converged."""
    seq = AdiabaticSweep().build(_register(_molecule(5, seed=11)), AnalogDevice)
    (emu,) = EmuSV().run([seq])
    (m,) = Subspace().run([seq])
    assert np.abs(m.occupations - emu.occupations).max() <= 1e-3
    assert js_divergence(m.excitation_distribution, emu.excitation_distribution).max() <= 1e-3
    (ref,) = Subspace(energy_cutoff=math.inf, dt=2.0).run([seq])
    (coarse,) = Subspace(energy_cutoff=math.inf, dt=160.0).run([seq])
    (fine,) = Subspace(energy_cutoff=math.inf).run([seq])
    # the step size matters (the check can fail), and 40-ns steps are converged well below 1e-3
    assert (
        np.abs(coarse.occupations - ref.occupations).max()
        > 10 * np.abs(fine.occupations - ref.occupations).max()
    )
    assert np.abs(fine.occupations - ref.occupations).max() < 1e-4


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
    assert json.loads(json.dumps(dict(back.settings)))["basis_dim"] == m.settings["basis_dim"]
    assert np.array_equal(back.probabilities, m.probabilities)
    with pytest.raises(ValueError, match="read-only"):
        m.occupations[0, 0] = 0.5
    with pytest.raises(TypeError):
        m.settings["basis_dim"] = 1  # type: ignore[index]


def test_moments_only_measurement_equals_the_sparse_one() -> None:
    """Past max_stored_bitstrings only the moments are kept; they are the same numbers."""
    seq = _qek(_molecule(8, seed=12))
    (full,) = Subspace().run([seq], evaluation_times=(0.5, 1.0))
    (lean,) = Subspace(max_stored_bitstrings=0).run([seq], evaluation_times=(0.5, 1.0))
    assert full.bitstrings is not None and full.bitstrings.size == full.settings["basis_dim"]
    assert lean.bitstrings is None and lean.probabilities is None and lean.exact
    for name in ("occupations", "correlations", "excitation_distribution"):
        assert np.array_equal(getattr(lean, name), getattr(full, name))
    dense = Measurement.from_probabilities(full.qubit_ids, full.evaluation_times, full.probabilities)
    assert np.allclose(dense.correlations, full.correlations, atol=1e-14)
    assert Subspace(max_stored_bitstrings=0).cache_key() != Subspace().cache_key()


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
    k_from, k_to = couplings(basis).nonzero()
    diff = basis.states[k_to] ^ basis.states[k_from]
    assert np.all((diff & (diff - 1)) == 0) and np.all(basis.states[k_to] > basis.states[k_from])
    kept = set(basis.states.tolist())
    expected_edges = sum(
        1 for s in kept for j in range(9) if not s >> (8 - j) & 1 and (s | 1 << (8 - j)) in kept
    )
    assert k_from.size == expected_edges == basis.n_couplings  # closure: Σ excitations
    assert count_basis(u, cutoff) == BasisCount(basis.dim, expected_edges)  # counted without building
    dropped = [
        (basis.interaction[k] + added, int(basis.states[k]) | 1 << (8 - j))
        for start, stop in basis.chunks()
        for ks, j, pos, adds in basis.neighbours(start, stop)
        for k, p, added in zip(ks, pos, adds, strict=True)
        if p < 0
    ]
    assert dropped and all(e > cutoff and np.isclose(e, energy[x]) for e, x in dropped)
    assert rydberg_basis(u, math.inf).dim == 2**9
    with pytest.raises(BasisTooLargeError, match="more than 10 bitstrings"):
        rydberg_basis(u, cutoff, max_states=10)
    with pytest.raises(BasisTooLargeError, match="more than 10 bitstrings"):
        count_basis(u, cutoff, max_states=10)
    for wrong in (BasisCount(basis.dim - 1, 0), BasisCount(basis.dim + 1, 0)):  # never written past
        with pytest.raises(BackendError, match="is not the count of this basis"):
            rydberg_basis(u, cutoff, counted=wrong)
    for bad in (u[:3], -u, u + np.eye(9), np.full((2, 2), np.nan)):
        with pytest.raises(BackendError, match="interactions"):
            rydberg_basis(bad, cutoff)
        with pytest.raises(BackendError, match="interactions"):
            count_basis(bad, cutoff)
    with pytest.raises(BackendError, match="max_states must be ≥ 0"):
        count_basis(u, cutoff, max_states=-1)  # not "no limit"


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


def test_more_than_twenty_four_atoms_run_exactly_without_a_dense_vector() -> None:
    grid = np.array([[5.5 * i, 5.5 * j] for i in range(5) for j in range(5)])
    seq = _qek(grid, duration=100)
    backend = Subspace(energy_cutoff=1.0, on_excess="ignore", seed=1)
    (m,) = backend.run([seq])
    assert m.n_qubits == 25 and m.exact and m.bitstrings is not None
    assert np.isclose(m.excitation_distribution.sum(), 1.0) and m.occupations.shape == (1, 25)
    with pytest.raises(InvalidInputError, match="at most 24 atoms are densified"):
        _ = m.probabilities
    top = m.bitstring_distribution(min_probability=1e-3)
    assert "0" * 25 in top and all(len(b) == 25 for b in top)
    (s,) = backend.run([seq], shots=50)
    assert s.n_qubits == 25 and sum(s.counts[0].values()) == 50


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
    with pytest.raises(InvalidInputError, match="shots"):
        Subspace().run([_qek(_line(2))], shots=shots)


@pytest.mark.parametrize("times", [(), (0.0,), (1.5,), (0.5, 0.2), (float("nan"),)])
def test_bad_evaluation_times(times) -> None:
    with pytest.raises(InvalidInputError, match="evaluation_times"):
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
        {"occupation_tolerance": 0.0},
        {"max_memory": -1},
        {"max_memory": 1.5e9},
        {"max_stored_bitstrings": -1},
    ],
)
def test_bad_settings(kwargs) -> None:
    with pytest.raises(InvalidInputError):
        Subspace(**kwargs)


def test_unsupported_sequences_are_rejected_with_the_supported_set() -> None:
    reg = _register(_line(3, 6.0))
    local = pulser.Sequence(reg, MockDevice)
    local.declare_channel("ryd", "rydberg_local", initial_target="q0")
    local.add(pulser.Pulse.ConstantPulse(100, 1.0, 0.0, 0.0), "ryd")
    raman = pulser.Sequence(reg, MockDevice)
    raman.declare_channel("ram", "raman_global")
    raman.add(pulser.Pulse.ConstantPulse(100, 1.0, 0.0, 0.0), "ram")
    for seq in (local, raman):
        with pytest.raises(BackendError, match="supports one global Rydberg channel"):
            Subspace().run([seq])
    empty = pulser.Sequence(reg, AnalogDevice)
    empty.declare_channel("ryd", "rydberg_global")
    with pytest.raises(InvalidInputError, match="empty"):
        Subspace().run([empty])
    param = pulser.Sequence(reg, AnalogDevice)
    param.declare_channel("ryd", "rydberg_global")
    amp = param.declare_variable("amp")
    param.add(pulser.Pulse.ConstantPulse(100, amp, 0.0, 0.0), "ryd")
    with pytest.raises(InvalidInputError, match="parametrized"):
        Subspace().run([param])


def test_bad_batches() -> None:
    seq = _qek(_line(2))
    with pytest.raises(InvalidInputError, match="wrap the single sequence"):
        Subspace().run(seq)
    with pytest.raises(InvalidInputError, match="sequence 1 of 2"):
        Subspace().run([seq, "not a sequence"])
    with pytest.raises(InvalidInputError, match="list of pulser.Sequence"):
        Subspace().run({"a": seq})
    assert Subspace().run([]) == []


def test_max_basis_is_enforced() -> None:
    coords = _molecule(10, seed=10)
    seq = _qek(coords)
    with pytest.raises(BackendError, match="max_basis"):
        Subspace(energy_cutoff=math.inf, max_basis=100).run([seq])
    # room for the first cutoff of the search (20 × Ω), not for the next one
    first = rydberg_basis(interaction_matrix(coords, AnalogDevice.interaction_coeff), 20 * TWO_PI).dim
    with pytest.warns(TruncationWarning, match="exceeds max_basis"):
        (m,) = Subspace(max_basis=first).run([seq])
    assert m.settings["basis_dim"] == first < 2**10 and m.settings["truncation_js"] is None
    assert issubclass(BackendError, QgnnError)


# --------------------------------------------------------------------------- memory


def test_memory_guard_refuses_before_allocating_and_names_the_size() -> None:
    small, big = _qek(_line(3)), _qek(_molecule(10, seed=13))
    # a 3-atom full space (8 bitstrings, 12 couplings) fits, nothing more
    budget = Subspace(energy_cutoff=math.inf).memory_estimate(small).bytes
    drive = read_sequence(small, "small")
    assert budget == run_bytes(8, 12, 1, vector_bytes(pieces(drive, [drive.duration], 40.0)))
    backend = Subspace(energy_cutoff=math.inf, max_memory=budget)
    (m,) = backend.run([small])
    assert m.settings["basis_dim"] == 8 and m.settings["memory_bytes"] <= budget
    with pytest.raises(
        MemoryBudgetError, match=r"sequence 1 of 2 \(10 atoms.*needing more than .*MiB.*budget"
    ) as err:
        backend.run([small, big])
    assert err.value.needed_bytes > err.value.budget_bytes == budget
    assert isinstance(err.value, BackendError)
    estimate = backend.memory_estimate(big)
    assert not estimate.fits and not estimate.complete and estimate.bytes > budget
    roomy = Subspace(energy_cutoff=math.inf).memory_estimate(big)
    assert roomy.fits and roomy.complete and roomy.basis_dim == 2**10 and roomy.n_couplings == 10 * 2**9


def test_memory_guard_counts_the_couplings_before_building_the_basis(monkeypatch: pytest.MonkeyPatch) -> None:
    seq = _qek(_molecule(10, seed=13))
    drive = read_sequence(seq, "seq")
    vectors = vector_bytes(pieces(drive, [drive.duration], 40.0))
    # the full space's per-state arrays fit this budget, its 10 × 2**9 couplings do not
    budget = run_bytes(2**10, 10 * 2**9, 1, vectors) - 1
    assert states_within(budget, 1, vectors) > 2**10
    built: list[float] = []
    build = subspace_backend.rydberg_basis

    def recorded(u: np.ndarray, max_energy: float, *args: object, **kwargs: object) -> SubspaceBasis:
        built.append(max_energy)
        return build(u, max_energy, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(subspace_backend, "rydberg_basis", recorded)
    int32 = {"energy_cutoff": math.inf, "compact_lists": False}  # (compact lists would fit: see below)
    with pytest.raises(MemoryBudgetError, match="1024 bitstrings with 5120 couplings"):
        Subspace(**int32, max_memory=budget).run([seq])
    assert built == []  # refused from the counts alone
    (m,) = Subspace(**int32, max_memory=budget + 1).run([seq])
    assert built == [math.inf] and m.settings["basis_dim"] == 2**10


def test_compact_lists_run_where_int32_lists_do_not_fit_with_identical_results() -> None:
    seq = _qek(_molecule(12, seed=0))
    explicit = {"energy_cutoff": 20.0, "on_excess": "ignore"}
    int32_need = Subspace(**explicit).memory_estimate(seq).bytes
    (reference,) = Subspace(**explicit).run([seq])
    assert reference.settings["compact_lists"] is False and reference.settings["memory_bytes"] == int32_need
    budget = int32_need - 1
    estimate = Subspace(**explicit, max_memory=budget).memory_estimate(seq)
    variable = estimate.bytes - _FIXED_BYTES  # from the counts: a lower bound
    assert estimate.fits and estimate.compact_lists and variable < 0.9 * (int32_need - _FIXED_BYTES)
    assert not Subspace(**explicit).memory_estimate(seq).compact_lists
    (m,) = Subspace(**explicit, max_memory=budget).run([seq])
    assert m.settings["compact_lists"] is True
    assert estimate.bytes < m.settings["memory_bytes"] <= budget  # the exact size: escapes and bases added
    for feature in ("occupations", "correlations", "excitation_distribution"):
        np.testing.assert_array_equal(getattr(m, feature), getattr(reference, feature))
    # without them the run is refused, and the error names (as needed_bytes) the least it needs
    with pytest.raises(
        MemoryBudgetError, match="with compact parents' lists: compact_lists=False here"
    ) as off:
        Subspace(**explicit, max_memory=budget, compact_lists=False).run([seq])
    assert off.value.needed_bytes == estimate.bytes
    # their exact size is checked once planned, before they are written: a budget at the lower bound
    with pytest.raises(MemoryBudgetError, match="with compact parents' lists") as refused:
        Subspace(**explicit, max_memory=estimate.bytes).run([seq])
    assert refused.value.needed_bytes == m.settings["memory_bytes"]
    assert _held_by(refused.value) == []
    with pytest.raises(InvalidInputError, match="compact_lists"):
        Subspace(compact_lists="yes")  # type: ignore[arg-type]


def test_memory_guard_fails_one_graph_while_the_rest_of_a_pipeline_run_completes() -> None:
    import networkx as nx

    from qgnn.features import FeaturePipeline

    graphs = [nx.path_graph(3), nx.cycle_graph(10), nx.path_graph(4)]
    budget = Subspace(energy_cutoff=math.inf).memory_estimate(_qek(_line(4))).bytes  # ≤ 4 atoms, full space
    pipe = FeaturePipeline(
        backend=Subspace(energy_cutoff=math.inf, max_memory=budget), cache_dir=False, progress=False
    )
    results = pipe.run(graphs)
    assert [r.ok for r in results] == [True, False, True]
    assert "MemoryBudgetError" in results[1].error and "10 atoms" in results[1].error
    assert results[2].measurement.settings["basis_dim"] == 16


def test_memory_estimate_bounds_the_traced_allocations(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_bytes bounds what a run allocates per bitstring and per coupling (numpy arrays are traced).

    The chunked work arrays (a fixed allowance in run_bytes) are made tiny so that the per-state
    accounting itself is checked.
    """
    import tracemalloc

    import qgnn.backends.subspace.basis

    monkeypatch.setattr(qgnn.backends.subspace.basis, "_CHUNK_PAIRS", 1 << 12)
    int32_need = Subspace(energy_cutoff=20.0).memory_estimate(_qek(_molecule(16, seed=14)), (0.5, 1.0)).bytes
    compact = Subspace(energy_cutoff=20.0, on_excess="ignore", max_memory=int32_need - 1)
    cases = [
        (_qek(_molecule(14, seed=14)), Subspace(energy_cutoff=math.inf), (0.5, 1.0)),
        (_qek(_molecule(16, seed=14)), Subspace(energy_cutoff=20.0, on_excess="ignore"), (0.2, 0.6, 1.0)),
        (_qek(_molecule(16, seed=14)), Subspace(max_stored_bitstrings=0), (1.0,)),
        (_qek(_molecule(16, seed=14)), compact, (0.5, 1.0)),
    ]
    for seq, backend, times in cases:
        backend.run([seq], evaluation_times=times)  # warm-up: imports and caches are not the run's memory
        tracemalloc.start()
        try:
            (m,) = backend.run([seq], evaluation_times=times)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        variable = m.settings["memory_bytes"] - _FIXED_BYTES
        assert m.settings["basis_dim"] > 10_000
        assert m.settings["compact_lists"] is (backend is compact)
        # + the arrays of fixed size (Bessel tables, the chunk buffers made tiny here)
        assert 0.5 * variable <= peak <= variable + 2**18


def test_over_budget_coarsen_is_an_explicit_approximation_with_its_error_reported() -> None:
    seq = _qek(_molecule(10, seed=13))
    budget = Subspace(energy_cutoff=20.0).memory_estimate(seq).bytes - 1  # the first cutoff never fits
    int32 = {"max_memory": budget, "compact_lists": False}  # (compact lists would fit it)
    with pytest.raises(MemoryBudgetError):
        Subspace(**int32).run([seq])
    with pytest.warns(TruncationWarning, match="largest that fits max_memory"):
        (m,) = Subspace(**int32, over_budget="coarsen").run([seq])
    assert m.settings["coarsened"] is True and m.settings["energy_cutoff"] < 20.0
    assert m.settings["memory_bytes"] <= budget
    (exact,) = Subspace(energy_cutoff=math.inf).run([seq])
    error = np.abs(m.occupations - exact.occupations).max()
    # the reported estimate (difference to the next lower cutoff) is of the size of the actual error
    assert 0.0 < error <= 2.0 * m.settings["truncation_occupation_error"]
    (fits,) = Subspace(over_budget="coarsen").run([seq])  # within budget: the ordinary search
    assert fits.settings["coarsened"] is False and fits.settings["energy_cutoff"] >= 20.0
    with pytest.raises(InvalidInputError, match="over_budget"):
        Subspace(over_budget="shrink")  # type: ignore[arg-type]


def test_a_next_cutoff_over_budget_is_estimated_from_the_step_below() -> None:
    """The search's first result is compared with the run one step below when the next does not fit."""
    from qgnn.backends.subspace.memory import previous_bytes

    seq = _qek(_molecule(14, seed=0))  # < 15 atoms: the search starts at 20, then 23.8
    drive = read_sequence(seq, "test")
    vectors = vector_bytes(pieces(drive, [drive.duration], 40.0))
    lower, first, nxt = (20.0 / 2**0.25, 20.0, 20.0 * 2**0.25)
    bases = {c: rydberg_basis(drive.interactions, c * drive.drive_scale) for c in (lower, first, nxt)}
    dims = {c: (b.dim, b.n_couplings) for c, b in bases.items()}
    budget = run_bytes(*dims[nxt], 1, vectors, previous_bytes=previous_bytes(dims[first][0], 1)) - 1
    kept = previous_bytes(dims[first][0], 1)
    beside = run_bytes(*dims[lower], 1, vectors, previous_bytes=kept, previous_kept=True)
    assert max(beside, run_bytes(*dims[first], 1, vectors)) <= budget  # 20, and 16.8 beside it, fit
    (coarse,) = Subspace(energy_cutoff=lower, on_excess="ignore").run([seq])
    (fine,) = Subspace(energy_cutoff=first, on_excess="ignore").run([seq])
    (exact,) = Subspace(energy_cutoff=math.inf).run([seq])
    step_difference = np.abs(coarse.occupations - fine.occupations).max()

    int32 = {"max_memory": budget, "compact_lists": False}  # (compact lists would fit the next cutoff)
    (m,) = Subspace(**int32, tolerance=1e-2, occupation_tolerance=1e-2).run([seq])
    assert m.settings["coarsened"] is False and m.settings["energy_cutoff"] == first
    assert m.settings["cutoffs_tried"] == (first, lower) and m.settings["memory_bytes"] <= budget
    np.testing.assert_allclose(m.occupations, fine.occupations, rtol=0, atol=1e-12)
    assert m.settings["truncation_occupation_error"] == pytest.approx(step_difference, rel=1e-9)
    assert 0.0 < np.abs(m.occupations - exact.occupations).max() <= step_difference
    planned = Subspace(**int32).memory_estimate(seq)  # the same way out, without evolving
    assert planned.energy_cutoff == first and planned.bytes == m.settings["memory_bytes"] and planned.fits

    strict = {**int32, "occupation_tolerance": 1e-9}
    with pytest.raises(
        MemoryBudgetError, match=f"cutoff {nxt:g}.*estimated from the one at 16.8.*over the tol"
    ) as over:
        Subspace(**strict).run([seq])
    assert _held_by(over.value) == []  # nor the run at 20 it was estimated for
    with pytest.warns(TruncationWarning, match="largest that fits max_memory"):
        (approx,) = Subspace(**strict, over_budget="coarsen").run([seq])
    assert approx.settings["coarsened"] is True and approx.settings["cutoffs_tried"] == (first, lower)
    np.testing.assert_allclose(approx.occupations, fine.occupations, rtol=0, atol=1e-12)


def _decoded(lists: kernels.ParentLists, n_excited: np.ndarray) -> list[list[int]]:
    """Each state's parents read back from either layout, in plain Python (the format, not the kernels)."""
    out, e, x = [], 0, 0
    for k, n in enumerate(n_excited.tolist()):
        if lists.layout == "indices":
            out.append(lists.lists[0][e : e + n].tolist())
        else:
            bases, offsets, escapes = lists.lists
            row = []
            for r in range(n):
                offset = int(offsets[e + r])
                if offset == kernels.ESCAPE:
                    row.append(int(escapes[x]))
                    x += 1
                else:
                    row.append(int(bases[(k // kernels.BASE_BLOCK) * lists.n_ranks + r]) + offset)
            out.append(row)
        e += n
    return out


@pytest.mark.parametrize("layout", ["indices", "compact"])
def test_parents_and_leaked_weight_match_brute_force(layout: str) -> None:
    from qgnn.backends.subspace.error import leaked_weight
    from qgnn.backends.subspace.propagator import Operators, Run

    n = 11
    coords = _molecule(n, seed=1)
    u = interaction_matrix(coords, AnalogDevice.interaction_coeff)
    basis = rydberg_basis(u, 5 * TWO_PI)
    plan = kernels.compact_plan(basis.states, basis.n_excited, n) if layout == "compact" else None
    ops = Operators(basis, np.zeros(n, np.int64), plan)
    assert ops.parents.layout == layout
    if plan is not None:  # offsets ≥ 255 above their base occur, and the plan's size is the lists' size
        assert plan.n_escapes > 0 and ops.parents.lists[2].size == plan.n_escapes
        assert ops.parents.nbytes == plan.nbytes
    kept = {int(s): k for k, s in enumerate(basis.states)}
    start = np.concatenate([[0], np.cumsum(basis.n_excited, dtype=np.int64)])
    np.testing.assert_array_equal(
        ops.parents.block_offsets, np.append(start[:-1][:: kernels.BLOCK], start[-1])
    )
    decoded = _decoded(ops.parents, basis.n_excited)
    for k, s in enumerate(basis.states.tolist()):
        bits = [1 << (n - 1 - j) for j in range(n)]
        parents = [kept[s ^ b] for b in bits if s & b]  # closure: every parent is kept
        children = [kept[s | b] for b in bits if not s & b and (s | b) in kept]
        assert decoded[k] == parents
        assert ops.degree[k] == len(parents) + len(children)
    # leaked weight: every dropped child x = k + j of every kept k, summed term by term
    rng = np.random.default_rng(3)
    amplitudes = [rng.normal(size=basis.dim) + 1j * rng.normal(size=basis.dim) for _ in range(2)]
    detunings = [(0.0,), (0.7 * TWO_PI,)]
    omega = TWO_PI
    run = Run(basis, amplitudes, detunings)
    got = leaked_weight(run, ops, run.weights(), np.zeros(n, np.int64), omega)
    g2 = (omega / 2) ** 2
    want = np.zeros(2)
    for k, s in enumerate(basis.states.tolist()):
        excited = [i for i in range(n) if s >> (n - 1 - i) & 1]
        for j in range(n):
            if s >> (n - 1 - j) & 1 or (s | 1 << (n - 1 - j)) in kept:
                continue
            added = sum(u[i, j] for i in excited)
            for t in range(2):
                gap2 = (added - detunings[t][0]) ** 2 + g2
                want[t] += g2 * abs(amplitudes[t][k]) ** 2 * (len(excited) + 1) / gap2
    assert want.min() > 0 and np.allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("layout", ["indices", "compact"])
@pytest.mark.parametrize("real", [True, False])
def test_a_chebyshev_step_in_chunks_applies_the_dense_hamiltonian(real: bool, layout: str) -> None:
    """One step on 1 to 5 chunks (the threads' split, crossing scatters included) against H built apart.

    The parents' sums of a state alternate between two accumulators by place
    in the list, so the split of a list across chunks does not change them.
    """
    from qgnn.backends.subspace.propagator import Operators

    coords = _molecule(13, seed=1)
    u = interaction_matrix(coords, AnalogDevice.interaction_coeff)
    basis = rydberg_basis(u, 20 * TWO_PI)
    assert basis.dim > 4 * kernels.BLOCK  # several blocks, so several chunks
    groups = np.array([0, 1] * 6 + [0])
    plan = kernels.compact_plan(basis.states, basis.n_excited, 13) if layout == "compact" else None
    assert plan is None or plan.n_escapes > 0
    ops = Operators(basis, groups, plan)
    detuning = np.array([0.3, -1.1])
    w = 0.37 if real else 0.37 - 0.21j
    # H' = dscale (D − centre) + w R + w̄ L, R[x, parent] = 1, built independently (sparse)
    n, dim = basis.n_qubits, basis.dim
    index = {int(s): k for k, s in enumerate(basis.states)}
    rows, cols = [], []
    for k, s in enumerate(basis.states.tolist()):
        for j in range(n):
            if s >> (n - 1 - j) & 1:
                rows.append(k)
                cols.append(index[s ^ (1 << (n - 1 - j))])
    raising = scipy.sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(dim, dim))
    centre, dscale = 5.0, 0.01
    excited = np.array([[s >> (n - 1 - i) & 1 for i in range(n)] for s in basis.states.tolist()])
    group_counts = np.stack([excited[:, groups == g].sum(1) for g in (0, 1)])
    diagonal = dscale * (basis.interaction - detuning @ group_counts - centre)
    dense = scipy.sparse.diags_array(diagonal) + w * raising + np.conj(w) * raising.T
    rng = np.random.default_rng(1)
    v = rng.normal(size=dim) if real else rng.normal(size=dim) + 1j * rng.normal(size=dim)
    prev = rng.normal(size=dim) + (0 if real else 1j * rng.normal(size=dim))
    coefs = np.array([0.5 - 0.25j, 0.0])
    want = 2.0 * dense @ v - prev
    outs = []
    for n_chunks in range(1, 6):
        bounds = kernels.chunk_bounds(dim, n_chunks)
        assert bounds.size == n_chunks + 1 and bounds[0] == 0 and bounds[-1] == dim
        out = prev.copy()  # in place, as the recurrence runs
        acc = np.zeros((2, dim), np.complex128)
        structure = (*ops.parents.reader, bounds, basis.n_excited)
        structure += (basis.interaction, ops.counts)
        kernels.chebyshev_step(*structure, detuning, centre, dscale, w, v, out, out, 2.0, 1.0, coefs, acc)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)
        np.testing.assert_allclose(acc[0], coefs[0] * want, rtol=0, atol=1e-12)
        assert not acc[1].any()
        outs.append(out)
    for out in outs[1:]:  # the same bits on every split: no sum's order depends on the threads
        np.testing.assert_array_equal(out, outs[0])


def test_release_cycles_frees_arrays_held_by_a_reference_cycle_after_a_large_run() -> None:
    import gc
    import weakref

    from qgnn.backends.subspace.memory import COLLECT_ABOVE, release_cycles

    def cyclic_garbage() -> weakref.ref:
        holder: dict = {"states": np.zeros(1000)}
        holder["self"] = holder  # a cycle: only the cyclic collector frees it
        return weakref.ref(holder["states"])

    gc.disable()
    try:
        array = cyclic_garbage()
        release_cycles(COLLECT_ABOVE)  # a small run: nothing collected
        assert array() is not None
        release_cycles(COLLECT_ABOVE + 1)
        assert array() is None
    finally:
        gc.enable()


def _held_by(exc: BaseException) -> list[object]:
    """Bases, runs and arrays over 1000 entries in the frames of an exception's traceback and its cause."""
    held: list[object] = []
    while exc is not None:
        tb = exc.__traceback__
        while tb is not None:
            for value in tb.tb_frame.f_locals.values():
                if isinstance(value, (SubspaceBasis, Observables)) or (
                    isinstance(value, np.ndarray) and value.size > 1000
                ):
                    held.append(value)
                elif isinstance(value, list) and any(
                    isinstance(v, np.ndarray) and v.size > 1000 for v in value
                ):
                    held.append(value)
            tb = tb.tb_next
        exc = exc.__cause__  # type: ignore[assignment]
    return held


def test_a_refused_cutoff_is_not_kept_alive_by_its_error() -> None:
    """A MemoryBudgetError outlives the run (a coarsening search keeps it): it must not hold the basis."""
    seq = _qek(_molecule(12, seed=13))
    built = Subspace(energy_cutoff=20.0).memory_estimate(seq)
    assert built.basis_dim > 1000
    # the basis is built, then refused for its run's estimate
    with pytest.raises(MemoryBudgetError) as refused:
        Subspace(energy_cutoff=20.0, max_memory=built.bytes - 1, compact_lists=False).run([seq])
    assert _held_by(refused.value) == []
    # the enumeration stops at the budget's count
    with pytest.raises(MemoryBudgetError, match="more than") as counted:
        Subspace(energy_cutoff=20.0, max_memory=run_bytes(built.basis_dim // 2, 0, 1, 40)).run([seq])
    assert _held_by(counted.value) == []
