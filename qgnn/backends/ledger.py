"""A SQLite ledger of the jobs sent to a remote (paid) backend.

One row per cloud job: the SHA-256 of the sequence's abstract representation,
the device, the cloud account it was sent to (:class:`CloudAccount`: core API
URL and project id), the shots asked for that sequence, which part of a shot
split the job is, its runs, the batch and job ids, its status and server
message, the bitstring counts once fetched, and timestamps. Every write is a
transaction.

The ledger is what makes cloud runs safe to repeat: before anything is sent,
an *intent* (a submission row and its job rows, status ``SUBMITTING``, tagged
with a fresh ``qgnn-<uuid>`` tag) is committed; the server's answer then fills
in the ids. A process killed at any point leaves either no intent, an intent
whose batch can be found again by its tag, or recorded jobs to fetch — never a
reason to pay twice. The file is created with mode 0600; it holds no
credentials.

A recorded job is reused only by a run on the same account: one ledger may hold
jobs of Pasqal's cloud and of a rehearsal on a fake or staging server, and the
counts of one are never returned for the other. Files written by schema 1 (no
project ids; jobs knew their endpoint only through their submission) are
migrated in place when first opened (see :mod:`qgnn.backends.ledger_schema`);
their jobs match any project on their endpoint.

A ledger is meant for one host at a time: keep it on a local disk (SQLite's
WAL locking is unreliable on network filesystems such as NFS). An intent
recorded by another host is treated as possibly in flight until it is
``stale_after_s`` old (see :meth:`SubmissionRecord.owner_alive`), since its
process cannot be checked from here; only then is it settled by its tag.

Example:
    >>> ledger = JobLedger(tmp_path / "jobs.sqlite")  # doctest: +SKIP
    >>> ledger.jobs(unfinished=True)                  # doctest: +SKIP
    []
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qgnn.backends.ledger_schema import SCHEMA_VERSION as SCHEMA_VERSION  # re-exported
from qgnn.backends.ledger_schema import prepare_schema
from qgnn.errors import BackendError, InvalidInputError
from qgnn.paths import cache_dir

LEDGER_FILENAME = "pasqal_jobs.sqlite"

SUBMITTING = "SUBMITTING"
"""An intent committed before the batch-creation request; the outcome is not known yet."""
RUNNING_STATUSES = frozenset({"PENDING", "RUNNING", "PAUSED"})
FAILED_STATUSES = frozenset({"ERROR", "CANCELED", "TIMED_OUT"})
TERMINAL_STATUSES = FAILED_STATUSES | {"DONE"}
KNOWN_STATUSES = RUNNING_STATUSES | TERMINAL_STATUSES | {SUBMITTING}


def default_ledger_path() -> Path:
    """``$QGNN_CACHE_DIR/pasqal_jobs.sqlite``, else ``~/.cache/qgnn/pasqal_jobs.sqlite``."""
    return cache_dir() / LEDGER_FILENAME


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class CloudAccount:
    """Where cloud jobs live: recorded jobs are reused only by runs on the same account.

    Holds no credentials: a job id means something only on the server that
    issued it, and a project's jobs are that project's.

    Args:
        endpoint: the core API URL (a trailing ``/`` is dropped).
        project_id: the Pasqal project the batches belong to.
    """

    endpoint: str
    project_id: str

    def __post_init__(self) -> None:
        for name in ("endpoint", "project_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip("/ "):
                raise InvalidInputError(f"a cloud account needs a non-empty {name} string, got {value!r}")
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))

    def clause(self) -> tuple[str, list[str]]:
        """SQL condition (and its parameters) matching this account's rows; schema-1 rows lack a project."""
        return "endpoint=? AND (project_id=? OR project_id IS NULL)", [self.endpoint, self.project_id]


