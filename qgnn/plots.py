"""Plots people would rather look at than read: kernels and confusion matrices.

Every function draws on a ``matplotlib.figure.Figure`` (matplotlib's object
API: no ``pyplot`` state, no backend switch, so notebooks keep showing their own
pyplot figures), writes a PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix


def kernel_heatmap(
    kernel: np.ndarray, y: Sequence[int] | np.ndarray, path: Path, *, title: str = "kernel"
) -> Path:
    """Heatmap of a Gram matrix with graphs ordered by class; class boundaries drawn."""
    y_arr = np.asarray(y)
    order = np.argsort(y_arr, kind="stable")
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    image = ax.imshow(
        kernel[np.ix_(order, order)], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    bounds = np.flatnonzero(np.diff(y_arr[order])) + 0.5
    for b in bounds:
        ax.axhline(b, color="white", lw=1)
        ax.axvline(b, color="white", lw=1)
    ax.set_title(f"{title} (graphs ordered by class)")
    ax.set_xlabel("graph")
    ax.set_ylabel("graph")
    fig.colorbar(image, ax=ax, label="K(G, G')")
    return _save(fig, path)


def confusion_plot(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str], path: Path, *, title: str
) -> Path:
    """Confusion matrix (counts summed over all outer folds)."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
