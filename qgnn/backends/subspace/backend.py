"""The Subspace backend: picks the cutoff, checks the memory, evolves, and reports the error.

Error control: with ``energy_cutoff=None`` the cutoff is chosen per sequence,
deterministically: the sequence is evolved at c = 20, 23.8, 28.3, …
(units of E_drive; ×2^¼ per step; registers of 15–25 atoms start one step
lower, at 16.8) until the estimated error of the result at c is within the
tolerances on every feature (:mod:`qgnn.backends.subspace.error`): JS of the
``criterion`` distribution ≤ ``tolerance``, max |Δ⟨n_i⟩| and max |ΔC_ij| ≤
``occupation_tolerance``. The estimate is the difference between the results
at the previous cutoff and at c, an upper bound from 15 atoms on:
``benchmarks/subspace_calibration.py`` (MUTAG molecules of 15–21 atoms, the
QEK pulse and the adiabatic sweep, errors against the full space or a much
finer cutoff) measured actual error / difference ≤ 0.46 for every feature
from c = 20 on, each step dividing the error by 2.5–6 (less as registers
grow). Smaller registers keep few bitstrings near the cutoff and one of them
can move a result by 1e-3 (on the 5-atom sweep of the tests the error did
not fall from 16.8 to 20), so there the search starts at 20 and accepts a difference
of at most half the tolerances. Below 16.8 the decrease is irregular (at
14.1 a difference under-estimated the error of ⟨n_i⟩ up to 6×, of P(k) up to
350×), so the search never compares results there; only
``over_budget="coarsen"`` does, scaling those differences by the factors
measured at 14.1. The returned settings hold the estimates; a basis that
holds every bitstring ends the search (exact). The search costs the accepted
evolution plus the previous one (≈ 0.6× of it). When the next cutoff's run
would not fit the memory budget, the current result is compared with the
run one step *below* it instead (the same estimate, from the other side;
the result is kept beside that run): within the tolerances it is accepted
like any other, else the sequence is over budget. So the budget can decide
between two results that are both within the tolerances (e.g. a pipeline
worker's share accepts 20 where the whole budget would reach 23.8).

Memory: before a basis is built its bitstrings are counted (stopping at the
budget), and the run's peak memory is estimated from the count
(:func:`~qgnn.backends.subspace.memory.run_bytes`); past ``max_memory`` the
sequence fails with :class:`~qgnn.backends.subspace.memory.MemoryBudgetError`,
which names the memory it would need, before anything large is allocated.
A run whose couplings fit only in the compact layout (``compact_lists``,
~65 instead of ~98 B per kept bitstring for a 28-atom QEK run) is built
with it: the basis is built and the lists planned, and their exact size is
checked again before they are written; its steps are 1.15–1.3× slower.
"""

from __future__ import annotations

import contextlib
import math
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pulser
import scipy

import qgnn
from qgnn.backends.base import Measurement, check_evaluation_times, check_run_arguments, sequence_seed
from qgnn.backends.subspace.basis import (
    BasisCount,
    BasisTooLargeError,
    SubspaceBasis,
    count_basis,
    rydberg_basis,
)
from qgnn.backends.subspace.drive import Drive, pieces, read_sequence
from qgnn.backends.subspace.error import Difference, Moments, Observables, difference, leaked_weight
from qgnn.backends.subspace.kernels import (
    CompactPlan,
    compact_bytes_while_building,
    compact_lists_bytes,
    compact_plan,
)
from qgnn.backends.subspace.memory import (
    CompactLists,
    MemoryBudgetError,
    MemoryEstimate,
    default_max_memory,
    format_bytes,
    previous_bytes,
    release_cycles,
    run_bytes,
    states_within,
)
from qgnn.backends.subspace.propagator import Operators, evolve, vector_bytes
from qgnn.errors import BackendError, InvalidInputError

Criterion = Literal["excitations", "bitstrings"]
OnExcess = Literal["warn", "raise", "ignore"]
OverBudget = Literal["raise", "coarsen"]

