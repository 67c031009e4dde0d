"""``qgnn cloud``: submit sequences to Pasqal's cloud and follow the recorded jobs.

Sub-commands: ``submit`` (a shipped dataset or a file of sequences), ``status``
(the job ledger; ``--refresh`` asks the cloud), ``fetch`` (collect results of
recorded jobs), ``cancel`` and ``resume`` (settle interrupted submissions and
collect). Every command goes through :class:`qgnn.backends.pasqal.PasqalCloud`
and its job ledger, so rerunning a command never pays twice.

Example::

    qgnn cloud submit --dataset PTC_FM --max-nodes 8 --device EMU_MPS --shots 100
    qgnn cloud status
    qgnn cloud fetch --timeout 600
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qgnn.backends.ledger import JobLedger, JobRecord
from qgnn.errors import BackendError


def register(subparsers: Any) -> None:
    """Add the ``cloud`` sub-command and its own sub-commands."""
    from qgnn.backends.pasqal import DEVICE_TYPES

    parser = subparsers.add_parser(
        "cloud",
        help="run sequences on Pasqal's cloud (QPU or emulators) and follow the jobs",
        description="Submit sequences to Pasqal's cloud; every job is recorded in a ledger, "
        "so reruns never pay twice.",
    )
    sub = parser.add_subparsers(dest="cloud_command", required=True)

    def connection(p: argparse.ArgumentParser, *, device_required: bool) -> None:
        p.add_argument(
            "--device",
            type=str.upper,
            required=device_required,
            choices=sorted(DEVICE_TYPES),
            help="cloud device type" + ("" if device_required else " (default: those in the ledger)"),
        )
        p.add_argument("--project-id", help="Pasqal project (default $PASQAL_PROJECT_ID or the config file)")
        p.add_argument("--endpoint", help="core API URL (default $QGNN_PASQAL_ENDPOINT, else Pasqal's)")
        p.add_argument(
            "--auth-endpoint", help="token URL for password logins (default $QGNN_PASQAL_AUTH_ENDPOINT)"
        )
        p.add_argument("--ledger", help="job ledger file (default $QGNN_CACHE_DIR/pasqal_jobs.sqlite)")
        p.add_argument(
            "--poll-interval", type=float, default=2.0, help="first wait between polls (s, default 2)"
        )

    submit = sub.add_parser("submit", help="check and send sequences (recorded jobs are reused)")
    source = submit.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset",
        help="a shipped dataset (e.g. PTC_FM), embedded and built on the fetched device as qgnn train does",
    )
    source.add_argument("--sequences", help="a JSON list of sequence abstract representations")
    submit.add_argument("--max-nodes", type=int, help="keep graphs with at most this many nodes")
    submit.add_argument("--limit", type=int, help="keep the first N graphs")
    submit.add_argument("--seed", type=int, default=0, help="embedding seed (default 0)")
    submit.add_argument("--shots", type=int, default=100, help="shots per sequence (default 100)")
    submit.add_argument("--wait", action="store_true", help="wait for the results (bounded by --timeout)")
    submit.add_argument(
        "--timeout", type=float, default=3600.0, help="how long --wait waits (s, default 3600)"
    )
    submit.add_argument("--force", action="store_true", help="resubmit even recorded sequences (pays again)")
    submit.add_argument("--retry-failed", action="store_true", help="resubmit jobs recorded as failed")
    connection(submit, device_required=True)
    submit.set_defaults(handler=_submit)

    status = sub.add_parser("status", help="show the recorded jobs per batch")
    status.add_argument("--batch", help="only this batch")
    status.add_argument("--refresh", action="store_true", help="ask the cloud for the latest statuses first")
    connection(status, device_required=False)
    status.set_defaults(handler=_status)

    fetch = sub.add_parser("fetch", help="collect the results of recorded jobs")
    fetch.add_argument("--batch", help="only this batch")
    fetch.add_argument(
        "--timeout", type=float, default=0.0, help="keep polling this long (s, default: poll once)"
    )
    connection(fetch, device_required=False)
    fetch.set_defaults(handler=_fetch)

    cancel = sub.add_parser("cancel", help="cancel a recorded batch, or all unfinished ones")
    which = cancel.add_mutually_exclusive_group(required=True)
    which.add_argument("--batch", help="the batch to cancel")
    which.add_argument("--all-unfinished", action="store_true", help="every batch with unfinished jobs")
    connection(cancel, device_required=False)
    cancel.set_defaults(handler=_cancel)

    resume = sub.add_parser("resume", help="settle interrupted submissions and collect unfinished jobs")
    resume.add_argument("--timeout", type=float, default=3600.0, help="how long to wait (s, default 3600)")
    connection(resume, device_required=False)
    resume.set_defaults(handler=_resume)


def _backend(args: argparse.Namespace, device: str, timeout_s: float = 3600.0) -> Any:
    from qgnn.backends.pasqal import PasqalCloud

    return PasqalCloud(
        device,
        project_id=args.project_id,
        shots=getattr(args, "shots", 100),
        timeout_s=timeout_s,
        endpoints=args.endpoint,
        auth_endpoint=args.auth_endpoint,
        ledger=args.ledger,
        poll_interval_s=args.poll_interval,
    )


def _account(args: argparse.Namespace) -> Any:
    """The cloud account (endpoint + project, no credentials) this command talks to.

    The device named only completes the backend; the account does not depend on it.
    """
    return _backend(args, args.device or "FRESNEL").account


def _devices(args: argparse.Namespace, ledger: JobLedger, batch: str | None = None) -> list[str]:
    """The device asked for, else every device with unfinished (or this batch's) jobs on this account."""
    if args.device:
        return [args.device]
    account = _account(args)
    jobs = ledger.jobs(batch_id=batch, unfinished=batch is None, account=account)
    devices = {r.device for r in jobs} | {
        s.device for s in ledger.submissions(pending_only=True, account=account) if batch is None
    }
    if batch is not None and not devices:
        raise BackendError(f"batch {batch} is not in the job ledger {ledger.path}")
    return sorted(devices)


def _print_summary(ledger: JobLedger, batch: str | None = None) -> None:
    rows = [r for r in ledger.summary() if batch is None or r["batch"] == batch]
    if not rows:
        print(f"no recorded jobs in {ledger.path}")
        return
    print(f"{'batch':38} {'device':12} {'results':>7}  {'statuses':30} endpoint")
    for r in rows:
        statuses = " ".join(f"{k}={v}" for k, v in sorted(r["statuses"].items()))
        print(f"{r['batch']:38} {r['device']:12} {r['fetched']:>7}  {statuses:30} {r['endpoint']}")


def _print_failures(records: list[JobRecord]) -> None:
    for r in records:
        if r.failed:
            print(
                f"job {r.job_id} (batch {r.batch_id}) {r.status}: {r.message or 'no message'}",
                file=sys.stderr,
            )


def _submit(args: argparse.Namespace) -> int:
    from qgnn.backends.pasqal import JobFailure
    from qgnn.backends.pasqal.inputs import dataset_sequences, load_sequences

    cloud = _backend(args, args.device, timeout_s=args.timeout)
    cloud.fetch_device()  # credentials and endpoint problems show before any embedding work
    if args.dataset:
        from qgnn.features import FeaturePipeline

        # the pipeline `qgnn train --backend pasqal:...` runs, so training reuses these jobs
        pipeline = FeaturePipeline(backend=cloud, shots=args.shots, embed_seed=args.seed, progress=False)
        found = dataset_sequences(args.dataset, pipeline, max_nodes=args.max_nodes, limit=args.limit)
    else:
        found = load_sequences(args.sequences)
    for message in found.skipped:
        print(f"skipped {message}", file=sys.stderr)
    if not found.sequences:
        raise BackendError("no sequence to submit")
    common = dict(shots=args.shots, labels=found.labels, force=args.force, retry_failed=args.retry_failed)
    if args.wait:
        outcomes = cloud.run_detailed(found.sequences, **common)
        failures = [o for o in outcomes if isinstance(o, JobFailure)]
        print(f"{len(outcomes) - len(failures)} of {len(outcomes)} sequences measured on {cloud.name}")
    else:
        prepared = cloud.submit(found.sequences, strict=False, **common)
        failures = [p for p in prepared if isinstance(p, JobFailure)]
        print(
            f"{len(prepared) - len(failures)} of {len(prepared)} sequences submitted or reused "
            f"on {cloud.name}"
        )
    for f in failures:
        print(f"  {f}", file=sys.stderr)
    _print_summary(cloud.ledger)
    return 1 if failures else 0


def _status(args: argparse.Namespace) -> int:
    ledger = JobLedger(args.ledger)
    if args.refresh:
        for device in _devices(args, ledger, args.batch):
            _backend(args, device).refresh(batch_id=args.batch)
    _print_summary(ledger, args.batch)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    ledger = JobLedger(args.ledger)
    records: list[JobRecord] = []
    for device in _devices(args, ledger, args.batch):
        records += _backend(args, device).refresh(batch_id=args.batch, timeout_s=args.timeout)
    _print_failures(records)
    _print_summary(ledger, args.batch)
    return 0 if not ledger.jobs(batch_id=args.batch, unfinished=True, account=_account(args)) else 3


def _cancel(args: argparse.Namespace) -> int:
    ledger = JobLedger(args.ledger)
    for device in _devices(args, ledger, args.batch):
        for batch in _backend(args, device).cancel(args.batch):
            print(f"asked the cloud to cancel batch {batch}")
    _print_summary(ledger, args.batch)
    return 0


def _resume(args: argparse.Namespace) -> int:
    ledger = JobLedger(args.ledger)
    records: list[JobRecord] = []
    for device in _devices(args, ledger):
        records += _backend(args, device, timeout_s=args.timeout).refresh(timeout_s=args.timeout)
    _print_failures(records)
    _print_summary(ledger)
    return 0 if not ledger.jobs(unfinished=True, account=_account(args)) else 3
