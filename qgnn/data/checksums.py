"""Locate the shipped ``datasets/`` folder and read its files with SHA-256 checks.

Every file a loader reads goes through :func:`read_verified`, which compares
its SHA-256 with the entry in ``datasets/SHA256SUMS`` and raises
:class:`~qgnn.errors.ChecksumError` on a mismatch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from qgnn.errors import ChecksumError, DatasetError

ENV_VAR = "QGNN_DATASETS_DIR"
SUMS_FILE = "SHA256SUMS"
_PACKAGE = Path(__file__).resolve().parents[1]
# An installed wheel carries the datasets inside the package (setup.py maps the
# repository's datasets/ folder to qgnn/_datasets); a source checkout or an
# editable install reads the repository's datasets/ folder next to the package.
_INSTALLED_DATASETS = _PACKAGE / "_datasets"
_REPOSITORY_DATASETS = _PACKAGE.parent / "datasets"


def _default_root() -> tuple[Path, str]:
    for path, origin in (
        (_INSTALLED_DATASETS, "the datasets installed with the qgnn package"),
        (_REPOSITORY_DATASETS, "the repository's datasets/ folder next to the qgnn package"),
    ):
        if (path / SUMS_FILE).is_file():
            return path, origin
    return _REPOSITORY_DATASETS, f"the default locations {_INSTALLED_DATASETS} and {_REPOSITORY_DATASETS}"


def datasets_root(root: str | Path | None = None) -> Path:
    """Return the folder holding the shipped datasets.

    Args:
        root: explicit folder; when ``None``, the ``QGNN_DATASETS_DIR``
            environment variable, else the datasets installed with qgnn
            (``qgnn/_datasets`` in a wheel install), else the repository's
            ``datasets/`` folder next to the ``qgnn`` package (source checkout,
            editable install).

    Raises:
        DatasetError: the folder does not exist or has no ``SHA256SUMS``.
    """
    if root is not None:
        path, origin = Path(root), "the root argument"
    elif os.environ.get(ENV_VAR):
        path, origin = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        path, origin = _default_root()
    if not path.is_dir():
        raise DatasetError(
            f"datasets folder {path} (from {origin}) does not exist; pass root=... or set "
            f"{ENV_VAR} to the repository's datasets/ folder"
        )
    if not (path / SUMS_FILE).is_file():
        raise DatasetError(
            f"datasets folder {path} (from {origin}) has no {SUMS_FILE}, so its files cannot be "
            "verified; point it at the repository's datasets/ folder"
        )
    return path.resolve()


def read_sums(root: Path) -> dict[str, str]:
    """Parse ``root/SHA256SUMS`` into ``{relative posix path: hex digest}``.

    Raises:
        DatasetError: a line is not ``<64 hex digits>  <path>``.
    """
    sums: dict[str, str] = {}
    text = (root / SUMS_FILE).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        if len(digest) != 64 or not name:
            raise DatasetError(f"{root / SUMS_FILE} line {number} is not '<sha256>  <path>': {line!r}")
        sums[name.removeprefix("./")] = digest.lower()
    return sums


def restore_hint(root: Path, relative: str) -> str:
    """Return the sentence telling how to restore a shipped file."""
    if root == _INSTALLED_DATASETS:
        return "reinstall qgnn to restore it (`pip install --force-reinstall --no-deps qgnn`)"
    return (
        f"restore it with `git checkout -- datasets/{relative}` in the qgnn repository "
        f"(or copy it again from the source named in {root / 'README.md'})"
    )


def read_verified(root: Path, relative: str, sums: dict[str, str]) -> bytes:
    """Read ``root/relative`` and check its SHA-256 against ``sums``.

    Args:
        root: the datasets folder.
        relative: posix path inside it, e.g. ``"MUTAG/MUTAG_A.txt"``.
        sums: the parsed ``SHA256SUMS`` (see :func:`read_sums`).

    Raises:
        DatasetError: the file is missing.
        ChecksumError: the file is not listed, or its content differs.
    """
    path = root / relative
    if not path.is_file():
        raise DatasetError(f"dataset file {path} is missing; {restore_hint(root, relative)}")
    expected = sums.get(relative)
    if expected is None:
        raise ChecksumError(
            f"dataset file {path} has no entry in {root / SUMS_FILE}, so it cannot be verified; "
            f"{restore_hint(root, SUMS_FILE)}"
        )
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumError(
            f"dataset file {path} was modified or corrupted: SHA-256 {actual} differs from "
            f"{expected} recorded in {SUMS_FILE}; {restore_hint(root, relative)}"
        )
    return data


def file_signature(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """Return ``(path, size, mtime_ns)`` of each path: a cheap change detector for caches."""
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), -1, -1))
        else:
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def sums_digest(checksums: Mapping[str, str]) -> str:
    """SHA-256 (hex) of ``checksums`` written as ``sha256sum`` lines (``<digest>  <file>``, sorted by file).

    Args:
        checksums: file name → SHA-256 (hex) of its content.
    """
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(checksums.items()))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()
