"""The Backend protocol and the Measurement it returns.

Bitstring convention (Pulser's): character ``k`` of a bitstring is qubit
``qubit_ids[k]``; ``"1"`` means Rydberg. A basis state is indexed by the
bitstring's integer value, ``int(bitstring, 2)``, so qubit 0 is the most
significant bit.

A :class:`Measurement` never needs a 2**n vector: exact backends give it the
bitstrings they kept and their probabilities (sparse), or only the moments
(⟨n_i⟩, ⟨n_i n_j⟩, P(k excitations)) computed from their own state; the dense
vector is built on request for small registers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numba as nb
import numpy as np
import pulser

from qgnn.errors import BackendError, InvalidInputError

#: Largest register whose dense ``(T, 2**n)`` probabilities :attr:`Measurement.probabilities` builds.
MAX_DENSE_QUBITS = 24
#: Most blocks of states summed apart by :func:`moments` (four per numba thread).
_MOMENT_BLOCKS = 64
#: Held while a parallel numba kernel (or a run of them) executes: launches from several Python
#: threads at once (e.g. a threaded Dask worker) take turns, since numba's fallback threading layer
#: (workqueue) is not thread-safe. Reentrant, so a holder may call a function that takes it.
NUMBA_LAUNCH_LOCK = threading.RLock()


def _frozen(value: Any) -> Any:
    """A read-only copy: mappings → MappingProxyType, lists/tuples → tuples, arrays → read-only."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, np.ndarray):
        return _read_only(value)
    return value


def _thawed(value: Any) -> Any:
    """Plain dicts and lists again (for JSON and pickling)."""
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


def _read_only(array: Any, dtype: Any = np.float64) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def bit_matrix(n_qubits: int) -> np.ndarray:
    """Occupation of each qubit in each basis state, shape ``(2**n, n)``.

    Row ``k`` is the bitstring ``format(k, f"0{n}b")``: qubit 0 is the most
    significant bit.
    """
    return state_bits(np.arange(2**n_qubits, dtype=np.int64), n_qubits)


def state_bits(states: np.ndarray, n_qubits: int) -> np.ndarray:
    """Occupations of the given basis states (integers, qubit 0 = most significant bit), shape ``(K, n)``."""
    shifts = np.arange(n_qubits - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(states, dtype=np.int64)[:, None] >> shifts[None, :]) & 1).astype(np.float64)