#: Cutoffs tried by the automatic rule start here (units of E_drive) and grow by _AUTO_STEP up to
#: _AUTO_MAX_CUTOFF, after which the full space is used.
_AUTO_START_CUTOFF = 20.0
_AUTO_STEP = 2.0**0.25
_AUTO_MAX_CUTOFF = 5000.0
#: The error estimate is the difference to the previous cutoff when that one is ≥ _CALIBRATED_FROM.
#: Registers of _CALIBRATED_ATOMS atoms or more accept it up to the tolerance: there
#: benchmarks/subspace_calibration.py measured actual error / difference ≤ 0.46 (⟨n_i⟩, C_ij and JS;
#: QEK and AdiabaticSweep; MUTAG molecules of 15–21 atoms); those of at most _ONE_STEP_LOWER_UP_TO
#: atoms start at _CALIBRATED_FROM (16.8), where the search then usually ends at 20 (QEK, default
#: tolerances: 8 of 10 MUTAG molecules of 21–25 atoms did, saving a third of their time, the other
#: two took a fifth longer; at 26 atoms it went on to 23.8, so larger registers start at 20). Smaller
#: registers keep few bitstrings near the cutoff, and one of them can move a result by 1e-3 (errors
#: need not fall with c): they start at 20 and accept up to _UNCALIBRATED_SAFETY × the tolerance.
_CALIBRATED_FROM = _AUTO_START_CUTOFF / _AUTO_STEP
_CALIBRATED_ATOMS = 15
_ONE_STEP_LOWER_UP_TO = 25
_UNCALIBRATED_SAFETY = 0.5
#: Below it (only over_budget="coarsen" goes there) differences can under-estimate the error: factors
#: per feature (JS, ⟨n_i⟩, C_ij) above the ratios measured at 14.1 (353, 6.0, 3.5); lower cutoffs
#: are not calibrated, so there the estimate is indicative only.
_COARSE_FACTORS = (400.0, 8.0, 4.0)
#: ``over_budget="coarsen"`` descends the same ladder below the start down to this cutoff.
_COARSEST_CUTOFF = 5.0
#: Integrator tag in the cache key (results changed when the midpoint rule was replaced).
_INTEGRATOR = "cf4:2"
#: What E_drive, the unit of the cutoff, is (in the cache key: it was max(Ω_max, max |δ|) before).
_CUTOFF_UNIT = "max(omega_max, max positive detuning)"


class TruncationWarning(UserWarning):
    """The estimated truncation error of a Subspace run exceeds its tolerance."""


def _start_cutoff(n_atoms: int) -> float:
    lower = _CALIBRATED_ATOMS <= n_atoms <= _ONE_STEP_LOWER_UP_TO
    return _CALIBRATED_FROM if lower else _AUTO_START_CUTOFF


def planned_cutoff(n_atoms: int) -> float:
    """The cutoff :meth:`Subspace.memory_estimate` plans the automatic search for (units of E_drive).

    The search's second step (20 for 15–25 atoms, else 23.8), where it stops
    for MUTAG molecules at the default tolerances.
    """
    return _start_cutoff(n_atoms) * _AUTO_STEP


def _estimate(diff: Difference, coarse_cutoff: float) -> Difference:
    """The error estimate of a result from its difference to the run at ``coarse_cutoff``."""
    if coarse_cutoff >= _CALIBRATED_FROM * (1.0 - 1e-9):
        return diff
    js, occupation, correlation = _COARSE_FACTORS
    return Difference(js * diff.js, occupation * diff.occupation, correlation * diff.correlation)


