"""The analysed model on hand-built graphs: plan files inherit the source map by node identity,
runtime graphs map back by tensor identity, a node spanning classes is split by FLOPs, what maps to
nothing is ``unattributed``; and each ONNX file is loaded and classified once.

The runtime graphs below copy what ONNX Runtime's CPU optimiser was seen to write (bert-tiny,
onnxruntime 1.32, ``optimized_model_filepath``): a ``MatMul``+``Add`` pair becomes a ``Gemm`` named
``<MatMul name>/MatMulAddFusion`` between two inserted ``Reshape`` nodes with made-up tensors
(``gemm_input_reshape_arg``…), the bias, residual ``Add`` and ``LayerNormalization`` become
``SkipLayerNormalization_token_<n>`` writing the LayerNorm's output tensor, and a Q/DQ'd MatMul
keeps its name as a ``MatMulIntegerToFloat``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinprof import classify
from orinprof.analysed import AnalysedModel
from orinprof.attribute import attribute_layers, attribution_flags, class_totals

F32 = TensorProto.FLOAT
SHAPE = [1, 4, 8]


def _model(nodes, inputs, outputs, inits=()):  # type: ignore[no-untyped-def]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )


def _vi(name: str, shape: list[int] = SHAPE):  # type: ignore[no-untyped-def]
    return helper.make_tensor_value_info(name, F32, shape)


def _w(name: str, shape: list[int]):  # type: ignore[no-untyped-def]
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


#: source FFN block: x → up (MatMul) → up_bias → act (Relu) → down (MatMul) → down_bias → res (Add x) → ln
SOURCE_NODES = [
    ("up", "MatMul", ["x", "w1"], ["up_out"], "ffn"),
    ("up_bias", "Add", ["up_out", "b1"], ["up_bias_out"], "ffn"),
    ("act", "Relu", ["up_bias_out"], ["act_out"], "ffn"),
    ("down", "MatMul", ["act_out", "w2"], ["down_out"], "ffn"),
    ("down_bias", "Add", ["down_out", "b2"], ["down_bias_out"], "ffn"),
    ("res", "Add", ["down_bias_out", "x"], ["res_out"], "other"),
    ("ln", "LayerNormalization", ["res_out", "gamma", "beta"], ["y"], "norm"),
]
WEIGHTS = [_w("w1", [8, 8]), _w("b1", [8]), _w("w2", [8, 8]), _w("b2", [8]), _w("gamma", [8]), _w("beta", [8])]


def _source(tmp_path: Path) -> AnalysedModel:
    nodes = [
        helper.make_node(op, i, o, name=n, **({"axis": -1} if op == "LayerNormalization" else {}))
        for n, op, i, o, _ in SOURCE_NODES
    ]
    proto = _model(nodes, [_vi("x")], [_vi("y")], WEIGHTS)
    path = tmp_path / "src.onnx"
    onnx.save(proto, str(path))
    # the map is written here, not by the classifier, so these tests test the carrying alone
    classes = pd.DataFrame(
        {
            "node": [n for n, *_ in SOURCE_NODES],
            "op_type": [op for _, op, *_ in SOURCE_NODES],
            "layer_class": [c for *_, c in SOURCE_NODES],
            "block": pd.array([0] * len(SOURCE_NODES), dtype="Int64"),
            "role": ["ffn_up", "ffn_up", "ffn_act", "ffn_down", "ffn_down", "other", "norm"],
            "evidence": ["pattern"] * len(SOURCE_NODES),
        }
    )
    return AnalysedModel(path, proto, classes)


def _runtime() -> onnx.ModelProto:
    """bert-tiny's fusions (module docstring), on the source above."""
    shape = numpy_helper.from_array(np.array([4, 8], dtype=np.int64), "gemm_input_shape")
    back = numpy_helper.from_array(np.array([1, 4, 8], dtype=np.int64), "gemm_output_shape")
    nodes = [
        helper.make_node("Reshape", ["x", "gemm_input_shape"], ["gemm_input_reshape_arg"], name="gemm_input_reshape"),
        helper.make_node(
            "Gemm", ["gemm_input_reshape_arg", "w1", "b1"], ["gemm_output_reshape_arg"], name="up/MatMulAddFusion"
        ),
        helper.make_node(
            "Reshape", ["gemm_output_reshape_arg", "gemm_output_shape"], ["up_bias_out"], name="gemm_output_reshape"
        ),
        helper.make_node("Relu", ["up_bias_out"], ["act_out"], name="act"),
        helper.make_node("MatMulIntegerToFloat", ["act_out", "w2"], ["down_out"], name="down", domain="com.microsoft"),
        helper.make_node(
            "SkipLayerNormalization",
            ["down_out", "x", "gamma", "beta", "b2"],
            ["y"],
            name="SkipLayerNormalization_token_7",
            domain="com.microsoft",
        ),
        # a node of the runtime's own that stands for nothing in the source
        helper.make_node("Relu", ["extra"], ["extra_out"], name="Mystery_token_9"),
    ]
    return _model(nodes, [_vi("x"), _vi("extra")], [_vi("y"), _vi("extra_out")], [*WEIGHTS, shape, back])


