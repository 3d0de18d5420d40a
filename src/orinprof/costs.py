"""Per-node arithmetic and memory traffic of an ONNX graph: the inputs of a roofline.

:func:`node_costs` runs ONNX shape inference (with data propagation, so the ``Shape → Gather →
Concat → Reshape`` chains of a PyTorch export resolve once the inputs are static) and returns one
row per node:

``flops``
    MatMul / Gemm / MatMulInteger: ``2·M·N·K`` per output matrix, batched and broadcast dimensions
    included (``2 · elements(out) · K``); Gemm adds ``M·N`` for its bias.  Conv: ``2 · elements(out) ·
    C_in/group · prod(kernel)`` (+ ``elements(out)`` for a bias); ConvTranspose the same over its
    input.  Einsum: ``2 · prod(size of every distinct index)``.  Everything else is an estimate per
    output element, from :data:`FLOPS_PER_ELEMENT` (Softmax 5: max, subtract, exp, sum, divide;
    LayerNormalization 8: mean, subtract, square, mean, rsqrt, multiply, scale, shift; GELU 8;
    reductions 1 per *input* element; plain elementwise 1).  Data movement (Transpose, Gather,
    Concat, Slice, …) is 0.
``weight_bytes``
    Bytes of the constant inputs as an engine stores them: an initializer (or a constant-only
    chain such as ``Transpose(W)``) counts at its own dtype; a weight behind ``DequantizeLinear``
    counts at the quantized dtype (int8: 1 byte) plus its scales.  Gather from a constant table
    (an embedding) counts only the rows it reads (= its output bytes).
``act_in_bytes`` / ``act_out_bytes``
    Non-constant inputs / all outputs, ``elements × dtype size`` from the inferred types.  An input
    produced by an activation ``DequantizeLinear`` counts at the quantized dtype, because TensorRT
    fuses Q/DQ into the neighbouring kernels and that kernel reads int8.

Nodes that TensorRT (and ONNX Runtime's graph optimiser) fold away get ``status = folded`` and zero
cost: nodes computing only from constants (weight transposes, weight DequantizeLinear, shape
arithmetic), Q/DQ on activations, and pure views (Reshape, Squeeze, Unsqueeze, Flatten, Identity).
A node whose shapes could not be inferred gets ``status = no_shape`` and NaN costs (never 0).

``fused_in_bytes`` / ``fused_out_bytes``
    The part of ``act_in_bytes`` / ``act_out_bytes`` that a fusing compiler keeps on chip: the
    tensor between a computing node and consumers that are all elementwise, Softmax or norm nodes
    (GEMM → bias Add → the Erf-GELU chain; scale → mask Add → Softmax; residual Add → LayerNorm;
    views and activation Q/DQ in between are looked through).  Projections subtract them when
    they model fusion; the unfused counts stay in the other columns.

``kind`` groups nodes for per-op-kind efficiency factors in :mod:`orinprof.project`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper, shape_inference

from orinprof.errors import OrinprofError
from orinprof.graph import MATMUL_OPS, NORM_OPS, QDQ_OPS, constant_tensors, node_names

log = logging.getLogger(__name__)

COLUMNS = (
    "node",
    "op_type",
    "kind",
    "flops",
    "weight_bytes",
    "act_in_bytes",
    "act_out_bytes",
    "gemm",
    "int8_weights",
    "fused_in_bytes",
    "fused_out_bytes",
    "status",
)

#: Op kinds (the granularity of efficiency factors).
KINDS = ("gemm", "matmul", "conv", "softmax", "norm", "elementwise", "reduce", "data", "folded")

#: Kinds that fuse with their producer (TensorRT's pointwise / softmax / skip-layernorm fusions).
FUSING_KINDS = frozenset({"elementwise", "softmax", "norm"})

#: GEMMs whose first two inputs are the operands (the FLOP formula below applies)
GEMM_OPS = MATMUL_OPS
VIEW_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "Size"})
DATA_OPS = frozenset(
    {
        "Transpose",
        "Gather",
        "GatherElements",
        "GatherND",
        "Concat",
        "Slice",
        "Split",
        "Expand",
        "Tile",
        "Pad",
        "Cast",
        "ScatterND",
        "ScatterElements",
        "Where",
        "ConstantOfShape",
        "Range",
        "Trilu",
    }
)
REDUCE_OPS = frozenset(
    {
        "ReduceMean",
        "ReduceSum",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL2",
        "ReduceSumSquare",
        "ArgMax",
    }
)

#: Estimated FLOPs per output element for non-GEMM ops (an order-of-magnitude model; these ops are
#: memory-bound on every device orinprof projects to, so the byte counts decide their floor).
FLOPS_PER_ELEMENT: dict[str, float] = {
    "Softmax": 5,
    "LogSoftmax": 6,
    "LayerNormalization": 8,
    "SkipLayerNormalization": 9,
    "SimplifiedLayerNormalization": 5,
    "RMSNormalization": 5,
    "InstanceNormalization": 8,
    "GroupNormalization": 8,
    "BatchNormalization": 2,
    "Gelu": 8,
    "FastGelu": 8,
    "BiasGelu": 9,
    "Erf": 4,
    "Tanh": 4,
    "Sigmoid": 4,
    "Exp": 4,
    "Sqrt": 2,
    "Pow": 2,
    "HardSigmoid": 3,
    "HardSwish": 4,
}
_ZERO_FLOP_OPS = DATA_OPS | VIEW_OPS | QDQ_OPS

#: Initializers with more elements than this lose their values in the shape-inference copy.
_KEEP_VALUES_UP_TO = 4096

_SEQ_HINTS = ("seq", "sequence", "len", "token", "time")


@dataclass(frozen=True)
class _TensorInfo:
    elem_type: int
    shape: tuple[int, ...] | None  # None: rank or a dimension unknown

    @property
    def numel(self) -> float:
        return float(np.prod(self.shape)) if self.shape is not None else math.nan

    @property
    def nbytes(self) -> float:
        return self.numel * dtype_size(self.elem_type)


def dtype_size(elem_type: int) -> int:
    """Bytes per element of an ONNX tensor type (0 for an undefined type)."""
    if elem_type == TensorProto.UNDEFINED:
        return 0
    if elem_type in (TensorProto.STRING,):
        return 0
    try:
        return int(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except (KeyError, TypeError, ValueError):
        return 1  # float8 / int4 variants: at most one byte


def dynamic_dims(model: onnx.ModelProto) -> list[str]:
    """``input:axis=name`` for every graph-input dimension that is not a fixed positive number."""
    inits = {i.name for i in model.graph.initializer}
    found = []
    for inp in model.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            if not (dim.HasField("dim_value") and dim.dim_value > 0):
                found.append(f"{inp.name}:{axis}={dim.dim_param or '?'}")
    return found


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose large initializers keep dims and type but no values.

    Shape inference only needs the values of small tensors (shape constants); copying and
    inferring over a gigabyte of weights takes tens of seconds for nothing.
    """
    out = onnx.ModelProto()
    graph = model.graph
    out.ir_version = model.ir_version
    out.opset_import.extend(model.opset_import)
    g = out.graph
    g.name = graph.name
    g.node.extend(graph.node)
    g.input.extend(graph.input)
    g.output.extend(graph.output)
    g.value_info.extend(graph.value_info)
    for init in graph.initializer:
        if math.prod(init.dims) <= _KEEP_VALUES_UP_TO:
            g.initializer.append(init)
            continue
        stub = g.initializer.add()
        stub.name = init.name
        stub.data_type = init.data_type
        stub.dims.extend(init.dims)
        # values "elsewhere": shape inference reads only dims and type of external tensors
        stub.data_location = TensorProto.EXTERNAL
        entry = stub.external_data.add()
        entry.key, entry.value = "location", "orinprof-costs-stub"
    return out


