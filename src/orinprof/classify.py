"""Structural layer classification: every ONNX node → attention / ffn / norm / embedding / other.

Graph patterns decide; names are only a fallback.  The dynamo exporter names nodes
``node_MatMul_54`` and quantizers add their own nodes, so nothing here depends on a naming scheme.

* **Attention core**: a ``Softmax`` with a MatMul on each side whose operands are both activations
  (BMM1 = QKᵀ upstream, BMM2 = PV downstream), reached through any ops in between (scaling,
  masking, casts, ``IsNaN→Where``, Q/DQ).
* **Projections**: walking up from BMM1's inputs and BMM2's V input through non-weighted ops
  (reshape, transpose, RoPE, GQA expansion, bias add) to the first *weighted* GEMM (a
  MatMul/Gemm with a constant operand) gives Q, K, V (one GEMM reached from several = fused QKV).
  Walking down from BMM2 through shape ops gives the output projection.
* **FFN**: a weighted GEMM → (bias) → activation (Relu, Erf-GELU, Tanh-GELU, SiLU, gating Mul) →
  weighted GEMM, neither of them attention.  SwiGLU's gate and up projections both reach the
  down projection.
* **Norm**: ``LayerNormalization`` and friends, and decomposed norms around ``ReduceMean``.
* **Embedding**: ``Gather`` from a constant table, ``Conv`` on a graph input (ViT patches), and
  what only combines them.
* Q/DQ and Cast nodes take the class of the node they feed.
* Block index: from the name scope (``layer.3``, ``layers_3``, ``h.3``, ``blocks.3``, including the
  dynamo exporter's ``pkg.torch.onnx.name_scopes``), else from the order of the attention cores.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx
import pandas as pd

from orinprof import results
from orinprof.graph import (
    GEMM_OPS,
    NORM_OPS,
    PASS_THROUGH,
    QDQ_OPS,
    SHAPE_OPS,
    Graph,
    atomic_write,
    ensure_node_names,
    load_onnx,
)

log = logging.getLogger(__name__)

ACTIVATIONS = {
    "Relu",
    "Gelu",
    "FastGelu",
    "BiasGelu",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Silu",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Elu",
    "LeakyRelu",
    "Mish",
    "QuickGelu",
}
FFN_PATH_OPS = ACTIVATIONS | {"Add", "Mul", "Div", "Pow", "Sub", "Cast", "Identity", "Clip", *QDQ_OPS}
_BLOCK_RE = re.compile(r"(?:^|[/._])(?:layers?|h|blocks?|block|encoder_layer|decoder_layer)[._/]?(\d+)(?:[/._]|$)")
_NAME_ATTN = re.compile(r"(attention|attn|self_attn|mha)", re.I)
_NAME_FFN = re.compile(r"(mlp|ffn|feed_forward|intermediate|/output/dense|linear[12]|fc[12]|c_fc|wi|wo\b)", re.I)

MAX_WALK = 64  # nodes visited per walk: bounds the cost on huge graphs


@dataclass
class _Tag:
    layer_class: str
    role: str
    evidence: str
    block: int | None = None


def _scope_text(node: onnx.NodeProto) -> str:
    text = node.name
    for prop in node.metadata_props:
        if prop.key in ("pkg.torch.onnx.name_scopes", "namespace"):
            text += " " + prop.value
    return text


def block_from_name(node: onnx.NodeProto) -> int | None:
    matches = _BLOCK_RE.findall(_scope_text(node).replace("'", "/"))
    return int(matches[-1]) if matches else None


class _Classifier:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.g = Graph(model)
        self.tags: dict[int, _Tag] = {}
        self.attention_blocks: list[dict[str, object]] = []

    def tag(self, i: int, cls: str, role: str, evidence: str = "pattern", overwrite: bool = False) -> None:
        if overwrite or i not in self.tags:
            self.tags[i] = _Tag(cls, role, evidence)

    # ------------------------------------------------------------------ attention
    def _walk_up_to(self, start: Iterable[int], target, stop) -> tuple[list[int], list[int]]:  # type: ignore[no-untyped-def]
        """BFS upstream from ``start`` (inclusive); returns (hits, visited-non-hits)."""
        hits: list[int] = []
        visited: list[int] = []
        seen: set[int] = set()
        queue = deque(start)
        while queue and len(seen) < MAX_WALK:
            i = queue.popleft()
            if i in seen:
                continue
            seen.add(i)
            if target(i):
                hits.append(i)
                continue
            if stop(i):
                continue
            visited.append(i)
            queue.extend(self.g.upstream(i))
        return hits, visited

    def find_attention(self) -> None:
        g = self.g
        softmaxes = [i for i, n in enumerate(g.nodes) if n.op_type == "Softmax"]
        for s in softmaxes:
            # BMM1: nearest upstream activation×activation MatMul
            hits, between1 = self._walk_up_to(
                g.upstream(s),
                g.is_act_gemm,
                lambda i: g.is_weighted_gemm(i) or g.nodes[i].op_type in NORM_OPS,
            )
            if not hits:
                continue
            bmm1 = hits[0]
            # BMM2: nearest downstream MatMul fed by the probabilities and an activation
            bmm2, between2 = self._find_bmm2(s)
            if bmm2 is None:
                continue
            core = [bmm1, s, bmm2]
            for i in between1 + between2:
                self.tag(i, "attention", "attn_core")
            self.tag(bmm1, "attention", "bmm1", overwrite=True)
            self.tag(s, "attention", "softmax", overwrite=True)
            self.tag(bmm2, "attention", "bmm2", overwrite=True)
            # projections
            b1_inputs = [g.producer.get(t) for t in g.nodes[bmm1].input[:2]]
            prob_side = set(between2) | {s}
            v_inputs = [
                g.producer.get(t)
                for t in g.nodes[bmm2].input[:2]
                if g.producer.get(t) is not None and g.producer.get(t) not in prob_side
            ]
            found: dict[int, set[str]] = {}
            for role, starts in (
                ("q_proj", b1_inputs[:1]),
                ("k_proj", b1_inputs[1:2]),
                ("v_proj", v_inputs[:1]),
            ):
                starts_i = [x for x in starts if x is not None]
                hits, path = self._walk_up_to(
                    starts_i,
                    g.is_weighted_gemm,
                    lambda i: g.nodes[i].op_type in NORM_OPS or g.nodes[i].op_type == "Softmax" or g.is_act_gemm(i),
                )
                for h in hits[:1]:
                    found.setdefault(h, set()).add(role)
                if hits:
                    for i in path:
                        self.tag(i, "attention", "attn_core")
            for h, roles in found.items():
                self._tag_gemm(h, "attention", "qkv_proj" if len(roles) > 1 else roles.pop())
            # output projection: down from BMM2 through shape ops only
            out_proj = self._walk_down_shape_ops(bmm2)
            if out_proj is not None:
                self._tag_gemm(out_proj, "attention", "out_proj")
            self.attention_blocks.append({"softmax": s, "core": core})

    def _find_bmm2(self, s: int) -> tuple[int | None, list[int]]:
        g = self.g
        seen: set[int] = set()
        between: list[int] = []
        queue = deque(g.downstream(s))
        while queue and len(seen) < MAX_WALK:
            i = queue.popleft()
            if i in seen:
                continue
            seen.add(i)
            if g.is_act_gemm(i):
                return i, between
            if g.is_weighted_gemm(i) or g.nodes[i].op_type in NORM_OPS or g.nodes[i].op_type == "Softmax":
                continue
            between.append(i)
            queue.extend(g.downstream(i))
        return None, []

    def _walk_down_shape_ops(self, start: int) -> int | None:
        g = self.g
        frontier = g.downstream(start)
        path: list[int] = []
        for _ in range(12):
            nxt: list[int] = []
            for i in frontier:
                if g.is_weighted_gemm(i):
                    for p in path:
                        self.tag(p, "attention", "attn_core")
                    return i
                if g.nodes[i].op_type in SHAPE_OPS or g.nodes[i].op_type == "Concat":
                    path.append(i)
                    nxt.extend(g.downstream(i))
            if not nxt:
                return None
            frontier = nxt
        return None

    def _tag_gemm(self, i: int, cls: str, role: str) -> None:
        """Tag a GEMM and its bias Add (an Add with a constant operand right after it)."""
        self.tag(i, cls, role, overwrite=True)
        for d in self.g.downstream(i):
            n = self.g.nodes[d]
            if n.op_type == "Add" and any(self.g.is_const(t) for t in n.input):
                self.tag(d, cls, role, overwrite=True)

    # ------------------------------------------------------------------ FFN
    def find_ffn(self) -> None:
        g = self.g
        for a, _n in enumerate(g.nodes):
            if not g.is_weighted_gemm(a) or self._is_class(a, "attention"):
                continue
            # walk down through bias/activation/gating ops to the next weighted GEMM
            seen: set[int] = set()
            queue: deque[tuple[int, tuple[int, ...]]] = deque((d, ()) for d in g.downstream(a))
            while queue and len(seen) < MAX_WALK:
                i, path = queue.popleft()
                if i in seen:
                    continue
                seen.add(i)
                op = g.nodes[i].op_type
                if g.is_weighted_gemm(i):
                    has_act = any(
                        g.nodes[p].op_type in ACTIVATIONS or (g.nodes[p].op_type == "Mul" and len(g.act_inputs(p)) == 2)
                        for p in path
                    )
                    if has_act and not self._is_class(i, "attention"):
                        self._mark_ffn(a, i, path)
                    continue
                if op not in FFN_PATH_OPS:
                    continue
                if op in ("Add", "Sub") and len(g.act_inputs(i)) == 2:
                    continue  # a residual connection ends the FFN
                for d in g.downstream(i):
                    queue.append((d, (*path, i)))

    def _mark_ffn(self, up: int, down: int, path: tuple[int, ...]) -> None:
        current = self.tags.get(up)
        role = "ffn_up"
        if current is not None and current.layer_class == "ffn" and current.role == "ffn_down":
            role = "ffn_down"  # already the down projection of an earlier FFN: keep
        elif self._two_inputs_gate(down) and self._feeds_activation(up):
            role = "ffn_gate"  # SwiGLU/GeGLU: the branch that goes through the nonlinearity
        self._tag_gemm(up, "ffn", role)
        self._tag_gemm(down, "ffn", "ffn_down")
        # everything between the two GEMMs (all branches of a GELU/SiLU, not just the walked path)
        for p in self._between(up, down) | set(path):
            if p not in self.tags or self.tags[p].layer_class in ("other",):
                self.tag(p, "ffn", "ffn_act", overwrite=True)

    def _between(self, up: int, down: int) -> set[int]:
        """Nodes on any path from ``up`` to ``down``: reachable forward from one and backward from
        the other without crossing a weighted GEMM or a norm."""
        fwd = self._reach(self.g.downstream(up), self.g.downstream, stop=down)
        back = self._reach(self.g.upstream(down), self.g.upstream, stop=up)
        return fwd & back

    def _reach(self, start: list[int], step: Callable[[int], list[int]], stop: int) -> set[int]:
        g = self.g
        seen: set[int] = set()
        queue = deque(start)
        while queue and len(seen) < MAX_WALK:
            i = queue.popleft()
            if i in seen or i == stop or g.is_weighted_gemm(i) or g.nodes[i].op_type in NORM_OPS:
                continue
            seen.add(i)
            queue.extend(step(i))
        return seen

    def _feeds_activation(self, gemm: int) -> bool:
        """The GEMM's output (after a bias add) goes straight into a nonlinearity."""
        g = self.g
        frontier = g.downstream(gemm)
        for _ in range(3):
            nxt = []
            for d in frontier:
                op = g.nodes[d].op_type
                if op in ACTIVATIONS:
                    return True
                if op in PASS_THROUGH or (op == "Add" and any(g.is_const(t) for t in g.nodes[d].input)):
                    nxt.extend(g.downstream(d))
            frontier = nxt
        return False

    def _two_inputs_gate(self, down: int) -> bool:
        """True if the down projection's input is a product of two GEMM branches (SwiGLU)."""
        g = self.g
        for t in g.act_inputs(down):
            p = g.producer.get(t)
            while p is not None and g.nodes[p].op_type in PASS_THROUGH:
                ins = g.act_inputs(p)
                p = g.producer.get(ins[0]) if ins else None
            if p is not None and g.nodes[p].op_type == "Mul" and len(g.act_inputs(p)) == 2:
                return True
        return False

    def _is_class(self, i: int, cls: str) -> bool:
        t = self.tags.get(i)
        return t is not None and t.layer_class == cls

    # ------------------------------------------------------------------ norms and embeddings
    def find_norms(self) -> None:
        g = self.g
        for i, n in enumerate(g.nodes):
            if n.op_type in NORM_OPS:
                self.tag(i, "norm", "norm")
            elif n.op_type in ("ReduceMean", "ReduceL2") and i not in self.tags:
                self.tag(i, "norm", "norm")
                # the decomposed chain around it: x - mean, pow, eps add, sqrt, divide, scale, shift
                frontier = [i]
                for _ in range(6):
                    nxt = []
                    for f in frontier:
                        for d in g.downstream(f):
                            op = g.nodes[d].op_type
                            if d in self.tags or g.is_weighted_gemm(d) or op in ("Softmax",):
                                continue
                            if op in (
                                "Add",
                                "Sqrt",
                                "Reciprocal",
                                "Div",
                                "Mul",
                                "Sub",
                                "Pow",
                                "Cast",
                                "ReduceMean",
                            ):
                                self.tag(d, "norm", "norm")
                                nxt.append(d)
                    frontier = nxt
                for u in g.upstream(i):
                    if u not in self.tags and g.nodes[u].op_type in ("Pow", "Sub", "Cast", "Mul"):
                        self.tag(u, "norm", "norm")

    def find_embeddings(self) -> None:
        g = self.g
        seeds = []
        for i, n in enumerate(g.nodes):
            table_lookup = n.op_type == "Gather" and g.is_const(n.input[0]) and not g.is_const(n.input[1])
            patch_embed = n.op_type == "Conv" and any(t in g.graph_inputs for t in n.input)
            if table_lookup or patch_embed:
                seeds.append(i)
        for i in seeds:
            self.tag(i, "embedding", "embedding")
        # propagate through ops that only combine embeddings (sum of token/position/type, cls concat)
        changed = True
        while changed:
            changed = False
            for i, n in enumerate(g.nodes):
                if i in self.tags or n.op_type not in (
                    "Add",
                    "Concat",
                    "Reshape",
                    "Transpose",
                    "Flatten",
                    "Cast",
                    "Unsqueeze",
                ):
                    continue
                ups = g.upstream(i)
                if ups and all(self._is_class(u, "embedding") for u in ups):
                    self.tag(i, "embedding", "embedding")
                    changed = True

    # ------------------------------------------------------------------ Q/DQ, casts, names, blocks
    def fill_sandwiched(self) -> None:
        """An untagged node between nodes of one class (SiLU's Sigmoid beside its Mul) joins it."""
        g = self.g
        changed = True
        while changed:
            changed = False
            for i in range(len(g.nodes)):
                if i in self.tags or all(g.is_const(o) for o in g.nodes[i].output):
                    continue
                ups, downs = g.upstream(i), g.downstream(i)
                if not ups or not downs:
                    continue
                classes = {self.tags[u].layer_class for u in ups if u in self.tags}
                down_classes = {self.tags[d].layer_class for d in downs if d in self.tags}
                if (
                    len(classes) == 1
                    and classes == down_classes
                    and all(u in self.tags for u in ups)
                    and all(d in self.tags for d in downs)
                    and next(iter(classes)) in ("attention", "ffn")
                ):
                    cls = next(iter(classes))
                    self.tag(i, cls, "attn_core" if cls == "attention" else "ffn_act")
                    changed = True

    def inherit_pass_through(self) -> None:
        """Q/DQ, Cast and constant-producing nodes take the class of the classified node they feed."""
        g = self.g
        for i in reversed(range(len(g.nodes))):
            node_const = all(g.is_const(o) for o in g.nodes[i].output)
            if i in self.tags or (g.nodes[i].op_type not in PASS_THROUGH and not node_const):
                continue
            for d in g.downstream(i):
                t = self.tags.get(d)
                if t is not None:
                    self.tags[i] = _Tag(t.layer_class, t.role, t.evidence)
                    break

    def name_fallback(self) -> None:
        for i, n in enumerate(self.g.nodes):
            if i in self.tags or not self.g.is_weighted_gemm(i):
                continue
            text = _scope_text(n)
            if _NAME_ATTN.search(text):
                self.tag(i, "attention", "attn_core", evidence="name")
            elif _NAME_FFN.search(text):
                self.tag(i, "ffn", "ffn_core", evidence="name")

    def assign_blocks(self) -> dict[int, int | None]:
        g = self.g
        by_name = {i: block_from_name(n) for i, n in enumerate(g.nodes)}
        softmax_order: list[int] = sorted(int(b["softmax"]) for b in self.attention_blocks)  # type: ignore[call-overload]
        blocks: dict[int, int | None] = {}

        def structural(i: int) -> int | None:
            # the attention core at or before i (post-LN) or, for nodes before the first core, block 0
            idx = None
            for k, s in enumerate(softmax_order):
                if s <= i:
                    idx = k
            return idx

        for i, tag in self.tags.items():
            if tag.layer_class == "embedding":
                blocks[i] = None
                continue
            named = by_name.get(i)
            if named is not None:
                blocks[i] = named
            elif tag.layer_class == "attention":
                # projections come before their softmax: the next softmax at or after them; the core's
                # other nodes (BMM1 and its Q/DQ before the softmax, BMM2 and out_proj after) belong
                # to the nearest softmax in graph order
                later = [k for k, s in enumerate(softmax_order) if s >= i]
                if later and tag.role in ("q_proj", "k_proj", "v_proj", "qkv_proj"):
                    blocks[i] = later[0]
                elif softmax_order:
                    blocks[i] = min(range(len(softmax_order)), key=lambda k: abs(softmax_order[k] - i))
                else:
                    blocks[i] = None
            elif tag.layer_class in ("ffn", "norm") and softmax_order:
                blocks[i] = structural(i)
            else:
                blocks[i] = None
        return blocks

    def run(self) -> pd.DataFrame:
        self.find_attention()
        self.find_ffn()
        self.find_norms()
        self.find_embeddings()
        self.name_fallback()
        self.fill_sandwiched()
        self.inherit_pass_through()
        blocks = self.assign_blocks()
        rows = []
        for i, n in enumerate(self.g.nodes):
            t = self.tags.get(i, _Tag("other", "other", "default"))
            rows.append(
                {
                    "node": n.name,
                    "op_type": n.op_type,
                    "layer_class": t.layer_class,
                    "block": blocks.get(i) if t.layer_class != "other" else None,
                    "role": t.role,
                    "evidence": t.evidence,
                }
            )
        df = pd.DataFrame(rows, columns=results.TABLES["layer_classes"].names)
        df["block"] = df["block"].astype("Int64")
        return results.check(df, "layer_classes")


