"""NVML reader: a fake pynvml for the logic; the real one only where probe() finds a GPU."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace
from typing import Any

import pytest

from orinprof.telemetry import ReaderOptions, open_session
from orinprof.telemetry.nvml import NvmlReader


class NVMLError(Exception):
    pass


def fake_pynvml(throttle: int = 0x4, init_fails: bool = False, energy: bool = True) -> SimpleNamespace:
    state = {"energy": 0.0}

    def init() -> None:
        if init_fails:
            raise NVMLError("Driver Not Loaded")

    def not_supported(*_: Any) -> Any:
        raise NVMLError("Not Supported")

    def total_energy(_: Any) -> float:
        state["energy"] += 10.0
        return state["energy"]

    return SimpleNamespace(
        NVMLError=NVMLError,
        NVML_CLOCK_SM=1,
        NVML_CLOCK_MEM=2,
        NVML_TEMPERATURE_GPU=0,
        NVML_TEMPERATURE_THRESHOLD_SLOWDOWN=1,
        nvmlInit=init,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"h{i}",
        nvmlDeviceGetName=lambda h: b"Fake H100",
        nvmlDeviceGetCudaComputeCapability=lambda h: (9, 0),
        nvmlSystemGetDriverVersion=lambda: "555.0",
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 700000,
        nvmlDeviceGetTemperatureThreshold=lambda h, kind: 87,
        nvmlDeviceGetPowerUsage=lambda h: 250000,
        nvmlDeviceGetClockInfo=lambda h, kind: 1980 if kind == 1 else 2619,
        nvmlDeviceGetTemperature=lambda h, kind: 45,
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=97, memory=40),
        nvmlDeviceGetCurrentClocksEventReasons=not_supported,  # an older driver: fall back
        nvmlDeviceGetCurrentClocksThrottleReasons=lambda h: throttle,
        nvmlDeviceGetTotalEnergyConsumption=total_energy if energy else not_supported,
    )


def test_fake_nvml_reads_and_flags() -> None:
    opts = ReaderOptions(pynvml_module=fake_pynvml(throttle=0x4 | 0x1))
    with open_session("nvml", interval_s=0.02, options=opts) as session:
        t0 = time.perf_counter()
        time.sleep(0.2)
        t1 = time.perf_counter()
    assert session.source == "nvml"
    s = session.summarize(t0, t1, 4)
    assert s["power_avg_w"] == pytest.approx(250.0)
    assert s["energy_per_inference_mj"] == pytest.approx(250000 * (t1 - t0) / 4)
    assert s["gpu_freq_mhz_median"] == 1980 and s["emc_freq_mhz_median"] == 2619
    assert s["trust_flags"] == "nvml_throttle:sw_power_cap"
    assert not math.isnan(s["energy_per_inference_counter_mj"])
    assert session.reader is not None and session.reader.state.throttle_temp_c == 87


def test_unsupported_field_is_nan_with_status() -> None:
    reader = NvmlReader(pynvml_module=fake_pynvml(energy=False))
    by = {r.channel: r for r in reader.read()}
    assert math.isnan(by["energy_counter"].value) and by["energy_counter"].status == "not_supported"
    assert by["power_total"].value == 250000


def test_init_failure_is_a_probe_reason() -> None:
    probe = NvmlReader(pynvml_module=fake_pynvml(init_fails=True)).probe()
    assert not probe.ok and "Driver Not Loaded" in probe.reason


_REAL = NvmlReader()


@pytest.mark.gpu
@pytest.mark.skipif(not _REAL.probe().ok, reason=f"no NVML GPU here: {_REAL.probe().reason}")
def test_real_nvml_samples_power() -> None:  # pragma: no cover - runs on GPU machines only
    with open_session("nvml", interval_s=0.05) as session:
        t0 = time.perf_counter()
        time.sleep(0.5)
        t1 = time.perf_counter()
    s = session.summarize(t0, t1, 1)
    assert s["power_avg_w"] > 0 and s["gpu_freq_mhz_max"] > 0
