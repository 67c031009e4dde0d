"""Typed errors raised by qgnn.

Every error qgnn raises on bad input or failed execution derives from
:class:`QgnnError`, so callers can catch one base class. Messages name the
graph (its dataset ``index`` when known) or the job, and say how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping


class QgnnError(Exception):
    """Base class of every error raised by qgnn."""


class InvalidGraphError(QgnnError, ValueError):
    """A graph is malformed: wrong type, empty, self-loops, NaN positions, too large."""


class InvalidInputError(QgnnError, ValueError):
    """An array or parameter passed to a public function is malformed."""


class NotEmbeddableError(QgnnError, ValueError):
    """No register realises the graph as an exact unit-disk graph on the device."""


class ScheduleError(QgnnError, ValueError):
    """A pulse-schedule parameter violates the device's limits."""


class DatasetError(QgnnError):
    """A dataset (shipped, or a TU-format folder) is unknown, missing or malformed."""


class ChecksumError(DatasetError):
    """A dataset file does not match its recorded SHA-256 checksum."""


class MissingExtraError(QgnnError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class BackendError(QgnnError, RuntimeError):
    """A backend failed to run a sequence."""


def graph_label(index: int | None) -> str:
    """Return ``"graph 17"`` for a known dataset index, ``"graph"`` otherwise."""
    return "graph" if index is None else f"graph {index}"


def format_failures(failures: Mapping[int, str], limit: int = 10) -> str:
    """One line per failed graph, ``graph i: reason``, at most ``limit`` then a count of the rest."""
    lines = [f"  {graph_label(i)}: {why}" for i, why in list(failures.items())[:limit]]
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more")
    return "\n".join(lines)


def require_extra(module: str, extra: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` is importable.

    Args:
        module: importable module name, e.g. ``"rdkit"``.
        extra: qgnn extra providing it, e.g. ``"chem"``.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(f"{module} is not installed: install it with `pip install 'qgnn[{extra}]'`")
