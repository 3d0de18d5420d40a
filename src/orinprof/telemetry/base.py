"""What every telemetry reader shares: ``Probe``, the sample row, the background sampler thread,
and the power-accounting rule.

A reader (jetson-stats' shape) discovers its device once in the constructor, answers
:meth:`Reader.probe` cheaply, and collects *instantaneous* samples in a background thread between
:meth:`Reader.start` and :meth:`Reader.stop`.  Means, percentiles and energy are computed later by
:mod:`orinprof.telemetry.summary` from those raw samples; jtop's own ``avg`` is a halving filter
(``(power + old_avg) // 2`` in ``jtop/core/power.py``), not a mean over a window.

No device library is imported here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

#: Columns of the long ``telemetry`` table (``status`` says why a value is missing).
SAMPLE_COLUMNS = ("t_s", "source", "channel", "value", "unit", "status")

#: The clock of ``t_s`` and of the ``t_start``/``t_end`` passed to ``summarize``.
clock = time.perf_counter

#: Rails that are the module input on Orin NX / Orin Nano (and Xavier / Nano): they are the total.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
#: AGX Orin has no input rail.  VIN_SYS_5V0 already includes VDDQ_VDD2_1V8AO (NVIDIA's rail
#: description, see docs/telemetry.md), so the total is these three and never the fourth.
AGX_ORIN_TOTAL_RAILS = ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0")

#: NVML clock-event reason bits (nvml.h ``nvmlClocksEventReason*``; same values as the older
#: ``nvmlClocksThrottleReason*``).  GpuIdle, application/user clocks and display clocks are not
#: slowdowns, so they never raise a trust flag.
THROTTLE_REASONS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
    0x200: "board_limit",
    0x400: "reliability",
}


def decode_throttle(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


@dataclass(frozen=True)
class Probe:
    """Whether a reader can run here; ``reason`` says why not (and the next step)."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Reading:
    """One channel's instantaneous value.  ``value`` is NaN when ``status`` is not ``ok``."""

    channel: str
    value: float
    unit: str
    status: str = "ok"


@dataclass
class ReaderState:
    """Static context a reader learned (power mode, clocks, thresholds); filled best-effort."""

    nvpmodel_id: int | None = None
    nvpmodel_name: str | None = None
    jetson_clocks: str | None = None  # "on", "off" or None when unknown
    #: temperature (°C) at which the device starts to throttle, when the reader knows it
    throttle_temp_c: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def total_power_mw(rails: Mapping[str, float]) -> tuple[float, str]:
    """Board total from rail powers (mW) and the rule used.

    NX/Nano: the ``VDD_IN`` input rail.  AGX Orin: VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0
    (VDDQ_VDD2_1V8AO is inside VIN_SYS_5V0).  Anything else, or a missing rail: NaN, never a
    partial sum that would look like a total.
    """
    for name in INPUT_RAILS:
        if name in rails and math.isfinite(rails[name]):
            return float(rails[name]), name
    if all(name in rails and math.isfinite(rails[name]) for name in AGX_ORIN_TOTAL_RAILS):
        return float(sum(rails[name] for name in AGX_ORIN_TOTAL_RAILS)), "+".join(AGX_ORIN_TOTAL_RAILS)
    return math.nan, "no_total_rule"


def power_readings(rails: Mapping[str, float]) -> list[Reading]:
    """One ``power_<RAIL>`` reading per rail plus ``power_total`` by :func:`total_power_mw`."""
    out = [Reading(f"power_{name}", float(mw), "mW") for name, mw in rails.items()]
    total, rule = total_power_mw(rails)
    if rails:
        out.append(Reading("power_total", total, "mW", "ok" if math.isfinite(total) else rule))
    return out


