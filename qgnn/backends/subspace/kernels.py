"""Compiled loops of the subspace backend (numba): the drive's couplings and one Chebyshev step.

The drive couples each kept bitstring x to its *parents* (x minus one
excitation: exactly n_exc(x) of them, all kept since the basis is closed
under removing excitations) and to its kept *children* (x plus one
excitation). Only the parents are stored (:func:`parents`: one int32 index
per coupling, each state's list in atom order; a list starts where the
excitation counts before it add up to, so offsets are kept only every
:data:`BLOCK` states): the children's terms are added from the same lists
by scattering each state's value onto its parents. The Hamiltonian needs no
values array (every coupling is Ω/2·e^{±iφ}) and is applied in one pass
that also advances the Chebyshev recurrence, computes the diagonal on the
fly from the interaction energies and excitation counts, and adds the term
to every evaluation time's sum (:func:`chebyshev_step`). Against a CSR
matrix with both directions this halves the memory per coupling and reads
each index once (a serial step measured 1.6–1.9× faster at 24 atoms).
Where even 4 B per coupling do not fit the memory budget, the lists are
stored in a compact layout (:func:`compact_parents`: ~1.1 B per coupling,
offsets from per-block bases); the same kernels read both layouts through
:func:`_parent`, compiled once per layout, the int32 one as fast as before.
Hot loops index arrays with unsigned integers: numba guards every signed
index against negative wraparound, which made a step 1.3–1.75× slower. Each
state's sum over its parents alternates between two accumulators by place
in its list (half the chain of dependent adds), in an order that does not
depend on the threads' split, so results are the same bits on any number
of threads.

Loops over states run on ``numba.get_num_threads()`` threads (the pipeline's
worker processes set it to their thread count; a process running one big
graph alone uses every core): each thread takes one block-aligned chunk of
states; the scatters that cross into an earlier chunk (parents via the most
significant atoms) are added after the parallel pass. Launches from several
Python threads at once (e.g. a threaded Dask worker) take turns on
:data:`~qgnn.backends.base.NUMBA_LAUNCH_LOCK`, since numba's fallback
threading layer (workqueue) is not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from numba.extending import overload

from qgnn.backends.base import NUMBA_LAUNCH_LOCK, excited_atoms
from qgnn.backends.subspace.basis import BasisTooLargeError

#: States per stored offset into the parents' lists; parallel chunks start at multiples of it.
BLOCK = 1024
#: Compact lists: states per block sharing one base per rank (:class:`ParentLists`).
BASE_BLOCK = 64
#: Compact lists: the offset that says "the next of the escaped indices".
ESCAPE = 255
#: Compact lists are written from the int32 lists of this many states at a time.
_RANGE = 2**18


@dataclass(frozen=True, eq=False)
class ParentLists:
    """Every state's parents (x minus one excitation, most significant atom first), in one of two layouts.

    ``"indices"``: one int32 index per coupling (4 B), the fastest to read.
    ``"compact"``: per coupling, one byte: its offset above the base of its
    rank (the r-th parent) in its block of :data:`BASE_BLOCK` states, or
    :data:`ESCAPE` when that offset is ≥ 255 and the index is the next one
    of ``escapes`` (int32, in list order; 1.1–1.4 % of the couplings of
    MUTAG bases of 22–28 atoms): ~1.1 B per coupling and 4 B × ranks per block,
    for runs whose int32 lists do not fit the memory budget; a Chebyshev step
    reads it 1.15–1.3× slower (a 24-atom MUTAG basis, one or two threads).
    Both are read by the same kernels through :func:`_parent`.

    Attributes:
        lists: what the kernels read: ``(indices,)`` or ``(bases, offsets, escapes)``.
        block_offsets: where the list of state m·BLOCK starts (int64).
        escapes_at: escaped indices before state m·BASE_BLOCK, and their total (int64; ``[0]``
            for ``"indices"``, never read).
        n_ranks: bases per block (the largest number of parents; 0 for ``"indices"``).
        degree: couplings per state (parents + kept children, uint8), for the spectral bounds.
    """

    lists: tuple[np.ndarray, ...]
    block_offsets: np.ndarray
    escapes_at: np.ndarray
    n_ranks: int
    degree: np.ndarray

    @property
    def layout(self) -> str:
        """``"indices"`` or ``"compact"``."""
        return "indices" if len(self.lists) == 1 else "compact"

    @property
    def reader(self) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray, int]:
        """The first arguments of :func:`chebyshev_step`: ``(lists, block_offsets, escapes_at, n_ranks)``."""
        return self.lists, self.block_offsets, self.escapes_at, self.n_ranks

    @property
    def nbytes(self) -> int:
        """Bytes of the lists and their per-state and per-block arrays."""
        return sum(a.nbytes for a in (*self.lists, self.block_offsets, self.escapes_at, self.degree))


def _parent(lists: tuple[np.ndarray, ...], f: int, b: int, x: int) -> tuple[int, bool]:
    """Coupling ``f``'s parent index and whether it was escaped (compiled by :func:`_parent_impl`).

    ``b``: the index of its base (block × ranks + rank); ``x``: the next escaped index.
    """
    raise NotImplementedError("compiled only")


@overload(_parent, inline="always")
def _parent_impl(lists: Any, f: Any, b: Any, x: Any) -> Any:
    if len(lists.types) == 1:  # int32 indices: b and x unused, the flag constant (folded away)

        def indices(lists: Any, f: Any, b: Any, x: Any) -> Any:
            return np.int64(lists[0][np.uint64(f)]), False

        return indices

    def compact(lists: Any, f: Any, b: Any, x: Any) -> Any:
        offset = lists[1][np.uint64(f)]
        if offset == ESCAPE:
            return np.int64(lists[2][np.uint64(x)]), True
        return np.int64(lists[0][np.uint64(b)]) + np.int64(offset), False

    return compact


def _near(lists: tuple[np.ndarray, ...], f: int, b: int) -> int:
    """Coupling ``f``'s parent index in a block without escapes (compiled by :func:`_near_impl`)."""
    raise NotImplementedError("compiled only")


