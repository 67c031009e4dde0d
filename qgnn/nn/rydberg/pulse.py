"""A trainable piecewise-constant pulse that cannot leave the device's limits.

The drive has ``K`` segments of fixed durations (multiples of the channel's
clock period); segment ``k`` holds a Rabi frequency Ω_k and a detuning δ_k
(rad/µs). With node labels, label ``l`` carries a DMM weight w_l ∈ [0, 1]
and one DMM detuning δ_DMM ≤ 0 (rad/µs) acts over the whole pulse, so atom
``i`` sees the local detuning δ_k + w_label(i)·δ_DMM.

Every value is a smooth function of an unconstrained raw parameter:

    Ω_k = Ω_lo + (Ω_hi − Ω_lo)·σ(a_k),      δ_k = δ_lo + (δ_hi − δ_lo)·σ(b_k),
    δ_DMM = −m + (δ_DMM,lo + m)·σ(e),       w_l = m/|δ_DMM| + (1 − m/|δ_DMM|)·σ(c_l),

with σ the logistic function, so any finite raw value (and ±∞: σ saturates
at exactly 0 or 1) gives a schedule the device accepts. The ranges come from
the device, narrowed by the caller's own bounds:

- Ω ∈ [min_avg_amp, max_amp] of ``rydberg_global`` (a segment's Ω is its average);
- |δ| ≤ max_abs_detuning;
- δ_DMM ≥ the DMM's ``bottom_detuning`` (weights are ≤ 1) and ≥
  ``total_bottom_detuning / device.max_atom_num`` (the summed weights of any
  register the device accepts are ≤ max_atom_num);
- every atom's DMM detuning w_l·|δ_DMM| ≥ m, the DMM's ``min_avg_abs_detuning``
  (Pulser rejects a map whose smallest non-zero weight times |δ_DMM| is below it):
  a weight cannot reach 0, and at |δ_DMM| = m all weights are 1. With m = 0
  (no such limit) the weights span [0, 1].

Pulser rounds detunings to 1e-6 rad/µs before comparing them with the
limits, so the detuning bounds stay :data:`MARGIN` inside them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pulser.devices import Device, VirtualDevice
from torch import Tensor, nn

from qgnn.errors import InvalidInputError, ScheduleError
from qgnn.pulses import CHANNEL

TWO_PI = 2.0 * math.pi
MARGIN = 1e-5
"""rad/µs kept between a detuning bound and the device's limit (Pulser rounds to 1e-6)."""


