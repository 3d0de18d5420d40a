"""Precision plans: fp32, fp16, and explicit-Q/DQ INT8 applied per layer class.

INT8 plans place Q/DQ the way TensorRT runs INT8 GEMMs and INT8 fused attention
(``quantization_path.md`` §1, §8): per-channel symmetric int8 weights (kept FP32 behind a Q→DQ
pair, which TensorRT 8.x requires), per-tensor symmetric activations, zero point 0, FP32 scales,
no INT32 bias DequantizeLinear, no Q/DQ on GEMM outputs, one Q/DQ pair per consumer.  For
``int8-attn`` both attention-core MatMuls are quantized too, so Q·Kᵀ's inputs and the Softmax
output feeding P·V carry Q/DQ.

The Q/DQ insertion and calibration are ONNX Runtime's ``quantize_static`` (QDQ format) restricted
to the class's nodes; nothing here is a home-made quantizer.

A plan says *what* runs in INT8; a **recipe** (:data:`INT8_RECIPES`) says how a backend implements
it.  ``trt-qdq`` is the layout above (TensorRT's); ``ort-qdq`` is ONNX Runtime's own static QDQ
layout; ``ort-dynamic`` is ONNX Runtime's ``quantize_dynamic`` restricted to the class's GEMMs
(the fastest INT8 ONNX Runtime has on a CPU).  Each backend lists the recipes it can run on its
runner class (``Runner.int8_recipes``, the first is what ``auto`` picks).  What actually executed
in INT8 is counted from the runtime's optimised graph (:func:`count_int8_kernels`), beside the
plan's intent (:func:`count_int8_gemms`).  ``onnxruntime.quantization`` is used
as a graph-editing library (its calibration runs ONNX Runtime on the CPU) and is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from onnx import numpy_helper

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
    #: the INT8 recipe that wrote the file (:data:`INT8_RECIPES`); None for fp32 and fp16
    recipe: str | None = None
    #: the plan file's graph (weights not loaded) when this step read it, so the caller need not
    #: read it again; None when the file was not read here (fp32, fp16)
    proto: onnx.ModelProto | None = field(default=None, repr=False, compare=False)


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


def _with_weights(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """``model`` when it holds its weights; else the file read again with the weights kept beside
    it (a graph over protobuf's 2 GB limit, loaded without them for analysis)."""
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return onnx.load(str(path))
    return model


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy, for rewriters that edit their input in place."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def convert_fp16(model: onnx.ModelProto, block_ops: Sequence[str] | None = None) -> onnx.ModelProto:
    """``model`` in FP16 except ``block_ops`` (default :data:`FP16_BLOCK_OPS`), FP32 I/O kept."""
    try:
        from onnxconverter_common import float16
    except ImportError as err:
        raise MissingDependency("onnxconverter-common", "ort", "for the fp16 plan") from err
    keep_fp32 = FP16_BLOCK_OPS if block_ops is None else list(block_ops)
    block = list(dict.fromkeys(list(float16.DEFAULT_OP_BLOCK_LIST) + keep_fp32))
    model = _drop_noop_casts(_fold_initializer_identities(model))
    # the converter clamps float32 values into ±[1e-7, 1e4] and warns for each tensor's extremes
    # beyond that (onnxconverter_common/float16.py, convert_np_to_float16): ≈ 100 lines of 170
    # characters on bert-base, in the middle of the progress display; one summary line instead
    with warnings.catch_warnings(record=True) as clamped:
        warnings.simplefilter("always", UserWarning)
        converted: onnx.ModelProto = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    truncated = [w for w in clamped if "will be truncated" in str(w.message)]
    if truncated:
        log.info(
            "fp16: onnxconverter-common clamped float32 values into ±[1e-7, 1e4] (%d warnings, e.g. %s)",
            len(truncated),
            str(truncated[0].message).removeprefix("the float32 number "),
        )
    for w in clamped:
        if w not in truncated:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
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
    recipe: str | None = None,
    source: onnx.ModelProto | None = None,
) -> PlannedModel:
    """Write (or reuse) the plan's ONNX beside the exported model.

    ``source``: the exported model's graph when the caller holds it (each ONNX file is read once
    per run); read from ``exported.path`` otherwise.  Weights kept beside a graph over 2 GB are
    read here when a rewrite needs them (:func:`_with_weights`).
    ``recipe``: how the INT8 plan is implemented (:data:`INT8_RECIPES`, already resolved from
    ``auto`` by :func:`resolve_recipe`).  ``qdq_style`` is the older spelling of the two Q/DQ
    recipes (``trt`` = ``trt-qdq``, ``ort`` = ``ort-qdq``), used when ``recipe`` is None."""
    if qdq_style not in QDQ_STYLES:
        raise OrinprofError(f"unknown Q/DQ style {qdq_style!r}", "choose trt (TensorRT layout) or ort (ORT CPU)")
    recipe = recipe or QDQ_STYLE_RECIPES[qdq_style]
    if recipe not in INT8_RECIPES:
        raise OrinprofError(f"unknown INT8 recipe {recipe!r}", "choose auto or one of: " + ", ".join(INT8_RECIPES))
    base = source if source is not None else onnx.load(str(exported.path), load_external_data=False)
    counts_fp32 = count_int8_gemms(base, layer_classes)
    if plan.name == "fp32":
        return PlannedModel(plan, exported.path, counts_fp32, {})
    if plan.fp16:
        out = exported.path.with_name(exported.path.stem + ".fp16.onnx")
        if not out.exists():
            log.info("converting %s to FP16 (LayerNorm, Softmax, reductions kept FP32)", exported.model)
            _atomic_save(convert_fp16(_copy(_with_weights(base, exported.path))), out)
        return PlannedModel(plan, out, counts_fp32, {})

    nodes = nodes_for_plan(layer_classes, plan)
    if not nodes:
        # ORT reads an empty nodes_to_quantize as "every node" (base_quantizer.py, should_quantize_node)
        log.warning("plan %s: the model has no %s GEMMs; the plan equals fp32", plan.name, "/".join(plan.int8_classes))
        return PlannedModel(plan, exported.path, counts_fp32, {"recipe": recipe}, recipe)
    if recipe == "ort-dynamic":
        return _apply_dynamic(exported, plan, layer_classes, nodes, base)
    qdq_style = RECIPE_QDQ_STYLES[recipe]
    options = QDQ_STYLES[qdq_style]
    key = _cache_key(exported, plan, f"{calibration_id}:{calibration_method}", nodes, options)
    style = "" if qdq_style == "trt" else f".{qdq_style}"
    out = exported.path.with_name(f"{exported.path.stem}.{plan.name}{style}.{key}.onnx")
    calib_info = {"source": calibration_id, "method": calibration_method, "qdq_style": qdq_style, "recipe": recipe}
    if not out.exists():
        if calibration is None:
            raise OrinprofError(f"plan {plan.name} needs calibration data", "pass --calib-batches or --inputs")
        _quantize_static(exported.path, out, nodes, calibration, calibration_method, options)
    model = onnx.load(str(out), load_external_data=False)
    return PlannedModel(plan, out, count_int8_gemms(model, layer_classes), calib_info, recipe, model)


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


