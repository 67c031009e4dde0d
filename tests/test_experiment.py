"""qgnn train / demo: the whole protocol on tiny settings, and its bad inputs."""

from __future__ import annotations

import json

import networkx as nx
import pytest
from pulser.devices import AnalogDevice

from qgnn.cli import main
from qgnn.errors import QgnnError
from qgnn.experiment import ExperimentConfig, make_backend, run_experiment
from qgnn.features import FeaturePipeline


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
    folds = {
        m: [(f["repeat"], f["fold"], f["y_true"]) for f in v["folds"]] for m, v in results["models"].items()
    }
    assert len(folds["qek-svm"]) == 6
    assert folds["qek-svm"] == folds["wl-svm"] == folds["sp-svm"]  # same graphs, same folds for every model
    accuracy = results["models"]["qek-svm"]["summary"]["accuracy"][0]
    assert 0.0 <= accuracy <= 1.0
    assert all(f["best_params"]["mu"] > 0 for f in results["models"]["qek-svm"]["folds"])


def test_rerun_reads_the_feature_cache(tmp_path) -> None:
    config = ExperimentConfig(dataset="PTC_FM", models=("qek-svm",), max_nodes=6, folds=2, repeats=1,
                              out=str(tmp_path), workers=1)  # fmt: skip
    first = run_experiment(config, progress=False)
    pipeline = FeaturePipeline(n_workers=1, progress=False)
    second = run_experiment(config, progress=False, pipeline=pipeline)
    assert pipeline.last_run_seconds["computed"] == 0
    assert first.results[0].summary() == second.results[0].summary()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ExperimentConfig(dataset="NOPE"), "NOPE"),
        (ExperimentConfig(models=("magic",)), "unknown model"),
        (ExperimentConfig(max_nodes=1, models=("wl-svm",)), "no graph"),
        (ExperimentConfig(dataset="PTC_FM", max_nodes=12, models=("wl-svm",), folds=100), "smallest class"),
        (ExperimentConfig(dataset="MUTAG", max_nodes=10, models=("wl-svm",)), "two classes"),
        (ExperimentConfig(limit=0, models=("wl-svm",)), "limit"),
    ],
)
def test_bad_configurations_are_clear_errors(config: ExperimentConfig, message: str, tmp_path) -> None:
    from dataclasses import replace

    with pytest.raises(QgnnError, match=message):
        run_experiment(replace(config, out=str(tmp_path)), progress=False)


def test_cli_rejects_unknown_model_and_backend(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "qek-svm,magic"])
    assert exc.value.code == 2 and "magic" in capsys.readouterr().err
    assert main(["train", "--backend", "warp-drive", "--max-nodes", "5", "--out", str(tmp_path)]) == 2
    assert "unknown backend" in capsys.readouterr().err
    with pytest.raises(QgnnError, match="unknown backend"):
        make_backend("nope")


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


def test_several_evaluation_times_reach_qek_and_the_gnn(tmp_path, capsys) -> None:
    out = tmp_path / "times"
    code = main(
        ["train", "--dataset", "PTC_FM", "--max-nodes", "6", "--folds", "2", "--repeats", "1",
         "--workers", "1", "--model", "qek-svm,qgin", "--epochs", "3", "--times", "0.5,1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    results = json.loads((out / "PTC_FM-results.json").read_text())
    assert results["config"]["evaluation_times"] == [0.5, 1.0]
    assert set(results["models"]) == {"qek-svm", "qgin"}
    with pytest.raises(SystemExit):
        main(["train", "--times", "half", "--out", str(out)])
    assert "fractions" in capsys.readouterr().err
