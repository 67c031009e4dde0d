"""Local emulator backends: emu-sv (default), emu-mps and QuTiP.

Each backend runs a batch of Pulser sequences without noise, starting from all
atoms in the ground state, and returns one :class:`~qgnn.backends.base.Measurement`
per sequence at the requested ``evaluation_times`` (fractions of each
sequence's duration; evaluation times need not fall on the ``dt`` grid, the
emulators add them as extra time steps). emu-sv and emu-mps also step onto
every jump or kink of the drive (pulse edges off the ``dt`` grid would
otherwise be smeared over a whole step), so piecewise-constant and ramped
schedules are solved to solver precision at the default ``dt = 10`` ns.

- ``shots=None`` (exact): the state at each evaluation time is read out; the
  Measurement keeps the bitstring probabilities |ψ|² (sparse, Pulser's order:
  qubit 0 is the most significant bit, ``"1"`` = Rydberg) and their moments.
- ``shots=n`` (sampled): ``n`` bitstrings are sampled at each evaluation time.

With a ``seed`` the samples of sequence ``k`` of a batch are drawn from
:func:`~qgnn.backends.base.sequence_seed` (seed, k and the sequence's content);
the global torch and numpy random states are restored afterwards. Without one, the
global random state is used.

Example:
    >>> import pulser
    >>> from pulser.devices import AnalogDevice
    >>> from qgnn.pulses import ConstantDrive
    >>> reg = pulser.Register.from_coordinates([(0, 0), (6, 0)], prefix="q")
    >>> (m,) = EmuSV().run([ConstantDrive().build(reg, AnalogDevice)])
    >>> m.probabilities.shape
    (1, 4)

Sequences may carry detuning map modulators (DMM, per-atom detuning): the
emulators read Pulser's per-atom samples, so H has −Σ_i [δ(t) + w_i δ_DMM(t)] n_i.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from collections.abc import Sequence as SequenceABC
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

import numpy as np
import pulser
import torch

from qgnn.backends.base import Measurement, check_built_sequence, check_run_arguments, sequence_seed
from qgnn.errors import BackendError, InvalidInputError

_TIME_MATCH = 1e-6
"""How close (fraction of the duration) a stored result time must be to a requested one."""


def _package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:  # pragma: no cover - the backends' packages are dependencies
        return "unknown"


def _check_sequences(name: str, sequences: list[pulser.Sequence]) -> None:
    """Check each sequence of a batch (built, not empty, Ising basis); name the offending position."""
    total = len(sequences)
    for k, seq in enumerate(sequences):
        where = f"{name}: sequence {k} of {total}"
        check_built_sequence(seq, where)
        if seq.get_duration() == 0:
            raise InvalidInputError(f"{where} is empty (duration 0 ns): add a pulse, e.g. with qgnn.pulses")
        bases = set(seq.get_addressed_bases())
        if bases != {"ground-rydberg"}:
            raise BackendError(
                f"{where} addresses bases {sorted(bases)}; these backends emulate only the "
                "ground-rydberg (Ising) basis: drive the atoms with a Rydberg channel, e.g. via qgnn.pulses"
            )


def _positive(name: str, setting: str, value: Any, *, integer: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float) if not integer else int)
    if not ok or not math.isfinite(value) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise InvalidInputError(f"{name}: {setting} must be {kind}, got {value!r}")


def _check_seed(name: str, seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InvalidInputError(f"{name}: seed must be a non-negative integer or None, got {seed!r}")


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, restoring the previous count afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextmanager
def _seeded(seed: int | None, position: int, seq: pulser.Sequence) -> Iterator[None]:
    """Seed torch and numpy for one sequence; restore their global states afterwards."""
    if seed is None:
        yield
        return
    local = int(sequence_seed(seed, position, seq).generate_state(1)[0])
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(local)
        np.random.seed(local)
        try:
            yield
        finally:
            np.random.set_state(np_state)


def _pick(results: Any, tag: str, times: tuple[float, ...]) -> list[Any]:
    """The stored results of ``tag`` at the requested relative times, in order."""
    stored = results.get_result_times(tag)
    got = np.asarray(stored, dtype=np.float64)
    out = []
    for t in times:
        j = int(np.argmin(np.abs(got - t))) if got.size else -1
        if j < 0 or abs(got[j] - t) > _TIME_MATCH:
            raise BackendError(f"no '{tag}' result at evaluation time {t} (stored: {got.tolist()})")
        out.append(results.get_result(tag, stored[j]))
    return out


def _qubit_ids(seq: pulser.Sequence) -> tuple[str, ...]:
    return tuple(str(q) for q in seq.register.qubit_ids)


def _check_atom_order(results: Any, qubit_ids: tuple[str, ...]) -> None:
    order = tuple(str(q) for q in results.atom_order)
    if order != qubit_ids:
        raise BackendError(f"emulator returned atoms in order {order}, expected {qubit_ids}")


def _counts(results: Any, times: tuple[float, ...]) -> list[dict[str, int]]:
    return [{str(b): int(c) for b, c in counter.items()} for counter in _pick(results, "bitstrings", times)]


@dataclass(frozen=True)
class _Job:
    """One sequence of a batch, with what every emulator needs to run it and label its Measurement.

    ``ids``: the register's qubit ids (bitstring order); ``shots``: ``None``
    for exact; ``times``: evaluation times (fractions of the duration);
    ``meta``: the Measurement's ``backend``, ``backend_version`` and ``settings``.
    """

    seq: pulser.Sequence
    ids: tuple[str, ...]
    shots: int | None
    times: tuple[float, ...]
    meta: dict[str, Any]


class _Emulator:
    """Shared batch loop: validation, threads, seeding and error wrapping.

    Subclasses are frozen dataclasses whose fields are their settings; they
    implement :meth:`_run_one`.
    """

    name: ClassVar[str]
    _dist: ClassVar[str]
    _min_atoms: ClassVar[int] = 1

    def _settings(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def _versions(self) -> dict[str, str]:
        return {"pulser-core": _package_version("pulser-core"), self._dist: _package_version(self._dist)}

    def cache_key(self) -> dict[str, Any]:
        """Backend name, package versions and every setting that changes results."""
        return {
            "name": self.name,
            "version": _package_version(self._dist),
            "versions": self._versions(),
            "settings": self._settings(),
        }

    def _num_threads(self) -> int:
        return int(getattr(self, "num_threads", 1))

    def _seed(self) -> int | None:
        seed = getattr(self, "seed", None)
        return None if seed is None else int(seed)

    def run(
        self,
        sequences: SequenceABC[pulser.Sequence],
        *,
        shots: int | None = None,
        evaluation_times: SequenceABC[float] = (1.0,),
    ) -> list[Measurement]:
        """Run each sequence; return its Measurement, in order.

        Args:
            sequences: built pulser Sequences (a list, even for one).
            shots: ``None`` for exact probabilities, else bitstrings per time.
            evaluation_times: fractions of each duration, 0 < t ≤ 1, increasing.

        Raises:
            InvalidInputError: bad arguments (shots, times, not a list of built sequences).
            BackendError: an unsupported sequence, or the emulator failed on it
                (the message names its position in the batch).
        """
        seqs, shots, times = check_run_arguments(self.name, sequences, shots, evaluation_times)
        _check_sequences(self.name, seqs)
        out: list[Measurement] = []
        with _torch_threads(self._num_threads()):
            for k, seq in enumerate(seqs):
                ids = _qubit_ids(seq)
                duration = seq.get_duration()
                where = f"{self.name}: sequence {k} of {len(seqs)} ({len(ids)} atoms, {duration} ns)"
                if len(ids) < self._min_atoms:
                    raise BackendError(
                        f"{where}: {self.name} needs at least {self._min_atoms} atoms; use EmuSV for fewer"
                    )
                try:
                    meta = {
                        "backend": self.name,
                        "backend_version": _package_version(self._dist),
                        "settings": self._settings(),
                    }
                    with _seeded(self._seed(), k, seq):
                        out.append(self._run_one(_Job(seq, ids, shots, times, meta)))
                except BackendError as exc:
                    raise BackendError(f"{where} failed: {exc}") from exc
                except Exception as exc:  # the emulators raise anything from AssertionError to MemoryError
                    raise BackendError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        return out

    def _run_one(self, job: _Job) -> Measurement:
        """The Measurement of one sequence of the batch."""
        raise NotImplementedError


def _observable(shots: int | None, times: tuple[float, ...]) -> Any:
    """StateResult (exact) or BitStrings (sampled) at the evaluation times."""
    from pulser.backend import BitStrings, StateResult

    if shots is None:
        return StateResult(evaluation_times=times)
    return BitStrings(evaluation_times=times, num_shots=shots)


def _drive_breakpoints(seq: pulser.Sequence) -> tuple[float, ...]:
    """Relative times (0 < t < 1) where a drive sample jumps or its slope changes.

    emu-sv and emu-mps sample the drive once per ``dt`` step (at its midpoint):
    a pulse edge inside a step would smear over the whole step (a 2 ns offset
    moves probabilities by ~1e-2). Evaluating a cheap observable at these
    times makes the emulators step exactly onto every edge and kink.
    """
    total = seq.get_duration()
    edges: set[int] = set()
    for cs in pulser.sampler.sample(seq).samples_list:
        for arr in (cs.amp, cs.det, cs.phase):
            x = np.pad(np.asarray(arr.as_array(detach=True), dtype=np.float64), 1, mode="edge")
            for diff in (np.diff(x), np.diff(x, n=2)):
                mag = np.abs(diff)
                # A change much larger than at its neighbours marks an edge (jump) or kink (slope change).
                peak = mag > 2 * np.maximum(np.roll(mag, 1), np.roll(mag, -1)) + 1e-9
                edges.update(int(k) for k in np.flatnonzero(peak))
    return tuple(k / total for k in sorted(edges) if 0 < k < total)


def _grid_observables(seq: pulser.Sequence, shots: int | None, times: tuple[float, ...]) -> list[Any]:
    """The readout observable plus, when the drive has edges, an occupation at each edge."""
    from pulser.backend import Occupation

    observables = [_observable(shots, times)]
    edges = [t for t in _drive_breakpoints(seq) if min(abs(t - u) for u in times) > 1e-9]
    if edges:
        observables.append(Occupation(evaluation_times=edges, tag_suffix="edges"))
    return observables


def _normalised(probs: list[np.ndarray]) -> np.ndarray:
    arr = np.stack(probs)
    return arr / arr.sum(axis=1, keepdims=True)


class _EmuBackend(_Emulator):
    """emu-sv and emu-mps: one run body; subclasses name the backend, its settings and the exact readout."""

    dt: float
    gpu: bool

    def _backend(self, shots: int | None) -> tuple[Any, dict[str, Any]]:
        """The emu backend class and its config class's settings (besides dt, gpu, observables)."""
        raise NotImplementedError

    def _exact(self, states: list[Any], job: _Job) -> Measurement:
        """The Measurement of the states read at the evaluation times."""
        raise NotImplementedError

    def _run_one(self, job: _Job) -> Measurement:
        backend_cls, settings = self._backend(job.shots)
        config = backend_cls.config_type(
            dt=self.dt, gpu=self.gpu, observables=_grid_observables(job.seq, job.shots, job.times), **settings
        )
        results = backend_cls(job.seq, config=config).run()
        _check_atom_order(results, job.ids)
        if job.shots is not None:
            return Measurement.from_counts(job.ids, job.times, _counts(results, job.times), **job.meta)
        return self._exact(_pick(results, "state", job.times), job)


