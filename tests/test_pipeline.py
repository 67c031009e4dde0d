"""FeaturePipeline: physics through the whole chain, caching, failures, parallel workers."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from pulser.devices import AnalogDevice
from scipy.linalg import expm

from qgnn.backends import EmuSV
from qgnn.errors import QgnnError
from qgnn.features import (
    CacheCorruptionWarning,
    FeaturePipeline,
    excitation_histogram,
    excitation_matrix,
    node_correlations,
    node_occupations,
)
from qgnn.pulses import ConstantDrive


def _pair_reference(distance_um: float, omega: float, duration_ns: float) -> np.ndarray:
    """Exact P(0, 1, 2 excitations) of two atoms under a constant drive (numpy expm, 4×4)."""
    c6 = AnalogDevice.interaction_coeff
    sx, n, eye = np.array([[0, 1], [1, 0]]), np.diag([0.0, 1.0]), np.eye(2)
    h = omega / 2 * (np.kron(sx, eye) + np.kron(eye, sx)) + c6 / distance_um**6 * np.kron(n, n)
    psi = expm(-1j * h * duration_ns / 1000) @ np.array([1, 0, 0, 0], dtype=complex)
    p = np.abs(psi) ** 2
    return np.array([p[0], p[1] + p[2], p[3]])


def _graph(g: nx.Graph, index: int) -> nx.Graph:
    g = nx.convert_node_labels_to_integers(g)
    g.graph["index"] = index
    return g


@pytest.fixture
def pipeline(tmp_path) -> FeaturePipeline:
    return FeaturePipeline(AnalogDevice, ConstantDrive(), EmuSV(), cache_dir=tmp_path, progress=False)


def test_two_atom_graph_matches_closed_form_through_the_whole_chain(pipeline: FeaturePipeline) -> None:
    (result,) = pipeline.run([_graph(nx.path_graph(2), 0)])
    assert result.ok and result.error is None
    positions = np.array(list(result.embedding.register.qubits.values()), dtype=float)
    distance = float(np.linalg.norm(positions[0] - positions[1]))
    schedule = ConstantDrive()
    expected = _pair_reference(distance, schedule.amplitude, schedule.duration)
    np.testing.assert_allclose(result.measurement.excitation_distribution[-1], expected, atol=1e-4)


def test_rerun_recomputes_nothing_and_gives_identical_features(pipeline: FeaturePipeline) -> None:
    graphs = [_graph(nx.path_graph(4), 0), _graph(nx.cycle_graph(5), 1), _graph(nx.star_graph(3), 2)]
    first = pipeline.run(graphs)
    assert pipeline.last_run_seconds["computed"] == 3
    second = pipeline.run(graphs)
    assert pipeline.last_run_seconds["computed"] == 0
    assert all(r.cached for r in second)
    np.testing.assert_array_equal(excitation_matrix(first), excitation_matrix(second))


def test_corrupted_cache_entry_is_recomputed_not_returned(pipeline: FeaturePipeline, tmp_path) -> None:
    graph = _graph(nx.cycle_graph(4), 3)
    (first,) = pipeline.run([graph])
    for entry in (tmp_path / "measurements").rglob("*.bin"):
        entry.write_bytes(entry.read_bytes()[:-10])
    with pytest.warns(CacheCorruptionWarning):
        (again,) = pipeline.run([graph])
    assert not again.cached
    assert pipeline.last_run_seconds["computed"] == 1
    np.testing.assert_allclose(again.measurement.probabilities, first.measurement.probabilities)


def test_failures_are_listed_with_reasons_in_input_order(pipeline: FeaturePipeline) -> None:
    star = _graph(nx.star_graph(6), 11)  # K1,6: no unit-disk embedding exists
    results = pipeline.run([_graph(nx.path_graph(3), 10), star, "not a graph", _graph(nx.path_graph(2), 12)])
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].index == 11 and "NotEmbeddable" in str(results[1].error)
    assert "networkx" in str(results[2].error)
    assert results[3].index == 12


def test_workers_give_the_same_features_as_one_process(tmp_path) -> None:
    graphs = [_graph(nx.path_graph(k), k) for k in (3, 4, 5, 6)]
    serial = FeaturePipeline(cache_dir=False, progress=False).run(graphs)
    parallel = FeaturePipeline(cache_dir=False, n_workers=2, progress=False).run(graphs)
    np.testing.assert_allclose(excitation_matrix(serial), excitation_matrix(parallel), atol=1e-12)


def test_node_feature_maps_follow_node_order(pipeline: FeaturePipeline) -> None:
    graph = _graph(nx.path_graph(5), 4)
    (result,) = pipeline.run([graph])
    nodes = list(graph.nodes)
    occ = node_occupations(result, nodes)
    assert occ.shape == (5, 1)
    assert ((occ >= 0) & (occ <= 1)).all()
    corr = node_correlations(result, nodes)
    assert corr.shape == (1, 5, 5)
    np.testing.assert_allclose(corr[0], corr[0].T, atol=1e-12)
    np.testing.assert_allclose(np.diag(corr[0]), occ[:, 0] - occ[:, 0] ** 2, atol=1e-12)
    reversed_occ = node_occupations(result, nodes[::-1])
    np.testing.assert_array_equal(reversed_occ, occ[::-1])
    hist = excitation_histogram(result, 8)
    assert hist.shape == (1, 8) and hist[0, 6:].sum() == 0 and hist.sum() == pytest.approx(1.0)


_KILLABLE_RUN = """
import sys, networkx as nx
from qgnn.backends import EmuSV
from qgnn.features import FeaturePipeline
graphs = []
for k in range(3, 11):
    g = nx.path_graph(k)
    g.graph["index"] = k
    graphs.append(g)
