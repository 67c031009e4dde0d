"""Canonical node order and automorphisms of a small labelled graph.

The embedding optimiser starts from node-order-dependent layouts, so two
relabellings of one graph would get different (equally valid) registers and
hence different measurements. The :class:`~qgnn.features.FeaturePipeline`
therefore embeds every graph in its canonical order (isomorphic graphs get the
same register and share cache entries), and
:class:`~qgnn.nn.QuantumFeatures` also averages the measured
moments over the graph's automorphisms (:func:`orbit_average`): a register
breaks the graph's symmetry slightly, and averaging over the equivalent
registers restores it, so that relabelling the input permutes ``x_q``/``pe_q``
exactly and leaves ``hist_q`` unchanged.

The search is the individualisation–refinement scheme behind nauty, in plain
Python for small graphs: colour refinement (1-WL) from the node labels; while
some colour class holds several nodes, branch on each node of the first such
class (individualise it, refine), skipping twins (nodes with the same open or
closed neighbourhood, which an automorphism swaps); keep the leaf whose
relabelled graph has the largest certificate. The tree and the certificates
depend only on the graph, not on its node names, so the order is canonical.
Leaves with the same certificate differ by an automorphism; those, with the
twin swaps, generate the automorphism group. Past ``max_leaves`` leaves the
search stops with the best order so far: deterministic, but then neither the
order nor the group is guaranteed complete (:attr:`CanonicalForm.complete`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from qgnn.errors import InvalidInputError

#: Leaves explored before the search stops with its best order so far.
MAX_LEAVES = 4096


@dataclass(frozen=True)
class CanonicalForm:
    """A graph's canonical order and automorphism generators.

    Attributes:
        order: ``order[k]`` = the original node at canonical position ``k``.
        generators: automorphisms of the canonically relabelled graph, each a
            permutation ``p`` of ``0..n-1`` (node ``k`` ↦ ``p[k]``); together
            they generate its automorphism group (when ``complete``).
        complete: False when the search stopped at ``max_leaves``.
    """

    order: tuple[Hashable, ...]
    generators: tuple[tuple[int, ...], ...]
    complete: bool


def _refine(colours: list[int], adjacency: list[list[int]]) -> list[int]:
    """Equitable refinement: split colour classes by the multiset of neighbour colours."""
    count = len(set(colours))
    while True:
        signatures = [
            (colours[v], tuple(sorted(colours[u] for u in nbrs))) for v, nbrs in enumerate(adjacency)
        ]
        rank = {s: i for i, s in enumerate(sorted(set(signatures)))}
        colours = [rank[s] for s in signatures]
        if len(rank) == count:
            return colours
        count = len(rank)


def canonical_form(
    graph: nx.Graph, *, node_attr: str = "label", max_leaves: int = MAX_LEAVES
) -> CanonicalForm:
    """Canonical order and automorphism generators of ``graph``.

    Two graphs isomorphic by a map that preserves ``node_attr`` get orders
    that the isomorphism maps onto each other, up to an automorphism (exact
    while the search stays under ``max_leaves``).

    Args:
        graph: an undirected networkx graph.
        node_attr: node attribute that automorphisms preserve (absent = ``None``).
        max_leaves: leaves explored before stopping (default 4096).

    Example:
        >>> import networkx as nx
        >>> form = canonical_form(nx.path_graph(3))
        >>> form.order, form.generators  # the middle node last; the two ends swap
        ((0, 2, 1), ((1, 0, 2),))
    """
    if isinstance(max_leaves, bool) or not isinstance(max_leaves, int) or max_leaves < 1:
        raise InvalidInputError(f"max_leaves must be a positive integer, got {max_leaves!r}")
    nodes = list(graph.nodes)
    n = len(nodes)
    if n == 0:
        return CanonicalForm((), (), True)
    where = {v: i for i, v in enumerate(nodes)}
    adjacency = [[where[u] for u in graph.adj[v] if u != v] for v in nodes]
    values = [graph.nodes[v].get(node_attr) for v in nodes]
    vocabulary = sorted({(type(x).__name__, repr(x)) for x in values})
    rank = {key: i for i, key in enumerate(vocabulary)}
    labels = [rank[(type(x).__name__, repr(x))] for x in values]
    edges = [(where[u], where[v]) for u, v in graph.edges if u != v]

    leaves: list[tuple[tuple, list[int]]] = []
    twin_swaps: list[tuple[int, int]] = []

    def visit(colours: list[int]) -> None:
        if len(leaves) >= max_leaves:
            return
        if len(set(colours)) == n:
            order = sorted(range(n), key=colours.__getitem__)
            cert = (
                tuple(labels[v] for v in order),
                tuple(sorted((min(colours[a], colours[b]), max(colours[a], colours[b])) for a, b in edges)),
            )
            leaves.append((cert, order))
            return
        sizes: dict[int, int] = {}
        for c in colours:
            sizes[c] = sizes.get(c, 0) + 1
        target = min(c for c, size in sizes.items() if size > 1)
        representative: dict[frozenset[int], int] = {}
        for v in range(n):
            if colours[v] != target:
                continue
            keys = (frozenset(adjacency[v]), frozenset(adjacency[v]) | {v})
            twin = next((representative[k] for k in keys if k in representative), None)
            if twin is not None:  # swapping twins is an automorphism fixing the path: same subtree
                twin_swaps.append((twin, v))
                continue
            for key in keys:
                representative[key] = v
            split = [2 * c for c in colours]
            split[v] = 2 * target - 1
            visit(_refine(split, adjacency))

    visit(_refine(labels, adjacency))
    best_cert = max(cert for cert, _ in leaves)
    best = [order for cert, order in leaves if cert == best_cert]
    position = np.empty(n, dtype=np.int64)
    position[best[0]] = np.arange(n)
    generators: set[tuple[int, ...]] = set()
    for order in best[1:]:  # node best[0][k] ↦ order[k], in canonical positions
        generators.add(tuple(int(k) for k in position[order]))
    for a, b in twin_swaps:
        perm = list(range(n))
        perm[position[a]], perm[position[b]] = int(position[b]), int(position[a])
        generators.add(tuple(perm))
    return CanonicalForm(
        order=tuple(nodes[i] for i in best[0]),
        generators=tuple(sorted(generators)),
        complete=len(leaves) < max_leaves,
    )


def canonical_relabel(graph: nx.Graph, form: CanonicalForm) -> tuple[nx.Graph, dict[Hashable, int]]:
    """Copy of ``graph`` on nodes ``0..n-1`` in canonical order, nodes and edges inserted sorted.

    Args:
        graph: an undirected networkx graph (attributes are kept).
        form: its :func:`canonical_form`.

    Returns:
        The relabelled graph and the map ``original node → canonical node``.
    """
    mapping = {v: k for k, v in enumerate(form.order)}
    out = nx.Graph(**graph.graph)
    out.add_nodes_from((k, dict(graph.nodes[v])) for k, v in enumerate(form.order))
    ends = sorted(
        (min(mapping[u], mapping[v]), max(mapping[u], mapping[v]), dict(attrs))
        for u, v, attrs in graph.edges(data=True)
    )
    out.add_edges_from(ends)
    return out, mapping


def _orbit_labels(size: int, maps: list[np.ndarray]) -> np.ndarray:
    """Smallest element of each point's orbit under the group generated by ``maps``."""
    labels = np.arange(size)
    while True:
        before = labels
        for m in maps:
            labels = np.minimum(labels, labels[m])
            np.minimum.at(labels, m, labels.copy())
        if np.array_equal(labels, before):
            return labels


