"""Conversions between networkx graphs and PyTorch Geometric ``Data``.

The PyG form follows PyG's conventions: ``edge_index`` lists both directions
of every edge (sorted by source, then target), ``x`` is the one-hot node
label, ``edge_attr`` the one-hot edge label. Label codes are the column
indices of the one-hots. The one-hot width is the dataset's label vocabulary,
which every dataset graph records in ``graph.graph["num_node_labels"]`` /
``["num_edge_labels"]``, so all graphs of a dataset convert to one width and
batch together; :func:`from_pyg` reads one-hot ``x`` / ``edge_attr`` back into
labels and records their width, so the round trip keeps both.

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


def _width(graph: nx.Graph, what: str, given: int | None, where: str) -> tuple[int | None, str]:
    """The one-hot width for ``what`` labels: the argument, else the graph's recorded vocabulary."""
    key = f"num_{what}_labels"
    if given is not None:
        return given, f"the {key} argument"
    recorded = graph.graph.get(key)
    if recorded is None:
        return None, ""
    if as_index(recorded) is None or recorded < 0:
        raise InvalidGraphError(
            f"{where}: graph.graph[{key!r}] = {recorded!r} is not a non-negative integer; "
            f"fix it or delete it to use this graph's own largest code + 1"
        )
    return int(recorded), f"graph.graph[{key!r}]"


def _codes(values: list[object], what: str, where: str, width: int | None, origin: str) -> np.ndarray:
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        bad = next(v for v in values if not isinstance(v, int | np.integer) or isinstance(v, bool))
        raise InvalidGraphError(f"{where}: {what} label {bad!r} is not an integer code")
    codes = np.array(values, dtype=np.int64)
    if codes.size and codes.min() < 0:
        raise InvalidGraphError(f"{where}: {what} label {int(codes.min())} is negative; codes must be >= 0")
    if width is not None and codes.size and codes.max() >= width:
        raise InvalidGraphError(
            f"{where}: {what} label {int(codes.max())} does not fit a one-hot of width {width} "
            f"(from {origin}); pass num_{what}_labels > {int(codes.max())}"
        )
    return codes


def _encode(
    graph: nx.Graph, items: list[dict[str, object]], what: str, given: int | None, where: str
) -> tuple[np.ndarray, int] | None:
    """``(codes, one-hot width)`` of the ``label`` of ``items`` (nodes or edges), ``None`` if unlabelled."""
    labels = _labels(items, what, where)
    if labels is None:
        return None
    width, origin = _width(graph, what, given, where)
    codes = _codes(labels, what, where, width, origin)
    return codes, width if width is not None else int(codes.max()) + 1


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
        num_node_labels: one-hot width for node codes; default
            ``graph.graph["num_node_labels"]`` (the dataset's vocabulary, set on
            every graph of a :class:`~qgnn.data.GraphDataset`), else
            ``max code + 1`` of this graph.
        num_edge_labels: one-hot width for edge codes, likewise.

    Raises:
        InvalidGraphError: invalid graph, labels on only some nodes/edges, a
            label that is not a non-negative int below the one-hot width, or a
            recorded width that is not a non-negative int.

    Example:
        >>> data = to_pyg(load_dataset("MUTAG")[0])  # MUTAG has 7 atom types
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

    node = _encode(graph, [graph.nodes[v] for v in nodes], "node", num_node_labels, where)
    if node is not None:
        data.node_label = torch.from_numpy(node[0])
        data.x = torch.nn.functional.one_hot(data.node_label, node[1]).to(torch.float32)
    edge = _encode(graph, [graph.edges[u, v] for u, v in graph.edges], "edge", num_edge_labels, where)
    if edge is not None:
        data.edge_label = torch.from_numpy(np.concatenate([edge[0], edge[0]])[order])
        data.edge_attr = torch.nn.functional.one_hot(data.edge_label, edge[1]).to(torch.float32)

    if "y" in graph.graph:
        data.y = _scalar_tensor(graph.graph["y"], where, "y")
    if index is not None:
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise InvalidGraphError(f"{where}: graph.graph['index'] = {index!r} is not an integer")
        data.idx = torch.tensor([int(index)], dtype=torch.long)
    return data