# emu-sv (~0.1-0.3 s a graph here), one process: slow enough to be killed part-way
FeaturePipeline(backend=EmuSV(), n_workers=1, cache_dir=sys.argv[1], progress=False).run(graphs)
"""


def test_killed_run_resumes_where_it_stopped(tmp_path) -> None:
    """SIGKILL a featurisation mid-run: the rerun computes only what was not cached yet."""
    import signal
    import subprocess
    import sys
    import time

    cache = tmp_path / "cache"

    def entries() -> int:  # finished entries only, not a temporary file being written
        return sum(not p.name.startswith(".tmp-") for p in cache.glob("measurements/*/*.bin"))

    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE_RUN, str(cache)])
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and entries() < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = entries()
    assert 2 <= done_before < 8, "the run must have been killed part-way"
    graphs = []
    for k in range(3, 11):
        g = nx.path_graph(k)
        g.graph["index"] = k
        graphs.append(g)
    pipeline = FeaturePipeline(backend=EmuSV(), n_workers=1, cache_dir=cache, progress=False)
    results = pipeline.run(graphs)
    assert all(r.ok for r in results)
    assert pipeline.last_run_seconds["computed"] == 8 - done_before
    assert sum(r.cached for r in results) == done_before


def test_dask_cluster_gives_the_same_features(tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    graphs = [_graph(nx.path_graph(k), k) for k in (3, 4, 5)]
    local = FeaturePipeline(cache_dir=False, progress=False).run(graphs)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        remote_pipe = FeaturePipeline(cache_dir=tmp_path, executor=f"dask://{address}", progress=False)
        remote = remote_pipe.run(graphs)
        assert remote_pipe.last_run_seconds["computed"] == 3
    np.testing.assert_allclose(excitation_matrix(local), excitation_matrix(remote), atol=1e-12)
    again = FeaturePipeline(cache_dir=tmp_path, progress=False)
    again.run(graphs)
    assert again.last_run_seconds["computed"] == 0  # results were gathered into the local cache


def test_a_pool_thread_runs_a_graph_with_the_workers_thread_count() -> None:
    """Dask runs tasks in pool threads; numba's thread count is per thread, so each task sets it."""
    import threading

    import numba

    from qgnn.features.pipeline import _Task, _work_in_pool_thread

    pipe = FeaturePipeline(cache_dir=False, progress=False)
    task = _Task(0, 0, nx.path_graph(3), None, pipe._config)
    seen: list[tuple[int, bool]] = []

    def pool_thread() -> None:
        outcome = _work_in_pool_thread(task, 1)
        seen.append((numba.get_num_threads(), outcome.measurement is not None))

    thread = threading.Thread(target=pool_thread)
    thread.start()
    thread.join()
    assert seen == [(1, True)]


