"""Roofline projection: what a model would do on a device you may not have.

Per ONNX node (costs from :mod:`orinprof.costs`) and per precision plan::

    floor_ms = max(flops / peak(precision), bytes / bandwidth)
    time_ms  = floor_ms / efficiency[op kind]

* Baseline precision: ``fp16`` on GPUs and Jetsons, ``fp32`` on the CPU (as in ``comparison``).
  Costs are taken from the graph as exported and its float bytes rescaled to the baseline's
  element size.
* An INT8 node (the GEMMs a plan quantizes, chosen exactly as :func:`orinprof.quantize.nodes_for_plan`
  does) reads its operands (weights and activations) at 1 byte instead of the baseline's 2 or 4, and
  runs at the INT8 peak (on Orin: twice the FP16 peak).  Its output stays in the baseline precision.
* Pointwise fusion is modelled by default: a GEMM → bias → GELU chain writes its result once
  (``fused_*_bytes`` in :mod:`orinprof.costs`); ``fusion=False`` gives the unfused node sum.
* GEMMs and activation MatMuls/Convs use the tensor-core peak; other ops the CUDA-core FP32 rate
  (they are memory-bound everywhere, so this only matters for the record).
* Efficiency factors default to 1.0: the projection is then a *floor* (nothing runs faster).  Fit
  them on measured runs with :func:`fit_efficiency` (``orinprof project --fit RUN…``).
* Per nvpmodel mode the peaks scale with ``TPCs/all TPCs × GPU clock/max clock`` and the bandwidth
  with ``EMC clock/max EMC clock`` (the caps from NVIDIA's nvpmodel files; see devices.toml).

* Fused multi-head attention is modelled with fusion (``fused_mha``): TensorRT's fused MHA kernels
  keep the attention probabilities P = Softmax(QKᵀ) on chip, so the S²·H tensor between Softmax and
  the P·V MatMul is neither written nor read (results audit §5.4: for bert-base fp16 at S=512 that
  phantom traffic was ~151 MB per pass, comparable to the weights).

The device table is :mod:`orinprof.devices`.  :func:`projection_tables` is what ``orinprof project``
asks for (a :class:`ProjectionRequest` in, named tables out); :func:`write_projection` writes them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from orinprof.costs import QDQ_OPS, VIEW_OPS, dynamic_dims, node_costs
from orinprof.devices import Device, device_record, get_device
from orinprof.errors import OrinprofError
from orinprof.plans import INT8_PLAN_NAMES

log = logging.getLogger(__name__)

INT8_PLANS = INT8_PLAN_NAMES
DEFAULT_SEQS = (64, 128, 256, 384, 512, 1024, 2048)

#: MLPerf Inference BERT-99 SingleStream p90 on AGX Orin (INT8, seq 384, MaxN), v2.0–v3.1
#: (jetson_anchors.md §6.1, from the rounds' mlperf_log_summary.txt files).
MLPERF_BERT_P90_MS = (5.622, 7.634)
#: The same rounds' SingleStream p50 (v2.0 6.08, v2.1 5.234, v3.0 4.071, v3.1 4.212 ms).
MLPERF_BERT_P50_MS = (4.071, 6.08)
MLPERF_BERT_SOURCE = (
    "MLPerf Inference v2.0–v3.1 closed/NVIDIA Orin_TRT bert-99 SingleStream p90 5.622–7.634 ms (jetson_anchors.md §6.1)"
)

_TENSOR_KINDS = ("gemm", "matmul", "conv")


def _load(model: onnx.ModelProto | Path | str) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "model"
    path = Path(model)
    if not path.exists():
        raise OrinprofError(f"{path} does not exist", "pass an ONNX file or a model preset name")
    try:
        # weights are not needed: costs read initializer dims only
        return onnx.load(str(path), load_external_data=False), path.stem
    except Exception as err:  # protobuf's DecodeError and friends
        raise OrinprofError(f"{path} is not an ONNX model ({type(err).__name__})", "pass a .onnx file") from err


def _graph_float_size(model: onnx.ModelProto) -> int:
    counts: dict[int, int] = {}
    for init in model.graph.initializer:
        if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            counts[init.data_type] = counts.get(init.data_type, 0) + int(math.prod(init.dims))
    if not counts:
        return 4
    return 4 if max(counts, key=lambda k: counts[k]) == onnx.TensorProto.FLOAT else 2


def _classes(model: onnx.ModelProto, classes: pd.DataFrame | None) -> pd.DataFrame:
    if classes is not None:
        return classes
    from orinprof.classify import classify

    return classify(model)


def _int8_nodes(classes: pd.DataFrame, plan: str) -> set[str]:
    from orinprof.plans import get_plan
    from orinprof.quantize import nodes_for_plan

    return set(nodes_for_plan(classes, get_plan(plan)))


def project(
    model: onnx.ModelProto | Path | str,
    device: Device | str,
    plans: Sequence[str] = INT8_PLANS,
    *,
    mode: str | None = None,
    batch: int | None = None,
    seq_len: int | None = None,
    classes: pd.DataFrame | None = None,
    efficiency: Mapping[str, float] | None = None,
    fusion: bool = True,
    fused_mha: bool | None = None,
) -> pd.DataFrame:
    """Per node and plan (the baseline first): FLOPs, bytes, roofline floor and projected time.

    Columns: ``plan, node, op_type, kind, layer_class, block, precision, flops, bytes, compute_ms,
    memory_ms, floor_ms, bound, efficiency, time_ms, status``.  ``classes`` is a ``layer_classes``
    table (default: :func:`orinprof.classify.classify`).  ``fusion`` drops the bytes that pointwise
    fusion keeps on chip (``fused_*_bytes`` in :func:`orinprof.costs.node_costs`), as TensorRT and
    ONNX Runtime fuse bias, activation and residual ops into their neighbours.  ``fused_mha``
    (default: as ``fusion``) also keeps the attention probabilities on chip (:func:`fused_mha_bytes`).
    """
    proto, _ = _load(model)
    dev = get_device(device, mode) if isinstance(device, str) else device
    costs = node_costs(proto, batch=batch, seq_len=seq_len)
    missing = costs["status"] == "no_shape"
    if missing.any():
        dims = dynamic_dims(proto)
        raise OrinprofError(
            f"{int(missing.sum())} of {len(costs)} nodes have no static shape"
            + (f" (dynamic inputs: {', '.join(dims)})" if dims else ""),
            "pass --seq N and --batch N to fix the input shapes",
        )
    mha = fused_mha_bytes(proto, costs) if (fusion if fused_mha is None else fused_mha) else None
    costs["mha_in_bytes"] = 0.0 if mha is None else mha["mha_in_bytes"].to_numpy()
    costs["mha_out_bytes"] = 0.0 if mha is None else mha["mha_out_bytes"].to_numpy()
    cls = _classes(proto, classes)
    costs = costs.merge(cls[["node", "layer_class", "block"]], on="node", how="left")
    costs["layer_class"] = costs["layer_class"].fillna("other")
    scale = {"fp32": 4, "fp16": 2}[dev.baseline] / _graph_float_size(proto)
    eff = dict(efficiency or {})
    baseline = dev.baseline
    frames = []
    for plan in [baseline, *[p for p in plans if p != baseline]]:
        int8 = _int8_nodes(cls, plan) if plan.startswith("int8") else set()
        frames.append(_project_plan(costs, dev, plan, int8, scale, eff, fusion))
    return pd.concat(frames, ignore_index=True)


def fused_mha_bytes(proto: onnx.ModelProto, costs: pd.DataFrame) -> pd.DataFrame:
    """Bytes a fused multi-head-attention kernel keeps on chip, per node (rows as ``costs``, which
    :func:`orinprof.costs.node_costs` emits one per graph node, in order).

    A Softmax whose output is read only by activation MatMuls (the P·V product; views and
    activation Q/DQ looked through) is the attention core: TensorRT's fused MHA (and FlashAttention)
    computes P tile by tile and never stores it.  So the Softmax does not write P
    (``mha_out_bytes`` = its output bytes) and the P·V MatMul does not read it (``mha_in_bytes`` =
    P's elements at the size P·V would read: 1 byte behind an activation DequantizeLinear, as
    :mod:`orinprof.costs` counts it, else the Softmax output's size).  The S = QKᵀ side is already
    on chip under pointwise fusion (``fused_*_bytes``: scale → mask → Softmax)."""
    nodes = list(proto.graph.node)
    if len(nodes) != len(costs):
        raise OrinprofError("cost rows do not match the graph's nodes", "pass node_costs() of the same graph")
    index = {id(n): i for i, n in enumerate(nodes)}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for t in n.input:
            if t:
                consumers.setdefault(t, []).append(n)
    constants = {i.name for i in proto.graph.initializer}
    graph_outputs = {o.name for o in proto.graph.output}
    mha_in = np.zeros(len(nodes))
    mha_out = np.zeros(len(nodes))
    act_out = costs["act_out_bytes"].to_numpy(dtype=float)
    for k, node in enumerate(nodes):
        if node.op_type != "Softmax" or not node.output or not act_out[k] > 0:
            continue
        readers: list[tuple[onnx.NodeProto, bool]] = []  # (consumer, reached through a Quantize)
        frontier = [(node.output[0], False)]
        escapes = False  # P (or a view of it) is a graph output: it must reach memory
        while frontier:
            tensor, quantized = frontier.pop()
            escapes = escapes or tensor in graph_outputs
            for c in consumers.get(tensor, []):
                if c.op_type in VIEW_OPS or c.op_type in QDQ_OPS:
                    frontier += [(o, quantized or c.op_type == "QuantizeLinear") for o in c.output if o]
                else:
                    readers.append((c, quantized))
        activation_matmuls = [
            (c, q) for c, q in readers if c.op_type == "MatMul" and not any(t in constants for t in c.input)
        ]
        if escapes or not readers or len(activation_matmuls) != len(readers):
            continue  # P is also read elsewhere (or by a weight GEMM): it must reach memory
        mha_out[k] = act_out[k]
        element = _tensor_size(proto, node.output[0])
        for reader, quantized in activation_matmuls:
            mha_in[index[id(reader)]] += act_out[k] / element * (1 if quantized else element)
    return pd.DataFrame({"node": costs["node"], "mha_in_bytes": mha_in, "mha_out_bytes": mha_out})


def _tensor_size(proto: onnx.ModelProto, name: str) -> int:
    """Element size of tensor ``name`` (from the graph's value infos; the graph's float size else)."""
    for info in [*proto.graph.value_info, *proto.graph.output]:
        if info.name == name and info.type.tensor_type.elem_type:
            return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)).itemsize)
    return _graph_float_size(proto)


def _project_plan(
    costs: pd.DataFrame,
    dev: Device,
    plan: str,
    int8: set[str],
    scale: float,
    eff: Mapping[str, float],
    fusion: bool,
) -> pd.DataFrame:
    df = costs.copy()
    is_int8 = df["node"].isin(int8) & df["kind"].isin(_TENSOR_KINDS)
    element = {"fp32": 4.0, "fp16": 2.0}[dev.baseline]
    act_in, act_out = df["act_in_bytes"], df["act_out_bytes"]
    if fusion:
        act_in, act_out = act_in - df["fused_in_bytes"], act_out - df["fused_out_bytes"]
    act_in, act_out = act_in - df["mha_in_bytes"], act_out - df["mha_out_bytes"]
    operand = (df["weight_bytes"] + act_in) * scale
    out_bytes = act_out * scale
    df["precision"] = np.where(is_int8, "int8", dev.baseline)
    df["bytes"] = np.where(is_int8, operand / element, operand) + out_bytes
    tensor = df["kind"].isin(_TENSOR_KINDS)
    peak = np.where(
        is_int8,
        dev.peak_tflops["int8"],
        np.where(tensor, dev.peak_tflops[dev.baseline], dev.peak_tflops["fp32"]),
    )
    df["compute_ms"] = df["flops"] / (peak * 1e12) * 1e3
    df["memory_ms"] = df["bytes"] / (dev.bandwidth_gbs * 1e9) * 1e3
    df["floor_ms"] = np.maximum(df["compute_ms"], df["memory_ms"])
    df["bound"] = np.where(
        df["floor_ms"] <= 0, "none", np.where(df["compute_ms"] >= df["memory_ms"], "compute", "memory")
    )
    keys = [f"{k}_int8" if i else str(k) for k, i in zip(df["kind"], is_int8, strict=True)]
    df["efficiency"] = [float(eff.get(k, eff.get(k.removesuffix("_int8"), 1.0))) for k in keys]
    df["time_ms"] = df["floor_ms"] / df["efficiency"]
    df.insert(0, "plan", plan)
    cols = [
        "plan",
        "node",
        "op_type",
        "kind",
        "layer_class",
        "block",
        "precision",
        "flops",
        "bytes",
        "compute_ms",
        "memory_ms",
        "floor_ms",
        "bound",
        "efficiency",
        "time_ms",
        "status",
    ]
    return df[cols]


def summarize_projection(nodes: pd.DataFrame) -> pd.DataFrame:
    """Per plan: attention / FFN / other / e2e projected ms and reductions against the baseline
    (the first plan in ``nodes``)."""
    baseline = str(nodes["plan"].iloc[0])
    group = np.where(nodes["layer_class"].isin(["attention", "ffn"]), nodes["layer_class"], "other")
    per = nodes.assign(group=group).pivot_table(index="plan", columns="group", values="time_ms", aggfunc="sum")
    per = per.reindex(columns=["attention", "ffn", "other"]).fillna(0.0)
    per.columns = [f"{c}_ms" for c in per.columns]
    per["e2e_ms"] = per.sum(axis=1)
    per = per.reindex(list(dict.fromkeys(nodes["plan"])))
    base = per.loc[baseline]
    for c in ("attention", "ffn", "e2e"):
        per[f"{c}_reduction"] = 1.0 - per[f"{c}_ms"] / base[f"{c}_ms"] if base[f"{c}_ms"] > 0 else math.nan
    compute = nodes[nodes["bound"] == "compute"].groupby("plan")["time_ms"].sum()
    per["compute_bound_share"] = (compute.reindex(per.index).fillna(0.0) / per["e2e_ms"]).astype(float)
    per.insert(0, "baseline", baseline)
    return per.reset_index()


def _preset_costs_by_extrapolation(
    preset: str, batch: int, seq_len: int, models_dir: Path
) -> tuple[onnx.ModelProto, onnx.ModelProto, int]:
    """1- and 2-layer exports of a preset (every layer of a preset has the same shapes, so a
    per-node sum over L layers is ``one + (L-1)·(two - one)`` exactly; exporting 24 full layers
    only to count shapes would take a minute and a gigabyte)."""
    from orinprof import models
    from orinprof.export import export_preset

    spec = models.get(preset)
    layers = int(spec.config["num_layers"])
    one = export_preset(models.with_config(spec, num_layers=1), batch, seq_len, models_dir=models_dir)
    two = export_preset(models.with_config(spec, num_layers=2), batch, seq_len, models_dir=models_dir)
    return _load(one.path)[0], _load(two.path)[0], layers


def project_preset(
    preset: str,
    device: Device | str,
    seq_lens: Iterable[int],
    plans: Sequence[str] = INT8_PLANS,
    *,
    mode: str | None = None,
    batch: int = 1,
    models_dir: Path = Path("models"),
    efficiency: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """:func:`summarize_projection` of a preset at each sequence length (column ``seq_len``),
    via 1- and 2-layer exports extrapolated to the preset's depth."""
    dev = get_device(device, mode) if isinstance(device, str) else device
    frames = []
    for seq in seq_lens:
        one, two, layers = _preset_costs_by_extrapolation(preset, batch, seq, models_dir)
        s1 = summarize_projection(project(one, dev, plans, efficiency=efficiency))
        s2 = summarize_projection(project(two, dev, plans, efficiency=efficiency))
        ms = [c for c in s1.columns if c.endswith("_ms")]
        full = s1.copy()
        full[ms] = s1[ms] + (layers - 1) * (s2[ms] - s1[ms])
        base = full.iloc[0]
        for c in ("attention", "ffn", "e2e"):
            full[f"{c}_reduction"] = 1.0 - full[f"{c}_ms"] / base[f"{c}_ms"]
        full.insert(0, "seq_len", seq)
        frames.append(full)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "model", preset)
    out.insert(1, "device", dev.key)
    out.insert(2, "mode", dev.mode)
    return out


