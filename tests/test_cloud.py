"""The Pasqal cloud backend against a fake Pasqal cloud over real HTTP.

The real ``pasqal_cloud`` SDK talks to :mod:`fake_pasqal_cloud` (a stdlib HTTP
server on 127.0.0.1) which runs the submitted sequences on pulser-simulation;
nothing in the SDK is patched. Results are checked against an exact numpy
``expm`` evolution and qgnn's local emu-sv backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import logging
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pulser
import pytest
import requests
from fake_pasqal_cloud import SPECS_PATH, FakePasqalCloud
from pulser.json.abstract_repr.deserializer import deserialize_device
from scipy.linalg import expm

from qgnn.backends.base import Measurement
from qgnn.backends.ledger import CloudAccount, JobLedger, PlannedJob
from qgnn.backends.pasqal import (
    CloudJobError,
    CloudRequestError,
    JobFailure,
    PasqalCloud,
    RetryPolicy,
    backend_from_spec,
    login_source,
    split_shots,
)
from qgnn.errors import BackendError, InvalidInputError
from qgnn.pulses import ConstantDrive

pytest.importorskip("pasqal_cloud")

TRIANGLE = [[0.0, 0.0], [7.0, 0.0], [0.0, 7.5]]
PAIR = [[0.0, 0.0], [9.0, 0.0]]
LINE = [[0.0, 0.0], [8.0, 0.0], [16.0, 0.0]]
FAST = RetryPolicy(max_retries=3, backoff_s=0.01, max_backoff_s=0.05, settle_s=0.3)
ACCOUNT = CloudAccount("http://x", "proj-x")
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def cloud_server() -> Any:
    """A fake Pasqal cloud on an ephemeral 127.0.0.1 port, serving the recorded Fresnel specs."""
    server = FakePasqalCloud().start()
    yield server
    server.stop()


@pytest.fixture
def cloud_env(cloud_server: FakePasqalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials and endpoints in the environment, caches and config under ``tmp_path``."""
    monkeypatch.setenv("PASQAL_USERNAME", cloud_server.username)
    monkeypatch.setenv("PASQAL_PASSWORD", cloud_server.password)
    monkeypatch.setenv("PASQAL_PROJECT_ID", cloud_server.project_id)
    monkeypatch.setenv("QGNN_PASQAL_ENDPOINT", cloud_server.url)
    monkeypatch.setenv("QGNN_PASQAL_AUTH_ENDPOINT", cloud_server.token_url)
    monkeypatch.setenv("QGNN_PASQAL_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("QGNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PASQAL_SKIP_GZIP_REQUEST_BODY", raising=False)
    return tmp_path


@pytest.fixture
def make_cloud(cloud_env: Path) -> Any:
    def make(device: str = "EMU_SV", **kwargs: Any) -> PasqalCloud:
        kwargs.setdefault("poll_interval_s", 0.02)
        kwargs.setdefault("timeout_s", 30.0)
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("http_timeout_s", 5.0)
        return PasqalCloud(device, **kwargs)

    return make


@pytest.fixture(scope="module")
def fresnel() -> pulser.devices.Device:
    """The Fresnel device of the recorded specs (what the fake cloud serves)."""
    return deserialize_device(json.loads(SPECS_PATH.read_text())["FRESNEL"])


def build(
    device: Any,
    coords: list[list[float]],
    *,
    layout: bool = True,
    amplitude: float = 5.0,
    duration: int = 1000,
) -> pulser.Sequence:
    reg = pulser.Register.from_coordinates(np.array(coords, dtype=float), prefix="q")
    if layout:
        reg = reg.with_automatic_layout(device)
    return ConstantDrive(amplitude=amplitude, duration=duration).build(reg, device)


def exact_probabilities(seq: pulser.Sequence, amplitude: float, duration_ns: int) -> np.ndarray:
    """|ψ(T)|² of H = Ω/2 Σσx + Σ C6/r⁶ n_i n_j from |0…0⟩ by numpy expm (qubit 0 = most significant bit)."""
    reg = seq.register
    coords = np.array([reg.qubits[q] for q in reg.qubit_ids], dtype=float)
    n = len(coords)
    c6 = seq.device.interaction_coeff
    x = np.array([[0, 1], [1, 0]], dtype=complex)
    num = np.diag([0.0, 1.0]).astype(complex)

    def op(single: np.ndarray, i: int) -> np.ndarray:
        out = np.array([[1.0 + 0j]])
        for k in range(n):
            out = np.kron(out, single if k == i else np.eye(2))
        return out

    h = sum(amplitude / 2 * op(x, i) for i in range(n))
    for i in range(n):
        for j in range(i + 1, n):
            h = h + c6 / np.linalg.norm(coords[i] - coords[j]) ** 6 * op(num, i) @ op(num, j)
    psi0 = np.zeros(2**n, dtype=complex)
    psi0[0] = 1.0
    psi = expm(-1j * h * duration_ns / 1000.0) @ psi0
    return np.abs(psi) ** 2


def assert_within_shot_noise(
    measured: np.ndarray, exact: np.ndarray, shots: int, n_sigma: float = 5.0
) -> None:
    sigma = np.sqrt(exact * (1 - exact) / shots) + 2e-3
    assert np.all(np.abs(measured - exact) <= n_sigma * sigma), (measured, exact)


# ---------------------------------------------------------------------- physics and batching


def test_features_match_exact_evolution_and_local_emulator(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    from qgnn.backends import EmuSV

    cloud = make_cloud("EMU_SV")
    device = cloud.fetch_device()
    seqs = [build(device, TRIANGLE), build(device, PAIR), build(device, LINE)]
    shots = 1001  # above Fresnel's max_runs = 500: three jobs of 334, 334 and 333 shots each
    measurements = cloud.run(seqs, shots=shots, labels=["graph 0", "graph 1", "graph 2"])

    assert cloud_server.count("POST", "/api/v1/batches") == 1
    (batch,) = cloud_server.batches.values()
    assert [cloud_server.jobs[j].runs for j in batch.job_ids] == [334, 334, 333] * 3
    assert batch.sequence_builder is None and batch.device_type == "EMU_SV"
    local = EmuSV().run(seqs)
    for seq, m, ref in zip(seqs, measurements, local, strict=True):
        assert isinstance(m, Measurement) and m.backend == "pasqal:EMU_SV" and not m.exact
        assert sum(m.counts[0].values()) == shots
        assert m.qubit_ids == tuple(seq.register.qubit_ids)
        probs = exact_probabilities(seq, 5.0, 1000)
        n = m.n_qubits
        bits = ((np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(float)
        exact_occ = probs @ bits
        assert_within_shot_noise(m.occupations[0], exact_occ, shots)
        assert_within_shot_noise(m.correlations[0], np.einsum("k,ki,kj->ij", probs, bits, bits), shots)
        assert_within_shot_noise(m.occupations[0], ref.occupations[-1], shots)
        np.testing.assert_allclose(ref.occupations[-1], exact_occ, atol=2e-3)  # the two references agree


def test_split_shots_respects_max_runs() -> None:
    assert split_shots(1001, 500) == [334, 334, 333]
    assert split_shots(500, 500) == [500]
    assert split_shots(7, None) == [7]
    assert all(r <= 3 for r in split_shots(10, 3)) and sum(split_shots(10, 3)) == 10


def test_qpu_run_on_fresnel(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud = make_cloud("FRESNEL", shots=50)
    (m,) = cloud.run([build(cloud.fetch_device(), PAIR)])
    (batch,) = cloud_server.batches.values()
    assert batch.device_type == "FRESNEL" and batch.backend_configuration is None
    assert sum(m.counts[0].values()) == 50 and m.backend == "pasqal:FRESNEL"


def test_serialised_results_are_read_without_counter(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud_server.results_format = "serialised"
    cloud = make_cloud("EMU_MPS")
    seq = build(cloud.fetch_device(), TRIANGLE)
    (m,) = cloud.run([seq], shots=400)
    (job,) = cloud_server.jobs.values()
    assert m.counts == ({k: v for k, v in job.counter.items()},)
    assert_within_shot_noise(
        m.occupations[0],
        exact_probabilities(seq, 5.0, 1000)
        @ np.array([[(k >> s) & 1 for s in (2, 1, 0)] for k in range(8)], dtype=float),
        400,
    )


def test_rerun_reuses_recorded_jobs_and_force_resubmits(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), TRIANGLE), build(cloud.fetch_device(), PAIR)]
    first = cloud.run(seqs, shots=60)
    again = make_cloud().run(seqs, shots=60)  # a new backend object: the ledger file is what remembers
    assert cloud_server.count("POST", "/api/v1/batches") == 1
    assert [m.counts for m in first] == [m.counts for m in again]
    make_cloud().run(seqs, shots=80)  # other shots: another job
    assert cloud_server.count("POST", "/api/v1/batches") == 2
    forced = make_cloud().run(seqs, shots=60, force=True)
    assert cloud_server.count("POST", "/api/v1/batches") == 3
    assert [m.counts for m in forced] != [m.counts for m in first]
    ledger = cloud.ledger
    assert len(ledger.jobs(include_superseded=True)) == 6 and len(ledger.jobs()) == 4


def test_recorded_jobs_are_reused_only_on_their_own_cloud(
    make_cloud: Any, cloud_server: FakePasqalCloud, cloud_env: Path
) -> None:
    """One ledger, two clouds: a job recorded on one is never reused (nor its counts given) on the other."""
    other = FakePasqalCloud(seed=99).start()  # same account and project names, another server
    try:
        ledger = JobLedger(cloud_env / "shared.sqlite")
        first = make_cloud(ledger=ledger)
        second = make_cloud(ledger=ledger, endpoints=other.url, auth_endpoint=other.token_url)
        assert first.endpoint_url != second.endpoint_url
        seqs = [build(first.fetch_device(), TRIANGLE), build(first.fetch_device(), PAIR)]
        on_first = first.run(seqs, shots=200)
        on_second = second.run(seqs, shots=200)
        assert other.count("POST", "/api/v1/batches") == 1  # its own batch, not the first cloud's jobs
        assert cloud_server.count("POST", "/api/v1/batches") == 1
        for m, server in ((on_first, cloud_server), (on_second, other)):
            (batch,) = server.batches.values()
            assert [x.counts[0] for x in m] == [server.jobs[j].counter for j in batch.job_ids]
        assert [m.counts for m in on_first] != [m.counts for m in on_second]  # seeds differ
        # each cloud still reuses its own jobs from the shared ledger
        assert [m.counts for m in make_cloud(ledger=ledger).run(seqs, shots=200)] == [
            m.counts for m in on_first
        ]
        again = make_cloud(ledger=ledger, endpoints=other.url, auth_endpoint=other.token_url).run(
            seqs, shots=200
        )
        assert [m.counts for m in again] == [m.counts for m in on_second]
        assert [s.count("POST", "/api/v1/batches") for s in (cloud_server, other)] == [1, 1]
        assert len(ledger.jobs()) == 4
        assert {r.endpoint for r in second.refresh()} == {other.url}  # polls its own jobs only
        (first_batch,) = cloud_server.batches
        with pytest.raises(BackendError, match=f"batch {first_batch} is recorded for .*cancel it there"):
            second.cancel(first_batch)
        assert other.count("PATCH", ".*/cancel") == 0
    finally:
        other.stop()


def test_max_jobs_per_batch_splits_the_submission(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud = make_cloud(max_jobs_per_batch=2)
    device = cloud.fetch_device()
    measurements = cloud.run([build(device, PAIR), build(device, TRIANGLE), build(device, LINE)], shots=20)
    assert sorted(len(b.job_ids) for b in cloud_server.batches.values()) == [1, 2]
    assert len({r.submission_id for r in cloud.ledger.jobs()}) == 2
    assert [sum(m.counts[0].values()) for m in measurements] == [20, 20, 20]


def test_identical_sequences_are_sent_once(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud = make_cloud()
    seq = build(cloud.fetch_device(), PAIR)
    a, b = cloud.run([seq, build(cloud.fetch_device(), PAIR)], shots=30)
    assert len(cloud_server.jobs) == 1 and a.counts == b.counts


def test_arguments_are_checked(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud = make_cloud()
    seq = build(cloud.fetch_device(), PAIR)
    with pytest.raises(InvalidInputError, match="evaluation_times must be"):
        cloud.run([seq], evaluation_times=(0.5, 1.0))
    with pytest.raises(InvalidInputError, match="shots"):
        cloud.run([seq], shots=0)
    with pytest.raises(InvalidInputError, match="list of pulser.Sequence"):
        cloud.run(seq)
    with pytest.raises(InvalidInputError, match="unknown Pasqal cloud device"):
        make_cloud("NOT_A_DEVICE")
    with pytest.raises(InvalidInputError, match="shots must be a positive integer"):
        make_cloud(shots=None)
    with pytest.raises(InvalidInputError, match="'pasqal:<DEVICE>'"):
        backend_from_spec("emu-sv")
    assert backend_from_spec("pasqal:emu_mps").name == "pasqal:EMU_MPS"
    (m,) = make_cloud(shots=25).run([seq])  # shots=None → the backend's default
    assert sum(m.counts[0].values()) == 25
    assert cloud_server.count("POST", "/api/v1/batches") == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"device": 5}, "unknown Pasqal cloud device"),
        ({"shots": 0}, "shots must be a positive integer"),
        ({"shots": "x"}, "shots must be a positive integer"),
        ({"shots": 1.5}, "shots must be a positive integer"),
        ({"timeout_s": -1}, "timeout_s must be a positive number"),
        ({"timeout_s": float("nan")}, "timeout_s must be a positive number"),
        ({"poll_interval_s": "2"}, "poll_interval_s must be a positive number"),
        ({"max_jobs_per_batch": 0}, "max_jobs_per_batch must be a positive integer"),
        ({"spec_device": 3}, "spec_device must be a device type name"),
        ({"project_id": 1234}, "project_id must be a string"),
        ({"auth_endpoint": 1}, "auth_endpoint must be a string"),
        ({"ledger": 5}, "ledger must be a JobLedger"),
        ({"retry": 3}, "retry must be a RetryPolicy"),
    ],
)
def test_bad_constructor_arguments_raise_invalid_input_errors(
    cloud_env: Path, kwargs: dict[str, Any], match: str
) -> None:
    kwargs = {"device": "EMU_SV", **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        PasqalCloud(kwargs.pop("device"), **kwargs)


def test_bad_call_arguments_raise_invalid_input_errors(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    with pytest.raises(InvalidInputError, match="max_retries must be a non-negative integer"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(InvalidInputError, match="backoff_s must be a non-negative number"):
        RetryPolicy(backoff_s=float("inf"))
    with pytest.raises(InvalidInputError, match="job ledger path must be a path"):
        JobLedger(3.5)  # type: ignore[arg-type]
    cloud = make_cloud()
    seq = build(cloud.fetch_device(), PAIR)
    with pytest.raises(InvalidInputError, match="labels must be a list of names"):
        cloud.run([seq], labels=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="labels must be a list of names"):
        cloud.run([seq], labels="graph 1")
    for bad in (float("nan"), -1.0, "10"):
        with pytest.raises(InvalidInputError, match="timeout_s must be a non-negative number"):
            cloud.refresh(timeout_s=bad)  # type: ignore[arg-type]
    assert cloud_server.count("POST", "/api/v1/batches") == 0


def test_cache_key_holds_the_settings_that_change_results(make_cloud: Any) -> None:
    base = make_cloud("EMU_MPS", shots=100)
    same = make_cloud("EMU_MPS", shots=100, timeout_s=5.0, max_jobs_per_batch=2)
    assert base.cache_key() == same.cache_key()  # timeouts and batch sizes do not change results
    assert base.cache_key() != make_cloud("EMU_MPS", shots=1000).cache_key()  # default shots change results
    assert base.cache_key() != make_cloud("EMU_SV", shots=100).cache_key()
    assert base.cache_key() != make_cloud("EMU_MPS", shots=100, mimic_qpu=False).cache_key()
    assert base.cache_key() != make_cloud("EMU_MPS", shots=100, endpoints="http://127.0.0.1:1").cache_key()
    assert "password" not in json.dumps(base.cache_key()).lower()


# ---------------------------------------------------------------------- validated before sending


def _relaxed(device: Any, **changes: Any) -> Any:
    """A copy of ``device`` with looser limits, still named "Fresnel" (stale or hand-edited specs)."""
    return dataclasses.replace(device, **changes)


@pytest.mark.parametrize(
    "case",
    ["no_layout", "atoms_too_close", "too_long", "other_device", "too_many_atoms"],
)
def test_rejected_before_anything_is_sent(
    make_cloud: Any, cloud_server: FakePasqalCloud, fresnel: Any, case: str
) -> None:
    from pulser.devices import AnalogDevice

    cloud = make_cloud("FRESNEL")
    device = cloud.fetch_device()
    if case == "no_layout":
        seq, reason = build(device, TRIANGLE, layout=False), "RegisterLayout"
    elif case == "atoms_too_close":
        loose = _relaxed(fresnel, min_atom_distance=4)
        seq, reason = build(loose, [[0.0, 0.0], [4.5, 0.0]]), "does not fit the current Fresnel specs"
    elif case == "too_long":
        channels = tuple(dataclasses.replace(ch, max_duration=10000) for ch in fresnel.channel_objects)
        loose = _relaxed(fresnel, max_sequence_duration=10000, channel_objects=channels)
        seq, reason = build(loose, PAIR, duration=8000), "duration can be at most 6000 ns"
    elif case == "too_many_atoms":
        loose = _relaxed(fresnel, max_atom_num=100)
        grid = [[5.0 * i, 5.0 * j] for i in range(-5, 5) for j in range(-5, 4)]
        seq, reason = (
            build(loose, grid[:81], layout=False, amplitude=1.0),
            "does not fit the current Fresnel specs",
        )
    else:
        seq, reason = build(AnalogDevice, PAIR, layout=False), "built for 'AnalogDevice'"
    before = len(cloud_server.requests)
    with pytest.raises(BackendError, match=reason) as err:
        cloud.run([seq], labels=["graph 7"])
    assert "graph 7" in str(err.value) and "nothing was sent" in str(err.value)
    assert len(cloud_server.requests) == before  # not a single request reached the server
    assert cloud_server.count("POST", "/api/v1/batches") == 0 and not cloud.ledger.jobs()


def test_run_detailed_reports_rejected_and_sends_the_rest(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud = make_cloud("FRESNEL")
    device = cloud.fetch_device()
    good, bad = build(device, PAIR), build(device, TRIANGLE, layout=False)
    ok, rejected = cloud.run_detailed([good, bad], shots=20, labels=["graph 1", "graph 2"])
    assert isinstance(ok, Measurement)
    assert isinstance(rejected, JobFailure) and rejected.status == "REJECTED" and rejected.label == "graph 2"
    (batch,) = cloud_server.batches.values()
    assert len(batch.job_ids) == 1
    assert cloud.validate(good).is_measured()


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("method", "path", "kind", "extra"),
    [
        ("GET", r"/api/v2/batches/[\w-]+", "status", {"status": 503, "times": 2}),
        ("GET", r"/api/v2/jobs", "status", {"status": 429, "headers": {"Retry-After": "0"}}),
        ("GET", r"/api/v1/jobs/[\w-]+/results_link", "status", {"status": 502}),
        ("GET", r"/api/v2/batches/[\w-]+", "reset", {}),
        ("GET", r"/results/[\w-]+", "reset", {}),
        ("GET", r"/api/v2/batches/[\w-]+", "slow", {"delay": 1.5}),
        ("GET", r"/api/v1/devices/specs", "status", {"status": 500}),
        ("POST", r"/oauth/token", "status", {"status": 503}),
        ("GET", r"/api/v2/jobs", "bad_json", {}),
    ],
    ids=[
        "503",
        "429-retry-after",
        "502-results-link",
        "reset",
        "reset-download",
        "slow",
        "500-specs",
        "503-token",
        "bad-json-once",
    ],
)
def test_transient_faults_are_retried(
    make_cloud: Any, cloud_server: FakePasqalCloud, method: str, path: str, kind: str, extra: dict[str, Any]
) -> None:
    fault = cloud_server.inject(method, path, kind, **extra)
    cloud = make_cloud(http_timeout_s=0.5)
    seqs = [build(cloud.fetch_device(), PAIR), build(cloud.fetch_device(), TRIANGLE)]
    measurements = cloud.run(seqs, shots=40)
    assert fault.hits >= 1
    assert all(sum(m.counts[0].values()) == 40 for m in measurements)
    assert cloud_server.count("POST", "/api/v1/batches") == 1


def test_persistent_failure_gives_clear_error_and_rerun_collects(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    fault = cloud_server.inject("GET", r"/api/v2/batches/[\w-]+", "status", status=503, times=-1)
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), PAIR)]
    with pytest.raises(
        CloudRequestError, match=r"unreachable or failing after 4 attempts \(GET .*HTTP 503"
    ) as err:
        cloud.run(seqs, shots=30)
    assert err.value.kind == "transient" and fault.hits == 4
    (job,) = cloud.ledger.jobs()
    assert job.job_id is not None and job.counts is None  # submitted and recorded, results not lost
    cloud_server.faults.clear()
    (m,) = make_cloud().run(seqs, shots=30)
    assert sum(m.counts[0].values()) == 30 and cloud_server.count("POST", "/api/v1/batches") == 1


@pytest.mark.parametrize("kind", ["reset_after", "status_after", "slow_after", "slow"])
def test_batch_created_but_reply_lost_is_adopted_not_resent(
    make_cloud: Any, cloud_server: FakePasqalCloud, kind: str
) -> None:
    # "slow": the cloud registers the batch only after the client gave up waiting (0.8 s > 0.4 s)
    cloud_server.inject("POST", "/api/v1/batches", kind, status=502, delay=0.8 if kind == "slow" else 1.5)
    cloud = make_cloud(http_timeout_s=0.4, retry=RetryPolicy(max_retries=3, backoff_s=0.01, settle_s=5.0))
    seqs = [build(cloud.fetch_device(), PAIR), build(cloud.fetch_device(), LINE)]
    measurements = cloud.run(seqs, shots=30)
    assert len(cloud_server.batches) == 1 and cloud_server.count("POST", "/api/v1/batches") == 1
    assert cloud_server.count("GET", "/api/v1/batches") >= 1  # looked up by its tag
    (batch,) = cloud_server.batches.values()
    assert {r.batch_id for r in cloud.ledger.jobs()} == {batch.id}
    assert len(measurements) == 2


def test_duplicate_batches_with_our_tag_are_cancelled(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    from qgnn.backends.pasqal.validation import prepare

    cloud = make_cloud()
    seq = build(cloud.fetch_device(), PAIR)
    p = prepare(seq, cloud.fetch_device(), mimic_qpu=True, label="graph 0")
    with cloud.ledger.transaction() as tx:  # an intent left by a process killed mid-submission ...
        tx.record_sequence(p.seq_hash, p.abstract_repr, p.qubit_ids)
        tag = tx.add_submission("EMU_SV", cloud.account, [PlannedJob(p.seq_hash, 30, 0, 30)])
    body = {
        "project_id": cloud_server.project_id,
        "device_type": "EMU_SV",
        "tags": [tag],
        "jobs": [{"runs": 30, "sequence": p.abstract_repr}],
    }
    first, second = cloud_server.create_batch(body), cloud_server.create_batch(body)  # ... that landed twice
    (m,) = cloud.run([seq], shots=30)
    assert sum(m.counts[0].values()) == 30
    assert {r.batch_id for r in cloud.ledger.jobs()} == {first.id}
    assert (
        cloud_server.batch_status(second) == "CANCELED" and cloud_server.count("POST", "/api/v1/batches") == 0
    )


def test_batch_creation_that_never_arrived_is_resent_once(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud_server.inject("POST", "/api/v1/batches", "reset")
    cloud = make_cloud()
    (m,) = cloud.run([build(cloud.fetch_device(), PAIR)], shots=30)
    assert cloud_server.count("POST", "/api/v1/batches") == 2 and len(cloud_server.batches) == 1
    assert sum(m.counts[0].values()) == 30


def test_lost_answer_with_a_failing_lookup_keeps_the_intent_for_a_rerun(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud_server.inject("POST", "/api/v1/batches", "reset_after")  # created; the answer is lost
    lookup = cloud_server.inject("GET", "/api/v1/batches", "status", status=500, times=-1)
    cloud = make_cloud()
    seq = build(cloud.fetch_device(), PAIR)
    with pytest.raises(CloudRequestError, match="could not be looked up") as err:
        cloud.run([seq], shots=30)
    assert "no batch was created" not in str(err.value)  # it may well exist: the intent is kept
    assert len(cloud_server.batches) == 1 and [j.status for j in cloud.ledger.jobs()] == ["SUBMITTING"]
    assert len(cloud.ledger.submissions(pending_only=True)) == 1
    lookup.times = 0
    (m,) = cloud.run([seq], shots=30)  # settled by its tag: the batch is adopted, not sent again
    assert cloud_server.count("POST", "/api/v1/batches") == 1 and sum(m.counts[0].values()) == 30


def test_batch_creation_failing_for_good_records_nothing(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud_server.inject("POST", "/api/v1/batches", "status", status=503, times=-1)
    cloud = make_cloud()
    with pytest.raises(CloudRequestError, match="no batch was created"):
        cloud.run([build(cloud.fetch_device(), PAIR)], shots=30)
    assert not cloud_server.batches and not cloud.ledger.jobs() and not cloud.ledger.submissions()


def test_server_rejection_is_reported_with_its_message(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud = make_cloud(project_id="someone-elses-project")
    with pytest.raises(CloudRequestError, match="rejected the request .*HTTP 422: unknown project_id") as err:
        cloud.run([build(cloud.fetch_device(), PAIR)], shots=30)
    assert err.value.kind == "rejected" and err.value.status == 422
    assert not cloud.ledger.jobs() and not cloud_server.batches


def test_failed_jobs_are_reported_per_graph_and_finished_ones_kept(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud_server.plan_outcome(1, "ERROR", "Pulse amplitude outside calibration window")
    cloud_server.plan_outcome(2, "CANCELED", "Canceled by an administrator")
    cloud_server.plan_outcome(3, "TIMED_OUT", "QPU maintenance")
    cloud = make_cloud()
    device = cloud.fetch_device()
    seqs = [
        build(device, c) for c in (PAIR, TRIANGLE, LINE, [[0.0, 0.0], [10.0, 0.0]], [[0.0, 0.0], [6.0, 0.0]])
    ]
    labels = [f"graph {i}" for i in (10, 11, 12, 13, 14)]
    outcomes = cloud.run_detailed(seqs, shots=30, labels=labels)
    assert [type(o).__name__ for o in outcomes] == [
        "Measurement",
        "JobFailure",
        "JobFailure",
        "JobFailure",
        "Measurement",
    ]
    assert [o.status for o in outcomes if isinstance(o, JobFailure)] == ["ERROR", "CANCELED", "TIMED_OUT"]
    assert "Pulse amplitude outside calibration window" in outcomes[1].message
    with pytest.raises(CloudJobError) as err:
        make_cloud().run(seqs, shots=30, labels=labels)
    text = str(err.value)
    assert "3 of 5 sequences" in text and "graph 11: ERROR" in text and "QPU maintenance" in text
    assert isinstance(err.value.outcomes[0], Measurement) and len(err.value.failures) == 3
    assert pickle.loads(pickle.dumps(err.value)).failures[0].label == "graph 11"
    assert cloud_server.count("POST", "/api/v1/batches") == 1  # failures are reported, not silently repaid
    done = make_cloud().run(seqs, shots=30, labels=labels, retry_failed=True)
    assert cloud_server.count("POST", "/api/v1/batches") == 2
    last = max(cloud_server.batches.values(), key=lambda b: b.created_at)
    assert len(last.job_ids) == 3  # only the failed ones were paid again
    assert done[0].counts == outcomes[0].counts


def test_results_fetched_before_a_failure_are_kept(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), PAIR), build(cloud.fetch_device(), TRIANGLE)]
    cloud_server.hold_jobs()
    cloud.submit(seqs, shots=30)
    (batch,) = cloud_server.batches.values()
    cloud_server.inject("GET", f"/results/{batch.job_ids[1]}", "status", status=503, times=-1)
    cloud_server.release_jobs()
    assert cloud_server.wait_until(lambda: all(cloud_server.jobs[j].status == "DONE" for j in batch.job_ids))
    with pytest.raises(CloudRequestError, match="fetch the results of job"):
        cloud.run(seqs, shots=30)
    first = {j.job_id: j for j in cloud.ledger.jobs()}[batch.job_ids[0]]
    assert first.counts == cloud_server.jobs[batch.job_ids[0]].counter  # kept although the batch failed
    cloud_server.faults.clear()
    assert [m.counts[0] for m in cloud.run(seqs, shots=30)] == [
        cloud_server.jobs[j].counter for j in batch.job_ids
    ]


def test_batch_timed_out_reports_its_jobs(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud_server.hold_jobs()
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), PAIR), build(cloud.fetch_device(), TRIANGLE)]
    cloud.submit(seqs, shots=30)
    (batch,) = cloud_server.batches.values()
    cloud_server.set_batch_status(batch.id, "TIMED_OUT")
    outcomes = cloud.run_detailed(seqs, shots=30)
    assert [o.status for o in outcomes] == ["TIMED_OUT", "TIMED_OUT"]
    assert f"batch {batch.id} ended TIMED_OUT" in outcomes[1].message


def test_polling_timeout_keeps_jobs_and_rerun_collects(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    cloud_server.hold_jobs()
    cloud = make_cloud(timeout_s=0.3)
    seqs = [build(cloud.fetch_device(), PAIR)]
    (late,) = cloud.run_detailed(seqs, shots=30)
    assert isinstance(late, JobFailure) and late.status == "UNFINISHED" and "timeout_s=0.3" in late.message
    cloud_server.release_jobs()
    (m,) = make_cloud().run(seqs, shots=30)
    assert sum(m.counts[0].values()) == 30 and cloud_server.count("POST", "/api/v1/batches") == 1


@pytest.mark.parametrize(
    ("kind", "detail"),
    [("bad_json", "not valid JSON"), ("no_data", "has no 'data' field")],
)
def test_malformed_replies_give_clear_errors(
    make_cloud: Any, cloud_server: FakePasqalCloud, kind: str, detail: str
) -> None:
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), PAIR)]
    cloud_server.inject("GET", r"/api/v2/batches/[\w-]+", kind, times=-1)
    with pytest.raises(CloudRequestError, match=f"malformed reply after 4 attempts: .*{detail}") as err:
        cloud.run(seqs, shots=30)
    assert err.value.kind == "malformed" and not isinstance(err.value, KeyError)


def test_unknown_job_status_gives_clear_error(make_cloud: Any, cloud_server: FakePasqalCloud) -> None:
    cloud_server.hold_jobs()
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), PAIR)]
    cloud.submit(seqs, shots=30)
    (job,) = cloud_server.jobs.values()
    job.status = "EXPLODED"
    with pytest.raises(
        CloudRequestError, match=f"job {job.id} reports status 'EXPLODED', which qgnn does not know"
    ):
        cloud.run(seqs, shots=30)
    assert cloud.ledger.jobs()[0].job_id == job.id  # still recorded


def test_fake_cloud_checks_gzip_bearer_and_sequences(
    make_cloud: Any, cloud_server: FakePasqalCloud, monkeypatch: pytest.MonkeyPatch, fresnel: Any
) -> None:
    url = f"{cloud_server.url}/api/v1/batches"
    token = requests.post(
        cloud_server.token_url, data={"username": cloud_server.username, "password": cloud_server.password}
    ).json()["access_token"]
    assert requests.get(f"{cloud_server.url}/api/v1/devices/specs").status_code == 401
    assert (
        requests.get(
            f"{cloud_server.url}/api/v1/devices/specs", headers={"Authorization": "Bearer forged"}
        ).status_code
        == 401
    )
    body = {
        "project_id": cloud_server.project_id,
        "device_type": "FRESNEL",
        "jobs": [{"runs": 10}],
        "sequence_builder": build(fresnel, PAIR, layout=False).to_abstract_repr(),
    }
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.post(url, json=body, headers=auth).status_code == 400  # not gzip-compressed
    reply = requests.post(
        url, data=gzip.compress(json.dumps(body).encode()), headers={**auth, "Content-Encoding": "gzip"}
    )
    assert reply.status_code == 422 and "RegisterLayout" in json.dumps(reply.json())
    monkeypatch.setenv("PASQAL_SKIP_GZIP_REQUEST_BODY", "1")
    cloud = make_cloud()
    with pytest.raises(CloudRequestError, match="gzip"):
        cloud.run([build(cloud.fetch_device(), PAIR)], shots=10)
    assert not cloud_server.batches


# ---------------------------------------------------------------------- killed and resumed

CHILD = textwrap.dedent(
    """
    import json
    import numpy as np, pulser
    from qgnn.backends.pasqal import PasqalCloud, RetryPolicy
    from qgnn.pulses import ConstantDrive

    cloud = PasqalCloud("EMU_SV", poll_interval_s=0.05, timeout_s=60, retry=RetryPolicy(backoff_s=0.05))
    device = cloud.fetch_device()
    seqs = []
    for coords in COORDS:
        reg = pulser.Register.from_coordinates(np.array(coords, float), prefix="q")
        reg = reg.with_automatic_layout(device)
        seqs.append(ConstantDrive(amplitude=5.0, duration=1000).build(reg, device))
    print(json.dumps([dict(m.counts[0]) for m in cloud.run(seqs, shots=60)]))
    """
).replace("COORDS", repr([PAIR, TRIANGLE, LINE]))


def test_sigkill_then_rerun_submits_nothing_twice(cloud_server: FakePasqalCloud, cloud_env: Path) -> None:
    """Kill -9 while the batch creation is in flight, rerun, kill -9 while polling, rerun: one batch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    ledger = JobLedger(cloud_env / "cache" / "pasqal_jobs.sqlite")
    cloud_server.hold_jobs()  # jobs stay RUNNING until released
    cloud_server.inject(
        "POST", "/api/v1/batches", "slow_after", delay=60.0
    )  # created; the answer never comes

    def run_and_kill(ready: Any) -> None:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            ok = cloud_server.wait_until(
                lambda: child.poll() is None and ledger.path.exists() and ready(), 60
            )
            assert ok, child.communicate(timeout=5) if child.poll() is not None else "timed out"
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL

    # 1. killed after the cloud created the batch, before its answer reached the ledger
    run_and_kill(
        lambda: len(cloud_server.batches) == 1 and [j.status for j in ledger.jobs()] == ["SUBMITTING"] * 3
    )
    # 2. the rerun adopts that batch by its tag (no POST), records the jobs, and is killed while polling
    run_and_kill(lambda: len(ledger.jobs()) == 3 and all(j.job_id for j in ledger.jobs()))
    assert cloud_server.count("POST", "/api/v1/batches") == 1
    # 3. the last rerun collects the results
    cloud_server.release_jobs()
    rerun = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    counts = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert [sum(c.values()) for c in counts] == [60, 60, 60]
    assert cloud_server.count("POST", "/api/v1/batches") == 1 and len(cloud_server.batches) == 1
    (batch,) = cloud_server.batches.values()
    assert {j.batch_id for j in ledger.jobs()} == {batch.id}
    assert sorted(j.job_id for j in ledger.jobs()) == sorted(batch.job_ids)


# ---------------------------------------------------------------------- credentials


def test_credentials_never_reach_logs_files_pickles_or_errors(
    make_cloud: Any,
    cloud_server: FakePasqalCloud,
    cloud_env: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    cloud_server.inject("GET", r"/api/v2/batches/[\w-]+", "status", status=503)
    cloud_server.inject("POST", "/api/v1/batches", "reset_after")
    cloud_server.plan_outcome(1, "ERROR", "detector fault")
    cloud = make_cloud()
    seqs = [build(cloud.fetch_device(), PAIR), build(cloud.fetch_device(), TRIANGLE)]
    messages = []
    with pytest.raises(CloudJobError) as err:
        cloud.run(seqs, shots=20)
    messages.append(str(err.value))
    blob = pickle.dumps(cloud)
    restored = pickle.loads(blob)
    assert restored._connection is None and restored.run(seqs[:1], shots=20)[0].counts  # reconnects from env
    monkeypatch.setenv("PASQAL_PASSWORD", "wrong-" + cloud_server.password)
    with pytest.raises(CloudRequestError, match="refused the credentials") as bad:
        make_cloud().fetch_device()
    messages.append(str(bad.value))
    monkeypatch.setenv("PASQAL_PASSWORD", cloud_server.password)

    assert cloud_server.tokens, "the fake cloud issued no token"
    loggers = {r.name for r in caplog.records}
    assert "qgnn.backends.pasqal" in loggers and "urllib3.connectionpool" in loggers  # the grep has material
    secrets = [cloud_server.password, *cloud_server.tokens]
    out, errout = capfd.readouterr()
    texts = [caplog.text, out, errout, repr(cloud), *messages, *(repr(r) for r in caplog.records)]
    blobs = [blob, *(p.read_bytes() for p in cloud_env.rglob("*") if p.is_file())]
    assert any(p.name.startswith("pasqal_jobs.sqlite") for p in cloud_env.rglob("*"))
    for secret in secrets:
        assert all(secret not in t for t in texts)
        assert all(secret.encode() not in b for b in blobs)
    for p in (cloud_env / "cache").glob("pasqal_jobs.sqlite*"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_token_provider_login_and_pickling(
    make_cloud: Any, cloud_server: FakePasqalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pasqal_cloud.authentication import TokenProvider

    class StaticToken(TokenProvider):
        def __init__(self, token: str) -> None:
            self.token = token

        def get_token(self) -> str:
            return self.token

    cloud_server.tokens.add("provider-token-0123456789")
    monkeypatch.delenv("PASQAL_USERNAME")
    monkeypatch.delenv("PASQAL_PASSWORD")
    cloud = make_cloud(token_provider=StaticToken("provider-token-0123456789"))
    (m,) = cloud.run([build(cloud.fetch_device(), PAIR)], shots=20)
    assert sum(m.counts[0].values()) == 20
    assert cloud_server.count("POST", "/oauth/token") == 0
    blob = pickle.dumps(cloud)
    assert b"provider-token" not in blob and "provider-token" not in repr(cloud)
    with pytest.raises(BackendError, match="token providers are not pickled"):
        pickle.loads(blob).run([build(cloud.fetch_device(), TRIANGLE)], shots=20)  # must log in to send it


def test_missing_or_exposed_credentials_are_refused(
    make_cloud: Any, cloud_env: Path, cloud_server: FakePasqalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PASQAL_USERNAME")
    monkeypatch.delenv("PASQAL_PASSWORD")
    with pytest.raises(BackendError, match="no Pasqal cloud credentials: set PASQAL_USERNAME"):
        make_cloud().fetch_device()
    config = cloud_env / "pasqal.toml"
    config.write_text(f'username = "{cloud_server.username}"\npassword = "{cloud_server.password}"\n')
    monkeypatch.setenv("QGNN_PASQAL_CONFIG", str(config))
    config.chmod(0o644)
    with pytest.raises(BackendError, match="chmod 600") as err:
        make_cloud().fetch_device()
    assert cloud_server.password not in str(err.value)
    config.chmod(0o600)
    assert make_cloud().fetch_device().name == "Fresnel"
    config.write_text('username = "x"\npasword = "typo"\n')
    with pytest.raises(BackendError, match="unknown keys \\['pasword'\\]"):
        make_cloud().fetch_device()


def test_login_source_says_where_the_login_comes_from_never_what_it_is(
    cloud_env: Path,
    cloud_server: FakePasqalCloud,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from qgnn.backends.pasqal.credentials import resolve_login

    caplog.set_level(logging.DEBUG)
    assert login_source() == "environment" == resolve_login(None).source
    monkeypatch.delenv("PASQAL_PASSWORD")
    assert login_source() is None  # a username alone is no login
    config = cloud_env / "pasqal.toml"
    config.write_text(f'username = "{cloud_server.username}"\npassword = "{cloud_server.password}"\n')
    config.chmod(0o600)
    monkeypatch.setenv("QGNN_PASQAL_CONFIG", str(config))
    assert login_source() == f"config file {config}" == resolve_login(None).source
    monkeypatch.setenv("PASQAL_PASSWORD", "from-the-environment")
    assert login_source() == "environment"  # the environment comes first, as when logging in
    monkeypatch.delenv("PASQAL_PASSWORD")
    config.chmod(0o644)
    with pytest.raises(BackendError, match="chmod 600") as err:
        login_source()
    out, errout = capfd.readouterr()
    for text in (str(err.value), caplog.text, out, errout):
        assert cloud_server.password not in text and cloud_server.username not in text


# ---------------------------------------------------------------------- ledger


def test_ledger_is_private_and_transactional(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "sub" / "jobs.sqlite")
    assert ledger.jobs() == []
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600
    with pytest.raises(RuntimeError, match="boom"), ledger.transaction() as tx:
        tx.record_sequence("h" * 64, "{}", ["q0"])
        tx.add_submission("EMU_SV", ACCOUNT, [PlannedJob("h" * 64, 10, 0, 10)])
        raise RuntimeError("boom")
    assert ledger.jobs() == [] and ledger.submissions() == []  # rolled back as a whole
    with ledger.transaction() as tx:
        tx.record_sequence("h" * 64, "{}", ["q0"])
        sid = tx.add_submission("EMU_SV", ACCOUNT, [PlannedJob("h" * 64, 10, 0, 10)])
    with (
        pytest.raises(BackendError),
        ledger.transaction() as tx,
    ):  # one active job per (sequence, device, shots, part)
        tx.add_submission("EMU_SV", ACCOUNT, [PlannedJob("h" * 64, 10, 0, 10)])
    ledger.mark_submitted(sid, "batch-1", [(ledger.jobs()[0].row_id, "job-1", "PENDING")])
    ledger.update_jobs([("job-1", "DONE", None, {"1": 6, "0": 4})], endpoint=ACCOUNT.endpoint)
    (job,) = ledger.jobs()
    assert job.counts == {"0": 4, "1": 6} and job.batch_id == "batch-1" and not job.superseded
    assert ledger.summary()[0]["statuses"] == {"DONE": 1}


def test_ledger_reuses_jobs_only_on_their_account(tmp_path: Path) -> None:
    ledger = JobLedger(tmp_path / "jobs.sqlite")
    other_project, other_server = CloudAccount("http://x/", "proj-y"), CloudAccount("http://y", "proj-x")
    assert other_project.endpoint == "http://x"  # one spelling per URL
    with ledger.transaction() as tx:
        tx.record_sequence("h" * 64, "{}", ["q0"])
        tx.add_submission("EMU_SV", ACCOUNT, [PlannedJob("h" * 64, 10, 0, 10)])
        assert tx.active_jobs("h" * 64, "EMU_SV", 10, ACCOUNT)
        for account in (other_project, other_server):
            assert tx.active_jobs("h" * 64, "EMU_SV", 10, account) == []
            tx.add_submission("EMU_SV", account, [PlannedJob("h" * 64, 10, 0, 10)])  # no conflict
    rows = ledger.jobs()
    for row, job_id in zip(rows, ["j-1", "j-2", "j-1"], strict=True):
        ledger.mark_submitted(row.submission_id, "b", [(row.row_id, job_id, "RUNNING")])
    ledger.update_jobs([("j-1", "DONE", None, {"1": 10})], endpoint="http://y")  # that server's j-1
    assert [j.counts for j in ledger.jobs()] == [None, None, {"1": 10}]
    (job,) = ledger.jobs(account=other_project)
    assert (job.endpoint, job.project_id, job.job_id) == ("http://x", "proj-y", "j-2")
    assert [s.project_id for s in ledger.submissions(account=other_server)] == ["proj-x"]
    with pytest.raises(BackendError, match="UNIQUE"):  # a job id means one job per server
        ledger.mark_submitted(rows[1].submission_id, "b", [(rows[1].row_id, "j-1", "RUNNING")])
    with pytest.raises(InvalidInputError, match="non-empty project_id"):
        CloudAccount("http://x", "")


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sequences (seq_hash TEXT PRIMARY KEY, abstract_repr TEXT NOT NULL, qubit_ids TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE submissions (submission_id TEXT PRIMARY KEY, device TEXT NOT NULL, endpoint TEXT NOT NULL,
    batch_id TEXT, state TEXT NOT NULL, owner_pid INTEGER NOT NULL, owner_host TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE jobs (row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id TEXT NOT NULL REFERENCES submissions(submission_id),
    seq_hash TEXT NOT NULL REFERENCES sequences(seq_hash), device TEXT NOT NULL, shots INTEGER NOT NULL,
    part INTEGER NOT NULL, runs INTEGER NOT NULL, batch_id TEXT, job_id TEXT UNIQUE, status TEXT NOT NULL,
    message TEXT, counts TEXT, superseded INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
    submitted_at TEXT, finished_at TEXT, updated_at TEXT NOT NULL);
CREATE UNIQUE INDEX jobs_active ON jobs (seq_hash, device, shots, part) WHERE superseded = 0;
CREATE INDEX jobs_batch ON jobs (batch_id);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO sequences VALUES ('h', '{}', '["q0"]', '2024-01-01T00:00:00+00:00');
INSERT INTO submissions VALUES ('qgnn-old', 'FRESNEL', 'https://apis.pasqal.cloud/core-fast/', 'b-1',
    'SUBMITTED', 1, 'host', '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00');
INSERT INTO jobs VALUES (7, 'qgnn-old', 'h', 'FRESNEL', 10, 0, 10, 'b-1', 'j-1', 'DONE', NULL, '{"1": 10}',
    0, '2024-01-01T00:00:00+00:00', NULL, NULL, '2024-01-01T00:00:00+00:00');
"""


def test_ledger_of_schema_1_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_1)
    ledger = JobLedger(path)
    (job,) = ledger.jobs()  # its endpoint comes from its submission; schema 1 recorded no project
    assert (job.row_id, job.endpoint, job.project_id, job.counts) == (
        7,
        "https://apis.pasqal.cloud/core-fast",
        None,
        {"1": 10},
    )
    pasqal = CloudAccount("https://apis.pasqal.cloud/core-fast", "any-project")
    with ledger.transaction() as tx:  # reused on its endpoint, whatever the project; nowhere else
        assert [r.row_id for r in tx.active_jobs("h", "FRESNEL", 10, pasqal)] == [7]
        assert tx.active_jobs("h", "FRESNEL", 10, CloudAccount("http://127.0.0.1:1", "any-project")) == []
        tx.add_submission("FRESNEL", ACCOUNT, [PlannedJob("h", 10, 0, 10)])
    assert ledger.submissions(account=pasqal)[0].project_id is None
    assert [j.row_id for j in JobLedger(path).jobs()] == [7, 8]  # reopened: nothing migrated twice
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("2",)
        conn.execute("UPDATE meta SET value='9'")
    with pytest.raises(BackendError, match="schema version 9.*keep the old file"):
        JobLedger(path).jobs()


