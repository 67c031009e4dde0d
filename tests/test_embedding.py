"""Tests of qgnn.embedding: unit-disk embeddings checked by Pulser's own device validation
and by an independent distance computation (scipy), never by the module's own quality code."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from matplotlib.figure import Figure
from pulser.devices import AnalogDevice, DigitalAnalogDevice, MockDevice
from pulser.json.abstract_repr.deserializer import deserialize_device
from scipy.spatial.distance import pdist, squareform

import qgnn.embedding as embedding_package
from qgnn.cli import embed as embed_cli
from qgnn.data import load_dataset
from qgnn.embedding import (
    Embedding,
    EmbeddingWarning,
    embed,
    embed_dataset,
    max_unit_disk_degree,
)
from qgnn.errors import InvalidGraphError, InvalidInputError, NotEmbeddableError, ScheduleError

OMEGA = 2 * math.pi
SPECS = Path(__file__).parent / "fixtures" / "pasqal_public_device_specs.json"
CALIBRATED = Path(__file__).parent / "fixtures" / "pasqal_calibrated_device_specs.json"


@pytest.fixture(scope="module")
def fresnel():
    """The recorded Fresnel QPU spec: requires a layout, 10–200 traps."""
    return deserialize_device(json.loads(SPECS.read_text())["FRESNEL"])


def independent_exact(emb: Embedding, graph: nx.Graph, device, omega: float = OMEGA) -> bool:
    """Validate the register on the device and recompute the unit-disk property with scipy."""
    device.validate_register(emb.register)
    if device.requires_layout:
        assert emb.register.layout is not None
        device.validate_layout(emb.register.layout)
    assert emb.register.qubit_ids == emb.qubit_ids
    coords = np.array([np.asarray(emb.register.qubits[q], dtype=float) for q in emb.qubit_ids])
    np.testing.assert_allclose(coords, emb.positions, atol=1e-9)
    assert emb.node_ids == tuple(graph.nodes)
    assert emb.qubit_of == dict(zip(graph.nodes, emb.qubit_ids, strict=True))
    radius = device.rydberg_blockade_radius(omega)
    assert emb.blockade_radius == pytest.approx(radius)
    dist = squareform(pdist(emb.positions))
    n = len(emb.node_ids)
    if n > 1:
        assert dist[np.triu_indices(n, 1)].min() >= device.min_atom_distance - 1e-6
    if device.max_radial_distance is not None:
        assert np.linalg.norm(emb.positions, axis=1).max() <= device.max_radial_distance + 1e-6
    wrong = []
    for i in range(n):
        for j in range(i + 1, n):
            u, v = emb.node_ids[i], emb.node_ids[j]
            if graph.has_edge(u, v) != (dist[i, j] < radius) or dist[i, j] == radius:
                wrong.append((u, v))
    assert set(wrong) == set(emb.quality.violated_pairs)
    assert emb.quality.is_exact == (not wrong)
    return not wrong


def k23() -> nx.Graph:
    """K2,3, a classic graph that is not a unit-disk graph (no K1,6, no large clique)."""
    return nx.complete_bipartite_graph(2, 3)


KNOWN_EXACT = {
    "P2": nx.path_graph(2),
    "P6": nx.path_graph(6),
    "C4": nx.cycle_graph(4),
    "C5": nx.cycle_graph(5),
    "C6": nx.cycle_graph(6),
    "triangle": nx.complete_graph(3),
    "square+diagonal": nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]),
    "K4": nx.complete_graph(4),
    "K1,5": nx.star_graph(5),
    "two edges": nx.Graph([("a", "b"), ("c", "d")]),
    "isolated nodes": nx.empty_graph(3),
    "single node": nx.empty_graph(1),
}


@pytest.mark.parametrize("name", list(KNOWN_EXACT))
def test_known_unit_disk_graphs_embed_exactly(name: str) -> None:
    graph = KNOWN_EXACT[name]
    emb = embed(graph, AnalogDevice)
    assert independent_exact(emb, graph, AnalogDevice)
    assert emb.device_name == "AnalogDevice"
    assert emb.positions.shape == (graph.number_of_nodes(), 2)
    assert not emb.positions.flags.writeable


def test_margins_and_counts_match_independent_distances() -> None:
    graph = nx.cycle_graph(6)
    emb = embed(graph)
    assert independent_exact(emb, graph, AnalogDevice)
    dist = squareform(pdist(emb.positions))
    edges = [dist[u, v] for u, v in graph.edges]
    non_edges = [dist[u, v] for u, v in nx.non_edges(graph)]
    q = emb.quality
    assert (q.n_edges, q.edges_inside, q.n_non_edges, q.non_edges_outside) == (6, 6, 9, 9)
    assert q.edge_margin == pytest.approx(emb.blockade_radius - max(edges))
    assert q.non_edge_margin == pytest.approx(min(non_edges) - emb.blockade_radius)
    # the optimiser aims at a 7 % margin on each side
    assert q.edge_margin > 0.05 * emb.blockade_radius
    assert q.non_edge_margin > 0.05 * emb.blockade_radius


@pytest.mark.parametrize("strict", [True, False])
def test_k16_star_is_rejected_with_the_centre_named(strict: bool) -> None:
    graph = nx.star_graph(6)
    with pytest.raises(NotEmbeddableError, match=r"node 0 .*K1,6"):
        embed(graph, strict=strict)


def test_k16_inside_a_larger_graph_is_found() -> None:
    graph = nx.star_graph(6)
    graph.add_edges_from([(1, 7), (7, 8)])  # leaves stay pairwise non-adjacent
    graph.graph["index"] = 17
    with pytest.raises(NotEmbeddableError, match=r"graph 17: node 0 "):
        embed(graph)


def test_five_clique_exceeds_the_packing_at_analog_ratio() -> None:
    # r/d = 1.437 < golden ratio: 5 atoms 5 µm apart cannot be pairwise within r
    with pytest.raises(NotEmbeddableError, match="5-clique"):
        embed(nx.complete_graph(5), AnalogDevice)
    # a larger ratio (DigitalAnalogDevice, r/d = 2.44) allows it
    emb = embed(nx.complete_graph(5), DigitalAnalogDevice)
    assert independent_exact(emb, nx.complete_graph(5), DigitalAnalogDevice)


@pytest.mark.parametrize("rho", [1.1, 1.3, 1.4373, 1.6, 1.9])
def test_packing_bound_matches_brute_force_angles(rho: float) -> None:
    # smallest angle at a hub between two neighbours u, w with d ≤ |hu|, |hw| ≤ r and |uw| ≥ d (d = 1)
    a, b = np.meshgrid(np.linspace(1, rho, 401), np.linspace(1, rho, 401))
    cos = np.clip((a * a + b * b - 1) / (2 * a * b), -1, 1)
    theta = float(np.arccos(cos.max()))
    assert max_unit_disk_degree(rho, 1.0) == math.floor(2 * math.pi / theta + 1e-9)


def test_degree_above_packing_bound_is_rejected_and_the_bound_is_reached() -> None:
    radius = AnalogDevice.rydberg_blockade_radius(OMEGA)
    assert max_unit_disk_degree(radius, AnalogDevice.min_atom_distance) == 8
    wheel = nx.wheel_graph(10)  # hub 0 with 9 neighbours on a 9-cycle: no K1,6, no 4-clique
    with pytest.raises(NotEmbeddableError, match=r"node 0 has degree 9"):
        embed(wheel, AnalogDevice)
    eight = nx.wheel_graph(9)  # 8 spokes fit: neighbours 45° apart at ~6.6 µm from the hub
    assert independent_exact(embed(eight, AnalogDevice, strict=True), eight, AnalogDevice)


def test_edges_impossible_when_radius_below_min_distance() -> None:
    device = dataclasses.replace(MockDevice, min_atom_distance=12)  # r(2π) = 9.76 µm < 12 µm
    with pytest.raises(NotEmbeddableError, match="not larger than"):
        embed(nx.path_graph(2), device)
    emb = embed(nx.empty_graph(3), device)
    assert independent_exact(emb, nx.empty_graph(3), device)


def test_non_unit_disk_graph_warns_or_raises_when_strict() -> None:
    graph = k23()
    with pytest.warns(EmbeddingWarning, match="no exact unit-disk embedding"):
        emb = embed(graph)
    assert not independent_exact(emb, graph, AnalogDevice)
    assert emb.quality.n_violations > 0
    with pytest.raises(NotEmbeddableError, match="no exact unit-disk embedding"):
        embed(graph, strict=True)


def test_deterministic_for_a_seed() -> None:
    graph = load_dataset("MUTAG", max_nodes=14)[3]
    a, b = embed(graph, seed=5), embed(graph, seed=5)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert independent_exact(a, graph, AnalogDevice)
    assert a.index == graph.graph["index"]
    with pytest.warns(EmbeddingWarning):
        c = embed(k23(), seed=1)
    with pytest.warns(EmbeddingWarning):
        d = embed(k23(), seed=1)
    np.testing.assert_array_equal(c.positions, d.positions)  # the random kicks are seeded too
    assert not independent_exact(c, k23(), AnalogDevice)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [[(0, 1)], {"a": 1}, None, "graph"])
def test_not_a_graph(bad: object) -> None:
    with pytest.raises(InvalidGraphError, match=type(bad).__name__):
        embed(bad)  # type: ignore[arg-type]


def test_directed_multigraph_empty_selfloop() -> None:
    with pytest.raises(InvalidGraphError, match="directed"):
        embed(nx.DiGraph([(0, 1)]))
    with pytest.raises(InvalidGraphError, match="multigraph"):
        embed(nx.MultiGraph([(0, 1), (0, 1)]))
    with pytest.raises(InvalidGraphError, match="no nodes"):
        embed(nx.Graph())
    loop = nx.Graph([(0, 1), (1, 1)])
    with pytest.raises(InvalidGraphError, match="graph 4: .*self-loop"):
        embed(loop, index=4)


def test_too_many_nodes_for_the_device() -> None:
    graph = nx.empty_graph(AnalogDevice.max_atom_num + 1)
    graph.graph["index"] = 9
    with pytest.raises(InvalidGraphError, match=r"graph 9: has 81 nodes .* at most 80"):
        embed(graph)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_initial_positions(value: float) -> None:
    positions = {0: (0.0, 0.0), 1: (6.0, value), 2: (12.0, 0.0)}
    with pytest.raises(InvalidGraphError, match="node 1 is not finite"):
        embed(nx.path_graph(3), initial_positions=positions, index=2)


def test_malformed_initial_positions() -> None:
    graph = nx.path_graph(3)
    with pytest.raises(InvalidGraphError, match="missing"):
        embed(graph, initial_positions={0: (0, 0), 1: (6, 0)})
    with pytest.raises(InvalidGraphError, match="unknown"):
        embed(graph, initial_positions={0: (0, 0), 1: (6, 0), 2: (12, 0), 9: (0, 9)})
    with pytest.raises(InvalidGraphError, match="shape"):
        embed(graph, initial_positions={0: (0, 0, 0), 1: (6, 0), 2: (12, 0)})
    with pytest.raises(InvalidGraphError, match="not numeric"):
        embed(graph, initial_positions={0: ("a", 0), 1: (6, 0), 2: (12, 0)})
    with pytest.raises(InvalidGraphError, match="map each node"):
        embed(graph, initial_positions=[(0, 0), (6, 0), (12, 0)])  # type: ignore[arg-type]


def test_exact_initial_positions_are_kept_up_to_centring() -> None:
    graph = nx.path_graph(3)
    start = {0: (10.0, 3.0), 1: (16.0, 3.0), 2: (22.0, 3.0)}  # edges 6 µm, non-edge 12 µm
    emb = embed(graph, initial_positions=start)
    assert emb.start_layout == "initial"
    np.testing.assert_allclose(emb.positions, [[-6, 0], [0, 0], [6, 0]], atol=1e-6)
    assert independent_exact(emb, graph, AnalogDevice)
    again = embed(graph, DigitalAnalogDevice, initial_positions=emb.positions_by_node)
    assert independent_exact(again, graph, DigitalAnalogDevice)


def test_bad_rabi_frequency_device_and_margin() -> None:
    graph = nx.path_graph(2)
    for omega in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ScheduleError, match="positive finite"):
            embed(graph, rabi_frequency=omega)
    with pytest.raises(ScheduleError, match="exceeds AnalogDevice"):
        embed(graph, rabi_frequency=2 * math.pi * 3)  # AnalogDevice drives up to 2π·2 rad/µs
    with pytest.raises(InvalidInputError, match="pulser Device"):
        embed(graph, device="AnalogDevice")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="margin"):
        embed(graph, margin=0.7)
    for margin in ("x", None, True, math.nan):
        with pytest.raises(InvalidInputError, match="margin must be a number"):
            embed(graph, margin=margin)  # type: ignore[arg-type]
    for seed in ("x", 1.5, None, True, -1):
        with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
            embed(graph, seed=seed)  # type: ignore[arg-type]
    assert embed(graph, seed=np.int64(3)).is_exact


@pytest.mark.parametrize(("index", "expected"), [(np.int64(12), 12), (True, None), ("12", None), (1.0, None)])
def test_index_read_from_the_graph_with_the_shared_rule(index: object, expected: int | None) -> None:
    graph = nx.path_graph(2)
    graph.graph["index"] = index
    emb = embed(graph)
    assert emb.index == expected and (expected is None or type(emb.index) is int)
    graph.add_edge(1, 1)
    with pytest.raises(InvalidGraphError, match="graph 12: " if expected else "graph: "):
        embed(graph)


# ---------------------------------------------------------------- layouts and devices


def test_layout_requiring_qpu_spec(fresnel) -> None:
    assert fresnel.requires_layout
    graph = nx.cycle_graph(5)
    emb = embed(graph, fresnel)
    assert independent_exact(emb, graph, fresnel)
    layout = emb.register.layout
    assert layout is not None and layout.number_of_traps >= fresnel.min_layout_traps
    traps = np.asarray(layout.coords)
    for p in emb.positions:  # every atom sits on a trap of the layout
        assert np.min(np.linalg.norm(traps - p, axis=1)) < 1e-6
    assert emb.device_name == "Fresnel"


def test_virtual_device_requiring_layout() -> None:
    device = AnalogDevice.to_virtual()
    assert device.requires_layout
    graph = nx.cycle_graph(4)
    emb = embed(graph, device)
    assert independent_exact(emb, graph, device)


def test_unconstrained_device_without_layout() -> None:
    # MockDevice: no layout, no minimum distance, no radial limit, no atom limit
    assert not MockDevice.requires_layout
    graph = nx.cycle_graph(6)
    emb = embed(graph, MockDevice)
    assert emb.register.layout is None
    assert independent_exact(emb, graph, MockDevice)


def test_lower_rabi_frequency_widens_the_radius() -> None:
    graph = nx.cycle_graph(5)
    emb = embed(graph, rabi_frequency=math.pi)
    assert emb.blockade_radius > AnalogDevice.rydberg_blockade_radius(OMEGA)
    assert independent_exact(emb, graph, AnalogDevice, omega=math.pi)


# ---------------------------------------------------------------- real molecules


@pytest.mark.parametrize("name", ["MUTAG", "PTC_FM"])
def test_real_molecules_embed_exactly(name: str) -> None:
    graphs = load_dataset(name, max_nodes=16)
    has_rdkit = importlib.util.find_spec("rdkit") is not None
    for k in (0, 7, 21):
        graph = graphs[k]
        emb = embed(graph)
        assert emb.index == graph.graph["index"]
        assert independent_exact(emb, graph, AnalogDevice), (name, emb.index)
        if has_rdkit:  # molecules start from RDKit's 2D depiction
            assert emb.start_layout.startswith("rdkit")


def test_embed_dataset_report(tmp_path: Path) -> None:
    graphs = list(load_dataset("MUTAG", max_nodes=12))[:4]
    bad = nx.star_graph(6)
    bad.graph["index"] = 1000
    report = embed_dataset([*graphs, k23(), bad], progress=False)
    statuses = [r.status for r in report.records]
    assert statuses == ["exact"] * 4 + ["approximate", "failed"]
    assert [r.index for r in report.records] == [g.graph["index"] for g in graphs] + [4, 1000]
    failed = report.records[-1]
    assert failed.error == "NotEmbeddableError" and "K1,6" in (failed.reason or "")
    assert report.embeddings[-1] is None
    for graph, emb in zip(graphs, report.embeddings, strict=False):
        assert emb is not None and independent_exact(emb, graph, AnalogDevice)
    approx = report.embeddings[4]
    assert approx is not None and not independent_exact(approx, k23(), AnalogDevice)
    summary = report.summary()
    assert (summary["exact"], summary["approximate"], summary["failed"]) == (4, 1, 1)
    assert summary["exact_fraction"] == pytest.approx(4 / 6)
    assert summary["failures"] == {"NotEmbeddableError": 1}
    path = report.to_json(tmp_path / "out" / "report.json")
    data = json.loads(path.read_text())
    assert data["summary"]["n_graphs"] == 6 and len(data["graphs"]) == 6
    assert data["graphs"][4]["n_violations"] == report.embeddings[4].quality.n_violations
    rows = table_rows(report.table())
    assert (rows["exact"], rows["approximate"], rows["failed"], rows["total"]) == (4, 1, 1, 6)
    assert "  graph 1000 (7 nodes) failed: graph 1000: node 0 " in report.table()
    approx_line = f"  graph 4 (5 nodes) approximate: {approx.quality.n_violations} pair(s) violate"
    assert approx_line in report.table()
    assert summary["adjusted_rabi_frequency"] == 0
    assert {r.rabi_frequency for r in report.records} == {OMEGA, None}


def table_rows(table: str) -> dict[str, int]:
    """Graph count of each status row (exact, approximate, failed, total) of a report table."""
    rows = {}
    for line in table.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("exact", "approximate", "failed", "total") and words[1].isdigit():
            rows[words[0]] = int(words[1])
    return rows


def test_embed_dataset_rejects_bad_rabi_up_front() -> None:
    with pytest.raises(ScheduleError):
        embed_dataset([nx.path_graph(2)], rabi_frequency=-1.0, progress=False)


# ---------------------------------------------------------------- drawing and CLI


def test_draw_highlights_violations() -> None:
    with pytest.warns(EmbeddingWarning):
        emb = embed(k23())
    assert not independent_exact(emb, k23(), AnalogDevice)
    fig = emb.draw()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    red = [line for line in ax.get_lines() if line.get_color() == "red"]
    assert len(red) == emb.quality.n_violations
    discs = [p for p in ax.patches if p.get_radius() == pytest.approx(emb.blockade_radius / 2)]
    assert len(discs) == emb.n_atoms  # Pulser's half-radius discs: they overlap iff the atoms blockade
    (blockade,) = ax.collections[1:]  # after Pulser's atom scatter: its blockade-graph lines
    dist = squareform(pdist(emb.positions))
    assert len(blockade.get_segments()) == int(np.sum(np.triu(dist < emb.blockade_radius, 1)))
    assert [p.get_radius() for p in ax.patches if p not in discs] == [AnalogDevice.max_radial_distance]
    exact = embed(nx.cycle_graph(4))
    assert independent_exact(exact, nx.cycle_graph(4), AnalogDevice)
    other = Figure()
    target = other.add_subplot()
    assert exact.draw(target) is other
    assert not [line for line in target.get_lines() if line.get_color() == "red"]


def test_embedding_package_has_no_import_cycle_and_no_private_pulser_imports() -> None:
    package = Path(embedding_package.__file__).parent
    sources = {f"qgnn.embedding.{p.stem}": p for p in package.glob("*.py") if p.stem != "__init__"}
    sources["qgnn.cli.embed"] = Path(embed_cli.__file__)
    imports = nx.DiGraph()
    for name, path in sources.items():
        imports.add_node(name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # also imports inside functions
            modules = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for module in modules:
                assert not (module.startswith("pulser") and "._" in module), f"{name} imports {module}"
                if module in sources:
                    imports.add_edge(name, module)
    assert nx.is_directed_acyclic_graph(imports), nx.find_cycle(imports)
    assert "qgnn.embedding.drawing" not in sources  # drawing is Pulser's Register.draw now


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="qgnn")
    embed_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_embed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    code = _cli(["embed", "--dataset", "MUTAG", "--max-nodes", "12", "--out", str(out), "--no-progress"])
    assert code == 0
    rows = table_rows(capsys.readouterr().out)
    summary = json.loads(out.read_text())["summary"]
    assert summary["n_graphs"] == 29 and summary["device"] == "AnalogDevice"
    assert rows == {
        "exact": summary["exact"],
        "approximate": summary["approximate"],
        "failed": summary["failed"],
        "total": 29,
    }
    code = _cli(["embed", "--dataset", "PTC_FM", "--max-nodes", "4", "--device", str(SPECS), "--no-progress"])
    assert code == 0 and "device Fresnel, Ω = 6.283 rad/µs" in capsys.readouterr().out


def test_cli_embed_on_calibrated_traps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "calibrated.json"
    argv = ["embed", "--dataset", "PTC_FM", "--max-nodes", "7", "--device", f"{CALIBRATED}:FRESNEL"]
    assert _cli([*argv, "--out", str(out), "--no-progress"]) == 0
    fixed = json.loads(out.read_text())
    assert _cli([*argv, "--out", str(out), "--no-progress", "--adjust-rabi-frequency"]) == 0
    adjusted = json.loads(out.read_text())
    printed = capsys.readouterr().out
    # adjusting Ω only rescues graphs: those exact at 2π stay there, some failures embed elsewhere
    assert fixed["summary"]["adjusted_rabi_frequency"] == 0
    moved = [g for g in adjusted["graphs"] if g["rabi_frequency"] not in (None, OMEGA)]
    assert len(moved) == adjusted["summary"]["adjusted_rabi_frequency"] > 0
    assert adjusted["summary"]["exact"] == fixed["summary"]["exact"] + len(moved)
    for before, after in zip(fixed["graphs"], adjusted["graphs"], strict=True):
        if before["status"] == "exact":
            assert after["rabi_frequency"] == OMEGA
        else:
            assert before["error"] == "NotEmbeddableError" and "pre-calibrated traps" in before["reason"]
    assert f"embedded at an adjusted Ω: {len(moved)} graph(s)" in printed


def test_cli_rejects_unknown_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _cli(["embed", "--dataset", "MUTAG", "--device", "nonexistent"])
    assert "unknown device" in capsys.readouterr().err
