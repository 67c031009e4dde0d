"""The Backend protocol and the Measurement it returns.

Bitstring convention (Pulser's): character ``k`` of a bitstring is qubit
``qubit_ids[k]``; ``"1"`` means Rydberg. A dense probability vector indexes
bitstrings by their integer value, ``int(bitstring, 2)``, so qubit 0 is the
most significant bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pulser

from qgnn.errors import BackendError, InvalidInputError


@dataclass(frozen=True, eq=False)
class Measurement:
    """What one sequence produced on one backend, at one or more evaluation times.

    Args:
        qubit_ids: register qubit ids, in bitstring order.
        evaluation_times: fractions of the sequence duration (0 < t ≤ 1).
        occupations: ⟨n_i⟩, shape ``(T, n)``.
        correlations: ⟨n_i n_j⟩, shape ``(T, n, n)`` (diagonal = ⟨n_i⟩).
        excitation_distribution: P(k excitations), shape ``(T, n + 1)``.
        probabilities: exact bitstring probabilities, shape ``(T, 2**n)``,
            or ``None`` when the backend sampled.
        counts: bitstring counts per evaluation time, or ``None`` when exact.
        backend: backend name, e.g. ``"emu-sv"``.
        backend_version: version of the package that computed it.
        settings: backend settings that produced it (dt, precision, ...).
    """

    qubit_ids: tuple[str, ...]
    evaluation_times: tuple[float, ...]
    occupations: np.ndarray
    correlations: np.ndarray
    excitation_distribution: np.ndarray
    probabilities: np.ndarray | None = None
    counts: tuple[dict[str, int], ...] | None = None
    backend: str = ""
    backend_version: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_qubits(self) -> int:
        """Number of atoms in the register."""
        return len(self.qubit_ids)

    @property
    def exact(self) -> bool:
        """True when the statistics carry no shot noise (computed, not sampled).

        Large exact runs may omit the dense ``probabilities`` vector while
        their occupations, correlations and excitation distribution are exact.
        """
        return self.counts is None

    def connected_correlations(self, t_index: int = -1) -> np.ndarray:
        """C_ij = ⟨n_i n_j⟩ − ⟨n_i⟩⟨n_j⟩ at one evaluation time, shape ``(n, n)``."""
        occ = self.occupations[t_index]
        return self.correlations[t_index] - np.outer(occ, occ)

    @classmethod
    def from_probabilities(
        cls,
        qubit_ids: Sequence[str],
        evaluation_times: Sequence[float],
        probabilities: np.ndarray,
        **meta: Any,
    ) -> Measurement:
        """Build a Measurement from dense exact probabilities of shape ``(T, 2**n)``."""
        n = len(qubit_ids)
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != 2**n:
            raise BackendError(f"probabilities must have shape (T, {2**n}), got {probs.shape}")
        bits = bit_matrix(n)
        occ = probs @ bits
        corr = np.einsum("tk,ki,kj->tij", probs, bits, bits)
        exc = np.stack([np.bincount(bits.sum(1).astype(int), weights=p, minlength=n + 1) for p in probs])
        return cls(
            qubit_ids=tuple(qubit_ids),
            evaluation_times=tuple(float(t) for t in evaluation_times),
            occupations=occ,
            correlations=corr,
            excitation_distribution=exc,
            probabilities=probs,
            **meta,
        )

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
            bits = np.array([[ch == "1" for ch in s] for s in strings], dtype=np.float64)
            w = np.array([c[s] for s in strings], dtype=np.float64) / total
            occs.append(w @ bits)
            corrs.append(np.einsum("k,ki,kj->ij", w, bits, bits))
            excs.append(np.bincount(bits.sum(1).astype(int), weights=w, minlength=n + 1))
        return cls(
            qubit_ids=tuple(qubit_ids),
            evaluation_times=tuple(float(t) for t in evaluation_times),
            occupations=np.array(occs),
            correlations=np.array(corrs),
            excitation_distribution=np.array(excs),
            counts=tuple(dict(c) for c in counts),
            **meta,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flatten to named numpy arrays (for ``np.savez``); inverse of :meth:`from_arrays`."""
        import json

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
                        "settings": dict(self.settings),
                        "counts": None if self.counts is None else list(self.counts),
                    },
                    sort_keys=True,
                    default=str,
                )
            ),
        }
        if self.probabilities is not None:
            out["probabilities"] = self.probabilities
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Measurement:
        """Rebuild a Measurement saved with :meth:`to_arrays`."""
        import json

        meta = json.loads(str(arrays["meta"]))
        counts = meta.pop("counts")
        return cls(
            qubit_ids=tuple(str(q) for q in arrays["qubit_ids"]),
            evaluation_times=tuple(float(t) for t in arrays["evaluation_times"]),
            occupations=np.asarray(arrays["occupations"]),
            correlations=np.asarray(arrays["correlations"]),
            excitation_distribution=np.asarray(arrays["excitation_distribution"]),
            probabilities=np.asarray(arrays["probabilities"]) if "probabilities" in arrays else None,
            counts=None if counts is None else tuple(dict(c) for c in counts),
            **meta,
        )


def bit_matrix(n_qubits: int) -> np.ndarray:
    """Occupation of each qubit in each basis state, shape ``(2**n, n)``.

    Row ``k`` is the bitstring ``format(k, f"0{n}b")``: qubit 0 is the most
    significant bit.
    """
    k = np.arange(2**n_qubits, dtype=np.int64)[:, None]
    shifts = np.arange(n_qubits - 1, -1, -1, dtype=np.int64)[None, :]
    return ((k >> shifts) & 1).astype(np.float64)


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
    """Validate evaluation times (fractions of the duration, 0 < t ≤ 1, increasing)."""
    if isinstance(evaluation_times, str) or not isinstance(evaluation_times, Iterable):
        raise BackendError(
            f"evaluation_times must be a sequence of fractions, e.g. (1.0,), got {evaluation_times!r}"
        )
    try:
        times = tuple(float(t) for t in evaluation_times)
    except (TypeError, ValueError) as exc:
        raise BackendError(f"evaluation_times must hold numbers, got {evaluation_times!r}") from exc
    if not times:
        raise BackendError("evaluation_times is empty: give at least one time, e.g. (1.0,)")
    if any(not (0.0 < t <= 1.0) or not np.isfinite(t) for t in times):
        raise BackendError(f"evaluation_times must lie in (0, 1] (fractions of the duration), got {times}")
    if any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise BackendError(f"evaluation_times must be strictly increasing, got {times}")
    return times


def check_shots(shots: int | None) -> int | None:
    """Validate a shot count (``None`` = exact)."""
    if shots is None:
        return None
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise BackendError(f"shots must be a positive integer or None (exact), got {shots!r}")
    return int(shots)


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
