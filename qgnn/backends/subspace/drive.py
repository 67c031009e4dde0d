"""Reading a Pulser sequence into drive samples, and slicing them into stretches of constant H.

The Hamiltonian (Pulser's convention, ``"1"`` = Rydberg) is

    H(t) = Σ_i Ω(t)/2 (cos φ(t) σx_i − sin φ(t) σy_i) − Σ_i δ_i(t) n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j,

i.e. ⟨…1_i…|H|…0_i…⟩ = Ω/2 · e^{iφ}, with one global Rydberg channel (Ω, φ
and δ) and optional detuning map modulators (DMM): δ_i(t) = δ(t) + w_i δ_DMM(t).
The per-atom samples come from Pulser's public sampler
(``sample(seq).to_nested_dict(all_local=True)``, as emu-sv reads them), so a
DMM (or an SLM mask, which Pulser realises with a DMM) enters exactly as
Pulser defines it. Atoms with the same detuning samples form a group; the
solver only ever needs the number of excited atoms of each group.

Time discretisation (mirrors emu-sv): Pulser samples the channels once per ns;
sample k is the value at t = k ns and the waveform in between is the PCHIP
interpolant (extended past the last sample to the sequence duration T). Where
consecutive samples are equal the interpolant is constant and H is applied
exactly over the whole stretch (one exponential, however long). Where they
differ, the stretch is cut into steps of at most ``dt`` ns, each done with the
fourth-order commutator-free Magnus integrator (two exponentials of H at the
step's Gauss points, Alvermann & Fehske 2011 "CF4:2"): its error falls as
dt⁴, so ramps need far fewer exponentials than a midpoint rule at the same
error. A jump between two samples (a new pulse, a phase jump) is one 1-ns
step at its midpoint, i.e. at the average of its two sides. Samples are
unmodulated and the drive is zero outside Pulser's pulse slots, as in
emu-sv's defaults. Evaluation times are fractions f of T, taken at t = f·T
exactly (not rounded to ns), like emu-sv.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pulser
from pulser.channels.dmm import DMM
from pulser.sampler import sample
from scipy.interpolate import PchipInterpolator

from qgnn.backends.base import check_built_sequence
from qgnn.backends.subspace.basis import interaction_matrix
from qgnn.errors import BackendError, InvalidInputError

_RYDBERG_BASIS = "ground-rydberg"
_SUPPORTED = (
    "the subspace backend supports one global Rydberg channel (e.g. 'rydberg_global'), "
    "optionally with detuning map modulators (DMM, e.g. 'dmm_0'); no local, Raman or microwave channels"
)
#: CF4:2 Gauss nodes (fractions of a step) and weights.
_GAUSS = (0.5 - math.sqrt(3.0) / 6.0, 0.5 + math.sqrt(3.0) / 6.0)
_BIG, _SMALL = (3.0 + 2.0 * math.sqrt(3.0)) / 12.0, (3.0 - 2.0 * math.sqrt(3.0)) / 12.0


@dataclass(frozen=True, eq=False)
class Drive:
    """What the subspace solver needs from a sequence.

    Args:
        qubit_ids: register qubit ids, in bitstring order.
        interactions: U_ij = C6/r_ij⁶ (rad/µs), ``(n, n)``.
        duration: sequence duration T (ns).
        samples: one row per ns sample: Ω (rad/µs), φ (rad), then the
            detuning of each atom group (rad/µs); shape ``(2 + G, T)``.
        groups: the group of each atom (index into the detuning rows), shape ``(n,)``.
    """

    qubit_ids: tuple[str, ...]
    interactions: np.ndarray
    duration: int
    samples: np.ndarray
    groups: np.ndarray

    @property
    def n_qubits(self) -> int:
        """Number of atoms."""
        return len(self.qubit_ids)

    @property
    def n_groups(self) -> int:
        """Number of distinct per-atom detuning waveforms (1 without a DMM)."""
        return int(self.samples.shape[0] - 2)

    @property
    def omega_max(self) -> float:
        """Peak Rabi frequency Ω_max (rad/µs)."""
        return float(self.samples[0].max(initial=0.0))

    @property
    def drive_scale(self) -> float:
        """E_drive = max(Ω_max, max_i δ_i⁺) (rad/µs), the unit of ``energy_cutoff``.

        Only positive detuning counts: it brings bitstrings of interaction
        energy ≈ δ·n_exc into resonance, while a negative one only pushes
        excitations further off resonance (an adiabatic sweep from
        δ = −3·2π rad/µs needs the cutoff of its plateau Ω, not of |δ|).
        """
        return max(self.omega_max, float(self.samples[2:].max(initial=0.0)))


@dataclass(frozen=True)
class Piece:
    """exp(−iHτ) with constant H: ``coupling`` = Ω/2·e^{iφ} (rad/µs), ``detuning`` per atom group.

    ``tau`` in ns; ``record`` = offsets (ns) inside the piece at which the state is kept.
    """

    tau: float
    coupling: complex
    detuning: tuple[float, ...]
    record: tuple[float, ...] = ()


def read_sequence(seq: pulser.Sequence, label: str) -> Drive:
    """Extract register, C6 and the per-atom drive samples; reject anything else.

    Raises:
        InvalidInputError: not a built Sequence, or an empty one.
        BackendError: unsupported channels, a drive that differs between
            atoms (local Rydberg pulses), or two atoms at the same position.
    """
    check_built_sequence(seq, label)
    channels = seq.declared_channels
    rydberg = [
        name
        for name, ch in channels.items()
        if not isinstance(ch, DMM) and ch.addressing == "Global" and ch.basis == _RYDBERG_BASIS
    ]
    other = [name for name, ch in channels.items() if not isinstance(ch, DMM) and name not in rydberg]
    if len(rydberg) != 1 or other:
        raise BackendError(f"{label} declares channels {sorted(channels)}; {_SUPPORTED}")
    duration = int(seq.get_duration())
    if duration <= 0:
        raise InvalidInputError(f"{label} is empty (duration 0 ns): add a pulse, e.g. with qgnn.pulses")
    try:
        per_atom = sample(seq).to_nested_dict(all_local=True)["Local"].get(_RYDBERG_BASIS, {})
    except Exception as exc:  # pulser's sampler raises NotImplementedError, ValueError, ...
        raise BackendError(f"{label}: pulser could not sample it: {type(exc).__name__}: {exc}") from exc
    reg = seq.register
    zeros = np.zeros(duration)

    def rows(key: str) -> np.ndarray:
        out = np.stack([np.asarray(per_atom.get(q, {}).get(key, zeros), np.float64) for q in reg.qubit_ids])
        return np.pad(out[:, :duration], ((0, 0), (0, max(0, duration - out.shape[1]))))

    amp, det, phase = rows("amp"), rows("det"), rows("phase")
    if np.any(amp != amp[:1]) or np.any((phase != phase[:1]) & (amp > 0)):
        raise BackendError(f"{label}: the Rydberg drive differs between atoms; {_SUPPORTED}")
    levels, groups = np.unique(det, axis=0, return_inverse=True)
    qubit_ids = tuple(str(q) for q in reg.qubit_ids)
    positions = np.array([np.asarray(reg.qubits[q].as_array(), dtype=np.float64) for q in reg.qubit_ids])
    u = interaction_matrix(positions, float(seq.device.interaction_coeff))
    if not np.all(np.isfinite(u)):
        raise BackendError(f"{label}: two atoms share a position; the interaction is infinite")
    samples = np.vstack([np.maximum(amp[0], 0.0), phase[0], levels])
    return Drive(qubit_ids, u, duration, samples, np.asarray(groups, dtype=np.int64).reshape(-1))


def _piece(tau: float, values: np.ndarray, record: tuple[float, ...] = ()) -> Piece:
    """A piece from one column of samples (Ω, φ, δ_g...)."""
    coupling = 0.5 * max(float(values[0]), 0.0) * complex(math.cos(values[1]), math.sin(values[1]))
    return Piece(tau, coupling, tuple(float(d) for d in values[2:]), record)


def _magnus_step(h: float, first: np.ndarray, second: np.ndarray, record: bool) -> list[Piece]:
    """One CF4:2 step of ``h`` ns from the samples at its two Gauss points (two exponentials of h/2)."""
    out = []
    for w1, w2, keep in ((_BIG, _SMALL, False), (_SMALL, _BIG, record)):
        z1 = 0.5 * first[0] * complex(math.cos(first[1]), math.sin(first[1]))
        z2 = 0.5 * second[0] * complex(math.cos(second[1]), math.sin(second[1]))
        detuning = tuple(float(d) for d in 2.0 * (w1 * first[2:] + w2 * second[2:]))
        out.append(Piece(0.5 * h, 2.0 * (w1 * z1 + w2 * z2), detuning, (0.5 * h,) if keep else ()))
    return out


def pieces(drive: Drive, eval_ns: Sequence[float], dt: float) -> list[Piece]:
    """Split [0, T] into exponentials of constant H (see the module docstring).

    Args:
        drive: the samples.
        eval_ns: evaluation times (ns), increasing, in (0, T].
        dt: longest step (ns) across a time-varying stretch.
    """
    s = drive.samples
    T = drive.duration
    # interval [k, k+1] (k = 0..T-1; the last one is the extension past the last sample) is flat
    # when its two end samples are equal (PCHIP is then constant on it)
    if T == 1:
        flat = np.ones(1, bool)
    else:
        flat_inner = np.all(s[:, 1:] == s[:, :-1], axis=0)
        flat = np.append(flat_inner, flat_inner[-1])
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [T]])
    # a jump (a step between pulses, a phase jump) is kept as its own 1-ns step, so that steps of dt
    # only ever span smooth stretches of the waveform
    step = np.abs(np.diff(s, axis=1)) if T > 1 else np.zeros((s.shape[0], 0))
    padded = np.pad(step, ((0, 0), (1, 1)))
    neighbours = np.maximum(padded[:, :-2], padded[:, 2:])
    jump_at = np.flatnonzero(np.any((step > 0) & (step > 4.0 * neighbours), axis=0))
    jump_edges = np.union1d(jump_at, jump_at + 1).astype(np.float64)
    jump_set = set(jump_at.tolist())
    interp = None
    out: list[Piece] = []
    ev = [float(t) for t in eval_ns]
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        inside = [t for t in ev if a < t <= b]
        if flat[a]:
            out.append(_piece(float(b - a), s[:, a], tuple(t - a for t in inside)))
            continue
        if interp is None:
            interp = PchipInterpolator(np.arange(T, dtype=np.float64), s, axis=1, extrapolate=True)
        inner = {t for t in inside if t < b} | {float(t) for t in jump_edges if a < t < b}
        cuts = [float(a), *sorted(inner), float(b)]
        for c0, c1 in zip(cuts[:-1], cuts[1:], strict=True):
            keep = c1 in inside
            if c1 - c0 == 1.0 and c0 == int(c0) and int(c0) in jump_set:
                out.append(_piece(1.0, interp(c0 + 0.5), (1.0,) if keep else ()))
                continue
            n_steps = max(1, math.ceil((c1 - c0) / dt - 1e-9))
            h = (c1 - c0) / n_steps
            nodes = c0 + h * (np.arange(n_steps)[:, None] + np.array(_GAUSS)[None, :])
            values = interp(nodes.ravel()).reshape(s.shape[0], n_steps, 2)
            values[0] = np.maximum(values[0], 0.0)
            for i in range(n_steps):
                out.extend(_magnus_step(h, values[:, i, 0], values[:, i, 1], keep and i == n_steps - 1))
    return out
