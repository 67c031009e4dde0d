"""Your own dataset: a folder in the TU format, read with the shipped datasets' parser and checks.

A folder holds one dataset ``NAME``: ``NAME_A.txt``, ``NAME_graph_indicator.txt``,
``NAME_graph_labels.txt`` and optionally ``NAME_node_labels.txt``,
``NAME_edge_labels.txt``, ``NAME_node_attributes.txt`` and a ``README.txt`` (or
``NAME_label_readme.txt``) naming the label codes (see :mod:`qgnn.data.tu`).
PyG's ``TUDataset`` layout, with the files in ``NAME/raw/``, works too. No
checksum file is needed: the SHA-256 of every file read is recorded instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from qgnn.data.packed import PackedGraphs
from qgnn.data.tu import read_tu
from qgnn.errors import DatasetError

FORMAT_URL = "https://chrsmrrs.github.io/datasets/docs/format/"
REQUIRED_PARTS: tuple[str, ...] = ("A", "graph_indicator", "graph_labels")


def _layout(name: str) -> str:
    files = ", ".join(f"{name}_{part}.txt" for part in REQUIRED_PARTS)
    optional = f"{name}_node_labels.txt, {name}_edge_labels.txt"
    return f"a TU dataset needs {files} (optional: {optional}; format: {FORMAT_URL})"


def tu_folder(path: Path) -> tuple[Path, str]:
    """Find the TU dataset in ``path``: its folder (``path`` or ``path/raw``) and its name.

    Raises:
        DatasetError: ``path`` does not exist, is not a folder, is empty, holds
            no ``*_A.txt`` or several, or lacks a required file. The message says
            which files a TU dataset needs.
    """
    if not path.exists():
        raise DatasetError(f"dataset folder {path} does not exist; {_layout('NAME')}")
    if not path.is_dir():
        raise DatasetError(f"{path} is a file: pass the folder that holds it; {_layout('NAME')}")
    files = sorted(p.name for p in path.iterdir() if p.is_file())
    names = [file.removesuffix("_A.txt") for file in files if file.endswith("_A.txt")]
    if not names and (path / "raw").is_dir():
        return tu_folder(path / "raw")
    if not files:
        raise DatasetError(f"dataset folder {path} has no files; {_layout('NAME')}")
    if not names:
        raise DatasetError(
            f"dataset folder {path} has no <NAME>_A.txt (it has {', '.join(files[:5])}); {_layout('NAME')}"
        )
    if len(names) > 1:
        raise DatasetError(
            f"dataset folder {path} holds several TU datasets ({', '.join(names)}): "
            "put each in its own folder and pass that folder"
        )
    name = names[0]
    missing = [f"{name}_{part}.txt" for part in REQUIRED_PARTS if f"{name}_{part}.txt" not in files]
    if missing:
        raise DatasetError(f"dataset folder {path} lacks {', '.join(missing)}; {_layout(name)}")
    return path, name


def read_folder(folder: Path, name: str) -> PackedGraphs:
    """Parse the TU dataset ``name`` in ``folder`` (from :func:`tu_folder`), recording each file's SHA-256.

    Raises:
        DatasetError: a file is malformed or inconsistent (see :func:`qgnn.data.tu.read_tu`).
        InvalidGraphError: a graph has a self-loop.
    """
    checksums: dict[str, str] = {}

    def read(file: str) -> bytes:
        data = (folder / file).read_bytes()
        checksums[file] = hashlib.sha256(data).hexdigest()
        return data

    readme = next((f for f in ("README.txt", f"{name}_label_readme.txt") if (folder / f).is_file()), None)
    packed = read_tu(name, folder, read, readme)
    return replace(packed, source=folder, checksums=checksums)
