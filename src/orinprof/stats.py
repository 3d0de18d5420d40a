"""Latency statistics: percentiles, spread and bootstrap confidence intervals.

Pure numpy; every figure orinprof prints about a distribution comes from here.

**The unit of a confidence interval is the round**, never the iteration.  Iterations of one block
are autocorrelated and share the block's machine state (clocks, cache, neighbours), so resampling
them measures only within-block noise (a CI of [-237.1 %, -237.0 %] while two runs of the same
plan differ by 1 %: results-audit §1.5).  :mod:`orinprof.measure` times every plan once per round,
in a shuffled order; a plan's figure is the median of its round medians, a comparison's figure is
the median of per-round paired ratios, and their CIs bootstrap the R round values.

**Tail percentiles need samples.**  A p99 from 100 samples is in effect the maximum.  A percentile
``q`` is reported only with at least :data:`MIN_SAMPLES_FOR_PERCENTILE` samples (MLPerf LoadGen's
early-stopping floors: 64 queries for p90 and 662 for p99; p95 by the same tail count,
⌈662 × 0.01 / 0.05⌉ = 133), and is NaN otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Fixed seed: the same latencies always give the same interval (reproducible reports).
BOOTSTRAP_SEED = 20240917
BOOTSTRAP_RESAMPLES = 2000


#: percentile → the fewest samples it is reported from (MLPerf LoadGen early-stopping floors)
MIN_SAMPLES_FOR_PERCENTILE: dict[int, int] = {90: 64, 95: 133, 99: 662}


def percentile_or_nan(values: np.ndarray, q: int) -> float:
    """The ``q``-th percentile, or NaN with fewer than :data:`MIN_SAMPLES_FOR_PERCENTILE` samples."""
    arr = np.asarray(values, dtype=float)
    if arr.size < MIN_SAMPLES_FOR_PERCENTILE[q]:
        return float("nan")
    return float(np.percentile(arr, q))


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
    return LatencyStats(
        n=int(arr.size),
        median_ms=float(np.median(arr)),
        mean_ms=mean,
        p90_ms=percentile_or_nan(arr, 90),
        p95_ms=percentile_or_nan(arr, 95),
        p99_ms=percentile_or_nan(arr, 99),
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

    The two samples come from separate runs, so they are resampled independently: the reduction
    side of :func:`unpaired_comparison` (one bootstrap for both).
    """
    comp = unpaired_comparison(_as_array(baseline), _as_array(candidate), level, resamples, seed)
    return comp.reduction, comp.reduction_ci_low, comp.reduction_ci_high


# --------------------------------------------------------------------------- rounds


@dataclass(frozen=True)
class RoundsEstimate:
    """A statistic over R round values: the median and a bootstrap CI over the rounds."""

    point: float
    ci_low: float
    ci_high: float
    rounds: int


def over_rounds(
    values: Sequence[float] | np.ndarray, level: float = 0.95, seed: int = BOOTSTRAP_SEED
) -> RoundsEstimate:
    """Median of the round values with a percentile-bootstrap CI of that median over rounds.

    One round gives no interval (NaN).  With 5 rounds the interval is close to [min, max]; it
    narrows only with more rounds, never with more iterations per round."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return RoundsEstimate(float("nan"), float("nan"), float("nan"), 0)
    point = float(np.median(arr))
    if arr.size < 2:
        return RoundsEstimate(point, float("nan"), float("nan"), int(arr.size))
    lo, hi = bootstrap_ci(arr, level=level, seed=seed)
    return RoundsEstimate(point, min(lo, point), max(hi, point), int(arr.size))


@dataclass(frozen=True)
class Comparison:
    """Plan vs baseline over rounds: the ratio ``plan / baseline`` (log-scale CI) and the reduction
    ``1 - ratio`` (the same interval, transformed)."""

    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    reduction: float
    reduction_ci_low: float
    reduction_ci_high: float
    rounds: int
    paired: bool


def _from_log_ratio(est: RoundsEstimate, paired: bool) -> Comparison:
    r, lo, hi = (float(np.exp(v)) if np.isfinite(v) else float("nan") for v in (est.point, est.ci_low, est.ci_high))
    return Comparison(r, lo, hi, 1.0 - r, 1.0 - hi, 1.0 - lo, est.rounds, paired)


def paired_comparison(
    baseline_rounds: Sequence[float] | np.ndarray,
    candidate_rounds: Sequence[float] | np.ndarray,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Per round, ``log(candidate_r / baseline_r)`` (both measured in the same round, so drift
    cancels); the median over rounds and its bootstrap CI over rounds, back on the ratio scale."""
    b = np.asarray(baseline_rounds, dtype=float)
    c = np.asarray(candidate_rounds, dtype=float)
    if b.shape != c.shape:
        raise ValueError(f"paired rounds differ in length: {b.size} vs {c.size}")
    ok = np.isfinite(b) & np.isfinite(c) & (b > 0) & (c > 0)
    return _from_log_ratio(over_rounds(np.log(c[ok] / b[ok]), seed=seed), paired=True)


def unpaired_comparison(
    baseline_rounds: Sequence[float] | np.ndarray,
    candidate_rounds: Sequence[float] | np.ndarray,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison:
    """Baseline and plan from different runs (no shared rounds): the ratio of the medians of
    round values, its CI by resampling each side's rounds independently."""
    b = np.asarray(baseline_rounds, dtype=float)
    c = np.asarray(candidate_rounds, dtype=float)
    b, c = b[np.isfinite(b) & (b > 0)], c[np.isfinite(c) & (c > 0)]
    n = int(min(b.size, c.size))
    if n == 0:
        return _from_log_ratio(RoundsEstimate(float("nan"), float("nan"), float("nan"), 0), paired=False)
    point = float(np.log(np.median(c) / np.median(b)))
    if b.size < 2 or c.size < 2:
        return _from_log_ratio(RoundsEstimate(point, float("nan"), float("nan"), n), paired=False)
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, b.size, size=(resamples, b.size))], axis=1)
    mc = np.median(c[rng.integers(0, c.size, size=(resamples, c.size))], axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.log(mc / mb), [alpha, 1.0 - alpha])
    return _from_log_ratio(RoundsEstimate(point, min(float(lo), point), max(float(hi), point), n), paired=False)
