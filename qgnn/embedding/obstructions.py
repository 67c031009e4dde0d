"""Cheap proofs that a graph has no exact unit-disk embedding on a device.

Four facts, each cheap to check on graphs that fit on a device:

* **Induced K1,6.** In a unit-disk graph a node cannot have six pairwise
  non-adjacent neighbours: of six points at distance ``< r`` from a centre,
  two are at most 60° apart around it, so by the law of cosines they are
  closer than ``r`` to each other and must be adjacent.
* **Packing.** Neighbours ``u, w`` of ``v`` satisfy ``d ≤ |uv|, |wv| < r``
  and ``|uw| ≥ d`` (``d`` = the device's minimum atom distance). The angle
  ``θ`` they make at ``v`` obeys ``cos θ ≤ (a² + b² − d²) / (2ab)`` with
  ``a, b ∈ [d, r]``; that bound is largest at a corner of the box, so
  ``cos θ ≤ c* = max(1/2, ρ/2, 1 − 1/(2ρ²))`` with ``ρ = r/d``. When
  ``c* < 1`` every two neighbours are at least ``θ* = arccos c*`` apart and
  ``deg v ≤ ⌊2π/θ*⌋`` (8 on AnalogDevice at Ω = 2π rad/µs, ρ ≈ 1.44).
* **Cliques.** The atoms of a ``k``-clique are pairwise closer than ``r``
  and at least ``d`` apart, so their diameter ``D`` obeys ``D_k d ≤ D < r``,
  where ``D_k`` is the least diameter of ``k`` points at unit minimum
  distance: ``D_2 = D_3 = 1``, ``D_4 = √2``, ``D_5 = (1+√5)/2``,
  ``D_6 = 2 sin 72°``, ``D_7 = 2`` (Bateman & Erdős 1951). A ``k``-clique is
  impossible when ``r/d ≤ D_k`` (on AnalogDevice at Ω = 2π rad/µs, ``k ≥ 5``).
* **No room for edges** is the case ``k = 2``: an edge needs two atoms closer
  than ``r`` but at least ``d`` apart, impossible when ``r ≤ d``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import networkx as nx

from qgnn.errors import NotEmbeddableError

CLAW_SIZE = 6
"""A node with this many pairwise non-adjacent neighbours rules out a unit-disk embedding."""

MIN_DIAMETER = {
    2: 1.0,
    3: 1.0,
    4: math.sqrt(2),
    5: (1 + math.sqrt(5)) / 2,
    6: 2 * math.sin(math.radians(72)),
    7: 2.0,
}
"""Least diameter of ``k`` points at pairwise distance ≥ 1 in the plane (Bateman–Erdős)."""


def max_clique_size(radius: float, min_distance: float) -> int | None:
    """Largest clique an exact unit-disk embedding can hold at this radius and spacing.

    Args:
        radius: blockade radius ``r`` in µm.
        min_distance: the device's minimum atom distance ``d`` in µm.

    Returns:
        ``max {k : D_k < r/d}`` (``1`` when ``r ≤ d``), or ``None`` when
        ``r/d > 2`` (no bound from the tabulated ``D_k``).
    """
    if min_distance <= 0:
        return None
    rho = radius / min_distance
    if rho > MIN_DIAMETER[7]:
        return None
    return max((k for k, diameter in MIN_DIAMETER.items() if diameter < rho), default=1)


def _clique_of_size(graph: nx.Graph, size: int) -> tuple[Hashable, ...] | None:
    for clique in nx.find_cliques(graph):
        if len(clique) >= size:
            return tuple(clique[:size])
    return None


def max_unit_disk_degree(radius: float, min_distance: float) -> int | None:
    """Largest degree a node can have in an exact unit-disk embedding (the packing bound).

    Args:
        radius: blockade radius ``r`` in µm.
        min_distance: the device's minimum atom distance ``d`` in µm.

    Returns:
        ``⌊2π/θ*⌋`` (see the module docstring), or ``None`` when the argument
        gives no bound (``d = 0`` or ``r ≥ 2d``).
    """
    if min_distance <= 0:
        return None
    rho = radius / min_distance
    cos_max = max(0.5, rho / 2, 1 - 1 / (2 * rho * rho))
    if cos_max >= 1:
        return None
    return math.floor(2 * math.pi / math.acos(cos_max) + 1e-9)


def independent_neighbours(
    graph: nx.Graph, node: Hashable, size: int = CLAW_SIZE
) -> tuple[Hashable, ...] | None:
    """Return ``size`` pairwise non-adjacent neighbours of ``node``, or ``None`` if there are none.

    Args:
        graph: an undirected simple graph.
        node: the centre node.
        size: how many independent neighbours to look for.
    """
    candidates = sorted(graph[node], key=lambda u: (graph.degree(u), repr(u)))

    def search(chosen: tuple[Hashable, ...], pool: Sequence[Hashable]) -> tuple[Hashable, ...] | None:
        if len(chosen) == size:
            return chosen
        for k, u in enumerate(pool):
            if len(chosen) + len(pool) - k < size:
                return None
            rest = [w for w in pool[k + 1 :] if w not in graph[u]]
            found = search((*chosen, u), rest)
            if found is not None:
                return found
        return None

    return search((), candidates) if len(candidates) >= size else None


def check_unit_disk_obstructions(
    graph: nx.Graph, radius: float, min_distance: float, device_name: str, where: str
) -> None:
    """Raise :class:`NotEmbeddableError` if a cheap proof shows ``graph`` is not unit-disk here.

    Args:
        graph: an undirected simple graph (already validated).
        radius: blockade radius in µm.
        min_distance: the device's minimum atom distance in µm.
        device_name: the device's name, for messages.
        where: the graph's label for messages (``graph_label(index)``).

    Raises:
        NotEmbeddableError: naming the offending node and the reason.
    """
    clique_bound = max_clique_size(radius, min_distance)
    if clique_bound == 1 and graph.number_of_edges():
        raise NotEmbeddableError(
            f"{where}: has edges, but the blockade radius {radius:.3g} µm is not larger than "
            f"{device_name}'s minimum atom distance {min_distance:.3g} µm, so no two atoms can "
            "blockade each other; lower the Rabi frequency to enlarge the radius"
        )
    bound = max_unit_disk_degree(radius, min_distance)
    for node in graph.nodes:
        degree = graph.degree(node)
        if bound is not None and degree > bound:
            raise NotEmbeddableError(
                f"{where}: node {node!r} has degree {degree}, but at most {bound} atoms fit within "
                f"the blockade radius {radius:.3g} µm of one atom at {device_name}'s minimum spacing "
                f"{min_distance:.3g} µm; no exact unit-disk embedding exists (lower the Rabi frequency "
                "to enlarge the radius, or drop edges)"
            )
        claw = independent_neighbours(graph, node)
        if claw is not None:
            leaves = ", ".join(repr(u) for u in claw)
            raise NotEmbeddableError(
                f"{where}: node {node!r} has {CLAW_SIZE} pairwise non-adjacent neighbours ({leaves}), "
                "an induced K1,6 star, which no unit-disk graph contains at any blockade radius"
            )
    if clique_bound is not None:
        clique = _clique_of_size(graph, clique_bound + 1)
        if clique is not None:
            members = ", ".join(repr(u) for u in clique)
            raise NotEmbeddableError(
                f"{where}: nodes {members} form a {len(clique)}-clique, but at most {clique_bound} atoms "
                f"{min_distance:.3g} µm apart fit pairwise within the blockade radius {radius:.3g} µm on "
                f"{device_name}; lower the Rabi frequency to enlarge the radius"
            )
