"""``qgnn datasets``: print a table of the shipped datasets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from qgnn.data import DATASET_NAMES, dataset_summary
from qgnn.data.registry import SIZE_THRESHOLDS
from qgnn.errors import MissingExtraError

_HEADER = ("name", "task", "graphs", "classes (label: count) / target range", "nodes min/median/max") + tuple(
    f"<={k}" for k in SIZE_THRESHOLDS
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``datasets`` sub-command to the ``qgnn`` parser."""
    parser = subparsers.add_parser(
        "datasets",
        help="list the shipped datasets",
        description="Print graph counts, classes and sizes of every shipped dataset "
        "(files are checked against datasets/SHA256SUMS). '<=k' = graphs with at most k nodes (atoms).",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="datasets folder (default: $QGNN_DATASETS_DIR or the repository's datasets/)",
    )
    parser.set_defaults(handler=run)


def _row(summary: dict[str, object]) -> tuple[str, ...]:
    counts = summary["class_counts"]
    if isinstance(counts, dict):
        classes = ", ".join(f"{label}: {n}" for label, n in counts.items())
    else:
        classes = f"{summary['target_min']:g} .. {summary['target_max']:g}"
    nodes = f"{summary['nodes_min']}/{summary['nodes_median']:g}/{summary['nodes_max']}"
    at_most = cast(dict[int, int], summary["graphs_with_at_most"])
    return (
        str(summary["name"]),
        str(summary["task"]),
        str(summary["graphs"]),
        classes,
        nodes,
        *(str(at_most[k]) for k in SIZE_THRESHOLDS),
    )


def run(args: argparse.Namespace) -> int:
    """Print one table row per dataset; a dataset needing a missing extra says which one."""
    rows: list[tuple[str, ...]] = []
    for name in DATASET_NAMES:
        try:
            rows.append(_row(dataset_summary(name, root=args.root)))
        except MissingExtraError:
            missing = (name, "-", "-", "needs the chem extra: pip install 'qgnn[chem]'", "-")
            rows.append(missing + ("-",) * len(SIZE_THRESHOLDS))
    widths = [max(len(row[i]) for row in (_HEADER, *rows)) for i in range(len(_HEADER))]
    for row in (_HEADER, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
