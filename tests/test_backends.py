"""Physics and contract tests of the local emulator backends (emu-sv, emu-mps, QuTiP).

References are independent: closed-form Rabi oscillations and a dense
``scipy.linalg.expm`` of H = Σ Ω/2 σx − δ Σ n + Σ C6/r⁶ n n with C6 from the device.
"""

from __future__ import annotations

import math
from importlib.metadata import version

import numpy as np
import pulser
import pytest
import scipy.linalg
import torch
from pulser.devices import AnalogDevice, MockDevice

from qgnn.backends import Backend, EmuMPS, EmuSV, Measurement, QutipEmulator, bit_matrix
from qgnn.errors import BackendError, InvalidInputError
from qgnn.pulses import ConstantDrive, PiecewiseConstant

TWO_PI = 2 * math.pi
C6 = AnalogDevice.interaction_coeff

# EmuMPS at a tight truncation is as exact as the dense solvers on a few atoms.
EXACT_BACKENDS = [EmuSV(), QutipEmulator(), EmuMPS(precision=1e-8)]
ALL_BACKENDS = [EmuSV(), QutipEmulator(), EmuMPS()]


def _ids(b: object) -> str:
    return getattr(b, "name", str(b))


def _register(positions: list[tuple[float, float]]) -> pulser.Register:
    return pulser.Register.from_coordinates(positions, prefix="q")


def _hamiltonian(positions: list[tuple[float, float]], omega: float, delta: float) -> np.ndarray:
    """Dense H (rad/µs), basis index = int(bitstring, 2) with qubit 0 the most significant bit."""
    n = len(positions)
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    occ = np.diag([0.0, 1.0])

    def on(op: np.ndarray, i: int) -> np.ndarray:
        out = np.array([[1.0]])
        for k in range(n):
            out = np.kron(out, op if k == i else np.eye(2))
        return out

    h = sum(omega / 2 * on(sx, i) - delta * on(occ, i) for i in range(n))
    for i in range(n):
        for j in range(i + 1, n):
            r = np.linalg.norm(np.subtract(positions[i], positions[j]))
            h = h + C6 / r**6 * on(occ, i) @ on(occ, j)
    return h


def _evolve(positions: list[tuple[float, float]], segments: list[tuple[float, float, float]]) -> np.ndarray:
    """|ψ|² after piecewise-constant (duration ns, Ω, δ) segments from all-ground."""
    psi = np.zeros(2 ** len(positions), dtype=complex)
    psi[0] = 1.0
    for duration, omega, delta in segments:
        psi = scipy.linalg.expm(-1j * _hamiltonian(positions, omega, delta) * duration / 1000.0) @ psi
    return np.abs(psi) ** 2


def _expm_probabilities(
    positions: list[tuple[float, float]], omega: float, delta: float, times_ns: list[float]
) -> np.ndarray:
    """Reference probabilities of a constant drive at each time (ns), shape ``(T, 2**n)``."""
    return np.array([_evolve(positions, [(t, omega, delta)]) for t in times_ns])


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


# ----------------------------------------------------------------- physics


@pytest.mark.parametrize("backend", [EmuSV(), QutipEmulator()], ids=_ids)
def test_single_atom_rabi_oscillation(backend: Backend) -> None:
    omega, duration = TWO_PI * 1.5, 660
    seq = ConstantDrive(amplitude=omega, duration=duration).build(_register([(0.0, 0.0)]), AnalogDevice)
    times = (0.1, 0.25, 0.33, 0.5, 0.8, 1.0)  # 0.33 → 217.8 ns, off the dt = 10 ns grid
    (m,) = backend.run([seq], evaluation_times=times)
    expected = np.sin(omega * np.array(times) * duration / 1000 / 2) ** 2
    np.testing.assert_allclose(m.probabilities[:, 1], expected, atol=1e-4)
    np.testing.assert_allclose(m.occupations[:, 0], expected, atol=1e-4)
    assert m.exact and m.counts is None
    assert m.evaluation_times == times