@dataclass(frozen=True)
class EmuSV(_EmuBackend):
    """State-vector emulator (emu-sv): exact, the reference every other backend is checked against.

    Exact mode reads the state vector at each evaluation time; sampled mode
    draws bitstrings from it. Memory grows as 2ⁿ (16 B per amplitude).

    Args:
        dt: time step of the solver (ns), default 10.
        krylov_tolerance: Lanczos convergence tolerance, default 1e-10.
        max_krylov_dim: largest Krylov subspace, default 100.
        num_threads: torch threads while running, default 1.
        gpu: run on a CUDA GPU, default False.
        seed: seed of the bitstring sampling (sampled mode), default None.
    """

    dt: float = 10.0
    krylov_tolerance: float = 1e-10
    max_krylov_dim: int = 100
    num_threads: int = 1
    gpu: bool = False
    seed: int | None = None

    name: ClassVar[str] = "emu-sv"
    _dist: ClassVar[str] = "emu-sv"

    def __post_init__(self) -> None:
        _positive(self.name, "dt", self.dt)
        _positive(self.name, "krylov_tolerance", self.krylov_tolerance)
        _positive(self.name, "max_krylov_dim", self.max_krylov_dim, integer=True)
        _positive(self.name, "num_threads", self.num_threads, integer=True)
        _check_seed(self.name, self.seed)

    def _backend(self, shots: int | None) -> tuple[Any, dict[str, Any]]:
        from emu_sv import SVBackend

        settings = {"krylov_tolerance": self.krylov_tolerance, "max_krylov_dim": self.max_krylov_dim}
        return SVBackend, {**settings, "log_level": logging.WARN}

    def _exact(self, states: list[Any], job: _Job) -> Measurement:
        # emu-sv indexes basis states by int(bitstring, 2), "1" = Rydberg, qubit 0 first.
        probs = [(s.data.abs() ** 2).double().cpu().numpy() for s in states]
        return Measurement.from_probabilities(job.ids, job.times, _normalised(probs), **job.meta)


