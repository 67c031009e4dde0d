"""``qgnn models``: the models ``qgnn train --model`` accepts, and what each is."""

from __future__ import annotations

import argparse
import textwrap

from qgnn.experiment import MODELS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` sub-command to the ``qgnn`` parser."""
    parser = subparsers.add_parser("models", help="list the models qgnn train can evaluate")
    parser.set_defaults(handler=_models)


def _models(args: argparse.Namespace) -> int:
    width = max(len(name) for name in MODELS)
    for kind, quantum in (("classical", False), ("quantum", True)):
        print(f"{kind}:")
        for name, spec in MODELS.items():
            if spec.quantum is quantum:
                lines = textwrap.wrap(spec.summary, 100 - width - 4) or [""]
                print(f"  {name.ljust(width)}  {lines[0]}")
                for line in lines[1:]:
                    print(f"  {' ' * width}  {line}")
    return 0
