"""Tests of qgnn.data: shipped datasets, integrity checks, conversions, ``qgnn datasets``."""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from qgnn.data import (
    DATASET_NAMES,
    GraphDataset,
    dataset_summary,
    from_pyg,
    from_smiles,
    graph_index,
    load_dataset,
    to_pyg,
    validate_graph,
)
from qgnn.data.tu import parse_label_maps
from qgnn.errors import ChecksumError, DatasetError, InvalidGraphError, InvalidInputError, MissingExtraError

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
STATS = json.loads((DATASETS / "stats.json").read_text())
TU_NAMES = ["MUTAG", "PTC_FM", "PTC_FR", "PTC_MM", "AIDS", "NCI1", "IMDB-BINARY", "PROTEINS"]


def _rows(path: Path) -> list[list[str]]:
    """Plain-Python reader of a TU file (independent of qgnn's numpy parser)."""
    return [[x.strip() for x in line.split(",")] for line in path.read_text().splitlines() if line.strip()]


def _raw(name: str) -> dict[str, object]:
    folder = DATASETS / name
    a = [(int(u), int(v)) for u, v in _rows(folder / f"{name}_A.txt")]
    indicator = [int(r[0]) for r in _rows(folder / f"{name}_graph_indicator.txt")]
    labels = [int(r[0]) for r in _rows(folder / f"{name}_graph_labels.txt")]
    sizes = collections.Counter(indicator)
    return {
        "a_lines": len(a),
        "undirected": len({(min(u, v), max(u, v)) for u, v in a}),
        "nodes": len(indicator),
        "graphs": len(labels),
        "class_counts": {str(k): v for k, v in collections.Counter(labels).items()},
        "sizes": [sizes[g] for g in range(1, len(labels) + 1)],
    }


def _copy_dataset(tmp_path: Path, name: str) -> Path:
    root = tmp_path / "datasets"
    shutil.copytree(DATASETS / name, root / name)
    shutil.copy(DATASETS / "SHA256SUMS", root / "SHA256SUMS")
    return root


def _rewrite_sums(root: Path) -> None:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  ./{path.relative_to(root).as_posix()}\n")
    (root / "SHA256SUMS").write_text("".join(lines))


@pytest.mark.parametrize("name", TU_NAMES)
def test_tu_counts_match_stats_and_raw_files(name: str) -> None:
    raw, stats = _raw(name), STATS[name]
    dataset = load_dataset(name)
    assert len(dataset) == raw["graphs"] == stats["n_graphs"]
    counts = collections.Counter(str(dataset.classes[c]) for c in dataset.y.tolist())
    assert dict(counts) == raw["class_counts"] == stats["class_counts"]
    assert dataset.num_nodes.tolist() == raw["sizes"]
    assert int(dataset.num_nodes.sum()) == raw["nodes"] == stats["n_nodes_total"]
    graphs = list(dataset)
    assert sum(g.number_of_edges() for g in graphs) == raw["undirected"] == stats["n_undirected_edges"]
    assert [g.number_of_nodes() for g in graphs] == raw["sizes"]
    assert all(list(g.nodes) == list(range(g.number_of_nodes())) for g in graphs)
    assert [g.graph["index"] for g in graphs] == list(range(len(dataset)))
    summary = dataset_summary(name)
    assert summary["graphs_with_at_most"] == {
        k: stats["graphs_with_nodes"][f"le{k}"] for k in (12, 16, 20, 25)
    }
    assert (summary["nodes_min"], summary["nodes_median"], summary["nodes_max"]) == (
        stats["nodes_min"],
        stats["nodes_median"],
        stats["nodes_max"],
    )


def test_mutag_labels_elements_and_targets() -> None:
    mutag = load_dataset("mutag")
    assert mutag.name == "MUTAG" and mutag.task == "classification"
    assert mutag.classes == (-1, 1) and mutag.num_classes == 2
    assert mutag.node_label_names == {0: "C", 1: "N", 2: "O", 3: "F", 4: "I", 5: "Cl", 6: "Br"}
    assert mutag.edge_label_names == {0: "aromatic", 1: "single", 2: "double", 3: "triple"}
    g = mutag[0]
    raw_labels = [int(r[0]) for r in _rows(DATASETS / "MUTAG" / "MUTAG_node_labels.txt")][:17]
    assert [g.nodes[v]["label"] for v in g] == raw_labels
    carbons = [v for v in g if g.nodes[v]["label"] == 0]
    assert carbons and all(g.nodes[v]["element"] == "C" for v in carbons)
    assert {g.nodes[v]["element"] for v in g} == {"C", "N", "O"}
    a = [(int(u), int(v)) for u, v in _rows(DATASETS / "MUTAG" / "MUTAG_A.txt")]
    edge_codes = [int(r[0]) for r in _rows(DATASETS / "MUTAG" / "MUTAG_edge_labels.txt")]
    for (u, v), code in zip(a, edge_codes, strict=True):
        if u <= 17 and v <= 17:
            assert g.edges[u - 1, v - 1]["label"] == code
            assert g.edges[u - 1, v - 1]["bond"] == mutag.edge_label_names[code]
    y_raw = [int(r[0]) for r in _rows(DATASETS / "MUTAG" / "MUTAG_graph_labels.txt")]
    assert [mutag.classes[c] for c in mutag.y.tolist()] == y_raw
    assert mutag.y.dtype == np.int64 and set(mutag.y.tolist()) == {0, 1}
    assert (g.graph["y_original"], g.graph["y"], g.graph["dataset"]) == (y_raw[0], mutag.y[0], "MUTAG")


