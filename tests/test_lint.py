"""Q/DQ lint on a tiny one-block attention model quantized by ONNX Runtime's quantize_static (QDQ, the
spine's INT8 path), then broken one precondition at a time.  Expected verdicts follow NVIDIA's
INT8 fused-MHA rules (quantization_path.md §1.4), not the lint's own output."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from orinprof import results
from orinprof.errors import OrinprofError
from orinprof.lint import CHECKS, block_verdicts, lint_qdq
from orinprof.quantize import TRT_EXTRA_OPTIONS


def attention_model(seq: int = 16, hidden: int = 64, heads: int = 2, seed: int = 0) -> onnx.ModelProto:
    """x → Q/K/V projections (MatMul+bias) → heads → MatMul → scale → Softmax → MatMul → out proj
    → residual Add."""
    rng = np.random.default_rng(seed)
    head = hidden // heads
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(nh.from_array(np.asarray(value), name))
        return name

    def weight(name: str, shape: tuple[int, ...]) -> str:
        return const(name, (rng.standard_normal(shape) * 0.1).astype(np.float32))

    const("shape4", np.array([1, seq, heads, head], dtype=np.int64))
    const("shape3", np.array([1, seq, hidden], dtype=np.int64))
    const("scale", np.array(1.0 / np.sqrt(head), dtype=np.float32))
    for p in "qkv":
        nodes += [
            oh.make_node("MatMul", ["x", weight(f"W{p}", (hidden, hidden))], [f"{p}_mm"], name=f"/attn/{p}/MatMul"),
            oh.make_node("Add", [f"{p}_mm", weight(f"b{p}", (hidden,))], [f"{p}_b"], name=f"/attn/{p}/Add"),
            oh.make_node("Reshape", [f"{p}_b", "shape4"], [f"{p}_r"], name=f"/attn/{p}/Reshape"),
            oh.make_node(
                "Transpose",
                [f"{p}_r"],
                [f"{p}_t"],
                name=f"/attn/{p}/Transpose",
                perm=[0, 2, 3, 1] if p == "k" else [0, 2, 1, 3],
            ),
        ]
    nodes += [
        oh.make_node("MatMul", ["q_t", "k_t"], ["scores"], name="/attn/MatMul"),
        oh.make_node("Mul", ["scores", "scale"], ["scaled"], name="/attn/Mul"),
        oh.make_node("Softmax", ["scaled"], ["probs"], axis=-1, name="/attn/Softmax"),
        oh.make_node("MatMul", ["probs", "v_t"], ["ctx"], name="/attn/MatMul_1"),
        oh.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3], name="/attn/Transpose"),
        oh.make_node("Reshape", ["ctx_t", "shape3"], ["ctx_r"], name="/attn/Reshape"),
        oh.make_node("MatMul", ["ctx_r", weight("Wo", (hidden, hidden))], ["o_mm"], name="/attn/out/MatMul"),
        oh.make_node("Add", ["o_mm", weight("bo", (hidden,))], ["o_b"], name="/attn/out/Add"),
        oh.make_node("Add", ["o_b", "x"], ["y"], name="/attn/residual/Add"),
    ]
    graph = oh.make_graph(
        nodes,
        "attention",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hidden])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, hidden])],
        inits,
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def quantize(model: onnx.ModelProto, tmp_dir, seq: int, hidden: int) -> onnx.ModelProto:
    """The spine's TRT-safe ORT QDQ settings (quantization_path.md §0.6)."""
    ort_q = pytest.importorskip("onnxruntime.quantization")
    src, dst = tmp_dir / "fp32.onnx", tmp_dir / "int8.onnx"
    onnx.save(model, src)
    feeds = iter(
        [{"x": np.random.default_rng(i).standard_normal((1, seq, hidden)).astype(np.float32)} for i in range(4)]
    )

    class Reader(ort_q.CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    ort_q.quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=ort_q.QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        activation_type=ort_q.QuantType.QInt8,
        weight_type=ort_q.QuantType.QInt8,
        extra_options=dict(TRT_EXTRA_OPTIONS),  # exactly what the spine's INT8 plans use
    )
    return onnx.load(str(dst))


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> onnx.ModelProto:
    return quantize(attention_model(), tmp_path_factory.mktemp("q"), 16, 64)


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.ModelProto.FromString(model.SerializeToString())


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(i for i in model.graph.initializer if i.name == name)


