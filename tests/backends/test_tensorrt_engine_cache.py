"""Engine cache: pure-Python key, sidecar and validation logic, with temp dirs and fake engines."""

from __future__ import annotations

import json
import logging

import pytest

from orinprof.backends.tensorrt.engine_cache import CacheKey, EngineCache
from orinprof.errors import OrinprofError

KEY = CacheKey("ab" * 32, "int8-attn", {"workspace_mb": 1024}, "10.3.0.30", "Orin", "8.7")


class Builds:
    """Counts builds; deserialize accepts only bytes that start with the magic prefix."""

    def __init__(self, blob: bytes = b"ENGINE" + bytes(range(200))):
        self.blob, self.count = blob, 0

    def build(self) -> bytes:
        self.count += 1
        return self.blob

    @staticmethod
    def deserialize(blob: bytes):
        return ("engine", len(blob)) if blob.startswith(b"ENGINE") else None


@pytest.mark.parametrize(
    "field,value",
    [
        ("onnx_sha256", "cd" * 32),
        ("plan", "fp16"),
        ("builder_options", {"workspace_mb": 2048}),
        ("tensorrt_version", "8.6.2.3"),
        ("gpu_name", "A100"),
        ("compute_capability", "8.0"),
    ],
)
def test_every_key_part_changes_the_digest(field, value):
    parts = KEY.parts()
    parts[field] = value
    assert CacheKey(**parts).digest() != KEY.digest()


def test_build_once_then_load(tmp_path):
    cache, builds = EngineCache(tmp_path / "engines"), Builds()
    first = cache.get_or_build(KEY, builds.build, builds.deserialize)
    second = cache.get_or_build(KEY, builds.build, builds.deserialize)
    assert first.built and not second.built and builds.count == 1
    assert second.engine == ("engine", len(builds.blob))
    sidecar = json.loads(cache.paths(KEY)[1].read_text())
    assert sidecar["engine_size"] == len(builds.blob)
    assert sidecar["key"]["tensorrt_version"] == "10.3.0.30"
    assert not list((tmp_path / "engines").glob("*.tmp"))


@pytest.mark.parametrize(
    "damage",
    [
        lambda e, s: e.write_bytes(e.read_bytes()[:50]),  # truncated copy
        lambda e, s: e.write_bytes(b"ENGINF" + e.read_bytes()[6:]),  # same size, different bytes
        lambda e, s: s.unlink(),  # interrupted write: engine without sidecar
        lambda e, s: s.write_text("{not json"),
        lambda e, s: s.write_text(json.dumps({**json.loads(s.read_text()), "key": {"plan": "fp16"}})),
    ],
    ids=["truncated", "corrupt", "no-sidecar", "bad-sidecar", "other-key"],
)
def test_damaged_entry_is_rebuilt_with_a_warning_never_loaded(tmp_path, caplog, damage):
    cache, builds = EngineCache(tmp_path), Builds()
    cache.get_or_build(KEY, builds.build, builds.deserialize)
    engine_path, sidecar_path = cache.paths(KEY)
    damage(engine_path, sidecar_path)
    loaded: list[bytes] = []

    def spy(blob: bytes):
        loaded.append(blob)
        return builds.deserialize(blob)

    with caplog.at_level(logging.WARNING):
        result = cache.get_or_build(KEY, builds.build, spy)
    assert result.built and builds.count == 2
    assert loaded == [builds.blob]  # only the fresh build reached "TensorRT"
    assert "rebuilding" in caplog.text
    assert cache.load(KEY) == builds.blob  # and the entry is valid again


def test_engine_rejected_by_runtime_is_rebuilt(tmp_path, caplog):
    cache = EngineCache(tmp_path)
    stale = Builds(b"ENGINE-from-another-build")
    cache.get_or_build(KEY, stale.build, stale.deserialize)
    fresh = Builds()
    calls = []

    def picky(blob: bytes):  # like deserialize_cuda_engine returning None for a foreign plan
        calls.append(blob)
        return None if blob == stale.blob else fresh.deserialize(blob)

    result = cache.get_or_build(KEY, fresh.build, picky)
    assert result.built and calls == [stale.blob, fresh.blob]
    assert "could not deserialize" in caplog.text


def test_fresh_engine_that_does_not_deserialize_is_an_error(tmp_path):
    cache, builds = EngineCache(tmp_path), Builds(b"garbage")
    with pytest.raises(OrinprofError, match="could not deserialize the engine it just built"):
        cache.get_or_build(KEY, builds.build, builds.deserialize)


def test_unwritable_cache_dir_is_a_user_error(tmp_path):
    blocker = tmp_path / "engines"
    blocker.write_text("a file, not a directory")
    with pytest.raises(OrinprofError, match="cannot write the engine cache"):
        EngineCache(blocker).store(KEY, b"ENGINE")
