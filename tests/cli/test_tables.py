"""The DataFrame → terminal table helper (cli/tables.py) and the profile/compare views (cli/views.py):
columns shown when present, numbers never cut, a vertical layout when a table cannot fit."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import factories
from orinprof.cli import format as fmt
from orinprof.cli import tables as T
from orinprof.cli.views import MEASURED, print_measured, print_reductions


def summary_frame(plans: tuple[str, ...] = ("fp32", "int8-attn", "int8-ffn", "int8-all")) -> pd.DataFrame:
    """A summary table as `measure` writes it (every schema column; values of a bert-base CPU run's size)."""
    rows = []
    for seq in (128, 384):
        for i, plan in enumerate(plans):
            median = 102.34 * seq / 128 * (1 - 0.15 * i)
            row = factories.row(
                "summary",
                run_id="20261130T000000-bert-base-onnxruntime-ab12",
                model="bert-base",
                backend="onnxruntime",
                precision=plan,
                seq_len=seq,
                e2e_median_ms=median,
                e2e_median_ci_low_ms=median * 0.981,
                e2e_median_ci_high_ms=median * 1.023,
                e2e_p99_ms=median * 1.2,
                e2e_cv=0.031,
                attention_ms=median * 0.41,
                ffn_ms=median * 0.52,
                attention_share=0.41,
                fidelity_cosine=1.0 if plan == "fp32" else 0.999977,
                trust_flags="clocks_not_locked" if plan == "int8-all" else None,
            )
            rows.append(row)
    return pd.DataFrame(rows)


def comparison_frame() -> pd.DataFrame:
    rows = []
    for seq in (128, 384):
        for plan in ("int8-attn", "int8-ffn", "int8-all"):
            row = factories.comparison_row(
                model="bert-base", precision=plan, baseline="fp32", seq_len=seq,
                attention_reduction=-0.2134, attention_reduction_ci_low=-0.2513, attention_reduction_ci_high=-0.1702,
                ffn_reduction=0.0412, ffn_reduction_ci_low=0.0011, ffn_reduction_ci_high=0.0803,
                e2e_reduction=0.1234, e2e_reduction_ci_low=0.1001, e2e_reduction_ci_high=0.1502,
                profile_implied_e2e_reduction=0.1,
                flags="noisy_plan:cv=0.12" if plan == "int8-ffn" else None,
            )  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows)


def render(width: int, draw) -> str:  # type: ignore[no-untyped-def]
    console = Console(file=io.StringIO(), width=width, color_system=None)
    draw(console)
    return console.file.getvalue()  # type: ignore[attr-defined]


def assert_fits(text: str, width: int) -> None:
    for line in text.splitlines():
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
    assert "…" not in text and "..." not in text


def test_measured_default_columns_fit_80() -> None:
    frame = summary_frame()
    text = render(80, lambda c: print_measured(c, frame))
    assert_fits(text, 80)
    header = next(line for line in text.splitlines() if line.startswith("seq"))
    assert header.split() == ["seq", "plan", "e2e", "ms", "[95%", "CI]", "attn", "ms", "FFN", "ms", "attn",
                              "share", "cosine"]  # fmt: skip
    for row in frame.to_dict("records"):  # every number whole, in its row
        e2e = fmt.ci_text(row["e2e_median_ms"], row["e2e_median_ci_low_ms"], row["e2e_median_ci_high_ms"])
        line = next(li for li in text.splitlines() if li.startswith(f"{row['seq_len']} ") and f" {e2e} " in li)
        assert fmt.num(row["attention_ms"]) in line and fmt.cosine(row["fidelity_cosine"]) in line
    assert "int8-all · seq 128: clocks not locked" in text  # trust flags in words


@pytest.mark.parametrize("width", [30, 45, 60, 72, 80, 100, 140])
def test_any_width_keeps_every_number_whole(width: int) -> None:
    frame, comp = summary_frame(), comparison_frame()
    for draw, cells in (
        (lambda c: print_measured(c, frame), [fmt.num(v) for v in frame["attention_ms"]]),
        (lambda c: print_reductions(c, comp), ["-21.3%", "[-25.1, -17.0]", "+4.1%", "[+0.1, +8.0]", "+12.3%"]),
        (lambda c: print_measured(c, frame, wide=True), [fmt.num(v) for v in frame["e2e_p99_ms"]]),
    ):
        text = render(width, draw)
        assert_fits(text, width)
        for cell in cells:
            assert cell in text


