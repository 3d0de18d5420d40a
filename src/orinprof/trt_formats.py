"""Readers for the JSON files trtexec (and TREx) write, and engine-layer → ONNX-node mapping.

Pure: no device library, no files written.  This is the only module that knows trtexec's JSON
layouts, so recorded outputs can be analysed on any machine.  Formats (see
``reference/trt_profiling_anchors.md`` §2, written by ``samples/common/sampleReporting.cpp``):

* ``--exportProfile``: array ``[{"count": N}, {"name", "timeMs", "averageMs", ["medianMs",]
  "percentage"}, ...]``; ``medianMs`` exists from TensorRT 8.4; names are written unescaped.
* ``--exportLayerInfo``: ``{"Layers": [...], "Bindings": [...]}`` (or a bare array); the layers
  are names only (``layer_names_only``) or dicts (``detailed``).
* ``--exportTimes``: array of per-iteration dicts ``startEnqMs … computeMs … latencyMs``.
* TREx ``*.profile.metadata.json`` / ``*.build.metadata.json``: summaries of trtexec logs.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from orinprof.backends.base import RAW_PROFILE_COLUMNS
from orinprof.errors import OrinprofError
from orinprof.graph import node_names

log = logging.getLogger(__name__)

PROFILE_COLUMNS = ("position", "name", "total_ms", "average_ms", "median_ms", "percentage", "status")
LAYER_INFO_COLUMNS = (
    "position",
    "name",
    "layer_type",
    "precision_in",
    "precision_out",
    "tactic",
    "metadata",
    "stream_id",
)
TIMES_COLUMNS = (
    "iteration",
    "latency_ms",
    "compute_ms",
    "h2d_ms",
    "d2h_ms",
    "enqueue_ms",
    "start_compute_ms",
)

_PROFILE_KEYS = ("name", "timeMs", "averageMs", "percentage")
_TIMES_KEYS = ("startComputeMs", "endComputeMs", "computeMs", "latencyMs")

#: Mapping statuses returned by :func:`match_onnx_nodes`.
MAPPING_STATUSES = ("metadata", "name", "range", "reformat", "aux", "fused-unattributed", "unmatched")


# --------------------------------------------------------------------------- file loading


def _load_json(path: Path, what: str, hint: str) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise OrinprofError(f"{path}: cannot read the trtexec {what} file ({err.strerror})", hint) from err
    if not text.strip():
        raise OrinprofError(f"{path}: not a trtexec {what} file (the file is empty)", hint)
    try:
        # strict=False: trtexec writes names (and Metadata separators \x1e/\x1f) without escaping
        return json.loads(text, strict=False)
    except json.JSONDecodeError as err:
        if what == "--exportProfile":
            records = _salvage_profile(text)
            if records is not None:
                log.warning(
                    "%s: invalid JSON (unescaped layer names?); read %d records by pattern",
                    path,
                    len(records),
                )
                return records
        raise OrinprofError(
            f"{path}: not a trtexec {what} file (invalid JSON at line {err.lineno}: {err.msg})", hint
        ) from err


_NUM = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|-?inf)"
_RECORD = re.compile(
    r'\{\s*"name"\s*:\s*"(?P<name>.*?)"\s*,\s*"timeMs"\s*:\s*'
    + _NUM.replace("(", "(?P<t>", 1)
    + r'\s*,\s*"averageMs"\s*:\s*'
    + _NUM.replace("(", "(?P<a>", 1)
    + r'\s*(?:,\s*"medianMs"\s*:\s*'
    + _NUM.replace("(", "(?P<m>", 1)
    + r"\s*)?"
    + r',\s*"percentage"\s*:\s*'
    + _NUM.replace("(", "(?P<p>", 1)
    + r"\s*\}\s*(?=,|\])"
)
_COUNT = re.compile(r'^\s*\[\s*\{\s*"count"\s*:\s*(\d+)\s*\}')


def _salvage_profile(text: str) -> list[dict[str, Any]] | None:
    """trtexec streams layer names without JSON escaping, so a name holding ``"`` or ``\\`` makes
    the file invalid JSON.  The record layout is fixed, so read it by pattern instead."""
    if not text.lstrip().startswith("[") or '"timeMs"' not in text:
        return None
    out: list[dict[str, Any]] = []
    count = _COUNT.match(text)
    if count:
        out.append({"count": int(count.group(1))})
    for m in _RECORD.finditer(text):
        rec: dict[str, Any] = {
            "name": m.group("name"),
            "timeMs": float(m.group("t")),
            "averageMs": float(m.group("a")),
            "percentage": float(m.group("p")),
        }
        if m.group("m") is not None:
            rec["medianMs"] = float(m.group("m"))
        out.append(rec)
    return out if len(out) > (1 if count else 0) else None


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(list(map(str, value))[:5])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(value, list):
        if not value:
            return "an empty array"
        first = value[0]
        if isinstance(first, dict):
            return f"an array whose first element has keys {', '.join(list(map(str, first))[:6])}"
        return f"an array of {type(first).__name__}"
    return f"a JSON {type(value).__name__}"


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------- --exportProfile


@dataclass(frozen=True)
class LayerProfile:
    """A parsed ``--exportProfile`` file.  ``records`` has :data:`PROFILE_COLUMNS`; ``total_ms`` is
    the sum over ``count`` iterations, ``average_ms``/``median_ms`` are per iteration (``median_ms``
    is NaN in pre-8.4 files, which did not write it)."""

    source: str
    count: int | None  # profiled iterations; None when the {"count": N} header is absent
    has_median: bool
    records: pd.DataFrame


_PROFILE_HINT = "pass the JSON written by trtexec --exportProfile=FILE"


def parse_profile(data: Any, source: str = "<profile>") -> LayerProfile:
    if not isinstance(data, list):
        raise OrinprofError(f"{source}: not a trtexec --exportProfile file (found {_describe(data)})", _PROFILE_HINT)
    count: int | None = None
    items = list(data)
    if items and isinstance(items[0], dict) and set(items[0]) == {"count"}:
        count = int(items[0]["count"])
        items = items[1:]
    rows = []
    for i, rec in enumerate(items):
        if not isinstance(rec, dict) or any(k not in rec for k in _PROFILE_KEYS):
            found = _describe([rec])
            raise OrinprofError(
                f"{source}: not a trtexec --exportProfile file (record {i + 1} is {found}; expected keys "
                + ", ".join(_PROFILE_KEYS)
                + ")",
                _PROFILE_HINT,
            )
        average = _float(rec["averageMs"])
        median = _float(rec.get("medianMs"))
        rows.append(
            {
                "position": i,
                "name": str(rec["name"]),
                "total_ms": _float(rec["timeMs"]),
                "average_ms": average,
                "median_ms": median,
                "percentage": _float(rec["percentage"]),
                # a layer TensorRT reports at 0 ms (NoOp, folded reshape) is kept and marked
                "status": "zero_time" if average == 0 and not (median > 0) else "ok",
            }
        )
    if not rows:
        raise OrinprofError(f"{source}: not a trtexec --exportProfile file (it holds no layer records)", _PROFILE_HINT)
    records = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
    has_median = bool(records["median_ms"].notna().any())
    return LayerProfile(source=source, count=count, has_median=has_median, records=records)


def read_profile(path: Path) -> LayerProfile:
    """Read a ``--exportProfile`` JSON (4-key pre-8.4 or 5-key records, with or without ``count``)."""
    data = _load_json(path, "--exportProfile", _PROFILE_HINT)
    return parse_profile(data, str(path))


# --------------------------------------------------------------------------- --exportLayerInfo

_PRECISION_TOKENS = (
    # order matters: the first token found wins
    (re.compile(r"\bbf(?:loat)?16\b", re.I), "bf16"),
    (re.compile(r"\b(?:fp|float)8\b|\be4m3\b|\be5m2\b", re.I), "fp8"),
    (re.compile(r"\b(?:fp16|half)\b", re.I), "fp16"),
    (re.compile(r"\b(?:fp32|float|float32)\b", re.I), "fp32"),
    (re.compile(r"\buint8\b", re.I), "uint8"),
    (re.compile(r"\bint8\b", re.I), "int8"),
    (re.compile(r"\bint4\b", re.I), "int4"),
    (re.compile(r"\bint32\b", re.I), "int32"),
    (re.compile(r"\bint64\b", re.I), "int64"),
    (re.compile(r"\bbool\b", re.I), "bool"),
)


def format_precision(text: str | None) -> str:
    """Precision from an inspector ``Format/Datatype`` string: ``"Int8"`` → ``int8``, ``"Half"`` →
    ``fp16``, ``"Channel major FP16 format where channel % 8 == 0"`` → ``fp16``, ``"Row major linear
    FP32"`` → ``fp32``.  Empty string when the string names no known type."""
    if not text:
        return ""
    for pattern, name in _PRECISION_TOKENS:
        if pattern.search(text):
            return name
    return ""


