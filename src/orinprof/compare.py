"""Compare each plan with the baseline (fp32 on CPUs, fp16 on GPUs), over rounds.

Within one run, plan and baseline were timed in the same rounds (:mod:`orinprof.measure`), so each
figure is the median over rounds of the **per-round paired ratio** ``plan_r / baseline_r`` and its
CI a bootstrap over the rounds (:func:`orinprof.stats.paired_comparison`); iterations are never the
unit.  Reductions (``1 - ratio``) and ratios with a log-scale CI stand side by side, so slowdowns
read as 2.3×, not −130 %.

Every row carries its controls:

- **placebo**: the change of a class the plan leaves untouched (:meth:`orinprof.plans.Plan.untouched`;
  int8-attn → FFN, int8-ffn → attention).  If its CI leaves ±5 % the row is flagged
  ``placebo_failed``: the class comparison carries a bias at least that large.
- **A/A** (``--aa-control``): the baseline timed twice as two plans (``fp32`` and ``fp32~aa``).
  Its spurious e2e reduction is the run's noise floor (:func:`noise_floor_sentence`).
- **profile-implied e2e**: Σ class share × class reduction is the profiling runs' own layer-sum
  reduction (close to an identity, not a prediction); its gap to the timed e2e says how far the
  profiling runs disagree with the timing runs.
- **card check**: baseline attention share × the card's claimed attention reduction (claims.toml)
  is the e2e reduction the card's own numbers imply on this model, beside the card's claimed e2e.

Rows from different run modes (backend options, CUDA graph, device) are never compared with each
other unless ``allow_mixed`` (then flagged ``mixed_modes``).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from orinprof import results
from orinprof.errors import OrinprofError
from orinprof.plans import PLANS
from orinprof.stats import Comparison, paired_comparison, unpaired_comparison

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - JetPack 6 ships Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

GROUP_KEYS = ["model", "backend", "device", "batch", "seq_len"]
#: what must agree, besides the group keys, for two rows to be compared (a run mode)
MODE_KEYS = ["run_mode", "cuda_graph", "device_fingerprint"]
#: fingerprint columns (telemetry.fingerprint, copied into summary rows) that identify the hardware
FINGERPRINT_COLUMNS = ("device_model", "gpu_name", "cpu_model")
OTHER_CLASSES = ("norm", "embedding", "other")
#: summary columns that must agree for a comparison to be clean (telemetry adds them on Jetsons)
STATE_COLUMNS = {"nvpmodel_name": "power_mode_differs", "jetson_clocks": "clock_state_differs"}
#: the label suffix of the A/A control: the baseline plan timed a second time as its own plan
AA_SUFFIX = "~aa"
#: a placebo class whose CI leaves ±PLACEBO_LIMIT is flagged ``placebo_failed``
PLACEBO_LIMIT = 0.05
#: class times summing past e2e by more than this (without kernel-time classes) are flagged
CLASS_TIME_LIMIT = 1.05
_NAN = float("nan")


def default_baseline(device_kind: str) -> str:
    return "fp32" if device_kind == "cpu" else "fp16"


def base_plan_name(label: str) -> str:
    return str(label).split(AA_SUFFIX)[0]


# ----------------------------------------------------------------------------- per-round values


def round_medians(latencies: pd.DataFrame) -> pd.DataFrame:
    """Median latency per (run, plan, shape, round): columns run_id, precision, seq_len, round, value."""
    lat = latencies.assign(round=latencies.get("round", 0)).fillna({"round": 0})
    return lat.groupby(["run_id", "precision", "seq_len", "round"])["latency_ms"].median().rename("value").reset_index()


def class_round_medians(class_times: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per round, the median over profiled iterations of the summed time of ``classes``."""
    ct = class_times.assign(round=class_times.get("round", 0)).fillna({"round": 0})
    ct = ct[ct["layer_class"].isin(classes)]
    per_iter = ct.groupby(["run_id", "precision", "seq_len", "round", "iteration"])["time_ms"].sum()
    return per_iter.groupby(level=[0, 1, 2, 3]).median().rename("value").reset_index()


def _values(table: pd.DataFrame, run_id: str, precision: str, seq_len: int) -> pd.Series:
    sel = table[(table["run_id"] == run_id) & (table["precision"] == precision) & (table["seq_len"] == seq_len)]
    return sel.set_index("round")["value"].astype(float)


def _compare_values(base: pd.Series, cand: pd.Series, paired: bool) -> Comparison:
    if paired:
        common = base.index.intersection(cand.index)
        if len(common) and (base.loc[common] > 0).all():
            return paired_comparison(base.loc[common].to_numpy(), cand.loc[common].to_numpy())
    if len(base) == 0 or len(cand) == 0 or not (base > 0).any():
        return unpaired_comparison(np.array([]), np.array([]))
    return unpaired_comparison(base.to_numpy(), cand.to_numpy())


