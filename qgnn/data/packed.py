"""Compact in-memory form of a whole dataset, from which networkx graphs are built.

All graphs of a dataset live in a few flat numpy arrays (CSR style): graph
``i`` owns nodes ``node_ptr[i]:node_ptr[i+1]`` and edges
``edge_ptr[i]:edge_ptr[i+1]``. The arrays are read-only and shared between
a dataset and its subsets; each access builds a fresh ``networkx.Graph``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np

Task = Literal["classification", "regression"]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class PackedGraphs:
    """Every graph of one dataset, packed into flat arrays.

    Attributes:
        name: canonical dataset name, e.g. ``"MUTAG"``.
        task: ``"classification"`` or ``"regression"``.
        node_ptr: ``(N+1,)`` offsets of each graph's nodes.
        edge_ptr: ``(N+1,)`` offsets of each graph's undirected edges.
        edges: ``(E, 2)`` endpoints, local to their graph (0-based).
        y_original: ``(N,)`` targets as in the file (int class labels or floats).
        node_label: ``(n,)`` integer node codes, or ``None`` when unlabelled.
        edge_label: ``(E,)`` integer edge codes, or ``None`` when unlabelled.
        node_attributes: ``(n, k)`` float node attributes, or ``None``.
        node_label_names: node code → readable name, where documented.
        edge_label_names: edge code → readable name, where documented.
        graph_extras: extra per-graph values put into ``graph.graph``
            (e.g. ``{"smiles": (...)}``), each a tuple of length N.
        source: the folder the files were read from.
        checksums: file name → SHA-256 (hex) of the bytes that were parsed.
    """

    name: str
    task: Task
    node_ptr: np.ndarray
    edge_ptr: np.ndarray
    edges: np.ndarray
    y_original: np.ndarray
    node_label: np.ndarray | None = None
    edge_label: np.ndarray | None = None
    node_attributes: np.ndarray | None = None
    node_label_names: Mapping[int, str] | None = None
    edge_label_names: Mapping[int, str] | None = None
    graph_extras: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    source: Path | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "node_ptr",
            "edge_ptr",
            "edges",
            "y_original",
            "node_label",
            "edge_label",
            "node_attributes",
        ):
            value = getattr(self, name)
            if value is not None:
                _frozen(value)

    @property
    def num_graphs(self) -> int:
        """Number of graphs N."""
        return len(self.node_ptr) - 1

    @cached_property
    def num_nodes(self) -> np.ndarray:
        """``(N,)`` node count of each graph."""
        return _frozen(np.diff(self.node_ptr))

    @cached_property
    def classes(self) -> np.ndarray:
        """Sorted distinct original class labels (empty for regression)."""
        if self.task == "regression":
            return _frozen(np.empty(0, dtype=self.y_original.dtype))
        return _frozen(np.unique(self.y_original))

    @cached_property
    def y(self) -> np.ndarray:
        """``(N,)`` class index ``0..K-1`` (classification) or float target (regression)."""
        if self.task == "regression":
            return _frozen(self.y_original.astype(np.float64))
        return _frozen(np.searchsorted(self.classes, self.y_original).astype(np.int64))

    @staticmethod
    def _vocabulary(codes: np.ndarray | None, names: Mapping[int, str] | None) -> int | None:
        if codes is None:
            return None
        top = int(codes.max()) + 1 if codes.size else 0
        if names:
            top = max(top, max(names) + 1)
        return top

    @cached_property
    def num_node_labels(self) -> int | None:
        """Width of the node one-hot (codes are column indices), ``None`` if unlabelled."""
        return self._vocabulary(self.node_label, self.node_label_names)

    @cached_property
    def num_edge_labels(self) -> int | None:
        """Width of the edge one-hot (codes are column indices), ``None`` if unlabelled."""
        return self._vocabulary(self.edge_label, self.edge_label_names)

    def graph(self, i: int, y: float | int) -> nx.Graph:
        """Build a fresh ``networkx.Graph`` for graph ``i`` with target ``y`` (class index or float).

        ``graph.graph`` records the dataset's label vocabulary
        (``num_node_labels`` / ``num_edge_labels``, where labelled), so
        :func:`~qgnn.data.to_pyg` gives every graph of a dataset one one-hot width.
        """
        n0, n1 = int(self.node_ptr[i]), int(self.node_ptr[i + 1])
        e0, e1 = int(self.edge_ptr[i]), int(self.edge_ptr[i + 1])
        y_original = self.y_original[i].item()
        graph = nx.Graph(y=y, y_original=y_original, index=i, dataset=self.name)
        if self.num_node_labels is not None:
            graph.graph["num_node_labels"] = self.num_node_labels
        if self.num_edge_labels is not None:
            graph.graph["num_edge_labels"] = self.num_edge_labels
        for key, values in self.graph_extras.items():
            graph.graph[key] = values[i]
        node_attrs: list[dict[str, object]] = [{} for _ in range(n1 - n0)]
        if self.node_label is not None:
            names = self.node_label_names or {}
            for attrs, code in zip(node_attrs, self.node_label[n0:n1].tolist(), strict=True):
                attrs["label"] = code
                attrs["element"] = names.get(code)
        if self.node_attributes is not None:
            for attrs, row in zip(node_attrs, self.node_attributes[n0:n1].tolist(), strict=True):
                attrs["attributes"] = tuple(row)
        graph.add_nodes_from(enumerate(node_attrs))
        pairs = self.edges[e0:e1].tolist()
        if self.edge_label is None:
            graph.add_edges_from(pairs)
        else:
            bond = self.edge_label_names or {}
            graph.add_edges_from(
                (u, v, {"label": code, "bond": bond.get(code)})
                for (u, v), code in zip(pairs, self.edge_label[e0:e1].tolist(), strict=True)
            )
        return graph