def test_intent_of_a_live_process_is_left_alone(tmp_path: Path) -> None:
    import socket
    from datetime import UTC, datetime, timedelta

    from qgnn.backends.ledger import SubmissionRecord

    now = datetime.now(UTC)
    live = SubmissionRecord(
        "qgnn-x",
        "EMU_SV",
        "http://x",
        None,
        "SUBMITTING",
        os.getppid(),
        socket.gethostname(),
        now.isoformat(),
    )
    assert live.owner_alive()  # its batch-creation request may still be in flight: do not resend
    assert not dataclasses.replace(live, owner_pid=os.getpid()).owner_alive()  # our own: settle it
    assert not dataclasses.replace(live, created_at=(now - timedelta(hours=1)).isoformat()).owner_alive()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert not dataclasses.replace(live, owner_pid=int(dead.stdout)).owner_alive()
    # another host's process cannot be checked from here: in flight until stale, whatever its pid
    foreign = dataclasses.replace(live, owner_host=f"not-{socket.gethostname()}", owner_pid=int(dead.stdout))
    assert foreign.owner_alive()
    assert dataclasses.replace(foreign, owner_pid=os.getpid()).owner_alive()
    assert not dataclasses.replace(foreign, created_at=(now - timedelta(hours=1)).isoformat()).owner_alive()
    assert not foreign.owner_alive(stale_after_s=-1.0)


