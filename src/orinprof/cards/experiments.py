"""Experiments behind cards 3, 6 and 10, and the tables their evidence lands in.

* Card 3 (activation outliers): :func:`activation_outlier_stats` turns captured hidden states into
  the ``outliers`` table: per layer, the mean |x| of the top dimensions over the median dimension's.
* Cards 6 and 10 (pruning): :func:`run_pruning_experiment` times a full model and pruned variants
  (unstructured zeroed weights, fewer heads, smaller FFN, fewer layers) through a timing callable the
  caller passes in (the spine's profile function), and :func:`pruning_table` turns the latencies
  into the ``pruning`` table with bootstrap CIs from :mod:`orinprof.stats`.

This module runs no model itself: stages below ``measure`` may not import backends, so the caller
(the CLI) injects the builder and the timing function, like ``quantize``'s calibration callable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from orinprof import results, stats
from orinprof.errors import OrinprofError
from orinprof.results import Column, Table

if TYPE_CHECKING:
    from orinprof.models import ModelSpec

log = logging.getLogger(__name__)

PRUNE_KINDS = ("unstructured", "heads", "ffn", "heads+ffn", "layers", "layers-vs-heads")

PRUNING_TABLE = results.register(
    Table(
        name="pruning",
        file="pruning.csv",
        description=(
            "Cards 6 and 10: each pruned variant against the full model (same backend, shape, device). "
            "`layers-vs-heads` rows compare a fewer-layers variant against a fewer-heads variant with the "
            "same parameter reduction (positive = removing layers is faster)."
        ),
        keys=("run_id", "variant", "seq_len"),
        columns=(
            Column("run_id", "str", "run of the variant"),
            Column("baseline_run_id", "str", "run it is compared with (full model, or the heads variant)"),
            Column("model", "str", "model the variants were cut from"),
            Column("backend", "str", "backend"),
            Column("device", "str", "device"),
            Column("device_kind", "str", "`cpu`, `gpu` or `jetson`"),
            Column("batch", "int", "batch size"),
            Column("seq_len", "int", "sequence length"),
            Column("variant", "str", "variant name"),
            Column("variant_kind", "str", "one of " + ", ".join(f"`{k}`" for k in PRUNE_KINDS)),
            Column("params_removed_fraction", "float", "weights removed or zeroed ÷ prunable weights", "fraction"),
            Column("e2e_reduction", "float", "1 − median(variant) ÷ median(baseline)", "fraction"),
            Column("e2e_reduction_ci_low", "float", "bootstrap 95% CI, lower", "fraction", True),
            Column("e2e_reduction_ci_high", "float", "bootstrap 95% CI, upper", "fraction", True),
            Column("status", "str", "`ok` or why a number is missing"),
        ),
    )
)

OUTLIERS_TABLE = results.register(
    Table(
        name="outliers",
        file="outliers.csv",
        description=(
            "Card 3: per hidden-state layer, how much larger the top dimensions' mean |activation| is than "
            "the median dimension's (over all non-padding tokens of the probe texts)."
        ),
        keys=("model", "layer"),
        columns=(
            Column("run_id", "str", "run (or capture) id"),
            Column("model", "str", "model"),
            Column("backend", "str", "what computed the hidden states (e.g. `torch`)"),
            Column("device", "str", "device"),
            Column("seq_len", "int", "longest probe sequence (tokens)"),
            Column("layer", "int", "hidden-state index: 0 = embeddings output, i = after block i"),
            Column("hidden_size", "int", "dimensions"),
            Column("tokens", "int", "non-padding tokens the statistics are over"),
            Column("top_k", "int", "how many top dimensions (`ceil(top_fraction × hidden_size)`)"),
            Column("top_dims", "str", "indices of the top dimensions, `;`-separated, largest first"),
            Column("top_mean_abs", "float", "mean over the top dimensions of their mean |x|"),
            Column("median_mean_abs", "float", "median over dimensions of the mean |x|"),
            Column("top_to_median_ratio", "float", "top_mean_abs ÷ median_mean_abs", "ratio"),
            Column("top_to_median_ratio_ci_low", "float", "bootstrap 95% CI over tokens, lower", "ratio", True),
            Column("top_to_median_ratio_ci_high", "float", "bootstrap 95% CI over tokens, upper", "ratio", True),
        ),
    )
)


# --------------------------------------------------------------------------- card 3: outliers


def _top_ratio(mean_abs: np.ndarray, top_k: int) -> np.ndarray:
    """Ratio of the top-k dimensions' mean to the median dimension, along the last axis."""
    top = -np.sort(-mean_abs, axis=-1)[..., :top_k].mean(axis=-1)
    return np.asarray(top / np.median(mean_abs, axis=-1))


