"""An ONNX model, analysed once: the file, its proto, its class map and its costs.

Built once per exported model (:meth:`AnalysedModel.load`) and once per plan file
(:meth:`AnalysedModel.derive`), then handed to the quantizer, the Q/DQ lint, attribution, the
roofline and the backends (TREx's "load once, analyse many").  The class map is computed on the
**source** graph only; plan files and runtime-optimised graphs inherit it by node identity, so
every plan of a comparison is attributed with the same map:

* a plan file (ONNX Runtime's ``quantize_static`` Q/DQ insertion, onnxconverter's FP16 with
  Casts) keeps the source's node names: a node of the same name keeps its class; an inserted
  Q/DQ/Cast node takes the class of the node it feeds (or, at the graph's end, of the node that
  feeds it); anything else inserted is mapped through the tensors it reads and writes;
* a runtime-optimised graph (ONNX Runtime's, saved with ``optimized_model_filepath``) keeps the
  boundary tensor names of every fusion: a runtime node covers the nodes of this graph lying on a
  path from its input tensors to its output tensors (``MatMulIntegerToFloat``, ``QGemm``,
  ``QLinearMatMul``, ``FusedMatMul``, ``Gelu``, ``SkipLayerNormalization``, ``Attention``, the
  ``*_token_*`` nodes…), plus the node whose name it carries.  A node spanning several classes
  is ``mixed``, split by its members' FLOPs; a node that maps to nothing is ``unattributed``.

The pattern classifier (:func:`orinprof.classify.classify`) never runs on a rewritten graph.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import onnx
import pandas as pd

from orinprof import classify, results
from orinprof.graph import PASS_THROUGH, SHAPE_OPS, Graph, load_onnx

#: plan nodes that only carry a tensor to the node they feed: Q/DQ, Casts, and the dynamic
#: quantizer's ``DynamicQuantizeLinear`` (it quantizes the activation of the GEMM it feeds)
PLAN_PASS_THROUGH = PASS_THROUGH | {"DynamicQuantizeLinear"}
#: ``evidence`` of a plan node that inherited its class from a neighbour or through tensors
INHERITED = "inherited"
#: ORT's tensor renames (see :meth:`_RuntimeIndex.known_name`)
_ORT_CAST_PREFIX = "InsertedPrecisionFreeCast_"
_ORT_DUPLICATE_SUFFIX = "/duplicated"
#: walk bound when resolving a runtime tensor back to this graph's tensors
_RESOLVE_DEPTH = 12

#: columns of :meth:`AnalysedModel.runtime_classes` (``layer_classes`` plus two)
RUNTIME_CLASS_COLUMNS = (*results.TABLES["layer_classes"].names, "class_split", "source_nodes")


@dataclass(frozen=True, eq=False)
class AnalysedModel:
    path: Path
    proto: onnx.ModelProto = field(repr=False)
    #: the ``layer_classes`` table: one row per node of this graph
    classes: pd.DataFrame = field(repr=False)
    #: the analysed model this one derives from (a plan file's source export); None for a source
    source: AnalysedModel | None = field(default=None, repr=False)
    #: a plan file's node → the source nodes it stands for (itself when the plan kept it; the
    #: replaced GEMM for the dynamic quantizer's ``<node>_quant``; a neighbour's for an inserted
    #: Q/DQ/Cast); empty for a source
    origin: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path, *, save_map: bool = True) -> AnalysedModel:
        """Load and classify a source ONNX file (once); the map is saved beside it.  Weights kept
        beside the graph (models over 2 GB) are not read: the class map and the costs need the
        graph and the weights' shapes only."""
        proto = load_onnx(path, external_data=False)
        classes = classify.classify(proto)
        if save_map:
            classify.save_layer_map(classes, path)
        return cls(Path(path), proto, classes)

    def derive(self, path: Path, proto: onnx.ModelProto | None = None) -> AnalysedModel:
        """A file derived from this model (a plan: Q/DQ or FP16 rewrite) with the class map
        inherited from this one by node identity.  The same file as this one is this one.
        ``proto``: the file's graph when the caller already holds it (the quantizer read it)."""
        if Path(path).resolve() == self.path.resolve():
            return self
        if proto is None:
            proto = load_onnx(path, external_data=False)
        classes, origin = _inherit(self, proto)
        if self.source is not None:  # a rewrite of a rewrite: back to the root's nodes
            origin = {
                n: tuple(dict.fromkeys(x for m in ms for x in self.origin.get(m, ()))) for n, ms in origin.items()
            }
        return AnalysedModel(Path(path), proto, classes, source=self, origin=origin)

    @property
    def root(self) -> AnalysedModel:
        return self.source.root if self.source is not None else self

    @cached_property
    def graph(self) -> Graph:
        """The node index of this model (:class:`orinprof.graph.Graph`)."""
        return Graph(self.proto)

    def runtime_classes(self, graph: Path | onnx.ModelProto) -> pd.DataFrame:
        """The class map of a runtime-optimised graph (ONNX Runtime's) of this model.

        One row per runtime node: the ``layer_classes`` columns (``layer_class`` may also be
        ``mixed`` or ``unattributed``), ``class_split`` (``class=fraction;…`` by FLOPs for mixed
        nodes) and ``source_nodes`` (the nodes of this model it covers, ``;``-separated).
        :func:`orinprof.attribute.attribute_layers` consumes it as it is."""
        proto = graph if isinstance(graph, onnx.ModelProto) else load_onnx(graph, external_data=False)
        return map_runtime_graph(self, Graph(proto))

    @cached_property
    def costs(self) -> pd.DataFrame:
        """Per-node FLOPs and bytes (:func:`orinprof.costs.node_costs`)."""
        from orinprof.costs import node_costs

        return node_costs(self.proto)

    @cached_property
    def flops(self) -> dict[str, float]:
        """Node name → FLOPs (mixed engine layers are split by them)."""
        c = self.costs
        return dict(zip(c["node"], c["flops"].astype(float)))