# ----------------------------------------------------------------------------- INT8 recipes


@dataclass(frozen=True)
class Int8Recipe:
    """How a backend implements an INT8 plan (the plan says *what* runs in INT8)."""

    name: str
    summary: str
    #: what the recipe does with the attention core and what it cannot quantize
    notes: str


#: every recipe, TensorRT's layout first (what ``auto`` means where no backend is named: ``export``)
INT8_RECIPES: dict[str, Int8Recipe] = {
    "trt-qdq": Int8Recipe(
        "trt-qdq",
        "TensorRT's explicit Q/DQ layout (ORT quantize_static, QDQ, TensorRT-safe options)",
        "Q·Kᵀ and P·V get Q/DQ on both inputs (TensorRT's INT8 fused attention). On ONNX Runtime most "
        "projections stay FP32 Gemm with the weights dequantized on every run.",
    ),
    "ort-qdq": Int8Recipe(
        "ort-qdq",
        "ONNX Runtime's static QDQ layout (int8 weight initializers, quantized GEMM outputs)",
        "Fuses to QLinearMatMul, the attention core included; not TensorRT-safe.",
    ),
    "ort-dynamic": Int8Recipe(
        "ort-dynamic",
        "ONNX Runtime dynamic quantization (quantize_dynamic) restricted to the class's GEMMs",
        "int8 weights per output channel, activations quantized at run time (uint8, per tensor). "
        "The attention-core MatMuls "
        "(Q·Kᵀ, P·V: activation × activation) are quantized too and run as DynamicQuantizeMatMul / "
        "MatMulInteger, ONNX Runtime's integer kernels for a non-constant B. ORT's dynamic quantizer has no "
        "Gemm: Linear-form Gemms are rewritten as MatMul + Add first; other Gemms stay FP32 (and the "
        "class is flagged if none of its GEMMs ran in INT8).",
    ),
}