def activation_outlier_stats(
    hidden_states: Sequence[np.ndarray],
    model: str,
    top_fraction: float = 0.01,
    run_id: str = "",
    backend: str = "torch",
    device: str = "",
    seq_len: int | None = None,
    resamples: int = 500,
) -> pd.DataFrame:
    """``outliers`` table from per-layer hidden states, each ``(tokens, hidden)`` without padding.

    The CI resamples tokens (the statistic is recomputed from resampled per-token |x| rows) with
    :func:`orinprof.stats.bootstrap_ci`, which resamples the token indices we hand it.
    """
    if not 0 < top_fraction < 0.5:
        raise OrinprofError(f"top_fraction {top_fraction} out of range", "use a small fraction such as 0.01")
    rows = []
    for layer, h in enumerate(hidden_states):
        absx = np.abs(np.asarray(h, dtype=np.float64))
        if absx.ndim != 2 or absx.shape[0] < 2:
            raise OrinprofError(f"hidden state {layer} has shape {absx.shape}", "pass (tokens, hidden) arrays")
        n_tokens, hidden = absx.shape
        top_k = max(1, math.ceil(top_fraction * hidden))
        mean_abs = absx.mean(axis=0)
        order = np.argsort(-mean_abs)
        median = float(np.median(mean_abs))
        top_mean = float(mean_abs[order[:top_k]].mean())

        def statistic(index_samples: np.ndarray, absx: np.ndarray = absx, top_k: int = top_k) -> np.ndarray:
            # token counts per resample → per-dimension means as one matrix product
            idx = index_samples.astype(np.int64)
            counts = np.zeros((idx.shape[0], absx.shape[0]))
            np.add.at(counts, (np.arange(idx.shape[0])[:, None], idx), 1.0)
            return _top_ratio(counts @ absx / idx.shape[1], top_k)

        lo, hi = stats.bootstrap_ci(np.arange(n_tokens, dtype=float), statistic, resamples=resamples)
        rows.append(
            {
                "run_id": run_id,
                "model": model,
                "backend": backend,
                "device": device,
                "seq_len": seq_len if seq_len is not None else n_tokens,
                "layer": layer,
                "hidden_size": hidden,
                "tokens": n_tokens,
                "top_k": top_k,
                "top_dims": ";".join(str(int(i)) for i in order[:top_k]),
                "top_mean_abs": top_mean,
                "median_mean_abs": median,
                "top_to_median_ratio": top_mean / median if median > 0 else float("nan"),
                "top_to_median_ratio_ci_low": lo,
                "top_to_median_ratio_ci_high": hi,
            }
        )
    if not rows:
        raise OrinprofError("no hidden states given", "capture at least one layer")
    return results.check(pd.DataFrame(rows), "outliers")


# --------------------------------------------------------------------------- cards 6, 10: pruning


@dataclass(frozen=True)
class PruneVariant:
    """A pruned copy of the model.  ``fraction`` is what is removed: zeroed weights (unstructured),
    heads, FFN width or layers, as a fraction of that component."""

    name: str
    kind: str
    fraction: float
    params_removed_fraction: float

    def __post_init__(self) -> None:
        if self.kind not in PRUNE_KINDS[:-1]:
            raise OrinprofError(f"unknown pruning kind {self.kind!r}", "choose one of: " + ", ".join(PRUNE_KINDS[:-1]))


