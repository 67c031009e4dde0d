"""Pulse schedules: a Register and a Schedule become a validated pulser.Sequence."""

from qgnn.pulses.schedules import CHANNEL, AdiabaticSweep, ConstantDrive, PiecewiseConstant, Schedule

__all__ = ["CHANNEL", "AdiabaticSweep", "ConstantDrive", "PiecewiseConstant", "Schedule"]