AUTO_RECIPE = "auto"
RECIPE_CHOICES: tuple[str, ...] = (AUTO_RECIPE, *INT8_RECIPES)
#: ``--qdq-style`` is the older spelling of the two Q/DQ recipes (kept as an alias)
QDQ_STYLE_RECIPES: dict[str, str] = {"trt": "trt-qdq", "ort": "ort-qdq"}
RECIPE_QDQ_STYLES: dict[str, str] = {v: k for k, v in QDQ_STYLE_RECIPES.items()}


def resolve_recipe(requested: str, supported: Sequence[str], backend: str, qdq_style: str | None = None) -> str:
    """The recipe a run uses.  ``auto`` is the backend's first supported recipe; an explicit one
    must be supported.  ``qdq_style`` (``--qdq-style``, given or None) names a Q/DQ recipe and may
    not contradict an explicit ``requested``."""
    if qdq_style is not None:
        if qdq_style not in QDQ_STYLE_RECIPES:
            raise OrinprofError(f"unknown Q/DQ style {qdq_style!r}", "choose trt or ort (or use --int8-recipe)")
        alias = QDQ_STYLE_RECIPES[qdq_style]
        if requested not in (AUTO_RECIPE, alias):
            raise OrinprofError(
                f"--qdq-style {qdq_style} contradicts --int8-recipe {requested}",
                f"drop --qdq-style: it is the older spelling of --int8-recipe {alias}",
            )
        requested = alias
    if requested == AUTO_RECIPE:
        if not supported:
            raise OrinprofError(f"backend {backend!r} declares no INT8 recipe", "run fp32/fp16 plans on it")
        return supported[0]
    if requested not in INT8_RECIPES:
        raise OrinprofError(f"unknown INT8 recipe {requested!r}", "choose one of: " + ", ".join(RECIPE_CHOICES))
    if requested not in supported:
        raise OrinprofError(
            f"INT8 recipe {requested} does not run on the {backend} backend",
            "choose auto or one of: " + ", ".join(supported),
        )
    return requested


#: ``quantize_dynamic`` settings of the ``ort-dynamic`` recipe: ORT's defaults (those of its
#: whole-model ``quantize_dynamic``, the benchmark's reference) except two.  ``MatMulConstBOnly``,
#: which ORT's dynamic mode sets to True (quantize.py, quantize_dynamic), would leave the attention
#: core in FP32.  Per-channel weights: on MiniLM-L6's real weights (seq 64) int8-all keeps a
#: mean-pooled cosine of 0.992 against 0.931 per tensor (per tensor, the FFN alone drops to 0.936),
#: at the same speed on bert-base seq 128 (paired rounds, 1 thread, this VM under load: 1.004×).
#: ``reduce_range`` stays off: on with per-tensor weights it drops MiniLM int8-all to 0.786.
DYNAMIC_OPTIONS: dict[str, object] = {
    "per_channel": True,
    "reduce_range": False,
    "weight_type": "QInt8",
    "op_types_to_quantize": ["MatMul"],
    "extra_options": {"MatMulConstBOnly": False},
    #: Linear-form Gemms are rewritten as MatMul first (:func:`_gemms_as_matmuls`)
    "gemms_as_matmuls": True,
}


