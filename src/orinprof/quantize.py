"""Precision plans: fp32, fp16, and explicit-Q/DQ INT8 applied per layer class.

INT8 plans place Q/DQ the way TensorRT runs INT8 GEMMs and INT8 fused attention
(``quantization_path.md`` §1, §8): per-channel symmetric int8 weights (kept FP32 behind a Q→DQ
pair, which TensorRT 8.x requires), per-tensor symmetric activations, zero point 0, FP32 scales,
no INT32 bias DequantizeLinear, no Q/DQ on GEMM outputs, one Q/DQ pair per consumer.  For
``int8-attn`` both attention-core MatMuls are quantized too, so Q·Kᵀ's inputs and the Softmax
output feeding P·V carry Q/DQ.

The Q/DQ insertion and calibration are ONNX Runtime's ``quantize_static`` (QDQ format) restricted
to the class's nodes; nothing here is a home-made quantizer.  ``onnxruntime.quantization`` is used
as a graph-editing library (its calibration runs ONNX Runtime on the CPU) and is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pandas as pd

from orinprof.classify import GEMM_OPS
from orinprof.errors import MissingDependency, OrinprofError
from orinprof.export import ExportedModel, synthesize
from orinprof.graph import atomic_save_onnx as _atomic_save
from orinprof.models import InputSpec
from orinprof.plans import Plan
from orinprof.plans import get_plan as get_plan  # re-exported: callers of quantize.get_plan
from orinprof.plans import parse_plans as parse_plans

log = logging.getLogger(__name__)

#: ops kept in FP32 by the FP16 conversion: reductions and normalisations overflow in FP16
#: (quantization_path.md §5 pitfalls); Softmax for the same reason; Q/DQ keep FP32 scales
FP16_BLOCK_OPS = [
    "LayerNormalization",
    "SimplifiedLayerNormalization",
    "ReduceMean",
    "ReduceSum",
    "Pow",
    "Sqrt",
    "Softmax",
    "QuantizeLinear",
    "DequantizeLinear",
    "Range",
    "CumSum",
]

#: TensorRT-safe ORT settings (quantization_path.md §0.6 and §4.2)
TRT_EXTRA_OPTIONS: dict[str, object] = {
    "ActivationSymmetric": True,
    "WeightSymmetric": True,
    "QuantizeBias": False,
    "AddQDQPairToWeight": True,
    "DedicatedQDQPair": True,
    "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
    "QDQDisableWeightAdjustForInt32Bias": True,
    "QDQKeepRemovableActivations": True,
}


#: ONNX Runtime's own preferred layout for its CPU kernels: int8 weight initializers (DQ only) and
#: quantized GEMM outputs, so its QDQ fusions turn DQ→MatMul→Q into integer kernels (QLinearMatMul).
#: Not TensorRT-safe (Q/DQ on GEMM outputs, INT32 bias DQ on Gemm): for ``--qdq-style ort`` only.
ORT_CPU_EXTRA_OPTIONS: dict[str, object] = {"ActivationSymmetric": True, "WeightSymmetric": True}

QDQ_STYLES: dict[str, dict[str, object]] = {"trt": TRT_EXTRA_OPTIONS, "ort": ORT_CPU_EXTRA_OPTIONS}


#: the plan type (one definition, in :mod:`orinprof.plans`)
QuantPlan = Plan


@dataclass(frozen=True)
class PlannedModel:
    """An ONNX file implementing one plan, and what the plan did to the graph."""

    plan: QuantPlan
    path: Path
    gemm_counts: Mapping[str, int]  # gemms_total, gemms_int8_attention, gemms_int8_ffn, gemms_int8_other
    calibration: Mapping[str, object]


CalibrationSource = Callable[[], Iterator[dict[str, np.ndarray]]]


def synthetic_calibration(
    source: ExportedModel | Sequence[InputSpec], batches: int, seed: int = 1
) -> CalibrationSource:
    """``batches`` realistic synthetic samples for a model (or its input specs); seed 1 by default,
    never the timing or held-out inputs' seed."""
    inputs = tuple(source.inputs if isinstance(source, ExportedModel) else source)

    def samples() -> Iterator[dict[str, np.ndarray]]:
        rng = np.random.default_rng(seed)
        for _ in range(batches):
            yield synthesize(inputs, rng)

    return samples