# ----------------------------------------------------------------------------- card claims


@dataclass(frozen=True)
class CardCheck:
    """A card's claimed attention reduction and its claimed e2e range, for one plan."""

    attention_reduction: float
    e2e_low: float
    e2e_high: float


def default_claims_path() -> Path | None:
    """``claims.toml`` at the repository root (a source checkout), or None."""
    path = Path(__file__).resolve().parents[2] / "claims.toml"
    return path if path.exists() else None


def card_checks(path: Path | None = None) -> dict[str, CardCheck]:
    """Plan → the card's attention claim and e2e claim, read from claims.toml (the comparison's
    ``attention_reduction`` and ``e2e_reduction`` claims of the same plan).  Empty without a file."""
    path = path or default_claims_path()
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        log.warning("card check skipped: %s: %s", path, err)
        return {}
    attention: dict[str, float] = {}
    e2e: dict[str, tuple[float, float]] = {}
    for claim in data.get("claim", []):
        plan = claim.get("where", {}).get("precision")
        if not plan:
            continue
        if claim.get("metric") == "comparison.attention_reduction":
            claimed = claim.get("claimed", (claim.get("low", _NAN) + claim.get("high", _NAN)) / 2)
            attention[plan] = float(claimed)
        elif claim.get("metric") == "comparison.e2e_reduction":
            e2e[plan] = (float(claim.get("low", _NAN)), float(claim.get("high", _NAN)))
    return {p: CardCheck(a, *e2e[p]) for p, a in attention.items() if p in e2e}


# ----------------------------------------------------------------------------- the comparison


def _modes(summary: pd.DataFrame) -> pd.DataFrame:
    out = summary.copy()
    if "run_mode" not in out.columns:
        out["run_mode"] = ""
    if "cuda_graph" not in out.columns:
        out["cuda_graph"] = False
    out["run_mode"] = out["run_mode"].fillna("").astype(str)
    out["cuda_graph"] = out["cuda_graph"].fillna(False).astype(bool)
    present = [c for c in FINGERPRINT_COLUMNS if c in out.columns]
    out["device_fingerprint"] = (
        out[present].astype(object).where(out[present].notna(), "").astype(str).agg("|".join, axis=1) if present else ""
    )
    return out


def compare(
    summary: pd.DataFrame,
    class_times: pd.DataFrame,
    latencies: pd.DataFrame,
    baseline: str | None = None,
    allow_mixed: bool = False,
    run_status: Mapping[str, str] | None = None,
    claims: Mapping[str, CardCheck] | None = None,
) -> pd.DataFrame:
    """The ``comparison`` table for every plan that has a baseline in the same group and mode."""
    summary = _modes(summary)
    claims = card_checks() if claims is None else claims
    lat_rounds = round_medians(latencies)
    cls_rounds = {
        "attention": class_round_medians(class_times, ("attention",)),
        "ffn": class_round_medians(class_times, ("ffn",)),
        "other": class_round_medians(class_times, OTHER_CLASSES),
    }
    rows = []
    for group, grp in summary.groupby(GROUP_KEYS, sort=False, dropna=False):
        modes = grp[MODE_KEYS].drop_duplicates()
        if len(modes) > 1 and not allow_mixed:
            listed = "; ".join(
                f"{m.run_mode or '?'} cuda_graph={m.cuda_graph} device={m.device_fingerprint or '?'}"
                for m in modes.itertuples()
            )
            raise OrinprofError(
                f"{dict(zip(GROUP_KEYS, group))} was measured in {len(modes)} run modes ({listed})",
                "compare runs of one mode, or pass --allow-mixed to compare across modes (rows flagged mixed_modes)",
            )
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
        seq = int(grp["seq_len"].iloc[0])
        for _, cand in grp[grp["precision"] != base_name].iterrows():
            same_run = base_rows[base_rows["run_id"] == cand["run_id"]]
            paired = not same_run.empty
            base = same_run.iloc[-1] if paired else base_rows.iloc[-1]
            rows.append(
                _row(
                    group,
                    base,
                    cand,
                    base_rows,
                    paired,
                    seq,
                    lat_rounds,
                    cls_rounds,
                    claims,
                    len(modes) > 1,
                    run_status,
                )
            )
    columns = results.TABLES["comparison"].names
    df = pd.DataFrame(rows, columns=columns)
    if len(df):
        df = _with_noise_floor(df)
        return results.check(df, "comparison")
    return df


