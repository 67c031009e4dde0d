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
_NEWLINE = b"\n"
_BLANK_LINE = re.compile(rb"(?:^|\n)[ \t\r]*\n")
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


def _bad_line(text: str, file: str, dtype: type, columns: int | None) -> DatasetError:
    """The error for the first line of ``text`` that is not ``columns`` comma-separated ``dtype`` values."""
    convert, kind = (int, "an integer") if dtype is np.int64 else (float, "a number")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(",")
        if columns is None:
            columns = len(fields)
        if len(fields) != columns:
            return DatasetError(
                f"dataset file {file} line {number}: {line.strip()!r} has {len(fields)} comma-separated "
                f"value(s), expected {columns} like the lines before; fix that line"
            )
        for value in fields:
            try:
                convert(value)
            except ValueError:
                return DatasetError(
                    f"dataset file {file} line {number}: {value.strip()!r} is not {kind}; fix that line"
                )
    return DatasetError(f"dataset file {file} is malformed: expected comma-separated {kind.split()[-1]}s")


def _table(data: bytes, file: str, dtype: type, columns: int | None) -> np.ndarray:
    """Parse a TU file of comma-separated values, one entry per line; errors name the file and line."""
    if not data.strip():
        raise DatasetError(f"dataset file {file} is empty")
    try:
        table: np.ndarray = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=dtype, ndmin=2, comments=None)
    except ValueError:
        raise _bad_line(data.decode("utf-8", errors="replace"), file, dtype, columns) from None
    body = data.rstrip()
    if len(table) != body.count(b"\n") + 1:  # numpy skipped empty lines: line numbers would shift
        blank = _BLANK_LINE.search(body)
        where = f"line {data[: blank.end()].count(_NEWLINE)} is empty" if blank else "has empty lines"
        raise DatasetError(f"dataset file {file} {where}; remove empty lines (one entry per line)")
    if columns is not None and table.shape[1] != columns:
        raise DatasetError(
            f"dataset file {file} has {table.shape[1]} comma-separated values per line, expected {columns}"
        )
    return table


def _column(data: bytes, file: str, rows: int | None, what: str) -> np.ndarray:
    values = _table(data, file, np.int64, None)[:, 0]
    if rows is not None and len(values) != rows:
        raise DatasetError(f"dataset file {file} has {len(values)} lines, expected {rows} ({what})")
    return values


def _check_codes(codes: np.ndarray, file: str) -> None:
    """Label codes index one-hot columns, so they must be >= 0."""
    negative = np.flatnonzero(codes < 0)
    if negative.size:
        line = int(negative[0]) + 1
        raise DatasetError(
            f"dataset file {file} line {line}: label {codes[line - 1]} is negative; labels are one-hot "
            "columns in qgnn: renumber them 0, 1, 2, ..."
        )


def _graph_indicator(data: bytes, file: str, labels_file: str) -> np.ndarray:
    """0-based graph id of each node: each graph's nodes contiguous, graphs 1, 2, ... without gaps."""
    indicator = _column(data, file, None, "one per node")
    if indicator[0] != 1:
        raise DatasetError(
            f"dataset file {file} line 1: graph id {indicator[0]}, expected 1 (graph ids are 1-based "
            f"line numbers of {labels_file})"
        )
    steps = np.diff(indicator)
    jumps = np.flatnonzero((steps != 0) & (steps != 1))
    if jumps.size:
        line = int(jumps[0]) + 2
        raise DatasetError(
            f"dataset file {file} line {line}: graph id {indicator[line - 1]} follows {indicator[line - 2]}; "
            "list each graph's nodes on consecutive lines, graphs in order 1, 2, 3, ... without gaps"
        )
    return indicator - 1


