"""Content-addressed on-disk cache with atomic writes and integrity checks.

Each entry is one file ``<root>/<namespace>/<key[:2]>/<key>.bin`` holding the
SHA-256 digest of its payload followed by the payload. Writes go to a
temporary file that is ``os.replace``-d into place, so a crash never leaves a
half-written entry under the final name; a truncated or corrupted entry fails
its digest check, is removed, and reads as a miss (the caller recomputes).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from qgnn.paths import cache_dir

__all__ = ["BlobCache", "CacheCorruptionWarning", "cache_dir", "stable_hash"]

_DIGEST = 32


def stable_hash(obj: Any) -> str:
    """SHA-256 hex digest of ``obj`` serialised as canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed its integrity check and will be recomputed."""


class BlobCache:
    """A directory of checksummed blobs addressed by hex keys.

    Args:
        root: cache directory (created on first write).
        namespace: sub-directory separating kinds of entries.
    """

    def __init__(self, root: str | Path, namespace: str) -> None:
        self.root = Path(root) / namespace

    def path(self, key: str) -> Path:
        """Where the entry for ``key`` lives."""
        return self.root / key[:2] / f"{key}.bin"

    def get(self, key: str) -> bytes | None:
        """The payload stored under ``key``, or ``None`` if absent or corrupted."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        digest, payload = blob[:_DIGEST], blob[_DIGEST:]
        if len(blob) < _DIGEST or hashlib.sha256(payload).digest() != digest:
            warnings.warn(
                f"cache entry {path} is corrupted or truncated: removed, it will be recomputed",
                CacheCorruptionWarning,
                stacklevel=2,
            )
            path.unlink(missing_ok=True)
            return None
        return payload

    def put(self, key: str, payload: bytes) -> None:
        """Store ``payload`` under ``key`` atomically (write temp file, fsync, rename)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(hashlib.sha256(payload).digest())
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()
