"""The PennyLane engine: a Trotterised gate circuit on ``default.qubit`` with torch backprop.

PennyLane's pulse module (``qml.pulse.rydberg_interaction``, ``rydberg_drive``,
``ParametrizedEvolution``) needs JAX, so the piecewise-constant Hamiltonian

    H_k = Ω_k/2 Σ_i σx_i − Σ_i δ_i n_i + Σ_{i<j} U_ij n_i n_j,   δ_i = δ_k + w_i δ_DMM,

is split (Strang) into steps of Δ ≤ ``trotter_step`` ns, each

    RX(Ω_k Δ/2)^{⊗n} · Π_i RZ_i(δ_i Δ − Σ_j U_ij Δ/2) · Π_{i<j} IsingZZ_ij(U_ij Δ/2) · RX(Ω_k Δ/2)^{⊗n}

(equal to exp(−i H_k Δ) up to a global phase and O(Δ³) per step), using
n = (1 − Z)/2, RX(θ) = exp(−iθX/2), RZ(θ) = exp(−iθZ/2), IsingZZ(φ) =
exp(−iφ Z⊗Z/2); adjacent half RX layers are merged. U_ij = C6/r_ij⁶ is
computed here from the Pulser device's ``interaction_coeff`` (rad/µs·µm⁶):
PennyLane's own ``rydberg_interaction`` (C6 in MHz·µm⁶, n = 70 default) is
never used. The circuit returns ``qml.probs`` over all 2**n bitstrings
(wire 0 = qubit 0 = most significant bit, as in Pulser). One device per
register size is built once and reused. The global error is O(Δ²): measured
against the exact engine in the tests and benchmarks/trainable.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from qgnn.backends.base import bit_matrix
from qgnn.backends.subspace import interaction_matrix
from qgnn.errors import BackendError, InvalidInputError, require_extra
from qgnn.nn.rydberg.atoms import AtomGraph, Drive, Evolved

#: Largest register the engine simulates (the state vector has 2**n amplitudes).
MAX_QUBITS = 16


class PennyLaneEngine:
    """Trotterised evolution on a PennyLane device (``default.qubit``, backprop through torch).

    Args:
        c6: interaction coefficient (rad/µs·µm⁶), from ``device.interaction_coeff``.
        trotter_step: largest Trotter step Δ (ns); each segment is cut into equal steps.
        device_name: the PennyLane device (it must support ``diff_method="backprop"``
            with torch; ``default.qubit`` is).
    """

    name = "pennylane"

    def __init__(self, c6: float, trotter_step: float = 4.0, *, device_name: str = "default.qubit") -> None:
        require_extra("pennylane", "pennylane")
        if (
            isinstance(trotter_step, bool)
            or not isinstance(trotter_step, (int, float))
            or not trotter_step > 0
        ):
            raise InvalidInputError(f"trotter_step must be > 0 ns, got {trotter_step!r}")
        self.c6 = float(c6)
        self.trotter_step = float(trotter_step)
        self.device_name = device_name
        self._circuits: dict[int, Callable[..., Tensor]] = {}

    def _circuit(self, n: int) -> Callable[..., Tensor]:
        """The QNode for ``n`` wires (built once per register size)."""
        circuit = self._circuits.get(n)
        if circuit is not None:
            return circuit
        import pennylane as qml

        device = qml.device(self.device_name, wires=n)

        def evolve(rx: list[Tensor], rz: list[Tensor], zz: list[np.ndarray], steps: list[int]) -> Any:
            pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
            for k, m in enumerate(steps):
                for step in range(m):
                    angle = rx[k] / 2 if step == 0 else rx[k]
                    for i in range(n):
                        qml.RX(angle, wires=i)
                    for i in range(n):
                        qml.RZ(rz[k][i], wires=i)
                    for (i, j), phi in zip(pairs, zz[k], strict=True):
                        qml.IsingZZ(phi, wires=[i, j])
                for i in range(n):
                    qml.RX(rx[k] / 2, wires=i)
            return qml.probs(wires=range(n))

        circuit = qml.QNode(evolve, device, interface="torch", diff_method="backprop")
        self._circuits[n] = circuit
        return circuit

    def evolve(self, atoms: list[AtomGraph], weights: list[Tensor], drive: Drive) -> list[Evolved]:
        """Final states of ``atoms`` (all ground at t = 0) under ``drive``."""
        out = []
        for graph, w in zip(atoms, weights, strict=True):
            n = graph.n_atoms
            if n > MAX_QUBITS:
                raise BackendError(
                    f"{graph.where}: {n} atoms exceed the PennyLane engine's {MAX_QUBITS}-qubit state "
                    "vector; use engine='torch'"
                )
            u = interaction_matrix(graph.positions, self.c6)
            iu = np.triu_indices(n, 1)
            steps = [max(1, math.ceil(tau * 1000.0 / self.trotter_step - 1e-9)) for tau in drive.durations_us]
            deltas = [tau / m for tau, m in zip(drive.durations_us, steps, strict=True)]
            shift = torch.from_numpy(u.sum(axis=1) / 2)
            local = drive.detuning[:, None] + drive.dmm_detuning * w[None, :]  # (K, n) rad/µs
            rx = [drive.amplitude[k] * dt for k, dt in enumerate(deltas)]
            rz = [(local[k] - shift) * dt for k, dt in enumerate(deltas)]
            zz = [u[iu] * dt / 2 for dt in deltas]
            probs = self._circuit(n)(rx, rz, zz, steps)
            bits = torch.from_numpy(bit_matrix(n))
            out.append(Evolved(probs.to(torch.float64), bits, bits.sum(dim=1).to(torch.int64)))
        return out