@dataclass(frozen=True)
class EngineLayers:
    """A parsed ``--exportLayerInfo`` file; ``layers`` has :data:`LAYER_INFO_COLUMNS` (type, tactic,
    precisions and metadata are empty strings in a names-only file)."""

    source: str
    detailed: bool
    layers: pd.DataFrame
    bindings: tuple[str, ...] = field(default_factory=tuple)


_LAYERS_HINT = "pass the JSON written by trtexec --exportLayerInfo=FILE (build with --profilingVerbosity=detailed)"


def _io_precision(entries: Any) -> str:
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict):
                found = format_precision(str(entry.get("Format/Datatype", "")))
                if found:
                    return found
    return ""


def parse_layer_info(data: Any, source: str = "<layers>") -> EngineLayers:
    bindings: tuple[str, ...] = ()
    if isinstance(data, dict) and "Layers" in data:
        layers = data["Layers"]
        raw_bindings = data.get("Bindings", [])
        if isinstance(raw_bindings, list):
            bindings = tuple(str(b) for b in raw_bindings)
    elif isinstance(data, list):
        layers = data
    else:
        raise OrinprofError(
            f"{source}: not a trtexec --exportLayerInfo file (found {_describe(data)}; expected "
            '{"Layers": [...]} or an array of layers)',
            _LAYERS_HINT,
        )
    if not isinstance(layers, list) or not layers:
        raise OrinprofError(f"{source}: not a trtexec --exportLayerInfo file (no layers in it)", _LAYERS_HINT)
    detailed = isinstance(layers[0], dict)
    rows = []
    for i, layer in enumerate(layers):
        if detailed and isinstance(layer, dict) and "Name" in layer:
            stream = layer.get("StreamId")
            rows.append(
                {
                    "position": i,
                    "name": str(layer["Name"]),
                    "layer_type": str(layer.get("LayerType", "")),
                    "precision_in": _io_precision(layer.get("Inputs")),
                    "precision_out": _io_precision(layer.get("Outputs")),
                    "tactic": str(layer.get("TacticName", "")),
                    "metadata": str(layer.get("Metadata") or ""),
                    "stream_id": int(stream) if isinstance(stream, int) else pd.NA,
                }
            )
        elif not detailed and isinstance(layer, str):
            rows.append(
                {
                    "position": i,
                    "name": layer,
                    "layer_type": "",
                    "precision_in": "",
                    "precision_out": "",
                    "tactic": "",
                    "metadata": "",
                    "stream_id": pd.NA,
                }
            )
        else:
            raise OrinprofError(
                f"{source}: not a trtexec --exportLayerInfo file (layer {i + 1} is {_describe([layer])}; "
                "expected a layer name or an object with a Name)",
                _LAYERS_HINT,
            )
    df = pd.DataFrame(rows, columns=list(LAYER_INFO_COLUMNS))
    df["stream_id"] = df["stream_id"].astype("Int64")
    return EngineLayers(source=source, detailed=detailed, layers=df, bindings=bindings)


