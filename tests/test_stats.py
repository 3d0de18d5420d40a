from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orinprof.stats import bootstrap_ci, latency_stats, reduction_ci


def test_latency_stats_match_numpy() -> None:
    x = np.random.default_rng(0).lognormal(0, 0.2, 1000)
    s = latency_stats(x)
    assert s.median_ms == pytest.approx(np.median(x))
    assert s.p99_ms == pytest.approx(np.percentile(x, 99))
    assert s.cv == pytest.approx(np.std(x, ddof=1) / np.mean(x))
    assert s.median_ci_low_ms < s.median_ms < s.median_ci_high_ms


def test_ci_is_reproducible_and_narrows_with_n() -> None:
    rng = np.random.default_rng(1)
    small, big = rng.normal(10, 1, 30), rng.normal(10, 1, 3000)
    assert bootstrap_ci(small) == bootstrap_ci(small)
    w_small = np.subtract(*bootstrap_ci(small)[::-1])
    w_big = np.subtract(*bootstrap_ci(big)[::-1])
    assert w_big < w_small


def test_reduction_ci_detects_a_real_speedup() -> None:
    rng = np.random.default_rng(2)
    base, fast = rng.normal(10, 0.3, 200), rng.normal(6, 0.3, 200)
    point, lo, hi = reduction_ci(base, fast)
    assert point == pytest.approx(0.4, abs=0.02)
    assert lo < 0.4 < hi and lo > 0.3
    same = reduction_ci(base, rng.normal(10, 0.3, 200))
    assert same[1] < 0 < same[2]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 1e4), min_size=1, max_size=200))
def test_stats_never_crash_and_are_ordered(values: list[float]) -> None:
    s = latency_stats(values)
    assert s.min_ms <= s.median_ms <= s.max_ms
    assert s.median_ci_low_ms <= s.median_ci_high_ms


# --------------------------------------------------------------------------- rounds


def test_tail_percentiles_need_enough_samples() -> None:
    """p99 from 100 samples is the maximum in disguise: NaN under MLPerf's 662, p90 under 64."""
    from orinprof.stats import MIN_SAMPLES_FOR_PERCENTILE

    rng = np.random.default_rng(3)
    few, enough = rng.lognormal(0, 0.3, 661), rng.lognormal(0, 0.3, 662)
    assert np.isnan(latency_stats(few).p99_ms) and np.isfinite(latency_stats(few).p90_ms)
    assert latency_stats(enough).p99_ms == pytest.approx(np.percentile(enough, 99))
    assert np.isnan(latency_stats(rng.lognormal(0, 0.3, 63)).p90_ms)
    assert MIN_SAMPLES_FOR_PERCENTILE == {90: 64, 95: 133, 99: 662}


def _round_medians(rng: np.random.Generator, rounds: int, iterations: int) -> np.ndarray:
    """Each round has its own level (machine state, σ = 5 %) plus per-iteration noise (σ = 5 %)."""
    levels = 10.0 * (1 + 0.05 * rng.standard_normal(rounds))
    samples = levels[:, None] * (1 + 0.05 * rng.standard_normal((rounds, iterations)))
    return np.median(samples, axis=1)


def _mean_width(rounds: int, iterations: int, trials: int = 40) -> float:
    from orinprof.stats import over_rounds

    rng = np.random.default_rng(rounds * 1000 + iterations)
    widths = []
    for _ in range(trials):
        est = over_rounds(_round_medians(rng, rounds, iterations))
        widths.append(est.ci_high - est.ci_low)
    return float(np.mean(widths))


def test_ci_over_rounds_shrinks_with_rounds_not_with_iterations() -> None:
    """The CI's unit is the round: 100× more iterations per block leave it about as wide (the
    round-to-round spread remains); 8× more rounds narrow it."""
    few_iters, many_iters = _mean_width(8, 20), _mean_width(8, 2000)
    assert many_iters > 0.6 * few_iters
    assert _mean_width(64, 20) < 0.5 * few_iters


def test_paired_comparison_reads_as_ratio_and_reduction() -> None:
    from orinprof.stats import paired_comparison, unpaired_comparison

    rng = np.random.default_rng(4)
    drift = 10.0 * (1 + 0.5 * np.arange(6))  # the machine slows by half each round
    base = drift * (1 + 0.002 * rng.standard_normal(6))
    cand = 2.5 * drift * (1 + 0.002 * rng.standard_normal(6))  # a 2.5× slowdown
    c = paired_comparison(base, cand)
    assert c.ratio == pytest.approx(2.5, rel=0.01) and c.reduction == pytest.approx(-1.5, rel=0.01)
    assert c.ratio_ci_low <= c.ratio <= c.ratio_ci_high
    assert (c.reduction_ci_low, c.reduction_ci_high) == pytest.approx((1 - c.ratio_ci_high, 1 - c.ratio_ci_low))
    assert c.ratio_ci_high - c.ratio_ci_low < 0.05 and c.paired and c.rounds == 6
    u = unpaired_comparison(base, cand)  # the same numbers without the pairing: drift dominates
    assert u.ratio_ci_high - u.ratio_ci_low > 10 * (c.ratio_ci_high - c.ratio_ci_low)
    one = paired_comparison(base[:1], cand[:1])  # one round: a point, no interval
    assert np.isfinite(one.ratio) and np.isnan(one.ratio_ci_low)
