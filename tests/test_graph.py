"""The graph module: one constness rule for the classifier and the cost model, one naming rule,
loading errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinprof import classify, export, graph
from orinprof.costs import node_costs
from orinprof.errors import OrinprofError

F32 = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=()):  # type: ignore[no-untyped-def]
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _vi(name: str, shape: list[int]):  # type: ignore[no-untyped-def]
    return helper.make_tensor_value_info(name, F32, shape)


def test_constness_propagates_through_constant_only_nodes() -> None:
    w = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    m = _model(
        [
            helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones(4, dtype=np.float32))),
            helper.make_node("Transpose", ["w"], ["wt"], name="wt"),  # weight-only: constant
            helper.make_node("RandomNormalLike", ["w"], ["noise"], name="noise"),  # never folded
            helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm"),  # reads an activation
            helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        ],
        [_vi("x", [2, 4])],
        [_vi("y", [2, 4])],
        [w],
    )
    const = graph.constant_tensors(m.graph)
    assert {"w", "c", "wt"} <= const
    assert not {"noise", "y", "x", "shape"} & const
    # a caller that knows static shapes declares Shape constant through the hook
    assert "shape" in graph.constant_tensors(m.graph, also_constant=lambda n: n.op_type == "Shape")


def test_classifier_and_cost_model_share_the_rule() -> None:
    # an initializer also listed as a graph input (old exporters' keep_initializers_as_inputs):
    # the classifier's index always took it as a weight; the cost model now does too
    w = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [2, 4]), _vi("w", [4, 4])],
        [_vi("y", [2, 4])],
        [w],
    )
    assert classify.Graph is graph.Graph
    assert graph.Graph(m).is_weighted_gemm(0)
    assert bool(node_costs(m).set_index("node").loc["mm", "gemm"])


def test_node_names_fill_gaps_and_repeats() -> None:
    m = _model(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Relu", ["a"], ["b"], name="r"),
            helper.make_node("Relu", ["b"], ["c"], name="r"),
        ],
        [_vi("x", [1])],
        [_vi("c", [1])],
    )
    assert graph.node_names(m.graph) == ["Relu_0", "r", "r__2"]
    assert graph.ensure_node_names(m) is True
    assert [n.name for n in m.graph.node] == ["Relu_0", "r", "r__2"]
    assert graph.ensure_node_names(m) is False
    assert classify.ensure_node_names is graph.ensure_node_names


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    assert export.load_onnx is graph.load_onnx  # callers keep importing it from export
    with pytest.raises(OrinprofError, match="does not exist"):
        graph.load_onnx(tmp_path / "missing.onnx")
    with pytest.raises(OrinprofError, match="is a directory"):
        graph.load_onnx(tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff\x00not a protobuf")
    with pytest.raises(OrinprofError, match="not an ONNX model"):
        graph.load_onnx(junk)


def test_atomic_writes_leave_whole_files_only(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "table.csv"
    graph.atomic_write(out, "a,b\n1,2\n")
    assert out.read_text() == "a,b\n1,2\n"
    with pytest.raises(TypeError):
        graph.atomic_write(out, 3)  # type: ignore[arg-type]
    assert out.read_text() == "a,b\n1,2\n"  # the failed write left the old file whole
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [_vi("x", [1])], [_vi("y", [1])])
    graph.atomic_save_onnx(m, tmp_path / "m.onnx")
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node[0].name == "r"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.onnx", "sub", "table.csv"]
