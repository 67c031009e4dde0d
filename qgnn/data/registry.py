"""The datasets: shipped names, :func:`load_dataset` (shipped or your own folder) and :func:`dataset_summary`.

Shipped files come from the datasets installed with qgnn, the repository's
``datasets/`` folder, or ``QGNN_DATASETS_DIR``, and are checked against
``SHA256SUMS`` before parsing; a folder of your own in the TU format goes
through the same parser and checks. Parsed datasets are cached per process
and re-read when a file's size or modification time changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from qgnn.data.checksums import (
    SUMS_FILE,
    datasets_root,
    file_signature,
    read_sums,
    read_verified,
    restore_hint,
    sums_digest,
)
from qgnn.data.dataset import GraphDataset
from qgnn.data.esol import read_esol
from qgnn.data.folder import read_folder, tu_folder
from qgnn.data.packed import PackedGraphs
from qgnn.data.tu import read_tu
from qgnn.errors import DatasetError, require_extra

SIZE_THRESHOLDS: tuple[int, ...] = (12, 16, 20, 25)
_LOG = logging.getLogger("qgnn.data")


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: Literal["tu", "esol"]
    readme: str | None = None


_SPECS: dict[str, _Spec] = {
    spec.name: spec
    for spec in (
        _Spec("MUTAG", "tu", "README.txt"),
        _Spec("PTC_FM", "tu", "README.txt"),
        _Spec("PTC_FR", "tu", "README.txt"),
        _Spec("PTC_MM", "tu", "README.txt"),
        _Spec("AIDS", "tu", "AIDS_label_readme.txt"),
        _Spec("NCI1", "tu", "README.txt"),
        _Spec("IMDB-BINARY", "tu"),
        _Spec("PROTEINS", "tu", "README.txt"),
        _Spec("ESOL", "esol"),
    )
}
DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)
"""Names accepted by :func:`load_dataset` (case-insensitive)."""

_ESOL_FILE = "delaney-processed.csv"
_CACHE: dict[tuple[Path, str], tuple[tuple[tuple[str, int, int], ...], PackedGraphs]] = {}


def canonical_name(name: object) -> str:
    """Return the canonical spelling of a dataset name (``"mutag"`` → ``"MUTAG"``).

    Raises:
        DatasetError: unknown name; the message lists the valid names.
    """
    if isinstance(name, str) and name.strip().upper() in _SPECS:
        return name.strip().upper()
    valid = ", ".join(DATASET_NAMES)
    raise DatasetError(f"unknown dataset {name!r}; valid names (case-insensitive): {valid}")


def _check_max_nodes(max_nodes: object) -> None:
    if max_nodes is None:
        return
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int | np.integer):
        kind = type(max_nodes).__name__
        raise DatasetError(f"max_nodes must be an int >= 1 or None, got {kind} {max_nodes!r}")
    if max_nodes < 1:
        raise DatasetError(f"max_nodes must be >= 1 (a graph has at least one node), got {max_nodes}")


def _cached(key: tuple[Path, str], paths: list[Path], read: Callable[[], PackedGraphs]) -> PackedGraphs:
    """``read()``, unless the files at ``paths`` are unchanged since the last read under ``key``."""
    signature = file_signature(paths)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    packed = read()
    _CACHE[key] = (signature, packed)
    return packed


def _shipped(name: str, root: str | Path | None) -> PackedGraphs:
    spec = _SPECS[name]
    if spec.kind == "esol":
        require_extra("rdkit", "chem")
    base = datasets_root(root)
    folder = base / name
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} is missing; {restore_hint(base, name)}")

    def parse() -> PackedGraphs:
        sums = read_sums(base)
        checksums: dict[str, str] = {}

        def read(file: str) -> bytes:
            data = read_verified(base, f"{name}/{file}", sums)
            checksums[file] = sums[f"{name}/{file}"]
            return data

        if spec.kind == "esol":
            packed = read_esol(read(_ESOL_FILE), f"{name}/{_ESOL_FILE}")
        else:
            packed = read_tu(name, folder, read, spec.readme)
        return replace(packed, source=folder, checksums=checksums)

    return _cached((base, name), [base / SUMS_FILE, *sorted(folder.iterdir())], parse)


def _folder(name: object) -> Path | None:
    """The folder ``name`` points to, or ``None`` when it is (or can only be) a shipped dataset's name."""
    if isinstance(name, os.PathLike):
        return Path(name).expanduser()
    if not isinstance(name, str) or name.strip().upper() in _SPECS:
        return None
    if "/" in name or os.sep in name or name.startswith("~") or Path(name).exists():
        return Path(name).expanduser()
    return None