def from_pyg(data: Data) -> nx.Graph:
    """Convert a ``torch_geometric.data.Data`` back to a networkx graph.

    Nodes are ``0..num_nodes-1``. Node ``label`` comes from ``data.node_label``
    when present, else from ``data.x`` when ``x`` is one-hot (each row one 1,
    the rest 0; e.g. PyG's ``TUDataset``): the label is the column of the 1.
    Edge ``label`` comes likewise from ``data.edge_label`` or a one-hot
    ``data.edge_attr``. When ``x`` / ``edge_attr`` is one-hot and agrees with
    the labels, its width is kept in ``graph.graph["num_node_labels"]`` /
    ``["num_edge_labels"]``, so :func:`to_pyg` gives the same tensors back.
    Other (non-one-hot) ``x`` / ``edge_attr`` are not carried over.
    ``graph.graph`` also gets ``y`` (int or float; a list when ``y`` has
    several entries) and ``index`` (from ``data.idx``, see
    :func:`data_index`). Both directions of an edge give one edge, and must
    carry the same label. The result passes :func:`validate_graph`: PyG graphs
    may carry self-loops (e.g. after ``AddSelfLoops``), which qgnn cannot
    represent (an atom does not blockade itself), so they are rejected rather
    than silently kept or dropped.

    Args:
        data: a PyG ``Data`` with ``edge_index`` and a known node count.

    Raises:
        InvalidGraphError: ``data`` is not a ``Data``, has no node count or no
            nodes, has self-loops, its ``edge_index`` / label tensors have the
            wrong shape, or the two directions of an edge carry different
            labels. The message names the graph by its ``idx``.

    Example:
        >>> graph = from_pyg(to_pyg(load_dataset("MUTAG")[0]))
        >>> graph.nodes[0]["label"], graph.graph["num_node_labels"]
        (0, 7)
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
    node_codes = _labels_of(data, "node", n, where)
    if node_codes is not None:
        for v, code in enumerate(node_codes):
            graph.nodes[v]["label"] = code
    edge_codes = None
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
        edge_codes = _labels_of(data, "edge", len(ends), where)
        if edge_codes is None:
            graph.add_edges_from(ends)
        else:
            first: dict[frozenset[int], int] = {}
            for (u, v), code in zip(ends, edge_codes, strict=True):
                if first.setdefault(frozenset((u, v)), code) != code:
                    raise InvalidGraphError(
                        f"{where}: edge {u}-{v} has label {code} one way and {first[frozenset((u, v))]} "
                        "the other; qgnn graphs are undirected, give both directions the same label"
                    )
            labelled = zip(ends, edge_codes, strict=True)
            graph.add_edges_from((u, v, {"label": code}) for (u, v), code in labelled)
    y = getattr(data, "y", None)
    if y is not None:
        values = y.view(-1).tolist()
        graph.graph["y"] = values[0] if len(values) == 1 else values
    if index is not None:
        graph.graph["index"] = index
    for what, codes, tensor in (("node", node_codes, data.x), ("edge", edge_codes, data.edge_attr)):
        if codes is not None and codes == _one_hot_codes(tensor, len(codes)):
            graph.graph[f"num_{what}_labels"] = int(tensor.size(1))
    return validate_graph(graph, index)


def _one_hot_codes(tensor: object, rows: int) -> list[int] | None:
    """The column of the 1 in each row when ``tensor`` is a ``(rows, k)`` one-hot matrix, else ``None``."""
    import torch

    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or tensor.size(0) != rows or rows == 0:
        return None
    if tensor.is_complex() or not bool(((tensor == 0) | (tensor == 1)).all()):
        return None
    if not bool((tensor.sum(dim=1) == 1).all()):
        return None
    codes: list[int] = tensor.argmax(dim=1).tolist()
    return codes


def _labels_of(data: Data, what: str, count: int, where: str) -> list[int] | None:
    """Integer ``what`` labels of ``data``: ``{what}_label``, else the one-hot ``x`` / ``edge_attr``."""
    explicit = getattr(data, f"{what}_label", None)
    if explicit is None:
        return _one_hot_codes(data.x if what == "node" else data.edge_attr, count)
    codes: list[int] = explicit.view(-1).tolist()
    if len(codes) != count:
        raise InvalidGraphError(f"{where}: {what}_label has {len(codes)} entries for {count} {what}s")
    return codes