def nodes_for_plan(layer_classes: pd.DataFrame, plan: QuantPlan) -> list[str]:
    """GEMM nodes (projections, FFN GEMMs, attention-core BMMs) of the plan's classes."""
    gemms = layer_classes[layer_classes["op_type"].isin(GEMM_OPS)]
    return gemms[gemms["layer_class"].isin(plan.int8_classes)]["node"].tolist()


def count_int8_gemms(model: onnx.ModelProto, layer_classes: pd.DataFrame) -> dict[str, int]:
    """GEMMs whose activation input comes from a DequantizeLinear, per class."""
    producer = {o: n for n in model.graph.node for o in n.output}
    cls = dict(zip(layer_classes["node"], layer_classes["layer_class"]))
    counts = {"gemms_total": 0, "gemms_int8_attention": 0, "gemms_int8_ffn": 0, "gemms_int8_other": 0}
    for n in model.graph.node:
        if n.op_type not in GEMM_OPS or n.name not in cls:
            continue
        counts["gemms_total"] += 1
        if any(producer.get(t) is not None and producer[t].op_type == "DequantizeLinear" for t in n.input[:2]):
            c = cls[n.name]
            key = f"gemms_int8_{c}" if c in ("attention", "ffn") else "gemms_int8_other"
            counts[key] += 1
    return counts