def orbit_average(
    occupations: np.ndarray, correlations: np.ndarray, generators: tuple[tuple[int, ...], ...]
) -> tuple[np.ndarray, np.ndarray]:
    r"""Average ⟨n_i⟩ and ⟨n_i n_j⟩ over the automorphism group generated by ``generators``.

    :math:`\bar n_i = \frac{1}{|G|}\sum_{g\in G} \langle n_{g(i)}\rangle` and
    :math:`\overline{nn}_{ij} = \frac{1}{|G|}\sum_{g} \langle n_{g(i)} n_{g(j)}\rangle`
    — the moments of a uniform mixture of the |G| equivalent registers; each
    equals the mean over the orbit of ``i`` (of the pair ``(i, j)``).

    Args:
        occupations: ⟨n_i⟩, shape ``(T, n)``.
        correlations: ⟨n_i n_j⟩, shape ``(T, n, n)``.
        generators: permutations of ``0..n-1``.

    Returns:
        The averaged occupations and correlations, same shapes.
    """
    if not generators:
        return occupations, correlations
    n = occupations.shape[1]
    perms = [np.asarray(g, dtype=np.int64) for g in generators]
    nodes = _orbit_labels(n, perms)
    pairs = _orbit_labels(n * n, [(p[:, None] * n + p[None, :]).ravel() for p in perms])

    def mean(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
        counts = np.bincount(labels, minlength=labels.size)
        sums = np.stack([np.bincount(labels, weights=row, minlength=labels.size) for row in values])
        return sums[:, labels] / counts[labels]

    occ = mean(occupations, nodes)
    corr = mean(correlations.reshape(len(correlations), n * n), pairs).reshape(correlations.shape)
    return occ, corr
