"""Pulse schedules: small value objects that build a Pulser Sequence on a device.

A schedule drives every atom with the device's global Rydberg channel
(``rydberg_global``) and, when it carries a :class:`~qgnn.pulses.NodeDetuning`,
each atom with a constant local detuning through the device's DMM
(``dmm_0``), so the Hamiltonian is

    H(t) = Σ_i Ω(t)/2 σx_i − Σ_i [δ(t) + w_i·δ_DMM] n_i + Σ_{i<j} C6/r_ij⁶ n_i n_j

with Ω, δ and δ_DMM in rad/µs, weights w_i ∈ [0, 1] and times in ns (Pulser's
units). Every schedule builds through one path (:meth:`build`); the graph →
sequence route that maps node attributes to qubit weights is
:func:`qgnn.pulses.build_sequence`. Parameters that do
not depend on the device (finite numbers, non-negative amplitudes, integer
durations) are checked when the schedule is created; the device's limits
(maximum amplitude and detuning, clock period, minimum and maximum durations)
are checked by :meth:`build`. Durations that are not a multiple of the
channel's clock period are **rejected**, never rounded: the error names the
two nearest valid durations.

Example:
    >>> import pulser
    >>> from pulser.devices import AnalogDevice
    >>> reg = pulser.Register.from_coordinates([(0, 0), (6, 0)], prefix="q")
    >>> seq = ConstantDrive().build(reg, AnalogDevice)
    >>> seq.get_duration()
    660
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, runtime_checkable

import pulser
from pulser.channels.base_channel import Channel
from pulser.devices import Device, VirtualDevice
from pulser.register.base_register import BaseRegister
from pulser.waveforms import ConstantWaveform, RampWaveform

from qgnn.errors import ScheduleError
from qgnn.pulses.detuning import NodeDetuning
from qgnn.pulses.devices import DMM_DEVICE_NAMES, AnyDevice, has_dmm

CHANNEL = "rydberg_global"
"""The Pulser channel every schedule drives (global Rydberg addressing)."""

TWO_PI = 2.0 * math.pi


@runtime_checkable
class Schedule(Protocol):
    """A pulse schedule: turns a register into a Pulser Sequence on a device."""

    @property
    def max_rabi_frequency(self) -> float:
        """Largest Rabi frequency Ω reached by the schedule (rad/µs)."""
        ...

    @property
    def duration(self) -> int:
        """Total duration of the schedule (ns)."""
        ...

    @property
    def node_detuning(self) -> NodeDetuning | None:
        """Node labels as local detuning, or ``None`` (global drive only)."""
        ...

    @property
    def embedding_rabi_frequency(self) -> float:
        """The Ω (rad/µs) whose blockade radius the register is embedded for."""
        ...

    def build(
        self, register: BaseRegister, device: AnyDevice, qubit_weights: Mapping[str, float] | None = None
    ) -> pulser.Sequence:
        """Build and validate the Sequence of ``register`` on ``device``."""
        ...


# --------------------------------------------------------------------------- checks


def _real(owner: str, name: str, value: Any) -> float:
    """Return ``value`` as a finite float or raise a ScheduleError naming it."""
    if isinstance(value, (bool, str, bytes)):
        raise ScheduleError(f"{owner}: {name} must be a real number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"{owner}: {name} must be a real number, got {value!r}") from exc
    if not math.isfinite(out):
        raise ScheduleError(f"{owner}: {name} must be finite, got {out}")
    return out


def _amplitude(owner: str, name: str, value: Any) -> float:
    out = _real(owner, name, value)
    if out < 0:
        raise ScheduleError(f"{owner}: {name} {out} rad/µs is negative; a Rabi frequency is ≥ 0")
    return out


def _duration(owner: str, name: str, value: Any) -> int:
    out = _real(owner, name, value)
    if out != int(out) or out <= 0:
        raise ScheduleError(f"{owner}: {name} must be a positive whole number of ns, got {value!r}")
    return int(out)


def _device_label(device: AnyDevice) -> str:
    return f"{device.name}'s {CHANNEL}"


def _check_amplitude_on(owner: str, name: str, value: float, device: AnyDevice, channel: Channel) -> None:
    if channel.max_amp is not None and value > channel.max_amp:
        raise ScheduleError(
            f"{owner}: {name} {value:.6g} rad/µs exceeds {_device_label(device)} max_amp "
            f"{channel.max_amp:.6g} rad/µs; lower it"
        )


def _check_average_amplitude_on(
    owner: str, name: str, value: float, device: AnyDevice, channel: Channel
) -> None:
    if 0 < value < channel.min_avg_amp:
        raise ScheduleError(
            f"{owner}: {name} {value:.6g} rad/µs is below {_device_label(device)} min_avg_amp "
            f"{channel.min_avg_amp:.6g} rad/µs; use 0 or at least {channel.min_avg_amp:.6g}"
        )


def _check_detuning_on(owner: str, name: str, value: float, device: AnyDevice, channel: Channel) -> None:
    if channel.max_abs_detuning is not None and abs(value) > channel.max_abs_detuning:
        raise ScheduleError(
            f"{owner}: {name} {value:.6g} rad/µs exceeds {_device_label(device)} max_abs_detuning "
            f"{channel.max_abs_detuning:.6g} rad/µs (|δ| must stay below it)"
        )


def _check_duration_on(owner: str, name: str, value: int, device: AnyDevice, channel: Channel) -> None:
    label = _device_label(device)
    if value < channel.min_duration:
        raise ScheduleError(
            f"{owner}: {name} {value} ns is shorter than {label} min_duration {channel.min_duration} ns"
        )
    if channel.max_duration is not None and value > channel.max_duration:
        raise ScheduleError(
            f"{owner}: {name} {value} ns exceeds {label} max_duration {channel.max_duration} ns"
        )
    period = channel.clock_period
    if value % period:
        below = value - value % period
        raise ScheduleError(
            f"{owner}: {name} {value} ns is not a multiple of {label} clock period {period} ns "
            f"(durations are not rounded): use {below or period} or {below + period} ns"
        )


def _check_total_on(owner: str, total: int, device: AnyDevice) -> None:
    limit = device.max_sequence_duration
    if limit is not None and total > limit:
        raise ScheduleError(
            f"{owner}: total duration {total} ns exceeds {device.name}'s max_sequence_duration {limit} ns"
        )


def _channel(owner: str, register: Any, device: Any) -> Channel:
    """Check the register and device types; return the device's global Rydberg channel."""
    if not isinstance(register, BaseRegister):
        raise ScheduleError(
            f"{owner}: register must be a pulser Register, got {type(register).__name__}; "
            "build one with qgnn.embedding or pulser.Register"
        )
    if not isinstance(device, Device | VirtualDevice):
        raise ScheduleError(
            f"{owner}: device must be a pulser Device (e.g. pulser.devices.AnalogDevice), "
            f"got {type(device).__name__}"
        )
    channel = device.channels.get(CHANNEL)
    if channel is None:
        raise ScheduleError(
            f"{owner}: {device.name} has no '{CHANNEL}' channel (it has {sorted(device.channels)}); "
            "use a device with global Rydberg addressing such as AnalogDevice"
        )
    return channel


