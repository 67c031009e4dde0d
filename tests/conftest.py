"""Shared test set-up: an isolated qgnn cache, one torch thread, no network."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point QGNN_CACHE_DIR at a temporary folder so tests never touch ~/.cache/qgnn."""
    os.environ["QGNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("qgnn-cache"))
    import torch

    torch.set_num_threads(1)