def test_runtime_nodes_map_back_by_tensors_and_split_by_flops(tmp_path: Path) -> None:
    source = _source(tmp_path)
    rt = source.runtime_classes(_runtime()).set_index("node")
    # the fused Gemm covers the MatMul and its bias Add; its reshapes carry its class
    assert rt.loc["up/MatMulAddFusion", "layer_class"] == "ffn"
    assert set(rt.loc["up/MatMulAddFusion", "source_nodes"].split(";")) == {"up", "up_bias"}
    assert rt.loc["gemm_input_reshape", "layer_class"] == "ffn"
    assert rt.loc["gemm_output_reshape", "layer_class"] == "ffn"
    # a renamed op keeping the MatMul's name is the MatMul
    assert rt.loc["down", "layer_class"] == "ffn" and rt.loc["down", "source_nodes"] == "down"
    # SkipLayerNormalization_token_* spans three classes: split by its members' FLOPs
    skip = rt.loc["SkipLayerNormalization_token_7"]
    assert skip["layer_class"] == "mixed"
    assert set(skip["source_nodes"].split(";")) == {"down_bias", "res", "ln"}
    flops = source.flops
    members = {"ffn": "down_bias", "other": "res", "norm": "ln"}
    total = sum(flops[n] for n in members.values())
    split = dict(p.split("=") for p in skip["class_split"].split(";"))
    assert {c: float(f) for c, f in split.items()} == pytest.approx(
        {c: flops[n] / total for c, n in members.items()}, abs=1e-4
    )
    # nothing to map to: unattributed, never "other"
    assert rt.loc["Mystery_token_9", "layer_class"] == "unattributed"


def test_attribution_keeps_a_runtime_split_and_flags_unattributed_time(tmp_path: Path) -> None:
    rt = _source(tmp_path).runtime_classes(_runtime())
    times = {"SkipLayerNormalization_token_7": 1.0, "down": 2.0, "Mystery_token_9": 0.2}
    raw = pd.DataFrame(
        {
            "iteration": 0,
            "layer": list(times),
            "op_type": "x",
            "onnx_nodes": list(times),
            "time_ms": list(times.values()),
        }
    )
    layers = attribute_layers(raw, rt).set_index("layer")
    assert layers.loc["SkipLayerNormalization_token_7", "layer_class"] == "mixed"
    split = rt.set_index("node").loc["SkipLayerNormalization_token_7", "class_split"]
    assert layers.loc["SkipLayerNormalization_token_7", "class_split"] == split
    assert layers.loc["Mystery_token_9", "layer_class"] == "unattributed"
    totals = class_totals(layers.reset_index())
    norm_share = float(dict(p.split("=") for p in split.split(";"))["norm"])
    assert totals["norm_ms"] == pytest.approx(norm_share * 1.0)
    assert totals["unattributed_ms"] == pytest.approx(0.2)
    # 0.2 of 3.2 ms (6 %) is over the 5 % line; at 0.1 ms (3 %) it is not
    assert attribution_flags(totals) == ["attribution_incomplete:6%"]
    assert attribution_flags({**totals, "unattributed_ms": 0.1}) == []


