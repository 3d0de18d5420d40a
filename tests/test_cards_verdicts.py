"""Claims × hand-made comparison rows → each verdict; the Amdahl numbers; claims-file errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import factories
from conftest import REPO
from orinprof import results
from orinprof.cards import (
    AmdahlClaim,
    Evidence,
    amdahl_check,
    amdahl_claim_from,
    load_claims,
    load_evidence,
    parse_claims,
    read_cards,
    validate,
    write_verdicts,
)
from orinprof.errors import OrinprofError

ORIN = "NVIDIA Jetson AGX Orin Developer Kit"
#: run.json fingerprint of an AGX Orin 64GB in MAXN with locked clocks (telemetry.fingerprint)
ORIN_FP = {"module_part": "p3701-0005", "device_id": "agx-orin-64gb", "nvpmodel_name": "MAXN", "jetson_clocks": "on"}


def comparison_row(**over: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(
        run_id="20250101T000000-bert-base-tensorrt-ab12",
        baseline_run_id="20250101T000000-bert-base-tensorrt-cd34",
        **factories.BERT_BASE_TRT,
        device=ORIN,
        baseline="fp16",
        precision="int8-attn",
        attention_share_baseline=0.30,
        ffn_share_baseline=0.55,
        ffn_reduction_ci_low=-0.01,
        ffn_reduction_ci_high=0.01,
        rounds=5,
        flags="",
    )
    return factories.comparison_row(**{**defaults, **over})


def on_orin(*rows: dict[str, Any]) -> Evidence:
    """The rows as evidence from fingerprinted AGX Orin 64GB runs with clean summary rows."""
    run_ids = {r[k] for r in rows for k in ("run_id", "baseline_run_id")}
    first = rows[0]
    summary = pd.DataFrame(
        [
            factories.summary_row(
                run_id=rid,
                model=first["model"],
                backend=first["backend"],
                device=first["device"],
                device_kind="jetson",
                class_ms={"other_ms": 10.0},  # layer_sum_ms 10, unattributed_ms 0
            )
            for rid in sorted(run_ids)
        ]
    )
    info = {rid: {"run_id": rid, "fingerprint": ORIN_FP} for rid in run_ids}
    return Evidence({"comparison": frame(*rows), "summary": summary}, info)


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


@pytest.fixture(scope="module")
def claims():  # type: ignore[no-untyped-def]
    return load_claims(REPO / "claims.toml", read_cards(REPO / "cards.tsv"))


def verdict_of(claims, row: dict[str, Any], claim_id: str = "c9-attention") -> pd.Series:  # type: ignore[no-untyped-def]
    v = validate(on_orin(row), claims)
    return v[v["claim_id"] == claim_id].iloc[0]


@pytest.mark.parametrize(
    ("ci", "expected", "check"),
    [
        ((0.36, 0.44), "supported", "inside"),
        ((0.10, 0.20), "contradicted", "outside"),
        ((0.30, 0.40), "inconclusive", "spans-boundary"),
        ((0.30, 0.50), "inconclusive", "spans-boundary"),  # CI wider than the claimed range
        ((np.nan, np.nan), "inconclusive", "no-ci"),
    ],
)
def test_on_target_verdicts_follow_the_ci(claims, ci, expected, check) -> None:  # type: ignore[no-untyped-def]
    row = comparison_row(attention_reduction=0.40, attention_reduction_ci_low=ci[0], attention_reduction_ci_high=ci[1])
    v = verdict_of(claims, row)
    assert (v["verdict"], v["range_check"], bool(v["on_target"])) == (expected, check, True)
    assert v["run_ids"] == f"{row['run_id']};{row['baseline_run_id']}"
    assert v["date"] == "2025-01-01"


@pytest.mark.parametrize(
    ("over", "why"),
    [
        (
            {"device": "Intel(R) Xeon(R) CPU", "backend": "onnxruntime", "baseline": "fp32"},
            "backend onnxruntime",
        ),
        ({"model": "gpt2-tiny"}, "gpt2-tiny is of kind decoder"),
        ({"batch": 8}, "batch 8"),
        ({"backend": "torch"}, "backend torch"),
        ({"baseline": "fp32"}, "baseline fp32"),
    ],
)
def test_off_target_evidence_is_shown_but_never_passed_off(claims, over, why) -> None:  # type: ignore[no-untyped-def]
    row = comparison_row(attention_reduction=0.40, attention_reduction_ci_low=0.38, attention_reduction_ci_high=0.42)
    row.update(over)
    v = verdict_of(claims, row)
    assert v["verdict"] == "measured-off-target"
    assert v["range_check"] == "inside" and v["measured"] == pytest.approx(0.40)
    assert why in v["off_target_reason"]


def test_run_json_fingerprint_decides_the_device(claims, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # CUDA names every Orin GPU just "Orin"; run.json's fingerprint says which module it was
    run = tmp_path / "20250101T000000-bert-base-tensorrt-ab12"
    run.mkdir()
    row = comparison_row(
        device="Orin",
        attention_reduction=0.40,
        attention_reduction_ci_low=0.38,
        attention_reduction_ci_high=0.42,
        run_id=run.name,
        baseline_run_id=run.name,
    )
    frame(row).to_csv(run / "comparison.csv", index=False)
    summary = {c: np.nan for c in results.TABLES["summary"].names}
    summary.update(run_id=run.name, precision="int8-attn", layer_sum_ms=10.0, unattributed_ms=0.0)
    pd.DataFrame([summary]).to_csv(run / "summary.csv", index=False)
    nano = {**ORIN_FP, "module_part": "p3767-0004", "device_id": "orin-nano-4gb"}
    (run / "run.json").write_text(json.dumps({"schema_version": "1.0", "run_id": run.name, "fingerprint": nano}))
    v = validate(load_evidence([tmp_path]), claims)
    assert v[v["claim_id"] == "c9-attention"].iloc[0]["verdict"] == "measured-off-target"
    (run / "run.json").write_text(json.dumps({"schema_version": "1.0", "run_id": run.name, "fingerprint": ORIN_FP}))
    v = validate(load_evidence([run]), claims)
    assert v[v["claim_id"] == "c9-attention"].iloc[0]["verdict"] == "supported"


def test_no_evidence_rows_and_plan_selection(claims) -> None:  # type: ignore[no-untyped-def]
    v = validate({"comparison": frame(comparison_row(precision="int8-ffn", attention_reduction=0.1))}, claims)
    by_id = v.set_index("claim_id")
    assert set(v["claim_id"]) == {c.id for c in claims.claims}
    assert (v["verdict"] == "no-evidence").all()
    assert "no comparison rows with precision=int8-attn" in by_id.loc["c9-attention", "reason"]
    assert by_id.loc["c3-outlier-ratio", "reason"] == "no outliers rows"


def test_each_reading_of_total_model_gets_its_own_plan(claims) -> None:  # type: ignore[no-untyped-def]
    attn = comparison_row(e2e_reduction=0.12, e2e_reduction_ci_low=0.10, e2e_reduction_ci_high=0.14)
    allp = comparison_row(
        precision="int8-all", e2e_reduction=0.30, e2e_reduction_ci_low=0.27, e2e_reduction_ci_high=0.33
    )
    v = validate(on_orin(attn, allp), claims).set_index("claim_id")
    assert v.loc["c9-e2e-int8-attn", "verdict"] == "contradicted"
    assert v.loc["c9-e2e-int8-all", "verdict"] == "supported"


def test_open_ranges_and_pruning_rows(claims) -> None:  # type: ignore[no-untyped-def]
    base = {
        "run_id": "r",
        "baseline_run_id": "b",
        "model": "bert-base",
        "backend": "torch",
        "device": "NVIDIA A100",
        "device_kind": "gpu",
        "batch": 1,
        "seq_len": 128,
        "params_removed_fraction": 0.5,
        "rounds": 5,
        "status": "ok",
    }
    rows = [
        {
            **base,
            "variant": "u",
            "variant_kind": "unstructured",
            "e2e_reduction": 0.01,
            "e2e_reduction_ci_low": -0.02,
            "e2e_reduction_ci_high": 0.03,
        },
        {
            **base,
            "variant": "s",
            "variant_kind": "heads+ffn",
            "e2e_reduction": 0.3,
            "e2e_reduction_ci_low": 0.25,
            "e2e_reduction_ci_high": 0.35,
        },
        {
            **base,
            "variant": "lh",
            "variant_kind": "layers-vs-heads",
            "e2e_reduction": -0.1,
            "e2e_reduction_ci_low": -0.15,
            "e2e_reduction_ci_high": -0.05,
        },
    ]
    v = validate({"pruning": pd.DataFrame(rows)}, claims).set_index("claim_id")
    assert v.loc["c6-unstructured", "verdict"] == "supported"
    assert v.loc["c6-structured", "verdict"] == "supported"
    assert v.loc["c10-layers-vs-heads", "verdict"] == "contradicted"
    cpu = [{**r, "device": "AMD EPYC", "device_kind": "cpu", "backend": "onnxruntime"} for r in rows]
    v = validate({"pruning": pd.DataFrame(cpu)}, claims).set_index("claim_id")
    assert v.loc["c6-unstructured", "verdict"] == "measured-off-target"
    assert v.loc["c10-layers-vs-heads", "verdict"] == "contradicted"  # card 10 names no device


def test_amdahl_numbers_from_the_claims(claims) -> None:  # type: ignore[no-untyped-def]
    claim = amdahl_claim_from(claims)
    assert claim.required_share == pytest.approx((0.25 / 0.40, 0.35 / 0.40))
    rows = frame(
        comparison_row(seq_len=128, attention_share_baseline=0.30, attention_reduction=0.38, e2e_reduction=0.10),
        comparison_row(seq_len=512, attention_share_baseline=0.70, attention_reduction=0.41, e2e_reduction=0.28),
        comparison_row(seq_len=512, precision="int8-all", attention_share_baseline=0.70, e2e_reduction=0.5),
    )
    a = amdahl_check(rows, claim)
    assert list(a["seq_len"]) == [128, 512]  # only int8-attn rows: Amdahl with attention alone changed
    short, long_ = a.iloc[0], a.iloc[1]
    assert short["implied_e2e_at_claim"] == pytest.approx(0.30 * 0.40)
    assert short["implied_e2e_at_measured"] == pytest.approx(0.30 * 0.38)
    assert not short["consistent"] and "cannot hold" in short["flag"]
    assert long_["consistent"] and long_["flag"] == ""
    assert set(a["reachable_at_seq_lens"]) == {"512"}


def test_amdahl_tolerant_boundary() -> None:
    # at the claimed range's edges: 0.25 / 0.45 is the smallest share that can still reach 25 %
    claim = AmdahlClaim()
    edge = 0.25 / 0.45
    a = amdahl_check(
        frame(
            comparison_row(attention_share_baseline=edge + 1e-6, attention_reduction=0.4, e2e_reduction=0.2),
            comparison_row(
                seq_len=64, attention_share_baseline=edge - 1e-3, attention_reduction=0.4, e2e_reduction=0.2
            ),
        ),
        claim,
    )
    assert list(a.sort_values("seq_len")["consistent"]) == [False, True]


def test_claim_naming_a_metric_the_results_lack(claims) -> None:  # type: ignore[no-untyped-def]
    df = frame(comparison_row()).drop(columns=["attention_reduction"])
    with pytest.raises(
        OrinprofError, match=re.escape("metric comparison.attention_reduction is not in the comparison")
    ):
        validate({"comparison": df}, claims)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"metric": "comparison.speedup"}, "claim #1 (x).metric: table 'comparison' has no column 'speedup'"),
        ({"metric": "nosuch.col"}, "unknown results table 'nosuch'"),
        ({"low": 0.5, "high": 0.4}, "low 0.5 is above high 0.4"),
        ({"card": "nine"}, "claim #1 (x).card: must be an integer"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"where": {"nosuch": 1}}, "where.nosuch"),
        ({"devices": ["agx-orin-65gb"]}, "claim #1 (x).devices: unknown device id 'agx-orin-65gb'"),
        ({"model_kind": "llm"}, "claim #1 (x).model_kind: is 'llm'"),
        ({"seq_range": [128]}, "claim #1 (x).seq_range: must be [low, high]"),
        ({"device_pattern": "orin"}, "unknown field(s) device_pattern"),  # regexes over free text are gone
    ],
)
def test_bad_claims_name_the_field(edit: dict[str, Any], message: str) -> None:
    claim = {
        "id": "x",
        "card": 9,
        "text": "t",
        "metric": "comparison.e2e_reduction",
        "low": 0.2,
        "high": 0.3,
        "tolerance": "t",
        **edit,
    }
    with pytest.raises(OrinprofError) as err:
        parse_claims({"claim": [claim]})
    assert message in err.value.one_line()


def test_seq_range_puts_other_lengths_off_target(claims) -> None:  # type: ignore[no-untyped-def]
    claim = {
        "id": "x",
        "card": 9,
        "text": "t",
        "metric": "comparison.e2e_reduction",
        "low": 0.2,
        "high": 0.3,
        "tolerance": "t",
        "seq_range": [64, 256],
        "min_rounds": 1,
    }
    parsed = parse_claims({"claim": [claim]})
    row = comparison_row(e2e_reduction=0.25, e2e_reduction_ci_low=0.22, e2e_reduction_ci_high=0.28)
    assert validate(on_orin(row), parsed).iloc[0]["verdict"] == "supported"
    v = validate(on_orin({**row, "seq_len": 512}), parsed).iloc[0]
    assert v["verdict"] == "measured-off-target" and "seq 512 outside 64–256" in v["off_target_reason"]


def test_claims_must_cover_every_card_and_match_fronts(claims) -> None:  # type: ignore[no-untyped-def]
    deck = read_cards(REPO / "cards.tsv")
    claim = {
        "id": "x",
        "card": 9,
        "text": "t",
        "metric": "comparison.e2e_reduction",
        "low": 0.2,
        "high": 0.3,
        "tolerance": "t",
    }
    with pytest.raises(OrinprofError, match=r"card\(s\) 1, 2, 3, 4, 5, 6, 7, 8, 10 of cards.tsv have neither"):
        parse_claims({"claim": [claim]}, deck=deck)
    with pytest.raises(OrinprofError, match=re.escape("x.front_starts: card 9 of cards.tsv starts")):
        parse_claims({"claim": [{**claim, "front_starts": "What is QAT"}]}, deck=deck)
    assert {c.card for c in claims.claims} == {3, 6, 9, 10}


def test_malformed_toml(tmp_path: Path) -> None:
    bad = tmp_path / "claims.toml"
    bad.write_text("[[claim]\nid = 1\n")
    with pytest.raises(OrinprofError, match=re.escape("claims.toml is not valid TOML")):
        load_claims(bad)


def test_different_schema_version_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    frame(comparison_row()).to_csv(run / "comparison.csv", index=False)
    (run / "run.json").write_text(json.dumps({"schema_version": "2.0", "run_id": "run"}))
    with pytest.raises(OrinprofError, match=re.escape("uses results schema 2.0")):
        load_evidence([run])


def test_verdicts_csv_is_never_overwritten(claims, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v = validate({"comparison": frame(comparison_row(attention_reduction=0.4))}, claims)
    first = write_verdicts(v, tmp_path / "verdicts.csv")
    second = write_verdicts(v, tmp_path / "verdicts.csv")
    assert first.name == "verdicts.csv" and second.name == "verdicts-1.csv"
    back = results.read_table(second, "verdicts")
    assert list(back["claim_id"]) == list(v["claim_id"])


def test_a_folder_holding_a_table_and_run_directories_reads_both(tmp_path: Path) -> None:
    """A published set keeps outliers.csv beside its run directories: the folder's own table must
    not hide the runs in it (the published cpu set once validated as `no-evidence` for card 9).
    Runs found inside a folder that are not complete are skipped."""
    published = tmp_path / "cpu-set"
    published.mkdir()
    measured = dict(e2e_reduction=0.2, e2e_ratio=0.8, e2e_ratio_ci_low=0.78, e2e_ratio_ci_high=0.82)
    rows = [comparison_row(run_id="20250101T000000-bert-base-tensorrt-ab12", **measured)]
    factories.run_dir(published, {"comparison": rows}, run_id="20250101T000000-bert-base-tensorrt-ab12")
    factories.run_dir(
        published,
        {"comparison": [comparison_row(run_id="20250101T000001-bert-base-tensorrt-ef56", **measured)]},
        run_id="20250101T000001-bert-base-tensorrt-ef56",
        status="interrupted",
    )
    outliers = factories.row("outliers", model="minilm-l6", layer=1, top_to_median_ratio=2.0)
    pd.DataFrame([outliers]).to_csv(published / "outliers.csv", index=False)
    evidence = load_evidence([published])
    assert set(evidence.tables) >= {"comparison", "outliers"}
    assert evidence.tables["comparison"]["run_id"].tolist() == ["20250101T000000-bert-base-tensorrt-ab12"]