DMM_ID = "dmm_0"
"""The DMM channel a schedule's NodeDetuning drives."""


def _dmm_weights(
    owner: str,
    node_detuning: NodeDetuning | None,
    qubit_weights: Mapping[str, float] | None,
    register: BaseRegister,
    device: AnyDevice,
) -> dict[str, float] | None:
    """The checked qubit → weight map of the DMM, or ``None`` when the sequence needs no DMM."""
    if node_detuning is None:
        if qubit_weights is not None:
            raise ScheduleError(
                f"{owner}: qubit_weights were given but the schedule has no node_detuning; "
                f"use {owner}(node_detuning=NodeDetuning(...))"
            )
        return None
    if qubit_weights is None:
        raise ScheduleError(
            f"{owner}: the schedule has a node_detuning, so build() needs qubit_weights "
            "(qubit id → weight); qgnn.pulses.build_sequence(graph, embedding, ...) computes them"
        )
    if not has_dmm(device):
        raise ScheduleError(
            f"{owner}: node labels need a DMM (local detuning), and {device.name} has none; "
            f"devices with one: {', '.join(DMM_DEVICE_NAMES)}"
        )
    qubits = set(register.qubit_ids)
    if set(qubit_weights) != qubits:
        missing, extra = (
            sorted(map(str, qubits - set(qubit_weights))),
            sorted(map(str, set(qubit_weights) - qubits)),
        )
        raise ScheduleError(
            f"{owner}: qubit_weights must give one weight per register qubit (missing {missing[:8]}, "
            f"unknown {extra[:8]})"
        )
    weights = {str(q): float(w) for q, w in qubit_weights.items()}
    bad = {q: w for q, w in weights.items() if not (0.0 <= w <= 1.0)}
    if bad:
        raise ScheduleError(f"{owner}: DMM weights must lie in [0, 1], got {bad}")
    delta = node_detuning.detuning
    if delta == 0.0 or not any(weights.values()):
        return None  # no local detuning at all: the sequence is the global drive alone
    dmm = device.dmm_channels[DMM_ID]
    if dmm.bottom_detuning is not None and delta < dmm.bottom_detuning:
        raise ScheduleError(
            f"{owner}: node_detuning {delta:.6g} rad/µs is below {device.name}'s DMM bottom_detuning "
            f"{dmm.bottom_detuning:.6g} rad/µs; raise it"
        )
    total = delta * sum(weights.values())
    if dmm.total_bottom_detuning is not None and total < dmm.total_bottom_detuning:
        raise ScheduleError(
            f"{owner}: node_detuning × the sum of the weights is {total:.6g} rad/µs, below {device.name}'s "
            f"DMM total_bottom_detuning {dmm.total_bottom_detuning:.6g} rad/µs; lower |δ_DMM| or the weights"
        )
    if abs(delta) < dmm.min_avg_abs_detuning:
        raise ScheduleError(
            f"{owner}: |node_detuning| {abs(delta):.6g} rad/µs is below {device.name}'s DMM "
            f"min_avg_abs_detuning {dmm.min_avg_abs_detuning:.6g} rad/µs; use 0 or at least that"
        )
    qubit, lowest = min(((q, w) for q, w in weights.items() if w > 0), key=lambda item: item[1])
    if lowest * abs(delta) < dmm.min_avg_abs_detuning:
        raise ScheduleError(
            f"{owner}: qubit {qubit} gets weight {lowest:.4g}, i.e. a local detuning of "
            f"{lowest * abs(delta):.4g} rad/µs, below {device.name}'s DMM min_avg_abs_detuning "
            f"{dmm.min_avg_abs_detuning:.6g} rad/µs: give it weight 0 or at least "
            f"{dmm.min_avg_abs_detuning / abs(delta):.4g} (or raise |δ_DMM|)"
        )
    return weights


