"""Input validation for graphs entering qgnn.

:func:`validate_graph` is the one gate every public entry point taking a
networkx graph goes through (data conversions, embedding, pipelines).
"""

from __future__ import annotations

import networkx as nx

from qgnn.errors import InvalidGraphError, graph_label


def validate_graph(graph: object, index: int | None = None) -> nx.Graph:
    """Check that ``graph`` is a non-empty simple undirected networkx graph.

    Args:
        graph: the object to check.
        index: the graph's dataset index, used in error messages; defaults to
            ``graph.graph["index"]`` when that is an int.

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
    if index is None and isinstance(graph.graph.get("index"), int):
        index = graph.graph["index"]
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
