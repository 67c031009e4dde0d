"""The qgnn command line: `qgnn models`, and `qgnn train` rejecting bad arguments before any output."""

from __future__ import annotations

import pytest

from qgnn.cli import main
from qgnn.experiment import MODELS


def test_models_lists_every_model_with_its_description(capsys) -> None:
    assert main(["models"]) == 0
    printed = capsys.readouterr().out
    classical, quantum = printed.split("quantum:")
    for name, spec in MODELS.items():
        assert f"  {name} " in (quantum if spec.quantum else classical)
        assert spec.summary.split()[0] in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "NOPE"], "unknown dataset 'NOPE'"),
        (["--backend", "warp-drive"], "unknown backend"),
        (["--times", "1,0.5"], "increasing"),
        (["--model", "qek-pooled-svm"], "two evaluation times"),
        (["--dataset", "IMDB-BINARY", "--model", "gdqc-svm"], "no node labels"),
        (["--dataset", "ESOL", "--model", "wl-svm"], "regression"),
    ],
)
def test_train_rejects_bad_arguments_before_the_header(
    argv: list[str], message: str, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    assert main(["train", *argv, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # not even the header line
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--folds", "1"], "--folds: must be an integer ≥ 2"),
        (["--repeats", "0"], "--repeats: must be an integer ≥ 1"),
        (["--seed", "-3"], "--seed: must be an integer ≥ 0"),
        (["--max-nodes", "zero"], "--max-nodes: must be an integer ≥ 1, got 'zero'"),
        (["--model", "qek-svm,,warp"], "unknown model(s) ['warp']"),
    ],
)
def test_train_parser_rejects_bad_protocol_arguments(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_train_prints_what_selections_chose_and_the_hybrid_lambdas(tmp_path, capsys) -> None:
    argv = ["train", "--dataset", "PTC_FM", "--max-nodes", "6", "--limit", "24", "--folds", "3",
            "--repeats", "1", "--workers", "1", "--model", "wl+qek-svm,classical-best",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    chose = next(line for line in lines if line.startswith("classical-best chose: "))
    assert (
        sum(int(part.split(" × ")[1]) for part in chose.removeprefix("classical-best chose: ").split(", "))
        == 3
    )
    lambdas = next(
        line for line in lines if line.startswith("wl+qek-svm: λ of the quantum kernel per fold: ")
    )
    assert len(lambdas.split(": ")[-1].split(", ")) == 3


def test_demo_configuration_is_valid_and_shows_quantum_best_next_to_wl() -> None:
    from qgnn.cli.train import DEMO
    from qgnn.experiment import validate_config

    config = validate_config(DEMO)
    assert {"quantum-best", "wl-svm"} <= set(config.models)
    assert len(config.evaluation_times) > 1  # the pooled QEK joins quantum-best's choice