@pytest.mark.parametrize("backend", [EmuSV(), QutipEmulator()], ids=_ids)
def test_single_atom_detuned_rabi(backend: Backend) -> None:
    omega, delta, duration = TWO_PI * 1.0, 4.0, 800
    seq = ConstantDrive(amplitude=omega, detuning=delta, duration=duration).build(
        _register([(0.0, 0.0)]), AnalogDevice
    )
    times = (0.2, 0.6, 1.0)
    (m,) = backend.run([seq], evaluation_times=times)
    t_us = np.array(times) * duration / 1000
    gen = math.hypot(omega, delta)
    expected = omega**2 / gen**2 * np.sin(gen * t_us / 2) ** 2
    np.testing.assert_allclose(m.occupations[:, 0], expected, atol=1e-4)


@pytest.mark.parametrize("backend", EXACT_BACKENDS, ids=_ids)
@pytest.mark.parametrize("distance", [5.5, 15.0], ids=["blockaded", "free"])
@pytest.mark.parametrize("delta", [0.0, 9.0, -9.0], ids=["resonant", "detuned+", "detuned-"])
def test_two_atoms_against_expm(backend: Backend, distance: float, delta: float) -> None:
    positions = [(0.0, 0.0), (distance, 0.0)]
    omega, duration = TWO_PI * 1.0, 660
    seq = ConstantDrive(amplitude=omega, detuning=delta, duration=duration).build(
        _register(positions), AnalogDevice
    )
    times = (0.33, 0.7, 1.0)
    (m,) = backend.run([seq], evaluation_times=times)
    ref = _expm_probabilities(positions, omega, delta, [t * duration for t in times])
    np.testing.assert_allclose(m.probabilities, ref, atol=1e-4)


def test_detuning_sign_matters_at_facilitation() -> None:
    """δ = +V (anti-blockade) and δ = −V give clearly different physics: a sign error would show."""
    positions = [(0.0, 0.0), (6.0, 0.0)]
    v = C6 / 6.0**6
    refs = [_expm_probabilities(positions, TWO_PI, s * v, [660.0])[0] for s in (1, -1)]
    assert np.abs(refs[0] - refs[1]).max() > 0.05
    for sign, ref in zip((1, -1), refs, strict=True):
        seq = ConstantDrive(amplitude=TWO_PI, detuning=sign * v, duration=660).build(
            _register(positions), AnalogDevice
        )
        (m,) = EmuSV().run([seq])
        np.testing.assert_allclose(m.probabilities[0], ref, atol=1e-4)


@pytest.mark.parametrize("backend", EXACT_BACKENDS, ids=_ids)
def test_bitstring_order_on_asymmetric_register(backend: Backend) -> None:
    """q0, q1 blockaded, q2 far: '100' and '001' differ, so a reversed qubit order fails."""
    positions = [(0.0, 0.0), (6.0, 0.0), (20.0, 0.0)]
    omega, delta, duration = TWO_PI * 1.2, 3.0, 660
    seq = ConstantDrive(amplitude=omega, detuning=delta, duration=duration).build(
        _register(positions), AnalogDevice
    )
    times = (0.3, 0.71, 1.0)
    (m,) = backend.run([seq], evaluation_times=times)
    ref = _expm_probabilities(positions, omega, delta, [t * duration for t in times])
    assert np.abs(ref[:, 0b100] - ref[:, 0b001]).max() > 0.05
    np.testing.assert_allclose(m.probabilities, ref, atol=1e-4)
    np.testing.assert_allclose(m.occupations, ref @ bit_matrix(3), atol=1e-4)
    assert m.qubit_ids == ("q0", "q1", "q2")


@pytest.mark.parametrize(
    ("backend", "atol"),
    [(EmuSV(), 1e-6), (EmuMPS(precision=1e-8), 1e-6), (QutipEmulator(), 5e-3)],
    ids=["emu-sv", "emu-mps", "qutip"],
)
def test_piecewise_constant_edges_off_the_dt_grid(backend: Backend, atol: float) -> None:
    """Segment edges at 100, 152, 356 ns (dt = 10 ns): emu-sv/emu-mps must step onto them."""
    positions = [(0.0, 0.0), (6.0, 0.0), (20.0, 0.0)]
    segments = [(100, 3.0, 1.0), (52, 12.0, -5.0), (204, 0.0, 8.0), (148, 9.0, 2.0)]
    seq = PiecewiseConstant(segments).build(_register(positions), AnalogDevice)
    (m,) = backend.run([seq], evaluation_times=(0.25, 1.0))  # 0.25 → 126 ns, inside segment 1
    ref = [_evolve(positions, [(100, 3.0, 1.0), (26, 12.0, -5.0)]), _evolve(positions, segments)]
    np.testing.assert_allclose(m.probabilities, np.array(ref), atol=atol)