class _Builder:
    """The one build path shared by every schedule: check, then assemble the Sequence."""

    node_detuning: NodeDetuning | None

    @property
    def max_rabi_frequency(self) -> float:  # pragma: no cover - every schedule overrides it
        raise NotImplementedError

    @property
    def embedding_rabi_frequency(self) -> float:
        """The Ω (rad/µs) whose blockade radius registers are embedded for: the schedule's largest Ω."""
        return self.max_rabi_frequency

    @property
    def duration(self) -> int:  # pragma: no cover - every schedule overrides it
        raise NotImplementedError

    def _pulses(self, owner: str, device: AnyDevice, channel: Channel) -> list[Callable[[], pulser.Pulse]]:
        """Check the schedule against ``channel``'s limits; return the global pulses in time order."""
        raise NotImplementedError  # pragma: no cover

    def build(
        self, register: BaseRegister, device: AnyDevice, qubit_weights: Mapping[str, float] | None = None
    ) -> pulser.Sequence:
        """Build the Sequence of ``register`` on ``device``.

        Args:
            register: the atoms (pulser Register, µm).
            device: the pulser Device whose limits apply.
            qubit_weights: qubit id → DMM weight in [0, 1], one per qubit;
                required when the schedule has a ``node_detuning`` (see
                :func:`qgnn.pulses.build_sequence`), else ``None``.

        Raises:
            ScheduleError: a parameter violates the device's limits, the device
                has no DMM for a node detuning, or Pulser rejects the register
                or the sequence.
        """
        owner = type(self).__name__
        channel = _channel(owner, register, device)
        pulses = self._pulses(owner, device, channel)
        _check_total_on(owner, self.duration, device)
        weights = _dmm_weights(owner, self.node_detuning, qubit_weights, register, device)
        try:
            seq = pulser.Sequence(register, device)
            seq.declare_channel(CHANNEL, CHANNEL)
            for make_pulse in pulses:
                seq.add(make_pulse(), CHANNEL)
            if weights is not None:
                assert self.node_detuning is not None
                seq.config_detuning_map(register.define_detuning_map(weights, "node_labels"), DMM_ID)
                seq.add_dmm_detuning(ConstantWaveform(self.duration, self.node_detuning.detuning), DMM_ID)
        except (ValueError, TypeError) as exc:
            raise ScheduleError(
                f"{owner}: {device.name} rejected the sequence for a {len(register.qubit_ids)}-atom "
                f"register: {exc}"
            ) from exc
        return seq


