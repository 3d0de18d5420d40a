"""Claims × measured results → the ``verdicts`` table, and card 9's Amdahl consistency check.

A verdict is decided from the 95 % CI of the measured metric against the claimed range:
``supported`` (CI inside), ``contradicted`` (CI outside), ``inconclusive`` (CI spans a boundary,
or no CI).  Evidence not from the claim's target is shown with its numbers but gets
``measured-off-target``, never a pass/fail.  On target means what the run's *fingerprint* shows
(:func:`orinprof.identity.device_identity`, the power mode, jetson_clocks), never a device string a
user typed, plus the claim's batch, model kind, sequence range, backend and baseline.

Weak evidence can at most be ``inconclusive`` (results audit §3): a row with any trust flag, fewer
interleaved rounds than the claim needs (a CI over one run's iterations is not a CI over runs), an
untouched (placebo) class whose CI leaves ±5 %, and for class metrics, unattributed time above 5 %
of the layer time or class maps that differ between plan and baseline.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orinprof import results
from orinprof.cards.claims import Claim, Claims
from orinprof.errors import OrinprofError
from orinprof.identity import device_identity
from orinprof.plans import PLANS
from orinprof.results import Column, Table

log = logging.getLogger(__name__)

VERDICTS = ("supported", "contradicted", "inconclusive", "measured-off-target", "no-evidence")
RANGE_CHECKS = ("inside", "outside", "spans-boundary", "no-ci", "missing")

#: Tables a claim may name and ``cards validate`` reads from run directories.
EVIDENCE_TABLES = ("comparison", "summary", "pruning", "outliers")

VERDICTS_TABLE = results.register(
    Table(
        name="verdicts",
        file="verdicts.csv",
        description=(
            "One row per claim × evidence row (model, shape, run): the measured value with its 95% CI "
            "against the range the card's wording implies.  Rows without evidence appear once "
            "with `no-evidence`."
        ),
        keys=("claim_id", "run_ids", "seq_len"),
        columns=(
            Column("claim_id", "str", "claim id in claims.toml"),
            Column("card", "int", "card number in cards.tsv (1-based)"),
            Column("metric", "str", "`table.column` the claim is about"),
            Column("selection", "str", "row filter of the claim, `column=value;…`", nullable=True),
            Column("claimed_low", "float", "lower end of the claimed range", "per metric"),
            Column("claimed_high", "float", "upper end of the claimed range (inf = open)", "per metric"),
            Column("target", "str", "what the claim is about (e.g. `Jetson AGX Orin, TensorRT, vs fp16`)"),
            Column("measured", "float", "measured value", "per metric", nullable=True),
            Column("ci_low", "float", "95% CI lower end", "per metric", nullable=True),
            Column("ci_high", "float", "95% CI upper end", "per metric", nullable=True),
            Column("model", "str", "model", nullable=True),
            Column("backend", "str", "backend", nullable=True),
            Column("device", "str", "device", nullable=True),
            Column("batch", "int", "batch size", nullable=True),
            Column("seq_len", "int", "sequence length", nullable=True),
            Column(
                "run_ids",
                "str",
                "evidence: run ids, `;`-separated (plan run first, then baseline)",
                nullable=True,
            ),
            Column("date", "str", "date of the evidence run (UTC, YYYY-MM-DD)", nullable=True),
            Column("on_target", "bool", "evidence matches the claim's device, backend and baseline"),
            Column("off_target_reason", "str", "why the evidence is off target", nullable=True),
            Column(
                "rounds",
                "int",
                "interleaved rounds behind the CI (1 when the evidence does not say)",
                nullable=True,
            ),
            Column(
                "weak_evidence",
                "str",
                "why on-target evidence cannot pass or fail the claim (flags, rounds, placebo, attribution)",
                nullable=True,
            ),
            Column(
                "amdahl",
                "str",
                "card 9 rows: whether the baseline's attention share lets the card's attention and "
                "end-to-end numbers both hold (the Amdahl check's flag; `consistent` when they can)",
                nullable=True,
            ),
            Column("range_check", "str", "CI vs claimed range: " + ", ".join(f"`{r}`" for r in RANGE_CHECKS)),
            Column("verdict", "str", "one of " + ", ".join(f"`{v}`" for v in VERDICTS)),
            Column("reason", "str", "one line explaining the verdict"),
        ),
    )
)


@dataclass(frozen=True)
class Evidence:
    """Result tables by name, plus each run's ``run.json`` (by run id) for device fingerprints."""

    tables: Mapping[str, pd.DataFrame]
    run_info: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _table_for_file(path: Path) -> str | None:
    for name in EVIDENCE_TABLES:
        if results.TABLES[name].file == path.name:
            return name
    return None


