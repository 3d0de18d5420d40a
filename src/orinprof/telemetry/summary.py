"""Summary columns for a timed window, computed from raw instantaneous samples.

Energy is the trapezoid integral of ``power_total`` over ``[t_start, t_end]``, with the power at
the window edges interpolated linearly from the neighbouring samples.  Where the samples do not
cover the whole window, the time-weighted mean power of the covered part stands in for the rest.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from orinprof.telemetry.base import ReaderState, decode_throttle

#: GPU frequency varying by more than this fraction of its median within a window is flagged.
GPU_FREQ_TOLERANCE = 0.05
#: Flag a temperature this close (°C) to the throttle trip point.
THROTTLE_MARGIN_C = 5.0
#: Junction temperature treated as "near throttle" when the trip point is unknown.
TJ_FALLBACK_C = 90.0

_GPU_FREQ = re.compile(r"^gpu_freq(_gpc\d+)?$")
_RAIL = re.compile(r"^power_(?!total$)(.+)$")


def integrate(t: np.ndarray, p: np.ndarray, t_start: float, t_end: float) -> tuple[float, float, int]:
    """(integral of p over the window, time-weighted mean of p, samples inside the window).

    With ``p`` in mW and ``t`` in s the integral is in mJ.  NaN where nothing can be said.
    """
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    duration = t_end - t_start
    if t.size == 0 or not duration > 0:
        return math.nan, math.nan, 0
    inside = (t >= t_start) & (t <= t_end)
    n_inside = int(inside.sum())
    pts_t, pts_p = list(t[inside]), list(p[inside])
    for edge in (t_start, t_end):
        if t[0] < edge < t[-1] and edge not in pts_t:
            pts_t.append(edge)
            pts_p.append(float(np.interp(edge, t, p)))
    if not pts_t:
        return math.nan, math.nan, 0
    order2 = np.argsort(pts_t)
    tt, pp = np.asarray(pts_t)[order2], np.asarray(pts_p)[order2]
    span = float(tt[-1] - tt[0])
    if span > 0:
        mean = float(np.sum((pp[1:] + pp[:-1]) * np.diff(tt)) / 2.0 / span)
    else:
        mean = float(np.mean(pp))
    return mean * duration, mean, n_inside


def summarize_window(
    samples: pd.DataFrame,
    t_start: float,
    t_end: float,
    iterations: int,
    source: str,
    state: ReaderState | None = None,
    sampler_died: bool = False,
) -> dict[str, Any]:
    """Summary columns for ``[t_start, t_end]`` (see docs/telemetry.md for each column)."""
    state = state or ReaderState()
    nan = math.nan
    out: dict[str, Any] = {
        "power_avg_w": nan,
        "energy_per_inference_mj": nan,
        "gpu_freq_mhz_min": nan,
        "gpu_freq_mhz_median": nan,
        "gpu_freq_mhz_max": nan,
        "emc_freq_mhz_min": nan,
        "emc_freq_mhz_median": nan,
        "emc_freq_mhz_max": nan,
        "temp_max_c": nan,
        "gpu_load_pct_median": nan,
        "telemetry_samples": 0,
        "telemetry_source": source,
        "trust_flags": "",
    }
    if source == "none" or samples.empty:
        if source != "none":
            out["trust_flags"] = _join(["too_few_samples", *(["telemetry_sampler_died"] if sampler_died else [])])
        return out

    win = samples[(samples["t_s"] >= t_start) & (samples["t_s"] <= t_end)]
    out["telemetry_samples"] = int(win["t_s"].nunique())
    finite = win[np.isfinite(win["value"])]
    by_channel = {name: group["value"].to_numpy(dtype=float) for name, group in finite.groupby("channel")}

    def series(channel: str) -> tuple[np.ndarray, np.ndarray]:
        rows = samples[samples["channel"] == channel]
        return rows["t_s"].to_numpy(dtype=float), rows["value"].to_numpy(dtype=float)

    energy, mean_total, _ = integrate(*series("power_total"), t_start, t_end)
    out["power_avg_w"] = mean_total / 1000.0
    if iterations > 0:
        out["energy_per_inference_mj"] = energy / iterations
    for channel in sorted(set(samples["channel"])):
        m = _RAIL.match(channel)
        if m:
            _, mean, _ = integrate(*series(channel), t_start, t_end)
            out[f"power_{m.group(1).lower()}_avg_w"] = mean / 1000.0
    if "energy_counter" in set(samples["channel"]):
        # NVML's cumulative counter: its mean slope over the window is the mean power
        t, e = series("energy_counter")
        ok = np.isfinite(e)
        slope = _mean_slope(t[ok], e[ok], t_start, t_end)
        out["energy_per_inference_counter_mj"] = slope * (t_end - t_start) / iterations if iterations > 0 else nan

    gpu = np.concatenate([v for k, v in by_channel.items() if _GPU_FREQ.match(k)] or [np.empty(0)])
    if gpu.size:
        out.update(gpu_freq_mhz_min=gpu.min(), gpu_freq_mhz_median=float(np.median(gpu)), gpu_freq_mhz_max=gpu.max())
    mem = by_channel.get("emc_freq", by_channel.get("mem_freq"))
    if mem is not None and mem.size:
        out.update(emc_freq_mhz_min=mem.min(), emc_freq_mhz_median=float(np.median(mem)), emc_freq_mhz_max=mem.max())
    temps = {k: v for k, v in by_channel.items() if k.startswith("temp_")}
    if temps:
        out["temp_max_c"] = float(max(v.max() for v in temps.values()))
    if "gpu_load" in by_channel:
        out["gpu_load_pct_median"] = float(np.median(by_channel["gpu_load"]))

    flags: list[str] = []
    if state.jetson_clocks == "off":
        flags.append("clocks_not_locked")
    if state.nvpmodel_name and not state.nvpmodel_name.upper().startswith("MAXN"):
        flags.append("power_mode_not_maxn")
    for name, values in by_channel.items():
        if _GPU_FREQ.match(name) and values.size >= 2 and _varies(values):
            flags.append("gpu_freq_varied")
            break
    if _near_throttle(temps, state.throttle_temp_c):
        flags.append("temp_near_throttle")
    if "throttle_reasons" in by_channel:
        mask = 0
        for value in by_channel["throttle_reasons"]:
            mask |= int(value)
        reasons = decode_throttle(mask)
        if reasons:
            flags.append("nvml_throttle:" + "+".join(reasons))
    if sampler_died:
        flags.append("telemetry_sampler_died")
    if out["telemetry_samples"] < 2:
        flags.append("too_few_samples")
    out["trust_flags"] = _join(flags)
    return out


def _mean_slope(t: np.ndarray, y: np.ndarray, t_start: float, t_end: float) -> float:
    """Mean dy/dt over the window, from the points inside it plus interpolated edges."""
    if t.size < 2:
        return math.nan
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    lo = max(t_start, float(t[0]))
    hi = min(t_end, float(t[-1]))
    if not hi > lo:
        return math.nan
    return float((np.interp(hi, t, y) - np.interp(lo, t, y)) / (hi - lo))


def _varies(values: np.ndarray) -> bool:
    median = float(np.median(values))
    spread = float(values.max() - values.min())
    if median <= 0:
        return spread > 0
    return spread / median > GPU_FREQ_TOLERANCE


def _near_throttle(temps: dict[str, np.ndarray], trip_c: float | None) -> bool:
    if not temps:
        return False
    hottest = max(float(v.max()) for v in temps.values())
    if trip_c is not None:
        return hottest >= trip_c - THROTTLE_MARGIN_C
    tj = temps.get("temp_tj")
    return bool(tj is not None and float(tj.max()) > TJ_FALLBACK_C)


def _join(flags: list[str]) -> str:
    return ";".join(flags)
