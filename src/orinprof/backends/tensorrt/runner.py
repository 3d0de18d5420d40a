"""TensorRT runner (Python API): cached engine, CUDA-event timing, IProfiler per-layer run.

Timing run (``timed_call_impl``): inputs are copied to the device once in
``prepare_timing_impl``; each call records a CUDA event, launches ``execute_async_v3`` (or replays a
captured CUDA graph), records a second event and spin-waits on it.  No host↔device copy is timed.

Profiling run (``profile_layers_impl``): a *second* execution context with an ``IProfiler``
attached, ``enqueue_emits_profile = False`` and ``report_to_profiler()`` after each launch (what
trtexec does with ``--separateProfileRun``), so the timing context never carries a profiler.

Layers are traced to ONNX nodes through the engine inspector JSON (built with DETAILED verbosity),
parsed by :mod:`orinprof.trt_formats`, the one reader of that format, and matched against the
ONNX the engine was built from exactly as ``orinprof ingest trtexec`` does, so an opaque Myelin
``{ForeignNode[…]}`` region or a reformat is never counted as attention, FFN or other (review M1).

Options: :class:`TrtOptions` in ``RunnerOptions.backend``; the plan, input shapes and artefact
directory come from the typed ``RunnerOptions`` fields (the legacy ``extra`` keys are still read).
"""

from __future__ import annotations

import json
import logging
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from orinprof import quantize
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
from orinprof.backends.tensorrt.features import (
    INSTALL_HINT,
    TrtFeatures,
    TypingPlan,
    detect_features,
    import_tensorrt,
    plan_typing,
)
from orinprof.errors import OrinprofError
from orinprof.trt_formats import onnx_node_order

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
    def from_runner_options(cls, options: RunnerOptions) -> TrtOptions:
        """``options.backend`` when it is a TrtOptions, else the legacy ``extra`` form; the plan
        (``options.plan``), input shapes and artefact directory come from the typed fields."""
        typed = isinstance(options.backend, TrtOptions)
        base = options.backend if typed else cls.from_extra(options.extra)
        shapes = dict(base.input_shapes) or {k: tuple(int(d) for d in v) for k, v in options.input_shapes.items()}
        engine_dir = base.engine_dir
        if (
            options.artifact_dir is not None
            and not options.extra.get("engine_dir")
            and engine_dir == DEFAULT_ENGINE_DIR
        ):
            engine_dir = Path(options.artifact_dir) / "engines"
        explicit_cache = base.timing_cache if typed else options.extra.get("timing_cache")
        return replace(
            base,
            precision=str(options.extra.get("precision") or options.plan),
            input_shapes=shapes,
            engine_dir=engine_dir,
            # default None: activate names it per TensorRT version and GPU (review m2)
            timing_cache=Path(explicit_cache) if explicit_cache else None,
        )

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
    myelin_regions: tuple[str, ...] = ()
    reformat_layers: int = 0

    @property
    def fused_mha(self) -> bool | None:
        """None ("unknown") when no MHA kernel is visible but a Myelin region could hide one."""
        if self.fused_mha_layers:
            return True
        return None if self.myelin_regions else False


def engine_facts(inspector_json: str) -> EngineFacts:
    """Summarise ``get_engine_information(LayerInformationFormat.JSON)`` (same shape as trtexec's
    ``--exportLayerInfo``)."""
    from orinprof.trt_formats import engine_summary, parse_layer_info, split_metadata

    try:
        data = json.loads(inspector_json)
    except json.JSONDecodeError as err:
        raise OrinprofError(
            "the engine inspector returned invalid JSON", "rebuild the engine with DETAILED verbosity"
        ) from err
    info = parse_layer_info(data, "engine inspector")
    summary = engine_summary(info)
    precisions: dict[str, str] = {}
    types: dict[str, str] = {}
    nodes: dict[str, str] = {}
    for row in info.layers.to_dict("records"):
        name = str(row["name"])
        precisions[name] = str(row["precision_in"] or row["precision_out"] or "")
        types[name] = str(row["layer_type"])
        nodes[name] = ";".join(split_metadata(row["metadata"]))
    return EngineFacts(
        layer_count=summary.layer_count,
        layer_precisions=precisions,
        precision_counts=dict(summary.precision_counts),
        fused_mha_layers=summary.fused_mha_layers,
        fused_mha_precisions=summary.fused_mha_precisions,
        layer_types=types,
        onnx_nodes=nodes,
        myelin_regions=summary.myelin_regions,
        reformat_layers=summary.reformat_layers,
    )


