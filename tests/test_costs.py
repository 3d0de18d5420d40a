"""node_costs on tiny hand-built graphs whose FLOPs and bytes are computed by hand in each test."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinprof.costs import dynamic_dims, fix_input_shapes, node_costs

F32, I8 = TensorProto.FLOAT, TensorProto.INT8


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _vi(name, shape, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, shape)


def _w(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.ones(shape, dtype=dtype), name)


def _row(df, node):
    return df.set_index("node").loc[node]


def test_matmul_with_weight_is_a_gemm_with_batched_flops():
    # X[2,3,4] @ W[4,5]: out 2·3·5 = 30 elements, each a K=4 dot product → 2·30·4 = 240 FLOPs
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [2, 3, 4])],
        [_vi("y", [2, 3, 5])],
        [_w("w", [4, 5])],
    )
    r = _row(node_costs(m), "mm")
    assert r["flops"] == 240
    assert r["weight_bytes"] == 4 * 5 * 4
    assert r["act_in_bytes"] == 2 * 3 * 4 * 4
    assert r["act_out_bytes"] == 2 * 3 * 5 * 4
    assert bool(r["gemm"]) and r["kind"] == "gemm" and r["status"] == "ok"


def test_activation_matmul_is_not_a_gemm():
    # attention scores: A[2,4,3,8] @ B[2,4,8,3] → [2,4,3,3] = 72 elements × K=8 × 2
    m = _model(
        [helper.make_node("MatMul", ["a", "b"], ["y"], name="bmm1")],
        [_vi("a", [2, 4, 3, 8]), _vi("b", [2, 4, 8, 3])],
        [_vi("y", [2, 4, 3, 3])],
    )
    r = _row(node_costs(m), "bmm1")
    assert r["flops"] == 2 * 72 * 8
    assert not bool(r["gemm"]) and r["kind"] == "matmul"
    assert r["weight_bytes"] == 0
    assert r["act_in_bytes"] == (2 * 4 * 3 * 8 + 2 * 4 * 8 * 3) * 4


def test_gemm_trans_b_and_bias():
    # A[3,4], B[5,4] with transB → [3,5]; 2·15·4 MACs-as-FLOPs + 15 bias adds
    m = _model(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="fc", transB=1)],
        [_vi("a", [3, 4])],
        [_vi("y", [3, 5])],
        [_w("b", [5, 4]), _w("c", [5])],
    )
    r = _row(node_costs(m), "fc")
    assert r["flops"] == 2 * 15 * 4 + 15
    assert r["weight_bytes"] == (20 + 5) * 4


def test_conv_flops():
    # X[1,2,5,5] * W[4,2,3,3], no padding → [1,4,3,3] = 36 outputs, each 2·3·3 = 18 MACs, + bias
    m = _model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")],
        [_vi("x", [1, 2, 5, 5])],
        [_vi("y", [1, 4, 3, 3])],
        [_w("w", [4, 2, 3, 3]), _w("b", [4])],
    )
    r = _row(node_costs(m), "conv")
    assert r["flops"] == 2 * 36 * 18 + 36
    assert r["kind"] == "conv"


def test_softmax_and_layernorm_per_element_estimates():
    m = _model(
        [
            helper.make_node("Softmax", ["x"], ["s"], name="sm", axis=-1),
            helper.make_node("LayerNormalization", ["s", "g", "b"], ["y"], name="ln", axis=-1),
        ],
        [_vi("x", [2, 8])],
        [_vi("y", [2, 8])],
        [_w("g", [8]), _w("b", [8])],
    )
    df = node_costs(m)
    assert _row(df, "sm")["flops"] == 5 * 16
    assert _row(df, "ln")["flops"] == 8 * 16
    assert _row(df, "ln")["kind"] == "norm"
    assert _row(df, "ln")["weight_bytes"] == 2 * 8 * 4


def test_qdq_weights_count_as_int8_and_qdq_nodes_fold():
    # weight int8 [4,5] + per-channel fp32 scale [5] + int8 zero point [5] → 20 + 20 + 5 bytes
    # activation Q/DQ: the MatMul reads x as int8 → 2·3·4·1 bytes
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dq_w", axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["y"], name="mm"),
    ]
    inits = [
        _w("wq", [4, 5], np.int8),
        _w("ws", [5]),
        _w("wz", [5], np.int8),
        numpy_helper.from_array(np.array(0.1, np.float32), "xs"),
        numpy_helper.from_array(np.array(0, np.int8), "xz"),
    ]
    m = _model(nodes, [_vi("x", [2, 3, 4])], [_vi("y", [2, 3, 5])], inits)
    df = node_costs(m)
    r = _row(df, "mm")
    assert r["weight_bytes"] == 20 + 20 + 5
    assert r["act_in_bytes"] == 2 * 3 * 4 * 1
    assert r["flops"] == 2 * 2 * 3 * 5 * 4
    assert bool(r["gemm"]) and bool(r["int8_weights"])
    for name in ("q_x", "dq_x", "dq_w"):
        assert _row(df, name)["status"] == "folded"
        assert _row(df, name)["flops"] == 0


def test_weight_transpose_folds_and_its_bytes_move_to_the_gemm():
    m = _model(
        [
            helper.make_node("Transpose", ["w"], ["wt"], name="t", perm=[1, 0]),
            helper.make_node("MatMul", ["x", "wt"], ["y"], name="mm"),
            helper.make_node("Reshape", ["y", "shape"], ["z"], name="view"),
        ],
        [_vi("x", [3, 4])],
        [_vi("z", [15])],
        [_w("w", [5, 4]), numpy_helper.from_array(np.array([15], np.int64), "shape")],
    )
    df = node_costs(m)
    assert _row(df, "t")["status"] == "folded"
    assert _row(df, "view")["status"] == "folded" and _row(df, "view")["act_in_bytes"] == 0
    assert _row(df, "mm")["weight_bytes"] == 20 * 4
    assert bool(_row(df, "mm")["gemm"])


def test_dynamic_dims_give_no_shape_until_fixed():
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", ["batch", "seq", 4])],
        [_vi("y", ["batch", "seq", 5])],
        [_w("w", [4, 5])],
    )
    assert dynamic_dims(m) == ["x:0=batch", "x:1=seq"]
    r = _row(node_costs(m), "mm")
    assert r["status"] == "no_shape" and math.isnan(r["flops"]) and math.isnan(r["act_in_bytes"])
    fixed = _row(node_costs(m, batch=2, seq_len=3), "mm")
    assert fixed["status"] == "ok" and fixed["flops"] == 2 * 2 * 3 * 5 * 4
    assert dynamic_dims(fix_input_shapes(m, batch=2, seq_len=3)) == []


def test_fp16_dtype_sizes_and_unnamed_nodes():
    m = _model(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        [_vi("x", [4, 4], TensorProto.FLOAT16)],
        [_vi("y", [4, 4], TensorProto.FLOAT16)],
    )
    df = node_costs(m)
    assert list(df["node"]) == ["Add_0"]
    assert df.loc[0, "act_out_bytes"] == 16 * 2
    assert df.loc[0, "flops"] == 16


@pytest.mark.parametrize("seq", [8, 16])
def test_flops_scale_with_sequence_length(seq):
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [1, "seq", 4])],
        [_vi("y", [1, "seq", 5])],
        [_w("w", [4, 5])],
    )
    assert _row(node_costs(m, seq_len=seq), "mm")["flops"] == 2 * seq * 5 * 4


def test_model_checker_accepts_test_graphs():
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [2, 3, 4])],
        [_vi("y", [2, 3, 5])],
        [_w("w", [4, 5])],
    )
    onnx.checker.check_model(m)


def test_dynamic_shape_arithmetic_is_folded_so_reshape_resolves():
    # x[1, seq, 8] → Shape → Gather(1) → Div 2 → Unsqueeze → Concat([1], ·, [16]) → Reshape → MatMul W[16,4]
    i64 = lambda n, v: numpy_helper.from_array(np.array(v, np.int64), n)  # noqa: E731
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "one"], ["s"], name="gather", axis=0),
        helper.make_node("Div", ["s", "two"], ["half"], name="div"),
        helper.make_node("Unsqueeze", ["half", "zero_axis"], ["u"], name="unsq"),
        helper.make_node("Concat", ["lead", "u", "tail"], ["new_shape"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["xr"], name="reshape"),
        helper.make_node("MatMul", ["xr", "w"], ["y"], name="mm"),
    ]
    inits = [
        i64("one", 1),
        i64("two", 2),
        i64("zero_axis", [0]),
        i64("lead", [1]),
        i64("tail", [16]),
        _w("w", [16, 4]),
    ]
    m = _model(nodes, [_vi("x", [1, "seq", 8])], [_vi("y", [1, None, 4])], inits)
    df = node_costs(m, seq_len=6)
    r = _row(df, "mm")
    # xr = [1, 3, 16] → out [1, 3, 4]: 2 · 12 · 16
    assert r["status"] == "ok" and r["flops"] == 2 * 12 * 16
    assert (df.set_index("node").loc[["shape", "gather", "div", "concat"], "status"] == "folded").all()


def test_pointwise_fusion_bytes_between_gemm_and_activation():
    # X[2,4] @ W[4,8] → Add bias → Relu: the GEMM's output and the Add's output stay on chip
    m = _model(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
            helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
            helper.make_node("Relu", ["hb"], ["y"], name="relu"),
        ],
        [_vi("x", [2, 4])],
        [_vi("y", [2, 8])],
        [_w("w", [4, 8]), _w("b", [8])],
    )
    df = node_costs(m).set_index("node")
    assert df.loc["mm", "fused_out_bytes"] == 2 * 8 * 4
    assert df.loc["bias", "fused_in_bytes"] == 2 * 8 * 4 and df.loc["bias", "fused_out_bytes"] == 2 * 8 * 4
    assert df.loc["relu", "fused_in_bytes"] == 2 * 8 * 4
    assert df.loc["relu", "fused_out_bytes"] == 0  # a graph output is written
