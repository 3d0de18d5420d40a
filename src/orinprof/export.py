"""Export: preset → ONNX (TorchScript exporter, static shapes, cached), user ONNX → validated
:class:`ExportedModel`, and realistic input synthesis for both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from orinprof import models
from orinprof.errors import MissingDependency, OrinprofError
from orinprof.graph import atomic_save_onnx, load_onnx
from orinprof.models import InputSpec, ModelSpec

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # TensorRT 8.6 (JetPack 6.0) parses up to opset 17; 8.5 needs ≤ 16

_ONNX_TO_NUMPY = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


@dataclass(frozen=True)
class ExportedModel:
    """An FP32 ONNX file ready for classification and quantization."""

    path: Path
    model: str  # preset name or file stem
    batch: int
    seq_len: int
    opset: int
    inputs: tuple[InputSpec, ...]
    sha256: str
    preset: ModelSpec | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def layer_map_path(self) -> Path:
        return self.path.with_suffix(".layers.csv")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_preset(
    spec: ModelSpec | str,
    batch: int = 1,
    seq_len: int | None = None,
    opset: int = DEFAULT_OPSET,
    models_dir: Path = Path("models"),
    seed: int = 0,
    force: bool = False,
) -> ExportedModel:
    """Export a preset with the TorchScript exporter (``dynamo=False``), cached by preset/shape/opset."""
    spec = models.get(spec) if isinstance(spec, str) else spec
    seq_len = seq_len or spec.default_seq
    inputs = tuple(spec.inputs(batch, seq_len))
    if not 9 <= opset <= 21:
        raise OrinprofError(f"opset {opset} is outside 9..21", "TensorRT 8.x parsers need ≤ 17; use --opset 17")
    safe = spec.name.replace("[", "_").replace("]", "").replace(",", "_").replace("=", "")
    path = Path(models_dir) / safe / f"b{batch}_s{seq_len}_op{opset}_seed{seed}.onnx"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not force:
        meta = json.loads(meta_path.read_text())
        if meta.get("sha256") == sha256_file(path):
            log.debug("using cached export %s", path)
            return ExportedModel(path, spec.name, batch, seq_len, opset, inputs, meta["sha256"], spec, meta)
        log.warning("cached export %s does not match its checksum; exporting again", path)

    try:
        import torch
    except ImportError as err:
        raise MissingDependency("torch", "torch", "to export presets; or pass --onnx PATH") from err
    module = models.build(spec, seed=seed)
    feed = synthesize(inputs, np.random.default_rng(seed))
    args = tuple(torch.from_numpy(feed[i.name]) for i in inputs)
    log.info("exporting %s (batch %d, seq %d, opset %d) to %s", spec.name, batch, seq_len, opset, path)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(tmp_path),
                input_names=[i.name for i in inputs],
                output_names=["output"],
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        proto = onnx.load(str(tmp_path))
    proto.doc_string = f"orinprof preset {spec.name} (seed {seed}); {spec.source}"
    atomic_save_onnx(proto, path)
    meta = {
        "preset": spec.name,
        "batch": batch,
        "seq_len": seq_len,
        "opset": opset,
        "seed": seed,
        "exporter": "torch.onnx.export(dynamo=False)",
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "pretrained": spec.pretrained,
        "sha256": sha256_file(path),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return ExportedModel(path, spec.name, batch, seq_len, opset, inputs, meta["sha256"], spec, meta)


# ----------------------------------------------------------------------------- user ONNX


def _embedding_bounds(model: onnx.ModelProto) -> dict[str, int]:
    """Input name → row count of the embedding table it indexes (Gather on an initializer)."""
    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    graph_inputs = {i.name for i in model.graph.input}
    bounds: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[0] not in inits:
            continue
        rows = int(inits[node.input[0]].dims[0])
        src = node.input[1]
        # follow casts/reshapes back to a graph input
        for _ in range(4):
            if src in graph_inputs:
                bounds[src] = min(bounds.get(src, rows), rows)
                break
            prod = producers.get(src)
            if prod is None or prod.op_type not in (
                "Cast",
                "Reshape",
                "Unsqueeze",
                "Squeeze",
                "Identity",
                "Flatten",
            ):
                break
            src = prod.input[0]
    return bounds


def onnx_inputs(model: onnx.ModelProto, batch: int | None = None, seq_len: int | None = None) -> list[InputSpec]:
    """Input specs synthesised from the graph: shapes, dtypes, token bounds, mask/type kinds."""
    inits = {i.name for i in model.graph.initializer}
    bounds = _embedding_bounds(model)
    specs = []
    for value in model.graph.input:
        if value.name in inits:
            continue
        ttype = value.type.tensor_type
        dtype = _ONNX_TO_NUMPY.get(ttype.elem_type)
        if dtype is None:
            raise OrinprofError(f"input {value.name!r} has an unsupported type {ttype.elem_type}")
        shape: list[int] = []
        for axis, dim in enumerate(ttype.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
            elif axis == 0 and batch:
                shape.append(batch)
            elif axis == 1 and seq_len:
                shape.append(seq_len)
            else:
                raise OrinprofError(
                    f"input {value.name!r} has a dynamic dimension {axis} ({dim.dim_param or '?'})",
                    "give static sizes with --batch and --seq, or export with static shapes",
                )
        lname = value.name.lower()
        if dtype.startswith("float"):
            kind, high = "pixels" if len(shape) == 4 else "float", 0
        elif "mask" in lname:
            kind, high = "mask", 2
        elif "type" in lname or "segment" in lname:
            kind, high = "token_types", bounds.get(value.name, 2)
        else:
            kind, high = "token_ids", bounds.get(value.name, 2)
        specs.append(InputSpec(value.name, kind, dtype, tuple(shape), high=high))
    return specs


def from_onnx(path: Path, batch: int | None = None, seq_len: int | None = None) -> ExportedModel:
    model = load_onnx(path)
    inputs = onnx_inputs(model, batch, seq_len)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    batch_v = inputs[0].shape[0] if inputs and inputs[0].shape else 1
    # 0 for a model without a sequence axis (pixels only)
    seq_v = seq_len or next((i.shape[1] for i in inputs if i.kind != "pixels" and len(i.shape) > 1), 0)
    path = Path(path)
    return ExportedModel(path, path.stem, batch_v, seq_v, opset, tuple(inputs), sha256_file(path), None, {})


# ----------------------------------------------------------------------------- inputs


def synthesize(inputs: tuple[InputSpec, ...] | list[InputSpec], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Realistic values: token ids inside the vocabulary, all-ones masks, zero token types,
    unit-variance pixels."""
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        if spec.kind == "mask":
            arr = np.ones(spec.shape, dtype=spec.dtype)
        elif spec.kind == "token_types":
            arr = np.zeros(spec.shape, dtype=spec.dtype)
        elif spec.kind == "token_ids":
            # skip the first ids (special tokens in most vocabularies) when the table is large
            low = 1000 if spec.high > 2000 else 0
            arr = rng.integers(low, max(spec.high, low + 1), size=spec.shape).astype(spec.dtype)
        else:
            arr = rng.standard_normal(spec.shape).astype(spec.dtype)
        feed[spec.name] = arr
    return feed


