"""qgnn train / demo: the protocol on tiny settings, one source of truth, arguments checked before work."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from pulser.devices import AnalogDevice
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from qgnn.cli import main
from qgnn.data import load_dataset
from qgnn.errors import QgnnError
from qgnn.evaluation import SVM_C_GRID, inner_cv, inner_scores, make_folds
from qgnn.experiment import MODELS, ExperimentConfig, make_backend, run_experiment, validate_config
from qgnn.features import FeaturePipeline, excitation_matrix
from qgnn.kernels import QuantumEvolutionKernel
from qgnn.kernels.families import QEK_MU_GRID


def test_train_command_writes_table_json_and_plots(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(
        ["train", "--dataset", "PTC_FM", "--max-nodes", "7", "--folds", "3", "--repeats", "2",
         "--model", "qek-svm,wl-svm,sp-svm", "--workers", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    for model in ("qek-svm", "wl-svm", "sp-svm"):
        assert model in printed
        assert (out / f"PTC_FM-{model}-confusion.png").stat().st_size > 1000
    assert (out / "PTC_FM-qek-kernel.png").stat().st_size > 1000
    results = json.loads((out / "PTC_FM-results.json").read_text())
    assert results["config"]["backend"] == "subspace"
    assert results["features"]["backend"] == "subspace" and results["features"]["device"] == "AnalogDevice"
    assert results["features"]["evaluation_times"] == [1.0]
    folds = {
        m: [(f["repeat"], f["fold"], f["y_true"]) for f in v["folds"]] for m, v in results["models"].items()
    }
    assert len(folds["qek-svm"]) == 6
    assert folds["qek-svm"] == folds["wl-svm"] == folds["sp-svm"]  # same graphs, same folds for every model
    for model in results["models"].values():  # the summary is the mean of the recorded folds' scores
        per_fold = [balanced_accuracy_score(f["y_true"], f["y_pred"]) for f in model["folds"]]
        assert model["summary"]["balanced_accuracy"][0] == pytest.approx(np.mean(per_fold))
        plain = [accuracy_score(f["y_true"], f["y_pred"]) for f in model["folds"]]
        assert model["summary"]["accuracy"] == [pytest.approx(np.mean(plain)), pytest.approx(np.std(plain))]


def test_qek_fold_choice_is_the_inner_cv_best_on_the_last_time(tmp_path) -> None:
    """The recorded μ and C of every fold are the inner-CV argmax of QEK on the last evaluation time."""
    pipeline = FeaturePipeline(
        cache_dir=tmp_path / "cache", n_workers=1, progress=False, evaluation_times=(0.5, 1.0)
    )
    config = ExperimentConfig(dataset="PTC_FM", models=("qek-svm",), max_nodes=6, folds=3, repeats=1,
                              out=str(tmp_path / "out"))  # fmt: skip
    report = run_experiment(config, progress=False, pipeline=pipeline)
    results = pipeline.run(list(load_dataset("PTC_FM", max_nodes=6)))
    X = excitation_matrix(results, t_index=-1)

    y = np.asarray(report.targets)
    js = QuantumEvolutionKernel().divergence_matrix(X)
    for fold, record in zip(make_folds(y, folds=3, repeats=1, seed=0), report.results[0].folds, strict=True):
        splits = list(inner_cv(y[fold.train], seed=0, task="classification").split(fold.train, y[fold.train]))
        scores = {
            (mu, c): s
            for mu in QEK_MU_GRID
            for c, s in zip(SVM_C_GRID, inner_scores(np.exp(-mu * js)[np.ix_(fold.train, fold.train)],
                                                        y[fold.train], splits), strict=True)
        }  # fmt: skip
        best = max(scores.values())
        first = next(k for k, s in scores.items() if s >= best - 1e-12)
        assert (record.best_params["mu"], record.best_params["C"]) == first
        assert record.best_params["inner_score"] == pytest.approx(best)


def test_injected_pipeline_is_the_one_source_of_truth(tmp_path) -> None:
    from qgnn.backends import EmuSV

    pipeline = FeaturePipeline(
        backend=EmuSV(),
        evaluation_times=(0.5, 1.0),
        cache_dir=tmp_path / "cache",
        n_workers=1,
        progress=False,
    )
    # the config says subspace and one time; the pipeline says emu-sv and two: the pipeline is what runs
    config = ExperimentConfig(dataset="PTC_FM", models=("qek-pooled-svm",), max_nodes=6, limit=16, folds=2,
                              repeats=1, evaluation_times=(1.0,), out=str(tmp_path / "out"))  # fmt: skip
    report = run_experiment(config, progress=False, pipeline=pipeline)
    assert report.config.backend == "emu-sv" and report.config.evaluation_times == (0.5, 1.0)
    saved = json.loads((tmp_path / "out" / "PTC_FM-results.json").read_text())
    assert saved["config"]["backend"] == "emu-sv" and saved["config"]["evaluation_times"] == [0.5, 1.0]
    assert saved["features"]["backend"] == "emu-sv" and saved["features"]["evaluation_times"] == [0.5, 1.0]
    assert {f.best_params["pooling"] for f in report.results[0].folds} <= {"mean", "concat"}
    # and the other way round: the config's two times do not rescue a one-time pipeline
    one_time = FeaturePipeline(cache_dir=tmp_path / "cache", n_workers=1, progress=False)
    with pytest.raises(QgnnError, match="two evaluation times"):
        run_experiment(replace(config, evaluation_times=(0.5, 1.0)), progress=False, pipeline=one_time)
    assert one_time.last_run_seconds == {}  # rejected before any feature was computed
    with pytest.raises(QgnnError, match="FeaturePipeline"):
        validate_config(config, pipeline="subspace")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": "NOPE"}, "NOPE"),
        ({"models": ("magic",)}, "unknown model"),
        ({"models": ()}, "non-empty"),
        ({"models": ("wl-svm", "wl-svm")}, "twice"),
        ({"folds": 1}, "folds"),
        ({"repeats": 0}, "repeats"),
        ({"seed": -1}, "seed"),
        ({"max_nodes": 0}, "max_nodes"),
        ({"limit": 0}, "limit"),
        ({"gnn_epochs": 0}, "gnn_epochs"),
        ({"backend": "warp-drive"}, "unknown backend"),
        ({"evaluation_times": (1.0, 0.5)}, "increasing"),
        ({"shots": 0}, "shots"),
        ({"executor": "tcp://x"}, "dask"),
        ({"models": ("qek-pooled-svm",)}, "two evaluation times"),
        ({"dataset": "IMDB-BINARY", "models": ("hist-svm",)}, "no node labels"),
        ({"dataset": "ESOL", "models": ("qek-svm",)}, "regression"),
    ],
)
def test_bad_configurations_are_rejected_before_any_work(changes: dict, message: str, tmp_path) -> None:
    config = replace(ExperimentConfig(models=("wl-svm",), out=str(tmp_path / "out")), **changes)
    with pytest.raises(QgnnError, match=message):
        run_experiment(config, progress=False)
    assert not (tmp_path / "out").exists()  # nothing was written: the check came first


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ExperimentConfig(max_nodes=1, models=("wl-svm",)), "no graph"),
        (ExperimentConfig(dataset="PTC_FM", max_nodes=12, models=("wl-svm",), folds=100), "smallest class"),
        (ExperimentConfig(dataset="MUTAG", max_nodes=10, models=("wl-svm",)), "two classes"),
    ],
)
def test_data_dependent_problems_are_clear_errors(config: ExperimentConfig, message: str, tmp_path) -> None:
    with pytest.raises(QgnnError, match=message):
        run_experiment(replace(config, out=str(tmp_path)), progress=False)


def test_rerun_reads_the_feature_cache(tmp_path) -> None:
    config = ExperimentConfig(dataset="PTC_FM", models=("qek-svm",), max_nodes=6, folds=2, repeats=1,
                              out=str(tmp_path), workers=1)  # fmt: skip
    first = run_experiment(config, progress=False)
    pipeline = FeaturePipeline(n_workers=1, progress=False)
    second = run_experiment(config, progress=False, pipeline=pipeline)
    assert pipeline.last_run_seconds["computed"] == 0
    assert first.results[0].summary() == second.results[0].summary()


def test_kernel_models_share_graphs_and_folds_and_selections_are_honest(tmp_path) -> None:
    """Every kernel model on one run; the '-best' models pick what their members' inner CV ranks first."""
    kernels = ("wl-svm", "hist-svm", "qek-svm", "qek-pooled-svm", "gdqc-svm", "label-obs-svm", "wl+qek-svm")
    pipeline = FeaturePipeline(
        cache_dir=tmp_path / "cache", n_workers=1, progress=False, evaluation_times=(0.5, 1.0)
    )
    config = ExperimentConfig(dataset="PTC_FM", models=(*kernels, "classical-best"), max_nodes=6, limit=30,
                              folds=3, repeats=1, out=str(tmp_path / "out"))  # fmt: skip
    report = run_experiment(config, progress=False, pipeline=pipeline)
    by_name = {r.model: r for r in report.results}
    y_true = [f.y_true for f in by_name["wl-svm"].folds]
    assert all([f.y_true for f in r.folds] == y_true for r in report.results)
    for k, record in enumerate(by_name["classical-best"].folds):
        chosen = record.best_params["model"]
        assert chosen in MODELS["classical-best"].members
        own = by_name[chosen].folds[k] if chosen in by_name else None
        inner = max(by_name[m].folds[k].best_params["inner_score"] for m in ("wl-svm", "hist-svm"))
        assert record.best_params["inner_score"] >= inner - 1e-12
        if own is not None and own.best_params["inner_score"] == record.best_params["inner_score"]:
            assert own.y_pred == record.y_pred
    for record in by_name["wl+qek-svm"].folds:
        assert record.best_params["lambda"] in (0.0, 0.1, 0.3, 1.0, 3.0)
        assert record.best_params["inner_score"] >= 0.0
    assert all("n_iter" in f.best_params and "pooling" in f.best_params for f in by_name["gdqc-svm"].folds)


