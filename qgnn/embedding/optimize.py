r"""Unit-disk layout optimisation.

Lengths are measured in units of the blockade radius ``r`` (only the ratios
``d/r`` and ``R/r`` of the device's minimum atom distance ``d`` and maximum
radial distance ``R`` matter). With a safety margin ``m`` the optimiser
minimises, over positions ``x`` (one row per node, centroid ``c``),

.. math::

    L(x) = \sum_{(i,j) \in E} [D_{ij} - (1-m)]_+^2
         + \sum_{(i,j) \notin E} [(1+m) - D_{ij}]_+^2
         + w \sum_{i<j} [d_s - D_{ij}]_+^2
         + w \sum_i [\lVert x_i - c \rVert - R_s]_+^2

with ``D_ij = |x_i − x_j|``, ``d_s = (d/r)(1 + slack)`` and
``R_s = (R/r)(1 − slack)``. ``L = 0`` means an exact unit-disk embedding
with every edge ``≤ (1−m) r`` and every non-edge ``≥ (1+m) r``, valid on the
device. L-BFGS (scipy) runs from several starting layouts; the best result
(device-valid, then exact, then fewest and smallest violations) is kept and,
when not exact, perturbed and re-optimised a few times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize

from qgnn.embedding.quality import pair_distances

DEVICE_SLACK = 0.01
"""Relative slack kept from the device's minimum distance and radial limit."""

DEVICE_WEIGHT = 10.0
"""Weight of the device-limit penalties relative to the unit-disk terms."""

_TOLERANCE = 1e-5  # µm kept clear of the device limits after Pulser's 1e-6 µm rounding


@dataclass(frozen=True)
class UnitDiskProblem:
    """A graph and device limits in blockade-radius units (see the module docstring).

    Attributes:
        adjacency: ``(n, n)`` boolean adjacency matrix.
        radius: blockade radius ``r`` in µm (the unit of length).
        min_distance: device minimum atom distance ``d`` in µm (0 when unconstrained).
        max_radial: device maximum radial distance ``R`` in µm (``inf`` when unconstrained).
        margin: relative safety margin ``m``.
        device_weight: weight ``w`` of the device-limit penalties.
    """

    adjacency: np.ndarray
    radius: float
    min_distance: float
    max_radial: float
    margin: float
    device_weight: float = DEVICE_WEIGHT

    @property
    def n(self) -> int:
        """Number of nodes."""
        return len(self.adjacency)

    @property
    def d_safe(self) -> float:
        """Target minimum pair distance in units of ``r``."""
        return self.min_distance / self.radius * (1 + DEVICE_SLACK)

    @property
    def r_safe(self) -> float:
        """Target maximum distance from the centroid in units of ``r``."""
        return self.max_radial / self.radius * (1 - DEVICE_SLACK)

    @property
    def r_in(self) -> float:
        """Target maximum edge length in units of ``r``; stays above ``d_safe``."""
        return max(1 - self.margin, (1 + self.d_safe) / 2)

    @property
    def r_out(self) -> float:
        """Target minimum non-edge length in units of ``r``."""
        return 1 + self.margin

    def with_margin(self, margin: float) -> UnitDiskProblem:
        """The same problem with another safety margin."""
        return replace(self, margin=margin)


class _Objective:
    """Vectorised loss and gradient of a :class:`UnitDiskProblem` (positions in units of ``r``)."""

    def __init__(self, problem: UnitDiskProblem) -> None:
        n = problem.n
        self.n = n
        self.iu, self.ju = np.triu_indices(n, k=1)
        self.is_edge = problem.adjacency[self.iu, self.ju].astype(bool)
        incidence = np.zeros((len(self.iu), n))
        incidence[np.arange(len(self.iu)), self.iu] = 1.0
        incidence[np.arange(len(self.iu)), self.ju] = -1.0
        self.incidence_t = incidence.T.copy()
        self.r_in, self.r_out = problem.r_in, problem.r_out
        self.d_safe, self.r_safe = problem.d_safe, problem.r_safe
        self.weight = problem.device_weight

    def __call__(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(self.n, 2)
        diff = x[self.iu] - x[self.ju]
        dist = np.sqrt(np.sum(diff * diff, axis=1) + 1e-18)
        too_long = np.where(self.is_edge, np.maximum(dist - self.r_in, 0.0), 0.0)
        too_short = np.where(self.is_edge, 0.0, np.maximum(self.r_out - dist, 0.0))
        too_close = np.maximum(self.d_safe - dist, 0.0)
        loss = float(np.sum(too_long**2) + np.sum(too_short**2) + self.weight * np.sum(too_close**2))
        d_loss = 2 * (too_long - too_short - self.weight * too_close)
        grad = self.incidence_t @ ((d_loss / dist)[:, None] * diff)
        if math.isfinite(self.r_safe):
            y = x - x.mean(axis=0)
            rho = np.sqrt(np.sum(y * y, axis=1) + 1e-18)
            outside = np.maximum(rho - self.r_safe, 0.0)
            loss += self.weight * float(np.sum(outside**2))
            g_y = (2 * self.weight * outside / rho)[:, None] * y
            grad += g_y - g_y.mean(axis=0)
        return loss, grad.ravel()


def relax(problem: UnitDiskProblem, start: np.ndarray, max_iter: int = 400) -> np.ndarray:
    """Minimise the loss from ``start`` (units of ``r``) with L-BFGS; return centred positions."""
    if problem.n == 1:
        return np.zeros((1, 2))
    result = minimize(
        _Objective(problem),
        start.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 1e-15},
    )
    x = np.asarray(result.x, dtype=float).reshape(problem.n, 2)
    return x - x.mean(axis=0)


