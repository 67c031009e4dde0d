"""Compiled loops of the subspace backend (numba): the drive's adjacency and one Chebyshev step.

The drive couples each kept bitstring x to its *parents* (x minus one
excitation: exactly n_exc(x) of them, all kept since the basis is closed
under removing excitations) and to its kept *children* (x plus one
excitation). :func:`adjacency` stores both lists per state in one CSR
structure of int32 indices, parents first (8 B per coupling, nothing
else per coupling even while it is assembled), so the Hamiltonian needs no
values array (every coupling is Ω/2·e^{±iφ}) and is applied in one pass
that also advances the Chebyshev recurrence and adds the term to every
evaluation time's sum (:func:`chebyshev_step`): one read of the state per
term instead of a sparse product per direction plus separate vector updates.

Loops over states run on ``numba.get_num_threads()`` threads (the pipeline's
worker processes set it to their thread count; a process running one big
graph alone uses every core). Launches from several Python threads at once
(e.g. a threaded Dask worker) take turns on :data:`LAUNCH_LOCK`, since
numba's fallback threading layer (workqueue) is not thread-safe.
"""

from __future__ import annotations

import threading

import numba as nb
import numpy as np

#: Held while a parallel kernel (or a run of them) executes.
LAUNCH_LOCK = threading.Lock()


@nb.njit(cache=True)
def _links(
    states: np.ndarray,
    n_qubits: int,
    indptr: np.ndarray,
    fill: np.ndarray,
    indices: np.ndarray,
    write: bool,
) -> None:
    """Every (state, parent) pair, found by one merge per atom; counted, or written into the adjacency.

    For atom j, over the states k with j excited, in order, the parents
    p = k ^ bit_j increase too, so a pointer walks ``states`` once (no binary
    search). ``write=False`` counts p's children into ``fill[p]``;
    ``write=True`` writes p at ``indptr[k] + rank`` (j's rank among the atoms
    excited in k: parents come first, most significant atom first) and k at
    ``fill[p]``, the next free child slot of p (children in atom order).
    """
    for j in range(n_qubits):
        bit = np.int64(1) << np.int64(n_qubits - 1 - j)
        above = ~((bit << np.int64(1)) - np.int64(1))  # the atoms before j (more significant bits)
        pointer = 0
        for k in range(states.size):
            s = states[k]
            if s & bit:
                target = s ^ bit
                while states[pointer] < target:
                    pointer += 1
                if not write:
                    fill[pointer] += 1
                    continue
                rank = 0
                rest = s & above
                while rest:
                    rest &= rest - np.int64(1)
                    rank += 1
                indices[indptr[k] + rank] = pointer
                indices[fill[pointer]] = k
                fill[pointer] += 1


def adjacency(states: np.ndarray, n_excited: np.ndarray, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Each state's parents then its kept children, as CSR ``(indptr int64, indices int32)``.

    Args:
        states: kept bitstrings (sorted int64, closed under removing an excitation).
        n_excited: excitations per state.
        n_qubits: number of atoms.

    Two passes of :func:`_links` (count, then write) and nothing else per
    coupling: peak memory besides the basis 8 B per coupling and 16 B per
    state (``indptr`` and the children's fill pointers).
    """
    dim = states.size
    indptr = np.zeros(dim + 1, np.int64)
    fill = np.zeros(dim, np.int64)
    no_indices = np.zeros(0, np.int32)
    _links(states, n_qubits, indptr, fill, no_indices, False)  # children per state
    fill += n_excited
    np.cumsum(fill, out=indptr[1:])
    fill[:] = indptr[:-1]
    fill += n_excited  # each state's first child slot, after its parents
    indices = np.empty(int(indptr[-1]), np.int32)
    _links(states, n_qubits, indptr, fill, indices, True)
    return indptr, indices


@nb.njit(cache=True, parallel=True)
def spectral_bounds(indptr: np.ndarray, diag: np.ndarray, coupling: float) -> tuple[float, float]:
    """Gershgorin bounds (min, max) of diag ± coupling × (couplings of each state)."""
    lo, hi = np.inf, -np.inf
    for k in nb.prange(diag.size):
        radius = coupling * (indptr[k + 1] - indptr[k])
        lo = min(lo, diag[k] - radius)
        hi = max(hi, diag[k] + radius)
    return lo, hi


@nb.njit(cache=True, parallel=True)
def chebyshev_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    n_excited: np.ndarray,
    diag: np.ndarray,
    w: complex | float,
    v: np.ndarray,
    prev: np.ndarray,
    out: np.ndarray,
    scale: float,
    keep_prev: float,
    coefs: np.ndarray,
    acc: np.ndarray,
) -> None:
    """``out = scale·(diag∘v + w·Σ_parents v + w̄·Σ_children v) − keep_prev·prev``; ``acc[t] += coefs[t]·out``.

    ``out`` may be ``prev`` (updated in place: each entry reads only its own
    ``prev``). ``w`` scales the raising couplings (parent → state); with a
    real ``w`` the vectors may be real (half the memory traffic), the sums
    ``acc`` stay complex.
    """
    wc = np.conj(w)
    n_times = coefs.size
    zero = v[0] * 0.0  # of v's type: real vectors (real H on a real state) are summed in real arithmetic
    for k in nb.prange(v.size):
        a = indptr[k]
        m = a + n_excited[k]
        up = zero
        for e in range(a, m):
            up += v[indices[e]]
        down = zero
        for e in range(m, indptr[k + 1]):
            down += v[indices[e]]
        value = scale * (diag[k] * v[k] + w * up + wc * down) - keep_prev * prev[k]
        out[k] = value
        for t in range(n_times):
            c = coefs[t]
            if c != 0:
                acc[t, k] += c * value


@nb.njit(cache=True, parallel=True)
def leaked_weight_sum(
    states: np.ndarray,
    n_excited: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    interactions: np.ndarray,
    weight: np.ndarray,
    atom_detuning: np.ndarray,
    g2: float,
) -> np.ndarray:
    """Σ over kept states k and dropped children k + j of g²·|ψ_k|²·(n_exc(k) + 1) / ((ΔE_kj − δ_j)² + g²).

    A child is dropped when atom j is not excited in k and k + j is not
    among k's kept children (read from the adjacency). ΔE_kj = Σ_{i excited
    in k} U_ij (rad/µs). ``weight`` and ``atom_detuning`` have one row per
    evaluation time; returns one sum per time.
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
            kept = np.int64(0)
            for e in range(indptr[k] + n_excited[k], indptr[k + 1]):
                kept |= states[indices[e]] ^ s
            dropped = full & ~s & ~kept
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
