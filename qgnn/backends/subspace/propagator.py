"""Evolution in a kept basis: a matrix-free Hamiltonian and Chebyshev exponentials.

In the kept basis H = D + z R + z̄ L with D(x) = E(x) − Σ_g δ_g c_g(x) diagonal
(c_g(x) = excited atoms of detuning group g), z = Ω/2·e^{iφ}, R the raising
couplings (parent → x) and L = Rᵀ the lowering ones. Nothing else is stored:
each state's parents are one int32 list, built once per basis
(:func:`~qgnn.backends.subspace.kernels.parents`; R and L are both applied
from it; in the compact layout of
:func:`~qgnn.backends.subspace.kernels.compact_parents` when the run's
memory budget asks for it), and D is computed on the fly from E and the counts, so H is
applied for any (Ω, φ, δ) and a time-dependent drive reuses the same
structure at every step.

exp(−iHτ)ψ is a Chebyshev expansion (Bessel coefficients, Gershgorin spectral
bounds; the series stops once every Bessel coefficient is below 1e-12: an
error of ~1e-12 per exponential, 1e-9 over a thousand, far below the
truncation tolerances — stopping at 1e-15 took 15–25 % longer on the 20-ns
exponentials of a ramp), one recurrence shared by every
τ at which the state is kept. Each term is one compiled pass over the basis
(:func:`~qgnn.backends.subspace.kernels.chebyshev_step`) that applies H,
advances the recurrence in place and adds the term to each τ's sum (in real
arithmetic when H and the state are real, as for a constant pulse from
|0…0⟩), so the memory is two recurrence vectors plus one accumulator per τ,
whatever the number of terms; the state it starts from is handed over and
freed once copied into the recurrence. :func:`vector_bytes` bounds these
vectors per kept bitstring for the memory estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from scipy.special import jv

from qgnn.backends.base import NUMBA_LAUNCH_LOCK
from qgnn.backends.subspace.basis import SubspaceBasis, popcount
from qgnn.backends.subspace.drive import Piece
from qgnn.backends.subspace.kernels import (
    CompactPlan,
    chebyshev_step,
    chunk_bounds,
    compact_parents,
    parents,
    spectral_bounds,
)

#: Chebyshev terms are kept while any Bessel coefficient exceeds this.
_CHEB_EPS = 1e-12
_COMPLEX = 16
_FLOAT = 8
#: The leaked-weight pass's mask of each state's kept children (int64).
_MASK = 8


class Operators:
    """H(Ω, φ, δ) in a basis: the drive's couplings (each state's parents), E(x) and the group counts.

    Args:
        basis: the kept bitstrings.
        groups: the detuning group of each atom, shape ``(n,)``.
        compact: build the parents' lists in the compact layout of this plan
            (:func:`~qgnn.backends.subspace.kernels.compact_plan`; for runs whose
            int32 lists do not fit the memory budget); default int32 indices.
    """

    def __init__(self, basis: SubspaceBasis, groups: np.ndarray, compact: CompactPlan | None = None) -> None:
        self.basis = basis
        states, n_excited, n = basis.states, basis.n_excited, basis.n_qubits
        self.parents = (
            parents(states, n_excited, n)
            if compact is None
            else compact_parents(states, n_excited, n, compact)
        )
        self.degree = self.parents.degree
        n_groups = int(groups.max(initial=0)) + 1
        if n_groups == 1:
            self.counts = basis.n_excited[None, :]  # a view: excitations per state, shape (1, dim)
        else:
            masks = [int(sum(1 << (n - 1 - i) for i in np.flatnonzero(groups == g))) for g in range(n_groups)]
            self.counts = np.stack([popcount(basis.states & np.int64(mask)) for mask in masks])

    @property
    def dim(self) -> int:
        """Number of kept bitstrings."""
        return self.basis.dim

    def diagonal(self, detuning: Sequence[float]) -> np.ndarray:
        """E(x) − Σ_g δ_g c_g(x) (rad/µs)."""
        out = self.basis.interaction.copy()
        for delta, count in zip(detuning, self.counts, strict=True):
            if delta != 0.0:
                out -= delta * count
        return out


def _is_real(piece: Piece, first: bool) -> bool:
    """True when the piece's recurrence runs on real vectors: a real coupling on the real |0…0⟩."""
    return first and complex(piece.coupling).imag == 0.0


