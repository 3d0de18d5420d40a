"""``orinprof report`` / ``orinprof project`` through typer's CliRunner: exit codes and one-line errors."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

import factories
from orinprof import results
from orinprof.cli import app

runner = CliRunner()


def _errline(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()] if res.stderr else []
    assert len(lines) == 1, res.output
    assert lines[0].startswith("orinprof: error: ")
    return lines[0]


def _dynamic_onnx(path):
    w = numpy_helper.from_array(np.zeros((8, 8), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _minimal_run(root):
    """A run directory holding one summary row and run.json: no layers, no comparison."""
    run_id = results.new_run_id("m", "onnxruntime")
    row = factories.summary_row(
        run_id=run_id, model="m", precision="fp32", seq_len=8, device="cpu", class_ms={"other_ms": 1.0}
    )
    return factories.run_dir(root, {"summary": [row]}, run_id=run_id)


def test_project_unknown_device_lists_names(tmp_path):
    res = runner.invoke(app, ["project", str(_dynamic_onnx(tmp_path / "m.onnx")), "--device", "tx2"])
    assert res.exit_code == 1
    line = _errline(res)
    assert "unknown device 'tx2'" in line and "agx-orin-64gb" in line and "local-cpu" in line


def test_project_dynamic_onnx_asks_for_seq_and_batch(tmp_path):
    res = runner.invoke(app, ["project", str(_dynamic_onnx(tmp_path / "m.onnx")), "--device", "agx-orin-64gb"])
    assert res.exit_code == 1
    line = _errline(res)
    assert "no static shape" in line and "--seq" in line and "--batch" in line


def test_project_static_after_seq_and_batch(tmp_path):
    res = runner.invoke(
        app,
        [
            "project",
            str(_dynamic_onnx(tmp_path / "m.onnx")),
            "--seq",
            "16",
            "--batch",
            "1",
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "p" / "projection.csv")
    assert df["plan"].iloc[0] == "fp16"
    assert (tmp_path / "p" / "device.json").exists()


def test_project_unknown_mode_lists_modes(tmp_path):
    res = runner.invoke(app, ["project", str(_dynamic_onnx(tmp_path / "m.onnx")), "--mode", "7W", "--seq", "4"])
    assert res.exit_code == 1
    assert "MAXN" in _errline(res)


def test_project_nothing_to_do():
    res = runner.invoke(app, ["project"])
    assert res.exit_code == 1
    assert "nothing to project" in _errline(res)


def test_report_refuses_non_empty_out(tmp_path):
    run = _minimal_run(tmp_path / "results")
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    res = runner.invoke(app, ["report", str(run), "--out", str(out)])
    assert res.exit_code == 1
    assert "not empty" in _errline(res) and "--force" in _errline(res)
    assert (out / "x").read_text() == "keep"


def test_report_missing_results_dir(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert "does not exist" in _errline(res)


def test_report_minimal_run_skips_figures_and_says_so(tmp_path):
    run = _minimal_run(tmp_path / "results")
    res = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())  # skipped lines wrap at the terminal's width
    assert "skipped" in text and "no layers in the results" in text
    assert (tmp_path / "out" / "report.html").exists()
