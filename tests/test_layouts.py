"""Tests of register layouts: new layouts padded with filler traps (qgnn.embedding.layouts) and
embeddings onto a QPU's pre-calibrated traps (qgnn.embedding.calibrated).

Registers are checked by Pulser itself (``device.validate_register``/``validate_layout``, and a
``pulser.Sequence`` built on the device with a global pulse and a DMM detuning map) and by an
independent distance computation (scipy); the trap search is checked against networkx's
induced-subgraph isomorphism (VF2).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pulser
import pytest
from networkx.algorithms.isomorphism import GraphMatcher
from pulser.devices import (
    AnalogDevice,
    Device,
    DigitalAnalogDevice,
    MockDevice,
    VirtualDevice,
    WeightedAnalogDevice,
)
from pulser.register import RegisterLayout
from pulser.register.special_layouts import SquareLatticeLayout, TriangularLatticeLayout
from scipy.spatial.distance import pdist, squareform

from qgnn.data import load_dataset
from qgnn.embedding import Embedding, embed
from qgnn.embedding.calibrated import (
    _symmetry_representatives,
    candidate_radii,
    find_trap_subset,
    place_on_calibrated_layouts,
)
from qgnn.embedding.layouts import trap_counts
from qgnn.errors import InvalidInputError, NotEmbeddableError
from qgnn.pulses import AnalogDMMDevice, ConstantDrive, NodeDetuning, build_sequence

OMEGA = 2 * math.pi
FIXTURES = Path(__file__).parent / "fixtures"
CALIBRATED_SPECS = FIXTURES / "pasqal_calibrated_device_specs.json"
SHARED_SPECS = FIXTURES / "pasqal_public_device_specs.json"
LATTICE = TriangularLatticeLayout(61, 5)
A = 5.0  # µm, the calibrated lattice's spacing
ADJUSTED_PTC_FM = 3  # of the first 12 PTC_FM graphs of ≤ 10 nodes, these embed only at another Ω (all embed)


@pytest.fixture(scope="module")
def qpu() -> Device:
    """A Fresnel-like QPU that accepts no new layouts and lists only a 61-trap triangular lattice at 5 µm."""
    return Device.from_abstract_repr(json.loads(CALIBRATED_SPECS.read_text())["FRESNEL"])


def blockade_adjacency(positions: np.ndarray, radius: float) -> np.ndarray:
    dist = squareform(pdist(positions))
    adjacency = dist < radius
    np.fill_diagonal(adjacency, False)
    return adjacency


def check_register(emb: Embedding, graph: nx.Graph, device: Device | VirtualDevice) -> None:
    """Pulser validates the register and a sequence on it; scipy confirms the blockade graph is ``graph``."""
    device.validate_register(emb.register)
    if device.requires_layout:
        assert emb.register.layout is not None
        device.validate_layout(emb.register.layout)
    seq = pulser.Sequence(emb.register, device)
    seq.declare_channel("rydberg_global", "rydberg_global")
    seq.add(pulser.Pulse.ConstantPulse(200, emb.rabi_frequency, 0.0, 0.0), "rydberg_global")
    assert seq.get_duration() == 200
    radius = device.rydberg_blockade_radius(emb.rabi_frequency)
    assert emb.blockade_radius == pytest.approx(radius)
    coords = np.array([emb.register.qubits[q] for q in emb.qubit_ids], dtype=float)
    expected = nx.to_numpy_array(graph, nodelist=list(emb.node_ids), dtype=bool, weight=None)
    np.testing.assert_array_equal(blockade_adjacency(coords, radius), expected)


# ---------------------------------------------------------------- new layouts with filler traps


@pytest.mark.parametrize("n_atoms", [1, 9, 52, 75, 76, 100, 179])
def test_trap_counts_obey_pulsers_own_layout_rules(n_atoms: int) -> None:
    counts = trap_counts(n_atoms, WeightedAnalogDevice)
    # the best count is nearest n / optimal filling (0.45), at least the 150-trap minimum
    assert counts[0] == max(150, round(n_atoms / 0.45))
    lattice = np.asarray(TriangularLatticeLayout(512, 5).sorted_coords)  # radius 65 µm < 80 µm

    def pulser_accepts(n_traps: int) -> bool:
        register = RegisterLayout(lattice[:n_traps]).define_register(*range(n_atoms))
        try:
            WeightedAnalogDevice.validate_register(register)
        except ValueError:
            return False
        return True

    assert all(pulser_accepts(t) for t in counts)
    assert not pulser_accepts(min(counts) - 1)  # nothing smaller is allowed


GRAPHS = {
    "C6": nx.cycle_graph(6),
    "P4 + isolated": nx.disjoint_union(nx.path_graph(4), nx.empty_graph(1)),
    "K4": nx.complete_graph(4),
}


@pytest.mark.parametrize("device", [WeightedAnalogDevice, AnalogDMMDevice, DigitalAnalogDevice, MockDevice])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_registers_validate_with_a_dmm_sequence(device: Device | VirtualDevice, name: str) -> None:
    graph = GRAPHS[name]
    emb = embed(graph, device, strict=True)
    check_register(emb, graph, device)
    layout = emb.register.layout
    assert (layout is None) == (not device.requires_layout)
    if layout is not None:  # the atoms sit on the layout's traps; the fillers obey the spacing
        traps = np.asarray(layout.sorted_coords, dtype=float)
        assert np.min(pdist(traps)) >= device.min_atom_distance
        for p in emb.positions:
            assert np.min(np.linalg.norm(traps - p, axis=1)) < 1e-6
    # labels as local detuning through Pulser's DMM on the same register
    nx.set_node_attributes(graph, {u: u % 2 for u in graph.nodes}, "label")
    drive = ConstantDrive(duration=200, node_detuning=NodeDetuning({0: 0.0, 1: 1.0}, -2 * math.pi))
    seq = build_sequence(graph, emb, drive, device)
    assert set(seq.declared_channels) == {"rydberg_global", "dmm_0"}
    rebuilt = pulser.Sequence.from_abstract_repr(seq.to_abstract_repr())
    assert rebuilt.register == emb.register


def test_weighted_analog_device_layout_and_scale() -> None:
    graph = load_dataset("MUTAG", max_nodes=14)[0]
    emb = embed(graph, WeightedAnalogDevice, strict=True)
    check_register(emb, graph, WeightedAnalogDevice)
    layout = emb.register.layout
    assert layout is not None
    # 150 traps is the device's minimum; filling 0.35–0.5 applies only above it
    assert layout.number_of_traps == 150 == WeightedAnalogDevice.min_layout_traps
    assert np.max(np.linalg.norm(np.asarray(layout.sorted_coords), axis=1)) <= 80
    # the scale follows the device's blockade radius (C6 at n = 75 is 14x AnalogDevice's at n = 60):
    # Weighted's edges reach beyond AnalogDevice's radius and its non-edges beyond its own
    analog = embed(graph, AnalogDevice, strict=True)
    assert emb.blockade_radius > 1.5 * analog.blockade_radius
    edge_lengths = [np.linalg.norm(emb.positions[a] - emb.positions[b]) for a, b in emb.edges]
    assert max(edge_lengths) > analog.blockade_radius
    margin = emb.quality.non_edge_margin
    assert margin is not None and margin > 0.05 * emb.blockade_radius


def test_layout_without_room_for_fillers_is_a_typed_error() -> None:
    cramped = dataclasses.replace(WeightedAnalogDevice, max_radial_distance=30)  # ≈ 130 lattice sites
    with pytest.raises(NotEmbeddableError, match=r"graph 3: room for only \d+ filler traps .* 150–512 traps"):
        embed(nx.path_graph(3), cramped, index=3)


def test_no_trap_count_fits_is_a_typed_error() -> None:
    tiny = dataclasses.replace(AnalogDevice.to_virtual(), max_layout_traps=8, max_atom_num=None)  # ≤ 4 atoms
    assert embed(nx.path_graph(4), tiny).register.layout is not None
    with pytest.raises(NotEmbeddableError, match="no register layout holds 5 atoms"):
        embed(nx.path_graph(5), tiny)


# ---------------------------------------------------------------- the calibrated QPU fixture


def test_fixture_is_fresnel_with_only_a_calibrated_lattice(qpu: Device) -> None:
    fresnel = Device.from_abstract_repr(json.loads(SHARED_SPECS.read_text())["FRESNEL"])
    assert not qpu.accepts_new_layouts and qpu.requires_layout
    assert qpu.pre_calibrated_layouts == (LATTICE,)
    assert qpu == dataclasses.replace(fresnel, accepts_new_layouts=False, pre_calibrated_layouts=(LATTICE,))


@pytest.mark.parametrize(
    "graph", [nx.path_graph(5), nx.cycle_graph(6), nx.star_graph(3)], ids=["P5", "C6", "K1,3"]
)
def test_small_graphs_embed_on_the_calibrated_traps(qpu: Device, graph: nx.Graph) -> None:
    emb = embed(graph, qpu, strict=True)
    check_register(emb, graph, qpu)
    assert qpu.register_is_from_calibrated_layout(emb.register)
    assert emb.rabi_frequency == OMEGA  # A < r(2π) = 7.19 µm < √3 A: the requested Ω already works
    assert emb.start_layout == "calibrated:TriangularLatticeLayout(61, 5.0µm)"
    again = embed(graph, qpu)
    assert again.register == emb.register  # deterministic


def test_k4_needs_an_adjusted_rabi_frequency(qpu: Device) -> None:
    graph = nx.complete_graph(4)
    graph.graph["index"] = 8
    # below √3 A the lattice's largest cliques are triangles
    with pytest.raises(
        NotEmbeddableError,
        match=r"graph 8 \(4 nodes, 6 edges\): no subset of Fresnel's pre-calibrated traps .*"
        r"TriangularLatticeLayout\(61, 5.0µm\) at r = 7.187 µm .*adjust_rabi_frequency=True",
    ):
        embed(graph, qpu)
    emb = embed(graph, qpu, adjust_rabi_frequency=True)
    check_register(emb, graph, qpu)  # the sequence runs at the chosen Ω and sees K4
    channel = qpu.channels["rydberg_global"]
    assert channel.min_avg_amp < emb.rabi_frequency <= channel.max_amp
    assert math.sqrt(3) * A < emb.blockade_radius < 2 * A
    assert emb.blockade_radius == pytest.approx(math.sqrt(math.sqrt(3) * A * 2 * A))  # the gap's centre


def test_k17_star_fails_at_every_reachable_radius(qpu: Device) -> None:
    # an induced K1,6 is impossible in any unit-disk graph, so no Ω helps
    with pytest.raises(NotEmbeddableError, match=r"r = 7.187 µm .*; r = 9.306 µm .*; r = 10.736 µm") as info:
        embed(nx.star_graph(7), qpu, adjust_rabi_frequency=True)
    assert "stopped" not in str(info.value)  # decided, not out of budget


def test_radii_tried_are_one_per_gap_between_trap_shells(qpu: Device) -> None:
    traps = np.asarray(LATTICE.sorted_coords)
    radii = candidate_radii(qpu, traps, OMEGA, adjust=True, margin=0.07)
    channel = qpu.channels["rydberg_global"]
    reachable = (
        qpu.rydberg_blockade_radius(channel.max_amp),
        qpu.rydberg_blockade_radius(channel.min_avg_amp),
    )
    assert reachable[0] == pytest.approx(6.40, abs=0.01) and reachable[1] == pytest.approx(10.74, abs=0.01)
    shells = [A, math.sqrt(3) * A, 2 * A, math.sqrt(7) * A]
    gaps = [next(k for k, s in enumerate(shells) if r < s) for r, _ in radii]
    assert gaps == [1, 2, 3]  # (A, √3A) requested, then (√3A, 2A), then (2A, √7A) clipped to the reach
    for r, omega in radii:
        assert qpu.rydberg_blockade_radius(omega) == pytest.approx(r)
        assert channel.min_avg_amp < omega <= channel.max_amp
    assert candidate_radii(qpu, traps, OMEGA, adjust=False, margin=0.07) == radii[:1]
    on_shell = qpu.rabi_from_blockade(math.sqrt(3) * A)  # r exactly on the √3A shell: ambiguous
    assert candidate_radii(qpu, traps, on_shell, adjust=False, margin=0.07) == []
    with pytest.raises(NotEmbeddableError, match="no radius off the trap shells"):
        embed(nx.path_graph(2), qpu, rabi_frequency=on_shell)


@pytest.mark.parametrize("radius", [7.0, 9.3])
def test_trap_search_agrees_with_networkx_induced_subgraph_isomorphism(radius: float) -> None:
    traps = np.asarray(TriangularLatticeLayout(19, A).sorted_coords)
    trap_graph = nx.from_numpy_array(blockade_adjacency(traps, radius))
    for graph in nx.graph_atlas_g()[1:53]:  # every graph with 1 to 5 nodes
        adjacency = nx.to_numpy_array(graph, dtype=bool, weight=None)
        found = find_trap_subset(adjacency, traps, radius)
        assert (found.traps is not None) == GraphMatcher(trap_graph, graph).subgraph_is_isomorphic(), (
            graph.edges
        )
        if found.traps is not None:
            np.testing.assert_array_equal(blockade_adjacency(traps[list(found.traps)], radius), adjacency)


def test_symmetry_orbits_of_layouts() -> None:
    # 3x3 square lattice: centre, 4 edge midpoints, 4 corners
    assert len(_symmetry_representatives(np.asarray(SquareLatticeLayout(3, 3, 5).sorted_coords))) == 3
    # the 61-trap hexagon under its 12 symmetries: 1 + 1 + 2 + 2 + 3 orbits by shell
    assert len(_symmetry_representatives(np.asarray(LATTICE.sorted_coords))) == 9
    skew = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 7.0], [11.0, 3.0]])  # no symmetry
    assert len(_symmetry_representatives(skew)) == 4


def test_search_budget_is_reported(qpu: Device) -> None:
    traps = np.asarray(LATTICE.sorted_coords)
    adjacency = nx.to_numpy_array(nx.path_graph(8), dtype=bool, weight=None)
    assert find_trap_subset(adjacency, traps, 7.2).traps is not None
    assert find_trap_subset(adjacency, traps, 7.2, budget=3) == find_trap_subset(
        adjacency, traps, 7.2, budget=3
    )
    spent = find_trap_subset(adjacency, traps, 7.2, budget=3)
    assert spent.traps is None and spent.exhausted and spent.steps == 3
    k4 = nx.to_numpy_array(nx.complete_graph(4), dtype=bool, weight=None)
    with pytest.raises(NotEmbeddableError, match="search stopped after 2 steps"):
        place_on_calibrated_layouts(
            k4, ("a", "b", "c", "d"), qpu, OMEGA, adjust=False, margin=0.07, where="g", budget=2
        )


def test_molecules_on_the_calibrated_lattice(qpu: Device) -> None:
    graphs = load_dataset("PTC_FM", max_nodes=10)[:12]
    adjusted = 0
    for graph in graphs:
        emb = embed(graph, qpu, adjust_rabi_frequency=True)
        check_register(emb, graph, qpu)
        adjusted += emb.rabi_frequency != OMEGA
    assert adjusted == ADJUSTED_PTC_FM


def test_calibrated_device_errors(qpu: Device) -> None:
    with pytest.raises(NotEmbeddableError, match="61 traps cannot hold 31 atoms"):
        embed(nx.empty_graph(31), qpu)  # at most ⌊61 · 0.5⌋ = 30 atoms
    with pytest.raises(InvalidInputError, match="initial_positions cannot be used on Fresnel"):
        embed(nx.path_graph(2), qpu, initial_positions={0: (0, 0), 1: (5, 0)})
    with pytest.raises(InvalidInputError, match="adjust_rabi_frequency must be True or False"):
        embed(nx.path_graph(2), qpu, adjust_rabi_frequency="yes")  # type: ignore[arg-type]
    bare = dataclasses.replace(qpu, pre_calibrated_layouts=())
    with pytest.raises(
        NotEmbeddableError, match="accepts no new register layouts and lists no pre-calibrated"
    ):
        embed(nx.path_graph(2), bare)
    # a device that accepts new layouts ignores its calibrated ones and places freely
    open_qpu = dataclasses.replace(qpu, accepts_new_layouts=True)
    emb = embed(nx.complete_graph(4), open_qpu, strict=True)
    assert not open_qpu.is_calibrated_layout(emb.register.layout)
    assert emb.rabi_frequency == OMEGA
