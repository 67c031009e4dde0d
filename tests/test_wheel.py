"""The wheel carries the shipped datasets: an installed (not editable) qgnn loads them; ``-e`` still works.

Builds offline from a copy of the source tree (``pip wheel --no-deps
--no-build-isolation``), installs into fresh virtual environments that see
the test interpreter's packages through a ``.pth`` file, and loads MUTAG
there from outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from qgnn.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, qgnn, qgnn.data as d
ds = d.load_dataset("MUTAG")
print(json.dumps({"qgnn": qgnn.__file__, "root": str(d.datasets_root()), "n": len(ds), "sha256": ds.sha256}))
"""
INSTALL = ("install", "--no-deps", "--no-index", "-q")


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a build reads (top-level files, qgnn/, datasets/), copied so building leaves the repo alone."""
    src = tmp_path_factory.mktemp("src")
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, src / path.name)
    for folder in ("qgnn", "datasets"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


@pytest.fixture(scope="module")
def wheel(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out))
    (built,) = out.glob("qgnn-*.whl")
    return built


def _environment(where: Path) -> Path:
    """A fresh venv without qgnn that imports the test interpreter's packages (torch, networkx, ...)."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    query = [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    purelib = Path(subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip())
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "qgnn_test_dependencies.pth").write_text("\n".join(sorted(shared)) + "\n")
    return python


def _probe(python: Path, cwd: Path) -> dict[str, object]:
    """Load MUTAG with ``python``, run from ``cwd`` (outside the repository)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QGNN_DATASETS_DIR")}
    done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, cwd=cwd, env=env, timeout=99)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_wheel_contains_every_shipped_file(wheel: Path) -> None:
    sums = (ROOT / "datasets" / "SHA256SUMS").read_text().splitlines()
    expected = {f"qgnn/_datasets/{line.split()[1].removeprefix('./')}" for line in sums}
    expected.add("qgnn/_datasets/SHA256SUMS")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert len(expected) > 40 and expected <= names
    assert not any("__pycache__" in name for name in names)
    assert "License-Expression: Apache-2.0" in metadata.splitlines()


def test_installed_wheel_loads_shipped_datasets(wheel: Path, tmp_path: Path) -> None:
    python = _environment(tmp_path / "venv")
    _pip("--python", str(python), *INSTALL, str(wheel))
    found = _probe(python, cwd=tmp_path)
    site = tmp_path / "venv" / "lib"
    assert Path(str(found["qgnn"])).is_relative_to(site)  # the installed copy, not the repository's
    assert Path(str(found["root"])).is_relative_to(site) and str(found["root"]).endswith("qgnn/_datasets")
    assert found["n"] == 188 and found["sha256"] == load_dataset("MUTAG").sha256


def test_editable_install_reads_the_source_datasets(source: Path, tmp_path: Path) -> None:
    python = _environment(tmp_path / "venv")
    _pip("--python", str(python), *INSTALL, "--no-build-isolation", "-e", str(source))
    found = _probe(python, cwd=tmp_path)
    assert Path(str(found["qgnn"])) == source / "qgnn" / "__init__.py"
    assert Path(str(found["root"])) == source / "datasets"
    assert found["n"] == 188 and found["sha256"] == load_dataset("MUTAG").sha256
