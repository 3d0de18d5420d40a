"""Cards 6 and 10 (pruning): the full model and pruned variants, timed interleaved in rounds.

:func:`run_pruning_experiment` times the full model and every variant (unstructured zeroed weights,
fewer heads, smaller FFN, fewer layers) in ``rounds`` rounds; in each round every model runs one
timing block, in a freshly shuffled (seeded, recorded) order, so drift and a neighbour's load hit
every model alike (issue 10 item 2; the published card-10 verdict came from two single runs 12 s
apart).  :func:`pruning_table` compares each variant with its reference *per round* (the paired
log ratio of the two blocks' medians), and takes the median and a bootstrap CI over rounds, never
over iterations.

Stages below ``measure`` may not import backends, so the caller (the CLI) injects the builder and
the timing function (one call = one timing block of one model), like ``quantize``'s calibration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from orinprof import results, stats
from orinprof.errors import OrinprofError
from orinprof.results import Column, Table

if TYPE_CHECKING:
    from orinprof.models import ModelSpec

log = logging.getLogger(__name__)

PRUNE_KINDS = ("unstructured", "heads", "ffn", "heads+ffn", "layers", "layers-vs-heads")
#: rounds of the experiment unless the caller asks otherwise (claims.toml's min_rounds: 5)
DEFAULT_ROUNDS = 5
#: seed of the per-round shuffles (recorded in run.json with the orders it gave)
SCHEDULE_SEED = 20240917
#: the reference model's name in schedules and evidence lists
FULL = "full"

PRUNING_TABLE = results.register(
    Table(
        name="pruning",
        file="pruning.csv",
        description=(
            "Cards 6 and 10: each pruned variant against the full model (same backend, shape, device), "
            "timed interleaved in rounds.  `layers-vs-heads` rows compare a fewer-layers variant against a "
            "fewer-heads variant with the same parameter reduction (positive = removing layers is faster).  "
            "Reductions are `1 - exp(median over rounds of log(variant/reference))`, each round pairing "
            "the two models' block medians; the CI is a bootstrap over rounds."
        ),
        keys=("run_id", "variant", "seq_len"),
        columns=(
            Column("run_id", "str", "the pruning run (its run.json lists each round's order and evidence runs)"),
            Column("baseline_run_id", "str", "run the reference was timed in (the same run: same rounds)"),
            Column("model", "str", "model the variants were cut from"),
            Column("backend", "str", "backend"),
            Column("device", "str", "device"),
            Column("device_kind", "str", "`cpu`, `gpu` or `jetson`"),
            Column("batch", "int", "batch size"),
            Column("seq_len", "int", "sequence length"),
            Column("variant", "str", "variant name"),
            Column("variant_kind", "str", "one of " + ", ".join(f"`{k}`" for k in PRUNE_KINDS)),
            Column("reference", "str", "what the variant is compared with: `full`, or the heads variant"),
            Column("params_removed_fraction", "float", "weights removed or zeroed ÷ prunable weights", "fraction"),
            Column("rounds", "int", "rounds with both models timed (paired)"),
            Column("e2e_ratio", "float", "variant ÷ reference latency, median over rounds", "ratio"),
            Column("e2e_reduction", "float", "1 − e2e_ratio", "fraction"),
            Column("e2e_reduction_ci_low", "float", "95% CI over rounds, lower", "fraction", True),
            Column("e2e_reduction_ci_high", "float", "95% CI over rounds, upper", "fraction", True),
            Column("flags", "str", "`;`-separated trust flags of the evidence runs; empty when none", nullable=True),
            Column("status", "str", "`ok`, or why a number is missing (`one_round_no_ci`)"),
        ),
    )
)


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
    """One timing block of one model (what the injected timing function returns: a spine run)."""

    run_id: str
    latencies_ms: np.ndarray
    model: str
    backend: str
    device: str
    device_kind: str
    batch: int
    seq_len: int
    trust_flags: str = ""

    @property
    def median_ms(self) -> float:
        finite = self.latencies_ms[np.isfinite(self.latencies_ms)]
        return float(np.median(finite)) if finite.size else float("nan")


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


@dataclass(frozen=True)
class PairedRounds:
    """Variant vs reference over rounds: the median paired ratio and its CI as a reduction."""

    ratio: float
    reduction: float
    ci_low: float
    ci_high: float
    rounds: int


def paired_rounds(reference: Sequence[TimedRun], variant: Sequence[TimedRun]) -> PairedRounds:
    """Per round ``log(variant_r / reference_r)`` of the two blocks' medians (timed in the same
    round, so drift cancels); the median over rounds and its percentile-bootstrap CI over rounds
    (:func:`orinprof.stats.bootstrap_ci`), back on the ratio scale.  One round: no CI."""
    if len(reference) != len(variant):
        raise OrinprofError(f"paired rounds differ in length: {len(reference)} vs {len(variant)}")
    logs = np.array([np.log(v.median_ms / r.median_ms) for r, v in zip(reference, variant, strict=True)])
    logs = logs[np.isfinite(logs)]
    if logs.size == 0:
        return PairedRounds(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    point = float(np.median(logs))
    lo = hi = float("nan")
    if logs.size >= 2:
        lo, hi = stats.bootstrap_ci(logs)
    ratio = float(np.exp(point))
    return PairedRounds(ratio, 1.0 - ratio, 1.0 - float(np.exp(hi)), 1.0 - float(np.exp(lo)), int(logs.size))


def pruning_table(
    baseline: Sequence[TimedRun],
    variants: Sequence[tuple[PruneVariant, Sequence[TimedRun]]],
    run_id: str = "",
    match_tolerance: float = 0.02,
) -> pd.DataFrame:
    """``pruning`` rows: each variant vs the full model, plus layers-vs-heads at matched reduction.
    ``baseline`` and each variant hold one :class:`TimedRun` per round, in round order."""
    first = baseline[0]

    def row(runs: Sequence[TimedRun], ref: Sequence[TimedRun], name: str, kind: str, ref_name: str, removed: float):  # type: ignore[no-untyped-def]
        paired = paired_rounds(ref, runs)
        flags = dict.fromkeys(f for r in (*ref, *runs) for f in r.trust_flags.split(";") if f)
        return {
            "run_id": run_id,
            "baseline_run_id": run_id,
            "model": first.model,
            "backend": first.backend,
            "device": first.device,
            "device_kind": first.device_kind,
            "batch": first.batch,
            "seq_len": first.seq_len,
            "variant": name,
            "variant_kind": kind,
            "reference": ref_name,
            "params_removed_fraction": removed,
            "rounds": paired.rounds,
            "e2e_ratio": paired.ratio,
            "e2e_reduction": paired.reduction,
            "e2e_reduction_ci_low": paired.ci_low,
            "e2e_reduction_ci_high": paired.ci_high,
            "flags": ";".join(flags) or None,
            "status": "ok" if np.isfinite(paired.ci_low) else "one_round_no_ci",
        }

    for variant, runs in variants:
        for run in runs:
            if (run.backend, run.device, run.seq_len, run.batch) != (
                first.backend,
                first.device,
                first.seq_len,
                first.batch,
            ):
                raise OrinprofError(
                    f"variant {variant.name!r} was timed on {run.backend}/{run.device} seq {run.seq_len}, "
                    f"the full model on {first.backend}/{first.device} seq {first.seq_len}",
                    "time all variants with the same backend, device and shape",
                )
    rows = [row(runs, baseline, v.name, v.kind, FULL, v.params_removed_fraction) for v, runs in variants]
    layer_runs = [(v, r) for v, r in variants if v.kind == "layers"]
    head_runs = [(v, r) for v, r in variants if v.kind == "heads"]
    for lv, lr in layer_runs:
        for hv, hr in head_runs:
            if abs(lv.params_removed_fraction - hv.params_removed_fraction) <= match_tolerance:
                name = f"{lv.name} vs {hv.name}"
                rows.append(row(lr, hr, name, "layers-vs-heads", hv.name, lv.params_removed_fraction))
    if not rows:
        raise OrinprofError("no pruned variants were timed", "pass at least one variant")
    return results.check(pd.DataFrame(rows), "pruning")


@dataclass(frozen=True)
class PruningRounds:
    """What :func:`run_pruning_experiment` timed: per model name, one block per round, and each
    round's (shuffled) order."""

    blocks: Mapping[str, list[TimedRun]]
    orders: list[list[str]]


