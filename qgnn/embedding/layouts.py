"""New register layouts: the atoms' own positions as traps, plus filler traps.

Devices that require a layout (``device.requires_layout``) accept a register
only when it is defined on a ``pulser.register.RegisterLayout`` whose trap
count and filling obey the device's rules: ``min_layout_traps ≤ traps ≤
max_layout_traps``, ``atoms ≤ ⌊traps · max_layout_filling⌋`` and, when the
layout has more than ``min_layout_traps`` traps, ``atoms ≥ ⌈traps ·
min_layout_filling⌉`` (``WeightedAnalogDevice``: 150–512 traps, filling
0.35–0.5). A layout made of the graph's atoms alone breaks these rules, so
:func:`layout_register` adds empty filler traps: points of a triangular
lattice at the device's minimum spacing, inside its radial limit, at least that
spacing away from every atom, the ones nearest the atoms first.

The layout is built with Pulser's public ``RegisterLayout`` for real and
virtual devices alike: ``Register.with_automatic_layout`` accepts only a real
``Device``, and its greedy search over a 1 µm mesh of the whole radial disc
slows down with the trap count.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pulser
from pulser.devices import Device, VirtualDevice
from pulser.register import RegisterLayout
from scipy.spatial import cKDTree

from qgnn.errors import NotEmbeddableError

TRAP_CLEARANCE = 1e-3
"""µm added to the device's minimum distance between filler traps and atoms (Pulser rounds to 1e-6 µm)."""

_MIN_SPACING = 1.0  # µm between filler traps on a device without a minimum atom distance


def layout_fits(n_atoms: int, n_traps: int, device: Device | VirtualDevice) -> bool:
    """Whether ``n_atoms`` atoms on a layout of ``n_traps`` traps obey ``device``'s layout rules.

    The rules are Pulser's (``validate_layout`` and ``validate_layout_filling``):
    trap count within ``[min_layout_traps, max_layout_traps]``, at most
    ``⌊n_traps · max_layout_filling⌋`` atoms and, above ``min_layout_traps``
    traps, at least ``⌈n_traps · min_layout_filling⌉`` atoms.
    """
    if n_traps < device.min_layout_traps:
        return False
    if device.max_layout_traps is not None and n_traps > device.max_layout_traps:
        return False
    if n_atoms > int(n_traps * device.max_layout_filling):
        return False
    return n_traps <= device.min_layout_traps or n_atoms >= math.ceil(n_traps * device.min_layout_filling)


def trap_counts(n_atoms: int, device: Device | VirtualDevice) -> list[int]:
    """Trap counts a new layout for ``n_atoms`` atoms may have on ``device``, best first.

    Best is nearest ``n_atoms / optimal_layout_filling`` (``max_layout_filling``
    when the device states no optimum), ties to the smaller layout.

    Returns:
        The allowed counts (empty when no layout can hold ``n_atoms`` atoms).
    """
    optimal = device.optimal_layout_filling or device.max_layout_filling
    ideal = n_atoms / optimal
    largest = max(device.min_layout_traps, math.ceil(ideal))  # larger layouts are never better
    if device.max_layout_traps is not None:
        largest = min(largest, device.max_layout_traps)
    allowed = [
        t
        for t in range(max(device.min_layout_traps, n_atoms), largest + 1)
        if layout_fits(n_atoms, t, device)
    ]
    return sorted(allowed, key=lambda t: (abs(t - ideal), t))


def filler_candidates(positions: np.ndarray, spacing: float, max_radial: float | None) -> np.ndarray:
    """Triangular-lattice points (µm) usable as empty traps, nearest the atoms first.

    The lattice has spacing ``spacing`` and a point at the origin; a point is
    kept when it lies within ``max_radial`` of the origin (any distance when
    ``None``: then the lattice spans the atoms plus 12 spacings) and at least
    ``spacing`` from every atom. Ties in the distance to the nearest atom keep
    the lattice order, so the result is deterministic.

    Args:
        positions: ``(n, 2)`` atom positions in µm.
        spacing: lattice spacing and atom clearance in µm.
        max_radial: the device's maximum radial distance in µm, or ``None``.
    """
    reach = float(np.max(np.linalg.norm(positions, axis=1))) + 12 * spacing
    extent = reach if max_radial is None else float(max_radial)
    k = math.ceil(extent / (spacing * math.sqrt(3) / 2)) + 1
    i, j = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1), indexing="ij")
    lattice = np.column_stack([(i + j / 2).ravel(), (j * math.sqrt(3) / 2).ravel()]) * spacing
    lattice = lattice[np.linalg.norm(lattice, axis=1) <= extent - TRAP_CLEARANCE]
    nearest, _ = cKDTree(positions).query(lattice)
    keep = nearest >= spacing
    order = np.argsort(nearest[keep], kind="stable")
    return cast(np.ndarray, lattice[keep][order])


def layout_register(
    positions: np.ndarray, qubit_ids: tuple[str, ...], device: Device | VirtualDevice, where: str
) -> pulser.Register:
    """The register of ``positions`` on a new layout that obeys ``device``'s layout rules.

    The layout's traps are the atoms' positions plus filler traps from
    :func:`filler_candidates` (spacing: the device's minimum atom distance +
    :data:`TRAP_CLEARANCE`), as many as the best count of :func:`trap_counts`
    that the free space allows.

    Args:
        positions: ``(n, 2)`` atom positions in µm, device-valid (spacing, radial limit).
        qubit_ids: the qubit id of each row.
        device: the device whose layout rules apply.
        where: the graph's label for error messages (``"graph 17"``).

    Raises:
        NotEmbeddableError: no trap count fits the atom number, or the radial
            limit leaves too little room for the filler traps.
    """
    n = len(positions)
    counts = trap_counts(n, device)
    rules = (
        f"{device.name} needs {device.min_layout_traps}–{device.max_layout_traps or '∞'} traps filled "
        f"{device.min_layout_filling:g}–{device.max_layout_filling:g}"
    )
    if not counts:
        raise NotEmbeddableError(f"{where}: no register layout holds {n} atoms: {rules}")
    spacing = max(float(device.min_atom_distance), _MIN_SPACING) + TRAP_CLEARANCE
    radial = None if device.max_radial_distance is None else float(device.max_radial_distance)
    fillers = filler_candidates(positions, spacing, radial)
    fitting = [t for t in counts if t - n <= len(fillers)]
    if not fitting:
        raise NotEmbeddableError(
            f"{where}: room for only {len(fillers)} filler traps around {n} atoms within {device.name}'s "
            f"radial limit {device.max_radial_distance} µm, but {rules} "
            f"(at least {min(counts) - n} fillers); "
            "use fewer atoms or a device with a larger radial limit"
        )
    layout = RegisterLayout(np.vstack([positions, fillers[: fitting[0] - n]]))
    trap_ids = layout.get_traps_from_coordinates(*positions)
    return cast(pulser.Register, layout.define_register(*trap_ids, qubit_ids=qubit_ids))