@overload(_near, inline="always")
def _near_impl(lists: Any, f: Any, b: Any) -> Any:
    if len(lists.types) == 1:

        def indices(lists: Any, f: Any, b: Any) -> Any:
            return np.int64(lists[0][np.uint64(f)])

        return indices

    def compact(lists: Any, f: Any, b: Any) -> Any:
        return np.int64(lists[0][np.uint64(b)]) + np.int64(lists[1][np.uint64(f)])

    return compact


def _block(lists: tuple[np.ndarray, ...], escapes_at: np.ndarray, block: int) -> tuple[bool, int]:
    """Whether base block ``block`` has no escaped index, and the escapes before it (compiled)."""
    raise NotImplementedError("compiled only")


@overload(_block, inline="always")
def _block_impl(lists: Any, escapes_at: Any, block: Any) -> Any:
    if len(lists.types) == 1:  # int32 indices: no escapes (escapes_at is not read)

        def indices(lists: Any, escapes_at: Any, block: Any) -> Any:
            return True, np.int64(0)

        return indices

    def compact(lists: Any, escapes_at: Any, block: Any) -> Any:
        return escapes_at[block] == escapes_at[block + 1], np.int64(escapes_at[block])

    return compact


def _escapes(lists: tuple[np.ndarray, ...], first: int, stop: int) -> int:
    """Escaped indices among couplings ``first:stop`` (compiled by :func:`_escapes_impl`)."""
    raise NotImplementedError("compiled only")


@overload(_escapes, inline="always")
def _escapes_impl(lists: Any, first: Any, stop: Any) -> Any:
    if len(lists.types) == 1:

        def none(lists: Any, first: Any, stop: Any) -> Any:
            return 0

        return none

    def count(lists: Any, first: Any, stop: Any) -> Any:
        n = 0
        for f in range(first, stop):
            if lists[1][f] == ESCAPE:
                n += 1
        return n

    return count