def test_intent_of_another_host_is_not_resent_until_stale(
    make_cloud: Any, cloud_server: FakePasqalCloud
) -> None:
    """A ledger shared with another host: its in-flight intent is neither resent nor duplicated."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from qgnn.backends.pasqal.validation import prepare

    cloud = make_cloud()
    seq = build(cloud.fetch_device(), PAIR)
    p = prepare(seq, cloud.fetch_device(), mimic_qpu=True, label="pair")
    with cloud.ledger.transaction() as tx:
        tx.record_sequence(p.seq_hash, p.abstract_repr, p.qubit_ids)
        sid = tx.add_submission("EMU_SV", cloud.account, [PlannedJob(p.seq_hash, 30, 0, 30)])
    with sqlite3.connect(cloud.ledger.path) as conn:
        conn.execute("UPDATE submissions SET owner_host='another-host' WHERE submission_id=?", (sid,))
    cloud.refresh()
    with pytest.raises(CloudJobError, match="SUBMITTING"):
        cloud.run([seq], shots=30)
    assert cloud_server.count("POST", "/api/v1/batches") == 0  # the other host may be sending it
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="milliseconds")
    with sqlite3.connect(cloud.ledger.path) as conn:
        conn.execute("UPDATE submissions SET created_at=? WHERE submission_id=?", (old, sid))
    (m,) = cloud.run([seq], shots=30)  # stale: settled by its tag (none found), then sent once
    assert cloud_server.count("POST", "/api/v1/batches") == 1 and sum(m.counts[0].values()) == 30


# ---------------------------------------------------------------------- command line


def cli(*argv: str) -> int:
    from qgnn.cli import cloud as cloud_cli

    parser = argparse.ArgumentParser(prog="qgnn")
    cloud_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


def test_cli_submit_status_fetch_cancel_resume(
    cloud_server: FakePasqalCloud, cloud_env: Path, fresnel: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cloud_env / "seqs.json"
    path.write_text(
        json.dumps([build(fresnel, PAIR).to_abstract_repr(), build(fresnel, TRIANGLE).to_abstract_repr()])
    )
    fast = ["--poll-interval", "0.02"]
    cloud_server.hold_jobs()
    assert cli("cloud", "submit", "--sequences", str(path), "--device", "EMU_SV", "--shots", "40", *fast) == 0
    assert "2 of 2 sequences submitted" in capsys.readouterr().out
    assert cli("cloud", "status") == 0
    (batch_id,) = cloud_server.batches
    assert batch_id in capsys.readouterr().out
    assert cli("cloud", "fetch", *fast) == 3  # still running
    cloud_server.release_jobs()
    assert cli("cloud", "fetch", "--timeout", "30", *fast) == 0
    assert "DONE=2" in capsys.readouterr().out
    assert (
        cli(
            "cloud",
            "submit",
            "--sequences",
            str(path),
            "--device",
            "EMU_SV",
            "--shots",
            "40",
            "--wait",
            *fast,
        )
        == 0
    )
    assert cloud_server.count("POST", "/api/v1/batches") == 1
    cloud_server.hold_jobs()
    assert cli("cloud", "submit", "--sequences", str(path), "--device", "EMU_SV", "--shots", "50", *fast) == 0
    (second,) = set(cloud_server.batches) - {batch_id}
    assert cli("cloud", "cancel", "--batch", second, *fast) == 0
    assert f"asked the cloud to cancel batch {second}" in capsys.readouterr().out
    assert cli("cloud", "resume", "--timeout", "5", *fast) == 0
    assert "CANCELED=2" in capsys.readouterr().out


def test_cli_through_the_qgnn_entry_point(
    cloud_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import qgnn.cli

    monkeypatch.setattr(qgnn.cli, "COMMAND_MODULES", ("cloud",))  # as the lead will register it
    assert qgnn.cli.main(["cloud", "status"]) == 0
    assert "no recorded jobs" in capsys.readouterr().out
    assert qgnn.cli.main(["cloud", "cancel", "--batch", "no-such-batch"]) == 2
    assert "batch no-such-batch is not in the job ledger" in capsys.readouterr().err


def test_cli_submit_dataset(
    cloud_server: FakePasqalCloud, cloud_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli(
        "cloud",
        "submit",
        "--dataset",
        "PTC_FM",
        "--max-nodes",
        "5",
        "--limit",
        "2",
        "--device",
        "EMU_MPS",
        "--shots",
        "20",
        "--wait",
        "--timeout",
        "60",
        "--poll-interval",
        "0.02",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 of 2 sequences measured on pasqal:EMU_MPS" in out
    assert len(cloud_server.jobs) == 2


def test_graphs_without_an_integer_index_are_named_by_position(fresnel: Any) -> None:
    import networkx as nx

    from qgnn.backends.pasqal.inputs import graph_sequences
    from qgnn.data import graph_index
    from qgnn.features import FeaturePipeline

    graphs = [nx.path_graph(2) for _ in range(5)]
    for g, index in zip(graphs, ["abc", None, np.int64(7), True, 3.0], strict=True):
        g.graph["index"] = index
    assert [graph_index(g, k) for k, g in enumerate(graphs)] == [0, 1, 7, 3, 4]
    pipeline = FeaturePipeline(device=fresnel, cache_dir=False, progress=False)
    found = graph_sequences([*graphs[:3], nx.complete_graph(40)], pipeline)
    assert found.labels == ["graph 0", "graph 1", "graph 7"]
    assert len(found.skipped) == 1 and found.skipped[0].startswith("graph 3: ")
    assert all(s.device == fresnel for s in found.sequences)


def test_cloud_submit_then_training_on_the_same_graphs_pays_nothing_more(
    cloud_server: FakePasqalCloud, cloud_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`qgnn cloud submit --dataset` and `FeaturePipeline(backend=PasqalCloud)` send the same sequences."""
    import itertools

    from qgnn.backends.pasqal.validation import sequence_hash
    from qgnn.data import load_dataset
    from qgnn.features import FeaturePipeline

    argv = ["--dataset", "PTC_FM", "--max-nodes", "7", "--limit", "6", "--device", "EMU_SV"]
    assert cli("cloud", "submit", *argv, "--shots", "30", "--poll-interval", "0.02") == 0
    assert "6 of 6 sequences submitted" in capsys.readouterr().out
    assert cloud_server.count("POST", "/api/v1/batches") == 1 and len(cloud_server.jobs) == 6
    submitted = {sequence_hash(j.sequence) for j in cloud_server.jobs.values()}

    graphs = list(itertools.islice(load_dataset("PTC_FM", max_nodes=7), 6))
    assert max(g.number_of_nodes() for g in graphs) <= 7
    cloud = PasqalCloud("EMU_SV", shots=30, poll_interval_s=0.02, timeout_s=60.0, retry=FAST)
    pipeline = FeaturePipeline(backend=cloud, cache_dir=False, progress=False)  # rebuilt from scratch
    results = pipeline.run(graphs)
    assert all(r.ok for r in results), [r.error for r in results]
    assert cloud_server.count("POST", "/api/v1/batches") == 1 and len(cloud_server.jobs) == 6  # none new
    used = {job for r in results for job in r.measurement.settings["job_ids"]}
    assert used == set(cloud_server.jobs)  # every feature comes from a job the command paid for
    rebuilt = {cloud.validate(p.sequence).to_abstract_repr() for p in pipeline.build_sequences(graphs)}
    assert {sequence_hash(a) for a in rebuilt} == submitted


