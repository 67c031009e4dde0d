"""Memory of a subspace run, estimated before anything large is allocated, and the budget it must fit.

A run at one cutoff holds the basis (states, interaction energies, excitation
counts per detuning group), the drive's adjacency (two int32 indices per
coupling; their number Σ_x n_exc(x) is known as soon as the basis is), a fixed
number of work vectors of the Chebyshev recurrence, its accumulators, the
states at the evaluation times and their probabilities; the automatic cutoff
also keeps the previous cutoff's results. :func:`run_bytes` adds these up
(an upper bound: it is checked against traced allocations in the tests), so
the backend refuses a graph with :class:`MemoryBudgetError` before allocating
it, and a scheduler can ask the same question with
:meth:`qgnn.backends.Subspace.memory_estimate`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from qgnn.backends.subspace.propagator import WORK_VECTORS
from qgnn.errors import BackendError

#: Fraction of the machine's physical memory the default budget shares out (the rest: the
#: interpreters themselves, ~0.4 GB each with torch and pulser, the OS and other work).
MEMORY_SHARE = 0.3
#: Chunk work arrays and interpreter slack on top of the per-state costs (bytes).
_FIXED_BYTES = 96 * 2**20
_COMPLEX = 16
_FLOAT = 8


class MemoryBudgetError(BackendError):
    """A subspace run would need more memory than its budget (``max_memory``).

    Attributes:
        needed_bytes: the estimated peak memory of the run (a lower bound when
            counting stopped at the budget).
        budget_bytes: the budget it exceeded.
    """

    def __init__(self, message: str, needed_bytes: int, budget_bytes: int) -> None:
        super().__init__(message)
        self.needed_bytes = int(needed_bytes)
        self.budget_bytes = int(budget_bytes)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.needed_bytes, self.budget_bytes))


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of a subspace run at one cutoff.

    Args:
        bytes: estimated peak (bytes); a lower bound when ``complete`` is False.
        basis_dim: kept bitstrings (counted up to the budget).
        n_couplings: drive couplings among them.
        energy_cutoff: the cutoff it was estimated at (units of E_drive; ``inf`` = full space).
        budget: the backend's ``max_memory`` (bytes).
        complete: False when counting stopped because the budget was already exceeded.
    """

    bytes: int
    basis_dim: int
    n_couplings: int
    energy_cutoff: float
    budget: int
    complete: bool = True

    @property
    def fits(self) -> bool:
        """True when the run fits its budget."""
        return self.complete and self.bytes <= self.budget


def machine_memory() -> int:
    """Physical memory of this machine (bytes)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def default_max_memory(workers: int | None = None) -> int:
    """A safe budget per run: 30 % of the physical memory shared by the concurrent workers (bytes).

    Args:
        workers: processes running at once (default: one per CPU core, the
            FeaturePipeline's default).
    """
    n = workers if workers is not None else (os.cpu_count() or 1)
    return int(machine_memory() * MEMORY_SHARE) // max(1, n)


def run_bytes(
    dim: int,
    n_couplings: int,
    n_groups: int,
    n_times: int,
    *,
    previous_dim: int = 0,
    keep_probabilities: bool = False,
) -> int:
    """Upper estimate of the peak memory of one subspace run (bytes).

    Args:
        dim: kept bitstrings.
        n_couplings: drive couplings among them.
        n_groups: detuning groups (1 without a DMM).
        n_times: evaluation times.
        previous_dim: basis of the previous cutoff whose results are kept
            alongside (automatic cutoff), 0 if none.
        keep_probabilities: the Measurement stores the bitstring probabilities.
    """
    basis = 8 + 8 + 1 + 1 + 8 + (n_groups if n_groups > 1 else 0)  # states, E, n_exc, degree, indptr, groups
    vectors = WORK_VECTORS + (n_times + 1) + n_times  # recurrence + accumulators + recorded states
    results = n_times * (2 * _FLOAT if keep_probabilities else _FLOAT)
    per_state = basis + vectors * _COMPLEX + results
    previous = previous_dim * (8 + 8 + 1 + n_times * (_COMPLEX + _FLOAT))
    # the adjacency costs 8 B per coupling once built and 12 B while it is assembled (16 B: slack)
    return int(dim * per_state + 16 * n_couplings + previous + _FIXED_BYTES)


def states_within(budget: int, n_groups: int, n_times: int) -> int:
    """Most bitstrings whose per-state arrays alone fit ``budget`` bytes (the counting cap)."""
    fixed = run_bytes(0, 0, n_groups, n_times)
    per_state = run_bytes(1, 0, n_groups, n_times) - fixed
    return max(1, (budget - fixed) // per_state)


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    value, unit = float(n), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
