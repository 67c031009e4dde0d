"""Graph kernels built on quantum features (scikit-learn API)."""

from qgnn.kernels.gdqc import GDQCKernel, encode_observables, gdqc_grams, refine_colours
from qgnn.kernels.qek import QuantumEvolutionKernel, jensen_shannon

__all__ = [
    "GDQCKernel",
    "QuantumEvolutionKernel",
    "encode_observables",
    "gdqc_grams",
    "jensen_shannon",
    "refine_colours",
]
