"""How well atom positions realise a graph as a unit-disk graph.

A register realises graph ``G`` exactly at blockade radius ``r`` when every
edge is shorter than ``r`` (the two atoms blockade each other) and every
non-edge is longer than ``r`` (they do not): ``(u, v) ∈ E ⇔ |x_u − x_v| < r``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EmbeddingQuality:
    """Unit-disk quality of an embedding, measured on the final atom positions.

    Attributes:
        n_edges: number of graph edges.
        edges_inside: edges whose atoms are closer than the blockade radius.
        n_non_edges: number of node pairs that are not edges.
        non_edges_outside: non-edges whose atoms are farther than the blockade radius.
        edge_margin: blockade radius − longest edge, in µm (``None`` without edges);
            negative when an edge is too long.
        non_edge_margin: shortest non-edge − blockade radius, in µm (``None``
            for a complete graph); negative when a non-edge is too short.
        min_distance: smallest distance between two atoms, in µm (``None`` for one atom).
        is_exact: every edge is inside and every non-edge outside the radius,
            so the Rydberg blockade graph of the register is the input graph.
        violated_pairs: node pairs breaking the unit-disk condition (too-long
            edges and too-short non-edges), in qubit order.
    """

    n_edges: int
    edges_inside: int
    n_non_edges: int
    non_edges_outside: int
    edge_margin: float | None
    non_edge_margin: float | None
    min_distance: float | None
    is_exact: bool
    violated_pairs: tuple[tuple[Hashable, Hashable], ...]

    @property
    def n_violations(self) -> int:
        """Number of node pairs breaking the unit-disk condition."""
        return len(self.violated_pairs)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict of the numbers (violated pairs as ``[repr(u), repr(v)]``)."""
        return {
            "n_edges": self.n_edges,
            "edges_inside": self.edges_inside,
            "n_non_edges": self.n_non_edges,
            "non_edges_outside": self.non_edges_outside,
            "edge_margin_um": self.edge_margin,
            "non_edge_margin_um": self.non_edge_margin,
            "min_distance_um": self.min_distance,
            "is_exact": self.is_exact,
            "violated_pairs": [[repr(u), repr(v)] for u, v in self.violated_pairs],
        }


def pair_distances(positions: np.ndarray) -> np.ndarray:
    """Return the ``(n, n)`` matrix of distances between the rows of ``positions`` (µm)."""
    diff = positions[:, None, :] - positions[None, :, :]
    return np.sqrt(np.sum(diff * diff, axis=-1))


def assess(
    positions: np.ndarray,
    adjacency: np.ndarray,
    radius: float,
    node_ids: Sequence[Hashable],
) -> EmbeddingQuality:
    """Measure how well ``positions`` realise the graph ``adjacency`` at blockade radius ``radius``.

    Args:
        positions: ``(n, 2)`` atom positions in µm, row ``k`` = qubit ``k``.
        adjacency: ``(n, n)`` symmetric boolean adjacency matrix in the same order.
        radius: Rydberg blockade radius in µm.
        node_ids: the graph node of each row, used to name violated pairs.

    Returns:
        The :class:`EmbeddingQuality` of the positions.
    """
    n = len(positions)
    iu, ju = np.triu_indices(n, k=1)
    dist = pair_distances(positions)[iu, ju]
    is_edge = adjacency[iu, ju].astype(bool)
    edge_d, non_edge_d = dist[is_edge], dist[~is_edge]
    bad = np.where(is_edge, dist >= radius, dist <= radius)
    return EmbeddingQuality(
        n_edges=int(is_edge.sum()),
        edges_inside=int(np.sum(edge_d < radius)),
        n_non_edges=int((~is_edge).sum()),
        non_edges_outside=int(np.sum(non_edge_d > radius)),
        edge_margin=float(radius - edge_d.max()) if edge_d.size else None,
        non_edge_margin=float(non_edge_d.min() - radius) if non_edge_d.size else None,
        min_distance=float(dist.min()) if dist.size else None,
        is_exact=not bool(bad.any()),
        violated_pairs=tuple(
            (node_ids[int(i)], node_ids[int(j)]) for i, j in zip(iu[bad], ju[bad], strict=True)
        ),
    )
