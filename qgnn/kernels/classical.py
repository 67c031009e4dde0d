"""Classical graph kernels and features, the baselines every quantum model is measured against.

- Weisfeiler–Lehman subtree and shortest-path kernels on node labels (grakel).
- The node-label histogram: how many atoms of each label a graph has, the
  simplest baseline a per-label quantum feature must beat.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import networkx as nx
import numpy as np

from qgnn.errors import InvalidInputError, graph_label


def _grakel_graphs(graphs: Sequence[nx.Graph]) -> list[Any]:
    from grakel.utils import graph_from_networkx

    labelled = []
    for g in graphs:
        h = nx.Graph(g)
        for _, data in h.nodes(data=True):
            data.setdefault("label", 0)
        for _, _, data in h.edges(data=True):
            data.setdefault("label", 0)
        labelled.append(h)
    return list(graph_from_networkx(labelled, node_labels_tag="label", edge_labels_tag="label"))


def weisfeiler_lehman_gram(graphs: Sequence[nx.Graph], n_iter: int) -> np.ndarray:
    """Normalised WL-subtree Gram matrix on node labels after ``n_iter`` refinements."""
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    kernel = WeisfeilerLehman(n_iter=n_iter, normalize=True, base_graph_kernel=VertexHistogram)
    return np.asarray(kernel.fit_transform(_grakel_graphs(graphs)), dtype=np.float64)


def shortest_path_gram(graphs: Sequence[nx.Graph]) -> np.ndarray:
    """Normalised labelled shortest-path Gram matrix (no kernel parameter)."""
    from grakel.kernels import ShortestPath

    kernel = ShortestPath(normalize=True, with_labels=True)
    return np.asarray(kernel.fit_transform(_grakel_graphs(graphs)), dtype=np.float64)


def label_histograms(
    graphs: Sequence[nx.Graph], vocabulary: Sequence[Hashable], *, attribute: str = "label"
) -> np.ndarray:
    """Atoms of each label value per graph, shape ``(n_graphs, len(vocabulary))``.

    Take ``vocabulary`` from the training graphs (labels outside it are not
    counted), e.g. with :func:`qgnn.features.label_vocabulary`.
    """
    column = {value: k for k, value in enumerate(vocabulary)}
    out = np.zeros((len(graphs), len(vocabulary)))
    for row, g in enumerate(graphs):
        for node, value in g.nodes(data=attribute):
            if value is None:
                raise InvalidInputError(
                    f"{graph_label(g.graph.get('index', row))}: node {node!r} has no {attribute!r} attribute"
                )
            if value in column:
                out[row, column[value]] += 1
    return out