def read_layer_info(path: Path) -> EngineLayers:
    """Read a ``--exportLayerInfo`` JSON: object- or array-rooted, names-only or detailed."""
    data = _load_json(path, "--exportLayerInfo", _LAYERS_HINT)
    return parse_layer_info(data, str(path))


# --------------------------------------------------------------------------- --exportTimes

_TIMES_HINT = "pass the JSON written by trtexec --exportTimes=FILE"


def parse_times(data: Any, source: str = "<times>") -> pd.DataFrame:
    """Per-iteration trace → :data:`TIMES_COLUMNS` (``compute_ms`` = GPU compute time from CUDA
    events around enqueue, ``latency_ms`` = H2D + compute + D2H)."""
    if not isinstance(data, list) or not data:
        raise OrinprofError(f"{source}: not a trtexec --exportTimes file (found {_describe(data)})", _TIMES_HINT)
    rows = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict) or any(k not in rec for k in _TIMES_KEYS):
            raise OrinprofError(
                f"{source}: not a trtexec --exportTimes file (record {i + 1} is {_describe([rec])}; expected "
                "keys " + ", ".join(_TIMES_KEYS) + ")",
                _TIMES_HINT,
            )
        rows.append(
            {
                "iteration": i,
                "latency_ms": _float(rec["latencyMs"]),
                "compute_ms": _float(rec["computeMs"]),
                "h2d_ms": _float(rec.get("h2dMs")),
                "d2h_ms": _float(rec.get("d2hMs")),
                "enqueue_ms": _float(rec.get("endEnqMs")) - _float(rec.get("startEnqMs")),
                "start_compute_ms": _float(rec["startComputeMs"]),
            }
        )
    return pd.DataFrame(rows, columns=list(TIMES_COLUMNS))