def insert_before(model: onnx.ModelProto, consumer: str, new: list[onnx.NodeProto]) -> None:
    nodes = list(model.graph.node)
    at = next(i for i, n in enumerate(nodes) if n.name == consumer)
    del model.graph.node[:]
    model.graph.node.extend(nodes[:at] + new + nodes[at:])


def status(df) -> dict[str, object]:
    return dict(zip(df["check"], df["ok"], strict=True))


def test_ort_qdq_attention_is_fusable(quantized):
    df = lint_qdq(quantized)
    assert list(df["check"]) == list(CHECKS)
    assert all(ok is True for ok in df["ok"]), df[["check", "ok", "detail"]]
    verdicts = block_verdicts(df)
    assert verdicts["verdict"].tolist() == ["fusable"] and verdicts["reason"].tolist() == [""]
    results.check(df, "qdq_lint")
    assert "qdq_lint" in results.TABLES


def test_removing_softmax_output_qdq_makes_it_not_fusable(quantized):
    model = copy(quantized)
    bmm2 = node(model, "/attn/MatMul_1")
    assert bmm2.input[0] == "probs_DequantizeLinear_Output"  # ORT's Q/DQ on the probabilities
    bmm2.input[0] = "probs"
    kept = [n for n in model.graph.node if n.name not in ("probs_QuantizeLinear", "probs_DequantizeLinear")]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    ok = status(lint_qdq(model))
    assert ok["softmax_output_qdq"] is False and ok["bmm2_inputs_qdq"] is False
    assert ok["bmm1_inputs_qdq"] is True and ok["head_size"] is True
    verdict = block_verdicts(lint_qdq(model)).iloc[0]
    assert verdict["verdict"] == "not fusable" and "softmax_output_qdq" in verdict["reason"]


def test_head_size_48_is_not_int8_fusable(tmp_path):
    model = quantize(attention_model(hidden=96, heads=2), tmp_path, 16, 96)
    df = lint_qdq(model)
    assert status(df)["head_size"] is False and "48" in df.set_index("check").loc["head_size", "detail"]
    assert block_verdicts(df)["verdict"].tolist() == ["not fusable"]


def test_sequence_over_512_is_not_int8_fusable(tmp_path):
    ok = status(lint_qdq(quantize(attention_model(seq=520), tmp_path, 520, 64)))
    assert ok["seq_len"] is False and ok["head_size"] is True


def test_nonzero_zero_point_and_fp16_scale_are_flagged(quantized):
    model = copy(quantized)
    zp = initializer(model, "probs_zero_point")
    zp.CopyFrom(nh.from_array(np.array(3, dtype=np.int8), "probs_zero_point"))
    scale = initializer(model, "q_t_scale")
    scale.CopyFrom(nh.from_array(nh.to_array(scale).astype(np.float16), "q_t_scale"))
    df = lint_qdq(model)
    ok = status(df)
    assert ok["symmetric_int8"] is False and "probs_" in df.set_index("check").loc["symmetric_int8", "detail"]
    assert ok["float32_scales"] is False and "FLOAT16" in df.set_index("check").loc["float32_scales", "detail"]


