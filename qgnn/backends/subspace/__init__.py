"""Exact fast path for global Rydberg drives: evolution in an energy-truncated basis.

For a register driven by one global Rydberg channel (and optional DMM
detuning maps), bitstrings whose total interaction energy exceeds
``energy_cutoff × E_drive`` are blockaded: they only ever carry a tiny weight
and are dropped; the rest is evolved exactly. One idea per module:

- :mod:`~qgnn.backends.subspace.basis`: the kept bitstrings and the drive's couplings;
- :mod:`~qgnn.backends.subspace.drive`: reading a sequence (per-atom samples,
  DMM included) and slicing it into exponentials (time discretisation);
- :mod:`~qgnn.backends.subspace.propagator`: the matrix-free Hamiltonian and
  Chebyshev exponentials;
- :mod:`~qgnn.backends.subspace.error`: truncation error (differences between
  cutoffs on every feature, leaked weight);
- :mod:`~qgnn.backends.subspace.memory`: the memory estimate and budget;
- :mod:`~qgnn.backends.subspace.backend`: the :class:`Subspace` backend.
"""

from qgnn.backends.subspace.backend import Subspace, TruncationWarning, planned_cutoff
from qgnn.backends.subspace.basis import (
    BasisCount,
    BasisTooLargeError,
    SubspaceBasis,
    count_basis,
    interaction_matrix,
    rydberg_basis,
)
from qgnn.backends.subspace.memory import MemoryBudgetError, MemoryEstimate, default_max_memory

__all__ = [
    "BasisCount",
    "BasisTooLargeError",
    "MemoryBudgetError",
    "MemoryEstimate",
    "Subspace",
    "SubspaceBasis",
    "TruncationWarning",
    "count_basis",
    "default_max_memory",
    "interaction_matrix",
    "planned_cutoff",
    "rydberg_basis",
]