def moments(
    states: np.ndarray, probabilities: np.ndarray, n_qubits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """⟨n_i⟩, ⟨n_i n_j⟩ and P(k excitations) of a distribution over some basis states.

    The one place these sums are computed: one compiled pass over the states
    (each state adds its probability to the pairs of its excited atoms), on
    numba's threads, each summing its own blocks of states; memory beyond
    the results is a few partial sums, whatever the number of states.

    Args:
        states: basis states as integers (qubit 0 = most significant bit), shape ``(K,)``.
        probabilities: their probabilities at each time, shape ``(T, K)``.
        n_qubits: number of atoms (≤ 62).

    Returns:
        occupations ``(T, n)``, correlations ``(T, n, n)``, excitation distribution ``(T, n + 1)``.
    """
    states = np.ascontiguousarray(states, dtype=np.int64)
    probs = np.ascontiguousarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != states.size:
        raise InvalidInputError(f"probabilities must have shape (T, {states.size}), got {probs.shape}")
    n_blocks = min(_MOMENT_BLOCKS, 4 * nb.get_num_threads())  # partial sums: n_blocks × T × n² × 8 B
    with NUMBA_LAUNCH_LOCK:
        corr, exc = _moment_sums(states, probs, n_qubits, n_blocks)
    corr = corr + np.swapaxes(np.triu(corr, 1), 1, 2)  # the pairs were summed once (i ≤ j)
    occ = np.ascontiguousarray(np.diagonal(corr, axis1=1, axis2=2))
    return occ, corr, exc


@nb.njit(cache=True, inline="always")
def excited_atoms(state: int, n_qubits: int, out: np.ndarray) -> int:
    """Write the atoms excited in ``state`` (atom 0 = most significant bit) into ``out``; return how many."""
    count = 0
    for i in range(n_qubits):
        if state >> np.int64(n_qubits - 1 - i) & np.int64(1):
            out[count] = i
            count += 1
    return count


@nb.njit(cache=True, parallel=True)
def _moment_sums(
    states: np.ndarray, probs: np.ndarray, n_qubits: int, n_blocks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_x p(x) n_i n_j over each state's excited pairs i ≤ j, and Σ_x p(x) per excitation count."""
    n_times = probs.shape[0]
    size = (states.size + n_blocks - 1) // n_blocks
    corr = np.zeros((n_blocks, n_times, n_qubits, n_qubits))
    exc = np.zeros((n_blocks, n_times, n_qubits + 1))
    for block in nb.prange(n_blocks):
        excited = np.empty(n_qubits, np.uint64)
        bu = np.uint64(block)  # unsigned indices: numba checks every signed one for wraparound
        for k in range(block * size, min(states.size, (block + 1) * size)):
            count = excited_atoms(states[np.uint64(k)], n_qubits, excited)
            for t in range(n_times):
                tu = np.uint64(t)
                p = probs[tu, np.uint64(k)]
                if p == 0.0:
                    continue
                exc[bu, tu, np.uint64(count)] += p
                for a in range(count):
                    i = excited[a]
                    for b in range(a, count):
                        corr[bu, tu, i, excited[b]] += p
    return corr.sum(axis=0), exc.sum(axis=0)


@dataclass(frozen=True, eq=False)
class Measurement:
    """What one sequence produced on one backend, at one or more evaluation times.

    Read-only: every array is a read-only copy, ``settings`` and ``counts``
    are read-only mappings. Exact backends keep the probabilities of the
    bitstrings they computed (sparse, ``bitstrings`` + ``bitstring_probabilities``)
    or only the moments; :attr:`probabilities` builds the dense vector on
    request for small registers.

    Args:
        qubit_ids: register qubit ids, in bitstring order.
        evaluation_times: fractions of the sequence duration (0 < t ≤ 1).
        occupations: ⟨n_i⟩, shape ``(T, n)``.
        correlations: ⟨n_i n_j⟩, shape ``(T, n, n)`` (diagonal = ⟨n_i⟩).
        excitation_distribution: P(k excitations), shape ``(T, n + 1)``.
        bitstrings: basis states with a stored probability, as integers
            ``int(bitstring, 2)``, strictly increasing, shape ``(K,)``; ``None``
            when only the moments are kept (sampled runs, large exact runs).
        bitstring_probabilities: their probabilities, shape ``(T, K)``; every
            bitstring not listed has probability 0 (or was not kept by a
            truncated backend, see ``settings``).
        counts: bitstring counts per evaluation time, or ``None`` when exact.
        backend: backend name, e.g. ``"emu-sv"``.
        backend_version: version of the package that computed it.
        settings: backend settings that produced it (dt, precision, truncation error, ...).
    """

    qubit_ids: tuple[str, ...]
    evaluation_times: tuple[float, ...]
    occupations: np.ndarray
    correlations: np.ndarray
    excitation_distribution: np.ndarray
    bitstrings: np.ndarray | None = None
    bitstring_probabilities: np.ndarray | None = None
    counts: tuple[Mapping[str, int], ...] | None = None
    backend: str = ""
    backend_version: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = tuple(str(q) for q in self.qubit_ids)
        times = tuple(float(t) for t in self.evaluation_times)
        n, n_times = len(ids), len(times)
        shapes = {
            "occupations": (n_times, n),
            "correlations": (n_times, n, n),
            "excitation_distribution": (n_times, n + 1),
        }
        values: dict[str, Any] = {"qubit_ids": ids, "evaluation_times": times}
        for name, shape in shapes.items():
            values[name] = _read_only(getattr(self, name))
            if values[name].shape != shape:
                raise InvalidInputError(
                    f"Measurement: {name} must have shape {shape} for {n} qubits at {n_times} times, "
                    f"got {values[name].shape}"
                )
        if (self.bitstrings is None) != (self.bitstring_probabilities is None):
            raise InvalidInputError("Measurement: give bitstrings and bitstring_probabilities together")
        if self.bitstrings is not None:
            states = _read_only(self.bitstrings, np.int64).reshape(-1)
            probs = _read_only(self.bitstring_probabilities)
            if probs.shape != (n_times, states.size):
                raise InvalidInputError(
                    f"Measurement: bitstring_probabilities must have shape {(n_times, states.size)}, "
                    f"got {probs.shape}"
                )
            if states.size and (np.any(np.diff(states) <= 0) or states[0] < 0 or states[-1] >> n):
                raise InvalidInputError(
                    f"Measurement: bitstrings must be strictly increasing integers in [0, 2**{n})"
                )
            values["bitstrings"], values["bitstring_probabilities"] = states, probs
        if self.counts is not None:
            values["counts"] = tuple(MappingProxyType(dict(c)) for c in self.counts)
        values["settings"] = _frozen(dict(self.settings))
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[Any, ...]:
        # mappingproxy objects do not pickle: rebuild from plain values (worker processes return these)
        plain = {f.name: getattr(self, f.name) for f in fields(self)}
        plain["settings"] = _thawed(self.settings)
        plain["counts"] = None if self.counts is None else [dict(c) for c in self.counts]
        return (_rebuild_measurement, (plain,))

    @property
    def n_qubits(self) -> int:
        """Number of atoms in the register."""
        return len(self.qubit_ids)

    @property
    def exact(self) -> bool:
        """True when the statistics carry no shot noise (computed, not sampled)."""
        return self.counts is None

    @property
    def probabilities(self) -> np.ndarray | None:
        """Dense bitstring probabilities, shape ``(T, 2**n)`` (index ``int(bitstring, 2)``).

        ``None`` when no bitstring probabilities were kept (sampled runs,
        large exact runs). Built on each call from the sparse ones.

        Raises:
            InvalidInputError: more than ``MAX_DENSE_QUBITS`` atoms; use
                :attr:`bitstrings` / :attr:`bitstring_probabilities` or
                :meth:`bitstring_distribution`.
        """
        if self.bitstrings is None or self.bitstring_probabilities is None:
            return None
        if self.n_qubits > MAX_DENSE_QUBITS:
            raise InvalidInputError(
                f"a dense probability vector of {self.n_qubits} atoms has 2**{self.n_qubits} entries; "
                f"at most {MAX_DENSE_QUBITS} atoms are densified: use bitstrings/bitstring_probabilities "
                "or bitstring_distribution()"
            )
        dense = np.zeros((len(self.evaluation_times), 2**self.n_qubits))
        dense[:, self.bitstrings] = self.bitstring_probabilities
        return dense

    def bitstring_distribution(self, t_index: int = -1, *, min_probability: float = 0.0) -> dict[str, float]:
        """Kept bitstrings and their probabilities at one evaluation time, e.g. ``{"0101": 0.3, ...}``.

        Exact runs give their stored probabilities (``{}`` when none were
        kept); sampled runs give the count frequencies.
        """
        n = self.n_qubits
        if self.counts is not None:
            c = self.counts[t_index]
            total = sum(c.values())
            return {b: v / total for b, v in c.items() if v / total > min_probability}
        if self.bitstrings is None or self.bitstring_probabilities is None:
            return {}
        p = self.bitstring_probabilities[t_index]
        keep = np.flatnonzero(p > min_probability)
        return {format(int(self.bitstrings[k]), f"0{n}b"): float(p[k]) for k in keep}

    def connected_correlations(self, t_index: int = -1) -> np.ndarray:
        """C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩ at one evaluation time, shape ``(n, n)``."""
        occ = self.occupations[t_index]
        return self.correlations[t_index] - np.outer(occ, occ)

    @classmethod
    def from_sparse(
        cls,
        qubit_ids: Sequence[str],
        evaluation_times: Sequence[float],
        bitstrings: np.ndarray,
        probabilities: np.ndarray,
        *,
        keep_probabilities: bool = True,
        **meta: Any,
    ) -> Measurement:
        """Build a Measurement from exact probabilities of some basis states.

        Args:
            qubit_ids: register qubit ids, in bitstring order.
            evaluation_times: fractions of the duration.
            bitstrings: basis states ``int(bitstring, 2)``, strictly increasing, shape ``(K,)``.
            probabilities: their probabilities, shape ``(T, K)``.
            keep_probabilities: store them in the Measurement (else only the moments).
            meta: ``backend``, ``backend_version``, ``settings``.
        """
        states = np.asarray(bitstrings, dtype=np.int64)
        probs = np.asarray(probabilities, dtype=np.float64)
        occ, corr, exc = moments(states, probs, len(qubit_ids))
        return cls(
            qubit_ids=tuple(qubit_ids),
            evaluation_times=tuple(evaluation_times),
            occupations=occ,
            correlations=corr,
            excitation_distribution=exc,
            bitstrings=states if keep_probabilities else None,
            bitstring_probabilities=probs if keep_probabilities else None,
            **meta,
        )

    @classmethod
    def from_probabilities(
        cls,
        qubit_ids: Sequence[str],
        evaluation_times: Sequence[float],
        probabilities: np.ndarray,
        **meta: Any,
    ) -> Measurement:
        """Build a Measurement from dense exact probabilities of shape ``(T, 2**n)``.

        Only bitstrings with a non-zero probability at some time are stored.
        """
        n = len(qubit_ids)
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != 2**n:
            raise InvalidInputError(f"probabilities must have shape (T, {2**n}), got {probs.shape}")
        support = np.flatnonzero(np.any(probs != 0.0, axis=0))
        return cls.from_sparse(qubit_ids, evaluation_times, support, probs[:, support], **meta)

    @classmethod
    def from_counts(
        cls,
        qubit_ids: Sequence[str],
        evaluation_times: Sequence[float],
        counts: Sequence[Mapping[str, int]],
        **meta: Any,
    ) -> Measurement:
        """Build a Measurement from sampled bitstring counts, one mapping per time."""
        n = len(qubit_ids)
        occs, corrs, excs = [], [], []
        for c in counts:
            strings = list(c)
            if any(len(s) != n or set(s) - {"0", "1"} for s in strings):
                raise BackendError(f"counts must be keyed by bitstrings of {n} characters '0'/'1'")
            if any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0 for v in c.values()):
                raise BackendError("counts must be non-negative integers")
            total = sum(c.values())
            if total <= 0:
                raise BackendError("a measurement with zero shots has no statistics")
            states = np.array([int(s, 2) for s in strings], dtype=np.int64)
            w = np.array([c[s] for s in strings], dtype=np.float64)[None, :] / total
            occ, corr, exc = moments(states, w, n)
            occs.append(occ[0])
            corrs.append(corr[0])
            excs.append(exc[0])
        return cls(
            qubit_ids=tuple(qubit_ids),
            evaluation_times=tuple(evaluation_times),
            occupations=np.array(occs).reshape(len(counts), n),
            correlations=np.array(corrs).reshape(len(counts), n, n),
            excitation_distribution=np.array(excs).reshape(len(counts), n + 1),
            counts=tuple(dict(c) for c in counts),
            **meta,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flatten to named numpy arrays (for ``np.savez``); inverse of :meth:`from_arrays`."""
        out: dict[str, np.ndarray] = {
            "qubit_ids": np.array(self.qubit_ids, dtype=str),
            "evaluation_times": np.array(self.evaluation_times, dtype=np.float64),
            "occupations": self.occupations,
            "correlations": self.correlations,
            "excitation_distribution": self.excitation_distribution,
            "meta": np.array(
                json.dumps(
                    {
                        "backend": self.backend,
                        "backend_version": self.backend_version,
                        "settings": _thawed(self.settings),
                        "counts": None if self.counts is None else [dict(c) for c in self.counts],
                    },
                    sort_keys=True,
                    default=str,
                )
            ),
        }
        if self.bitstrings is not None and self.bitstring_probabilities is not None:
            out["bitstrings"] = self.bitstrings
            out["bitstring_probabilities"] = self.bitstring_probabilities
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Measurement:
        """Rebuild a Measurement saved with :meth:`to_arrays` (also reads older dense ``probabilities``)."""
        meta = json.loads(str(arrays["meta"]))
        counts = meta.pop("counts")
        states: np.ndarray | None = None
        probs: np.ndarray | None = None
        if "bitstrings" in arrays:
            states, probs = np.asarray(arrays["bitstrings"]), np.asarray(arrays["bitstring_probabilities"])
        elif "probabilities" in arrays:  # written before the Measurement became sparse
            dense = np.asarray(arrays["probabilities"])
            states = np.flatnonzero(np.any(dense != 0.0, axis=0))
            probs = dense[:, states]
        return cls(
            qubit_ids=tuple(str(q) for q in arrays["qubit_ids"]),
            evaluation_times=tuple(float(t) for t in arrays["evaluation_times"]),
            occupations=np.asarray(arrays["occupations"]),
            correlations=np.asarray(arrays["correlations"]),
            excitation_distribution=np.asarray(arrays["excitation_distribution"]),
            bitstrings=states,
            bitstring_probabilities=probs,
            counts=None if counts is None else tuple(dict(c) for c in counts),
            **meta,
        )


def _rebuild_measurement(values: dict[str, Any]) -> Measurement:
    """Unpickle a :class:`Measurement` (see its ``__reduce__``)."""
    return Measurement(**values)


@runtime_checkable
class Backend(Protocol):
    """Runs Pulser sequences and returns one :class:`Measurement` each.

    ``shots=None`` asks an exact backend for exact probabilities; an integer
    asks for that many samples. ``evaluation_times`` are fractions of each
    sequence's duration (0 < t ≤ 1).
    """

    name: str

    def run(
        self,
        sequences: Sequence[pulser.Sequence],
        *,
        shots: int | None = None,
        evaluation_times: Sequence[float] = (1.0,),
    ) -> list[Measurement]:
        """Run each sequence; return its Measurement, in order."""
        ...

    def cache_key(self) -> dict[str, Any]:
        """Backend name, package version and every setting that changes results."""
        ...


def sequence_seed(seed: int, position: int, sequence: pulser.Sequence) -> np.random.SeedSequence:
    """The sampling seed of one sequence: from the backend's seed, its batch position and its content.

    Content enters so that graphs run one per call (as the FeaturePipeline
    does) do not all draw the same random stream.
    """
    digest = hashlib.sha256(sequence.to_abstract_repr().encode()).digest()
    return np.random.SeedSequence([seed, position, int.from_bytes(digest[:8], "little")])


def check_evaluation_times(evaluation_times: Sequence[float]) -> tuple[float, ...]:
    """Validate evaluation times (fractions of the duration, 0 < t ≤ 1, increasing).

    Raises:
        InvalidInputError: not a non-empty, strictly increasing sequence of numbers in (0, 1].
    """
    if isinstance(evaluation_times, str) or not isinstance(evaluation_times, Iterable):
        raise InvalidInputError(
            f"evaluation_times must be a sequence of fractions, e.g. (1.0,), got {evaluation_times!r}"
        )
    try:
        times = tuple(float(t) for t in evaluation_times)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"evaluation_times must hold numbers, got {evaluation_times!r}") from exc
    if not times:
        raise InvalidInputError("evaluation_times is empty: give at least one time, e.g. (1.0,)")
    if any(not (0.0 < t <= 1.0) or not np.isfinite(t) for t in times):
        raise InvalidInputError(
            f"evaluation_times must lie in (0, 1] (fractions of the duration), got {times}"
        )
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise InvalidInputError(f"evaluation_times must be strictly increasing, got {times}")
    return times


def check_shots(shots: int | None) -> int | None:
    """Validate a shot count (``None`` = exact).

    Raises:
        InvalidInputError: not ``None`` or a positive integer.
    """
    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise InvalidInputError(f"shots must be a positive integer or None (exact), got {shots!r}")
    return int(shots)


def check_run_arguments(
    name: str, sequences: Any, shots: Any, evaluation_times: Any
) -> tuple[list[pulser.Sequence], int | None, tuple[float, ...]]:
    """The checks every backend's ``run()`` starts with: shots, evaluation times, a list of sequences.

    Each item of the list is checked by the backend (see :func:`check_built_sequence`).

    Args:
        name: the backend's name, which starts every message.
        sequences: what ``run()`` was given as its batch.
        shots: ``None`` (exact) or a positive integer.
        evaluation_times: fractions of the duration, 0 < t ≤ 1, increasing.

    Returns:
        the batch as a list, the shots and the evaluation times.

    Raises:
        InvalidInputError: bad shots or times, a single sequence, or not a list.
    """
    checked_shots = check_shots(shots)
    times = check_evaluation_times(evaluation_times)
    if isinstance(sequences, pulser.Sequence):
        raise InvalidInputError(f"{name}: run() takes a list of sequences; wrap the single sequence as [seq]")
    if isinstance(sequences, (str, bytes, Mapping)) or not isinstance(sequences, Sequence):
        raise InvalidInputError(
            f"{name}: run() takes a list of pulser.Sequence, got {type(sequences).__name__}"
        )
    return list(sequences), checked_shots, times


def check_built_sequence(seq: Any, label: str) -> None:
    """Check that one item of a batch is a built pulser.Sequence (``label`` names it in the message).

    Raises:
        InvalidInputError: not a pulser.Sequence, or parametrized / with a mappable register.
    """
    if not isinstance(seq, pulser.Sequence):
        raise InvalidInputError(f"{label} is a {type(seq).__name__}, not a pulser.Sequence")
    if seq.is_parametrized() or seq.is_register_mappable():
        raise InvalidInputError(f"{label} is parametrized or has a mappable register: call seq.build() first")


def js_divergence(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """Jensen–Shannon divergence with the natural log (0 ≤ JS ≤ ln 2).

    JS(p, q) = ½ KL(p‖m) + ½ KL(q‖m), m = (p + q)/2, with 0·log 0 = 0.
    Inputs are clipped at 0 and renormalised along ``axis``.

    Args:
        p: probabilities (any shape).
        q: probabilities, same shape as ``p``.
        axis: axis holding the distribution.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise InvalidInputError(f"js_divergence: shapes differ, {p.shape} vs {q.shape}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
        raise InvalidInputError("js_divergence: probabilities contain NaN or infinity")
    p = np.clip(p, 0.0, None)
    q = np.clip(q, 0.0, None)
    if (p.sum(axis=axis) <= 0).any() or (q.sum(axis=axis) <= 0).any():
        raise InvalidInputError("js_divergence: a distribution sums to zero")
    p = p / p.sum(axis=axis, keepdims=True)
    q = q / q.sum(axis=axis, keepdims=True)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log(p / m), 0.0)
        kq = np.where(q > 0, q * np.log(q / m), 0.0)
    return np.maximum(0.5 * (kp.sum(axis=axis) + kq.sum(axis=axis)), 0.0)
