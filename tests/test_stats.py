from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orinprof.stats import bootstrap_ci, latency_stats, reduction_ci


def test_latency_stats_match_numpy() -> None:
    x = np.random.default_rng(0).lognormal(0, 0.2, 500)
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