def _apply_dynamic(
    exported: ExportedModel, plan: QuantPlan, layer_classes: pd.DataFrame, nodes: list[str], base: onnx.ModelProto
) -> PlannedModel:
    key = _cache_key(exported, plan, "dynamic", nodes, DYNAMIC_OPTIONS)
    out = exported.path.with_name(f"{exported.path.stem}.{plan.name}.ort-dynamic.{key}.onnx")
    if not out.exists():
        _quantize_dynamic(_with_weights(base, exported.path), out, nodes)
    model = onnx.load(str(out), load_external_data=False)
    info = {"method": "dynamic (activation ranges at run time; no calibration)", "recipe": "ort-dynamic"}
    return PlannedModel(plan, out, count_int8_gemms_dynamic(model, layer_classes), info, "ort-dynamic", model)


def _gemms_as_matmuls(model: onnx.ModelProto, nodes: Sequence[str]) -> onnx.ModelProto:
    """The plan's ``Gemm`` nodes rewritten as ``MatMul`` (+ ``Add`` for the bias) under the Gemm's
    own name.  ORT's dynamic quantizer has no Gemm (registry.py, ``IntegerOpsRegistry``); it turns
    Gemms into MatMuls itself (onnx_quantizer.py, ``replace_gemm_with_matmul``) but names them
    ``<gemm>_MatMul``, which ``nodes_to_quantize`` (the class's node names) then misses, so Linear
    layers exported on 2-D inputs would stay FP32.  Only the exact Linear form is rewritten
    (transA=0, alpha=beta=1, a constant 2-D B); the class map and the counts still find it."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in model.graph.initializer}
    wanted = set(nodes)
    out: list[onnx.NodeProto] = []
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        linear = (
            node.op_type == "Gemm"
            and node.name in wanted
            and attrs.get("transA", 0) == 0
            and attrs.get("alpha", 1.0) == 1.0
            and attrs.get("beta", 1.0) == 1.0
            and node.input[1] in inits
            and len(inits[node.input[1]].dims) == 2
        )
        if not linear:
            out.append(node)
            continue
        weight = node.input[1]
        if attrs.get("transB", 0):
            transposed = numpy_helper.from_array(
                np.ascontiguousarray(numpy_helper.to_array(inits[weight]).T), f"{weight}_transposed_{node.name}"
            )
            model.graph.initializer.append(transposed)
            weight = transposed.name
        has_bias = len(node.input) > 2 and node.input[2] != ""
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        out.append(onnx.helper.make_node("MatMul", [node.input[0], weight], [product], name=node.name))
        if has_bias:
            out.append(
                onnx.helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_bias")
            )
    del model.graph.node[:]
    model.graph.node.extend(out)
    return model


def _quantize_dynamic(src: onnx.ModelProto | Path, dst: Path, nodes: list[str]) -> None:
    """``src``: the exported graph with its weights (a proto the caller holds, or its file)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise MissingDependency("onnxruntime", "ort", "to quantize (onnxruntime.quantization)") from err
    # _gemms_as_matmuls works on a copy: the caller's graph stays as it is
    model = _gemms_as_matmuls(src if isinstance(src, onnx.ModelProto) else onnx.load(str(src)), nodes)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, suffix=".onnx.tmp")
    os.close(fd)
    log.info("quantizing %d GEMMs into %s (ORT quantize_dynamic)", len(nodes), dst.name)
    quiet = _DropMessages("pre-processing")
    logging.getLogger().addFilter(quiet)
    options = dict(DYNAMIC_OPTIONS)
    try:
        quantize_dynamic(
            model,
            tmp,
            op_types_to_quantize=list(options["op_types_to_quantize"]),  # type: ignore[call-overload]
            per_channel=bool(options["per_channel"]),
            reduce_range=bool(options["reduce_range"]),
            weight_type=getattr(QuantType, str(options["weight_type"])),
            nodes_to_quantize=nodes,
            extra_options=dict(options["extra_options"]),  # type: ignore[call-overload]
        )
        os.replace(tmp, dst)
    finally:
        logging.getLogger().removeFilter(quiet)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _gemm_key(prefix: str, layer_class: str) -> str:
    return f"{prefix}_{layer_class if layer_class in ('attention', 'ffn') else 'other'}"


