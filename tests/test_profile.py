"""The whole spine on the CPU: profile → run directory → comparison, and every bad input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from orinprof import results
from orinprof.backends.base import TimingConfig
from orinprof.cli import app
from orinprof.measure import ProfileConfig, parse_seq_lens, profile

pytest.importorskip("onnxruntime")

FAST = TimingConfig(warmup_iters=2, warmup_s=0.0, iterations=15, profile_iterations=4, rounds=5)


@pytest.fixture(scope="module")
def run(tmp_path_factory, models_dir):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("results")
    cfg = ProfileConfig(
        model="bert-tiny",
        precisions=("fp32", "int8-attn", "int8-ffn", "int8-all"),
        seq_lens=(16, 32),
        timing=FAST,
        calib_batches=2,
        telemetry="none",
        results_dir=out,
        models_dir=models_dir,
        threads=1,
    )
    return profile(cfg), out


def test_run_directory_tables(run) -> None:  # type: ignore[no-untyped-def]
    result, _out = run
    files = {p.name for p in result.run_dir.iterdir()}
    assert {
        "summary.csv",
        "layers.csv",
        "latencies.csv",
        "class_times.csv",
        "comparison.csv",
        "run.json",
    } <= files
    for table in ("summary", "layers", "latencies", "class_times", "comparison"):
        df = results.read_table(result.run_dir, table)
        results.check(df, table)
    summary = results.read_table(result.run_dir, "summary")
    assert len(summary) == 8  # 2 shapes × 4 plans
    assert set(summary["seq_len"]) == {16, 32}
    lat = results.read_table(result.run_dir, "latencies")
    # one block of FAST.iterations per plan per round
    assert (lat.groupby(["precision", "seq_len", "round"]).size() == FAST.iterations).all()
    assert (lat.groupby(["precision", "seq_len"])["round"].nunique() == FAST.rounds).all()
    # every statistic agrees with the kept latencies: the median of the round medians
    for row in summary.itertuples():
        sel = lat[(lat.precision == row.precision) & (lat.seq_len == row.seq_len)]
        round_medians = sel.groupby("round")["latency_ms"].median()
        assert row.rounds == FAST.rounds and row.iterations == len(sel)
        assert row.e2e_median_ms == pytest.approx(float(np.median(round_medians)), rel=1e-5)
        assert row.e2e_median_ci_low_ms <= row.e2e_median_ms <= row.e2e_median_ci_high_ms
        # 75 samples: p90 (MLPerf's floor 64) is reported, p99 (floor 662) is not
        assert np.isfinite(row.e2e_p90_ms) and np.isnan(row.e2e_p99_ms)
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["schema_version"] == results.SCHEMA_VERSION and info["versions"]["onnxruntime"]
    assert info["versions"]["git"]  # the issue asks run.json for the git version
    assert info["status"] == "complete"
    assert sorted(info["plans_done"]) == sorted(f"{s}/{p}" for s in (16, 32) for p in summary["precision"].unique())


def test_class_attribution_is_complete(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    summary = results.read_table(result.run_dir, "summary")
    for row in summary.itertuples():
        parts = row.attention_ms + row.ffn_ms + row.norm_ms + row.embedding_ms + row.other_ms
        # summary.csv stores 6 significant digits (%.6g): six rounded terms agree to ~1e-5
        assert parts == pytest.approx(row.layer_sum_ms, rel=2e-5)
        assert row.attention_ms > 0 and row.ffn_ms > 0
    layers = results.read_table(result.run_dir, "layers")
    assert {"attention", "ffn"} <= set(layers["layer_class"])
    # INT8 plans report their quantized GEMMs per class
    by_plan = summary.set_index(["precision", "seq_len"])
    assert by_plan.loc[("int8-attn", 16), "gemms_int8_attention"] == 12
    assert by_plan.loc[("int8-attn", 16), "gemms_int8_ffn"] == 0
    assert by_plan.loc[("int8-ffn", 16), "gemms_int8_ffn"] == 4
    assert (summary["fidelity_cosine"] > 0.99).all()


def test_comparison_rounds_ratios_and_placebo(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    comp = result.comparison
    assert set(comp["precision"]) == {"int8-attn", "int8-ffn", "int8-all"}
    assert set(comp["baseline"]) == {"fp32"}
    for r in comp.itertuples():
        for name in ("attention", "ffn", "e2e"):
            lo, point, hi = (
                getattr(r, f"{name}_reduction_ci_low"),
                getattr(r, f"{name}_reduction"),
                getattr(r, f"{name}_reduction_ci_high"),
            )
            assert lo <= point <= hi
            # the ratio and its log-scale CI are the same interval as the reduction's
            assert getattr(r, f"{name}_ratio") == pytest.approx(1 - point)
            assert getattr(r, f"{name}_ratio_ci_low") == pytest.approx(1 - hi)
        assert r.rounds == FAST.rounds and r.paired
        predicted = (
            r.attention_share_baseline * r.attention_reduction
            + r.ffn_share_baseline * r.ffn_reduction
            + (1 - r.attention_share_baseline - r.ffn_share_baseline) * r.other_reduction
        )
        assert r.profile_implied_e2e_reduction == pytest.approx(predicted)
        assert r.profile_implied_gap == pytest.approx(r.e2e_reduction - predicted)
        # the untouched class is reported beside every INT8 plan
        expected_placebo = {"int8-attn": "ffn", "int8-ffn": "attention", "int8-all": None}[r.precision]
        assert (r.placebo_class if isinstance(r.placebo_class, str) else None) == expected_placebo


def test_runs_never_overwrite(run, models_dir) -> None:  # type: ignore[no-untyped-def]
    result, out = run
    before = (result.run_dir / "summary.csv").read_bytes()
    cfg = ProfileConfig(
        model="bert-tiny",
        precisions=("fp32",),
        seq_lens=(16,),
        timing=FAST,
        telemetry="none",
        results_dir=out,
        models_dir=models_dir,
    )
    second = profile(cfg)
    assert second.run_dir != result.run_dir
    assert (result.run_dir / "summary.csv").read_bytes() == before


def test_compare_command(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    res = CliRunner().invoke(app, ["compare", str(result.run_dir)], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "int8-attn vs fp32" in res.output


def test_seq_parsing() -> None:
    assert parse_seq_lens("128,384") == (128, 384)
    assert parse_seq_lens("64..512") == (64, 128, 256, 512)


# --------------------------------------------------------------------------- bad input (CLI)


def _cli(args: list[str], tmp_path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, [*args, "--results-dir", str(tmp_path / "res"), "--models-dir", str(tmp_path / "m")])
    return res.exit_code, res.output  # click ≥ 8.2 mixes stderr into output


@pytest.mark.parametrize(
    "args, message",
    [
        (["profile", "--model", "bert-huge"], "unknown model preset 'bert-huge' (choose one of: bert-base"),
        (["profile", "--onnx", "nope.onnx"], "nope.onnx does not exist"),
        (["profile", "--model", "bert-tiny", "--seq", "4096"], "beyond bert-tiny's maximum of 128"),
        (["profile", "--model", "bert-tiny", "--precisions", "int4"], "unknown precision plan 'int4'"),
        (["profile", "--model", "vit-tiny", "--seq", "20"], "is not (image/patch)² + 1"),
        (["profile"], "give exactly one of --model PRESET or --onnx PATH"),
    ],
)
def test_bad_input_one_line(args, message, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, output = _cli(args, tmp_path)
    assert code == 1
    lines = [ln for ln in output.strip().splitlines() if ln.startswith("orinprof: error:")]
    assert len(lines) == 1 and message in lines[0], output
    assert "Traceback" not in output
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_not_an_onnx_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"\x00\x01 this is not protobuf" * 10)
    code, output = _cli(["profile", "--onnx", str(bad)], tmp_path)
    assert code == 1 and "is not an ONNX model" in output and "Traceback" not in output


def test_malformed_npz(tmp_path) -> None:  # type: ignore[no-untyped-def]
    npz = tmp_path / "inputs.npz"
    np.savez(npz, input_ids=np.zeros((1, 5), dtype=np.int64))
    code, output = _cli(["profile", "--model", "bert-tiny", "--seq", "16", "--inputs", str(npz)], tmp_path)
    assert code == 1
    assert "lacks inputs attention_mask, token_type_ids" in output


def test_cnn_profiles_with_zero_attention(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 10)
    )
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(cnn.eval(), (torch.randn(1, 3, 16, 16),), str(path), opset_version=17, dynamo=False)
    cfg = ProfileConfig(
        onnx=path,
        precisions=("fp32", "int8-all"),
        timing=FAST,
        telemetry="none",
        results_dir=tmp_path / "res",
        models_dir=tmp_path / "m",
        calib_batches=2,
    )
    with caplog.at_level("WARNING"):
        result = profile(cfg)
    assert "no attention" in caplog.text
    summary = result.summary
    assert (summary["attention_ms"] == 0).all() and (summary["attention_share"] == 0).all()
    assert summary.loc[summary.precision == "int8-all", "gemms_int8_other"].item() == 1


def test_user_onnx_with_npz(tiny_export, tmp_path) -> None:  # type: ignore[no-untyped-def]
    exported = tiny_export("bert-tiny", 16)
    rng = np.random.default_rng(0)
    npz = tmp_path / "inputs.npz"
    np.savez(
        npz,
        input_ids=rng.integers(0, 1000, (3, 1, 16)),
        attention_mask=np.ones((3, 1, 16), dtype=np.int64),
        token_type_ids=np.zeros((3, 1, 16), dtype=np.int64),
    )
    cfg = ProfileConfig(
        onnx=exported.path,
        precisions=("fp32", "int8-ffn"),
        timing=FAST,
        telemetry="none",
        inputs_npz=npz,
        results_dir=tmp_path / "res",
        models_dir=tmp_path / "m",
    )
    result = profile(cfg)
    assert list(result.summary["model"].unique()) == [exported.path.stem]
    assert isinstance(result.comparison, pd.DataFrame) and len(result.comparison) == 1


def test_engine_facts_reach_the_summary() -> None:
    """The TensorRT runner's engine facts (BackendInfo.details) become summary columns."""
    from orinprof.measure import _engine_facts

    details = {
        "layer_count": 42,
        "fused_mha": True,
        "fused_mha_precisions": ["Int8"],
        "precision_counts": {"Int8": 30, "Half": 10, "Float": 2},
    }
    assert _engine_facts(details) == {
        "engine_layers": 42,
        "fused_mha": True,
        "fused_mha_precision": "Int8",
        "int8_layers": 30,
    }
    assert _engine_facts({"threads": 2}) == {}


