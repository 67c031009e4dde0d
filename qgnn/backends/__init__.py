"""Backends: run Pulser sequences, return Measurements.

Local: :class:`EmuSV` (exact state vector, the default), :class:`EmuMPS`,
:class:`QutipEmulator`, :class:`Subspace` (exact within a controlled truncated
Rydberg basis; the fast path). Remote: :class:`PasqalCloud` (Pasqal's cloud
emulators and QPU; needs the ``cloud`` extra).
"""

from qgnn.backends.base import Backend, Measurement, bit_matrix, js_divergence
from qgnn.backends.emulators import EmuMPS, EmuSV, QutipEmulator
from qgnn.backends.pasqal import PasqalCloud
from qgnn.backends.subspace import Subspace

__all__ = [
    "Backend",
    "EmuMPS",
    "EmuSV",
    "Measurement",
    "PasqalCloud",
    "QutipEmulator",
    "Subspace",
    "bit_matrix",
    "js_divergence",
]
