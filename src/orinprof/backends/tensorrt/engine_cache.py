"""Engine cache under ``engines/``: build once per (ONNX, plan, options, TensorRT, GPU).

Files: ``engines/<key>.engine`` and ``engines/<key>.json`` (a sidecar with the key's parts and the
engine's sha256 and size).  A cached engine is used only if the sidecar matches the requested key
and the engine bytes match the recorded size and hash; anything else (truncated copy, a crash
mid-write, a file from another TensorRT) is rebuilt with a warning, never handed to TensorRT.

Pure Python: no TensorRT import here; the caller passes ``build`` and ``deserialize`` callables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

T = TypeVar("T")

SIDECAR_VERSION = 1


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """Everything an engine depends on.  Engines are not portable across TensorRT versions or GPUs."""

    onnx_sha256: str
    plan: str
    builder_options: Mapping[str, Any] = field(default_factory=dict)
    tensorrt_version: str = ""
    gpu_name: str = ""
    compute_capability: str = ""
    #: Orin modules share the name "Orin" and CC 8.7 but not SMs or memory: tactics tuned on an
    #: AGX's 16 SMs must not be reused on an NX or Nano (review m14)
    gpu_multiprocessors: int = 0
    gpu_memory: int = 0

    def parts(self) -> dict[str, Any]:
        parts = asdict(self)
        parts["builder_options"] = dict(self.builder_options)
        return parts

    def digest(self) -> str:
        canonical = json.dumps(self.parts(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedEngine(Generic[T]):
    engine: T
    path: Path
    built: bool  # True when built now, False when loaded from the cache


class EngineCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def paths(self, key: CacheKey) -> tuple[Path, Path]:
        digest = key.digest()
        return self.root / f"{digest}.engine", self.root / f"{digest}.json"

    def load(self, key: CacheKey) -> bytes | None:
        """The cached engine bytes, or None (with a warning when a damaged entry is skipped)."""
        engine_path, sidecar_path = self.paths(key)
        if not engine_path.exists() and not sidecar_path.exists():
            return None
        problem = self._problem(key, engine_path, sidecar_path)
        if problem:
            log.warning("cached engine %s is not used: %s; rebuilding", engine_path.name, problem)
            return None
        return engine_path.read_bytes()

    def _problem(self, key: CacheKey, engine_path: Path, sidecar_path: Path) -> str | None:
        if not engine_path.exists():
            return "engine file missing"
        if not sidecar_path.exists():
            return "sidecar missing (an interrupted write?)"
        try:
            sidecar = json.loads(sidecar_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            return f"sidecar unreadable ({err})"
        if not isinstance(sidecar, dict) or sidecar.get("key") != json.loads(json.dumps(key.parts(), default=str)):
            return "sidecar describes a different ONNX/plan/TensorRT/GPU"
        size = engine_path.stat().st_size
        if size != sidecar.get("engine_size"):
            return f"size {size} B, expected {sidecar.get('engine_size')} B (truncated?)"
        if file_sha256(engine_path) != sidecar.get("engine_sha256"):
            return "sha256 mismatch (corrupt?)"
        return None

    def store(self, key: CacheKey, engine: bytes) -> Path:
        """Write engine then sidecar, each atomically; the sidecar last, so a crash leaves no valid pair."""
        engine_path, sidecar_path = self.paths(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(engine_path, engine)
            sidecar = {
                "sidecar_version": SIDECAR_VERSION,
                "key": key.parts(),
                "engine_sha256": hashlib.sha256(engine).hexdigest(),
                "engine_size": len(engine),
            }
            _atomic_write(sidecar_path, (json.dumps(sidecar, indent=2, default=str) + "\n").encode())
        except OSError as err:
            raise OrinprofError(
                f"cannot write the engine cache in {self.root} ({err.strerror})",
                "pass a writable --engine-dir",
            ) from err
        return engine_path

    def get_or_build(
        self,
        key: CacheKey,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], T | None],
    ) -> CachedEngine[T]:
        """Load and deserialize the cached engine, or build, store and deserialize a new one.

        ``deserialize`` returning None (TensorRT rejects the plan) counts as a corrupt entry."""
        engine_path, _ = self.paths(key)
        blob = self.load(key)
        if blob is not None:
            engine = deserialize(blob)
            if engine is not None:
                log.info("using cached engine %s", engine_path)
                return CachedEngine(engine, engine_path, built=False)
            log.warning("TensorRT could not deserialize cached engine %s; rebuilding", engine_path.name)
        blob = build()
        self.store(key, blob)
        engine = deserialize(blob)
        if engine is None:
            raise OrinprofError(
                f"TensorRT could not deserialize the engine it just built ({engine_path})",
                "check the TensorRT log above; the runtime and builder versions must match",
            )
        return CachedEngine(engine, engine_path, built=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