def _series(
    table: pd.DataFrame, base: pd.Series, base_rows: pd.DataFrame, cand: pd.Series, paired: bool, seq: int
) -> tuple[pd.Series, pd.Series]:
    c = _values(table, cand["run_id"], cand["precision"], seq)
    if paired:
        return _values(table, base["run_id"], base["precision"], seq), c
    # no baseline in the plan's run: every baseline round of the group, unpaired
    parts = [_values(table, r, base["precision"], seq) for r in base_rows["run_id"].unique()]
    return pd.concat(parts, ignore_index=True) if parts else pd.Series(dtype=float), c


def _row(
    group: tuple,  # type: ignore[type-arg]
    base: pd.Series,
    cand: pd.Series,
    base_rows: pd.DataFrame,
    paired: bool,
    seq: int,
    lat_rounds: pd.DataFrame,
    cls_rounds: Mapping[str, pd.DataFrame],
    claims: Mapping[str, CardCheck],
    mixed: bool,
    run_status: Mapping[str, str] | None,
) -> dict[str, object]:
    series = {"e2e": _series(lat_rounds, base, base_rows, cand, paired, seq)}
    series.update({c: _series(t, base, base_rows, cand, paired, seq) for c, t in cls_rounds.items()})
    e2e = _compare_values(*series["e2e"], paired)
    red = {c: _compare_values(*series[c], paired) for c in cls_rounds}
    # the times the reductions are computed from (median of the round values): the same estimator
    ms = {
        f"{c}_ms_{who}": float(np.median(v)) if len(v) else _NAN
        for c in ("attention", "ffn", "e2e")
        for who, v in zip(("baseline", "plan"), series[c])
    }
    layer_sum = float(base["layer_sum_ms"])
    shares = {
        "attention": float(base["attention_ms"]) / layer_sum if layer_sum > 0 else _NAN,
        "ffn": float(base["ffn_ms"]) / layer_sum if layer_sum > 0 else _NAN,
    }
    shares["other"] = 1.0 - shares["attention"] - shares["ffn"]
    terms = [shares[c] * red[c].reduction for c in ("attention", "ffn", "other")]
    implied = float(np.nansum(terms)) if any(np.isfinite(t) for t in terms) else _NAN
    placebo = placebo_class(str(cand["precision"]))
    pl = red[placebo] if placebo else None
    card = claims.get(base_plan_name(cand["precision"]))
    flags = _flags(base, cand)
    if pl is not None and _leaves(pl, PLACEBO_LIMIT):
        # the CI is what failed (a point of -0 % can have a CI past ±5 %): the flag carries both
        flags.append(
            f"placebo_failed:{placebo}={pl.reduction:+.1%}[{pl.reduction_ci_low:+.1%},{pl.reduction_ci_high:+.1%}]"
        )
    if not paired:
        flags.append("unpaired")
    if mixed:
        flags.append("mixed_modes")
    for rid in dict.fromkeys([cand["run_id"], base["run_id"]]):
        status = (run_status or {}).get(str(rid), "complete")
        if status != "complete":
            flags.append(f"run_incomplete:{status}")
    return {
        "run_id": cand["run_id"],
        "baseline_run_id": base["run_id"],
        **dict(zip(GROUP_KEYS, group)),
        "baseline": base["precision"],
        "precision": cand["precision"],
        "rounds": e2e.rounds,
        "paired": paired,
        **{f"{c}_{k}": v for c in ("attention", "ffn") for k, v in _columns(red[c]).items()},
        "other_reduction": red["other"].reduction,
        **{f"e2e_{k}": v for k, v in _columns(e2e).items()},
        **ms,
        "attention_share_baseline": shares["attention"],
        "ffn_share_baseline": shares["ffn"],
        "profile_implied_e2e_reduction": implied,
        "profile_implied_gap": e2e.reduction - implied,
        "placebo_class": placebo,
        "placebo_reduction": pl.reduction if pl else _NAN,
        "placebo_reduction_ci_low": pl.reduction_ci_low if pl else _NAN,
        "placebo_reduction_ci_high": pl.reduction_ci_high if pl else _NAN,
        "card_implied_e2e_reduction": shares["attention"] * card.attention_reduction if card else _NAN,
        "card_claimed_e2e_low": card.e2e_low if card else _NAN,
        "card_claimed_e2e_high": card.e2e_high if card else _NAN,
        "noise_floor": _NAN,
        "run_mode": cand.get("run_mode", ""),
        "flags": ";".join(flags) or None,
    }