def count_int8_gemms_dynamic(model: onnx.ModelProto, layer_classes: pd.DataFrame) -> dict[str, int]:
    """The intent of a dynamic-quantized plan, per class: the source GEMMs the quantizer replaced
    by an integer op.  ORT names the replacement ``<node>_quant``
    (onnxruntime/quantization/operators/matmul.py, ``MatMulInteger.quantize``)."""
    integer = {n.name for n in model.graph.node if n.op_type in INT8_KERNEL_OPS}
    gemms = layer_classes[layer_classes["op_type"].isin(GEMM_OPS)]
    counts = {"gemms_total": len(gemms), "gemms_int8_attention": 0, "gemms_int8_ffn": 0, "gemms_int8_other": 0}
    for node, cls in zip(gemms["node"], gemms["layer_class"]):
        if f"{node}_quant" in integer:
            counts[_gemm_key("gemms_int8", cls)] += 1
    return counts


# ----------------------------------------------------------------------------- what ran in INT8

#: ONNX Runtime's integer compute kernels: ops whose GEMM / convolution runs on int8 / uint8
#: operands with int32 accumulation (ONNX: MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv;
#: com.microsoft contrib ops: docs/ContribOperators.md).  Q/DQ and DynamicQuantizeLinear only convert.
INT8_KERNEL_OPS = frozenset(
    {
        "MatMulInteger",
        "QLinearMatMul",
        "ConvInteger",
        "QLinearConv",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "QGemm",
        "QAttention",
        "DynamicQuantizeLSTM",
        "QOrderedMatMul",
        "QOrderedAttention",
    }
)

#: the summary columns of :func:`count_int8_kernels` (the torch backend fills the same names)
INT8_KERNEL_COLUMNS = ("int8_kernels_attention", "int8_kernels_ffn", "int8_kernels_other")


def count_int8_kernels(optimised: onnx.ModelProto, node_class: Mapping[str, str]) -> dict[str, int]:
    """Integer kernels in a runtime-optimised graph (what executed in INT8), per class.

    ``node_class`` maps the optimised graph's node names to layer classes (the runtime class map;
    a node missing from it counts as ``other``).  Classes other than attention and FFN count as
    ``other``."""
    counts = dict.fromkeys(INT8_KERNEL_COLUMNS, 0)
    for node in optimised.graph.node:
        if node.op_type in INT8_KERNEL_OPS:
            counts[_gemm_key("int8_kernels", node_class.get(node.name, "other"))] += 1
    return counts


def int8_execution_flags(plan: QuantPlan, layer_classes: pd.DataFrame, kernel_counts: Mapping[str, int]) -> list[str]:
    """``int8_class_not_executed:<class>`` for every class the plan quantizes that has GEMMs in the
    source graph but ran no integer kernel (classes other than attention and FFN count as other)."""
    gemms = layer_classes[layer_classes["op_type"].isin(GEMM_OPS)]
    classes = {c if c in ("attention", "ffn") else "other" for c in gemms["layer_class"] if c in plan.int8_classes}
    return [
        f"int8_class_not_executed:{c}"
        for c in ("attention", "ffn", "other")
        if c in classes and kernel_counts.get(f"int8_kernels_{c}", 0) == 0
    ]


# ----------------------------------------------------------------------------- TensorRT typing
# (owned by the TensorRT backends; kept apart from the ONNX Runtime recipes above)

