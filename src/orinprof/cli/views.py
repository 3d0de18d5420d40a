"""The measured table and the reductions table (``profile``, ``compare``).

Each is a preference list of :class:`~orinprof.cli.tables.Col` specs: a column is shown when the
results have it, so columns the library adds later (per-round CIs, ratios, placebo flags) appear
without a CLI change, and ``--wide`` shows every column.  Preference order, default set:

* measured: seq, plan, e2e median [95 % CI] (round CIs ``e2e_ci_low_ms``/``e2e_ci_high_ms`` when
  the run has them, else the bootstrap ``e2e_median_ci_*``), attention ms, FFN ms, attention
  share, cosine fidelity.
* reductions: seq, plan ("int8-attn vs fp32"), attention, FFN
  and end-to-end reductions, each with its 95 % CI under it; flags in words under the table
  (``placebo_failed``, unpaired, noisy…); the A/A control's noise floor in a sentence when the
  run has one.  ``--wide``: ratios with log-scale CIs, the placebo class's change, the
  profile-implied e2e and its gap, the card check, rounds.
"""

from __future__ import annotations

import pandas as pd
from rich.console import Console

from orinprof.cli import format as fmt
from orinprof.cli import tables as T
from orinprof.cli.tables import Col

E2E_BOUNDS = (("e2e_ci_low_ms", "e2e_ci_high_ms"), ("e2e_median_ci_low_ms", "e2e_median_ci_high_ms"))


def _reduction(header: str, name: str, *, wide: bool = False) -> Col:
    return T.with_ci(header, f"{name}_reduction", [(f"{name}_reduction_ci_low", f"{name}_reduction_ci_high")],
                     percent=True, sign=True, wide=wide)  # fmt: skip


MEASURED: tuple[Col, ...] = (
    T.integer("seq_len", "seq"),
    T.text("precision", "plan"),
    T.with_ci("e2e ms [95% CI]", "e2e_median_ms", E2E_BOUNDS, one_line=True),
    T.number("attention_ms", "attn ms"),
    T.number("ffn_ms", "FFN ms"),
    T.percent("attention_share", "attn share"),
    Col("cosine", ("fidelity_cosine",), lambda r: fmt.cosine(r["fidelity_cosine"])),
    T.number("e2e_p99_ms", "p99 ms", wide=True),
    T.number("e2e_cv", "CV", wide=True),
    T.number("e2e_round_cv", "round CV", wide=True),
    T.integer("rounds", "rounds", wide=True),
    T.number("other_ms", "other ms", wide=True),
    T.number("unattributed_ms", "unattributed ms", wide=True),
    T.percent("layer_sum_over_e2e", "layers ÷ e2e", wide=True),
)

REDUCTIONS: tuple[Col, ...] = (
    T.integer("seq_len", "seq"),
    Col("plan", ("precision", "baseline"), lambda r: f"{r['precision']} vs {r['baseline']}", numeric=False),
    _reduction("attention", "attention"),
    _reduction("FFN", "ffn"),
    _reduction("e2e", "e2e"),
    T.with_ci("e2e ratio", "e2e_ratio", [("e2e_ratio_ci_low", "e2e_ratio_ci_high")], wide=True),
    T.with_ci("attn ratio", "attention_ratio", [("attention_ratio_ci_low", "attention_ratio_ci_high")], wide=True),
    T.with_ci("FFN ratio", "ffn_ratio", [("ffn_ratio_ci_low", "ffn_ratio_ci_high")], wide=True),
    T.text("placebo_class", "placebo class", wide=True),
    _reduction("placebo", "placebo", wide=True),
    T.percent("profile_implied_e2e_reduction", "profile-implied e2e", sign=True, wide=True),
    T.percent("profile_implied_gap", "timed − implied", sign=True, wide=True),
    T.percent("card_implied_e2e_reduction", "card-implied e2e", sign=True, wide=True),
    T.percent("noise_floor", "noise floor", wide=True),
    T.integer("rounds", "rounds", wide=True),
)

MEASURED_TITLE = "Measured (timing run: end-to-end; profiling run: class times)"
REDUCTIONS_TITLE = "Reduction vs baseline (positive = faster), 95% CI under each"


def _row_label(row: dict) -> str:  # type: ignore[type-arg]
    parts = [str(row.get("precision", ""))]
    if "seq_len" in row and not fmt.is_missing(row["seq_len"]):
        parts.append(f"seq {fmt.count(row['seq_len'])}")
    if "model" in row and not fmt.is_missing(row["model"]):
        parts.insert(0, str(row["model"]))
    return " · ".join(parts)


def flag_lines(frame: pd.DataFrame, columns: tuple[str, ...] = ("flags", "trust_flags")) -> list[str]:
    """One line per flagged row, flags in words (``placebo_failed`` columns included)."""
    lines = []
    for row in frame.to_dict("records"):
        words = [fmt.flag_words(row[c]) for c in columns if c in row]
        for name in ("placebo_failed", "unattributed_flag"):
            if name in row and not fmt.is_missing(row[name]) and bool(row[name]):
                words.append(fmt.FLAG_WORDS.get(name.removesuffix("_flag"), name.replace("_", " ")))
        words = [w for w in words if w]
        if words:
            lines.append(f"{_row_label(row)}: {', '.join(words)}")
    return lines


def noise_floor_line(comparison: pd.DataFrame) -> str | None:
    """The A/A control's noise floor in words (the sentence is :mod:`orinprof.compare`'s)."""
    from orinprof.compare import noise_floor_sentence, noise_floors

    return noise_floor_sentence(noise_floors(comparison))


def print_measured(console: Console, summary: pd.DataFrame, wide: bool = False) -> None:
    T.show(console, summary, MEASURED, MEASURED_TITLE, wide=wide)
    T.note_lines(console, "Trust flags:", flag_lines(summary, ("trust_flags",)))


def print_reductions(console: Console, comparison: pd.DataFrame, wide: bool = False) -> None:
    if comparison.empty:
        console.print("No comparison: include the baseline plan (fp32 on CPU, fp16 on GPU) in --precisions.")
        return
    T.show(console, comparison, REDUCTIONS, REDUCTIONS_TITLE, wide=wide)
    T.note_lines(console, "Flags (read before trusting a row):", flag_lines(comparison))
    floor = noise_floor_line(comparison)
    if floor:
        console.print(floor)
