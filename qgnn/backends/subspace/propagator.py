"""Evolution in a kept basis: a matrix-free Hamiltonian and Chebyshev exponentials.

In the kept basis H = D + z R + z̄ L with D(x) = E(x) − Σ_g δ_g c_g(x) diagonal
(c_g(x) = excited atoms of detuning group g), z = Ω/2·e^{iφ}, R the raising
couplings (parent → x) and L = Rᵀ the lowering ones. Nothing else is stored:
each state's parents and children are one int32 adjacency list, built once
per basis (:func:`~qgnn.backends.subspace.kernels.adjacency`), so H is
applied for any (Ω, φ, δ) and a time-dependent drive reuses the same
structure at every step.

exp(−iHτ)ψ is a Chebyshev expansion (Bessel coefficients, Gershgorin spectral
bounds; accurate to ~1e-13 per exponential), one recurrence shared by every
τ at which the state is kept. Each term is one compiled pass over the basis
(:func:`~qgnn.backends.subspace.kernels.chebyshev_step`) that applies H,
advances the recurrence in place and adds the term to each τ's sum (in real
arithmetic when H and the state are real, as for a constant pulse from
|0…0⟩), so the memory is two recurrence vectors plus one accumulator per τ,
whatever the number of terms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import jv

from qgnn.backends.subspace.basis import SubspaceBasis, popcount
from qgnn.backends.subspace.drive import Piece
from qgnn.backends.subspace.kernels import LAUNCH_LOCK, adjacency, chebyshev_step

#: Chebyshev terms are kept while any Bessel coefficient exceeds this.
_CHEB_EPS = 1e-15
#: Complex vectors of the basis dimension alive at once in :func:`chebyshev` besides the
#: accumulators: the state in, the two recurrence vectors, and the diagonal (real, counted as one).
WORK_VECTORS = 4


class Operators:
    """H(Ω, φ, δ) in a basis: the drive's adjacency, the interaction energies and group counts.

    Args:
        basis: the kept bitstrings.
        groups: the detuning group of each atom, shape ``(n,)``.
    """

    def __init__(self, basis: SubspaceBasis, groups: np.ndarray) -> None:
        self.basis = basis
        self.indptr, self.indices = adjacency(basis.states, basis.n_excited, basis.n_qubits)
        self.degree = np.diff(self.indptr).astype(np.uint8)
        n = basis.n_qubits
        n_groups = int(groups.max(initial=0)) + 1
        if n_groups == 1:
            self.counts = [basis.n_excited]
        else:
            masks = [int(sum(1 << (n - 1 - i) for i in np.flatnonzero(groups == g))) for g in range(n_groups)]
            self.counts = [popcount(basis.states & np.int64(mask)) for mask in masks]

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


def chebyshev(ops: Operators, piece: Piece, psi: np.ndarray, taus: Sequence[float]) -> list[np.ndarray]:
    """exp(−iHτ)ψ for each τ (µs) by one Chebyshev recurrence shared by all τ.

    exp(−iHτ) = e^{−icτ} Σ_k (2 − δ_k0) (−i)^k J_k(rτ) T_k((H − c)/r), with c ± r
    enclosing the spectrum (Gershgorin: diagonal ± |Ω/2| × number of couplings).
    """
    diag = ops.diagonal(piece.detuning)
    g = abs(piece.coupling)
    lo = float(np.min(diag - g * ops.degree))
    hi = float(np.max(diag + g * ops.degree))
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

    # 2(H − c)/r = dd + w R + w̄ L
    diag -= centre
    diag *= 2.0 / half
    w: complex | float = complex(piece.coupling * 2.0 / half)
    v_prev: np.ndarray = np.array(psi, dtype=np.complex128)
    if w.imag == 0.0 and not np.any(v_prev.imag):  # real H on a real state: real recurrence
        w, v_prev = w.real, v_prev.real.copy()
    acc = coefs[0][:, None] * v_prev[None, :]
    if n_terms > 1:
        v_cur = np.empty_like(v_prev)
        step = (ops.indptr, ops.indices, ops.basis.n_excited, diag, w)
        with LAUNCH_LOCK:
            chebyshev_step(*step, v_prev, v_prev, v_cur, 0.5, 0.0, coefs[1], acc)  # T_1 = x
            for k in range(2, n_terms):  # T_k = 2x T_{k−1} − T_{k−2}, written over T_{k−2}
                chebyshev_step(*step, v_cur, v_prev, v_prev, 1.0, 1.0, coefs[k], acc)
                v_prev, v_cur = v_cur, v_prev
    acc *= np.exp(-1j * centre * taus_arr)[:, None]
    return list(acc)


@dataclass(frozen=True, eq=False)
class Run:
    """States at the evaluation times in one basis, and the per-group detuning (rad/µs) at each."""

    basis: SubspaceBasis
    amplitudes: list[np.ndarray]
    detunings: list[tuple[float, ...]]

    def probabilities(self) -> np.ndarray:
        """|ψ|² at each evaluation time, normalised, shape ``(T, dim)``."""
        probs = np.abs(np.array(self.amplitudes)) ** 2
        probs /= probs.sum(axis=1, keepdims=True)
        return probs


def evolve(ops: Operators, pieces: Sequence[Piece]) -> Run:
    """Evolve |0…0⟩ through the pieces; keep the states at the recorded offsets."""
    psi: np.ndarray = np.zeros(ops.dim, dtype=np.complex128)
    psi[0] = 1.0  # all atoms in the ground state (bitstring 0 is the smallest kept state)
    recorded: list[np.ndarray] = []
    detunings: list[tuple[float, ...]] = []
    for piece in pieces:
        # offsets (ns → µs) to keep, then the end of the piece (one vector when they coincide)
        taus = sorted({t * 1e-3 for t in (*piece.record, piece.tau)})
        if piece.coupling == 0.0:
            diag = ops.diagonal(piece.detuning)
            outs = [psi * np.exp(-1j * tau * diag) for tau in taus]
        else:
            outs = chebyshev(ops, piece, psi, taus)
        keep = {tau: out for tau, out in zip(taus, outs, strict=True)}
        # copies, so the piece's array of sums (one row per τ) is freed with it
        recorded.extend(keep[t * 1e-3].copy() for t in piece.record)
        detunings.extend(piece.detuning for _ in piece.record)
        psi = outs[-1]
    return Run(ops.basis, recorded, detunings)
