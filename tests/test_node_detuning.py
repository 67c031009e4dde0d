"""Node labels as DMM local detuning: NodeDetuning, the schedules' DMM path, build_sequence."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pulser
import pytest
from pulser.devices import AnalogDevice, MockDevice, WeightedAnalogDevice
from pulser.sampler import sample

from qgnn.embedding import embed
from qgnn.errors import InvalidInputError, ScheduleError
from qgnn.pulses import (
    AdiabaticSweep,
    AnalogDMMDevice,
    ConstantDrive,
    NodeDetuning,
    PiecewiseConstant,
    build_sequence,
    electronegativity_weights,
    label_frequency_weights,
)

TWO_PI = 2 * math.pi


def labelled_path(labels: list[int]) -> nx.Graph:
    graph = nx.path_graph(len(labels))
    nx.set_node_attributes(graph, dict(enumerate(labels)), "label")
    return graph


def local_detuning(seq: pulser.Sequence) -> dict[str, np.ndarray]:
    """Per-qubit total detuning δ + w·δ_DMM from Pulser's own sampler (rad/µs, one sample per ns)."""
    local = sample(seq).to_nested_dict(all_local=True)["Local"]["ground-rydberg"]
    return {str(q): np.asarray(v["det"]) for q, v in local.items()}


@pytest.mark.parametrize(
    "schedule",
    [
        ConstantDrive(detuning=-1.0),
        AdiabaticSweep(),
        PiecewiseConstant([(100, TWO_PI, 0.0), (200, TWO_PI * 0.5, -2.0)]),
    ],
    ids=["constant", "sweep", "piecewise"],
)
def test_every_schedule_adds_weighted_dmm_detuning(schedule: object) -> None:
    graph = labelled_path([0, 1, 2, 1])
    nd = NodeDetuning({0: 0.0, 1: 0.25, 2: 1.0}, detuning=-TWO_PI * 2)
    labelled = type(schedule)(**{**schedule.__dict__, "node_detuning": nd})  # type: ignore[call-overload]
    emb = embed(graph, AnalogDMMDevice)
    plain = local_detuning(schedule.build(emb.register, AnalogDMMDevice))  # type: ignore[attr-defined]
    seq = build_sequence(graph, emb, labelled, AnalogDMMDevice)
    assert set(seq.declared_channels) == {"rydberg_global", "dmm_0"}
    with_labels = local_detuning(seq)
    for node, label in graph.nodes(data="label"):
        q = emb.qubit_of[node]
        expected = plain[q] + {0: 0.0, 1: 0.25, 2: 1.0}[label] * (-TWO_PI * 2)
        np.testing.assert_allclose(with_labels[q][: len(expected)], expected, atol=1e-9)


def test_labels_change_the_sequence_and_relabelled_nodes_do_not() -> None:
    nd = NodeDetuning({0: 0.0, 1: 1.0}, detuning=-TWO_PI)
    drive = ConstantDrive(node_detuning=nd)
    a, b = labelled_path([0, 1, 0]), labelled_path([1, 0, 0])
    emb = embed(a, AnalogDMMDevice)
    seq_a = build_sequence(a, emb, drive, AnalogDMMDevice).to_abstract_repr()
    seq_b = build_sequence(b, emb, drive, AnalogDMMDevice).to_abstract_repr()
    assert seq_a != seq_b


def test_zero_detuning_or_weights_give_the_plain_global_sequence() -> None:
    graph = labelled_path([0, 0, 0])
    emb = embed(graph, AnalogDMMDevice)
    plain = ConstantDrive().build(emb.register, AnalogDMMDevice).to_abstract_repr()
    for nd in (NodeDetuning({0: 1.0}, detuning=0.0), NodeDetuning({0: 0.0}, detuning=-TWO_PI)):
        seq = build_sequence(graph, emb, ConstantDrive(node_detuning=nd), AnalogDMMDevice)
        assert seq.to_abstract_repr() == plain


