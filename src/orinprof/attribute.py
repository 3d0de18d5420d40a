"""Attribution: a backend's raw per-layer profile × the layer-class map → per-layer and per-class time.

A raw profile row is one execution of one backend layer (see
:data:`orinprof.backends.base.RAW_PROFILE_COLUMNS`).  Each layer names the ONNX nodes it implements
(``onnx_nodes``); their classes decide the layer's class:

* all member nodes in one class → that class;
* members from several classes (a TensorRT GEMM fused with its residual add) → ``mixed``, with
  the time split by the members' FLOPs (``class_split`` records the fractions);
* a runtime node already split (ONNX Runtime's fused nodes mapped by
  :meth:`orinprof.analysed.AnalysedModel.runtime_classes`) keeps its split;
* no members known: ``fused-unattributed`` for opaque fused regions (TensorRT 8.x
  ``{ForeignNode[…]}`` without metadata), ``reformat`` for format conversions, else
  ``unattributed`` with status ``unmatched`` — never silently given to a class, ``other``
  included.  Unattributed time is reported (``unattributed_ms``) and flagged when it exceeds
  :data:`UNATTRIBUTED_FLAG_SHARE` of the layer time (:func:`attribution_flags`).

A backend that knows classes itself (the PyTorch module hooks) passes ``layer_class``/``block``
columns, which are used as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import pandas as pd

from orinprof.results import LAYER_CLASSES

#: classes summary columns are reported for; the rest folds into ``other``
SUMMARY_CLASSES = ("attention", "ffn", "norm", "embedding")
_NODE_SEP = ";"


def _split(nodes: object) -> list[str]:
    if not isinstance(nodes, str) or not nodes:
        return []
    return [n for n in nodes.split(_NODE_SEP) if n]


def _parse_split(split: object) -> dict[str, float]:
    """``class=fraction;…`` → {class: fraction}."""
    if not isinstance(split, str) or not split:
        return {}
    return {c: float(f) for c, f in (p.split("=") for p in split.split(";") if p)}


def _node_fractions(classes: pd.DataFrame) -> dict[str, dict[str, float]]:
    """node → {class: fraction}: one class, or a runtime node's split (``mixed`` + ``class_split``)."""
    splits = classes["class_split"] if "class_split" in classes.columns else [None] * len(classes)
    out: dict[str, dict[str, float]] = {}
    for node, cls, split in zip(classes["node"], classes["layer_class"], splits):
        parsed = _parse_split(split) if cls == "mixed" else {}
        out[node] = parsed or {str(cls): 1.0}
    return out


def _fractions(
    layer_class: object,
    nodes: list[str],
    status: str,
    node_fraction: Mapping[str, Mapping[str, float]],
    node_block: Mapping[str, object],
    node_flops: Mapping[str, float] | None,
) -> tuple[dict[str, float], object, str]:
    """(class → fraction, block, status) for one layer."""
    if isinstance(layer_class, str) and layer_class:
        return {layer_class: 1.0}, None, status
    if status in ("fused-unattributed", "reformat"):
        return {status: 1.0}, None, status
    known = [n for n in nodes if n in node_fraction]
    if not known:
        # names the class map does not know: never given to a class, not even to "other"
        return {"unattributed": 1.0}, None, ("unmatched" if nodes else status)
    classes = Counter(c for n in known for c in node_fraction[n])
    blocks = Counter(node_block[n] for n in known if node_block.get(n) is not None and not pd.isna(node_block[n]))
    block = blocks.most_common(1)[0][0] if blocks else None
    if len(classes) == 1:
        return {next(iter(classes)): 1.0}, block, status
    if len(known) == 1:  # one runtime node already split by its members' FLOPs
        return dict(node_fraction[known[0]]), block, status
    weights: dict[str, float] = {}
    if node_flops:
        for n in known:
            for c, f in node_fraction[n].items():
                weights[c] = weights.get(c, 0.0) + f * float(node_flops.get(n, 0.0) or 0.0)
    total = sum(weights.values())
    if total <= 0:
        # no FLOPs known for the members: split by member count and say so
        weights = {c: float(k) for c, k in classes.items()}
        total = sum(weights.values())
        status = "split_by_count" if status == "ok" else status
    return {c: w / total for c, w in weights.items() if w > 0}, block, status