def run_pruning_experiment(
    variants: Sequence[PruneVariant],
    build: Callable[[PruneVariant | None], object],
    time_model: Callable[[object], TimedRun],
    progress: Callable[[int, int], None] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = SCHEDULE_SEED,
) -> PruningRounds:
    """Build the full model (``build(None)``) and each variant once, then time them in ``rounds``
    rounds: every round times every model once (one ``time_model`` call = one block), in an order
    shuffled afresh each round.  The same timing function times every model."""
    if rounds < 1:
        raise OrinprofError(f"rounds must be at least 1 (got {rounds})", "use --rounds 5 or more")
    models = {FULL: build(None), **{v.name: build(v) for v in variants}}
    if len(models) != len(variants) + 1:
        raise OrinprofError("two pruning variants share a name", "give every variant its own name")
    rng = np.random.default_rng(seed)
    blocks: dict[str, list[TimedRun]] = {name: [] for name in models}
    orders: list[list[str]] = []
    total, done = rounds * len(models), 0
    for _ in range(rounds):
        order = [list(models)[i] for i in rng.permutation(len(models))]
        orders.append(order)
        for name in order:
            blocks[name].append(time_model(models[name]))
            done += 1
            if progress:
                progress(done, total)
    return PruningRounds(blocks, orders)


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
    """The timing block of one plan in a run directory written by the spine's profile function."""
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
    trust = r.get("trust_flags")
    return TimedRun(
        run_id=str(r["run_id"]),
        latencies_ms=mine["latency_ms"].to_numpy(dtype=float),
        model=str(r["model"]),
        backend=str(r["backend"]),
        device=str(r["device"]),
        device_kind=str(r["device_kind"]),
        batch=int(r["batch"]),
        seq_len=int(r["seq_len"]),
        trust_flags=trust if isinstance(trust, str) else "",
    )