@dataclass(frozen=True)
class Candidate:
    """One optimised layout and how good it is.

    Attributes:
        positions: ``(n, 2)`` centred positions in µm.
        device_valid: the positions respect the device's distance limits.
        n_violations: node pairs breaking the unit-disk condition at the true radius.
        violation: summed length (µm) by which those pairs break it.
        start: name of the starting layout.
    """

    positions: np.ndarray
    device_valid: bool
    n_violations: int
    violation: float
    start: str

    @property
    def is_exact(self) -> bool:
        """Exact unit-disk embedding, valid on the device."""
        return self.device_valid and self.n_violations == 0

    def key(self) -> tuple[bool, int, float]:
        """Sort key: smaller is better."""
        return (not self.device_valid, self.n_violations, self.violation)


def evaluate(problem: UnitDiskProblem, x: np.ndarray, start: str) -> Candidate:
    """Score positions ``x`` (units of ``r``, centred) against the true radius and the device limits."""
    positions = x * problem.radius
    n = problem.n
    iu, ju = np.triu_indices(n, k=1)
    dist = pair_distances(positions)[iu, ju]
    is_edge = problem.adjacency[iu, ju].astype(bool)
    excess = np.where(is_edge, dist - problem.radius, problem.radius - dist)
    bad = excess >= 0
    radial = np.sqrt(np.sum(positions * positions, axis=1))
    valid = bool(
        (dist.size == 0 or dist.min() >= problem.min_distance + _TOLERANCE)
        and radial.max() <= problem.max_radial - _TOLERANCE
    )
    return Candidate(positions, valid, int(bad.sum()), float(excess[bad].sum()), start)


def normalise_start(problem: UnitDiskProblem, layout: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Centre and rescale a raw layout so its mean edge sits inside the edge window (units of ``r``).

    Graphs without edges are scaled so the closest pair is ``1.3 (1 + m) r`` apart.
    Coincident points get a small deterministic jitter from ``rng``.
    """
    x = np.asarray(layout, dtype=float)
    x = x - x.mean(axis=0)
    if problem.n == 1:
        return x
    iu, ju = np.triu_indices(problem.n, k=1)
    dist = pair_distances(x)[iu, ju]
    spread = float(np.max(np.abs(x))) or 1.0
    if dist.size and dist.min() < 1e-6 * spread:
        x = x + rng.normal(scale=1e-2 * spread, size=x.shape)
        dist = pair_distances(x)[iu, ju]
    is_edge = problem.adjacency[iu, ju].astype(bool)
    if is_edge.any():
        scale = (problem.d_safe + problem.r_in) / 2 / float(dist[is_edge].mean())
    else:
        scale = 1.3 * problem.r_out / float(dist.min())
    return x * scale


def search(
    problem: UnitDiskProblem,
    starts: Iterable[tuple[str, np.ndarray]],
    rng: np.random.Generator,
    n_kicks: int = 12,
) -> Candidate:
    """Multi-start optimisation; stops at the first exact, device-valid embedding.

    Args:
        problem: the graph and device limits.
        starts: ``(name, positions)`` starting layouts in units of ``r``,
            already normalised (see :func:`normalise_start`).
        rng: random generator for the perturbations (determinism).
        n_kicks: perturb-and-relax rounds from the best layout when no start is exact.

    Returns:
        The best :class:`Candidate` found. When it is not exact it is relaxed
        once more with margin ``m/4``, and when it breaks a device limit once
        more with the device penalties weighted ``10⁴×``; it may still break
        one (check ``device_valid``).
    """
    best: Candidate | None = None
    for name, x0 in starts:
        cand = evaluate(problem, relax(problem, x0), name)
        if best is None or cand.key() < best.key():
            best = cand
        if best.is_exact:
            return best
    if best is None:
        raise ValueError("search() needs at least one starting layout")
    for kick in range(n_kicks):
        x = best.positions / problem.radius
        step = 0.3 + 0.5 * kick / max(n_kicks - 1, 1)
        x = x + rng.normal(scale=step, size=x.shape)
        cand = evaluate(problem, relax(problem, x), f"{best.start}+kick{kick}")
        if cand.key() < best.key():
            best = cand
        if best.is_exact:
            return best
    fine = problem.with_margin(problem.margin / 4)
    cand = evaluate(problem, relax(fine, best.positions / problem.radius), f"{best.start}+fine")
    best = cand if cand.key() < best.key() else best
    if not best.device_valid:
        hard = replace(problem, device_weight=1e4 * problem.device_weight)
        best = evaluate(problem, relax(hard, best.positions / problem.radius), f"{best.start}+repair")
    return best