def _columns(c: Comparison) -> dict[str, float]:
    return {
        "reduction": c.reduction,
        "reduction_ci_low": c.reduction_ci_low,
        "reduction_ci_high": c.reduction_ci_high,
        "ratio": c.ratio,
        "ratio_ci_low": c.ratio_ci_low,
        "ratio_ci_high": c.ratio_ci_high,
    }


def placebo_class(label: str) -> str | None:
    """The class a plan leaves untouched and that should therefore not change: for the A/A copy
    of the baseline, attention; for an INT8 plan, the first of FFN / attention it leaves alone."""
    if AA_SUFFIX in str(label):
        return "attention"
    plan = PLANS.get(base_plan_name(label))
    if plan is None or not plan.is_int8:
        return None
    return next((c for c in ("ffn", "attention") if plan.untouched(c)), None)


def _leaves(c: Comparison, limit: float) -> bool:
    """Does the reduction's CI (its point, without a CI) leave ±limit?"""
    lo, hi = c.reduction_ci_low, c.reduction_ci_high
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo = hi = c.reduction
    return bool(math.isfinite(lo) and (lo < -limit or hi > limit))


def _flags(base: pd.Series, cand: pd.Series) -> list[str]:
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
        ratio = row.get("layer_sum_over_e2e")
        kernel = row.get("kernel_time_classes")
        kernel_time = bool(kernel) if kernel is not None and not pd.isna(kernel) else False
        if ratio is not None and np.isfinite(ratio) and ratio > CLASS_TIME_LIMIT and not kernel_time:
            flags.append(f"class_times_exceed_e2e:{who}={ratio:.2f}x")
        trust = row.get("trust_flags")
        if isinstance(trust, str) and trust:
            flags.append(f"{who}:{trust}")
    return flags


# ----------------------------------------------------------------------------- noise floor


def _with_noise_floor(df: pd.DataFrame) -> pd.DataFrame:
    """Every row gets its run and shape's A/A noise floor (NaN without ``--aa-control``)."""
    df = df.copy()
    aa = df[df["precision"].astype(str).str.contains(AA_SUFFIX, regex=False)]
    for r in aa.itertuples(index=False):
        ends = [abs(v) for v in (r.e2e_reduction_ci_low, r.e2e_reduction_ci_high) if np.isfinite(v)]
        floor = max(ends) if ends else abs(float(r.e2e_reduction))
        sel = (df["run_id"] == r.run_id) & (df["seq_len"] == r.seq_len)
        df.loc[sel, "noise_floor"] = floor
    return df


def noise_floors(comparison: pd.DataFrame) -> dict[int, float]:
    """seq_len → the A/A noise floor (the largest over runs), for ``run.json`` and the CLI."""
    if comparison.empty or "noise_floor" not in comparison.columns:
        return {}
    floors = comparison.dropna(subset=["noise_floor"]).groupby("seq_len")["noise_floor"].max()
    return {int(k): float(v) for k, v in floors.items()}


def noise_floor_sentence(floors: Mapping[int, float]) -> str | None:
    """The noise floor in plain words, for the line under the comparison table."""
    if not floors:
        return None
    worst = max(floors.values())
    where = ", ".join(f"seq {s}: {100 * v:.1f} %" for s, v in sorted(floors.items()))
    return (
        f"A/A control: the baseline timed against itself differs by up to {100 * worst:.1f} % ({where}); "
        f"differences under {100 * worst:.1f} % are noise on this machine."
    )


# ----------------------------------------------------------------------------- runs on disk


def run_statuses(run_dirs: Iterable[Path]) -> dict[str, str]:
    """run_id → run.json status for every run directory given (or found one level below)."""
    out: dict[str, str] = {}
    for src in (Path(p) for p in run_dirs):
        dirs = [src] if (src / "run.json").exists() else [p for p in src.iterdir() if (p / "run.json").exists()]
        for d in dirs:
            try:
                run_id = json.loads((d / "run.json").read_text()).get("run_id", d.name)
            except json.JSONDecodeError:
                run_id = d.name
            out[str(run_id)] = results.run_status(d)
    return out


def compare_runs(run_dirs: list, baseline: str | None = None, allow_mixed: bool = False) -> pd.DataFrame:  # type: ignore[type-arg]
    """``orinprof compare``: read one or more run directories and compare (incomplete runs found
    under a parent directory are skipped; named ones are compared and flagged ``run_incomplete``)."""
    summary = results.read_runs(run_dirs, "summary")
    class_times = results.read_runs(run_dirs, "class_times")
    latencies = results.read_runs(run_dirs, "latencies")
    statuses = run_statuses(run_dirs) if all(Path(p).is_dir() for p in run_dirs) else {}
    return compare(summary, class_times, latencies, baseline, allow_mixed=allow_mixed, run_status=statuses)