def _complete(run_dir: Path) -> bool:
    """A run directory found inside a folder counts only when complete (a run directory named
    explicitly is always read, as :func:`orinprof.results.read_runs` does)."""
    if not (run_dir / "run.json").exists():
        return True
    status = results.run_status(run_dir)
    if status != "complete":
        log.warning("skipping %s: run is %s (name it explicitly to read it)", run_dir.name, status)
    return status == "complete"


def load_evidence(sources: Iterable[Path]) -> Evidence:
    """Read every evidence table found in run directories (or their parents, or CSV files).

    Schema versions are checked by :func:`orinprof.results.read_table` (``run.json``)."""
    frames: dict[str, list[pd.DataFrame]] = {}
    run_info: dict[str, Mapping[str, Any]] = {}

    def read_dir(d: Path) -> bool:
        found = False
        for name in EVIDENCE_TABLES:
            if (d / results.TABLES[name].file).exists():
                frames.setdefault(name, []).append(results.read_table(d, name))
                found = True
        if found and (d / "run.json").exists():
            info = json.loads((d / "run.json").read_text())  # read_table has already validated it
            run_info[str(info.get("run_id", d.name))] = info
        return found

    sources = list(sources)
    if not sources:
        raise OrinprofError("no results given", "pass run directories written by `orinprof profile`/`compare`")
    for src in map(Path, sources):
        if not src.exists():
            raise OrinprofError(f"{src} does not exist", "pass run directories or result CSV files")
        if src.is_file():
            name = _table_for_file(src)
            if name is None:
                raise OrinprofError(
                    f"{src.name} is not an evidence table",
                    "expected one of " + ", ".join(results.TABLES[n].file for n in EVIDENCE_TABLES),
                )
            frames.setdefault(name, []).append(results.read_table(src, name))
            continue
        # the folder itself and the run directories in it: a folder may hold both (a published
        # set keeps outliers.csv beside its run directories)
        own = read_dir(src)
        subs = [p for p in sorted(src.iterdir()) if p.is_dir() and _complete(p) and read_dir(p)]
        if not own and not subs:
            raise OrinprofError(
                f"no {', '.join(results.TABLES[n].file for n in EVIDENCE_TABLES)} in {src} or its subdirectories",
                "run `orinprof compare` first, or pass the directory it wrote",
            )
    tables = {name: pd.concat(dfs, ignore_index=True) for name, dfs in frames.items()}
    return Evidence(tables, run_info)


# --------------------------------------------------------------------------- validate