def test_label_maps_per_dataset() -> None:
    carbon = {"PTC_FM": 2, "PTC_FR": 5, "PTC_MM": 5, "AIDS": 0, "MUTAG": 0}
    for name, code in carbon.items():
        assert load_dataset(name).node_label_names[code] == "C"
    assert load_dataset("PTC_FM").node_label_names[5] == "Cl"
    assert load_dataset("PTC_FR").edge_label_names == {0: "triple", 1: "double", 2: "single", 3: "aromatic"}
    aids = load_dataset("AIDS")
    assert len(aids.node_label_names) == 38 and aids.node_label_names[37] == "Tb"
    assert aids.edge_label_names == {0: "single", 1: "double", 2: "triple"}
    g = aids[0]
    first = [float(x) for x in _rows(DATASETS / "AIDS" / "AIDS_node_attributes.txt")[0]]
    assert g.nodes[0]["attributes"] == pytest.approx(tuple(first))
    nci1, proteins, imdb = load_dataset("NCI1"), load_dataset("PROTEINS"), load_dataset("IMDB-BINARY")
    assert nci1.node_label_names is None and nci1.edge_label_names is None
    assert all(data["element"] is None and data["label"] >= 1 for _, data in nci1[0].nodes(data=True))
    assert proteins[0].nodes[0]["attributes"] == (23.0,) and proteins.classes == (1, 2)
    assert all(data == {} for _, data in imdb[0].nodes(data=True))
    assert all(data == {} for *_, data in imdb[0].edges(data=True))


def test_parse_label_maps_ignores_text_without_maps() -> None:
    assert parse_label_maps("README\n\nNo maps here.\n") == (None, None)
    node, edge = parse_label_maps("Node labels:\n\n  0  C\n  1  N\n\nEdge labels:\n\n  0  single\n")
    assert node == {0: "C", 1: "N"} and edge == {0: "single"}


def test_max_nodes_filter_keeps_original_indices() -> None:
    full = load_dataset("MUTAG")
    small = load_dataset("MUTAG", max_nodes=12)
    expected = [i for i, n in enumerate(_raw("MUTAG")["sizes"]) if n <= 12]
    assert len(small) == 29 == len(expected)
    assert small.indices.tolist() == expected
    assert small.num_classes == 2 and small.y.tolist() == full.y[expected].tolist()
    for position, g in enumerate(small):
        assert g.number_of_nodes() <= 12
        assert g.graph["index"] == expected[position]
        reference = full[expected[position]]
        assert set(g.edges) == set(reference.edges)
        assert dict(g.nodes(data="label")) == dict(reference.nodes(data="label"))
    assert len(load_dataset("MUTAG", max_nodes=9)) == 0
    assert repr(small) == "GraphDataset('MUTAG', graphs=29 of 188, 2 classes)"


def test_indexing_subsets_and_filter() -> None:
    ptc = load_dataset("PTC_MM")
    assert ptc[-1].graph["index"] == len(ptc) - 1
    part = ptc[10:20:3]
    assert isinstance(part, GraphDataset) and part.indices.tolist() == [10, 13, 16, 19]
    assert part[[0, -1]].indices.tolist() == [10, 19]
    assert ptc[np.array([5, 2])].indices.tolist() == [5, 2]
    mask = ptc.y == 1
    assert ptc[mask].indices.tolist() == np.flatnonzero(mask).tolist()
    assert len(ptc[[]]) == 0
    two_nodes = ptc.filter(lambda g: g.number_of_nodes() == 2)
    assert two_nodes.indices.tolist() == np.flatnonzero(ptc.num_nodes == 2).tolist() and len(two_nodes) > 0
    g = ptc[0]
    g.add_node(999)
    assert ptc[0].number_of_nodes() == int(ptc.num_nodes[0])
    with pytest.raises(IndexError, match="out of range"):
        ptc[len(ptc)]
    with pytest.raises(IndexError, match="out of range"):
        ptc[[0, 10_000]]
    with pytest.raises(IndexError, match="mask"):
        ptc[np.array([True, False])]
    with pytest.raises(TypeError, match="index with an int"):
        ptc["0"]
    with pytest.raises(TypeError):
        ptc[1.5]


