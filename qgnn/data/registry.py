"""The shipped datasets: names, :func:`load_dataset` and :func:`dataset_summary`.

Files come from the repository's ``datasets/`` folder (or ``QGNN_DATASETS_DIR``)
and are checked against ``datasets/SHA256SUMS`` before parsing. Parsed
datasets are cached per process and re-read when a file's size or
modification time changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from qgnn.data.checksums import SUMS_FILE, datasets_root, file_signature, read_sums, read_verified
from qgnn.data.dataset import GraphDataset
from qgnn.data.esol import read_esol
from qgnn.data.packed import PackedGraphs
from qgnn.data.tu import read_tu
from qgnn.errors import DatasetError, require_extra

SIZE_THRESHOLDS: tuple[int, ...] = (12, 16, 20, 25)


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


def _packed(name: str, root: str | Path | None) -> PackedGraphs:
    spec = _SPECS[name]
    if spec.kind == "esol":
        require_extra("rdkit", "chem")
    base = datasets_root(root)
    folder = base / name
    if not folder.is_dir():
        raise DatasetError(
            f"dataset folder {folder} is missing; restore it with `git checkout -- datasets/{name}` "
            "in the qgnn repository"
        )
    signature = file_signature([base / SUMS_FILE, *sorted(folder.iterdir())])
    cached = _CACHE.get((base, name))
    if cached is not None and cached[0] == signature:
        return cached[1]
    sums = read_sums(base)

    def read(file: str) -> bytes:
        return read_verified(base, f"{name}/{file}", sums)

    if spec.kind == "esol":
        packed = read_esol(read(_ESOL_FILE), f"{name}/{_ESOL_FILE}")
    else:
        packed = read_tu(name, folder, read, spec.readme)
    _CACHE[(base, name)] = (signature, packed)
    return packed


def load_dataset(name: str, *, max_nodes: int | None = None, root: str | Path | None = None) -> GraphDataset:
    """Load a shipped dataset as a :class:`GraphDataset`.

    Every file read is checked against ``datasets/SHA256SUMS``. TU datasets
    are classification tasks (``y`` = class index, ``classes`` = original
    labels); ESOL is a regression task on measured log solubility (mol/L)
    and needs RDKit.

    Args:
        name: one of :data:`DATASET_NAMES`, case-insensitive.
        max_nodes: keep only graphs with at most this many nodes (atoms);
            ``graph.graph["index"]`` keeps the position in the full file.
        root: datasets folder; default ``$QGNN_DATASETS_DIR``, else the
            repository's ``datasets/`` folder.

    Raises:
        DatasetError: unknown name, bad ``max_nodes``, missing or malformed files.
        ChecksumError: a file differs from its recorded SHA-256.
        InvalidGraphError: a graph in the files has a self-loop.
        MissingExtraError: ESOL requested without RDKit installed.

    Example:
        >>> small = load_dataset("mutag", max_nodes=12)
        >>> len(small), small.num_classes
        (29, 2)
    """
    canonical = canonical_name(name)
    _check_max_nodes(max_nodes)
    dataset = GraphDataset(_packed(canonical, root))
    if max_nodes is not None:
        dataset = dataset[dataset.num_nodes <= int(max_nodes)]
    return dataset


def dataset_summary(name: str, *, root: str | Path | None = None) -> dict[str, object]:
    """Return counts describing a shipped dataset.

    Args:
        name: one of :data:`DATASET_NAMES`, case-insensitive.
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
