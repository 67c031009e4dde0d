"""``qgnn embed``: embed a shipped dataset on a device and print which graphs embed exactly."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from pulser.devices import AnalogDevice, DigitalAnalogDevice, MockDevice, WeightedAnalogDevice
from pulser.json.abstract_repr.deserializer import deserialize_device

from qgnn.embedding import DEFAULT_RABI_FREQUENCY, AnyDevice, embed_dataset

DEVICES: dict[str, AnyDevice] = {
    "analog": AnalogDevice,
    "digital": DigitalAnalogDevice,
    "weighted": WeightedAnalogDevice,
    "mock": MockDevice,
}
"""Built-in Pulser devices selectable by name."""


def device_arg(spec: str) -> AnyDevice:
    """Parse ``--device``: a key of :data:`DEVICES`, or ``PATH[:NAME]`` of a JSON device spec.

    The JSON file holds one device's Pulser abstract representation, or a
    mapping name → abstract representation (the Pasqal cloud's
    ``/api/v1/devices/specs`` payload), from which ``NAME`` picks one (optional
    when there is only one).

    Raises:
        argparse.ArgumentTypeError: unknown name, unreadable file, or missing/unknown ``NAME``.
    """
    if spec.lower() in DEVICES:
        return DEVICES[spec.lower()]
    path, name = (
        (Path(spec), "") if Path(spec).is_file() else (Path(spec.rpartition(":")[0]), spec.rpartition(":")[2])
    )
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"unknown device {spec!r}: use one of {', '.join(DEVICES)} or PATH[:NAME] of a JSON device spec"
        )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(payload, dict) and "name" not in payload:
            if not name and len(payload) == 1:
                name = next(iter(payload))
            if name not in payload:
                raise argparse.ArgumentTypeError(
                    f"{path}: pick a device with {path}:NAME, one of {sorted(payload)}"
                )
            payload = payload[name]
        return deserialize_device(payload if isinstance(payload, str) else json.dumps(payload))
    except argparse.ArgumentTypeError:
        raise
    except Exception as exc:  # Pulser's deserializer raises jsonschema, Attribute, Key and Value errors
        raise argparse.ArgumentTypeError(f"{path}: not a readable Pulser device spec ({exc})") from exc


def run(args: argparse.Namespace) -> int:
    """Handler of ``qgnn embed``: load, embed, print the table, optionally write JSON."""
    from qgnn.data import load_dataset

    graphs = load_dataset(args.dataset, max_nodes=args.max_nodes)
    report = embed_dataset(
        graphs,
        args.device,
        rabi_frequency=args.rabi_frequency,
        seed=args.seed,
        progress=not args.no_progress,
        adjust_rabi_frequency=args.adjust_rabi_frequency,
    )
    print(f"{args.dataset}" + (f" (≤ {args.max_nodes} nodes)" if args.max_nodes is not None else ""))
    print(report.table())
    if args.out is not None:
        print(f"wrote {report.to_json(args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``embed`` sub-command to the ``qgnn`` parser."""
    parser = subparsers.add_parser(
        "embed",
        help="embed a dataset's graphs as neutral-atom registers and report the unit-disk quality",
        description="Embed every graph of a shipped dataset on a Pulser device and print how many "
        "embed exactly (every edge inside and every non-edge outside the blockade radius), "
        "approximately, or not at all (with the reason).",
    )
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. MUTAG or PTC_FM")
    parser.add_argument(
        "--max-nodes", type=int, default=None, help="keep graphs with at most this many nodes"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the per-graph report as JSON here")
    parser.add_argument(
        "--device",
        type=device_arg,
        default=AnalogDevice,
        help=f"one of {', '.join(DEVICES)} (Pulser's built-in devices), or PATH[:NAME] of a JSON device spec",
    )
    parser.add_argument(
        "--rabi-frequency",
        type=float,
        default=DEFAULT_RABI_FREQUENCY,
        help=f"Rabi frequency Ω in rad/µs, sets the blockade radius (default 2π = {2 * math.pi:.4f})",
    )
    parser.add_argument(
        "--adjust-rabi-frequency",
        action="store_true",
        help="on a device that accepts only pre-calibrated layouts, also try other Ω within its channel's "
        "limits when the requested Ω does not realise a graph on the traps",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the layout search")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=run)