#: the name apply_plan gives the fp16 plan: ``<export stem>.fp16.onnx`` beside the FP32 export
_FP16_SUFFIX = ".fp16.onnx"


#: the name of the strongly typed INT8 plan: ``<weak INT8 plan stem>.strong-fp16.onnx`` beside it
_STRONG_SUFFIX = ".strong-fp16.onnx"

#: QuantizeLinear/DequantizeLinear take FP16 scales (and FP16 x / y) from opset 19; opsets 13-18
#: allow ``tensor(float)`` scales only (onnx/onnx docs/Changelog.md: QuantizeLinear-13 ``y_scale``,
#: DequantizeLinear-13 ``x_scale``; QuantizeLinear-19 ``T1``, DequantizeLinear-19 ``T2``)
FP16_QDQ_OPSET = 19

#: the fp16 plan's FP32 keep-list without Q/DQ: in a strongly typed build the DequantizeLinear's
#: output type is its scale's type (onnx-tensorrt 10.1-GA onnxOpImporters.cpp:L1603-1606), so
#: FP32 Q/DQ would make every quantized GEMM's neighbours FP32, and Casts around them would sit
#: between DQ and GEMM, which blocks the DQ→GEMM fusion (review m9; ModelOpt PR #1289)
STRONG_INT8_BLOCK_OPS = [op for op in FP16_BLOCK_OPS if op not in ("QuantizeLinear", "DequantizeLinear")]


def _qdq_scale_types(model: onnx.ModelProto) -> set[int]:
    """Element types of every Q/DQ scale (FLOAT when the scale is not an initializer)."""
    inits = {t.name: t.data_type for t in model.graph.initializer}
    return {
        inits.get(n.input[1], onnx.TensorProto.FLOAT)
        for n in model.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 1
    }


def _default_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _casts_between_dq_and_gemm(model: onnx.ModelProto) -> list[str]:
    producer = {o: n for n in model.graph.node for o in n.output}
    found = []
    for node in model.graph.node:
        if node.op_type not in GEMM_OPS:
            continue
        for name in node.input[:2]:
            cast = producer.get(name)
            upstream = producer.get(cast.input[0]) if cast is not None and cast.op_type == "Cast" else None
            if upstream is not None and upstream.op_type == "DequantizeLinear":
                found.append(node.name)
    return found


