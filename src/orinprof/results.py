"""Table schemas, run directories and CSV I/O.

Every table that crosses a stage boundary is declared here once: its columns, their dtype, unit
and meaning.  Producers call :func:`check` before returning a table; ``docs/results-schema.md``
is generated from these declarations (``python -m orinprof.results > docs/results-schema.md``)
and a test fails when it is stale.

Missing values stay missing (NaN plus a ``status`` column); nothing is filled with 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orinprof import identity, stats
from orinprof.errors import OrinprofError
from orinprof.plans import PLAN_NAMES

log = logging.getLogger(__name__)

#: minor versions add columns (readers fill them in, see :attr:`Column.added`); a major version breaks
SCHEMA_VERSION = "1.1"

#: The layer classes every stage agrees on.
LAYER_CLASSES = ("attention", "ffn", "norm", "embedding", "other")
#: Extra attribution classes that only appear in ``layers`` (never in ``layer_classes``).
ATTRIBUTION_CLASSES = (*LAYER_CLASSES, "mixed", "unattributed", "fused-unattributed", "reformat")

#: plan names (owned by :mod:`orinprof.plans`)
PRECISIONS = PLAN_NAMES


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str", "int", "float", "bool"
    meaning: str
    unit: str = ""
    nullable: bool = False
    #: schema version that added the column; readers fill it with ``fill`` in older files
    added: str = ""
    fill: Any = None
    #: the column's name in older files (renamed on read)
    formerly: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    file: str
    description: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = ()
    #: columns that may be added by later stages (telemetry, engine facts) without breaking readers
    open_ended: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name: str, dtype: str, meaning: str, unit: str = "", nullable: bool = False) -> Column:
    return Column(name, dtype, meaning, unit, nullable)


def _new(name: str, dtype: str, meaning: str, unit: str = "", fill: Any = None, formerly: str = "") -> Column:
    """A column added in schema 1.1 (older run directories lack it; readers fill it in)."""
    return Column(name, dtype, meaning, unit, nullable=True, added="1.1", fill=fill, formerly=formerly)


_RUN_KEYS = (
    _c("run_id", "str", "run directory name: `<UTC date>T<time>-<model>-<backend>-<random>`"),
    _c("model", "str", "preset name, or the ONNX file stem for `--onnx`"),
    _c("backend", "str", "backend that produced the numbers (`onnxruntime`, `tensorrt`, `trtexec`, `torch`)"),
    _c("precision", "str", "precision plan: " + ", ".join(f"`{p}`" for p in PRECISIONS)),
    _c("batch", "int", "batch size"),
    _c("seq_len", "int", "sequence length (tokens; patches+1 for ViT)"),
)

TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    TABLES[table.name] = table
    return table


LAYER_CLASSES_TABLE = register(
    Table(
        name="layer_classes",
        file="<model>.layers.csv (beside the ONNX file)",
        description="One row per ONNX node: the structural class the classifier gave it.",
        keys=("node",),
        columns=(
            _c("node", "str", "ONNX node name (unique within the graph)"),
            _c("op_type", "str", "ONNX op type"),
            _c(
                "layer_class",
                "str",
                "one of " + ", ".join(f"`{c}`" for c in LAYER_CLASSES) + "; in a plan file's map also `unattributed` "
                "(an inserted node that stands for no source node)",
            ),
            _c("block", "int", "transformer block index (0-based); empty outside blocks", nullable=True),
            _c(
                "role",
                "str",
                "finer role: `q_proj`, `k_proj`, `v_proj`, `qkv_proj`, `bmm1`, `softmax`, `bmm2`, `out_proj`, "
                "`attn_core`, `ffn_up`, `ffn_gate`, `ffn_act`, `ffn_down`, `ffn_core`, `norm`, `embedding`, "
                "`other`",
            ),
            _c(
                "evidence",
                "str",
                "why: `pattern` (graph structure), `name` (scope fallback), `default`; in a plan file's map "
                "`inherited` (an inserted Q/DQ/Cast: its neighbour's class) or `none`",
            ),
        ),
    )
)

LAYERS_TABLE = register(
    Table(
        name="layers",
        file="layers.csv",
        description=(
            "One row per profiled layer (an ONNX Runtime node, a TensorRT engine layer, a PyTorch module) "
            "per plan and shape, from the separate profiling run.  With `--roofline DEVICE` three columns "
            "are added: `floor_ms` (the layer's roofline floor on that device), `kind` (op kind of the "
            "floor) and `efficiency` (floor ÷ median_ms; empty where the layer maps to no graph node)."
        ),
        keys=("run_id", "precision", "seq_len", "layer"),
        open_ended=True,
        columns=(
            *_RUN_KEYS,
            _c("layer", "str", "layer name as the backend reports it"),
            _c("op_type", "str", "ONNX op type, TensorRT layer type or module type"),
            _c("layer_class", "str", "one of " + ", ".join(f"`{c}`" for c in ATTRIBUTION_CLASSES)),
            _c("block", "int", "transformer block index", nullable=True),
            _c("onnx_nodes", "str", "ONNX nodes this layer implements, `;`-separated", nullable=True),
            _c("calls", "int", "how many timed executions the statistics are over"),
            _c("median_ms", "float", "median time per inference", "ms", nullable=True),
            _c("mean_ms", "float", "mean time per inference", "ms", nullable=True),
            _c(
                "share",
                "float",
                "median_ms ÷ sum of median_ms over the plan's layers",
                "fraction",
                nullable=True,
            ),
            _c(
                "class_split",
                "str",
                "for `mixed` layers: how the time was split, `class=fraction;…` by FLOPs",
                nullable=True,
            ),
            _c("status", "str", "`ok`, `not_profiled`, `fused_into:<layer>`, `zero_time`"),
        ),
    )
)

LATENCIES_TABLE = register(
    Table(
        name="latencies",
        file="latencies.csv",
        description=(
            "Every end-to-end latency of the timing runs (warm-up excluded), in order: one block per plan per round."
        ),
        keys=("run_id", "precision", "seq_len", "round", "iteration"),
        columns=(
            *_RUN_KEYS,
            _new("round", "int", "0-based round of the block (runs before schema 1.1: one round, 0)", fill=0),
            _c("iteration", "int", "0-based index of the timed iteration within its block"),
            _c("latency_ms", "float", "end-to-end latency of one inference", "ms"),
        ),
    )
)

CLASS_TIMES_TABLE = register(
    Table(
        name="class_times",
        file="class_times.csv",
        description=(
            "Per profiled iteration, the summed time of each layer class (from the profiling run). "
            "Used for confidence intervals of class-time reductions."
        ),
        keys=("run_id", "precision", "seq_len", "round", "iteration", "layer_class"),
        columns=(
            *_RUN_KEYS,
            _new("round", "int", "0-based round of the profiling block (before schema 1.1: 0)", fill=0),
            _c("iteration", "int", "0-based index of the profiled iteration within its block"),
            _c("layer_class", "str", "attribution class"),
            _c("time_ms", "float", "sum of the class's layer times in this iteration", "ms"),
        ),
    )
)

BLOCKS_TABLE = register(
    Table(
        name="blocks",
        file="blocks.csv",
        description=(
            "The measurement schedule: every block in the order it ran.  In each round every plan runs one "
            "timing block, in a freshly shuffled order (seeded), then one profiling block, shuffled again."
        ),
        keys=("run_id", "seq_len", "round", "kind", "position"),
        columns=(
            *_RUN_KEYS,
            _c("round", "int", "0-based round"),
            _c("kind", "str", "`timing` or `profiling`"),
            _c("position", "int", "0-based position of the block within its round and kind"),
            _c("iterations", "int", "iterations in the block"),
            _c("start_s", "float", "block start on the telemetry clock (`time.perf_counter`)", "s"),
            _c("end_s", "float", "block end on the telemetry clock", "s"),
            _c(
                "median_ms",
                "float",
                "median latency (timing) or median profiled layer sum; empty for a profiling block whose rows "
                "the runner hands over after the last round (ONNX Runtime): its sums are in `class_times.csv`",
                "ms",
                True,
            ),
        ),
    )
)

SUMMARY_TABLE = register(
    Table(
        name="summary",
        file="summary.csv",
        description=(
            "One row per model × shape × plan × backend.  Columns added when they apply: "
            "`backend_versions`, `cuda_graph`, `window_start_s`/`window_end_s` (the timed window on the "
            "telemetry clock); `int8_mha_fusable_cores` (`k/n` attention cores meeting TensorRT's INT8 "
            "fused-MHA preconditions, from the Q/DQ lint); TensorRT engine facts `engine_layers`, "
            "`fused_mha`, `fused_mha_precision`, `int8_layers`; with `--roofline DEVICE`, "
            "`roofline_device`, `roofline_floor_ms` (Σ per-node roofline floors) and `roofline_efficiency` "
            "(floor ÷ end-to-end median, also per layer as `floor_ms`/`efficiency` in layers); torch "
            "backend on CUDA, where class times are GPU kernel time: `class_time_source` "
            "(`kernels:eager` or `kernels:cuda_graph_replay`), `gpu_busy_ms` (median per profiled forward "
            "of Σ kernel durations = Σ class times), `gpu_idle_ms` (e2e_median_ms − gpu_busy_ms: launch "
            "gaps and idle in the timing run), `profiled_span_ms` (the profiled forward's CUDA-event span, "
            "profiler attached), `eager_gpu_busy_ms` (busy time of the eager reference pass "
            "under CUDA graphs), `kernels_per_iteration`, `kernels_unattributed` (replay kernels with no "
            "eager counterpart), `int8_kernels_attention`/`_ffn`/`_other` (kernels per forward doing "
            "INT8 arithmetic, by class) and `int8_recipe` (the W8A8 recipe, `+sage-core` when the "
            "attention core ran through SageAttention); and the "
            "telemetry and fingerprint "
            "columns listed in docs/telemetry.md (power, energy per inference, clocks, temperatures, "
            "nvpmodel, jetson_clocks, device model, versions)."
        ),
        keys=("run_id", "precision", "seq_len"),
        open_ended=True,
        columns=(
            *_RUN_KEYS,
            _c("device", "str", "what ran it: CPU model, GPU name, or Jetson model"),
            _c("device_kind", "str", "`cpu`, `gpu` or `jetson`"),
            _c("iterations", "int", "timed iterations over all rounds"),
            _new("rounds", "int", "rounds (timing blocks) the plan was timed in (before schema 1.1: 1)", fill=1),
            _c("e2e_median_ms", "float", "median of the rounds' median end-to-end latencies", "ms"),
            _c("e2e_mean_ms", "float", "mean end-to-end latency over all iterations", "ms"),
            _c("e2e_p90_ms", "float", "90th percentile latency; empty under 64 samples (MLPerf's floor)", "ms", True),
            _c("e2e_p95_ms", "float", "95th percentile latency; empty under 133 samples", "ms", True),
            _c("e2e_p99_ms", "float", "99th percentile latency; empty under 662 samples (MLPerf's floor)", "ms", True),
            _c("e2e_std_ms", "float", "standard deviation of latency over all iterations", "ms"),
            _c("e2e_cv", "float", "coefficient of variation (std ÷ mean) over all iterations", "fraction"),
            _new("e2e_round_cv", "float", "coefficient of variation of the round medians (round-to-round noise)"),
            _c(
                "e2e_median_ci_low_ms",
                "float",
                "bootstrap 95% CI over rounds of the median of round medians, lower end; empty with one round",
                "ms",
                True,
            ),
            _c("e2e_median_ci_high_ms", "float", "the same CI, upper end", "ms", True),
            _c("attention_ms", "float", "attention-class time per inference (profiling run, median)", "ms"),
            _c("ffn_ms", "float", "FFN-class time per inference", "ms"),
            _c("norm_ms", "float", "norm-class time per inference", "ms"),
            _c("embedding_ms", "float", "embedding-class time per inference", "ms"),
            _c(
                "other_ms",
                "float",
                "everything else, including `mixed` remainders, `reformat`, `unattributed` and `fused-unattributed`",
                "ms",
            ),
            _c(
                "unattributed_ms",
                "float",
                "time in layers that could not be attributed (runtime nodes that map to no source node, TensorRT "
                "Myelin regions without metadata); part of `other_ms`; over 5 % of the layer sum flags "
                "`attribution_incomplete`",
                "ms",
            ),
            _c("attention_share", "float", "attention_ms ÷ layer_sum_ms", "fraction"),
            _c("ffn_share", "float", "ffn_ms ÷ layer_sum_ms", "fraction"),
            _c("layer_sum_ms", "float", "sum of per-layer medians from the profiling run", "ms"),
            _c(
                "layer_sum_over_e2e",
                "float",
                "layer_sum_ms ÷ e2e_median_ms; > 1 shows profiler overhead",
                "ratio",
            ),
            _c("gemms_total", "int", "weighted GEMMs (MatMul/Gemm with a constant operand) in the graph"),
            _c("gemms_int8_attention", "int", "attention-class GEMMs (incl. attention-core MatMuls) in INT8"),
            _c("gemms_int8_ffn", "int", "FFN-class GEMMs in INT8"),
            _c("gemms_int8_other", "int", "other GEMMs in INT8"),
            _new(
                "int8_recipe",
                "str",
                "how the INT8 plan was implemented: `trt-qdq`, `ort-qdq` or `ort-dynamic` "
                "(`orinprof.quantize.INT8_RECIPES`); empty for fp32/fp16",
            ),
            _new(
                "int8_kernels_attention",
                "int",
                "integer kernels that executed for the attention class (ONNX Runtime: MatMulInteger, "
                "DynamicQuantizeMatMul, MatMulIntegerToFloat, QLinearMatMul, QGemm… in its optimised graph); "
                "empty when the backend cannot say.  A class the plan quantizes that ran none is flagged "
                "`int8_class_not_executed:<class>` in `trust_flags`",
            ),
            _new("int8_kernels_ffn", "int", "integer kernels that executed for the FFN class"),
            _new("int8_kernels_other", "int", "integer kernels that executed for every other class"),
            _c(
                "fidelity_cosine",
                "float",
                "mean cosine similarity of outputs vs fp32 on held-out inputs",
                "",
                True,
            ),
            _c("threads", "int", "intra-op threads (CPU backends); empty on GPUs", nullable=True),
            _c("telemetry_source", "str", "`jtop`, `tegrastats`, `nvml`, `host` or `none`"),
            _c(
                "trust_flags",
                "str",
                "`;`-separated warnings about the measurement (e.g. `attribution_incomplete:…` when "
                "unattributed time exceeds 5 % of the layer time); empty when none",
                nullable=True,
            ),
            _new(
                "run_mode",
                "str",
                "how it ran: backend options, device, threads, CUDA graph, isolation; `compare` never mixes "
                "modes unless told to",
            ),
            _new(
                "kernel_time_classes",
                "bool",
                "class times are summed device-kernel time (bounded by e2e), not a hooked eager profile",
                fill=False,
            ),
            _new("fidelity_note", "str", "why fidelity_cosine is empty (e.g. the backend returns no outputs)"),
        ),
    )
)

COMPARISON_TABLE = register(
    Table(
        name="comparison",
        file="comparison.csv",
        description=(
            "Each plan against the baseline plan (fp32 on CPUs, fp16 on GPUs) for the same model, shape, "
            "backend and run mode.  Reductions are `1 - plan/baseline` (positive = faster); ratios are "
            "`plan/baseline` with the same interval on a log scale (slowdowns read as 2.3×, not −130 %).  "
            "Within one run every figure is the median over rounds of the per-round paired ratio (plan and "
            "baseline timed in the same round) and its CI is a bootstrap over rounds; across runs the "
            "rounds are not paired (`paired` false)."
        ),
        keys=("run_id", "seq_len", "precision"),
        columns=(
            _c("run_id", "str", "run of the plan"),
            _c("baseline_run_id", "str", "run of the baseline"),
            _c("model", "str", "model"),
            _c("backend", "str", "backend"),
            _c("device", "str", "device"),
            _c("batch", "int", "batch size"),
            _c("seq_len", "int", "sequence length"),
            _c("baseline", "str", "baseline precision"),
            _c("precision", "str", "compared precision plan (`fp32~aa`: the baseline timed again, the A/A control)"),
            _new("rounds", "int", "rounds the figures are over (paired rounds within one run)"),
            _new("paired", "bool", "plan and baseline were timed in the same rounds of one run"),
            _c(
                "attention_reduction",
                "float",
                "attention-class time reduction; empty when the class takes no time",
                "fraction",
                True,
            ),
            _c("attention_reduction_ci_low", "float", "95% CI over rounds, lower", "fraction", True),
            _c("attention_reduction_ci_high", "float", "95% CI over rounds, upper", "fraction", True),
            _new("attention_ratio", "float", "attention-class time ratio plan/baseline", "ratio"),
            _new("attention_ratio_ci_low", "float", "95% CI (log scale), lower", "ratio"),
            _new("attention_ratio_ci_high", "float", "95% CI (log scale), upper", "ratio"),
            _c(
                "ffn_reduction",
                "float",
                "FFN-class time reduction; empty when the class takes no time",
                "fraction",
                True,
            ),
            _c("ffn_reduction_ci_low", "float", "95% CI over rounds, lower", "fraction", True),
            _c("ffn_reduction_ci_high", "float", "95% CI over rounds, upper", "fraction", True),
            _new("ffn_ratio", "float", "FFN-class time ratio plan/baseline", "ratio"),
            _new("ffn_ratio_ci_low", "float", "95% CI (log scale), lower", "ratio"),
            _new("ffn_ratio_ci_high", "float", "95% CI (log scale), upper", "ratio"),
            _c("other_reduction", "float", "reduction of everything not attention or FFN", "fraction", True),
            _c("e2e_reduction", "float", "end-to-end latency reduction (timing runs)", "fraction"),
            _c("e2e_reduction_ci_low", "float", "95% CI over rounds, lower", "fraction", True),
            _c("e2e_reduction_ci_high", "float", "95% CI over rounds, upper", "fraction", True),
            _new("e2e_ratio", "float", "end-to-end latency ratio plan/baseline", "ratio"),
            _new("e2e_ratio_ci_low", "float", "95% CI (log scale), lower", "ratio"),
            _new("e2e_ratio_ci_high", "float", "95% CI (log scale), upper", "ratio"),
            *(
                _new(
                    f"{c}_ms_{who}",
                    "float",
                    f"{what} of the {who}: median over rounds of the round values the reductions use "
                    "(per round, the median over iterations)",
                    "ms",
                )
                for c, what in (
                    ("attention", "attention-class time per profiled inference"),
                    ("ffn", "FFN-class time per profiled inference"),
                    ("e2e", "end-to-end latency"),
                )
                for who in ("baseline", "plan")
            ),
            _c(
                "attention_share_baseline",
                "float",
                "attention share of the baseline's layer time",
                "fraction",
            ),
            _c("ffn_share_baseline", "float", "FFN share of the baseline's layer time", "fraction"),
            _new(
                "profile_implied_e2e_reduction",
                "float",
                "Σ class share × class reduction: the profiling runs' own layer-sum reduction (close to an "
                "identity, not a model prediction; formerly `amdahl_e2e_reduction`)",
                "fraction",
                formerly="amdahl_e2e_reduction",
            ),
            _new(
                "profile_implied_gap",
                "float",
                "e2e_reduction − profile_implied_e2e_reduction: how far the profiling runs disagree with the "
                "timing runs",
                "fraction",
                formerly="amdahl_gap",
            ),
            _new(
                "placebo_class",
                "str",
                "a class the plan leaves untouched (int8-attn: `ffn`, int8-ffn: `attention`, A/A: `attention`)",
            ),
            _new("placebo_reduction", "float", "that class's reduction: should be 0", "fraction"),
            _new("placebo_reduction_ci_low", "float", "95% CI over rounds, lower", "fraction"),
            _new("placebo_reduction_ci_high", "float", "95% CI over rounds, upper", "fraction"),
            _new(
                "card_implied_e2e_reduction",
                "float",
                "card 9 check: baseline attention share × the card's claimed attention reduction "
                "(claims.toml), the e2e reduction the card's own numbers imply on this model",
                "fraction",
            ),
            _new("card_claimed_e2e_low", "float", "the card's claimed e2e reduction, lower end", "fraction"),
            _new("card_claimed_e2e_high", "float", "the card's claimed e2e reduction, upper end", "fraction"),
            _new(
                "noise_floor",
                "float",
                "the A/A control's largest |e2e reduction| CI end in this group: differences under it are "
                "noise on this machine (`--aa-control`)",
                "fraction",
            ),
            _new("run_mode", "str", "run mode of the plan (see summary.run_mode)"),
            _c(
                "flags",
                "str",
                "`;`-separated caveats: `placebo_failed`, `class_times_exceed_e2e`, `attribution_incomplete`, "
                "`mixed_modes`, `run_incomplete`, different power modes or clocks, noisy rounds",
                nullable=True,
            ),
        ),
    )
)


#: the summary's class-time columns (from :func:`orinprof.attribute.class_totals`)
CLASS_TOTAL_COLUMNS = ("attention_ms", "ffn_ms", "norm_ms", "embedding_ms", "other_ms", "unattributed_ms")
GEMM_COUNT_COLUMNS = ("gemms_total", "gemms_int8_attention", "gemms_int8_ffn", "gemms_int8_other")


def summary_row(
    keys: Mapping[str, Any],
    round_latencies: Sequence[np.ndarray],
    *,
    device: str,
    device_kind: str,
    class_totals: Mapping[str, float] | None = None,
    gemm_counts: Mapping[str, int] | None = None,
    fidelity_cosine: float = float("nan"),
    telemetry_source: str = "none",
    trust_flags: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one builder of a ``summary`` row (profile, ingest, card experiments).

    ``round_latencies``: one array of end-to-end latencies (ms) per round.  The median is the
    median of the round medians with its CI over rounds; spread and tail percentiles pool every
    iteration (a percentile is empty without enough samples, :data:`stats.MIN_SAMPLES_FOR_PERCENTILE`).
    ``extra`` adds optional columns (telemetry, engine facts, windows) without overriding these."""
    rounds = [np.asarray(r, dtype=float) for r in round_latencies if len(r)]
    if not rounds:
        raise ValueError("summary_row needs at least one latency")
    pooled = stats.latency_stats(np.concatenate(rounds))
    medians = np.array([float(np.median(r)) for r in rounds])
    over = stats.over_rounds(medians)
    totals = dict(class_totals or {})
    layer_sum = float(totals.get("layer_sum_ms", float("nan")))
    counts = dict(gemm_counts or {})
    flags = [f for f in trust_flags if f]
    row: dict[str, Any] = {
        **keys,
        "device": device,
        "device_kind": device_kind,
        "iterations": pooled.n,
        "rounds": len(rounds),
        "e2e_median_ms": over.point,
        "e2e_mean_ms": pooled.mean_ms,
        "e2e_p90_ms": pooled.p90_ms,
        "e2e_p95_ms": pooled.p95_ms,
        "e2e_p99_ms": pooled.p99_ms,
        "e2e_std_ms": pooled.std_ms,
        "e2e_cv": pooled.cv,
        "e2e_round_cv": float(np.std(medians, ddof=1) / np.mean(medians)) if len(medians) > 1 else float("nan"),
        "e2e_median_ci_low_ms": over.ci_low,
        "e2e_median_ci_high_ms": over.ci_high,
        **{k: float(totals.get(k, float("nan"))) for k in CLASS_TOTAL_COLUMNS},
        "attention_share": float(totals.get("attention_share", float("nan"))),
        "ffn_share": float(totals.get("ffn_share", float("nan"))),
        "layer_sum_ms": layer_sum,
        "layer_sum_over_e2e": layer_sum / over.point if over.point > 0 else float("nan"),
        **{k: int(counts.get(k, 0)) for k in GEMM_COUNT_COLUMNS},
        "fidelity_cosine": fidelity_cosine,
        "threads": None,
        "telemetry_source": telemetry_source,
        "trust_flags": ";".join(flags) or None,
    }
    for k, v in (extra or {}).items():
        if k == "trust_flags":
            continue
        if k not in row or row[k] is None:
            row[k] = v
    return row