def test_imdb_duplicate_lines_are_merged() -> None:
    lines = (DATASETS / "IMDB-BINARY" / "IMDB-BINARY_A.txt").read_text().splitlines()
    assert len(lines) == 386124 and len(set(lines)) == 193062
    imdb = load_dataset("imdb-binary")
    assert sum(g.number_of_edges() for g in imdb) == 96531


def test_bad_arguments() -> None:
    with pytest.raises(DatasetError, match="valid names.*MUTAG.*ESOL"):
        load_dataset("QM9")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset(3)  # type: ignore[arg-type]
    for bad in (0, -1):
        with pytest.raises(DatasetError, match=">= 1"):
            load_dataset("MUTAG", max_nodes=bad)
    for bad in (2.5, "12", True):
        with pytest.raises(DatasetError, match="must be an int"):
            load_dataset("MUTAG", max_nodes=bad)  # type: ignore[arg-type]
    assert len(load_dataset("MUTAG", max_nodes=np.int64(12))) == 29


def test_missing_root_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("MUTAG", root=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no SHA256SUMS"):
        load_dataset("MUTAG", root=tmp_path)
    root = _copy_dataset(tmp_path, "MUTAG")
    monkeypatch.setenv("QGNN_DATASETS_DIR", str(root))
    assert len(load_dataset("MUTAG")) == 188
    with pytest.raises(DatasetError, match="PTC_FM"):
        load_dataset("PTC_FM")


def test_checksum_mismatch_names_file(tmp_path: Path) -> None:
    root = _copy_dataset(tmp_path, "MUTAG")
    assert len(load_dataset("MUTAG", root=root)) == 188
    labels = root / "MUTAG" / "MUTAG_graph_labels.txt"
    labels.write_text(labels.read_text().replace("-1", "1", 1))
    with pytest.raises(ChecksumError, match=r"MUTAG_graph_labels\.txt.*git checkout -- datasets/MUTAG/"):
        load_dataset("MUTAG", root=root)
    readme = root / "MUTAG" / "README.txt"
    labels.write_bytes((DATASETS / "MUTAG" / "MUTAG_graph_labels.txt").read_bytes())
    readme.write_text(readme.read_text().replace("  0  C", "  0  Si"))
    with pytest.raises(ChecksumError, match=r"README\.txt"):
        load_dataset("MUTAG", root=root)
    sums = root / "SHA256SUMS"
    sums.write_text("".join(line for line in sums.read_text().splitlines(True) if "MUTAG_A.txt" not in line))
    readme.write_bytes((DATASETS / "MUTAG" / "README.txt").read_bytes())
    with pytest.raises(ChecksumError, match=r"MUTAG_A\.txt has no entry"):
        load_dataset("MUTAG", root=root)


def test_self_loop_in_files_is_rejected(tmp_path: Path) -> None:
    root = _copy_dataset(tmp_path, "MUTAG")
    folder = root / "MUTAG"
    indicator = [int(r[0]) for r in _rows(folder / "MUTAG_graph_indicator.txt")]
    node = indicator.index(4) + 1  # first node of the 4th graph (index 3), 1-based id
    with open(folder / "MUTAG_A.txt", "a") as f:
        f.write(f"{node}, {node}\n")
    with open(folder / "MUTAG_edge_labels.txt", "a") as f:
        f.write("1\n")
    with pytest.raises(ChecksumError):
        load_dataset("MUTAG", root=root)
    _rewrite_sums(root)
    with pytest.raises(InvalidGraphError, match=r"graph 3 of MUTAG: self-loop on node 0"):
        load_dataset("MUTAG", root=root)


def test_inconsistent_files_raise_dataset_error(tmp_path: Path) -> None:
    root = _copy_dataset(tmp_path, "MUTAG")
    labels = root / "MUTAG" / "MUTAG_node_labels.txt"
    labels.write_text("\n".join(labels.read_text().splitlines()[:-1]) + "\n")
    _rewrite_sums(root)
    with pytest.raises(DatasetError, match=r"MUTAG_node_labels\.txt has 3370 lines, expected 3371"):
        load_dataset("MUTAG", root=root)


def _assert_round_trip(g: nx.Graph) -> None:
    back = from_pyg(to_pyg(g))
    assert list(back.nodes) == list(g.nodes)
    assert {frozenset(e) for e in back.edges} == {frozenset(e) for e in g.edges}
    assert dict(back.nodes(data="label")) == dict(g.nodes(data="label"))
    assert {frozenset((u, v)): lab for u, v, lab in back.edges(data="label")} == {
        frozenset((u, v)): lab for u, v, lab in g.edges(data="label")
    }
    assert back.graph["index"] == g.graph["index"]
    assert back.graph["y"] == pytest.approx(g.graph["y"], rel=1e-6)
    assert type(back.graph["y"]) is type(g.graph["y"])


def test_round_trip_networkx_pyg() -> None:
    for name, positions in {
        "MUTAG": (0, 5, 187),
        "AIDS": (0, 1999),
        "IMDB-BINARY": (3,),
        "NCI1": (7,),
    }.items():
        dataset = load_dataset(name)
        for position in positions:
            _assert_round_trip(dataset[position])


def test_to_pyg_tensors_and_dataset_vocabulary() -> None:
    import torch
    from torch_geometric.data import Batch

    mutag = load_dataset("MUTAG")
    g = mutag[0]
    data = to_pyg(g, num_node_labels=7, num_edge_labels=4)
    n, m = g.number_of_nodes(), g.number_of_edges()
    assert data.num_nodes == n and data.x.shape == (n, 7) and data.edge_attr.shape == (2 * m, 4)
    assert data.x.argmax(dim=1).tolist() == [g.nodes[v]["label"] for v in g]
    pairs = data.edge_index.t().tolist()
    assert sorted(pairs) == sorted([[u, v] for u, v in g.edges] + [[v, u] for u, v in g.edges])
    for (u, v), row in zip(pairs, data.edge_attr, strict=True):
        assert int(row.argmax()) == g.edges[u, v]["label"]
    assert data.y.tolist() == [g.graph["y"]] and data.y.dtype == torch.long and data.idx.tolist() == [0]
    nci1 = load_dataset("NCI1", max_nodes=8)
    datas = nci1.to_pyg()
    assert len(datas) == len(nci1) > 0
    assert {d.x.shape[1] for d in datas} == {nci1.num_node_labels} == {38}
    batch = Batch.from_data_list(datas)
    assert batch.idx.tolist() == nci1.indices.tolist()
    assert batch.y.tolist() == nci1.y.tolist()
    imdb = to_pyg(load_dataset("IMDB-BINARY")[0])
    assert imdb.x is None and imdb.edge_attr is None and imdb.num_nodes == 20


def test_conversion_bad_inputs() -> None:
    g = nx.path_graph(3)
    g.nodes[0]["label"] = 1
    with pytest.raises(InvalidGraphError, match="1 of 3 nodes have a 'label'"):
        to_pyg(g)
    for v in g:
        g.nodes[v]["label"] = "C"
    with pytest.raises(InvalidGraphError, match="'C' is not an integer code"):
        to_pyg(g)
    for v in g:
        g.nodes[v]["label"] = 5
    with pytest.raises(InvalidGraphError, match="width 3"):
        to_pyg(g, num_node_labels=3)
    assert to_pyg(g).x.shape == (3, 6)
    g.graph.update(y="high", index=4)
    with pytest.raises(InvalidGraphError, match=r"graph 4: graph.graph\['y'\]"):
        to_pyg(g)
    with pytest.raises(InvalidGraphError, match="expected a torch_geometric.data.Data, got networkx"):
        from_pyg(g)  # type: ignore[arg-type]
    with pytest.raises(InvalidGraphError, match="expected a networkx.Graph, got builtins.list"):
        to_pyg([(0, 1)])  # type: ignore[arg-type]


def test_validate_graph() -> None:
    path = nx.path_graph(4)
    assert validate_graph(path) is path
    with pytest.raises(InvalidGraphError, match="graph 2: expected a networkx.Graph, got builtins.dict"):
        validate_graph({0: [1]}, index=2)
    with pytest.raises(InvalidGraphError, match="is directed"):
        validate_graph(nx.DiGraph([(0, 1)]))
    with pytest.raises(InvalidGraphError, match="multigraph"):
        validate_graph(nx.MultiGraph([(0, 1), (0, 1)]))
    with pytest.raises(InvalidGraphError, match="has no nodes"):
        validate_graph(nx.Graph())
    looped = nx.Graph([(0, 1), (1, 1)], index=7)
    with pytest.raises(InvalidGraphError, match=r"graph 7: has 1 self-loop\(s\) on node\(s\) 1"):
        validate_graph(looped)
    with pytest.raises(InvalidGraphError, match="graph 9: has 1 self-loop"):
        validate_graph(looped, index=9)
    looped.graph["index"] = np.int64(8)  # numpy integers count as indices too
    with pytest.raises(InvalidGraphError, match="graph 8: has 1 self-loop"):
        validate_graph(looped)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(17, 17), (np.int64(17), 17), (np.uint8(3), 3), (0, 0), (True, 5), ("17", 5), (17.0, 5), (None, 5)],
)
def test_graph_index_is_an_integer_or_the_default(value: object, expected: int) -> None:
    graph = nx.path_graph(2)
    graph.graph["index"] = value
    assert graph_index(graph, default=5) == expected
    assert type(graph_index(graph, default=5)) is int
    assert graph_index(nx.path_graph(2)) is None and graph_index(nx.path_graph(2), 4) == 4