def _plan(source: AnalysedModel, path: Path) -> Path:
    """The source with ORT quantize_static's Q/DQ pair in front of ``down``, a Cast on the output
    (onnxconverter's FP16 style), and one inserted op that stands for no source node."""
    src = {n: (op, i, o) for n, op, i, o, _ in SOURCE_NODES}
    nodes = []
    for n, (op, i, o) in src.items():
        if n == "down":
            nodes += [
                helper.make_node("Relu", ["act_out"], ["odd_out"], name="inserted_op"),
                helper.make_node("QuantizeLinear", ["odd_out", "s", "z"], ["act_q"], name="act_out_QuantizeLinear"),
                helper.make_node("DequantizeLinear", ["act_q", "s", "z"], ["act_dq"], name="act_out_DequantizeLinear"),
            ]
            i = ["act_dq", "w2"]
        if n == "ln":
            o = ["y_pre"]
        nodes.append(helper.make_node(op, i, o, name=n, **({"axis": -1} if op == "LayerNormalization" else {})))
    nodes.append(helper.make_node("Cast", ["y_pre"], ["y"], name="graph_output_cast0", to=F32))
    qdq = [
        numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "z"),
    ]
    onnx.save(_model(nodes, [_vi("x")], [_vi("y")], [*WEIGHTS, *qdq]), str(path))
    return path


def test_plan_inherits_by_node_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(tmp_path)
    calls = []
    monkeypatch.setattr(classify, "classify", lambda *a, **k: calls.append(1))  # never re-run on a plan
    plan = source.derive(_plan(source, tmp_path / "plan.onnx"))
    assert not calls
    got = plan.classes.set_index("node")
    for n, *_, cls in SOURCE_NODES:
        assert got.loc[n, "layer_class"] == cls and got.loc[n, "evidence"] == "pattern"
    # inserted Q/DQ take the class of the node they feed, the output Cast of the node feeding it
    assert got.loc["act_out_QuantizeLinear", "layer_class"] == "ffn"
    assert got.loc["act_out_DequantizeLinear", "role"] == "ffn_down"
    assert got.loc["graph_output_cast0", "layer_class"] == "norm"
    assert set(got.loc[["act_out_QuantizeLinear", "graph_output_cast0"], "evidence"]) == {"inherited"}
    assert got.loc["inserted_op", "layer_class"] == "unattributed"
    assert plan.root is source and source.derive(source.path) is source


def test_each_file_is_loaded_and_classified_once(tiny_export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """issue 13: building the analysed model of an export and of its plans reads each ONNX file
    once and classifies only the source, once."""
    from orinprof import quantize
    from orinprof.plans import get_plan

    exported = tiny_export("bert-tiny")
    classes = classify.classify(onnx.load(str(exported.path)))
    calibration = quantize.synthetic_calibration(exported, 2)
    plan_paths = [
        quantize.apply_plan(exported, get_plan(p), classes, calibration).path for p in ("fp16", "int8-attn", "int8-all")
    ]

    loads: list[str] = []
    classified: list[int] = []
    real_load, real_classify = onnx.load, classify.classify
    monkeypatch.setattr(onnx, "load", lambda f, *a, **k: loads.append(str(f)) or real_load(f, *a, **k))
    monkeypatch.setattr(classify, "classify", lambda m: classified.append(1) or real_classify(m))

    source = AnalysedModel.load(exported.path, save_map=False)
    plans = [source.derive(p) for p in plan_paths]
    assert source.derive(exported.path) is source  # the fp32 plan is the export itself
    for model in (source, *plans):  # the products of the analysis read no file again
        _ = model.graph, model.classes, model.flops
    assert sorted(loads) == sorted(str(p) for p in (exported.path, *plan_paths))
    assert len(classified) == 1


def test_weights_beside_the_graph_are_not_read(tiny_export, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A model over protobuf's 2 GB keeps its weights in a side file (``export.atomic_save_onnx``);
    the analysis reads the graph only, and its class map and costs equal those with the weights."""
    original = tiny_export("bert-tiny").path
    path = tmp_path / "m.onnx"
    onnx.save_model(
        onnx.load(str(original)), str(path), save_as_external_data=True, location="m.data", size_threshold=1024
    )
    model = onnx.load(str(original))
    light = AnalysedModel.load(path, save_map=False)
    assert sum(i.ByteSize() for i in light.proto.graph.initializer) < 0.05 * sum(
        i.ByteSize() for i in model.graph.initializer
    )
    assert light.classes.equals(classify.classify(model))
    full = AnalysedModel(path, model, light.classes)
    assert light.costs.equals(full.costs)