def read_times(path: Path) -> pd.DataFrame:
    data = _load_json(path, "--exportTimes", _TIMES_HINT)
    return parse_times(data, str(path))


# --------------------------------------------------------------------------- TREx metadata


@dataclass(frozen=True)
class MetricSummary:
    min_ms: float
    max_ms: float
    mean_ms: float
    median_ms: float
    percentiles: Mapping[int, float]  # {99: …} before TRT 8.5, {90: …, 95: …, 99: …} after


@dataclass(frozen=True)
class TrexProfileMetadata:
    """TREx's summary of a trtexec profiling log (``*.profile.metadata.json``)."""

    source: str
    metrics: Mapping[str, MetricSummary]  # "GPU Compute Time", "Latency", "Enqueue Time", …
    scalars: Mapping[str, float]  # "Throughput", "Total Host Walltime", …
    inference_options: Mapping[str, Any]
    device: Mapping[str, Any]


@dataclass(frozen=True)
class TrexBuildMetadata:
    source: str
    model_options: Mapping[str, Any]
    build_options: Mapping[str, Any]

    @property
    def precision(self) -> str:
        return str(self.build_options.get("Precision", ""))


_TREX_HINT = "pass a *.profile.metadata.json / *.build.metadata.json written by TREx's process_engine.py"


def _summary(values: list[Any], name: str, source: str) -> MetricSummary:
    # [min, max, mean, median, p99] (trtexec < 8.5) or [min, max, mean, median, p90, p95, p99]
    if len(values) == 5:
        pcts = {99: _float(values[4])}
    elif len(values) == 7:
        pcts = {90: _float(values[4]), 95: _float(values[5]), 99: _float(values[6])}
    else:
        raise OrinprofError(
            f"{source}: {name!r} has {len(values)} values (expected 5 or 7: min, max, mean, median, percentiles)",
            _TREX_HINT,
        )
    return MetricSummary(_float(values[0]), _float(values[1]), _float(values[2]), _float(values[3]), pcts)


def read_trex_profile_metadata(path: Path) -> TrexProfileMetadata:
    data = _load_json(path, "TREx profile metadata", _TREX_HINT)
    if not isinstance(data, dict) or not isinstance(data.get("performance_summary"), dict):
        raise OrinprofError(
            f"{path}: not a TREx profile metadata file (found {_describe(data)}; expected performance_summary)",
            _TREX_HINT,
        )
    metrics: dict[str, MetricSummary] = {}
    scalars: dict[str, float] = {}
    for key, value in data["performance_summary"].items():
        if isinstance(value, list):
            metrics[key] = _summary(value, key, str(path))
        else:
            scalars[key] = _float(value)
    return TrexProfileMetadata(
        source=str(path),
        metrics=metrics,
        scalars=scalars,
        inference_options=dict(data.get("inference_options") or {}),
        device=dict(data.get("device_information") or {}),
    )


