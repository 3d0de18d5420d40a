"""TensorRT runner (Python API): cached engine, CUDA-event timing, IProfiler per-layer run.

Timing run (``timed_call_impl``): inputs are copied to the device once in
``prepare_timing_impl``; each call records a CUDA event, launches ``execute_async_v3`` (or replays a
captured CUDA graph), records a second event and spin-waits on it.  No host↔device copy is timed.

Profiling run (``profile_layers_impl``): a *second* execution context with an ``IProfiler``
attached, ``enqueue_emits_profile = False`` and ``report_to_profiler()`` after each launch (what
trtexec does with ``--separateProfileRun``), so the timing context never carries a profiler.

Layers are traced to ONNX nodes through the engine inspector JSON (built with DETAILED verbosity),
parsed by :mod:`orinprof.trt_formats`, the one reader of that format.

Options (``RunnerOptions.extra``): ``precision``, ``engine_dir``, ``workspace_mb``, ``dla_core``,
``strongly_typed``, ``timing_cache``, ``input_shapes``.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from orinprof.backends.base import (
    RAW_PROFILE_COLUMNS,
    BackendInfo,
    Feed,
    Progress,
    Runner,
    RunnerOptions,
)
from orinprof.backends.tensorrt.build import BuildOptions, build_engine, dims_tuple
from orinprof.backends.tensorrt.cuda import CudaApi, DeviceInfo, load_cuda
from orinprof.backends.tensorrt.engine_cache import CacheKey, EngineCache, file_sha256
from orinprof.backends.tensorrt.features import INSTALL_HINT, TrtFeatures, detect_features, import_tensorrt
from orinprof.errors import OrinprofError

if TYPE_CHECKING:  # types only: tensorrt is imported at run time inside the methods
    import tensorrt as trt

log = logging.getLogger(__name__)

DEFAULT_ENGINE_DIR = Path("engines")


def probe() -> tuple[bool, str]:
    """For the registry: can this machine run the backend?  Imports tensorrt (only here)."""
    try:
        trt = import_tensorrt()
    except OrinprofError as err:
        return False, err.one_line()
    return True, f"TensorRT {trt.__version__}"


@dataclass(frozen=True)
class TrtOptions:
    precision: str = "fp16"
    engine_dir: Path = DEFAULT_ENGINE_DIR
    workspace_mb: int = 2048
    dla_core: int | None = None
    strongly_typed: bool | None = None
    timing_cache: Path | None = None  # default: <engine_dir>/timing.cache
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> TrtOptions:
        known = {
            "precision",
            "engine_dir",
            "workspace_mb",
            "dla_core",
            "strongly_typed",
            "timing_cache",
            "input_shapes",
        }
        # keys every runner receives from orinprof.measure (shapes come from the feed)
        common = {"batch", "seq_len", "preset", "spec"}
        unknown = sorted(set(extra) - known - common)
        if unknown:
            raise OrinprofError(
                f"unknown TensorRT option(s) {', '.join(unknown)}", "valid: " + ", ".join(sorted(known))
            )
        engine_dir = Path(extra.get("engine_dir") or DEFAULT_ENGINE_DIR)
        dla = extra.get("dla_core")
        cache = extra.get("timing_cache")
        return cls(
            precision=str(extra.get("precision", "fp16")),
            engine_dir=engine_dir,
            workspace_mb=int(extra.get("workspace_mb", 2048)),
            dla_core=None if dla is None else int(dla),
            strongly_typed=extra.get("strongly_typed"),
            timing_cache=Path(cache) if cache else engine_dir / "timing.cache",
            input_shapes={k: tuple(int(d) for d in v) for k, v in (extra.get("input_shapes") or {}).items()},
        )

    def build_options(self) -> BuildOptions:
        return BuildOptions(
            precision=self.precision,
            workspace_mb=self.workspace_mb,
            strongly_typed=self.strongly_typed,
            dla_core=self.dla_core,
            timing_cache=self.timing_cache,
            input_shapes=self.input_shapes,
        )


@dataclass(frozen=True)
class EngineFacts:
    """What the engine inspector says about a built engine."""

    layer_count: int
    layer_precisions: Mapping[str, str]  # layer name → precision it runs in (input side)
    precision_counts: Mapping[str, int]
    fused_mha_layers: tuple[str, ...]
    fused_mha_precisions: tuple[str, ...]
    layer_types: Mapping[str, str]
    onnx_nodes: Mapping[str, str]  # layer name → ';'-joined ONNX node names from Metadata

    @property
    def fused_mha(self) -> bool:
        return bool(self.fused_mha_layers)


def engine_facts(inspector_json: str) -> EngineFacts:
    """Summarise ``get_engine_information(LayerInformationFormat.JSON)`` (same shape as trtexec's
    ``--exportLayerInfo``)."""
    from orinprof.trt_formats import is_fused_mha, parse_layer_info, split_metadata

    try:
        data = json.loads(inspector_json)
    except json.JSONDecodeError as err:
        raise OrinprofError(
            "the engine inspector returned invalid JSON", "rebuild the engine with DETAILED verbosity"
        ) from err
    layers = parse_layer_info(data, "engine inspector").layers
    precisions: dict[str, str] = {}
    types: dict[str, str] = {}
    nodes: dict[str, str] = {}
    mha_layers: list[str] = []
    mha_precisions: list[str] = []
    for row in layers.to_dict("records"):
        name = str(row["name"])
        precision = str(row["precision_in"] or row["precision_out"] or "")
        precisions[name] = precision
        types[name] = str(row["layer_type"])
        nodes[name] = ";".join(split_metadata(row["metadata"]))
        if is_fused_mha(row):
            mha_layers.append(name)
            if precision and precision not in mha_precisions:
                mha_precisions.append(precision)
    counts: dict[str, int] = {}
    for precision in precisions.values():
        counts[precision or "unknown"] = counts.get(precision or "unknown", 0) + 1
    return EngineFacts(
        layer_count=len(layers),
        layer_precisions=precisions,
        precision_counts=counts,
        fused_mha_layers=tuple(mha_layers),
        fused_mha_precisions=tuple(mha_precisions),
        layer_types=types,
        onnx_nodes=nodes,
    )


def profile_rows(iterations: list[list[tuple[str, float]]], facts: EngineFacts | None) -> pd.DataFrame:
    """Per-iteration profiler reports → :data:`RAW_PROFILE_COLUMNS` rows."""
    rows = []
    for iteration, records in enumerate(iterations):
        for layer, ms in records:
            nodes = facts.onnx_nodes.get(layer, "") if facts else ""
            rows.append(
                {
                    "iteration": iteration,
                    "layer": layer,
                    "op_type": facts.layer_types.get(layer, "") if facts else "",
                    "onnx_nodes": nodes or np.nan,  # missing stays missing
                    "time_ms": float(ms),
                }
            )
    return pd.DataFrame(rows, columns=list(RAW_PROFILE_COLUMNS))


@dataclass
class _Binding:
    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype
    ptr: int
    host: np.ndarray


class TensorRTRunner(Runner):
    name = "tensorrt"
    summary = "TensorRT Python API: engine build, CUDA-event timing, IProfiler per-layer times"
    engine_layers = True

    def __init__(self, model_path: Path, options: RunnerOptions | None = None) -> None:
        super().__init__(model_path, options)
        self.trt_options = TrtOptions.from_extra(self.options.extra)
        self._cuda: CudaApi | None = None
        self._device: DeviceInfo | None = None
        self._features: TrtFeatures | None = None
        self._engine: Any = None
        self._context: Any = None
        self._bindings: list[_Binding] = []
        self._stream = 0
        self._events: tuple[Any, Any] | None = None
        self._graph: Any = None
        self._facts: EngineFacts | None = None
        self._engine_path: Path | None = None
        self._engine_built = False
        self._logger: Any = None

    # ------------------------------------------------------------------ lifecycle
    def activate_impl(self) -> None:
        import tensorrt as trt

        if not self.model_path.is_file():
            raise OrinprofError(f"ONNX file {self.model_path} does not exist", "export the model first")
        self._features = detect_features(trt)
        if not (self._features.has_execute_async_v3 and self._features.has_memory_pool_limit):
            raise OrinprofError(f"TensorRT {trt.__version__} lacks execute_async_v3", INSTALL_HINT)
        self._cuda = cuda = load_cuda()
        self._device = cuda.device_info()
        self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._logger)
        opts = self.trt_options
        key = CacheKey(
            onnx_sha256=file_sha256(self.model_path),
            plan=opts.precision,
            builder_options=opts.build_options().key_parts(),
            tensorrt_version=trt.__version__,
            gpu_name=self._device.name,
            compute_capability=self._device.compute_capability,
        )
        if opts.dla_core is not None:
            runtime.DLA_core = opts.dla_core
        cached = EngineCache(opts.engine_dir).get_or_build(
            key,
            build=lambda: build_engine(self.model_path, opts.build_options()).engine,
            deserialize=runtime.deserialize_cuda_engine,
        )
        self._engine, self._engine_path, self._engine_built = cached.engine, cached.path, cached.built
        self._context = self._engine.create_execution_context()
        self._stream = cuda.stream_create()
        self._bindings = self._allocate(trt, self._context)
        self._events = (cuda.event_create(), cuda.event_create())
        if self._features.has_engine_inspector:
            inspector = self._engine.create_engine_inspector()
            self._facts = engine_facts(inspector.get_engine_information(trt.LayerInformationFormat.JSON))

    def _allocate(self, trt: Any, context: trt.IExecutionContext) -> list[_Binding]:
        """One device buffer per I/O tensor (static shapes), bound with set_tensor_address."""
        assert self._cuda is not None
        engine: trt.ICudaEngine = self._engine
        bindings = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = dims_tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise OrinprofError(f"engine tensor {name!r} has dynamic shape {list(shape)}", "rebuild the engine")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            host = np.empty(shape, dtype=dtype)
            ptr = self._cuda.malloc(host.nbytes)
            if not context.set_tensor_address(name, ptr):
                raise OrinprofError(f"TensorRT refused the device address for {name!r}", "rebuild the engine")
            bindings.append(_Binding(name, is_input, shape, dtype, ptr, host))
        return bindings

    def deactivate_impl(self) -> None:
        cuda = self._cuda
        if cuda is None:
            return
        if self._graph is not None:
            cuda.graph_destroy(self._graph)
            self._graph = None
        for binding in self._bindings:
            cuda.free(binding.ptr)
        self._bindings = []
        if self._events:
            for event in self._events:
                cuda.event_destroy(event)
            self._events = None
        if self._stream:
            cuda.stream_destroy(self._stream)
            self._stream = 0
        # drop TensorRT objects context-first (the documented destruction order)
        self._context = None
        self._engine = None

    # ------------------------------------------------------------------ inference
    def _copy_inputs(self, feed: Feed) -> None:
        assert self._cuda is not None
        inputs = [b for b in self._bindings if b.is_input]
        missing = [b.name for b in inputs if b.name not in feed]
        if missing:
            raise OrinprofError(
                f"inputs missing from the feed: {', '.join(missing)}",
                "engine inputs: " + ", ".join(b.name for b in inputs),
            )
        for binding in inputs:
            value = np.asarray(feed[binding.name])
            if tuple(value.shape) != binding.shape:
                raise OrinprofError(
                    f"input {binding.name!r} has shape {list(value.shape)}, the engine expects {list(binding.shape)}",
                    "engines are built for one static shape; use the --seq/--batch the engine was built for",
                )
            np.copyto(binding.host, value.astype(binding.dtype, copy=False))
            self._cuda.memcpy_htod(binding.ptr, binding.host, self._stream)

    def _launch(self, context: trt.IExecutionContext) -> None:
        if not context.execute_async_v3(self._stream):
            raise OrinprofError("TensorRT execute_async_v3 failed", "see the TensorRT errors logged above")

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        assert self._cuda is not None
        self._copy_inputs(feed)
        self._launch(self._context)
        outputs = {}
        for binding in self._bindings:
            if not binding.is_input:
                self._cuda.memcpy_dtoh(binding.host, binding.ptr, self._stream)
                outputs[binding.name] = binding.host.copy()
        return outputs

    def prepare_timing_impl(self, feed: Feed) -> None:
        assert self._cuda is not None
        self._copy_inputs(feed)  # once: the timed loop does no host↔device copies
        if self.options.cuda_graph and self._graph is None:
            if not self._cuda.supports_graphs:
                log.warning("CUDA-graph replay needs cuda-python (have %s); timing without it", self._cuda.binding)
                return
            # one plain launch first: TensorRT may allocate/update state on the first enqueue,
            # which must not happen during capture
            self._launch(self._context)
            self._cuda.stream_synchronize(self._stream)
            self._cuda.graph_begin_capture(self._stream)
            self._launch(self._context)
            self._graph = self._cuda.graph_end_capture(self._stream)

    def timed_call_impl(self) -> float:
        cuda, events = self._cuda, self._events
        assert cuda is not None and events is not None
        start, end = events
        cuda.event_record(start, self._stream)
        if self._graph is not None:
            cuda.graph_launch(self._graph, self._stream)
        else:
            self._launch(self._context)
        cuda.event_record(end, self._stream)
        cuda.event_synchronize(end)  # spin-wait: events were created without blocking sync
        return cuda.event_elapsed_ms(start, end)

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        import tensorrt as trt

        cuda = self._cuda
        assert cuda is not None and self._engine is not None

        class LayerTimes(trt.IProfiler):  # type: ignore[misc]
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)
                self.records: list[tuple[str, float]] = []

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                self.records.append((layer_name, ms))

        self._copy_inputs(feed)
        context = self._engine.create_execution_context()
        for binding in self._bindings:  # same device buffers as the timing context
            context.set_tensor_address(binding.name, binding.ptr)
        profiler = LayerTimes()
        context.profiler = profiler
        context.enqueue_emits_profile = False
        per_iteration: list[list[tuple[str, float]]] = []
        try:
            for i in range(iterations):
                self._launch(context)
                cuda.stream_synchronize(self._stream)
                context.report_to_profiler()
                per_iteration.append(profiler.records)
                profiler.records = []
                if progress:
                    progress(i + 1, iterations)
        finally:
            del context
        return profile_rows(per_iteration, self._facts)

    # ------------------------------------------------------------------ facts
    def info_impl(self) -> BackendInfo:
        import tensorrt as trt

        device = self._device
        assert device is not None and self._features is not None
        facts = self._facts
        details: dict[str, Any] = {
            "engine_path": str(self._engine_path),
            "engine_built_now": self._engine_built,
            "strongly_typed": self.trt_options.strongly_typed,
            "compute_capability": device.compute_capability,
            "cuda_binding": device.binding,
            "cuda_graph": self._graph is not None,
            "dla_core": self.trt_options.dla_core,
        }
        if facts is not None:
            details.update(
                layer_count=facts.layer_count,
                layer_precisions=dict(facts.layer_precisions),
                precision_counts=dict(facts.precision_counts),
                fused_mha=facts.fused_mha,
                fused_mha_layers=list(facts.fused_mha_layers),
                fused_mha_precisions=list(facts.fused_mha_precisions),
            )
        else:
            details["layer_count"] = int(self._engine.num_layers) if self._engine is not None else None
        return BackendInfo(
            name=self.name,
            device=device.name,
            device_kind="jetson" if _is_jetson() else "gpu",
            versions={"tensorrt": trt.__version__, "cuda": device.cuda_runtime},
            details=details,
        )


def _is_jetson() -> bool:
    # L4T writes /etc/nv_tegra_release; Jetson is aarch64
    return platform.machine() == "aarch64" and Path("/etc/nv_tegra_release").exists()
