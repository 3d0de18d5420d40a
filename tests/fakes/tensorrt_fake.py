"""FAKE ``tensorrt`` Python modules (8.6.2, 10.3, 11.1) and a fake CUDA API, for tests.  No
TensorRT runs: the builder reads the ONNX with ``onnx`` and derives engine layers with
:mod:`engine_model`.  Install with ``monkeypatch.setitem(sys.modules, "tensorrt", make("10.3.0"))``.

Rules (TRT@tag:path:Lnn = github.com/NVIDIA/TensorRT at that tag; review = tensorrt-first-contact.md):

* Names per version: ``EXPLICIT_BATCH`` until 10.x (ignored from 10.0), ``STRONGLY_TYPED`` = 1 in
  10.3 (TRT@v10.3.0:include/NvInfer.h:L9620) and 0 in 11.1 (TRT@v11.1:include/NvInfer.h:L11471);
  ``BuilderFlag.FP16/INT8/OBEY_PRECISION_CONSTRAINTS`` gone in 11.1
  (TRT@v11.1:python/src/infer/pyCore.cpp:L1599-1623); ``platform_has_fast_int8`` removed in 11.
* Strong typing follows the ONNX types (TRT@v10.3.0:include/NvInfer.h:L9616-9620); weak typing
  follows the FP16/INT8 flags; on 8.x a Q/DQ network needs the INT8 flag (quantization_path.md §2).
* A dynamic input without an optimization profile fails the build (the builder requires a
  profile for dynamic inputs; ``IBuilderConfig::addOptimizationProfile``, NvInfer.h).
* ``IExecutionContext.get_tensor_shape`` keeps ``-1`` until ``set_input_shape`` is called
  (NvInferRuntime.h ``getTensorShape``; review M4); ``execute_async_v3`` returns False while an
  input shape or a tensor address is unset.
* ``create_timing_cache(blob)`` returns None for a blob it cannot read, and
  ``set_timing_cache(cache, ignore_mismatch)`` returns a bool
  (TRT@v10.3.0:include/NvInfer.h:L9268-9286; Polygraphy guards None at
  TRT@v10.16:tools/Polygraphy/polygraphy/backend/trt/config.py:L310-333; review m2).
* TRT 8.6 engines show Myelin ``{ForeignNode[…]}`` layers with empty Metadata (engine_model).
* ``report_to_profiler`` calls ``IProfiler.report_layer_time(name, ms)`` per layer
  (TRT@v10.3.0:python/src/infer/pyCore.cpp:L784).
* ``deserialize_cuda_engine`` returns None for an engine of another version (review "Bad input").
"""

from __future__ import annotations

import enum
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_model import BuildRules, engine_layers, has_qdq


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    INT64 = 9


_ONNX_TO_TRT = {
    1: DataType.FLOAT,
    10: DataType.HALF,
    3: DataType.INT8,
    6: DataType.INT32,
    7: DataType.INT64,
    9: DataType.BOOL,
}


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class TensorLocation(enum.IntEnum):
    DEVICE = 0
    HOST = 1