def card_crossing(sweep: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """Per INT8 plan and claim: the sequence lengths whose projected reduction lies in the card's
    range (``first_seq_in_range`` empty when none does).  ``ranges`` maps a reduction column
    (``attention_reduction``, ``e2e_reduction``) to the claimed range: read them from claims.toml
    (:func:`orinprof.cards.verdicts.card9_ranges`), their one owner."""
    rows = []
    for plan, g in sweep[sweep["plan"].str.startswith("int8")].groupby("plan", sort=False):
        g = g.sort_values("seq_len")
        for col, (lo, hi) in ranges.items():
            inside = g[(g[col] >= lo) & (g[col] <= hi)]["seq_len"].tolist()
            rows.append(
                {
                    "plan": plan,
                    "claim": col.removesuffix("_reduction"),
                    "range": f"{lo:.0%}–{hi:.0%}",
                    "min_reduction": float(g[col].min()),
                    "max_reduction": float(g[col].max()),
                    "seq_in_range": ";".join(str(s) for s in inside),
                    "first_seq_in_range": inside[0] if inside else math.nan,
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class PublishedCheck:
    projected_ms: float
    published_low_ms: float
    published_high_ms: float
    error: float  # projected ÷ nearest end of the published range − 1 (0 inside the range)
    source: str
    device: str
    mode: str

    def line(self) -> str:
        inside = "inside" if self.error == 0 else f"{self.error:+.0%} vs the nearest end of"
        lo50, hi50 = MLPERF_BERT_P50_MS
        floor_note = (
            f"; a floor above the best round's p50 ({lo50:.2f} ms) means the cost model overcounts against "
            "NVIDIA's fused INT8 pipeline"
            if self.projected_ms > lo50
            else ""
        )
        return (
            f"BERT-Large INT8 seq 384 batch 1 on {self.device} {self.mode}: "
            f"projected {self.projected_ms:.2f} ms, "
            f"{inside} the published p90 {self.published_low_ms:.2f}–{self.published_high_ms:.2f} ms "
            f"(p50 {lo50:.2f}–{hi50:.2f} ms){floor_note} ({self.source})"
        )


def mlperf_bert_check(
    device: str = "agx-orin-64gb",
    mode: str = "MAXN",
    models_dir: Path = Path("models"),
    efficiency: Mapping[str, float] | None = None,
) -> PublishedCheck:
    """Project BERT-Large (24 layers, hidden 1024, 16 heads, FFN 4096), INT8 everywhere, seq 384,
    batch 1, and compare with MLPerf's BERT-99 SingleStream p90 on AGX Orin."""
    sweep = project_preset(
        "bert-large", device, [384], ["int8-all"], mode=mode, models_dir=models_dir, efficiency=efficiency
    )
    projected = float(sweep[sweep["plan"] == "int8-all"]["e2e_ms"].iloc[0])
    lo, hi = MLPERF_BERT_P90_MS
    err = 0.0 if lo <= projected <= hi else (projected / (lo if projected < lo else hi) - 1.0)
    return PublishedCheck(projected, lo, hi, err, MLPERF_BERT_SOURCE, device, mode)


# ----------------------------------------------------------------------------- measured runs


def _graph_node(name: str, known: pd.Index) -> str:
    """A backend's name for a node → the graph node it came from: ONNX Runtime names fused nodes
    ``<node>/MatMulAddFusion``, TensorRT appends ``_myl…`` suffixes; take the longest known prefix."""
    if name in known:
        return name
    best = ""
    for node in known:
        if len(node) > len(best) and name.startswith(node) and name[len(node) : len(node) + 1] in ("/", "_", "+"):
            best = node
    return best or name


def layer_floors(layers: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """``layers`` (one plan's rows) with ``floor_ms``, ``kind`` and ``efficiency`` (= roofline floor ÷
    measured median: the fraction of the device limit the layer reached; NaN where either is
    missing).  ``nodes`` is :func:`project` output; each layer's floor is the sum over its
    ``onnx_nodes`` in the same plan (or the layer name itself when ``onnx_nodes`` is empty)."""
    out = []
    for plan, g in layers.groupby("precision", sort=False):
        proj = nodes[nodes["plan"] == plan].set_index("node")
        floors, kinds = [], []
        for _, row in g.iterrows():
            raw = row.get("onnx_nodes")
            names = [n for n in str(raw).split(";") if n] if isinstance(raw, str) and raw else [str(row["layer"])]
            names = [_graph_node(n, proj.index) for n in names]
            hit = proj.reindex(names)
            hit = hit[hit["floor_ms"].notna()]
            floors.append(float(hit["floor_ms"].sum()) if len(hit) else math.nan)
            ks = sorted(
                {f"{k}_int8" if p == "int8" else str(k) for k, p in zip(hit["kind"], hit["precision"], strict=True)}
            )
            kinds.append(ks[0] if len(ks) == 1 else ("mixed" if ks else ""))
        g = g.copy()
        g["floor_ms"] = floors
        g["kind"] = kinds
        median = pd.to_numeric(g["median_ms"], errors="coerce")
        g["efficiency"] = np.where((median > 0) & (g["floor_ms"] > 0), g["floor_ms"] / median, math.nan)
        out.append(g)
    return pd.concat(out, ignore_index=True) if out else layers.assign(floor_ms=[], kind=[], efficiency=[])


def fit_efficiency(layers_with_floors: pd.DataFrame, min_layers: int = 3) -> pd.DataFrame:
    """Per op kind: efficiency = Σ floor ÷ Σ measured over the layers of that kind (single-kind
    layers only).  A ratio of sums weights big layers most, as their time does."""
    df = layers_with_floors
    ok = df[df["kind"].ne("") & df["kind"].ne("mixed") & df["efficiency"].notna()]
    rows = []
    for kind, g in ok.groupby("kind"):
        measured = float(pd.to_numeric(g["median_ms"]).sum())
        rows.append(
            {
                "kind": kind,
                "layers": len(g),
                "floor_ms": float(g["floor_ms"].sum()),
                "measured_ms": measured,
                "efficiency": float(g["floor_ms"].sum()) / measured if measured > 0 else math.nan,
                "status": "ok" if len(g) >= min_layers else "few_layers",
            }
        )
    return pd.DataFrame(rows, columns=["kind", "layers", "floor_ms", "measured_ms", "efficiency", "status"])


def model_efficiency(layers_with_floors: pd.DataFrame) -> pd.DataFrame:
    """Per plan: Σ floor ÷ Σ measured over the layers with both: how far from the limit it ran."""
    df = layers_with_floors[layers_with_floors["efficiency"].notna()]
    g = df.groupby("precision").agg(floor_ms=("floor_ms", "sum"), measured_ms=("median_ms", "sum"))
    g["efficiency"] = g["floor_ms"] / g["measured_ms"]
    return g.reset_index()


def efficiency_from_file(path: Path) -> dict[str, float]:
    """Factors written by ``orinprof project --fit`` (``efficiency.csv``: kind, efficiency)."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise OrinprofError(f"cannot read efficiency factors from {path}", str(err).splitlines()[0]) from err
    if not {"kind", "efficiency"} <= set(df.columns):
        raise OrinprofError(f"{path} lacks kind/efficiency columns", "write it with `orinprof project --fit`")
    df = df[df["efficiency"].notna() & (df["efficiency"] > 0)]
    return {str(k): float(v) for k, v in zip(df["kind"], df["efficiency"], strict=True)}


@dataclass(frozen=True)
class ProjectionRequest:
    """What to project (``orinprof project``'s arguments as data): a preset or ONNX ``model`` (with
    its shape, or a ``sweep`` of sequence lengths for a preset), efficiency factors to ``fit`` on
    measured runs of ``onnx_path``, and/or the MLPerf check."""

    model: str | None = None
    seq_len: int | None = None
    batch: int | None = None
    plans: Sequence[str] = INT8_PLANS
    sweep: Sequence[int] = ()
    efficiency: Mapping[str, float] | None = None
    fit: Sequence[Path] = ()
    onnx_path: Path | None = None
    check_mlperf: bool = False
    models_dir: Path = Path("models")
    #: card 9's ranges by reduction column, for ``card_crossing`` (None: no card crossing)
    card_ranges: Mapping[str, tuple[float, float]] | None = None


def projection_tables(request: ProjectionRequest, dev: Device) -> dict[str, Any]:
    """Named tables for ``request`` on ``dev``: ``projection`` (+ ``nodes`` for an ONNX file, and
    ``card_crossing`` for a preset sweep), ``efficiency``/``model_efficiency``/``layer_efficiency``
    from a fit, and ``check`` (the MLPerf line).  Writes nothing."""
    r = request
    for plan in r.plans:
        if plan not in INT8_PLANS:
            raise OrinprofError(f"unknown INT8 plan {plan!r}", "choose from: " + ", ".join(INT8_PLANS))
    tables: dict[str, Any] = {}
    if r.fit:
        if r.onnx_path is None:
            raise OrinprofError("--fit needs the ONNX file the runs measured", "pass --onnx PATH")
        from orinprof import results

        layers = results.read_runs(list(r.fit), "layers")
        nodes = project(r.onnx_path, dev, [p for p in layers["precision"].unique() if str(p).startswith("int8")])
        floors = layer_floors(layers, nodes)
        tables["efficiency"] = fit_efficiency(floors)
        tables["model_efficiency"] = model_efficiency(floors)
        tables["layer_efficiency"] = floors
    if r.model is not None:
        if Path(r.model).suffix == ".onnx" or Path(r.model).exists():
            nodes = project(Path(r.model), dev, r.plans, batch=r.batch, seq_len=r.seq_len, efficiency=r.efficiency)
            tables["projection"] = summarize_projection(nodes)
            tables["nodes"] = nodes
        else:
            from orinprof import models

            seqs = list(r.sweep) or [r.seq_len if r.seq_len is not None else models.get(r.model).default_seq]
            summary = project_preset(
                r.model, dev, seqs, r.plans, batch=r.batch or 1, models_dir=r.models_dir, efficiency=r.efficiency
            )
            tables["projection"] = summary
            if len(seqs) > 1 and r.card_ranges:
                tables["card_crossing"] = card_crossing(summary, r.card_ranges)
    if r.check_mlperf:
        check = mlperf_bert_check(dev.key, dev.mode, models_dir=r.models_dir, efficiency=r.efficiency)
        tables["check"] = check.line()
    if not tables:
        raise OrinprofError("nothing to project", "pass a MODEL or ONNX file, --fit RUN… or --check-mlperf")
    return tables


def write_projection(tables: Mapping[str, Any], dev: Device, out_dir: Path) -> None:
    """Each table as ``NAME.csv`` (the MLPerf line as ``check.txt``) and ``device.json`` into a new
    or empty ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise OrinprofError(f"{out_dir} exists and is not empty", "choose a new --out directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        if isinstance(df, pd.DataFrame):
            df.to_csv(out_dir / f"{name}.csv", index=False, float_format="%.6g")
        else:
            (out_dir / f"{name}.txt").write_text(str(df) + "\n")
    (out_dir / "device.json").write_text(json.dumps(device_record(dev), indent=2, default=str) + "\n")


#: tables :func:`projection_tables` returns for files only (too long for a terminal)
FILE_ONLY_TABLES = ("nodes", "layer_efficiency")