def fix_input_shapes(
    model: onnx.ModelProto,
    batch: int | None = None,
    seq_len: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> onnx.ModelProto:
    """A copy of ``model`` with symbolic input dimensions replaced by numbers.

    ``dims`` maps a ``dim_param`` name to its value and wins.  Otherwise a dimension whose name
    mentions "batch" (or axis 0 of an unnamed one) gets ``batch``, and one whose name mentions a
    sequence (``seq``, ``len``, ``token``…, or axis 1 of an unnamed one) gets ``seq_len``.  Fixed
    dimensions are never changed.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    dims = dict(dims or {})
    inits = {i.name for i in out.graph.initializer}
    for inp in out.graph.input:
        if inp.name in inits or not inp.type.HasField("tensor_type"):
            continue
        for axis, dim in enumerate(inp.type.tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            name = dim.dim_param.lower()
            value: int | None
            if dim.dim_param in dims:
                value = dims[dim.dim_param]
            elif "batch" in name or (not name and axis == 0):
                value = batch
            elif any(h in name for h in _SEQ_HINTS) or (not name and axis == 1):
                value = seq_len
            elif axis == 0:
                value = batch
            else:
                value = seq_len
            if value is not None:
                if value <= 0:
                    raise OrinprofError(f"dimension {dim.dim_param or axis} = {value}", "use a positive size")
                dim.Clear()
                dim.dim_value = int(value)
    return out


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as err:  # onnx raises several private error types; all mean "bad graph"
        raise OrinprofError(
            f"ONNX shape inference failed: {str(err).splitlines()[0]}", "check the model with onnx.checker"
        ) from err


def _fold_small_constants(model: onnx.ModelProto, rounds: int = 8) -> onnx.ModelProto:
    """A copy in which small constant-only nodes (the shape arithmetic of a dynamic-axes export)
    are replaced by initializers, so that shape inference can resolve the ``Reshape`` they feed.

    ONNX's own data propagation stops at ops it does not know (``Div``, ``Cast``, ``Equal``…);
    onnx's reference evaluator computes those values exactly.  Only the returned copy changes; the
    caller keeps its node list (the folded nodes get ``status = folded`` anyway).
    """
    from onnx.reference import ReferenceEvaluator

    current = model
    for _ in range(rounds):
        inferred = _infer(current)
        infos = _tensor_infos(inferred)
        values: dict[str, np.ndarray] = {}
        for init in current.graph.initializer:
            if init.data_location != TensorProto.EXTERNAL and math.prod(init.dims) <= _KEEP_VALUES_UP_TO:
                values[init.name] = numpy_helper.to_array(init)
        folded: list[int] = []
        for idx, node in enumerate(current.graph.node):
            ins = [i for i in node.input if i]
            if _has_subgraph(node) or node.domain not in ("", "ai.onnx"):
                continue
            result: list[np.ndarray] | None = None
            if node.op_type == "Shape" and ins and (infos.get(ins[0]) and infos[ins[0]].shape is not None):
                shape = np.array(infos[ins[0]].shape, dtype=np.int64)
                start, end = _attr(node, "start", 0), _attr(node, "end", None)
                result = [shape[int(start) : None if end is None else int(end)]]  # type: ignore[call-overload]
            elif node.op_type == "Constant" or (ins and all(i in values for i in ins)):
                try:
                    outs = ReferenceEvaluator(node).run(None, {i: values[i] for i in ins})
                    result = [np.asarray(r) for r in outs]
                except Exception:  # an op the reference evaluator lacks: leave it to inference
                    result = None
            if result is None or any(np.asarray(r).size > _KEEP_VALUES_UP_TO for r in result):
                continue
            for name, value in zip(node.output, result, strict=False):
                values[name] = np.asarray(value)
            if node.op_type != "Constant":
                folded.append(idx)
        if not folded:
            return current
        nxt = onnx.ModelProto()
        nxt.CopyFrom(current)
        drop = set(folded)
        keep = [n for i, n in enumerate(nxt.graph.node) if i not in drop]
        new_inits = [numpy_helper.from_array(values[o], o) for i in folded for o in current.graph.node[i].output if o]
        del nxt.graph.node[:]
        nxt.graph.node.extend(keep)
        nxt.graph.initializer.extend(new_inits)
        current = nxt
    return current


def _tensor_infos(model: onnx.ModelProto) -> dict[str, _TensorInfo]:
    infos: dict[str, _TensorInfo] = {}
    graph = model.graph
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        shape: tuple[int, ...] | None = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value") and d.dim_value >= 0:
                    dims.append(int(d.dim_value))
                else:
                    dims = None  # type: ignore[assignment]
                    break
            shape = tuple(dims) if dims is not None else None
        infos[vi.name] = _TensorInfo(tt.elem_type, shape)
    for init in graph.initializer:
        infos[init.name] = _TensorInfo(init.data_type, tuple(int(d) for d in init.dims))
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    infos[node.output[0]] = _TensorInfo(attr.t.data_type, tuple(int(d) for d in attr.t.dims))
    return infos


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _einsum_flops(node: onnx.NodeProto, shapes: list[tuple[int, ...] | None]) -> float:
    raw = _attr(node, "equation", b"")
    eq = raw.decode() if isinstance(raw, bytes) else str(raw)
    lhs = eq.replace(" ", "").split("->")[0]
    sizes: dict[str, int] = {}
    for term, shape in zip(lhs.split(","), shapes, strict=False):
        if shape is None or "." in term:
            return math.nan
        for letter, size in zip(term, shape, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), size)
    return 2.0 * float(np.prod(list(sizes.values()))) if sizes else math.nan


def _kind(op_type: str, gemm: bool) -> str:
    if op_type in GEMM_OPS or op_type == "Einsum":
        return "gemm" if gemm else "matmul"
    if op_type in ("Conv", "ConvTranspose"):
        return "conv"
    if op_type in ("Softmax", "LogSoftmax"):
        return "softmax"
    if op_type in NORM_OPS:
        return "norm"
    if op_type in REDUCE_OPS:
        return "reduce"
    if op_type in DATA_OPS:
        return "data"
    return "elementwise"


def node_costs(
    model: onnx.ModelProto,
    batch: int | None = None,
    seq_len: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per ONNX node with its FLOPs and bytes moved (columns :data:`COLUMNS`).

    ``batch`` / ``seq_len`` / ``dims`` fix symbolic input dimensions first (see
    :func:`fix_input_shapes`).  Nodes whose shapes stay unknown get ``status = no_shape``.
    """
    model = _skeleton(model)
    if batch is not None or seq_len is not None or dims:
        model = fix_input_shapes(model, batch, seq_len, dims)
    # shapes from a copy with the shape arithmetic folded; rows from the model's own nodes
    infos = _tensor_infos(_infer(_fold_small_constants(model)))
    graph = _infer(model).graph
    for name, info in _tensor_infos(onnx.ModelProto(graph=graph)).items():
        infos.setdefault(name, info)
    producer: dict[str, onnx.NodeProto] = {o: n for n in graph.node for o in n.output}

    # the one constness rule (orinprof.graph); a Shape/Size of a tensor with a static inferred shape
    # is constant too
    def static_shape_of(node: onnx.NodeProto) -> bool:
        ins = [i for i in node.input if i]
        return node.op_type in ("Shape", "Size") and bool(ins) and bool(infos.get(ins[0], _TensorInfo(0, None)).shape)

    const = constant_tensors(graph, also_constant=static_shape_of)

    const_bytes_cache: dict[str, float] = {}

    def const_bytes(name: str) -> float:
        """Stored bytes of a constant tensor (through DequantizeLinear: the quantized storage)."""
        if name in const_bytes_cache:
            return const_bytes_cache[name]
        node = producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear":
            value = sum(const_bytes(i) for i in node.input if i)
        else:
            info = infos.get(name)
            value = info.nbytes if info is not None else math.nan
        const_bytes_cache[name] = value
        return value

    def act_bytes(name: str) -> float:
        info = infos.get(name)
        if info is None:
            return math.nan
        node = producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input:
            quantized = infos.get(node.input[0])
            if quantized is not None:
                return info.numel * dtype_size(quantized.elem_type)
        return info.nbytes

    def weight_behind_dq(name: str) -> bool:
        node = producer.get(name)
        while node is not None and node.op_type in ("Transpose", "Reshape", "Cast", "Identity"):
            node = producer.get(node.input[0])
        return node is not None and node.op_type == "DequantizeLinear"

    def is_folded(node: onnx.NodeProto) -> bool:
        ins = [i for i in node.input if i]
        return (
            all(o in const for o in node.output if o)
            or node.op_type in VIEW_OPS
            or (node.op_type in QDQ_OPS and not all(i in const for i in ins))
        )

    folded_ids = {id(n) for n in graph.node if is_folded(n)}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            if i:
                consumers.setdefault(i, []).append(n)

    def real_source(t: str) -> str:
        node = producer.get(t)
        while node is not None and id(node) in folded_ids and t not in const and node.input:
            t = node.input[0]
            node = producer.get(t)
        return t

    def real_consumers(t: str) -> list[onnx.NodeProto]:
        found: list[onnx.NodeProto] = []
        for c in consumers.get(t, []):
            if id(c) in folded_ids and c.output:
                found.extend(x for o in c.output if o for x in real_consumers(o))
            else:
                found.append(c)
        return found

    # Pointwise fusion (TensorRT epilogue / pointwise kernels, ONNX Runtime's fused activations): a
    # tensor read only by elementwise nodes stays on chip, so its producer never writes it and
    # those consumers never read it.  Projections may subtract these bytes.
    outputs = {o.name for o in graph.output}
    fused_in: dict[int, float] = {}
    fused_out: dict[int, float] = {}
    fused_sources: set[str] = set()
    for n in graph.node:
        if id(n) in folded_ids or _kind(n.op_type, False) not in FUSING_KINDS:
            continue
        for i in n.input:
            if not i or i in const:
                continue
            src = real_source(i)
            p = producer.get(src)
            if p is None or id(p) in folded_ids or src in outputs:
                continue
            if not all(_kind(c.op_type, False) in FUSING_KINDS for c in real_consumers(src)):
                continue  # also read by a GEMM / norm / …: it must be written to memory
            src_info = infos.get(src)
            if src_info is None or src_info.shape is None:
                continue
            fused_in[id(n)] = fused_in.get(id(n), 0.0) + act_bytes(i)
            if src not in fused_sources:
                fused_sources.add(src)
                fused_out[id(p)] = fused_out.get(id(p), 0.0) + src_info.nbytes

    rows = []
    for name, node in zip(node_names(graph), graph.node, strict=True):
        op = node.op_type
        ins = [i for i in node.input if i]
        outs = [o for o in node.output if o]
        gemm = op in GEMM_OPS and len(ins) >= 2 and (ins[0] in const or ins[1] in const)
        int8_weights = bool(gemm and any(weight_behind_dq(i) for i in ins[:2] if i in const))
        row = {
            "node": name,
            "op_type": op,
            "kind": _kind(op, gemm),
            "flops": 0.0,
            "weight_bytes": 0.0,
            "act_in_bytes": 0.0,
            "act_out_bytes": 0.0,
            "gemm": gemm,
            "int8_weights": int8_weights,
            "fused_in_bytes": fused_in.get(id(node), 0.0),
            "fused_out_bytes": fused_out.get(id(node), 0.0),
            "status": "ok",
        }
        if id(node) in folded_ids:
            row["kind"] = "folded"
            row["status"] = "folded"
            rows.append(row)
            continue

        in_shapes = [infos[i].shape if i in infos else None for i in ins]
        out_infos = [infos.get(o) for o in outs]
        out_shape = out_infos[0].shape if out_infos and out_infos[0] is not None else None
        act_in = [i for i in ins if i not in const]
        needed = [*act_in, *outs]
        if any(infos.get(t) is None or infos[t].shape is None for t in needed):
            for col in (
                "flops",
                "weight_bytes",
                "act_in_bytes",
                "act_out_bytes",
                "fused_in_bytes",
                "fused_out_bytes",
            ):
                row[col] = math.nan
            row["status"] = "no_shape"
            rows.append(row)
            continue

        out_elems = float(np.prod(out_shape)) if out_shape is not None else 0.0
        flops = _flops(node, op, in_shapes, out_shape, out_elems, [infos[i].numel for i in act_in])
        if op == "Gather" and ins and ins[0] in const:
            weight = sum(info.nbytes for info in out_infos if info is not None)  # rows read, not the table
        else:
            weight = sum(const_bytes(i) for i in ins if i in const and producer.get(i, node).op_type != "Shape")
        row.update(
            flops=flops,
            weight_bytes=float(weight),
            act_in_bytes=float(sum(act_bytes(i) for i in act_in)),
            act_out_bytes=float(sum(info.nbytes for info in out_infos if info is not None)),
        )
        if not math.isfinite(row["flops"]):
            row["status"] = "no_shape"
        rows.append(row)

    df = pd.DataFrame(rows, columns=list(COLUMNS))
    unknown = int((df["status"] == "no_shape").sum())
    if unknown:  # the status column carries it; callers that need shapes raise with a fix
        log.debug(
            "%d of %d nodes have no inferred shape (dynamic input dims: %s)",
            unknown,
            len(df),
            ", ".join(dynamic_dims(model)) or "none",
        )
    return df


def _flops(
    node: onnx.NodeProto,
    op: str,
    in_shapes: list[tuple[int, ...] | None],
    out_shape: tuple[int, ...] | None,
    out_elems: float,
    act_in_elems: list[float],
) -> float:
    if op in ("MatMul", "MatMulInteger"):
        a = in_shapes[0]
        if a is None or not a:
            return math.nan
        return 2.0 * out_elems * a[-1]
    if op == "Gemm":
        a = in_shapes[0]
        if a is None or len(a) != 2:
            return math.nan
        k = a[0] if _attr(node, "transA", 0) else a[1]
        bias = out_elems if len(in_shapes) > 2 else 0.0
        return 2.0 * out_elems * k + bias
    if op == "Conv":
        w = in_shapes[1] if len(in_shapes) > 1 else None
        if w is None:
            return math.nan
        bias = out_elems if len(in_shapes) > 2 else 0.0
        return 2.0 * out_elems * float(np.prod(w[1:])) + bias
    if op == "ConvTranspose":
        x, w = in_shapes[0], in_shapes[1] if len(in_shapes) > 1 else None
        if x is None or w is None:
            return math.nan
        return 2.0 * float(np.prod(x)) * float(np.prod(w[1:]))
    if op == "Einsum":
        return _einsum_flops(node, in_shapes)
    if op in _ZERO_FLOP_OPS:
        return 0.0
    if op in REDUCE_OPS:
        return float(sum(act_in_elems))
    return FLOPS_PER_ELEMENT.get(op, 1.0) * out_elems


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def summarize(costs: pd.DataFrame) -> dict[str, float]:
    """Totals of a cost table (for logs and the CLI)."""
    ok = costs[costs["status"] == "ok"]
    return {
        "nodes": float(len(costs)),
        "no_shape": float((costs["status"] == "no_shape").sum()),
        "gflops": float(ok["flops"].sum()) / 1e9,
        "weight_mb": float(ok["weight_bytes"].sum()) / 1e6,
        "gemm_gflops": float(ok.loc[ok["gemm"], "flops"].sum()) / 1e9,
    }
