"""Backends: run Pulser sequences, return Measurements (emu-sv default, emu-mps, QuTiP)."""

from qgnn.backends.base import Backend, Measurement, bit_matrix
from qgnn.backends.emulators import EmuMPS, EmuSV, QutipEmulator

__all__ = ["Backend", "EmuMPS", "EmuSV", "Measurement", "QutipEmulator", "bit_matrix"]