def test_from_pyg_rejects_self_loops_and_reads_any_integer_idx() -> None:
    import torch
    from torch_geometric.data import Data

    loop = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 2]]), num_nodes=3, idx=torch.tensor([6]))
    with pytest.raises(
        InvalidGraphError, match=r"graph 6: edge_index has self-loop\(s\) on node\(s\) 2; .*remove_self_loops"
    ):
        from_pyg(loop)
    with pytest.raises(InvalidGraphError, match="graph 6: has no nodes"):
        from_pyg(Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0, idx=torch.tensor([6])))
    edge = torch.tensor([[0, 1], [1, 0]])
    assert from_pyg(Data(edge_index=edge, num_nodes=2, idx=np.int64(4))).graph["index"] == 4
    for idx in ("4", 4.0, True, torch.tensor([4.0]), torch.tensor([1, 2])):
        assert "index" not in from_pyg(Data(edge_index=edge, num_nodes=2, idx=idx)).graph


def test_esol_molecules() -> None:
    pytest.importorskip("rdkit")
    esol = load_dataset("ESOL")
    assert len(esol) == 1128 == STATS["ESOL"]["n_graphs"]
    assert esol.task == "regression" and esol.num_classes is None and esol.classes == ()
    with open(DATASETS / "ESOL" / "delaney-processed.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    targets = [float(r["measured log solubility in mols per litre"]) for r in rows]
    assert esol.y.dtype == np.float64 and esol.y.tolist() == targets
    amygdalin = esol[0]  # C20H27NO11: 32 heavy atoms
    assert (
        amygdalin.graph["smiles"] == rows[0]["smiles"].strip() and amygdalin.graph["compound"] == "Amigdalin"
    )
    assert amygdalin.number_of_nodes() == 32
    elements = collections.Counter(d["element"] for _, d in amygdalin.nodes(data=True))
    assert elements == {"C": 20, "O": 11, "N": 1}
    assert all(d["label"] == {"C": 6, "O": 8, "N": 7}[d["element"]] for _, d in amygdalin.nodes(data=True))
    bonds = collections.Counter(d["bond"] for *_, d in amygdalin.edges(data=True))
    assert bonds == {"single": 27, "aromatic": 6, "triple": 1}  # 34 bonds = 32 atoms - 1 + 3 rings
    summary = dataset_summary("esol")
    assert summary["graphs_with_at_most"] == {
        k: STATS["ESOL"]["graphs_with_nodes"][f"le{k}"] for k in (12, 16, 20, 25)
    }
    assert (summary["target_min"], summary["target_max"]) == (-11.6, 1.58)
    data = to_pyg(amygdalin, num_node_labels=esol.num_node_labels, num_edge_labels=esol.num_edge_labels)
    assert data.x.shape == (32, 54) and data.y.dtype.is_floating_point
    _assert_round_trip(amygdalin)
    for k in (0, 3, 500, 1127):  # one SMILES→graph converter: from_smiles gives ESOL's graphs
        mine, shipped = from_smiles(esol[k].graph["smiles"], index=k), esol[k]
        assert list(mine.nodes(data="label")) == list(shipped.nodes(data="label"))
        assert list(mine.nodes(data="element")) == list(shipped.nodes(data="element"))
        assert list(mine.edges(data=True)) == list(shipped.edges(data=True))
        assert (mine.graph["smiles"], mine.graph["index"]) == (shipped.graph["smiles"], k)


def test_esol_without_rdkit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rdkit", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'qgnn\[chem\]'"):
        load_dataset("ESOL")
    with pytest.raises(MissingExtraError, match=r"rdkit is not installed.*qgnn\[chem\]"):
        from_smiles("CCO")