# ------------------------------------------------------------------------------------ plan files
def _same_nodes(known: Graph, rewritten: Graph) -> dict[int, int]:
    """Rewritten node → the known node it is: the same name, when the known node was named in
    its file; an unnamed node (named by its position, which a rewrite shifts) by its first
    output tensor, which rewriters keep."""
    named = {n.name: i for i, n in enumerate(known.nodes) if n.name and known.names[i] == n.name}
    unnamed_by_output = {n.output[0]: i for i, n in enumerate(known.nodes) if known.names[i] != n.name and n.output}
    same: dict[int, int] = {}
    for i, n in enumerate(rewritten.nodes):
        k = named.get(n.name) if n.name else None
        if k is None and n.output and n.output[0] in unnamed_by_output:
            k = unnamed_by_output[n.output[0]]
        if k is not None and known.nodes[k].op_type == n.op_type:
            same[i] = k
    return same


def _inherit(source: AnalysedModel, proto: onnx.ModelProto) -> tuple[pd.DataFrame, dict[str, tuple[str, ...]]]:
    """(``layer_classes`` table, node → source nodes it stands for) of a rewritten copy of ``source``."""
    g = Graph(proto)
    records = source.classes[["layer_class", "block", "role", "evidence"]].to_dict("records")
    same = _same_nodes(source.graph, g)
    rows: dict[int, dict[str, object]] = {i: dict(records[k]) for i, k in same.items()}
    stands: dict[int, list[int]] = {i: [k] for i, k in same.items()}
    index: _RuntimeIndex | None = None

    def stands_for(i: int) -> dict[str, object] | None:
        """An inserted node's row through its tensors, else by the name of the node it replaces
        (the quantizers' ``<node>_quant``): the class most of its source nodes have."""
        nonlocal index
        index = index or _RuntimeIndex(source.graph, g)
        members = sorted(index.members(i) or _members_by_name(source.graph, g.names[i]))
        classes = Counter(str(records[m]["layer_class"]) for m in members)
        if not classes:
            return None
        stands[i] = members
        cls = classes.most_common(1)[0][0]
        return {**records[next(m for m in members if records[m]["layer_class"] == cls)], "evidence": INHERITED}

    # inserted nodes that compute (the dynamic quantizer's MatMulInteger and scale Mul)
    for i in range(len(g.nodes)):
        if i not in rows and g.nodes[i].op_type not in PLAN_PASS_THROUGH and (row := stands_for(i)) is not None:
            rows[i] = row
    # inserted Q/DQ/Cast/Identity nodes: the class of the node they feed (reverse topological order
    # resolves Q → DQ → MatMul chains), else of the node that feeds them (a cast on an output)
    for i in reversed(range(len(g.nodes))):
        if i not in rows and g.nodes[i].op_type in PLAN_PASS_THROUGH:
            fed = next((d for d in g.downstream(i) if d in rows), None)
            if fed is not None:
                rows[i], stands[i] = {**rows[fed], "evidence": INHERITED}, stands.get(fed, [])
    for i in range(len(g.nodes)):
        if i not in rows and g.nodes[i].op_type in PLAN_PASS_THROUGH:
            feeder = next((g.producer[t] for t in g.nodes[i].input if g.producer.get(t, -1) in rows), None)
            if feeder is not None:
                rows[i], stands[i] = {**rows[feeder], "evidence": INHERITED}, stands.get(feeder, [])
    for i in range(len(g.nodes)):
        if i not in rows:
            # never silently "other": the attribution reports it as unattributed
            rows[i] = (stands_for(i) if g.nodes[i].op_type in PLAN_PASS_THROUGH else None) or {
                "layer_class": "unattributed",
                "block": None,
                "role": "unattributed",
                "evidence": "none",
            }
    df = pd.DataFrame(
        [{"node": g.names[i], "op_type": g.nodes[i].op_type, **rows[i]} for i in range(len(g.nodes))],
        columns=results.TABLES["layer_classes"].names,
    )
    df["block"] = pd.array(df["block"], dtype="Int64")
    origin = {g.names[i]: tuple(source.graph.names[k] for k in ks) for i, ks in stands.items()}
    return results.check(df, "layer_classes"), origin


