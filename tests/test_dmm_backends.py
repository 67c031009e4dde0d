"""Per-atom detuning (Pulser's DMM) on every local backend, against an independent dense solution.

With a detuning map modulator the Hamiltonian is

    H(t) = Σ_i Ω(t)/2 σx_i − Σ_i [δ(t) + w_i δ_DMM(t)] n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j,

which the reference below builds from Kronecker products and integrates with
``scipy.linalg.expm`` (one exponential for a constant drive; 0.25-ns midpoint
steps of the analytic linear waveforms for ramps). The sequences use only
Pulser's public API: ``register.define_detuning_map``,
``seq.config_detuning_map`` and ``seq.add_dmm_detuning``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pulser
import pytest
import scipy.linalg
from pulser.channels import DMM
from pulser.devices import AnalogDevice, MockDevice
from pulser.waveforms import ConstantWaveform, RampWaveform

from qgnn.backends import EmuMPS, EmuSV, Measurement, QutipEmulator, Subspace
from qgnn.backends.base import js_divergence

TWO_PI = 2 * math.pi
# AnalogDevice's physics (C6, channel) with a DMM, as qgnn emulates labelled graphs
DEVICE = dataclasses.replace(
    AnalogDevice.to_virtual(),
    name="AnalogWithDMM",
    dmm_objects=(DMM(bottom_detuning=-TWO_PI * 20, total_bottom_detuning=-TWO_PI * 2000),),
)
C6 = DEVICE.interaction_coeff
POSITIONS = [(0.0, 0.0), (6.0, 0.0), (3.0, 5.5), (12.0, 1.0)]
WEIGHTS = {"q0": 0.0, "q1": 0.25, "q2": 0.5, "q3": 1.0}


def _hamiltonian(omega: float, detunings: np.ndarray, positions: list[tuple[float, float]]) -> np.ndarray:
    """Dense H (rad/µs) with one detuning per atom; index = int(bitstring, 2), qubit 0 most significant."""
    n = len(positions)
    sx = np.array([[0.0, 1.0], [1.0, 0.0]])
    occ = np.diag([0.0, 1.0])

    def on(op: np.ndarray, i: int) -> np.ndarray:
        out = np.eye(1)
        for k in range(n):
            out = np.kron(out, op if k == i else np.eye(2))
        return out

    h = sum(omega / 2 * on(sx, i) - detunings[i] * on(occ, i) for i in range(n))
    for i, j in itertools.combinations(range(n), 2):
        r = np.linalg.norm(np.subtract(positions[i], positions[j]))
        h = h + C6 / r**6 * on(occ, i) @ on(occ, j)
    return h


def _register() -> pulser.Register:
    return pulser.Register.from_coordinates(POSITIONS, prefix="q")


def _with_dmm(seq: pulser.Sequence, waveform: pulser.waveforms.Waveform) -> pulser.Sequence:
    seq.config_detuning_map(seq.register.define_detuning_map(WEIGHTS), "dmm_0")
    seq.add_dmm_detuning(waveform, "dmm_0")
    return seq


def _constant_sequence(omega: float, delta: float, delta_dmm: float, duration: int) -> pulser.Sequence:
    seq = pulser.Sequence(_register(), DEVICE)
    seq.declare_channel("rydberg_global", "rydberg_global")
    seq.add(pulser.Pulse.ConstantPulse(duration, omega, delta, 0.0), "rydberg_global")
    return _with_dmm(seq, ConstantWaveform(duration, delta_dmm))


def _ramp_sequence(duration: int) -> pulser.Sequence:
    """Ω 0 → 2π·1.2, δ −2π → 2π, δ_DMM 0 → −2π·2: three linear ramps over the whole duration."""
    seq = pulser.Sequence(_register(), DEVICE)
    seq.declare_channel("rydberg_global", "rydberg_global")
    seq.add(
        pulser.Pulse(RampWaveform(duration, 0.0, TWO_PI * 1.2), RampWaveform(duration, -TWO_PI, TWO_PI), 0.0),
        "rydberg_global",
    )
    return _with_dmm(seq, RampWaveform(duration, 0.0, -TWO_PI * 2))


def _weights() -> np.ndarray:
    return np.array([WEIGHTS[f"q{i}"] for i in range(len(POSITIONS))])


def _reference_constant(omega: float, delta: float, delta_dmm: float, times_ns: list[float]) -> np.ndarray:
    h = _hamiltonian(omega, delta + _weights() * delta_dmm, POSITIONS)
    psi0 = np.zeros(2 ** len(POSITIONS), complex)
    psi0[0] = 1.0
    return np.array([np.abs(scipy.linalg.expm(-1j * h * t * 1e-3) @ psi0) ** 2 for t in times_ns])


def _reference_ramps(duration: int) -> np.ndarray:
    """|ψ(T)|² for _ramp_sequence: Pulser's ramp samples are linear from k = 0 to k = T − 1 ns.

    Past the last sample the emulators extrapolate the same line to T (PCHIP of linear samples).
    """

    def line(start: float, stop: float, t: float) -> float:
        return start + (stop - start) * t / (duration - 1)

    psi = np.zeros(2 ** len(POSITIONS), complex)
    psi[0] = 1.0
    h_ns = 0.25
    for k in range(int(duration / h_ns)):
        t = (k + 0.5) * h_ns
        detunings = line(-TWO_PI, TWO_PI, t) + _weights() * line(0.0, -TWO_PI * 2, t)
        h = _hamiltonian(line(0.0, TWO_PI * 1.2, t), detunings, POSITIONS)
        psi = scipy.linalg.expm(-1j * h * h_ns * 1e-3) @ psi
    return (np.abs(psi) ** 2)[None, :]


@pytest.fixture(scope="module")
def constant_case() -> tuple[pulser.Sequence, tuple[float, ...], np.ndarray]:
    omega, delta, delta_dmm, duration = TWO_PI, TWO_PI * 0.5, -TWO_PI * 2, 600
    times = (0.4, 1.0)
    seq = _constant_sequence(omega, delta, delta_dmm, duration)
    ref = _reference_constant(omega, delta, delta_dmm, [t * duration for t in times])
    # the per-atom detuning changes the physics: without it the reference is far away
    without = _reference_constant(omega, delta, 0.0, [t * duration for t in times])
    assert np.abs(ref - without).max() > 0.05
    return seq, times, ref


@pytest.fixture(scope="module")
def ramp_case() -> tuple[pulser.Sequence, np.ndarray]:
    duration = 300
    return _ramp_sequence(duration), _reference_ramps(duration)


@pytest.mark.parametrize(
    ("backend", "atol"),
    [
        (EmuSV(), 1e-5),
        (QutipEmulator(), 1e-5),
        (EmuMPS(), 2e-3),  # default precision 1e-5: loose, stated tolerance
        (Subspace(energy_cutoff=math.inf), 1e-9),
    ],
    ids=["emu-sv", "qutip", "emu-mps", "subspace-exact"],
)
def test_constant_dmm_matches_dense_expm(backend, atol: float, constant_case) -> None:  # type: ignore[no-untyped-def]
    seq, times, ref = constant_case
    (m,) = backend.run([seq], evaluation_times=times)
    np.testing.assert_allclose(m.probabilities, ref, atol=atol)
    bits = ((np.arange(16)[:, None] >> np.arange(3, -1, -1)) & 1).astype(float)
    np.testing.assert_allclose(m.occupations, ref @ bits, atol=max(atol, 1e-9))


def test_constant_dmm_on_default_subspace_is_within_its_tolerances(constant_case) -> None:  # type: ignore[no-untyped-def]
    seq, times, ref = constant_case
    (m,) = Subspace().run([seq], evaluation_times=times)
    exact = Measurement.from_probabilities(m.qubit_ids, times, ref)
    assert js_divergence(m.excitation_distribution, exact.excitation_distribution).max() <= 1e-3
    assert np.abs(m.occupations - exact.occupations).max() <= 1e-3
    assert m.settings["truncation_occupation_error"] <= 1e-3


@pytest.mark.parametrize(
    ("backend", "atol"),
    [
        (EmuSV(), 1e-4),  # midpoint steps of 10 ns: 3e-5 measured
        (QutipEmulator(), 5e-5),
        (EmuMPS(dt=5.0), 1e-3),  # loose, stated tolerance (2e-5 measured)
        (Subspace(energy_cutoff=math.inf), 1e-5),  # fourth-order steps of 40 ns: 1e-6 measured
    ],
    ids=["emu-sv", "qutip", "emu-mps", "subspace-exact"],
)
def test_time_dependent_dmm_matches_dense_integration(backend, atol: float, ramp_case) -> None:  # type: ignore[no-untyped-def]
    seq, ref = ramp_case
    (m,) = backend.run([seq])
    np.testing.assert_allclose(m.probabilities, ref, atol=atol)


def test_subspace_groups_atoms_by_detuning_and_reads_an_slm_mask() -> None:
    """Atoms with equal weights share a detuning group; an SLM mask (a DMM detuning in Pulser) is read too."""
    reg = pulser.Register.from_coordinates([(0.0, 0.0), (6.0, 0.0), (12.0, 0.0), (6.0, 6.0)], prefix="q")
    seq = pulser.Sequence(reg, DEVICE)
    seq.declare_channel("rydberg_global", "rydberg_global")
    seq.add(pulser.Pulse.ConstantPulse(400, TWO_PI, 0.0, 0.0), "rydberg_global")
    seq.config_detuning_map(reg.define_detuning_map({"q0": 1.0, "q1": 0.0, "q2": 1.0, "q3": 0.0}), "dmm_0")
    seq.add_dmm_detuning(ConstantWaveform(400, -TWO_PI * 3), "dmm_0")
    (sub,) = Subspace(energy_cutoff=math.inf).run([seq])
    (ref,) = EmuSV(dt=1.0).run([seq])
    np.testing.assert_allclose(sub.probabilities, ref.probabilities, atol=1e-5)
    assert abs(sub.occupations[0, 0] - sub.occupations[0, 2]) < 1e-9  # symmetric pair, same weight
    masked = pulser.Sequence(reg, MockDevice)
    masked.declare_channel("rydberg_global", "rydberg_global")
    masked.config_slm_mask(["q0"])
    masked.add(pulser.Pulse.ConstantPulse(400, TWO_PI, 0.0, 0.0), "rydberg_global")
    (sub,) = Subspace(energy_cutoff=math.inf).run([masked])
    # pulser-simulation reads the same per-atom samples (emu-sv also switches the masked atom's
    # interactions off while the mask is on, an emulator convention of its own)
    (ref,) = QutipEmulator().run([masked])
    np.testing.assert_allclose(sub.probabilities, ref.probabilities, atol=1e-5)
    assert sub.occupations[0, 0] < 0.05 < sub.occupations[0, 2]  # the masked atom is held down


def test_labelled_graph_through_the_pipeline_on_subspace_and_emu_sv() -> None:
    """qgnn.pulses.NodeDetuning → DMM weights → the same features on the default backend and emu-sv."""
    import networkx as nx

    from qgnn.features import FeaturePipeline
    from qgnn.pulses import AnalogDMMDevice, ConstantDrive, NodeDetuning

    graph = nx.path_graph(5)
    nx.set_node_attributes(graph, {0: "C", 1: "N", 2: "C", 3: "O", 4: "C"}, "label")
    labels = NodeDetuning(weights={"C": 0.0, "N": 0.5, "O": 1.0}, detuning=-TWO_PI * 2)
    results = {}
    for name, backend, schedule in (
        ("subspace", Subspace(), ConstantDrive(node_detuning=labels)),
        ("emu-sv", EmuSV(), ConstantDrive(node_detuning=labels)),
        ("unlabelled", Subspace(), ConstantDrive()),
    ):
        pipe = FeaturePipeline(
            device=AnalogDMMDevice, schedule=schedule, backend=backend, cache_dir=False, progress=False
        )
        (result,) = pipe.run([graph])
        assert result.ok, result.error
        results[name] = result.measurement
    sub, emu, plain = results["subspace"], results["emu-sv"], results["unlabelled"]
    assert np.abs(sub.occupations - emu.occupations).max() <= 1e-3
    assert js_divergence(sub.excitation_distribution, emu.excitation_distribution).max() <= 1e-3
    assert np.abs(sub.occupations - plain.occupations).max() > 0.05  # the labels changed the physics