def read_trex_build_metadata(path: Path) -> TrexBuildMetadata:
    data = _load_json(path, "TREx build metadata", _TREX_HINT)
    if not isinstance(data, dict) or "build_options" not in data:
        raise OrinprofError(
            f"{path}: not a TREx build metadata file (found {_describe(data)}; expected build_options)",
            _TREX_HINT,
        )
    return TrexBuildMetadata(str(path), dict(data.get("model_options") or {}), dict(data["build_options"] or {}))


# --------------------------------------------------------------------------- names and metadata

_MYELIN_SUFFIX = re.compile(r"_myl\d+_\d+$")
_METADATA_SEPARATORS = re.compile(r"[\x1e\x1f]|(?<=\])(?=\[ONNX Layer:)")
_ONNX_ENTRY = "[ONNX Layer: "


def split_metadata(metadata: str | None) -> list[str]:
    """ONNX node names in an inspector ``Metadata`` string.

    Entries look like ``[ONNX Layer: <name> | property …]``; fused layers join them with ``\\x1e``
    (TRT 8.6 Cask/PointWise fusions) or ``\\x1f`` (TRT 10 Myelin kernels), or put them side by side.
    The ONNX parser truncates Metadata at 4000 characters: a final entry cut before its name ends
    is dropped rather than reported under a wrong name."""
    if not metadata:
        return []
    names: list[str] = []
    for chunk in _METADATA_SEPARATORS.split(metadata):
        chunk = chunk.strip()
        if not chunk.startswith(_ONNX_ENTRY):
            continue
        body = chunk[len(_ONNX_ENTRY) :]
        if " | " in body:
            body = body.split(" | ", 1)[0]
        elif body.endswith("]"):
            body = body[:-1]
        else:
            log.debug("dropping truncated Metadata entry %r", chunk[:80])
            continue
        body = body.strip()
        if body and body not in names:
            names.append(body)
    return names


def normalize_name(name: str) -> str:
    """A key under which engine names and ONNX names compare equal: Myelin kernel names replace
    ``.`` with ``_`` (``layers.0`` → ``layers_0``) and TRT 10 appends ``_myl<G>_<k>``."""
    return _MYELIN_SUFFIX.sub("", name.strip()).replace(".", "_")


_REFORMAT = re.compile(r"^Reformatting CopyNode for (?:Input|Output) Tensor \d+ to ")
_FOREIGN = re.compile(r"^\{ForeignNode\[(?P<body>.*)\]\}$", re.S)
_UNNAMED = re.compile(r"^\(Unnamed Layer\* \d+\) \[[^\]]*\](?:_output)?$")
_MYELIN_AUX = re.compile(r"(?:^|_)(?:shape_call|signal|wait)(?:_|\^|$)|\^signal\^|\^wait\^")
_RESHAPE_WRAP = re.compile(r"^(?:reshape_(?:after|before)_)(?P<inner>.+)$")
#: engine-name separators: "A + B" (vertical fusion), "A || B" (horizontal fusion), TRT 10 Myelin "A+/B"
_FUSION_SPLIT = re.compile(r" \+ | \|\| |\+(?=/)")
_MHA = re.compile(r"_mha|mha_v2|fmha", re.I)


