"""Q/DQ lint: does each attention block meet TensorRT's INT8 fused-attention preconditions?

NVIDIA's developer guide (section "mha-fusion", quoted in NVIDIA/TensorRT#2981 and #4167;
``quantization_path.md`` §1.4): INT8 fused MHA needs Q/DQ "before the first batched matrix
multiplication, after softmax, and after the second batched matrix multiplication", head size 16,
32 or 64 and sequence lengths ≤ 512.  The ONNX-TensorRT parser adds (``docs/operators.md``, 8.5 to
10.1): zero point must be 0 (symmetric, INT8 not UINT8), DequantizeLinear input INT8 only (an INT32
bias DQ does not parse), and TensorRT 8.x reads scales as float32.  NVIDIA's placement advice
(§1.2): do not quantize GEMM outputs.

The checks come in three kinds (column ``kind``), because they fail for different reasons:

* ``fusion``: NVIDIA's INT8 fused-MHA preconditions (Q/DQ around both BMMs and the Softmax output,
  head size, sequence length), on every version.  A ``Cast`` between a DequantizeLinear and a BMM
  blocks the DQ→GEMM fusion, so it is not walked through (review m9a; ModelOpt PR #1289,
  ``quantization_path.md`` §5).
* ``parser``: what the ONNX parser of the target TensorRT version rejects.  ``float32_scales`` is
  an 8.x rule only: TensorRT 10 parses FP16 scales, so it does not decide the verdict there
  (review m9b); per-tensor activation scales are required on every version ("Activations-
  quantization does not support per-axis quantization", onnx-tensorrt 8.6; review m9c).
* ``advice``: NVIDIA's placement advice ("by default, do not quantize outputs of weighted ops"):
  reported, never a reason for "not fusable".

Passing the lint is necessary, not sufficient: "TensorRT may decide not to fuse".  Whether it did is
read from the built engine (``fused_mha`` in the TensorRT backend's info).

Library twin of ``orinprof lint-qdq``: :func:`lint_qdq`.  Pure: ``onnx`` only.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, numpy_helper

from orinprof import results
from orinprof.errors import OrinprofError
from orinprof.graph import Graph, load_onnx
from orinprof.results import Column, Table

log = logging.getLogger(__name__)

QDQ_LINT_TABLE = results.register(
    Table(
        name="qdq_lint",
        file="qdq_lint.csv",
        description=(
            "One row per attention core and check: does the Q/DQ layout meet TensorRT's INT8 fused-MHA "
            "preconditions?  `verdict` and `reason` repeat the core's overall result on each of its rows.  "
            "`orinprof profile` writes it for every INT8 plan, with the run keys (run_id, precision, seq_len…) "
            "added as extra columns."
        ),
        keys=("block", "core", "check"),
        open_ended=True,
        columns=(
            Column("block", "int", "transformer block index from the classifier", nullable=True),
            Column("core", "int", "attention core within the block (0 unless a block has several)"),
            Column("check", "str", "check name (see docs: `bmm1_inputs_qdq`, `softmax_output_qdq`, …)"),
            Column(
                "kind",
                "str",
                "`fusion` (MHA-fusion precondition), `parser` (the target TensorRT's ONNX parser rejects it) or "
                "`advice` (NVIDIA's placement advice: reported, never decides the verdict)",
            ),
            Column("ok", "bool", "passed; empty when it could not be decided (unknown shape)", nullable=True),
            Column("detail", "str", "what was found, naming the nodes involved"),
            Column("verdict", "str", "`fusable`, `not fusable` or `unknown` for the core"),
            Column("reason", "str", "the failed (or undecided) checks, `;`-separated; empty when fusable"),
        ),
    )
)

CHECKS = (
    "bmm1_inputs_qdq",
    "softmax_output_qdq",
    "bmm2_inputs_qdq",
    "bmm2_output_qdq",
    "head_size",
    "seq_len",
    "symmetric_int8",
    "float32_scales",
    "per_tensor_activations",
    "no_int32_bias_dq",
    "no_gemm_output_qdq",
)
#: the kind of every check (see the module docstring)
CHECK_KINDS = {
    "bmm1_inputs_qdq": "fusion",
    "softmax_output_qdq": "fusion",
    "bmm2_inputs_qdq": "fusion",
    "bmm2_output_qdq": "fusion",
    "head_size": "fusion",
    "seq_len": "fusion",
    "symmetric_int8": "parser",
    "float32_scales": "parser",
    "per_tensor_activations": "parser",
    "no_int32_bias_dq": "parser",
    "no_gemm_output_qdq": "advice",
}
#: TensorRT versions before which the parser reads Q/DQ scales as float32 only (8.x)
FLOAT32_SCALES_BEFORE = (10, 0)

INT8_HEAD_SIZES = (16, 32, 64)
INT8_MAX_SEQ = 512
#: ops that only move or retype data: walked through when tracing; TensorRT propagates Q/DQ across
#: the data-movement ones, but a Cast between a DequantizeLinear and a GEMM blocks DQ→GEMM fusion
PASS_THROUGH = frozenset({"Reshape", "Transpose", "Cast", "Squeeze", "Unsqueeze", "Identity", "Flatten"})
#: element-wise scaling by a constant (the attention scale on Q and K) is also allowed
SCALE_OPS = frozenset({"Mul", "Div"})
GEMM_OPS = frozenset({"MatMul", "Gemm", "Einsum"})


@dataclass(frozen=True)
class _Trace:
    """A backward walk from a tensor: the Q/DQ and pass-through nodes crossed, and where it stopped."""

    nodes: tuple[onnx.NodeProto, ...]
    origin: onnx.NodeProto | None  # first node that is neither Q/DQ nor pass-through; None = graph input

    @property
    def dequantized(self) -> bool:
        # the first non-pass-through node upstream must be a DequantizeLinear, with no Cast before it
        for node in self.nodes:
            if node.op_type == "DequantizeLinear":
                return True
            if node.op_type in ("QuantizeLinear", "Cast"):
                return False
        return False

    @property
    def cast_before_dq(self) -> bool:
        for node in self.nodes:
            if node.op_type == "DequantizeLinear":
                return False
            if node.op_type == "Cast":
                return True
        return False

    @property
    def qdq(self) -> list[onnx.NodeProto]:
        return [n for n in self.nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear")]

    def describe(self) -> str:
        path = " ← ".join(f"{n.op_type}" for n in self.nodes)
        start = f"{self.origin.op_type} {self.origin.name!r}" if self.origin is not None else "a graph input"
        return f"{path + ' ← ' if path else ''}{start}"


def _neighbours(graph: Graph, node: onnx.NodeProto, upstream: bool) -> list[onnx.NodeProto]:
    """The nodes producing ``node``'s inputs (upstream) or consuming its outputs."""
    if upstream:
        return [p for t in node.input if (p := graph.producer_node(t)) is not None]
    return [c for t in node.output for c in graph.consumer_nodes(t)]


