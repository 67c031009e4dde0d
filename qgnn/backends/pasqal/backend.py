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
  after the process was killed mid-submission; only jobs recorded for the
  same :attr:`PasqalCloud.account` (endpoint and project) are reused, so a
  rehearsal on a fake or staging server never answers for Pasqal's cloud;
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
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pulser
from pulser.devices import Device

from qgnn.backends.base import Measurement, check_evaluation_times, check_shots
from qgnn.backends.ledger import CloudAccount, JobLedger, JobRecord
from qgnn.backends.pasqal.connection import connect, endpoint_key, sdk_endpoints
from qgnn.backends.pasqal.credentials import resolve_project_id
from qgnn.backends.pasqal.devices import DEVICE_TYPES, QPU_DEVICES, fetch_device
from qgnn.backends.pasqal.polling import poll_until, refresh_batch
from qgnn.backends.pasqal.results import REJECTED, CloudJobError, JobFailure, outcome
from qgnn.backends.pasqal.submission import Submitter
from qgnn.backends.pasqal.transport import CloudRequestError, RetryPolicy, call, check_seconds
from qgnn.backends.pasqal.validation import PreparedSequence, prepare
from qgnn.errors import BackendError, InvalidInputError


@cache
def _versions() -> str:
    parts = []
    for dist in ("pasqal-cloud", "pulser-core"):
        try:
            parts.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}==unknown")
    return "; ".join(parts)


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
            raise InvalidInputError(
                f"unknown Pasqal cloud device {device!r}; choose one of {sorted(DEVICE_TYPES)}"
            )
        if spec_device is not None and not isinstance(spec_device, str):
            raise InvalidInputError(f"spec_device must be a device type name, got {spec_device!r}")
        for name, text in (("project_id", project_id), ("auth_endpoint", auth_endpoint)):
            if text is not None and not isinstance(text, str):
                raise InvalidInputError(f"{name} must be a string or None, got {type(text).__name__}")
        if ledger is not None and not isinstance(ledger, JobLedger | str | os.PathLike):
            raise InvalidInputError(
                f"ledger must be a JobLedger, a path or None, got {type(ledger).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidInputError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
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
            raise InvalidInputError(
                f"max_jobs_per_batch must be a positive integer or None, got {max_jobs_per_batch!r}"
            )
        checked = check_shots(shots)
        if checked is None:
            raise InvalidInputError("a cloud backend samples: shots must be a positive integer, not None")
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
        self._account: CloudAccount | None = None
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
            "endpoint": endpoint_key(self.endpoints),
        }

    @property
    def endpoint_url(self) -> str:
        """The core API URL requests go to."""
        return str(sdk_endpoints(self.endpoints).core)

    @property
    def account(self) -> CloudAccount:
        """The core API URL and project the jobs go to; the ledger reuses only jobs recorded for it.

        The project is resolved once (``project_id``, else ``$PASQAL_PROJECT_ID``,
        else the config file) and is the one the connection logs in with.

        Raises:
            BackendError: no project id is configured.
        """
        if self._account is None:
            self._account = CloudAccount(self.endpoint_url, resolve_project_id(self.project_id))
        return self._account

    # ------------------------------------------------------------------ connection

    def _client(self) -> Any:
        """The SDK's ``PasqalCloudClient`` (logs in on first use)."""
        if self._connection is None:
            self._connection = connect(
                project_id=self.account.project_id,
                endpoints=self.endpoints,
                token_provider=self.token_provider,
                auth_endpoint=self.auth_endpoint,
                http_timeout_s=self.http_timeout_s,
                retry=self.retry,
                token_provider_dropped=self._token_provider_dropped,
            )
        return self._connection.cloud_client

    def fetch_device(self) -> Device:
        """The device the cloud runs sequences on, from specs fetched now (cached per instance).

        Embed graphs and build sequences on this device.

        Raises:
            BackendError: the specs cannot be fetched or read.
        """
        if self._device is None:
            self._device = fetch_device(self._client(), self.device, self.spec_device, self.retry)
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
            InvalidInputError: bad arguments (not a list of sequences, labels,
                shots, evaluation times); nothing sent.
            BackendError: the device would reject a sequence (nothing sent) or the cloud failed.
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
            self._submitter().ensure_submitted(
                valid, n_shots, device.max_runs, force=force, retry_failed=retry_failed
            )
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
            raise InvalidInputError(
                f"{self.name} measures only at the end of a sequence: evaluation_times must be (1.0,), "
                f"got {times}"
            )
        n_shots = self._shots(shots)
        prepared = self.submit(
            sequences, shots=n_shots, labels=labels, force=force, retry_failed=retry_failed, strict=strict
        )
        hashes = {p.seq_hash for p in prepared if isinstance(p, PreparedSequence)}

        def pending() -> set[str]:
            return {
                r.batch_id
                for seq_hash in hashes
                for r in self.ledger.jobs(
                    seq_hash=seq_hash, device=self.device, account=self.account, unfinished=True
                )
                if r.shots == n_shots and r.job_id is not None and r.batch_id is not None
            }

        try:
            self._follow(pending, self.timeout_s)
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

    def _outcome(
        self, position: int, p: PreparedSequence, shots: int, labels: Sequence[str] | None
    ) -> Measurement | JobFailure:
        rows = [
            r
            for r in self.ledger.jobs(seq_hash=p.seq_hash, device=self.device, account=self.account)
            if r.shots == shots
        ]
        return outcome(
            position,
            str(labels[position]) if labels is not None else f"sequence {position}",
            p.seq_hash,
            p.qubit_ids,
            rows,
            backend=self.name,
            backend_version=_versions(),
            timeout_s=self.timeout_s,
        )

    def _inputs(self, sequences: Any, labels: Sequence[str] | None) -> tuple[list[Any], list[str]]:
        if isinstance(sequences, pulser.Sequence) or not isinstance(sequences, Iterable):
            raise InvalidInputError(
                f"{self.name}: pass a list of pulser.Sequence, got {type(sequences).__name__}"
            )
        seqs = list(sequences)
        if labels is None:
            return seqs, [f"sequence {i}" for i in range(len(seqs))]
        if isinstance(labels, str) or not isinstance(labels, Iterable):
            raise InvalidInputError(
                f"{self.name}: labels must be a list of names, got {type(labels).__name__}"
            )
        names = [str(x) for x in labels]
        if len(names) != len(seqs):
            raise InvalidInputError(f"{self.name}: {len(names)} labels for {len(seqs)} sequences")
        return seqs, names

    def _shots(self, shots: int | None) -> int:
        checked = check_shots(shots)
        return self.shots if checked is None else checked

    # ------------------------------------------------------------------ submission and polling

    def _submitter(self) -> Submitter:
        return Submitter(
            self._client, self.ledger, self.device, self.account, self.retry, self.max_jobs_per_batch
        )

    def _follow(self, pending: Callable[[], set[str]], timeout_s: float) -> None:
        """Refresh the ``pending()`` batches until none is left or ``timeout_s`` passes (at least once)."""

        def done() -> bool:
            for batch_id in sorted(pending()):
                refresh_batch(self._client(), self.ledger, self.account, batch_id, self.retry)
            return not pending()

        poll_until(done, time.monotonic() + timeout_s, self.poll_interval_s)

    # ------------------------------------------------------------------ ledger operations (CLI)

    def refresh(self, *, batch_id: str | None = None, timeout_s: float = 0.0) -> list[JobRecord]:
        """Settle interrupted submissions, then poll recorded unfinished jobs of this device and account.

        Args:
            batch_id: only this batch.
            timeout_s: keep polling until the jobs finish or this many seconds
                pass (0: poll once).

        Returns:
            The ledger's jobs of this device and account (or batch) after the refresh.
        """
        check_seconds("timeout_s", timeout_s, allow_zero=True)
        self._submitter().reconcile_pending()

        def pending() -> set[str]:
            return {
                r.batch_id
                for r in self.ledger.jobs(
                    device=self.device, batch_id=batch_id, account=self.account, unfinished=True
                )
                if r.batch_id is not None and r.job_id is not None
            }

        self._follow(pending, timeout_s)
        return self.ledger.jobs(device=self.device, batch_id=batch_id, account=self.account)

    def cancel(self, batch_id: str | None = None) -> list[str]:
        """Cancel a batch (default: every recorded batch of this device and account with unfinished jobs).

        Returns:
            The ids of the batches asked to cancel; the ledger records the new statuses.

        Raises:
            BackendError: ``batch_id`` is recorded only for another account (nothing is sent).
        """
        if batch_id is not None:
            elsewhere = {
                (r.endpoint, r.project_id)
                for r in self.ledger.jobs(batch_id=batch_id, include_superseded=True)
            }
            if elsewhere and not self.ledger.jobs(
                batch_id=batch_id, account=self.account, include_superseded=True
            ):
                raise BackendError(
                    f"batch {batch_id} is recorded for {sorted(elsewhere)} (endpoint, project), not "
                    f"{self.account.endpoint} (project {self.account.project_id}): cancel it there"
                )
            targets = [batch_id]
        else:
            targets = sorted(
                {
                    r.batch_id
                    for r in self.ledger.jobs(device=self.device, account=self.account, unfinished=True)
                    if r.batch_id is not None
                }
            )
        client = self._client()
        for b in targets:
            call(f"cancel batch {b}", functools.partial(client.cancel_batch, b), self.retry)
            refresh_batch(client, self.ledger, self.account, b, self.retry)
        return targets


def backend_from_spec(spec: str, **kwargs: Any) -> PasqalCloud:
    """Build a :class:`PasqalCloud` from a ``"pasqal:<DEVICE>"`` string (as in ``--backend pasqal:EMU_MPS``).

    Args:
        spec: ``"pasqal:"`` followed by a device type.
        **kwargs: further :class:`PasqalCloud` arguments.
    """
    prefix, _, device = str(spec).partition(":")
    if prefix.lower() != "pasqal" or not device:
        raise InvalidInputError(
            f"a Pasqal cloud backend is written 'pasqal:<DEVICE>', e.g. 'pasqal:EMU_MPS'; got {spec!r}"
        )
    return PasqalCloud(device, **kwargs)
