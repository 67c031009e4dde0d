"""qgnn: quantum graph machine learning on neutral-atom quantum computers.

Graphs become neutral-atom registers (:mod:`qgnn.embedding`), are driven by
Pulser sequences (:mod:`qgnn.pulses`), run on emulators or Pasqal's cloud
(:mod:`qgnn.backends`), and their measurements become features
(:mod:`qgnn.features`), kernels (:mod:`qgnn.kernels`) and PyG models
(:mod:`qgnn.nn`).
"""

from qgnn.errors import QgnnError

__version__ = "0.1.0"
__all__ = ["QgnnError", "__version__"]
