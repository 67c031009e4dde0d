"""Truncation error: the difference between two cutoffs, and the weight leaking out of a basis.

The automatic cutoff compares the results at two successive cutoffs c < c'
(the basis at c is a subset of the one at c') on every feature the pipeline
returns: the Jensen–Shannon divergence (natural log) of the excitation-count
(or bitstring) distribution, the largest |Δ⟨n_i⟩| and the largest |ΔC_ij| of
the connected correlations C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩, max over the
evaluation times. The error falls faster than geometrically in c, so these
differences over-estimate the error of the result at c'.

The leaked weight estimates the probability on dropped bitstrings x from the
kept ones by adiabatic elimination: a dropped neighbour x = k + atom j gets
g ψ_k / √((ΔE − δ_j)² + g²), g = Ω_max/2, ΔE the interaction the excitation adds
(near resonance each term is capped at |ψ_k|). The amplitudes reaching one x
from its ≤ n_exc(x) kept parents are bounded with Cauchy–Schwarz, so
Σ_x |Σ_k a_kx|² ≤ Σ_{k,j} n_exc(x) |a_kx|²: summed over the basis in one
compiled pass (:func:`~qgnn.backends.subspace.kernels.leaked_weight_sum`), no
list of dropped bitstrings is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qgnn.backends.base import NUMBA_LAUNCH_LOCK, js_divergence, moments
from qgnn.backends.subspace.basis import SubspaceBasis
from qgnn.backends.subspace.kernels import kept_children, leaked_weight_sum
from qgnn.backends.subspace.propagator import Operators, Run


@dataclass(frozen=True, eq=False)
class Moments:
    """The features of one run at each evaluation time: what the automatic cutoff compares."""

    occupations: np.ndarray  # (T, n)
    correlations: np.ndarray  # (T, n, n), ⟨n_i n_j⟩
    excitations: np.ndarray  # (T, n + 1)

    def connected(self) -> np.ndarray:
        """C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩, shape ``(T, n, n)``."""
        return self.correlations - np.einsum("ti,tj->tij", self.occupations, self.occupations)


@dataclass(frozen=True, eq=False)
class Observables(Moments):
    """The features of one run and the probabilities on its basis they come from."""

    basis: SubspaceBasis
    probabilities: np.ndarray  # (T, dim), normalised

    @classmethod
    def of(cls, run: Run, weights: np.ndarray | None = None) -> Observables:
        """Moments of a run's states.

        Args:
            run: the states.
            weights: their |ψ|² (:meth:`Run.weights`) if already computed: normalised in place and kept.
        """
        probs = run.weights() if weights is None else weights
        probs /= probs.sum(axis=1, keepdims=True)
        occ, corr, exc = moments(run.basis.states, probs, run.basis.n_qubits)
        return cls(occ, corr, exc, run.basis, probs)

    def moments_only(self) -> Moments:
        """The moments alone, so the basis and the probabilities can be freed."""
        return Moments(self.occupations, self.correlations, self.excitations)


@dataclass(frozen=True)
class Difference:
    """How far two runs' features are apart (max over the evaluation times)."""

    js: float
    occupation: float
    correlation: float


def difference(coarse: Moments, fine: Observables, criterion: str) -> Difference:
    """Feature differences between a run and one in a larger basis that contains it.

    Args:
        coarse: the run at the smaller cutoff (its :class:`Observables` for ``"bitstrings"``).
        fine: the run at the larger cutoff.
        criterion: ``"excitations"`` (JS of P(k)) or ``"bitstrings"`` (JS of the
            bitstring distribution, on the fine basis).
    """
    if criterion == "excitations":
        p, q = coarse.excitations, fine.excitations
    else:
        assert isinstance(coarse, Observables), "a bitstring difference needs the coarse probabilities"
        p = np.zeros_like(fine.probabilities)
        p[:, np.searchsorted(fine.basis.states, coarse.basis.states)] = coarse.probabilities
        q = fine.probabilities
    return Difference(
        js=float(js_divergence(p, q).max()),
        occupation=float(np.abs(coarse.occupations - fine.occupations).max()),
        correlation=float(np.abs(coarse.connected() - fine.connected()).max()),
    )


def leaked_weight(
    run: Run, ops: Operators, weights: np.ndarray, groups: np.ndarray, omega_max: float
) -> np.ndarray:
    """Estimated weight on dropped bitstrings at each evaluation time (see the module docstring).

    Args:
        run: the per-group detunings at the evaluation times.
        ops: the run's operators (the parents' lists tell each state's kept children).
        weights: |ψ|² of the run's states (:meth:`Run.weights`), shape ``(T, dim)``.
        groups: the detuning group of each atom.
        omega_max: the sequence's peak Ω (rad/µs), so the estimate stays
            conservative where the drive is ramped down.
    """
    basis = run.basis
    n_times = len(run.amplitudes)
    if basis.is_full or omega_max == 0.0 or n_times == 0:
        return np.zeros(n_times)
    atom_detuning = np.ascontiguousarray(np.array(run.detunings)[:, groups], dtype=np.float64)  # (T, n)
    with NUMBA_LAUNCH_LOCK:
        kept = kept_children(basis.states, ops.parents.lists, ops.parents.n_ranks, basis.n_excited)
        return leaked_weight_sum(
            basis.states,
            basis.n_excited,
            kept,
            basis.interactions,
            weights,
            atom_detuning,
            (0.5 * omega_max) ** 2,
        )
