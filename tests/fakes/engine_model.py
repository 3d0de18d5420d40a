"""What a fake engine contains: engine layers derived from the ONNX by the rules below.

Rules (each with its source):

* Layer info JSON shape ``{"Layers": [{Name, LayerType, Inputs, Outputs, TacticName, Metadata}],
  "Bindings": [...]}``; ``Metadata`` is ``[ONNX Layer: <node>]`` entries (TensorRT ≥ 8.6), joined by
  ``\\x1e`` on 8.6 and ``\\x1f`` in TRT 10 Myelin kernels — recorded file
  ``tests/fixtures/trt2023_controlnet_fp16/layerinfo.json`` (8.6) and NVIDIA/TensorRT#4397 (10.x).
* TRT 8.6: Myelin takes the transformer region as ONE ``{ForeignNode[first...last]}`` layer with
  ``LayerType: Myelin`` and EMPTY Metadata, fed by a ``Reformatting CopyNode for Input Tensor 0 to
  {ForeignNode[…]}`` layer — same fixture (7 such layers, ``"Metadata": ""``); NVIDIA's reply in
  NVIDIA/TensorRT#2576 ("if the MHA pattern exists … offload everything to this backend").
* TRT 10.x: an attention core MatMul→(scale/mask)→Softmax→MatMul becomes one ``_gemm_mha_v2``
  kernel (``kgen``) when it runs in FP16 or INT8 (review "Things only the first Orin run can
  answer" 2; NVIDIA/TensorRT#4397 kernel names).  Whether INT8 MHA fuses on Orin is NOT known
  (NVIDIA/TensorRT#4167): the fake fuses INT8 cores only when asked (``int8_mha=True``).
* Weak typing: ``--fp16``/``BuilderFlag.FP16`` lets FP32 layers run in FP16; Q/DQ GEMMs run INT8
  only with the INT8 flag (8.x: "Q/DQ networks must be built with the INT8 flag",
  ``quantization_path.md`` §2).  Strong typing: every tensor keeps its ONNX type
  (``TRT@v10.3.0:include/NvInfer.h:L9616-9620``), so an FP32 Q/DQ graph runs FP32 outside the GEMMs
  (review M2) and an FP16 graph with FP16 Q/DQ runs FP16 there: a strongly typed DequantizeLinear's
  output has its scale's type (onnx-tensorrt 10.1-GA onnxOpImporters.cpp:L1603-1606).
* A GEMM runs INT8 only when a DequantizeLinear feeds it directly: a Cast between DQ and the GEMM
  blocks the DQ→GEMM fusion (review m9; ModelOpt PR #1289, ``quantization_path.md`` §5), and the
  GEMM then runs in its ONNX type.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import TensorProto

FORMAT = {
    "fp32": "Row major linear FP32",
    "fp16": "Row major linear FP16 format",
    "int8": "Thirty-two wide channel vectorized row major Int8 format",
}
_SKIP = {"QuantizeLinear", "DequantizeLinear", "Constant", "Shape", "Identity"}
_THROUGH = {"Add", "Mul", "Div", "Where", "Cast", "Sub"}


@dataclass(frozen=True)
class BuildRules:
    major: int
    strongly_typed: bool
    fp16: bool = False
    int8: bool = False
    int8_mha: bool = False


def node_names(model: onnx.ModelProto) -> list[str]:
    return [n.name or f"{n.op_type}_{i}" for i, n in enumerate(model.graph.node)]


def is_dynamic(model: onnx.ModelProto) -> bool:
    """An input with a ``dim_param`` or a non-positive ``dim_value`` (what trtexec calls dynamic)."""
    inits = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits:
            continue
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") or dim.dim_value <= 0:
                return True
    return False


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.input]}
    types.update({v.name: v.type.tensor_type.elem_type for v in inferred.graph.output})
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    return types


def has_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type == "QuantizeLinear" for n in model.graph.node)


def _attention_cores(model: onnx.ModelProto) -> list[list[int]]:
    nodes = list(model.graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for x in n.input:
            consumers.setdefault(x, []).append(i)
    cores = []
    for i, n in enumerate(nodes):
        if n.op_type != "Softmax":
            continue
        members = [i]
        j = producer.get(n.input[0])
        while j is not None and nodes[j].op_type in (_THROUGH | _SKIP):
            members.append(j)
            j = producer.get(nodes[j].input[0])
        if j is None or nodes[j].op_type != "MatMul":
            continue
        members.append(j)
        k = i
        while True:
            nxt = consumers.get(nodes[k].output[0], [])
            if not nxt:
                break
            k = nxt[0]
            members.append(k)
            if nodes[k].op_type == "MatMul" or nodes[k].op_type not in (_THROUGH | _SKIP):
                break
        if nodes[k].op_type == "MatMul":
            cores.append(sorted(set(members)))
    return cores


def engine_layers(model: onnx.ModelProto, rules: BuildRules) -> dict:
    """The layer info a real build of ``model`` under ``rules`` would export (fake, see module doc)."""
    nodes = list(model.graph.node)
    names = node_names(model)
    types = _types(model)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    dq_fed = {
        i
        for i, n in enumerate(nodes)
        if n.op_type in ("MatMul", "Gemm")
        and any(producer.get(x) is not None and nodes[producer[x]].op_type == "DequantizeLinear" for x in n.input)
    }
    run_int8 = rules.strongly_typed or rules.int8

    def precision(i: int) -> str:
        if i in dq_fed and run_int8:
            return "int8"
        onnx_type = types.get(nodes[i].output[0], TensorProto.FLOAT) if nodes[i].output else TensorProto.FLOAT
        if onnx_type == TensorProto.FLOAT16:
            return "fp16"
        if rules.strongly_typed:
            return "fp32"  # strong typing: the ONNX type decides, no flag can lower it
        return "fp16" if rules.fp16 else "fp32"

    def layer(name: str, kind: str, prec: str, metadata: str, tactic: str = "") -> dict:
        return {
            "Name": name,
            "LayerType": kind,
            "Inputs": [{"Name": f"{name}:in", "Location": "Device", "Format/Datatype": FORMAT[prec]}],
            "Outputs": [{"Name": f"{name}:out", "Location": "Device", "Format/Datatype": FORMAT[prec]}],
            "TacticName": tactic,
            "StreamId": 0,
            "Metadata": metadata,
        }

    keep = [i for i, n in enumerate(nodes) if n.op_type not in _SKIP]
    layers: list[dict] = []
    cores = _attention_cores(model)
    if rules.major < 10 and cores:
        first_core = min(min(c) for c in cores)
        start = next((i for i in keep if i >= first_core and nodes[i].op_type in ("MatMul", "Gemm")), first_core)
        start = min([i for i in keep if nodes[i].op_type in ("MatMul", "Gemm")] or [start])
        for i in keep:
            if i < start:
                layers.append(layer(names[i], nodes[i].op_type, precision(i), f"[ONNX Layer: {names[i]}]"))
        region = [i for i in keep if i >= start]
        foreign = f"{{ForeignNode[{names[region[0]]}...{names[region[-1]]}]}}"
        prec = precision(region[0])
        layers.append(layer(f"Reformatting CopyNode for Input Tensor 0 to {foreign}", "Reformat", prec, ""))
        layers.append(layer(foreign, "Myelin", prec, ""))
    else:
        in_core = {i: k for k, core in enumerate(cores) for i in core}
        done: set[int] = set()
        for i in keep:
            k = in_core.get(i)
            if k is not None:
                if k in done:
                    continue
                core = cores[k]
                precs = {precision(j) for j in core if nodes[j].op_type == "MatMul"}
                fused = "fp32" not in precs and ("int8" not in precs or rules.int8_mha)
                if rules.major >= 10 and fused:
                    done.add(k)
                    meta = "\x1f".join(f"[ONNX Layer: {names[j]}]" for j in core if nodes[j].op_type not in _SKIP)
                    p = "int8" if "int8" in precs else "fp16"
                    layers.append(layer(f"_gemm_mha_v2_myl0_{k}", "kgen", p, meta, f"_gemm_mha_v2_0x{k:04x}"))
                    continue
            layers.append(layer(names[i], nodes[i].op_type, precision(i), f"[ONNX Layer: {names[i]}]"))
    bindings = [v.name for v in model.graph.input if v.name not in {t.name for t in model.graph.initializer}]
    bindings += [v.name for v in model.graph.output]
    return {"Layers": layers, "Bindings": bindings}


def names_only(info: dict) -> list[str]:
    """``--profilingVerbosity=layer_names_only`` form: an array of names (recorded trex files)."""
    return [lay["Name"] for lay in info["Layers"]]
