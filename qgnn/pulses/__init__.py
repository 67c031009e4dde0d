"""Pulse schedules: a Register and a Schedule become a validated pulser.Sequence.

Node labels enter the Hamiltonian as per-atom local detuning
(:class:`NodeDetuning`, on a device with a DMM such as :data:`AnalogDMMDevice`);
:func:`build_sequence` is the one route from a graph and its embedding to a sequence.
"""

from qgnn.pulses.build import build_sequence, qubit_weights
from qgnn.pulses.detuning import (
    PAULING_ELECTRONEGATIVITY,
    NodeDetuning,
    electronegativity_weights,
    label_frequency_weights,
)
from qgnn.pulses.devices import DMM_DEVICE_NAMES, AnalogDMMDevice, AnyDevice, has_dmm
from qgnn.pulses.schedules import (
    CHANNEL,
    DMM_ID,
    AdiabaticSweep,
    ConstantDrive,
    PiecewiseConstant,
    Schedule,
)

__all__ = [
    "CHANNEL",
    "DMM_DEVICE_NAMES",
    "DMM_ID",
    "PAULING_ELECTRONEGATIVITY",
    "AdiabaticSweep",
    "AnalogDMMDevice",
    "AnyDevice",
    "ConstantDrive",
    "NodeDetuning",
    "PiecewiseConstant",
    "Schedule",
    "build_sequence",
    "electronegativity_weights",
    "has_dmm",
    "label_frequency_weights",
    "qubit_weights",
]