def _free_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames behind an error and its causes.

    A refused search's finished runs (a basis and its probabilities, GBs for
    big registers) sit in those frames for as long as the caller keeps the
    error (e.g. in a list of failures).
    """
    seen: BaseException | None = exc
    while seen is not None:
        traceback.clear_frames(seen.__traceback__)
        seen = seen.__cause__ or seen.__context__


def _next_cutoff(cutoff: float) -> float:
    nxt = cutoff * _AUTO_STEP
    return nxt if nxt <= _AUTO_MAX_CUTOFF else math.inf


class Subspace:
    """Emulator of global Rydberg drives (with DMM detuning maps) in an energy-truncated basis.

    Keeps the bitstrings whose interaction energy is at most
    ``energy_cutoff × E_drive`` (E_drive = max(Ω_max, max_i δ_i⁺) over the
    sequence, rad/µs) and evolves exactly in that basis; see
    :mod:`qgnn.backends.subspace` for the Hamiltonian, the time
    discretisation, the automatic cutoff and the memory guard. Noise-free,
    from all atoms in the ground state, unmodulated samples (emu-sv's defaults).

    ``energy_cutoff=None`` (default) picks the cutoff per sequence so that the
    estimated errors are within ``tolerance`` (JS of the ``criterion``
    distribution) and ``occupation_tolerance`` (⟨n_i⟩ and connected C_ij,
    absolute). An explicit ``energy_cutoff`` does one evolution and compares
    its leaked weight (estimated probability on dropped bitstrings, a
    conservative proxy) with ``tolerance``. ``energy_cutoff=math.inf`` or
    ``tolerance=0`` is exact (full 2**n space).

    Each Measurement's ``settings`` holds ``energy_cutoff`` (the one used, in
    units of E_drive; ``inf`` = full space), ``energy_unit`` (E_drive, rad/µs),
    ``basis_dim``, ``leaked_weight`` (max over evaluation times),
    ``truncation_js``, ``truncation_occupation_error`` and
    ``truncation_correlation_error`` (error estimates from the difference to
    the previous cutoff, see the module docstring; ``0.0`` for the full
    space, ``None`` when not estimated), ``cutoffs_tried``, ``coarsened``,
    ``memory_bytes`` (estimated peak memory of the run, checked against
    ``max_memory`` before each cutoff) and the settings below.

    Args:
        energy_cutoff: kept interaction energy in units of E_drive (> 0);
            ``None`` = automatic, default.
        tolerance: target JS divergence (automatic cutoff) or largest leaked
            weight (explicit cutoff) before ``on_excess`` acts; ≥ 0, default 1e-3.
        occupation_tolerance: target error of every ⟨n_i⟩ and C_ij (absolute)
            in the automatic search; ``None`` = not checked. Default 1e-3.
        max_basis: largest basis (number of bitstrings); the automatic search
            stops below it (``on_excess`` acts), an explicit cutoff above it
            raises. Default ``None`` (only the memory budget limits it).
        max_memory: largest estimated peak memory of one run (bytes); beyond
            it the sequence fails with ``MemoryBudgetError``. Default ``None``
            = :func:`~qgnn.backends.subspace.memory.default_max_memory` (30 %
            of the machine's memory divided by its CPU cores, the pipeline's
            default number of workers).
        dt: largest step (ns) of the fourth-order integrator across
            time-varying stretches of the pulse, default 40 (constant
            stretches are one exact step; jumps between pulses are one 1-ns
            midpoint step, like emu-sv).
        criterion: distribution ``tolerance`` applies to: ``"excitations"``
            (P(k excitations), the QEK feature; default) or ``"bitstrings"``.
        over_budget: what the automatic search does when the cutoff its
            tolerances need does not fit ``max_memory``: ``"raise"``
            (MemoryBudgetError, default) or ``"coarsen"``, the approximate
            path for registers beyond exact reach: the largest cutoff on the
            ladder (down to 5 × E_drive) whose run fits, its error estimated
            against the next lower cutoff and reported like any other
            (``on_excess`` acts when it exceeds the tolerances);
            ``settings["coarsened"]`` is then True.
        on_excess: ``"warn"`` (TruncationWarning, default), ``"raise"``
            (BackendError) or ``"ignore"`` when an error estimate exceeds its tolerance.
        seed: seed of the sampling (``shots=...``): sequence ``k`` of a batch
            is sampled from :func:`~qgnn.backends.base.sequence_seed` (seed, k, content).
        max_stored_bitstrings: largest basis whose bitstring probabilities the
            Measurement keeps (sparse); beyond it only ⟨n_i⟩, ⟨n_i n_j⟩ and
            P(k) are kept. Default 2**16.
        compact_lists: when a run's couplings, stored as int32 indices, do
            not fit ``max_memory``, store them in the compact layout (~1.1 B
            instead of 4 B per coupling, e.g. ~65 instead of ~98 B per kept
            bitstring for a 28-atom QEK run: see
            :class:`~qgnn.backends.subspace.kernels.ParentLists`), whose
            steps are 1.15–1.3× slower; results are identical. Default True;
            ``settings["compact_lists"]`` says whether the run used them.

    Example:
        >>> import pulser
        >>> from pulser.devices import AnalogDevice
        >>> from qgnn.pulses import ConstantDrive
        >>> reg = pulser.Register.from_coordinates([(0, 0), (6, 0), (3, 5)], prefix="q")
        >>> (m,) = Subspace(tolerance=1e-3).run([ConstantDrive().build(reg, AnalogDevice)])
        >>> m.excitation_distribution.shape, m.settings["truncation_js"] <= 1e-3
        ((1, 4), True)
    """

    name = "subspace"

    def __init__(
        self,
        energy_cutoff: float | None = None,
        tolerance: float = 1e-3,
        *,
        occupation_tolerance: float | None = 1e-3,
        max_basis: int | None = None,
        max_memory: int | None = None,
        dt: float = 40.0,
        criterion: Criterion = "excitations",
        on_excess: OnExcess = "warn",
        over_budget: OverBudget = "raise",
        seed: int | None = None,
        max_stored_bitstrings: int = 2**16,
        compact_lists: bool = True,
    ) -> None:
        def number(value: Any, what: str) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidInputError(f"Subspace: {what} must be a number, got {value!r}")
            if math.isnan(value):
                raise InvalidInputError(f"Subspace: {what} is NaN")
            return float(value)

        def count(value: Any, what: str, *, allow_zero: bool = False) -> int:
            low = 0 if allow_zero else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                kind = "a non-negative" if allow_zero else "a positive"
                raise InvalidInputError(f"Subspace: {what} must be {kind} integer, got {value!r}")
            return int(value)

        if energy_cutoff is not None and not number(energy_cutoff, "energy_cutoff") > 0:
            raise InvalidInputError(
                f"Subspace: energy_cutoff must be > 0 (units of the drive's Ω_max), got {energy_cutoff!r}; "
                "use None for automatic or math.inf for exact"
            )
        if not 0.0 <= number(tolerance, "tolerance") < math.inf:
            raise InvalidInputError(f"Subspace: tolerance must be finite and ≥ 0, got {tolerance!r}")
        if occupation_tolerance is not None and not (
            0.0 < number(occupation_tolerance, "occupation_tolerance") < math.inf
        ):
            raise InvalidInputError(
                "Subspace: occupation_tolerance must be a positive number or None, "
                f"got {occupation_tolerance!r}"
            )
        if not 0.0 < number(dt, "dt") < math.inf:
            raise InvalidInputError(f"Subspace: dt must be a positive number of ns, got {dt!r}")
        if criterion not in ("excitations", "bitstrings"):
            raise InvalidInputError(
                f"Subspace: criterion must be 'excitations' or 'bitstrings', got {criterion!r}"
            )
        if over_budget not in ("raise", "coarsen"):
            raise InvalidInputError(
                f"Subspace: over_budget must be 'raise' or 'coarsen', got {over_budget!r}"
            )
        if on_excess not in ("warn", "raise", "ignore"):
            raise InvalidInputError(
                f"Subspace: on_excess must be 'warn', 'raise' or 'ignore', got {on_excess!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise InvalidInputError(f"Subspace: seed must be an integer or None, got {seed!r}")
        self.energy_cutoff = None if energy_cutoff is None else float(energy_cutoff)
        self.tolerance = float(tolerance)
        self.occupation_tolerance = None if occupation_tolerance is None else float(occupation_tolerance)
        self.max_basis = None if max_basis is None else count(max_basis, "max_basis")
        self.max_memory = None if max_memory is None else count(max_memory, "max_memory (bytes)")
        self.dt = float(dt)
        self.criterion: Criterion = criterion
        self.on_excess: OnExcess = on_excess
        self.over_budget: OverBudget = over_budget
        self.seed = None if seed is None else int(seed)
        self.max_stored_bitstrings = count(max_stored_bitstrings, "max_stored_bitstrings", allow_zero=True)
        if not isinstance(compact_lists, bool):
            raise InvalidInputError(f"Subspace: compact_lists must be True or False, got {compact_lists!r}")
        self.compact_lists = compact_lists

    @property
    def memory_budget(self) -> int:
        """The memory one run may use (bytes): ``max_memory``, or the machine's default share."""
        return self.max_memory if self.max_memory is not None else default_max_memory()

    def cache_key(self) -> dict[str, Any]:
        """Backend name, versions and every setting that changes results.

        Not the memory budget nor ``over_budget``: past the tolerances they
        change a result only when it is coarsened, and the pipeline does not
        cache coarsened results. Within them, a smaller budget can end the
        search one step lower (estimated from below, see the module
        docstring): a different result, but one within the same tolerances.
        """
        return {
            "name": self.name,
            "version": qgnn.__version__,
            "versions": {"qgnn": qgnn.__version__, "scipy": scipy.__version__, "pulser": pulser.__version__},
            "settings": {
                "energy_cutoff": self.energy_cutoff,
                "tolerance": self.tolerance,
                "occupation_tolerance": self.occupation_tolerance,
                "max_basis": self.max_basis,
                "dt": self.dt,
                "integrator": _INTEGRATOR,
                "cutoff_unit": _CUTOFF_UNIT,
                "criterion": self.criterion,
                "seed": self.seed,
                "max_stored_bitstrings": self.max_stored_bitstrings,
            },
        }

    def run(
        self,
        sequences: Sequence[pulser.Sequence],
        *,
        shots: int | None = None,
        evaluation_times: Sequence[float] = (1.0,),
    ) -> list[Measurement]:
        """Evolve each sequence; return its Measurement, in order.

        Args:
            sequences: built Pulser sequences with one global Rydberg channel
                and optional DMMs (a list, even for one).
            shots: ``None`` for exact ⟨n_i⟩, ⟨n_i n_j⟩ and P(k) (and sparse
                bitstring probabilities up to ``max_stored_bitstrings``), else the
                number of bitstrings sampled per evaluation time.
            evaluation_times: fractions of each duration, 0 < t ≤ 1,
                increasing; taken at t·T exactly.

        Raises:
            InvalidInputError: bad ``shots``, ``evaluation_times``, or not a
                list of built sequences.
            MemoryBudgetError: a sequence needs more than ``max_memory`` (the
                message names the sequence and the memory it needs).
            BackendError: an unsupported sequence, or a basis above ``max_basis``.
        """
        seqs, shots, times = check_run_arguments(self.name, sequences, shots, evaluation_times)
        out = []
        for k, seq in enumerate(seqs):
            label = f"{self.name}: sequence {k} of {len(seqs)}"
            drive = read_sequence(seq, label)
            label += f" ({drive.n_qubits} atoms, {drive.duration} ns)"
            try:
                observables, settings = self._solve(drive, times, label)
            except MemoryBudgetError as exc:
                _free_frames(exc)
                raise
            release_cycles(settings["memory_bytes"])
            rng = None
            if shots is not None:
                entropy = None if self.seed is None else sequence_seed(self.seed, k, seq)
                rng = np.random.default_rng(entropy)
            out.append(self._measurement(drive, observables, times, settings, shots, rng))
        return out

    def memory_estimate(
        self, sequence: pulser.Sequence, evaluation_times: Sequence[float] = (1.0,)
    ) -> MemoryEstimate:
        """Peak memory this backend would need for ``sequence``, without evolving it.

        Counts the basis at the cutoff the run would end at (the explicit
        ``energy_cutoff``; for the automatic search :func:`planned_cutoff`,
        where it stops for typical molecules) and adds up the run's arrays.
        When that exceeds the budget, the automatic search's own way out is
        estimated instead: the result one step lower, estimated from the run
        below it (kept beside it; see the module docstring) — the returned
        ``energy_cutoff`` says which. Counting stops at the budget
        (``complete=False``), so the call is cheap for graphs that do not
        fit. A scheduler runs graphs whose estimate exceeds ``budget / workers`` alone.
        A run that needs compact parents' lists (``compact_lists=True`` in the
        estimate) is estimated from the counts alone, a lower bound: their
        escaped offsets are known only once the basis is built (a 28-atom MUTAG
        run at cutoff 23.8 needed 3 % more than its estimate).
        """
        times = check_evaluation_times(evaluation_times)
        drive = read_sequence(sequence, "subspace: memory estimate")
        steps = pieces(drive, [t * drive.duration for t in times], self.dt)
        budget = self.memory_budget
        vectors = vector_bytes(steps)
        cap = states_within(budget, drive.n_groups, vectors)
        n_times = len(times)

        def count(cutoff: float) -> BasisCount | None:
            try:
                return count_basis(drive.interactions, cutoff * drive.drive_scale, max_states=cap)
            except BasisTooLargeError:
                return None

        def estimate(cutoff: float, previous: bool) -> MemoryEstimate:
            counted = count(cutoff)
            if counted is None:
                lower = run_bytes(cap + 1, 0, drive.n_groups, vectors)
                return MemoryEstimate(lower, cap + 1, 0, cutoff, budget, complete=False)
            previous_dim = counted.dim if previous else 0  # the search's previous run: ≤ this one
            needed, compact = self._bytes(drive, counted, vectors, n_times, previous_dim)
            dims = (counted.dim, counted.n_couplings)
            return MemoryEstimate(needed, *dims, cutoff, budget, compact_lists=compact is not None)

        if self.energy_cutoff is not None or self.tolerance == 0.0:
            return estimate(math.inf if self.energy_cutoff is None else self.energy_cutoff, previous=False)
        planned = estimate(planned_cutoff(drive.n_qubits), previous=True)
        first = planned.energy_cutoff / _AUTO_STEP  # where the search starts
        if planned.fits or (result := count(first)) is None or (below := count(first / _AUTO_STEP)) is None:
            return planned
        at_start = self._bytes(drive, result, vectors, n_times, 0)
        beside = self._bytes(drive, below, vectors, n_times, result.dim, previous_kept=True)
        needed = max(at_start[0], beside[0])  # the result at the start, estimated from the run below it
        compact = at_start[1] is not None or beside[1] is not None
        from_below = MemoryEstimate(
            needed, result.dim, result.n_couplings, first, budget, compact_lists=compact
        )
        return from_below if from_below.fits else planned

    # -- internals

    def _bytes(
        self,
        drive: Drive,
        counted: BasisCount,
        vectors: int,
        n_times: int,
        previous_dim: int,
        previous_kept: bool = False,
        compact: CompactLists | None = None,
        compact_allowed: bool | None = None,
    ) -> tuple[int, CompactLists | None]:
        """The run's estimated peak (bytes), and its compact lists' size when it needs them.

        With int32 lists unless they do not fit the budget and compact ones are
        allowed (``compact_allowed``, default ``compact_lists``): then with
        ``compact`` (the exact size, once planned) or else their lower bound
        from the counts.
        """

        def peak(lists: CompactLists | None) -> int:
            return run_bytes(
                counted.dim,
                counted.n_couplings,
                drive.n_groups,
                vectors,
                previous_bytes=previous_bytes(previous_dim, n_times),
                previous_kept=previous_kept or self.criterion == "bitstrings",
                compact=lists,
            )

        indices = peak(None)
        allowed = self.compact_lists if compact_allowed is None else compact_allowed
        if indices <= self.memory_budget or not allowed:
            return indices, None
        if compact is None:
            lower = compact_lists_bytes(counted.dim, counted.n_couplings, 0, 0)
            building = compact_bytes_while_building(counted.dim, counted.n_couplings, drive.n_qubits)
            compact = CompactLists(lower, building)
        smaller = peak(compact)
        return (indices, None) if smaller >= indices else (smaller, compact)

    def _basis(
        self,
        drive: Drive,
        cutoff: float,
        vectors: int,
        n_times: int,
        previous_dim: int,
        label: str,
        previous_kept: bool = False,
    ) -> tuple[SubspaceBasis, int, CompactPlan | None]:
        """The basis at ``cutoff``, its run's estimated peak memory (bytes) and its compact lists' plan.

        ``vectors``: the evolution's bytes per kept bitstring
        (:func:`~qgnn.backends.subspace.propagator.vector_bytes`); ``n_times``: evaluation times;
        ``previous_dim``: the basis of the run kept beside this one (while it is built, or
        throughout with ``previous_kept``).

        The bitstrings and their couplings are counted first (stopping at the
        budget) and the run refused before the basis or anything else large
        is allocated. When it fits only with compact parents' lists (no plan
        returned: int32 lists), the basis is built and the lists planned,
        which gives their exact size, checked again before they are written.

        Raises:
            BasisTooLargeError: more than ``max_basis`` bitstrings.
            MemoryBudgetError: its run would need more than the memory budget.
        """
        budget = self.memory_budget
        cap = states_within(budget, drive.n_groups, vectors)
        limit = cap if self.max_basis is None else min(cap, self.max_basis)
        where = f"cutoff {cutoff:g} × {drive.drive_scale:.4g} rad/µs"
        max_energy = cutoff * drive.drive_scale
        try:
            counted = count_basis(drive.interactions, max_energy, max_states=limit)
        except BasisTooLargeError as exc:
            if self.max_basis is not None and limit == self.max_basis and self.max_basis < cap:
                raise BasisTooLargeError(f"{where} keeps {exc}") from exc
            needed = run_bytes(limit + 1, 0, drive.n_groups, vectors)
            raise MemoryBudgetError(
                f"{label}: {where} keeps more than {limit} bitstrings, needing more than "
                f"{format_bytes(needed)}; the memory budget is {format_bytes(budget)}: raise max_memory "
                "(or run this graph alone), loosen the tolerances, or use an approximate backend (EmuMPS)",
                needed,
                budget,
            ) from exc
        needed, compact = self._bytes(drive, counted, vectors, n_times, previous_dim, previous_kept)

        def refuse(needed: int) -> MemoryBudgetError:
            """The refusal; its needed_bytes is the least the run needs, compact lists or not."""
            lists, least = ("" if compact is None else " with compact parents' lists"), needed
            if not self.compact_lists:
                least, smaller = self._bytes(
                    drive, counted, vectors, n_times, previous_dim, previous_kept, compact_allowed=True
                )
                if smaller is not None:
                    lists = f" ({format_bytes(least)} with compact parents' lists: compact_lists=False here)"
            return MemoryBudgetError(
                f"{label}: {where} keeps {counted.dim} bitstrings with {counted.n_couplings} couplings, "
                f"needing {format_bytes(needed)}{lists}; the memory budget is {format_bytes(budget)}: raise "
                "max_memory (or run this graph alone), loosen the tolerances, or use an approximate backend "
                "(EmuMPS)",
                least,
                budget,
            )

        if needed > budget:
            raise refuse(needed)
        basis = rydberg_basis(drive.interactions, max_energy, counted=counted)
        if compact is None:
            return basis, needed, None
        plan = compact_plan(basis.states, basis.n_excited, basis.n_qubits)
        exact = CompactLists(plan.nbytes, compact.building)
        needed, compact = self._bytes(drive, counted, vectors, n_times, previous_dim, previous_kept, exact)
        if needed > budget:
            del basis, plan
            raise refuse(needed)
        return basis, needed, plan

    def _solve(
        self, drive: Drive, times: tuple[float, ...], label: str
    ) -> tuple[Observables, dict[str, Any]]:
        """Pick the cutoff, evolve, and estimate the truncation error."""
        steps = pieces(drive, [t * drive.duration for t in times], self.dt)
        vectors = vector_bytes(steps)
        tried: list[float] = []
        peak: dict[float, int] = {}
        plans: dict[float, CompactPlan | None] = {}  # until the basis's run builds its lists
        compact_at: dict[float, bool] = {}
        leaked_at: dict[float, np.ndarray] = {}

        def basis_at(cutoff: float, previous_dim: int, previous_kept: bool = False) -> SubspaceBasis:
            basis, peak[cutoff], plans[cutoff] = self._basis(
                drive, cutoff, vectors, len(times), previous_dim, label, previous_kept
            )
            return basis

        def run_in(basis: SubspaceBasis, cutoff: float) -> Observables:
            tried.append(cutoff)
            plan = plans.pop(cutoff)
            compact_at[cutoff] = plan is not None
            ops = Operators(basis, drive.groups, plan)
            del plan
            run = evolve(ops, steps)
            weights = run.weights()
            leaked_at[cutoff] = leaked_weight(run, ops, weights, drive.groups, drive.omega_max)
            del ops  # the parents' lists: the largest array of the run
            return Observables.of(run, weights)

        def lighter(obs: Observables) -> Moments:
            """What the next comparison needs of a run: its moments, unless bitstrings are compared."""
            return obs if self.criterion == "bitstrings" else obs.moments_only()

        def coarsen(failed: float, exc: MemoryBudgetError) -> tuple[Observables, float, Difference]:
            """The largest ladder cutoff below ``failed`` whose run fits, against the next lower one."""
            cutoff = failed / _AUTO_STEP
            while cutoff / _AUTO_STEP >= _COARSEST_CUTOFF * (1.0 - 1e-9):
                try:
                    basis_at(cutoff, 0)  # counted first: no wasted evolution
                    plans.pop(cutoff)  # (compact lists are planned again beside the coarser run)
                    coarse_run = run_in(basis_at(cutoff / _AUTO_STEP, 0), cutoff / _AUTO_STEP)
                    fine_basis = basis_at(cutoff, coarse_run.basis.dim)
                    coarse = lighter(coarse_run)
                    del coarse_run  # only the moments stay while the finer basis runs
                    obs = run_in(fine_basis, cutoff)
                except MemoryBudgetError:
                    cutoff /= _AUTO_STEP
                    continue
                diff = difference(coarse, obs, self.criterion)
                return obs, cutoff, _estimate(diff, cutoff / _AUTO_STEP)
            raise exc

        def from_below(obs: Observables, cutoff: float) -> Difference:
            """The estimate of ``obs`` (at ``cutoff``) from the run one step below, ``obs`` kept beside it."""
            lower = cutoff / _AUTO_STEP
            coarse = run_in(basis_at(lower, obs.basis.dim, previous_kept=True), lower)
            return _estimate(difference(coarse, obs, self.criterion), lower)

        diff: Difference | None = None
        excess, reason, coarsened = False, "", False
        first = math.inf if self.tolerance == 0.0 else _start_cutoff(drive.n_qubits)
        safety = 1.0 if drive.n_qubits >= _CALIBRATED_ATOMS else _UNCALIBRATED_SAFETY
        cutoff = first if self.energy_cutoff is None else self.energy_cutoff
        obs: Observables | None = None
        try:
            obs = run_in(basis_at(cutoff, 0), cutoff)
            while self.energy_cutoff is None and not obs.basis.is_full:
                nxt = _next_cutoff(cutoff)
                try:
                    finer_basis = basis_at(nxt, obs.basis.dim)
                except BasisTooLargeError:
                    excess = True
                    reason = f"cutoff {nxt:g} exceeds max_basis={self.max_basis}; {cutoff:g} is unchecked"
                    break
                except MemoryBudgetError as exc:
                    # the next cutoff does not fit: estimate this one from below (if not done yet); the
                    # search's rule accepts it when that is within the tolerances, else it is over budget
                    if diff is None:
                        with contextlib.suppress(MemoryBudgetError):
                            diff = from_below(obs, cutoff)
                    if diff is not None and self._within(diff, safety):
                        break
                    if diff is None:
                        cutoff = nxt
                        raise exc
                    if self.over_budget != "coarsen":
                        lower = cutoff / _AUTO_STEP
                        raise MemoryBudgetError(
                            f"{exc}. The result at cutoff {cutoff:.3g}, which fits, is estimated from the "
                            f"one at {lower:.3g}: {self._describe(diff)}, over the tolerances",
                            exc.needed_bytes,
                            exc.budget_bytes,
                        ) from exc
                    coarsened = True
                    break
                coarse = lighter(obs)
                obs = None  # only the moments stay while the finer basis runs
                finer = run_in(finer_basis, nxt)
                del finer_basis
                diff = _estimate(difference(coarse, finer, self.criterion), cutoff)
                del coarse
                obs, cutoff = finer, nxt
                if self._within(diff, safety):
                    break
        except BasisTooLargeError as exc:
            raise BackendError(f"{label}: {exc}; lower the cutoff or raise max_basis") from exc
        except MemoryBudgetError as exc:
            if self.energy_cutoff is not None or self.over_budget != "coarsen" or math.isinf(cutoff):
                raise
            obs = None  # freed: the run below the failed cutoff (if any) is redone beside a coarser one
            obs, cutoff, diff = coarsen(cutoff, exc)
            coarsened = True
        assert obs is not None
        leaked = leaked_at[cutoff]
        if obs.basis.is_full:
            diff, excess = Difference(0.0, 0.0, 0.0), False
        elif self.energy_cutoff is not None and float(leaked.max(initial=0.0)) > self.tolerance:
            excess, reason = True, f"leaked weight {float(leaked.max()):.2e}"
        elif self.energy_cutoff is None and not excess and diff and not self._within(diff, safety):
            excess, reason = True, self._describe(diff)
            if coarsened:
                reason += f"; cutoff {cutoff:.3g} is the largest that fits max_memory (over_budget='coarsen')"
        if excess and self.on_excess != "ignore":
            msg = (
                f"{label}: truncation error above tolerance ({reason}); "
                "raise energy_cutoff or max_basis, or use energy_cutoff=math.inf (exact)"
            )
            if self.on_excess == "raise":
                raise BackendError(msg)
            warnings.warn(msg, TruncationWarning, stacklevel=3)
        settings = {
            "energy_cutoff": math.inf if obs.basis.is_full else cutoff,
            "energy_unit": drive.drive_scale,
            "basis_dim": obs.basis.dim,
            "leaked_weight": float(leaked.max(initial=0.0)),
            "truncation_js": None if diff is None else diff.js,
            "truncation_occupation_error": None if diff is None else diff.occupation,
            "truncation_correlation_error": None if diff is None else diff.correlation,
            "cutoffs_tried": tried,
            "coarsened": coarsened,
            "memory_bytes": max(peak.values()),
            "compact_lists": compact_at[cutoff],
            "tolerance": self.tolerance,
            "occupation_tolerance": self.occupation_tolerance,
            "criterion": self.criterion,
            "dt": self.dt,
            "integrator": _INTEGRATOR,
            "cutoff_unit": _CUTOFF_UNIT,
        }
        return obs, settings

    def _within(self, estimate: Difference, safety: float) -> bool:
        if estimate.js > safety * self.tolerance:
            return False
        occ = self.occupation_tolerance
        return occ is None or max(estimate.occupation, estimate.correlation) <= safety * occ

    def _describe(self, diff: Difference) -> str:
        return (
            f"estimated JS {diff.js:.2e} (tolerance {self.tolerance:g}), "
            f"|Δ⟨n_i⟩| {diff.occupation:.2e}, |ΔC_ij| {diff.correlation:.2e} "
            f"(occupation_tolerance {self.occupation_tolerance})"
        )

    def _measurement(
        self,
        drive: Drive,
        obs: Observables,
        times: tuple[float, ...],
        settings: dict[str, Any],
        shots: int | None,
        rng: np.random.Generator | None,
    ) -> Measurement:
        meta: dict[str, Any] = {
            "backend": self.name,
            "backend_version": qgnn.__version__,
            "settings": settings,
        }
        basis = obs.basis
        n = drive.n_qubits
        if shots is not None:
            assert rng is not None
            counts = []
            for p in obs.probabilities:
                drawn = rng.multinomial(shots, p)
                hit = np.flatnonzero(drawn)
                counts.append({format(int(basis.states[k]), f"0{n}b"): int(drawn[k]) for k in hit})
            return Measurement.from_counts(drive.qubit_ids, times, counts, **meta)
        keep = basis.dim <= self.max_stored_bitstrings
        return Measurement(
            qubit_ids=drive.qubit_ids,
            evaluation_times=times,
            occupations=obs.occupations,
            correlations=obs.correlations,
            excitation_distribution=obs.excitations,
            bitstrings=basis.states if keep else None,
            bitstring_probabilities=obs.probabilities if keep else None,
            **meta,
        )
