"""Exact fast path for global Rydberg drives: evolution in an energy-truncated basis.

For a register driven by one global Rydberg channel, the Hamiltonian (Pulser's
convention, ``"1"`` = Rydberg) is

    H(t) = Σ_i Ω(t)/2 (cos φ(t) σx_i − sin φ(t) σy_i) − δ(t) Σ_i n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j,

i.e. ⟨…1_i…|H|…0_i…⟩ = Ω/2 · e^{iφ}. Bitstrings whose total interaction energy
E(x) = Σ_{i<j, both excited} C6/r_ij⁶ exceeds ``energy_cutoff × E_drive``
(E_drive = max(Ω_max, max|δ|), in rad/µs) are blockaded: they only ever carry
a tiny weight and are dropped. E(x) only grows when an excitation is added, so
the kept set is closed under removing excitations and is enumerated exactly by
adding one excitation at a time with pruning. In the kept basis the evolution
is done with a Chebyshev expansion of exp(−iHτ) (Bessel coefficients,
Gershgorin spectral bounds; accurate to ~1e-13 per piece).

Time discretisation (mirrors emu-sv): Pulser samples the channel once per ns;
sample k is the value at t = k ns and the waveform in between is the PCHIP
interpolant (extended past the last sample to the sequence duration T). Where
consecutive samples are equal the interpolant is constant and H is applied
exactly over the whole stretch (one Chebyshev series, however long); where they
differ the stretch is cut into steps of at most ``dt`` ns and H is taken at each
step's midpoint; a jump between two samples (a new pulse, a phase jump) is one
1-ns step at its midpoint, i.e. at the average of its two sides. Samples are
unmodulated and the drive is zero outside Pulser's pulse slots, as in emu-sv's
defaults. Evaluation times are fractions f of T and are taken at t = f·T
exactly (not rounded to ns), like emu-sv.

Error control: the truncation error is measured by :func:`js_divergence`
(natural log) of the excitation-count distribution (or of the bitstring
distribution, ``criterion="bitstrings"``), max over the evaluation times. With
``energy_cutoff=None`` the cutoff is chosen per sequence, deterministically:
the sequence is evolved at c = 5, 10, 20, 28, 40, 57, … (units of E_drive;
doubling up to 20, then ×√2) until JS(previous c, c) ≤ tolerance / 2, and the
result at c is returned with ``truncation_js`` = that JS. The error falls
faster than geometrically in c (QEK drive, 37 random registers of 8–14 atoms:
JS to the exact result ≈ 5e-3, 3e-4, 5e-7, 7e-9, 1e-11 at c = 5, 10, 20, 28,
40), so JS(previous c, c) over-estimates the error at c: measured ≥ 0.86×
(median 10×) for 5 → 10, ≥ 110× for 10 → 20, ≥ 9× for 20 → 28, ≥ 39× for
28 → 40. Each step costs about as much as all the previous ones, so the search
costs ≈ 2× the accepted evolution. ``tolerance=0`` or ``energy_cutoff=math.inf``
evolves in the full 2**n space (exact, and slower than a large finite cutoff:
the few states of very high energy widen the spectrum the Chebyshev series
must cover).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pulser
import scipy
import scipy.sparse as sp
from pulser.channels.dmm import DMM
from pulser.sampler import sample
from scipy.interpolate import PchipInterpolator
from scipy.special import jv

import qgnn
from qgnn.backends.base import Measurement, check_evaluation_times, check_shots, js_divergence, sequence_seed
from qgnn.errors import BackendError

__all__ = [
    "BasisTooLargeError",
    "Subspace",
    "SubspaceBasis",
    "TruncationWarning",
    "interaction_matrix",
    "rydberg_basis",
]

_RYDBERG_BASIS = "ground-rydberg"
#: Chebyshev terms are kept while any Bessel coefficient exceeds this.
_CHEB_EPS = 1e-15
#: Largest number of atoms for which a dense 2**n probability vector is returned.
_MAX_DENSE_QUBITS = 20
#: Cutoffs tried by the automatic rule start here (units of E_drive), double up to
#: _AUTO_FINE_FROM, then grow by √2 up to _AUTO_MAX_CUTOFF, after which the full space is used.
_AUTO_START_CUTOFF = 5.0
_AUTO_FINE_FROM = 20.0
_AUTO_MAX_CUTOFF = 5000.0
#: Cutoff c is accepted when JS(previous cutoff, c) ≤ _AUTO_SAFETY × tolerance.
_AUTO_SAFETY = 0.5


class TruncationWarning(UserWarning):
    """The estimated truncation error of a Subspace run exceeds its tolerance."""


# ----------------------------------------------------------------------------- basis


@dataclass(frozen=True, eq=False)
class SubspaceBasis:
    """Bitstrings kept by an interaction-energy cutoff, and the drive's couplings among them.

    Args:
        n_qubits: number of atoms.
        states: kept bitstrings as integers (qubit 0 = most significant bit), sorted.
        interaction: E(x) = Σ_{i<j both excited} C6/r_ij⁶ per kept state (rad/µs).
        n_excited: number of excitations per kept state.
        up: index pairs ``(k_from, k_to)``, shape ``(2, m)``: state ``k_to`` is
            ``k_from`` plus one excitation (both kept).
        boundary: ``(k_from, x, dE)``: kept state ``k_from`` plus one excitation
            gives the ``x``-th dropped bitstring (``x`` indexes the distinct
            dropped neighbours of the basis), with interaction energy
            ``E(dropped) − E(k_from) = dE`` (rad/µs).
        max_energy: the cutoff on E(x) that produced it (rad/µs, ``inf`` = none).
    """

    n_qubits: int
    states: np.ndarray
    interaction: np.ndarray
    n_excited: np.ndarray
    up: np.ndarray
    boundary: tuple[np.ndarray, np.ndarray, np.ndarray]
    max_energy: float

    @property
    def dim(self) -> int:
        """Number of kept bitstrings."""
        return int(self.states.size)

    def bits(self) -> np.ndarray:
        """Occupations of the kept states, shape ``(dim, n)`` (float64, qubit 0 first)."""
        shifts = np.arange(self.n_qubits - 1, -1, -1, dtype=np.int64)
        return ((self.states[:, None] >> shifts[None, :]) & 1).astype(np.float64)


def interaction_matrix(positions: np.ndarray, c6: float) -> np.ndarray:
    """U_ij = C6 / r_ij⁶ (rad/µs), zero diagonal.

    Args:
        positions: atom coordinates (µm), shape ``(n, 2)`` or ``(n, 3)``.
        c6: interaction coefficient (rad/µs·µm⁶).
    """
    pos = np.asarray(positions, dtype=np.float64)
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    return c6 / d2**3


class BasisTooLargeError(BackendError):
    """The kept basis would exceed the allowed number of bitstrings."""


def rydberg_basis(
    interactions: np.ndarray, max_energy: float, max_states: int | None = None
) -> SubspaceBasis:
    """Enumerate every bitstring whose interaction energy is ≤ ``max_energy``.

    Grows the set one excitation at a time, adding only atoms after the last
    excited one (each bitstring is produced once); since every U_ij > 0 a
    pruned bitstring has no kept superset, so the enumeration is exact.

    Args:
        interactions: U_ij (rad/µs), symmetric ``(n, n)``, ≥ 0, zero diagonal.
        max_energy: largest kept interaction energy (rad/µs); ``inf`` keeps all 2**n.
        max_states: stop with :class:`BasisTooLargeError` beyond this many bitstrings.

    Raises:
        BackendError: malformed ``interactions`` or ``max_energy``, more than 62 atoms.
    """
    u = np.asarray(interactions, dtype=np.float64)
    if u.ndim != 2 or u.shape[0] != u.shape[1] or u.shape[0] == 0:
        raise BackendError(f"interactions must be a square (n, n) matrix with n ≥ 1, got shape {u.shape}")
    if not (np.all(np.isfinite(u)) and np.all(u >= 0) and np.allclose(u, u.T) and not np.any(np.diag(u))):
        raise BackendError("interactions must be finite, ≥ 0, symmetric, with a zero diagonal")
    if math.isnan(max_energy):
        raise BackendError("max_energy is NaN")
    n = u.shape[0]
    if n > 62:
        raise BackendError(f"the subspace backend handles at most 62 atoms, got {n}")
    total = 1
    weights = np.int64(1) << np.arange(n - 1, -1, -1, dtype=np.int64)
    masks = [np.zeros(1, np.int64)]
    energies = [np.zeros(1)]
    counts = [np.zeros(1, np.int64)]
    level_bits = np.zeros((1, n))
    level_last = np.full(1, -1, np.int64)
    level_e = energies[0]
    level_m = masks[0]
    for k in range(1, n + 1):
        inc = level_bits @ u  # (m, n): energy added by exciting atom j
        cand = (np.arange(n)[None, :] > level_last[:, None]) & (level_e[:, None] + inc <= max_energy)
        rows, cols = np.nonzero(cand)
        if rows.size == 0:
            break
        level_m = level_m[rows] | weights[cols]
        level_e = level_e[rows] + inc[rows, cols]
        level_last = cols.astype(np.int64)
        level_bits = level_bits[rows].copy()
        level_bits[np.arange(rows.size), cols] = 1.0
        masks.append(level_m)
        energies.append(level_e)
        counts.append(np.full(rows.size, k, np.int64))
        total += rows.size
        if max_states is not None and total > max_states:
            raise BasisTooLargeError(
                f"more than {max_states} bitstrings have interaction energy ≤ {max_energy:g} rad/µs"
            )
    states = np.concatenate(masks)
    order = np.argsort(states, kind="stable")
    states = states[order]
    interaction = np.concatenate(energies)[order]
    n_excited = np.concatenate(counts)[order]

    # couplings: state k plus one excitation on atom j
    bits = (states[:, None] & weights[None, :]) != 0
    added = bits.astype(np.float64) @ u  # energy added by exciting atom j in state k
    k_from, j = np.nonzero(~bits)
    target = states[k_from] | weights[j]
    if n <= _MAX_DENSE_QUBITS:
        table = np.full(1 << n, -1, np.int64)
        table[states] = np.arange(states.size)
        pos = table[target]
        found = pos >= 0
    else:
        pos = np.minimum(np.searchsorted(states, target), states.size - 1)
        found = states[pos] == target
    up = np.stack([k_from[found], pos[found]]).astype(np.int64)
    lost = ~found
    _, dropped = np.unique(target[lost], return_inverse=True)
    boundary = (k_from[lost].astype(np.int64), dropped.astype(np.int64), added[k_from[lost], j[lost]])
    return SubspaceBasis(n, states, interaction, n_excited, up, boundary, float(max_energy))


# ----------------------------------------------------------------------------- drive


@dataclass(frozen=True, eq=False)
class _Problem:
    """What the subspace solver needs from a sequence."""

    qubit_ids: tuple[str, ...]
    interactions: np.ndarray  # (n, n) rad/µs
    duration: int  # ns
    samples: np.ndarray  # (3, T): Ω (rad/µs), δ (rad/µs), φ (rad), one per ns

    @property
    def n_qubits(self) -> int:
        """Number of atoms."""
        return len(self.qubit_ids)

    @property
    def drive_scale(self) -> float:
        """E_drive = max(Ω_max, max|δ|) (rad/µs), the unit of ``energy_cutoff``."""
        return float(max(self.samples[0].max(initial=0.0), np.abs(self.samples[1]).max(initial=0.0)))


@dataclass(frozen=True)
class _Piece:
    """A stretch of constant H: (Ω, δ, φ) for ``tau`` ns; ``record`` = offsets (ns) to keep."""

    tau: float
    omega: float
    delta: float
    phi: float
    record: tuple[float, ...]


def _read_sequence(seq: pulser.Sequence, label: str) -> _Problem:
    """Extract register, C6 and the global Rydberg samples; reject anything else."""
    if not isinstance(seq, pulser.Sequence):
        raise BackendError(f"{label} is a {type(seq).__name__}, not a pulser.Sequence")
    if seq.is_parametrized() or seq.is_register_mappable():
        raise BackendError(f"{label} is parametrized or has a mappable register: call seq.build() first")
    supported = (
        "the subspace backend supports exactly one global Rydberg channel "
        "(e.g. 'rydberg_global'); no local, Raman, microwave or DMM channels and no SLM mask"
    )
    channels = seq.declared_channels
    if len(channels) != 1:
        raise BackendError(f"{label} declares channels {sorted(channels)}; {supported}")
    ((ch_name, ch),) = channels.items()
    if isinstance(ch, DMM) or ch.addressing != "Global" or ch.basis != _RYDBERG_BASIS:
        raise BackendError(
            f"{label}: channel {ch_name!r} is a {ch.addressing} {ch.basis} {type(ch).__name__}; {supported}"
        )
    duration = int(seq.get_duration())
    if duration <= 0:
        raise BackendError(f"{label} is empty (duration 0 ns): add a pulse, e.g. with qgnn.pulses")
    try:
        cs = sample(seq).channel_samples[ch_name]
    except Exception as exc:  # pulser's sampler raises NotImplementedError, ValueError, ...
        raise BackendError(f"{label}: pulser could not sample it: {type(exc).__name__}: {exc}") from exc
    samples = np.zeros((3, duration))
    # as emu-sv does (pulser's all_local samples), the drive acts only inside pulse slots
    raw = [np.asarray(q.as_array(), dtype=np.float64) for q in (cs.amp, cs.det, cs.phase)]
    for slot in cs.slots:
        sl = slice(slot.ti, min(slot.tf, duration))
        for row, values in enumerate(raw):
            samples[row, sl] = values[sl]
    reg = seq.register
    qubit_ids = tuple(str(q) for q in reg.qubit_ids)
    positions = np.array([np.asarray(reg.qubits[q].as_array(), dtype=np.float64) for q in reg.qubit_ids])
    u = interaction_matrix(positions, float(seq.device.interaction_coeff))
    if not np.all(np.isfinite(u)):
        raise BackendError(f"{label}: two atoms share a position; the interaction is infinite")
    return _Problem(qubit_ids, u, duration, samples)


def _pieces(problem: _Problem, eval_ns: Sequence[float], dt: float) -> list[_Piece]:
    """Split [0, T] into stretches of constant H (see module docstring)."""
    s = problem.samples
    T = problem.duration
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
    step = np.abs(np.diff(s, axis=1)) if T > 1 else np.zeros((3, 0))
    padded = np.pad(step, ((0, 0), (1, 1)))
    neighbours = np.maximum(padded[:, :-2], padded[:, 2:])
    jump_at = np.flatnonzero(np.any((step > 0) & (step > 4.0 * neighbours), axis=0))
    jump_edges = np.union1d(jump_at, jump_at + 1).astype(np.float64)
    jump_set = set(jump_at.tolist())
    interp = None
    pieces: list[_Piece] = []
    ev = [float(t) for t in eval_ns]
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        inside = [t for t in ev if a < t <= b]
        if flat[a]:
            om, de, ph = s[:, a]
            record = tuple(t - a for t in inside)
            pieces.append(_Piece(float(b - a), max(float(om), 0.0), float(de), float(ph), record))
            continue
        if interp is None:
            interp = PchipInterpolator(np.arange(T, dtype=np.float64), s, axis=1, extrapolate=True)
        inner = {t for t in inside if t < b} | {float(t) for t in jump_edges if a < t < b}
        cuts = [float(a), *sorted(inner), float(b)]
        for c0, c1 in zip(cuts[:-1], cuts[1:], strict=True):
            is_jump = c1 - c0 == 1.0 and c0 == int(c0) and int(c0) in jump_set
            n_steps = 1 if is_jump else max(1, math.ceil((c1 - c0) / dt - 1e-9))
            h = (c1 - c0) / n_steps
            vals = interp(c0 + h * (np.arange(n_steps) + 0.5))
            for i in range(n_steps):
                keep = (h,) if i == n_steps - 1 and c1 in inside else ()
                pieces.append(
                    _Piece(h, max(float(vals[0, i]), 0.0), float(vals[1, i]), float(vals[2, i]), keep)
                )
    return pieces


# ----------------------------------------------------------------------------- propagation


class _Operators:
    """H(Ω, δ, φ) in a basis, as one CSR pattern (drive couplings + diagonal) refilled per piece."""

    def __init__(self, basis: SubspaceBasis) -> None:
        k_from, k_to = basis.up
        dim = basis.dim
        diag = np.arange(dim, dtype=np.int64)
        rows = np.concatenate([k_to, k_from, diag])
        cols = np.concatenate([k_from, k_to, diag])
        # CSR conversion in C; the data carry each entry's original position (+1, so none is zero)
        slots = np.arange(1, rows.size + 1, dtype=np.float64)
        csr = sp.coo_array((slots, (rows, cols)), shape=(dim, dim)).tocsr()
        where = csr.data.astype(np.int64) - 1
        self.indices, self.indptr = csr.indices, csr.indptr
        m = k_from.size
        # +1 on ⟨up|·|down⟩, −1 on ⟨down|·|up⟩ (the imaginary part of e^{±iφ}), 0 on the diagonal
        self.sign = np.where(where < m, 1.0, np.where(where < 2 * m, -1.0, 0.0))
        self.is_diag = where >= 2 * m
        self.diag_row = where[self.is_diag] - 2 * m  # basis index of each diagonal slot
        self.dim = dim
        self.degree = np.bincount(rows[: 2 * m], minlength=dim).astype(np.float64)
        self.interaction = basis.interaction
        self.n_excited = basis.n_excited.astype(np.float64)

    def diag(self, delta: float) -> np.ndarray:
        """E(x) − δ n(x) (rad/µs)."""
        return self.interaction - delta * self.n_excited

    def matrix(self, omega: float, phi: float, diag: np.ndarray, scale: float) -> sp.csr_array:
        """(diag + (Ω/2)(cos φ X + i sin φ A)) · scale, where ⟨…1_i…|H|…0_i…⟩ = Ω/2 e^{iφ}."""
        c, s = math.cos(phi), math.sin(phi)
        h = 0.5 * omega * scale
        data = np.full(self.sign.size, h * c) if s == 0.0 else h * (c + 1j * s * self.sign)
        data[self.is_diag] = diag[self.diag_row] * scale
        return sp.csr_array((data, self.indices, self.indptr), shape=(self.dim, self.dim))


#: Chebyshev vectors summed into the results per matrix product.
_CHEB_BLOCK = 16


def _chebyshev(ops: _Operators, piece: _Piece, psi: np.ndarray, taus: Sequence[float]) -> list[np.ndarray]:
    """exp(−iHτ)ψ for each τ (µs) by one Chebyshev recurrence shared by all τ.

    exp(−iHτ) = e^{−icτ} Σ_k (2 − δ_k0) (−i)^k J_k(rτ) T_k((H − c)/r), with c ± r
    enclosing the spectrum (Gershgorin: diagonal ± Ω/2 × number of couplings).
    """
    diag = ops.diag(piece.delta)
    radius = 0.5 * piece.omega * ops.degree
    lo = float(np.min(diag - radius))
    hi = float(np.max(diag + radius))
    centre = 0.5 * (hi + lo)
    half = 0.5 * (hi - lo) * 1.01 + 1e-9
    taus_arr = np.asarray(taus, dtype=np.float64)
    x = half * taus_arr
    xmax = float(x.max())
    ks = np.arange(int(math.ceil(xmax + 10.0 * xmax ** (1.0 / 3.0) + 30.0)) + 1)
    bessel = jv(ks[:, None], x[None, :])  # (K, T)
    big = np.flatnonzero(np.abs(bessel).max(1) > _CHEB_EPS)
    n_terms = int(big[-1]) + 1 if big.size else 1
    ks = ks[:n_terms]
    coef = ((2.0 - (ks == 0)) * (-1j) ** (ks % 4))[:, None] * bessel[:n_terms]
    coef *= np.exp(-1j * centre * taus_arr)[None, :]

    h2 = ops.matrix(piece.omega, piece.phi, diag - centre, 2.0 / half)  # 2 (H − c)/r
    real_h = not np.iscomplexobj(h2.data)
    split = real_h and np.iscomplexobj(psi)  # real H on a complex state: recur on (re, im) columns
    work = np.ascontiguousarray(psi).view(np.float64).reshape(-1, 2) if split else psi
    dtype = np.float64 if real_h else np.complex128
    block = np.empty((min(_CHEB_BLOCK, n_terms),) + work.shape, dtype=dtype)
    # Σ_k c_k v_k per τ: real H keeps v_k real, so the real and imaginary parts of c_k are summed apart
    parts = [coef.real, coef.imag] if real_h else [coef]
    acc = [np.zeros((taus_arr.size, work.size), dtype=dtype) for _ in parts]

    def flush(rows: np.ndarray, first: int) -> None:
        flat = rows.reshape(rows.shape[0], -1)
        for total, c in zip(acc, parts, strict=True):
            total += c[first : first + rows.shape[0]].T @ flat

    v_prev: np.ndarray = work  # unused before k = 2
    v_cur: np.ndarray = work
    filled, start = 0, 0
    for k in range(n_terms):
        if k == 0:
            block[0] = work
        elif k == 1:
            block[filled] = 0.5 * (h2 @ work)
        else:
            np.subtract(h2 @ v_cur, v_prev, out=block[filled])
        v_prev, v_cur = v_cur, block[filled]
        filled += 1
        if filled == block.shape[0] or k == n_terms - 1:
            flush(block[:filled], start)
            start += filled
            if k < n_terms - 1:
                v_prev, v_cur = v_prev.copy(), v_cur.copy()
            filled = 0
    if not real_h:
        return list(acc[0])
    if split:
        # rows hold (re, im) pairs of ψ: (c' + i c'')(a + i b) = c'a − c''b + i (c'b + c''a)
        re, im = (a.reshape(taus_arr.size, -1, 2) for a in acc)
        return [r[:, 0] - i[:, 1] + 1j * (r[:, 1] + i[:, 0]) for r, i in zip(re, im, strict=True)]
    return [r + 1j * i for r, i in zip(acc[0], acc[1], strict=True)]


@dataclass(frozen=True, eq=False)
class _Run:
    """States at the evaluation times in one basis, and the detuning δ (rad/µs) at each."""

    basis: SubspaceBasis
    amplitudes: list[np.ndarray]
    deltas: list[float]
    omega_max: float

    def leaked(self) -> np.ndarray:
        """Estimated weight on dropped bitstrings at each evaluation time (see :func:`_leak`)."""
        return np.array(
            [
                _leak(self.basis, a, self.omega_max, d)
                for a, d in zip(self.amplitudes, self.deltas, strict=True)
            ]
        )


def _evolve(problem: _Problem, basis: SubspaceBasis, pieces: list[_Piece]) -> _Run:
    """Evolve |0…0⟩ through the pieces; keep the states at the recorded offsets."""
    ops = _Operators(basis)
    psi: np.ndarray = np.zeros(basis.dim)
    psi[0] = 1.0  # all atoms in the ground state (bitstring 0 is the smallest kept state)
    recorded: list[np.ndarray] = []
    deltas: list[float] = []
    for piece in pieces:
        taus = [t * 1e-3 for t in (*piece.record, piece.tau)]  # ns → µs
        if piece.omega == 0.0:
            diag = ops.diag(piece.delta)
            outs = [psi * np.exp(-1j * tau * diag) for tau in taus]
        else:
            outs = _chebyshev(ops, piece, psi, taus)
        recorded.extend(outs[:-1])
        deltas.extend(piece.delta for _ in outs[:-1])
        psi = outs[-1]
    return _Run(basis, recorded, deltas, float(problem.samples[0].max(initial=0.0)))


def _leak(basis: SubspaceBasis, psi: np.ndarray, omega: float, delta: float) -> float:
    """Weight on dropped bitstrings x: Σ_x |Σ_k g ψ_k / √((E_x − E_k − δ)² + g²)|², g = Ω/2.

    Far from resonance this is adiabatic elimination, g ψ_k / ΔE; near
    resonance each term is capped at |ψ_k|. Ω is the sequence's peak amplitude,
    so the estimate stays conservative where the drive is ramped down.
    """
    k_from, dropped, d_e = basis.boundary
    if dropped.size == 0 or omega == 0.0:
        return 0.0
    g = 0.5 * omega
    amp = g * psi[k_from] / np.hypot(d_e - delta, g)
    re = np.bincount(dropped, weights=amp.real)
    im = np.bincount(dropped, weights=amp.imag)
    return float(np.sum(re**2 + im**2))


# ----------------------------------------------------------------------------- backend

Criterion = Literal["excitations", "bitstrings"]
OnExcess = Literal["warn", "raise", "ignore"]


def _distribution(run: _Run, criterion: Criterion, basis: SubspaceBasis) -> np.ndarray:
    """Probabilities compared by the error criterion, shape ``(T, ·)``, on ``basis``'s states."""
    probs = np.abs(np.array(run.amplitudes)) ** 2
    if criterion == "excitations":
        n = basis.n_qubits
        return np.stack([np.bincount(run.basis.n_excited, weights=p, minlength=n + 1) for p in probs])
    out = np.zeros((probs.shape[0], basis.dim))
    out[:, np.searchsorted(basis.states, run.basis.states)] = probs
    return out