def _trace_back(graph: Graph, tensor: str, limit: int = 16) -> _Trace:
    crossed: list[onnx.NodeProto] = []
    for _ in range(limit):
        node = graph.producer_node(tensor)
        if node is None:
            return _Trace(tuple(crossed), None)
        op = node.op_type
        scaled_by_constant = op in SCALE_OPS and len(node.input) == 2 and graph.is_const(node.input[1])
        if op in PASS_THROUGH or op in ("QuantizeLinear", "DequantizeLinear") or scaled_by_constant:
            crossed.append(node)
            tensor = node.input[0]
        elif op == "Mul" and len(node.input) == 2 and graph.is_const(node.input[0]):
            crossed.append(node)
            tensor = node.input[1]
        else:
            return _Trace(tuple(crossed), node)
    return _Trace(tuple(crossed), None)


def _quantized_downstream(graph: Graph, tensor: str, depth: int = 8) -> bool:
    """Does ``tensor`` reach a QuantizeLinear through pass-through ops only?"""
    frontier = [tensor]
    for _ in range(depth):
        following = []
        for name in frontier:
            for node in graph.consumer_nodes(name):
                if node.op_type == "QuantizeLinear":
                    return True
                if node.op_type in PASS_THROUGH:
                    following.extend(node.output[:1])
        frontier = following
    return False