def chebyshev(
    ops: Operators, piece: Piece, state: list[np.ndarray], taus: Sequence[float], *, real: bool
) -> np.ndarray:
    """exp(−iHτ)ψ for each τ (µs) by one Chebyshev recurrence shared by all τ, one row per τ.

    exp(−iHτ) = e^{−icτ} Σ_k (2 − δ_k0) (−i)^k J_k(rτ) T_k((H − c)/r), with c ± r
    enclosing the spectrum (Gershgorin: diagonal ± |Ω/2| × number of couplings).
    The recurrence runs on one block-aligned chunk of states per numba thread.

    Args:
        ops: the basis's operators.
        piece: the constant H.
        state: ``[ψ]``, handed over: emptied, so ψ is freed once copied into the recurrence.
        taus: durations (µs).
        real: ψ and the coupling are real (:func:`_is_real`): the recurrence runs on real vectors.
    """
    psi = state.pop()
    v_prev: np.ndarray = psi.real.copy() if real else np.array(psi, dtype=np.complex128)
    del psi
    detuning = np.asarray(piece.detuning, dtype=np.float64)
    assert detuning.size == ops.counts.shape[0], "one detuning per group"  # the kernels do not check
    energy = ops.basis.interaction
    with NUMBA_LAUNCH_LOCK:
        lo, hi = spectral_bounds(ops.degree, energy, ops.counts, detuning, abs(piece.coupling))
    centre = 0.5 * (hi + lo)
    half = 0.5 * (hi - lo) * 1.01 + 1e-9
    taus_arr = np.asarray(taus, dtype=np.float64)
    x = half * taus_arr
    xmax = float(x.max())
    ks = np.arange(int(math.ceil(xmax + 10.0 * xmax ** (1.0 / 3.0) + 30.0)) + 1)
    bessel = jv(ks[:, None], x[None, :])  # (K, T)
    n_terms = int(np.flatnonzero(np.abs(bessel).max(1) > _CHEB_EPS).max(initial=0)) + 1
    # c_k per τ: (2 − δ_k0) (−i)^k J_k(rτ), zero once negligible for that τ
    coefs = bessel[:n_terms] * (2.0 - (ks[:n_terms] == 0))[:, None] * ((-1j) ** (ks[:n_terms] % 4))[:, None]
    coefs[np.abs(coefs) <= _CHEB_EPS] = 0.0

    # 2(H − c)/r = (2/r)(D − c) + w R + w̄ L
    w: complex | float = complex(piece.coupling * 2.0 / half)
    if real:
        w = w.real
    acc = coefs[0][:, None] * v_prev[None, :]
    if n_terms > 1:
        v_cur = np.empty_like(v_prev)
        bounds = chunk_bounds(ops.dim, numba.get_num_threads())
        structure = (*ops.parents.reader, bounds, ops.basis.n_excited)
        step = (*structure, energy, ops.counts, detuning, centre, 2.0 / half, w)
        with NUMBA_LAUNCH_LOCK:
            chebyshev_step(*step, v_prev, v_prev, v_cur, 0.5, 0.0, coefs[1], acc)  # T_1 = x
            for k in range(2, n_terms):  # T_k = 2x T_{k−1} − T_{k−2}, written over T_{k−2}
                chebyshev_step(*step, v_cur, v_prev, v_prev, 1.0, 1.0, coefs[k], acc)
                v_prev, v_cur = v_cur, v_prev
    acc *= np.exp(-1j * centre * taus_arr)[:, None]
    return acc


