"""The CLI's one number format (cli/format.py): 3 significant figures, CIs at the point's precision."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from orinprof.cli import format as fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (102.34, "102"),
        (1234.6, "1235"),  # integer digits are never rounded away
        (0.012345, "0.0123"),
        (40.94, "40.9"),
        (3.0, "3.00"),
        (np.float64(7.777), "7.78"),
        (np.int64(12), "12"),
        (128, "128"),
        (0.0, "0.00"),
        (1.5e-5, "1.50e-05"),
        (float("nan"), "–"),
        (None, "–"),
        (pd.NA, "–"),
    ],
)
def test_num_keeps_three_significant_figures(value: object, text: str) -> None:
    assert fmt.num(value) == text


@pytest.mark.parametrize(
    ("value", "sign", "text"),
    [
        (0.2134, False, "21.3%"),
        (-0.2134, True, "-21.3%"),
        (0.0412, True, "+4.1%"),  # a tenth of a point at most: 3 s.f. would claim 4.12
        (1.234, False, "123%"),
        (0.0, True, "0.0%"),
        (-0.00004, True, "0.0%"),  # rounds to zero: no sign
        (float("nan"), True, "–"),
    ],
)
def test_pct(value: float, sign: bool, text: str) -> None:
    assert fmt.pct(value, sign) == text


def test_ci_uses_the_point_precision() -> None:
    assert fmt.ci(102.34, 100.2, 104.49) == ("102", "[100, 104]")
    assert fmt.ci(80.14, 78.51, 81.74) == ("80.1", "[78.5, 81.7]")
    assert fmt.ci(-0.2134, -0.2513, -0.17, percent=True, sign=True) == ("-21.3%", "[-25.1, -17.0]")
    assert fmt.ci(1.5, float("nan"), 2.0) == ("1.50", "")  # a missing bound drops the interval
    assert fmt.ci_text(0.5, 0.4, 0.6, sep="\n") == "0.500\n[0.400, 0.600]"


@pytest.mark.parametrize(
    ("cosine", "text"), [(0.999977, "0.999977"), (1.0, "1"), (0.9512, "0.951"), (0.99, "0.990"), (math.nan, "–")]
)
def test_cosine_shows_its_distance_from_one(cosine: float, text: str) -> None:
    assert fmt.cosine(cosine) == text


def test_flags_in_words() -> None:
    words = fmt.flag_words("noisy_plan:cv=0.12;baseline:clocks_not_locked;brand_new_flag")
    assert words == "plan timing noisy (cv 0.12), baseline: clocks not locked (run sudo jetson_clocks), brand new flag"
    assert fmt.flag_words(None) == "" and fmt.flag_words(float("nan")) == ""
    assert fmt.flag_words("plan:int8_class_not_executed:ffn") == "plan: no INT8 kernel ran in class (ffn)"
    assert (
        fmt.flag_words("placebo_failed:attention=-0.3%[-7.5%,+4.0%]")
        == "placebo failed: the untouched class's CI leaves ±5 % (attention -0.3%[-7.5%,+4.0%])"
    )


@pytest.mark.parametrize(("value", "text"), [(16.0, "16"), (np.int64(384), "384"), (np.nan, "–"), (2.5, "2.50")])
def test_counts_print_whole(value: object, text: str) -> None:
    assert fmt.count(value) == text