# ---------------------------------------------------------------------- the FeaturePipeline over the cloud


def test_pipeline_sends_one_batch_on_the_fetched_device_and_caches(
    make_cloud: Any, cloud_server: FakePasqalCloud, cloud_env: Path
) -> None:
    import networkx as nx

    from qgnn.backends import EmuSV
    from qgnn.features import FeaturePipeline

    graphs = []
    for k, g in enumerate([nx.path_graph(2), nx.path_graph(3), nx.cycle_graph(3)]):
        g.graph["index"] = k
        graphs.append(g)
    shots = 400
    pipeline = FeaturePipeline(
        backend=make_cloud("EMU_SV"), shots=shots, cache_dir=cloud_env / "c", progress=False
    )
    results = pipeline.run(graphs)
    assert all(r.ok for r in results), [r.error for r in results]
    assert cloud_server.count("POST", "/api/v1/batches") == 1  # the whole dataset in one batch
    assert pipeline.device.name == "Fresnel"  # embedded on the fetched specs, not AnalogDevice
    for r in results:
        assert r.embedding.register.layout is not None  # a register from a layout, as the QPU requires
        seq = ConstantDrive().build(r.embedding.register, pipeline.device)
        (local,) = EmuSV().run([seq])
        assert_within_shot_noise(r.measurement.occupations[0], local.occupations[0], shots)
    again = FeaturePipeline(
        backend=make_cloud("EMU_SV"), shots=shots, cache_dir=cloud_env / "c", progress=False
    )
    assert all(r.cached for r in again.run(graphs))
    assert cloud_server.count("POST", "/api/v1/batches") == 1  # nothing sent twice


