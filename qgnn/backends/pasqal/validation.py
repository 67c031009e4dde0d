"""Local checks that a sequence will be accepted by the fetched cloud device, before anything is sent.

The checks are the QPU's (``pulser.backend.QPUBackend`` runs with
``mimic_qpu=True``): a built, non-parametrised, non-empty sequence on a real
``Device`` equal to the freshly fetched specs (else re-targeted with
``Sequence.with_new_device(strict=True)``, which replays every register,
layout, channel and pulse check on the new specs); the register inside the
device's limits (atom number, minimum distance, radial distance) and defined
from a ``RegisterLayout`` when the device requires one, with an accepted
layout and filling; the duration within ``max_sequence_duration``; a single
``ground-rydberg`` measurement; a valid abstract representation; and each
job's runs within ``max_runs`` (:func:`split_shots`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import pulser
from pulser.backend.qpu import QPUBackend
from pulser.backend.remote import RemoteBackend, RemoteConnection
from pulser.devices import Device

from qgnn.errors import BackendError


@dataclass(frozen=True, eq=False)
class PreparedSequence:
    """A sequence checked against the fetched device, in the form that is sent.

    Args:
        sequence: the measured sequence on the fetched device.
        abstract_repr: its abstract representation (the JSON sent to the cloud).
        seq_hash: SHA-256 of the canonical (sorted-keys) abstract representation.
        qubit_ids: register qubit ids, in bitstring order.
    """

    sequence: pulser.Sequence
    abstract_repr: str
    seq_hash: str
    qubit_ids: tuple[str, ...]


def sequence_hash(abstract_repr: str) -> str:
    """SHA-256 of an abstract representation, canonicalised (sorted keys, compact)."""
    canonical = json.dumps(json.loads(abstract_repr), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fail(label: str, reason: str, fix: str) -> BackendError:
    return BackendError(f"{label}: {reason}; {fix} (nothing was sent)")


def prepare(sequence: object, device: Device, *, mimic_qpu: bool, label: str) -> PreparedSequence:
    """Check ``sequence`` against the fetched ``device`` the way the QPU will; return what to send.

    Args:
        sequence: a built ``pulser.Sequence``.
        device: the device fetched from the cloud.
        mimic_qpu: apply the QPU-only rules (layout required, real device).
        label: how messages name the sequence (e.g. ``"graph 17"``).

    Raises:
        BackendError: the sequence would be rejected; the message says why and how to fix it.
    """
    rebuild = "embed and build it on PasqalCloud.fetch_device()"
    if not isinstance(sequence, pulser.Sequence):
        raise _fail(
            label, f"expected a pulser.Sequence, got {type(sequence).__name__}", "pass built sequences"
        )
    if sequence.is_parametrized() or sequence.is_register_mappable():
        raise _fail(label, "the sequence is parametrised or has a mappable register", "build it first")
    if sequence.is_empty():
        raise _fail(label, "the sequence has no pulse", "add the schedule's pulses")
    if sequence.device.name != device.name:
        raise _fail(
            label, f"it was built for {sequence.device.name!r}, the cloud device is {device.name!r}", rebuild
        )
    if sequence.device != device:
        try:
            sequence = sequence.with_new_device(device, strict=True)
        except Exception as exc:  # pulser raises ValueError/TypeError subclasses of many kinds
            raise _fail(label, f"it does not fit the current {device.name} specs ({exc})", rebuild) from None
    try:
        device.validate_register(sequence.register)
        if mimic_qpu:
            QPUBackend.validate_sequence(sequence, mimic_qpu=True)
    except Exception as exc:
        raise _fail(label, f"the {device.name} device would reject it ({exc})", rebuild) from None
    duration = sequence.get_duration(include_fall_time=True)
    if device.max_sequence_duration is not None and duration > device.max_sequence_duration:
        raise _fail(
            label,
            f"it lasts {duration} ns (fall time included), above {device.name}'s max_sequence_duration "
            f"{device.max_sequence_duration} ns",
            "shorten the schedule",
        )
    try:
        measured = RemoteConnection._add_measurement_to_sequence(sequence)
    except ValueError as exc:
        raise _fail(label, str(exc), "measure it in the 'ground-rydberg' basis") from None
    basis = measured.get_measurement_basis()
    if basis != "ground-rydberg":
        raise _fail(
            label, f"it is measured in the {basis!r} basis", "measure it in the 'ground-rydberg' basis"
        )
    try:
        abstract_repr = measured.to_abstract_repr()
    except Exception as exc:
        raise _fail(label, f"it has no valid abstract representation ({exc})", rebuild) from None
    return PreparedSequence(
        sequence=measured,
        abstract_repr=abstract_repr,
        seq_hash=sequence_hash(abstract_repr),
        qubit_ids=tuple(str(q) for q in measured.register.qubit_ids),
    )


def split_shots(shots: int, max_runs: int | None) -> list[int]:
    """Split ``shots`` into as few jobs as ``max_runs`` allows, as evenly as possible.

    Args:
        shots: total shots (≥ 1).
        max_runs: the device's limit per job, or ``None`` for no limit.

    Example:
        >>> split_shots(1001, 500)
        [334, 334, 333]
    """
    parts = 1 if not max_runs else math.ceil(shots / max_runs)
    base, extra = divmod(shots, parts)
    runs = [base + 1] * extra + [base] * (parts - extra)
    RemoteBackend.validate_job_params([{"runs": r} for r in runs], max_runs)  # the QPU's own check
    return runs
