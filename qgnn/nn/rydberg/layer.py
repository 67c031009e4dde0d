"""``RydbergEvolution``: the trainable quantum layer (torch ``nn.Module``)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import torch
from pulser.devices import Device, VirtualDevice
from torch import Tensor, nn

from qgnn.embedding import DEFAULT_RABI_FREQUENCY
from qgnn.errors import InvalidInputError, graph_label
from qgnn.nn.rydberg.atoms import AtomGraph, Drive, Engine, Evolved
from qgnn.nn.rydberg.pulse import (
    TWO_PI,
    PulseBounds,
    TrainablePulse,
    plot_pulse,
    schedule_from_values,
    write_pulse,
)

ENGINES = ("torch", "pennylane")


@dataclass(frozen=True, eq=False)
class RydbergOutput:
    """What the atoms of each graph measure at the end of the pulse (torch tensors with gradients).

    Index ``k`` of a graph's tensors is qubit ``k``, i.e. node ``atoms[g].node_ids[k]``.

    Args:
        atoms: the evolved graphs.
        occupations: ⟨n_i⟩ per graph, shape ``(n,)``.
        correlations: ⟨n_i n_j⟩ per graph, shape ``(n, n)`` (diagonal = ⟨n_i⟩).
        excitations: P(k excitations), k = 0..n, per graph, shape ``(n + 1,)``.
    """

    atoms: tuple[AtomGraph, ...]
    occupations: tuple[Tensor, ...]
    correlations: tuple[Tensor, ...]
    excitations: tuple[Tensor, ...]

    def connected(self, g: int) -> Tensor:
        """C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩ of graph ``g``, shape ``(n, n)``."""
        occ = self.occupations[g]
        return self.correlations[g] - occ[:, None] * occ[None, :]

    def excitation_matrix(self, length: int | None = None) -> Tensor:
        """Excitation distributions zero-padded to ``length`` (default 1 + largest n), ``(B, length)``."""
        width = max(p.shape[0] for p in self.excitations)
        length = width if length is None else length
        if length < width:
            raise InvalidInputError(f"length {length} is shorter than the largest distribution ({width})")
        return torch.stack([nn.functional.pad(p, (0, length - p.shape[0])) for p in self.excitations])


def _moments(atoms: AtomGraph, state: Evolved) -> tuple[Tensor, Tensor, Tensor]:
    p, bits = state.probabilities, state.bits
    occupation = bits.T @ p
    correlation = bits.T @ (p[:, None] * bits)
    excitation = torch.zeros(atoms.n_atoms + 1, dtype=p.dtype).index_add(0, state.n_excited, p)
    return occupation, correlation, excitation


class RydbergEvolution(nn.Module):
    r"""A graph's atoms evolved under a trainable piecewise-constant pulse.

    For each graph's register (atom positions from its embedding) the layer
    evolves all-ground atoms under

    .. math::
        H(t) = \sum_i \frac{\Omega_k}{2}\sigma^x_i - \sum_i (\delta_k + w_{l(i)}\,\delta_{DMM})\, n_i
               + \sum_{i<j} \frac{C_6}{r_{ij}^6} n_i n_j \qquad (t \in \text{segment } k)

    with C6 = ``device.interaction_coeff`` (rad/µs·µm⁶), ``segments`` equal
    segments over ``duration`` ns with trainable (Ω_k, δ_k) in rad/µs, and —
    with ``labels`` — a trainable DMM weight w_l ∈ [0, 1] per value of the node
    attribute ``attribute`` and a trainable δ_DMM ≤ 0. It returns ⟨n_i⟩,
    ⟨n_i n_j⟩ and the excitation-count distribution as tensors with gradients.
    Every value is reparameterised into the device's limits (see
    :mod:`qgnn.nn.rydberg.pulse`), so :meth:`to_schedule` always builds.

    Engines (``engine=``):

    - ``"torch"`` (default): exact Chebyshev propagation of each segment in
      torch, optionally in an energy-truncated basis (:mod:`qgnn.nn.rydberg.exact`).
    - ``"pennylane"``: a Trotterised RX/RZ/IsingZZ circuit on PennyLane's
      ``default.qubit`` with torch backprop (:mod:`qgnn.nn.rydberg.trotter`).

    Args:
        device: the Pulser device whose limits and C6 apply (default
            :data:`qgnn.pulses.AnalogDMMDevice` with labels, else ``AnalogDevice``).
        labels: the node-attribute values that get a DMM weight, or ``None`` (no DMM).
        attribute: the node attribute holding the labels (default ``"label"``).
        segments: number of piecewise-constant segments K (default 5).
        duration: total duration in ns, a multiple of the clock period (default 660).
        max_amplitude: largest Ω (rad/µs), default the device's max_amp.
        detuning_range: (lowest, highest) δ in rad/µs, default ±2π·5, clipped to the device.
        max_dmm_detuning: largest |δ_DMM| in rad/µs (default 2π·5), clipped to the DMM.
        amplitude: initial Ω of every segment (default 2π·1 rad/µs).
        detuning: initial δ of every segment (default 0).
        weight: initial DMM weight of every label (default 0.5).
        dmm_detuning: initial δ_DMM (default −2π·1 rad/µs).
        engine: ``"torch"`` or ``"pennylane"``.
        energy_cutoff: torch engine: keep bitstrings whose interaction energy is
            ≤ ``energy_cutoff`` × E_drive (E_drive = the largest drive energy the
            bounds allow, :attr:`PulseBounds.drive_energy`); ``None`` keeps all 2**n (exact).
        max_states: torch engine: basis states evolved together in one chunk.
        embedding_rabi_frequency: the Ω (rad/µs) the registers are embedded for (their
            blockade radius, ``Embedding.rabi_frequency``), default
            :data:`qgnn.embedding.DEFAULT_RABI_FREQUENCY`; the exported schedule keeps it,
            and :meth:`prepare` refuses embeddings made for another Ω.
        trotter_step: pennylane engine: largest Trotter step (ns), default 4 (max |Δ⟨n_i⟩|
            ≈ 2e-4 on random pulses; the error falls as the step squared).

    Example:
        >>> import networkx as nx
        >>> from qgnn.embedding import embed
        >>> g = nx.path_graph(3)
        >>> layer = RydbergEvolution(segments=2, duration=200)
        >>> out = layer([AtomGraph.from_embedding(g, embed(g))])
        >>> out.occupations[0].shape
        torch.Size([3])
    """

    def __init__(
        self,
        device: Device | VirtualDevice | None = None,
        *,
        labels: Sequence[Hashable] | None = None,
        attribute: str = "label",
        segments: int = 5,
        duration: int = 660,
        max_amplitude: float | None = None,
        detuning_range: tuple[float, float] = (-TWO_PI * 5.0, TWO_PI * 5.0),
        max_dmm_detuning: float = TWO_PI * 5.0,
        amplitude: float = TWO_PI,
        detuning: float = 0.0,
        weight: float = 0.5,
        dmm_detuning: float = -TWO_PI,
        engine: str = "torch",
        energy_cutoff: float | None = None,
        max_states: int = 1 << 15,
        trotter_step: float = 4.0,
        embedding_rabi_frequency: float = DEFAULT_RABI_FREQUENCY,
    ) -> None:
        super().__init__()
        if device is None:
            from pulser.devices import AnalogDevice

            from qgnn.pulses import AnalogDMMDevice

            device = AnalogDMMDevice if labels is not None else AnalogDevice
        bounds = PulseBounds.from_device(
            device,
            segments=segments,
            duration=duration,
            max_amplitude=max_amplitude,
            detuning=detuning_range,
            max_dmm_detuning=max_dmm_detuning if labels is not None else None,
        )
        self.device = device
        if not (isinstance(embedding_rabi_frequency, (int, float)) and embedding_rabi_frequency > 0):
            raise InvalidInputError(
                f"embedding_rabi_frequency must be > 0 rad/µs, got {embedding_rabi_frequency!r}"
            )
        self.embedding_rabi_frequency = float(embedding_rabi_frequency)
        self.pulse = TrainablePulse(
            bounds,
            labels,
            attribute=attribute,
            amplitude=amplitude,
            detuning=detuning,
            weight=weight,
            dmm_detuning=dmm_detuning,
        )
        c6 = float(device.interaction_coeff)
        self.engine: Engine
        if engine == "torch":
            from qgnn.nn.rydberg.exact import ExactEngine

            if energy_cutoff is not None and (
                not isinstance(energy_cutoff, (int, float)) or not energy_cutoff > 0
            ):
                raise InvalidInputError(
                    f"energy_cutoff must be > 0 (units of E_drive) or None, got {energy_cutoff!r}"
                )
            cutoff = math.inf if energy_cutoff is None else float(energy_cutoff) * bounds.drive_energy
            self.engine = ExactEngine(c6, cutoff, max_states=max_states)
        elif engine == "pennylane":
            from qgnn.nn.rydberg.trotter import PennyLaneEngine

            self.engine = PennyLaneEngine(c6, trotter_step)
        else:
            raise InvalidInputError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")

    @property
    def attribute(self) -> str | None:
        """The node attribute read for DMM weights, or ``None`` without labels."""
        return self.pulse.attribute if self.pulse.has_dmm else None

    def prepare(self, graphs: Sequence[nx.Graph], embeddings: Sequence[Any]) -> list[AtomGraph]:
        """:class:`AtomGraph` of each (graph, embedding) pair, reading the labels the layer needs.

        Raises:
            InvalidInputError: lengths differ, an embedding is not its graph's,
                a node lacks the label attribute, or an embedding was made for
                another Ω than ``embedding_rabi_frequency``.
        """
        if len(graphs) != len(embeddings):
            raise InvalidInputError(f"{len(graphs)} graphs but {len(embeddings)} embeddings")
        for emb in embeddings:
            omega = getattr(emb, "rabi_frequency", None)
            if omega is not None and not math.isclose(omega, self.embedding_rabi_frequency, rel_tol=1e-9):
                raise InvalidInputError(
                    f"{graph_label(getattr(emb, 'index', None))} was embedded for Ω = {omega:.6g} rad/µs, "
                    f"the layer for {self.embedding_rabi_frequency:.6g}: pass "
                    f"embedding_rabi_frequency={omega!r}"
                )
        return [
            AtomGraph.from_embedding(g, e, self.attribute) for g, e in zip(graphs, embeddings, strict=True)
        ]

    def drive(self) -> Drive:
        """The current pulse as tensors (differentiable in the raw parameters)."""
        return Drive(
            tuple(d / 1000.0 for d in self.pulse.bounds.durations),
            self.pulse.amplitude(),
            self.pulse.detuning(),
            self.pulse.dmm_detuning(),
        )

    def qubit_weights(self, atoms: AtomGraph) -> Tensor:
        """DMM weight of each qubit of ``atoms`` (zeros without labels), shape ``(n,)``."""
        if not self.pulse.has_dmm:
            return torch.zeros(atoms.n_atoms, dtype=torch.float64)
        if atoms.labels is None:
            raise InvalidInputError(
                f"{atoms.where}: the layer weights nodes by {self.pulse.attribute!r}; prepare the atoms "
                "with layer.prepare(graphs, embeddings)"
            )
        index = self.pulse.label_indices(atoms.labels, atoms.where)
        return self.pulse.label_weights()[torch.tensor(index, dtype=torch.long)]

    def forward(self, atoms: Sequence[AtomGraph]) -> RydbergOutput:
        """Evolve each graph's atoms; see :class:`RydbergOutput`."""
        atoms = list(atoms)
        if not atoms or not all(isinstance(a, AtomGraph) for a in atoms):
            raise InvalidInputError(
                "RydbergEvolution takes a non-empty list of AtomGraph (layer.prepare(...))"
            )
        states = self.engine.evolve(atoms, [self.qubit_weights(a) for a in atoms], self.drive())
        moments = [_moments(a, s) for a, s in zip(atoms, states, strict=True)]
        return RydbergOutput(
            tuple(atoms),
            tuple(m[0] for m in moments),
            tuple(m[1] for m in moments),
            tuple(m[2] for m in moments),
        )

    def pulse_values(self) -> dict[str, Any]:
        """The learned pulse as numbers: :meth:`TrainablePulse.values` and ``embedding_rabi_frequency``."""
        return {**self.pulse.values(), "embedding_rabi_frequency": self.embedding_rabi_frequency}

    def to_schedule(self) -> Any:
        """The learned pulse as a :class:`qgnn.pulses.PiecewiseConstant` (with its ``NodeDetuning``).

        Build it with ``qgnn.pulses.build_sequence(graph, embedding, schedule, layer.device)``.
        """
        return schedule_from_values(self.pulse_values())

    def save(self, path: str | Path, *, plot: bool = True, title: str | None = None) -> list[Path]:
        """Write the pulse as JSON to ``path`` and, with ``plot``, a PNG next to it (same stem)."""
        values = self.pulse_values()
        json_path = write_pulse(values, Path(path))
        files = [json_path]
        if plot:
            files.append(plot_pulse(values, json_path.with_suffix(".png"), title=title))
        return files
