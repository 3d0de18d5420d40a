"""ONNX → serialized TensorRT engine, through the documented builder API.

Steps (TensorRT Python API, ``Builder`` / ``OnnxParser`` / ``IBuilderConfig``):
network flags from :func:`~orinprof.backends.tensorrt.features.plan_typing`, ``parse_from_file``
(errors reported node by node), a workspace limit (``set_memory_pool_limit``), ``DETAILED``
profiling verbosity (so the engine inspector lists the ONNX nodes in each layer), one optimization
profile with min = opt = max = the static shapes, a persisted timing cache, an optional DLA core
with GPU fallback, then ``build_serialized_network``.  Building takes minutes on Orin, so a
background thread logs the elapsed time.

``tensorrt`` is imported inside :func:`build_engine` only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orinprof.backends.tensorrt.features import TrtFeatures, TypingPlan, detect_features, plan_typing
from orinprof.errors import OrinprofError

if TYPE_CHECKING:  # types only: tensorrt is imported at run time inside build_engine
    import tensorrt as trt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    precision: str = "fp16"
    workspace_mb: int = 2048
    #: None = weak typing where the version allows it, strong typing where it is required (11.x)
    strongly_typed: bool | None = None
    dla_core: int | None = None
    timing_cache: Path | None = None
    #: input name → static shape, for ONNX inputs with dynamic dimensions
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    progress_interval_s: float = 15.0

    def key_parts(self) -> dict[str, Any]:
        """The options that change the engine (for the cache key); the cache path does not."""
        return {
            "precision": self.precision,
            "workspace_mb": self.workspace_mb,
            "strongly_typed": self.strongly_typed,
            "dla_core": self.dla_core,
            "input_shapes": {k: list(v) for k, v in sorted(self.input_shapes.items())},
        }


@dataclass(frozen=True)
class BuildResult:
    engine: bytes
    typing: TypingPlan
    seconds: float
    dla_fallback_layers: tuple[str, ...] = ()


def build_engine(onnx_path: Path, options: BuildOptions) -> BuildResult:
    import tensorrt as trt

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise OrinprofError(f"ONNX file {onnx_path} does not exist", "export the model first (orinprof export)")
    features = detect_features(trt)
    typing = plan_typing(features, options.precision, options.strongly_typed)
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(typing.network_flags)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file (not parse(bytes)) so external-data weights beside the ONNX are found
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        for line in errors:
            log.error("ONNX parser: %s", line)
        raise OrinprofError(
            f"TensorRT {features.version}'s ONNX parser rejected {onnx_path.name}: "
            + "; ".join(errors[:5])
            + (f"; … {len(errors) - 5} more" if len(errors) > 5 else ""),
            "check the opset (≤ 17 for TensorRT 8.6) and the Q/DQ layout (orinprof lint-qdq)",
        )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mb) << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    for flag in typing.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))

    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = trt.Dims(list(_static_shape(tensor.name, dims_tuple(tensor.shape), options.input_shapes)))
        profile.set_shape(tensor.name, shape, shape, shape)  # min = opt = max: one static shape
    config.add_optimization_profile(profile)

    _attach_timing_cache(config, options.timing_cache)

    fallback: tuple[str, ...] = ()
    if options.dla_core is not None:
        fallback = _configure_dla(trt, builder, config, network, options.dla_core)

    log.info(
        "building %s engine from %s (TensorRT %s, %s typing, flags %s); this takes minutes on Jetson",
        options.precision,
        onnx_path.name,
        features.version,
        "strong" if typing.strongly_typed else "weak",
        ",".join(typing.builder_flags) or "none",
    )
    start = time.monotonic()
    with _log_elapsed(options.progress_interval_s):
        try:
            serialized = builder.build_serialized_network(network, config)
        except (RuntimeError, MemoryError) as err:
            raise _build_failed(onnx_path, logger, str(err)) from err
    if serialized is None:
        raise _build_failed(onnx_path, logger, "build_serialized_network returned None")
    seconds = time.monotonic() - start
    log.info("engine built in %.0f s", seconds)
    if options.timing_cache is not None:
        cache = config.get_timing_cache()
        if cache is not None:
            _write_timing_cache(options.timing_cache, bytes(cache.serialize()))
    return BuildResult(bytes(serialized), typing, seconds, fallback)


def dims_tuple(dims: Any) -> tuple[int, ...]:
    """``trt.Dims`` → tuple (Dims supports len() and indexing)."""
    return tuple(int(dims[j]) for j in range(len(dims)))


def _make_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` that forwards to :mod:`logging` and keeps the errors for our message."""

    class _Logger(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.INFO:
                log.debug("TensorRT: %s", msg)

    return _Logger()


def _describe_parser_error(error: trt.ParserError) -> str:
    """One line per parser error: node index, name and operator where this version reports them."""
    where = f"node {error.node()}"
    name = getattr(error, "node_name", None)  # node_name/node_operator are 10.x additions
    operator = getattr(error, "node_operator", None)
    if callable(name) and name():
        where += f" {name()!r}"
    if callable(operator) and operator():
        where += f" ({operator()})"
    return f"{where}: {error.desc()}"


def _static_shape(name: str, shape: tuple[int, ...], given: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    if name in given:
        wanted = tuple(int(d) for d in given[name])
        if len(wanted) != len(shape) or any(d >= 0 and d != w for d, w in zip(shape, wanted, strict=True)):
            raise OrinprofError(
                f"shape {list(wanted)} for input {name!r} does not fit the ONNX shape {list(shape)}",
                "pass one size per dimension, equal to the fixed ones",
            )
        return wanted
    if any(d < 0 for d in shape):
        raise OrinprofError(
            f"ONNX input {name!r} has dynamic dimensions {list(shape)}",
            "export with static shapes or pass input_shapes for it",
        )
    return shape


def _configure_dla(
    trt: Any, builder: trt.Builder, config: trt.IBuilderConfig, network: trt.INetworkDefinition, core: int
) -> tuple[str, ...]:
    available = int(builder.num_DLA_cores)
    if not 0 <= core < available:
        raise OrinprofError(
            f"DLA core {core} requested but this device has {available} DLA core(s)",
            "use --dla 0 or --dla 1 on AGX Orin, or leave --dla out",
        )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = core
    # layers DLA cannot run go to the GPU instead of failing the build
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    fallback = tuple(
        network.get_layer(i).name for i in range(network.num_layers) if not config.can_run_on_DLA(network.get_layer(i))
    )
    if fallback:
        log.warning("%d layer(s) cannot run on DLA and fall back to the GPU, e.g. %s", len(fallback), fallback[0])
    return fallback


def _build_failed(onnx_path: Path, logger: Any, detail: str) -> OrinprofError:
    errors = getattr(logger, "errors", [])
    last = errors[-1] if errors else detail
    oom = any("memory" in e.lower() or "alloc" in e.lower() for e in [*errors, detail])
    hint = (
        "out of memory: lower --workspace-mb, close other GPU programs, or use a smaller --seq"
        if oom
        else "see the TensorRT errors logged above"
    )
    return OrinprofError(f"TensorRT could not build an engine from {onnx_path.name}: {last}", hint)


def _attach_timing_cache(config: Any, path: Path | None) -> None:
    """Load the timing cache file into ``config``; a stale or corrupt file (one from TensorRT 8.6
    after a JetPack 6.0 → 6.1 upgrade) makes ``create_timing_cache`` return None: start empty then,
    as Polygraphy does (``TRT@v10.16:tools/Polygraphy/polygraphy/backend/trt/config.py:L310-333``;
    the bool result of ``set_timing_cache`` is documented at ``TRT@v10.3.0:include/NvInfer.h:L9268-9286``)."""
    cache_bytes = _read_timing_cache(path)
    cache = config.create_timing_cache(cache_bytes)
    if cache is None and cache_bytes:
        log.warning("timing cache %s is not usable by this TensorRT; starting a new one", path)
        cache = config.create_timing_cache(b"")
    if cache is None:
        log.warning("TensorRT could not create a timing cache; building without one")
        return
    # ignore_mismatch=False: a cache from another device or version is not used
    if not config.set_timing_cache(cache, False):
        log.warning("TensorRT refused the timing cache %s; starting a new one", path)
        empty = config.create_timing_cache(b"")
        if empty is not None:
            config.set_timing_cache(empty, False)


def _read_timing_cache(path: Path | None) -> bytes:
    if path is None or not Path(path).exists():
        return b""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        log.warning("timing cache %s unreadable (%s); starting a new one", path, err.strerror)
        return b""


def _write_timing_cache(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:  # the engine is fine without it; the next build is just slower
        log.warning("could not save the timing cache %s (%s)", path, err.strerror)


@contextmanager
def _log_elapsed(interval_s: float) -> Iterator[None]:
    """Log 'still building … N s' every ``interval_s`` from a daemon thread."""
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(interval_s):
            log.info("still building the engine … %.0f s", time.monotonic() - start)

    thread = threading.Thread(target=tick, name="orinprof-trt-build-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1.0)


__all__ = ["BuildOptions", "BuildResult", "TrtFeatures", "build_engine"]
