"""Idempotent batch creation: record an intent, send it once, settle lost answers by tag.

Nothing is sent that the ledger does not already hold as an *intent* (its
jobs, status ``SUBMITTING``, tagged ``qgnn-<uuid>``). The batch-creation POST
is never repeated blindly: when its answer is lost (reset or timeout after
sending, 5xx, malformed reply) the batch is first looked up by its tag; a
failure the server provably did not act on (no connection, 425/429/503) is
simply retried. Intents left by a killed process are settled the same way
(:meth:`Submitter.reconcile_pending`) before anything new is sent.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qgnn.backends.ledger import CloudAccount, JobLedger, JobRecord, PlannedJob
from qgnn.backends.pasqal.devices import backend_configuration
from qgnn.backends.pasqal.polling import poll_until
from qgnn.backends.pasqal.transport import CloudRequestError, Failure, RetryPolicy, call, logger
from qgnn.backends.pasqal.validation import PreparedSequence, split_shots
from qgnn.errors import BackendError


class UnsettledSubmission(CloudRequestError):
    """A batch creation lost its answer and the batch could not be looked up; the intent stays recorded."""


@dataclass(frozen=True)
class Submitter:
    """Sends the jobs of one device on one cloud account as batches, never paying twice for a sequence.

    Args:
        client: returns the SDK's ``PasqalCloudClient`` (logging in on first use).
        ledger: the job ledger.
        device: cloud device type (e.g. ``"EMU_MPS"``).
        account: the core API URL and project; jobs and intents recorded for
            another account are neither reused nor settled here.
        retry: retry policy (``settle_s`` bounds the look-up of a lost batch).
        max_jobs_per_batch: split a submission into batches of at most this many jobs.
    """

    client: Callable[[], Any]
    ledger: JobLedger
    device: str
    account: CloudAccount
    retry: RetryPolicy
    max_jobs_per_batch: int | None = None

    def ensure_submitted(
        self,
        sequences: Sequence[PreparedSequence],
        shots: int,
        max_runs: int | None,
        *,
        force: bool = False,
        retry_failed: bool = False,
    ) -> None:
        """Send the sequences without an active job (at ``shots``, on this account); reuse the others.

        Args:
            sequences: checked sequences (duplicates are sent once).
            shots: shots per sequence, split into jobs of at most ``max_runs``.
            max_runs: the device's limit of runs per job.
            force: supersede recorded jobs and send again (pays again).
            retry_failed: supersede and resend the jobs recorded as failed.
        """
        self.reconcile_pending()
        runs = split_shots(shots, max_runs)
        unique = {p.seq_hash: p for p in sequences}
        submission_ids: list[str] = []
        with self.ledger.transaction() as tx:
            planned: list[PlannedJob] = []
            for seq_hash, p in unique.items():
                tx.record_sequence(seq_hash, p.abstract_repr, p.qubit_ids)
                active = tx.active_jobs(seq_hash, self.device, shots, self.account)
                if force or not active:
                    tx.supersede(r.row_id for r in active)
                    planned.extend(PlannedJob(seq_hash, shots, k, n) for k, n in enumerate(runs))
                elif retry_failed:
                    failed = [r for r in active if r.failed]
                    tx.supersede(r.row_id for r in failed)
                    planned.extend(PlannedJob(seq_hash, shots, r.part, r.runs) for r in failed)
            size = self.max_jobs_per_batch or max(len(planned), 1)
            for start in range(0, len(planned), size):
                submission_ids.append(
                    tx.add_submission(self.device, self.account, planned[start : start + size])
                )
        for submission_id in submission_ids:
            self.send(submission_id)

    def reconcile_pending(self) -> None:
        """Settle intents left by a killed process: adopt the batch found by tag, or send it now."""
        for sub in self.ledger.submissions(device=self.device, pending_only=True):
            if sub.owner_alive():
                continue
            if not sub.belongs_to(self.account):
                logger.warning(
                    "submission %s was recorded for %s (project %s), not %s (project %s): skipped",
                    sub.submission_id,
                    sub.endpoint,
                    sub.project_id,
                    self.account.endpoint,
                    self.account.project_id,
                )
                continue
            rows = self.ledger.submission_jobs(sub.submission_id)
            found = self.find_by_tag(sub.submission_id)
            if found is not None:
                logger.info("adopting batch %s of interrupted submission %s", found.id, sub.submission_id)
                self._record_batch(sub.submission_id, rows, found)
            elif rows:
                logger.info(
                    "interrupted submission %s never reached the cloud: sending it", sub.submission_id
                )
                self.send(sub.submission_id)
            else:
                self.ledger.forget_submission(sub.submission_id)

    def send(self, submission_id: str) -> None:
        """Create the batch of a recorded intent, never twice.

        Raises:
            CloudRequestError: the cloud refused it or kept failing; the intent is
                deleted (no batch was created).
            UnsettledSubmission: the answer was lost and the batch could not be
                looked up; the intent stays recorded for a rerun to settle.
        """
        from pasqal_cloud.device import DeviceTypeName

        client = self.client()
        rows = self.ledger.submission_jobs(submission_id)
        jobs = [{"runs": r.runs, "serialized_sequence": self.ledger.sequence(r.seq_hash)[0]} for r in rows]
        what = f"create a batch of {len(rows)} jobs on {self.device}"
        answer_lost = False

        def create() -> Any:
            return client.create_batch(
                serialized_sequence=None,
                jobs=jobs,
                device_type=DeviceTypeName(self.device),
                backend_configuration=backend_configuration(self.device),
                open=False,
                tags=[submission_id],
            )

        def look_up(failure: Failure, cause: BaseException) -> Any:
            """The batch, when a failed attempt may have created it; ``None`` to send again."""
            nonlocal answer_lost
            if failure.processed is False:
                return None
            answer_lost = True
            logger.warning(
                "%s: no clear answer (%s); looking the batch up by its tag %s",
                what,
                failure.detail,
                submission_id,
            )
            return self._settle(submission_id, what, cause)

        try:
            batch = call(what, create, self.retry, recover=look_up)
        except UnsettledSubmission:
            raise
        except CloudRequestError as exc:
            self.ledger.forget_submission(submission_id)
            raise CloudRequestError(f"{exc} (no batch was created)", exc.kind, exc.status) from exc
        if answer_lost:  # an earlier attempt may have landed late: keep the oldest batch, cancel the rest
            batch = self.find_by_tag(submission_id) or batch
        self._record_batch(submission_id, rows, batch)

    def _settle(self, tag: str, what: str, cause: BaseException) -> Any:
        """Look for the batch tagged ``tag`` for up to ``retry.settle_s``; ``None`` if it never appears."""
        found = None

        def appeared() -> bool:
            nonlocal found
            try:
                found = self.find_by_tag(tag)
            except CloudRequestError as lookup:
                raise UnsettledSubmission(
                    f"{what}: the answer was lost and the batch could not be looked up ({lookup}); the "
                    f"submission stays recorded as {tag}: rerun to settle it by its tag",
                    lookup.kind,
                    lookup.status,
                ) from cause
            return found is not None

        poll_until(
            appeared,
            time.monotonic() + self.retry.settle_s,
            self.retry.backoff_s,
            growth=2.0,
            max_wait_s=self.retry.max_backoff_s,
        )
        return found

    def find_by_tag(self, tag: str) -> Any:
        """The oldest batch carrying ``tag`` (others, duplicates, are cancelled), or ``None``."""
        from pasqal_cloud.utils.filters import BatchFilters

        client = self.client()
        page = call(
            f"look up the batch tagged {tag}",
            lambda: client.get_batches(filters=BatchFilters(tag=tag)),
            self.retry,
        )
        batches = sorted((b for b in page.results if tag in (b.tags or [])), key=lambda b: str(b.created_at))
        for duplicate in batches[1:]:
            logger.warning(
                "batch %s duplicates batch %s (same tag %s): cancelling it", duplicate.id, batches[0].id, tag
            )
            call(
                f"cancel duplicate batch {duplicate.id}",
                functools.partial(client.cancel_batch, duplicate.id),
                self.retry,
            )
        return batches[0] if batches else None

    def _record_batch(self, submission_id: str, rows: list[JobRecord], batch: Any) -> None:
        jobs = call(f"list the jobs of batch {batch.id}", lambda: list(batch.ordered_jobs), self.retry)
        if len(jobs) != len(rows) or any(j.runs != r.runs for j, r in zip(jobs, rows, strict=False)):
            self.ledger.mark_submitted(submission_id, batch.id, [])
            raise BackendError(
                f"batch {batch.id} holds {len(jobs)} jobs with runs {[j.runs for j in jobs]}, but qgnn sent "
                f"{len(rows)} with runs {[r.runs for r in rows]}; cancel it "
                f"(`qgnn cloud cancel --batch {batch.id}`) and rerun with force=True"
            )
        self.ledger.mark_submitted(
            submission_id,
            batch.id,
            [(r.row_id, j.id, str(j.status)) for r, j in zip(rows, jobs, strict=True)],
        )
        logger.info(
            "batch %s created on %s with %d jobs (tag %s)", batch.id, self.device, len(jobs), submission_id
        )