def test_from_smiles_benzene_and_ethanol() -> None:
    pytest.importorskip("rdkit")
    benzene = from_smiles("c1ccccc1")
    assert benzene.number_of_nodes() == 6 and benzene.number_of_edges() == 6
    assert nx.is_isomorphic(benzene, nx.cycle_graph(6))
    assert set(benzene.nodes(data="element")) == {(k, "C") for k in range(6)}
    assert {d["label"] for _, d in benzene.nodes(data=True)} == {6}
    assert {(d["label"], d["bond"]) for *_, d in benzene.edges(data=True)} == {(0, "aromatic")}
    assert benzene.graph["smiles"] == "c1ccccc1" and "index" not in benzene.graph
    kekule = from_smiles(" C1=CC=CC=C1 ")  # RDKit perceives aromaticity: the same graph
    assert list(kekule.edges(data=True)) == list(benzene.edges(data=True))
    assert kekule.graph["smiles"] == "C1=CC=CC=C1"
    ethanol = from_smiles("CCO", index=7)
    assert list(ethanol.nodes(data=True)) == [
        (0, {"label": 6, "element": "C"}),
        (1, {"label": 6, "element": "C"}),
        (2, {"label": 8, "element": "O"}),
    ]
    assert list(ethanol.edges(data=True)) == [
        (0, 1, {"label": 1, "bond": "single"}),
        (1, 2, {"label": 1, "bond": "single"}),
    ]
    assert graph_index(ethanol) == 7 and validate_graph(ethanol) is ethanol
    explicit = from_smiles("[H]OC([H])([H])C([H])([H])[H]")  # written hydrogens are dropped too
    assert sorted(explicit.nodes(data="element"), key=lambda x: x[1]) == [(1, "C"), (2, "C"), (0, "O")]
    assert explicit.number_of_edges() == 2
    bonds = {d["bond"]: d["label"] for *_, d in from_smiles("C#CC=CC").edges(data=True)}
    assert bonds == {"triple": 3, "single": 1, "double": 2}  # non-aromatic code = bond order
    a, b = to_pyg(ethanol), to_pyg(benzene)  # one one-hot width for every molecule
    assert a.x.shape == (3, 119) and b.x.shape == (6, 119) and a.edge_attr.shape[1] == 4
    assert a.x[2].argmax().item() == 8