SIX = [(0.0, 0.0), (6.0, 0.0), (12.0, 0.0), (3.0, 5.2), (9.0, 5.2), (6.0, 10.4)]


@pytest.fixture(scope="module")
def six_atom_results() -> dict[str, Measurement]:
    seq = ConstantDrive().build(_register(SIX), AnalogDevice)
    times = (0.5, 1.0)
    return {
        "emu-sv": EmuSV().run([seq], evaluation_times=times)[0],
        "qutip": QutipEmulator().run([seq], evaluation_times=times)[0],
        "emu-mps": EmuMPS().run([seq], evaluation_times=times)[0],
        "emu-mps-no-dense": EmuMPS(max_dense_qubits=4).run([seq], evaluation_times=times)[0],
    }


def test_six_atoms_backends_agree(six_atom_results: dict[str, Measurement]) -> None:
    ref = six_atom_results["emu-sv"]
    assert ref.excitation_distribution[-1, 3:].sum() < 0.2  # blockade suppresses many excitations
    for name in ("qutip", "emu-mps"):
        m = six_atom_results[name]
        for t in range(2):
            assert _js_divergence(m.excitation_distribution[t], ref.excitation_distribution[t]) < 1e-3
    np.testing.assert_allclose(six_atom_results["qutip"].probabilities, ref.probabilities, atol=1e-6)
    # emu-mps at its default precision (1e-5): looser, stated tolerance.
    np.testing.assert_allclose(six_atom_results["emu-mps"].probabilities, ref.probabilities, atol=1e-3)
    np.testing.assert_allclose(six_atom_results["emu-mps"].correlations, ref.correlations, atol=1e-3)


def test_emu_mps_without_dense_vector_matches_dense(six_atom_results: dict[str, Measurement]) -> None:
    dense, contracted = six_atom_results["emu-mps"], six_atom_results["emu-mps-no-dense"]
    assert contracted.probabilities is None and contracted.counts is None
    np.testing.assert_allclose(contracted.occupations, dense.occupations, atol=1e-10)
    np.testing.assert_allclose(contracted.correlations, dense.correlations, atol=1e-10)
    np.testing.assert_allclose(contracted.excitation_distribution, dense.excitation_distribution, atol=1e-10)
    np.testing.assert_allclose(contracted.excitation_distribution.sum(axis=1), 1.0)


# ----------------------------------------------------------------- sampled mode


@pytest.mark.parametrize("backend_cls", [EmuSV, QutipEmulator, EmuMPS], ids=lambda c: c.name)
def test_sampled_mode(backend_cls: type) -> None:
    # q0, q2 blockaded (⟨n⟩ ≈ 0.02), q1 free (⟨n⟩ ≈ 0.77): emu-mps reorders the sites, then must undo it.
    positions = [(0.0, 0.0), (20.0, 0.0), (6.0, 0.0)]
    seq = ConstantDrive().build(_register(positions), AnalogDevice)
    times, shots = (0.5, 1.0), 400
    (exact,) = EmuSV().run([seq], evaluation_times=times)
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state().clone()
    (m,) = backend_cls(seed=7).run([seq], shots=shots, evaluation_times=times)
    assert np.array_equal(np.random.get_state()[1], np_state)  # global RNGs left as they were
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert not m.exact and m.probabilities is None
    assert len(m.counts) == 2
    for counts in m.counts:
        assert sum(counts.values()) == shots
        assert all(len(b) == 3 and set(b) <= {"0", "1"} for b in counts)
    assert exact.occupations[-1, 1] > 0.7 and exact.occupations[-1, [0, 2]].max() < 0.1
    sigma = np.sqrt(exact.occupations * (1 - exact.occupations) / shots)
    assert np.all(np.abs(m.occupations - exact.occupations) < 5 * sigma + 1e-3)
    (again,) = backend_cls(seed=7).run([seq], shots=shots, evaluation_times=times)
    assert again.counts == m.counts


# ----------------------------------------------------------------- contract and bad input