def temperature_reading(name: str, celsius: float | None) -> Reading:
    """``temp_<name>``; Jetson thermal zones report -256 °C for an offline sensor: NaN + status."""
    channel = f"temp_{name.lower()}"
    if celsius is None or not math.isfinite(celsius):
        return Reading(channel, math.nan, "C", "sensor_absent")
    if celsius <= -255:
        return Reading(channel, math.nan, "C", "sensor_offline")
    return Reading(channel, float(celsius), "C")


def thermal_throttle_c(sysfs_root: Path | str = "/") -> float | None:
    """Lowest passive/hot/critical trip point over all thermal zones (°C), or None.

    ``active`` trips only start a fan, so they are ignored.
    """
    base = Path(sysfs_root) / "sys" / "class" / "thermal"
    trips: list[float] = []
    try:
        zones = sorted(base.glob("thermal_zone*"))
    except OSError:
        return None
    for zone in zones:
        for type_file in zone.glob("trip_point_*_type"):
            try:
                kind = type_file.read_text().strip()
                if kind not in ("passive", "hot", "critical"):
                    continue
                milli = int(type_file.with_name(type_file.name.replace("_type", "_temp")).read_text().strip())
            except (OSError, ValueError):
                continue
            if milli > 0:
                trips.append(milli / 1000.0)
    return min(trips) if trips else None


class Reader:
    """Base reader: a background thread calls :meth:`read` every ``interval_s``.

    Subclasses set ``name``, implement :meth:`probe` and :meth:`read`, and may override
    :meth:`_run` for a streaming source (tegrastats).  A thread that dies logs one line; the
    samples collected so far are kept and ``died`` is set (the summary flags it).
    """

    name = "base"

    def __init__(self) -> None:
        self._rows: list[tuple[float, str, str, float, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval_s = 0.1
        self.died = False
        self.died_reason = ""
        self.skipped = 0  # raw records that did not parse (tegrastats lines)
        self.state = ReaderState()

    # ------------------------------------------------------------------ to implement
    def probe(self) -> Probe:
        raise NotImplementedError

    def read(self) -> list[Reading]:
        """One instantaneous snapshot."""
        raise NotImplementedError

    def open_impl(self) -> None:
        """Acquire the device (called in the caller's thread, before sampling starts)."""

    def close_impl(self) -> None:
        """Release what :meth:`open_impl` acquired."""

    # ------------------------------------------------------------------ sampling
    def record(self, t_s: float, readings: Iterable[Reading]) -> None:
        rows = [(t_s, self.name, r.channel, r.value, r.unit, r.status) for r in readings]
        with self._lock:
            self._rows.extend(rows)

    def _run(self) -> None:
        next_t = clock()
        while not self._stop.is_set():
            t = clock()
            self.record(t, self.read())
            next_t += self.interval_s
            self._stop.wait(max(0.0, next_t - clock()))

    def _guarded_run(self) -> None:
        try:
            self._run()
        except Exception as err:  # a sampler must never take the timing run down with it
            self.died = True
            self.died_reason = f"{type(err).__name__}: {err}"
            log.warning("%s sampler stopped: %s; keeping %d samples", self.name, self.died_reason, len(self))

    def start(self, interval_s: float) -> None:
        self.interval_s = float(interval_s)
        self._stop.clear()
        self.open_impl()
        self._thread = threading.Thread(target=self._guarded_run, name=f"orinprof-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.stop_impl()
        finally:
            if self._thread is not None:
                self._thread.join(timeout=max(5.0, 3 * self.interval_s))
                if self._thread.is_alive():
                    log.warning("%s sampler did not stop in time; its later samples are ignored", self.name)
                self._thread = None
            self.close_impl()

    def stop_impl(self) -> None:
        """Unblock :meth:`_run` (e.g. terminate a subprocess).  Default: nothing to do."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def samples(self) -> pd.DataFrame:
        with self._lock:
            rows = list(self._rows)
        return samples_frame(rows)


def samples_frame(rows: Iterable[tuple[Any, ...]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(SAMPLE_COLUMNS))
    return df.astype({"t_s": float, "value": float, "source": str, "channel": str, "unit": str, "status": str})