# ------------------------------------------------------------------------------- runtime graphs
#: runtime nodes that only carry a tensor on (ORT's inserted casts, Q/DQ pairs, the reshapes
#: around a Gemm, the NCHWc layout reorders of the CPU provider's Conv, the dynamic quantizer of
#: ``DynamicQuantizeMatMul``): mapped through their tensors, else they take a neighbour's class
RUNTIME_PASS_THROUGH = PASS_THROUGH | SHAPE_OPS | {"ReorderInput", "ReorderOutput", "DynamicQuantizeLinear"}


#: what ONNX Runtime's fused contrib ops implement (``onnxruntime/core/graph/contrib_ops``): a chain
#: of rewritten nodes mapped as one region (:meth:`_RuntimeIndex.regions`) gives each of these the
#: region's nodes of these classes; the classes themselves still come from the source map
CONTRIB_OP_CLASSES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention", "RotaryEmbedding"),
        ("attention",),
    ),
    "EmbedLayerNormalization": ("embedding", "norm"),
    **dict.fromkeys(
        (
            "SkipLayerNormalization",
            "SkipSimplifiedLayerNormalization",
            "LayerNormalization",
            "SimplifiedLayerNormalization",
        ),
        ("norm", "other"),
    ),
    **dict.fromkeys(("Gelu", "BiasGelu", "FastGelu", "QuickGelu"), ("ffn",)),
}


