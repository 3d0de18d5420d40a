"""Device buffers, streams, events and CUDA graphs for the TensorRT runner, behind one small API.

Two implementations, chosen at run time by :func:`load_cuda`:

* cuda-python (``from cuda.bindings import runtime as cudart``; releases before 12.8 expose the
  same functions as ``from cuda import cudart``).  Every call returns ``(err, *values)``; every
  ``err`` is checked.
* pycuda (common on JetPack images).  It raises on error; its errors are translated.  CUDA-graph
  capture is offered only through cuda-python.

Pointers and stream handles are plain ``int`` (what ``IExecutionContext.set_tensor_address`` and
``execute_async_v3`` take).  Events are opaque objects of the chosen library.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

CUDA_HINT = (
    "install cuda-python (pip install 'cuda-python<13' matching your CUDA) or pycuda "
    "(JetPack: pip install pycuda inside the --system-site-packages venv)"
)


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    compute_capability: str  # "8.7" on AGX Orin
    cuda_runtime: str  # "12.6"
    binding: str  # "cuda-python" or "pycuda"


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
        )

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
        # CUDA 12 signature: cudaGraphInstantiate(graph, flags)
        graph_exec = self._check(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
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
        return DeviceInfo(device.name(), f"{major}.{minor}", f"{version[0]}.{version[1]}", self.binding)

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


def _hint_for(error_name: str) -> str:
    if "MemoryAllocation" in error_name or "OUT_OF_MEMORY" in error_name.upper():
        return "the GPU is out of memory: close other GPU programs, or use a smaller --seq or batch"
    if "NoDevice" in error_name or "NO_DEVICE" in error_name.upper():
        return "no CUDA device is visible to this process"
    return "see the CUDA documentation for this error code"


def load_cuda() -> CudaApi:
    """cuda-python when present, else pycuda; log which one and why."""
    for module_name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            cudart = importlib.import_module(module_name)
        except ImportError:
            continue
        log.debug("CUDA binding: cuda-python (%s)", module_name)
        return CudaPython(cudart)
    try:
        driver = importlib.import_module("pycuda.driver")
        importlib.import_module("pycuda.autoinit")  # creates a context on device 0
    except ImportError as err:
        raise OrinprofError("neither cuda-python nor pycuda is importable", CUDA_HINT) from err
    log.info("CUDA binding: pycuda (cuda-python not installed); CUDA-graph replay unavailable")
    return PyCuda(driver)
