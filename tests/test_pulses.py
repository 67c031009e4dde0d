"""Tests of qgnn.pulses: schedules build valid Pulser sequences; bad parameters raise ScheduleError."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pulser
import pytest
from pulser.channels import Microwave, Rydberg
from pulser.devices import AnalogDevice, DigitalAnalogDevice, MockDevice
from pulser.sampler import sample

from qgnn.errors import ScheduleError
from qgnn.pulses import CHANNEL, AdiabaticSweep, ConstantDrive, PiecewiseConstant, Schedule

TWO_PI = 2 * math.pi


@pytest.fixture
def register() -> pulser.Register:
    return pulser.Register.from_coordinates([(0.0, 0.0), (6.0, 0.0), (3.0, 5.0)], prefix="q")


def _samples(seq: pulser.Sequence) -> tuple[np.ndarray, np.ndarray]:
    ch = sample(seq).channel_samples[CHANNEL]
    return np.asarray(ch.amp.as_array()), np.asarray(ch.det.as_array())


def test_constant_drive_defaults_build_on_analog_device(register: pulser.Register) -> None:
    sched = ConstantDrive()
    seq = sched.build(register, AnalogDevice)
    assert seq.device == AnalogDevice
    assert list(seq.declared_channels) == [CHANNEL]
    assert seq.get_duration() == 660 == sched.duration
    amp, det = _samples(seq)
    assert amp.shape == (660,)
    np.testing.assert_allclose(amp, TWO_PI)
    np.testing.assert_allclose(det, 0.0)
    assert sched.max_rabi_frequency == pytest.approx(TWO_PI)
    assert isinstance(sched, Schedule)


def test_constant_drive_custom_values(register: pulser.Register) -> None:
    seq = ConstantDrive(amplitude=3.0, detuning=-2.5, duration=400).build(register, AnalogDevice)
    amp, det = _samples(seq)
    assert seq.get_duration() == 400
    np.testing.assert_allclose(amp, 3.0)
    np.testing.assert_allclose(det, -2.5)


def test_adiabatic_sweep_shape(register: pulser.Register) -> None:
    sched = AdiabaticSweep()
    seq = sched.build(register, AnalogDevice)
    assert seq.get_duration() == sched.duration == sched.rise + sched.sweep + sched.fall == 2752
    amp, det = _samples(seq)
    rise, sweep = sched.rise, sched.sweep
    assert amp[0] == pytest.approx(0.0)
    assert amp[rise - 1] == pytest.approx(sched.amplitude)
    np.testing.assert_allclose(amp[rise : rise + sweep], sched.amplitude)
    assert amp[-1] == pytest.approx(0.0)
    assert amp.max() == pytest.approx(sched.max_rabi_frequency)
    np.testing.assert_allclose(det[:rise], sched.detuning_start)
    assert det[rise] == pytest.approx(sched.detuning_start)
    assert det[rise + sweep - 1] == pytest.approx(sched.detuning_end)
    np.testing.assert_allclose(det[rise + sweep :], sched.detuning_end)
    assert np.all(np.diff(det[rise : rise + sweep]) > 0)  # δ sweeps negative → positive
    assert sched.detuning_start < 0 < sched.detuning_end


def test_piecewise_constant_segments(register: pulser.Register) -> None:
    sched = PiecewiseConstant([[100, 3.0, 1.0], (200, 0.0, -2.0), (52, 5.5, 0.0)])
    assert sched.segments == ((100, 3.0, 1.0), (200, 0.0, -2.0), (52, 5.5, 0.0))
    seq = sched.build(register, AnalogDevice)
    assert seq.get_duration() == sched.duration == 352
    amp, det = _samples(seq)
    np.testing.assert_allclose(amp[:100], 3.0)
    np.testing.assert_allclose(amp[100:300], 0.0)
    np.testing.assert_allclose(amp[300:], 5.5)
    np.testing.assert_allclose(det[:100], 1.0)
    np.testing.assert_allclose(det[100:300], -2.0)
    np.testing.assert_allclose(det[300:], 0.0)
    assert sched.max_rabi_frequency == 5.5


@pytest.mark.parametrize("device", [DigitalAnalogDevice, MockDevice], ids=lambda d: d.name)
def test_builds_on_other_devices(register: pulser.Register, device: pulser.devices.Device) -> None:
    for sched in (ConstantDrive(), AdiabaticSweep(), PiecewiseConstant(((100, 1.0, 0.0),))):
        assert sched.build(register, device).get_duration() == sched.duration


def test_schedules_are_frozen_values() -> None:
    sched = ConstantDrive()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sched.amplitude = 1.0  # type: ignore[misc]
    assert ConstantDrive(duration=660.0) == ConstantDrive()
    assert isinstance(ConstantDrive(duration=660.0).duration, int)
    assert len({ConstantDrive(), ConstantDrive(), AdiabaticSweep()}) == 2
    assert hash(PiecewiseConstant([(100, 1.0, 0.0)])) == hash(PiecewiseConstant(((100, 1.0, 0.0),)))


# ----------------------------------------------------------------- device limits at build()

MAX_AMP = AnalogDevice.channels[CHANNEL].max_amp
MAX_DET = AnalogDevice.channels[CHANNEL].max_abs_detuning


@pytest.mark.parametrize(
    ("sched", "fragments"),
    [
        (ConstantDrive(amplitude=40.0), ["amplitude 40", "AnalogDevice", "max_amp", f"{MAX_AMP:.6g}"]),
        (ConstantDrive(detuning=-200.0), ["detuning -200", "max_abs_detuning", f"{MAX_DET:.6g}"]),
        (ConstantDrive(duration=662), ["duration 662", "clock period 4", "660 or 664"]),
        (ConstantDrive(duration=8), ["duration 8", "min_duration 16"]),
        (ConstantDrive(duration=6004), ["total duration 6004", "max_sequence_duration 6000"]),
        (AdiabaticSweep(amplitude=13.0), ["amplitude 13", "max_amp"]),
        (AdiabaticSweep(detuning_start=-130.0), ["detuning_start -130", "max_abs_detuning"]),
        (AdiabaticSweep(detuning_end=130.0), ["detuning_end 130", "max_abs_detuning"]),
        (AdiabaticSweep(rise=250), ["rise 250", "clock period"]),
        (AdiabaticSweep(sweep=12), ["sweep 12", "min_duration"]),
        (AdiabaticSweep(fall=501), ["fall 501", "500 or 504"]),
        (AdiabaticSweep(sweep=5400), ["total duration 6152", "max_sequence_duration"]),
        (PiecewiseConstant([(100, 1.0, 0.0), (100, 20.0, 0.0)]), ["segment 1 amplitude 20", "max_amp"]),
        (PiecewiseConstant([(100, 1.0, 130.0)]), ["segment 0 detuning 130", "max_abs_detuning"]),
        (PiecewiseConstant([(100, 1.0, 0.0), (10, 1.0, 0.0)]), ["segment 1 duration 10", "min_duration"]),
        (PiecewiseConstant([(102, 1.0, 0.0)]), ["segment 0 duration 102", "100 or 104"]),
        (PiecewiseConstant([(4000, 1.0, 0.0), (4000, 1.0, 0.0)]), ["total duration 8000"]),
    ],
)
def test_device_limits_raise_schedule_error(
    register: pulser.Register, sched: Schedule, fragments: list[str]
) -> None:
    with pytest.raises(ScheduleError) as info:
        sched.build(register, AnalogDevice)
    msg = str(info.value)
    assert msg.startswith(type(sched).__name__)
    for frag in fragments:
        assert frag in msg


def test_min_average_amplitude(register: pulser.Register) -> None:
    picky = dataclasses.replace(
        MockDevice,
        name="Picky",
        channel_objects=(Rydberg.Global(max_abs_detuning=100.0, max_amp=10.0, min_avg_amp=1.0),),
        channel_ids=(CHANNEL,),
    )
    with pytest.raises(ScheduleError, match="amplitude 0.5 .*min_avg_amp 1"):
        ConstantDrive(amplitude=0.5).build(register, picky)
    with pytest.raises(ScheduleError, match="segment 1 amplitude 0.2"):
        PiecewiseConstant([(100, 2.0, 0.0), (100, 0.2, 0.0)]).build(register, picky)
    # Ω = 0 is a free evolution, allowed.
    assert PiecewiseConstant([(100, 2.0, 0.0), (100, 0.0, 0.0)]).build(register, picky).get_duration() == 200


# ----------------------------------------------------------------- parameters without a device


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: ConstantDrive(amplitude=float("nan")), "amplitude"),
        (lambda: ConstantDrive(amplitude=-1.0), "amplitude"),
        (lambda: ConstantDrive(detuning=float("inf")), "detuning"),
        (lambda: ConstantDrive(detuning="1.0"), "detuning"),
        (lambda: ConstantDrive(duration=0), "duration"),
        (lambda: ConstantDrive(duration=660.5), "duration"),
        (lambda: ConstantDrive(duration=float("nan")), "duration"),
        (lambda: ConstantDrive(duration=True), "duration"),
        (lambda: AdiabaticSweep(amplitude=float("nan")), "amplitude"),
        (lambda: AdiabaticSweep(detuning_start=float("nan")), "detuning_start"),
        (lambda: AdiabaticSweep(detuning_end=None), "detuning_end"),
        (lambda: AdiabaticSweep(rise=-4), "rise"),
        (lambda: AdiabaticSweep(sweep=float("nan")), "sweep"),
        (lambda: AdiabaticSweep(fall=0), "fall"),
        (lambda: PiecewiseConstant(()), "segments"),
        (lambda: PiecewiseConstant("abc"), "segments"),
        (lambda: PiecewiseConstant([(100, 1.0)]), "segment 0"),
        (lambda: PiecewiseConstant([(100, 1.0, 0.0), (100, float("nan"), 0.0)]), "segment 1 amplitude"),
        (lambda: PiecewiseConstant([(100, -1.0, 0.0)]), "segment 0 amplitude"),
        (lambda: PiecewiseConstant([(100, 1.0, float("nan"))]), "segment 0 detuning"),
        (lambda: PiecewiseConstant([(0, 1.0, 0.0)]), "segment 0 duration"),
    ],
)
def test_bad_parameters_raise_schedule_error(make, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScheduleError, match=name):
        make()


# ----------------------------------------------------------------- register / device inputs


def test_register_must_be_a_pulser_register() -> None:
    with pytest.raises(ScheduleError, match="register must be a pulser Register, got list"):
        ConstantDrive().build([(0, 0), (6, 0)], AnalogDevice)  # type: ignore[arg-type]


def test_device_must_be_a_pulser_device(register: pulser.Register) -> None:
    with pytest.raises(ScheduleError, match="device must be a pulser Device"):
        ConstantDrive().build(register, "AnalogDevice")  # type: ignore[arg-type]


def test_device_without_global_rydberg_channel(register: pulser.Register) -> None:
    xy_only = pulser.devices.VirtualDevice(
        name="XYOnly",
        dimensions=2,
        rydberg_level=60,
        channel_objects=(Microwave.Global(None, None),),
        channel_ids=("mw_global",),
    )
    with pytest.raises(ScheduleError, match="XYOnly has no 'rydberg_global' channel"):
        AdiabaticSweep().build(register, xy_only)


def test_pulser_rejections_become_schedule_errors() -> None:
    too_close = pulser.Register.from_coordinates([(0.0, 0.0), (3.0, 0.0)], prefix="q")
    with pytest.raises(ScheduleError, match="AnalogDevice rejected the sequence for a 2-atom") as info:
        ConstantDrive().build(too_close, AnalogDevice)
    assert isinstance(info.value.__cause__, ValueError)
    too_far = pulser.Register.from_coordinates([(0.0, 0.0), (80.0, 0.0)], prefix="q")
    with pytest.raises(ScheduleError, match="rejected"):
        PiecewiseConstant([(100, 1.0, 0.0)]).build(too_far, AnalogDevice)