def _fingerprint(run_dir: Path) -> dict[str, Any]:
    """The fingerprint an evidence run recorded (every block ran on the same machine)."""
    try:
        info = json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    fp = info.get("fingerprint", {})
    return dict(fp) if isinstance(fp, dict) else {}


def pruning(
    model: str,
    profile_run: Callable[[str], Path],
    results_dir: Path = Path("results"),
    command: str = "",
    progress: Callable[[int, int], None] | None = None,
    rounds: int = DEFAULT_ROUNDS,
) -> tuple[Path, pd.DataFrame]:
    """Cards 6 and 10 end to end (``orinprof cards pruning``): time the full model and each of
    :func:`pruning_variants` interleaved in ``rounds`` rounds with ``profile_run`` (model name → run
    directory of one timing block; the caller's spine profile, the same for every model), then
    write the ``pruning`` table to a new run directory whose ``run.json`` lists each round's order
    and evidence runs.  Returns (run directory, table)."""

    from orinprof import models

    spec = models.get(model)
    variants = pruning_variants(spec)
    evidence: dict[str, list[str]] = {}

    def time_block(variant_model: object) -> TimedRun:
        name = str(getattr(variant_model, "name", variant_model))
        run_dir = profile_run(name)
        evidence.setdefault(name, []).append(str(run_dir))
        return timed_run_from(run_dir)

    timed = run_pruning_experiment(variants, lambda v: variant_spec(spec, v), time_block, progress, rounds=rounds)
    names = {FULL: spec.name, **{v.name: variant_spec(spec, v).name for v in variants}}
    first = timed.blocks[FULL][0]
    run_dir = results.new_run_dir(Path(results_dir), f"{spec.name}-pruning", first.backend)
    run_id = run_dir.name
    table = pruning_table(timed.blocks[FULL], [(v, timed.blocks[v.name]) for v in variants], run_id)
    info = results.RunInfo.create(
        run_id,
        command,
        {
            "experiment": "pruning (cards 6, 10), interleaved rounds",
            "model": spec.name,
            "rounds": rounds,
            "schedule_seed": SCHEDULE_SEED,
            "orders": timed.orders,
            "variants": [asdict(v) for v in variants],
            "model_names": names,
            "evidence_runs": evidence,  # model name → its run directories, in round order
        },
        fingerprint=_fingerprint(Path(next(iter(evidence.values()))[0])),
    )
    info = replace(info, status="complete")
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
