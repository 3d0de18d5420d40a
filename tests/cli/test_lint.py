"""``orinprof lint-qdq``: verdict lines for a good and a broken Q/DQ model; one-line errors for bad input."""

from __future__ import annotations

import onnx
import pytest
from typer.testing import CliRunner

from orinprof.cli import app
from test_lint import attention_model, quantize  # tests/test_lint.py: the model builders

runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_lint")
    good = quantize(attention_model(), root, 16, 64)
    onnx.save(good, root / "good.onnx")
    onnx.save(attention_model(), root / "float.onnx")
    return root


def error_line(result) -> str:
    """The single ``orinprof: error:`` line (log warnings from other stages may precede it)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("orinprof: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_fusable_model(models, tmp_path):
    csv = tmp_path / "lint.csv"
    result = runner.invoke(app, ["lint-qdq", str(models / "good.onnx"), "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    assert "block 0 core 0: fusable" in result.stdout
    assert csv.exists() and "softmax_output_qdq" in csv.read_text()


def test_float_model_is_reported_not_fusable(models):
    result = runner.invoke(app, ["lint-qdq", str(models / "float.onnx")])
    assert result.exit_code == 0, result.output
    assert "not fusable" in result.stdout and "bmm1_inputs_qdq" in result.stdout


def test_missing_file(tmp_path):
    result = runner.invoke(app, ["lint-qdq", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 1
    assert error_line(result).startswith("orinprof: error: ") and "does not exist" in error_line(result)


def test_not_an_onnx_file(tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"\xff\xfe not protobuf at all")
    result = runner.invoke(app, ["lint-qdq", str(bogus)])
    assert result.exit_code == 1
    assert "is not an ONNX model" in error_line(result)


def test_model_without_attention(tmp_path):
    from onnx import TensorProto
    from onnx import helper as oh

    graph = oh.make_graph(
        [oh.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]), path)
    result = runner.invoke(app, ["lint-qdq", str(path)])
    assert result.exit_code == 1
    assert "no attention block found" in error_line(result)
