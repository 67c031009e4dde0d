"""The kept basis: every bitstring whose interaction energy is below a cutoff, and the drive's couplings.

For a register with pair interactions U_ij = C6/r_ij⁶ > 0, the interaction
energy E(x) = Σ_{i<j both excited} U_ij only grows when an excitation is
added, so the set {x : E(x) ≤ E_max} is closed under removing excitations.
It is enumerated exactly by a depth-first walk that prunes an excitation
past the cutoff together with all its supersets.

Closure gives the number of drive couplings for free: each kept bitstring
with k excitations has exactly k kept neighbours with one excitation fewer,
so the couplings number Σ_x k(x) — known before any of them is built:
:func:`count_basis` counts the bitstrings and their couplings without
storing either, which the memory estimate and guard use
(:mod:`qgnn.backends.subspace.memory`).

The basis takes 8 B per state, 8 B per energy and 1 B per excitation
count; the scipy couplings (:func:`couplings`, for the trainable engine) are
built in chunks of bitstrings, 12 B per coupling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numba as nb
import numpy as np
import scipy.sparse as sp

from qgnn.backends.base import state_bits
from qgnn.errors import BackendError

#: Bitstrings expanded at once (bounds the chunk work arrays to a few tens of MB).
_CHUNK_PAIRS = 1 << 20
#: The subspace backend indexes bitstrings by int64.
MAX_QUBITS = 62


class BasisTooLargeError(BackendError):
    """The kept basis would exceed the allowed number of bitstrings."""


@dataclass(frozen=True, eq=False)
class SubspaceBasis:
    """Bitstrings kept by an interaction-energy cutoff.

    Args:
        n_qubits: number of atoms.
        states: kept bitstrings as integers (qubit 0 = most significant bit), sorted.
        interaction: E(x) = Σ_{i<j both excited} C6/r_ij⁶ per kept state (rad/µs).
        n_excited: number of excitations per kept state (uint8).
        interactions: the pair interactions U_ij the basis was built from (rad/µs).
        max_energy: the cutoff on E(x) that produced it (rad/µs, ``inf`` = none).
    """

    n_qubits: int
    states: np.ndarray
    interaction: np.ndarray
    n_excited: np.ndarray
    interactions: np.ndarray
    max_energy: float

    @property
    def dim(self) -> int:
        """Number of kept bitstrings."""
        return int(self.states.size)

    @property
    def n_couplings(self) -> int:
        """Number of drive couplings (pairs differing by one excitation), = Σ excitations."""
        return int(self.n_excited.sum(dtype=np.int64))

    @property
    def is_full(self) -> bool:
        """True when every one of the 2**n bitstrings is kept."""
        return self.dim == 1 << self.n_qubits

    def neighbours(self, start: int, stop: int) -> Iterator[tuple[np.ndarray, int, np.ndarray, np.ndarray]]:
        """Kept states ``start:stop`` plus one excitation, one atom at a time.

        Yields, for each atom ``j``: the indices ``k`` of the states where
        ``j`` is not excited, ``j``, the position of ``states[k] + j`` in
        ``states`` (``-1`` when it is not kept), and the interaction energy it
        adds, Σ_{i excited in k} U_ij (rad/µs).
        """
        chunk = self.states[start:stop]
        bits = state_bits(chunk, self.n_qubits)
        added = bits @ self.interactions
        for j in range(self.n_qubits):
            weight = np.int64(1) << np.int64(self.n_qubits - 1 - j)
            rows = np.flatnonzero(bits[:, j] == 0.0)
            # targets of one atom are increasing with the states: searchsorted walks them in order
            target = chunk[rows] | weight
            pos = np.searchsorted(self.states, target)
            pos[pos == self.dim] = 0
            found = self.states[pos] == target
            yield rows + start, j, np.where(found, pos, -1), added[rows, j]

    def chunks(self) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` ranges of states processed at once by :meth:`neighbours`."""
        step = max(1, _CHUNK_PAIRS // max(self.n_qubits, 1))
        for start in range(0, self.dim, step):
            yield start, min(start + step, self.dim)


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


def popcount(values: np.ndarray) -> np.ndarray:
    """Number of set bits of each non-negative int64, as uint8."""
    x = np.asarray(values, dtype=np.int64).astype(np.uint64)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.uint8)