def read_tu(name: str, folder: Path, read: Reader, readme: str | None) -> PackedGraphs:
    """Parse the TU dataset ``name`` into :class:`PackedGraphs`.

    Duplicate ``A.txt`` lines (IMDB-BINARY lists every entry twice) and the two
    directions of each edge collapse into one undirected edge, kept in order of
    first appearance (an edge may also be listed in one direction only); nodes
    keep their file order within each graph. Self-loops are rejected. Errors
    name the file, the line and the fix.

    Args:
        name: dataset name, the prefix of its files (e.g. ``"MUTAG"``).
        folder: the dataset's folder (used to tell which optional files exist).
        read: returns the verified bytes of a file given its name inside ``folder``.
        readme: file name of the label README, or ``None``.

    Raises:
        DatasetError: a file is missing, malformed (empty, empty or ragged lines,
            non-integer values) or inconsistent with the others (graph ids not
            contiguous, label counts, edges across graphs or to unknown nodes,
            negative label codes, one edge with two labels).
        ChecksumError: a file differs from its recorded SHA-256.
        InvalidGraphError: a graph has a self-loop (names the graph index).
    """

    def file(part: str) -> str:
        return f"{name}_{part}.txt"

    def shown(part: str) -> str:  # the file as error messages name it
        return str(folder / file(part))

    def optional(part: str) -> bytes | None:
        return read(file(part)) if (folder / file(part)).is_file() else None

    graph_labels = _column(read(file("graph_labels")), shown("graph_labels"), None, "one per graph")
    num_graphs = len(graph_labels)
    indicator = _graph_indicator(
        read(file("graph_indicator")), shown("graph_indicator"), file("graph_labels")
    )
    if indicator[-1] != num_graphs - 1:
        raise DatasetError(
            f"{shown('graph_indicator')} numbers {indicator[-1] + 1} graphs but {shown('graph_labels')} has "
            f"{num_graphs} lines: give exactly one label per graph (graph i's label on line i)"
        )
    num_nodes = len(indicator)
    node_ptr = np.zeros(num_graphs + 1, dtype=np.int64)
    np.cumsum(np.bincount(indicator, minlength=num_graphs), out=node_ptr[1:])

    entries = _table(read(file("A")), shown("A"), np.int64, 2) - 1
    outside = np.flatnonzero(((entries < 0) | (entries >= num_nodes)).any(axis=1))
    if outside.size:
        line = int(outside[0])
        raise DatasetError(
            f"{shown('A')} line {line + 1}: node ids {entries[line, 0] + 1}, {entries[line, 1] + 1} must "
            f"lie in 1..{num_nodes} (ids are 1-based line numbers of {shown('graph_indicator')})"
        )
    src, dst = entries[:, 0], entries[:, 1]
    edge_graph = indicator[src]
    crossing = np.flatnonzero(edge_graph != indicator[dst])
    if crossing.size:
        line = int(crossing[0])
        raise DatasetError(
            f"{shown('A')} line {line + 1} joins nodes of graphs {edge_graph[line] + 1} and "
            f"{indicator[dst[line]] + 1} (file ids); an edge must join two nodes of the same graph: "
            "fix or remove that line"
        )
    loops = np.flatnonzero(src == dst)
    if loops.size:
        line = int(loops[0])
        g = int(edge_graph[line])
        raise InvalidGraphError(
            f"{graph_label(g)} of {name}: self-loop on node {int(src[line] - node_ptr[g])} "
            f"({shown('A')} line {line + 1}, {loops.size} self-loop line(s) in all); qgnn graphs must be "
            "simple: remove those lines"
        )

    edge_codes = None
    edge_bytes = optional("edge_labels")
    if edge_bytes is not None:
        edge_codes = _column(edge_bytes, shown("edge_labels"), len(entries), f"one per line of {file('A')}")
        _check_codes(edge_codes, shown("edge_labels"))

    low, high = np.minimum(src, dst), np.maximum(src, dst)
    key = low * num_nodes + high
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if edge_codes is not None:
        clash = np.flatnonzero(edge_codes != edge_codes[first][inverse])
        if clash.size:
            line = int(clash[0])
            raise DatasetError(
                f"{shown('edge_labels')} line {line + 1} gives edge {src[line] + 1}-{dst[line] + 1} a label "
                "different from another line of the same edge; give every line of an edge the same label"
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
        node_codes = _column(node_bytes, shown("node_labels"), num_nodes, "one per node")
        _check_codes(node_codes, shown("node_labels"))
    attributes = None
    attribute_bytes = optional("node_attributes")
    if attribute_bytes is not None:
        attributes = _table(attribute_bytes, shown("node_attributes"), np.float64, None)
        if len(attributes) != num_nodes:
            raise DatasetError(
                f"{shown('node_attributes')} has {len(attributes)} lines, expected {num_nodes} (one per node)"
            )

    node_names, edge_names = (None, None)
    if readme:
        node_names, edge_names = parse_label_maps(read(readme).decode("utf-8", errors="replace"))
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