def test_from_smiles_bad_input() -> None:
    pytest.importorskip("rdkit")
    with pytest.raises(InvalidGraphError, match=r"graph 4: RDKit cannot parse SMILES 'C1CC\(';"):
        from_smiles("C1CC(", index=4)
    with pytest.raises(InvalidGraphError, match=r"^graph: RDKit cannot parse SMILES 'not a molecule'"):
        from_smiles("not a molecule")
    with pytest.raises(InvalidGraphError, match=r"graph 2: SMILES '\[H\]\[H\]' has no heavy atom"):
        from_smiles("[H][H]", index=2)
    with pytest.raises(InvalidGraphError, match="SMILES string is empty"):
        from_smiles("  ")
    with pytest.raises(InvalidInputError, match="a SMILES string is expected, got int"):
        from_smiles(5)  # type: ignore[arg-type]
    for index in ("3", 1.0, True):
        with pytest.raises(InvalidInputError, match="index must be an integer"):
            from_smiles("CCO", index=index)  # type: ignore[arg-type]
    assert from_smiles("CCO", index=np.int64(3)).graph["index"] == 3
    from qgnn.data.esol import read_esol

    table = "Compound ID,measured log solubility in mols per litre,smiles\nok,1.0,CCO\nbad,2.0,C1CC\n"
    with pytest.raises(DatasetError, match=r"esol.csv row 1 \(line 3\): RDKit cannot parse SMILES 'C1CC'"):
        read_esol(table.encode(), "esol.csv")


def _cli_output(capsys: pytest.CaptureFixture[str]) -> str:
    from qgnn.cli import datasets as cli

    parser = argparse.ArgumentParser(prog="qgnn")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["datasets"])
    assert args.handler(args) == 0
    return capsys.readouterr().out


def test_cli_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {line.split()[0]: line for line in _cli_output(capsys).splitlines()[2:]}
    assert list(rows) == list(DATASET_NAMES)
    assert rows["MUTAG"].split()[2] == "188" and "-1: 63, 1: 125" in rows["MUTAG"]
    assert rows["MUTAG"].split()[-4:] == ["29", "76", "128", "179"]
    assert rows["IMDB-BINARY"].split()[-4:] == ["166", "499", "696", "806"]
    monkeypatch.setitem(sys.modules, "rdkit", None)
    rows = {line.split()[0]: line for line in _cli_output(capsys).splitlines()[2:]}
    assert "needs the chem extra" in rows["ESOL"] and "qgnn[chem]" in rows["ESOL"]
    assert rows["NCI1"].split()[2] == "4110"


# --- your own dataset: a TU-format folder ---------------------------------------------------------

# Three graphs: a labelled triangle (class 1), an edge listed twice and one way only (class -1), a path.
TOY = {
    "TOY_A.txt": "1, 2\n2, 1\n2, 3\n3, 2\n1, 3\n3, 1\n4, 5\n4, 5\n6, 7\n7, 8\n",
    "TOY_graph_indicator.txt": "1\n1\n1\n2\n2\n3\n3\n3\n",
    "TOY_graph_labels.txt": "1\n-1\n1\n",
    "TOY_node_labels.txt": "0\n1\n0\n2\n2\n0\n0\n1\n",
    "TOY_edge_labels.txt": "0\n0\n1\n1\n0\n0\n2\n2\n1\n1\n",
    "README.txt": "Node labels:\n\n  0  C\n  1  N\n  2  O\n\nEdge labels:\n\n  0  single\n  1  double\n",
}