def test_roofline_efficiency_in_layers_and_summary(tmp_path, models_dir) -> None:  # type: ignore[no-untyped-def]
    """``--roofline local-cpu``: each layer's floor ÷ its median, and the model-level figure."""
    cfg = ProfileConfig(
        model="bert-tiny",
        precisions=("fp32", "int8-ffn"),
        seq_lens=(16,),
        timing=FAST,
        telemetry="none",
        results_dir=tmp_path,
        models_dir=models_dir,
        calib_batches=2,
        roofline_device="local-cpu",
    )
    result = profile(cfg)
    layers = results.read_table(result.run_dir, "layers")
    assert {"floor_ms", "efficiency"} <= set(layers.columns)
    matched = layers.dropna(subset=["efficiency"])
    assert len(matched) > len(layers) / 3  # fused ORT names map back to their graph nodes
    assert (matched["efficiency"] > 0).all()
    ok = matched[matched["floor_ms"] > 0]
    assert ok["efficiency"].tolist() == pytest.approx((ok["floor_ms"] / ok["median_ms"]).tolist(), rel=1e-4)
    summary = result.summary
    assert (summary["roofline_device"] == "local-cpu").all()
    assert ((summary["roofline_efficiency"] > 0) & (summary["roofline_efficiency"] < 1)).all()