def test_callable_weights_see_the_node_attributes() -> None:
    graph = labelled_path([3, 5])
    nd = NodeDetuning(lambda attrs: attrs["label"] / 10, detuning=-TWO_PI)
    assert nd.node_weights(graph) == {0: 0.3, 1: 0.5}
    bad = NodeDetuning(lambda attrs: float(attrs["label"]), detuning=-TWO_PI)
    with pytest.raises(InvalidInputError, match=r"graph: weight of node 0 is 3.0"):
        bad.node_weights(graph)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": {0: 1.5}, "detuning": -1.0}, r"weight of label=0 is 1.5; DMM weights lie in \[0, 1\]"),
        ({"weights": {0: -0.1}, "detuning": -1.0}, r"lie in \[0, 1\]"),
        ({"weights": {0: float("nan")}, "detuning": -1.0}, r"lie in \[0, 1\]"),
        ({"weights": {0: 0.5}, "detuning": 2.0}, r"must be finite and ≤ 0"),
        ({"weights": {0: 0.5}, "detuning": float("nan")}, r"must be finite and ≤ 0"),
        ({"weights": {}, "detuning": -1.0}, r"weights is empty"),
        ({"weights": [0.5], "detuning": -1.0}, r"must be a mapping"),
        ({"weights": {0: 0.5}, "detuning": "x"}, r"detuning must be a number"),
        ({"weights": {0: 0.5}, "detuning": -1.0, "attribute": ""}, r"attribute must be a non-empty string"),
    ],
)
def test_node_detuning_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        NodeDetuning(**kwargs)


def test_missing_labels_name_the_graph_node_and_value() -> None:
    graph = labelled_path([0, 7])
    graph.graph["index"] = 17
    emb = embed(graph, AnalogDMMDevice)
    drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.5}, detuning=-TWO_PI))
    with pytest.raises(InvalidInputError, match=r"graph 17: node 1 has label=7, which the NodeDetuning"):
        build_sequence(graph, emb, drive, AnalogDMMDevice)
    unlabelled = nx.path_graph(2)
    unlabelled.graph["index"] = 17
    with pytest.raises(InvalidInputError, match=r"graph 17: node 0 has no 'label' attribute"):
        build_sequence(unlabelled, emb, drive, AnalogDMMDevice)


def test_device_without_dmm_is_a_typed_error_naming_devices_that_have_one() -> None:
    graph = labelled_path([0, 1])
    emb = embed(graph, AnalogDevice)
    drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.0, 1: 1.0}, detuning=-TWO_PI))
    with pytest.raises(ScheduleError, match=r"AnalogDevice has none; devices with one: AnalogDMMDevice, "):
        build_sequence(graph, emb, drive, AnalogDevice)


def test_dmm_limits_of_the_device_are_checked_before_pulser() -> None:
    graph = labelled_path([0, 1])
    emb = embed(graph, AnalogDMMDevice)
    too_deep = ConstantDrive(node_detuning=NodeDetuning({0: 0.0, 1: 1.0}, detuning=-TWO_PI * 11))
    with pytest.raises(ScheduleError, match=r"below AnalogDMMDevice's DMM bottom_detuning -62.83"):
        build_sequence(graph, emb, too_deep, AnalogDMMDevice)
    too_small = ConstantDrive(node_detuning=NodeDetuning({0: 0.0, 1: 1.0}, detuning=-0.1))
    with pytest.raises(ScheduleError, match=r"min_avg_abs_detuning"):
        build_sequence(graph, emb, too_small, AnalogDMMDevice)


def test_qubit_weights_must_match_the_schedule_and_register() -> None:
    reg = pulser.Register.from_coordinates([(0, 0), (6, 0)], prefix="q")
    with pytest.raises(ScheduleError, match=r"no node_detuning"):
        ConstantDrive().build(reg, MockDevice, {"q0": 0.5, "q1": 0.5})
    drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.5}, detuning=-TWO_PI))
    with pytest.raises(ScheduleError, match=r"needs qubit_weights"):
        drive.build(reg, MockDevice)
    with pytest.raises(ScheduleError, match=r"missing \['q1'\]"):
        drive.build(reg, MockDevice, {"q0": 0.5})
    with pytest.raises(ScheduleError, match=r"node_detuning must be a qgnn.pulses.NodeDetuning"):
        ConstantDrive(node_detuning={0: 1.0})  # type: ignore[arg-type]