@nb.njit(cache=True, parallel=True)
def _write_parents(
    states: np.ndarray, n_qubits: int, lo: int, hi: int, offsets: np.ndarray, out: np.ndarray
) -> None:
    """The parents of states ``lo:hi``, found by one merge per atom, at ``offsets[k − lo]`` + the atom's rank.

    For atom j, over the states k with j excited, in order, the parents
    p = k ^ bit_j increase too, so a pointer walks ``states`` once from a
    binary search at the first of them. p goes to position j's rank among
    the atoms excited in k (most significant atom first, so each list is
    increasing). Atoms write disjoint slots, so they run on numba's threads.
    """
    for j in nb.prange(n_qubits):
        bit = np.int64(1) << np.int64(n_qubits - 1 - j)
        above = ~((bit << np.int64(1)) - np.int64(1))  # the atoms before j (more significant bits)
        pointer = -1
        for k in range(lo, hi):
            s = states[np.uint64(k)]
            if s & bit:
                target = s ^ bit
                if pointer < 0:
                    pointer = np.searchsorted(states[:k], target)
                while states[np.uint64(pointer)] < target:
                    pointer += 1
                rank = 0
                rest = s & above
                while rest:
                    rest &= rest - np.int64(1)
                    rank += 1
                out[np.uint64(offsets[np.uint64(k - lo)] + rank)] = pointer


def _range_parents(states: np.ndarray, n_excited: np.ndarray, n_qubits: int, lo: int, hi: int) -> np.ndarray:
    """The int32 parents' lists of states ``lo:hi``, state after state."""
    offsets = np.zeros(hi - lo + 1, np.int64)
    np.cumsum(n_excited[lo:hi], dtype=np.int64, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.int32)
    with NUMBA_LAUNCH_LOCK:
        _write_parents(states, n_qubits, lo, hi, offsets, out)
    return out


