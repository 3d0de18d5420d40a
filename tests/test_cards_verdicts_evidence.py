"""Verdicts refuse weak evidence: every case of the results audit §3 (3.1-3.5) that ``validate()``
called *supported* (or *contradicted*) before, with the verdict it must give now; and 3.6: the
Amdahl check says what it tests and stands beside card 9's verdicts.

The strong case is built from what a real on-target run records: ``run.json``'s fingerprint with
the module P-number (``telemetry.fingerprint``), the summary rows of the plan and baseline runs, and
a comparison row with a CI over rounds and the untouched class (placebo) inside ±5 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import factories
from conftest import REPO
from orinprof import results
from orinprof.cards import Evidence, amdahl_check, amdahl_claim_from, load_claims, read_cards, validate

PLAN_RUN = "20250101T000000-bert-base-tensorrt-ab12"
BASE_RUN = "20250101T000000-bert-base-tensorrt-cd34"

#: what fingerprint() records on an AGX Orin 64GB in MAXN with jetson_clocks on
ORIN_64_MAXN = {
    "device_model": "NVIDIA Jetson AGX Orin Developer Kit",
    "module_part": "p3701-0005",
    "device_id": "agx-orin-64gb",
    "nvpmodel_name": "MAXN",
    "jetson_clocks": "on",
}


@pytest.fixture(scope="module")
def claims():  # type: ignore[no-untyped-def]
    return load_claims(REPO / "claims.toml", read_cards(REPO / "cards.tsv"))


def comparison_row(**over: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(
        run_id=PLAN_RUN,
        baseline_run_id=BASE_RUN,
        **factories.BERT_BASE_TRT,
        device="Orin",
        baseline="fp16",
        precision="int8-attn",
        attention_reduction=0.40,
        attention_reduction_ci_low=0.37,
        attention_reduction_ci_high=0.43,
        ffn_reduction=0.0,
        ffn_reduction_ci_low=-0.02,
        ffn_reduction_ci_high=0.02,
        e2e_reduction=0.30,
        e2e_reduction_ci_low=0.27,
        e2e_reduction_ci_high=0.33,
        attention_share_baseline=0.7,
        ffn_share_baseline=0.2,
        rounds=5,
        flags="",
    )
    return factories.comparison_row(**{**defaults, **over})


def summary_row(run_id: str, precision: str, **over: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(
        run_id=run_id,
        **factories.BERT_BASE_TRT,
        precision=precision,
        device="Orin",
        device_kind="jetson",
        class_ms={"other_ms": 10.0},  # layer_sum_ms 10, unattributed_ms 0
    )
    return factories.summary_row(**{**defaults, **over})


def evidence(
    row: dict[str, Any] | None = None,
    fingerprint: dict[str, Any] | None = None,
    summary: list[dict[str, Any]] | None = None,
    run_json: bool = True,
) -> Evidence:
    fp = {**ORIN_64_MAXN, **(fingerprint or {})}
    info = {rid: {"run_id": rid, "fingerprint": fp} for rid in (PLAN_RUN, BASE_RUN)} if run_json else {}
    if summary is None:
        summary = [summary_row(PLAN_RUN, "int8-attn"), summary_row(BASE_RUN, "fp16")]
    tables = {"comparison": pd.DataFrame([row or comparison_row()]), "summary": pd.DataFrame(summary)}
    return Evidence(tables, info)


def verdict(claims, ev: Evidence, claim_id: str = "c9-attention") -> pd.Series:  # type: ignore[no-untyped-def]
    v = validate(ev, claims)
    return v[v["claim_id"] == claim_id].iloc[0]


def test_strong_on_target_evidence_is_judged(claims) -> None:  # type: ignore[no-untyped-def]
    # the control for every case below: the same evidence without the weakness is supported
    v = verdict(claims, evidence())
    assert (v["verdict"], bool(v["on_target"]), v["rounds"]) == ("supported", True, 5)
    e2e = verdict(claims, evidence(), "c9-e2e-int8-attn")
    assert e2e["verdict"] == "supported"
    low = comparison_row(attention_reduction=0.1, attention_reduction_ci_low=0.08, attention_reduction_ci_high=0.12)
    assert verdict(claims, evidence(low))["verdict"] == "contradicted"


# ---------------------------------------------------------------- 3.1 trust flags


@pytest.mark.parametrize(
    "flags",
    [
        "power_mode_differs:MAXN→MODE_15W",
        "noisy_plan:cv=0.30",
        "plan:temp_near_throttle",
        "baseline:nvml_throttle:sw_thermal",
        "placebo_failed",
    ],
)
def test_any_trust_flag_caps_the_verdict_at_inconclusive(claims, flags: str) -> None:  # type: ignore[no-untyped-def]
    v = verdict(claims, evidence(comparison_row(flags=flags)))
    assert v["verdict"] == "inconclusive" and v["range_check"] == "inside"
    assert flags in v["weak_evidence"]
    low = comparison_row(flags=flags, attention_reduction_ci_low=0.05, attention_reduction_ci_high=0.1)
    assert verdict(claims, evidence(low))["verdict"] == "inconclusive"  # not contradicted either


# ---------------------------------------------------------------- 3.2 on target = the fingerprint


@pytest.mark.parametrize(
    ("fingerprint", "why"),
    [
        ({"module_part": "p3701-0004", "device_id": "agx-orin-32gb"}, "agx-orin-32gb"),
        ({"module_part": "p3701-0000", "device_id": None}, "agx-orin-devkit-p3701-0000"),
        ({"nvpmodel_name": "MODE_15W"}, "power mode MODE_15W"),
        ({"jetson_clocks": "off"}, "clocks not locked"),
        ({"jetson_clocks": None}, "clocks not locked"),
    ],
)
def test_on_target_needs_the_claimed_module_in_maxn_with_locked_clocks(  # type: ignore[no-untyped-def]
    claims, fingerprint: dict[str, Any], why: str
) -> None:
    v = verdict(claims, evidence(fingerprint=fingerprint))
    assert v["verdict"] == "measured-off-target"
    assert why in v["off_target_reason"]


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"batch": 16}, "batch 16"),
        ({"model": "llama-4l", "seq_len": 2048}, "decoder"),
        ({"model": "my-model.onnx"}, "model kind of my-model.onnx unknown"),
    ],
)
def test_on_target_needs_the_claims_batch_and_model_kind(claims, over: dict[str, Any], why: str) -> None:  # type: ignore[no-untyped-def]
    v = verdict(claims, evidence(comparison_row(**over)))
    assert v["verdict"] == "measured-off-target"
    assert why in v["off_target_reason"]


def test_a_typed_device_string_is_never_on_target(claims) -> None:  # type: ignore[no-untyped-def]
    # `orinprof ingest trtexec --device "NVIDIA Jetson AGX Orin 64GB"`: run.json has no device
    # fingerprint (ingest writes only fused_mha/myelin facts), the summary only the typed string
    ingest_fp = {"fused_mha": True, "myelin_regions": 0, "precisions": ["fp16", "int8"]}
    typed = "NVIDIA Jetson AGX Orin 64GB MAXN"
    ev = evidence(
        comparison_row(device=typed, backend="trtexec"),
        summary=[
            summary_row(PLAN_RUN, "int8-attn", device=typed, backend="trtexec"),
            summary_row(BASE_RUN, "fp16", device=typed, backend="trtexec"),
        ],
    )
    ev = Evidence(ev.tables, {rid: {"run_id": rid, "fingerprint": ingest_fp} for rid in (PLAN_RUN, BASE_RUN)})
    v = verdict(claims, ev)
    assert v["verdict"] == "measured-off-target"
    assert "no device fingerprint" in v["off_target_reason"]


def test_summary_device_identity_stands_in_for_run_json(claims) -> None:  # type: ignore[no-untyped-def]
    # CSV-only evidence: the summary rows carry the fingerprint's columns (fingerprint.SUMMARY_KEYS)
    facts = {k: ORIN_64_MAXN[k] for k in ("device_id", "module_part", "nvpmodel_name", "jetson_clocks")}
    summary = [summary_row(PLAN_RUN, "int8-attn", **facts), summary_row(BASE_RUN, "fp16", **facts)]
    assert verdict(claims, evidence(summary=summary, run_json=False))["verdict"] == "supported"
    summary[1]["device_id"] = "agx-orin-32gb"  # the baseline ran elsewhere
    v = verdict(claims, evidence(summary=summary, run_json=False))
    assert v["verdict"] == "measured-off-target" and BASE_RUN in v["off_target_reason"]


# ---------------------------------------------------------------- 3.3 rounds, not iterations


@pytest.mark.parametrize("rounds", [None, 1, 4])
def test_fewer_rounds_than_required_cannot_decide(claims, rounds: int | None) -> None:  # type: ignore[no-untyped-def]
    row = comparison_row(rounds=rounds if rounds is not None else np.nan)
    if rounds is None:
        del row["rounds"]  # a comparison.csv from before rounds existed: one run per plan
    v = verdict(claims, evidence(row))
    assert v["verdict"] == "inconclusive" and v["range_check"] == "inside"
    assert f"{rounds or 1} round" in v["weak_evidence"] and "5 needed" in v["weak_evidence"]


def test_card_10_from_two_single_runs_is_inconclusive(claims) -> None:  # type: ignore[no-untyped-def]
    # audit 3.3: c10 was published `contradicted` at -15.0 % [-18.0, -10.4] from one run per variant
    row = {
        "run_id": "77b7",
        "baseline_run_id": "a050",
        "model": "bert-base",
        "backend": "onnxruntime",
        "device": "AMD EPYC",
        "device_kind": "cpu",
        "batch": 1,
        "seq_len": 128,
        "variant": "layers-minus-1 vs heads-minus-3",
        "variant_kind": "layers-vs-heads",
        "params_removed_fraction": 0.083,
        "e2e_reduction": -0.150,
        "e2e_reduction_ci_low": -0.180,
        "e2e_reduction_ci_high": -0.104,
        "status": "ok",
    }
    v = verdict(claims, Evidence({"pruning": pd.DataFrame([row])}), "c10-layers-vs-heads")
    assert (v["range_check"], v["verdict"]) == ("outside", "inconclusive")
    five = verdict(claims, Evidence({"pruning": pd.DataFrame([{**row, "rounds": 5}])}), "c10-layers-vs-heads")
    assert five["verdict"] == "contradicted"


# ---------------------------------------------------------------- 3.4 placebo and attribution


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"ffn_reduction": -0.24, "ffn_reduction_ci_low": -0.3, "ffn_reduction_ci_high": -0.18}, "placebo"),
        ({"ffn_reduction_ci_low": -0.02, "ffn_reduction_ci_high": 0.09}, "placebo"),
        ({"ffn_reduction_ci_low": np.nan, "ffn_reduction_ci_high": np.nan}, "placebo ffn not measured"),
    ],
)
def test_a_failed_placebo_class_caps_the_verdict(claims, over: dict[str, Any], why: str) -> None:  # type: ignore[no-untyped-def]
    v = verdict(claims, evidence(comparison_row(**over)))
    assert v["verdict"] == "inconclusive" and why in v["weak_evidence"]
    assert verdict(claims, evidence(comparison_row(**over)), "c9-e2e-int8-attn")["verdict"] == "inconclusive"


def test_unattributed_time_over_5_percent_caps_class_verdicts(claims) -> None:  # type: ignore[no-untyped-def]
    summary = [summary_row(PLAN_RUN, "int8-attn", unattributed_ms=0.6), summary_row(BASE_RUN, "fp16")]
    v = verdict(claims, evidence(summary=summary))
    assert v["verdict"] == "inconclusive" and "unattributed 6.0%" in v["weak_evidence"]
    # an end-to-end claim does not depend on attribution
    assert verdict(claims, evidence(summary=summary), "c9-e2e-int8-attn")["verdict"] == "supported"
    ok = [summary_row(PLAN_RUN, "int8-attn", unattributed_ms=0.4), summary_row(BASE_RUN, "fp16")]
    assert verdict(claims, evidence(summary=ok))["verdict"] == "supported"


def test_class_verdicts_need_the_summary_rows_and_one_class_map(claims) -> None:  # type: ignore[no-untyped-def]
    v = verdict(claims, evidence(summary=[summary_row(BASE_RUN, "fp16")]))
    assert v["verdict"] == "inconclusive" and "attribution not checkable" in v["weak_evidence"]
    differ = [
        summary_row(PLAN_RUN, "int8-attn", class_map_sha256="aaa"),
        summary_row(BASE_RUN, "fp16", class_map_sha256="bbb"),
    ]
    v = verdict(claims, evidence(summary=differ))
    assert v["verdict"] == "inconclusive" and "class maps differ" in v["weak_evidence"]


# ---------------------------------------------------------------- 3.5 card 3 on MiniLM


def test_card_3_llm_claim_on_minilm_is_off_target(claims) -> None:  # type: ignore[no-untyped-def]
    row = {c: np.nan for c in results.TABLES["outliers"].names}
    row.update(
        run_id="r",
        model="minilm-l6",
        backend="torch",
        device="AMD EPYC",
        seq_len=24,
        layer=4,
        top_to_median_ratio=6.0,
        top_to_median_ratio_ci_low=5.5,
        top_to_median_ratio_ci_high=6.5,
    )
    v = verdict(claims, Evidence({"outliers": pd.DataFrame([row])}), "c3-outlier-ratio")
    assert v["verdict"] == "measured-off-target"
    assert "encoder" in v["off_target_reason"]


# ---------------------------------------------------------------- 3.6 the Amdahl check, shown honestly


def test_amdahl_needs_and_ok_agree_and_edge_shares_are_named(claims) -> None:  # type: ignore[no-untyped-def]
    # audit 3.6: shares of 61.3-62.0 % printed "needs 62.5-87.5 %" beside "ok: yes"
    rows = pd.DataFrame([comparison_row(attention_share_baseline=s, seq_len=n) for n, s in ((128, 0.613), (384, 0.7))])
    a = amdahl_check(rows, amdahl_claim_from(claims)).set_index("seq_len")
    edge, mid = a.loc[128], a.loc[384]
    assert edge["consistent"] and edge["required_share_low"] <= 0.613 <= edge["required_share_high"]
    assert (edge["required_share_at_claim_low"], edge["required_share_at_claim_high"]) == pytest.approx((0.625, 0.875))
    assert "only at the edge" in edge["flag"] and "62.5%–87.5%" in edge["flag"]
    assert mid["consistent"] and mid["flag"] == ""


def test_the_amdahl_check_stands_beside_card_9_verdicts(claims) -> None:  # type: ignore[no-untyped-def]
    low = verdict(claims, evidence(comparison_row(attention_share_baseline=0.30)), "c9-e2e-int8-attn")
    assert low["verdict"] == "supported" and "cannot hold as a whole" in low["amdahl"]
    assert verdict(claims, evidence(), "c9-attention")["amdahl"] == "consistent"  # share 0.7
    allp = comparison_row(precision="int8-all")
    assert pd.isna(verdict(claims, evidence(allp), "c9-e2e-int8-all")["amdahl"])  # attention alone only