#: the tables declared in this module, in pipeline order
CORE_TABLES = tuple(TABLES)


def table_spec(name: str) -> Table:
    """The declaration of a table, importing the modules that declare extension tables on a miss."""
    if name not in TABLES:
        load_all_tables()
    return TABLES[name]


def check(df: pd.DataFrame, table: str | Table) -> pd.DataFrame:
    """Fail loudly (a bug, not a user error) if ``df`` lacks a declared column."""
    spec = table_spec(table) if isinstance(table, str) else table
    df = _upgrade(df, spec)  # producers written before a column was added get its fill value
    missing = [c for c in spec.names if c not in df.columns]
    if missing:
        raise ValueError(f"table {spec.name!r} is missing columns {missing}")
    extra = [c for c in df.columns if c not in spec.names]
    if extra and not spec.open_ended:
        raise ValueError(f"table {spec.name!r} has undeclared columns {extra}")
    for col in spec.columns:
        if not col.nullable and len(df) and df[col.name].isna().all() and col.dtype != "str":
            # an all-missing required numeric column is a producer bug
            raise ValueError(f"table {spec.name!r}: column {col.name!r} is entirely missing")
    ordered = spec.names + [c for c in df.columns if c not in spec.names]
    return df[ordered]


# --------------------------------------------------------------------------- run directories


