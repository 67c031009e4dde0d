"""Reader for the TU Dortmund graph-dataset format (vectorised with numpy).

A TU dataset ``DS`` is a folder of comma-separated text files with 1-based
node ids: ``DS_A.txt`` (one directed edge entry per line, both directions
listed), ``DS_graph_indicator.txt`` (graph id of each node),
``DS_graph_labels.txt`` (class of each graph), and optionally
``DS_node_labels.txt``, ``DS_edge_labels.txt`` (one per ``A.txt`` line) and
``DS_node_attributes.txt``. Label codes are mapped to readable names by the
dataset's ``README.txt`` or ``DS_label_readme.txt``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qgnn.data.packed import PackedGraphs
from qgnn.errors import DatasetError, InvalidGraphError, graph_label

# AIDS documents its edge labels as bond valences.
_VALENCE_BOND = {"1": "single", "2": "double", "3": "triple"}
_ENTRY = re.compile(r"^\s*(\d+)\s+(\S+)\s*$")
_HEADER = re.compile(r"^(Node|Edge) labels( were converted to integer values using this map)?:\s*$")

Reader = Callable[[str], bytes]


def parse_label_maps(text: str) -> tuple[dict[int, str] | None, dict[int, str] | None]:
    """Read the node and edge label maps documented in a TU README.

    Understands both the ``README.txt`` layout (``Node labels:`` then
    ``  0  C`` lines) and AIDS's ``label_readme`` layout (``Node labels were
    converted to integer values using this map:`` then ``Component 0:``).

    Args:
        text: the README's content.

    Returns:
        ``(node code → name, edge code → name)``, each ``None`` when absent.
    """
    maps: dict[str, dict[int, str]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _HEADER.match(lines[i].strip())
        i += 1
        if not match:
            continue
        entries: dict[int, str] = {}
        while i < len(lines):
            line = lines[i]
            entry = _ENTRY.match(line)
            if entry:
                entries[int(entry.group(1))] = entry.group(2)
            elif entries or (line.strip() and not line.strip().endswith(":")):
                break
            i += 1
        if entries:
            maps[match.group(1).lower()] = entries
    node, edge = maps.get("node"), maps.get("edge")
    if edge and set(edge.values()) <= set(_VALENCE_BOND):
        edge = {code: _VALENCE_BOND[value] for code, value in edge.items()}
    return node, edge


def _table(data: bytes, file: str, dtype: type, columns: int | None) -> np.ndarray:
    if not data.strip():
        raise DatasetError(f"dataset file {file} is empty")
    try:
        table: np.ndarray = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=dtype, ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"dataset file {file} is malformed: {exc}") from exc
    if columns is not None and table.shape[1] != columns:
        raise DatasetError(f"dataset file {file} has {table.shape[1]} columns per line, expected {columns}")
    return table


def _column(data: bytes, file: str, rows: int | None, what: str) -> np.ndarray:
    values = _table(data, file, np.int64, None)[:, 0]
    if rows is not None and len(values) != rows:
        raise DatasetError(f"dataset file {file} has {len(values)} lines, expected {rows} ({what})")
    return values


def read_tu(name: str, folder: Path, read: Reader, readme: str | None) -> PackedGraphs:
    """Parse the TU dataset ``name`` into :class:`PackedGraphs`.

    Duplicate ``A.txt`` lines (IMDB-BINARY lists every entry twice) and the two
    directions of each edge collapse into one undirected edge, kept in order of
    first appearance; nodes keep their file order within each graph.

    Args:
        name: dataset name, the prefix of its files (e.g. ``"MUTAG"``).
        folder: the dataset's folder (used to tell which optional files exist).
        read: returns the verified bytes of a file given its name inside ``folder``.
        readme: file name of the label README, or ``None``.

    Raises:
        DatasetError: a file is missing or inconsistent with the others.
        ChecksumError: a file differs from its recorded SHA-256.
        InvalidGraphError: a graph has a self-loop (names the graph index).
    """

    def file(part: str) -> str:
        return f"{name}_{part}.txt"

    def optional(part: str) -> bytes | None:
        return read(file(part)) if (folder / file(part)).is_file() else None

    graph_labels = _column(read(file("graph_labels")), file("graph_labels"), None, "one per graph")
    num_graphs = len(graph_labels)
    indicator = _column(read(file("graph_indicator")), file("graph_indicator"), None, "one per node") - 1
    num_nodes = len(indicator)
    steps = np.diff(indicator)
    if indicator[0] != 0 or indicator[-1] != num_graphs - 1 or np.any((steps != 0) & (steps != 1)):
        raise DatasetError(
            f"{file('graph_indicator')} must list graph ids 1..{num_graphs} in non-decreasing order, "
            "each graph's nodes contiguous"
        )
    node_ptr = np.zeros(num_graphs + 1, dtype=np.int64)
    np.cumsum(np.bincount(indicator, minlength=num_graphs), out=node_ptr[1:])

    entries = _table(read(file("A")), file("A"), np.int64, 2) - 1
    if entries.size and (entries.min() < 0 or entries.max() >= num_nodes):
        raise DatasetError(f"{file('A')} has node ids outside 1..{num_nodes}")
    src, dst = entries[:, 0], entries[:, 1]
    edge_graph = indicator[src]
    crossing = np.flatnonzero(edge_graph != indicator[dst])
    if crossing.size:
        line = int(crossing[0])
        raise DatasetError(
            f"{file('A')} line {line + 1} joins nodes of graphs {edge_graph[line] + 1} and "
            f"{indicator[dst[line]] + 1} (file ids)"
        )
    loops = np.flatnonzero(src == dst)
    if loops.size:
        line = int(loops[0])
        g = int(edge_graph[line])
        raise InvalidGraphError(
            f"{graph_label(g)} of {name}: self-loop on node {int(src[line] - node_ptr[g])} "
            f"({file('A')} line {line + 1}, {loops.size} self-loop line(s) in all); qgnn graphs must be "
            "simple: restore the shipped file or remove those lines"
        )

    edge_codes = None
    edge_bytes = optional("edge_labels")
    if edge_bytes is not None:
        edge_codes = _column(edge_bytes, file("edge_labels"), len(entries), f"one per line of {file('A')}")

    low, high = np.minimum(src, dst), np.maximum(src, dst)
    key = low * num_nodes + high
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if edge_codes is not None:
        clash = np.flatnonzero(edge_codes != edge_codes[first][inverse])
        if clash.size:
            line = int(clash[0])
            raise DatasetError(
                f"{file('edge_labels')} line {line + 1} gives edge {src[line] + 1}-{dst[line] + 1} a label "
                "different from another line of the same edge"
            )
    keep = np.sort(first)
    keep = keep[np.argsort(edge_graph[keep], kind="stable")]
    kept_graph = edge_graph[keep]
    edge_ptr = np.zeros(num_graphs + 1, dtype=np.int64)
    np.cumsum(np.bincount(kept_graph, minlength=num_graphs), out=edge_ptr[1:])
    edges = entries[keep] - node_ptr[kept_graph][:, None]

    node_codes = None
    node_bytes = optional("node_labels")
    if node_bytes is not None:
        node_codes = _column(node_bytes, file("node_labels"), num_nodes, "one per node")
    attributes = None
    attribute_bytes = optional("node_attributes")
    if attribute_bytes is not None:
        attributes = _table(attribute_bytes, file("node_attributes"), np.float64, None)
        if len(attributes) != num_nodes:
            raise DatasetError(
                f"{file('node_attributes')} has {len(attributes)} lines, expected {num_nodes} (one per node)"
            )

    node_names, edge_names = parse_label_maps(read(readme).decode("utf-8")) if readme else (None, None)
    return PackedGraphs(
        name=name,
        task="classification",
        node_ptr=node_ptr,
        edge_ptr=edge_ptr,
        edges=np.ascontiguousarray(edges),
        y_original=graph_labels,
        node_label=node_codes,
        edge_label=None if edge_codes is None else edge_codes[keep],
        node_attributes=attributes,
        node_label_names=node_names,
        edge_label_names=edge_names,
    )