@dataclass(frozen=True)
class PulseBounds:
    """Where every trainable value may go (rad/µs), and the fixed segment durations (ns).

    Args:
        durations: segment durations (ns), multiples of the clock period.
        amplitude: ``(Ω_lo, Ω_hi)``.
        detuning: ``(δ_lo, δ_hi)``.
        dmm_detuning: lowest δ_DMM (< 0), or ``None`` without node labels.
        dmm_minimum: m, the smallest |w·δ_DMM| of a weighted atom (rad/µs, ≥ 0).
        device_name: the device the bounds were read from.
    """

    durations: tuple[int, ...]
    amplitude: tuple[float, float]
    detuning: tuple[float, float]
    dmm_detuning: float | None
    dmm_minimum: float
    device_name: str

    @property
    def drive_energy(self) -> float:
        """Largest single-atom drive energy the bounds allow, max(Ω_hi, max|δ| + |δ_DMM|) (rad/µs)."""
        local = max(abs(v) for v in self.detuning) + abs(self.dmm_detuning or 0.0)
        return max(self.amplitude[1], local)

    @classmethod
    def from_device(
        cls,
        device: Device | VirtualDevice,
        *,
        segments: int,
        duration: int,
        max_amplitude: float | None,
        detuning: tuple[float, float],
        max_dmm_detuning: float | None,
    ) -> PulseBounds:
        """Read the limits of ``device`` and intersect them with the caller's bounds.

        Args:
            device: the Pulser device (needs ``rydberg_global``; a DMM when
                ``max_dmm_detuning`` is given).
            segments: number of segments K ≥ 1.
            duration: total duration (ns), a multiple of the clock period.
            max_amplitude: largest Ω (rad/µs), or ``None`` for the device's max_amp.
            detuning: ``(δ_lo, δ_hi)`` (rad/µs), clipped to the device's max_abs_detuning.
            max_dmm_detuning: largest |δ_DMM| (rad/µs), or ``None`` for no DMM.

        Raises:
            ScheduleError: the device cannot run such a pulse, or a bound is malformed.
        """
        owner = "RydbergEvolution"
        if not isinstance(device, (Device, VirtualDevice)):
            raise ScheduleError(f"{owner}: device must be a pulser Device, got {type(device).__name__}")
        channel = device.channels.get(CHANNEL)
        if channel is None:
            raise ScheduleError(
                f"{owner}: {device.name} has no '{CHANNEL}' channel; use AnalogDevice or AnalogDMMDevice"
            )
        durations = _segment_durations(owner, device, channel, segments, duration)

        amp_hi = _finite(owner, "max_amplitude", max_amplitude) if max_amplitude is not None else None
        if channel.max_amp is not None:
            amp_hi = channel.max_amp if amp_hi is None else min(amp_hi, channel.max_amp)
        if amp_hi is None:
            raise ScheduleError(f"{owner}: {device.name} sets no max_amp; pass max_amplitude (rad/µs)")
        amp_lo = float(channel.min_avg_amp or 0.0)
        if not amp_hi > amp_lo:
            raise ScheduleError(
                f"{owner}: max_amplitude {amp_hi:.6g} rad/µs must exceed {device.name}'s min_avg_amp "
                f"{amp_lo:.6g} rad/µs"
            )

        if isinstance(detuning, (str, bytes)) or not isinstance(detuning, Sequence) or len(detuning) != 2:
            raise ScheduleError(f"{owner}: detuning must be a (low, high) pair in rad/µs, got {detuning!r}")
        lo, hi = (_finite(owner, "detuning bound", v) for v in detuning)
        if channel.max_abs_detuning is not None:
            cap = channel.max_abs_detuning - MARGIN
            lo, hi = max(lo, -cap), min(hi, cap)
        if not hi > lo:
            raise ScheduleError(
                f"{owner}: the detuning range {detuning!r} rad/µs is empty on {device.name} "
                f"(max_abs_detuning {channel.max_abs_detuning})"
            )

        dmm_lo, dmm_min = None, 0.0
        if max_dmm_detuning is not None:
            dmm_lo = -_finite(owner, "max_dmm_detuning", max_dmm_detuning)
            dmm_lo, dmm_min = _dmm_limits(owner, device, dmm_lo)
        return cls(durations, (amp_lo, float(amp_hi)), (lo, hi), dmm_lo, dmm_min, device.name)


