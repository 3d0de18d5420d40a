"""Device buffers, streams, events and CUDA graphs for the TensorRT runner, behind one small API.

Two implementations, chosen at run time by :func:`load_cuda`:

* cuda-python (``from cuda.bindings import runtime as cudart``; releases before 12.8 expose the
  same functions as ``from cuda import cudart``).  Every call returns ``(err, *values)``; every
  ``err`` is checked.
* pycuda (common on JetPack images).  It raises on error; its errors are translated.  CUDA-graph
  capture is offered only through cuda-python.
* the system ``libcudart.so`` through ``ctypes`` (:class:`LibCudart`): it always matches the
  JetPack's driver, so it is the last resort when cuda-python's runtime is newer than the driver.

:func:`load_cuda` does not trust an import: cuda-python 12.9 imports fine on JetPack 6 and then
fails every call with ``cudaErrorInsufficientDriver`` (review B6), so it makes one probing call
(``cudaGetDeviceCount``) and falls back on failure, naming the error.

Pointers and stream handles are plain ``int`` (what ``IExecutionContext.set_tensor_address`` and
``execute_async_v3`` take).  Events are opaque objects of the chosen library.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

CUDA_HINT = (
    "install cuda-python pinned to the CUDA of your driver (JetPack 6.0: pip install 'cuda-python==12.2.*'; "
    "JetPack 6.1/6.2: 'cuda-python==12.6.*'; see /usr/local/cuda/version.json) or pycuda"
)


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    compute_capability: str  # "8.7" on AGX Orin
    cuda_runtime: str  # "12.6"
    binding: str  # "cuda-python", "pycuda" or "libcudart"
    #: SM count and memory tell Orin modules apart (AGX 64/32 GB, NX, Nano share "Orin", CC 8.7)
    multiprocessors: int = 0
    total_memory: int = 0


class CudaApi:
    """The operations the runner needs.  Subclasses wrap one Python CUDA binding."""

    binding = "none"
    supports_graphs = False

    def device_info(self) -> DeviceInfo:
        raise NotImplementedError

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, ptr: int) -> None:
        raise NotImplementedError

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: int) -> None:
        raise NotImplementedError

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: int) -> None:
        raise NotImplementedError

    def stream_create(self) -> int:
        raise NotImplementedError

    def stream_destroy(self, stream: int) -> None:
        raise NotImplementedError

    def stream_synchronize(self, stream: int) -> None:
        raise NotImplementedError

    def event_create(self) -> Any:
        """An event *without* the blocking-sync flag, so waiting on it spins (lowest jitter)."""
        raise NotImplementedError

    def event_record(self, event: Any, stream: int) -> None:
        raise NotImplementedError

    def event_synchronize(self, event: Any) -> None:
        raise NotImplementedError

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        raise NotImplementedError

    def event_destroy(self, event: Any) -> None:
        raise NotImplementedError

    # CUDA graphs (cudaStreamBeginCapture → cudaStreamEndCapture → cudaGraphInstantiate → cudaGraphLaunch)
    def graph_begin_capture(self, stream: int) -> None:
        raise OrinprofError(f"CUDA-graph capture is not available through {self.binding}", CUDA_HINT)

    def graph_end_capture(self, stream: int) -> Any:
        raise OrinprofError(f"CUDA-graph capture is not available through {self.binding}", CUDA_HINT)

    def graph_launch(self, graph_exec: Any, stream: int) -> None:
        raise OrinprofError(f"CUDA-graph capture is not available through {self.binding}", CUDA_HINT)

    def graph_destroy(self, graph_exec: Any) -> None:
        pass


class CudaPython(CudaApi):
    """cuda-python runtime API."""

    binding = "cuda-python"
    supports_graphs = True

    def __init__(self, cudart: Any) -> None:
        self.rt = cudart
        self._graphs: dict[int, Any] = {}

    def _check(self, result: Any, what: str) -> Any:
        """cuda-python returns ``(cudaError_t, *values)``; fail on anything but cudaSuccess."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            name = getattr(err, "name", str(err))
            raise OrinprofError(f"CUDA call {what} failed: {name}", _hint_for(name))
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def device_info(self) -> DeviceInfo:
        device = self._check(self.rt.cudaGetDevice(), "cudaGetDevice")
        props = self._check(self.rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
        runtime = int(self._check(self.rt.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion"))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return DeviceInfo(
            name=name.rstrip("\x00").strip(),
            compute_capability=f"{props.major}.{props.minor}",
            cuda_runtime=f"{runtime // 1000}.{(runtime % 1000) // 10}",
            binding=self.binding,
            multiprocessors=int(getattr(props, "multiProcessorCount", 0) or 0),
            total_memory=int(getattr(props, "totalGlobalMem", 0) or 0),
        )

    def probe(self) -> None:
        """One real call, so a runtime newer than the driver fails here and not in the runner."""
        count = self._check(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not count:
            raise OrinprofError("cuda-python sees no CUDA device", "check that the GPU is visible to this process")

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self._check(self.rt.cudaFree(ptr), "cudaFree")

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: int) -> None:
        host = np.ascontiguousarray(host)
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, stream), "cudaMemcpyAsync")
        # pageable host memory: synchronise before ``host`` may be freed by the caller
        self.stream_synchronize(stream)

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind, stream), "cudaMemcpyAsync")
        self.stream_synchronize(stream)

    def stream_create(self) -> int:
        return int(self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate"))

    def stream_destroy(self, stream: int) -> None:
        self._check(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def stream_synchronize(self, stream: int) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def event_create(self) -> Any:
        # cudaEventDefault (no cudaEventBlockingSync): cudaEventSynchronize spin-waits
        return self._check(self.rt.cudaEventCreateWithFlags(self.rt.cudaEventDefault), "cudaEventCreateWithFlags")

    def event_record(self, event: Any, stream: int) -> None:
        self._check(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_synchronize(self, event: Any) -> None:
        self._check(self.rt.cudaEventSynchronize(event), "cudaEventSynchronize")

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._check(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def event_destroy(self, event: Any) -> None:
        self._check(self.rt.cudaEventDestroy(event), "cudaEventDestroy")

    def graph_begin_capture(self, stream: int) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self._check(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def graph_end_capture(self, stream: int) -> Any:
        graph = self._check(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        try:  # CUDA 12 signature: cudaGraphInstantiate(graph, flags)
            result = self.rt.cudaGraphInstantiate(graph, 0)
        except TypeError:  # cuda-python 11.x: cudaGraphInstantiate(graph, logBuffer, bufferSize) (review m5)
            result = self.rt.cudaGraphInstantiate(graph, b"", 0)
        graph_exec = self._check(result, "cudaGraphInstantiate")
        if isinstance(graph_exec, tuple):  # 11.x also returns the error node
            graph_exec = graph_exec[0]
        self._graphs[id(graph_exec)] = graph
        return graph_exec

    def graph_launch(self, graph_exec: Any, stream: int) -> None:
        self._check(self.rt.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")

    def graph_destroy(self, graph_exec: Any) -> None:
        self._check(self.rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")
        graph = self._graphs.pop(id(graph_exec), None)
        if graph is not None:
            self._check(self.rt.cudaGraphDestroy(graph), "cudaGraphDestroy")


class PyCuda(CudaApi):
    """pycuda driver API (raises ``pycuda.driver.Error``; translated here)."""

    binding = "pycuda"

    def __init__(self, driver: Any) -> None:
        self.drv = driver
        self._allocations: dict[int, Any] = {}  # keep DeviceAllocation objects alive
        self._streams: dict[int, Any] = {}

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self.drv.Error as err:
            raise OrinprofError(f"CUDA call {what} failed: {err}", _hint_for(str(err))) from err

    def device_info(self) -> DeviceInfo:
        device = self._call("Context.get_device", self.drv.Context.get_device)
        major, minor = device.compute_capability()
        version = self.drv.get_version()  # the CUDA version pycuda was built against, e.g. (12, 2, 0)
        attrs = getattr(self.drv, "device_attribute", None)
        sms = device.get_attribute(attrs.MULTIPROCESSOR_COUNT) if attrs is not None else 0
        return DeviceInfo(
            device.name(),
            f"{major}.{minor}",
            f"{version[0]}.{version[1]}",
            self.binding,
            multiprocessors=int(sms),
            total_memory=int(device.total_memory()),
        )

    def malloc(self, nbytes: int) -> int:
        allocation = self._call("mem_alloc", self.drv.mem_alloc, max(int(nbytes), 1))
        ptr = int(allocation)
        self._allocations[ptr] = allocation
        return ptr

    def free(self, ptr: int) -> None:
        allocation = self._allocations.pop(ptr, None)
        if allocation is not None:
            self._call("DeviceAllocation.free", allocation.free)

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: int) -> None:
        self._call("memcpy_htod", self.drv.memcpy_htod, ptr, np.ascontiguousarray(host))

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: int) -> None:
        self._call("memcpy_dtoh", self.drv.memcpy_dtoh, host, ptr)

    def stream_create(self) -> int:
        stream = self._call("Stream", self.drv.Stream)
        self._streams[int(stream.handle)] = stream
        return int(stream.handle)

    def stream_destroy(self, stream: int) -> None:
        self._streams.pop(stream, None)

    def stream_synchronize(self, stream: int) -> None:
        self._call("Stream.synchronize", self._streams[stream].synchronize)

    def event_create(self) -> Any:
        # flags 0 = CU_EVENT_DEFAULT: no blocking sync, so synchronize() spins
        return self._call("Event", self.drv.Event, 0)

    def event_record(self, event: Any, stream: int) -> None:
        self._call("Event.record", event.record, self._streams[stream])

    def event_synchronize(self, event: Any) -> None:
        self._call("Event.synchronize", event.synchronize)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._call("Event.time_till", start.time_till, end))

    def event_destroy(self, event: Any) -> None:
        pass  # pycuda frees events when they are garbage-collected


class LibCudart(CudaApi):
    """The system CUDA runtime (``libcudart.so``) through :mod:`ctypes`: no Python package needed,
    and on Jetson it is the JetPack's own runtime, so it matches the driver.  No graph capture."""

    binding = "libcudart"
    #: cudaDeviceAttr values (cuda_runtime_api.h): compute capability major/minor, SM count
    _CC_MAJOR, _CC_MINOR, _SM_COUNT = 75, 76, 16
    _H2D, _D2H = 1, 2  # cudaMemcpyKind

    def __init__(self, lib: Any) -> None:
        self.lib = lib

    def _call(self, what: str, *args: Any) -> None:
        err = int(getattr(self.lib, what)(*args))
        if err != 0:
            name = f"cudaError {err}"
            get_name = getattr(self.lib, "cudaGetErrorName", None)
            if get_name is not None:
                get_name.restype = ctypes.c_char_p
                raw = get_name(err)
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
            raise OrinprofError(f"CUDA call {what} failed: {name}", _hint_for(name))

    def _int(self, what: str, *args: Any) -> int:
        value = ctypes.c_int()
        self._call(what, ctypes.byref(value), *args)
        return int(value.value)

    def probe(self) -> None:
        if self._int("cudaGetDeviceCount") < 1:
            raise OrinprofError("libcudart sees no CUDA device", "check that the GPU is visible to this process")

    def device_info(self) -> DeviceInfo:
        device = self._int("cudaGetDevice")
        props = ctypes.create_string_buffer(4096)  # cudaDeviceProp starts with char name[256]
        self._call("cudaGetDeviceProperties", props, device)
        name = props.raw[:256].split(b"\x00", 1)[0].decode(errors="replace")
        major = self._int("cudaDeviceGetAttribute", self._CC_MAJOR, device)
        minor = self._int("cudaDeviceGetAttribute", self._CC_MINOR, device)
        sms = self._int("cudaDeviceGetAttribute", self._SM_COUNT, device)
        runtime = self._int("cudaRuntimeGetVersion")
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self._call("cudaMemGetInfo", ctypes.byref(free), ctypes.byref(total))
        return DeviceInfo(
            name.strip(),
            f"{major}.{minor}",
            f"{runtime // 1000}.{(runtime % 1000) // 10}",
            self.binding,
            multiprocessors=sms,
            total_memory=int(total.value),
        )

    def malloc(self, nbytes: int) -> int:
        ptr = ctypes.c_void_p()
        self._call("cudaMalloc", ctypes.byref(ptr), ctypes.c_size_t(max(int(nbytes), 1)))
        return int(ptr.value or 0)

    def free(self, ptr: int) -> None:
        self._call("cudaFree", ctypes.c_void_p(ptr))

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: int) -> None:
        host = np.ascontiguousarray(host)
        self._call(
            "cudaMemcpyAsync",
            ctypes.c_void_p(ptr),
            ctypes.c_void_p(host.ctypes.data),
            ctypes.c_size_t(host.nbytes),
            self._H2D,
            ctypes.c_void_p(stream),
        )
        self.stream_synchronize(stream)

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: int) -> None:
        self._call(
            "cudaMemcpyAsync",
            ctypes.c_void_p(host.ctypes.data),
            ctypes.c_void_p(ptr),
            ctypes.c_size_t(host.nbytes),
            self._D2H,
            ctypes.c_void_p(stream),
        )
        self.stream_synchronize(stream)

    def stream_create(self) -> int:
        stream = ctypes.c_void_p()
        self._call("cudaStreamCreate", ctypes.byref(stream))
        return int(stream.value or 0)

    def stream_destroy(self, stream: int) -> None:
        self._call("cudaStreamDestroy", ctypes.c_void_p(stream))

    def stream_synchronize(self, stream: int) -> None:
        self._call("cudaStreamSynchronize", ctypes.c_void_p(stream))

    def event_create(self) -> Any:
        event = ctypes.c_void_p()
        self._call("cudaEventCreateWithFlags", ctypes.byref(event), 0)  # cudaEventDefault: spin-wait
        return event

    def event_record(self, event: Any, stream: int) -> None:
        self._call("cudaEventRecord", event, ctypes.c_void_p(stream))

    def event_synchronize(self, event: Any) -> None:
        self._call("cudaEventSynchronize", event)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        ms = ctypes.c_float()
        self._call("cudaEventElapsedTime", ctypes.byref(ms), start, end)
        return float(ms.value)

    def event_destroy(self, event: Any) -> None:
        self._call("cudaEventDestroy", event)


def _hint_for(error_name: str) -> str:
    if "MemoryAllocation" in error_name or "OUT_OF_MEMORY" in error_name.upper():
        return "the GPU is out of memory: close other GPU programs, or use a smaller --seq or batch"
    if "NoDevice" in error_name or "NO_DEVICE" in error_name.upper():
        return "no CUDA device is visible to this process"
    return "see the CUDA documentation for this error code"


#: where the system CUDA runtime lives (JetPack: /usr/local/cuda/lib64 is on the loader path)
LIBCUDART_NAMES = ("libcudart.so", "libcudart.so.12", "/usr/local/cuda/lib64/libcudart.so")


def _cuda_python() -> CudaApi | None:
    for module_name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return CudaPython(importlib.import_module(module_name))
        except ImportError:
            continue
    return None


def _pycuda() -> CudaApi | None:
    try:
        driver = importlib.import_module("pycuda.driver")
        importlib.import_module("pycuda.autoinit")  # creates a context on device 0
    except ImportError:
        return None
    return PyCuda(driver)


def _libcudart() -> CudaApi | None:
    for name in LIBCUDART_NAMES:
        try:
            return LibCudart(ctypes.CDLL(name))
        except OSError:
            continue
    return None


def load_cuda() -> CudaApi:
    """The first binding whose probing call works: cuda-python, then pycuda, then the system
    libcudart.  Each failure is logged with its CUDA error name (review B6)."""
    failures: list[str] = []
    for loader in (_cuda_python, _pycuda, _libcudart):
        try:
            api = loader()
            if api is None:
                continue
            probe = getattr(api, "probe", None)
            if probe is not None:
                probe()
        except OrinprofError as err:
            failures.append(f"{loader.__name__.strip('_')}: {err.message}")
            log.warning("CUDA binding %s unusable (%s); trying the next one", loader.__name__.strip("_"), err.message)
            continue
        except Exception as err:  # pycuda.autoinit raises its own errors when the driver is too old
            failures.append(f"{loader.__name__.strip('_')}: {err}")
            log.warning("CUDA binding %s unusable (%s); trying the next one", loader.__name__.strip("_"), err)
            continue
        if failures:
            log.info("CUDA binding: %s (after: %s)", api.binding, "; ".join(failures))
        else:
            log.debug("CUDA binding: %s", api.binding)
        return api
    detail = "; ".join(failures) if failures else "neither cuda-python, pycuda nor libcudart.so is available"
    raise OrinprofError(f"no working CUDA binding ({detail})", CUDA_HINT)