def _mps_dense_probabilities(factors: list[torch.Tensor]) -> np.ndarray:
    """|ψ|² of an MPS (factors ``(left, physical, right)``, physical 1 = Rydberg), qubit 0 first."""
    vec = factors[0].reshape(factors[0].shape[1], factors[0].shape[2])
    for f in factors[1:]:
        vec = torch.tensordot(vec, f.to(vec.device), dims=1).reshape(-1, f.shape[2])
    return (vec.reshape(-1).abs() ** 2).double().cpu().numpy()


def _mps_excitation_distribution(factors: list[torch.Tensor]) -> np.ndarray:
    """P(k Rydberg excitations), k = 0..n, by contracting the MPS with a counting index."""
    n = len(factors)
    dev = factors[0].device
    env = torch.zeros(n + 1, 1, 1, dtype=factors[0].dtype, device=dev)
    env[0, 0, 0] = 1.0
    for f in factors:
        f = f.to(dev)
        new = torch.zeros(n + 1, f.shape[2], f.shape[2], dtype=f.dtype, device=dev)
        for s in (0, 1):
            a = f[:, s, :]
            moved = torch.einsum("ac,kab,bd->kcd", a.conj(), env, a)
            new[s:] += moved[: n + 1 - s]
        env = new
    dist = env[:, 0, 0].real.double().cpu().numpy()
    return np.clip(dist, 0.0, None) / dist.sum()


