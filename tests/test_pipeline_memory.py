"""The pipeline and the Subspace memory budget: over-share graphs run alone, over-budget graphs fail alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import networkx as nx
import pytest

from qgnn.backends import Subspace
from qgnn.backends.subspace import memory
from qgnn.embedding import embed
from qgnn.features import FeaturePipeline
from qgnn.pulses import ConstantDrive


def big_and_small() -> list[nx.Graph]:
    big = nx.cycle_graph(10)  # sparse: a large blockade-free basis
    big.graph["index"] = 0
    small = nx.path_graph(3)
    small.graph["index"] = 1
    return [big, small]


def needed_bytes(graph: nx.Graph) -> int:
    sequence = ConstantDrive().build(embed(graph).register, FeaturePipeline(progress=False).device)
    return Subspace().memory_estimate(sequence).bytes


def test_a_graph_over_a_workers_share_runs_alone_with_the_whole_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs = big_and_small()
    need = needed_bytes(graphs[0])
    # 2 cores: a worker's share is about half of what the graphs need, running alone gives them enough
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(memory, "machine_memory", lambda: int(need / memory.MEMORY_SHARE * 1.01))
    with pytest.raises(memory.MemoryBudgetError):
        Subspace().run([ConstantDrive().build(embed(graphs[0]).register, FeaturePipeline().device)])
    results = FeaturePipeline(n_workers=1, cache_dir=tmp_path, progress=False).run(graphs)
    assert [r.ok for r in results] == [True, True], [r.error for r in results]


@pytest.mark.parametrize(
    "fits", ["alone, with compact lists", "in a worker, with compact lists", "in a worker"]
)
def test_compact_lists_are_used_where_int32_lists_do_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fits: str
) -> None:
    graphs = big_and_small()
    sequence = ConstantDrive().build(embed(graphs[0]).register, FeaturePipeline().device)
    int32_need = Subspace(compact_lists=False).memory_estimate(sequence).bytes
    compact_need = Subspace(max_memory=int32_need - 1).memory_estimate(sequence).bytes
    assert compact_need < int32_need < 2 * compact_need
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)  # a worker's share: half the budget alone
    alone = {
        "alone, with compact lists": int32_need - 1,
        "in a worker, with compact lists": compact_need + int32_need,  # the exact compact size: ≥ the bound
        "in a worker": 2 * int32_need + 2,
    }[fits]
    monkeypatch.setattr(memory, "machine_memory", lambda: int(alone / memory.MEMORY_SHARE) + 1)
    pipeline = FeaturePipeline(n_workers=1, cache_dir=tmp_path, progress=False)
    big, small = pipeline.run(graphs)
    assert big.ok and small.ok, [big.error, small.error]
    assert big.measurement.settings["compact_lists"] is (fits != "in a worker")
    assert small.measurement.settings["compact_lists"] is False
    # the budget it ran with: the whole one alone, a worker's share in a worker
    share = memory.default_max_memory()
    assert (big.measurement.settings["memory_bytes"] > share) is fits.startswith("alone")


def test_a_graph_whose_search_would_end_over_a_workers_share_is_not_started_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its first cutoff fits the share, the cutoff its search plans to end at does not: run alone at once."""
    from qgnn.backends.subspace import planned_cutoff
    from qgnn.features.pipeline import _Task, _work

    graph = nx.cycle_graph(10)
    graph.graph["index"] = 0
    pipeline = FeaturePipeline(n_workers=1, cache_dir=tmp_path, progress=False)
    embedding = embed(graph)
    sequence = ConstantDrive().build(embedding.register, pipeline.device)
    planned = Subspace(compact_lists=False).memory_estimate(sequence).bytes
    first = Subspace(compact_lists=False, energy_cutoff=planned_cutoff(10) / 2**0.25)
    start_need = first.memory_estimate(sequence).bytes
    assert start_need < planned
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)
    share = (start_need + planned) // 2  # a worker's share fits the first cutoff only
    monkeypatch.setattr(memory, "machine_memory", lambda: int(2 * share / memory.MEMORY_SHARE) + 1)
    worker = Subspace(compact_lists=False)
    assert worker.memory_budget < planned
    config = dataclasses.replace(pipeline._config, backend=worker)
    task = _Task(0, 0, graph, embedding, config, alone_later=True)
    outcome = _work(task)
    assert outcome.deferred and outcome.measurement is None and outcome.error is None
    pipeline = FeaturePipeline(n_workers=1, cache_dir=tmp_path, progress=False, backend=worker)
    (result,) = pipeline.run([graph])
    assert result.ok and result.measurement.settings["memory_bytes"] > share


def test_a_graph_over_the_whole_budget_fails_alone_and_the_rest_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs = big_and_small()
    need_big, need_small = needed_bytes(graphs[0]), needed_bytes(graphs[1])
    assert need_small < need_big
    alone = (need_big + need_small) / 2  # the small graph fits when alone, the big one never
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(memory, "machine_memory", lambda: int(alone / memory.MEMORY_SHARE))
    big, small = FeaturePipeline(n_workers=1, cache_dir=tmp_path, progress=False).run(graphs)
    assert small.ok
    assert not big.ok and big.index == 0 and str(big.error).startswith("MemoryBudgetError: ")
    explicit = Subspace(max_memory=10**12)  # a budget the user set is never second-guessed
    pipeline = FeaturePipeline(backend=explicit, n_workers=1, cache_dir=tmp_path, progress=False)
    (again, _) = pipeline.run(graphs)
    assert again.ok


def test_coarsening_is_chosen_explicitly_runs_alone_and_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs = big_and_small()
    need_big, need_small = needed_bytes(graphs[0]), needed_bytes(graphs[1])
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)
    alone = (need_big + need_small) / 2  # the big graph never fits exactly
    monkeypatch.setattr(memory, "machine_memory", lambda: int(alone / memory.MEMORY_SHARE))
    coarsening = Subspace(over_budget="coarsen", on_excess="ignore")
    pipeline = FeaturePipeline(backend=coarsening, n_workers=1, cache_dir=tmp_path, progress=False)
    big, small = pipeline.run(graphs)
    assert big.ok and small.ok, [big.error, small.error]
    assert big.measurement.settings["coarsened"] is True and small.measurement.settings["coarsened"] is False
    assert big.measurement.settings["memory_bytes"] <= memory.default_max_memory(workers=1)
    assert big.measurement.settings["truncation_occupation_error"] > 0.0  # the estimate is reported
    big_again, small_again = pipeline.run(graphs)
    assert small_again.cached and not big_again.cached  # an approximation made for a budget is not kept