def test_int32_bias_dequantize_is_flagged(quantized):
    model = copy(quantized)
    model.graph.initializer.extend(
        [
            nh.from_array(np.zeros(64, dtype=np.int32), "bq_int32"),
            nh.from_array(np.array(0.01, dtype=np.float32), "bq_scale"),
            nh.from_array(np.array(0, dtype=np.int32), "bq_zp"),
        ]
    )
    insert_before(
        model,
        "/attn/q/Add",
        [oh.make_node("DequantizeLinear", ["bq_int32", "bq_scale", "bq_zp"], ["bq_dq"], name="bq_DequantizeLinear")],
    )
    node(model, "/attn/q/Add").input[1] = "bq_dq"
    df = lint_qdq(model)
    assert status(df)["no_int32_bias_dq"] is False
    assert "bq_DequantizeLinear" in df.set_index("check").loc["no_int32_bias_dq", "detail"]


def test_qdq_on_gemm_output_is_flagged(quantized):
    model = copy(quantized)
    model.graph.initializer.extend(
        [
            nh.from_array(np.array(0.05, dtype=np.float32), "qmm_scale"),
            nh.from_array(np.array(0, dtype=np.int8), "qmm_zp"),
        ]
    )
    insert_before(
        model,
        "/attn/q/Add",
        [
            oh.make_node("QuantizeLinear", ["q_mm", "qmm_scale", "qmm_zp"], ["q_mm_q"], name="q_mm_QuantizeLinear"),
            oh.make_node(
                "DequantizeLinear",
                ["q_mm_q", "qmm_scale", "qmm_zp"],
                ["q_mm_dq"],
                name="q_mm_DequantizeLinear",
            ),
        ],
    )
    node(model, "/attn/q/Add").input[0] = "q_mm_dq"
    ok = status(lint_qdq(model))
    assert ok["no_gemm_output_qdq"] is False and ok["bmm1_inputs_qdq"] is True


def test_float_model_is_not_fusable():
    df = lint_qdq(attention_model())
    ok = status(df)
    assert ok["bmm1_inputs_qdq"] is False and ok["softmax_output_qdq"] is False
    assert block_verdicts(df)["verdict"].tolist() == ["not fusable"]


def test_model_without_attention_is_a_user_error():
    graph = oh.make_graph(
        [oh.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "mlp",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [nh.from_array(np.eye(4, dtype=np.float32), "w")],
    )
    with pytest.raises(OrinprofError, match="no attention block"):
        lint_qdq(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)]))


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(OrinprofError, match="does not exist"):
        lint_qdq(tmp_path / "nope.onnx")


# ------------------------------------------------------------------ review m9: check kinds, Cast, versions


def test_every_check_has_a_kind(quantized):
    df = lint_qdq(quantized)
    kinds = dict(zip(df["check"], df["kind"], strict=True))
    assert kinds["bmm1_inputs_qdq"] == "fusion" and kinds["float32_scales"] == "parser"
    assert kinds["no_gemm_output_qdq"] == "advice"


def test_cast_between_dequantize_and_bmm_blocks_fusion(quantized):
    """m9a: a Cast between DQ and a batched GEMM blocks DQ→GEMM fusion; it was walked through."""
    model = copy(quantized)
    bmm1 = node(model, "/attn/MatMul")
    src = bmm1.input[0]
    insert_before(model, "/attn/MatMul", [oh.make_node("Cast", [src], ["q_cast"], to=TensorProto.FLOAT, name="q_Cast")])
    node(model, "/attn/MatMul").input[0] = "q_cast"  # insert_before copied the nodes
    df = lint_qdq(model)
    assert status(df)["bmm1_inputs_qdq"] is False
    assert "Cast after the DequantizeLinear" in df.set_index("check").loc["bmm1_inputs_qdq", "detail"]
    assert block_verdicts(df)["verdict"].tolist() == ["not fusable"]


