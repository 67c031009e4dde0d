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

import numba as nb
import numpy as np

from qgnn.backends.base import NUMBA_LAUNCH_LOCK
from qgnn.backends.subspace.basis import BasisTooLargeError

#: States per stored offset into the parents' lists; parallel chunks start at multiples of it.
BLOCK = 1024


@nb.njit(cache=True, parallel=True)
def _write_parents(states: np.ndarray, n_qubits: int, offsets: np.ndarray, out: np.ndarray) -> None:
    """Every state's parents, found by one merge per atom, written at ``offsets[k]`` + the atom's rank.

    For atom j, over the states k with j excited, in order, the parents
    p = k ^ bit_j increase too, so a pointer walks ``states`` once (no binary
    search). p goes to position j's rank among the atoms excited in k (most
    significant atom first, so each list is increasing). Atoms write
    disjoint slots, so they run on numba's threads.
    """
    for j in nb.prange(n_qubits):
        bit = np.int64(1) << np.int64(n_qubits - 1 - j)
        above = ~((bit << np.int64(1)) - np.int64(1))  # the atoms before j (more significant bits)
        pointer = 0
        for k in range(states.size):
            s = states[k]
            if s & bit:
                target = s ^ bit
                while states[pointer] < target:
                    pointer += 1
                rank = 0
                rest = s & above
                while rest:
                    rest &= rest - np.int64(1)
                    rank += 1
                out[offsets[k] + rank] = pointer


@nb.njit(cache=True)
def _add_children(parents: np.ndarray, degree: np.ndarray) -> None:
    for e in range(parents.size):
        degree[parents[e]] += 1


def parents(
    states: np.ndarray, n_excited: np.ndarray, n_qubits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each state's parents, as ``(parents int32, block_offsets int64, degree uint8)``.

    Args:
        states: kept bitstrings (sorted int64, closed under removing an excitation).
        n_excited: excitations per state.
        n_qubits: number of atoms.

    Returns:
        the parents' indices, state after state (``n_excited[k]`` of them,
        increasing); where the list of state ``m·BLOCK`` starts; and each
        state's number of couplings (parents + kept children), for the
        spectral bounds. Peak memory besides the basis: 4 B per coupling and
        8 B per state (the offsets of every state, freed once written).
    """
    if states.size >= np.iinfo(np.int32).max:
        raise BasisTooLargeError(f"{states.size} bitstrings: more than int32 indices can address")
    offsets = np.zeros(states.size + 1, np.int64)
    np.cumsum(n_excited, dtype=np.int64, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.int32)
    with NUMBA_LAUNCH_LOCK:
        _write_parents(states, n_qubits, offsets, out)
    block_offsets = offsets[::BLOCK].copy()
    del offsets
    degree = n_excited.copy()
    _add_children(out, degree)
    return out, block_offsets, degree


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
    d = interaction[k]
    for g in range(detuning.size):
        d -= detuning[g] * counts[g, k]
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


@nb.njit(cache=True, parallel=True)
def chebyshev_step(
    parents: np.ndarray,
    block_offsets: np.ndarray,
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

    d = dscale·(E − Σ_g δ_g·counts[g] − centre). ``out`` may be ``prev``
    (updated in place: row k reads its own ``prev`` before any child adds to
    it, since children come later in the basis). ``w`` scales the raising
    couplings (parent → state); with a real ``w`` the vectors may be real
    (half the memory traffic), the sums ``acc`` stay complex. ``bounds``:
    the chunks (:func:`chunk_bounds`), one per thread.
    """
    ws = w * scale
    wc = np.conj(w) * scale
    n_chunks = bounds.size - 1
    zero = v[0] * 0.0  # of v's type: real vectors (real H on a real state) are summed in real arithmetic
    for c in nb.prange(n_chunks):
        start, stop = bounds[c], bounds[c + 1]
        e = block_offsets[start // BLOCK]
        for k in range(start, stop):
            m = e + n_excited[k]
            vk = v[k]
            down = wc * vk
            up = zero
            first = e
            while first < m and parents[first] < start:  # parents in an earlier chunk: scattered later
                up += v[parents[first]]
                first += 1
            for f in range(first, m):
                p = parents[f]
                up += v[p]
                out[p] += down
            d = _diagonal(interaction, counts, detuning, k) - centre
            out[k] = scale * dscale * d * vk + ws * up - keep_prev * prev[k]
            e = m
    for c in range(1, n_chunks):  # the scatters across chunks: each list starts with them (increasing)
        start, stop = bounds[c], bounds[c + 1]
        e = block_offsets[start // BLOCK]
        for k in range(start, stop):
            m = e + n_excited[k]
            down = wc * v[k]
            for f in range(e, m):
                p = parents[f]
                if p >= start:
                    break
                out[p] += down
            e = m
    n_times = coefs.size
    for c in nb.prange(n_chunks):
        for t in range(n_times):
            coef = coefs[t]
            if coef != 0:
                for k in range(bounds[c], bounds[c + 1]):
                    acc[t, k] += coef * out[k]


@nb.njit(cache=True)
def kept_children(states: np.ndarray, parents: np.ndarray, n_excited: np.ndarray) -> np.ndarray:
    """For each state, the bits of the atoms whose excitation leads to a kept state (int64 masks)."""
    mask = np.zeros(states.size, np.int64)
    e = 0
    for k in range(states.size):
        for f in range(e, e + n_excited[k]):
            p = parents[f]
            mask[p] |= states[k] ^ states[p]
        e += n_excited[k]
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
        for k in range(block * size, min(states.size, (block + 1) * size)):
            s = states[k]
            dropped = full & ~s & ~kept[k]
            if dropped == 0:
                continue
            parents = n_excited[k] + 1.0
            for j in range(n_qubits):
                if not dropped & (np.int64(1) << np.int64(n_qubits - 1 - j)):
                    continue
                added = 0.0
                for i in range(n_qubits):
                    if s & (np.int64(1) << np.int64(n_qubits - 1 - i)):
                        added += interactions[i, j]
                for t in range(n_times):
                    gap = added - atom_detuning[t, j]
                    partial[block, t] += g2 * weight[t, k] * parents / (gap * gap + g2)
    return partial.sum(axis=0)