@dataclass(frozen=True)
class TimedRun:
    """What the injected timing function returns for one model (a run of the spine)."""

    run_id: str
    latencies_ms: np.ndarray
    model: str
    backend: str
    device: str
    device_kind: str
    batch: int
    seq_len: int


def encoder_params(hidden: int, ffn: int, layers: int, heads_kept: float = 1.0, ffn_kept: float = 1.0) -> int:
    """Weights of the prunable encoder GEMMs (Q, K, V, O and the two FFN matrices), biases excluded."""
    attention = 4 * hidden * round(hidden * heads_kept)
    feed_forward = 2 * hidden * round(ffn * ffn_kept)
    return layers * (attention + feed_forward)


def matched_head_fraction(layers_removed: int, num_layers: int, hidden: int, ffn: int) -> float:
    """Fraction of heads to remove in every layer so that as many GEMM weights go as by removing
    ``layers_removed`` whole layers (card 10 compares the two at equal parameter reduction)."""
    per_layer = encoder_params(hidden, ffn, 1)
    attention_per_layer = 4 * hidden * hidden
    fraction = layers_removed * per_layer / (num_layers * attention_per_layer)
    if fraction >= 1.0:
        raise OrinprofError(
            f"removing {layers_removed} of {num_layers} layers removes more weights than all heads hold",
            "remove fewer layers",
        )
    return fraction


def pruning_table(
    baseline: TimedRun, variants: Sequence[tuple[PruneVariant, TimedRun]], match_tolerance: float = 0.02
) -> pd.DataFrame:
    """``pruning`` rows: each variant vs the full model, plus layers-vs-heads at matched reduction."""

    def row(run: TimedRun, ref: TimedRun, name: str, kind: str, removed: float) -> dict[str, object]:
        point, lo, hi = stats.reduction_ci(ref.latencies_ms, run.latencies_ms)
        return {
            "run_id": run.run_id,
            "baseline_run_id": ref.run_id,
            "model": baseline.model,
            "backend": run.backend,
            "device": run.device,
            "device_kind": run.device_kind,
            "batch": run.batch,
            "seq_len": run.seq_len,
            "variant": name,
            "variant_kind": kind,
            "params_removed_fraction": removed,
            "e2e_reduction": point,
            "e2e_reduction_ci_low": lo,
            "e2e_reduction_ci_high": hi,
            "status": "ok" if np.isfinite(lo) else "too_few_iterations_for_ci",
        }

    for variant, run in variants:
        if (run.backend, run.device, run.seq_len, run.batch) != (
            baseline.backend,
            baseline.device,
            baseline.seq_len,
            baseline.batch,
        ):
            raise OrinprofError(
                f"variant {variant.name!r} was timed on {run.backend}/{run.device} seq {run.seq_len}, "
                f"the full model on {baseline.backend}/{baseline.device} seq {baseline.seq_len}",
                "time all variants with the same backend, device and shape",
            )
    rows = [row(run, baseline, v.name, v.kind, v.params_removed_fraction) for v, run in variants]
    layer_runs = [(v, r) for v, r in variants if v.kind == "layers"]
    head_runs = [(v, r) for v, r in variants if v.kind == "heads"]
    for lv, lr in layer_runs:
        for hv, hr in head_runs:
            if abs(lv.params_removed_fraction - hv.params_removed_fraction) <= match_tolerance:
                rows.append(row(lr, hr, f"{lv.name} vs {hv.name}", "layers-vs-heads", lv.params_removed_fraction))
    if not rows:
        raise OrinprofError("no pruned variants were timed", "pass at least one variant")
    return results.check(pd.DataFrame(rows), "pruning")