def _split_top_level(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and text.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def name_candidates(layer_name: str) -> list[str]:
    """ONNX node names an engine layer name mentions: splits ``A + B`` and ``A || B`` fusions,
    unwraps ``PWN(…)`` point-wise fusions and ``reshape_after_X``, drops TensorRT's own
    ``(Unnamed Layer* N) [Type]`` layers, strips the Myelin ``_myl`` suffix."""
    out: list[str] = []

    def visit(part: str) -> None:
        part = part.strip()
        if not part:
            return
        if part.startswith("PWN(") and part.endswith(")"):
            for inner in _split_top_level(part[4:-1], ", "):
                visit(inner)
            return
        pieces = [
            sub
            for inner in _split_top_level(part, " + ")
            for piece in _split_top_level(inner, " || ")
            for sub in re.split(r"\+(?=/)", piece)
        ]
        if len(pieces) > 1:
            for piece in pieces:
                visit(piece)
            return
        if _UNNAMED.match(part):
            return
        wrapped = _RESHAPE_WRAP.match(part)
        if wrapped:
            visit(wrapped.group("inner"))
            return
        part = _MYELIN_SUFFIX.sub("", part)
        if part and part not in out:
            out.append(part)

    visit(layer_name)
    return out


def is_myelin_kernel(layer_name: str) -> bool:
    """TRT 9/10 Myelin kernel-level layers whose name carries no ONNX node (``__myl_…``,
    ``_gemm_mha_v2…``, ``__mye…``)."""
    return layer_name.startswith(("__myl_", "__mye", "_gemm_mha")) or bool(
        _MHA.search(layer_name) and _MYELIN_SUFFIX.search(layer_name)
    )


def _resolve(candidates: Sequence[str], index: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    for cand in candidates:
        node = index.get(normalize_name(cand))
        if node is None and re.search(r"_output_\d+$", cand):
            # TensorRT names constant layers after their output tensor (`/Constant_1_output_0`)
            node = index.get(normalize_name(re.sub(r"_output_\d+$", "", cand)))
        if node is not None and node not in found:
            found.append(node)
    return found


def onnx_index(onnx_node_names: Sequence[str]) -> dict[str, str]:
    """normalised name → ONNX node name (first wins on a normalisation clash)."""
    index: dict[str, str] = {}
    for node in onnx_node_names:
        index.setdefault(normalize_name(node), node)
    return index


def match_onnx_nodes(
    layer_name: str,
    metadata_nodes: Sequence[str],
    onnx_node_names: Sequence[str] | None,
    *,
    _index: Mapping[str, str] | None = None,
) -> tuple[list[str], str]:
    """ONNX nodes an engine layer implements, and how they were found (:data:`MAPPING_STATUSES`).

    Metadata wins when present.  Otherwise the engine name is parsed: ``A + B`` fusions, a
    ``{ForeignNode[first...last]}`` range (expanded over the ONNX node order — topological in a
    valid ONNX — when ``onnx_node_names`` is given, else ``fused-unattributed``), ``Reformatting
    CopyNode …`` (``reformat``), Myelin ``shape_call``/``signal``/``wait`` bookkeeping (``aux``).
    With ``onnx_node_names`` every name is checked against the graph (``layers.0`` ≡ ``layers_0``)."""
    index = _index if _index is not None else (onnx_index(onnx_node_names) if onnx_node_names is not None else None)
    name = layer_name.strip()
    if metadata_nodes:
        if index is None:
            return list(metadata_nodes), "metadata"
        found = _resolve(metadata_nodes, index)
        if found:
            return found, "metadata"
        # Metadata names absent from the given graph: a different ONNX than the engine's
        return list(metadata_nodes), "unmatched"
    if _REFORMAT.match(name):
        return [], "reformat"
    foreign = _FOREIGN.match(name)
    if foreign:
        if index is None or onnx_node_names is None:
            return [], "fused-unattributed"
        first, sep, last = foreign.group("body").partition("...")
        order = {node: i for i, node in enumerate(onnx_node_names)}
        starts = [order[n] for n in _resolve(name_candidates(first), index)]
        ends = [order[n] for n in _resolve(name_candidates(last if sep else first), index)]
        if not starts or not ends or min(starts) > max(ends):
            return [], "fused-unattributed"
        return list(onnx_node_names[min(starts) : max(ends) + 1]), "range"
    if _MYELIN_AUX.search(name) and (name.startswith(("dummy_", "exit^", "__mye")) or _MYELIN_SUFFIX.search(name)):
        return [], "aux"
    if is_myelin_kernel(name):
        # a generated kernel (softmax, layernorm, fused MHA): only Metadata can say which nodes
        return [], "fused-unattributed"
    candidates = name_candidates(name)
    if index is None:
        return (candidates, "name") if candidates else ([], "unmatched")
    found = _resolve(candidates, index)
    return (found, "name") if found else ([], "unmatched")


def is_fused_mha(layer_row: Mapping[str, Any]) -> bool:
    """Whether a layer is a fused multi-head-attention kernel: its tactic or name contains
    ``_mha``, ``mha_v2`` or ``fmha`` (``_gemm_mha_v2_myl0_17``, tactic ``_gemm_mha_v2_0x…``).
    NVIDIA's advice for checking MHA fusion is to look for ``_mha`` kernel names (#3243)."""
    for key in ("tactic", "TacticName", "layer", "name", "Name"):
        value = layer_row.get(key)
        if isinstance(value, str) and value and _MHA.search(value):
            return True
    return False


# --------------------------------------------------------------------------- engine facts


@dataclass(frozen=True)
class EngineSummary:
    """What a layer-information file alone says about an engine (``orinprof inspect``): enough to
    answer "did my INT8 attention fuse?" without profiling."""

    source: str
    detailed: bool
    layer_count: int
    #: precision (input side) → layer count; empty for a names-only file
    precision_counts: Mapping[str, int]
    fused_mha_layers: tuple[str, ...]
    fused_mha_precisions: tuple[str, ...]
    #: opaque ``{ForeignNode[…]}`` Myelin layers (TensorRT 8.x): they may hide a fused MHA
    myelin_regions: tuple[str, ...]
    reformat_layers: int

    @property
    def fused_mha(self) -> bool | None:
        """True when a fused-MHA kernel is visible; None ("unknown") when none is but a Myelin
        region could hide one (TensorRT 8.6 does not show kernels inside it; review M1)."""
        if self.fused_mha_layers:
            return True
        return None if self.myelin_regions else False

    def details(self) -> dict[str, Any]:
        return {
            "layer_count": self.layer_count,
            "precision_counts": dict(self.precision_counts),
            "fused_mha": self.fused_mha,
            "fused_mha_layers": list(self.fused_mha_layers),
            "fused_mha_precisions": list(self.fused_mha_precisions),
            "myelin_regions": len(self.myelin_regions),
            "reformat_layers": self.reformat_layers,
            "layer_info": "detailed" if self.detailed else "names-only",
        }


def engine_summary(info: EngineLayers) -> EngineSummary:
    counts: dict[str, int] = {}
    mha: list[str] = []
    mha_precisions: list[str] = []
    myelin: list[str] = []
    reformats = 0
    for row in info.layers.to_dict("records"):
        name = str(row["name"])
        precision = str(row["precision_in"] or row["precision_out"] or "")
        if info.detailed:
            counts[precision or "unknown"] = counts.get(precision or "unknown", 0) + 1
        if _FOREIGN.match(name.strip()):
            myelin.append(name)
        if _REFORMAT.match(name.strip()) or str(row["layer_type"]) in ("Reformat", "MyelinReformat"):
            reformats += 1
        if is_fused_mha(row):
            mha.append(name)
            if precision and precision not in mha_precisions:
                mha_precisions.append(precision)
    return EngineSummary(
        source=info.source,
        detailed=info.detailed,
        layer_count=len(info.layers),
        precision_counts=counts,
        fused_mha_layers=tuple(mha),
        fused_mha_precisions=tuple(mha_precisions),
        myelin_regions=tuple(myelin),
        reformat_layers=reformats,
    )


#: Columns of the raw frame beyond :data:`RAW_PROFILE_COLUMNS`.
RAW_EXTRA_COLUMNS = (
    "calls",
    "status",
    "precision_out",
    "fused_mha",
    "precision_in",
    "mapping",
    "tactic",
    "average_ms",
    "median_ms",
    "percentage",
)


# --------------------------------------------------------------------------- raw frame
# An engine's profile joined with its layer information, each layer traced to its ONNX nodes: the
# one place both the TensorRT backends and ``orinprof ingest trtexec`` build it.


def _by_name(profile: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """Join on (name, occurrence), so repeated names pair up in order."""
    left = profile.assign(_k=profile.groupby("name").cumcount())
    right = info.drop(columns=["position"]).assign(_k=info.groupby("name").cumcount())
    return left.merge(right, on=["name", "_k"], how="left").drop(columns=["_k"])


def _join(profile: LayerProfile, info: EngineLayers | None) -> tuple[pd.DataFrame, str]:
    recs = profile.records
    if info is None:
        joined = recs.copy()
        for col in ("layer_type", "precision_in", "precision_out", "tactic", "metadata"):
            joined[col] = ""
        return joined, "none"
    lay = info.layers
    if len(lay) == len(recs):
        mismatched = int((lay["name"].to_numpy() != recs["name"].to_numpy()).sum())
        if mismatched:
            log.warning(
                "profile and layer info have %d layers each but %d names differ; joining by position (as TREx does)",
                len(recs),
                mismatched,
            )
        joined = pd.concat([recs.reset_index(drop=True), lay.drop(columns=["position", "name"])], axis=1)
        return joined, "position"
    log.warning(
        "profile has %d layers, layer info %d: joining by name (partial engine information)",
        len(recs),
        len(lay),
    )
    joined = _by_name(recs, lay)
    for col in ("layer_type", "precision_in", "precision_out", "tactic", "metadata"):
        joined[col] = joined[col].fillna("")
    return joined, "name"


def _op_type(layer_type: str, name: str, mapping: str) -> str:
    if layer_type:
        return layer_type
    # names-only layer info, or no layer info: say what the name shows
    if mapping == "reformat":
        return "Reformat"
    if name.startswith("{ForeignNode["):
        return "Myelin"
    if mapping == "aux":
        return "MyelinAux"
    return "unknown"


def build_raw_profile(
    profile: LayerProfile,
    info: EngineLayers | None = None,
    onnx_node_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per engine layer: :data:`RAW_PROFILE_COLUMNS` (``iteration`` 0, ``time_ms`` = median
    per inference when the file has it, else the mean) plus :data:`RAW_EXTRA_COLUMNS`."""
    joined, how = _join(profile, info)
    index = onnx_index(onnx_node_names) if onnx_node_names is not None else None
    rows = []
    for rec in joined.to_dict("records"):
        name = str(rec["name"])
        meta_nodes = split_metadata(str(rec.get("metadata") or ""))
        nodes, mapping = match_onnx_nodes(name, meta_nodes, onnx_node_names, _index=index)
        median = float(rec["median_ms"])
        time_ms = median if not math.isnan(median) else float(rec["average_ms"])
        status = rec["status"]
        if status in ("ok", "zero_time") and mapping in ("fused-unattributed", "reformat"):
            # attribute_layers honours these statuses: opaque Myelin regions and reformats are
            # never given to attention, FFN or other, even when they took no time (review m13)
            status = mapping
        row = {
            "iteration": 0,
            "layer": name,
            "op_type": _op_type(str(rec.get("layer_type") or ""), name, mapping),
            "onnx_nodes": ";".join(nodes),
            "time_ms": time_ms,
            "calls": profile.count if profile.count is not None else pd.NA,
            "status": status,
            "precision_out": str(rec.get("precision_out") or ""),
            "precision_in": str(rec.get("precision_in") or ""),
            "mapping": mapping,
            "tactic": str(rec.get("tactic") or ""),
            "average_ms": float(rec["average_ms"]),
            "median_ms": median,
            "percentage": float(rec["percentage"]),
        }
        row["fused_mha"] = is_fused_mha(row)
        rows.append(row)
    raw = pd.DataFrame(rows, columns=[*RAW_PROFILE_COLUMNS, *RAW_EXTRA_COLUMNS])
    raw["calls"] = raw["calls"].astype("Int64")
    raw.attrs["join"] = how
    if onnx_node_names is not None and len(raw):
        unmatched = float((raw["mapping"] == "unmatched").mean())
        if unmatched > 0.5:
            log.warning(
                "%.0f%% of engine layers match no node of the given ONNX: is it the engine's source?",
                100 * unmatched,
            )
    return raw


# --------------------------------------------------------------------------- ONNX side


def onnx_node_order(onnx_path: Path) -> list[str]:
    """Node names in graph order (topological in a valid ONNX), named as the rest of orinprof names
    them (:func:`orinprof.graph.node_names`)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError, OSError, … for a bad file
        raise OrinprofError(
            f"{onnx_path}: not a readable ONNX model ({err})", "pass the ONNX the engine was built from"
        ) from err
    return node_names(model.graph)  # the one naming rule: class maps join on these names