@pytest.mark.parametrize(
    "change",
    [
        {"schedule": ConstantDrive(amplitude=3.0)},
        {"schedule": ConstantDrive(duration=500)},
        {"evaluation_times": (0.5, 1.0)},
        {"shots": 50},
        {"backend": EmuSV(dt=5.0)},
        {"embed_seed": 1},
    ],
    ids=["amplitude", "duration", "times", "shots", "backend-setting", "seed"],
)
def test_every_setting_that_changes_features_changes_the_cache_key(tmp_path, change: dict) -> None:
    graph = _graph(nx.cycle_graph(6), 0)
    base = {"schedule": ConstantDrive(), "backend": EmuSV(), "cache_dir": tmp_path, "progress": False}
    FeaturePipeline(**base).run([graph])
    changed = FeaturePipeline(**{**base, **change})
    assert changed.fingerprint() != FeaturePipeline(**base).fingerprint()
    changed.run([graph])
    assert changed.last_run_seconds["computed"] == 1, "a stale cached result was returned"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "emu-sv"}, "Backend"),
        ({"schedule": "constant"}, "schedule"),
        ({"device": "AnalogDevice"}, "device"),
        ({"n_workers": 0}, "n_workers"),
        ({"embed_seed": "x"}, "embed_seed"),
        ({"threads_per_worker": 0}, "threads_per_worker"),
        ({"executor": "spark://x"}, "executor"),
        ({"shots": 0}, "shots"),
        ({"evaluation_times": ()}, "evaluation_times"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(QgnnError, match=message):
        FeaturePipeline(**kwargs)


def test_run_rejects_a_single_graph(pipeline: FeaturePipeline) -> None:
    with pytest.raises(QgnnError, match="run_one"):
        pipeline.run(nx.path_graph(3))


def test_duplicate_molecules_keep_their_own_index(pipeline: FeaturePipeline) -> None:
    first, second = _graph(nx.path_graph(4), 1), _graph(nx.path_graph(4), 2)
    results = pipeline.run([first, second])
    assert [r.index for r in results] == [1, 2]
    assert [r.embedding.index for r in results] == [1, 2]  # the cached embedding is not graph 1's


def test_unreadable_cached_embedding_is_recomputed(pipeline: FeaturePipeline, tmp_path) -> None:
    from qgnn.features.cache import BlobCache

    graph = _graph(nx.path_graph(3), 0)
    pipeline.run([graph])
    store = BlobCache(tmp_path, "embeddings")
    (entry,) = (tmp_path / "embeddings").rglob("*.bin")
    store.put(entry.stem, b"not a pickle")  # checksum valid, content unreadable
    with pytest.warns(CacheCorruptionWarning, match="unreadable"):
        (again,) = FeaturePipeline(cache_dir=tmp_path, backend=EmuSV(), progress=False).run([graph])
    assert again.ok


def test_relabelled_graph_gets_the_same_features_and_shares_the_cache(pipeline: FeaturePipeline) -> None:
    """Isomorphic graphs are embedded in one canonical order: identical registers, one computation."""
    graph = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (3, 4), (4, 5), (1, 6)])
    nx.set_node_attributes(graph, {n: {"label": n % 2} for n in graph})
    graph.graph["index"] = 0
    perm = {0: "a", 1: "f", 2: "c", 3: "e", 4: "b", 5: "g", 6: "d"}
    relabelled = nx.relabel_nodes(graph, perm)
    relabelled.graph["index"] = 1
    (first,) = pipeline.run([graph])
    (second,) = pipeline.run([relabelled])
    assert pipeline.last_run_seconds["computed"] == 0  # the relabelled graph is the first one's cache entry
    assert second.cached and second.index == 1
    np.testing.assert_array_equal(first.measurement.probabilities, second.measurement.probabilities)
    nodes = list(graph.nodes)
    np.testing.assert_array_equal(
        node_occupations(first, nodes), node_occupations(second, [perm[n] for n in nodes])
    )
    assert set(second.embedding.node_ids) == set(perm.values())  # named with the caller's nodes