def _load(model: onnx.ModelProto | Path | str) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    return load_onnx(model, "pass the Q/DQ ONNX file of an INT8 plan")


def lint_qdq(
    model: onnx.ModelProto | Path | str,
    classes: pd.DataFrame | None = None,
    trt_version: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Check every attention core of ``model``; returns the ``qdq_lint`` table.

    ``classes`` is the ``layer_classes`` table (from :func:`orinprof.classify.classify`); computed
    here when not given.  ``trt_version`` is the TensorRT the plan is for; None = the strictest
    supported (8.6, JetPack 6.0).  Parser checks that do not apply to it are reported but do not
    decide the verdict.  Raises :class:`OrinprofError` when the model has no attention core.
    """
    target = trt_version or (8, 6)
    model = _load(model)
    if classes is None:
        from orinprof.classify import classify

        classes = classify(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as err:  # shape inference is best effort: checks needing shapes become unknown
        log.warning("ONNX shape inference failed (%s); head size and sequence length stay unknown", err)
        inferred = model
    graph = Graph(inferred)
    cores = _attention_cores(classes, graph)
    if not cores:
        raise OrinprofError(
            "no attention block found (no MatMul → Softmax → MatMul pattern)",
            "lint-qdq checks transformer attention; pass the ONNX of a transformer plan",
        )
    rows: list[dict[str, object]] = []
    for block, core, (bmm1, softmax, bmm2), members in cores:
        checks = _check_core(graph, bmm1, softmax, bmm2, members)
        deciding = [c for c in checks if _decides(c[0], target)]
        failed = [f"{name}: {detail}" for name, ok, detail in deciding if ok is False]
        unknown = [f"{name}: {detail}" for name, ok, detail in deciding if ok is None]
        verdict = "not fusable" if failed else ("unknown" if unknown else "fusable")
        reason = "; ".join(failed or unknown)
        for name, ok, detail in checks:
            rows.append(
                {
                    "block": block,
                    "core": core,
                    "check": name,
                    "kind": CHECK_KINDS[name],
                    "ok": ok,
                    "detail": detail,
                    "verdict": verdict,
                    "reason": reason,
                }
            )
    df = pd.DataFrame(rows, columns=QDQ_LINT_TABLE.names)
    df["block"] = df["block"].astype("Int64")
    return results.check(df, QDQ_LINT_TABLE)


def _decides(check: str, target: tuple[int, int]) -> bool:
    """Does ``check`` take part in the verdict for TensorRT ``target``?"""
    kind = CHECK_KINDS[check]
    if kind == "advice":
        return False
    if check == "float32_scales":
        return target < FLOAT32_SCALES_BEFORE
    return True


def block_verdicts(lint: pd.DataFrame) -> pd.DataFrame:
    """One row per attention core: block, core, verdict, reason."""
    return lint.drop_duplicates(["block", "core"])[["block", "core", "verdict", "reason"]].reset_index(drop=True)


def _attention_cores(
    classes: pd.DataFrame, graph: Graph
) -> list[tuple[int | None, int, tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto], set[str]]]:
    """(block, core index, (bmm1, softmax, bmm2), names of the core's neighbourhood), in graph order.

    Cores are anchored on the classifier's Softmax nodes; BMM1/BMM2 are the nearest GEMMs up- and
    downstream of it (preferring those the classifier tagged ``bmm1``/``bmm2``).  The classifier's
    ``block`` only labels the rows."""
    known = classes[classes["node"].isin(graph.index)]
    role = dict(zip(known["node"], known["role"], strict=True))
    block_of = {n: (None if pd.isna(b) else int(b)) for n, b in zip(known["node"], known["block"], strict=True)}
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    softmaxes = sorted(
        (
            node
            for n, r in role.items()
            if r == "softmax" and (node := graph.nodes[graph.index[n]]).op_type == "Softmax"
        ),
        key=lambda n: order[n.name],
    )
    cores = []
    per_block: dict[int | None, int] = defaultdict(int)
    for softmax in softmaxes:
        bmm1 = _nearest_gemm(graph, softmax, role, "bmm1", upstream=True)
        bmm2 = _nearest_gemm(graph, softmax, role, "bmm2", upstream=False)
        if bmm1 is None or bmm2 is None:
            log.warning("Softmax %r has no MatMul before and after it; skipped", softmax.name)
            continue
        block = next((block_of.get(n.name) for n in (softmax, bmm2, bmm1) if block_of.get(n.name) is not None), None)
        cores.append((block, per_block[block], (bmm1, softmax, bmm2), _neighbourhood(graph, bmm1, bmm2)))
        per_block[block] += 1
    return cores


def _nearest_gemm(
    graph: Graph, start: onnx.NodeProto, role: dict[str, str], wanted: str, upstream: bool, depth: int = 8
) -> onnx.NodeProto | None:
    frontier = [start]
    first_gemm = None
    for _ in range(depth):
        following = []
        for node in frontier:
            for candidate in _neighbours(graph, node, upstream):
                if candidate.op_type in GEMM_OPS:
                    if role.get(candidate.name) == wanted:
                        return candidate
                    first_gemm = first_gemm or candidate
                else:
                    following.append(candidate)
        frontier = following
    return first_gemm


def _neighbourhood(graph: Graph, bmm1: onnx.NodeProto, bmm2: onnx.NodeProto, depth: int = 10) -> set[str]:
    """Nodes between the projections and the BMMs, the projections themselves and what directly
    consumes the projections' outputs (bias Adds): where this core's Q/DQ parameters live."""
    members = {bmm1.name, bmm2.name}
    stops: list[onnx.NodeProto] = []
    for seeds, upstream in (([bmm1, bmm2], True), ([bmm2], False)):
        frontier = list(seeds)
        for _ in range(depth):
            following = []
            for node in frontier:
                for candidate in _neighbours(graph, node, upstream):
                    if candidate.name in members:
                        continue
                    members.add(candidate.name)
                    if candidate.op_type in GEMM_OPS and candidate not in (bmm1, bmm2):
                        stops.append(candidate)  # a projection: the core ends here
                    else:
                        following.append(candidate)
            frontier = following
    for gemm in stops:
        members.update(c.name for t in gemm.output for c in graph.consumer_nodes(t))
        members.update(p.name for t in gemm.input if (p := graph.producer_node(t)) is not None)
    return members


Check = tuple[str, bool | None, str]  # name, ok (None = undecided), detail


def _check_core(
    graph: Graph, bmm1: onnx.NodeProto, softmax: onnx.NodeProto, bmm2: onnx.NodeProto, members: set[str]
) -> list[Check]:
    checks: list[Check] = []
    traces1 = [_trace_back(graph, t) for t in bmm1.input[:2]]
    traces2 = [_trace_back(graph, t) for t in bmm2.input[:2]]

    def inputs_check(name: str, bmm: onnx.NodeProto, traces: list[_Trace]) -> Check:
        bad = [
            f"input {i} ← {t.describe()}"
            + (" (a Cast after the DequantizeLinear blocks DQ→GEMM fusion)" if t.cast_before_dq else "")
            for i, t in enumerate(traces)
            if not t.dequantized
        ]
        if bad:
            return (name, False, f"{bmm.name!r}: no DequantizeLinear on " + "; ".join(bad))
        return (name, True, f"{bmm.name!r}: both inputs come from DequantizeLinear")

    checks.append(inputs_check("bmm1_inputs_qdq", bmm1, traces1))

    # Softmax output quantized: one BMM2 input is Softmax → (pass-through) → Q → DQ → (pass-through) → BMM2
    probs = [t for t in traces2 if t.origin is softmax]
    if not probs:
        checks.append(("softmax_output_qdq", False, f"{softmax.name!r} does not feed {bmm2.name!r} directly"))
    else:
        kinds = {n.op_type for n in probs[0].qdq}
        ok = {"QuantizeLinear", "DequantizeLinear"} <= kinds
        detail = f"{softmax.name!r} → {bmm2.name!r}: " + (
            "Q/DQ pair on the probabilities" if ok else f"no Q/DQ pair (path: {probs[0].describe()})"
        )
        checks.append(("softmax_output_qdq", ok, detail))

    checks.append(inputs_check("bmm2_inputs_qdq", bmm2, traces2))

    after = _quantized_downstream(graph, bmm2.output[0])
    checks.append(
        (
            "bmm2_output_qdq",
            after,
            f"{bmm2.name!r} output "
            + ("reaches a QuantizeLinear (e.g. the out-projection input)" if after else "is not quantized"),
        )
    )
    checks.extend(_shape_checks(graph, bmm1))

    # parameters of every Q/DQ around this core (projections included): the parser rejects any bad one
    qdq_nodes = [n for t in (*traces1, *traces2) for n in t.qdq] + [
        n
        for m in sorted(members)
        if (n := graph.node(m)) is not None and n.op_type in ("QuantizeLinear", "DequantizeLinear")
    ]
    checks.extend(_qdq_parameter_checks(graph, qdq_nodes))
    checks.append(_per_tensor_activation_check(graph, qdq_nodes))
    checks.append(_int32_bias_check(graph, members))
    checks.append(_gemm_output_check(graph, members))
    return checks


def _shape_checks(graph: Graph, bmm1: onnx.NodeProto) -> list[Check]:
    query = graph.shapes.get(bmm1.input[0])
    key_t = graph.shapes.get(bmm1.input[1])
    head: Check
    seq: Check
    if not query or len(query) < 2:
        head = ("head_size", None, f"shape of {bmm1.input[0]!r} unknown after shape inference")
        seq_q = None
    else:
        head_size = query[-1]
        seq_q = query[-2]
        if head_size is None:
            head = ("head_size", None, f"head size of {bmm1.input[0]!r} is symbolic")
        else:
            ok = head_size in INT8_HEAD_SIZES
            head = (
                "head_size",
                ok,
                f"head size {head_size} ({'in' if ok else 'not in'} {set(INT8_HEAD_SIZES)})",
            )
    seq_kv = key_t[-1] if key_t else None
    if seq_q is None or seq_kv is None:
        seq = ("seq_len", None, "sequence length unknown (dynamic or not inferred)")
    else:
        ok = max(seq_q, seq_kv) <= INT8_MAX_SEQ
        seq = ("seq_len", ok, f"S_q={seq_q}, S_kv={seq_kv} ({'≤' if ok else '>'} {INT8_MAX_SEQ})")
    return [head, seq]


def _qdq_parameter_checks(graph: Graph, nodes: list[onnx.NodeProto]) -> list[Check]:
    if not nodes:
        return [
            ("symmetric_int8", None, "no Q/DQ nodes on the attention core"),
            ("float32_scales", None, "no Q/DQ nodes on the attention core"),
        ]
    asym: list[str] = []
    scale_bad: list[str] = []
    unique = list({n.name: n for n in nodes}.values())
    for node in unique:
        zero_point = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        if not zero_point:
            asym.append(f"{node.name!r} has no zero point (defaults to uint8)")
        elif (tensor := graph.stored_constants.get(zero_point)) is None:
            asym.append(f"{node.name!r} zero point is {_not_stored(graph, zero_point)}")
        else:
            if tensor.data_type != TensorProto.INT8:
                asym.append(f"{node.name!r} zero point is {TensorProto.DataType.Name(tensor.data_type)}")
            elif np.any(numpy_helper.to_array(tensor) != 0):
                asym.append(f"{node.name!r} zero point is not 0")
        scale = node.input[1]
        if (scale_value := graph.stored_constants.get(scale)) is None:
            scale_bad.append(f"{node.name!r} scale is {_not_stored(graph, scale)}")
        elif scale_value.data_type != TensorProto.FLOAT:
            dtype = TensorProto.DataType.Name(scale_value.data_type)
            scale_bad.append(f"{node.name!r} scale is {dtype}")
    count = len(unique)
    return [
        ("symmetric_int8", not asym, "; ".join(asym) if asym else f"{count} Q/DQ nodes: int8, zero point 0"),
        (
            "float32_scales",
            not scale_bad,
            "; ".join(scale_bad) if scale_bad else f"{count} Q/DQ nodes: float32",
        ),
    ]


def _not_stored(graph: Graph, tensor: str) -> str:
    """Why a Q/DQ parameter has no value to check.  The checks read the stored value (an initializer
    or a ``Constant``); one the constness rule folds from other constants has none here, so its
    check fails as before rather than passing unread."""
    if graph.is_const(tensor):
        return "computed from constants, not stored as an initializer or Constant"
    return "not a constant"


def _per_tensor_activation_check(graph: Graph, nodes: list[onnx.NodeProto]) -> Check:
    """Activation Q/DQ (input not a constant) need one scale: the parser rejects per-axis ones."""
    bad = []
    count = 0
    for node in {n.name: n for n in nodes}.values():
        if graph.is_const(_root(graph, node.input[0])):
            continue  # a weight: per-channel scales are fine
        count += 1
        scale = graph.stored_constants.get(node.input[1])
        if scale is not None and int(np.prod(scale.dims or [1])) != 1:
            bad.append(f"{node.name!r} has {int(np.prod(scale.dims))} scales")
    if bad:
        return (
            "per_tensor_activations",
            False,
            "per-axis activation scales (TensorRT rejects them): " + "; ".join(bad),
        )
    if not count:
        return ("per_tensor_activations", None, "no activation Q/DQ on the attention core")
    return ("per_tensor_activations", True, f"{count} activation Q/DQ nodes: one scale each")


def _int32_bias_check(graph: Graph, members: set[str]) -> Check:
    bad = []
    for node in graph.nodes:
        if node.op_type != "DequantizeLinear":
            continue
        feeds_block = node.name in members or any(c.name in members for c in graph.consumer_nodes(node.output[0]))
        source = graph.stored_constants.get(node.input[0])
        if feeds_block and source is not None and source.data_type == TensorProto.INT32:
            bad.append(node.name)
    if bad:
        return (
            "no_int32_bias_dq",
            False,
            f"INT32 DequantizeLinear (TensorRT cannot parse it): {', '.join(bad)}",
        )
    return ("no_int32_bias_dq", True, "no INT32 DequantizeLinear in the block")


def _gemm_output_check(graph: Graph, members: set[str]) -> Check:
    bad = []
    for name in sorted(members):
        node = graph.node(name)
        if node is None or node.op_type not in ("MatMul", "Gemm"):
            continue
        # weighted projections only: a GEMM with a constant operand (possibly behind a weight Q/DQ)
        weighted = any(graph.is_const(_root(graph, t)) for t in node.input)
        if weighted and any(c.op_type == "QuantizeLinear" for c in graph.consumer_nodes(node.output[0])):
            bad.append(name)
    if bad:
        return ("no_gemm_output_qdq", False, f"Q/DQ on GEMM outputs (breaks fusion): {', '.join(bad)}")
    return ("no_gemm_output_qdq", True, "no QuantizeLinear directly on a projection GEMM output")


def _root(graph: Graph, tensor: str) -> str:
    """The tensor a backward walk through Q/DQ and pass-through ops ends on."""
    for _ in range(16):
        node = graph.producer_node(tensor)
        if node is None or node.op_type not in PASS_THROUGH | {"QuantizeLinear", "DequantizeLinear"}:
            return tensor
        tensor = node.input[0]
    return tensor