class Subspace:
    """Emulator of global Rydberg drives in an energy-truncated basis (exact in the limit).

    Keeps the bitstrings whose interaction energy is at most
    ``energy_cutoff × E_drive`` (E_drive = max(Ω_max, max|δ|) over the sequence,
    rad/µs) and evolves exactly in that basis; see the module docstring for the
    Hamiltonian, the time discretisation and the automatic cutoff. Noise-free,
    from all atoms in the ground state, unmodulated samples (emu-sv's defaults).

    ``energy_cutoff=None`` (default) picks the cutoff per sequence so that the
    estimated Jensen–Shannon error (natural log) of the ``criterion``
    distribution is ≤ ``tolerance``. An explicit ``energy_cutoff`` does one
    evolution and compares its leaked weight (estimated probability on dropped
    bitstrings; a conservative proxy, measured 25–300× above the JS error of
    the excitation distribution) with ``tolerance``. ``energy_cutoff=math.inf``
    or ``tolerance=0`` is exact (full 2**n space).

    Each Measurement's ``settings`` holds ``energy_cutoff`` (the one used, in
    units of E_drive; ``inf`` = full space), ``energy_unit`` (E_drive, rad/µs),
    ``basis_dim``, ``leaked_weight`` (max over evaluation times),
    ``truncation_js`` (JS(c/2, c), an upper estimate of the error; ``0.0`` for
    the full space, ``None`` when not estimated), ``cutoffs_tried`` and the
    settings below.

    Args:
        energy_cutoff: kept interaction energy in units of E_drive (> 0);
            ``None`` = automatic, default.
        tolerance: target JS divergence (automatic cutoff) or largest leaked
            weight (explicit cutoff) before ``on_excess`` acts; ≥ 0, default 1e-3.
        max_basis: largest basis (number of bitstrings); the automatic search
            stops below it, an explicit cutoff above it raises. Default 2**20
            (≈ 1 GB of working memory at 20 atoms); ``None`` = no limit.
        dt: largest step (ns) across time-varying stretches of the pulse,
            default 2 (constant stretches are one exact step; jumps between
            pulses are one 1-ns midpoint step, like emu-sv).
        criterion: distribution the tolerance applies to: ``"excitations"``
            (P(k excitations), the QEK feature; default) or ``"bitstrings"``
            (all 2**n probabilities; ~20–50× larger JS at the same cutoff).
        on_excess: ``"warn"`` (TruncationWarning, default), ``"raise"``
            (BackendError) or ``"ignore"`` when the error estimate exceeds
            ``tolerance``.
        seed: seed of the sampling (``shots=...``): sequence ``k`` of a batch
            is sampled from :func:`~qgnn.backends.base.sequence_seed` (seed, k, content).
            Default None (fresh).

    Example:
        >>> import pulser
        >>> from pulser.devices import AnalogDevice
        >>> from qgnn.pulses import ConstantDrive
        >>> reg = pulser.Register.from_coordinates([(0, 0), (6, 0), (3, 5)], prefix="q")
        >>> (m,) = Subspace(tolerance=1e-3).run([ConstantDrive().build(reg, AnalogDevice)])
        >>> m.excitation_distribution.shape, m.settings["truncation_js"] <= 1e-3
        ((1, 4), True)
    """

    name = "subspace"

    def __init__(
        self,
        energy_cutoff: float | None = None,
        tolerance: float = 1e-3,
        *,
        max_basis: int | None = 2**20,
        dt: float = 2.0,
        criterion: Criterion = "excitations",
        on_excess: OnExcess = "warn",
        seed: int | None = None,
    ) -> None:
        def number(value: Any, what: str) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise BackendError(f"Subspace: {what} must be a number, got {value!r}")
            if math.isnan(value):
                raise BackendError(f"Subspace: {what} is NaN")
            return float(value)

        if energy_cutoff is not None and not number(energy_cutoff, "energy_cutoff") > 0:
            raise BackendError(
                f"Subspace: energy_cutoff must be > 0 (units of the drive's Ω_max), got {energy_cutoff!r}; "
                "use None for automatic or math.inf for exact"
            )
        if not 0.0 <= number(tolerance, "tolerance") < math.inf:
            raise BackendError(f"Subspace: tolerance must be finite and ≥ 0, got {tolerance!r}")
        if not 0.0 < number(dt, "dt") < math.inf:
            raise BackendError(f"Subspace: dt must be a positive number of ns, got {dt!r}")
        if max_basis is not None and (
            isinstance(max_basis, bool) or not isinstance(max_basis, (int, np.integer)) or max_basis < 1
        ):
            raise BackendError(f"Subspace: max_basis must be a positive integer or None, got {max_basis!r}")
        if criterion not in ("excitations", "bitstrings"):
            raise BackendError(
                f"Subspace: criterion must be 'excitations' or 'bitstrings', got {criterion!r}"
            )
        if on_excess not in ("warn", "raise", "ignore"):
            raise BackendError(f"Subspace: on_excess must be 'warn', 'raise' or 'ignore', got {on_excess!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise BackendError(f"Subspace: seed must be an integer or None, got {seed!r}")
        self.energy_cutoff = None if energy_cutoff is None else float(energy_cutoff)
        self.tolerance = float(tolerance)
        self.max_basis = None if max_basis is None else int(max_basis)
        self.dt = float(dt)
        self.criterion: Criterion = criterion
        self.on_excess: OnExcess = on_excess
        self.seed = None if seed is None else int(seed)

    def cache_key(self) -> dict[str, Any]:
        """Backend name, versions and every setting that changes results."""
        return {
            "name": self.name,
            "version": qgnn.__version__,
            "versions": {"qgnn": qgnn.__version__, "scipy": scipy.__version__, "pulser": pulser.__version__},
            "settings": {
                "energy_cutoff": self.energy_cutoff,
                "tolerance": self.tolerance,
                "max_basis": self.max_basis,
                "dt": self.dt,
                "criterion": self.criterion,
                "seed": self.seed,
            },
        }

    def run(
        self,
        sequences: Sequence[pulser.Sequence],
        *,
        shots: int | None = None,
        evaluation_times: Sequence[float] = (1.0,),
    ) -> list[Measurement]:
        """Evolve each sequence; return its Measurement, in order.

        Args:
            sequences: built Pulser sequences with one global Rydberg channel
                (a list, even for one).
            shots: ``None`` for exact probabilities (≤ 20 atoms), else the
                number of bitstrings sampled from them per evaluation time.
            evaluation_times: fractions of each duration, 0 < t ≤ 1,
                increasing; taken at t·T exactly.

        Raises:
            BackendError: bad arguments, an unsupported sequence, or a basis
                above ``max_basis`` (the message names the sequence).
        """
        shots = check_shots(shots)
        times = check_evaluation_times(evaluation_times)
        if isinstance(sequences, pulser.Sequence):
            raise BackendError("subspace: run() takes a list of sequences; wrap the single sequence as [seq]")
        if isinstance(sequences, (str, bytes, Mapping)) or not isinstance(sequences, Sequence):
            raise BackendError(
                f"subspace: run() takes a list of pulser.Sequence, got {type(sequences).__name__}"
            )
        out = []
        for k, seq in enumerate(sequences):
            label = f"subspace: sequence {k} of {len(sequences)}"
            problem = _read_sequence(seq, label)
            label += f" ({problem.n_qubits} atoms, {problem.duration} ns)"
            if shots is None and problem.n_qubits > _MAX_DENSE_QUBITS:
                raise BackendError(
                    f"{label}: exact probabilities are returned as a dense 2**n vector, so at most "
                    f"{_MAX_DENSE_QUBITS} atoms; pass shots=... to sample instead"
                )
            try:
                run, settings = self._solve(problem, times, label)
            except MemoryError as exc:
                raise BackendError(
                    f"{label}: out of memory building the basis; set max_basis or a lower energy_cutoff"
                ) from exc
            rng = None
            if shots is not None:
                entropy = None if self.seed is None else sequence_seed(self.seed, k, seq)
                rng = np.random.default_rng(entropy)
            out.append(self._measurement(problem, run, times, settings, shots, rng))
        return out

    # -- internals

    def _solve(self, problem: _Problem, times: tuple[float, ...], label: str) -> tuple[_Run, dict[str, Any]]:
        """Pick the cutoff, evolve, and estimate the truncation error."""
        pieces = _pieces(problem, [t * problem.duration for t in times], self.dt)
        unit = problem.drive_scale
        n_full = 2**problem.n_qubits
        tried: list[float] = []

        def basis_at(cutoff: float) -> SubspaceBasis:
            return rydberg_basis(problem.interactions, cutoff * unit, max_states=self.max_basis)

        def evolve(cutoff: float, basis: SubspaceBasis) -> _Run:
            tried.append(cutoff)
            return _evolve(problem, basis, pieces)

        js: float | None = None
        excess, reason = False, ""
        first = math.inf if self.tolerance == 0.0 else _AUTO_START_CUTOFF
        cutoff = first if self.energy_cutoff is None else self.energy_cutoff
        try:
            run = evolve(cutoff, basis_at(cutoff))
        except BasisTooLargeError as exc:
            raise BackendError(
                f"{label}: cutoff {cutoff:g} keeps {exc}; lower the cutoff or raise max_basis"
            ) from exc
        if self.energy_cutoff is not None:
            leaked = float(run.leaked().max())
            if run.basis.dim < n_full and leaked > self.tolerance:
                excess, reason = True, f"leaked weight {leaked:.2e}"
        while self.energy_cutoff is None and run.basis.dim < n_full:
            nxt = cutoff * (2.0 if cutoff < _AUTO_FINE_FROM else math.sqrt(2.0))
            nxt = nxt if nxt <= _AUTO_MAX_CUTOFF else math.inf
            try:
                basis = basis_at(nxt)
            except BasisTooLargeError:
                excess = True
                reason = f"cutoff {nxt:g} exceeds max_basis={self.max_basis}; {cutoff:g} is unchecked"
                break
            finer = evolve(nxt, basis)
            js = float(
                js_divergence(
                    _distribution(run, self.criterion, finer.basis),
                    _distribution(finer, self.criterion, finer.basis),
                ).max()
            )
            run, cutoff = finer, nxt
            if js <= _AUTO_SAFETY * self.tolerance:
                break
        if run.basis.dim == n_full:
            js = 0.0
        elif (
            self.energy_cutoff is None
            and not excess
            and js is not None
            and js > _AUTO_SAFETY * self.tolerance
        ):
            excess, reason = True, f"estimated JS {js:.2e}"
        if excess and self.on_excess != "ignore":
            msg = (
                f"{label}: truncation error above tolerance {self.tolerance:g} ({reason}); "
                "raise energy_cutoff or max_basis, or use energy_cutoff=math.inf (exact)"
            )
            if self.on_excess == "raise":
                raise BackendError(msg)
            warnings.warn(msg, TruncationWarning, stacklevel=3)
        settings = {
            "energy_cutoff": math.inf if run.basis.dim == n_full else cutoff,
            "energy_unit": unit,
            "basis_dim": run.basis.dim,
            "leaked_weight": float(run.leaked().max()),
            "truncation_js": js,
            "cutoffs_tried": tried,
            "tolerance": self.tolerance,
            "criterion": self.criterion,
            "dt": self.dt,
        }
        return run, settings

    def _measurement(
        self,
        problem: _Problem,
        run: _Run,
        times: tuple[float, ...],
        settings: dict[str, Any],
        shots: int | None,
        rng: np.random.Generator | None,
    ) -> Measurement:
        basis = run.basis
        n = problem.n_qubits
        probs = np.abs(np.array(run.amplitudes)) ** 2
        probs /= probs.sum(axis=1, keepdims=True)
        meta: dict[str, Any] = {
            "backend": self.name,
            "backend_version": qgnn.__version__,
            "settings": settings,
        }
        if shots is not None:
            assert rng is not None
            counts = []
            for p in probs:
                drawn = rng.multinomial(shots, p)
                hit = np.flatnonzero(drawn)
                counts.append({format(int(basis.states[k]), f"0{n}b"): int(drawn[k]) for k in hit})
            return Measurement.from_counts(problem.qubit_ids, times, counts, **meta)
        bits = basis.bits()
        dense = np.zeros((len(times), 2**n))
        dense[:, basis.states] = probs
        return Measurement(
            qubit_ids=problem.qubit_ids,
            evaluation_times=times,
            occupations=probs @ bits,
            correlations=np.einsum("tk,ki,kj->tij", probs, bits, bits, optimize=True),
            excitation_distribution=np.stack(
                [np.bincount(basis.n_excited, weights=p, minlength=n + 1) for p in probs]
            ),
            probabilities=dense,
            **meta,
        )