@dataclass
class _RuntimeIndex:
    """A runtime graph beside the graph it was optimised from."""

    known: Graph
    runtime: Graph
    #: runtime node → the known node it is (same name or unnamed with the same output; same op)
    same: dict[int, int] = field(init=False)

    #: runtime tensor with a made-up name → the known tensor a node it is reads or writes there
    alias: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        k, r = self.known, self.runtime
        self.same = _same_nodes(k, r)
        alias: dict[str, str] = {}
        ambiguous: set[str] = set()
        for i, j in self.same.items():
            for ours, theirs in ((r.nodes[i].input, k.nodes[j].input), (r.nodes[i].output, k.nodes[j].output)):
                for t, known in zip(ours, theirs):
                    if not t or not known or self._by_name(t) is not None:
                        continue
                    if alias.setdefault(t, known) != known:
                        ambiguous.add(t)
        self.alias = {t: known for t, known in alias.items() if t not in ambiguous}

    def _by_name(self, t: str) -> str | None:
        k = self.known
        for candidate in (t, t.removeprefix(_ORT_CAST_PREFIX), t.removesuffix(_ORT_DUPLICATE_SUFFIX)):
            if candidate in k.producer or candidate in k.graph_inputs or candidate in k.consumers:
                return candidate
        return None

    def known_name(self, t: str) -> str | None:
        """The known tensor a runtime tensor stands for: the same name, or the name under ORT's
        renames (``InsertedPrecisionFreeCast_<name>`` where FP16 casts were removed,
        ``<name>/duplicated`` where a DequantizeLinear was duplicated per consumer), or the
        tensor a node it is reads or writes in that position (``EmbedLayerNormalization``'s
        output, read by the Q/K/V MatMuls as the LayerNorm's output)."""
        return self._by_name(t) or self.alias.get(t)

    def resolve(self, tensors: Iterable[str], upward: bool) -> tuple[set[str], bool]:
        """Runtime tensors → (known tensors, complete).  A tensor :meth:`known_name` knows is
        kept; another is followed through runtime pass-through producers (``upward``) or
        consumers until known tensors are reached.  Constants are dropped (weights, folded
        shapes).  ``complete`` is False when a tensor could not be resolved because its path ran
        into another fused runtime node (the boundary is then unknown)."""
        found: set[str] = set()
        complete = True
        for t in tensors:
            if not t or self.runtime.is_const(t):
                continue
            here, dead_end = self._resolve_one(t, upward)
            found |= here
            complete &= bool(here) or not dead_end
        return {t for t in found if not self.known.is_const(t)}, complete

    def _resolve_one(self, start: str, upward: bool) -> tuple[set[str], bool]:
        """(known tensors, ran into a fused node) for one runtime tensor."""
        r = self.runtime
        found: set[str] = set()
        seen: set[str] = set()
        dead_end = False
        frontier = [start]
        for _ in range(_RESOLVE_DEPTH):
            nxt: list[str] = []
            for t in frontier:
                if t in seen or r.is_const(t):
                    continue
                seen.add(t)
                name = self.known_name(t)
                if name is not None:
                    found.add(name)
                    continue
                steps = ([r.producer[t]] if t in r.producer else []) if upward else r.consumers.get(t, [])
                for step in steps:
                    if r.nodes[step].op_type in RUNTIME_PASS_THROUGH and step not in self.same:
                        nxt.extend(r.nodes[step].input if upward else r.nodes[step].output)
                    else:
                        dead_end = True
            if not nxt:
                break
            frontier = nxt
        return found, dead_end

    def regions(self, unmapped: set[int]) -> list[tuple[list[int], set[int]]]:
        """Runtime nodes that map to nothing one by one (a chain of rewritten nodes whose tensors
        between them are all made up, like the offline optimiser's ``FullyConnect_MatMul`` →
        ``FullyConnect_Add``): each connected chain maps as a whole to the known nodes between
        its boundary tensors.  Returns (chain, members) pairs."""
        r = self.runtime
        links = [
            (r.producer[t], c)
            for t, readers in r.consumers.items()
            if t in r.producer and not r.is_const(t) and self.known_name(t) is None
            for c in readers
        ]
        found = []
        for group in _connected(unmapped, links):
            if len(group) < 2:
                continue
            inside = set(group)
            outputs = {o for i in group for o in r.nodes[i].output if o}
            entering = {t for i in group for t in r.nodes[i].input if t and t not in outputs}
            leaving = {
                o for o in outputs if r.is_graph_output(o) or any(c not in inside for c in r.consumers.get(o, []))
            }
            sinks, sinks_complete = self.resolve(leaving, upward=False)
            sources, sources_complete = self.resolve(entering, upward=True)
            if sinks and sinks_complete and sources_complete:
                members = self.known.between(sources, sinks)
                if members:
                    found.append((group, members))
        return found

    def members(self, i: int) -> set[int]:
        """Known nodes runtime node ``i`` stands for: the nodes between its input and output
        tensors (a fusion may keep one member's name and op, like a Transpose that absorbed
        another), with the node it is or whose name it carries."""
        node = self.runtime.nodes[i]
        found: set[int] = set()
        sinks, sinks_complete = self.resolve(node.output, upward=False)
        sources, sources_complete = self.resolve(node.input, upward=True)
        if i in self.same:
            # the node it is writes its tensors; its inputs may have moved upstream (a removed no-op
            # Cast, an absorbed Transpose), so they come from the runtime graph when known
            same = self.known.nodes[self.same[i]]
            own = {t for t in same.output if t and not self.known.is_const(t)}
            # it may also write what a node after it wrote (ORT's Div absorbing the Mul after it)
            sinks, sinks_complete = own | (sinks if sinks_complete else set()), True
            if not sources_complete:
                sources, sources_complete = set(self.known.act_inputs(self.same[i])), True
        if sinks and sinks_complete and sources_complete:
            found = self.known.between(sources, sinks)
        if i in self.same:
            found.add(self.same[i])
        elif node.op_type not in RUNTIME_PASS_THROUGH:
            found |= _members_by_name(self.known, self.runtime.names[i])
        return found


