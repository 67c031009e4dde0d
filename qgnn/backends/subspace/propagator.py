"""Evolution in a kept basis: a matrix-free Hamiltonian and Chebyshev exponentials.

In the kept basis H = D + z R + z̄ L with D(x) = E(x) − Σ_g δ_g c_g(x) diagonal
(c_g(x) = excited atoms of detuning group g), z = Ω/2·e^{iφ}, L the lowering
couplings (one sparse 0/1 matrix, built once per basis) and R = Lᵀ. Nothing
else is stored: H is applied as two sparse products and a diagonal, for any
(Ω, φ, δ), so a time-dependent drive reuses the same operators at every step.

exp(−iHτ)ψ is a Chebyshev expansion (Bessel coefficients, Gershgorin spectral
bounds; accurate to ~1e-13 per exponential), one recurrence shared by every
τ at which the state is kept. The recurrence holds three vectors and sums the
series into one or two accumulators per τ (BLAS axpy), so its memory is a
fixed number of vectors whatever the number of terms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas
from scipy.special import jv

from qgnn.backends.subspace.basis import SubspaceBasis, couplings, popcount
from qgnn.backends.subspace.drive import Piece

#: Chebyshev terms are kept while any Bessel coefficient exceeds this.
_CHEB_EPS = 1e-15
#: Vectors of the basis dimension alive at once in :func:`chebyshev` besides the accumulators
#: (state in, three recurrence vectors, two sparse products, diagonal and its scaled copy).
WORK_VECTORS = 8


class Operators:
    """H(Ω, φ, δ) in a basis: the lowering couplings, the interaction energies and group counts.

    Args:
        basis: the kept bitstrings.
        groups: the detuning group of each atom, shape ``(n,)``.
    """

    def __init__(self, basis: SubspaceBasis, groups: np.ndarray) -> None:
        self.basis = basis
        self.lower = couplings(basis)
        self.raise_ = self.lower.T
        self.degree = (basis.n_excited + np.diff(self.lower.indptr)).astype(np.uint8)
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
    big = np.flatnonzero(np.abs(bessel).max(1) > _CHEB_EPS)
    n_terms = int(big[-1]) + 1 if big.size else 1
    bessel = bessel[:n_terms] * (2.0 - (ks[:n_terms] == 0))[:, None]

    # 2 (H − c)/r applied to v: dd ∘ v + w R v + w̄ L v
    diag -= centre
    diag *= 2.0 / half
    dd = diag
    w = piece.coupling * 2.0 / half
    real = w.imag == 0.0
    if real:  # real H on a complex state: recur on its (re, im) columns
        work = np.ascontiguousarray(psi, dtype=np.complex128).view(np.float64).reshape(-1, 2)
        dd = diag[:, None]
        wr = w.real
    else:
        work = np.asarray(psi, dtype=np.complex128)

    def times_2h(v: np.ndarray) -> np.ndarray:
        if real:
            out = ops.lower @ v
            out += ops.raise_ @ v
            out *= wr
        else:
            out = ops.raise_ @ v
            out *= w
            low = ops.lower @ v
            low *= w.conjugate()
            out += low
        out += dd * v
        return out

    # Σ_k c_k v_k per τ; a real H keeps v_k real, so even and odd k (real and imaginary c_k) are summed apart
    n_acc = 2 if real else 1
    acc = [[np.zeros_like(work) for _ in range(n_acc)] for _ in taus_arr]
    axpy = blas.get_blas_funcs("axpy", (work,))

    def add(k: int, v: np.ndarray) -> None:
        phase = (-1j) ** (k % 4)
        flat = v.reshape(-1)
        for t, row in enumerate(acc):
            coef = bessel[k, t] * phase
            slot = k % 2 if real else 0
            scalar = (coef.real if k % 2 == 0 else -coef.imag) if real else coef
            if scalar != 0.0:
                row[slot] = axpy(flat, row[slot].reshape(-1), a=scalar).reshape(work.shape)

    v_prev = work
    add(0, work)
    if n_terms > 1:
        v_cur = times_2h(work)
        v_cur *= 0.5
        add(1, v_cur)
        for k in range(2, n_terms):
            v_next = times_2h(v_cur)
            v_next -= v_prev
            v_prev, v_cur = v_cur, v_next
            add(k, v_cur)
    out = []
    for t, row in enumerate(acc):
        if real:
            even, odd = row  # Σ_even c_k v_k and i·Σ_odd ... with c_k = ±b_k, ∓i b_k: result = even − i·odd
            vec = (even[:, 0] + odd[:, 1]) + 1j * (even[:, 1] - odd[:, 0])
        else:
            vec = row[0]
        vec *= np.exp(-1j * centre * taus_arr[t])
        out.append(vec)
    return out


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
        recorded.extend(keep[t * 1e-3] for t in piece.record)
        detunings.extend(piece.detuning for _ in piece.record)
        psi = outs[-1]
    return Run(ops.basis, recorded, detunings)