def test_vertical_layout_when_the_default_set_cannot_fit() -> None:
    frame = summary_frame()
    table = render(80, lambda c: T.show(c, frame, MEASURED, "t"))
    narrow = render(50, lambda c: T.show(c, frame, MEASURED, "t"))
    assert "attn ms:" not in table and re.search(r"^seq 384 · int8-attn$", narrow, re.M)
    row = frame.iloc[5]  # seq 384, int8-attn
    e2e = fmt.ci_text(row["e2e_median_ms"], row["e2e_median_ci_low_ms"], row["e2e_median_ci_high_ms"])
    assert re.search(rf"^  e2e ms \[95% CI\]: +{re.escape(e2e)}", narrow, re.M)
    assert re.search(rf"^  attn ms: +{fmt.num(row['attention_ms'])}", narrow, re.M)


def test_columns_are_shown_only_when_present_and_prefer_round_cis() -> None:
    frame = summary_frame().drop(columns=["fidelity_cosine"])
    frame["e2e_ci_low_ms"] = frame["e2e_median_ms"] - 1  # per-round CI columns, when the run has them
    frame["e2e_ci_high_ms"] = frame["e2e_median_ms"] + 1
    console = Console(file=io.StringIO(), width=80)
    layout = T.show(console, frame, MEASURED)
    assert layout.kind == "table" and "cosine" not in layout.headers
    assert "102 [101, 103]" in console.file.getvalue()  # type: ignore[attr-defined]


def test_wide_adds_every_non_empty_column_and_hoists_constants() -> None:
    frame = summary_frame()
    console = Console(file=io.StringIO(), width=250)
    default = T.show(console, frame, MEASURED)
    wide = T.show(console, frame, MEASURED, wide=True)
    assert set(default.headers) < set(wide.headers)
    assert "p99 ms" in wide.headers and "CV" in wide.headers
    assert "norm ms" not in wide.headers  # all-NaN: says nothing
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "model: bert-base" in text and "backend: onnxruntime" in text  # one value → a caption


def test_reductions_put_ci_under_the_point_and_flags_in_words() -> None:
    text = render(80, lambda c: print_reductions(c, comparison_frame()))
    assert_fits(text, 80)
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("128") and "int8-attn vs fp32" in line)
    assert lines[i].split()[-3:] == ["-21.3%", "+4.1%", "+12.3%"]
    assert "[-25.1, -17.0]" in lines[i + 1] and "[+10.0, +15.0]" in lines[i + 1]
    assert "bert-base · int8-ffn · seq 128: plan timing noisy (cv 0.12)" in text
    assert "No comparison" in render(80, lambda c: print_reductions(c, comparison_frame().iloc[0:0]))


def test_json_records_turn_nan_into_null() -> None:
    records = T.json_records(pd.DataFrame({"a": [1.5, np.nan], "b": ["x", None], "n": pd.array([1, None], "Int64")}))
    assert records == [{"a": 1.5, "b": "x", "n": 1}, {"a": None, "b": None, "n": None}]


def test_a_column_with_blanks_is_hoisted_only_when_blanks_mean_not_applicable() -> None:
    frame = pd.DataFrame({"plan": ["a", "b", "c"], "seq_in_range": ["", "", "16;32"], "where": ["x", "", "x"]})
    cols = (T.text("plan"), T.text("seq_in_range", "seq in range"), T.Col("where", ("where",), lambda r: r["where"],
            numeric=False, sparse=True))  # fmt: skip
    console = Console(file=io.StringIO(), width=80)
    layout = T.show(console, frame, cols, key_count=1)
    assert layout.headers == ("plan", "seq in range")  # "16;32" holds for one row only: stays a column
    assert console.file.getvalue().splitlines()[0] == "where: x"  # type: ignore[attr-defined]