def _phases(ops: Operators, piece: Piece, state: list[np.ndarray], taus: Sequence[float]) -> np.ndarray:
    """exp(−iDτ)ψ for each τ (µs) of a piece without drive (H = D, diagonal); ``state`` as in chebyshev."""
    psi = state.pop()
    diag = ops.diagonal(piece.detuning)
    sums = np.empty((len(taus), ops.dim), np.complex128)
    for row, tau in zip(sums, taus, strict=True):
        np.exp(diag * (-1j * tau), out=row)
        row *= psi
    return sums


def _taus(piece: Piece) -> list[float]:
    """Offsets (ns → µs) the piece's recurrence is summed at: the recorded ones, then its end."""
    return sorted({t * 1e-3 for t in (*piece.record, piece.tau)})


def vector_bytes(pieces: Sequence[Piece]) -> int:
    """Peak bytes per kept bitstring of :func:`evolve`'s vectors, the readout of its states included.

    Per piece: the states recorded so far (16 B each), the handed-over state
    while it is copied, the two recurrence vectors (8 B real, 16 B complex)
    and one sum per τ (16 B) (a piece without drive: the diagonal, 8 B, and
    one row of phases); at its end the sums and the copies of the recorded
    ones. After the last piece: the recorded states, their probabilities
    (8 B each) and the leaked-weight pass's mask of kept children (8 B).
    """
    peak, recorded, handed = 2 * _COMPLEX, 0, _COMPLEX  # |0…0⟩ and its first copy
    for i, piece in enumerate(pieces):
        n_sums = len(_taus(piece))
        kept = recorded * _COMPLEX
        if piece.coupling == 0.0:  # + the diagonal and one row's phases being formed
            peak = max(peak, kept + handed + _FLOAT + _COMPLEX + n_sums * _COMPLEX)
        else:
            vector = _FLOAT if _is_real(piece, i == 0) else _COMPLEX
            peak = max(peak, kept + handed + vector, kept + 2 * vector + n_sums * _COMPLEX)
        peak = max(peak, kept + (n_sums + len(piece.record)) * _COMPLEX)
        recorded += len(piece.record)
        handed = n_sums * _COMPLEX  # the next piece starts from a row of these sums
    return max(peak, recorded * (_COMPLEX + _FLOAT) + _MASK)


@dataclass(frozen=True, eq=False)
class Run:
    """States at the evaluation times in one basis, and the per-group detuning (rad/µs) at each."""

    basis: SubspaceBasis
    amplitudes: list[np.ndarray]
    detunings: list[tuple[float, ...]]

    def weights(self) -> np.ndarray:
        """|ψ|² at each evaluation time (not normalised), shape ``(T, dim)``, one row at a time."""
        out = np.empty((len(self.amplitudes), self.basis.dim))
        for row, amplitude in zip(out, self.amplitudes, strict=True):
            np.abs(amplitude, out=row)
            row **= 2
        return out


def evolve(ops: Operators, pieces: Sequence[Piece]) -> Run:
    """Evolve |0…0⟩ through the pieces; keep the states at the recorded offsets."""
    psi: np.ndarray = np.zeros(ops.dim, dtype=np.complex128)
    psi[0] = 1.0  # all atoms in the ground state (bitstring 0 is the smallest kept state)
    state = [psi]
    del psi
    recorded: list[np.ndarray] = []
    detunings: list[tuple[float, ...]] = []
    for i, piece in enumerate(pieces):
        taus = _taus(piece)
        if piece.coupling == 0.0:
            sums = _phases(ops, piece, state, taus)
        else:
            sums = chebyshev(ops, piece, state, taus, real=_is_real(piece, i == 0))
        row = {tau: k for k, tau in enumerate(taus)}
        # copies, so the piece's array of sums is freed once the next piece has copied its last row
        recorded.extend(sums[row[t * 1e-3]].copy() for t in piece.record)
        detunings.extend(piece.detuning for _ in piece.record)
        state.append(sums[-1])
        del sums
    return Run(ops.basis, recorded, detunings)
