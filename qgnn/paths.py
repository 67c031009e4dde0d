"""Where qgnn keeps files on the user's machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """qgnn's cache root: ``$QGNN_CACHE_DIR`` or ``~/.cache/qgnn`` (features, embeddings, job ledger)."""
    env = os.environ.get("QGNN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "qgnn"