@dataclass(frozen=True)
class EmuMPS(_EmuBackend):
    """Matrix-product-state emulator (emu-mps), for larger registers.

    Exact mode (``shots=None``) reads the MPS at each evaluation time
    (qubit-ordering optimisation off, so the MPS sites follow the register):

    - ≤ ``max_dense_qubits`` atoms: the MPS is contracted into dense
      probabilities, and the Measurement carries them;
    - more atoms: no dense vector; ⟨n_i⟩ and ⟨n_i n_j⟩ are contracted from the
      MPS and P(k excitations) with a counting index, so the Measurement has
      no bitstring probabilities (its ``exact`` flag is True: no shot noise).

    All values are exact up to the MPS truncation (``precision``). Sampled mode
    draws bitstrings from the MPS, with emu-mps's qubit-ordering optimisation
    when ``optimize_qubit_ordering`` (it costs ~2-3 s per sequence on CPU, and
    pays off on large registers). emu-mps needs at least 2 atoms.

    Args:
        dt: time step of the solver (ns), default 10.
        precision: truncation precision of the MPS, default 1e-5.
        max_bond_dim: largest bond dimension, default 1024.
        max_dense_qubits: largest register turned into dense probabilities, default 16.
        optimize_qubit_ordering: reorder the MPS sites (sampled mode only), default True.
        num_threads: torch threads while running, default 1.
        gpu: run on a CUDA GPU, default False.
        seed: seed of the bitstring sampling (sampled mode), default None.
    """

    dt: float = 10.0
    precision: float = 1e-5
    max_bond_dim: int = 1024
    max_dense_qubits: int = 16
    optimize_qubit_ordering: bool = True
    num_threads: int = 1
    gpu: bool = False
    seed: int | None = None

    name: ClassVar[str] = "emu-mps"
    _dist: ClassVar[str] = "emu-mps"
    _min_atoms: ClassVar[int] = 2

    def __post_init__(self) -> None:
        _positive(self.name, "dt", self.dt)
        _positive(self.name, "precision", self.precision)
        _positive(self.name, "max_bond_dim", self.max_bond_dim, integer=True)
        _positive(self.name, "max_dense_qubits", self.max_dense_qubits, integer=True)
        _positive(self.name, "num_threads", self.num_threads, integer=True)
        _check_seed(self.name, self.seed)

    def _backend(self, shots: int | None) -> tuple[Any, dict[str, Any]]:
        from emu_mps import MPSBackend

        return MPSBackend, {
            "precision": self.precision,
            "max_bond_dim": self.max_bond_dim,
            "optimize_qubit_ordering": self.optimize_qubit_ordering and shots is not None,
            # WARN would still print emu-mps's notice that StateResult disables qubit reordering.
            "log_level": logging.ERROR if shots is None else logging.WARN,
        }

    def _exact(self, states: list[Any], job: _Job) -> Measurement:
        if len(job.ids) <= self.max_dense_qubits:
            probs = [_mps_dense_probabilities(s.factors) for s in states]
            return Measurement.from_probabilities(job.ids, job.times, _normalised(probs), **job.meta)
        corr = np.stack([s.get_correlation_matrix().real.double().cpu().numpy() for s in states])
        return Measurement(
            qubit_ids=job.ids,
            evaluation_times=job.times,
            occupations=np.stack([np.diag(c) for c in corr]),
            correlations=corr,
            excitation_distribution=np.stack([_mps_excitation_distribution(s.factors) for s in states]),
            **job.meta,
        )


