"""The job ledger's SQLite schema: tables, version check and in-place migration.

Schema 2 (current) keys every job by its cloud account: the core API URL
(``endpoint``, no trailing ``/``) and the Pasqal ``project_id``. Schema 1 had
no project ids, and its jobs knew their endpoint only through their
submission; a schema-1 file is migrated in place, in one transaction, the first
time it is opened (its jobs keep ``project_id`` NULL and match any project on
their endpoint). A file written by a newer schema is refused with a
:class:`~qgnn.errors.BackendError` and left untouched: it records paid jobs.

The tables hold no credentials. :mod:`qgnn.backends.ledger` holds the queries.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from qgnn.errors import BackendError

SCHEMA_VERSION = "2"

_JOBS_TABLE = """CREATE TABLE {name} (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL REFERENCES submissions(submission_id),
    seq_hash TEXT NOT NULL REFERENCES sequences(seq_hash),
    device TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    project_id TEXT,
    shots INTEGER NOT NULL,
    part INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    batch_id TEXT,
    job_id TEXT,
    status TEXT NOT NULL,
    message TEXT,
    counts TEXT,
    superseded INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    submitted_at TEXT,
    finished_at TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (endpoint, job_id)
)"""
_JOBS_INDEXES = (
    "CREATE UNIQUE INDEX jobs_active ON jobs (seq_hash, device, shots, part, endpoint, project_id)"
    " WHERE superseded = 0",
    "CREATE INDEX jobs_batch ON jobs (batch_id)",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS sequences (
    seq_hash TEXT PRIMARY KEY,
    abstract_repr TEXT NOT NULL,
    qubit_ids TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
    """CREATE TABLE submissions (
    submission_id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    batch_id TEXT,
    state TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    project_id TEXT
)""",
    _JOBS_TABLE.format(name="jobs"),
    *_JOBS_INDEXES,
)
_MIGRATE_FROM_1 = (  # schema 1: no project ids, jobs knew their endpoint only through their submission
    "ALTER TABLE submissions ADD COLUMN project_id TEXT",
    "UPDATE submissions SET endpoint = rtrim(endpoint, '/')",
    _JOBS_TABLE.format(name="jobs_v2"),
    "INSERT INTO jobs_v2 SELECT j.row_id, j.submission_id, j.seq_hash, j.device,"
    " COALESCE(s.endpoint, ''), NULL, j.shots, j.part, j.runs, j.batch_id, j.job_id, j.status,"
    " j.message, j.counts, j.superseded, j.created_at, j.submitted_at, j.finished_at, j.updated_at"
    " FROM jobs AS j LEFT JOIN submissions AS s ON s.submission_id = j.submission_id",
    "DROP TABLE jobs",
    "ALTER TABLE jobs_v2 RENAME TO jobs",
    *_JOBS_INDEXES,
)


def schema_version(conn: sqlite3.Connection) -> str | None:
    """The schema version of an open ledger file: ``None`` when it has no tables yet.

    Schema 1 created its tables before writing its version, so a file with a
    ``jobs`` table and no recorded version is schema 1.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version = None
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row is not None else None
    if version is None and "jobs" in tables:
        version = "1"
    return version


def prepare_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables of a new file, or migrate one written by schema 1, in one transaction.

    Args:
        conn: an open connection in autocommit mode (``isolation_level=None``).
        path: the ledger file, for messages.

    Raises:
        BackendError: the file has a schema newer than :data:`SCHEMA_VERSION`
            (nothing is changed).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        if version not in (None, "1", SCHEMA_VERSION):
            raise BackendError(
                f"job ledger {path} has schema version {version}, this qgnn reads 1 and "
                f"{SCHEMA_VERSION}: use a newer qgnn, or point QGNN_CACHE_DIR (or ledger=) elsewhere "
                "(keep the old file: it records paid jobs)"
            )
        if version != SCHEMA_VERSION:
            for statement in _SCHEMA if version is None else _MIGRATE_FROM_1:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