@dataclass(frozen=True)
class JobRecord:
    """One cloud job as the ledger knows it.

    Args:
        row_id: ledger row id.
        submission_id: the intent (and batch tag) the job was created under.
        seq_hash: SHA-256 of the sequence's canonical abstract representation.
        device: cloud device type, e.g. ``"EMU_MPS"``.
        endpoint: core API URL the job was sent to.
        project_id: its Pasqal project (``None`` when recorded by schema 1).
        shots: total shots asked for the sequence (all parts together).
        part: index of this job within the sequence's shot split.
        runs: shots of this job (≤ the device's ``max_runs``).
        batch_id: the cloud batch id, ``None`` while the outcome is unknown.
        job_id: the cloud job id, ``None`` while the outcome is unknown.
        status: ``SUBMITTING`` or the server's status.
        message: the server's error message for failed jobs.
        counts: bitstring counts once fetched, else ``None``.
        superseded: True once a forced resubmission replaced the job.
        created_at: when the intent was recorded (ISO 8601, UTC).
        updated_at: last change (ISO 8601, UTC).
    """

    row_id: int
    submission_id: str
    seq_hash: str
    device: str
    endpoint: str
    project_id: str | None
    shots: int
    part: int
    runs: int
    batch_id: str | None
    job_id: str | None
    status: str
    message: str | None
    counts: dict[str, int] | None
    superseded: bool
    created_at: str
    updated_at: str

    @property
    def has_results(self) -> bool:
        """True when the job's counts are recorded."""
        return self.counts is not None

    @property
    def failed(self) -> bool:
        """True when the job ended without results (ERROR, CANCELED, TIMED_OUT)."""
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class SubmissionRecord:
    """One batch-creation intent.

    Args:
        submission_id: ``qgnn-<uuid>``; also the tag put on the cloud batch.
        device: cloud device type.
        endpoint: core API URL the batch was sent to.
        batch_id: the cloud batch id once known.
        state: ``SUBMITTING`` until the server's answer is recorded, then ``SUBMITTED``.
        owner_pid: process that recorded the intent.
        owner_host: host of that process.
        created_at: when the intent was recorded (ISO 8601, UTC).
        project_id: the batch's Pasqal project (``None`` when recorded by schema 1).
    """

    submission_id: str
    device: str
    endpoint: str
    batch_id: str | None
    state: str
    owner_pid: int
    owner_host: str
    created_at: str
    project_id: str | None = None

    def belongs_to(self, account: CloudAccount) -> bool:
        """True when the intent was recorded for ``account`` (schema-1 intents: for its endpoint)."""
        return self.endpoint.rstrip("/") == account.endpoint and self.project_id in (
            None,
            account.project_id,
        )

    def owner_alive(self, stale_after_s: float = 900.0) -> bool:
        """True when the recording process may still have its batch-creation request in flight.

        An intent older than ``stale_after_s`` is never in flight; this process's
        own intents are not either (it is the one settling them). A younger
        intent of another process on this host is in flight while that process
        runs; one recorded by another host counts as in flight until it is
        stale, since that process cannot be checked from here.

        Args:
            stale_after_s: an intent older than this (s) is never in flight any more
                (a batch creation takes seconds), whoever now holds the process id.
        """
        age = (datetime.now(UTC) - datetime.fromisoformat(self.created_at)).total_seconds()
        if age > stale_after_s:
            return False
        if self.owner_host != socket.gethostname():
            return True
        if self.owner_pid == os.getpid():
            return False
        try:
            os.kill(self.owner_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@dataclass(frozen=True)
class PlannedJob:
    """A job to create: one part of one sequence's shot split.

    Args:
        seq_hash: the sequence's hash (its abstract repr must be recorded first).
        shots: total shots asked for the sequence.
        part: index within the split.
        runs: shots of this job.
    """

    seq_hash: str
    shots: int
    part: int
    runs: int


class LedgerTransaction:
    """Reads and writes inside one ``BEGIN IMMEDIATE`` transaction (see :meth:`JobLedger.transaction`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def active_jobs(self, seq_hash: str, device: str, shots: int, account: CloudAccount) -> list[JobRecord]:
        """The non-superseded jobs of one (sequence, device, shots) on ``account``, ordered by part."""
        where, params = account.clause()
        rows = self._conn.execute(
            f"SELECT * FROM jobs WHERE seq_hash=? AND device=? AND shots=? AND superseded=0 AND {where}"
            " ORDER BY part",
            (seq_hash, device, shots, *params),
        ).fetchall()
        return [_job(r) for r in rows]

    def record_sequence(self, seq_hash: str, abstract_repr: str, qubit_ids: Sequence[str]) -> None:
        """Store a sequence's abstract repr (once per hash), so ``resume`` can resend it."""
        self._conn.execute(
            "INSERT OR IGNORE INTO sequences VALUES (?, ?, ?, ?)",
            (seq_hash, abstract_repr, json.dumps(list(qubit_ids)), _now()),
        )

    def supersede(self, row_ids: Iterable[int]) -> None:
        """Mark jobs as replaced by a forced resubmission (they stay in the ledger)."""
        now = _now()
        self._conn.executemany(
            "UPDATE jobs SET superseded=1, updated_at=? WHERE row_id=?", [(now, r) for r in row_ids]
        )

    def add_submission(self, device: str, account: CloudAccount, planned: Sequence[PlannedJob]) -> str:
        """Record the intent to create one batch on ``account`` holding ``planned``; return its id (= tag)."""
        submission_id = f"qgnn-{uuid.uuid4()}"
        now = _now()
        self._conn.execute(
            "INSERT INTO submissions (submission_id, device, endpoint, project_id, state, owner_pid,"
            " owner_host, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                submission_id,
                device,
                account.endpoint,
                account.project_id,
                SUBMITTING,
                os.getpid(),
                socket.gethostname(),
                now,
                now,
            ),
        )
        self._conn.executemany(
            "INSERT INTO jobs (submission_id, seq_hash, device, endpoint, project_id, shots, part, runs,"
            " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    submission_id,
                    p.seq_hash,
                    device,
                    account.endpoint,
                    account.project_id,
                    p.shots,
                    p.part,
                    p.runs,
                    SUBMITTING,
                    now,
                    now,
                )
                for p in planned
            ],
        )
        return submission_id