def _three_plans(tmp_path, models_dir, **over: Any) -> ProfileConfig:  # type: ignore[no-untyped-def]
    """bert-tiny with fp32, int8-attn and int8-ffn: two plan files beside the export."""
    return ProfileConfig(
        model="bert-tiny",
        precisions=("fp32", "int8-attn", "int8-ffn"),
        seq_lens=(16,),
        timing=TimingConfig(warmup_iters=1, warmup_s=0.0, iterations=3, profile_iterations=1, rounds=2),
        calib_batches=2,
        telemetry="none",
        results_dir=tmp_path,
        models_dir=models_dir,
        **over,
    )


def test_each_model_is_classified_once_per_run(tmp_path, models_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: the class map is derived once, on the source graph; plans and ORT's optimised
    graphs inherit it (never a re-run of the pattern on a rewritten graph)."""
    from orinprof import classify

    calls: list[int] = []
    real = classify.classify

    def counting(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(model.graph.node))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(classify, "classify", counting)
    profile(_three_plans(tmp_path, models_dir))
    assert len(calls) == 1, f"classified {len(calls)} graphs (node counts {calls}); expected the source once"


def test_each_onnx_file_is_loaded_once_per_run(tmp_path, models_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 13's done-when: every ONNX file (the export, each plan file, ORT's optimised graph)
    is read from disk once per run and handed on as an analysed model, never re-loaded."""
    import os
    from collections import Counter

    import onnx

    loads: Counter[str] = Counter()

    def counting(real):  # type: ignore[no-untyped-def]
        def load(source, *args, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(source, str | os.PathLike):
                loads[os.path.realpath(source)] += 1
            return real(source, *args, **kwargs)

        return load

    # orinprof.graph.load_onnx (and every module that imported it by name) reads through onnx.load
    monkeypatch.setattr(onnx, "load", counting(onnx.load))
    monkeypatch.setattr(onnx, "load_model", counting(onnx.load_model))
    profile(_three_plans(tmp_path, models_dir, roofline_device="local-cpu"))  # the roofline reads the model too
    assert loads, "onnx.load was never called: the counter is not wired to the loader measure uses"
    twice = {path: n for path, n in loads.items() if n > 1}
    assert not twice, f"ONNX files loaded more than once in one run: {twice}"
