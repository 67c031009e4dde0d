r"""Embedding onto a device's pre-calibrated traps (a QPU that accepts no new layouts).

When a device accepts only its ``pre_calibrated_layouts``, atoms can sit on
those traps only. At blockade radius ``r`` the traps form a unit-disk graph
``T_r`` (traps closer than ``r`` are adjacent), and a graph ``G`` is realised
exactly by a set of traps iff ``G`` is isomorphic to the subgraph of ``T_r``
*induced* by them: every edge of ``G`` closer than ``r``, every non-edge
farther. :func:`find_trap_subset` searches for one depth-first with forward
checking on bit sets of traps, starting from one trap per symmetry orbit of the
layout, in a fixed order and within a step budget, so the answer is
deterministic (of the 423 PTC_FM and MUTAG graphs of ≤ 20 nodes on a 61-trap
lattice, with Ω adjusted, 4 stayed undecided: ``benchmarks/embedding_quality.py``).

``T_r`` changes only when ``r`` crosses a distance between two traps: on a
triangular lattice of spacing ``a`` the shells are ``a, √3a, 2a, √7a, …``, and
any ``a < r < √3a`` gives the triangular lattice graph. :func:`place_on_calibrated_layouts`
tries the requested Ω first and, when asked, one radius in each other gap
between shells that the Rydberg channel can reach (``r = (C6/Ω)^{1/6}`` with
``min_avg_amp < Ω ≤ max_amp``): the gap's geometric centre, clipped to the
reachable range, nearest the requested radius first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import pulser
from pulser.devices import Device
from pulser.register import RegisterLayout
from scipy.spatial import cKDTree

from qgnn.embedding.layouts import layout_fits
from qgnn.embedding.quality import pair_distances
from qgnn.errors import NotEmbeddableError

SEARCH_BUDGET = 200_000
"""Placements tried per layout and radius before the search gives up (undecided, reported as such)."""

MAX_RADII = 12
"""Most blockade radii (one per gap between trap-distance shells) tried when Ω may be adjusted."""

_SHELL_DECIMALS = 6  # trap distances equal to 1e-6 µm (Pulser's coordinate precision) share a shell


def uses_calibrated_layouts(device: object) -> bool:
    """True when ``device`` needs a layout and accepts only its pre-calibrated ones."""
    return isinstance(device, Device) and device.requires_layout and not device.accepts_new_layouts


@dataclass(frozen=True)
class TrapSearch:
    """Outcome of :func:`find_trap_subset` for one graph, layout and radius.

    Attributes:
        traps: the trap index of each graph node (node order), or ``None`` when none was found.
        steps: placements tried.
        exhausted: the step budget ran out before the search was complete.
    """

    traps: tuple[int, ...] | None
    steps: int
    exhausted: bool


def _symmetry_representatives(traps: np.ndarray) -> np.ndarray:
    """One trap per orbit of the layout's symmetries (rotations and reflections about its centroid).

    Any trap subset can be moved by a symmetry so that a chosen node lands on
    its orbit's representative, so the search may start there only. Tried:
    rotations by multiples of 30° and 45° and the reflections composed with
    them. Representatives are ordered by distance to the centroid, then index.
    """
    centred = traps - traps.mean(axis=0)
    scale = max(float(np.max(np.abs(centred))), 1.0)
    tree = cKDTree(centred)
    parent = list(range(len(traps)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    angles = sorted({round(k * step, 9) % 360 for step in (30, 45) for k in range(12)})
    for angle in angles:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        for mirror in (1.0, -1.0):
            moved = centred @ np.array([[c, s], [-s, c]]) * np.array([1.0, mirror])
            distance, image = tree.query(moved)
            if np.max(distance) > 1e-6 * scale:
                continue
            for i, j in enumerate(image):
                parent[root(i)] = root(int(j))
    orbits: dict[int, list[int]] = {}
    for i in range(len(traps)):
        orbits.setdefault(root(i), []).append(i)
    radius = np.linalg.norm(centred, axis=1)
    firsts = [min(members, key=lambda i: (round(float(radius[i]), 6), i)) for members in orbits.values()]
    return np.array(sorted(firsts, key=lambda i: (round(float(radius[i]), 6), i)), dtype=int)


class _BudgetSpent(Exception):
    """The search examined ``budget`` placements without deciding."""


def find_trap_subset(
    adjacency: np.ndarray, traps: np.ndarray, radius: float, budget: int = SEARCH_BUDGET
) -> TrapSearch:
    """Traps whose blockade graph at ``radius`` is exactly the graph ``adjacency`` (induced).

    Depth-first search with forward checking over bit sets of traps: every
    unplaced node keeps the traps it may still take (unused, trap degree ≥ its
    degree, adjacent to the traps of its placed neighbours and to no other
    placed trap); a placement that empties a set is undone. The next node is
    the one with the fewest traps left (ties: higher degree, then lower
    index), a candidate trap needs enough free neighbour traps for the node's
    unplaced neighbours, and the first node only tries one trap per symmetry
    orbit of the layout (:func:`_symmetry_representatives`). Traps are tried
    nearest the layout's centre first.

    Args:
        adjacency: ``(n, n)`` boolean adjacency matrix of the graph.
        traps: ``(m, 2)`` trap coordinates in µm.
        radius: blockade radius in µm (traps closer than it are adjacent).
        budget: placements tried before giving up.

    Returns:
        The :class:`TrapSearch` (deterministic).
    """
    n = len(adjacency)
    centrality = np.argsort(np.linalg.norm(traps - traps.mean(axis=0), axis=1), kind="stable")
    rank = np.empty(len(traps), dtype=int)
    rank[centrality] = np.arange(len(traps))  # bit k of a trap set = the k-th most central trap
    trap_adj = pair_distances(traps[centrality]) < radius
    np.fill_diagonal(trap_adj, False)
    near = [sum(1 << int(j) for j in np.flatnonzero(row)) for row in trap_adj]
    trap_degree = trap_adj.sum(axis=1)
    degree = adjacency.sum(axis=1)
    linked = [[bool(x) for x in row] for row in adjacency]
    domains: list[int] = [
        sum(1 << int(j) for j in np.flatnonzero(trap_degree >= degree[v])) for v in range(n)
    ]
    first = max(range(n), key=lambda v: (degree[v], -v))
    domains[first] &= sum(1 << int(rank[i]) for i in _symmetry_representatives(traps))
    image: dict[int, int] = {}
    steps = 0

    def extend(domains: list[int], used: int) -> bool:
        nonlocal steps
        left = [v for v in range(n) if v not in image]
        if not left:
            return True
        v = min(left, key=lambda u: (domains[u].bit_count(), -degree[u], u))
        waiting = sum(1 for w in left if linked[v][w])
        options = domains[v]
        while options:
            bit = options & -options
            options ^= bit
            trap = bit.bit_length() - 1
            if (near[trap] & ~used).bit_count() < waiting:
                continue
            steps += 1
            if steps > budget:
                raise _BudgetSpent
            narrowed = list(domains)
            for w in left:
                if w != v:
                    narrowed[w] &= ~bit & (near[trap] if linked[v][w] else ~near[trap])
                    if not narrowed[w]:
                        break
            else:
                image[v] = trap
                if extend(narrowed, used | bit):
                    return True
                del image[v]
        return False

    try:
        found = extend(domains, 0)
    except _BudgetSpent:
        return TrapSearch(None, budget, True)
    if not found:
        return TrapSearch(None, steps, False)
    return TrapSearch(tuple(int(centrality[image[v]]) for v in range(n)), steps, False)


def _shells(traps: np.ndarray) -> np.ndarray:
    """Distinct distances between traps (µm), ascending."""
    iu = np.triu_indices(len(traps), k=1)
    return np.unique(np.round(pair_distances(traps)[iu], _SHELL_DECIMALS))


def _rabi_limits(device: Device) -> tuple[float, float]:
    """``(min_avg_amp, max_amp)`` in rad/µs of the global Rydberg channels (``inf``: unbounded)."""
    channels = [ch for ch in device.channel_objects if ch.basis == "ground-rydberg"]
    global_ = [ch for ch in channels if ch.addressing == "Global"] or channels
    low = min((float(ch.min_avg_amp) for ch in global_), default=0.0)
    high = max((math.inf if ch.max_amp is None else float(ch.max_amp) for ch in global_), default=math.inf)
    return low, high


def candidate_radii(
    device: Device, traps: np.ndarray, rabi_frequency: float, adjust: bool, margin: float
) -> list[tuple[float, float]]:
    """Blockade radii to try on ``traps``: ``[(radius µm, Ω rad/µs), ...]``, requested Ω first.

    The requested radius comes first unless it falls on a trap-distance shell
    (ambiguous). With ``adjust``, one radius per other gap ``(s_k, s_{k+1})``
    between shells follows: the gap's geometric centre (``s_1/(1+margin)``
    below the first shell, ``s_last/(1−margin)`` above the last), clipped to
    the radii the channel reaches with ``min_avg_amp < Ω ≤ max_amp``, nearest
    the requested radius (in log scale) first, at most :data:`MAX_RADII` in all.
    """
    c6 = float(device.interaction_coeff)
    requested = float(device.rydberg_blockade_radius(rabi_frequency))
    shells = _shells(traps)
    bounds = np.concatenate([[0.0], shells, [math.inf]])
    gap_of_request = int(np.searchsorted(shells, requested))
    on_shell = bool(shells.size) and float(np.min(np.abs(shells - requested))) <= 10.0**-_SHELL_DECIMALS
    radii = [] if on_shell else [(requested, float(rabi_frequency))]
    if not adjust:
        return radii
    low_amp, high_amp = _rabi_limits(device)
    r_min = 0.0 if math.isinf(high_amp) else (c6 / high_amp) ** (1 / 6)
    r_max = math.inf if low_amp <= 0 else (c6 / low_amp) ** (1 / 6)
    options: list[tuple[float, float, float]] = []
    for gap, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        if gap == gap_of_request and not on_shell:
            continue  # the requested radius already stands for this gap
        if lo == 0.0:
            target = hi / (1 + margin)
        elif math.isinf(hi):
            target = lo / (1 - margin)
        else:
            target = math.sqrt(lo * hi)
        r = min(max(target, r_min), r_max * (1 - 1e-6))
        if not lo < r < hi:
            continue
        omega = min(c6 / r**6, high_amp)
        r = float(device.rydberg_blockade_radius(omega))
        if lo < r < hi and omega > low_amp:
            options.append((abs(math.log(r / requested)), r, omega))
    options.sort()
    radii.extend((r, omega) for _, r, omega in options)
    return radii[:MAX_RADII]


@dataclass(frozen=True, eq=False)
class CalibratedPlacement:
    """Graph nodes placed on a pre-calibrated layout's traps.

    Attributes:
        register: the register on the calibrated layout, qubit ``k`` = node ``k``.
        layout: the calibrated layout used.
        blockade_radius: the radius (µm) at which the traps' blockade graph is the graph.
        rabi_frequency: the Ω (rad/µs) giving that radius.
    """

    register: pulser.Register
    layout: RegisterLayout
    blockade_radius: float
    rabi_frequency: float


def place_on_calibrated_layouts(
    adjacency: np.ndarray,
    qubit_ids: tuple[str, ...],
    device: Device,
    rabi_frequency: float,
    *,
    adjust: bool,
    margin: float,
    where: str,
    budget: int = SEARCH_BUDGET,
) -> CalibratedPlacement:
    """Place the graph on one of ``device.pre_calibrated_layouts`` so its blockade graph is the graph.

    Layouts are tried in the device's order, and on each the radii of
    :func:`candidate_radii`; the first trap subset found wins.

    Args:
        adjacency: ``(n, n)`` boolean adjacency matrix in node order.
        qubit_ids: the qubit id of each node.
        device: a device that accepts only its pre-calibrated layouts.
        rabi_frequency: the requested Ω in rad/µs.
        adjust: also try other Ω within the channel's limits.
        margin: relative margin used to centre adjusted radii in their gaps.
        where: the graph's label for messages.
        budget: search steps per layout and radius.

    Raises:
        NotEmbeddableError: the device lists no calibrated layout, none can
            hold the atoms, or no trap subset realises the graph at the radii
            tried (the message names the graph, the layouts and the radii).
    """
    n = len(qubit_ids)
    shape = f"{where} ({n} nodes, {int(np.triu(adjacency, 1).sum())} edges)"
    if not device.pre_calibrated_layouts:
        raise NotEmbeddableError(
            f"{shape}: {device.name} accepts no new register layouts and lists no pre-calibrated ones; "
            "use a device that accepts new layouts"
        )
    tried: list[str] = []
    for layout in device.pre_calibrated_layouts:
        name = str(layout)  # its slug, else Pulser's RegisterLayout_<hash>
        if not layout_fits(n, layout.number_of_traps, device):
            tried.append(f"{name}: {layout.number_of_traps} traps cannot hold {n} atoms on {device.name}")
            continue
        traps = np.asarray(layout.sorted_coords, dtype=float)
        attempts = []
        for radius, omega in candidate_radii(device, traps, rabi_frequency, adjust, margin):
            found = find_trap_subset(adjacency, traps, radius, budget)
            if found.traps is not None:
                register = layout.define_register(*found.traps, qubit_ids=qubit_ids)
                return CalibratedPlacement(cast(pulser.Register, register), layout, radius, omega)
            attempts.append(
                f"r = {radius:.3f} µm (Ω = {omega:.4g} rad/µs)"
                + (f", search stopped after {found.steps} steps" if found.exhausted else "")
            )
        tried.append(f"{name} at " + ("; ".join(attempts) if attempts else "no radius off the trap shells"))
    hint = (
        "" if adjust else "; pass adjust_rabi_frequency=True to also try other Ω within the channel's limits"
    )
    raise NotEmbeddableError(
        f"{shape}: no subset of {device.name}'s pre-calibrated traps realises the graph as a blockade "
        f"graph — tried {' | '.join(tried)}{hint}"
    )