@dataclass(frozen=True)
class BasisCount:
    """Size of a kept basis, counted without building it.

    Args:
        dim: kept bitstrings.
        n_couplings: drive couplings among them (= Σ excitations, see the module docstring).
    """

    dim: int
    n_couplings: int


def _checked(interactions: np.ndarray, max_energy: float) -> np.ndarray:
    """``interactions`` as float64, after checking it and ``max_energy``."""
    u = np.asarray(interactions, dtype=np.float64)
    if u.ndim != 2 or u.shape[0] != u.shape[1] or u.shape[0] == 0:
        raise BackendError(f"interactions must be a square (n, n) matrix with n ≥ 1, got shape {u.shape}")
    if not (np.all(np.isfinite(u)) and np.all(u >= 0) and np.allclose(u, u.T) and not np.any(np.diag(u))):
        raise BackendError("interactions must be finite, ≥ 0, symmetric, with a zero diagonal")
    if math.isnan(max_energy):
        raise BackendError("max_energy is NaN")
    if u.shape[0] > MAX_QUBITS:
        raise BackendError(f"the subspace backend handles at most {MAX_QUBITS} atoms, got {u.shape[0]}")
    return u


def count_basis(interactions: np.ndarray, max_energy: float, max_states: int | None = None) -> BasisCount:
    """Count the bitstrings (and their couplings) :func:`rydberg_basis` would keep, allocating nothing.

    Args and errors as :func:`rydberg_basis`.
    """
    return _count(_checked(interactions, max_energy), max_energy, max_states)


def _count(u: np.ndarray, max_energy: float, max_states: int | None) -> BasisCount:
    if max_states is not None and max_states < 0:
        raise BackendError(f"max_states must be ≥ 0 (or None: no limit), got {max_states}")
    limit = -1 if max_states is None else int(max_states)
    no_states, no_energies, no_counts = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint8)
    dim, n_couplings = _enumerate(u, float(max_energy), limit, no_states, no_energies, no_counts, False)
    if dim < 0:
        raise BasisTooLargeError(
            f"more than {max_states} bitstrings have interaction energy ≤ {max_energy:g} rad/µs"
        )
    return BasisCount(dim, n_couplings)


def rydberg_basis(
    interactions: np.ndarray,
    max_energy: float,
    max_states: int | None = None,
    counted: BasisCount | None = None,
) -> SubspaceBasis:
    """Enumerate every bitstring whose interaction energy is ≤ ``max_energy``.

    A compiled depth-first walk over the atoms (:func:`_enumerate`): since
    every U_ij ≥ 0 a pruned bitstring has no kept superset, so the
    enumeration is exact, and it produces the bitstrings already sorted. It
    counts first (:func:`count_basis`, stopping past ``max_states``), then
    writes: the only memory it allocates is the basis itself (17 B per
    bitstring).

    Args:
        interactions: U_ij (rad/µs), symmetric ``(n, n)``, ≥ 0, zero diagonal.
        max_energy: largest kept interaction energy (rad/µs); ``inf`` keeps all 2**n.
        max_states: stop with :class:`BasisTooLargeError` as soon as more
            bitstrings than this are found (nothing larger is allocated).
        counted: the :func:`count_basis` of these arguments, when the caller
            already has it (the counting pass is skipped).

    Raises:
        BackendError: malformed ``interactions`` or ``max_energy``, more than 62 atoms, or a
            ``counted`` that is not this basis's count.
        BasisTooLargeError: more than ``max_states`` bitstrings.
    """
    u = _checked(interactions, max_energy)
    if counted is None:
        counted = _count(u, max_energy, max_states)
    dim = counted.dim
    states, interaction, n_excited = np.empty(dim, np.int64), np.empty(dim), np.empty(dim, np.uint8)
    written, _ = _enumerate(u, float(max_energy), dim, states, interaction, n_excited, True)
    if written != dim:  # the write stops at ``dim`` states: a wrong count never writes past the arrays
        raise BackendError(
            f"rydberg_basis: counted={counted} is not the count of this basis "
            f"({'more' if written < 0 else written} bitstrings at {max_energy:g} rad/µs); "
            "pass count_basis of the same interactions and max_energy, or leave counted out"
        )
    return SubspaceBasis(u.shape[0], states, interaction, n_excited, u, float(max_energy))