@pytest.fixture(scope="module")
def small_seq() -> pulser.Sequence:
    return ConstantDrive(duration=100).build(_register([(0.0, 0.0), (7.0, 0.0)]), AnalogDevice)


@pytest.mark.parametrize("backend", ALL_BACKENDS, ids=_ids)
def test_protocol_metadata_and_cache_key(backend: Backend, small_seq: pulser.Sequence) -> None:
    assert isinstance(backend, Backend)
    dist = {"emu-sv": "emu-sv", "emu-mps": "emu-mps", "qutip": "pulser-simulation"}[backend.name]
    key = backend.cache_key()
    assert key["name"] == backend.name and key["version"] == version(dist)
    assert key["versions"]["pulser-core"] == version("pulser-core")
    threads = torch.get_num_threads()
    (m,) = backend.run([small_seq])
    assert torch.get_num_threads() == threads
    assert m.backend == backend.name and m.backend_version == version(dist)
    assert dict(m.settings) == key["settings"]
    assert m.qubit_ids == ("q0", "q1") and m.evaluation_times == (1.0,)


def test_cache_key_changes_with_settings() -> None:
    assert EmuSV().cache_key() != EmuSV(dt=5).cache_key()
    assert EmuMPS().cache_key() != EmuMPS(precision=1e-8).cache_key()
    assert QutipEmulator().cache_key() != QutipEmulator(sampling_rate=0.5).cache_key()
    assert EmuSV().cache_key()["settings"]["dt"] == 10.0
    assert "qutip" in QutipEmulator().cache_key()["versions"]


@pytest.mark.parametrize("backend", ALL_BACKENDS, ids=_ids)
@pytest.mark.parametrize("shots", [0, -1, 1.5, True, "10"])
def test_bad_shots(backend: Backend, small_seq: pulser.Sequence, shots: object) -> None:
    with pytest.raises(InvalidInputError, match="shots"):
        backend.run([small_seq], shots=shots)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ALL_BACKENDS, ids=_ids)
@pytest.mark.parametrize(
    "times", [(), (0,), (0.0,), (1.5,), (-0.5,), (0.5, 0.2), (0.5, 0.5), (float("nan"),)], ids=str
)
def test_bad_evaluation_times(backend: Backend, small_seq: pulser.Sequence, times: tuple) -> None:
    with pytest.raises(InvalidInputError, match="evaluation_times"):
        backend.run([small_seq], evaluation_times=times)


@pytest.mark.parametrize("backend", ALL_BACKENDS, ids=_ids)
def test_bad_sequence_inputs(backend: Backend, small_seq: pulser.Sequence) -> None:
    with pytest.raises(InvalidInputError, match=r"wrap the single sequence as \[seq\]"):
        backend.run(small_seq)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="list of pulser.Sequence, got str"):
        backend.run("seq")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="sequence 1 of 2 is a dict, not a pulser.Sequence"):
        backend.run([small_seq, {}])  # type: ignore[list-item]
    empty = pulser.Sequence(_register([(0.0, 0.0), (7.0, 0.0)]), AnalogDevice)
    empty.declare_channel("rydberg_global", "rydberg_global")
    with pytest.raises(InvalidInputError, match="sequence 0 of 1 is empty"):
        backend.run([empty])
    xy = pulser.Sequence(_register([(0.0, 0.0), (7.0, 0.0)]), MockDevice)
    xy.declare_channel("mw", "mw_global")
    xy.add(pulser.Pulse.ConstantPulse(100, 1.0, 0.0, 0.0), "mw")
    with pytest.raises(BackendError, match=r"sequence 1 of 2 addresses bases \['XY'\]"):
        backend.run([small_seq, xy])
    param = pulser.Sequence(_register([(0.0, 0.0), (7.0, 0.0)]), AnalogDevice)
    amp = param.declare_variable("amp")
    param.declare_channel("rydberg_global", "rydberg_global")
    param.add(pulser.Pulse.ConstantPulse(100, amp, 0.0, 0.0), "rydberg_global")
    with pytest.raises(InvalidInputError, match="parametrized"):
        backend.run([param])
    assert backend.run([]) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: EmuSV(dt=0),
        lambda: EmuSV(dt=float("nan")),
        lambda: EmuSV(num_threads=0),
        lambda: EmuSV(seed=-1),
        lambda: EmuMPS(precision=-1e-5),
        lambda: EmuMPS(max_bond_dim=2.5),
        lambda: EmuMPS(seed="a"),
        lambda: QutipEmulator(sampling_rate=0),
        lambda: QutipEmulator(sampling_rate=1.5),
    ],
)
def test_bad_settings(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError):
        make()


