"""Trainable Rydberg evolution: learn the pulse (and the label weights), then run it on Pulser.

- :class:`RydbergEvolution` — the torch layer (``layer.py``);
- :class:`AtomGraph` — a graph's atoms as the layer sees them (``atoms.py``);
- :class:`TrainablePulse`, :class:`PulseBounds` — device-safe reparameterisation,
  JSON and plot of the learned pulse (``pulse.py``);
- engines: exact Chebyshev propagation in torch (``exact.py``, default) and a
  Trotterised PennyLane circuit (``trotter.py``).
"""

from qgnn.nn.rydberg.atoms import AtomGraph
from qgnn.nn.rydberg.layer import ENGINES, RydbergEvolution, RydbergOutput
from qgnn.nn.rydberg.pulse import PulseBounds, TrainablePulse, plot_pulse, schedule_from_values, write_pulse

__all__ = [
    "ENGINES",
    "AtomGraph",
    "PulseBounds",
    "RydbergEvolution",
    "RydbergOutput",
    "TrainablePulse",
    "plot_pulse",
    "schedule_from_values",
    "write_pulse",
]