def run_pruning_experiment(
    variants: Sequence[PruneVariant],
    build: Callable[[PruneVariant | None], object],
    time_model: Callable[[object], TimedRun],
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Build and time the full model (``build(None)``) and each variant through the caller's spine
    functions, then :func:`pruning_table`.  The same timing function times every variant."""
    total = len(variants) + 1
    baseline = time_model(build(None))
    if progress:
        progress(1, total)
    timed = []
    for i, variant in enumerate(variants, start=2):
        timed.append((variant, time_model(build(variant))))
        if progress:
            progress(i, total)
    return pruning_table(baseline, timed)


def default_variants(num_layers: int, num_heads: int, hidden: int, ffn: int) -> list[PruneVariant]:
    """Card 6: 50 % zeroed weights vs 50 % heads+FFN removed; card 10: one layer vs matched heads."""
    full = encoder_params(hidden, ffn, num_layers)
    head_fraction = matched_head_fraction(1, num_layers, hidden, ffn)
    heads_removed = round(head_fraction * num_heads)
    heads_kept = (num_heads - heads_removed) / num_heads
    return [
        PruneVariant("unstructured-50", "unstructured", 0.5, 0.5),
        PruneVariant(
            "heads+ffn-50",
            "heads+ffn",
            0.5,
            1 - encoder_params(hidden, ffn, num_layers, 0.5, 0.5) / full,
        ),
        PruneVariant("layers-minus-1", "layers", 1 / num_layers, 1 / num_layers),
        PruneVariant(
            f"heads-minus-{heads_removed}",
            "heads",
            heads_removed / num_heads,
            1 - encoder_params(hidden, ffn, num_layers, heads_kept) / full,
        ),
    ]


def _shape(spec: ModelSpec) -> tuple[int, int, int, int]:
    """(layers, heads, hidden, ffn) of a zoo preset."""
    c = spec.config
    return tuple(int(c[k]) for k in ("num_layers", "num_heads", "hidden_size", "intermediate_size"))  # type: ignore[return-value]


def pruning_variants(spec: ModelSpec) -> list[PruneVariant]:
    """:func:`default_variants` for a zoo preset's shape."""
    if spec.family != "bert":
        raise OrinprofError(
            f"pruning variants of {spec.name} ({spec.family}) are not supported",
            "use a BERT preset (only its attention takes a head_dim, so fewer heads really shrink the GEMMs)",
        )
    layers = _shape(spec)[0]
    try:
        return default_variants(*_shape(spec))
    except OrinprofError as err:  # one layer of a shallow model outweighs all its heads
        raise OrinprofError(
            f"{spec.name}: {err.message}", f"use a deeper model, e.g. {spec.name}[num_layers={2 * layers}]"
        ) from err


def variant_spec(spec: ModelSpec, variant: PruneVariant | None) -> ModelSpec:
    """The preset variant a pruning variant stands for (``None``: the full model).  Fewer heads keep
    the per-head width (``head_dim``), so Q/K/V and the output projection shrink with them."""
    from orinprof import models

    if variant is None:
        return spec
    layers, heads, hidden, ffn = _shape(spec)
    if variant.kind == "unstructured":
        return models.with_config(spec, prune_unstructured=variant.fraction)
    overrides: dict[str, int] = {}
    if variant.kind == "layers":
        overrides["num_layers"] = layers - round(variant.fraction * layers)
    if variant.kind in ("heads", "heads+ffn"):
        overrides.update(num_heads=heads - round(variant.fraction * heads), head_dim=hidden // heads)
    if variant.kind in ("ffn", "heads+ffn"):
        overrides["intermediate_size"] = ffn - round(variant.fraction * ffn)
    if min(overrides.values()) < 1:
        raise OrinprofError(f"variant {variant.name} removes all of {spec.name}'s {variant.kind}", "prune less")
    return models.with_config(spec, **overrides)


def timed_run_from(run_dir: Path, precision: str = "fp32") -> TimedRun:
    """The timing run of one plan in a run directory written by the spine's profile function."""
    summary = results.read_table(run_dir, "summary")
    rows = summary[summary["precision"].astype(str) == precision]
    if len(rows) != 1:
        raise OrinprofError(
            f"{run_dir} holds {len(rows)} {precision} summary rows, expected one",
            "profile one model at one sequence length",
        )
    r = rows.iloc[0]
    latencies = results.read_table(run_dir, "latencies")
    mine = latencies[(latencies["precision"].astype(str) == precision) & (latencies["seq_len"] == r["seq_len"])]
    return TimedRun(
        run_id=str(r["run_id"]),
        latencies_ms=mine["latency_ms"].to_numpy(dtype=float),
        model=str(r["model"]),
        backend=str(r["backend"]),
        device=str(r["device"]),
        device_kind=str(r["device_kind"]),
        batch=int(r["batch"]),
        seq_len=int(r["seq_len"]),
    )


def pruning(
    model: str,
    profile_run: Callable[[str], Path],
    results_dir: Path = Path("results"),
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, pd.DataFrame]:
    """Cards 6 and 10 end to end (``orinprof cards pruning``): profile the full model and each of
    :func:`pruning_variants` with ``profile_run`` (model name → run directory; the caller's spine
    profile, the same for every variant), then write the ``pruning`` table to a new run directory
    whose ``run.json`` lists the evidence runs.  Returns (run directory, table)."""
    import platform
    from datetime import datetime, timezone

    from orinprof import __version__, models

    spec = models.get(model)
    variants = pruning_variants(spec)
    evidence: dict[str, str] = {}

    def time_variant(variant_model: object) -> TimedRun:
        name = str(getattr(variant_model, "name", variant_model))
        run_dir = profile_run(name)
        evidence[name] = str(run_dir)
        return timed_run_from(run_dir)

    table = run_pruning_experiment(variants, lambda v: variant_spec(spec, v), time_variant, progress)
    run_id = results.new_run_id(f"{spec.name}-pruning", str(table["backend"].iloc[0]))
    run_dir = results.create_run_dir(Path(results_dir), run_id)
    info = results.RunInfo(
        run_id=run_id,
        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command,
        config={
            "experiment": "pruning (cards 6, 10)",
            "model": spec.name,
            "variants": [asdict(v) for v in variants],
            "evidence_runs": evidence,
        },
        versions={"python": platform.python_version(), "orinprof": __version__},
        host={"platform": platform.platform()},
    )
    results.write_run_info(info, run_dir)
    results.write_table(table, run_dir, "pruning")
    return run_dir, table


def zero_smallest_weights(onnx_in: Path, onnx_out: Path, fraction: float = 0.5) -> int:
    """Unstructured magnitude pruning on an ONNX file: zero the ``fraction`` smallest-magnitude
    entries of every 2-D MatMul/Gemm weight initializer.  Shapes stay the same (card 6's point).
    Returns how many weights were zeroed."""
    import onnx
    from onnx import numpy_helper

    from orinprof.models import zero_smallest_magnitude

    if not 0.0 < fraction < 1.0:
        raise OrinprofError(f"fraction {fraction} out of range", "use a value between 0 and 1")
    model = onnx.load(str(onnx_in))
    weight_names = {name for node in model.graph.node if node.op_type in ("MatMul", "Gemm") for name in node.input}
    zeroed = 0
    for init in model.graph.initializer:
        if init.name not in weight_names or len(init.dims) != 2:
            continue
        pruned, k = zero_smallest_magnitude(numpy_helper.to_array(init), fraction)
        if k:
            init.CopyFrom(numpy_helper.from_array(pruned, init.name))
            zeroed += k
    if zeroed == 0:
        raise OrinprofError(
            f"{onnx_in} has no 2-D MatMul/Gemm weight initializers", "export the model with weights inlined"
        )
    onnx.save(model, str(onnx_out))
    log.info("zeroed %d weights (%.0f%%) in %s", zeroed, 100 * fraction, onnx_out)
    return zeroed


def hidden_size_info(config: Mapping[str, int]) -> tuple[int, int, int, int]:
    """(layers, heads, hidden, ffn) from a Hugging Face style config dict."""
    try:
        return (
            int(config["num_hidden_layers"]),
            int(config["num_attention_heads"]),
            int(config["hidden_size"]),
            int(config["intermediate_size"]),
        )
    except KeyError as err:
        raise OrinprofError(f"model config lacks {err.args[0]!r}", "pass a BERT-style config") from err


#: Probe texts for card 3: varied registers, short enough to run in seconds on a CPU.
PROBE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "INT8 quantization maps each activation to one of 256 levels with a per-tensor scale.",
    "Jetson AGX Orin pairs an Ampere GPU with twelve Arm Cortex-A78AE cores.",
    "She booked a table for two at the small restaurant near the harbour.",
    "In 1969, Apollo 11 landed on the Moon and returned safely to Earth.",
    "def add(a, b): return a + b  # a tiny Python function",
    "Spaced repetition schedules each review just before you would forget the card.",
    "The committee postponed its decision until more data were available.",
    "Transformers attend to every token, so attention cost grows with sequence length squared.",
    "Rain is expected tomorrow afternoon, with clearing skies by the evening.",
    "Please restart the router and check whether the status light turns green.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
)


def capture_hidden_states(model: str = "minilm-l6", texts: Sequence[str] = PROBE_TEXTS) -> tuple[list[np.ndarray], int]:
    """Hidden states of a zoo BERT model (embeddings output + each block's output), padding removed.

    Returns ``(per-layer (tokens, hidden) arrays, longest sequence)``.  Torch runs here only to read
    activations, which no backend exposes; the tokenizer is the model package's own tokenizer.json."""
    from orinprof import models

    spec = models.get(model)
    if spec.family != "bert" or not spec.pretrained:
        raise OrinprofError(f"{model} is not a pretrained BERT preset", "card 3 needs real weights: use minilm-l6")
    try:
        import torch
        from tokenizers import Tokenizer
    except ImportError as err:
        raise OrinprofError(
            f"card 3 needs torch and tokenizers ({err.name} is missing)", "pip install 'orinprof[torch,hf]'"
        ) from err
    from orinprof.models.pretrained import model_dir

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; padding would dilute the statistics
    encodings = [tokenizer.encode(t) for t in texts]
    module = models.build(spec)
    captured: list[list[np.ndarray]] = []

    def keep(_module: object, _inputs: object, output: torch.Tensor) -> None:
        captured[-1].append(output.detach().float().numpy()[0])

    hooks = [module.embeddings.register_forward_hook(keep)]
    hooks += [layer.register_forward_hook(keep) for layer in module.encoder.layer]
    try:
        with torch.no_grad():
            for enc in encodings:  # one text at a time: no padding to strip
                captured.append([])
                ids = torch.tensor([enc.ids])
                module(ids, torch.ones_like(ids), torch.tensor([enc.type_ids]))
    finally:
        for h in hooks:
            h.remove()
    layers = [np.concatenate([per_text[i] for per_text in captured]) for i in range(len(captured[0]))]
    return layers, max(len(e.ids) for e in encodings)


def outlier_experiment(
    model: str = "minilm-l6", top_fraction: float = 0.01, texts: Sequence[str] = PROBE_TEXTS
) -> pd.DataFrame:
    """Card 3 end to end: capture ``model``'s hidden states on the probe texts → ``outliers`` table."""
    import platform

    hidden, longest = capture_hidden_states(model, texts)
    from orinprof.results import new_run_id

    return activation_outlier_stats(
        hidden,
        model=model,
        top_fraction=top_fraction,
        run_id=new_run_id(f"{model}-outliers", "torch"),
        backend="torch",
        device=platform.processor() or platform.machine(),
        seq_len=longest,
    )
