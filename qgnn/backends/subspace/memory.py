"""Memory of a subspace run, estimated before anything large is allocated, and the budget it must fit.

A run at one cutoff goes through three phases, each with its own peak:
building the basis (states, interaction energies and excitation counts,
enumerated in order; beside it the previous cutoff's probabilities), assembling
the drive's couplings (each state's parents: one int32 index per coupling;
the couplings number Σ_x n_exc(x), known as soon as the basis is), and the
evolution (the parents' lists, the vectors of the Chebyshev recurrence and
its sums, the recorded states and their probabilities:
:func:`~qgnn.backends.subspace.propagator.vector_bytes`). When the int32
lists do not fit the budget, compact ones (~1.1 B per coupling, see
:class:`~qgnn.backends.subspace.kernels.ParentLists`) may: from the counts
their size is known to within the escaped couplings and the per-block
bases (:class:`CompactLists`, a lower bound that decides whether to build
the basis at all), exactly once the basis is built and the lists planned.
Of the previous
cutoff only the moments are kept once the next basis is built (its
probabilities too for the ``"bitstrings"`` criterion). :func:`run_bytes`
takes the largest phase (an upper bound: it is checked against traced
allocations in the tests), so the backend refuses a graph with
:class:`MemoryBudgetError` before allocating it, and a scheduler can ask
the same question with :meth:`qgnn.backends.Subspace.memory_estimate`.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

from qgnn.errors import BackendError

#: Fraction of the machine's physical memory the default budget shares out (the rest: the
#: interpreters themselves, ~0.4 GB each with torch and pulser, the OS and other work).
MEMORY_SHARE = 0.3
#: Chunk work arrays and interpreter slack on top of the per-state costs (bytes).
_FIXED_BYTES = 96 * 2**20
#: Per kept bitstring: the basis (state 8 B, interaction energy 8 B, excitations 1 B) ...
_BASIS = 8 + 8 + 1
#: ... every state's offset into the parents' lists (int64) while they are written ...
_OFFSETS = 8
#: ... and, from then on, the couplings per state (uint8) and the offsets kept every 1024 states.
_OPERATORS = 2
#: Bytes per coupling: the parent's index (int32).
_PARENT = 4


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
        compact_lists: the run fits only with compact parents' lists; ``bytes`` is then
            their lower bound from the counts (see :class:`CompactLists`).
    """

    bytes: int
    basis_dim: int
    n_couplings: int
    energy_cutoff: float
    budget: int
    complete: bool = True
    compact_lists: bool = False

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
    vectors: int,
    *,
    previous_bytes: int = 0,
    previous_kept: bool = False,
    compact: CompactLists | None = None,
) -> int:
    """Upper estimate of the peak memory of one subspace run (bytes): its largest phase.

    Args:
        dim: kept bitstrings.
        n_couplings: drive couplings among them.
        n_groups: detuning groups (1 without a DMM).
        vectors: bytes per kept bitstring of the evolution's vectors
            (:func:`~qgnn.backends.subspace.propagator.vector_bytes`).
        previous_bytes: the previous cutoff's basis and probabilities, alive while this basis is built.
        previous_kept: they stay alive through the whole run (the ``"bitstrings"`` criterion).
        compact: the run's parents' lists are compact ones of this size (default: int32 indices).
    """
    basis = _BASIS + (n_groups if n_groups > 1 else 0)  # + one count per state and detuning group
    build = _BASIS * dim
    if compact is None:
        assembly = (basis + _OFFSETS) * dim + _PARENT * n_couplings
        evolution = (basis + _OPERATORS + vectors) * dim + _PARENT * n_couplings
    else:
        assembly = basis * dim + compact.bytes + compact.building
        evolution = (basis + vectors) * dim + compact.bytes
    previous = previous_bytes if previous_kept else 0
    return int(max(build + previous_bytes, assembly + previous, evolution + previous) + _FIXED_BYTES)


@dataclass(frozen=True)
class CompactLists:
    """Memory of compact parents' lists (:class:`~qgnn.backends.subspace.kernels.ParentLists`).

    Args:
        bytes: the finished lists, with their per-state and per-block arrays (bytes).
        building: besides the basis and the lists, while they are written (bytes).
    """

    bytes: int
    building: int


def previous_bytes(dim: int, n_times: int) -> int:
    """Bytes of a finished run's basis and probabilities kept for the next cutoff's comparison."""
    return dim * (_BASIS + 8 * n_times)


def states_within(budget: int, n_groups: int, vectors: int) -> int:
    """Most bitstrings whose per-state arrays alone fit ``budget`` bytes (the counting cap)."""
    fixed = run_bytes(0, 0, n_groups, vectors)
    per_state = run_bytes(1, 0, n_groups, vectors) - fixed
    return max(1, (budget - fixed) // per_state)


#: Runs estimated above this (bytes) are followed by a full garbage collection.
COLLECT_ABOVE = 256 * 2**20


def release_cycles(run_bytes_estimate: int | None) -> None:
    """Free a finished (or refused) large run's arrays that reference cycles still hold.

    Frames of a run can outlive it in reference cycles (e.g. through an
    exception's traceback), which Python's generational collector reaches
    only in its rare full collections: a pipeline worker was seen holding
    2.6 GB of a previous graph's basis and couplings that way. One full
    collection (a fraction of a second) after each run estimated above
    :data:`COLLECT_ABOVE` returns that memory before the next graph starts.
    """
    if run_bytes_estimate is not None and run_bytes_estimate > COLLECT_ABOVE:
        gc.collect()


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    value, unit = float(n), "B"
    for larger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