def test_fp16_scales_decide_the_verdict_only_on_trt8(quantized):
    """m9b: FP16 scales are an 8.x parser rule; on TensorRT 10 the core is fusable."""
    model = copy(quantized)
    scale = initializer(model, "q_t_scale")
    scale.CopyFrom(nh.from_array(nh.to_array(scale).astype(np.float16), "q_t_scale"))
    on_86 = block_verdicts(lint_qdq(model)).iloc[0]
    assert on_86["verdict"] == "not fusable" and "float32_scales" in on_86["reason"]
    on_10 = lint_qdq(model, trt_version=(10, 3))
    assert status(on_10)["float32_scales"] is False  # still reported
    assert block_verdicts(on_10)["verdict"].tolist() == ["fusable"]


def test_gemm_output_qdq_is_advice_not_a_verdict(quantized):
    """m9b: NVIDIA's placement advice decided the fused-MHA verdict."""
    model = copy(quantized)
    model.graph.initializer.extend(
        [nh.from_array(np.array(0.05, dtype=np.float32), "s2"), nh.from_array(np.array(0, dtype=np.int8), "z2")]
    )
    insert_before(
        model,
        "/attn/q/Add",
        [
            oh.make_node("QuantizeLinear", ["q_mm", "s2", "z2"], ["q_mm_q"], name="q_mm_QuantizeLinear"),
            oh.make_node("DequantizeLinear", ["q_mm_q", "s2", "z2"], ["q_mm_dq"], name="q_mm_DequantizeLinear"),
        ],
    )
    node(model, "/attn/q/Add").input[0] = "q_mm_dq"
    df = lint_qdq(model)
    assert status(df)["no_gemm_output_qdq"] is False
    assert block_verdicts(df)["verdict"].tolist() == ["fusable"]


def test_per_axis_activation_scale_is_flagged(quantized):
    """m9c: the parser requires per-tensor activation scales."""
    model = copy(quantized)
    scale = initializer(model, "probs_scale")
    value = float(nh.to_array(scale))
    scale.CopyFrom(nh.from_array(np.array([value, value], dtype=np.float32), "probs_scale"))
    df = lint_qdq(model)
    assert status(df)["per_tensor_activations"] is False
    assert "probs_" in df.set_index("check").loc["per_tensor_activations", "detail"]
    assert block_verdicts(df)["verdict"].tolist() == ["not fusable"]


def test_attention_scale_folded_from_constants_is_walked_through(quantized):
    """The lint uses the one constness rule (``orinprof.graph.constant_tensors``): a tensor
    computed only from constants is a constant.  Its former private index counted initializers
    and ``Constant`` outputs only, so ``Q ÷ Sqrt(head_dim)`` (a scale torch exports as arithmetic
    on a constant) stopped the walk from BMM1 back to its DequantizeLinear and the block read
    "not fusable".  Dividing by an activation still stops the walk."""

    def scaled_query(divisor_inputs: list[str]) -> onnx.ModelProto:
        model = copy(quantized)
        src = node(model, "/attn/MatMul").input[0]
        model.graph.initializer.append(nh.from_array(np.array(32.0, dtype=np.float32), "head_dim"))
        insert_before(
            model,
            "/attn/MatMul",
            [
                oh.make_node("Sqrt", divisor_inputs, ["sqrt_d"], name="/attn/q/Sqrt"),
                oh.make_node("Div", [src, "sqrt_d"], ["q_scaled"], name="/attn/q/Div"),
            ],
        )
        node(model, "/attn/MatMul").input[0] = "q_scaled"
        return model

    folded = lint_qdq(scaled_query(["head_dim"]))
    assert status(folded)["bmm1_inputs_qdq"] is True
    assert block_verdicts(folded)["verdict"].tolist() == ["fusable"]

    by_activation = lint_qdq(scaled_query(["x"]))
    assert status(by_activation)["bmm1_inputs_qdq"] is False
    assert "Div" in by_activation.set_index("check").loc["bmm1_inputs_qdq", "detail"]
    assert block_verdicts(by_activation)["verdict"].tolist() == ["not fusable"]