def _node_detuning(owner: str, value: Any) -> NodeDetuning | None:
    if value is not None and not isinstance(value, NodeDetuning):
        raise ScheduleError(
            f"{owner}: node_detuning must be a qgnn.pulses.NodeDetuning or None, got {type(value).__name__}"
        )
    return value


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ConstantDrive(_Builder):
    """Constant global drive: the quantum evolution kernel's pulse.

    Ω(t) = ``amplitude`` and δ(t) = ``detuning`` for ``duration`` ns. The
    defaults (Ω = 2π·1 rad/µs, δ = 0, 660 ns) are those of Pasqal's QPU
    quantum-evolution-kernel experiment.

    Args:
        amplitude: Rabi frequency Ω (rad/µs, ≥ 0), default 2π·1.0.
        detuning: detuning δ (rad/µs), default 0.
        duration: pulse duration (ns), default 660.
        node_detuning: node labels as local detuning (needs a device with a
            DMM), default ``None``.
    """

    amplitude: float = TWO_PI * 1.0
    detuning: float = 0.0
    duration: int = 660  # type: ignore[assignment]  # a field here, a property in _Builder
    node_detuning: NodeDetuning | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "amplitude", _amplitude(owner, "amplitude", self.amplitude))
        object.__setattr__(self, "detuning", _real(owner, "detuning", self.detuning))
        object.__setattr__(self, "duration", _duration(owner, "duration", self.duration))
        object.__setattr__(self, "node_detuning", _node_detuning(owner, self.node_detuning))

    @property
    def max_rabi_frequency(self) -> float:
        """Largest Ω of the schedule (rad/µs)."""
        return self.amplitude

    def _pulses(self, owner: str, device: AnyDevice, channel: Channel) -> list[Callable[[], pulser.Pulse]]:
        _check_amplitude_on(owner, "amplitude", self.amplitude, device, channel)
        _check_average_amplitude_on(owner, "amplitude", self.amplitude, device, channel)
        _check_detuning_on(owner, "detuning", self.detuning, device, channel)
        _check_duration_on(owner, "duration", self.duration, device, channel)
        return [partial(pulser.Pulse.ConstantPulse, self.duration, self.amplitude, self.detuning, 0.0)]


@dataclass(frozen=True)
class AdiabaticSweep(_Builder):
    """Adiabatic preparation: Ω ramps up, δ sweeps, Ω ramps down.

    Three linear pieces: during ``rise`` Ω ramps 0 → ``amplitude`` at
    δ = ``detuning_start``; during ``sweep`` δ ramps ``detuning_start`` →
    ``detuning_end`` at constant Ω; during ``fall`` Ω ramps back to 0 at
    δ = ``detuning_end``. The defaults fit AnalogDevice (2752 ns in total).

    Args:
        amplitude: plateau Rabi frequency Ω (rad/µs, ≥ 0), default 2π·1.0.
        detuning_start: initial detuning (rad/µs), default −2π·3.0.
        detuning_end: final detuning (rad/µs), default 2π·1.0.
        rise: Ω ramp-up duration (ns), default 252.
        sweep: detuning sweep duration (ns), default 2000.
        fall: Ω ramp-down duration (ns), default 500.
        node_detuning: node labels as local detuning (needs a device with a
            DMM), default ``None``.
    """

    amplitude: float = TWO_PI * 1.0
    detuning_start: float = -TWO_PI * 3.0
    detuning_end: float = TWO_PI * 1.0
    rise: int = 252
    sweep: int = 2000
    fall: int = 500
    node_detuning: NodeDetuning | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "amplitude", _amplitude(owner, "amplitude", self.amplitude))
        for name in ("detuning_start", "detuning_end"):
            object.__setattr__(self, name, _real(owner, name, getattr(self, name)))
        for name in ("rise", "sweep", "fall"):
            object.__setattr__(self, name, _duration(owner, name, getattr(self, name)))
        object.__setattr__(self, "node_detuning", _node_detuning(owner, self.node_detuning))

    @property
    def max_rabi_frequency(self) -> float:
        """Largest Ω of the schedule (rad/µs)."""
        return self.amplitude

    @property
    def duration(self) -> int:
        """Total duration ``rise + sweep + fall`` (ns)."""
        return self.rise + self.sweep + self.fall

    def _pulses(self, owner: str, device: AnyDevice, channel: Channel) -> list[Callable[[], pulser.Pulse]]:
        _check_amplitude_on(owner, "amplitude", self.amplitude, device, channel)
        for name in ("detuning_start", "detuning_end"):
            _check_detuning_on(owner, name, getattr(self, name), device, channel)
        for name in ("rise", "sweep", "fall"):
            _check_duration_on(owner, name, getattr(self, name), device, channel)
        omega, d0, d1 = self.amplitude, self.detuning_start, self.detuning_end
        rise, sweep, fall = self.rise, self.sweep, self.fall
        return [
            lambda: pulser.Pulse(RampWaveform(rise, 0.0, omega), ConstantWaveform(rise, d0), 0.0),
            lambda: pulser.Pulse(ConstantWaveform(sweep, omega), RampWaveform(sweep, d0, d1), 0.0),
            lambda: pulser.Pulse(RampWaveform(fall, omega, 0.0), ConstantWaveform(fall, d1), 0.0),
        ]