#: raw-profile columns beyond RAW_PROFILE_COLUMNS: how each layer was traced to ONNX nodes
PROFILE_EXTRA_COLUMNS = ("status", "mapping", "precision_in")


def profile_rows(
    iterations: list[list[tuple[str, float]]],
    facts: EngineFacts | None,
    onnx_node_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-iteration profiler reports → :data:`RAW_PROFILE_COLUMNS` rows plus ``status`` and
    ``mapping``: every layer goes through :func:`orinprof.trt_formats.match_onnx_nodes` (Metadata,
    else the engine name against ``onnx_node_names``), as ``orinprof ingest trtexec`` does, so a
    ``{ForeignNode[…]}`` without Metadata becomes ``fused-unattributed`` and a reformat ``reformat``."""
    from orinprof.trt_formats import match_onnx_nodes, onnx_index

    index = onnx_index(onnx_node_names) if onnx_node_names is not None else None
    mapped: dict[str, tuple[str, str]] = {}
    rows = []
    for iteration, records in enumerate(iterations):
        for layer, ms in records:
            if layer not in mapped:
                meta = facts.onnx_nodes.get(layer, "") if facts else ""
                found, mapping = match_onnx_nodes(
                    layer, [n for n in meta.split(";") if n], onnx_node_names, _index=index
                )
                mapped[layer] = (";".join(found), mapping)
            nodes, mapping = mapped[layer]
            status = mapping if mapping in ("fused-unattributed", "reformat") else "ok"
            rows.append(
                {
                    "iteration": iteration,
                    "layer": layer,
                    "op_type": facts.layer_types.get(layer, "") if facts else "",
                    "onnx_nodes": nodes or np.nan,  # missing stays missing
                    "time_ms": float(ms),
                    "status": status,
                    "mapping": mapping,
                    "precision_in": facts.layer_precisions.get(layer, "") if facts else "",
                }
            )
    return pd.DataFrame(rows, columns=[*RAW_PROFILE_COLUMNS, *PROFILE_EXTRA_COLUMNS])


#: numpy dtypes of TensorRT's DataType names (not ``trt.nptype``: TensorRT 8.5.2's uses ``np.bool``,
#: which numpy 1.24 removed; ``TRT@8.5.2:python/packaging/tensorrt/__init__.py:L161-168``)
_NUMPY_DTYPES = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
}


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    if name not in _NUMPY_DTYPES:
        raise OrinprofError(f"engine I/O type {name} has no numpy equivalent", "export the model with FP32/FP16 I/O")
    return np.dtype(_NUMPY_DTYPES[name])


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
        self.trt_options = TrtOptions.from_runner_options(self.options)
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
        self._typing: TypingPlan | None = None
        self._source: Path = self.model_path
        self._node_order: list[str] | None = None

    # ------------------------------------------------------------------ lifecycle
    def activate_impl(self) -> None:
        import tensorrt as trt

        if not self.model_path.is_file():
            raise OrinprofError(f"ONNX file {self.model_path} does not exist", "export the model first")
        opts = self.trt_options
        if opts.dla_core is not None and opts.precision == "fp32":
            raise OrinprofError("DLA runs FP16 and INT8 only, not the fp32 plan", "drop --dla for fp32, or use fp16")
        self._features = features = detect_features(trt)
        if not (features.has_execute_async_v3 and features.has_memory_pool_limit):
            raise OrinprofError(f"TensorRT {trt.__version__} lacks execute_async_v3", INSTALL_HINT)
        # the typing this build uses decides which ONNX it starts from (review M2, M3)
        self._typing = plan_typing(features, opts.precision, opts.strongly_typed)
        self._source = quantize.trt_plan_source(self.model_path, opts.precision, self._typing.strongly_typed)
        self._cuda = cuda = load_cuda()
        self._device = device = cuda.device_info()
        self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._logger)
        if opts.timing_cache is None:
            gpu = re.sub(r"[^A-Za-z0-9]+", "-", device.name).strip("-") or "gpu"
            opts = replace(
                opts,
                timing_cache=opts.engine_dir / f"timing.trt{trt.__version__}.{gpu}.sm{device.multiprocessors}.cache",
            )
            self.trt_options = opts
        build_options = opts.build_options()
        key = CacheKey(
            onnx_sha256=file_sha256(self._source),
            plan=opts.precision,
            # the typing actually used is part of the key and of the sidecar (review m3)
            builder_options={
                **build_options.key_parts(),
                "typing": "strong" if self._typing.strongly_typed else "weak",
            },
            tensorrt_version=trt.__version__,
            gpu_name=device.name,
            compute_capability=device.compute_capability,
            gpu_multiprocessors=device.multiprocessors,
            gpu_memory=device.total_memory,
        )
        if opts.dla_core is not None:
            runtime.DLA_core = opts.dla_core
        source = self._source
        cached = EngineCache(opts.engine_dir).get_or_build(
            key,
            build=lambda: build_engine(source, build_options).engine,
            deserialize=runtime.deserialize_cuda_engine,
        )
        self._engine, self._engine_path, self._engine_built = cached.engine, cached.path, cached.built
        self._context = self._engine.create_execution_context()
        self._stream = cuda.stream_create()
        self._bindings = self._allocate(trt, self._context)
        self._events = (cuda.event_create(), cuda.event_create())
        if features.has_engine_inspector:
            inspector = self._engine.create_engine_inspector()
            self._facts = engine_facts(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
        self._node_order = onnx_node_order(self._source)

    def _typing_name(self) -> str:
        return "strong" if self._typing is not None and self._typing.strongly_typed else "weak"

    def _set_input_shapes(self, trt: Any, context: trt.IExecutionContext) -> None:
        """Resolve every input's shape on ``context``: engine tensors keep ``-1`` dims until
        ``set_input_shape`` is called (``IExecutionContext::getTensorShape``; review M4)."""
        engine = self._engine
        given = self.trt_options.input_shapes
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            declared = dims_tuple(engine.get_tensor_shape(name))
            shape = tuple(int(d) for d in given[name]) if name in given else declared
            if any(d < 0 for d in shape):
                raise OrinprofError(
                    f"engine input {name!r} has dynamic shape {list(declared)} and no shape was given",
                    "pass --batch and --seq (input_shapes) for a model with dynamic axes",
                )
            if not context.set_input_shape(name, trt.Dims(list(shape))):
                raise OrinprofError(
                    f"TensorRT refused shape {list(shape)} for input {name!r} (engine: {list(declared)})",
                    "use the --seq/--batch the engine was built for",
                )

    def _allocate(self, trt: Any, context: trt.IExecutionContext) -> list[_Binding]:
        """One device buffer per I/O tensor, bound with set_tensor_address, after the input
        shapes are set so that no dimension is left unresolved."""
        assert self._cuda is not None
        engine: trt.ICudaEngine = self._engine
        self._set_input_shapes(trt, context)
        host_location = getattr(getattr(trt, "TensorLocation", None), "HOST", None)
        bindings = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if host_location is not None and engine.get_tensor_location(name) == host_location:
                # a shape tensor read on the host would be handed a device pointer (review m15)
                raise OrinprofError(
                    f"engine tensor {name!r} lives in host memory (a shape tensor)",
                    "orinprof binds device buffers only; export the model without shape-tensor inputs",
                )
            shape = dims_tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise OrinprofError(f"engine tensor {name!r} has unresolved shape {list(shape)}", "rebuild the engine")
            dtype = numpy_dtype(engine.get_tensor_dtype(name))
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
            try:
                self._cuda.graph_begin_capture(self._stream)
                try:
                    self._launch(self._context)
                finally:
                    # always end the capture, or the stream stays in capture mode
                    graph = self._cuda.graph_end_capture(self._stream)
                self._graph = graph
            except OrinprofError as err:
                # what trtexec does: "may be ignored if the graph capture fails" (review m4)
                log.warning("CUDA-graph capture failed (%s); timing without a graph", err.one_line())
                self._graph = None

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
        self._set_input_shapes(trt, context)  # the profiling context needs its shapes too (M4)
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
        return profile_rows(per_iteration, self._facts, self._node_order)

    def attribution_graph(self) -> Path | None:
        """The engine was built from :attr:`_source` (the FP32 export for a weakly typed fp16 plan)."""
        return self._source if self._source != self.model_path else None

    # ------------------------------------------------------------------ facts
    def info_impl(self) -> BackendInfo:
        import tensorrt as trt

        device = self._device
        assert device is not None and self._features is not None
        facts = self._facts
        details: dict[str, Any] = {
            "engine_path": str(self._engine_path),
            "engine_built_now": self._engine_built,
            "typing": self._typing_name(),
            "plan_source": str(self._source),
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
                myelin_regions=len(facts.myelin_regions),
                reformat_layers=facts.reformat_layers,
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