def attribute_layers(
    raw: pd.DataFrame, classes: pd.DataFrame | None, node_flops: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Per-layer table (the ``layers`` columns without the run keys), one row per backend layer.

    ``classes`` is a ``layer_classes`` table or a runtime graph's map
    (:meth:`orinprof.analysed.AnalysedModel.runtime_classes`, whose nodes may be ``mixed`` with a
    ``class_split``, or ``unattributed``)."""
    node_fraction: dict[str, dict[str, float]] = {}
    node_block: dict[str, object] = {}
    if classes is not None and len(classes):
        node_fraction = _node_fractions(classes)
        node_block = dict(zip(classes["node"], classes["block"]))
    has_class = "layer_class" in raw.columns
    has_block = "block" in raw.columns
    rows = []
    for layer, grp in raw.groupby("layer", sort=False):
        first = grp.iloc[0]
        times = grp["time_ms"].to_numpy(dtype=float)
        finite = times[np.isfinite(times)]
        status = str(first["status"]) if "status" in grp.columns and isinstance(first.get("status"), str) else "ok"
        nodes = _split(first.get("onnx_nodes"))
        fr, block, status = _fractions(
            first["layer_class"] if has_class else None, nodes, status, node_fraction, node_block, node_flops
        )
        if has_block and not pd.isna(first["block"]):
            block = first["block"]
        if len(fr) > 1:
            layer_class = "mixed"
            split = ";".join(f"{c}={f:.4f}" for c, f in sorted(fr.items(), key=lambda kv: -kv[1]))
        else:
            layer_class, split = next(iter(fr)), None
        calls = int(first["calls"]) if "calls" in grp.columns and not pd.isna(first.get("calls")) else len(finite)
        median = float(np.median(finite)) if finite.size else float("nan")
        if finite.size and median == 0.0 and status == "ok":
            status = "zero_time"
        rows.append(
            {
                "layer": layer,
                "op_type": first["op_type"],
                "layer_class": layer_class,
                "block": block,
                "onnx_nodes": _NODE_SEP.join(nodes) if nodes else None,
                "calls": calls,
                "median_ms": median,
                "mean_ms": float(finite.mean()) if finite.size else float("nan"),
                "share": float("nan"),
                "class_split": split,
                "status": status if finite.size else "not_profiled",
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    total = df["median_ms"].sum(skipna=True)
    df["share"] = df["median_ms"] / total if total > 0 else float("nan")
    df["block"] = pd.array(df["block"], dtype="Int64") if df["block"].notna().any() else df["block"]
    return df


def class_fractions(layers: pd.DataFrame) -> dict[str, dict[str, float]]:
    """layer → {class: fraction} from an attributed table (mixed layers via ``class_split``)."""
    out: dict[str, dict[str, float]] = {}
    for row in layers.itertuples(index=False):
        if row.layer_class == "mixed" and isinstance(row.class_split, str):
            out[row.layer] = _parse_split(row.class_split)
        else:
            out[row.layer] = {row.layer_class: 1.0}
    return out


#: classes whose time could not be given to a layer class
UNATTRIBUTED_CLASSES = ("unattributed", "fused-unattributed")
#: above this share of the layer time in unattributed classes, a run's attribution is incomplete
UNATTRIBUTED_FLAG_SHARE = 0.05


def class_totals(layers: pd.DataFrame) -> dict[str, float]:
    """Per-class time per inference (sum of layer medians split by fraction).

    Keys: ``attention_ms``, ``ffn_ms``, ``norm_ms``, ``embedding_ms``, ``other_ms`` (everything else,
    including ``reformat``, ``unattributed`` and ``fused-unattributed``, so the five class columns
    sum to the layer sum), ``unattributed_ms`` (the ``unattributed`` and ``fused-unattributed``
    part of ``other_ms``), ``layer_sum_ms``.
    """
    totals = dict.fromkeys(LAYER_CLASSES, 0.0)
    unattributed = 0.0
    fractions = class_fractions(layers)
    for row in layers.itertuples(index=False):
        if not np.isfinite(row.median_ms):
            continue
        for cls, f in fractions[row.layer].items():
            t = row.median_ms * f
            if cls in UNATTRIBUTED_CLASSES:
                unattributed += t
            totals[cls if cls in totals else "other"] += t
    layer_sum = float(np.nansum(layers["median_ms"].to_numpy(dtype=float)))
    out = {f"{c}_ms": v for c, v in totals.items()}
    out["unattributed_ms"] = unattributed
    out["layer_sum_ms"] = layer_sum
    out["attention_share"] = totals["attention"] / layer_sum if layer_sum > 0 else float("nan")
    out["ffn_share"] = totals["ffn"] / layer_sum if layer_sum > 0 else float("nan")
    return out


def attribution_flags(totals: Mapping[str, float], threshold: float = UNATTRIBUTED_FLAG_SHARE) -> list[str]:
    """Trust flags of an attribution (:func:`class_totals`'s output): ``attribution_incomplete``
    when more than ``threshold`` of the layer time is unattributed, e.g.
    ``attribution_incomplete:12%``."""
    layer_sum = float(totals.get("layer_sum_ms", float("nan")))
    unattributed = float(totals.get("unattributed_ms", 0.0))
    if not np.isfinite(layer_sum) or layer_sum <= 0:
        return []
    share = unattributed / layer_sum
    return [f"attribution_incomplete:{share:.0%}"] if share > threshold else []


def class_times(raw: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """Per profiled iteration, each class's summed time (columns iteration, layer_class, time_ms).

    These per-iteration sums give the confidence intervals of class-time reductions.
    """
    fractions = class_fractions(layers)
    records: dict[tuple[int, str], float] = {}
    for row in raw[["iteration", "layer", "time_ms"]].itertuples(index=False):
        if not np.isfinite(row.time_ms):
            continue
        for cls, f in fractions.get(row.layer, {"other": 1.0}).items():
            key_cls = cls if cls in LAYER_CLASSES else "other"
            key = (int(row.iteration), key_cls)
            records[key] = records.get(key, 0.0) + row.time_ms * f
    iterations = sorted({k[0] for k in records})
    rows = [
        {"iteration": it, "layer_class": c, "time_ms": records.get((it, c), 0.0)}
        for it in iterations
        for c in LAYER_CLASSES
    ]
    return pd.DataFrame(rows, columns=["iteration", "layer_class", "time_ms"])


def dominant_class(classes: pd.DataFrame) -> dict[str, str]:
    """Node → its class; a ``mixed`` node (``class_split`` = ``class=fraction;…``) counts as the
    class with the largest fraction (kernel counts per class need one class per node)."""
    out: dict[str, str] = {}
    split = classes["class_split"] if "class_split" in classes.columns else pd.Series("", index=classes.index)
    for node, cls, parts in zip(classes["node"], classes["layer_class"], split.fillna("")):
        if cls == "mixed" and parts:
            fractions = dict(p.split("=") for p in str(parts).split(";") if "=" in p)
            cls = max(fractions, key=lambda c: float(fractions[c]))
        out[str(node)] = str(cls)
    return out


def int8_layers_by_class(raw: pd.DataFrame, layers: pd.DataFrame) -> dict[str, int] | None:
    """Engine layers that ran in INT8, per class (``int8_kernels_attention/ffn/other``): a layer
    counts when its input precision (TensorRT's layer information, ``precision_in``) says INT8;
    a ``mixed`` layer counts for its largest class.  ``None`` when the profile carries no layer
    precisions, or when an opaque Myelin region (``fused-unattributed``) could hide INT8 layers
    from view (TensorRT 8.6's ``{ForeignNode[...]}``): unknown, never a false zero."""
    if "precision_in" not in raw.columns or not len(layers):
        return None
    myelin = raw["layer"].astype(str).str.startswith("{ForeignNode[")
    if myelin.any() or (layers["layer_class"] == "fused-unattributed").any():
        return None
    first = raw.drop_duplicates("layer")
    precision = first.set_index("layer")["precision_in"].astype(str)
    if not (precision.str.strip() != "").any():
        return None
    classes = dominant_class(layers.rename(columns={"layer": "node"}))
    counts = {"int8_kernels_attention": 0, "int8_kernels_ffn": 0, "int8_kernels_other": 0}
    for layer, prec in precision.items():
        if "int8" in prec.lower():
            cls = classes.get(str(layer), "other")
            counts[f"int8_kernels_{cls if cls in ('attention', 'ffn') else 'other'}"] += 1
    return counts