#: run.json ``status`` values: a run is ``running`` until it ends ``complete``, ``interrupted``
#: (Ctrl-C; the finished rows are kept) or ``failed``; a ``running`` run whose process died stays so
RUN_STATUSES = ("running", "complete", "interrupted", "failed")


@dataclass(frozen=True)
class RunInfo:
    """Everything needed to reproduce and judge a run; written as ``run.json``."""

    run_id: str
    created_utc: str
    command: str
    config: Mapping[str, Any]
    versions: Mapping[str, str]
    host: Mapping[str, Any]
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    schema_version: str = SCHEMA_VERSION
    status: str = "running"
    #: ``"<seq_len>/<plan>"`` of every plan whose rows are written
    plans_done: tuple[str, ...] = ()
    updated_utc: str = ""
    #: per ``seq_len``: the A/A control's noise floor (fraction), with ``--aa-control``
    noise_floor: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        run_id: str,
        command: str,
        config: Mapping[str, Any],
        fingerprint: Mapping[str, Any] | None = None,
        versions: Mapping[str, str] | None = None,
        host: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """The one ``run.json`` builder (profile, ingest, card experiments): versions and host read
        here, the device identity from the fingerprint the caller took (``telemetry.fingerprint``).
        ``host``: the measuring host when it is not this machine (ingest of another device's files)."""
        fp = dict(fingerprint or {})
        return cls(
            run_id=run_id,
            created_utc=_now(),
            command=command,
            config=dict(config),
            versions=dict(versions) if versions is not None else identity.package_versions(),
            host=dict(host)
            if host is not None
            else {
                "platform": platform.platform(),
                "cpu": fp.get("cpu_model") or identity.cpu_model(),
                "cpu_count": os.cpu_count() or 0,
            },
            fingerprint=fp,
            updated_utc=_now(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run_id": self.run_id,
            "status": self.status,
            "plans_done": list(self.plans_done),
            "created_utc": self.created_utc,
            "updated_utc": self.updated_utc or self.created_utc,
            "command": self.command,
            "config": dict(self.config),
            "versions": dict(self.versions),
            "host": dict(self.host),
            "fingerprint": dict(self.fingerprint),
            "noise_floor": dict(self.noise_floor),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: how many suffixes to draw before giving up; with 65,536 suffixes per model, backend and second,
#: running out means the suffix source is broken, not that the space is full
_MAX_SUFFIX_DRAWS = 1000
#: every run id this process has issued: ids are unique within a process by construction
_issued_run_ids: set[str] = set()
_issued_lock = threading.Lock()


def _random_suffix() -> str:
    return secrets.token_hex(2)


def new_run_id(model: str, backend: str, now: datetime | None = None) -> str:
    """``<UTC date>T<time>-<model>-<backend>-<4 hex>``, never one this process issued before.

    Other processes (another terminal, a Jetson writing into the same folder) can still draw the
    same id; :func:`new_run_dir` resolves that with exclusive creation."""
    now = now or datetime.now(timezone.utc)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    stem = f"{now:%Y%m%dT%H%M%S}-{safe}-{backend}"
    with _issued_lock:
        for _ in range(_MAX_SUFFIX_DRAWS):
            run_id = f"{stem}-{_random_suffix()}"
            if run_id not in _issued_run_ids:
                _issued_run_ids.add(run_id)
                return run_id
    raise OrinprofError(
        f"no unused run id for {stem} after {_MAX_SUFFIX_DRAWS} random suffixes",
        "the random suffix source is broken; run again",
    )


def _ensure_results_dir(results_dir: Path) -> Path:
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise OrinprofError(f"results directory {results_dir} is a file", "pass a directory to --results-dir")
    results_dir.mkdir(parents=True, exist_ok=True)
    return results_dir


def create_run_dir(results_dir: Path, run_id: str) -> Path:
    """Make ``results_dir/run_id`` for an id fixed in advance; never reuse an existing directory."""
    path = _ensure_results_dir(results_dir) / run_id
    try:
        path.mkdir()  # exclusive: fails if anyone (another process included) made it first
    except FileExistsError as err:
        raise OrinprofError(f"run directory {path} already exists", "results are never overwritten") from err
    return path


def new_run_dir(results_dir: Path, model: str, backend: str, now: datetime | None = None) -> Path:
    """Make a new run directory under ``results_dir``; its name is the run id.

    Creation is exclusive (``mkdir`` without ``exist_ok``): when another process already made a
    directory with the drawn id, a new suffix is drawn, so two runs never share a directory."""
    results_dir = _ensure_results_dir(results_dir)
    for _ in range(_MAX_SUFFIX_DRAWS):
        path = results_dir / new_run_id(model, backend, now)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise OrinprofError(
        f"no unused run directory under {results_dir} after {_MAX_SUFFIX_DRAWS} tries",
        "pass another --results-dir",
    )


def write_table(df: pd.DataFrame, run_dir: Path, table: str) -> Path:
    spec = table_spec(table)
    df = check(df, spec)
    path = Path(run_dir) / spec.file
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)  # atomic: a crash never leaves half a CSV
    return path


def append_table(df: pd.DataFrame, run_dir: Path, table: str) -> Path:
    """Add rows to a run's table (one plan at a time, so an interrupted run keeps what it measured)."""
    spec = table_spec(table)
    path = Path(run_dir) / spec.file
    if path.exists():
        old = pd.read_csv(path)
        df = pd.concat([old, df], ignore_index=True)
    return write_table(df, run_dir, table)


def write_run_info(info: RunInfo, run_dir: Path) -> Path:
    """Write ``run.json`` atomically (a reader never sees half a file)."""
    if info.status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {info.status!r}")
    path = Path(run_dir) / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(info.to_json() + "\n")
    os.replace(tmp, path)
    return path


def update_run_info(info: RunInfo, run_dir: Path, **changes: Any) -> RunInfo:
    """``info`` with ``changes`` (status, plans_done, noise_floor) and a new ``updated_utc``, written."""
    new = replace(info, updated_utc=_now(), **changes)
    write_run_info(new, run_dir)
    return new


def run_status(run_dir: Path) -> str:
    """``status`` of a run directory's run.json; runs written before schema 1.1 count as complete."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return "complete"
    try:
        return str(json.loads(path.read_text()).get("status", "complete"))
    except json.JSONDecodeError:
        return "failed"


def read_table(source: Path, table: str) -> pd.DataFrame:
    """Read one table from a run directory (or a CSV file path) and check its schema version."""
    spec = table_spec(table)
    source = Path(source)
    path = source / spec.file if source.is_dir() else source
    if not path.exists():
        raise OrinprofError(f"no {spec.file} in {source}", "pass a run directory written by `orinprof profile`")
    run_json = path.parent / "run.json"
    if run_json.exists():
        try:
            version = json.loads(run_json.read_text()).get("schema_version", "?")
        except json.JSONDecodeError as err:
            raise OrinprofError(f"{run_json} is not valid JSON", "the run directory is damaged") from err
        if str(version).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise OrinprofError(
                f"{path.parent} uses results schema {version}, this orinprof reads {SCHEMA_VERSION}",
                "re-run the measurement or use a matching orinprof version",
            )
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise OrinprofError(f"{path} is not a readable CSV", str(err).splitlines()[0]) from err
    df = _upgrade(df, spec)
    missing = [c for c in spec.names if c not in df.columns]
    if missing:
        raise OrinprofError(f"{path} lacks columns {', '.join(missing)}", f"it is not an orinprof {spec.name} table")
    return df


def _upgrade(df: pd.DataFrame, spec: Table) -> pd.DataFrame:
    """An older file in today's shape: renamed columns get their new name, added ones their fill."""
    renames = {c.formerly: c.name for c in spec.columns if c.formerly and c.formerly in df.columns}
    df = df.rename(columns={k: v for k, v in renames.items() if v not in df.columns})
    for c in spec.columns:
        if c.added and c.name not in df.columns:
            df[c.name] = c.fill
    return df


def read_runs(sources: Iterable[Path], table: str, include_incomplete: bool = False) -> pd.DataFrame:
    """Concatenate one table over several run directories (or parents of run directories).

    Runs found under a parent directory whose ``run.json`` status is not ``complete`` (still
    running, interrupted, failed) are skipped with a warning unless ``include_incomplete``; a run
    directory named explicitly is always read (``compare`` flags its rows ``run_incomplete``)."""
    frames: list[pd.DataFrame] = []
    for src in sources:
        src = Path(src)
        if not src.exists():
            raise OrinprofError(f"{src} does not exist", "pass run directories written by `orinprof profile`")
        file = table_spec(table).file
        if src.is_dir() and not (src / file).exists():
            subs = sorted(p for p in src.iterdir() if (p / file).exists())
            if not subs:
                raise OrinprofError(f"no {file} in {src} or its subdirectories")
            for sub in subs:
                status = run_status(sub)
                if status != "complete" and not include_incomplete:
                    log.warning("skipping %s: run is %s (name it explicitly to read it)", sub.name, status)
                    continue
                frames.append(read_table(sub, table))
        else:
            frames.append(read_table(src, table))
    if not frames:
        raise OrinprofError("no results given", "pass at least one run directory")
    return pd.concat(frames, ignore_index=True)


def git_version(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --------------------------------------------------------------------------- schema doc


#: Modules that declare further tables (telemetry, verdicts, lint findings).  Imported lazily so
#: that results.py itself stays at the bottom of the import graph.
EXTENSION_MODULES = ("orinprof.telemetry.schema", "orinprof.cards", "orinprof.lint")


def load_all_tables() -> dict[str, Table]:
    import importlib

    for mod in EXTENSION_MODULES:
        # a module not written yet, or an optional dependency missing, just declares nothing
        with contextlib.suppress(ImportError):
            importlib.import_module(mod)
    return TABLES


def schema_markdown() -> str:
    load_all_tables()
    lines = [
        "# Results schema",
        "",
        f"Schema version **{SCHEMA_VERSION}**. Generated from `src/orinprof/results.py` by",
        "`python -m orinprof.results > docs/results-schema.md`; a test fails when this file is stale.",
        "",
        "Each `orinprof profile` writes a new directory `<results-dir>/<run_id>/` holding the tables below",
        "plus `run.json` (configuration, package versions, host and device fingerprint). Missing values are",
        "empty cells, never 0; a `status` or `flags` column says why.",
        "",
    ]
    # core tables in pipeline order, then extension tables by name (import order must not matter)
    extensions = sorted(name for name in TABLES if name not in CORE_TABLES)
    for spec in [TABLES[n] for n in (*CORE_TABLES, *extensions)]:
        lines += [f"## `{spec.name}` — `{spec.file}`", "", spec.description, ""]
        if spec.keys:
            lines += ["Keys: " + ", ".join(f"`{k}`" for k in spec.keys) + ".", ""]
        if spec.open_ended:
            lines += [
                "Later stages may append columns (telemetry, engine facts); readers ignore unknown ones.",
                "",
            ]
        lines += ["| column | type | unit | meaning |", "|---|---|---|---|"]
        for c in spec.columns:
            typ = c.dtype + (" (nullable)" if c.nullable else "")
            lines.append(f"| `{c.name}` | {typ} | {c.unit} | {c.meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    # run as a script this file is ``__main__``; use the real module so registrations land in one place
    from orinprof.results import schema_markdown as _markdown

    sys.stdout.write(_markdown())
