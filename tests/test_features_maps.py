"""Feature maps on real pipeline results: time pooling, per-label observables, node observables."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from qgnn.errors import InvalidInputError
from qgnn.features import (
    FeaturePipeline,
    label_observables,
    label_observables_matrix,
    label_vocabulary,
    node_correlations,
    node_observables,
    node_occupations,
    pool_times,
)


def _labelled(graph: nx.Graph, labels: dict) -> nx.Graph:
    nx.set_node_attributes(graph, labels, "label")
    return graph


@pytest.fixture(scope="module")
def featurised(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[nx.Graph], list]:
    """A labelled path, its relabelled copy, and a labelled star, measured at two times on Subspace."""
    path = _labelled(nx.path_graph(4), {0: 6, 1: 8, 2: 6, 3: 7})
    renamed = nx.relabel_nodes(path, {0: "d", 1: "a", 2: "c", 3: "b"})
    star = _labelled(nx.star_graph(3), {0: 8, 1: 6, 2: 6, 3: 6})
    pipeline = FeaturePipeline(
        cache_dir=tmp_path_factory.mktemp("cache"), n_workers=1, progress=False, evaluation_times=(0.5, 1.0)
    )
    graphs = [path, renamed, star]
    results = pipeline.run(graphs)
    assert all(r.ok for r in results)
    return graphs, results


def test_pool_times_last_mean_concat() -> None:
    values = np.arange(12.0).reshape(3, 2, 2)  # T = 3
    np.testing.assert_array_equal(pool_times(values, "last"), values[-1])
    np.testing.assert_array_equal(pool_times(values, "mean"), values.mean(0))
    concat = pool_times(values, "concat")
    assert concat.shape == (2, 2, 3)
    np.testing.assert_array_equal(concat[1, 0], values[:, 1, 0])
    with pytest.raises(InvalidInputError, match="pooling"):
        pool_times(values, "max")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="time axis"):
        pool_times(np.zeros((0, 3)), "mean")


def test_connected_correlations_against_their_definition(featurised) -> None:
    graphs, results = featurised
    m = results[0].measurement
    nodes = list(graphs[0].nodes)
    order = [list(results[0].embedding.node_ids).index(n) for n in nodes]
    for t in range(2):
        occ = m.occupations[t][order]
        expected = m.correlations[t][np.ix_(order, order)] - np.outer(occ, occ)
        np.testing.assert_allclose(node_correlations(results[0], nodes)[t], expected, atol=1e-14)
    raw = node_correlations(results[0], nodes, connected=False)
    np.testing.assert_allclose(np.diagonal(raw, axis1=1, axis2=2), node_occupations(results[0], nodes).T)


def test_label_observables_are_per_label_mean_and_sum(featurised) -> None:
    graphs, results = featurised
    path, result = graphs[0], results[0]
    occ = node_occupations(result, list(path.nodes))  # (n, T)
    vocabulary = (6, 7, 8, 9)  # 9: no atom has it
    got = label_observables(result, path, vocabulary, pooling="last")
    carbon = occ[[0, 2], -1]
    expected_mean = [carbon.mean(), occ[3, -1], occ[1, -1], 0.0]
    expected_sum = [carbon.sum(), occ[3, -1], occ[1, -1], 0.0]
    np.testing.assert_allclose(got, expected_mean + expected_sum, atol=1e-14)
    mean_pooled = label_observables(result, path, vocabulary, pooling="mean")
    np.testing.assert_allclose(mean_pooled[0], occ[[0, 2]].mean(), atol=1e-14)
    concat = label_observables(result, path, vocabulary, pooling="concat")
    assert concat.shape == (2 * 2 * len(vocabulary),)  # time-major: all of t0, then all of t1
    np.testing.assert_allclose(concat[8:], got, atol=1e-14)
    # a vocabulary without label 8 drops its atom; the others are unchanged
    np.testing.assert_allclose(label_observables(result, path, (6, 7), pooling="last"), got[[0, 1, 4, 5]])


def test_relabelling_permutes_node_features_and_keeps_graph_features(featurised) -> None:
    graphs, results = featurised
    path, renamed = graphs[0], graphs[1]
    names = {0: "d", 1: "a", 2: "c", 3: "b"}
    nodes = list(path.nodes)
    np.testing.assert_array_equal(
        node_occupations(results[1], [names[n] for n in nodes]), node_occupations(results[0], nodes)
    )
    labels, occ, corr = node_observables(results[0], path, pooling="mean")
    labels_r, occ_r, corr_r = node_observables(results[1], renamed, pooling="mean")
    perm = [list(renamed.nodes).index(names[n]) for n in nodes]
    assert [labels_r[p] for p in perm] == labels
    np.testing.assert_array_equal(occ_r[perm], occ)
    np.testing.assert_array_equal(corr_r[np.ix_(perm, perm)], corr)
    vocabulary = label_vocabulary(graphs)
    np.testing.assert_array_equal(
        label_observables(results[1], renamed, vocabulary, pooling="concat"),
        label_observables(results[0], path, vocabulary, pooling="concat"),
    )


def test_label_vocabulary_and_matrix_checks(featurised) -> None:
    graphs, results = featurised
    assert label_vocabulary(graphs[2:]) == (6, 8)  # the star's labels only: a training vocabulary
    X = label_observables_matrix(results, graphs, (6, 7, 8))
    assert X.shape == (3, 6)
    assert X[2, 1] == 0.0 and X[2, 4] == 0.0  # the star has no label 7
    with pytest.raises(InvalidInputError, match="aligned"):
        label_observables_matrix(results[:2], graphs, (6,))
    unlabelled = nx.path_graph(3)
    with pytest.raises(InvalidInputError, match="no 'label' attribute"):
        label_vocabulary([unlabelled])
    with pytest.raises(InvalidInputError, match="'last' or 'mean'"):
        node_observables(results[0], graphs[0], pooling="concat")