def _select(df: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    for key, value in where.items():
        col = df[key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            mask &= pd.to_numeric(col, errors="coerce") == value
        else:
            mask &= col.astype(str) == str(value)
    return df[mask]


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def range_check(ci_low: float, ci_high: float, low: float, high: float, measured: float) -> str:
    """Where the CI lies against ``[low, high]``."""
    if not np.isfinite(measured):
        return "missing"
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "no-ci"
    if ci_low >= low and ci_high <= high:
        return "inside"
    if ci_high < low or ci_low > high:
        return "outside"
    return "spans-boundary"


def _date(run_id: str | None, info: Mapping[str, Any] | None) -> str | None:
    if info and info.get("created_utc"):
        return str(info["created_utc"])[:10]
    if run_id:
        m = re.match(r"(\d{4})(\d{2})(\d{2})T", run_id)
        if m:
            return "-".join(m.groups())
    return None


#: share of layer time in `unattributed` above which class times are not trusted (issue 10 item 1)
UNATTRIBUTED_LIMIT = 0.05
#: an untouched (placebo) class must stay within ±this (issue 10 item 3)
PLACEBO_LIMIT = 0.05
#: summary columns that identify a run's class map, if the run records one (first found is used)
CLASS_MAP_COLUMNS = ("class_map_sha256", "class_map_id", "class_map")
#: layer classes whose placebo is checked: the untouched one(s) of the compared plan
PLACEBO_CLASSES = ("attention", "ffn")


@dataclass(frozen=True)
class RunFacts:
    """What one run's records say about where and how it ran: ``run.json``'s fingerprint first, its
    summary rows (which copy the fingerprint's columns) second."""

    run_id: str
    device_id: str | None = None
    fingerprinted: bool = False
    power_mode: str | None = None
    clocks: str | None = None
    unattributed_share: float = float("nan")
    class_map: str | None = None


def _first(rows: pd.DataFrame, column: str) -> Any:
    if column not in rows.columns:
        return None
    values = rows[column].dropna()
    return values.iloc[0] if len(values) else None


def run_facts(run_id: str, summary: pd.DataFrame | None, info: Mapping[str, Any] | None) -> RunFacts:
    fp = info.get("fingerprint") if info else None
    fp = fp if isinstance(fp, Mapping) else {}
    rows = (
        summary[summary["run_id"].astype(str) == run_id]
        if summary is not None and "run_id" in summary.columns
        else pd.DataFrame()
    )
    from_summary = {k: _first(rows, k) for k in ("device_id", "module_part", "nvpmodel_name", "jetson_clocks")}
    device = device_identity(fp) or device_identity(from_summary)
    power = fp.get("nvpmodel_name") or from_summary["nvpmodel_name"]
    clocks = fp.get("jetson_clocks") or from_summary["jetson_clocks"]
    share = float("nan")
    if len(rows) and {"unattributed_ms", "layer_sum_ms"} <= set(rows.columns):
        unattributed = pd.to_numeric(rows["unattributed_ms"], errors="coerce").fillna(0.0).sum()
        layer_sum = pd.to_numeric(rows["layer_sum_ms"], errors="coerce").sum()
        share = float(unattributed / layer_sum) if layer_sum > 0 else float("nan")
    class_map = next((_text(_first(rows, c)) for c in CLASS_MAP_COLUMNS if _first(rows, c) is not None), None)
    return RunFacts(
        run_id=run_id,
        device_id=device,
        fingerprinted=device is not None,
        power_mode=_text(power),
        clocks=_text(clocks),
        unattributed_share=share,
        class_map=class_map,
    )


def _model_kind(model: str) -> str | None:
    from orinprof import models

    try:
        return models.get(model).kind
    except OrinprofError:
        return None


def _target_check(claim: Claim, row: Mapping[str, Any], runs: list[RunFacts]) -> list[str]:
    reasons = []
    for run in runs if (claim.devices or claim.power_mode or claim.clocks_locked) else []:
        who = f"run {run.run_id}" if len(runs) > 1 else "the run"
        if claim.devices and run.device_id is None:
            wanted = "/".join(claim.devices)
            reasons.append(f"{who}: no device fingerprint shows {wanted} (a typed device never counts)")
        elif claim.devices and run.device_id not in claim.devices:
            reasons.append(f"{who}: device {run.device_id} is not {'/'.join(claim.devices)}")
        if claim.power_mode and (run.power_mode or "").upper() != claim.power_mode.upper():
            reasons.append(f"{who}: power mode {run.power_mode or 'not recorded'}, not {claim.power_mode}")
        if claim.clocks_locked and run.clocks != "on":
            reasons.append(f"{who}: clocks not locked (jetson_clocks {run.clocks or 'not recorded'})")
    kind = _text(row.get("device_kind"))
    if claim.device_kinds and kind not in claim.device_kinds:
        reasons.append(f"device kind {kind or '?'} not in {'/'.join(claim.device_kinds)}")
    backend = str(row.get("backend", ""))
    if claim.backends and backend not in claim.backends:
        reasons.append(f"backend {backend or '?'} not in {'/'.join(claim.backends)}")
    if claim.baseline is not None and "baseline" in row and str(row["baseline"]) != claim.baseline:
        reasons.append(f"baseline {row['baseline']} ≠ {claim.baseline}")
    batch = _num(row.get("batch"))
    if claim.batch is not None and batch != claim.batch:
        reasons.append(f"batch {row.get('batch')} ≠ {claim.batch}")
    model = str(row.get("model", "?"))
    if claim.model_kind is not None:
        model_kind = _model_kind(model)
        if model_kind is None:
            reasons.append(f"model kind of {model} unknown (not a preset), the claim needs {claim.model_kind}")
        elif model_kind != claim.model_kind:
            reasons.append(f"{model} is of kind {model_kind}, the claim needs {claim.model_kind}")
    seq = _num(row.get("seq_len"))
    if claim.seq_range is not None and not claim.seq_range[0] <= seq <= claim.seq_range[1]:
        reasons.append(f"seq {row.get('seq_len')} outside {claim.seq_range[0]}–{claim.seq_range[1]}")
    return reasons


def rounds_of(row: Mapping[str, Any]) -> int:
    """Interleaved rounds behind a row's CI; rows that do not say are one run per plan."""
    n = _num(row.get("rounds"))
    return int(n) if np.isfinite(n) and n >= 1 else 1


def _placebo(claim: Claim, row: Mapping[str, Any]) -> list[str]:
    plan = PLANS.get(str(row.get("precision", "")))
    if claim.table != "comparison" or plan is None:
        return []
    out = []
    for cls in PLACEBO_CLASSES:
        if not plan.untouched(cls):
            continue
        lo, hi = _num(row.get(f"{cls}_reduction_ci_low")), _num(row.get(f"{cls}_reduction_ci_high"))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            out.append(f"placebo {cls} not measured (no CI)")
        elif lo < -PLACEBO_LIMIT or hi > PLACEBO_LIMIT:
            out.append(f"placebo failed: untouched {cls} moved [{lo:+.1%}, {hi:+.1%}], beyond ±{PLACEBO_LIMIT:.0%}")
    return out


def _attribution(claim: Claim, runs: list[RunFacts]) -> list[str]:
    if claim.table != "comparison" or not claim.column.endswith("_reduction") or claim.column == "e2e_reduction":
        return []  # end-to-end time does not depend on how layers are attributed to classes
    out = []
    for run in runs:
        if not np.isfinite(run.unattributed_share):
            out.append(f"attribution not checkable: no summary row with layer times for run {run.run_id}")
        elif run.unattributed_share > UNATTRIBUTED_LIMIT:
            out.append(f"run {run.run_id}: unattributed {run.unattributed_share:.1%} of layer time")
    maps = {run.class_map for run in runs if run.class_map is not None}
    if len(maps) > 1:
        out.append("class maps differ between plan and baseline")
    return out


def weak_evidence(claim: Claim, row: Mapping[str, Any], runs: list[RunFacts], rounds_needed: int) -> list[str]:
    """Why an on-target row cannot decide the claim; empty when it can."""
    out = []
    flags = _text(row.get("flags"))
    if flags:
        out.append(f"trust flags: {flags}")
    rounds = rounds_of(row)
    if rounds < rounds_needed:
        plural = "s" if rounds != 1 else ""
        out.append(f"{rounds} round{plural} of evidence, {rounds_needed} needed for a CI over rounds")
    out += _placebo(claim, row)
    out += _attribution(claim, runs)
    return out


def _amdahl_note(claim: Claim, row: Mapping[str, Any], amdahl: AmdahlClaim | None) -> str | None:
    """The Amdahl check of a card-9 int8-attn comparison row, beside its verdict (audit §3.6)."""
    if amdahl is None or claim.card != 9 or claim.table != "comparison" or str(row.get("precision")) != "int8-attn":
        return None
    share = _num(row.get("attention_share_baseline"))
    if not np.isfinite(share):
        return None
    return amdahl_flag(share, amdahl)[1] or "consistent"


def _verdict(on_target: bool, check: str, weak: bool = False) -> str:
    if check == "missing":
        return "no-evidence"
    if not on_target:
        return "measured-off-target"
    if weak:
        return "inconclusive"
    return {"inside": "supported", "outside": "contradicted"}.get(check, "inconclusive")


_REASONS = {
    "inside": "95% CI inside the claimed range",
    "outside": "95% CI entirely outside the claimed range",
    "spans-boundary": "95% CI spans a boundary of the claimed range",
    "no-ci": "no confidence interval (too few iterations)",
    "missing": "the metric is missing (NaN) in this row",
}


def validate(evidence: Evidence | Mapping[str, pd.DataFrame], claims: Claims) -> pd.DataFrame:
    """The ``verdicts`` table: every claim against every matching evidence row."""
    if not isinstance(evidence, Evidence):
        evidence = Evidence(dict(evidence))
    summary = evidence.tables.get("summary")
    try:
        amdahl: AmdahlClaim | None = amdahl_claim_from(claims)
    except OrinprofError:  # claims without card 9's pair: no Amdahl column to fill
        amdahl = None
    rows: list[dict[str, Any]] = []
    for claim in claims.claims:
        selection = ";".join(f"{k}={v}" for k, v in claim.where.items()) or None
        base = {
            "claim_id": claim.id,
            "card": claim.card,
            "metric": claim.metric,
            "selection": selection,
            "claimed_low": claim.low,
            "claimed_high": claim.high,
            "target": claim.target,
        }
        df = evidence.tables.get(claim.table)
        if df is not None and len(df) and claim.column not in df.columns:
            raise OrinprofError(
                f"{claims.source}: claim {claim.id}: metric {claim.metric} is not in the {claim.table} "
                "results "
                f"(columns: {', '.join(map(str, df.columns))})",
                "fix the claim's metric or re-run `orinprof compare` with this orinprof version",
            )
        for key in claim.where:
            if df is not None and len(df) and key not in df.columns:
                raise OrinprofError(f"{claims.source}: claim {claim.id}: where.{key} is not a column of {claim.table}")
        selected = _select(df, claim.where) if df is not None and len(df) else None
        if selected is None or selected.empty:
            why = f"no {claim.table} rows" if df is None or not len(df) else f"no {claim.table} rows with {selection}"
            rows.append(
                {
                    **base,
                    "on_target": False,
                    "range_check": "missing",
                    "verdict": "no-evidence",
                    "reason": why,
                }
            )
            continue
        for record in selected.to_dict("records"):
            run_id = _text(record.get("run_id"))
            info = evidence.run_info.get(run_id or "")
            measured = _num(record.get(claim.column))
            lo = _num(record.get(f"{claim.column}_ci_low"))
            hi = _num(record.get(f"{claim.column}_ci_high"))
            run_ids = list(dict.fromkeys(x for x in (run_id, _text(record.get("baseline_run_id"))) if x))
            runs = [run_facts(r, summary, evidence.run_info.get(r)) for r in run_ids]
            off = _target_check(claim, record, runs)
            check = range_check(lo, hi, claim.low, claim.high, measured)
            weak = weak_evidence(claim, record, runs, claims.rounds_needed(claim)) if not off else []
            verdict = _verdict(not off, check, bool(weak))
            if off:
                reason = "off target: " + "; ".join(off) + f" (CI vs range: {check})"
            elif weak and check in ("inside", "outside"):
                reason = f"{_REASONS[check]}, but the evidence is weak: " + "; ".join(weak)
            else:
                reason = _REASONS[check]
            rows.append(
                {
                    **base,
                    "measured": measured,
                    "ci_low": lo,
                    "ci_high": hi,
                    "model": _text(record.get("model")),
                    "backend": _text(record.get("backend")),
                    "device": _text(record.get("device")),
                    "batch": record.get("batch"),
                    "seq_len": record.get("seq_len"),
                    "run_ids": ";".join(run_ids) or None,
                    "date": _date(run_id, info),
                    "on_target": not off,
                    "off_target_reason": "; ".join(off) or None,
                    "rounds": rounds_of(record),
                    "weak_evidence": "; ".join(weak) or None,
                    "amdahl": _amdahl_note(claim, record, amdahl),
                    "range_check": check,
                    "verdict": verdict,
                    "reason": reason,
                }
            )
    out = pd.DataFrame(rows, columns=VERDICTS_TABLE.names)
    for col in ("batch", "seq_len", "card", "rounds"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("Int64")
    out["on_target"] = out["on_target"].astype(bool)
    return results.check(out, "verdicts")


# --------------------------------------------------------------------------- Amdahl (card 9)


@dataclass(frozen=True)
class AmdahlClaim:
    """Card 9 as numbers: attention-only reduction claimed, and the end-to-end range claimed for it."""

    attention_reduction: float = 0.40
    attention_low: float = 0.35
    attention_high: float = 0.45
    e2e_low: float = 0.25
    e2e_high: float = 0.35

    @property
    def required_share(self) -> tuple[float, float]:
        """Attention share of baseline time that −attention_reduction on attention alone needs to give
        an end-to-end reduction inside [e2e_low, e2e_high] (Amdahl: e2e = share × reduction)."""
        return self.e2e_low / self.attention_reduction, min(1.0, self.e2e_high / self.attention_reduction)

    @property
    def tolerant_share(self) -> tuple[float, float]:
        """Shares at which *some* attention reduction inside the claimed range gives *some*
        end-to-end reduction inside its range: the reading ``consistent`` tests."""
        return self.e2e_low / self.attention_high, min(1.0, self.e2e_high / self.attention_low)


def amdahl_claim_from(claims: Claims, card: int = 9) -> AmdahlClaim:
    """Read card 9's numbers from claims.toml (attention claim + the int8-attn end-to-end claim)."""
    att = [c for c in claims.for_card(card) if c.metric == "comparison.attention_reduction"]
    e2e = [
        c
        for c in claims.for_card(card)
        if c.metric == "comparison.e2e_reduction" and c.where.get("precision") == "int8-attn"
    ]
    if not att or not e2e:
        raise OrinprofError(
            f"{claims.source}: card {card} needs a comparison.attention_reduction claim and a "
            "comparison.e2e_reduction claim with where.precision = 'int8-attn' for the Amdahl check"
        )
    a, e = att[0], e2e[0]
    return AmdahlClaim(a.claimed if a.claimed is not None else (a.low + a.high) / 2, a.low, a.high, e.low, e.high)


def card9_ranges(claims_file: Path) -> dict[str, tuple[float, float]]:
    """Card 9's claimed ranges by comparison column (``attention_reduction``, ``e2e_reduction``, for
    the int8-attn plan), read from the claims file: what the report shades and the roofline's card
    crossing tests."""
    from orinprof.cards.claims import load_claims

    claims = load_claims(claims_file)
    return {col: claims.card_range(9, col, "int8-attn") for col in ("attention_reduction", "e2e_reduction")}


AMDAHL_COLUMNS = (
    "model",
    "backend",
    "device",
    "seq_len",
    "run_id",
    "attention_share_baseline",
    "ffn_share_baseline",
    "implied_e2e_at_claim",
    "implied_e2e_low",
    "implied_e2e_high",
    "attention_reduction",
    "implied_e2e_at_measured",
    "e2e_reduction",
    "required_share_low",
    "required_share_high",
    "required_share_at_claim_low",
    "required_share_at_claim_high",
    "consistent",
    "reachable_at_seq_lens",
    "flag",
)


def amdahl_flag(share: float, claim: AmdahlClaim) -> tuple[bool, str]:
    """(consistent, flag) of one baseline attention share: can the card's two numbers both hold?
    ``consistent`` is the tolerant reading (some attention reduction inside the claimed range gives
    some end-to-end reduction inside its range); the flag also names a share that holds only at the
    edges, so a share just inside the tolerant range is not shown as plainly fine (audit §3.6)."""
    req_lo, req_hi = claim.tolerant_share
    point_lo, point_hi = claim.required_share
    if not np.isfinite(share):
        return False, ""
    consistent = bool(share * claim.attention_high >= claim.e2e_low and share * claim.attention_low <= claim.e2e_high)
    if not consistent:
        return False, (
            f"card 9 cannot hold as a whole here: attention share {share:.2f} × "
            f"{claim.attention_reduction:.0%} = {share * claim.attention_reduction:.1%} end-to-end, "
            f"but {claim.e2e_low:.0%}–{claim.e2e_high:.0%} needs an attention share of {req_lo:.1%}–{req_hi:.1%}"
        )
    if not point_lo <= share <= point_hi:
        return True, (
            f"card 9 holds here only at the edge of its ranges: at exactly {claim.attention_reduction:.0%} on "
            f"attention, {claim.e2e_low:.0%}–{claim.e2e_high:.0%} end-to-end needs a share of "
            f"{point_lo:.1%}–{point_hi:.1%}, not {share:.1%}"
        )
    return True, ""


def amdahl_check(comparison: pd.DataFrame, claim: AmdahlClaim | None = None) -> pd.DataFrame:
    """Per ``int8-attn`` comparison row: what end-to-end reduction the claimed attention reduction
    implies at the measured attention share, what share the claimed 25–35 % would need, and whether
    the card's two numbers can both hold for that model and shape (Amdahl: only attention changes)."""
    claim = claim or AmdahlClaim()
    needed = [
        "attention_share_baseline",
        "ffn_share_baseline",
        "attention_reduction",
        "e2e_reduction",
        "precision",
    ]
    missing = [c for c in needed if c not in comparison.columns]
    if missing:
        raise OrinprofError(
            f"comparison results lack {', '.join(missing)}",
            "pass comparison.csv written by `orinprof compare`",
        )
    rows = comparison[comparison["precision"].astype(str) == "int8-attn"]
    req_lo, req_hi = claim.tolerant_share  # what `consistent` tests, so "needs" and "ok" agree
    point_lo, point_hi = claim.required_share
    out = []
    for r in rows.to_dict("records"):
        share = _num(r["attention_share_baseline"])
        consistent, flag = amdahl_flag(share, claim)
        out.append(
            {
                "model": r.get("model"),
                "backend": r.get("backend"),
                "device": r.get("device"),
                "seq_len": r.get("seq_len"),
                "run_id": r.get("run_id"),
                "attention_share_baseline": share,
                "ffn_share_baseline": _num(r["ffn_share_baseline"]),
                "implied_e2e_at_claim": share * claim.attention_reduction,
                "implied_e2e_low": share * claim.attention_low,
                "implied_e2e_high": share * claim.attention_high,
                "attention_reduction": _num(r["attention_reduction"]),
                "implied_e2e_at_measured": share * _num(r["attention_reduction"]),
                "e2e_reduction": _num(r["e2e_reduction"]),
                "required_share_low": req_lo,
                "required_share_high": req_hi,
                "required_share_at_claim_low": point_lo,
                "required_share_at_claim_high": point_hi,
                "consistent": consistent,
                "flag": flag,
            }
        )
    df = pd.DataFrame(out, columns=[c for c in AMDAHL_COLUMNS if c != "reachable_at_seq_lens"])
    if df.empty:
        df["reachable_at_seq_lens"] = pd.Series(dtype=str)
        return df[list(AMDAHL_COLUMNS)]
    keys = ["model", "backend", "device"]
    reach = (
        df[df["consistent"]]
        .groupby(keys, dropna=False)["seq_len"]
        .apply(lambda s: ",".join(str(int(v)) for v in sorted(s.dropna().unique())))
        .rename("reachable_at_seq_lens")
    )
    df = df.merge(reach, how="left", left_on=keys, right_index=True)
    df["reachable_at_seq_lens"] = df["reachable_at_seq_lens"].astype(object).fillna("none measured")
    return df.sort_values(["model", "backend", "device", "seq_len"]).reset_index(drop=True)[list(AMDAHL_COLUMNS)]


def seq_sweep_table(comparison: pd.DataFrame, claim: AmdahlClaim | None = None) -> pd.DataFrame:
    """Attention share and the reductions against sequence length (for ``sweep-seq``): the Amdahl
    rows plus the ``int8-all`` end-to-end reduction of the same model, shape and backend."""
    table = amdahl_check(comparison, claim)
    all_rows = comparison[comparison["precision"].astype(str) == "int8-all"]
    if not all_rows.empty:
        extra = all_rows[["model", "backend", "device", "seq_len", "e2e_reduction"]].rename(
            columns={"e2e_reduction": "e2e_reduction_int8_all"}
        )
        table = table.merge(extra, how="left", on=["model", "backend", "device", "seq_len"])
    else:
        table["e2e_reduction_int8_all"] = np.nan
    return table


# --------------------------------------------------------------------------- output files


def unused_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.ext``, ``stem-2.ext`` …: results are never overwritten."""
    path = Path(path)
    if not path.exists():
        return path
    for i in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            log.info("%s exists; writing %s instead", path, candidate)
            return candidate
    raise OrinprofError(f"too many files named like {path}", "pass a new --out path")  # pragma: no cover


def write_table_file(df: pd.DataFrame, table: str, out: Path) -> Path:
    """Write a checked table as CSV without overwriting anything; returns the path written."""
    out = Path(out)
    if not out.parent.exists():
        raise OrinprofError(f"directory {out.parent} does not exist", "create it or pass another --out")
    target = unused_path(out)
    tmp = target.with_name(target.name + ".tmp")
    results.check(df, table).to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, target)
    return target


def write_verdicts(verdicts: pd.DataFrame, out: Path) -> Path:
    """Write the verdicts CSV (a suffix is added if ``out`` exists); returns the path written."""
    return write_table_file(verdicts, "verdicts", out)


def verdicts_from(sources: Iterable[Path], claims: Claims) -> pd.DataFrame:
    """Verdicts for the Anki export: a saved verdicts CSV as is, else validate the given results."""
    sources = [Path(s) for s in sources]
    saved = [s for s in sources if s.is_file() and s.suffix == ".csv" and s.name.startswith("verdicts")]
    if saved and len(saved) == len(sources):
        frames = [results.read_table(s, "verdicts") for s in saved]
        return pd.concat(frames, ignore_index=True)
    if saved:
        raise OrinprofError("mix of verdicts CSVs and results given", "pass either verdicts CSVs or run directories")
    return validate(load_evidence(sources), claims)
