"""The pipeline with node labels in the Hamiltonian, its build-only route, and stdin scripts."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from qgnn.backends import EmuSV
from qgnn.errors import InvalidInputError
from qgnn.features import FeaturePipeline
from qgnn.pulses import AnalogDMMDevice, ConstantDrive, NodeDetuning

TWO_PI = 2 * math.pi
LABELS = NodeDetuning({0: 0.0, 1: 0.6, 2: 1.0}, detuning=-TWO_PI * 2)


def molecule() -> nx.Graph:
    """A labelled 6-node tree whose labels break its symmetry."""
    graph = nx.Graph([(0, 1), (1, 2), (2, 3), (1, 4), (4, 5)])
    nx.set_node_attributes(graph, {0: 0, 1: 1, 2: 0, 3: 2, 4: 0, 5: 0}, "label")
    graph.graph["index"] = 3
    return graph


def pipeline(tmp_path: Path, node_detuning: NodeDetuning | None = LABELS) -> FeaturePipeline:
    return FeaturePipeline(
        device=AnalogDMMDevice,
        schedule=ConstantDrive(node_detuning=node_detuning),
        backend=EmuSV(),
        cache_dir=tmp_path,
        n_workers=1,
        progress=False,
    )


def test_relabelling_nodes_permutes_node_features_and_keeps_graph_features(tmp_path: Path) -> None:
    graph = molecule()
    rng = np.random.default_rng(0)
    perm = dict(zip(graph.nodes, (f"n{k}" for k in rng.permutation(6)), strict=True))
    relabelled = nx.relabel_nodes(graph, perm)
    (a,) = pipeline(tmp_path).run([graph])
    (b,) = pipeline(tmp_path).run([relabelled])
    assert a.ok and b.ok and b.cached  # same labelled graph up to isomorphism: one cache entry
    occ_a = {n: a.measurement.occupations[-1][int(a.embedding.qubit_of[n][1:])] for n in graph}
    occ_b = {n: b.measurement.occupations[-1][int(b.embedding.qubit_of[perm[n]][1:])] for n in graph}
    for n in graph:
        assert occ_b[n] == pytest.approx(occ_a[n], abs=1e-12)
    np.testing.assert_allclose(
        a.measurement.excitation_distribution, b.measurement.excitation_distribution, atol=1e-12
    )


def test_labels_change_features_and_never_share_a_cache_entry(tmp_path: Path) -> None:
    graph = molecule()
    other = molecule()
    other.nodes[3]["label"] = 0  # same shape, one label differs
    labelled, other_result = pipeline(tmp_path).run([graph, other])
    assert not other_result.cached
    (plain,) = pipeline(tmp_path, node_detuning=None).run([graph])
    assert not plain.cached
    diff = np.abs(labelled.measurement.occupations - plain.measurement.occupations).max()
    assert diff > 1e-2  # a 2π·2 rad/µs local detuning visibly changes ⟨n_i⟩
    assert np.abs(labelled.measurement.occupations - other_result.measurement.occupations).max() > 1e-3


def test_unmapped_label_fails_that_graph_only(tmp_path: Path) -> None:
    good, bad = molecule(), molecule()
    bad.graph["index"] = 9
    bad.nodes[0]["label"] = 42
    results = pipeline(tmp_path).run([good, bad])
    assert results[0].ok
    assert not results[1].ok and "graph 9: node 0 has label=42" in str(results[1].error)


def test_build_sequences_is_the_route_run_takes(tmp_path: Path) -> None:
    graphs = [molecule(), nx.relabel_nodes(molecule(), {k: 5 - k for k in range(6)})]
    pipe = pipeline(tmp_path)
    prepared = pipe.build_sequences(graphs)
    assert [p.ok for p in prepared] == [True, True]
    reprs = {p.sequence.to_abstract_repr() for p in prepared}
    assert len(reprs) == 1  # relabelled copies build the identical sequence
    results = pipe.run(graphs)
    assert results[0].embedding.positions.tolist() == prepared[0].embedding.positions.tolist()
    assert "dmm_0" in prepared[0].sequence.declared_channels


def test_a_script_from_stdin_runs_in_process_with_a_warning(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import networkx as nx
        from qgnn.features import FeaturePipeline
        graphs = [nx.path_graph(2 + k % 3) for k in range(8)]
        results = FeaturePipeline(n_workers=2, cache_dir={str(tmp_path)!r}, progress=False).run(graphs)
        print("ok", sum(r.ok for r in results))
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "always::RuntimeWarning", "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok 8" in done.stdout
    assert "came from stdin or -c" in done.stderr


def test_replace_keeps_every_other_setting(tmp_path: Path) -> None:
    base = FeaturePipeline(
        backend=EmuSV(), evaluation_times=(0.5, 1.0), cache_dir=tmp_path, n_workers=1, progress=False
    )
    labelled = base.replace(device=AnalogDMMDevice, schedule=ConstantDrive(node_detuning=LABELS))
    assert labelled.device is AnalogDMMDevice and labelled.schedule.node_detuning is LABELS
    assert labelled.backend is base.backend and labelled.evaluation_times == (0.5, 1.0)
    assert labelled.n_workers == 1 and labelled.fingerprint() != base.fingerprint()
    assert base.replace().fingerprint() == base.fingerprint()
    with pytest.raises(InvalidInputError, match=r"unknown argument\(s\) \['devcie'\]"):
        base.replace(devcie=AnalogDMMDevice)
    with pytest.raises(InvalidInputError, match="n_workers must be a positive integer"):
        base.replace(n_workers=0)