def strongly_typed_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The strongly typed form of a weak-typing INT8 plan: the same Q/DQ (same nodes, zero points,
    axes; scales rounded to FP16) in an FP16 graph that is the fp16 plan's graph everywhere else.

    The weak plan is raised to opset :data:`FP16_QDQ_OPSET` (ONNX's version converter) and
    converted by the fp16 plan's own :func:`convert_fp16` with :data:`STRONG_INT8_BLOCK_OPS`, so
    LayerNorm, Softmax and the reductions stay FP32 exactly as in the fp16 plan and Q/DQ become
    FP16.  TensorRT 10's parser reads FP16 scales (onnx-tensorrt 10.1-GA
    onnxOpImporters.cpp:L1392-1397); TensorRT 8.x reads them as float (8.6-GA
    builtin_op_importers.cpp:L1195), but 8.x has no strong typing."""
    from onnx import version_converter

    model = onnx.ModelProto.FromString(model.SerializeToString())
    if _default_opset(model) < FP16_QDQ_OPSET:
        try:
            model = version_converter.convert_version(model, FP16_QDQ_OPSET)
        except Exception as err:  # the converter raises bare RuntimeErrors for ops it cannot adapt
            raise OrinprofError(
                f"cannot raise the INT8 plan to opset {FP16_QDQ_OPSET} for FP16 Q/DQ scales ({err})",
                f"export the model at opset {FP16_QDQ_OPSET} or later (orinprof export --opset {FP16_QDQ_OPSET})",
            ) from err
    # ORT's quantizer leaves inferred value_info (FP32) on the exporter's Identity(initializer)
    # outputs; once folded into initializers the converter would turn those FP16 and cast them back
    # for LayerNorm, which the fp16 plan does not do
    del model.graph.value_info[:]
    return convert_fp16(model, STRONG_INT8_BLOCK_OPS)


def strongly_typed_int8_file(plan_path: Path) -> Path:
    """Write (or reuse) :func:`strongly_typed_int8` of ``plan_path`` beside it; the file name is
    ``<plan stem>.strong-fp16.onnx``.  Refuses, in one line, a result that would not build as
    intended (a Q/DQ scale that is not FP16, or a Cast between a DequantizeLinear and a GEMM)."""
    out = plan_path.with_name(plan_path.stem + _STRONG_SUFFIX)
    if out.is_file() and out.stat().st_mtime >= plan_path.stat().st_mtime:
        return out
    log.info("writing %s: the strongly typed INT8 plan (FP16, FP16 Q/DQ scales, opset %d)", out.name, FP16_QDQ_OPSET)
    converted = strongly_typed_int8(onnx.load(str(plan_path)))
    scale_types = _qdq_scale_types(converted)
    blocked = _casts_between_dq_and_gemm(converted)
    if scale_types - {onnx.TensorProto.FLOAT16} or blocked:
        why = f"a Cast sits between DequantizeLinear and {blocked[0]}" if blocked else "a Q/DQ scale is not FP16"
        raise OrinprofError(
            f"{plan_path.name} has no strongly typed FP16 form: {why}",
            "build weakly typed (TensorRT 8.6/10.x without --strongly-typed), or pass an FP16 Q/DQ ONNX "
            "(e.g. ModelOpt, high_precision_dtype='fp16')",
        )
    _atomic_save(converted, out)
    return out


def trt_plan_source(plan_path: Path, plan: str, strongly_typed: bool) -> Path:
    """The ONNX a TensorRT build of ``plan`` must start from, for the typing the build uses.

    Weak typing (TensorRT ≤ 10 without ``--strongly-typed``): the builder's FP16 flag picks the
    precisions, so the fp16 plan is the FP32 export + FP16 flag — the same graph the INT8 plans
    are quantized from (review M3; what ``trtexec --fp16`` and NVIDIA's BERT numbers do), not the
    Cast-wrapped onnxconverter graph.

    Strong typing (TensorRT 11; ``--strongly-typed`` on 10.x): TensorRT follows the ONNX types
    (``NvInfer.h`` ``STRONGLY_TYPED``), so the fp16 plan is the onnxconverter FP16 graph and an INT8
    plan is its FP16 form with FP16 Q/DQ scales (:func:`strongly_typed_int8_file`, review M2): only
    the quantized GEMMs differ from the fp16 plan.  An INT8 ONNX whose scales are already all FP16
    (ModelOpt's ``high_precision_dtype='fp16'``) is used as it is."""
    from orinprof.plans import get_plan  # local: keeps this section's edits apart from the recipes

    plan_path = Path(plan_path)
    chosen = get_plan(plan)
    if not strongly_typed:
        if chosen.fp16 and plan_path.name.endswith(_FP16_SUFFIX):
            source = plan_path.with_name(plan_path.name[: -len(_FP16_SUFFIX)] + ".onnx")
            if not source.is_file():
                raise OrinprofError(
                    f"the FP32 ONNX {source.name} that {plan_path.name} was converted from is missing",
                    "re-export the model (orinprof export): weakly typed fp16 engines are built from it",
                )
            return source
        return plan_path
    model = onnx.load(str(plan_path), load_external_data=False)
    if chosen.fp16 and not any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        raise OrinprofError(
            f"{plan_path.name} is an FP32 graph: built strongly typed, the fp16 plan would run in FP32",
            "use the FP16 ONNX orinprof writes for the fp16 plan (<export>.fp16.onnx)",
        )
    if chosen.is_int8:
        if _qdq_scale_types(model) == {onnx.TensorProto.FLOAT16}:
            return plan_path
        return strongly_typed_int8_file(plan_path)
    return plan_path
