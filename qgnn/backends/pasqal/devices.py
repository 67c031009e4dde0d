"""The Pasqal cloud's device types and the specs sequences are built on, fetched at run time.

The QPU's constraints (atom count, distances, layouts, ``max_runs``) change
with calibrations, so they are never hard-coded: :func:`fetch_device` reads the
``GET /api/v1/devices/specs`` payload and deserialises it with Pulser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulser.devices import Device

from qgnn.backends.pasqal.transport import CloudRequestError, RetryPolicy, call
from qgnn.errors import BackendError

QPU_DEVICES = frozenset({"FRESNEL", "FRESNEL_CAN1"})
EMULATOR_DEVICES = frozenset({"EMU_MPS", "EMU_SV", "EMU_FREE", "EMU_FRESNEL"})
DEVICE_TYPES = QPU_DEVICES | EMULATOR_DEVICES
DEFAULT_SPEC_DEVICE = "FRESNEL"
"""Whose specs emulator sequences are built on when the cloud lists none for the emulator itself."""


def fetch_device(client: Any, device_type: str, spec_device: str | None, retry: RetryPolicy) -> Device:
    """The ``pulser`` Device described by the specs the cloud sends now.

    Args:
        client: the SDK's ``PasqalCloudClient``.
        device_type: the device jobs run on (e.g. ``"EMU_MPS"``).
        spec_device: whose specs to use; ``None``: ``device_type``'s when the
            cloud lists them, else ``DEFAULT_SPEC_DEVICE``'s.
        retry: retry policy of the request.

    Raises:
        BackendError: the specs cannot be fetched or read, or describe a virtual device.
    """
    from pulser.json.abstract_repr.deserializer import deserialize_device

    specs = call("fetch the device specs", client.get_device_specs_dict, retry)
    if not isinstance(specs, Mapping):
        raise CloudRequestError(
            "fetch the device specs: the reply is not a mapping of device specs", "malformed"
        )
    key = spec_device or (device_type if device_type in specs else DEFAULT_SPEC_DEVICE)
    if key not in specs:
        raise BackendError(
            f"the Pasqal cloud lists no specs for {key!r} (it lists {sorted(specs)}); "
            "pass spec_device= one of those"
        )
    try:
        device = deserialize_device(specs[key])
    except Exception as exc:  # pulser raises jsonschema, ValueError, TypeError, ...
        raise CloudRequestError(
            f"the {key} specs sent by the Pasqal cloud are unreadable ({exc})", "malformed"
        ) from None
    if not isinstance(device, Device):
        raise BackendError(f"the {key} specs describe a virtual device; a cloud run needs a real Device")
    return device


def backend_configuration(device_type: str) -> str | None:
    """The emulator configuration sent with a batch (the SDK's default), ``None`` for a QPU."""
    from pasqal_cloud import RemoteEmuFreeBackend, RemoteMPSBackend, RemoteSVBackend

    backend = {
        "EMU_MPS": RemoteMPSBackend,
        "EMU_SV": RemoteSVBackend,
        "EMU_FREE": RemoteEmuFreeBackend,
    }.get(device_type)
    return None if backend is None else str(backend.default_config.to_abstract_repr())
