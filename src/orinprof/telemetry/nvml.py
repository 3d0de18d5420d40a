"""NVML reader (``pynvml`` from nvidia-ml-py) for desktop and data-centre GPUs.

Per sample: board power (``nvmlDeviceGetPowerUsage``, mW), SM and memory clocks (MHz), GPU
temperature (°C), utilisation (%), clock-event (throttle) reasons as a bitmask, and the
cumulative energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ) where supported.  Each
field is read on its own: a field the GPU does not support becomes NaN with a status, it does
not stop the others.  On Jetson, NVML answers NotSupported for most fields (jetson-stats'
``gpu.py``); prefer jtop or tegrastats there.

``pynvml`` is imported inside functions only; tests pass a fake module.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

from orinprof.errors import OrinprofError
from orinprof.telemetry.base import Probe, Reader, Reading

log = logging.getLogger(__name__)


def _import_pynvml() -> ModuleType:
    import pynvml  # nvidia-ml-py; a device library, imported only here

    return pynvml


class NvmlReader(Reader):
    name = "nvml"

    def __init__(self, index: int = 0, pynvml_module: ModuleType | Any | None = None) -> None:
        super().__init__()
        self.index = index
        self._nvml = pynvml_module
        self._handle: Any = None
        self._probe = self._discover()

    def _discover(self) -> Probe:
        if self._nvml is None:
            try:
                self._nvml = _import_pynvml()
            except ImportError:
                return Probe(False, "nvidia-ml-py is not installed; pip install nvidia-ml-py")
        nv = self._nvml
        try:
            nv.nvmlInit()
            count = nv.nvmlDeviceGetCount()
            if self.index >= count:
                return Probe(False, f"NVML sees {count} GPU(s); there is no GPU {self.index}")
            self._handle = nv.nvmlDeviceGetHandleByIndex(self.index)
        except nv.NVMLError as err:
            return Probe(False, f"NVML not available ({err}); needs an NVIDIA driver (not on Jetson)")
        name = self._get(lambda: nv.nvmlDeviceGetName(self._handle))
        if isinstance(name, bytes):
            name = name.decode()
        cc = self._get(lambda: nv.nvmlDeviceGetCudaComputeCapability(self._handle))
        self.state.details.update(
            gpu_name=name,
            compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
            driver_version=_text(self._get(nv.nvmlSystemGetDriverVersion)),
            power_limit_w=_scaled(self._get(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(self._handle)), 1e-3),
        )
        slowdown = self._get(
            lambda: nv.nvmlDeviceGetTemperatureThreshold(self._handle, nv.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN)
        )
        self.state.throttle_temp_c = float(slowdown) if slowdown else None
        return Probe(True, f"{name} (GPU {self.index})")

    def _get(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as err:  # NVMLError_NotSupported and friends: this field is absent
            log.debug("nvml: %s", err)
            return None

    def probe(self) -> Probe:
        return self._probe

    def open_impl(self) -> None:
        if not self._probe.ok:
            raise OrinprofError(f"NVML unavailable: {self._probe.reason}")

    def read(self) -> list[Reading]:
        nv, h = self._nvml, self._handle
        assert nv is not None
        reasons = self._get(lambda: nv.nvmlDeviceGetCurrentClocksEventReasons(h))
        if reasons is None:  # drivers before the rename
            reasons = self._get(lambda: nv.nvmlDeviceGetCurrentClocksThrottleReasons(h))
        return [
            _reading("power_total", self._get(lambda: nv.nvmlDeviceGetPowerUsage(h)), "mW"),
            _reading("gpu_freq", self._get(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)), "MHz"),
            _reading("mem_freq", self._get(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)), "MHz"),
            _reading("temp_gpu", self._get(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)), "C"),
            _reading("gpu_load", _attr(self._get(lambda: nv.nvmlDeviceGetUtilizationRates(h)), "gpu"), "%"),
            _reading("throttle_reasons", reasons, "bitmask"),
            _reading("energy_counter", self._get(lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h)), "mJ"),
        ]

    def close_impl(self) -> None:
        pass  # nvmlShutdown is reference-counted; leave NVML initialised for fingerprint()


def _reading(channel: str, value: Any, unit: str) -> Reading:
    if value is None:
        return Reading(channel, math.nan, unit, "not_supported")
    return Reading(channel, float(value), unit)


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None) if obj is not None else None


def _scaled(value: Any, factor: float) -> float | None:
    return float(value) * factor if value is not None else None


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
