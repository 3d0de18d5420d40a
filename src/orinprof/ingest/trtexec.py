"""Turn trtexec's JSON files into orinprof tables (``orinprof ingest trtexec``).

:func:`build_raw_profile` joins the per-layer profile with the engine layer information (by
position when the counts match, as TREx does, else by name) and maps every engine layer to the
ONNX nodes it implements (:func:`orinprof.trt_formats.match_onnx_nodes`).
:func:`ingest_trtexec` adds ONNX node classes and FLOPs when the ONNX file is given and hands the
raw frame to :func:`orinprof.attribute.attribute_layers`; :func:`write_ingest_run` writes a new run
directory.  Parsing itself lives in :mod:`orinprof.trt_formats`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orinprof import results
from orinprof import trt_formats as parse
from orinprof.attribute import attribute_layers
from orinprof.classify import classify
from orinprof.costs import node_costs
from orinprof.errors import OrinprofError
from orinprof.stats import latency_stats
from orinprof.trt_formats import build_raw_profile, onnx_node_order

log = logging.getLogger(__name__)

#: Per-layer engine facts carried into ``layers.csv`` (an open-ended table).
ENGINE_COLUMNS = ("precision_in", "precision_out", "fused_mha", "mapping", "tactic")
LAYER_COLUMNS = (
    "layer",
    "op_type",
    "layer_class",
    "block",
    "onnx_nodes",
    "calls",
    "median_ms",
    "mean_ms",
    "share",
    "class_split",
    "status",
)


@dataclass(frozen=True)
class IngestResult:
    """Everything ``orinprof ingest trtexec`` learned from the files."""

    model: str
    precision: str
    raw: pd.DataFrame  # RAW_PROFILE_COLUMNS + RAW_EXTRA_COLUMNS, one row per engine layer
    layers: pd.DataFrame  # LAYER_COLUMNS + ENGINE_COLUMNS (no run keys yet)
    latencies_ms: np.ndarray | None  # GPU compute time per iteration from --exportTimes
    calls: int | None  # profiled iterations ({"count": N}); None when the file lacks it
    fused_mha: bool
    myelin_regions: int  # opaque {ForeignNode[…]} layers that could hide a fused MHA
    precisions: tuple[str, ...]  # engine layer output precisions seen
    attribution: str  # "orinprof.attribute"
    classes_available: bool
    gemm_counts: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _classes_and_flops(
    onnx_path: Path,
) -> tuple[pd.DataFrame | None, dict[str, float] | None, pd.DataFrame | None]:
    import onnx

    model = onnx.load(str(onnx_path))
    classes = flops = costs = None
    classes = classify(model)
    try:
        costs = node_costs(model)
    except OrinprofError as err:
        log.warning("no FLOPs for %s (%s): mixed layers are not split", onnx_path, err.one_line())
    else:
        flops = {str(n): float(f) for n, f in zip(costs["node"], costs["flops"], strict=True)}
    return classes, flops, costs


# --------------------------------------------------------------------------- attribution


def attribute(
    raw: pd.DataFrame, classes: pd.DataFrame | None, node_flops: Mapping[str, float] | None
) -> tuple[pd.DataFrame, str]:
    layers, how = attribute_layers(raw, classes, node_flops), "orinprof.attribute"
    layers = layers.reset_index(drop=True)
    if len(layers) == len(raw):
        # engine facts and the two classes only the engine can tell: never let a Myelin region or a
        # reformat TensorRT inserted be silently counted as attention, FFN or other
        mapping = raw["mapping"].reset_index(drop=True)
        layers.loc[mapping == "reformat", "layer_class"] = "reformat"
        layers.loc[mapping == "fused-unattributed", "layer_class"] = "fused-unattributed"
        for col in ENGINE_COLUMNS:
            layers[col] = raw[col].reset_index(drop=True)
    else:
        log.warning(
            "attribution returned %d rows for %d engine layers; engine facts not attached",
            len(layers),
            len(raw),
        )
    return layers, how


def _gemm_counts(raw: pd.DataFrame, classes: pd.DataFrame, costs: pd.DataFrame) -> dict[str, float]:
    """Weighted GEMMs in the graph and, among them, those an INT8 engine layer implements."""
    gemm_nodes = set(costs.loc[costs["gemm"].astype(bool), "node"])
    node_class = dict(zip(classes["node"], classes["layer_class"], strict=True))
    int8_nodes: set[str] = set()
    for rec in raw.to_dict("records"):
        if "int8" in (rec["precision_in"], rec["precision_out"]):
            int8_nodes.update(n for n in str(rec["onnx_nodes"]).split(";") if n in gemm_nodes)
    counts = {"gemms_total": float(len(gemm_nodes))}
    for cls in ("attention", "ffn"):
        counts[f"gemms_int8_{cls}"] = float(sum(node_class.get(n) == cls for n in int8_nodes))
    counts["gemms_int8_other"] = float(len(int8_nodes)) - counts["gemms_int8_attention"] - counts["gemms_int8_ffn"]
    return counts


# --------------------------------------------------------------------------- public entry


def _default_model(profile: Path) -> str:
    name = profile.name
    for suffix in (".json", ".profile", ".engine", ".plan", ".onnx", ".trt"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name) or "model"


def _infer_precision(precisions: Sequence[str]) -> str:
    if "int8" in precisions:
        return "int8"  # which INT8 plan it was cannot be told from the engine; --precision says it
    return "fp16" if "fp16" in precisions else ("fp32" if precisions else "unknown")


def ingest_trtexec(
    profile: Path,
    layers: Path | None = None,
    onnx: Path | None = None,
    times: Path | None = None,
    model: str | None = None,
    precision: str | None = None,
) -> IngestResult:
    """Read trtexec's ``--exportProfile`` (and optionally ``--exportLayerInfo``, ``--exportTimes``
    and the ONNX the engine was built from) into a raw per-layer frame and attributed layers."""
    if precision is not None and precision not in results.PRECISIONS:
        raise OrinprofError(f"unknown precision {precision!r}", "choose one of: " + ", ".join(results.PRECISIONS))
    prof = parse.read_profile(Path(profile))
    info = parse.read_layer_info(Path(layers)) if layers is not None else None
    trace = parse.read_times(Path(times)) if times is not None else None
    node_order = onnx_node_order(Path(onnx)) if onnx is not None else None
    notes: list[str] = []
    if info is None:
        notes.append("no --layers: ONNX nodes come from engine layer names only, no precisions")
    elif not info.detailed:
        notes.append("layer info is names-only: rebuild with --profilingVerbosity=detailed for Metadata and precisions")

    raw = build_raw_profile(prof, info, node_order)
    classes = flops = costs = None
    if onnx is not None:
        classes, flops, costs = _classes_and_flops(Path(onnx))
    else:
        notes.append("no --onnx: layers cannot be classed as attention/FFN")
    attributed, how = attribute(raw, classes, flops)

    fused = raw["op_type"].eq("Myelin") | raw["layer"].str.startswith("{ForeignNode[")
    precisions = tuple(sorted({p for p in raw["precision_out"] if p}))
    gemms: dict[str, float] = {}
    if classes is not None and costs is not None and "gemm" in costs.columns and info is not None and info.detailed:
        gemms = _gemm_counts(raw, classes, costs)
    sources = {"profile": str(profile)}
    for key, value in (("layers", layers), ("onnx", onnx), ("times", times)):
        if value is not None:
            sources[key] = str(value)
    return IngestResult(
        model=model or _default_model(Path(profile)),
        precision=precision or _infer_precision(precisions),
        raw=raw,
        layers=attributed,
        latencies_ms=trace["compute_ms"].to_numpy(dtype=float) if trace is not None else None,
        calls=prof.count,
        fused_mha=bool(raw["fused_mha"].any()),
        myelin_regions=int(fused.sum()),
        precisions=precisions,
        attribution=how,
        classes_available=classes is not None,
        gemm_counts=gemms,
        sources=sources,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- summaries and writing


def class_summary(layers: pd.DataFrame) -> pd.DataFrame:
    """Per class: summed median time, share of the layer sum, and layer count."""
    df = layers.assign(median_ms=pd.to_numeric(layers["median_ms"], errors="coerce"))
    out = df.groupby("layer_class", sort=False).agg(time_ms=("median_ms", "sum"), layers=("layer", "size"))
    total = float(out["time_ms"].sum())
    out["share"] = out["time_ms"] / total if total > 0 else math.nan
    return out.sort_values("time_ms", ascending=False).reset_index()


def _class_ms(layers: pd.DataFrame, classes_available: bool) -> dict[str, float]:
    per = class_summary(layers).set_index("layer_class")["time_ms"]
    total = float(per.sum())

    def get(name: str) -> float:
        return float(per.get(name, 0.0)) if classes_available else math.nan

    unattributed = float(per.get("fused-unattributed", 0.0))
    named = {c: get(c) for c in ("attention", "ffn", "norm", "embedding")}
    other = total - sum(v for v in named.values() if not math.isnan(v)) if classes_available else math.nan
    return {
        **{f"{c}_ms": v for c, v in named.items()},
        "other_ms": other,
        "unattributed_ms": unattributed,
        "attention_share": named["attention"] / total if total > 0 else math.nan,
        "ffn_share": named["ffn"] / total if total > 0 else math.nan,
        "layer_sum_ms": total,
    }


def write_ingest_run(
    result: IngestResult,
    results_dir: Path,
    batch: int | None = None,
    seq_len: int | None = None,
    device: str | None = None,
    command: str | None = None,
) -> tuple[Path, list[str]]:
    """Write ``layers.csv`` (+ ``latencies.csv`` and ``summary.csv`` when possible) and ``run.json``
    into a new run directory.  Returns the directory and one line per table not written, with why."""
    if batch is None or seq_len is None:
        raise OrinprofError(
            "--batch and --seq-len are required: results are keyed by shape",
            "give the batch size and sequence length the engine was built for",
        )
    run_id = results.new_run_id(result.model, "trtexec")
    keys = {
        "run_id": run_id,
        "model": result.model,
        "backend": "trtexec",
        "precision": result.precision,
        "batch": batch,
        "seq_len": seq_len,
    }
    layers = result.layers.assign(**keys)
    layers = results.check(layers, "layers")  # before anything is written
    skipped: list[str] = []
    frames: list[tuple[pd.DataFrame, str]] = [(layers, "layers")]
    if result.latencies_ms is None:
        skipped.append("summary.csv: no --times file, so no end-to-end latencies")
    else:
        lat = pd.DataFrame(
            {**keys, "iteration": np.arange(len(result.latencies_ms)), "latency_ms": result.latencies_ms}
        )
        frames.append((results.check(lat, "latencies"), "latencies"))
        if not result.classes_available or not result.gemm_counts:
            skipped.append(
                "summary.csv: needs attention/FFN classes and GEMM counts (pass --onnx with detailed --layers)"
            )
        else:
            frames.append((results.check(_summary_row(result, keys, device), "summary"), "summary"))
    run_dir = results.create_run_dir(Path(results_dir), run_id)
    for df, table in frames:
        results.write_table(df, run_dir, table)
    info = results.RunInfo.create(
        run_id,
        command or "orinprof ingest trtexec",
        {
            "sources": dict(result.sources),
            "profiled_iterations": result.calls,
            "attribution": result.attribution,
            "e2e_metric": "trtexec --exportTimes computeMs (GPU compute time, CUDA events)",
            "notes": list(result.notes),
            "skipped": skipped,
        },
        fingerprint={
            "fused_mha": result.fused_mha,
            "myelin_regions": result.myelin_regions,
            "precisions": list(result.precisions),
        },
        host={"device": device or "unknown"},  # the device trtexec ran on, not this machine
    )
    results.write_run_info(info, run_dir)
    return run_dir, skipped


def _summary_row(result: IngestResult, keys: Mapping[str, Any], device: str | None) -> pd.DataFrame:
    assert result.latencies_ms is not None
    st = latency_stats(result.latencies_ms)
    cls = _class_ms(result.layers, result.classes_available)
    name = device or "unknown"
    kind = "jetson" if re.search(r"orin|xavier|jetson|tegra", name, re.I) else "gpu"
    flags = []
    if st.cv > 0.01:
        flags.append("cv_over_1pct")
    if result.myelin_regions:
        flags.append(f"myelin_regions={result.myelin_regions}")
    row = results.summary_row(
        keys,
        [result.latencies_ms],  # one round: the trtexec run
        device=name,
        device_kind=kind,
        class_totals=cls,
        gemm_counts={k: int(v) for k, v in result.gemm_counts.items()},  # whole counts held as floats
        trust_flags=flags,
    )
    # one round has no interval over rounds; ingest has always given the CI over its iterations
    row["e2e_median_ci_low_ms"] = st.median_ci_low_ms
    row["e2e_median_ci_high_ms"] = st.median_ci_high_ms
    return pd.DataFrame([row])
