"""Host reader: CPU frequency, CPU load and temperatures via psutil, where the platform has them.

The fallback when no GPU/Jetson source exists.  It reports no power (psutil has none), so
energy columns stay NaN with ``telemetry_source = host``.
"""

from __future__ import annotations

import logging
import math
from types import ModuleType
from typing import Any

from orinprof.errors import OrinprofError
from orinprof.telemetry.base import Probe, Reader, Reading, temperature_reading

log = logging.getLogger(__name__)


def _import_psutil() -> ModuleType:
    import psutil

    return psutil


class HostReader(Reader):
    name = "host"

    def __init__(self, psutil_module: ModuleType | Any | None = None) -> None:
        super().__init__()
        self._ps = psutil_module
        self._probe = self._discover()

    def _discover(self) -> Probe:
        if self._ps is None:
            try:
                self._ps = _import_psutil()
            except ImportError:
                return Probe(False, "psutil is not installed; pip install psutil")
        self._ps.cpu_percent(interval=None)  # first call primes the counter (psutil docs)
        has_temps = hasattr(self._ps, "sensors_temperatures")
        return Probe(True, "psutil" + ("" if has_temps else " (no temperature sensors on this platform)"))

    def probe(self) -> Probe:
        return self._probe

    def open_impl(self) -> None:
        if not self._probe.ok:
            raise OrinprofError(f"host telemetry unavailable: {self._probe.reason}")

    def read(self) -> list[Reading]:
        ps = self._ps
        assert ps is not None
        out = [Reading("cpu_load", float(ps.cpu_percent(interval=None)), "%")]
        freq = _quiet(ps.cpu_freq)
        cur = getattr(freq, "current", None)
        out.append(
            Reading("cpu_freq", float(cur), "MHz") if cur else Reading("cpu_freq", math.nan, "MHz", "sensor_absent")
        )
        sensors = _quiet(getattr(ps, "sensors_temperatures", dict)) or {}
        for chip, entries in sensors.items():
            for idx, entry in enumerate(entries):
                label = entry.label or str(idx)
                out.append(temperature_reading(f"{chip}_{label}".replace(" ", "_"), entry.current))
        return out


def _quiet(call: Any) -> Any:
    try:
        return call()
    except (OSError, RuntimeError, NotImplementedError, AttributeError):
        return None
