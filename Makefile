# qgnn developer workflow. `make demo` and `make test` work on a fresh clone
# with only Python 3.11: they create .venv and install everything first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.qgnn-installed
EXTRAS := dev,cloud,pennylane,dask,chem

.PHONY: install test demo lint bench clean

# An existing .venv is reused only after this import check re-validates it.
install: $(STAMP)
	$(BIN)/python -c "import qgnn, torch, pulser, emu_sv, emu_mps, torch_geometric, pasqal_cloud, distributed, rdkit"

# torch is installed first and pinned: a bare `torch` requirement would pull a
# multi-GB CUDA build; torch==2.13.0 resolves to the CPU wheel on local disk.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

lint: install
	$(BIN)/ruff check qgnn tests benchmarks
	$(BIN)/mypy qgnn

test: install lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q

demo: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/qgnn demo

# Every figure the README publishes comes from these runs (hours on a 2-core machine; see benchmarks/README.md).
bench: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/embedding_quality.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/feature_throughput.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/subspace_scaling.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/backend_comparison.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/mutag_full.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/accuracy.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/trainable.py
	$(BIN)/python benchmarks/readme_figures.py --write

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
