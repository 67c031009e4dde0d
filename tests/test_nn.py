"""qgnn.nn: the QuantumFeatures transform, QuantumDataset, the GNN models and their training loop.

Quantum features come from the real FeaturePipeline on emu-sv (exact), on
graphs of at most 8 atoms; one pipeline cache is shared by the whole module.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from qgnn.data import load_dataset, to_pyg
from qgnn.data.canonical import canonical_form, canonical_relabel, orbit_average
from qgnn.errors import DatasetError, InvalidGraphError, InvalidInputError
from qgnn.features import FeaturePipeline, label_vocabulary
from qgnn.nn import (
    GIN,
    QuantumDataset,
    QuantumFeatures,
    QuantumFeatureWarning,
    QuantumGIN,
    QuantumGPS,
    build_model,
    correlation_encodings,
    evaluate_gnn,
    fit_evaluate_gnn,
    plot_learning_curves,
)

torch.set_num_threads(1)

TIMES = (0.5, 1.0)
PE_DIM = 4
HIST = 9


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> FeaturePipeline:
    return FeaturePipeline(
        evaluation_times=TIMES, cache_dir=tmp_path_factory.mktemp("qgnn-cache"), n_workers=1, progress=False
    )


@pytest.fixture(scope="module")
def transform(pipeline: FeaturePipeline) -> QuantumFeatures:
    return QuantumFeatures(pipeline, pe_dim=PE_DIM, hist_length=HIST)


def as_data(graph: nx.Graph, y: int | float, index: int) -> Data:
    """A PyG graph with a constant node feature, a target and a dataset index."""
    graph = nx.convert_node_labels_to_integers(graph)
    graph.graph.update(y=y, index=index)
    data = to_pyg(graph)
    data.x = torch.ones(data.num_nodes, 1)
    return data


def labelled_data(graph: nx.Graph, labels: list[int], y: int, index: int, width: int = 6) -> Data:
    """A PyG graph whose node ``v`` has label code ``labels[v]`` (``node_label`` and a one-hot ``x``)."""
    graph = nx.convert_node_labels_to_integers(graph)
    nx.set_node_attributes(graph, dict(enumerate(labels)), "label")
    graph.graph.update(y=y, index=index, num_node_labels=width)
    return to_pyg(graph)


def tadpole(cycle: int, tail: int) -> nx.Graph:
    """A cycle with a path attached: contains a cycle."""
    graph = nx.cycle_graph(cycle)
    nx.add_path(graph, [0, *range(cycle, cycle + tail)])
    return graph


def caterpillar(spine: int, legs: int) -> nx.Graph:
    """A path with pendant nodes on its inner vertices: a tree."""
    graph = nx.path_graph(spine)
    for k in range(legs):
        graph.add_edge(1 + k % max(1, spine - 2), spine + k)
    return graph


@pytest.fixture(scope="module")
def cyclic_vs_tree(transform: QuantumFeatures) -> list[Data]:
    """34 distinct graphs of 5-8 nodes, alternating classes: 0 contains a cycle, 1 is a tree."""
    cyclic = [nx.cycle_graph(n) for n in (5, 6, 7, 8)] + [
        tadpole(c, t) for c in range(3, 8) for t in range(1, 9 - c) if c + t >= 5
    ]
    trees = [nx.path_graph(n) for n in (5, 6, 7, 8)] + [
        caterpillar(s, k) for s in range(3, 8) for k in range(1, 9 - s) if s + k >= 5 and (s > 3 or k <= 2)
    ]
    graphs = [g for pair in zip(cyclic, trees, strict=False) for g in pair] + cyclic[len(trees) :]
    datas = [as_data(g, 0 if g in cyclic else 1, i) for i, g in enumerate(graphs)]
    out = transform.featurise(datas)
    assert not transform.failures, transform.failures
    return out


def split(datas: list[Data]) -> tuple[list[Data], list[Data]]:
    """Every third graph for testing, the rest for training."""
    return [d for k, d in enumerate(datas) if k % 3], datas[::3]


# --- correlation encodings (pure numpy) ---------------------------------------------------------


def test_correlation_encodings_rows_follow_a_relabelling_and_ignore_eigenvector_signs() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 7))
    corr = (a + a.T) / 10
    perm = rng.permutation(7)
    enc = correlation_encodings(corr, 5)
    assert enc.shape == (7, 10)
    np.testing.assert_allclose(correlation_encodings(corr[np.ix_(perm, perm)], 5), enc[perm], atol=1e-12)
    # simple eigenvalues: slot s is v_s² (independent of the sign eigh picks)
    evals, evecs = np.linalg.eigh(corr)
    np.testing.assert_allclose(enc[:, 5:], evecs[:, ::-1][:, :5] ** 2, atol=1e-12)
    off = corr - np.diag(np.diag(corr))
    np.testing.assert_allclose(enc[:, 0], off.sum(1), atol=1e-12)
    np.testing.assert_allclose(enc[:, 1], np.abs(off).sum(1), atol=1e-12)
    np.testing.assert_allclose(enc[:, 4], np.diag(corr), atol=1e-12)


def test_correlation_encodings_use_the_eigenspace_projector_for_degenerate_eigenvalues() -> None:
    # A circulant matrix (a ring) has eigenvalue pairs; each projector diagonal is multiplicity / n.
    n = 6
    ring = np.array(
        [
            [0.2 if i == j else (-0.05 if (i - j) % n in (1, n - 1) else 0.01) for j in range(n)]
            for i in range(n)
        ]
    )
    evals = np.sort(np.linalg.eigvalsh(ring))[::-1]
    multiplicity = [int(np.sum(np.abs(evals - e) < 1e-9)) for e in evals]
    enc = correlation_encodings(ring, n)
    np.testing.assert_allclose(enc[:, 5:], np.tile(np.array(multiplicity) / n, (n, 1)), atol=1e-12)
    assert max(multiplicity) >= 2  # the test really exercises a degenerate eigenspace


def test_correlation_encodings_pad_small_graphs_with_zeros() -> None:
    enc = correlation_encodings(np.array([[0.25]]), 3)
    np.testing.assert_allclose(enc, [[0, 0, 0, 0, 0.25, 1, 0, 0]])


def test_canonical_form_is_the_same_for_every_relabelling() -> None:
    mutag = load_dataset("MUTAG", max_nodes=12)[0]  # a labelled molecule
    graphs = [tadpole(5, 2), nx.petersen_graph(), nx.complete_bipartite_graph(2, 3), mutag]
    rng = np.random.default_rng(0)
    for graph in graphs:
        graph = nx.convert_node_labels_to_integers(graph)
        form = canonical_form(graph)
        canon, _ = canonical_relabel(graph, form)
        labels = [canon.nodes[k].get("label") for k in canon]
        for p in form.generators:  # every generator is a label-preserving automorphism
            assert all(canon.has_edge(p[u], p[v]) for u, v in canon.edges)
            assert [labels[p[k]] for k in canon] == labels
        group = {tuple(range(len(canon)))}
        while True:  # the generated group is the whole automorphism group (VF2 counts it)
            grown = group | {
                tuple(p[q[k]] for k in range(len(canon))) for q in group for p in form.generators
            }
            if grown == group:
                break
            group = grown
        matcher = nx.isomorphism.GraphMatcher(
            canon, canon, node_match=lambda a, b: a.get("label") == b.get("label")
        )
        assert len(group) == sum(1 for _ in matcher.isomorphisms_iter())
        for _ in range(3):
            perm = rng.permutation(len(graph))
            moved = nx.Graph()
            moved.add_nodes_from(sorted((int(perm[v]), d) for v, d in graph.nodes(data=True)))
            moved.add_edges_from((int(perm[u]), int(perm[v]), d) for u, v, d in graph.edges(data=True))
            other, _ = canonical_relabel(moved, canonical_form(moved))
            assert sorted(other.edges) == sorted(canon.edges)
            assert [other.nodes[k].get("label") for k in other] == labels


def test_orbit_average_equals_the_average_over_every_automorphism() -> None:
    form = canonical_form(nx.cycle_graph(4))
    canon, _ = canonical_relabel(nx.cycle_graph(4), form)  # generators act on the canonical labels
    rng = np.random.default_rng(1)
    occ, pair = rng.random((2, 4)), rng.random((2, 4, 4))
    pair = pair + pair.transpose(0, 2, 1)
    matcher = nx.isomorphism.GraphMatcher(canon, canon)
    autos = [np.array([m[k] for k in range(4)]) for m in matcher.isomorphisms_iter()]
    assert len(autos) == 8
    want_occ = np.mean([occ[:, a] for a in autos], axis=0)
    want_pair = np.mean([pair[:, a][:, :, a] for a in autos], axis=0)
    got_occ, got_pair = orbit_average(occ, pair, form.generators)
    np.testing.assert_allclose(got_occ, want_occ, atol=1e-12)
    np.testing.assert_allclose(got_pair, want_pair, atol=1e-12)


# --- the transform on the real pipeline -----------------------------------------------------------


def test_transform_attaches_shapes_that_match_the_measurement(transform: QuantumFeatures) -> None:
    data = as_data(nx.cycle_graph(6), 0, 1000)
    before = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in data.to_dict().items()}
    out = transform(data)
    assert set(data.to_dict()) == set(before)  # the input gained nothing
    for key, value in before.items():
        assert torch.equal(data[key], value) if isinstance(value, torch.Tensor) else data[key] == value
    assert out is not data
    n, e, t = 6, 12, len(TIMES)
    assert out.x_q.shape == (n, t)
    assert out.pe_q.shape == (n, t * (5 + PE_DIM)) == (n, transform.pe_channels)
    assert out.edge_attr_q.shape == (e, t)
    assert out.hist_q.shape == (1, t * HIST)
    assert bool(out.q_ok.item())
    assert torch.all((out.x_q >= -1e-9) & (out.x_q <= 1 + 1e-9))
    hist = out.hist_q.view(t, HIST)
    torch.testing.assert_close(hist.sum(1), torch.ones(t), atol=1e-5, rtol=0)
    # ⟨Σ n_i⟩ from the occupations equals the histogram's mean excitation count
    torch.testing.assert_close(out.x_q.sum(0), (hist * torch.arange(HIST)).sum(1), atol=1e-5, rtol=0)
    # C_ii = ⟨n_i⟩(1 − ⟨n_i⟩) sits in column 4 of each time block of pe_q
    block = 5 + PE_DIM
    for k in range(t):
        diag = out.pe_q[:, k * block + 4]
        torch.testing.assert_close(diag, out.x_q[:, k] * (1 - out.x_q[:, k]), atol=1e-5, rtol=0)
    # C_ij is symmetric: both directions of an edge carry the same value
    src, dst = out.edge_index
    lookup = {(int(a), int(b)): out.edge_attr_q[i] for i, (a, b) in enumerate(zip(src, dst, strict=True))}
    for (a, b), value in lookup.items():
        torch.testing.assert_close(value, lookup[(b, a)])


def relabel(graph: nx.Graph, perm: np.ndarray) -> nx.Graph:
    """Node v becomes perm[v]; nodes inserted in sorted order."""
    out = nx.Graph()
    out.add_nodes_from(range(graph.number_of_nodes()))
    out.add_edges_from((int(perm[u]), int(perm[v])) for u, v in graph.edges)
    return out


@pytest.mark.parametrize("graph", [tadpole(5, 2), caterpillar(5, 2), nx.cycle_graph(6)], ids=str)
def test_relabelling_nodes_permutes_node_features_and_keeps_the_histogram(
    transform: QuantumFeatures, graph: nx.Graph
) -> None:
    n = graph.number_of_nodes()
    perm = np.random.default_rng(n).permutation(n)  # node v of `graph` is node perm[v] of `moved`
    a, b = transform.featurise([as_data(graph, 0, 3000 + n), as_data(relabel(graph, perm), 0, 4000 + n)])
    p = torch.as_tensor(perm)
    assert not torch.equal(b.x_q, a.x_q) or n == 6  # the relabelling really moved something
    torch.testing.assert_close(b.x_q[p], a.x_q, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.pe_q[p], a.pe_q, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.hist_q, a.hist_q, atol=1e-6, rtol=0)
    edge_a = {(int(u), int(v)): a.edge_attr_q[k] for k, (u, v) in enumerate(a.edge_index.t())}
    edge_b = {(int(u), int(v)): b.edge_attr_q[k] for k, (u, v) in enumerate(b.edge_index.t())}
    for (u, v), value in edge_a.items():
        torch.testing.assert_close(edge_b[(int(perm[u]), int(perm[v]))], value, atol=1e-6, rtol=0)


def test_automorphic_nodes_get_equal_features(transform: QuantumFeatures) -> None:
    # On a ring every node is equivalent: the register breaks the symmetry, the orbit average restores it.
    out = transform(as_data(nx.cycle_graph(7), 0, 5000))
    torch.testing.assert_close(out.x_q, out.x_q[:1].expand_as(out.x_q), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.pe_q, out.pe_q[:1].expand_as(out.pe_q), atol=1e-6, rtol=0)


def test_transformed_graphs_batch_with_the_pyg_dataloader(cyclic_vs_tree: list[Data]) -> None:
    graphs = cyclic_vs_tree[:5]
    batch = next(iter(DataLoader(graphs, batch_size=5, shuffle=False)))
    nodes = sum(g.num_nodes for g in graphs)
    edges = sum(g.edge_index.size(1) for g in graphs)
    t = len(TIMES)
    assert batch.num_graphs == 5
    assert batch.x_q.shape == (nodes, t)
    assert batch.pe_q.shape == (nodes, t * (5 + PE_DIM))
    assert batch.edge_attr_q.shape == (edges, t)
    assert batch.hist_q.shape == (5, t * HIST)
    assert batch.q_ok.tolist() == [True] * 5
    torch.testing.assert_close(batch.hist_q[3], graphs[3].hist_q[0])
    assert batch.idx.tolist() == [int(g.idx) for g in graphs]


def test_a_graph_that_cannot_be_embedded_is_reported_not_dropped(pipeline: FeaturePipeline) -> None:
    transform = QuantumFeatures(pipeline, pe_dim=PE_DIM, hist_length=HIST)
    star = as_data(nx.star_graph(7), 1, 77)  # K1,7 holds an induced K1,6: no unit-disk embedding
    ring = as_data(nx.cycle_graph(6), 0, 78)
    out = transform.featurise([star, ring])
    assert len(out) == 2
    assert list(transform.failures) == [77]
    assert "K1,6" in transform.failures[77]
    assert out[0].q_ok.tolist() == [False] and out[1].q_ok.tolist() == [True]
    assert out[0].x_q.shape == (8, len(TIMES)) and not out[0].x_q.any()
    assert out[0].hist_q.shape == out[1].hist_q.shape and not out[0].hist_q.any()


def test_transform_rejects_what_is_not_a_graph(pipeline: FeaturePipeline) -> None:
    transform = QuantumFeatures(pipeline)
    with pytest.raises(InvalidGraphError, match="Data"):
        transform.featurise([nx.cycle_graph(4)])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="pe_dim"):
        QuantumFeatures(pipeline, pe_dim=-1)
    with pytest.raises(InvalidInputError, match="hist_length"):
        QuantumFeatures(pipeline, hist_length=1)
    # an empty graph and a self-loop are failures of those graphs, reported with the reason
    empty = Data(x=torch.zeros(0, 1), edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0)
    loop = as_data(nx.path_graph(3), 0, 91)
    loop.edge_index = torch.cat([loop.edge_index, torch.tensor([[1], [1]])], dim=1)
    bad = QuantumFeatures(pipeline, hist_length=HIST)
    out = bad.featurise([empty, loop])
    assert [o.q_ok.item() for o in out] == [False, False] and len(bad.failures) == 2
    assert "self-loop" in bad.failures[91]
    # a graph larger than the histogram is a failure of that graph, reported with the fix
    small = QuantumFeatures(pipeline, hist_length=4)
    (out,) = small.featurise([as_data(nx.path_graph(5), 1, 90)])
    assert out.q_ok.tolist() == [False]
    assert "raise hist_length" in small.failures[90]


def test_a_non_integer_idx_falls_back_to_the_position(pipeline: FeaturePipeline) -> None:
    # self-loops fail at conversion, so the failures show the keys without running the pipeline
    datas = []
    for idx in ("a", 2.5, np.int64(41)):
        data = as_data(nx.path_graph(2), 0, 0)
        data.edge_index = torch.cat([data.edge_index, torch.tensor([[0], [0]])], dim=1)
        data.idx = idx
        datas.append(data)
    transform = QuantumFeatures(pipeline, hist_length=HIST)
    out = transform.featurise(datas)
    assert sorted(transform.failures) == [0, 1, 41]
    assert [o.q_ok.item() for o in out] == [False] * 3
    assert "graph 41: edge_index has self-loop" in transform.failures[41]


class _OfflinePipeline(FeaturePipeline):
    """A pipeline whose device and fingerprint must not be touched (a cloud backend logs in for them)."""

    def fingerprint(self) -> str:
        raise AssertionError("repr must not compute the pipeline fingerprint")

    @property
    def device(self):  # type: ignore[override]
        raise AssertionError("repr must not fetch the device")


def test_transform_repr_is_offline_and_describes_the_pipeline() -> None:
    from qgnn.pulses import ConstantDrive

    schedule = ConstantDrive(duration=500)
    pipeline = _OfflinePipeline(schedule=schedule, evaluation_times=TIMES, cache_dir=False, progress=False)
    text = repr(QuantumFeatures(pipeline, pe_dim=3, hist_length=HIST))
    assert text.startswith("QuantumFeatures(backend='subspace', ")
    assert repr(schedule) in text and f"evaluation_times={TIMES}" in text and "pe_dim=3" in text
    assert text == repr(
        QuantumFeatures(
            _OfflinePipeline(schedule=schedule, evaluation_times=TIMES, cache_dir=False, progress=False),
            pe_dim=3,
            hist_length=HIST,
        )
    )


# --- time pooling and per-label observables ---------------------------------------------------------


def test_mean_pooling_is_the_mean_over_times_of_the_concatenated_features(pipeline: FeaturePipeline) -> None:
    vocabulary = (0, 1, 2)
    graphs = [
        labelled_data(tadpole(5, 2), [0, 1, 0, 2, 1, 0, 1], 0, 6000),
        labelled_data(nx.cycle_graph(6), [1, 1, 0, 0, 2, 2], 1, 6001),
    ]
    every = QuantumFeatures(pipeline, pe_dim=PE_DIM, hist_length=HIST, label_vocabulary=vocabulary)
    mean = QuantumFeatures(
        pipeline, pe_dim=PE_DIM, hist_length=HIST, label_vocabulary=vocabulary, pooling="mean"
    )
    last = QuantumFeatures(
        pipeline, pe_dim=PE_DIM, hist_length=HIST, label_vocabulary=vocabulary, pooling="last"
    )
    t = len(TIMES)
    assert (every.q_channels, mean.q_channels) == (t, 1)
    assert (every.graph_dim, mean.graph_dim) == (t * 2 * len(vocabulary), 2 * len(vocabulary))
    for a, m, z in zip(every.featurise(graphs), mean.featurise(graphs), last.featurise(graphs), strict=True):
        n, e = a.num_nodes, a.edge_index.size(1)
        # per-time blocks, time-major: (rows, T, width) from the concatenated features
        blocks = {
            "x_q": a.x_q.numpy().reshape(n, t, 1),
            "pe_q": a.pe_q.numpy().reshape(n, t, 5 + PE_DIM),
            "edge_attr_q": a.edge_attr_q.numpy().reshape(e, t, 1),
            "hist_q": a.hist_q.numpy().reshape(1, t, HIST),
            "g_q": a.g_q.numpy().reshape(1, t, 2 * len(vocabulary)),
        }
        assert not np.allclose(blocks["x_q"][:, 0], blocks["x_q"][:, -1])  # the times really differ
        for key, value in blocks.items():
            assert m[key].shape == (value.shape[0], value.shape[2]) == z[key].shape, key
            np.testing.assert_allclose(m[key].numpy(), value.mean(axis=1), atol=1e-6, err_msg=key)
            np.testing.assert_allclose(z[key].numpy(), value[:, -1], atol=0, err_msg=key)
        assert m.pe_q.shape[1] == mean.pe_channels and a.pe_q.shape[1] == every.pe_channels
    with pytest.raises(InvalidInputError, match="pooling must be one of"):
        QuantumFeatures(pipeline, pooling="max")  # type: ignore[arg-type]
    assert QuantumFeatures(pipeline, pooling=None).pooling == "concat"


def test_label_observables_match_a_hand_computation_on_three_atoms(pipeline: FeaturePipeline) -> None:
    # path 0-1-2 labelled 2, 2, 5; vocabulary (0, 2, 3): label 5 is outside it, labels 0 and 3 are absent
    data = labelled_data(nx.path_graph(3), [2, 2, 5], 0, 6100)
    vocabulary = (0, 2, 3)
    transform = QuantumFeatures(pipeline, pe_dim=PE_DIM, hist_length=HIST, label_vocabulary=vocabulary)
    out = transform(data)
    assert out.q_ok.tolist() == [True] and out.g_q.shape == (1, len(TIMES) * 6)
    x = out.x_q.numpy()  # ⟨n_i⟩, shape (3, T)
    for k in range(len(TIMES)):
        x0, x1 = float(x[0, k]), float(x[1, k])
        hand = [0.0, (x0 + x1) / 2, 0.0, 0.0, x0 + x1, 0.0]  # means of 0, 2, 3, then sums
        np.testing.assert_allclose(out.g_q[0, 6 * k : 6 * (k + 1)].numpy(), hand, atol=1e-6)
        assert x0 + x1 > 0.05  # the atoms really are excited: a zero vector would not test much
    # a node-label-free graph is a failure of that graph, with zero g_q of the right width
    bare = Data(edge_index=data.edge_index, num_nodes=3, x=torch.rand(3, 2), idx=torch.tensor([6101]))
    failed = transform(bare)
    assert failed.q_ok.tolist() == [False] and "'label'" in transform.failures[6101]
    assert failed.g_q.shape == out.g_q.shape and not failed.g_q.any()


def test_relabelling_a_labelled_graph_leaves_g_q_unchanged(pipeline: FeaturePipeline) -> None:
    graph = nx.convert_node_labels_to_integers(tadpole(5, 2))
    labels = [0, 1, 0, 2, 1, 0, 1]
    perm = np.random.default_rng(7).permutation(7)  # node v becomes node perm[v]
    moved = nx.Graph()
    moved.add_nodes_from(sorted(int(perm[v]) for v in graph))
    moved.add_edges_from((int(perm[u]), int(perm[v])) for u, v in graph.edges)
    moved_labels = [0] * 7
    for v, label in enumerate(labels):
        moved_labels[int(perm[v])] = label
    transform = QuantumFeatures(pipeline, pe_dim=PE_DIM, hist_length=HIST, label_vocabulary=(0, 1, 2))
    a, b = transform.featurise(
        [labelled_data(graph, labels, 0, 6200), labelled_data(moved, moved_labels, 0, 6201)]
    )
    assert moved_labels != labels
    torch.testing.assert_close(b.x_q[torch.as_tensor(perm)], a.x_q, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.g_q, a.g_q, atol=1e-6, rtol=0)
    # every label is in the vocabulary: the per-label sums add up to Σ_i ⟨n_i⟩ at each time
    sums = a.g_q.view(len(TIMES), 6)[:, 3:].sum(1)
    torch.testing.assert_close(sums, a.x_q.sum(0), atol=1e-5, rtol=0)


def test_transform_repr_changes_with_pooling_and_vocabulary() -> None:
    def text(**options: object) -> str:
        pipeline = _OfflinePipeline(evaluation_times=TIMES, cache_dir=False, progress=False)
        return repr(QuantumFeatures(pipeline, pe_dim=3, **options))  # type: ignore[arg-type]

    default = text()
    assert "pooling" not in default and "label_vocabulary" not in default  # processed datasets stay valid
    assert text(pooling="concat") == text(pooling=None) == default
    variants = [text(pooling="mean"), text(pooling="last"), text(label_vocabulary=[0, 1])]
    variants.append(text(label_vocabulary=[1, 0]))  # another column order is another feature layout
    variants.append(text(pooling="mean", label_vocabulary=[0, 1]))
    assert len({default, *variants}) == 6
    assert "pooling='mean'" in variants[0] and "label_vocabulary=(0, 1)" in variants[2]
    assert text(label_vocabulary=np.array([0, 1])) == variants[2]  # numpy labels read as Python ints
    pipeline = _OfflinePipeline(evaluation_times=TIMES, cache_dir=False, progress=False)
    for bad, match in (([], "empty"), ([0, 0], "repeated"), ({0, 1}, "ordered"), ("ab", "ordered")):
        with pytest.raises(InvalidInputError, match=match):
            QuantumFeatures(pipeline, label_vocabulary=bad)  # type: ignore[arg-type]


# --- the dataset --------------------------------------------------------------------------------------


def test_quantum_dataset_is_processed_once_and_then_loaded(
    pipeline: FeaturePipeline, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = QuantumDataset("PTC_FM", pipeline, max_nodes=4, root=tmp_path, pe_dim=PE_DIM)
    shipped = load_dataset("PTC_FM", max_nodes=4)
    assert len(first) == len(shipped) == 21
    assert first.failures == {}
    assert bool(first.ok_mask.all())
    assert first[0].hist_q.shape == (1, len(TIMES) * 5)  # hist_length = largest graph (4) + 1
    assert first[0].x.shape[1] == shipped.num_node_labels
    folder = tmp_path / f"PTC_FM-{shipped.sha256[:12]}-4-{pipeline.fingerprint()}-pe{PE_DIM}-hauto"
    assert (folder / "processed" / "data.pt").is_file()

    def no_work(graphs: object) -> None:
        raise AssertionError("the second construction must not run the pipeline")

    monkeypatch.setattr(pipeline, "run", no_work)
    # any spelling of the name is the same dataset, loaded from the same folder
    second = QuantumDataset("ptc_fm", pipeline, max_nodes=4, root=tmp_path, pe_dim=PE_DIM)
    assert second.name == "PTC_FM" and second.processed_dir == first.processed_dir
    assert len(second) == len(first)
    for k in (0, 7, 20):
        torch.testing.assert_close(second[k].pe_q, first[k].pe_q)
        assert int(second[k].idx) == int(first[k].idx)
    batch = next(iter(DataLoader(second, batch_size=8)))
    assert batch.hist_q.shape == (8, len(TIMES) * 5)


def test_quantum_dataset_rejects_a_name_that_is_not_a_string(pipeline: FeaturePipeline, tmp_path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset 5; valid names"):
        QuantumDataset(5, pipeline, root=tmp_path)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_quantum_dataset_reads_your_own_tu_folder(pipeline: FeaturePipeline, tmp_path) -> None:
    import shutil

    from qgnn.data import datasets_root

    own = tmp_path / "data" / "PTC_FM"
    shutil.copytree(datasets_root() / "PTC_FM", own)
    labels = own / "PTC_FM_graph_labels.txt"
    lines = labels.read_text().splitlines()
    lines[0] = "0" if lines[0].strip() != "0" else "1"  # one label differs: other data, other folder
    labels.write_text("\n".join(lines) + "\n")
    mine = QuantumDataset(own, pipeline, max_nodes=4, root=tmp_path / "pyg", pe_dim=PE_DIM)
    shipped = QuantumDataset("PTC_FM", pipeline, max_nodes=4, root=tmp_path / "pyg", pe_dim=PE_DIM)
    assert mine.name == shipped.name == "PTC_FM" and len(mine) == len(shipped)
    assert mine.processed_dir != shipped.processed_dir


def test_quantum_dataset_batches_molecules_without_bonds(pipeline: FeaturePipeline, tmp_path) -> None:
    # ESOL has one-atom molecules: they get empty edge attributes so the dataset collates and batches.
    ds = QuantumDataset("ESOL", pipeline, max_nodes=2, root=tmp_path, pe_dim=PE_DIM)
    sizes = [int(d.num_nodes) for d in ds]
    assert 1 in sizes and 2 in sizes and not ds.failures
    lone = ds[sizes.index(1)]
    assert lone.edge_attr.shape == (0, ds[sizes.index(2)].edge_attr.shape[1]) and lone.edge_label.numel() == 0
    torch.testing.assert_close(
        lone.x_q.sum(), lone.hist_q.view(len(TIMES), -1)[:, 1].sum(), atol=1e-6, rtol=0
    )
    batch = next(iter(DataLoader(ds, batch_size=len(ds))))
    assert batch.num_graphs == len(ds) and batch.y.dtype == torch.float32


def test_quantum_dataset_warns_and_lists_failures(tmp_path) -> None:
    # Sequences of 100 µs exceed AnalogDevice's limits, so every graph fails in the pulse stage.
    from qgnn.pulses import ConstantDrive

    broken = FeaturePipeline(
        schedule=ConstantDrive(duration=100_000), cache_dir=False, n_workers=1, progress=False
    )
    with pytest.warns(QuantumFeatureWarning, match="could not be featurised") as caught:
        ds = QuantumDataset("PTC_FM", broken, max_nodes=3, root=tmp_path)
    assert len(ds) == len(load_dataset("PTC_FM", max_nodes=3)) > 0
    assert sorted(ds.failures) == sorted(int(d.idx) for d in ds)
    assert not bool(ds.ok_mask.any())
    assert str(next(iter(ds.failures))) in str(caught[0].message)


# --- models and training --------------------------------------------------------------------------


def test_models_map_a_batch_to_one_output_per_graph(cyclic_vs_tree: list[Data]) -> None:
    batch = Batch.from_data_list(cyclic_vs_tree[:4])
    t = len(TIMES)
    widths = (1, t, t * (5 + PE_DIM), t * HIST)
    assert GIN(1, 2, hidden=8, layers=2)(batch).shape == (4, 2)
    assert QuantumGIN(*widths, 3, q_edge_dim=t, hidden=8, layers=2)(batch).shape == (4, 3)
    assert QuantumGPS(*widths, 2, q_edge_dim=t, hidden=8, heads=2, layers=2)(batch).shape == (4, 2)
    assert QuantumGIN(*widths, 1, hidden=8, task="regression")(batch).shape == (4,)
    with pytest.raises(InvalidGraphError, match="pe_q"):
        QuantumGIN(1, t, 99, t * HIST, 2)(batch)
    with pytest.raises(InvalidInputError, match="multiple of heads"):
        QuantumGPS(*widths, 2, hidden=10, heads=4)
    with pytest.raises(InvalidGraphError, match="QuantumFeatures"):
        QuantumGIN(*widths, 2)(Batch.from_data_list([as_data(nx.path_graph(3), 0, 0)]))


def test_models_append_g_q_to_the_readout(cyclic_vs_tree: list[Data]) -> None:
    t = len(TIMES)
    widths = (1, t, t * (5 + PE_DIM), t * HIST)
    graphs = [d.clone() for d in cyclic_vs_tree[:4]]
    for k, data in enumerate(graphs):
        data.g_q = torch.full((1, 6), float(k))
    batch = Batch.from_data_list(graphs)
    assert batch.g_q.shape == (4, 6)
    gin = QuantumGIN(*widths, 2, graph_dim=6, hidden=8, layers=2).eval()
    gps = QuantumGPS(*widths, 2, graph_dim=6, hidden=8, heads=2, layers=2).eval()
    for net in (gin, gps):
        assert net.head.net[0].in_features == 2 * 8 + t * HIST + 6
        before = net(batch)
        assert before.shape == (4, 2)
        batch.g_q = batch.g_q + 1.0
        assert not torch.allclose(net(batch), before)  # g_q reaches the output
        batch.g_q = batch.g_q - 1.0
    with pytest.raises(InvalidGraphError, match="label_vocabulary"):
        gin(Batch.from_data_list(cyclic_vs_tree[:2]))
    with pytest.raises(InvalidGraphError, match="g_q of width 5"):
        QuantumGIN(*widths, 2, graph_dim=5)(batch)
    with pytest.raises(InvalidInputError, match="graph_dim"):
        QuantumGPS(*widths, 2, graph_dim=0, hidden=8, heads=2)
    # without graph_dim, g_q is ignored and the head is as before
    assert QuantumGIN(*widths, 2, hidden=8, layers=2).head.net[0].in_features == 2 * 8 + t * HIST


def test_a_model_reading_g_q_learns_what_only_the_labels_say(pipeline: FeaturePipeline) -> None:
    # Each shape appears once with every atom labelled 0 (class 0) and once labelled 1 (class 1),
    # and x is constant: only the per-label observables g_q carry the class.
    shapes = [nx.cycle_graph(n) for n in (4, 5, 6, 7)] + [nx.path_graph(n) for n in (4, 5, 6, 7)]
    shapes += [tadpole(4, 2), caterpillar(4, 2)]
    datas = []
    for k, shape in enumerate(shapes):
        for label in (0, 1):
            data = labelled_data(shape, [label] * shape.number_of_nodes(), label, 2 * k + label, width=2)
            data.x = torch.ones(data.num_nodes, 1)
            datas.append(data)
    transform = QuantumFeatures(pipeline, pe_dim=PE_DIM, hist_length=HIST, label_vocabulary=(0, 1))
    featured = transform.featurise(datas)
    assert not transform.failures
    train, test = split(featured)
    net = build_model("qgin", train[0], task="classification", num_classes=2, hidden=8, layers=1)
    assert net.graph_dim == transform.graph_dim == 2 * 2 * len(TIMES)
    outcome = fit_evaluate_gnn(
        "qgin",
        train,
        test,
        task="classification",
        num_classes=2,
        seed=0,
        epochs=30,
        hidden=16,
        layers=2,
        lr=0.01,
        batch_size=4,
        patience=30,
        val_fraction=0.2,
        progress=False,
    )
    assert outcome.train_loss[-1] < 0.5 * outcome.train_loss[0]
    assert outcome.metrics()["accuracy"] >= 0.8  # without g_q both members of a pair look the same


@pytest.mark.parametrize("model", ["gin", "qgin", "qgps"])
def test_training_beats_chance_on_cycles_versus_trees(cyclic_vs_tree: list[Data], model: str) -> None:
    train, test = split(cyclic_vs_tree)
    outcome = fit_evaluate_gnn(
        model,
        train,
        test,
        task="classification",
        num_classes=2,
        seed=0,
        epochs=40,
        hidden=16,
        layers=2,
        lr=0.01,
        batch_size=4,
        patience=40,
        val_fraction=0.2,
        progress=False,
    )
    assert outcome.y_pred.shape == (len(test),) and outcome.y_score.shape == (len(test), 2)
    np.testing.assert_allclose(outcome.y_score.sum(1), 1.0, atol=1e-6)
    assert outcome.metrics()["accuracy"] >= 0.8  # chance is 0.5
    assert outcome.train_loss[-1] < outcome.train_loss[0]
    assert 0 <= outcome.best_epoch < outcome.epochs_run == len(outcome.val_loss)
    assert outcome.test_index.tolist() == [int(d.idx) for d in test]


def test_training_is_deterministic_for_a_seed(cyclic_vs_tree: list[Data]) -> None:
    kwargs = dict(task="classification", num_classes=2, epochs=5, hidden=8, layers=2, progress=False)
    train, test = split(cyclic_vs_tree)
    a = fit_evaluate_gnn("qgin", train, test, seed=3, **kwargs)
    b = fit_evaluate_gnn("qgin", train, test, seed=3, **kwargs)
    c = fit_evaluate_gnn("qgin", train, test, seed=4, **kwargs)
    assert a.train_loss == b.train_loss and np.array_equal(a.y_score, b.y_score)
    assert a.train_loss != c.train_loss


def test_regression_fits_the_number_of_edges(cyclic_vs_tree: list[Data]) -> None:
    datas = []
    for data in cyclic_vs_tree:
        copy_ = data.clone()
        copy_.y = torch.tensor([data.edge_index.size(1) / 2], dtype=torch.float32)
        datas.append(copy_)
    train, test = split(datas)
    baseline = np.abs(np.array([d.y.item() for d in test]) - np.mean([d.y.item() for d in train])).mean()
    for model in ("gin", "qgin"):
        outcome = fit_evaluate_gnn(
            model,
            train,
            test,
            task="regression",
            num_classes=0,
            seed=0,
            epochs=60,
            hidden=16,
            layers=2,
            lr=0.01,
            batch_size=8,
            patience=60,
            progress=False,
        )
        assert outcome.y_score is None and outcome.metric_name == "mae"
        np.testing.assert_allclose(outcome.y_true, [d.y.item() for d in test])
        assert outcome.train_loss[-1] < 0.5 * outcome.train_loss[0]
        metrics = outcome.metrics()
        assert np.isfinite(metrics["mae"]) and metrics["rmse"] >= metrics["mae"]
        assert outcome.val_loss[outcome.best_epoch] == min(outcome.val_loss)  # kept: lowest val loss
        if model == "qgin":  # the excitation histogram carries the graph size: well below the mean predictor
            assert metrics["mae"] < 0.8 * baseline


def test_fit_evaluate_rejects_bad_inputs(cyclic_vs_tree: list[Data]) -> None:
    plain = [as_data(nx.path_graph(4), k % 2, k) for k in range(6)]
    ok = dict(task="classification", num_classes=2, seed=0, epochs=1, progress=False)
    with pytest.raises(InvalidInputError, match="unknown model"):
        fit_evaluate_gnn("gcn", plain[:4], plain[4:], **ok)  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match="quantum features"):
        fit_evaluate_gnn("qgin", plain[:4], plain[4:], **ok)
    with pytest.raises(DatasetError, match="0..1"):
        fit_evaluate_gnn("gin", plain[:4], [as_data(nx.path_graph(3), 5, 9)], **ok)
    with pytest.raises(InvalidInputError, match="num_classes"):
        fit_evaluate_gnn("gin", plain[:4], plain[4:], **{**ok, "num_classes": 1})
    nan = as_data(nx.path_graph(3), 0, 8)
    nan.y = torch.tensor([float("nan")])
    with pytest.raises(DatasetError, match="NaN"):
        fit_evaluate_gnn("gin", plain[:4], [nan], **{**ok, "task": "regression"})
    with pytest.raises(DatasetError, match="at least 2 training graphs"):
        fit_evaluate_gnn("gin", plain[:1], plain[4:], **ok)
    failed = cyclic_vs_tree[0].clone()
    failed.q_ok = torch.tensor([False])
    with pytest.raises(DatasetError, match="q_ok=False"):
        fit_evaluate_gnn("qgin", [failed, *cyclic_vs_tree[1:6]], cyclic_vs_tree[6:8], **ok)
    with pytest.raises(DatasetError, match="no node features"):
        build_model(
            "gin",
            Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=2),
            task="classification",
            num_classes=2,
        )


def test_evaluate_gnn_runs_the_regression_folds_and_plots(pipeline: FeaturePipeline, tmp_path) -> None:
    from qgnn.evaluation import make_folds

    esol = load_dataset("ESOL", max_nodes=3)
    results = pipeline.run(list(esol))
    keep = [i for i, r in enumerate(results) if r.ok]
    assert len(keep) == len(esol)  # 1–3 heavy atoms always embed
    folds = make_folds(esol.y, folds=2, repeats=1, seed=0, task="regression")
    result, png = evaluate_gnn(
        "qgin",
        esol,
        results,
        folds,
        seed=0,
        epochs=8,
        out=tmp_path,
        progress=False,
        pe_dim=PE_DIM,
        hidden=8,
    )
    assert result.task == "regression" and len(result.folds) == 2
    for record in result.folds:
        assert set(record.metrics) == {"mae", "rmse"} and np.isfinite(record.metrics["mae"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.name == "ESOL-qgin-learning-curves.png"


def test_evaluate_gnn_fits_the_label_vocabulary_on_training_graphs_only(
    pipeline: FeaturePipeline, tmp_path
) -> None:
    from qgnn.evaluation import make_folds

    ptc = load_dataset("PTC_FM", max_nodes=4)  # 21 molecules; labels 0, 1, 13 and 17 occur in one each
    results = pipeline.run(list(ptc))
    assert all(r.ok for r in results)
    folds = make_folds(ptc.y, folds=3, repeats=1, seed=0, task="classification")
    result, _ = evaluate_gnn(
        "qgin",
        ptc,
        results,
        folds,
        seed=0,
        epochs=3,
        out=tmp_path,
        progress=False,
        pe_dim=PE_DIM,
        hidden=8,
        pooling="mean",
        label_observables=True,
    )
    everything = label_vocabulary(list(ptc))
    chosen = []
    for fold, record in zip(folds, result.folds, strict=True):
        train = label_vocabulary([ptc[int(i)] for i in fold.train])
        assert record.best_params["label_vocabulary"] == ",".join(map(str, train))
        chosen.append(train)
    assert any(v != everything for v in chosen)  # a label seen only in a test fold got no column
    with pytest.raises(InvalidInputError, match="qgin and qgps only"):
        evaluate_gnn("gin", ptc, None, folds, seed=0, out=tmp_path, label_observables=True)


def test_plot_learning_curves_writes_a_png(cyclic_vs_tree: list[Data], tmp_path) -> None:
    outcomes = [
        fit_evaluate_gnn(
            "gin",
            *split(cyclic_vs_tree),
            task="classification",
            num_classes=2,
            seed=s,
            epochs=3,
            hidden=8,
            layers=1,
            progress=False,
        )
        for s in (0, 1)
    ]
    path = plot_learning_curves(outcomes, tmp_path / "curves" / "gin.png")
    assert path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidInputError):
        plot_learning_curves([], tmp_path / "none.png")