def make(version: str) -> types.ModuleType:
    """A fake ``tensorrt`` module of ``version`` (``8.6.2``, ``10.3.0``, ``11.1.0``)."""
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    creation: dict[str, int] = {}
    if major < 11:
        creation["EXPLICIT_BATCH"] = 0
    if major == 10:
        creation["STRONGLY_TYPED"] = 1
    elif major >= 11:
        creation["STRONGLY_TYPED"] = 0
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(**creation)  # type: ignore[attr-defined]
    flags = {"TF32": 6}
    if major < 11:
        flags.update(FP16=0, INT8=1, OBEY_PRECISION_CONSTRAINTS=9, GPU_FALLBACK=3)
    else:
        flags.update(GPU_FALLBACK=3)
    trt.BuilderFlag = types.SimpleNamespace(**flags)  # type: ignore[attr-defined]
    trt.DataType = DataType  # type: ignore[attr-defined]
    trt.TensorIOMode = TensorIOMode  # type: ignore[attr-defined]
    trt.TensorLocation = TensorLocation  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=0)  # type: ignore[attr-defined]
    trt.ProfilingVerbosity = types.SimpleNamespace(DETAILED=2, LAYER_NAMES_ONLY=0)  # type: ignore[attr-defined]
    trt.LayerInformationFormat = types.SimpleNamespace(JSON=1, ONELINE=0)  # type: ignore[attr-defined]
    trt.DeviceType = types.SimpleNamespace(GPU=0, DLA=1)  # type: ignore[attr-defined]
    trt.Dims = lambda dims: tuple(int(d) for d in dims)  # type: ignore[attr-defined]
    trt.calls = []  # type: ignore[attr-defined]  # what the tests may inspect

    class ILogger:
        Severity = _Severity

        def __init__(self) -> None:
            pass

    class Logger(ILogger):
        WARNING = _Severity.WARNING

        def __init__(self, severity: Any = _Severity.WARNING) -> None:
            self.severity = severity

        def log(self, severity: Any, msg: str) -> None:
            pass

    class IProfiler:
        def __init__(self) -> None:
            pass

    class ITimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = blob

        def serialize(self) -> bytes:
            return json.dumps({"fake_timing_cache": version}).encode()

    class ITensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: DataType) -> None:
            self.name, self.shape, self.dtype = name, shape, dtype

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[ITensor] = []
            self.outputs: list[ITensor] = []
            self.model: onnx.ModelProto | None = None

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> ITensor:
            return self.inputs[i]

        num_layers = 0

    class ParserError:
        def __init__(self, desc: str) -> None:
            self._desc = desc

        def node(self) -> int:
            return -1

        def desc(self) -> str:
            return self._desc

    class OnnxParser:
        def __init__(self, network: INetworkDefinition, logger: Any) -> None:
            self.network = network
            self.errors: list[ParserError] = []

        def parse_from_file(self, path: str) -> bool:
            model = onnx.load(path, load_external_data=False)
            inits = {t.name for t in model.graph.initializer}

            def tensor(v: Any) -> ITensor:
                dims = tuple(d.dim_value if d.dim_value > 0 else -1 for d in v.type.tensor_type.shape.dim)
                return ITensor(v.name, dims, _ONNX_TO_TRT.get(v.type.tensor_type.elem_type, DataType.FLOAT))

            self.network.inputs = [tensor(v) for v in model.graph.input if v.name not in inits]
            self.network.outputs = [tensor(v) for v in model.graph.output]
            self.network.model = model
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> ParserError:
            return self.errors[i]

    class IOptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[int, ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            assert tuple(lo) == tuple(opt) == tuple(hi)
            self.shapes[name] = tuple(opt)

    class IBuilderConfig:
        def __init__(self) -> None:
            self.flags: set[int] = set()
            self.profiles: list[IOptimizationProfile] = []
            self.cache: ITimingCache | None = None
            self.profiling_verbosity = 0
            self.default_device_type = 0
            self.DLA_core = -1

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            pass

        def set_flag(self, flag: int) -> None:
            self.flags.add(int(flag))

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, blob: bytes) -> ITimingCache | None:
            if blob and not blob.startswith(b'{"fake_timing_cache"'):
                return None  # a stale or corrupt cache (rule above)
            return ITimingCache(bytes(blob))

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            if cache is None:
                raise TypeError("set_timing_cache(): incompatible function arguments")
            self.cache = cache
            return True

        def get_timing_cache(self) -> ITimingCache | None:
            return self.cache

        def can_run_on_DLA(self, layer: Any) -> bool:
            return True

    class Builder:
        num_DLA_cores = 2

        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            return INetworkDefinition(flags)

        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> bytes | None:
            trt.calls.append(("build", network.flags, sorted(config.flags)))  # type: ignore[attr-defined]
            assert network.model is not None
            strong_bit = creation.get("STRONGLY_TYPED")
            strong = major >= 11 or (strong_bit is not None and bool(network.flags & (1 << strong_bit)))
            if strong and (config.flags & {flags.get("FP16", -9), flags.get("INT8", -9)}):
                self.logger.log(_Severity.ERROR, "precision flags are not allowed on a strongly typed network")
                return None
            shapes = config.profiles[0].shapes if config.profiles else {}
            if any(-1 in t.shape and t.name not in shapes for t in network.inputs):
                self.logger.log(_Severity.ERROR, "Network has dynamic or shape inputs, but no optimization profile")
                return None
            int8 = flags.get("INT8") in config.flags
            if major < 10 and has_qdq(network.model) and not int8:
                self.logger.log(_Severity.ERROR, "Q/DQ networks need the INT8 builder flag")
                return None
            rules = BuildRules(major, strong, fp16=flags.get("FP16") in config.flags, int8=int8)
            engine = {
                "fake_engine_trt": version,
                "info": engine_layers(network.model, rules),
                "io": [[t.name, "in", list(t.shape), int(t.dtype)] for t in network.inputs]
                + [[t.name, "out", list(t.shape), int(t.dtype)] for t in network.outputs],
                "strongly_typed": strong,
            }
            return json.dumps(engine).encode()

    class IEngineInspector:
        def __init__(self, engine: ICudaEngine) -> None:
            self.engine = engine

        def get_engine_information(self, fmt: Any) -> str:
            return json.dumps(self.engine.data["info"])

    class IExecutionContext:
        def __init__(self, engine: ICudaEngine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.profiler: Any = None
            self.enqueue_emits_profile = True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            shape = self.engine.io[name][1]
            if self.engine.io[name][0] == "in":
                return self.shapes.get(name, shape)
            # outputs resolve once every dynamic input has a shape (fake: same shape as the first input)
            if -1 in shape and self.shapes:
                first = next(iter(self.shapes.values()))
                return tuple(f if s == -1 else s for s, f in zip(shape, first, strict=False))
            return shape

        def set_input_shape(self, name: str, shape: Any) -> bool:
            declared = self.engine.io[name][1]
            shape = tuple(int(d) for d in shape)
            if len(shape) != len(declared) or any(d != -1 and d != s for d, s in zip(declared, shape, strict=True)):
                return False
            self.shapes[name] = shape
            return True

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            unresolved = [n for n, (kind, _s, _d) in self.engine.io.items() if -1 in self.get_tensor_shape(n)]
            return not unresolved and set(self.addresses) >= set(self.engine.io)

        def report_to_profiler(self) -> bool:
            for k, layer in enumerate(self.engine.data["info"]["Layers"]):
                self.profiler.report_layer_time(layer["Name"], 0.01 * (1 + k % 3))
            return True

    class ICudaEngine:
        def __init__(self, data: dict) -> None:
            self.data = data
            self.io = {name: (kind, tuple(shape), DataType(dt)) for name, kind, shape, dt in data["io"]}
            self.names = list(self.io)

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        @property
        def num_layers(self) -> int:
            return len(self.data["info"]["Layers"])

        def get_tensor_name(self, i: int) -> str:
            return self.names[i]

        def get_tensor_mode(self, name: str) -> TensorIOMode:
            return TensorIOMode.INPUT if self.io[name][0] == "in" else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> DataType:
            return self.io[name][2]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return self.io[name][1]

        def get_tensor_location(self, name: str) -> TensorLocation:
            return TensorLocation.DEVICE

        def create_execution_context(self) -> IExecutionContext:
            return IExecutionContext(self)

        def create_engine_inspector(self) -> IEngineInspector:
            return IEngineInspector(self)

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger
            self.DLA_core = -1

        def deserialize_cuda_engine(self, blob: bytes) -> ICudaEngine | None:
            data = json.loads(bytes(blob))
            if data.get("fake_engine_trt") != version:
                return None
            return ICudaEngine(data)

    for cls in (ILogger, Logger, IProfiler, ITimingCache, INetworkDefinition, OnnxParser, IBuilderConfig, Builder):
        setattr(trt, cls.__name__, cls)
    for cls in (IEngineInspector, IExecutionContext, ICudaEngine, Runtime, ParserError):
        setattr(trt, cls.__name__, cls)
    if major < 11:
        Builder.platform_has_fast_int8 = True  # type: ignore[attr-defined]

    def nptype(dtype: DataType) -> type:
        # TRT@v8.6.1 / v10.3.0: python/packaging/.../tensorrt/__init__.py maps bool to np.bool_
        return {
            DataType.FLOAT: np.float32,
            DataType.HALF: np.float16,
            DataType.INT8: np.int8,
            DataType.INT32: np.int32,
            DataType.INT64: np.int64,
            DataType.BOOL: np.bool_,
            DataType.UINT8: np.uint8,
        }[dtype]

    trt.nptype = nptype  # type: ignore[attr-defined]
    return trt


class FakeCuda:
    """Host memory standing in for device memory; events read a counter.  Implements the runner's
    :class:`orinprof.backends.tensorrt.cuda.CudaApi` surface (duck-typed)."""

    binding = "fake"
    supports_graphs = False

    def __init__(self) -> None:
        self.memory: dict[int, bytearray] = {}
        self.clock = 0.0

    def device_info(self) -> Any:
        from orinprof.backends.tensorrt.cuda import DeviceInfo

        return DeviceInfo("Orin", "8.7", "12.6", self.binding, multiprocessors=16, total_memory=64 << 30)

    def malloc(self, nbytes: int) -> int:
        ptr = 0x1000 * (len(self.memory) + 1)
        self.memory[ptr] = bytearray(max(nbytes, 1))
        return ptr

    def free(self, ptr: int) -> None:
        self.memory.pop(ptr)

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: int) -> None:
        data = np.ascontiguousarray(host).tobytes()
        self.memory[ptr][: len(data)] = data

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: int) -> None:
        host[...] = np.frombuffer(bytes(self.memory[ptr][: host.nbytes]), dtype=host.dtype).reshape(host.shape)

    def stream_create(self) -> int:
        return 7

    def stream_destroy(self, stream: int) -> None:
        pass

    def stream_synchronize(self, stream: int) -> None:
        pass

    def event_create(self) -> list[float]:
        return [0.0]

    def event_record(self, event: list[float], stream: int) -> None:
        self.clock += 0.05
        event[0] = self.clock

    def event_synchronize(self, event: Any) -> None:
        pass

    def event_elapsed_ms(self, start: list[float], end: list[float]) -> float:
        return end[0] - start[0]

    def event_destroy(self, event: Any) -> None:
        pass

    def graph_destroy(self, graph: Any) -> None:
        pass
