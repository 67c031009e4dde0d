"""Following submitted batches: record their jobs' statuses and results in the ledger, until a deadline.

The SDK's ``wait=True`` polling never gives up; qgnn polls itself with
growing waits (:func:`poll_until`) bounded by the caller's timeout, and each
poll (:func:`refresh_batch`) writes what it learnt to the ledger at once, so
results fetched before a failure or a kill are never lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qgnn.backends.ledger import (
    FAILED_STATUSES,
    KNOWN_STATUSES,
    RUNNING_STATUSES,
    SUBMITTING,
    CloudAccount,
    JobLedger,
)
from qgnn.backends.pasqal.results import read_counts
from qgnn.backends.pasqal.transport import CloudRequestError, RetryPolicy, call
from qgnn.errors import BackendError

KNOWN_BATCH_STATUSES = frozenset({"PENDING", "RUNNING", "PAUSED", "DONE", "ERROR", "CANCELED", "TIMED_OUT"})
MAX_POLL_INTERVAL_S = 30.0


def poll_until(
    done: Callable[[], bool],
    deadline: float,
    first_wait_s: float,
    *,
    growth: float = 1.5,
    max_wait_s: float = MAX_POLL_INTERVAL_S,
) -> bool:
    """Call ``done()`` until it returns True or ``deadline`` passes; the waits in between grow.

    ``done`` is always called at least once, so a deadline already past means "check once".

    Args:
        done: one poll; True when there is nothing left to wait for.
        deadline: ``time.monotonic()`` value after which to stop (s).
        first_wait_s: first wait between polls (s).
        growth: factor applied to the wait after each poll.
        max_wait_s: cap on one wait (s).

    Returns:
        Whether ``done()`` returned True before the deadline.
    """
    wait = first_wait_s
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(wait, remaining))
        wait = min(wait * growth, max_wait_s)
    return True


def refresh_batch(
    client: Any, ledger: JobLedger, account: CloudAccount, batch_id: str, retry: RetryPolicy
) -> None:
    """Record the statuses of a batch's jobs and the results of those that are done.

    Args:
        client: the SDK's ``PasqalCloudClient`` (logged in to ``account``).
        ledger: the job ledger holding the batch's jobs.
        account: the cloud account ``client`` talks to; only its jobs are updated.
        batch_id: the batch.
        retry: retry policy of the requests.

    Raises:
        CloudRequestError: the batch cannot be fetched, or reports a status qgnn
            does not know (what was learnt before is recorded all the same).
    """

    def fetch() -> tuple[str, list[Any]]:
        batch = client.get_batch(batch_id)
        return str(batch.status), list(batch.ordered_jobs)

    batch_status, jobs = call(f"poll batch {batch_id}", fetch, retry)
    if batch_status not in KNOWN_BATCH_STATUSES:
        raise CloudRequestError(
            f"batch {batch_id} reports status {batch_status!r}, which qgnn does not know "
            f"(known: {sorted(KNOWN_BATCH_STATUSES)}); its jobs stay in the ledger {ledger.path}",
            "malformed",
        )
    by_id = {str(j.id): j for j in jobs}
    updates: list[tuple[str, str, str | None, dict[str, int] | None]] = []
    unknown: list[str] = []
    try:  # results fetched before a failure are recorded all the same
        for record in ledger.jobs(batch_id=batch_id, account=account, include_superseded=True):
            if record.job_id is None or record.has_results or record.failed:
                continue
            job = by_id.get(record.job_id)
            if job is None:
                unknown.append(f"job {record.job_id} is missing from the listing of batch {batch_id}")
                continue
            status = str(job.status)
            if status not in KNOWN_STATUSES or status == SUBMITTING:
                unknown.append(f"job {record.job_id} reports status {status!r}, which qgnn does not know")
                continue
            message = "; ".join(str(e) for e in job.errors) if job.errors else None
            if status in RUNNING_STATUSES and batch_status in FAILED_STATUSES:
                status, message = (
                    batch_status,
                    message or f"batch {batch_id} ended {batch_status} before the job ran",
                )
            counts = None
            if status == "DONE":
                counts, problem = _job_counts(job, ledger.sequence(record.seq_hash)[1], retry)
                message = problem or message
            updates.append((record.job_id, status, message, counts))
    finally:
        ledger.update_jobs(updates, endpoint=account.endpoint)
    if unknown:
        raise CloudRequestError(
            "; ".join(unknown) + f" (known statuses: {sorted(KNOWN_STATUSES - {SUBMITTING})}); "
            f"the jobs stay in the ledger {ledger.path}",
            "malformed",
        )


def _job_counts(
    job: Any, qubit_ids: tuple[str, ...], retry: RetryPolicy
) -> tuple[dict[str, int] | None, str | None]:
    """``(counts, None)``, ``(None, None)`` when not available yet, or ``(None, problem)``."""
    result = call(f"fetch the results of job {job.id}", lambda: job.full_result, retry)
    if result is None:
        return None, None
    try:
        return read_counts(result, qubit_ids), None
    except (BackendError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        return None, f"the results of job {job.id} are unreadable ({exc})"
