"""A dataset of graphs: indexing gives networkx graphs, slicing gives subsets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, overload

import networkx as nx
import numpy as np

from qgnn.data.checksums import sums_digest
from qgnn.data.packed import PackedGraphs, Task

if TYPE_CHECKING:
    from torch_geometric.data import Data


class GraphDataset:
    """An ordered collection of graphs from one dataset (or a subset of it).

    ``dataset[i]`` builds a fresh ``networkx.Graph`` (mutating it never changes
    the dataset); ``dataset[2:10]``, ``dataset[[0, 5]]`` or a boolean mask give
    a :class:`GraphDataset` subset. Class indices, the label vocabulary and
    ``graph.graph["index"]`` always refer to the full dataset, so they stay
    stable across subsets and ``max_nodes`` filtering.

    Each graph has nodes ``0..n-1`` in file order with attributes ``label``
    (the dataset's integer code) and ``element`` (readable name or ``None``) —
    absent for datasets without node labels (IMDB-BINARY) — and
    ``attributes`` (tuple of floats) where the dataset has node attributes.
    Edges carry ``label`` and ``bond`` where the dataset has edge labels.
    ``graph.graph`` holds ``y`` (class index or float), ``y_original``,
    ``index`` (0-based position in the file) and ``dataset`` (plus ``smiles``
    and ``compound`` for ESOL).

    Example:
        >>> from qgnn.data import load_dataset
        >>> mutag = load_dataset("MUTAG", max_nodes=12)
        >>> len(mutag), mutag[0].graph["index"]
        (29, 4)
    """

    def __init__(self, packed: PackedGraphs, indices: np.ndarray | None = None) -> None:
        """Wrap ``packed`` (all graphs of a dataset), keeping the graphs at ``indices`` (default all)."""
        self._packed = packed
        if indices is None:
            indices = np.arange(packed.num_graphs, dtype=np.int64)
        self._indices = np.asarray(indices, dtype=np.int64)
        self._indices.setflags(write=False)

    @property
    def name(self) -> str:
        """Canonical dataset name, e.g. ``"MUTAG"``."""
        return self._packed.name

    @property
    def task(self) -> Task:
        """``"classification"`` or ``"regression"``."""
        return self._packed.task

    @property
    def indices(self) -> np.ndarray:
        """Positions of this subset's graphs in the original file (0-based)."""
        return self._indices.copy()

    @property
    def y(self) -> np.ndarray:
        """Targets: class index ``0..K-1`` (int64) or float target (float64)."""
        return self._packed.y[self._indices]

    @property
    def classes(self) -> tuple[int, ...]:
        """Original class labels, ordered by class index (empty for regression)."""
        return tuple(self._packed.classes.tolist())

    @property
    def num_classes(self) -> int | None:
        """Number of classes of the full dataset, ``None`` for regression."""
        return None if self.task == "regression" else len(self._packed.classes)

    @property
    def num_nodes(self) -> np.ndarray:
        """Node count of each graph."""
        return self._packed.num_nodes[self._indices]

    @property
    def node_label_names(self) -> dict[int, str] | None:
        """Node code → readable name (atom symbol), where the dataset documents it."""
        return _copy(self._packed.node_label_names)

    @property
    def edge_label_names(self) -> dict[int, str] | None:
        """Edge code → readable bond name, where the dataset documents it."""
        return _copy(self._packed.edge_label_names)

    @property
    def num_node_labels(self) -> int | None:
        """Width of the node one-hot ``x`` (codes are column indices); ``None`` if unlabelled."""
        return self._packed.num_node_labels

    @property
    def num_edge_labels(self) -> int | None:
        """Width of the edge one-hot ``edge_attr``; ``None`` if edges are unlabelled."""
        return self._packed.num_edge_labels

    @property
    def source(self) -> Path | None:
        """The folder the dataset's files were read from."""
        return self._packed.source

    @property
    def checksums(self) -> dict[str, str]:
        """File name → SHA-256 (hex) of the bytes that were read and parsed."""
        return dict(self._packed.checksums)

    @property
    def sha256(self) -> str:
        """One SHA-256 (hex) of everything read: the digest of :attr:`checksums` as ``sha256sum`` lines.

        Two loads give the same value exactly when they read the same bytes
        under the same file names; subsets share their full dataset's value.
        """
        return sums_digest(self._packed.checksums)

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, key: int | np.integer) -> nx.Graph: ...

    @overload
    def __getitem__(self, key: slice | np.ndarray | list[int] | range) -> GraphDataset: ...

    def __getitem__(self, key: object) -> nx.Graph | GraphDataset:
        if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
            position = int(key)
            if not -len(self) <= position < len(self):
                raise IndexError(self._out_of_range(position))
            return self._graph(int(self._indices[position]))
        if isinstance(key, slice):
            return GraphDataset(self._packed, self._indices[key])
        if isinstance(key, np.ndarray | list | tuple | range):
            array = np.asarray(key)
            if array.dtype == np.bool_:
                if array.shape != (len(self),):
                    raise IndexError(f"{self.name}: mask of shape {array.shape}, expected ({len(self)},)")
                return GraphDataset(self._packed, self._indices[array])
            if array.size == 0:
                return GraphDataset(self._packed, self._indices[:0])
            if array.ndim == 1 and np.issubdtype(array.dtype, np.integer):
                bad = array[(array < -len(self)) | (array >= len(self))]
                if bad.size:
                    raise IndexError(self._out_of_range(int(bad[0])))
                return GraphDataset(self._packed, self._indices[array])
        raise TypeError(
            f"{self.name}: index with an int, a slice, or a 1-D array of ints or booleans, "
            f"not {type(key).__name__}"
        )

    def _out_of_range(self, position: int) -> str:
        return f"{self.name}: graph position {position} out of range for {len(self)} graphs"

    def __iter__(self) -> Iterator[nx.Graph]:
        for index in self._indices.tolist():
            yield self._graph(index)

    def _graph(self, index: int) -> nx.Graph:
        return self._packed.graph(index, self._packed.y[index].item())

    def filter(self, predicate: Callable[[nx.Graph], bool]) -> GraphDataset:
        """Return the subset of graphs for which ``predicate(graph)`` is true.

        Args:
            predicate: called once per graph with a fresh ``networkx.Graph``.
        """
        keep = [index for index, graph in zip(self._indices.tolist(), self, strict=True) if predicate(graph)]
        return GraphDataset(self._packed, np.array(keep, dtype=np.int64))

    def to_pyg(self) -> list[Data]:
        """Convert every graph with :func:`qgnn.data.to_pyg`.

        Each graph carries the dataset-wide label vocabulary, so ``x`` has
        :attr:`num_node_labels` columns and ``edge_attr`` :attr:`num_edge_labels`
        columns for every graph, and the list batches.
        """
        from qgnn.data.convert import to_pyg

        return [to_pyg(graph) for graph in self]

    def __repr__(self) -> str:
        total = self._packed.num_graphs
        size = f"{len(self)}" if len(self) == total else f"{len(self)} of {total}"
        kind = f"{self.num_classes} classes" if self.task == "classification" else "regression"
        return f"GraphDataset({self.name!r}, graphs={size}, {kind})"


def _copy(mapping: Mapping[int, str] | None) -> dict[int, str] | None:
    return None if mapping is None else dict(mapping)
