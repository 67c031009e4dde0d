"""Conversions between networkx graphs and PyTorch Geometric ``Data``.

The PyG form follows PyG's conventions: ``edge_index`` lists both directions
of every edge (sorted by source, then target), ``x`` is the one-hot node
label, ``edge_attr`` the one-hot edge label. Label codes are the column
indices of the one-hots, so a whole dataset shares one vocabulary when all
its graphs are converted with the same ``num_node_labels``.

The graph's dataset index is stored as ``data.idx``, not ``data.index``: PyG
shifts every attribute whose name contains ``"index"`` by the node count when
it batches graphs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from qgnn.data.validation import as_index, graph_index, validate_graph
from qgnn.errors import InvalidGraphError, graph_label

if TYPE_CHECKING:
    import torch
    from torch_geometric.data import Data


def _codes(values: list[object], what: str, where: str, width: int | None) -> np.ndarray:
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        bad = next(v for v in values if not isinstance(v, int | np.integer) or isinstance(v, bool))
        raise InvalidGraphError(f"{where}: {what} label {bad!r} is not an integer code")
    codes = np.array(values, dtype=np.int64)
    if codes.size and codes.min() < 0:
        raise InvalidGraphError(f"{where}: {what} label {int(codes.min())} is negative; codes must be >= 0")
    if width is not None and codes.size and codes.max() >= width:
        raise InvalidGraphError(
            f"{where}: {what} label {int(codes.max())} does not fit a one-hot of width {width}; "
            f"pass num_{what}_labels > {int(codes.max())}"
        )
    return codes


def _labels(items: list[dict[str, object]], what: str, where: str) -> list[object] | None:
    labelled = sum("label" in attrs for attrs in items)
    if labelled == 0:
        return None
    if labelled != len(items):
        raise InvalidGraphError(
            f"{where}: {labelled} of {len(items)} {what}s have a 'label'; label all of them or none"
        )
    return [attrs["label"] for attrs in items]


def _scalar_tensor(value: object, where: str, key: str) -> torch.Tensor:
    import torch

    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidGraphError(f"{where}: graph.graph[{key!r}] = {value!r} is not a number")
    if isinstance(value, int | np.integer):
        return torch.tensor([int(value)], dtype=torch.long)
    return torch.tensor([float(value)], dtype=torch.float32)


def data_index(data: Data) -> int | None:
    """The dataset index a ``Data`` carries in ``data.idx`` (as :func:`to_pyg` sets it), or ``None``.

    ``idx`` counts when it is a one-element integer tensor or an integer
    (``int`` / ``np.integer``, not ``bool``), the rule of
    :func:`~qgnn.data.validation.graph_index`; anything else gives ``None``.
    """
    import torch

    idx = getattr(data, "idx", None)
    if isinstance(idx, torch.Tensor):
        if idx.numel() != 1 or idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
            return None
        return int(idx.reshape(-1)[0])
    return as_index(idx)


def to_pyg(
    graph: nx.Graph,
    *,
    num_node_labels: int | None = None,
    num_edge_labels: int | None = None,
) -> Data:
    """Convert a networkx graph to a ``torch_geometric.data.Data``.

    Nodes are numbered by their iteration order in ``graph`` (qgnn's dataset
    graphs already use ``0..n-1``).

    Attributes set: ``num_nodes``; ``edge_index`` ``(2, 2m)`` both directions;
    when nodes have ``label``: ``node_label`` (int64 codes) and ``x`` (float32
    one-hot, ``x[i, code] = 1``); when edges have ``label``: ``edge_label``
    and ``edge_attr`` (one-hot, per directed entry); ``y`` ``(1,)`` (int64 class
    index or float32 target) and ``idx`` ``(1,)`` when ``graph.graph`` has
    ``y`` / ``index``.

    Args:
        graph: simple undirected graph (checked with :func:`validate_graph`).
        num_node_labels: one-hot width for node codes; default ``max code + 1``
            of this graph. Pass the dataset's value to batch graphs together.
        num_edge_labels: one-hot width for edge codes, likewise.

    Raises:
        InvalidGraphError: invalid graph, labels on only some nodes/edges, or a
            label that is not a non-negative int below the one-hot width.

    Example:
        >>> data = to_pyg(load_dataset("MUTAG")[0], num_node_labels=7)
        >>> data.x.shape
        torch.Size([17, 7])
    """
    import torch
    from torch_geometric.data import Data

    validate_graph(graph)
    index = graph.graph.get("index")
    where = graph_label(graph_index(graph))
    nodes = list(graph.nodes)
    position = {node: i for i, node in enumerate(nodes)}
    n = len(nodes)
    data = Data(num_nodes=n)

    pairs = [(position[u], position[v]) for u, v in graph.edges]
    ends = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    src = np.concatenate([ends[:, 0], ends[:, 1]])
    dst = np.concatenate([ends[:, 1], ends[:, 0]])
    order = np.lexsort((dst, src))
    data.edge_index = torch.from_numpy(np.stack([src[order], dst[order]]))

    node_labels = _labels([graph.nodes[v] for v in nodes], "node", where)
    if node_labels is not None:
        codes = _codes(node_labels, "node", where, num_node_labels)
        width = num_node_labels if num_node_labels is not None else int(codes.max()) + 1
        data.node_label = torch.from_numpy(codes)
        data.x = torch.nn.functional.one_hot(data.node_label, width).to(torch.float32)

    edge_labels = _labels([graph.edges[u, v] for u, v in graph.edges], "edge", where)
    if edge_labels is not None:
        codes = _codes(edge_labels, "edge", where, num_edge_labels)
        width = num_edge_labels if num_edge_labels is not None else int(codes.max(initial=-1)) + 1
        data.edge_label = torch.from_numpy(np.concatenate([codes, codes])[order])
        data.edge_attr = torch.nn.functional.one_hot(data.edge_label, width).to(torch.float32)

    if "y" in graph.graph:
        data.y = _scalar_tensor(graph.graph["y"], where, "y")
    if index is not None:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise InvalidGraphError(f"{where}: graph.graph['index'] = {index!r} is not an integer")
        data.idx = torch.tensor([int(index)], dtype=torch.long)
    return data


def from_pyg(data: Data) -> nx.Graph:
    """Convert a ``torch_geometric.data.Data`` back to a networkx graph.

    Nodes are ``0..num_nodes-1``; node ``label`` comes from ``data.node_label``
    when present, edge ``label`` from ``data.edge_label``; ``graph.graph``
    gets ``y`` (int or float; a list when ``y`` has several entries) and
    ``index`` (from ``data.idx``, see :func:`data_index`). Both directions of an
    edge give one edge. The result passes :func:`validate_graph`: PyG graphs
    may carry self-loops (e.g. after ``AddSelfLoops``), which qgnn cannot
    represent (an atom does not blockade itself), so they are rejected rather
    than silently kept or dropped.

    Args:
        data: a PyG ``Data`` with ``edge_index`` and a known node count.

    Raises:
        InvalidGraphError: ``data`` is not a ``Data``, has no node count or no
            nodes, has self-loops, or its ``edge_index`` / label tensors have the
            wrong shape. The message names the graph by its ``idx``.
    """
    from torch_geometric.data import Data

    if not isinstance(data, Data):
        kind = f"{type(data).__module__}.{type(data).__qualname__}"
        raise InvalidGraphError(f"graph: expected a torch_geometric.data.Data, got {kind}")
    index = data_index(data)
    where = graph_label(index)
    if "num_nodes" not in data and data.x is None:
        raise InvalidGraphError(
            f"{where}: Data has neither num_nodes nor x, so its node count is unknown; set data.num_nodes"
        )
    n = int(data.num_nodes)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    node_label = getattr(data, "node_label", None)
    if node_label is not None:
        codes = node_label.view(-1).tolist()
        if len(codes) != n:
            raise InvalidGraphError(f"{where}: node_label has {len(codes)} entries for {n} nodes")
        for v, code in enumerate(codes):
            graph.nodes[v]["label"] = code
    edge_index = data.edge_index
    if edge_index is not None:
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            shape = tuple(edge_index.shape)
            raise InvalidGraphError(f"{where}: edge_index has shape {shape}, expected (2, E)")
        ends = edge_index.t().tolist()
        if ends and (min(min(e) for e in ends) < 0 or max(max(e) for e in ends) >= n):
            raise InvalidGraphError(f"{where}: edge_index refers to nodes outside 0..{n - 1}")
        loops = sorted({u for u, v in ends if u == v})
        if loops:
            shown = ", ".join(map(str, loops[:5])) + (", ..." if len(loops) > 5 else "")
            raise InvalidGraphError(
                f"{where}: edge_index has self-loop(s) on node(s) {shown}; qgnn needs a simple graph, "
                "remove them with torch_geometric.utils.remove_self_loops"
            )
        edge_label = getattr(data, "edge_label", None)
        if edge_label is None:
            graph.add_edges_from(ends)
        else:
            codes = edge_label.view(-1).tolist()
            if len(codes) != len(ends):
                raise InvalidGraphError(f"{where}: edge_label has {len(codes)} entries for {len(ends)} edges")
            graph.add_edges_from((u, v, {"label": code}) for (u, v), code in zip(ends, codes, strict=True))
    y = getattr(data, "y", None)
    if y is not None:
        values = y.view(-1).tolist()
        graph.graph["y"] = values[0] if len(values) == 1 else values
    if index is not None:
        graph.graph["index"] = index
    return validate_graph(graph, index)