def _finite(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScheduleError(f"{owner}: {name} must be a finite number (rad/µs), got {value!r}")
    return float(value)


def _segment_durations(
    owner: str, device: Device | VirtualDevice, channel: Any, segments: int, duration: int
) -> tuple[int, ...]:
    """Split ``duration`` into ``segments`` multiples of the clock period, as equal as possible."""
    for name, value in (("segments", segments), ("duration", duration)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ScheduleError(f"{owner}: {name} must be a positive integer, got {value!r}")
    period = channel.clock_period
    if duration % period:
        below = duration - duration % period
        raise ScheduleError(
            f"{owner}: duration {duration} ns is not a multiple of {device.name}'s clock period {period} ns: "
            f"use {below or period} or {below + period} ns"
        )
    base, extra = divmod(duration // period, segments)
    durations = tuple((base + (k < extra)) * period for k in range(segments))
    if min(durations) < channel.min_duration:
        raise ScheduleError(
            f"{owner}: {segments} segments of {duration} ns are shorter than {device.name}'s min_duration "
            f"{channel.min_duration} ns: use at most {duration // channel.min_duration} segments"
        )
    if channel.max_duration is not None and max(durations) > channel.max_duration:
        raise ScheduleError(
            f"{owner}: segments exceed {device.name}'s max_duration {channel.max_duration} ns"
        )
    if device.max_sequence_duration is not None and duration > device.max_sequence_duration:
        raise ScheduleError(
            f"{owner}: duration {duration} ns exceeds {device.name}'s max_sequence_duration "
            f"{device.max_sequence_duration} ns"
        )
    return durations


def _dmm_limits(owner: str, device: Device | VirtualDevice, wanted: float) -> tuple[float, float]:
    """(lowest δ_DMM ≥ ``wanted`` valid for any register, smallest |w·δ_DMM| of a weighted atom)."""
    from qgnn.pulses import DMM_DEVICE_NAMES, DMM_ID, has_dmm

    if not has_dmm(device) or DMM_ID not in device.dmm_channels:
        raise ScheduleError(
            f"{owner}: {device.name} has no DMM '{DMM_ID}', so node labels cannot set local detunings: use "
            f"one of {', '.join(DMM_DEVICE_NAMES)} (AnalogDMMDevice emulates AnalogDevice), or labels=None"
        )
    dmm = device.dmm_channels[DMM_ID]
    floor = wanted
    if dmm.bottom_detuning is not None:
        floor = max(floor, dmm.bottom_detuning + MARGIN)
    if dmm.total_bottom_detuning is not None:
        if device.max_atom_num is None:
            raise ScheduleError(
                f"{owner}: {device.name} sets a DMM total_bottom_detuning but no max_atom_num, so no "
                "δ_DMM is safe for every register"
            )
        floor = max(floor, dmm.total_bottom_detuning / device.max_atom_num + MARGIN)
    minimum = float(dmm.min_avg_abs_detuning or 0.0)
    if minimum:
        minimum += MARGIN
    if not floor < -minimum:
        raise ScheduleError(
            f"{owner}: max_dmm_detuning {-wanted:.6g} rad/µs leaves no room on {device.name}'s DMM "
            f"(|δ_DMM| must exceed its min_avg_abs_detuning {minimum:.6g} rad/µs)"
        )
    return float(floor), minimum


def _logit(fraction: float) -> float:
    f = min(max(fraction, 1e-3), 1.0 - 1e-3)
    return math.log(f / (1.0 - f))


def _initial(owner: str, name: str, value: Any, lo: float, hi: float) -> float:
    v = _finite(owner, name, value)
    if not lo <= v <= hi:
        raise InvalidInputError(f"{owner}: initial {name} {v:.6g} rad/µs lies outside [{lo:.6g}, {hi:.6g}]")
    return _logit((v - lo) / (hi - lo))


class TrainablePulse(nn.Module):
    """Raw parameters of the pulse and their device-safe physical values.

    Args:
        bounds: the :class:`PulseBounds` the values are mapped into.
        labels: node-attribute values that get a DMM weight (``None``: no DMM).
        attribute: node attribute the labels are read from (default ``"label"``).
        amplitude: initial Ω of every segment (rad/µs).
        detuning: initial δ of every segment (rad/µs).
        weight: initial DMM weight of every label, in [m/|δ_DMM|, 1] (see the module doc).
        dmm_detuning: initial δ_DMM (rad/µs, in [δ_DMM,lo, −m]).
    """

    def __init__(
        self,
        bounds: PulseBounds,
        labels: Sequence[Hashable] | None,
        *,
        attribute: str = "label",
        amplitude: float = TWO_PI,
        detuning: float = 0.0,
        weight: float = 0.5,
        dmm_detuning: float = -TWO_PI,
    ) -> None:
        super().__init__()
        owner = "RydbergEvolution"
        self.bounds = bounds
        self.attribute = attribute
        k = len(bounds.durations)
        a = _initial(owner, "amplitude", amplitude, *bounds.amplitude)
        b = _initial(owner, "detuning", detuning, *bounds.detuning)
        dtype = torch.float64
        self.raw_amplitude = nn.Parameter(torch.full((k,), a, dtype=dtype))
        self.raw_detuning = nn.Parameter(torch.full((k,), b, dtype=dtype))
        self.labels: tuple[Hashable, ...] | None = None
        self.label_index: dict[Hashable, int] = {}
        if labels is None:
            if bounds.dmm_detuning is not None:
                raise InvalidInputError(f"{owner}: DMM bounds were given without labels")
            return
        labels = tuple(labels)
        if not labels or len(set(labels)) != len(labels):
            raise InvalidInputError(f"{owner}: labels must be distinct and non-empty, got {labels!r}")
        if bounds.dmm_detuning is None:
            raise InvalidInputError(f"{owner}: labels need a DMM detuning bound")
        floor, minimum = bounds.dmm_detuning, bounds.dmm_minimum
        dmm = _finite(owner, "dmm_detuning", dmm_detuning)
        if not floor <= dmm <= -minimum:
            raise InvalidInputError(
                f"{owner}: initial dmm_detuning {dmm:.6g} rad/µs lies outside [{floor:.6g}, {-minimum:.6g}]"
            )
        w = _finite(owner, "weight", weight)
        w_min = minimum / abs(dmm) if minimum else 0.0
        if not w_min <= w <= 1.0:
            raise InvalidInputError(
                f"{owner}: initial weight {w} must lie in [{w_min:.3g}, 1] (w·|δ_DMM| ≥ the DMM's "
                f"min_avg_abs_detuning {minimum:.3g} rad/µs)"
            )
        self.labels = labels
        self.label_index = {label: i for i, label in enumerate(labels)}
        self.raw_dmm = nn.Parameter(torch.tensor(_logit((dmm + minimum) / (floor + minimum)), dtype=dtype))
        fraction = (w - w_min) / (1.0 - w_min) if w_min < 1.0 else 0.5
        self.raw_weights = nn.Parameter(torch.full((len(labels),), _logit(fraction), dtype=dtype))

    @property
    def has_dmm(self) -> bool:
        """Whether node labels drive a DMM."""
        return self.labels is not None

    def amplitude(self) -> Tensor:
        """Ω_k per segment (rad/µs), shape ``(K,)``."""
        lo, hi = self.bounds.amplitude
        return lo + (hi - lo) * torch.sigmoid(self.raw_amplitude)

    def detuning(self) -> Tensor:
        """δ_k per segment (rad/µs), shape ``(K,)``."""
        lo, hi = self.bounds.detuning
        return lo + (hi - lo) * torch.sigmoid(self.raw_detuning)

    def label_weights(self) -> Tensor:
        """DMM weight w_l per label, in [m/|δ_DMM|, 1] (see the module doc), shape ``(L,)``."""
        if not self.has_dmm:
            return torch.zeros(0, dtype=torch.float64)
        raw = torch.sigmoid(self.raw_weights)
        if not self.bounds.dmm_minimum:
            return raw
        w_min = self.bounds.dmm_minimum / self.dmm_detuning().abs()  # |δ_DMM| ≥ m > 0
        return w_min + (1.0 - w_min) * raw

    def dmm_detuning(self) -> Tensor:
        """δ_DMM (rad/µs, ≤ −m), a scalar tensor (0 without labels)."""
        if not self.has_dmm:
            return torch.zeros((), dtype=torch.float64)
        assert self.bounds.dmm_detuning is not None
        top = -self.bounds.dmm_minimum
        return top + (self.bounds.dmm_detuning - top) * torch.sigmoid(self.raw_dmm)

    def label_indices(self, labels: Sequence[Hashable], where: str) -> list[int]:
        """Index into :meth:`label_weights` of each label; a typed error names an unknown one."""
        out = []
        for pos, label in enumerate(labels):
            if label not in self.label_index:
                raise InvalidInputError(
                    f"{where}: qubit {pos} has {self.attribute}={label!r}, which has no DMM weight (known: "
                    f"{list(self.label_index)[:10]}); build the layer with every label of the dataset"
                )
            out.append(self.label_index[label])
        return out

    def values(self) -> dict[str, Any]:
        """The physical pulse as plain Python numbers (JSON-ready).

        Keys: ``device``, ``durations_ns``, ``amplitude`` and ``detuning``
        (rad/µs per segment), ``attribute``, ``labels`` and ``weights`` (in
        label order, or ``None``), ``dmm_detuning`` (rad/µs or ``None``).
        """
        with torch.no_grad():
            amplitude = [float(v) for v in self.amplitude()]
            detuning = [float(v) for v in self.detuning()]
            weights = [float(v) for v in self.label_weights()] if self.has_dmm else None
            dmm = float(self.dmm_detuning()) if self.has_dmm else None
        numbers = [*amplitude, *detuning, *(weights or ()), *([] if dmm is None else [dmm])]
        if not all(math.isfinite(v) for v in numbers):
            raise ScheduleError("RydbergEvolution: the pulse has non-finite values (NaN raw parameters)")
        values: dict[str, Any] = {
            "device": self.bounds.device_name,
            "durations_ns": list(self.bounds.durations),
            "amplitude": amplitude,
            "detuning": detuning,
            "attribute": self.attribute,
            "labels": list(self.labels) if self.labels is not None else None,
            "weights": weights,
            "dmm_detuning": dmm,
        }
        return values


def schedule_from_values(values: Mapping[str, Any]) -> Any:
    """The :class:`~qgnn.pulses.PiecewiseConstant` of :meth:`TrainablePulse.values` (or its JSON).

    Node labels become a :class:`~qgnn.pulses.NodeDetuning` (label → weight,
    constant δ_DMM, the same node attribute); an ``embedding_rabi_frequency``
    entry (as :meth:`RydbergEvolution.pulse_values` adds) is kept, so the
    schedule builds on the registers it was trained on.
    """
    from qgnn.pulses import NodeDetuning, PiecewiseConstant

    segments = tuple(
        (int(d), float(a), float(b))
        for d, a, b in zip(values["durations_ns"], values["amplitude"], values["detuning"], strict=True)
    )
    node = None
    if values.get("labels") is not None:
        weights = dict(zip(values["labels"], values["weights"], strict=True))
        node = NodeDetuning(weights, float(values["dmm_detuning"]), values["attribute"])
    return PiecewiseConstant(
        segments=segments, node_detuning=node, embedding_rabi_frequency=values.get("embedding_rabi_frequency")
    )


def write_pulse(values: Mapping[str, Any], path: str | Path) -> Path:
    """Write :meth:`TrainablePulse.values` as JSON to ``path`` (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(values), indent=2, default=str))
    return path


def plot_pulse(
    values: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path, *, title: str | None = None
) -> Path:
    """Plot Ω(t), δ(t) (and δ + w·δ_DMM per label) and the label weights to a PNG.

    Several pulses (e.g. one per cross-validation fold) are overlaid, the
    weights drawn as one dot per pulse and label.

    Args:
        values: :meth:`TrainablePulse.values` (or its JSON), or a sequence of them.
        path: PNG to write (parents created).
        title: figure title.

    Returns:
        The path written.
    """
    import numpy as np
    from matplotlib.figure import Figure

    pulses = [values] if isinstance(values, Mapping) else list(values)
    if not pulses:
        raise InvalidInputError("plot_pulse needs at least one pulse")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labelled = pulses[0].get("labels") is not None
    fig = Figure(figsize=(12 if labelled else 8, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if labelled else 2)
    mhz = 1.0 / TWO_PI
    alpha = 1.0 if len(pulses) == 1 else max(0.25, 1.0 / len(pulses) ** 0.5)
    for p, pulse in enumerate(pulses):
        edges = np.concatenate([[0.0], np.cumsum(pulse["durations_ns"])])
        first = p == 0
        axes[0].stairs(np.asarray(pulse["amplitude"]) * mhz, edges, baseline=None, color="C0", alpha=alpha)
        axes[1].stairs(
            np.asarray(pulse["detuning"]) * mhz,
            edges,
            baseline=None,
            color="C1",
            lw=2,
            alpha=alpha,
            label="global δ" if first else None,
        )
        if not labelled:
            continue
        for i, (label, w) in enumerate(zip(pulse["labels"], pulse["weights"], strict=True)):
            local = (np.asarray(pulse["detuning"]) + w * pulse["dmm_detuning"]) * mhz
            color = f"C{(i + 2) % 10}"
            axes[1].stairs(
                local,
                edges,
                baseline=None,
                color=color,
                lw=1,
                ls="--",
                alpha=alpha,
                label=f"{label}" if first else None,
            )
            axes[2].plot([i], [w], "o", color=color, alpha=alpha)
    axes[0].set(xlabel="t (ns)", ylabel="Ω / 2π (MHz)", title="Rabi frequency")
    axes[1].set(xlabel="t (ns)", ylabel="δ / 2π (MHz)", title="detuning")
    if labelled:
        axes[1].legend(fontsize="x-small", ncol=2, title="δ + w·δ_DMM", title_fontsize="x-small")
        names = [str(v) for v in pulses[0]["labels"]]
        dmm = ", ".join(f"{pulse['dmm_detuning'] * mhz:.2f}" for pulse in pulses[:5])
        axes[2].set_xticks(range(len(names)), names, rotation=90, fontsize="small")
        axes[2].set(
            ylim=(0, 1.02),
            xlabel=pulses[0]["attribute"],
            ylabel="DMM weight w",
            title=f"weights (δ_DMM/2π = {dmm}{' …' if len(pulses) > 5 else ''} MHz)",
        )
    fig.suptitle(
        title or f"trained pulse ({pulses[0]['device']}{f', {len(pulses)} runs' if len(pulses) > 1 else ''})"
    )
    fig.savefig(path, dpi=120)
    return path
