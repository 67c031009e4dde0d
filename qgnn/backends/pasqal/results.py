"""What each sequence of a cloud run got: its jobs' counts merged into a Measurement, or why not.

A sequence whose shots were split over several jobs (``max_runs``) gets one
:class:`~qgnn.backends.base.Measurement` holding the summed counts of all its
recorded jobs; a sequence with a job that failed, did not finish or cannot be
read gets a :class:`JobFailure` saying which, with the server's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qgnn.backends.base import Measurement
from qgnn.backends.ledger import RUNNING_STATUSES, SUBMITTING, JobRecord
from qgnn.errors import BackendError

REJECTED = "REJECTED"
"""JobFailure status of a sequence refused by the local checks (nothing was sent)."""
UNFINISHED = "UNFINISHED"
"""JobFailure status of a sequence whose jobs had not finished when ``timeout_s`` ran out."""


@dataclass(frozen=True)
class JobFailure:
    """Why one sequence has no result.

    Args:
        position: index of the sequence in the call.
        label: how messages name it (e.g. ``"graph 17"``).
        seq_hash: its hash (``None`` when rejected before hashing).
        status: ``REJECTED`` (local checks; nothing sent), ``ERROR``,
            ``CANCELED``, ``TIMED_OUT`` (server), ``UNFINISHED`` (timeout),
            ``SUBMITTING`` (batch creation outcome unknown) or ``UNREADABLE``.
        message: the reason, with the server's message when there is one.
        job_ids: the cloud jobs involved.
        batch_ids: their batches.
    """

    position: int
    label: str
    seq_hash: str | None
    status: str
    message: str
    job_ids: tuple[str, ...] = ()
    batch_ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.label}: {self.status}: {self.message}"


class CloudJobError(BackendError):
    """Some sequences of a cloud run have no result; the others are in :attr:`outcomes`.

    Args:
        message: the summary (one line per failed sequence).
        outcomes: a :class:`Measurement` or :class:`JobFailure` per sequence, in order.
    """

    def __init__(self, message: str, outcomes: Sequence[Measurement | JobFailure] = ()) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes)

    @property
    def failures(self) -> list[JobFailure]:
        """The failed sequences."""
        return [o for o in self.outcomes if isinstance(o, JobFailure)]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.outcomes))


def read_counts(result: Mapping[str, Any], qubit_ids: tuple[str, ...]) -> dict[str, int]:
    """The bitstring counts of one job's results, in ``qubit_ids`` order.

    Args:
        result: the job's results (``{counter, raw, serialised_results}``).
        qubit_ids: the register's qubit ids, in the order bitstrings are written.

    Raises:
        BackendError: the results hold no counter, or one that is not bitstrings of the register.
    """
    counter, order = _counter(result, qubit_ids)
    if not isinstance(counter, Mapping):
        raise BackendError(f"the counter is a {type(counter).__name__}, not a mapping")
    if sorted(order) != sorted(qubit_ids):
        raise BackendError(f"the results are for atoms {list(order)}, the register has {list(qubit_ids)}")
    perm = [order.index(q) for q in qubit_ids]
    n = len(qubit_ids)
    counts: dict[str, int] = {}
    for bits, value in counter.items():
        if not isinstance(bits, str) or len(bits) != n or set(bits) - {"0", "1"}:
            raise BackendError(f"{bits!r} is not a bitstring of {n} atoms")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BackendError(f"count {value!r} for {bits} is not a non-negative integer")
        key = "".join(bits[k] for k in perm)
        counts[key] = counts.get(key, 0) + value
    if sum(counts.values()) <= 0:
        raise BackendError("the counter holds no shot")
    return counts


def _counter(result: Mapping[str, Any], qubit_ids: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """The bitstring counter of a job result and the atom order of its bitstrings."""
    counter = result.get("counter")
    if counter is not None:
        return counter, qubit_ids
    serialised = result.get("serialised_results")
    if not serialised:
        raise BackendError("neither 'counter' nor 'serialised_results' is present")
    from pulser.backend.results import Results

    results = Results.from_abstract_repr(serialised)
    return results.final_bitstrings, tuple(str(q) for q in results.atom_order)


def outcome(
    position: int,
    label: str,
    seq_hash: str,
    qubit_ids: tuple[str, ...],
    rows: list[JobRecord],
    *,
    backend: str,
    backend_version: str,
    timeout_s: float,
) -> Measurement | JobFailure:
    """The Measurement of one sequence, its jobs' counts summed, or why it has none.

    Args:
        position: index of the sequence in the call.
        label: how messages name it.
        seq_hash: its hash.
        qubit_ids: its register's qubit ids, in bitstring order.
        rows: the ledger's jobs of this sequence on one device at one shot count.
        backend: the backend's name (``"pasqal:EMU_MPS"``), written into the Measurement.
        backend_version: package versions, written into the Measurement.
        timeout_s: the run's timeout (s), quoted for unfinished jobs.
    """
    job_ids = tuple(r.job_id for r in rows if r.job_id)
    batch_ids = tuple(sorted({r.batch_id for r in rows if r.batch_id}))
    if rows and all(r.has_results for r in rows):
        merged: dict[str, int] = {}
        for r in rows:
            for bits, n in (r.counts or {}).items():
                merged[bits] = merged.get(bits, 0) + n
        return Measurement.from_counts(
            qubit_ids,
            (1.0,),
            [merged],
            backend=backend,
            backend_version=backend_version,
            settings={"device": rows[0].device, "shots": rows[0].shots, "job_ids": list(job_ids)},
        )
    status, message = _why(rows, timeout_s)
    return JobFailure(position, label, seq_hash, status, message, job_ids, batch_ids)


def _why(rows: list[JobRecord], timeout_s: float) -> tuple[str, str]:
    """The status and message of a sequence whose jobs do not all have results."""
    failed = [r for r in rows if r.failed]
    if failed:
        return failed[0].status, "; ".join(
            f"job {r.job_id} {r.status}: {r.message or 'no message from the server'}" for r in failed
        )
    if any(r.status == SUBMITTING for r in rows):
        return SUBMITTING, (
            "the batch creation has no recorded answer (another process may be sending it); "
            "rerun to reconcile it by its tag"
        )
    if any(r.status in RUNNING_STATUSES for r in rows):
        waiting = ", ".join(f"{r.job_id} {r.status}" for r in rows if r.status in RUNNING_STATUSES)
        return (
            UNFINISHED,
            f"jobs not finished after timeout_s={timeout_s:g} s ({waiting}); rerun to collect them",
        )
    if rows:
        return "UNREADABLE", "; ".join(
            r.message or f"job {r.job_id}: results not available yet" for r in rows if not r.has_results
        )
    return "MISSING", "no job is recorded for this sequence"
