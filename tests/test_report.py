"""build_report on synthetic run directories written with the declared schemas."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from factories import comparison_row, run_dir, summary_row
from orinprof import results
from orinprof.cards.verdicts import card9_ranges
from orinprof.errors import OrinprofError
from orinprof.report import build_report

PLANS = ("fp32", "int8-attn", "int8-all")


def _keys(run_id: str, plan: str, seq: int) -> dict[str, object]:
    return {
        "run_id": run_id,
        "model": "bert-tiny",
        "backend": "onnxruntime",
        "precision": plan,
        "batch": 1,
        "seq_len": seq,
    }


def make_run(root: Path, seqs=(64, 128), telemetry: bool = True, drop: tuple[str, ...] = ()) -> Path:
    """One synthetic run directory: summary, layers, comparison (+ telemetry, verdicts, run.json)."""
    run_id = results.new_run_id("bert-tiny", "onnxruntime")
    rng = np.random.default_rng(0)
    summary, layers, comparison = [], [], []
    for seq in seqs:
        base = {}
        for plan in PLANS:
            attn = 0.02 * seq * (0.6 if plan != "fp32" else 1.0)
            ffn = 0.03 * seq * (0.6 if plan == "int8-all" else 1.0)
            other = 0.01 * seq
            e2e = attn + ffn + other
            row = summary_row(
                **_keys(run_id, plan, seq),
                e2e_ms=e2e,
                class_ms={"attention_ms": attn, "ffn_ms": ffn, "other_ms": other},
                gemm_counts={"gemms_total": 12},
                iterations=25,
                trust_flags=["cpu_governor_not_performance"] if plan == "fp32" else [],
                telemetry_source="host",
                threads=2,
            )
            summary.append(row)
            base[plan] = (attn, ffn, e2e)
            for i in range(20):
                cls = ("attention", "ffn", "norm", "other")[i % 4]
                layers.append(
                    {
                        **_keys(run_id, plan, seq),
                        "layer": f"/encoder/layer.{i // 4}/{cls}/node_{i}",
                        "op_type": "MatMul",
                        "layer_class": cls,
                        "block": i // 4,
                        "onnx_nodes": f"node_{i}",
                        "calls": 50,
                        "median_ms": float(rng.uniform(0.01, 0.2)) * seq / 64,
                        "mean_ms": 0.1,
                        "share": 0.05,
                        "class_split": np.nan,
                        "status": "ok",
                    }
                )
        for plan in PLANS[1:]:
            a0, f0, e0 = base["fp32"]
            a1, f1, e1 = base[plan]
            row = comparison_row(
                run_id=run_id,
                baseline_run_id=run_id,
                model="bert-tiny",
                backend="onnxruntime",
                device="test-cpu",
                batch=1,
                seq_len=seq,
                baseline="fp32",
                precision=plan,
                attention_reduction=1 - a1 / a0,
                ffn_reduction=1 - f1 / f0,
                other_reduction=0.0,
                e2e_reduction=1 - e1 / e0,
                attention_share_baseline=a0 / e0,
                ffn_share_baseline=f0 / e0,
                profile_implied_e2e_reduction=1 - e1 / e0,
                profile_implied_gap=0.0,
            )
            comparison.append(row)
    run = run_dir(
        root,
        {"summary": summary, "layers": layers, "comparison": comparison},
        run_id=run_id,
        command="orinprof profile bert-tiny",
        fingerprint={"device": "test-cpu", "nvpmodel": "n/a"},
        drop=drop,  # tests feed damaged tables too
    )
    if telemetry:
        t = np.arange(0, 10, 0.5)
        rows = []
        for ch, unit, val in (("power_total", "mW", 9000), ("gpu_freq", "MHz", 1300), ("temp_tj", "C", 50)):
            rows += [
                {
                    "t_s": x,
                    "source": "host",
                    "channel": ch,
                    "value": val + 10 * x,
                    "unit": unit,
                    "status": "ok",
                }
                for x in t
            ]
        pd.DataFrame(rows).to_csv(run / "telemetry.csv", index=False)
    return run


def test_report_embeds_all_figures_and_no_external_urls(tmp_path):
    run = make_run(tmp_path / "results")
    rep = build_report([run], tmp_path / "out")
    html = rep.html.read_text()
    drawn = {f.key for f in rep.figures if f.png}
    assert drawn == {"class_bars", "waterfall", "seq_sweep", "telemetry"}
    assert html.count("data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the report must open offline"
    assert "http://" not in html and "https://" not in html
    for f in rep.figures:
        assert (tmp_path / "out" / str(f.png)).stat().st_size > 1000
    assert {p.name for p in rep.tables} >= {"summary.csv", "layers.csv", "comparison.csv", "telemetry.csv"}
    assert "cpu_governor_not_performance" in html  # trust flags at the top
    assert html.index("Trust flags") < html.index("data:image/png")


def test_missing_columns_skip_the_plot_and_say_which(tmp_path, caplog):
    run = make_run(tmp_path / "results", seqs=(64,), telemetry=False, drop=("median_ms",))
    with caplog.at_level("INFO", logger="orinprof.report"):
        rep = build_report([run], tmp_path / "out")
    skipped = {f.key: f.note for f in rep.figures if f.png is None}
    assert "median_ms" in skipped["waterfall"]
    assert "sequence length" in skipped["seq_sweep"]
    assert "telemetry" in skipped["telemetry"]
    html = rep.html.read_text()
    assert "layers lacks column(s) median_ms" in html
    assert any("median_ms" in r.getMessage() for r in caplog.records)
    assert html.count("data:image/png;base64,") == 1  # the class bars still drawn


def test_refuses_non_empty_out_unless_forced(tmp_path):
    run = make_run(tmp_path / "results", seqs=(64,), telemetry=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OrinprofError, match="not empty"):
        build_report([run], out)
    assert (out / "keep.txt").read_text() == "mine"
    rep = build_report([run], out, force=True)
    assert rep.html.exists() and (out / "keep.txt").exists()


def test_parent_directory_of_runs_is_accepted(tmp_path):
    make_run(tmp_path / "results", seqs=(64,), telemetry=False)
    make_run(tmp_path / "results", seqs=(128,), telemetry=False)
    rep = build_report([tmp_path / "results"], tmp_path / "out")
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert sorted(summary["seq_len"].unique()) == [64, 128]
    assert rep.html.exists()


def test_not_a_run_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OrinprofError, match=r"no summary\.csv"):
        build_report([tmp_path / "empty"], tmp_path / "out")


def test_card_ranges_come_from_the_claims_file(tmp_path):
    # claims.toml is the one owner of the card's ranges: edit it and the report follows
    text = (REPO / "claims.toml").read_text()
    assert card9_ranges(REPO / "claims.toml") == {"attention_reduction": (0.35, 0.45), "e2e_reduction": (0.25, 0.35)}
    edited = tmp_path / "claims.toml"
    stated = "tolerance = \"range stated by the card ('typically"
    edited.write_text(text.replace(f"low = 0.25\nhigh = 0.35\n{stated}", f"low = 0.2\nhigh = 0.3\n{stated}"))
    assert card9_ranges(edited)["e2e_reduction"] == (0.2, 0.3)
    run = make_run(tmp_path / "results")
    rep = build_report([run], tmp_path / "out", claims_file=tmp_path / "nowhere.toml")
    assert any("card ranges: not shaded" in line for line in rep.skipped)