def test_emulator_failures_name_the_sequence() -> None:
    reg = _register([(0.0, 0.0), (20.0, 0.0)])
    ok, short = (ConstantDrive(duration=d).build(reg, AnalogDevice) for d in (2000, 100))
    # pulser-simulation refuses fewer than 4 samples: the 100 ns sequence, second in the batch.
    with pytest.raises(BackendError, match=r"qutip: sequence 1 of 2 \(2 atoms, 100 ns\) failed: ValueError"):
        QutipEmulator(sampling_rate=0.01).run([ok, short])
    with pytest.raises(BackendError, match=r"emu-sv: sequence 0 of 1 .* failed: RecursionError"):
        EmuSV(dt=4000, max_krylov_dim=2).run([ok])
    one_atom = ConstantDrive().build(_register([(0.0, 0.0)]), AnalogDevice)
    with pytest.raises(BackendError, match="sequence 1 of 2 .*emu-mps needs at least 2 atoms"):
        EmuMPS().run([short, one_atom])


@pytest.mark.parametrize("times", [1.0, "1", ["a"], [None]])
def test_evaluation_times_of_the_wrong_type_are_invalid_input(times: object) -> None:
    from qgnn.backends.base import check_evaluation_times

    with pytest.raises(InvalidInputError, match="evaluation_times"):
        check_evaluation_times(times)  # type: ignore[arg-type]


@pytest.mark.parametrize("counts", [{"ab": 3}, {"1": -1, "0": 3}, {"1": 1.5}, {"10": 2}])
def test_malformed_counts_are_rejected(counts: dict) -> None:
    from qgnn.backends.base import Measurement

    with pytest.raises(BackendError, match="counts"):
        Measurement.from_counts(["q0"], [1.0], [counts])


def test_js_divergence_of_an_all_zero_distribution_is_an_error() -> None:
    from qgnn.backends.base import js_divergence

    with pytest.raises(InvalidInputError, match="sums to zero"):
        js_divergence(np.zeros(3), np.ones(3))


def test_same_seed_gives_different_samples_for_different_sequences_run_one_by_one() -> None:
    """The pipeline runs one graph per call: a shared seed must not give every graph the same stream."""
    backend = EmuSV(seed=7)
    # two atoms far apart: nearly independent, so both registers have (almost) the same distribution
    a = ConstantDrive().build(_register([(0.0, 0.0), (20.0, 0.0)]), AnalogDevice)
    b = ConstantDrive().build(_register([(0.0, 0.0), (21.0, 0.0)]), AnalogDevice)
    (ma,) = backend.run([a], shots=200)
    (mb,) = backend.run([b], shots=200)
    (ma_again,) = backend.run([a], shots=200)
    assert ma.counts == ma_again.counts  # reproducible
    order = sorted(ma.counts[0])
    stream_a = [ma.counts[0].get(k, 0) for k in order]
    stream_b = [mb.counts[0].get(k, 0) for k in order]
    assert stream_a != stream_b  # two near-identical 2-atom registers: equal counts only if streams coincide


# ----------------------------------------------------------------- the Measurement