@nb.njit(cache=True)
def _enumerate(
    u: np.ndarray,
    max_energy: float,
    limit: int,
    states: np.ndarray,
    energies: np.ndarray,
    counts: np.ndarray,
    write: bool,
) -> tuple[int, int]:
    """Count (and with ``write``, store) the kept bitstrings in increasing order, and their excitations.

    Returns (bitstrings, Σ excitations); bitstrings is −1 past ``limit`` (≥ 0).

    A depth-first walk deciding atom 0 (the most significant bit) first and
    "not excited" before "excited", so bitstrings come out sorted. Along the
    path, ``added[r]`` holds Σ_{i excited} U_ij of the last state that
    excited an atom (``r`` = its depth), so E grows by one entry per
    excitation; an excitation past ``max_energy`` is pruned with all its
    supersets (every U_ij ≥ 0).
    """
    n = u.shape[0]
    added = np.zeros((n + 1, n))
    source = np.zeros(n + 1, np.int64)  # the row of ``added`` valid at each depth
    state = np.zeros(n + 1, np.int64)
    energy = np.zeros(n + 1)
    excited = np.zeros(n + 1, np.int64)
    branch = np.zeros(n + 1, np.int64)  # 0: "not excited" next, 1: "excited" next, 2: done
    count = 0
    total_excited = 0
    depth = 0
    while True:
        if depth == n:
            if limit >= 0 and count >= limit:
                return -1, total_excited
            if write:
                states[count] = state[n]
                energies[count] = energy[n]
                counts[count] = excited[n]
            count += 1
            total_excited += int(excited[n])
            depth -= 1
            continue
        if branch[depth] == 0:
            branch[depth] = 1
            nxt = depth + 1
            state[nxt], energy[nxt], excited[nxt], source[nxt] = (
                state[depth],
                energy[depth],
                excited[depth],
                source[depth],
            )
            branch[nxt] = 0
            depth = nxt
            continue
        if branch[depth] == 1:
            branch[depth] = 2
            e = energy[depth] + added[source[depth], depth]
            if e <= max_energy:
                nxt = depth + 1
                state[nxt] = state[depth] | (np.int64(1) << np.int64(n - 1 - depth))
                energy[nxt] = e
                excited[nxt] = excited[depth] + 1
                row, above, at = np.uint64(nxt), np.uint64(source[depth]), np.uint64(depth)
                for j in range(n):  # unsigned indices: numba checks every signed one for wraparound
                    ju = np.uint64(j)
                    added[row, ju] = added[above, ju] + u[at, ju]
                source[nxt] = nxt
                branch[nxt] = 0
                depth = nxt
                continue
        if depth == 0:
            return count, total_excited
        depth -= 1


def couplings(basis: SubspaceBasis) -> sp.csr_array:
    """The lowering couplings: ``L[k, k'] = 1`` when ``states[k']`` is ``states[k]`` plus one excitation.

    Rows are the states with fewer excitations; ``L.T`` raises. Its
    ``n_couplings`` entries are stored as float64 data and int32 indices.
    """
    dim = basis.dim
    if max(dim, basis.n_couplings) >= np.iinfo(np.int32).max:
        raise BasisTooLargeError(
            f"{dim} bitstrings with {basis.n_couplings} couplings: more than int32 indices can address"
        )
    per_row = np.zeros(dim, np.int32)
    cols: list[np.ndarray] = []
    for start, stop in basis.chunks():
        found = [(k, pos) for k, _, pos, _ in basis.neighbours(start, stop)]
        rows = np.concatenate([k[pos >= 0] for k, pos in found])
        targets = np.concatenate([pos[pos >= 0] for _, pos in found]).astype(np.int32)
        # CSR order within the chunk (its pairs come atom by atom); chunks come in row order
        cols.append(targets[np.argsort(rows, kind="stable")])
        per_row[start:stop] = np.bincount(rows - start, minlength=stop - start)
    col = np.concatenate(cols) if cols else np.zeros(0, np.int32)
    del cols
    indptr = np.zeros(dim + 1, np.int32)
    np.cumsum(per_row, out=indptr[1:])
    return sp.csr_array((np.ones(col.size), col, indptr), shape=(dim, dim))
