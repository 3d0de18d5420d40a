"""ONNX graphs: loading, the one node index and its constness rule, op sets, node naming, atomic
writes.

Every stage that reads an ONNX graph uses these, so "constant", "GEMM" and "the node called X"
mean the same thing in the classifier, the cost model and the attribution.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import onnx

from orinprof.errors import OrinprofError

#: GEMM-like ops whose first two inputs are the operands (the cost model's FLOP formula applies)
MATMUL_OPS = frozenset({"MatMul", "Gemm", "MatMulInteger"})
#: every GEMM op the classifier and the quantizer count (ORT's fused forms included)
GEMM_OPS = MATMUL_OPS | {"QLinearMatMul", "FusedMatMul"}
NORM_OPS = frozenset(
    {
        "LayerNormalization",
        "SimplifiedLayerNormalization",
        "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "RMSNormalization",
        "BatchNormalization",
        "InstanceNormalization",
        "GroupNormalization",
    }
)
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
#: ops that only carry a tensor on (a plan's inserted Q/DQ and Casts): they take a neighbour's class
PASS_THROUGH = QDQ_OPS | {"Cast", "Identity"}
#: ops that only reshape or re-type a tensor
SHAPE_OPS = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Cast", "Identity", *QDQ_OPS})
#: ops never folded to a constant even when all their inputs are constants
_NONDETERMINISTIC_OPS = frozenset(
    {"RandomNormalLike", "RandomUniformLike", "RandomNormal", "RandomUniform", "Multinomial"}
)

#: protobuf's 2 GB limit: above this, weights are saved beside the graph
_EXTERNAL_DATA_ABOVE = 1_800_000_000


# ---------------------------------------------------------------------------------------- loading
def load_onnx(
    path: Path | str, missing_hint: str = "check the path given to --onnx", *, external_data: bool = True
) -> onnx.ModelProto:
    """Load an ONNX file; a missing file, a directory or a non-ONNX file is a one-line error.

    ``external_data=False`` reads the graph without weights stored beside it (enough for indexing
    and classification)."""
    path = Path(path)
    if not path.exists():
        raise OrinprofError(f"{path} does not exist", missing_hint)
    if path.is_dir():
        raise OrinprofError(f"{path} is a directory, not an ONNX file", "pass the .onnx file itself")
    try:
        model = onnx.load(str(path), load_external_data=external_data)
    except Exception as err:  # protobuf raises DecodeError and friends
        raise OrinprofError(f"{path} is not an ONNX model ({type(err).__name__})", "pass a .onnx file") from err
    if not model.graph.node:
        raise OrinprofError(f"{path} is not an ONNX model (no graph nodes)", "pass a .onnx file")
    return model


# ----------------------------------------------------------------------------------------- naming
def node_names(graph: onnx.GraphProto) -> list[str]:
    """Node names as orinprof uses them: the ONNX name, ``<op_type>_<index>`` for an unnamed node,
    ``<name>__<index>`` for a repeated name.  Class maps, cost rows and profiles join on these."""
    names: list[str] = []
    seen: set[str] = set()
    for idx, node in enumerate(graph.node):
        name = node.name
        if not name or name in seen:
            name = f"{node.op_type}_{idx}" if not name else f"{name}__{idx}"
        seen.add(name)
        names.append(name)
    return names


def ensure_node_names(model: onnx.ModelProto) -> bool:
    """Give unnamed (or duplicate-named) nodes the names of :func:`node_names`; True if any changed."""
    changed = False
    for node, name in zip(model.graph.node, node_names(model.graph), strict=True):
        if node.name != name:
            node.name = name
            changed = True
    return changed


# ------------------------------------------------------------------------------------- constness
def constant_tensors(graph: onnx.GraphProto, also_constant: Callable[[onnx.NodeProto], bool] | None = None) -> set[str]:
    """The one constness rule: a tensor is constant when it is an initializer, a ``Constant``'s
    output, or computed only from constants by a deterministic op without subgraphs.

    ``also_constant`` lets a caller that knows more declare a node's outputs constant (the cost
    model: ``Shape`` of a tensor whose shape inference found static)."""
    const = {t.name for t in graph.initializer}
    # topological order is an ONNX requirement, so one pass propagates constness
    for node in graph.node:
        inputs = [t for t in node.input if t]
        folds = (
            bool(inputs)
            and all(t in const for t in inputs)
            and node.op_type not in _NONDETERMINISTIC_OPS
            and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        )
        if node.op_type == "Constant" or folds or (also_constant is not None and also_constant(node)):
            const.update(o for o in node.output if o)
    return const


# ------------------------------------------------------------------------------------------ index
@dataclass
class Graph:
    """Index over an ONNX graph for walking: producers, consumers, constness, graph inputs."""

    model: onnx.ModelProto
    nodes: list[onnx.NodeProto] = field(init=False)
    names: list[str] = field(init=False)
    index: dict[str, int] = field(init=False)
    producer: dict[str, int] = field(init=False)
    consumers: dict[str, list[int]] = field(init=False)
    const: set[str] = field(init=False)
    graph_inputs: set[str] = field(init=False)
    graph_outputs: set[str] = field(init=False)

    def __post_init__(self) -> None:
        g = self.model.graph
        self.nodes = list(g.node)
        self.names = node_names(g)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.producer = {}
        self.consumers = {}
        for i, n in enumerate(self.nodes):
            for o in n.output:
                if o:
                    self.producer[o] = i
            for t in n.input:
                if t:
                    self.consumers.setdefault(t, []).append(i)
        inits = {t.name for t in g.initializer}
        self.graph_inputs = {v.name for v in g.input if v.name not in inits}
        self.graph_outputs = {v.name for v in g.output}
        self.const = constant_tensors(g)

    @property
    def tensors(self) -> set[str]:
        """Every tensor name the graph produces or reads."""
        return set(self.producer) | set(self.consumers) | self.graph_inputs

    def is_const(self, tensor: str) -> bool:
        return tensor in self.const

    def is_graph_output(self, tensor: str) -> bool:
        return tensor in self.graph_outputs

    def node(self, name: str) -> onnx.NodeProto | None:
        """The node called ``name`` (:func:`node_names`), if any."""
        i = self.index.get(name)
        return None if i is None else self.nodes[i]

    def producer_node(self, tensor: str) -> onnx.NodeProto | None:
        i = self.producer.get(tensor)
        return None if i is None else self.nodes[i]

    def consumer_nodes(self, tensor: str) -> list[onnx.NodeProto]:
        return [self.nodes[i] for i in self.consumers.get(tensor, [])]

    @cached_property
    def stored_constants(self) -> dict[str, onnx.TensorProto]:
        """The constants whose value the graph stores: initializers and ``Constant`` outputs (a
        value the Q/DQ lint reads). Every one is :meth:`is_const`; a folded constant is not here."""
        values = {t.name: t for t in self.model.graph.initializer}
        for node in self.nodes:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        values[node.output[0]] = attr.t
        return values

    @cached_property
    def shapes(self) -> dict[str, list[int | None]]:
        """Tensor → dims (None = symbolic) from the graph's value_info, inputs and outputs."""
        g = self.model.graph
        out: dict[str, list[int | None]] = {}
        for info in [*g.value_info, *g.input, *g.output]:
            tensor_type = info.type.tensor_type
            if tensor_type.HasField("shape"):
                out[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        return out

    def act_inputs(self, i: int) -> list[str]:
        return [t for t in self.nodes[i].input if t and not self.is_const(t)]

    def is_weighted_gemm(self, i: int) -> bool:
        n = self.nodes[i]
        if n.op_type not in GEMM_OPS:
            return False
        ins = [t for t in n.input[:2] if t]
        return any(self.is_const(t) for t in ins) and not all(self.is_const(t) for t in ins)

    def is_act_gemm(self, i: int) -> bool:
        """A MatMul whose two operands are both activations (the attention core's BMMs)."""
        n = self.nodes[i]
        return n.op_type in GEMM_OPS and len([t for t in n.input[:2] if t and not self.is_const(t)]) == 2

    def upstream(self, i: int) -> list[int]:
        return [self.producer[t] for t in self.act_inputs(i) if t in self.producer]

    def downstream(self, i: int) -> list[int]:
        out: list[int] = []
        for o in self.nodes[i].output:
            out.extend(self.consumers.get(o, []))
        return out

    def between(self, sources: Iterable[str], sinks: Iterable[str], limit: int = 4096) -> set[int]:
        """Nodes on a path from any tensor of ``sources`` to any tensor of ``sinks`` (the nodes that
        read a source and write a sink included), plus the constant-only nodes feeding them (a
        weight's DequantizeLinear).  Without sources: the nodes behind the sinks that read no
        activation.  ``limit`` bounds the walk."""
        sources = set(sources)
        backward: set[int] = set()
        stack = [self.producer[t] for t in sinks if t in self.producer and t not in sources]
        while stack and len(backward) < limit:
            i = stack.pop()
            if i in backward:
                continue
            backward.add(i)
            stack.extend(self.producer[t] for t in self.nodes[i].input if t and t not in sources and t in self.producer)
        if not sources:
            return {i for i in backward if not self.act_inputs(i)}
        on_path: set[int] = set()
        stack = [c for t in sources for c in self.consumers.get(t, []) if c in backward]
        while stack:
            i = stack.pop()
            if i in on_path:
                continue
            on_path.add(i)
            stack.extend(d for d in self.downstream(i) if d in backward)
        # constant-only feeders (weight DQ, folded shape arithmetic) of the nodes on the path
        feeders = {
            self.producer[t]
            for i in on_path
            for t in self.nodes[i].input
            if t in self.const and t in self.producer and self.producer[t] in backward
        }
        return on_path | feeders


# ------------------------------------------------------------------------------------------ writes
def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a file so that a reader never sees half of it (temp file in the same folder, then
    ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Save an ONNX model atomically; above protobuf's 2 GB limit the weights go beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        if model.ByteSize() > _EXTERNAL_DATA_ABOVE:
            onnx.save_model(model, tmp, save_as_external_data=True, location=path.name + ".data")
        else:
            onnx.save_model(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
