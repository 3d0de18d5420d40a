"""Strongly typed INT8 plans (review M2): an FP16 graph with FP16 Q/DQ, equal to the strong fp16
plan everywhere except the quantized GEMMs, with the weak plan's Q/DQ.

Rules checked (no TensorRT runs here):

* ONNX: Q/DQ scales are ``tensor(float)`` only up to opset 18, FP16 from opset 19
  (onnx/onnx docs/Changelog.md, QuantizeLinear-13/19, DequantizeLinear-13/19): ``onnx.checker``.
* TensorRT strong typing: a DequantizeLinear's output has its scale's type (onnx-tensorrt 10.1-GA
  onnxOpImporters.cpp:L1603-1606), every other tensor its ONNX type (NvInfer.h STRONGLY_TYPED;
  the fake in tests/fakes/engine_model.py).
* A Cast between DQ and a GEMM blocks DQ→GEMM fusion (review m9): none may sit there;
  ``lint-qdq`` must call both attention cores fusable for TensorRT 10.3 and 11.1.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from fakes.engine_model import BuildRules, engine_layers
from orinprof import classify, lint, quantize
from orinprof.errors import OrinprofError
from orinprof.export import synthesize
from orinprof.plans import INT8_PLAN_NAMES, get_plan

ort = pytest.importorskip("onnxruntime")

QDQ = ("QuantizeLinear", "DequantizeLinear")


@pytest.fixture(scope="module")
def plans(tiny_export):  # type: ignore[no-untyped-def]
    exported = tiny_export("bert-tiny")
    classes = classify.classify_file(exported.path)
    calib = quantize.synthetic_calibration(exported, 4)
    weak = {name: quantize.apply_plan(exported, get_plan(name), classes, calib).path for name in INT8_PLAN_NAMES}
    fp16 = quantize.apply_plan(exported, get_plan("fp16"), classes).path
    strong = {name: quantize.trt_plan_source(path, name, strongly_typed=True) for name, path in weak.items()}
    return exported, fp16, weak, strong


def _without_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with every Q→DQ pair removed: each DQ consumer reads the Q's input again."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    producer = {o: n for n in model.graph.node for o in n.output}
    source: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            q = producer[node.input[0]]
            assert q.op_type == "QuantizeLinear"
            source[node.output[0]] = q.input[0]
    keep = [n for n in model.graph.node if n.op_type not in QDQ]
    for node in keep:
        for k, name in enumerate(node.input):
            node.input[k] = source.get(name, name)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {i for n in keep for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    return model


def _nodes(model: onnx.ModelProto) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...], str]]:
    return sorted(
        (n.op_type, n.name, tuple(n.input), tuple(n.output), str(sorted((a.name, str(a)) for a in n.attribute)))
        for n in model.graph.node
    )


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({v.name: v.type.tensor_type.elem_type for v in inferred.graph.output})
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return types


def _scales(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    inits = {t.name: t for t in model.graph.initializer}
    return {n.name: numpy_helper.to_array(inits[n.input[1]]) for n in model.graph.node if n.op_type in QDQ}


@pytest.mark.parametrize("name", INT8_PLAN_NAMES)
def test_outside_the_qdq_the_strong_int8_plan_is_the_strong_fp16_plan(plans, name: str) -> None:  # type: ignore[no-untyped-def]
    _exported, fp16_path, _weak, strong = plans
    assert strong[name].name.endswith(".strong-fp16.onnx")
    baseline = onnx.load(str(fp16_path))
    stripped = _without_qdq(onnx.load(str(strong[name])))
    # the same nodes (names, wiring, attributes), Casts around LayerNorm/Softmax included
    assert _nodes(stripped) == _nodes(baseline)
    # and every tensor has the same element type: FP16 except the fp16 plan's FP32 keep-list
    base_types, strong_types = _types(baseline), _types(stripped)
    assert base_types == {k: v for k, v in strong_types.items() if k in base_types}
    assert Counter(base_types.values())[TensorProto.FLOAT16] > Counter(base_types.values())[TensorProto.FLOAT]
    # the weights the int8 GEMMs read are FP16 like the baseline's
    assert {t.name: t.data_type for t in stripped.graph.initializer} == {
        t.name: t.data_type for t in baseline.graph.initializer
    }


@pytest.mark.parametrize("name", INT8_PLAN_NAMES)
def test_qdq_are_the_weak_plans_with_fp16_scales_at_opset_19(plans, name: str) -> None:  # type: ignore[no-untyped-def]
    _exported, _fp16, weak, strong = plans
    weak_model, strong_model = onnx.load(str(weak[name])), onnx.load(str(strong[name]))
    onnx.checker.check_model(strong_model, full_check=True)
    assert quantize._default_opset(weak_model) == 17
    assert quantize._default_opset(strong_model) == quantize.FP16_QDQ_OPSET == 19

    def qdq(model: onnx.ModelProto) -> list[tuple[str, str, tuple[str, ...], str]]:
        inits = {t.name: t for t in model.graph.initializer}
        rows = []
        for n in model.graph.node:
            if n.op_type in QDQ:
                zero_point = numpy_helper.to_array(inits[n.input[2]])
                rows.append((n.op_type, n.name, tuple(n.output), f"{n.attribute}|{zero_point.dtype}|{zero_point}"))
        return sorted(rows)

    assert qdq(strong_model) == qdq(weak_model) and qdq(weak_model)
    weak_scales, strong_scales = _scales(weak_model), _scales(strong_model)
    assert all(s.dtype == np.float16 for s in strong_scales.values())
    assert all(w.dtype == np.float32 for w in weak_scales.values())
    for node, scale in strong_scales.items():
        np.testing.assert_array_equal(scale, weak_scales[node].astype(np.float16))
    # the rule that forces opset 19: the same FP16 scales are invalid ONNX at opset 17
    at_17 = onnx.ModelProto.FromString(strong_model.SerializeToString())
    next(o for o in at_17.opset_import if o.domain in ("", "ai.onnx")).version = 17
    with pytest.raises(onnx.shape_inference.InferenceError, match=r"QuantizeLinear.*float16"):
        onnx.checker.check_model(at_17, full_check=True)


@pytest.mark.parametrize("name", INT8_PLAN_NAMES)
def test_no_cast_between_dequantize_and_gemm(plans, name: str) -> None:  # type: ignore[no-untyped-def]
    _exported, _fp16, _weak, strong = plans
    model = onnx.load(str(strong[name]))
    producer = {o: n for n in model.graph.node for o in n.output}
    gemm_inputs = [producer.get(i) for n in model.graph.node if n.op_type == "MatMul" for i in n.input[:2]]
    assert not any(p is not None and p.op_type == "Cast" and producer.get(p.input[0]) is not None
                   and producer[p.input[0]].op_type == "DequantizeLinear" for p in gemm_inputs)  # fmt: skip
    assert sum(p is not None and p.op_type == "DequantizeLinear" for p in gemm_inputs) > 0


@pytest.mark.parametrize("name", ["int8-attn", "int8-all"])
def test_lint_qdq_calls_the_strong_cores_fusable_on_tensorrt_10_and_11(plans, name: str) -> None:  # type: ignore[no-untyped-def]
    _exported, _fp16, _weak, strong = plans
    for version in ((10, 3), (11, 1)):
        verdicts = lint.block_verdicts(lint.lint_qdq(strong[name], trt_version=version))
        assert len(verdicts) == 2 and (verdicts["verdict"] == "fusable").all(), verdicts
    # TensorRT 8.6 reads scales as float: the FP16 file is not for it (8.x has no strong typing)
    verdicts = lint.block_verdicts(lint.lint_qdq(strong[name], trt_version=(8, 6)))
    assert (verdicts["verdict"] == "not fusable").all() and verdicts["reason"].str.contains("FLOAT16").all()


def test_strong_int8_keeps_fidelity_on_onnx_runtime_cpu(plans) -> None:  # type: ignore[no-untyped-def]
    exported, _fp16, _weak, strong = plans
    feeds = synthesize(exported.inputs, np.random.default_rng(11))

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        return np.asarray(session.run(None, {k: v for k, v in feeds.items() if k in names})[0], dtype=np.float64)

    reference = run(exported.path).ravel()
    for name in INT8_PLAN_NAMES:
        out = run(strong[name]).ravel()
        cosine = float(out @ reference / (np.linalg.norm(out) * np.linalg.norm(reference)))
        assert cosine >= 0.99, (name, cosine)


def _build(model: onnx.ModelProto) -> dict[str, str]:
    """Layer → precision of a FAKE strongly typed TensorRT 11 build (no fused INT8 MHA)."""
    info = engine_layers(model, BuildRules(11, strongly_typed=True))
    return {lay["Name"]: lay["Outputs"][0]["Format/Datatype"] for lay in info["Layers"]}


def test_fake_strong_build_runs_fp16_outside_the_int8_gemms(plans) -> None:  # type: ignore[no-untyped-def]
    _exported, fp16_path, weak, strong = plans
    model = onnx.load(str(strong["int8-ffn"]))
    producer = {o: n for n in model.graph.node for o in n.output}
    quantized = {
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and any(producer.get(i) is not None and producer[i].op_type == QDQ[1] for i in n.input)
    }
    built, baseline = _build(model), _build(onnx.load(str(fp16_path)))
    assert quantized and all("Int8" in built[name] for name in quantized)
    others = {name: fmt for name, fmt in built.items() if name not in quantized}
    # every other layer is the baseline's, in the baseline's precision (the FFN GEMMs aside, int8-ffn
    # leaves the graph as it was, fused FP16 attention cores included)
    assert others == {name: fmt for name, fmt in baseline.items() if name not in quantized}
    assert {fmt for name, fmt in baseline.items() if name in quantized} == {"Row major linear FP16 format"}
    # the control (review M2): the weak plan's FP32 Q/DQ graph built strongly typed runs FP32 there
    fp32_built = _build(onnx.load(str(weak["int8-ffn"])))
    assert any("FP32" in fmt for name, fmt in fp32_built.items() if name in baseline and "FP16" in baseline[name])


def test_strong_file_is_reused_and_weak_typing_keeps_the_fp32_plan(plans) -> None:  # type: ignore[no-untyped-def]
    _exported, _fp16, weak, strong = plans
    stamp = strong["int8-all"].stat().st_mtime_ns
    assert quantize.trt_plan_source(weak["int8-all"], "int8-all", strongly_typed=True) == strong["int8-all"]
    assert strong["int8-all"].stat().st_mtime_ns == stamp
    assert quantize.trt_plan_source(weak["int8-all"], "int8-all", strongly_typed=False) == weak["int8-all"]
    # an FP16 Q/DQ ONNX (what ModelOpt writes) is used as it is
    assert quantize.trt_plan_source(strong["int8-all"], "int8-all", strongly_typed=True) == strong["int8-all"]


def test_a_plan_that_cannot_be_raised_to_opset_19_is_refused_in_one_line(plans, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _exported, _fp16, weak, _strong = plans
    model = onnx.load(str(weak["int8-ffn"]))
    # an op from an unknown version of the default domain: ONNX's version converter has no adapter
    model.graph.node.append(onnx.helper.make_node("NoSuchOp", ["input_ids"], ["unused"], name="odd"))
    bad = tmp_path / "odd.int8-ffn.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(OrinprofError, match="opset 19") as err:
        quantize.trt_plan_source(bad, "int8-ffn", strongly_typed=True)
    assert "\n" not in str(err.value) and "--opset 19" in err.value.hint


def test_fake_strong_build_runs_a_gemm_behind_a_cast_after_dq_in_fp16() -> None:
    """The fake's m9 rule: a Cast between DequantizeLinear and MatMul keeps the MatMul out of INT8
    (why :func:`quantize.strongly_typed_int8_file` refuses such a graph)."""
    from onnx import helper

    def graph(cast: bool) -> onnx.ModelProto:
        inits = [
            helper.make_tensor("w", TensorProto.FLOAT16, [4, 4], np.eye(4, dtype=np.float16).ravel().tolist()),
            helper.make_tensor("s", TensorProto.FLOAT16, [], [0.5]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        ]
        if cast:
            nodes.append(helper.make_node("Cast", ["xd"], ["xc"], name="cast", to=TensorProto.FLOAT16))
        nodes.append(helper.make_node("MatMul", ["xc" if cast else "xd", "w"], ["y"], name="mm"))
        io = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, [2, 4]) for n in ("x", "y")]
        return helper.make_model(helper.make_graph(nodes, "g", io[:1], io[1:], inits), opset_imports=[
            helper.make_opsetid("", 19)])  # fmt: skip

    assert "Int8" in _build(graph(cast=False))["mm"]
    assert _build(graph(cast=True))["mm"] == "Row major linear FP16 format"
    assert quantize._casts_between_dq_and_gemm(graph(cast=True)) == ["mm"]