class JobLedger:
    """The job ledger file (SQLite, mode 0600).

    Args:
        path: the SQLite file; default :func:`default_ledger_path`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is not None and not isinstance(path, str | os.PathLike):
            raise InvalidInputError(f"the job ledger path must be a path or None, got {type(path).__name__}")
        self.path = Path(path).expanduser() if path is not None else default_ledger_path()
        self._initialised = False

    def __repr__(self) -> str:
        return f"JobLedger({str(self.path)!r})"

    # ------------------------------------------------------------------ plumbing

    def _create_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._initialised:
                self._create_file()
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open the job ledger {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            if not self._initialised:
                conn.execute("PRAGMA journal_mode = WAL")
                prepare_schema(conn, self.path)
                self._initialised = True
            yield conn
        except sqlite3.IntegrityError as exc:
            raise BackendError(f"job ledger {self.path} refused a conflicting record ({exc}); rerun") from exc
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise BackendError(f"job ledger {self.path}: {exc}") from exc
            raise BackendError(
                f"job ledger {self.path} stayed locked by another process; retry later"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise BackendError(
                f"job ledger {self.path} is unreadable ({exc}); move it aside and keep it: "
                "it records paid jobs"
            ) from exc
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[LedgerTransaction]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it is committed or none."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield LedgerTransaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ writes

    def mark_submitted(
        self, submission_id: str, batch_id: str, job_ids: Sequence[tuple[int, str, str]]
    ) -> None:
        """Record the server's answer: the batch id and ``(row_id, job_id, status)`` per job."""
        now = _now()
        with self.transaction() as tx:
            tx._conn.execute(
                "UPDATE submissions SET batch_id=?, state='SUBMITTED', updated_at=? WHERE submission_id=?",
                (batch_id, now, submission_id),
            )
            tx._conn.executemany(
                "UPDATE jobs SET batch_id=?, job_id=?, status=?, submitted_at=?, updated_at=? WHERE row_id=?",
                [(batch_id, job_id, status, now, now, row_id) for row_id, job_id, status in job_ids],
            )

    def forget_submission(self, submission_id: str) -> None:
        """Delete an intent the server provably never turned into a batch (nothing was paid)."""
        with self.transaction() as tx:
            tx._conn.execute("DELETE FROM jobs WHERE submission_id=? AND job_id IS NULL", (submission_id,))
            tx._conn.execute(
                "DELETE FROM submissions WHERE submission_id=? AND batch_id IS NULL", (submission_id,)
            )

    def update_jobs(
        self, updates: Sequence[tuple[str, str, str | None, Mapping[str, int] | None]], *, endpoint: str
    ) -> None:
        """Record ``(job_id, status, message, counts)`` of several jobs of ``endpoint`` in one transaction."""
        if not updates:
            return
        now = _now()
        with self.transaction() as tx:
            for job_id, status, message, counts in updates:
                finished = now if status in TERMINAL_STATUSES else None
                tx._conn.execute(
                    "UPDATE jobs SET status=?, message=COALESCE(?, message),"
                    " counts=COALESCE(?, counts), finished_at=COALESCE(finished_at, ?), updated_at=?"
                    " WHERE endpoint=? AND job_id=?",
                    (
                        status,
                        message,
                        None if counts is None else json.dumps(dict(counts), sort_keys=True),
                        finished,
                        now,
                        endpoint.rstrip("/"),
                        job_id,
                    ),
                )

    # ------------------------------------------------------------------ reads

    def jobs(
        self,
        *,
        batch_id: str | None = None,
        device: str | None = None,
        seq_hash: str | None = None,
        account: CloudAccount | None = None,
        unfinished: bool = False,
        include_superseded: bool = False,
    ) -> list[JobRecord]:
        """Recorded jobs, oldest first.

        Args:
            batch_id: only this batch.
            device: only this device type.
            seq_hash: only this sequence.
            account: only jobs sent to this cloud account.
            unfinished: only jobs whose results are still to come (submitting,
                pending, running, paused, or done but not fetched).
            include_superseded: include jobs replaced by a forced resubmission.
        """
        clauses, params = _filters(batch_id=batch_id, device=device, seq_hash=seq_hash, account=account)
        if not include_superseded:
            clauses.append("superseded=0")
        if unfinished:
            clauses.append(
                "(status IN ('SUBMITTING','PENDING','RUNNING','PAUSED')"
                " OR (status='DONE' AND counts IS NULL))"
            )
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM jobs {where} ORDER BY row_id", params).fetchall()
        return [_job(r) for r in rows]

    def submissions(
        self, *, device: str | None = None, account: CloudAccount | None = None, pending_only: bool = False
    ) -> list[SubmissionRecord]:
        """Recorded batch-creation intents, oldest first.

        Args:
            device: only this device type.
            account: only intents for this cloud account.
            pending_only: only intents whose answer is not recorded.
        """
        clauses, params = _filters(device=device, account=account)
        if pending_only:
            clauses.append("state=?")
            params.append(SUBMITTING)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM submissions {where} ORDER BY created_at", params).fetchall()
        return [
            SubmissionRecord(
                submission_id=r["submission_id"],
                device=r["device"],
                endpoint=r["endpoint"],
                batch_id=r["batch_id"],
                state=r["state"],
                owner_pid=int(r["owner_pid"]),
                owner_host=r["owner_host"],
                created_at=r["created_at"],
                project_id=r["project_id"],
            )
            for r in rows
        ]

    def submission_jobs(self, submission_id: str) -> list[JobRecord]:
        """The jobs recorded under one intent, in the order they were sent."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE submission_id=? ORDER BY row_id", (submission_id,)
            ).fetchall()
        return [_job(r) for r in rows]

    def sequence(self, seq_hash: str) -> tuple[str, tuple[str, ...]]:
        """The recorded abstract repr and qubit ids of a sequence."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM sequences WHERE seq_hash=?", (seq_hash,)).fetchone()
        if row is None:
            raise BackendError(f"sequence {seq_hash[:12]} is not recorded in the job ledger {self.path}")
        return row["abstract_repr"], tuple(json.loads(row["qubit_ids"]))

    def summary(self) -> list[dict[str, Any]]:
        """Per batch: device, endpoint, number of jobs per status, jobs with results, first/last activity."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT COALESCE(batch_id, '(' || submission_id || ')') AS batch, device, endpoint, status,"
                " COUNT(*) AS n, SUM(counts IS NOT NULL) AS fetched, MIN(created_at) AS first,"
                " MAX(updated_at) AS last FROM jobs WHERE superseded=0"
                " GROUP BY batch, endpoint, device, status ORDER BY first"
            ).fetchall()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(
                (r["endpoint"], r["batch"]),
                {
                    "batch": r["batch"],
                    "device": r["device"],
                    "endpoint": r["endpoint"],
                    "statuses": {},
                    "fetched": 0,
                    "first": r["first"],
                    "last": r["last"],
                },
            )
            entry["statuses"][r["status"]] = int(r["n"])
            entry["fetched"] += int(r["fetched"] or 0)
            entry["first"] = min(entry["first"], r["first"])
            entry["last"] = max(entry["last"], r["last"])
        return list(out.values())


def _filters(account: CloudAccount | None = None, **equal: str | None) -> tuple[list[str], list[str]]:
    """WHERE clauses and parameters: ``column = value`` for the values given, and the account's."""
    clauses = [f"{column}=?" for column, value in equal.items() if value is not None]
    params = [value for value in equal.values() if value is not None]
    if account is not None:
        where, extra = account.clause()
        clauses.append(f"({where})")
        params.extend(extra)
    return clauses, params


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        row_id=int(row["row_id"]),
        submission_id=row["submission_id"],
        seq_hash=row["seq_hash"],
        device=row["device"],
        endpoint=row["endpoint"],
        project_id=row["project_id"],
        shots=int(row["shots"]),
        part=int(row["part"]),
        runs=int(row["runs"]),
        batch_id=row["batch_id"],
        job_id=row["job_id"],
        status=row["status"],
        message=row["message"],
        counts=None
        if row["counts"] is None
        else {str(k): int(v) for k, v in json.loads(row["counts"]).items()},
        superseded=bool(row["superseded"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
