"""Backends: run Pulser sequences, return Measurements.

Local: :class:`Subspace` (exact within a controlled truncated Rydberg basis;
the pipeline's default), :class:`EmuSV` (exact state vector, the reference),
:class:`EmuMPS`, :class:`QutipEmulator`; all of them run global Rydberg
drives with DMM detuning maps (per-atom detuning). Remote: :class:`PasqalCloud`
(Pasqal's cloud emulators and QPU; needs the ``cloud`` extra).
"""

from qgnn.backends.base import Backend, Measurement, bit_matrix, js_divergence
from qgnn.backends.emulators import EmuMPS, EmuSV, QutipEmulator
from qgnn.backends.pasqal import PasqalCloud
from qgnn.backends.subspace import MemoryBudgetError, MemoryEstimate, Subspace

__all__ = [
    "Backend",
    "EmuMPS",
    "EmuSV",
    "Measurement",
    "MemoryBudgetError",
    "MemoryEstimate",
    "PasqalCloud",
    "QutipEmulator",
    "Subspace",
    "bit_matrix",
    "js_divergence",
]