@dataclass(frozen=True)
class QutipEmulator(_Emulator):
    """QuTiP emulator (pulser-simulation's ``QutipBackendV2``), a reference solver.

    Exact mode reads the QuTiP state at each evaluation time; sampled mode
    draws bitstrings from it. The last drive sample is held for 16 ns past
    the end of the sequence (read out at its end), so the drive lasts the
    programmed duration, as in emu-sv; pulser-simulation alone fades it out
    over the last ns (~1e-3 change in final probabilities). QuTiP
    spline-interpolates the 1 ns samples, so each jump of the drive (e.g.
    between PiecewiseConstant segments) is blurred over ~1 ns: expect
    deviations of a few 1e-3 in probabilities for such schedules (constant
    drives: ~1e-7; linear ramps: ~1e-5).

    Args:
        sampling_rate: fraction of the 1 ns pulse samples given to the
            solver, 0 < rate ≤ 1, default 1.0.
        seed: seed of the bitstring sampling (sampled mode), default None.
    """

    sampling_rate: float = 1.0
    seed: int | None = None

    name: ClassVar[str] = "qutip"
    _dist: ClassVar[str] = "pulser-simulation"

    def __post_init__(self) -> None:
        _positive(self.name, "sampling_rate", self.sampling_rate)
        if self.sampling_rate > 1:
            raise InvalidInputError(f"{self.name}: sampling_rate must be ≤ 1, got {self.sampling_rate!r}")
        _check_seed(self.name, self.seed)

    def _versions(self) -> dict[str, str]:
        return {**super()._versions(), "qutip": _package_version("qutip")}

    def _run_one(self, job: _Job) -> Measurement:
        from pulser_simulation import QutipBackendV2, QutipConfig

        seq = job.seq
        samples = _hold_last_samples(pulser.sampler.sample(seq), _QUTIP_HOLD_NS)
        total = samples.max_duration
        shifted = tuple(t * (total - _QUTIP_HOLD_NS) / total for t in job.times)
        config = QutipConfig(
            sampling_rate=self.sampling_rate,
            observables=[_observable(job.shots, shifted)],
            default_evaluation_times=shifted,
        )
        results = QutipBackendV2.run_from_sequence_samples(samples, seq.register, seq.device, config=config)
        _check_atom_order(results, job.ids)
        if job.shots is not None:
            return Measurement.from_counts(job.ids, job.times, _counts(results, shifted), **job.meta)
        per_time = [state.bitstring_probabilities(cutoff=0.0) for state in _pick(results, "state", shifted)]
        support = np.array(sorted({int(b, 2) for p in per_time for b in p}), dtype=np.int64)
        width = len(job.ids)
        probs = [np.array([p.get(format(int(k), f"0{width}b"), 0.0) for k in support]) for p in per_time]
        return Measurement.from_sparse(job.ids, job.times, support, _normalised(probs), **job.meta)


_QUTIP_HOLD_NS = 16
"""Nanoseconds by which the last drive sample is held past the end for QuTiP (see below)."""


def _hold_last_samples(samples: Any, extra_ns: int) -> Any:
    """Extend every channel's samples by ``extra_ns`` copies of its last value.

    Pulser's samples end at ``T − 1`` ns and pulser-simulation pads them with
    zeros and spline-interpolates, so its drive fades out during the last ns
    of the pulse: final-time probabilities drift by ~1e-3 from the programmed
    pulse. Holding the last value past ``T`` (results are read at ``≤ T``)
    keeps the drive on until ``T``, as emu-sv and emu-mps do.
    """
    from dataclasses import replace

    import pulser.math as pm

    def hold(arr: Any) -> Any:
        return pm.pad(arr, (0, extra_ns), mode="edge")

    # Only the public sample arrays are replaced. Unmodulated samples (all qgnn samples) carry no
    # precomputed centred phase, so ChannelSamples recomputes it from the held phase.
    return replace(
        samples,
        samples_list=[
            replace(cs, amp=hold(cs.amp), det=hold(cs.det), phase=hold(cs.phase))
            for cs in samples.samples_list
        ],
    )
