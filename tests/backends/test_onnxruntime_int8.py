"""``orinprof profile`` on ONNX Runtime: the INT8 recipe that ran and the integer kernels that
executed per class are recorded beside the plan's intent (issue 14, items 1 and 2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orinprof import results
from orinprof.backends.base import TimingConfig
from orinprof.errors import OrinprofError
from orinprof.measure import ProfileConfig, profile

pytest.importorskip("onnxruntime")

FAST = TimingConfig(warmup_iters=1, warmup_s=0.0, iterations=5, profile_iterations=2)


def _run(tmp_path, models_dir, precisions, **options):  # type: ignore[no-untyped-def]
    cfg = ProfileConfig(
        model="bert-tiny",
        precisions=precisions,
        seq_lens=(16,),
        timing=FAST,
        calib_batches=2,
        telemetry="none",
        results_dir=tmp_path,
        models_dir=models_dir,
        threads=1,
        **options,
    )
    result = profile(cfg)
    info = json.loads((result.run_dir / "run.json").read_text())
    return results.read_table(result.run_dir, "summary").set_index("precision"), info


def test_auto_recipe_is_recorded_and_its_kernels_counted(tmp_path, models_dir) -> None:  # type: ignore[no-untyped-def]
    summary, info = _run(tmp_path, models_dir, ("fp32", "int8-attn", "int8-ffn"))
    assert info["config"]["int8_recipe"] == "ort-dynamic"  # what ran, not "auto"
    assert pd.isna(summary.loc["fp32", "int8_recipe"])
    assert (summary.loc[["int8-attn", "int8-ffn"], "int8_recipe"] == "ort-dynamic").all()
    assert summary.loc["fp32", ["int8_kernels_attention", "int8_kernels_ffn"]].tolist() == [0, 0]
    # every intended INT8 GEMM ran as an integer kernel, and only the plan's class did
    for plan, cls, other in (("int8-attn", "attention", "ffn"), ("int8-ffn", "ffn", "attention")):
        row = summary.loc[plan]
        assert row[f"int8_kernels_{cls}"] == row[f"gemms_int8_{cls}"] > 0
        assert row[f"int8_kernels_{other}"] == 0
        assert pd.isna(row["trust_flags"]) or "int8_class_not_executed" not in row["trust_flags"]
        # attribution survives the rewrite to integer ops: the class keeps its time
        assert row[f"{cls}_ms"] > 0


def test_trt_layout_flags_a_class_that_ran_no_integer_kernel(tmp_path, models_dir) -> None:  # type: ignore[no-untyped-def]
    summary, info = _run(tmp_path, models_dir, ("int8-ffn",), qdq_style="trt")  # the older spelling
    assert info["config"]["int8_recipe"] == "trt-qdq"
    row = summary.loc["int8-ffn"]
    assert row["int8_recipe"] == "trt-qdq"
    assert row["gemms_int8_ffn"] == 4 and row["int8_kernels_ffn"] == 0
    assert "int8_class_not_executed:ffn" in row["trust_flags"].split(";")


def test_recipe_errors_are_one_line(tmp_path, models_dir) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OrinprofError, match="contradicts"):
        _run(tmp_path, models_dir, ("int8-ffn",), int8_recipe="ort-dynamic", qdq_style="trt")
    with pytest.raises(OrinprofError, match="unknown INT8 recipe"):
        _run(tmp_path, models_dir, ("int8-ffn",), int8_recipe="int4")
    assert not list(tmp_path.iterdir())  # refused before a run directory was made
