"""The torch engine: exact propagation of piecewise-constant drives, with autograd.

Within segment k the Hamiltonian (Pulser's convention, ``"1"`` = Rydberg)

    H_k = Ω_k/2 Σ_i σx_i − Σ_i (δ_k + w_i δ_DMM) n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j

is constant, so ψ ← exp(−i H_k τ_k) ψ exactly. The action of the exponential
is a Chebyshev series (Jacobi–Anger): with H' = (H − c)/r, spectrum inside
[−1, 1] by Gershgorin's bounds,

    exp(−i H τ) = e^{−icτ} [J_0(rτ) + 2 Σ_{m≥1} (−i)^m J_m(rτ) T_m(H')],

summed until |J_m| < 1e-15 (error ~1e-13 on the state). Each segment is one
autograd node (:class:`_Segment`) whose backward pass is the exact adjoint of
the series (the recurrence run backwards), so the gradients with respect to
Ω_k, δ_k, δ_DMM and the weights are exact to the same precision, and memory
holds two vectors per segment however long the series.

Basis: the bitstrings of :func:`qgnn.backends.subspace.rydberg_basis` —
every bitstring (``energy_cutoff=None``, exact) or those whose interaction
energy is at most ``energy_cutoff × E_drive``, E_drive being the largest
single-atom drive energy the pulse bounds allow (the same basis serves every
value the pulse can take during training). Graphs are grouped into chunks of
at most ``max_states`` basis states and evolved as one block-diagonal
Hamiltonian, sharing every torch operation.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import jv
from torch import Tensor

from qgnn.backends.subspace import BasisTooLargeError, interaction_matrix, rydberg_basis
from qgnn.errors import BackendError, InvalidInputError
from qgnn.nn.rydberg.atoms import AtomGraph, Drive, Evolved

#: Chebyshev terms are kept while a Bessel coefficient exceeds this.
_BESSEL_EPS = 1e-15
#: Bases larger than this (bitstrings per graph) are refused.
MAX_BASIS = 1 << 20
#: Registers whose operators are kept between calls.
_CACHE_SIZE = 4096


@dataclass(frozen=True, eq=False)
class _Operator:
    """The drive-independent part of one register's Hamiltonian in its kept basis."""

    coupling: sp.csr_array  # symmetric 0/1: bitstrings one excitation apart
    degree: np.ndarray  # row sums of ``coupling``
    energy: Tensor  # interaction energy per bitstring (rad/µs)
    bits: Tensor  # (D, n) occupations
    n_excited: Tensor  # (D,) int64

    @property
    def dim(self) -> int:
        return int(self.energy.shape[0])


def _product(matrix: sp.csr_array, v: np.ndarray) -> np.ndarray:
    """A v for a real sparse A and a complex vector, through its (D, 2) real view (A is never upcast)."""
    return np.ascontiguousarray(matrix @ v.view(np.float64).reshape(-1, 2)).view(np.complex128).reshape(-1)


def _coupling(states: np.ndarray, n: int) -> sp.csr_array:
    """Symmetric 0/1 matrix linking kept bitstrings (sorted ints, qubit 0 = MSB) one excitation apart."""
    rows, cols = [], []
    for j in range(n):
        bit = np.int64(1) << np.int64(n - 1 - j)
        k = np.flatnonzero((states & bit) == 0)
        target = states[k] | bit
        pos = np.minimum(np.searchsorted(states, target), states.size - 1)
        found = states[pos] == target
        rows.append(k[found])
        cols.append(pos[found])
    r, c = np.concatenate(rows), np.concatenate(cols)
    upper = sp.coo_array((np.ones(r.size), (r, c)), shape=(states.size, states.size))
    return (upper + upper.T).tocsr()


def chebyshev_coefficients(x: float) -> np.ndarray:
    """a_m = (2 − δ_m0)(−i)^m J_m(x) until |J_m(x)| < 1e-15 past m > x: exp(−ixy) = Σ a_m T_m(y)."""
    m = np.arange(int(x + 12.0 * x ** (1.0 / 3.0) + 40.0))
    j = jv(m, x)
    small = np.nonzero((np.abs(j) >= _BESSEL_EPS) | (m <= x))[0]
    j = j[: small[-1] + 2]
    coeff = 2.0 * j * (-1j) ** np.arange(j.size)
    coeff[0] = j[0]
    return coeff