def _connected(nodes: set[int], links: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of ``nodes`` under ``links`` (union-find)."""
    parent = {i: i for i in nodes}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        if a in parent and b in parent:
            parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in sorted(nodes):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _members_by_name(known: Graph, name: str) -> set[int]:
    """The node whose name a rewritten node carries: itself, or the longest prefix of its name that
    ends right before a ``/`` or ``_`` and names a known node.  ONNX Runtime names what it writes
    after the node it replaces: graph fusions append ``/MatMulAddFusion`` or
    ``/MatMulScaleFusion/``, the quantizers ``_quant`` (``onnxruntime/quantization/operators/
    matmul.py``: ``node.name + "_quant"``) with ``_scales_mul``, ``_output_quantized`` … after it.
    Longest first, so ``…/MatMul_1_quant`` is ``…/MatMul_1``, never ``…/MatMul``."""
    if name in known.index:
        return {known.index[name]}
    stripped = name.rstrip("/")
    for k in range(len(stripped) - 1, 0, -1):
        if stripped[k] in "/_" and stripped[:k] in known.index:
            return {known.index[stripped[:k]]}
    return set()


def map_runtime_graph(model: AnalysedModel, runtime: Graph) -> pd.DataFrame:
    """One row per node of ``runtime`` (see :meth:`AnalysedModel.runtime_classes`)."""
    index = _RuntimeIndex(model.graph, runtime)
    known = model.graph
    node_class = model.classes["layer_class"].tolist()
    node_role = model.classes["role"].tolist()
    node_block = model.classes["block"].tolist()
    flops: dict[str, float] | None = None
    members: dict[int, set[int]] = {}
    evidence: dict[int, str] = {}
    for i in range(len(runtime.nodes)):
        found = index.members(i)
        if found:
            members[i] = found
            evidence[i] = "name" if i in index.same else "tensors"
    for group, found in index.regions(set(range(len(runtime.nodes))) - set(members)):
        for i in group:
            if runtime.nodes[i].op_type in RUNTIME_PASS_THROUGH:
                continue  # carries a tensor on: takes a neighbour's class below
            # within a chain, a contrib op takes the part of the chain its kind implements
            kind = CONTRIB_OP_CLASSES.get(runtime.nodes[i].op_type, ())
            own = {m for m in found if node_class[m] in kind}
            members[i], evidence[i] = own or found, "region"
    # a runtime pass-through node that maps to nothing of its own (a reshape or cast between two
    # fused nodes, or of a tensor both graphs have): the runtime node whose members write the
    # known tensor it carries on (the Gemm before a reshape), else the runtime node it feeds,
    # else the one that feeds it
    deferred = [
        i for i in range(len(runtime.nodes)) if i not in members and runtime.nodes[i].op_type in RUNTIME_PASS_THROUGH
    ]
    for i in deferred:
        carried, _ = index.resolve(runtime.nodes[i].output, upward=False)
        writers = {known.producer[t] for t in carried if t in known.producer}
        feeders = [runtime.producer[t] for t in runtime.nodes[i].input if t in runtime.producer]
        writer = next((p for p in feeders if p in members and members[p] & writers), None)
        if writer is not None:
            members[i], evidence[i] = members[writer], INHERITED
    for i in reversed(deferred):
        fed = next((d for d in runtime.downstream(i) if d in members), None)
        if i not in members and fed is not None:
            members[i], evidence[i] = members[fed], INHERITED
    for i in deferred:
        feeders = [runtime.producer[t] for t in runtime.nodes[i].input if t in runtime.producer]
        feeder = next((p for p in feeders if p in members), None)
        if i not in members and feeder is not None:
            members[i], evidence[i] = members[feeder], INHERITED
    rows = []
    for i, node in enumerate(runtime.nodes):
        row: dict[str, object] = {
            "node": runtime.names[i],
            "op_type": node.op_type,
            "layer_class": "unattributed",
            "block": None,
            "role": "unattributed",
            "evidence": evidence.get(i, "none"),
            "class_split": None,
            "source_nodes": None,
        }
        group = sorted(members.get(i, ()))
        if group:
            if len({node_class[m] for m in group}) > 1 and flops is None:
                flops = _flops_or_empty(model)
            fractions = _split(group, known, node_class, flops)
            main = max(fractions, key=lambda c: fractions[c])
            heaviest = max(
                (m for m in group if node_class[m] == main),
                key=lambda m: (flops or {}).get(known.names[m], 0.0),
            )
            blocks = Counter(int(node_block[m]) for m in group if node_class[m] == main and not pd.isna(node_block[m]))
            names = [known.names[m] for m in group]
            if model.source is not None:  # a plan's nodes → the source nodes they stand for
                names = list(dict.fromkeys(n for m in names for n in model.origin.get(m, ())))
            row.update(
                layer_class=main if len(fractions) == 1 else "mixed",
                block=blocks.most_common(1)[0][0] if blocks else None,
                role=node_role[heaviest],
                class_split=None
                if len(fractions) == 1
                else ";".join(f"{c}={f:.4f}" for c, f in sorted(fractions.items(), key=lambda kv: -kv[1])),
                source_nodes=";".join(names) or None,
            )
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(RUNTIME_CLASS_COLUMNS))
    df["block"] = pd.array(df["block"], dtype="Int64")
    return df


def _flops_or_empty(model: AnalysedModel) -> dict[str, float]:
    try:
        return model.flops
    except Exception:  # FLOPs only weight a mixed split; without them, count nodes
        return {}


def _split(members: list[int], known: Graph, node_class: list[str], flops: dict[str, float] | None) -> dict[str, float]:
    """class → fraction over a runtime node's members: by FLOPs, else by member count."""
    weights: dict[str, float] = {}
    for m in members:
        f = float((flops or {}).get(known.names[m], 0.0) or 0.0)
        weights[node_class[m]] = weights.get(node_class[m], 0.0) + (f if math.isfinite(f) else 0.0)
    if sum(weights.values()) <= 0:
        weights = {c: float(k) for c, k in Counter(node_class[m] for m in members).items()}
    total = float(sum(weights.values()))
    return {c: w / total for c, w in weights.items() if w > 0}