def test_identical_graphs_in_one_run_are_computed_once(pipeline: FeaturePipeline) -> None:
    """One embedding per embedding key, one run per sequence; a failed embedding is redone per graph."""
    graph = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (3, 4)])
    nx.set_node_attributes(graph, {n: {"label": n % 2} for n in graph})
    graph.graph["index"] = 0
    perm = {0: "a", 1: "e", 2: "c", 3: "d", 4: "b"}
    relabelled = nx.relabel_nodes(graph, perm)  # the same embedding key
    relabelled.graph["index"] = 1
    charged = graph.copy()  # another embedding key (node attributes), the same sequence
    nx.set_node_attributes(charged, {0: {"label": 0, "charge": 1}})
    charged.graph["index"] = 2
    longer = nx.path_graph(5)  # another sequence
    longer.graph["index"] = 3
    stars = []
    for index, hub in ((4, "hub"), (5, "centre")):
        star = nx.relabel_nodes(nx.star_graph(6), {0: hub, **{k: f"{hub}-leaf{k}" for k in range(1, 7)}})
        star.graph["index"] = index
        stars.append(star)
    results = pipeline.run([graph, relabelled, charged, longer, *stars])
    assert pipeline.last_run_seconds["computed"] == 4  # graph, longer, and each failing star
    first, second, third, fourth, star_a, star_b = results
    assert [r.index for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r.embedding.index for r in results[:4]] == [0, 1, 2, 3]
    assert set(second.embedding.node_ids) == set(perm.values())
    for same in (second, third):
        np.testing.assert_array_equal(first.measurement.probabilities, same.measurement.probabilities)
    nodes = list(graph.nodes)
    np.testing.assert_array_equal(
        node_occupations(first, nodes), node_occupations(second, [perm[n] for n in nodes])
    )
    assert not np.array_equal(fourth.measurement.probabilities, first.measurement.probabilities)
    assert "hub" in str(star_a.error) and "centre" in str(star_b.error) and "hub" not in str(star_b.error)


def test_failure_names_the_callers_nodes(pipeline: FeaturePipeline) -> None:
    star = nx.relabel_nodes(nx.star_graph(6), {0: "hub", **{k: f"leaf{k}" for k in range(1, 7)}})
    (result,) = pipeline.run([star])
    assert not result.ok and "hub" in str(result.error)


def test_worker_pools_start_the_largest_graphs_first() -> None:
    """The longest runs go first, so that a big graph does not start when the other workers are done."""
    from types import SimpleNamespace

    from qgnn.features.pipeline import _largest_first

    sizes = [3, 12, 5, 12, 8]
    tasks = [SimpleNamespace(position=k, graph=nx.path_graph(n)) for k, n in enumerate(sizes)]
    ordered = _largest_first(tasks)  # type: ignore[arg-type]
    assert [t.graph.number_of_nodes() for t in ordered] == [12, 12, 8, 5, 3]
    assert [t.position for t in ordered][:2] == [1, 3]  # ties keep their order
