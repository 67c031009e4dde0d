"""The ``qgnn`` command: parses arguments, calls the library, prints.

Each sub-command lives in its own module under ``qgnn.cli`` and exposes
``register(subparsers)``; the handler it sets is called with the parsed args.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from qgnn.errors import QgnnError

COMMAND_MODULES: tuple[str, ...] = ("cloud", "datasets", "embed", "models", "train")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``qgnn`` argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="qgnn", description="Quantum graph machine learning on neutral atoms."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"qgnn.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qgnn`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except QgnnError as exc:
        print(f"qgnn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable output folder, full disk, missing file
        print(f"qgnn: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