@nb.njit(cache=True)
def _bases(indices: np.ndarray, n_excited: np.ndarray, lo: int, n_ranks: int, bases: np.ndarray) -> int:
    """Each rank's smallest parent per block of states ``lo:``, into ``bases``; returns the escapes."""
    escaped = 0
    e = 0
    for k0 in range(lo, lo + n_excited.size, BASE_BLOCK):
        b0 = (k0 // BASE_BLOCK) * n_ranks
        stop = min(lo + n_excited.size, k0 + BASE_BLOCK)
        for r in range(n_ranks):
            bases[b0 + r] = np.iinfo(np.int32).max
        f = e
        for k in range(k0, stop):
            for r in range(n_excited[k - lo]):
                bases[b0 + r] = min(bases[b0 + r], indices[f])
                f += 1
        for k in range(k0, stop):
            for r in range(n_excited[k - lo]):
                if indices[e] - bases[b0 + r] >= ESCAPE:
                    escaped += 1
                e += 1
    return escaped


@nb.njit(cache=True)
def _compress(
    indices: np.ndarray,
    n_excited: np.ndarray,
    lo: int,
    n_ranks: int,
    bases: np.ndarray,
    offsets: np.ndarray,
    escapes: np.ndarray,
    escapes_at: np.ndarray,
    x: int,
) -> int:
    """Write the offsets and escapes of states ``lo:`` (escapes from index ``x``); returns the next ``x``."""
    e = 0
    for i in range(n_excited.size):
        k = lo + i
        if k % BASE_BLOCK == 0:
            escapes_at[k // BASE_BLOCK] = x
        b0 = (k // BASE_BLOCK) * n_ranks
        for r in range(n_excited[i]):
            offset = indices[e] - bases[b0 + r]
            if offset < ESCAPE:
                offsets[e] = offset
            else:
                offsets[e] = ESCAPE
                escapes[x] = indices[e]
                x += 1
            e += 1
    return x


@nb.njit(cache=True)
def _add_children(indices: np.ndarray, degree: np.ndarray) -> None:
    for e in range(indices.size):
        degree[np.uint64(indices[np.uint64(e)])] += 1


@nb.njit(cache=True)
def _block_offsets(n_excited: np.ndarray) -> np.ndarray:
    """Where the list of state m·BLOCK starts (int64), and the total at the end."""
    out = np.zeros((n_excited.size + BLOCK - 1) // BLOCK + 1, np.int64)
    e = 0
    for k in range(n_excited.size):
        if k % BLOCK == 0:
            out[k // BLOCK] = e
        e += n_excited[k]
    out[-1] = e
    return out


def parents(states: np.ndarray, n_excited: np.ndarray, n_qubits: int) -> ParentLists:
    """Each state's parents as int32 indices (the ``"indices"`` layout of :class:`ParentLists`).

    Args:
        states: kept bitstrings (sorted int64, closed under removing an excitation).
        n_excited: excitations per state.
        n_qubits: number of atoms.

    Peak memory besides the basis: 4 B per coupling and 8 B per state (the
    offsets of every state, freed once written).
    """
    _check_addressable(states)
    indices = _range_parents(states, n_excited, n_qubits, 0, states.size)
    degree = n_excited.copy()
    _add_children(indices, degree)
    return ParentLists((indices,), _block_offsets(n_excited), np.zeros(1, np.int64), 0, degree)


@dataclass(frozen=True)
class CompactPlan:
    """What :func:`compact_parents` will allocate, known before it does (a first pass over the basis).

    Attributes:
        bases: each block's base per rank (int32, already computed).
        n_ranks: bases per block.
        n_escapes: couplings whose offset does not fit a byte.
        nbytes: bytes of the finished lists (offsets, escapes, bases, per-block and per-state arrays).
    """

    bases: np.ndarray
    n_ranks: int
    n_escapes: int
    nbytes: int


def _ranges(dim: int) -> list[tuple[int, int]]:
    return [(lo, min(dim, lo + _RANGE)) for lo in range(0, dim, _RANGE)]


def compact_plan(states: np.ndarray, n_excited: np.ndarray, n_qubits: int) -> CompactPlan:
    """The bases of the compact layout and its exact size, from the int32 lists of one range at a time.

    Peak memory besides the basis: the bases and one range's int32 lists
    (:func:`compact_bytes_while_building`).
    """
    _check_addressable(states)
    n_ranks = max(1, int(n_excited.max(initial=0)))
    bases = np.empty(-(-states.size // BASE_BLOCK) * n_ranks, np.int32)
    n_escapes = 0
    for lo, hi in _ranges(states.size):
        indices = _range_parents(states, n_excited, n_qubits, lo, hi)
        n_escapes += int(_bases(indices, n_excited[lo:hi], lo, n_ranks, bases))
    nbytes = compact_lists_bytes(states.size, int(n_excited.sum(dtype=np.int64)), n_escapes, n_ranks)
    return CompactPlan(bases, n_ranks, n_escapes, nbytes)


def compact_lists_bytes(dim: int, n_couplings: int, n_escapes: int, n_ranks: int) -> int:
    """Bytes of compact parents' lists: offsets, escapes, bases, per-block offsets and per-state degrees.

    With ``n_escapes = n_ranks = 0``, a lower bound known from the counts alone.
    """
    n_blocks, n_base_blocks = -(-dim // BLOCK) + 1, -(-dim // BASE_BLOCK) + 1
    bases = 4 * n_ranks * (n_base_blocks - 1)
    return n_couplings + 4 * n_escapes + bases + 8 * (n_blocks + n_base_blocks) + dim


def compact_parents(
    states: np.ndarray, n_excited: np.ndarray, n_qubits: int, plan: CompactPlan
) -> ParentLists:
    """Each state's parents in the ``"compact"`` layout of :class:`ParentLists` (a second pass)."""
    n_couplings = int(n_excited.sum(dtype=np.int64))
    offsets = np.empty(n_couplings, np.uint8)
    escapes = np.empty(plan.n_escapes, np.int32)
    escapes_at = np.zeros(-(-states.size // BASE_BLOCK) + 1, np.int64)
    degree = n_excited.copy()
    e, x = 0, 0
    for lo, hi in _ranges(states.size):
        indices = _range_parents(states, n_excited, n_qubits, lo, hi)
        x = _compress(
            indices, n_excited[lo:hi], lo, plan.n_ranks, plan.bases, offsets[e:], escapes, escapes_at, x
        )
        _add_children(indices, degree)  # each parent gains this child
        e += indices.size
    escapes_at[-1] = x
    lists = (plan.bases, offsets, escapes)
    return ParentLists(lists, _block_offsets(n_excited), escapes_at, plan.n_ranks, degree)


def compact_bytes_while_building(dim: int, n_couplings: int, n_qubits: int) -> int:
    """Bytes besides the basis and the finished lists while compact lists are built.

    One range's int32 lists at a time: 8 B per state (offsets) and 4 B per
    coupling, at most ``n_qubits`` couplings per state of a range.
    """
    return 8 * min(dim, _RANGE) + 4 * min(n_couplings, _RANGE * n_qubits)


def _check_addressable(states: np.ndarray) -> None:
    if states.size >= np.iinfo(np.int32).max:
        raise BasisTooLargeError(f"{states.size} bitstrings: more than int32 indices can address")


def chunk_bounds(dim: int, n_chunks: int) -> np.ndarray:
    """Block-aligned boundaries splitting ``dim`` states into at most ``n_chunks`` chunks (int64)."""
    n_blocks = -(-dim // BLOCK)
    cuts = np.unique(np.linspace(0, n_blocks, max(1, min(n_chunks, n_blocks)) + 1).astype(np.int64))
    bounds = np.minimum(cuts * BLOCK, dim)
    bounds[-1] = dim
    return bounds


@nb.njit(cache=True, inline="always")
def _diagonal(interaction: np.ndarray, counts: np.ndarray, detuning: np.ndarray, k: int) -> float:
    """D(x_k) = E(x_k) − Σ_g δ_g·counts[g, k] (rad/µs), the diagonal of H at one state."""
    ku = np.uint64(k)
    d = interaction[ku]
    for g in range(detuning.size):
        d -= detuning[np.uint64(g)] * counts[np.uint64(g), ku]
    return d


@nb.njit(cache=True, parallel=True)
def spectral_bounds(
    degree: np.ndarray,
    interaction: np.ndarray,
    counts: np.ndarray,
    detuning: np.ndarray,
    coupling: float,
) -> tuple[float, float]:
    """Gershgorin bounds (min, max) of D ± coupling × degree, D = E − Σ_g δ_g·counts[g]."""
    lo, hi = np.inf, -np.inf
    for k in nb.prange(degree.size):
        d = _diagonal(interaction, counts, detuning, k)
        radius = coupling * degree[k]
        lo = min(lo, d - radius)
        hi = max(hi, d + radius)
    return lo, hi


@nb.njit(cache=True, inline="always")
def _rest_clean(
    lists: tuple[np.ndarray, ...],
    e: int,
    r: int,
    n: int,
    b0: int,
    v: np.ndarray,
    out: np.ndarray,
    down: Any,
    up: Any,
    up2: Any,
) -> tuple[Any, Any]:
    """Places ``r:n`` (``r`` even) of the list at ``e``, in a block without escapes: sums and scatters.

    ``v[p]`` is summed, ``down`` added to ``out[p]``.

    Even places go to ``up``, odd ones to ``up2``.
    """
    f = e + r
    while f + 1 < e + n:
        p, p2 = np.uint64(_near(lists, f, b0 + f - e)), np.uint64(_near(lists, f + 1, b0 + f + 1 - e))
        up += v[p]
        up2 += v[p2]
        out[p] += down
        out[p2] += down
        f += 2
    if f < e + n:
        p = np.uint64(_near(lists, f, b0 + f - e))
        up += v[p]
        out[p] += down
    return up, up2


@nb.njit(cache=True, inline="always")
def _rest(
    lists: tuple[np.ndarray, ...],
    e: int,
    r: int,
    n: int,
    b0: int,
    x: int,
    v: np.ndarray,
    out: np.ndarray,
    down: Any,
    up: Any,
    up2: Any,
) -> tuple[Any, Any, int]:
    """:func:`_rest_clean` in a block with escapes (``x``: the next escaped index, returned advanced)."""
    f = e + r
    while f + 1 < e + n:
        p, escaped = _parent(lists, f, b0 + f - e, x)
        x += escaped
        p2, escaped = _parent(lists, f + 1, b0 + f + 1 - e, x)
        x += escaped
        up += v[np.uint64(p)]
        up2 += v[np.uint64(p2)]
        out[np.uint64(p)] += down
        out[np.uint64(p2)] += down
        f += 2
    if f < e + n:
        p, escaped = _parent(lists, f, b0 + f - e, x)
        x += escaped
        up += v[np.uint64(p)]
        out[np.uint64(p)] += down
    return up, up2, x


@nb.njit(cache=True, parallel=True)
def chebyshev_step(
    lists: tuple[np.ndarray, ...],
    block_offsets: np.ndarray,
    escapes_at: np.ndarray,
    n_ranks: int,
    bounds: np.ndarray,
    n_excited: np.ndarray,
    interaction: np.ndarray,
    counts: np.ndarray,
    detuning: np.ndarray,
    centre: float,
    dscale: float,
    w: complex | float,
    v: np.ndarray,
    prev: np.ndarray,
    out: np.ndarray,
    scale: float,
    keep_prev: float,
    coefs: np.ndarray,
    acc: np.ndarray,
) -> None:
    """``out = scale·(d∘v + w·Σ_parents v + w̄·Σ_children v) − keep_prev·prev``; ``acc[t] += coefs[t]·out``.

    d = dscale·(E − Σ_g δ_g·counts[g] − centre). The parents are read from
    a :class:`ParentLists` (``lists``, ``block_offsets``, ``escapes_at``,
    ``n_ranks``; the compiled code of each layout is its own). ``out`` may
    be ``prev`` (updated in place: row k reads its own ``prev`` before any
    child adds to it, since children come later in the basis). ``w`` scales
    the raising couplings (parent → state); with a real ``w`` the vectors
    may be real (half the memory traffic), the sums ``acc`` stay complex.
    ``bounds``: the chunks (:func:`chunk_bounds`), one per thread.
    """
    ws = w * scale
    wc = np.conj(w) * scale
    n_chunks = bounds.size - 1
    zero = v[0] * 0.0  # of v's type: real vectors (real H on a real state) are summed in real arithmetic
    for c in nb.prange(n_chunks):
        start, stop = bounds[c], bounds[c + 1]
        e = block_offsets[start // BLOCK]
        x = 0
        clean = True
        for k in range(start, stop):
            ku = np.uint64(k)
            n = n_excited[ku]
            block = k // BASE_BLOCK
            b0 = block * n_ranks
            if k % BASE_BLOCK == 0:
                clean, x = _block(lists, escapes_at, block)
            vk = v[ku]
            down = wc * vk
            up = zero  # the parents at even places of the list (two sums: half the chain of adds)
            up2 = zero  # at odd places; the order does not depend on the chunks
            r = 0
            while r < n:  # parents in an earlier chunk (a prefix of the list): scattered after this pass
                p, escaped = _parent(lists, e + r, b0 + r, x)
                x += escaped
                if r & 1:
                    up2 += v[np.uint64(p)]
                    if p >= start:  # the rest starts at an even place
                        out[np.uint64(p)] += down
                        r += 1
                        break
                else:
                    if p >= start:
                        x -= escaped  # read again by the rest
                        break
                    up += v[np.uint64(p)]
                r += 1
            if clean:
                up, up2 = _rest_clean(lists, e, r, n, b0, v, out, down, up, up2)
            else:
                up, up2, x = _rest(lists, e, r, n, b0, x, v, out, down, up, up2)
            up += up2
            d = _diagonal(interaction, counts, detuning, k) - centre
            out[ku] = scale * dscale * d * vk + ws * up - keep_prev * prev[ku]
            e += n
    for c in range(1, n_chunks):  # the scatters across chunks
        start, stop = bounds[c], bounds[c + 1]
        e = block_offsets[start // BLOCK]
        x = 0
        clean = True
        for k in range(start, stop):
            n = n_excited[np.uint64(k)]
            block = k // BASE_BLOCK
            b0 = block * n_ranks
            if k % BASE_BLOCK == 0:
                clean, x = _block(lists, escapes_at, block)
            down = wc * v[np.uint64(k)]
            r = 0
            while r < n:  # the list's prefix in earlier chunks
                p, escaped = _parent(lists, e + r, b0 + r, x)
                if p >= start:
                    break
                x += escaped
                out[np.uint64(p)] += down
                r += 1
            if not clean:  # the escapes left in this list
                x += _escapes(lists, e + r, e + n)
            e += n
    n_times = coefs.size
    for c in nb.prange(n_chunks):
        for t in range(n_times):
            coef = coefs[t]
            if coef != 0:
                tu = np.uint64(t)
                for k in range(bounds[c], bounds[c + 1]):
                    ku = np.uint64(k)
                    acc[tu, ku] += coef * out[ku]


@nb.njit(cache=True)
def kept_children(
    states: np.ndarray, lists: tuple[np.ndarray, ...], n_ranks: int, n_excited: np.ndarray
) -> np.ndarray:
    """For each state, the bits of the atoms whose excitation leads to a kept state (int64 masks)."""
    mask = np.zeros(states.size, np.int64)
    e = 0
    x = 0
    for k in range(states.size):
        b0 = (k // BASE_BLOCK) * n_ranks
        s = states[np.uint64(k)]
        n = n_excited[np.uint64(k)]
        for r in range(n):
            p, escaped = _parent(lists, e + r, b0 + r, x)
            x += escaped
            pu = np.uint64(p)
            mask[pu] |= s ^ states[pu]
        e += n
    return mask


@nb.njit(cache=True, parallel=True)
def leaked_weight_sum(
    states: np.ndarray,
    n_excited: np.ndarray,
    kept: np.ndarray,
    interactions: np.ndarray,
    weight: np.ndarray,
    atom_detuning: np.ndarray,
    g2: float,
) -> np.ndarray:
    """Σ over kept states k and dropped children k + j of g²·|ψ_k|²·(n_exc(k) + 1) / ((ΔE_kj − δ_j)² + g²).

    A child is dropped when atom j is not excited in k and not in
    ``kept[k]`` (:func:`kept_children`). ΔE_kj = Σ_{i excited in k} U_ij
    (rad/µs). ``weight`` and ``atom_detuning`` have one row per evaluation
    time; returns one sum per time.
    """
    n_qubits = interactions.shape[0]
    n_times = weight.shape[0]
    n_blocks = 256
    partial = np.zeros((n_blocks, n_times))
    size = (states.size + n_blocks - 1) // n_blocks
    full = (np.int64(1) << np.int64(n_qubits)) - np.int64(1)
    for block in nb.prange(n_blocks):
        excited = np.empty(n_qubits, np.uint64)
        bu = np.uint64(block)
        for k in range(block * size, min(states.size, (block + 1) * size)):
            ku = np.uint64(k)
            s = states[ku]
            dropped = full & ~s & ~kept[ku]
            if dropped == 0:
                continue
            parents = n_excited[ku] + 1.0
            count = excited_atoms(s, n_qubits, excited)
            for j in range(n_qubits):
                if not dropped & (np.int64(1) << np.int64(n_qubits - 1 - j)):
                    continue
                ju = np.uint64(j)
                added = 0.0
                for a in range(count):
                    added += interactions[excited[a], ju]
                for t in range(n_times):
                    tu = np.uint64(t)
                    gap = added - atom_detuning[tu, ju]
                    partial[bu, tu] += g2 * weight[tu, ku] * parents / (gap * gap + g2)
    return partial.sum(axis=0)
