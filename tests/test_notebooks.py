"""Every notebook runs top to bottom with small settings, offline, and is committed without outputs.

Each notebook runs in a fresh Jupyter kernel (nbclient) with ``QGNN_NOTEBOOK_FAST=1``,
an empty feature cache and a temporary working folder, as on a fresh install; a
failing cell fails the test. The project's fake Pasqal cloud
(``tests/fake_pasqal_cloud.py``) is started here and its URL and credentials are
passed in the environment variables the notebooks read
(``QGNN_PASQAL_ENDPOINT``, ``PASQAL_USERNAME``, ...), so
``03_pasqal_hardware`` rehearses a cloud run over real HTTP.
Per-notebook checks look at what each notebook printed, not only at the absence
of errors.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from fake_pasqal_cloud import FakePasqalCloud
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
FAST_VARIABLE = "QGNN_NOTEBOOK_FAST"
BUDGET_S = 240.0
"""Upper bound for one notebook with small settings; the full settings take far longer."""


@pytest.fixture
def cloud() -> Iterator[FakePasqalCloud]:
    """The fake Pasqal cloud on an ephemeral 127.0.0.1 port."""
    server = FakePasqalCloud().start()
    yield server
    server.stop()


@pytest.fixture
def notebook_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: FakePasqalCloud) -> Path:
    """Small settings, an empty cache, the fake cloud's address and account; returns the working folder."""
    monkeypatch.setenv(FAST_VARIABLE, "1")
    monkeypatch.setenv("PYTHONWARNINGS", "ignore::DeprecationWarning")
    monkeypatch.setenv("QGNN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # what the notebooks put in tempfile folders
    monkeypatch.setenv("PASQAL_USERNAME", cloud.username)
    monkeypatch.setenv("PASQAL_PASSWORD", cloud.password)
    monkeypatch.setenv("PASQAL_PROJECT_ID", cloud.project_id)
    monkeypatch.setenv("QGNN_PASQAL_ENDPOINT", cloud.url)
    monkeypatch.setenv("QGNN_PASQAL_AUTH_ENDPOINT", cloud.token_url)
    monkeypatch.setenv("QGNN_PASQAL_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("QGNN_PASQAL_DEVICE", raising=False)
    monkeypatch.delenv("PASQAL_SKIP_GZIP_REQUEST_BODY", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    return work


def execute(path: Path, workdir: Path) -> tuple[Any, float]:
    """Run every cell of the notebook at ``path`` in ``workdir``; return it (with outputs) and the seconds."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return notebook, time.perf_counter() - start


def _outputs(notebook: Any) -> list[Any]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def printed(notebook: Any) -> str:
    """Everything the notebook printed to stdout."""
    return "".join(o.get("text", "") for o in _outputs(notebook) if o.get("name") == "stdout")


def pictures(notebook: Any) -> int:
    """Number of PNG images among the outputs."""
    return sum("image/png" in o.get("data", {}) for o in _outputs(notebook))


def check_quickstart(notebook: Any, workdir: Path, cloud: FakePasqalCloud) -> None:
    text = printed(notebook)
    assert re.search(r"(\d+) of \1 graphs featurised", text), text
    js = re.search(r"Jensen–Shannon divergence to EmuSV ([0-9.e+-]+)", text)
    assert js and float(js.group(1)) < 1e-3, text  # the default backend agrees with the exact emulator
    rows = [line.split()[0] for line in text.splitlines() if re.match(r"(qek|wl)-svm\s+0\.\d{3} ±", line)]
    assert rows == ["qek-svm", "wl-svm"], text
    assert (workdir / "results" / "notebook" / "PTC_FM-results.json").is_file()
    assert pictures(notebook) >= 5  # graphs and registers, distributions, kernel, two confusion matrices


def check_bring_your_own_graphs(notebook: Any, workdir: Path, cloud: FakePasqalCloud) -> None:
    text = printed(notebook)
    for name in ("hexagon", "path of 5", "wheel", "ladder"):
        assert re.search(rf"^{name}\s+\d+ atoms, exact embedding: True", text, re.M), text
    for name, error in [
        ("star, 6 leaves", "NotEmbeddableError: .*K1,6"),
        ("8-clique", "NotEmbeddableError: .*clique"),
        ("self-loop", "InvalidGraphError: .*self-loop"),
        ("directed", "InvalidGraphError: .*directed"),
    ]:
        assert re.search(rf"^{name}\s+NOT featurised: {error}", text, re.M), text
    assert "graphs without quantum features: none" in text
    assert re.search(r"DataBatch\(.*x_q=.*pe_q=.*edge_attr_q=.*hist_q=\[16, \d+\]", text), text
    assert re.search(r"^GIN, .*test accuracy 0\.\d{3}", text, re.M), text
    assert re.search(r"^QuantumGIN, .*test accuracy 0\.\d{3}", text, re.M), text
    assert re.search(r"QEK-SVM accuracy .*: 0\.\d{3}", text), text
    assert pictures(notebook) >= 6  # registers, molecules, two learning curves, kernel, confusion matrix


def check_pasqal_hardware(notebook: Any, workdir: Path, cloud: FakePasqalCloud) -> None:
    text = printed(notebook)
    assert f"REHEARSAL: talking to {cloud.url}" in text, text  # says which cloud it talks to
    assert "TALKING TO PASQAL" not in text
    assert "register without a layout → BackendError" in text, text  # rejected before sending
    assert "Ω above the channel's limit → ScheduleError" in text, text
    assert cloud.count("POST", "/api/v1/batches") == 1  # the resumed run paid for nothing twice
    assert re.search(r"(\d+) of \1 graphs measured; .*\(0 new\)", text), text
    js = re.search(r"cloud vs local, per graph: \[([^\]]*)\]", text)
    assert js, text
    assert all(float(v) < 0.03 for v in js.group(1).split(",")), text  # shot noise of 200 shots
    assert pictures(notebook) >= 2


def check_labels_and_trained_pulses(notebook: Any, workdir: Path, cloud: FakePasqalCloud) -> None:
    text = printed(notebook)
    shifts = re.findall(r"labels by (.+) move ⟨n_i⟩ by up to ([0-9.]+)", text)
    assert [name for name, _ in shifts] == ["electronegativity", "frequency rank"], text
    assert all(float(shift) > 0.05 for _, shift in shifts), text  # the DMM changes the atoms' excitation
    alignment = re.search(r"alignment on the training graphs: ([0-9.-]+) → ([0-9.-]+)", text)
    assert alignment and float(alignment.group(2)) > float(alignment.group(1)) + 0.05, text  # training helps
    assert "same segments: True" in text, text  # the JSON file gives the trained schedule back
    exported = r"channels \['dmm_0', 'rydberg_global'\], 660 ns, \d+ characters .*\(read back: 660 ns\)"
    assert re.search(exported, text), text  # a DMM channel, and Pulser's JSON reads back
    number = r"([0-9.e+-]+)"
    emu = re.search(rf"EmuSV vs the layer .*: max \|Δ⟨n_i⟩\| = {number}, max \|ΔP\(k\)\| = {number}", text)
    assert emu and float(emu.group(1)) < 1e-5 and float(emu.group(2)) < 1e-5, text  # both exact
    trotter = re.search(rf"PennyLane engine vs torch engine .*: max \|Δ⟨n_i⟩\| = {number}", text)
    assert trotter and float(trotter.group(1)) < 1e-3, text  # 4-ns Trotter steps
    rows = [line.split()[0] for line in text.splitlines() if re.match(r"qek-\S+\s+[01]\.\d{3} ±", line)]
    assert rows == ["qek-svm", "qek-trained"], text
    out = workdir / "results" / "notebook-04"
    pulse = json.loads((out / "PTC_FM-pulse.json").read_text())
    assert pulse["attribute"] == "element" and all(0 <= w <= 1 for w in pulse["weights"]), pulse
    assert (out / "PTC_FM-results.json").is_file()
    folds = json.loads((out / "PTC_FM-qek-trained-pulses.json").read_text())["folds"]
    assert len(folds) == 3 and all(len(f["alignment"]) == 11 for f in folds)  # 3 folds, 10 epochs + the start
    # register and DMM map, ⟨n_i⟩ bars, alignment, pulse, Pulser's sequence and map, accuracy, two
    # confusion matrices, kernel matrix, the folds' pulses
    assert pictures(notebook) >= 11


CHECKS: dict[str, Callable[[Any, Path, FakePasqalCloud], None]] = {
    "01_quickstart.ipynb": check_quickstart,
    "02_bring_your_own_graphs.ipynb": check_bring_your_own_graphs,
    "03_pasqal_hardware.ipynb": check_pasqal_hardware,
    "04_labels_and_trained_pulses.ipynb": check_labels_and_trained_pulses,
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(
    path: Path, notebook_env: Path, cloud: FakePasqalCloud, record_property: Any
) -> None:
    notebook, seconds = execute(path, notebook_env)
    record_property("seconds", round(seconds, 1))
    print(f"{path.name}: {seconds:.1f} s")
    errors = [o for o in _outputs(notebook) if o.get("output_type") == "error"]
    assert not errors
    assert seconds < BUDGET_S, f"{path.name} took {seconds:.0f} s with {FAST_VARIABLE}=1"
    check = CHECKS.get(path.name)
    if check is not None:
        check(notebook, notebook_env, cloud)


def test_the_tutorial_notebooks_exist() -> None:
    assert set(CHECKS) <= {p.name for p in NOTEBOOKS}


def unclean_cells(notebook: Any) -> list[int]:
    """Positions of the code cells that hold outputs or an execution count."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return [k for k, cell in enumerate(code) if cell.outputs or cell.execution_count is not None]


def test_unclean_cells_finds_outputs_and_execution_counts() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("1 + 1") for _ in range(3)]
    assert unclean_cells(notebook) == []
    notebook.cells[1].execution_count = 4
    notebook.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2")]
    assert unclean_cells(notebook) == [1, 2]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path: Path) -> None:
    """No outputs or execution counts in git, and the small settings reach the notebook."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    dirty = unclean_cells(notebook)
    assert not dirty, (
        f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them "
        "(Jupyter: Edit > Clear All Outputs, or `jupyter nbconvert --clear-output --inplace`)"
    )
    assert FAST_VARIABLE in "".join(cell.source for cell in code), f"{path.name} ignores {FAST_VARIABLE}"