def _write_toy(folder: Path, changes: dict[str, str | None] | None = None) -> Path:
    """Write TOY into ``folder``; ``changes`` maps a file name to new text, or to None to leave it out."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in {**TOY, **(changes or {})}.items():
        if text is not None:
            (folder / file).write_text(text)
    return folder


def test_folder_dataset_is_read_like_a_shipped_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _write_toy(tmp_path / "toy")
    with caplog.at_level("INFO", logger="qgnn.data"):
        toy = load_dataset(folder)
    assert (toy.name, len(toy), toy.classes, toy.y.tolist()) == ("TOY", 3, (-1, 1), [1, 0, 1])
    triangle, pair, path = list(toy)
    assert sorted(triangle.edges) == [(0, 1), (0, 2), (1, 2)] and list(pair.edges) == [(0, 1)]
    assert sorted(path.edges) == [(0, 1), (1, 2)]  # each edge listed one way only
    assert [triangle.nodes[v]["element"] for v in triangle] == ["C", "N", "C"]
    assert triangle.edges[1, 2]["bond"] == "double" and pair.edges[0, 1]["label"] == 2
    assert toy.edge_label_names == {0: "single", 1: "double"} and toy.num_edge_labels == 3
    vocabulary = {"num_node_labels": 3, "num_edge_labels": 3}
    assert pair.graph == {"y": 0, "y_original": -1, "index": 1, "dataset": "TOY", **vocabulary}
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in TOY.items()}
    listing = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    assert toy.checksums == digests and toy.source == folder.resolve()
    assert toy.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert toy.sha256 in caplog.text and "TOY: read 3 graphs" in caplog.text
    assert load_dataset(str(folder), max_nodes=2).indices.tolist() == [1]  # a path as a string works too
    assert dataset_summary(folder)["class_counts"] == {-1: 1, 1: 2}
    pyg_layout = _write_toy(tmp_path / "TOY" / "raw")  # torch_geometric's TUDataset layout
    assert load_dataset(tmp_path / "TOY").sha256 == toy.sha256
    # edits are seen: the cache is keyed on file stats
    (folder / "TOY_graph_labels.txt").write_text("1\n1\n1\n")
    changed = load_dataset(folder)
    assert changed.classes == (1,) and changed.sha256 != toy.sha256 and pyg_layout.is_dir()


def test_shipped_dataset_reports_what_it_read() -> None:
    mutag = load_dataset("MUTAG", max_nodes=12)
    sums = dict(line.split()[::-1] for line in (DATASETS / "SHA256SUMS").read_text().splitlines())
    files = [f"MUTAG_{part}.txt" for part in ("A", "edge_labels", "graph_indicator", "graph_labels")]
    expected = {f: sums[f"./MUTAG/{f}"] for f in [*files, "MUTAG_node_labels.txt", "README.txt"]}
    assert mutag.checksums == expected and mutag.source == DATASETS.resolve() / "MUTAG"
    assert len(mutag.sha256) == 64 and mutag.sha256 == load_dataset("MUTAG").sha256


# (part of the file name "TOY_<part>.txt", its new text or None, the message expected)
FOLDER_ERRORS: list[tuple[str, str | None, str]] = [
    ("A", "1, 2\n2, 1\n2, 3, 4\n", r"TOY_A\.txt line 3: '2, 3, 4' has 3 comma-separated value"),
    ("A", "1, 2\n0, 1\n", r"TOY_A\.txt line 2: node ids 0, 1 must lie in 1\.\.8"),
    ("node_labels", "0\nC\n0\n2\n2\n0\n0\n1\n", r"node_labels\.txt line 2: 'C' is not an integer; fix"),
    ("node_labels", "0\n1\n0\n2\n-2\n0\n0\n1\n", r"node_labels\.txt line 5: label -2 is negative"),
    ("node_labels", "0\n1\n0\n2\n2\n0\n0\n", r"node_labels\.txt has 7 lines, expected 8 \(one per node"),
    ("graph_labels", "1\n0.5\n1\n", r"graph_labels\.txt line 2: '0\.5' is not an integer"),
    ("graph_labels", "1\n-1\n1\n1\n", r"indicator\.txt numbers 3 graphs but .*labels\.txt has 4 lines"),
    ("graph_labels", "", r"TOY_graph_labels\.txt is empty"),
    ("graph_indicator", "1\n1\n1\n\n2\n2\n3\n3\n3\n", r"indicator\.txt line 4 is empty; remove empty"),
    ("graph_indicator", "1\n1\n1\n2\n2\n1\n3\n3\n", r"indicator\.txt line 6: graph id 1 follows 2; list"),
    ("graph_indicator", "1\n1\n1\n3\n3\n3\n3\n3\n", r"indicator\.txt line 4: graph id 3 follows 1"),
    ("graph_indicator", "2\n2\n2\n2\n2\n3\n3\n3\n", r"indicator\.txt line 1: graph id 2, expected 1"),
    ("edge_labels", "0\n0\n1\n", r"has 3 lines, expected 10 \(one per line of TOY_A\.txt\)"),
    ("edge_labels", "0\n1\n1\n1\n0\n0\n2\n2\n1\n1\n", r"edge_labels\.txt line 2 gives edge 2-1 a label"),
    ("graph_labels", None, r"lacks TOY_graph_labels\.txt; a TU dataset needs TOY_A\.txt, TOY_graph_ind"),
    ("A", None, r"has no <NAME>_A\.txt \(it has README\.txt, TOY_edge_labels"),
]


@pytest.mark.parametrize(("part", "text", "match"), FOLDER_ERRORS)
def test_folder_errors_name_file_line_and_fix(
    tmp_path: Path, part: str, text: str | None, match: str
) -> None:
    folder = _write_toy(tmp_path / "toy", {f"TOY_{part}.txt": text})
    with pytest.raises(DatasetError, match=match):
        load_dataset(folder)


@pytest.mark.parametrize(
    ("extra_edge", "error", "match"),
    [
        (
            "5, 5",
            InvalidGraphError,
            r"graph 1 of TOY: self-loop on node 1 \(.*TOY_A\.txt line 11.*remove those",
        ),
        ("3, 4", DatasetError, r"TOY_A\.txt line 11 joins nodes of graphs 1 and 2 .*same graph"),
    ],
)
def test_folder_edge_errors(tmp_path: Path, extra_edge: str, error: type[Exception], match: str) -> None:
    changes = {
        "TOY_A.txt": f"{TOY['TOY_A.txt']}{extra_edge}\n",
        "TOY_edge_labels.txt": TOY["TOY_edge_labels.txt"] + "0\n",
    }
    with pytest.raises(error, match=match):
        load_dataset(_write_toy(tmp_path / "toy", changes))


def test_folder_argument_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty has no files; a TU dataset needs NAME_A\.txt.*chrsmrrs"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match=r"nowhere does not exist"):
        load_dataset(str(tmp_path / "nowhere"))
    folder = _write_toy(tmp_path / "toy")
    with pytest.raises(DatasetError, match=r"TOY_A\.txt is a file: pass the folder"):
        load_dataset(folder / "TOY_A.txt")
    with pytest.raises(DatasetError, match="drop root"):
        load_dataset(folder, root=DATASETS)
    with pytest.raises(DatasetError, match="valid names.*; or pass the path of a folder in TU format"):
        load_dataset("my_data")
    with pytest.raises(DatasetError, match=r"several TU datasets \(MORE, TOY\): put each in its own folder"):
        load_dataset(_write_toy(tmp_path / "two", {"MORE_A.txt": "1, 2\n"}))


# --- one one-hot width per dataset, and the PyG round trip ------------------------------------------


def test_converted_shipped_dataset_batches_in_a_dataloader() -> None:
    from torch_geometric.loader import DataLoader

    ptc = load_dataset("PTC_FM", max_nodes=12)
    own_widths = {max(label for _, label in g.nodes(data="label")) + 1 for g in ptc}
    assert len(own_widths) > 1  # graph by graph, the one-hot widths would differ
    datas = [to_pyg(g) for g in ptc]  # no num_node_labels passed
    batches = list(DataLoader(datas, batch_size=64))
    assert sum(b.num_graphs for b in batches) == len(ptc) and len(batches) > 1
    assert {tuple(b.x.shape[1:]) for b in batches} == {(ptc.num_node_labels,)} == {(18,)}
    assert {tuple(b.edge_attr.shape[1:]) for b in batches} == {(ptc.num_edge_labels,)} == {(4,)}
    first = batches[0]
    assert first.x.argmax(dim=1).tolist() == [label for g in ptc[:64] for _, label in g.nodes(data="label")]


def test_from_pyg_reads_one_hot_labels_and_round_trips_their_width() -> None:
    import torch
    from torch_geometric.data import Data

    mutag = load_dataset("MUTAG")
    data = to_pyg(mutag[0])
    back = from_pyg(data)
    again = to_pyg(back)
    assert (back.graph["num_node_labels"], back.graph["num_edge_labels"]) == (7, 4)
    assert torch.equal(again.x, data.x) and torch.equal(again.edge_attr, data.edge_attr)
    # the form of torch_geometric's TUDataset: one-hot x and edge_attr, no label codes
    plain = Data(x=data.x, edge_index=data.edge_index, edge_attr=data.edge_attr, y=data.y)
    graph = from_pyg(plain)
    assert dict(graph.nodes(data="label")) == dict(mutag[0].nodes(data="label"))
    assert {frozenset((u, v)): c for u, v, c in graph.edges(data="label")} == {
        frozenset((u, v)): c for u, v, c in mutag[0].edges(data="label")
    }
    assert torch.equal(to_pyg(graph).x, data.x) and torch.equal(to_pyg(graph).edge_attr, data.edge_attr)
    features = Data(x=torch.rand(3, 2), edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=3)
    assert dict(from_pyg(features).nodes(data="label")) == {0: None, 1: None, 2: None}
    skewed = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), edge_attr=torch.eye(2), num_nodes=2)
    with pytest.raises(InvalidGraphError, match="edge 1-0 has label 1 one way and 0 the other"):
        from_pyg(skewed)


def test_recorded_width_is_checked() -> None:
    g = nx.path_graph(3)
    nx.set_node_attributes(g, 2, "label")
    g.graph["num_node_labels"] = 2
    with pytest.raises(InvalidGraphError, match=r"label 2 does not fit a one-hot of width 2 \(from graph"):
        to_pyg(g)
    assert to_pyg(g, num_node_labels=5).x.shape == (3, 5)  # the argument wins
    g.graph["num_node_labels"] = "7"
    with pytest.raises(InvalidGraphError, match=r"graph.graph\['num_node_labels'\] = '7' is not a non-neg"):
        to_pyg(g)