def classify(model: onnx.ModelProto) -> pd.DataFrame:
    """Classify every node; the ``layer_classes`` table (node names must be unique: see
    :func:`ensure_node_names`)."""
    names = [n.name for n in model.graph.node]
    if len(set(names)) != len(names) or "" in names:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        ensure_node_names(model)
    df = _Classifier(model).run()
    n_attn = int((df["role"] == "softmax").sum())
    if n_attn == 0:
        log.warning("no attention found in the graph (no Softmax between two activation MatMuls)")
    return df


def summarize(df: pd.DataFrame) -> dict[str, int]:
    """Counts a reader wants: attention cores, FFNs, GEMM nodes per class."""
    gemms = df[df["op_type"].isin(GEMM_OPS)]
    return {
        "attention_cores": int((df["role"] == "softmax").sum()),
        "ffn_blocks": int(((df["role"] == "ffn_down") & df["op_type"].isin(GEMM_OPS)).sum()),
        "attention_gemms": int((gemms["layer_class"] == "attention").sum()),
        "ffn_gemms": int((gemms["layer_class"] == "ffn").sum()),
        "other_gemms": int((~gemms["layer_class"].isin(["attention", "ffn"])).sum()),
    }


def layer_map_path(onnx_path: Path) -> Path:
    return Path(onnx_path).with_suffix(".layers.csv")


def save_layer_map(classes: pd.DataFrame, onnx_path: Path) -> Path:
    """Write a class map beside its ONNX file as ``<stem>.layers.csv`` (atomically)."""
    out = layer_map_path(onnx_path)
    atomic_write(out, classes.to_csv(index=False))
    return out


def classify_file(onnx_path: Path, save: bool = True) -> pd.DataFrame:
    """Classify an ONNX file and save the map beside it as ``<stem>.layers.csv``."""
    df = classify(load_onnx(onnx_path))
    if save:
        save_layer_map(df, onnx_path)
    return df