def test_pipeline_cache_follows_the_backend_default_shots(
    make_cloud: Any, cloud_server: FakePasqalCloud, cloud_env: Path
) -> None:
    import networkx as nx

    from qgnn.features import FeaturePipeline

    graphs = [nx.path_graph(2), nx.path_graph(3)]
    for k, g in enumerate(graphs):
        g.graph["index"] = k

    def run(backend_shots: int) -> list[Any]:
        pipeline = FeaturePipeline(  # shots=None: the backend's default shots are used
            backend=make_cloud("EMU_SV", shots=backend_shots), cache_dir=cloud_env / "c", progress=False
        )
        results = pipeline.run(graphs)
        assert all(r.ok for r in results), [r.error for r in results]
        return results

    assert [sum(r.measurement.counts[0].values()) for r in run(100)] == [100, 100]
    assert cloud_server.count("POST", "/api/v1/batches") == 1
    results = run(200)  # not the cached 100-shot features
    assert not any(r.cached for r in results)
    assert [sum(r.measurement.counts[0].values()) for r in results] == [200, 200]
    assert cloud_server.count("POST", "/api/v1/batches") == 2
    assert all(r.cached for r in run(200)) and cloud_server.count("POST", "/api/v1/batches") == 2


def test_train_command_runs_through_the_cloud(
    cloud_env: Path, cloud_server: FakePasqalCloud, capsys: Any
) -> None:
    from qgnn.cli import main

    out = cloud_env / "results"
    code = main(
        [
            "train",
            "--dataset",
            "PTC_FM",
            "--max-nodes",
            "4",
            "--limit",
            "12",
            "--folds",
            "2",
            "--repeats",
            "1",
            "--model",
            "qek-svm",
            "--backend",
            "pasqal:EMU_SV",
            "--shots",
            "50",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert cloud_server.count("POST", "/api/v1/batches") == 1
    assert "qek-svm" in capsys.readouterr().out
    assert json.loads((out / "PTC_FM-results.json").read_text())["config"]["backend"] == "pasqal:EMU_SV"


def test_cli_counts_only_the_jobs_of_the_cloud_it_talks_to(
    cloud_server: FakePasqalCloud,
    cloud_env: Path,
    fresnel: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = cloud_env / "seqs.json"
    path.write_text(json.dumps([build(fresnel, PAIR).to_abstract_repr()]))
    fast = ["--poll-interval", "0.02"]
    cloud_server.hold_jobs()  # the first cloud's job stays unfinished
    assert cli("cloud", "submit", "--sequences", str(path), "--device", "EMU_SV", *fast) == 0
    assert cli("cloud", "fetch", *fast) == 3
    other = FakePasqalCloud(seed=7).start()
    try:
        monkeypatch.setenv("QGNN_PASQAL_ENDPOINT", other.url)
        monkeypatch.setenv("QGNN_PASQAL_AUTH_ENDPOINT", other.token_url)
        capsys.readouterr()
        assert cli("cloud", "fetch", *fast) == 0  # nothing unfinished on this account
        assert cli("cloud", "resume", "--timeout", "5", *fast) == 0
        assert other.count("GET", "/api/v1/batches") == 0 and other.count("POST", "/api/v1/batches") == 0
        assert cloud_server.url in capsys.readouterr().out  # the summary names each batch's endpoint
    finally:
        other.stop()
