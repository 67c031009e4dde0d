"""README's "Measured" block is what benchmarks/readme_figures.py computes from benchmarks/results/*.json."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


figures = _load_figures()


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A copy of the committed results, safe to edit."""
    return Path(shutil.copytree(figures.RESULTS, tmp_path / "results"))


def _edit(path: Path, change: object) -> None:
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def _block(readme: str) -> str:
    return readme.split(figures.START, 1)[1].split(figures.END, 1)[0]


def test_readme_matches_the_committed_results(capsys: pytest.CaptureFixture[str]) -> None:
    code = figures.main(["--check"])
    assert code == 0, capsys.readouterr().out


def test_check_fails_when_a_figure_in_the_readme_is_edited(tmp_path: Path) -> None:
    text = figures.README.read_text()
    block = _block(text)
    edited = re.sub(r"\d+", lambda m: str(int(m.group()) + 1), block, count=1)
    assert edited != block
    readme = tmp_path / "README.md"
    readme.write_text(text.replace(block, edited))
    assert figures.main(["--check", "--readme", str(readme)]) == 1


def test_figures_follow_the_json(results: Path, tmp_path: Path) -> None:
    _edit(
        results / "embedding_quality.json",
        lambda d: d["rows"][0].update(qgnn_exact=d["rows"][0]["graphs"] - 7),
    )
    rows = json.loads((results / "embedding_quality.json").read_text())["rows"]
    assert f"{rows[0]['graphs'] - 7} / {rows[0]['graphs']} {rows[0]['dataset']}" in figures.embedding(results)
    readme = tmp_path / "README.md"
    shutil.copy(figures.README, readme)
    assert figures.main(["--check", "--readme", str(readme), "--results", str(results)]) == 1
    assert figures.main(["--write", "--readme", str(readme), "--results", str(results)]) == 0
    assert figures.main(["--check", "--readme", str(readme), "--results", str(results)]) == 0


def test_write_replaces_only_the_marked_block(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# intro\n\n{figures.START}\n- 242× typed by hand\n{figures.END}\n\n## after\n")
    assert figures.main(["--write", "--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert text.startswith(f"# intro\n\n{figures.START}\n") and text.endswith(f"{figures.END}\n\n## after\n")
    assert _block(text) == "\n" + figures.render(results)
    assert "typed by hand" not in text


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert figures.main(["--check", "--readme", str(readme)]) == 2


def test_an_old_or_missing_throughput_json_is_not_measured(results: Path) -> None:
    _edit(results / "feature_throughput.json", lambda d: d.pop("schema", None))
    for body in (figures.render(results), _without_throughput(results)):
        bullets = [b for b in body.split("\n- ") if figures.NOT_MEASURED in b]
        throughput = [b for b in bullets if "feature_throughput" in b]
        assert len(throughput) == 2  # features and largest register, nothing invented


def _without_throughput(results: Path) -> str:
    (results / "feature_throughput.json").unlink()
    return figures.render(results)


def test_throughput_figures_are_computed_from_the_run(results: Path) -> None:
    """The committed quick run, relabelled as a full one, gives figures computed from its own numbers."""
    quick = json.loads((results / "feature_throughput.quick.json").read_text())
    assert quick["schema"] == figures.THROUGHPUT_SCHEMA
    quick["mode"] = "full"
    (results / "feature_throughput.json").write_text(json.dumps(quick))
    text = " ".join(figures.features(results).split())
    whole = quick["whole_set"]
    pipe = whole["pipeline"]
    anchor_per_graph = quick["anchor"]["seconds"] / quick["anchor"]["graphs"]
    assert f"in {pipe['s_per_graph'] * 1e3:.1f} ms per graph" in text
    assert f"over the {pipe['js_checked']} graphs checked" in text
    assert pipe["js_checked"] == whole["graphs"] - len(pipe["failures"])
    ratio = figures._times(anchor_per_graph / pipe["s_per_graph"])
    assert f"{anchor_per_graph:.2f} s per graph, {ratio} the pipeline's time per graph" in text
    assert "Recorded external anchor, not rerun here" in text
    largest = " ".join(figures.largest(results).split())
    for backend, run in quick["largest_within"]["backends"].items():
        assert f"{run['largest_within_limit']} atoms with `{backend}`" in largest
