"""Latency statistics: percentiles, spread and bootstrap confidence intervals.

Pure numpy; every figure orinprof prints about a distribution comes from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Fixed seed: the same latencies always give the same interval (reproducible reports).
BOOTSTRAP_SEED = 20240917
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class LatencyStats:
    n: int
    median_ms: float
    mean_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    std_ms: float
    cv: float
    min_ms: float
    max_ms: float
    median_ci_low_ms: float
    median_ci_high_ms: float


def _as_array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError("no finite latencies")
    return arr


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` (default: the median), vectorised over resamples."""
    arr = _as_array(values)
    if arr.size == 1:
        return float(arr[0]), float(arr[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    samples = arr[idx]
    stats = statistic(samples) if statistic else np.median(samples, axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def latency_stats(values: Sequence[float] | np.ndarray) -> LatencyStats:
    arr = _as_array(values)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    lo, hi = bootstrap_ci(arr)
    p90, p95, p99 = np.percentile(arr, [90, 95, 99])
    return LatencyStats(
        n=int(arr.size),
        median_ms=float(np.median(arr)),
        mean_ms=mean,
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        std_ms=std,
        cv=std / mean if mean > 0 else float("nan"),
        min_ms=float(arr.min()),
        max_ms=float(arr.max()),
        median_ci_low_ms=lo,
        median_ci_high_ms=hi,
    )


def reduction_ci(
    baseline: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """Reduction ``1 - median(candidate)/median(baseline)`` with an independent two-sample bootstrap CI.

    The two samples come from separate runs, so they are resampled independently.
    """
    b = _as_array(baseline)
    c = _as_array(candidate)
    point = 1.0 - float(np.median(c)) / float(np.median(b))
    if b.size < 2 or c.size < 2:
        return point, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    mc = np.median(c[rng.integers(0, c.size, size=(resamples, c.size))], axis=1)
    red = 1.0 - mc / mb
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(red, [alpha, 1.0 - alpha])
    return point, float(lo), float(hi)
