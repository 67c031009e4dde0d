"""Matplotlib drawing of an :class:`~qgnn.embedding.Embedding` (object API only, no pyplot)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.patches import Circle

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from qgnn.embedding.embedder import Embedding


def draw_embedding(embedding: Embedding, ax: Axes | None = None) -> Figure:
    """Draw ``embedding``; see :meth:`Embedding.draw`.

    Args:
        embedding: the embedding to draw.
        ax: axes to draw on; a new ``Figure`` is made when ``None``.

    Returns:
        The figure holding ``ax``.
    """
    if ax is None:
        figure = Figure(figsize=(6, 6))
        ax = figure.add_subplot()
    else:
        parent = ax.get_figure()
        if not isinstance(parent, Figure):
            raise TypeError("ax must belong to a matplotlib Figure")
        figure = parent
    pos = embedding.positions
    radius = embedding.blockade_radius
    index = {u: k for k, u in enumerate(embedding.node_ids)}
    for x, y in pos:
        ax.add_patch(
            Circle((x, y), radius / 2, facecolor="tab:blue", alpha=0.12, edgecolor="tab:blue", lw=0.5)
        )
    for a, b in embedding.edges:
        ax.plot(pos[[a, b], 0], pos[[a, b], 1], color="0.4", lw=1.2, zorder=1)
    edge_set = set(embedding.edges)
    for u, v in embedding.quality.violated_pairs:
        a, b = sorted((index[u], index[v]))
        style = "-" if (a, b) in edge_set else "--"
        ax.plot(pos[[a, b], 0], pos[[a, b], 1], color="red", lw=2.0, ls=style, zorder=2)
    ax.scatter(pos[:, 0], pos[:, 1], s=60, color="tab:blue", zorder=3)
    for (x, y), qubit in zip(pos, embedding.qubit_ids, strict=True):
        ax.annotate(qubit, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    limit = embedding.device.max_radial_distance
    if limit is not None:
        ax.add_patch(Circle((0, 0), limit, fill=False, ls=":", color="0.5"))
    state = "exact" if embedding.is_exact else f"approximate, {embedding.quality.n_violations} violated"
    ax.set_title(f"{embedding.device_name}, r = {radius:.2f} µm ({state})")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    low, high = pos.min(axis=0) - radius, pos.max(axis=0) + radius
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    return figure