@dataclass(frozen=True)
class PiecewiseConstant(_Builder):
    """Piecewise-constant drive, the form trained pulses export to.

    Args:
        segments: ``(duration ns, Ω rad/µs, δ rad/µs)`` per segment, in time
            order; at least one. Lists are accepted and stored as tuples.
        node_detuning: node labels as local detuning (needs a device with a
            DMM), default ``None``.
        embedding_rabi_frequency: the Ω (rad/µs) whose blockade radius the
            registers are embedded for; default ``None``: the largest segment
            Ω (stored resolved). A trained pulse keeps the Ω of the registers
            it was trained on.
    """

    segments: tuple[tuple[int, float, float], ...]
    node_detuning: NodeDetuning | None = None
    embedding_rabi_frequency: float | None = None  # type: ignore[assignment]  # a field here

    def __post_init__(self) -> None:
        owner = type(self).__name__
        segs = self.segments
        if isinstance(segs, (str, bytes)) or not isinstance(segs, Sequence):
            raise ScheduleError(f"{owner}: segments must be a sequence of (duration, Ω, δ), got {segs!r}")
        if len(segs) == 0:
            raise ScheduleError(f"{owner}: segments is empty; give at least one (duration ns, Ω, δ) segment")
        out = []
        for k, seg in enumerate(segs):
            if isinstance(seg, (str, bytes)) or not isinstance(seg, Sequence) or len(seg) != 3:
                raise ScheduleError(
                    f"{owner}: segment {k} must be (duration ns, Ω rad/µs, δ rad/µs), got {seg!r}"
                )
            out.append(
                (
                    _duration(owner, f"segment {k} duration", seg[0]),
                    _amplitude(owner, f"segment {k} amplitude", seg[1]),
                    _real(owner, f"segment {k} detuning", seg[2]),
                )
            )
        object.__setattr__(self, "segments", tuple(out))
        object.__setattr__(self, "node_detuning", _node_detuning(owner, self.node_detuning))
        if self.embedding_rabi_frequency is None:
            omega = max(seg[1] for seg in out)
        else:
            omega = _amplitude(owner, "embedding_rabi_frequency", self.embedding_rabi_frequency)
            if omega == 0:
                raise ScheduleError(f"{owner}: embedding_rabi_frequency must be > 0 rad/µs (or None)")
        object.__setattr__(self, "embedding_rabi_frequency", omega)

    @property
    def max_rabi_frequency(self) -> float:
        """Largest Ω over the segments (rad/µs)."""
        return max(seg[1] for seg in self.segments)

    @property
    def duration(self) -> int:
        """Sum of the segment durations (ns)."""
        return sum(seg[0] for seg in self.segments)

    def _pulses(self, owner: str, device: AnyDevice, channel: Channel) -> list[Callable[[], pulser.Pulse]]:
        for k, (dur, omega, delta) in enumerate(self.segments):
            _check_amplitude_on(owner, f"segment {k} amplitude", omega, device, channel)
            _check_average_amplitude_on(owner, f"segment {k} amplitude", omega, device, channel)
            _check_detuning_on(owner, f"segment {k} detuning", delta, device, channel)
            _check_duration_on(owner, f"segment {k} duration", dur, device, channel)
        return [
            partial(pulser.Pulse.ConstantPulse, dur, omega, delta, 0.0) for dur, omega, delta in self.segments
        ]
