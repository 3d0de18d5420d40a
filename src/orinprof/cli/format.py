"""How orinprof writes a number: one rule for every table the CLI prints.

* Plain values: 3 significant figures, never dropping integer digits (``1234.5`` → ``1235``,
  ``102.34`` → ``102``, ``0.012345`` → ``0.0123``); scientific notation only outside 1e-3…1e7.
* Percentages (shares, reductions): 3 significant figures of the percent value, at most one
  decimal (a tenth of a percentage point is below every noise floor orinprof measures).
* A confidence interval is written at the precision of its point estimate, so the digits of
  ``102 [100, 104]`` line up and nothing claims more precision than the point has.
* Cosine fidelity is close to 1: its digits show 2 significant figures of ``1 − cos``
  (``0.999977``), because 3 significant figures of the cosine itself would print ``1.00``.
* Counts and sizes (sequence length, layers, rounds) print whole: ``16``, never ``16.0``.
* Missing values (None, NaN, NA) print as ``–``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

MISSING = "–"
SIGNIFICANT = 3


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays, lists
        return False


def _float(value: Any) -> float | None:
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def decimals_for(value: float, significant: int = SIGNIFICANT, max_decimals: int = 12) -> int:
    """Decimals that give ``significant`` figures of ``value`` (never negative)."""
    if value == 0:
        return significant - 1
    exponent = math.floor(math.log10(abs(value)))
    return max(0, min(max_decimals, significant - 1 - exponent))


def _fixed(value: float, decimals: int, sign: bool = False) -> str:
    text = f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"
    if text.lstrip("+-").strip("0.") == "":  # a value that rounds to zero has no sign
        text = text.lstrip("+-")
    return text


def _plain(value: float, decimals: int | None = None, sign: bool = False) -> str:
    if decimals is None and value != 0 and not 1e-3 <= abs(value) < 1e7:
        return f"{value:+.{SIGNIFICANT - 1}e}" if sign else f"{value:.{SIGNIFICANT - 1}e}"
    return _fixed(value, decimals_for(value) if decimals is None else decimals, sign)


def num(value: Any, sign: bool = False) -> str:
    """A number at 3 significant figures (integer digits kept); ``–`` when missing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:+d}" if sign else str(value)
    v = _float(value)
    if v is None:
        return MISSING if is_missing(value) or not isinstance(value, str) else str(value)
    if v.is_integer() and abs(v) < 1e7 and not isinstance(value, float):
        return str(int(v))
    return _plain(v, sign=sign)


def count(value: Any) -> str:
    """A count or a size (sequence length, layers, rounds): whole, even when pandas made it a float
    because another row was missing."""
    v = _float(value)
    if v is None:
        return MISSING
    return str(int(v)) if v.is_integer() else num(value)


def _pct_decimals(percent: float) -> int:
    return min(1, decimals_for(percent))


def pct(value: Any, sign: bool = False) -> str:
    """A fraction as a percentage: ``0.2134`` → ``21.3%`` (``+21.3%`` with ``sign``)."""
    v = _float(value)
    if v is None:
        return MISSING
    return _fixed(100 * v, _pct_decimals(100 * v), sign) + "%"


def ci(point: Any, low: Any, high: Any, percent: bool = False, sign: bool = False) -> tuple[str, str]:
    """``(point, "[low, high]")`` written at the point's precision (percent: as percentages).

    Two strings, so a table can put the interval on its own line under the point."""
    p, lo, hi = _float(point), _float(low), _float(high)
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    if p is None:
        return MISSING, ""
    p_s = p * scale
    if percent:
        dec = _pct_decimals(p_s) if p_s != 0 else 1
    elif p_s != 0 and not 1e-3 <= abs(p_s) < 1e7:
        return num(p, sign), ("" if lo is None or hi is None else f"[{num(lo, sign)}, {num(hi, sign)}]")
    else:
        dec = decimals_for(p_s)
    point_text = _fixed(p_s, dec, sign) + unit
    if lo is None or hi is None:
        return point_text, ""
    return point_text, f"[{_fixed(lo * scale, dec, sign)}, {_fixed(hi * scale, dec, sign)}]"


def ci_text(point: Any, low: Any, high: Any, percent: bool = False, sign: bool = False, sep: str = " ") -> str:
    """:func:`ci` as one string (``sep="\\n"`` puts the interval under the point)."""
    head, interval = ci(point, low, high, percent, sign)
    return head + (sep + interval if interval else "")


def cosine(value: Any) -> str:
    """Cosine similarity with 2 significant figures of its distance from 1."""
    v = _float(value)
    if v is None:
        return MISSING
    gap = 1.0 - v
    if gap <= 0:
        return "1"
    if gap >= 0.01:
        return _plain(v)
    return f"{v:.{min(10, -math.floor(math.log10(gap)) + 1)}f}"


def text(value: Any) -> str:
    """Any cell: numbers by :func:`num`, missing as ``–``, everything else as ``str``."""
    if isinstance(value, str):
        return value
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float)):
        return num(value)
    return str(value)


# flags as the library writes them (compare._flags, telemetry.summary) → words for a reader
FLAG_WORDS = {
    "noisy_baseline": "baseline timing noisy",
    "noisy_plan": "plan timing noisy",
    "power_mode_differs": "power mode differs",
    "clock_state_differs": "clock state differs",
    "clocks_not_locked": "clocks not locked (run sudo jetson_clocks)",
    "power_mode_not_maxn": "power mode is not MAXN",
    "gpu_freq_varied": "GPU clock varied during timing",
    "temp_near_throttle": "temperature near throttling",
    "nvml_throttle": "GPU throttled",
    "telemetry_sampler_died": "telemetry sampler died",
    "too_few_samples": "too few telemetry samples",
    "placebo_failed": "placebo failed: the untouched class's CI leaves ±5 %",
    "unpaired": "baseline timed in other rounds (unpaired)",
    "mixed_modes": "run modes differ",
    "run_incomplete": "run incomplete",
    "class_times_exceed_e2e": "class times exceed e2e",
    "attribution_incomplete": "layer time unattributed",
    "int8_class_not_executed": "no INT8 kernel ran in class",
}


def flag_words(flags: Any) -> str:
    """``noisy_plan:cv=0.12;baseline:clocks_not_locked`` → readable words, comma-separated."""
    if is_missing(flags) or not str(flags).strip():
        return ""
    words = []
    for token in str(flags).split(";"):
        token = token.strip()
        if not token:
            continue
        who = ""
        if token.startswith(("baseline:", "plan:")):
            who, token = token.split(":", 1)
        name, _, detail = token.partition(":")
        phrase = FLAG_WORDS.get(name, name.replace("_", " "))
        if detail:
            phrase += f" ({detail.replace('=', ' ')})"
        words.append(f"{who}: {phrase}" if who else phrase)
    return ", ".join(words)
