"""Graph kernels built on quantum features (scikit-learn API)."""

from qgnn.kernels.qek import QuantumEvolutionKernel, jensen_shannon

__all__ = ["QuantumEvolutionKernel", "jensen_shannon"]