def _local(path: Path) -> PackedGraphs:
    """Read (or reuse) the TU dataset in the folder ``path`` and log the SHA-256 of its files."""
    folder, name = tu_folder(path)
    folder = folder.resolve()
    packed = _cached((folder, name), sorted(folder.iterdir()), lambda: read_folder(folder, name))
    _LOG.info(
        "%s: read %d graphs from %s, SHA-256 %s (of %s)",
        packed.name,
        packed.num_graphs,
        folder,
        sums_digest(packed.checksums),
        ", ".join(sorted(packed.checksums)),
    )
    return packed


def load_dataset(
    name: str | os.PathLike[str], *, max_nodes: int | None = None, root: str | Path | None = None
) -> GraphDataset:
    """Load a shipped dataset, or your own from a folder in the TU format, as a :class:`GraphDataset`.

    A shipped dataset's files are checked against ``datasets/SHA256SUMS``.
    A folder (a ``pathlib.Path``, or a string that is not a shipped name and
    contains a ``/`` or names an existing path) is read with the same parser
    and checks (see :mod:`qgnn.data.folder` for the files it needs); no
    checksum file is needed, and the SHA-256 of what was read is logged
    (logger ``qgnn.data``, level INFO) and kept in :attr:`GraphDataset.sha256`.
    A local folder named like a shipped dataset is read as a folder when
    written as a path (``"./MUTAG"``). TU datasets are classification tasks
    (``y`` = class index, ``classes`` = original labels); ESOL is a regression
    task on measured log solubility (mol/L) and needs RDKit.

    Args:
        name: one of :data:`DATASET_NAMES` (case-insensitive), or the path of a
            TU-format folder; the dataset's ``name`` is then the files' prefix.
        max_nodes: keep only graphs with at most this many nodes (atoms);
            ``graph.graph["index"]`` keeps the position in the full file.
        root: datasets folder for shipped names; default ``$QGNN_DATASETS_DIR``,
            else the datasets installed with qgnn or the repository's ``datasets/``.

    Raises:
        DatasetError: unknown name, bad ``max_nodes``, ``root`` given with a
            folder, or missing or malformed files (the message names the file,
            the line and the fix).
        ChecksumError: a shipped file differs from its recorded SHA-256.
        InvalidGraphError: a graph in the files has a self-loop.
        MissingExtraError: ESOL requested without RDKit installed.

    Example:
        >>> small = load_dataset("mutag", max_nodes=12)
        >>> len(small), small.num_classes
        (29, 2)
    """
    folder = _folder(name)
    if folder is None:
        try:
            canonical = canonical_name(name)
        except DatasetError as exc:
            raise DatasetError(f"{exc}; or pass the path of a folder in TU format") from None
    elif root is not None:
        raise DatasetError(f"root= locates the shipped datasets; {folder} is read as it is: drop root")
    _check_max_nodes(max_nodes)
    packed = _shipped(canonical, root) if folder is None else _local(folder)
    dataset = GraphDataset(packed)
    if max_nodes is not None:
        dataset = dataset[dataset.num_nodes <= int(max_nodes)]
    return dataset


def dataset_summary(name: str | os.PathLike[str], *, root: str | Path | None = None) -> dict[str, object]:
    """Return counts describing a dataset.

    Args:
        name: one of :data:`DATASET_NAMES` (case-insensitive), or a TU-format folder.
        root: datasets folder, as for :func:`load_dataset`.

    Returns:
        ``name``, ``task``, ``graphs``; ``class_counts`` (original label →
        count; ``None`` for regression) or ``target_min`` / ``target_max``;
        ``nodes_min``, ``nodes_median``, ``nodes_max``; and
        ``graphs_with_at_most`` mapping each of 12, 16, 20, 25 to the number of
        graphs with at most that many nodes.
    """
    dataset = load_dataset(name, root=root)
    sizes = dataset.num_nodes
    summary: dict[str, object] = {"name": dataset.name, "task": dataset.task, "graphs": len(dataset)}
    if dataset.task == "classification":
        counts = np.bincount(dataset.y, minlength=len(dataset.classes))
        summary["class_counts"] = {label: int(c) for label, c in zip(dataset.classes, counts, strict=True)}
    else:
        summary["class_counts"] = None
        summary["target_min"] = float(dataset.y.min())
        summary["target_max"] = float(dataset.y.max())
    summary["nodes_min"] = int(sizes.min())
    summary["nodes_median"] = float(np.median(sizes))
    summary["nodes_max"] = int(sizes.max())
    summary["graphs_with_at_most"] = {k: int(np.count_nonzero(sizes <= k)) for k in SIZE_THRESHOLDS}
    return summary
