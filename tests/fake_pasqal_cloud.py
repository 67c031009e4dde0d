"""A fake Pasqal cloud: a stdlib HTTP server on 127.0.0.1 speaking the routes the SDK calls.

It serves recorded device specs, checks what it receives the way the cloud
does (bearer token, gzip body, project id, abstract-repr sequences it can
deserialise, QPU rules and ``max_runs`` for QPU device types), runs the
submitted sequences on a local emulator (pulser-simulation / QuTiP, exact
final state, then ``runs`` samples) so counts are physically right, and
injects faults on demand (HTTP statuses, connection resets, slow or malformed
replies, failed or stuck jobs, unknown statuses).

Routes (base = ``server.url``): ``POST /oauth/token``;
``GET /api/v1/devices/specs`` and ``/api/v1/devices/public-specs``;
``POST /api/v1/batches``; ``GET /api/v1/batches`` (tag filter, paginated);
``GET /api/v2/batches/{id}``; ``GET /api/v1/batches/{id}/status``;
``GET /api/v2/jobs?batch_id=…`` (paginated); ``GET /api/v2/jobs/{id}``;
``POST /api/v2/batches/{id}/jobs``; ``PATCH /api/v2/batches/{id}/complete``;
``PATCH /api/v2/batches/{id}/cancel``; ``PATCH /api/v2/jobs/{id}/cancel``;
``GET /api/v1/jobs/{id}/status``; ``GET /api/v1/jobs/{id}/results_link``; and
the unauthenticated results download ``GET /results/{id}``.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

SPECS_PATH = Path(__file__).parent / "fixtures" / "pasqal_public_device_specs.json"
QPU_TYPES = frozenset({"FRESNEL", "FRESNEL_CAN1"})
DEVICE_TYPES = QPU_TYPES | {"EMU_MPS", "EMU_SV", "EMU_FREE", "EMU_FRESNEL", "EMU_TN"}
TERMINAL = frozenset({"DONE", "ERROR", "CANCELED", "TIMED_OUT"})


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Fault:
    """A fault injected into matching requests.

    Args:
        method: HTTP method to match.
        path: regular expression matched against the request path.
        kind: ``"status"`` (reply ``status`` with a JSend failure),
            ``"reset"`` (close the connection without answering),
            ``"slow"`` (wait ``delay`` s, then answer normally),
            ``"bad_json"`` (200 with a body that is not JSON),
            ``"no_data"`` (200 with a JSend envelope lacking ``data``),
            ``"reset_after"`` / ``"status_after"`` / ``"slow_after"`` (process
            the request, then reset / answer ``status`` / wait ``delay`` s
            before answering: the reply is lost or late, the effect is not).
        times: how many requests it hits (``-1``: all).
        status: HTTP status for the ``status`` kinds.
        delay: seconds for ``slow``.
        headers: extra reply headers (e.g. ``Retry-After``).
    """

    method: str
    path: str
    kind: str
    times: int = 1
    status: int = 500
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0


@dataclass
class FakeJob:
    id: str
    batch_id: str
    runs: int
    sequence: str
    created_at: str
    status: str = "PENDING"
    errors: list[str] = field(default_factory=list)
    counter: dict[str, int] | None = None
    serialised_results: str | None = None
    atom_order: tuple[str, ...] = ()
    planned: tuple[str, str] | None = None
    updated_at: str = ""


@dataclass
class FakeBatch:
    id: str
    device_type: str
    project_id: str
    created_at: str
    tags: list[str]
    backend_configuration: str | None
    sequence_builder: str | None
    job_ids: list[str] = field(default_factory=list)
    forced_status: str | None = None
    open: bool = False


class FakePasqalCloud:
    """The fake cloud. Start with :meth:`start`, stop with :meth:`stop`.

    Args:
        username: the account accepted by ``/oauth/token``.
        password: its password.
        project_id: the project batches must belong to.
        specs: device type → abstract-repr specs JSON (default: the recorded fixture).
        page_size: page length of the paginated listings (small, to exercise paging).
        seed: seed of the shot sampling.
    """

    def __init__(
        self,
        username: str = "researcher@lab.example",
        password: str = "s3cret-Pa55word-for-tests",
        project_id: str = "proj-0001",
        specs: dict[str, str] | None = None,
        page_size: int = 2,
        seed: int = 1234,
    ) -> None:
        self.username = username
        self.password = password
        self.project_id = project_id
        self.specs = specs if specs is not None else json.loads(SPECS_PATH.read_text())
        self.page_size = page_size
        self.seed = seed
        self.tokens: set[str] = set()
        self.batches: dict[str, FakeBatch] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.results_format = "both"
        self.next_outcomes: dict[int, tuple[str, str]] = {}
        self.held = threading.Event()
        self.lock = threading.RLock()
        self._probabilities: dict[str, dict[str, float]] = {}
        self._rng = np.random.default_rng(seed)
        self._work = threading.Condition(self.lock)
        self._stopping = False
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        """The token endpoint for username/password logins."""
        return f"{self.url}/oauth/token"

    def start(self) -> FakePasqalCloud:
        """Serve on an ephemeral 127.0.0.1 port and start the job runner."""
        server = self

        class Handler(_Handler):
            cloud = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        httpd = self._httpd
        for target in (lambda: httpd.serve_forever(poll_interval=0.05), self._run_jobs):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop serving and running jobs."""
        with self._work:
            self._stopping = True
            self.held.clear()
            self._work.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=10)

    # ------------------------------------------------------------------ controls for tests

    def inject(self, method: str, path: str, kind: str, **kwargs: Any) -> Fault:
        """Add a :class:`Fault`; returns it (``fault.hits`` counts the requests it hit)."""
        fault = Fault(method.upper(), path, kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def hold_jobs(self) -> None:
        """Jobs move to RUNNING but do not finish until :meth:`release_jobs`."""
        self.held.set()

    def release_jobs(self) -> None:
        """Let held jobs finish."""
        with self._work:
            self.held.clear()
            self._work.notify_all()

    def plan_outcome(self, position: int, status: str, message: str = "") -> None:
        """The job at ``position`` of the next batch created ends with ``status`` (ERROR, CANCELED, ...)."""
        with self.lock:
            self.next_outcomes[position] = (status, message)

    def set_batch_status(self, batch_id: str, status: str) -> None:
        """Force a batch's status (e.g. TIMED_OUT): its unfinished jobs stay as they are and never run."""
        with self.lock:
            self.batches[batch_id].forced_status = status

    def count(self, method: str, pattern: str) -> int:
        """How many received requests match ``method`` and the path regex ``pattern``."""
        with self.lock:
            return sum(1 for r in self.requests if r["method"] == method and re.fullmatch(pattern, r["path"]))

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
        """Poll ``predicate`` until true or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    # ------------------------------------------------------------------ job runner

    def _run_jobs(self) -> None:
        while True:
            with self._work:
                job = None
                while job is None:
                    if self._stopping:
                        return
                    job = next(
                        (
                            j
                            for j in self.jobs.values()
                            if j.status == "PENDING" and self.batches[j.batch_id].forced_status is None
                        ),
                        None,
                    )
                    if job is None:
                        self._work.wait(0.05)
                job.status = "RUNNING"
                job.updated_at = _now()
                while self.held.is_set() and not self._stopping:
                    self._work.wait(0.05)
                if self._stopping:
                    return
                planned = job.planned
            if planned is not None:
                status, message = planned
                with self.lock:
                    job.status, job.errors, job.updated_at = status, [message] if message else [], _now()
                continue
            try:
                counter, order, serialised = self._execute(job)
            except Exception as exc:  # report like the cloud: the job errors with a message
                with self.lock:
                    job.status, job.errors, job.updated_at = "ERROR", [f"emulation failed: {exc}"], _now()
                continue
            with self.lock:
                job.counter, job.atom_order, job.serialised_results = counter, order, serialised
                job.status, job.updated_at = "DONE", _now()

    def _execute(self, job: FakeJob) -> tuple[dict[str, int], tuple[str, ...], str]:
        import pulser
        from pulser.backend.results import Results

        seq = pulser.Sequence.from_abstract_repr(job.sequence)
        probs = self._probabilities.get(job.sequence)
        if probs is None:
            probs = final_bitstring_probabilities(seq)
            self._probabilities[job.sequence] = probs
        keys = sorted(probs)
        p = np.array([probs[k] for k in keys])
        with self.lock:
            draws = self._rng.multinomial(job.runs, p / p.sum())
        counter = {k: int(n) for k, n in zip(keys, draws, strict=True) if n}
        order = tuple(str(q) for q in seq.register.qubit_ids)
        serialised = Results.from_final_bitstrings(order, seq.get_duration(), counter).to_abstract_repr()
        return counter, order, serialised

    # ------------------------------------------------------------------ state → JSON

    def batch_status(self, batch: FakeBatch) -> str:
        if batch.forced_status is not None:
            return batch.forced_status
        statuses = {self.jobs[j].status for j in batch.job_ids}
        if statuses - TERMINAL:
            return "PENDING" if statuses == {"PENDING"} else "RUNNING"
        return "DONE" if "DONE" in statuses or not statuses else sorted(statuses)[0]

    def batch_json(self, batch: FakeBatch, with_jobs: bool = False) -> dict[str, Any]:
        per_status: dict[str, int] = {}
        for j in batch.job_ids:
            per_status[self.jobs[j].status] = per_status.get(self.jobs[j].status, 0) + 1
        out: dict[str, Any] = {
            "id": batch.id,
            "open": batch.open,
            "complete": not batch.open,
            "created_at": batch.created_at,
            "updated_at": _now(),
            "device_type": batch.device_type,
            "project_id": batch.project_id,
            "user_id": "fake-user",
            "status": self.batch_status(batch),
            "jobs_count": len(batch.job_ids),
            "jobs_count_per_status": per_status,
            "webhook": None,
            "tags": list(batch.tags),
            "backend_configuration": batch.backend_configuration,
            "sequence_builder": batch.sequence_builder,
        }
        if with_jobs:
            out["jobs"] = [self.job_json(self.jobs[j]) for j in batch.job_ids]
        return out

    def job_json(self, job: FakeJob, with_sequence: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id,
            "batch_id": job.batch_id,
            "project_id": self.project_id,
            "runs": job.runs,
            "status": job.status,
            "created_at": job.created_at,
            "updated_at": job.updated_at or job.created_at,
            "errors": list(job.errors),
            "variables": None,
        }
        if with_sequence:
            out["sequence"] = job.sequence
        return out

    # ------------------------------------------------------------------ validation like the cloud

    def validate_batch(self, body: Any) -> list[str]:
        """Problems the cloud would report for a batch-creation body (empty: accepted)."""
        import pulser
        from pulser.backend.config import EmulationConfig
        from pulser.backend.qpu import QPUBackend
        from pulser.json.abstract_repr.deserializer import deserialize_device

        if not isinstance(body, dict):
            return ["the body must be a JSON object"]
        problems = []
        if body.get("project_id") != self.project_id:
            problems.append("unknown project_id")
        device_type = body.get("device_type")
        if device_type not in DEVICE_TYPES:
            problems.append(f"unknown device_type {device_type!r}")
        jobs = body.get("jobs")
        if not isinstance(jobs, list) or not jobs:
            return [*problems, "jobs must be a non-empty list"]
        if body.get("backend_configuration") is not None:
            try:
                EmulationConfig.from_abstract_repr(body["backend_configuration"])
            except Exception as exc:
                problems.append(f"backend_configuration is invalid: {exc}")
        spec_device = None
        if device_type in QPU_TYPES:
            spec_device = deserialize_device(self.specs[device_type])
        for k, job in enumerate(jobs):
            runs = job.get("runs") if isinstance(job, dict) else None
            if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
                problems.append(f"job {k}: runs must be a positive integer")
                continue
            text = job.get("sequence") or body.get("sequence_builder")
            if not isinstance(text, str):
                problems.append(f"job {k}: no sequence")
                continue
            try:
                seq = pulser.Sequence.from_abstract_repr(text)
            except Exception as exc:
                problems.append(f"job {k}: the sequence cannot be deserialised: {exc}")
                continue
            if spec_device is not None:
                if seq.device != spec_device:
                    problems.append(
                        f"job {k}: the sequence's device differs from the current {device_type} specs"
                    )
                try:
                    QPUBackend.validate_sequence(seq, mimic_qpu=True)
                except Exception as exc:
                    problems.append(f"job {k}: {exc}")
                if spec_device.max_runs is not None and runs > spec_device.max_runs:
                    problems.append(f"job {k}: runs {runs} above max_runs {spec_device.max_runs}")
        return problems

    def create_batch(self, body: dict[str, Any]) -> FakeBatch:
        with self._work:
            batch = FakeBatch(
                id=str(uuid.uuid4()),
                device_type=body["device_type"],
                project_id=body["project_id"],
                created_at=_now(),
                tags=list(body.get("tags") or []),
                backend_configuration=body.get("backend_configuration"),
                sequence_builder=body.get("sequence_builder"),
                open=bool(body.get("open")),
            )
            self.batches[batch.id] = batch
            self._add_jobs(batch, body["jobs"], body.get("sequence_builder"))
            self.next_outcomes = {}
            self._work.notify_all()
            return batch

    def _add_jobs(self, batch: FakeBatch, jobs: list[dict[str, Any]], default_seq: str | None) -> None:
        for k, spec in enumerate(jobs):
            job = FakeJob(
                id=str(uuid.uuid4()),
                batch_id=batch.id,
                runs=int(spec["runs"]),
                sequence=spec.get("sequence") or default_seq or "",
                created_at=_now(),
                planned=self.next_outcomes.get(k),
            )
            self.jobs[job.id] = job
            batch.job_ids.append(job.id)


def final_bitstring_probabilities(seq: Any) -> dict[str, float]:
    """Exact final bitstring probabilities of a sequence, from pulser-simulation (QuTiP)."""
    from pulser.backend.default_observables import StateResult
    from pulser_simulation import QutipBackendV2, QutipConfig

    config = QutipConfig(observables=[StateResult(evaluation_times=[1.0])])
    results = QutipBackendV2(seq, config=config).run()
    return {k: float(v) for k, v in results.final_state.bitstring_probabilities().items()}


def _envelope(data: Any, code: int = 200, pagination: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "success", "code": code, "message": "OK.", "data": data}
    if pagination is not None:
        out["pagination"] = pagination
    return out


def _failure(code: int, description: list[str] | str) -> dict[str, Any]:
    return {
        "status": "fail",
        "code": str(code),
        "message": "Request failed.",
        "data": {"description": description if isinstance(description, list) else [description]},
    }


class _Handler(BaseHTTPRequestHandler):
    cloud: FakePasqalCloud
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    # --------------------------------------------------------------- plumbing

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _reply(
        self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        payload = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.cloud.lock:
            for fault in self.cloud.faults:
                if fault.method == method and re.fullmatch(fault.path, path) and fault.times != 0:
                    fault.times -= 1 if fault.times > 0 else 0
                    fault.hits += 1
                    return fault
        return None

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        record = {
            "method": method,
            "path": path,
            "query": {k: v[0] for k, v in query.items()},
            "gzip": self.headers.get("Content-Encoding") == "gzip",
            "authorised": None,
            "time": time.time(),
        }
        with self.cloud.lock:
            self.cloud.requests.append(record)
        fault = self._fault(method, path)
        if fault is not None and fault.kind not in ("slow", "reset_after", "status_after", "slow_after"):
            if fault.kind == "reset":
                return self._reset()
            if fault.kind == "status":
                return self._reply(fault.status, _failure(fault.status, "injected failure"), fault.headers)
            if fault.kind == "bad_json":
                return self._reply(200, None, raw=b'{"status": "success", "data": {"id": ')
            if fault.kind == "no_data":
                return self._reply(200, {"status": "success", "code": 200, "message": "OK."})
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        status, body = self._route(method, path, query, raw_body, record)
        if fault is not None and fault.kind == "reset_after":
            return self._reset()
        if fault is not None and fault.kind == "slow_after":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "status_after":
            return self._reply(fault.status, _failure(fault.status, "injected failure after processing"))
        self._reply(status, body)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        return header.startswith("Bearer ") and token in self.cloud.tokens

    # --------------------------------------------------------------- routes

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes, record: dict[str, Any]
    ) -> tuple[int, Any]:
        cloud = self.cloud
        if method == "POST" and path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if form.get("username") != cloud.username or form.get("password") != cloud.password:
                return 401, {"error": "invalid_grant", "error_description": "Wrong email or password."}
            token = "fake-token-" + secrets.token_hex(16)
            with cloud.lock:
                cloud.tokens.add(token)
            return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
        if method == "GET" and (m := re.fullmatch(r"/results/([\w-]+)", path)):
            job = cloud.jobs.get(m.group(1))
            if job is None or job.status != "DONE":
                return 404, {"message": "no such result"}
            fmt = cloud.results_format
            return 200, {
                "counter": job.counter if fmt in ("both", "counter") else None,
                "raw": None,
                "serialised_results": job.serialised_results if fmt in ("both", "serialised") else None,
            }
        if method == "GET" and path == "/api/v1/devices/public-specs":
            return 200, _envelope([{"device_type": k, "specs": v} for k, v in cloud.specs.items()])
        record["authorised"] = self._authorised()
        if not record["authorised"]:
            return 401, _failure(401, "Missing or invalid bearer token.")
        with cloud.lock:
            return self._api(method, path, query, raw, record)

    def _api(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes, record: dict[str, Any]
    ) -> tuple[int, Any]:
        cloud = self.cloud
        q = {k: v[0] for k, v in query.items()}
        if method == "GET" and path == "/api/v1/devices/specs":
            return 200, _envelope(dict(cloud.specs))
        if method == "POST" and path == "/api/v1/batches":
            if not record["gzip"]:
                return 400, _failure(400, "the request body must be gzip-compressed")
            try:
                body = json.loads(gzip.decompress(raw))
            except (OSError, ValueError):
                return 400, _failure(400, "the body is not gzip-compressed JSON")
            problems = cloud.validate_batch(body)
            if problems:
                return 422, _failure(422, problems)
            return 200, _envelope(cloud.batch_json(cloud.create_batch(body), with_jobs=True))
        if method == "GET" and path == "/api/v1/batches":
            tag = q.get("tag")
            found = [b for b in cloud.batches.values() if tag is None or tag in b.tags]
            return 200, self._page(found, q, lambda b: cloud.batch_json(b))
        if method == "GET" and path == "/api/v2/jobs":
            batch = cloud.batches.get(q.get("batch_id", ""))
            jobs = [cloud.jobs[j] for j in batch.job_ids] if batch else []
            return 200, self._page(jobs, q, lambda j: cloud.job_json(j))
        if m := re.fullmatch(r"/api/v[12]/batches/([\w-]+)(/[\w/]+)?", path):
            batch = cloud.batches.get(m.group(1))
            if batch is None:
                return 404, _failure(404, "Batch not found.")
            suffix = m.group(2) or ""
            if method == "GET" and suffix == "":
                return 200, _envelope(cloud.batch_json(batch))
            if method == "GET" and suffix == "/status":
                data = cloud.batch_json(batch)
                return 200, _envelope(
                    {"status": data["status"], "jobs_count_per_status": data["jobs_count_per_status"]}
                )
            if method == "PATCH" and suffix == "/complete":
                batch.open = False
                return 200, _envelope(cloud.batch_json(batch))
            if method == "PATCH" and suffix == "/cancel":
                for j in batch.job_ids:
                    if cloud.jobs[j].status not in TERMINAL:
                        cloud.jobs[j].status = "CANCELED"
                        cloud.jobs[j].errors = ["canceled by the user"]
                batch.forced_status = "CANCELED"
                return 200, _envelope(cloud.batch_json(batch))
            if method == "POST" and suffix == "/jobs":
                body = json.loads(gzip.decompress(raw) if record["gzip"] else raw)
                cloud._add_jobs(batch, body, batch.sequence_builder)
                return 200, _envelope(cloud.batch_json(batch))
        if m := re.fullmatch(r"/api/v[12]/jobs/([\w-]+)(/[\w/]+)?", path):
            job = cloud.jobs.get(m.group(1))
            if job is None:
                return 404, _failure(404, "Job not found.")
            suffix = m.group(2) or ""
            if method == "GET" and suffix == "":
                return 200, _envelope(cloud.job_json(job, with_sequence=True))
            if method == "GET" and suffix == "/status":
                return 200, _envelope({"status": job.status})
            if method == "GET" and suffix == "/results_link":
                link = f"{cloud.url}/results/{job.id}" if job.status == "DONE" else None
                return 200, _envelope({"results_link": link})
            if method == "PATCH" and suffix == "/cancel":
                if job.status not in TERMINAL:
                    job.status = "CANCELED"
                return 200, _envelope(cloud.job_json(job))
        return 404, _failure(404, f"no route {method} {path}")

    def _page(self, items: list[Any], q: dict[str, str], encode: Callable[[Any], Any]) -> dict[str, Any]:
        offset = int(q.get("offset", 0))
        limit = min(int(q.get("limit", self.cloud.page_size)), self.cloud.page_size)
        page = items[offset : offset + limit]
        return _envelope(
            [encode(x) for x in page],
            pagination={"total": len(items), "offset": offset, "end": offset + len(page)},
        )
