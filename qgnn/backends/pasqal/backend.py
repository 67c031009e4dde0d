"""The Pasqal cloud backend: Fresnel QPU and Pasqal's cloud emulators.

QPU time is paid and scarce, so this backend

* fetches the device specs at run time and checks every sequence locally the
  way the QPU will (:mod:`qgnn.backends.pasqal.validation`) before anything is
  sent — a sequence the device would reject is never sent;
* splits shots above the device's ``max_runs`` into several jobs (merged
  afterwards) and sends a whole dataset as one batch with a sequence per job;
* records every job in a SQLite ledger (:mod:`qgnn.backends.ledger`) *before*
  sending it, so a rerun of the same command reuses recorded jobs (nothing is
  paid twice) and collects their results (nothing paid for is lost), even
  after the process was killed mid-submission;
* bounds polling by ``timeout_s`` and retries transient HTTP failures itself
  (:mod:`qgnn.backends.pasqal.transport`);
* reports failed jobs per sequence with the server's message, keeping the
  results of the jobs that finished.

Example:
    >>> from qgnn.backends.pasqal import PasqalCloud          # doctest: +SKIP
    >>> cloud = PasqalCloud("EMU_MPS", shots=500)             # doctest: +SKIP
    >>> device = cloud.fetch_device()    # embed and build sequences on this
    >>> measurements = cloud.run(sequences)                   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pulser
from pulser.devices import Device

from qgnn.backends.base import Measurement, check_evaluation_times, check_shots
from qgnn.backends.ledger import (
    FAILED_STATUSES,
    KNOWN_STATUSES,
    RUNNING_STATUSES,
    SUBMITTING,
    JobLedger,
    JobRecord,
    PlannedJob,
)
from qgnn.backends.pasqal.credentials import (
    resolve_auth_endpoint,
    resolve_endpoint,
    resolve_login,
    resolve_project_id,
)
from qgnn.backends.pasqal.transport import (
    CloudRequestError,
    RetryPolicy,
    call,
    check_seconds,
    classify,
    client_class,
    describe,
    logger,
)
from qgnn.backends.pasqal.validation import PreparedSequence, prepare, split_shots
from qgnn.errors import BackendError, require_extra

QPU_DEVICES = frozenset({"FRESNEL", "FRESNEL_CAN1"})
EMULATOR_DEVICES = frozenset({"EMU_MPS", "EMU_SV", "EMU_FREE", "EMU_FRESNEL"})
DEVICE_TYPES = QPU_DEVICES | EMULATOR_DEVICES
DEFAULT_SPEC_DEVICE = "FRESNEL"
KNOWN_BATCH_STATUSES = frozenset({"PENDING", "RUNNING", "PAUSED", "DONE", "ERROR", "CANCELED", "TIMED_OUT"})
REJECTED = "REJECTED"
"""JobFailure status of a sequence refused by the local checks (nothing was sent)."""
UNFINISHED = "UNFINISHED"
"""JobFailure status of a sequence whose jobs had not finished when ``timeout_s`` ran out."""


@cache
def _versions() -> str:
    parts = []
    for dist in ("pasqal-cloud", "pulser-core"):
        try:
            parts.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}==unknown")
    return "; ".join(parts)


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


class PasqalCloud:
    """Runs sequences on a Pasqal cloud device and returns sampled :class:`Measurement` s.

    Credentials come from ``token_provider``, else ``PASQAL_USERNAME`` /
    ``PASQAL_PASSWORD``, else ``~/.config/qgnn/pasqal.toml`` (see
    :mod:`qgnn.backends.pasqal.credentials`); they are read when the first
    request is made and never kept, printed or pickled.

    Args:
        device: cloud device type: ``"FRESNEL"`` (QPU), ``"FRESNEL_CAN1"``,
            ``"EMU_MPS"``, ``"EMU_SV"``, ``"EMU_FREE"`` or ``"EMU_FRESNEL"``.
        project_id: Pasqal project; default ``$PASQAL_PROJECT_ID`` or the config file's.
        shots: default shots per sequence (default 100); split into jobs of
            at most the device's ``max_runs``.
        timeout_s: how long :meth:`run` waits for results (s, default 3600);
            unfinished jobs stay recorded and a rerun collects them.
        endpoints: core API URL or ``pasqal_cloud.endpoints.Endpoints``;
            default ``$QGNN_PASQAL_ENDPOINT``, the config file's, else Pasqal's.
        token_provider: a ``pasqal_cloud`` ``TokenProvider`` (instead of a password).
        auth_endpoint: token URL for username/password logins; default
            ``$QGNN_PASQAL_AUTH_ENDPOINT``, the config file's, else Pasqal's.
        ledger: a :class:`JobLedger` or its path; default
            ``$QGNN_CACHE_DIR/pasqal_jobs.sqlite`` (``~/.cache/qgnn/...``).
        spec_device: whose fetched specs sequences are built on; default
            ``device`` when the cloud lists its specs, else ``"FRESNEL"``.
        mimic_qpu: apply the QPU's rules (layout required, ...) to emulator
            runs too (default True; always on for a QPU).
        poll_interval_s: first wait between status polls (s, default 2; grows to 30).
        max_jobs_per_batch: split a submission into batches of at most this
            many jobs (default: one batch).
        http_timeout_s: bound on each HTTP request (s, default 30).
        retry: retry policy for transient failures (default 4 retries, 1 s doubling).
    """

    def __init__(
        self,
        device: str,
        *,
        project_id: str | None = None,
        shots: int = 100,
        timeout_s: float = 3600.0,
        endpoints: Any = None,
        token_provider: Any = None,
        auth_endpoint: str | None = None,
        ledger: JobLedger | str | None = None,
        spec_device: str | None = None,
        mimic_qpu: bool = True,
        poll_interval_s: float = 2.0,
        max_jobs_per_batch: int | None = None,
        http_timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not isinstance(device, str) or device.upper() not in DEVICE_TYPES:
            raise BackendError(
                f"unknown Pasqal cloud device {device!r}; choose one of {sorted(DEVICE_TYPES)}"
            )
        if spec_device is not None and not isinstance(spec_device, str):
            raise BackendError(f"spec_device must be a device type name, got {spec_device!r}")
        for name, text in (("project_id", project_id), ("auth_endpoint", auth_endpoint)):
            if text is not None and not isinstance(text, str):
                raise BackendError(f"{name} must be a string or None, got {type(text).__name__}")
        if ledger is not None and not isinstance(ledger, JobLedger | str | os.PathLike):
            raise BackendError(f"ledger must be a JobLedger, a path or None, got {type(ledger).__name__}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise BackendError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        for name, value in (
            ("timeout_s", timeout_s),
            ("poll_interval_s", poll_interval_s),
            ("http_timeout_s", http_timeout_s),
        ):
            check_seconds(name, value, allow_zero=False)
        if max_jobs_per_batch is not None and (
            isinstance(max_jobs_per_batch, bool)
            or not isinstance(max_jobs_per_batch, int)
            or max_jobs_per_batch < 1
        ):
            raise BackendError(
                f"max_jobs_per_batch must be a positive integer or None, got {max_jobs_per_batch!r}"
            )
        checked = check_shots(shots)
        if checked is None:
            raise BackendError("a cloud backend samples: shots must be a positive integer, not None")
        self.device = device.upper()
        self.project_id = project_id
        self.shots = checked
        self.timeout_s = float(timeout_s)
        self.endpoints = endpoints
        self.token_provider = token_provider
        self.auth_endpoint = auth_endpoint
        self.ledger = ledger if isinstance(ledger, JobLedger) else JobLedger(ledger)
        self.spec_device = spec_device.upper() if spec_device else None
        self.mimic_qpu = bool(mimic_qpu) or self.device in QPU_DEVICES
        self.poll_interval_s = float(poll_interval_s)
        self.max_jobs_per_batch = max_jobs_per_batch
        self.http_timeout_s = float(http_timeout_s)
        self.retry = retry if retry is not None else RetryPolicy()
        self.name = f"pasqal:{self.device}"
        self._connection: Any = None
        self._device: Device | None = None
        self._token_provider_dropped = False

    # ------------------------------------------------------------------ identity

    def __repr__(self) -> str:
        project = f"{self.project_id[:4]}…" if self.project_id else None
        credentials = "token provider" if self.token_provider is not None else "environment or config file"
        return (
            f"PasqalCloud(device={self.device!r}, shots={self.shots}, project_id={project!r}, "
            f"credentials=<{credentials}>, ledger={str(self.ledger.path)!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the connection or token provider (credentials are re-read where unpickled)."""
        state = dict(self.__dict__)
        state["_connection"] = None
        state["_token_provider_dropped"] = self.token_provider is not None or self._token_provider_dropped
        state["token_provider"] = None
        return state

    def cache_key(self) -> dict[str, Any]:
        """Backend name, package versions and the settings that change results (not credentials).

        The default ``shots`` is part of it: a caller passing ``shots=None`` to
        :meth:`run` gets this many samples. So is the core API URL (another
        cloud, e.g. a staging one, may run other emulator versions), and
        ``mimic_qpu`` (which sequences are accepted). Timeouts, polling,
        retries and batch sizes do not change results and are left out.
        """
        return {
            "backend": self.name,
            "versions": _versions(),
            "device": self.device,
            "spec_device": self.spec_device,
            "mimic_qpu": self.mimic_qpu,
            "shots": self.shots,
            "endpoint": self._endpoint_key(),
        }

    def _endpoint_key(self) -> str:
        """The core API URL as given or configured (``"default"``: Pasqal's), without importing the SDK."""
        core = getattr(self.endpoints, "core", None)
        if isinstance(core, str):
            return core.rstrip("/")
        url = resolve_endpoint(self.endpoints if isinstance(self.endpoints, str) else None)
        return url.rstrip("/") if url else "default"

    @property
    def endpoint_url(self) -> str:
        """The core API URL requests go to."""
        from pasqal_cloud.endpoints import Endpoints

        return self._endpoints(Endpoints).core

    def _endpoints(self, endpoints_cls: Any) -> Any:
        if isinstance(self.endpoints, endpoints_cls):
            return self.endpoints
        url = resolve_endpoint(self.endpoints if isinstance(self.endpoints, str) else None)
        if self.endpoints is not None and not isinstance(self.endpoints, str):
            raise BackendError(
                f"endpoints must be a URL or pasqal_cloud Endpoints, got {type(self.endpoints).__name__}"
            )
        return endpoints_cls(core=url.rstrip("/"), account=url.rstrip("/")) if url else endpoints_cls()

    # ------------------------------------------------------------------ connection

    def _client(self) -> Any:
        """The SDK's ``PasqalCloudClient`` (logs in on first use)."""
        if self._connection is None:
            require_extra("pasqal_cloud", "cloud")
            from pasqal_cloud import PasqalCloudConnection
            from pasqal_cloud.endpoints import (
                AUDIENCE,
                AUTH0_TOKEN_PROVIDER_GRANT_TYPE,
                PUBLIC_CLIENT_ID,
                REALM,
                Endpoints,
                TokenProviderConf,
            )

            try:
                login = resolve_login(self.token_provider)
            except BackendError as exc:
                if self._token_provider_dropped:
                    raise BackendError(f"{exc} (token providers are not pickled with the backend)") from None
                raise
            kwargs: dict[str, Any] = {
                "project_id": resolve_project_id(self.project_id),
                "endpoints": self._endpoints(Endpoints),
                "client_class": client_class(self.http_timeout_s),
            }
            auth_url = resolve_auth_endpoint(self.auth_endpoint)
            if auth_url and login.token_provider is None:
                kwargs["auth_config"] = TokenProviderConf(
                    token_endpoint=auth_url,
                    public_client_id=PUBLIC_CLIENT_ID,
                    audience=AUDIENCE,
                    realm=REALM,
                    grant_type=AUTH0_TOKEN_PROVIDER_GRANT_TYPE,
                )
            self._connection = call(
                "log in to the Pasqal cloud",
                lambda: PasqalCloudConnection(**login.sdk_kwargs(), **kwargs),
                self.retry,
            )
        return self._connection.cloud_client

    def fetch_device(self) -> Device:
        """The device the cloud runs sequences on, from specs fetched now (cached per instance).

        Embed graphs and build sequences on this device.

        Raises:
            BackendError: the specs cannot be fetched or read.
        """
        if self._device is None:
            from pulser.json.abstract_repr.deserializer import deserialize_device

            client = self._client()
            specs = call("fetch the device specs", client.get_device_specs_dict, self.retry)
            if not isinstance(specs, Mapping):
                raise CloudRequestError(
                    "fetch the device specs: the reply is not a mapping of device specs", "malformed"
                )
            key = self.spec_device or (self.device if self.device in specs else DEFAULT_SPEC_DEVICE)
            if key not in specs:
                raise BackendError(
                    f"the Pasqal cloud lists no specs for {key!r} (it lists {sorted(specs)}); "
                    "pass spec_device= one of those"
                )
            try:
                device = deserialize_device(specs[key])
            except Exception as exc:
                raise CloudRequestError(
                    f"the {key} specs sent by the Pasqal cloud are unreadable ({exc})", "malformed"
                ) from None
            if not isinstance(device, Device):
                raise BackendError(
                    f"the {key} specs describe a virtual device; a cloud run needs a real Device"
                )
            self._device = device
        return self._device

    def validate(self, sequence: pulser.Sequence, *, label: str = "sequence") -> pulser.Sequence:
        """Check ``sequence`` against the fetched device as the QPU will; return what would be sent.

        Args:
            sequence: a built sequence (on :meth:`fetch_device`'s device).
            label: how messages name it.

        Raises:
            BackendError: the device would reject it (nothing is sent).
        """
        return prepare(sequence, self.fetch_device(), mimic_qpu=self.mimic_qpu, label=label).sequence

    # ------------------------------------------------------------------ running

    def run(
        self,
        sequences: Sequence[pulser.Sequence],
        *,
        shots: int | None = None,
        evaluation_times: Sequence[float] = (1.0,),
        labels: Sequence[str] | None = None,
        force: bool = False,
        retry_failed: bool = False,
    ) -> list[Measurement]:
        """Run each sequence on the cloud device; return its sampled Measurement, in order.

        Every sequence is checked before anything is sent (one rejected
        sequence stops the whole call). Recorded jobs of the same (sequence,
        device, shots) are reused.

        Args:
            sequences: built sequences on :meth:`fetch_device`'s device.
            shots: shots per sequence; ``None`` uses the backend's ``shots``.
            evaluation_times: must be ``(1.0,)``: the cloud measures at the end.
            labels: names for messages (e.g. ``"graph 17"``), one per sequence.
            force: resubmit even when the ledger holds jobs for a sequence (pays again).
            retry_failed: resubmit the jobs recorded as ERROR/CANCELED/TIMED_OUT.

        Raises:
            BackendError: a sequence is invalid (nothing sent) or the cloud failed.
            CloudJobError: some sequences have no result; the finished ones
                are in ``.outcomes`` and stay in the ledger.
        """
        outcomes = self._run(sequences, shots, evaluation_times, labels, force, retry_failed, strict=True)
        failures = [o for o in outcomes if isinstance(o, JobFailure)]
        if failures:
            lines = "\n".join(f"  {f}" for f in failures)
            raise CloudJobError(
                f"{len(failures)} of {len(outcomes)} sequences have no result on {self.name}:\n{lines}\n"
                f"Finished results are kept in the job ledger {self.ledger.path}; rerun the same call to "
                "collect unfinished jobs (nothing is resubmitted), or pass retry_failed=True to pay for "
                "failed ones again.",
                outcomes,
            )
        return [o for o in outcomes if isinstance(o, Measurement)]

    def run_detailed(
        self,
        sequences: Sequence[pulser.Sequence],
        *,
        shots: int | None = None,
        evaluation_times: Sequence[float] = (1.0,),
        labels: Sequence[str] | None = None,
        force: bool = False,
        retry_failed: bool = False,
    ) -> list[Measurement | JobFailure]:
        """Like :meth:`run`, but per sequence: a Measurement or a :class:`JobFailure`, never raising for one.

        Sequences the device would reject are reported (status ``REJECTED``)
        and not sent; the others are sent.
        """
        return self._run(sequences, shots, evaluation_times, labels, force, retry_failed, strict=False)

    def submit(
        self,
        sequences: Sequence[pulser.Sequence],
        *,
        shots: int | None = None,
        labels: Sequence[str] | None = None,
        force: bool = False,
        retry_failed: bool = False,
        strict: bool = True,
    ) -> list[PreparedSequence | JobFailure]:
        """Check and send sequences without waiting; the ledger records the jobs.

        Args:
            sequences: built sequences on :meth:`fetch_device`'s device.
            shots: shots per sequence; ``None`` uses the backend's ``shots``.
            labels: names for messages, one per sequence.
            force: resubmit even when the ledger holds jobs for a sequence.
            retry_failed: resubmit jobs recorded as ERROR/CANCELED/TIMED_OUT.
            strict: raise (sending nothing) if any sequence is rejected;
                otherwise report it as a ``REJECTED`` :class:`JobFailure` and send the rest.
        """
        seqs, labels_ = self._inputs(sequences, labels)
        n_shots = self._shots(shots)
        device = self.fetch_device()
        prepared: list[PreparedSequence | JobFailure] = []
        for position, (seq, label) in enumerate(zip(seqs, labels_, strict=True)):
            try:
                prepared.append(prepare(seq, device, mimic_qpu=self.mimic_qpu, label=label))
            except BackendError as exc:
                prepared.append(JobFailure(position, label, None, REJECTED, str(exc)))
        rejected = [p for p in prepared if isinstance(p, JobFailure)]
        if strict and rejected:
            lines = "\n".join(f"  {r.message}" for r in rejected)
            raise BackendError(
                f"{len(rejected)} of {len(prepared)} sequences would be rejected by {self.name}; "
                f"nothing was sent:\n{lines}"
            )
        valid = [p for p in prepared if isinstance(p, PreparedSequence)]
        if valid:
            self._ensure_submitted(valid, n_shots, device, force=force, retry_failed=retry_failed)
        return prepared

    def _run(
        self,
        sequences: Sequence[pulser.Sequence],
        shots: int | None,
        evaluation_times: Sequence[float],
        labels: Sequence[str] | None,
        force: bool,
        retry_failed: bool,
        *,
        strict: bool,
    ) -> list[Measurement | JobFailure]:
        times = check_evaluation_times(evaluation_times)
        if times != (1.0,):
            raise BackendError(
                f"{self.name} measures only at the end of a sequence: evaluation_times must be (1.0,), "
                f"got {times}"
            )
        n_shots = self._shots(shots)
        prepared = self.submit(
            sequences, shots=n_shots, labels=labels, force=force, retry_failed=retry_failed, strict=strict
        )
        hashes = {p.seq_hash for p in prepared if isinstance(p, PreparedSequence)}
        try:
            self._poll(hashes, n_shots, time.monotonic() + self.timeout_s)
        except CloudRequestError as exc:
            raise CloudRequestError(
                f"{exc}. The submitted jobs are recorded in the job ledger {self.ledger.path}: rerun "
                "the same call (or `qgnn cloud fetch`) to collect them without paying again",
                exc.kind,
                exc.status,
            ) from exc
        return [
            p if isinstance(p, JobFailure) else self._outcome(i, p, n_shots, labels)
            for i, p in enumerate(prepared)
        ]

    def _inputs(self, sequences: Any, labels: Sequence[str] | None) -> tuple[list[Any], list[str]]:
        if isinstance(sequences, pulser.Sequence) or not isinstance(sequences, Iterable):
            raise BackendError(f"{self.name}: pass a list of pulser.Sequence, got {type(sequences).__name__}")
        seqs = list(sequences)
        if labels is None:
            return seqs, [f"sequence {i}" for i in range(len(seqs))]
        if isinstance(labels, str) or not isinstance(labels, Iterable):
            raise BackendError(f"{self.name}: labels must be a list of names, got {type(labels).__name__}")
        names = [str(x) for x in labels]
        if len(names) != len(seqs):
            raise BackendError(f"{self.name}: {len(names)} labels for {len(seqs)} sequences")
        return seqs, names

    def _shots(self, shots: int | None) -> int:
        checked = check_shots(shots)
        return self.shots if checked is None else checked

    # ------------------------------------------------------------------ submission

    def _ensure_submitted(
        self, valid: list[PreparedSequence], shots: int, device: Device, *, force: bool, retry_failed: bool
    ) -> None:
        self._reconcile_pending()
        runs = split_shots(shots, device.max_runs)
        unique = {p.seq_hash: p for p in valid}
        endpoint = self.endpoint_url
        submission_ids: list[str] = []
        with self.ledger.transaction() as tx:
            planned: list[PlannedJob] = []
            for seq_hash, p in unique.items():
                tx.record_sequence(seq_hash, p.abstract_repr, p.qubit_ids)
                active = tx.active_jobs(seq_hash, self.device, shots)
                if force or not active:
                    tx.supersede(r.row_id for r in active)
                    planned.extend(PlannedJob(seq_hash, shots, k, n) for k, n in enumerate(runs))
                elif retry_failed:
                    failed = [r for r in active if r.failed]
                    tx.supersede(r.row_id for r in failed)
                    planned.extend(PlannedJob(seq_hash, shots, r.part, r.runs) for r in failed)
            size = self.max_jobs_per_batch or max(len(planned), 1)
            for start in range(0, len(planned), size):
                submission_ids.append(tx.add_submission(self.device, endpoint, planned[start : start + size]))
        for submission_id in submission_ids:
            self._send(submission_id)

    def _backend_configuration(self) -> str | None:
        from pasqal_cloud import RemoteEmuFreeBackend, RemoteMPSBackend, RemoteSVBackend

        backend = {
            "EMU_MPS": RemoteMPSBackend,
            "EMU_SV": RemoteSVBackend,
            "EMU_FREE": RemoteEmuFreeBackend,
        }.get(self.device)
        return None if backend is None else str(backend.default_config.to_abstract_repr())

    def _send(self, submission_id: str) -> None:
        """Create the batch of a recorded intent, never twice.

        A failure the server provably did not act on (no connection, 425/429/503)
        is retried after a backoff. Any other unclear answer (reset or timeout
        after sending, 5xx, malformed reply) is settled by looking the batch up
        by its tag for up to ``retry.settle_s`` before sending it again; a 4xx
        rejection deletes the intent (nothing was created).
        """
        from pasqal_cloud.device import DeviceTypeName

        client = self._client()
        rows = self.ledger.submission_jobs(submission_id)
        jobs = [{"runs": r.runs, "serialized_sequence": self.ledger.sequence(r.seq_hash)[0]} for r in rows]
        what = f"create a batch of {len(rows)} jobs on {self.device}"
        failure = None
        unclear = False
        for attempt in range(self.retry.max_retries + 1):
            try:
                batch = client.create_batch(
                    serialized_sequence=None,
                    jobs=jobs,
                    device_type=DeviceTypeName(self.device),
                    backend_configuration=self._backend_configuration(),
                    open=False,
                    tags=[submission_id],
                )
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # the SDK's errors derive from BaseException
                failure = classify(exc)
                if failure is None:
                    raise
                if failure.kind in ("rejected", "auth"):
                    self.ledger.forget_submission(submission_id)
                    raise CloudRequestError(
                        describe(what, failure, attempt + 1), failure.kind, failure.status
                    ) from exc
                if failure.processed is not False:
                    unclear = True
                    logger.warning(
                        "%s: no clear answer (%s); looking the batch up by its tag %s",
                        what,
                        failure.detail,
                        submission_id,
                    )
                    found = self._settle(submission_id, what, exc)
                    if found is not None:
                        self._record_batch(submission_id, rows, found)
                        return
                if attempt < self.retry.max_retries:
                    time.sleep(self.retry.delay(attempt, failure.retry_after))
                continue
            if unclear:  # an earlier attempt may have landed late: keep the oldest batch, cancel the rest
                batch = self._find_by_tag(submission_id) or batch
            self._record_batch(submission_id, rows, batch)
            return
        self.ledger.forget_submission(submission_id)
        assert failure is not None
        raise CloudRequestError(
            describe(what, failure, self.retry.max_retries + 1) + " (no batch was created)",
            failure.kind,
            failure.status,
        )

    def _settle(self, tag: str, what: str, cause: BaseException) -> Any:
        """Look for the batch tagged ``tag`` for up to ``retry.settle_s``; ``None`` if it never appears."""
        deadline = time.monotonic() + self.retry.settle_s
        wait = self.retry.backoff_s
        while True:
            try:
                found = self._find_by_tag(tag)
            except CloudRequestError as lookup:
                raise CloudRequestError(
                    f"{what}: the answer was lost and the batch could not be looked up ({lookup}); the "
                    f"submission stays recorded as {tag}: rerun to settle it by its tag",
                    lookup.kind,
                    lookup.status,
                ) from cause
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                return found
            time.sleep(min(wait, remaining))
            wait = min(wait * 2, self.retry.max_backoff_s)

    def _find_by_tag(self, tag: str) -> Any:
        """The oldest batch carrying ``tag`` (others, duplicates, are cancelled), or ``None``."""
        from pasqal_cloud.utils.filters import BatchFilters

        client = self._client()
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
                f"(`qgnn cloud cancel --batch {batch.id}`)"
                " and rerun with force=True"
            )
        self.ledger.mark_submitted(
            submission_id,
            batch.id,
            [(r.row_id, j.id, str(j.status)) for r, j in zip(rows, jobs, strict=True)],
        )
        logger.info(
            "batch %s created on %s with %d jobs (tag %s)", batch.id, self.device, len(jobs), submission_id
        )

    def _reconcile_pending(self) -> None:
        """Settle intents left by a killed process: adopt the batch found by tag, or send it now."""
        endpoint = self.endpoint_url
        for sub in self.ledger.submissions(device=self.device, pending_only=True):
            if sub.owner_alive():
                continue
            if sub.endpoint != endpoint:
                logger.warning(
                    "submission %s was recorded for %s, not %s: skipped",
                    sub.submission_id,
                    sub.endpoint,
                    endpoint,
                )
                continue
            rows = self.ledger.submission_jobs(sub.submission_id)
            found = self._find_by_tag(sub.submission_id)
            if found is not None:
                logger.info("adopting batch %s of interrupted submission %s", found.id, sub.submission_id)
                self._record_batch(sub.submission_id, rows, found)
            elif rows:
                logger.info(
                    "interrupted submission %s never reached the cloud: sending it", sub.submission_id
                )
                self._send(sub.submission_id)
            else:
                self.ledger.forget_submission(sub.submission_id)

    # ------------------------------------------------------------------ polling

    def _pending_batches(self, hashes: set[str], shots: int) -> set[str]:
        out = set()
        for seq_hash in hashes:
            for r in self.ledger.jobs(seq_hash=seq_hash, device=self.device, unfinished=True):
                if r.shots == shots and r.job_id is not None and r.batch_id is not None:
                    out.add(r.batch_id)
        return out

    def _poll(self, hashes: set[str], shots: int, deadline: float) -> None:
        """Refresh the batches of ``hashes`` until their jobs finish or ``deadline`` (monotonic s) passes."""
        interval = self.poll_interval_s
        while True:
            batches = self._pending_batches(hashes, shots)
            for batch_id in sorted(batches):
                self._refresh_batch(batch_id)
            if not batches or not self._pending_batches(hashes, shots):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 30.0)

    def _refresh_batch(self, batch_id: str) -> None:
        """Record the statuses of a batch's jobs and the results of those that are done."""
        client = self._client()

        def fetch() -> tuple[str, list[Any]]:
            batch = client.get_batch(batch_id)
            return str(batch.status), list(batch.ordered_jobs)

        batch_status, jobs = call(f"poll batch {batch_id}", fetch, self.retry)
        if batch_status not in KNOWN_BATCH_STATUSES:
            raise CloudRequestError(
                f"batch {batch_id} reports status {batch_status!r}, which qgnn does not know "
                f"(known: {sorted(KNOWN_BATCH_STATUSES)}); its jobs stay in the ledger {self.ledger.path}",
                "malformed",
            )
        by_id = {str(j.id): j for j in jobs}
        updates: list[tuple[str, str, str | None, dict[str, int] | None]] = []
        unknown: list[str] = []
        try:  # results fetched before a failure are recorded all the same
            for record in self.ledger.jobs(batch_id=batch_id, include_superseded=True):
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
                    counts, problem = self._job_counts(job, self.ledger.sequence(record.seq_hash)[1])
                    message = problem or message
                updates.append((record.job_id, status, message, counts))
        finally:
            self.ledger.update_jobs(updates)
        if unknown:
            raise CloudRequestError(
                "; ".join(unknown) + f" (known statuses: {sorted(KNOWN_STATUSES - {SUBMITTING})}); "
                f"the jobs stay in the ledger {self.ledger.path}",
                "malformed",
            )

    def _job_counts(self, job: Any, qubit_ids: tuple[str, ...]) -> tuple[dict[str, int] | None, str | None]:
        """``(counts, None)``, ``(None, None)`` when not available yet, or ``(None, problem)``."""
        result = call(f"fetch the results of job {job.id}", lambda: job.full_result, self.retry)
        if result is None:
            return None, None
        try:
            counter, order = _read_counter(result, qubit_ids)
            counts = _check_counts(counter, qubit_ids, order)
        except (BackendError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            return None, f"the results of job {job.id} are unreadable ({exc})"
        return counts, None

    # ------------------------------------------------------------------ outcomes

    def _outcome(
        self, position: int, p: PreparedSequence, shots: int, labels: Sequence[str] | None
    ) -> Measurement | JobFailure:
        label = str(labels[position]) if labels is not None else f"sequence {position}"
        rows = self.ledger.jobs(seq_hash=p.seq_hash, device=self.device)
        rows = [r for r in rows if r.shots == shots]
        job_ids = tuple(r.job_id for r in rows if r.job_id)
        batch_ids = tuple(sorted({r.batch_id for r in rows if r.batch_id}))
        if rows and all(r.has_results for r in rows):
            merged: dict[str, int] = {}
            for r in rows:
                for bits, n in (r.counts or {}).items():
                    merged[bits] = merged.get(bits, 0) + n
            return Measurement.from_counts(
                p.qubit_ids,
                (1.0,),
                [merged],
                backend=self.name,
                backend_version=_versions(),
                settings={"device": self.device, "shots": shots, "job_ids": list(job_ids)},
            )
        failed = [r for r in rows if r.failed]
        if failed:
            status = failed[0].status
            message = "; ".join(
                f"job {r.job_id} {r.status}: {r.message or 'no message from the server'}" for r in failed
            )
        elif any(r.status == SUBMITTING for r in rows):
            status = SUBMITTING
            message = (
                "the batch creation has no recorded answer (another process may be sending it); "
                "rerun to reconcile it by its tag"
            )
        elif any(r.status in RUNNING_STATUSES for r in rows):
            status = UNFINISHED
            waiting = ", ".join(f"{r.job_id} {r.status}" for r in rows if r.status in RUNNING_STATUSES)
            message = (
                f"jobs not finished after timeout_s={self.timeout_s:g} s ({waiting}); rerun to collect them"
            )
        elif rows:
            status = "UNREADABLE"
            message = "; ".join(
                r.message or f"job {r.job_id}: results not available yet" for r in rows if not r.has_results
            )
        else:
            status, message = "MISSING", "no job is recorded for this sequence"
        return JobFailure(position, label, p.seq_hash, status, message, job_ids, batch_ids)

    # ------------------------------------------------------------------ ledger operations (CLI)

    def refresh(self, *, batch_id: str | None = None, timeout_s: float = 0.0) -> list[JobRecord]:
        """Settle interrupted submissions, then poll recorded unfinished jobs of this device.

        Args:
            batch_id: only this batch.
            timeout_s: keep polling until the jobs finish or this many seconds
                pass (0: poll once).

        Returns:
            The ledger's jobs of this device (or batch) after the refresh.
        """
        check_seconds("timeout_s", timeout_s, allow_zero=True)
        self._reconcile_pending()
        deadline = time.monotonic() + timeout_s
        interval = self.poll_interval_s
        while True:
            pending = {
                r.batch_id
                for r in self.ledger.jobs(device=self.device, batch_id=batch_id, unfinished=True)
                if r.batch_id is not None and r.job_id is not None
            }
            for b in sorted(pending):
                self._refresh_batch(b)
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 30.0)
        return self.ledger.jobs(device=self.device, batch_id=batch_id)

    def cancel(self, batch_id: str | None = None) -> list[str]:
        """Cancel a recorded batch (default: every batch of this device with unfinished jobs).

        Returns:
            The ids of the batches asked to cancel; the ledger records the new statuses.
        """
        client = self._client()
        if batch_id is not None:
            targets = [batch_id]
        else:
            targets = sorted(
                {
                    r.batch_id
                    for r in self.ledger.jobs(device=self.device, unfinished=True)
                    if r.batch_id is not None
                }
            )
        for b in targets:
            call(f"cancel batch {b}", functools.partial(client.cancel_batch, b), self.retry)
            self._refresh_batch(b)
        return targets


def _read_counter(result: Mapping[str, Any], qubit_ids: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
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


def _check_counts(counter: Any, qubit_ids: tuple[str, ...], order: tuple[str, ...]) -> dict[str, int]:
    """Validate a counter and reorder its bitstrings into ``qubit_ids`` order."""
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


def backend_from_spec(spec: str, **kwargs: Any) -> PasqalCloud:
    """Build a :class:`PasqalCloud` from a ``"pasqal:<DEVICE>"`` string (as in ``--backend pasqal:EMU_MPS``).

    Args:
        spec: ``"pasqal:"`` followed by a device type.
        **kwargs: further :class:`PasqalCloud` arguments.
    """
    prefix, _, device = str(spec).partition(":")
    if prefix.lower() != "pasqal" or not device:
        raise BackendError(
            f"a Pasqal cloud backend is written 'pasqal:<DEVICE>', e.g. 'pasqal:EMU_MPS'; got {spec!r}"
        )
    return PasqalCloud(device, **kwargs)