def load_npz(path: Path, inputs: tuple[InputSpec, ...] | list[InputSpec]) -> list[dict[str, np.ndarray]]:
    """User inputs from an ``.npz``: each key an input name; a leading extra axis = several samples."""
    path = Path(path)
    if not path.exists():
        raise OrinprofError(f"{path} does not exist", "check the path given to --inputs")
    try:
        data = dict(np.load(path, allow_pickle=False))
    except Exception as err:
        raise OrinprofError(f"{path} is not a readable .npz file ({type(err).__name__})", "save with np.savez") from err
    names = [i.name for i in inputs]
    missing = [n for n in names if n not in data]
    if missing:
        raise OrinprofError(f"{path} lacks inputs {', '.join(missing)}", f"the model's inputs are: {', '.join(names)}")
    samples: list[dict[str, np.ndarray]] = []
    counts = set()
    for spec in inputs:
        arr = data[spec.name]
        if tuple(arr.shape) == spec.shape:
            counts.add(1)
        elif arr.ndim == len(spec.shape) + 1 and tuple(arr.shape[1:]) == spec.shape:
            counts.add(arr.shape[0])
        else:
            raise OrinprofError(
                f"{path}: input {spec.name!r} has shape {tuple(arr.shape)}, the model wants {spec.shape}",
                "store one sample per key, or stack samples on a new leading axis",
            )
    if len(counts) != 1:
        raise OrinprofError(f"{path}: inputs hold different numbers of samples {sorted(counts)}")
    n = counts.pop()
    for k in range(n):
        sample = {}
        for spec in inputs:
            arr = data[spec.name]
            arr = arr if tuple(arr.shape) == spec.shape else arr[k]
            sample[spec.name] = arr.astype(spec.dtype, copy=False)
        samples.append(sample)
    return samples
