"""Compare each plan with the baseline (fp32 on CPUs, fp16 on GPUs): class-time and end-to-end
reductions with bootstrap confidence intervals, and the Amdahl check — the end-to-end reduction
the class shares and class reductions predict, beside the one measured.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from orinprof import results
from orinprof.stats import reduction_ci

log = logging.getLogger(__name__)

GROUP_KEYS = ["model", "backend", "device", "batch", "seq_len"]
OTHER_CLASSES = ("norm", "embedding", "other")
#: summary columns that must agree for a comparison to be clean (telemetry adds them on Jetsons)
STATE_COLUMNS = {"nvpmodel_name": "power_mode_differs", "jetson_clocks": "clock_state_differs"}


def default_baseline(device_kind: str) -> str:
    return "fp32" if device_kind == "cpu" else "fp16"


def _series(frame: pd.DataFrame, run_id: str, precision: str, seq_len: int, column: str) -> np.ndarray:
    sel = frame[(frame["run_id"] == run_id) & (frame["precision"] == precision) & (frame["seq_len"] == seq_len)]
    return sel[column].to_numpy(dtype=float)


def _class_series(
    class_times: pd.DataFrame, run_id: str, precision: str, seq_len: int, classes: tuple[str, ...]
) -> np.ndarray:
    sel = class_times[
        (class_times["run_id"] == run_id)
        & (class_times["precision"] == precision)
        & (class_times["seq_len"] == seq_len)
        & (class_times["layer_class"].isin(classes))
    ]
    return sel.groupby("iteration")["time_ms"].sum().to_numpy(dtype=float)


def _reduction(base: np.ndarray, cand: np.ndarray) -> tuple[float, float, float]:
    base = base[np.isfinite(base)]
    cand = cand[np.isfinite(cand)]
    if base.size == 0 or cand.size == 0 or np.median(base) <= 0:
        return float("nan"), float("nan"), float("nan")
    return reduction_ci(base, cand)


def compare(
    summary: pd.DataFrame,
    class_times: pd.DataFrame,
    latencies: pd.DataFrame,
    baseline: str | None = None,
) -> pd.DataFrame:
    """The ``comparison`` table for every plan that has a baseline in the same group."""
    rows = []
    for group, grp in summary.groupby(GROUP_KEYS, sort=False, dropna=False):
        kind = str(grp["device_kind"].iloc[0])
        base_name = baseline or default_baseline(kind)
        base_rows = grp[grp["precision"] == base_name]
        if base_rows.empty:
            if len(grp) > 1:
                log.warning(
                    "no %s baseline for %s; include it in --precisions to get reductions",
                    base_name,
                    dict(zip(GROUP_KEYS, group)),
                )
            continue
        base = base_rows.iloc[-1]
        seq = int(base["seq_len"])
        b_lat = _series(latencies, base["run_id"], base_name, seq, "latency_ms")
        b_cls = {
            "attention": _class_series(class_times, base["run_id"], base_name, seq, ("attention",)),
            "ffn": _class_series(class_times, base["run_id"], base_name, seq, ("ffn",)),
            "other": _class_series(class_times, base["run_id"], base_name, seq, OTHER_CLASSES),
        }
        layer_sum = float(base["layer_sum_ms"])
        shares = {
            "attention": float(base["attention_ms"]) / layer_sum if layer_sum > 0 else float("nan"),
            "ffn": float(base["ffn_ms"]) / layer_sum if layer_sum > 0 else float("nan"),
        }
        shares["other"] = 1.0 - shares["attention"] - shares["ffn"]
        for _, cand in grp[grp["precision"] != base_name].iterrows():
            c_lat = _series(latencies, cand["run_id"], cand["precision"], seq, "latency_ms")
            red: dict[str, tuple[float, float, float]] = {}
            for cls, classes in (("attention", ("attention",)), ("ffn", ("ffn",)), ("other", OTHER_CLASSES)):
                red[cls] = _reduction(
                    b_cls[cls], _class_series(class_times, cand["run_id"], cand["precision"], seq, classes)
                )
            e2e = _reduction(b_lat, c_lat)
            terms = [shares[c] * red[c][0] for c in ("attention", "ffn", "other")]
            amdahl = float(np.nansum(terms)) if any(np.isfinite(t) for t in terms) else float("nan")
            rows.append(
                {
                    "run_id": cand["run_id"],
                    "baseline_run_id": base["run_id"],
                    **dict(zip(GROUP_KEYS, group)),
                    "baseline": base_name,
                    "precision": cand["precision"],
                    "attention_reduction": red["attention"][0],
                    "attention_reduction_ci_low": red["attention"][1],
                    "attention_reduction_ci_high": red["attention"][2],
                    "ffn_reduction": red["ffn"][0],
                    "ffn_reduction_ci_low": red["ffn"][1],
                    "ffn_reduction_ci_high": red["ffn"][2],
                    "other_reduction": red["other"][0],
                    "e2e_reduction": e2e[0],
                    "e2e_reduction_ci_low": e2e[1],
                    "e2e_reduction_ci_high": e2e[2],
                    "attention_share_baseline": shares["attention"],
                    "ffn_share_baseline": shares["ffn"],
                    "amdahl_e2e_reduction": amdahl,
                    "amdahl_gap": e2e[0] - amdahl,
                    "flags": _flags(base, cand) or None,
                }
            )
    columns = results.TABLES["comparison"].names
    df = pd.DataFrame(rows, columns=columns)
    return results.check(df, "comparison") if len(df) else df


def _flags(base: pd.Series, cand: pd.Series) -> str:
    flags = []
    for col, flag in STATE_COLUMNS.items():
        if col in base.index and col in cand.index:
            a, b = base[col], cand[col]
            if not (pd.isna(a) and pd.isna(b)) and str(a) != str(b):
                flags.append(f"{flag}:{a}→{b}")
    for row, who in ((base, "baseline"), (cand, "plan")):
        cv = row.get("e2e_cv")
        if cv is not None and np.isfinite(cv) and cv > 0.05:
            flags.append(f"noisy_{who}:cv={cv:.2f}")
        trust = row.get("trust_flags")
        if isinstance(trust, str) and trust:
            flags.append(f"{who}:{trust}")
    return ";".join(flags)


def compare_runs(run_dirs: list, baseline: str | None = None) -> pd.DataFrame:  # type: ignore[type-arg]
    """``orinprof compare``: read one or more run directories and compare."""
    summary = results.read_runs(run_dirs, "summary")
    class_times = results.read_runs(run_dirs, "class_times")
    latencies = results.read_runs(run_dirs, "latencies")
    return compare(summary, class_times, latencies, baseline)