def test_cli_rejects_unknown_model_and_backend(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "qek-svm,magic"])
    assert exc.value.code == 2 and "magic" in capsys.readouterr().err
    assert main(["train", "--backend", "warp-drive", "--max-nodes", "5", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "unknown backend" in captured.err and captured.out == ""  # rejected before the header
    with pytest.raises(QgnnError, match="unknown backend"):
        make_backend("nope")
    coarsening = make_backend("subspace-coarsen")
    assert coarsening.over_budget == "coarsen" and make_backend("subspace").over_budget == "raise"


def test_pipeline_reports_every_kind_of_bad_graph(tmp_path) -> None:
    loop = nx.path_graph(3)
    loop.add_edge(1, 1)
    too_big = nx.path_graph(AnalogDevice.max_atom_num + 1)
    graphs = [nx.Graph(), loop, too_big, nx.star_graph(6), nx.DiGraph([(0, 1)]), 3.14, nx.path_graph(3)]
    results = FeaturePipeline(cache_dir=tmp_path, n_workers=1, progress=False).run(graphs)
    assert [r.ok for r in results] == [False] * 6 + [True]
    reasons = [str(r.error) for r in results[:6]]
    assert "empty" in reasons[0].lower() or "no nodes" in reasons[0].lower()
    assert "self-loop" in reasons[1]
    assert f"at most {AnalogDevice.max_atom_num}" in reasons[2]
    assert "NotEmbeddable" in reasons[3]
    assert "directed" in reasons[4].lower()
    assert "float" in reasons[5]


def test_train_command_regression_on_esol_with_gnn_heads(tmp_path, capsys) -> None:
    pytest.importorskip("rdkit")
    out = tmp_path / "esol"
    code = main(
        ["train", "--dataset", "ESOL", "--max-nodes", "4", "--folds", "2", "--repeats", "1",
         "--model", "gin,qgin", "--epochs", "5", "--workers", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "mae" in printed and "rmse" in printed and "qgin" in printed
    results = json.loads((out / "ESOL-results.json").read_text())
    for model in ("gin", "qgin"):
        mae = results["models"][model]["summary"]["mae"][0]
        assert 0.0 < mae < 10.0  # log-solubility units; a broken head gives NaN or a huge error
    assert list(out.glob("*.png")), "learning curves are plotted"


def test_several_evaluation_times_reach_pooled_qek_and_the_gnn(tmp_path, capsys) -> None:
    out = tmp_path / "times"
    code = main(
        ["train", "--dataset", "PTC_FM", "--max-nodes", "6", "--folds", "2", "--repeats", "1", "--workers",
         "1", "--model", "qek-pooled-svm,qgin", "--epochs", "3", "--times", "0.5,1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    results = json.loads((out / "PTC_FM-results.json").read_text())
    assert results["config"]["evaluation_times"] == [0.5, 1.0]
    assert set(results["models"]) == {"qek-pooled-svm", "qgin"}
    with pytest.raises(SystemExit):
        main(["train", "--times", "half", "--out", str(out)])
    assert "fractions" in capsys.readouterr().err


def _molecule(labels: list[int]) -> nx.Graph:
    graph = nx.path_graph(len(labels))
    nx.set_node_attributes(graph, dict(enumerate(labels)), "label")
    return graph


def test_fold_label_weights_come_from_the_training_graphs_only() -> None:
    from qgnn.experiment import fold_label_weights

    train = [_molecule([6, 6, 6, 8, 8, 7]), _molecule([6, 6, 17, 35, 9])]
    test = [_molecule([6, 53]), _molecule([8, 8, 8, 8, 8, 8, 8, 8])]  # 53 only here; 8 most frequent here
    weights = fold_label_weights(train, train + test)
    # 7, 9, 17 and 35 appear once each: ties go by repr, "17" < "35" < "7" < "9"
    assert weights == {6: 0.0, 8: 0.25, 17: 0.5, 35: 0.75, 7: 1.0, 9: 1.0, 53: 1.0}
    other_test = [_molecule([53, 53, 53, 7, 7, 7, 7])]
    assert {k: v for k, v in fold_label_weights(train, train + other_test).items() if k != 53} == {
        k: v for k, v in weights.items() if k in {6, 7, 8, 9, 17, 35}
    }
    assert fold_label_weights(train, train, ranks=1) == {6: 0.0, 7: 1.0, 8: 1.0, 9: 1.0, 17: 1.0, 35: 1.0}
    assert fold_label_weights(train, test) == {6: 0.0, 8: 0.25, 53: 1.0}  # the map covers the graphs asked
    with pytest.raises(QgnnError, match="ranks"):
        fold_label_weights(train, train, ranks=0)


def test_labelled_pipeline_keeps_backend_times_seed_and_puts_labels_in_the_hamiltonian(tmp_path) -> None:
    import math

    from qgnn.experiment import labelled_pipeline
    from qgnn.pulses import AnalogDMMDevice, NodeDetuning

    base = FeaturePipeline(
        cache_dir=tmp_path, n_workers=1, progress=False, evaluation_times=(0.5, 1.0), embed_seed=3
    )
    detuning = NodeDetuning({6: 0.0, 8: 1.0}, -2 * math.pi * 2.0)
    derived = labelled_pipeline(base, detuning)
    assert (
        derived.backend is base.backend and derived.evaluation_times == (0.5, 1.0) and derived.embed_seed == 3
    )
    assert derived.device is AnalogDMMDevice and derived.schedule.node_detuning is detuning
    assert base.device.name == "AnalogDevice" and base.schedule.node_detuning is None  # the base is unchanged
    carbon, oxygen = _molecule([6, 6, 6]), _molecule([6, 8, 6])  # the same shape, a different middle atom
    plain = base.run([carbon, oxygen])
    labelled = derived.run([carbon, oxygen])
    np.testing.assert_allclose(plain[0].measurement.occupations, plain[1].measurement.occupations, atol=1e-12)
    mid_carbon = _middle_occupation(labelled[0])
    mid_oxygen = _middle_occupation(labelled[1])
    assert mid_oxygen < mid_carbon - 0.02  # the detuned middle atom is excited less
    np.testing.assert_allclose(
        labelled[0].measurement.occupations, plain[0].measurement.occupations, atol=2e-3
    )
    with pytest.raises(QgnnError, match="DMM"):
        labelled_pipeline(FeaturePipeline(device=_no_dmm(), cache_dir=False, progress=False), detuning)


def _middle_occupation(result) -> float:
    """⟨n⟩ of node 1 at the last evaluation time."""
    from qgnn.features import node_occupations

    return float(node_occupations(result, [1])[0, -1])


def _no_dmm():
    """A device without a DMM that is not AnalogDevice."""
    import dataclasses

    return dataclasses.replace(AnalogDevice.to_virtual(), name="NoDMMDevice")


def test_quantum_best_picks_inside_the_folds_among_every_quantum_kernel(tmp_path) -> None:
    pipeline = FeaturePipeline(
        cache_dir=tmp_path / "cache", n_workers=1, progress=False, evaluation_times=(0.5, 1.0)
    )
    models = ("qek-label-svm", "qek-chem-svm", "quantum-best")
    config = ExperimentConfig(dataset="PTC_FM", models=models, max_nodes=6, limit=24, folds=3, repeats=1,
                              out=str(tmp_path / "out"))  # fmt: skip
    report = run_experiment(config, progress=False, pipeline=pipeline)
    label, chem, best = report.results
    for record in label.folds:
        assert record.best_params["label_ranks"].split(",")[0] == "2"  # carbon (PTC's label 2) ranks first
    members = set(MODELS["quantum-best"].members)
    for record in best.folds:
        assert record.best_params["model"] in members
        assert record.best_params.get("lambda", 1.0) != 0.0  # a hybrid with λ = 0 is not a quantum model
    assert best.seconds >= label.seconds  # its time includes every model it chose among
    settings = report.features["featurisations"]
    assert settings["chem"]["device"] == "AnalogDMMDevice"
    assert settings["chem"]["node_detuning"]["attribute"] == "element"
    assert {s["device"] for s in settings["label-folds"]} == {"AnalogDMMDevice"}
    assert 1 <= len(settings["label-folds"]) <= 3  # folds with the same weights share one featurisation


def test_gnn_variants_run_under_their_own_names(tmp_path: Path) -> None:
    config = ExperimentConfig(
        dataset="PTC_FM",
        models=("qgin", "qgin-labels", "qgin-pooled"),
        max_nodes=5,
        limit=20,
        folds=2,
        repeats=1,
        gnn_epochs=2,
        evaluation_times=(0.5, 1.0),
        out=str(tmp_path),
    )
    report = run_experiment(config, progress=False)
    assert [r.model for r in report.results] == ["qgin", "qgin-labels", "qgin-pooled"]
    for name in config.models:
        assert (tmp_path / f"PTC_FM-{name}-learning-curves.png").is_file()
    labels = report.results[1]
    assert all(f.best_params.get("label_vocabulary") for f in labels.folds)
    assert not any("label_vocabulary" in f.best_params for f in report.results[0].folds)


def test_stratified_subsample_is_the_one_run_experiment_evaluates(tmp_path: Path) -> None:
    from qgnn.experiment import stratified_subsample

    dataset = load_dataset("PTC_FM", max_nodes=6)
    keep = stratified_subsample(dataset.y, 20, seed=0)
    assert len(keep) == 20 and list(keep) == sorted(set(keep.tolist()))
    assert set(np.unique(dataset.y[keep])) == set(np.unique(dataset.y))
    config = ExperimentConfig(dataset="PTC_FM", models=("wl-svm",), max_nodes=6, limit=20, folds=2, repeats=1)
    report = run_experiment(replace(config, out=str(tmp_path)), progress=False)
    assert report.targets == dataset.y[keep].tolist()
    with pytest.raises(QgnnError, match="cannot keep every class"):
        stratified_subsample(dataset.y, 1, seed=0)