def _random_distribution(n: int, n_times: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probs = rng.random((n_times, 2**n)) * (rng.random(2**n) < 0.6)  # some bitstrings never occur
    return probs / probs.sum(axis=1, keepdims=True)


def test_sparse_measurement_equals_dense() -> None:
    """Moments from the kept bitstrings equal the dense sums; the dense vector is rebuilt on request."""
    n, ids, times = 5, [f"q{i}" for i in range(5)], (0.5, 1.0)
    dense = _random_distribution(n, 2, seed=3)
    bits = bit_matrix(n)
    m = Measurement.from_probabilities(ids, times, dense, backend="test")
    assert m.bitstrings is not None and m.bitstrings.size == np.count_nonzero(dense.any(axis=0)) < 2**n
    np.testing.assert_allclose(m.probabilities, dense, atol=0)
    np.testing.assert_allclose(m.occupations, dense @ bits, atol=1e-15)
    np.testing.assert_allclose(m.correlations, np.einsum("tk,ki,kj->tij", dense, bits, bits), atol=1e-15)
    expected_k = np.stack([np.bincount(bits.sum(1).astype(int), weights=p, minlength=n + 1) for p in dense])
    np.testing.assert_allclose(m.excitation_distribution, expected_k, atol=1e-15)
    lean = Measurement.from_sparse(
        ids, times, m.bitstrings, m.bitstring_probabilities, keep_probabilities=False
    )
    assert lean.probabilities is None and lean.exact and lean.bitstring_distribution() == {}
    for name in ("occupations", "correlations", "excitation_distribution"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(m, name))
    top = m.bitstring_distribution(0, min_probability=0.05)
    assert top == {format(k, "05b"): dense[0, k] for k in np.flatnonzero(dense[0] > 0.05)}
    # the cache round trip, and cache entries written before the Measurement was sparse
    back = Measurement.from_arrays(m.to_arrays())
    np.testing.assert_array_equal(back.probabilities, dense)
    old = {k: v for k, v in m.to_arrays().items() if k not in ("bitstrings", "bitstring_probabilities")}
    old["probabilities"] = dense
    np.testing.assert_array_equal(
        Measurement.from_arrays(old).bitstring_probabilities, m.bitstring_probabilities
    )


def test_measurement_is_read_only_and_pickles() -> None:
    import dataclasses
    import pickle

    ids, times = ["q0", "q1"], (1.0,)
    m = Measurement.from_probabilities(ids, times, [[0.5, 0.25, 0.0, 0.25]], settings={"tried": [1, 2]})
    for array in (m.occupations, m.correlations, m.excitation_distribution, m.bitstring_probabilities):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0
    with pytest.raises(TypeError):
        m.settings["tried"] = 3  # type: ignore[index]
    assert m.settings["tried"] == (1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.backend = "other"  # type: ignore[misc]
    counts = Measurement.from_counts(ids, times, [{"01": 3, "11": 1}])
    with pytest.raises(TypeError):
        counts.counts[0]["00"] = 1  # type: ignore[index]
    assert counts.counts == ({"01": 3, "11": 1},)
    for original in (m, counts):
        back = pickle.loads(pickle.dumps(original))
        np.testing.assert_array_equal(back.correlations, original.correlations)
        assert dict(back.settings) == dict(original.settings) and back.counts == original.counts
    with pytest.raises(InvalidInputError, match="occupations must have shape"):
        Measurement(ids, times, np.zeros((1, 3)), np.zeros((1, 2, 2)), np.zeros((1, 3)))
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        Measurement(
            ids,
            times,
            m.occupations,
            m.correlations,
            m.excitation_distribution,
            bitstrings=np.array([1, 0]),
            bitstring_probabilities=np.array([[0.5, 0.5]]),
        )


@pytest.mark.parametrize("n_qubits", [1, 7, 40])
def test_moments_match_dense_sums_over_the_bit_matrix(n_qubits: int) -> None:
    """⟨n_i⟩, ⟨n_i n_j⟩ and P(k) from the compiled pass against numpy sums over the states' bits."""
    from qgnn.backends.base import moments, state_bits

    rng = np.random.default_rng(n_qubits)
    n_states = min(2**n_qubits, 1000)
    states = np.sort(rng.choice(2 ** min(n_qubits, 40), size=n_states, replace=False)).astype(np.int64)
    probs = rng.random((3, n_states))
    probs[1, ::3] = 0.0  # zero weights are skipped
    probs /= probs.sum(axis=1, keepdims=True)
    occ, corr, exc = moments(states, probs, n_qubits)
    bits = state_bits(states, n_qubits)
    np.testing.assert_allclose(occ, probs @ bits, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(corr, np.einsum("tk,ki,kj->tij", probs, bits, bits), rtol=1e-12, atol=1e-15)
    counts = bits.sum(axis=1).astype(int)
    want = np.stack([np.bincount(counts, weights=p, minlength=n_qubits + 1) for p in probs])
    np.testing.assert_allclose(exc, want, rtol=1e-12, atol=1e-15)