def _cache_key(
    exported: ExportedModel, plan: QuantPlan, calib_id: str, nodes: list[str], options: dict[str, object]
) -> str:
    h = hashlib.sha256()
    h.update(exported.sha256.encode())
    h.update(plan.name.encode())
    h.update(calib_id.encode())
    h.update("\n".join(sorted(nodes)).encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    return h.hexdigest()[:16]


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        from onnxconverter_common import float16
    except ImportError as err:
        raise MissingDependency("onnxconverter-common", "ort", "for the fp16 plan") from err
    block = list(dict.fromkeys(list(float16.DEFAULT_OP_BLOCK_LIST) + FP16_BLOCK_OPS))
    model = _drop_noop_casts(_fold_initializer_identities(model))
    converted: onnx.ModelProto = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    _retarget_casts(converted)
    _topological_sort(converted)
    return converted


def _topological_sort(model: onnx.ModelProto) -> None:
    """The converter appends its Cast nodes out of order on some graphs (RMSNorm chains); ONNX
    requires producers before consumers."""
    nodes = list(model.graph.node)
    available = {t.name for t in model.graph.initializer} | {v.name for v in model.graph.input} | {""}
    ordered: list[onnx.NodeProto] = []
    pending = nodes
    while pending:
        progress: list[onnx.NodeProto] = []
        rest: list[onnx.NodeProto] = []
        for n in pending:
            (progress if all(i in available for i in n.input) else rest).append(n)
        if not progress:  # a cycle or a dangling input: leave the remainder as it was
            ordered.extend(rest)
            break
        for n in progress:
            available.update(n.output)
        ordered.extend(progress)
        pending = rest
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def _retarget_casts(model: onnx.ModelProto) -> None:
    """The converter declares a ``Cast(to=FLOAT)`` output as FLOAT16 (mask casts) without changing
    the attribute; make the attribute agree with the declared type."""
    declared = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    for node in model.graph.node:
        if node.op_type != "Cast" or declared.get(node.output[0]) != onnx.TensorProto.FLOAT16:
            continue
        for attr in node.attribute:
            if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT:
                attr.i = onnx.TensorProto.FLOAT16


def _drop_noop_casts(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove ``Cast`` nodes whose input already has the target type (``x.float()`` on a float in
    RMSNorm); onnxconverter-common drops some of them itself and leaves their consumers dangling."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({v.name: v.type.tensor_type.elem_type for v in inferred.graph.input})
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    outputs = {o.name for o in model.graph.output}
    rename: dict[str, str] = {}
    keep = []
    for node in model.graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        src = rename.get(node.input[0], node.input[0]) if node.input else ""
        if node.op_type == "Cast" and to is not None and types.get(src) == to and node.output[0] not in outputs:
            rename[node.output[0]] = src
            continue
        keep.append(node)
    for node in keep:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def _fold_initializer_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ``Identity(initializer)`` nodes (the TorchScript exporter's shared weights) by a copy
    of the initializer under the Identity's output name: onnxconverter-common converts the
    initializer but not the Identity's declared output type, which ORT then rejects."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def apply_plan(
    exported: ExportedModel,
    plan: QuantPlan,
    layer_classes: pd.DataFrame,
    calibration: CalibrationSource | None = None,
    calibration_id: str = "synthetic",
    calibration_method: str = "minmax",
    qdq_style: str = "trt",
) -> PlannedModel:
    """Write (or reuse) the plan's ONNX beside the exported model.

    ``qdq_style``: ``trt`` (default) places Q/DQ as TensorRT needs them; ``ort`` uses ONNX
    Runtime's own CPU-friendly layout (see :data:`ORT_CPU_EXTRA_OPTIONS`)."""
    if qdq_style not in QDQ_STYLES:
        raise OrinprofError(f"unknown Q/DQ style {qdq_style!r}", "choose trt (TensorRT layout) or ort (ORT CPU)")
    base = onnx.load(str(exported.path), load_external_data=False)
    counts_fp32 = count_int8_gemms(base, layer_classes)
    if plan.name == "fp32":
        return PlannedModel(plan, exported.path, counts_fp32, {})
    if plan.fp16:
        out = exported.path.with_name(exported.path.stem + ".fp16.onnx")
        if not out.exists():
            log.info("converting %s to FP16 (LayerNorm, Softmax, reductions kept FP32)", exported.model)
            _atomic_save(convert_fp16(onnx.load(str(exported.path))), out)
        return PlannedModel(plan, out, counts_fp32, {})

    nodes = nodes_for_plan(layer_classes, plan)
    if not nodes:
        log.warning("plan %s: the model has no %s GEMMs; the plan equals fp32", plan.name, "/".join(plan.int8_classes))
    options = QDQ_STYLES[qdq_style]
    key = _cache_key(exported, plan, f"{calibration_id}:{calibration_method}", nodes, options)
    style = "" if qdq_style == "trt" else f".{qdq_style}"
    out = exported.path.with_name(f"{exported.path.stem}.{plan.name}{style}.{key}.onnx")
    calib_info = {"source": calibration_id, "method": calibration_method, "qdq_style": qdq_style}
    if not out.exists():
        if calibration is None:
            raise OrinprofError(f"plan {plan.name} needs calibration data", "pass --calib-batches or --inputs")
        _quantize_static(exported.path, out, nodes, calibration, calibration_method, options)
    model = onnx.load(str(out), load_external_data=False)
    return PlannedModel(plan, out, count_int8_gemms(model, layer_classes), calib_info)


class _Reader:
    """ORT CalibrationDataReader over a sample source (duck-typed: get_next/rewind)."""

    def __init__(self, source: CalibrationSource) -> None:
        self.source = source
        self.it = iter(source())

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.source())


def _quantize_static(
    src: Path,
    dst: Path,
    nodes: list[str],
    calibration: CalibrationSource,
    method: str,
    options: dict[str, object],
) -> None:
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.calibrate import CalibrationDataReader
    except ImportError as err:
        raise MissingDependency("onnxruntime", "ort", "to quantize (onnxruntime.quantization)") from err

    class Reader(_Reader, CalibrationDataReader):  # ORT checks the base class
        pass

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise OrinprofError(f"unknown calibration method {method!r}", "choose " + ", ".join(methods))
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".onnx.tmp")
    os.close(fd)
    log.info(
        "quantizing %d GEMMs of %s (ORT quantize_static, QDQ, %s)",
        len(nodes),
        src.name,
        "TensorRT-safe options" if options is TRT_EXTRA_OPTIONS else "ORT CPU layout",
    )
    # ORT logs a pre-processing suggestion on the root logger; orinprof's graph needs none
    # (shape inference and optimisation would rename the nodes the class map refers to)
    quiet = _DropMessages("pre-processing")
    logging.getLogger().addFilter(quiet)
    try:
        quantize_static(
            str(src),
            tmp,
            Reader(calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
            calibrate_method=methods[method],
            extra_options=dict(options),
        )
        os.replace(tmp, dst)
    finally:
        logging.getLogger().removeFilter(quiet)
        if os.path.exists(tmp):
            os.unlink(tmp)


class _DropMessages(logging.Filter):
    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle

    def filter(self, record: logging.LogRecord) -> bool:
        return self.needle not in record.getMessage()
