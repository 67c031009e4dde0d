"""Input validation for graphs entering qgnn.

:func:`validate_graph` is the one gate every public entry point taking a
networkx graph goes through (data conversions, embedding, pipelines);
:func:`graph_index` is the one rule for reading a graph's dataset index.
"""

from __future__ import annotations

from typing import overload

import networkx as nx
import numpy as np

from qgnn.errors import InvalidGraphError, graph_label


@overload
def as_index(value: object, default: int) -> int: ...
@overload
def as_index(value: object, default: None = None) -> int | None: ...
def as_index(value: object, default: int | None = None) -> int | None:
    """Return ``value`` as a dataset index when it is an integer (``int`` or ``np.integer``, not ``bool``).

    Args:
        value: the candidate index.
        default: returned when ``value`` is not an integer.
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    return default


@overload
def graph_index(graph: nx.Graph, default: int) -> int: ...
@overload
def graph_index(graph: nx.Graph, default: None = None) -> int | None: ...
def graph_index(graph: nx.Graph, default: int | None = None) -> int | None:
    """Return the graph's dataset index ``graph.graph["index"]`` (as an ``int``), or ``default``.

    Only an integer (``int`` or ``np.integer``, not ``bool``) counts as an
    index; anything else, or no ``"index"`` entry, gives ``default``.

    Args:
        graph: a networkx graph.
        default: returned when the graph carries no integer index.

    Example:
        >>> graph_index(nx.Graph(index=17)), graph_index(nx.Graph(index="a"), default=3)
        (17, 3)
    """
    return as_index(graph.graph.get("index"), default)


def validate_graph(graph: object, index: int | None = None) -> nx.Graph:
    """Check that ``graph`` is a non-empty simple undirected networkx graph.

    Args:
        graph: the object to check.
        index: the graph's dataset index, used in error messages; defaults to
            :func:`graph_index` of ``graph``.

    Returns:
        ``graph`` itself, unchanged.

    Raises:
        InvalidGraphError: ``graph`` is not a ``networkx.Graph``, is directed or a
            multigraph, has no nodes, or has self-loops. The message names the
            graph and says how to fix it.
    """
    if not isinstance(graph, nx.Graph):
        kind = f"{type(graph).__module__}.{type(graph).__qualname__}"
        raise InvalidGraphError(
            f"{graph_label(index)}: expected a networkx.Graph, got {kind}; convert it first "
            "(qgnn.data.from_pyg converts a torch_geometric Data)"
        )
    if index is None:
        index = graph_index(graph)
    where = graph_label(index)
    if graph.is_directed():
        raise InvalidGraphError(
            f"{where}: is directed ({type(graph).__name__}); qgnn needs an undirected graph, "
            "use graph.to_undirected()"
        )
    if graph.is_multigraph():
        raise InvalidGraphError(
            f"{where}: is a multigraph ({type(graph).__name__}); qgnn needs a simple graph, "
            "use networkx.Graph(graph) to merge parallel edges"
        )
    if graph.number_of_nodes() == 0:
        raise InvalidGraphError(f"{where}: has no nodes; a graph needs at least one node (one atom)")
    loops = sorted({u for u, _ in nx.selfloop_edges(graph)}, key=repr)
    if loops:
        shown = ", ".join(repr(u) for u in loops[:5]) + (", ..." if len(loops) > 5 else "")
        raise InvalidGraphError(
            f"{where}: has {len(loops)} self-loop(s) on node(s) {shown}; remove them with "
            "graph.remove_edges_from(list(networkx.selfloop_edges(graph)))"
        )
    return graph
