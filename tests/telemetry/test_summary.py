"""Energy/average on synthetic series with known integrals, power accounting, trust flags."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from orinprof.telemetry.base import ReaderState, decode_throttle, samples_frame, total_power_mw
from orinprof.telemetry.summary import integrate, summarize_window


def _frame(channel: str, t: np.ndarray, values: np.ndarray, unit: str = "mW") -> pd.DataFrame:
    return samples_frame((float(a), "test", channel, float(b), unit, "ok") for a, b in zip(t, values, strict=True))


def test_linear_power_integral_is_exact() -> None:
    t = np.arange(0.0, 10.0001, 0.1)
    p = 1000.0 + 200.0 * t  # mW
    t0, t1 = 2.05, 7.33  # edges between samples: interpolated
    energy, mean, n = integrate(t, p, t0, t1)
    exact = 1000.0 * (t1 - t0) + 100.0 * (t1**2 - t0**2)  # ∫ (1000 + 200 t) dt, mJ
    assert energy == pytest.approx(exact, rel=1e-12)
    assert mean == pytest.approx(exact / (t1 - t0), rel=1e-12)
    assert n == int(np.sum((t >= t0) & (t <= t1)))


def test_sinusoid_integral_matches_analytic() -> None:
    t = np.arange(0.0, 3.0, 0.001)
    period = 0.7
    p = 5000.0 + 2000.0 * np.sin(2 * np.pi * t / period)
    t0, t1 = 0.3, 2.7
    exact = 5000.0 * (t1 - t0) - 2000.0 * period / (2 * np.pi) * (
        np.cos(2 * np.pi * t1 / period) - np.cos(2 * np.pi * t0 / period)
    )
    energy, _, _ = integrate(t, p, t0, t1)
    assert energy == pytest.approx(exact, rel=1e-5)


def test_summary_energy_per_inference_and_rails() -> None:
    t = np.arange(0.0, 4.0001, 0.05)
    rails = {"VDD_GPU_SOC": 8000.0 + 1000.0 * t, "VDD_CPU_CV": np.full_like(t, 2000.0)}
    frames = [_frame(f"power_{k}", t, v) for k, v in rails.items()]
    total = rails["VDD_GPU_SOC"] + rails["VDD_CPU_CV"]
    frames.append(_frame("power_total", t, total))
    frames.append(_frame("gpu_freq", t, np.full_like(t, 1300.0), "MHz"))
    df = pd.concat(frames, ignore_index=True)
    out = summarize_window(df, 1.0, 3.0, iterations=100, source="test")
    exact_mj = 10000.0 * 2.0 + 500.0 * (9.0 - 1.0)
    assert out["energy_per_inference_mj"] == pytest.approx(exact_mj / 100)
    assert out["power_avg_w"] == pytest.approx(exact_mj / 2.0 / 1000)
    assert out["power_vdd_cpu_cv_avg_w"] == pytest.approx(2.0)
    assert out["gpu_freq_mhz_min"] == out["gpu_freq_mhz_max"] == 1300.0
    assert out["trust_flags"] == ""
    assert out["telemetry_samples"] == int(np.sum((t >= 1.0) & (t <= 3.0)))


def test_total_power_rules() -> None:
    agx = {"VDD_GPU_SOC": 4788.0, "VDD_CPU_CV": 798.0, "VIN_SYS_5V0": 3842.0, "VDDQ_VDD2_1V8AO": 707.0}
    assert total_power_mw(agx) == (4788.0 + 798.0 + 3842.0, "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0")
    assert total_power_mw({"VDD_IN": 5299.0, "VDD_SOC": 1424.0})[0] == 5299.0
    value, rule = total_power_mw({"VDD_GPU_SOC": 1.0})  # a partial AGX set is not a total
    assert math.isnan(value) and rule == "no_total_rule"


def test_flags() -> None:
    t = np.arange(0.0, 1.0001, 0.1)
    freq = np.where(t < 0.5, 1300.0, 900.0)
    df = pd.concat(
        [
            _frame("gpu_freq", t, freq, "MHz"),
            _frame("temp_tj", t, np.full_like(t, 93.0), "C"),
            _frame("throttle_reasons", t, np.where(t > 0.5, 0x4 | 0x40, 0x1), "bitmask"),
        ]
    )
    state = ReaderState(nvpmodel_name="MODE_30W", jetson_clocks="off")
    flags = summarize_window(df, 0.0, 1.0, 10, "test", state, sampler_died=True)["trust_flags"].split(";")
    assert flags == [
        "clocks_not_locked",
        "power_mode_not_maxn",
        "gpu_freq_varied",
        "temp_near_throttle",
        "nvml_throttle:sw_power_cap+hw_thermal",
        "telemetry_sampler_died",
    ]
    calm = summarize_window(
        _frame("temp_tj", t, np.full_like(t, 80.0), "C"), 0, 1, 1, "x", ReaderState(throttle_temp_c=84.0)
    )
    assert calm["trust_flags"] == "temp_near_throttle"  # within 5 °C of the known trip
    assert (
        summarize_window(_frame("temp_tj", t, t, "C"), 0, 1, 1, "x", ReaderState(nvpmodel_name="MAXN"))["trust_flags"]
        == ""
    )


def test_too_few_samples_and_none() -> None:
    df = _frame("power_total", np.array([0.5]), np.array([1000.0]))
    out = summarize_window(df, 0.0, 1.0, 1, "test")
    assert out["trust_flags"] == "too_few_samples"
    assert out["energy_per_inference_mj"] == pytest.approx(1000.0)  # one sample: its power × window
    none = summarize_window(samples_frame([]), 0, 1, 1, "none")
    assert none["trust_flags"] == "" and math.isnan(none["power_avg_w"])


def test_decode_throttle_ignores_idle_and_app_clocks() -> None:
    assert decode_throttle(0x1 | 0x2 | 0x100) == []
    assert decode_throttle(0x8 | 0x20) == ["hw_slowdown", "sw_thermal"]