def test_weighted_analog_device_runs_labels_end_to_end() -> None:
    graph = labelled_path([0, 1, 0, 1])
    emb = embed(graph, WeightedAnalogDevice)
    drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.0, 1: 1.0}, detuning=-TWO_PI))
    seq = build_sequence(graph, emb, drive, WeightedAnalogDevice)
    assert seq.register.layout is not None and seq.register.layout.number_of_traps >= 150
    det = local_detuning(seq)
    assert det[emb.qubit_of[1]][0] == pytest.approx(-TWO_PI)
    assert det[emb.qubit_of[0]][0] == pytest.approx(0.0)


def test_default_weight_maps() -> None:
    a, b = labelled_path([0, 0, 1]), labelled_path([0, 2])
    assert label_frequency_weights([a, b]) == {0: 0.0, 1: pytest.approx(0.1), 2: 1.0}
    assert label_frequency_weights([labelled_path([0, 0, 1])]) == {0: 0.0, 1: 1.0}
    assert label_frequency_weights([labelled_path([4])]) == {4: 0.0}
    with pytest.raises(InvalidInputError, match=r"no node carries the attribute 'element'"):
        label_frequency_weights([a], attribute="element")
    chi = electronegativity_weights()
    assert chi["F"] == 1.0 and chi["Cs"] == 0.0
    assert chi["C"] < chi["N"] < chi["O"] < chi["F"]
    assert chi["Na"] == chi["K"] == 0.1  # raised to the smallest weight a DMM can apply
    assert min(w for w in chi.values() if w > 0) == 0.1


def test_a_weight_too_small_for_the_dmm_is_a_typed_error_naming_the_fix() -> None:
    graph = labelled_path([0, 1])
    emb = embed(graph, AnalogDMMDevice)
    drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.04, 1: 1.0}, detuning=-TWO_PI * 2))
    with pytest.raises(ScheduleError, match=r"weight 0.04, .* give it weight 0 or at least 0.05"):
        build_sequence(graph, emb, drive, AnalogDMMDevice)
    sodium = nx.path_graph(2)
    nx.set_node_attributes(sodium, {0: "Na", 1: "Cl"}, "element")
    labels = NodeDetuning.electronegativity(detuning=-TWO_PI * 2)
    emb_na = embed(sodium, AnalogDMMDevice)
    seq = build_sequence(sodium, emb_na, ConstantDrive(node_detuning=labels), AnalogDMMDevice)
    assert "dmm_0" in seq.declared_channels


def test_build_sequence_refuses_an_embedding_made_for_another_rabi_frequency() -> None:
    graph = labelled_path([0, 0, 0])
    emb = embed(graph, AnalogDMMDevice, rabi_frequency=TWO_PI * 0.5)
    with pytest.raises(ScheduleError, match=r"embedded for Ω = 3.14159 rad/µs but the schedule's registers"):
        build_sequence(graph, emb, ConstantDrive(), AnalogDMMDevice)
    segments = [(100, TWO_PI, 0.0), (100, TWO_PI * 0.2, 1.0)]
    trained = PiecewiseConstant(segments, embedding_rabi_frequency=TWO_PI / 2)
    assert trained.embedding_rabi_frequency == pytest.approx(math.pi)
    assert build_sequence(graph, emb, trained, AnalogDMMDevice).get_duration() == 200
    assert PiecewiseConstant([(100, 3.0, 0.0)]).embedding_rabi_frequency == 3.0
    with pytest.raises(ScheduleError, match="embedding_rabi_frequency must be > 0"):
        PiecewiseConstant([(100, 3.0, 0.0)], embedding_rabi_frequency=0.0)


def test_labelled_schedules_pickle_for_worker_processes() -> None:
    import pickle

    drive = ConstantDrive(node_detuning=NodeDetuning({0: 0.25, "N": 1.0}, detuning=-TWO_PI))
    back = pickle.loads(pickle.dumps(drive))
    assert back.node_detuning is not None
    assert dict(back.node_detuning.weights) == {0: 0.25, "N": 1.0}
    assert repr(back) == repr(drive)
    with pytest.raises(TypeError):
        back.node_detuning.weights[0] = 0.5  # type: ignore[index]  # still read-only
