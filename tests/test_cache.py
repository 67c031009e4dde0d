"""The on-disk blob cache: atomic writes, corruption detected and never returned."""

from __future__ import annotations

import os

import pytest

from qgnn.features.cache import BlobCache, CacheCorruptionWarning, cache_dir, stable_hash


def test_roundtrip_and_miss(tmp_path) -> None:
    cache = BlobCache(tmp_path, "x")
    key = stable_hash({"a": 1})
    assert cache.get(key) is None
    cache.put(key, b"payload")
    assert cache.get(key) == b"payload"
    assert key in cache
    assert not [p for p in cache.path(key).parent.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupted_entry_is_detected_removed_and_missed(tmp_path, damage: str) -> None:
    cache = BlobCache(tmp_path, "x")
    key = stable_hash("k")
    cache.put(key, b"0123456789" * 10)
    path = cache.path(key)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[:-7])
    elif damage == "flip":
        path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    else:
        path.write_bytes(b"")
    with pytest.warns(CacheCorruptionWarning, match="corrupted"):
        assert cache.get(key) is None
    assert not path.exists()


def test_stable_hash_is_order_independent_for_dicts() -> None:
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_cache_dir_honours_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QGNN_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("QGNN_CACHE_DIR")
    assert cache_dir() == __import__("pathlib").Path(os.path.expanduser("~")) / ".cache" / "qgnn"