class _Segment(torch.autograd.Function):
    """ψ ↦ exp(−i H τ) ψ with H = h·A + diag(d) (τ in µs, h and d in rad/µs), by a Chebyshev series.

    Forward: t_0 = ψ, t_1 = H't_0, t_{m+1} = 2H't_m − t_{m−1}, y = e^{−icτ} Σ a_m t_m,
    H' = (H − c)/r. Backward (torch's convention: the gradient of a complex z is
    ∂L/∂Re z + i ∂L/∂Im z): the adjoints μ_m = conj(a_m)·ḡ + f_m H'μ_{m+1} − μ_{m+2}
    (f_0 = 1, else 2) run from m = M down to 0 (μ_0 is the gradient of ψ) while the
    t_m are regenerated backwards from the last two (t_{m−1} = 2H't_m − t_{m+1}: the
    recurrence is neutrally stable on [−1, 1]), and each step adds
    f_m Re(conj(μ_{m+1}) ⊙ t_m)/r to the gradient of d and f_m Re(μ_{m+1}ᴴ A t_m)/r to
    that of h. Memory: two vectors per segment; no per-term autograd nodes. The
    centre c and radius r (Gershgorin bounds) are constants: the exponential does
    not depend on them.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        psi: Tensor,
        half_omega: Tensor,
        diag: Tensor,
        matrix: sp.csr_array,
        degree: np.ndarray,
        tau: float,
    ) -> Tensor:
        h = float(half_omega)
        d = diag.detach().numpy()
        spread = abs(h) * degree
        lo, hi = float((d - spread).min()), float((d + spread).max())
        centre = 0.5 * (hi + lo)
        radius = 0.5 * (hi - lo) * (1.0 + 1e-9) + 1e-12
        coeff = chebyshev_coefficients(radius * tau)
        shifted = (d - centre) / radius
        scale = h / radius

        def h_prime(v: np.ndarray) -> np.ndarray:
            out = _product(matrix, v)
            out *= scale
            out += shifted * v
            return out

        t_prev = psi.detach().numpy().astype(np.complex128, copy=True)
        t_curr = h_prime(t_prev)
        y = coeff[0] * t_prev + coeff[1] * t_curr
        for a in coeff[2:]:
            t_next = h_prime(t_curr)
            t_next *= 2.0
            t_next -= t_prev
            t_prev, t_curr = t_curr, t_next
            y += a * t_curr
        phase = complex(np.exp(-1j * centre * tau))
        y *= phase
        ctx.matrix, ctx.coeff, ctx.phase = matrix, coeff, phase
        ctx.scale, ctx.shifted, ctx.radius = scale, shifted, radius
        ctx.last = (t_prev, t_curr)  # t_{M−1}, t_M
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        matrix, coeff, scale, shifted, radius = ctx.matrix, ctx.coeff, ctx.scale, ctx.shifted, ctx.radius
        g = np.conj(ctx.phase) * grad.detach().numpy().astype(np.complex128)
        top = coeff.size - 1  # M
        t_low, t_high = ctx.last  # t_{m−1}, t_m for m = M
        mu_next = np.zeros_like(g)  # μ_{m+1}
        mu = np.conj(coeff[top]) * g  # μ_M
        grad_d = np.zeros(shifted.shape)
        grad_h = 0.0
        for m in range(top, 0, -1):
            # the step that made t_m from t_{m−1}, with factor f_{m−1}
            f = 1.0 if m == 1 else 2.0
            a_low = _product(matrix, t_low)
            grad_d += f * (np.conj(mu) * t_low).real / radius
            grad_h += f * float(np.vdot(mu, a_low).real) / radius
            if m >= 2:  # regenerate t_{m−2} = 2H't_{m−1} − t_m
                t_older = (scale * a_low + shifted * t_low) * 2.0 - t_high
                t_low, t_high = t_older, t_low
            h_mu = scale * _product(matrix, mu) + shifted * mu
            mu, mu_next = np.conj(coeff[m - 1]) * g + f * h_mu - mu_next, mu
        del ctx.last
        return (
            torch.from_numpy(mu) if ctx.needs_input_grad[0] else None,
            torch.tensor(grad_h, dtype=torch.float64) if ctx.needs_input_grad[1] else None,
            torch.from_numpy(grad_d) if ctx.needs_input_grad[2] else None,
            None,
            None,
            None,
        )


class ExactEngine:
    """Exact (Chebyshev) evolution in torch; the default engine of :class:`RydbergEvolution`.

    Args:
        c6: interaction coefficient (rad/µs·µm⁶), from ``device.interaction_coeff``.
        max_energy: basis cutoff on the interaction energy (rad/µs), ``inf`` for every bitstring.
        max_states: basis states per chunk of graphs evolved together (default 2**15).
    """

    name = "torch"

    def __init__(self, c6: float, max_energy: float = math.inf, *, max_states: int = 1 << 15) -> None:
        if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1:
            raise InvalidInputError(f"max_states must be a positive integer, got {max_states!r}")
        if math.isnan(max_energy) or max_energy <= 0:
            raise InvalidInputError(f"the basis cutoff must be > 0 rad/µs, got {max_energy}")
        self.c6 = float(c6)
        self.max_energy = float(max_energy)
        self.max_states = max_states
        self._cache: OrderedDict[bytes, _Operator] = OrderedDict()

    def basis_size(self, atoms: AtomGraph) -> int:
        """Number of bitstrings kept for ``atoms``."""
        return self._operator(atoms).dim

    def _operator(self, atoms: AtomGraph) -> _Operator:
        key = atoms.positions.tobytes()
        op = self._cache.get(key)
        if op is not None:
            self._cache.move_to_end(key)
            return op
        try:
            basis = rydberg_basis(interaction_matrix(atoms.positions, self.c6), self.max_energy, MAX_BASIS)
        except BasisTooLargeError as exc:
            raise BackendError(
                f"{atoms.where}: {atoms.n_atoms} atoms keep more than {MAX_BASIS} bitstrings: "
                "set a finite energy_cutoff or use smaller graphs"
            ) from exc
        coupling = _coupling(basis.states, atoms.n_atoms)
        shifts = np.arange(atoms.n_atoms - 1, -1, -1, dtype=np.int64)
        bits = ((basis.states[:, None] >> shifts[None, :]) & 1).astype(np.float64)
        op = _Operator(
            coupling,
            np.asarray(coupling.sum(axis=1)).ravel(),
            torch.from_numpy(np.asarray(basis.interaction, dtype=np.float64)),
            torch.from_numpy(bits),
            torch.from_numpy(np.asarray(basis.n_excited, dtype=np.int64)),
        )
        self._cache[key] = op
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return op

    def evolve(self, atoms: list[AtomGraph], weights: list[Tensor], drive: Drive) -> list[Evolved]:
        """Final states of ``atoms`` (all ground at t = 0) under ``drive``."""
        if not atoms:
            return []
        ops = [self._operator(a) for a in atoms]
        order = sorted(range(len(atoms)), key=lambda g: ops[g].dim)
        out: list[Evolved | None] = [None] * len(atoms)
        chunk: list[int] = []
        size = 0
        for g in [*order, None]:
            if g is not None and (not chunk or size + ops[g].dim <= self.max_states):
                chunk.append(g)
                size += ops[g].dim
                continue
            probs = self._evolve_chunk([ops[i] for i in chunk], [weights[i] for i in chunk], drive)
            for i, p in zip(chunk, probs, strict=True):
                out[i] = Evolved(p, ops[i].bits, ops[i].n_excited)
            if g is not None:
                chunk, size = [g], ops[g].dim
        return [e for e in out if e is not None]

    def _evolve_chunk(self, ops: list[_Operator], weights: list[Tensor], drive: Drive) -> list[Tensor]:
        dims = [op.dim for op in ops]
        matrix = sp.block_diag([op.coupling for op in ops], format="csr") if len(ops) > 1 else ops[0].coupling
        degree = np.concatenate([op.degree for op in ops])
        energy = torch.cat([op.energy for op in ops])
        n_excited = torch.cat([op.n_excited for op in ops]).to(torch.float64)
        dmm_load = torch.cat([op.bits @ w for op, w in zip(ops, weights, strict=True)])  # Σ_i w_i n_i
        static = energy - drive.dmm_detuning * dmm_load
        starts = np.concatenate([[0], np.cumsum(dims)[:-1]])
        psi = torch.zeros(sum(dims), dtype=torch.complex128)
        psi[torch.from_numpy(starts)] = 1.0  # bitstring 0 (all ground) comes first in each basis
        for k, tau in enumerate(drive.durations_us):
            diag = static - drive.detuning[k] * n_excited
            half_omega = 0.5 * drive.amplitude[k]
            psi = _Segment.apply(psi, half_omega, diag, matrix, degree, tau)
        probs = psi.real**2 + psi.imag**2
        return list(torch.split(probs, dims))
