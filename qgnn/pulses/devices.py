"""Devices for labelled graphs: which Pulser devices carry a DMM, and an emulation device that does.

Node labels enter the Hamiltonian through a detuning map modulator (DMM).
``AnalogDevice`` has none; Pulser's devices with one (``WeightedAnalogDevice``,
``DigitalAnalogDevice``, ``MockDevice``) use other Rydberg levels (70–75
against 60), so their C6 — and hence the blockade radius and the embedding
scale — differ from today's physics. :data:`AnalogDMMDevice` is
``AnalogDevice`` (same Rydberg level, C6 = 865723 rad/µs·µm⁶, same global
channel and register rules) as a ``VirtualDevice`` with
``WeightedAnalogDevice``'s DMM added (bottom detuning −2π·10 rad/µs, total
bottom −2π·1000 rad/µs), for emulating labelled graphs.
"""

from __future__ import annotations

import dataclasses

from pulser.devices import (
    AnalogDevice,
    DigitalAnalogDevice,
    MockDevice,
    VirtualDevice,
    WeightedAnalogDevice,
)

from qgnn.embedding import AnyDevice

AnalogDMMDevice: VirtualDevice = dataclasses.replace(
    AnalogDevice.to_virtual(),
    name="AnalogDMMDevice",
    dmm_objects=WeightedAnalogDevice.dmm_objects,
    short_description="AnalogDevice with WeightedAnalogDevice's DMM (qgnn, emulation only).",
)

DMM_DEVICE_NAMES: tuple[str, ...] = (
    AnalogDMMDevice.name,
    WeightedAnalogDevice.name,
    DigitalAnalogDevice.name,
    MockDevice.name,
)
"""Names of the devices that can run a :class:`~qgnn.pulses.NodeDetuning` (for error messages)."""


def has_dmm(device: AnyDevice) -> bool:
    """True when ``device`` has a detuning map modulator (local detuning)."""
    return bool(device.dmm_channels)
