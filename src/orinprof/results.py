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
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from orinprof.errors import OrinprofError
from orinprof.plans import PLAN_NAMES

SCHEMA_VERSION = "1.0"

#: The layer classes every stage agrees on.
LAYER_CLASSES = ("attention", "ffn", "norm", "embedding", "other")
#: Extra attribution classes that only appear in ``layers`` (never in ``layer_classes``).
ATTRIBUTION_CLASSES = (*LAYER_CLASSES, "mixed", "fused-unattributed", "reformat")

#: plan names (owned by :mod:`orinprof.plans`)
PRECISIONS = PLAN_NAMES


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str", "int", "float", "bool"
    meaning: str
    unit: str = ""
    nullable: bool = False


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
            _c("layer_class", "str", "one of " + ", ".join(f"`{c}`" for c in LAYER_CLASSES)),
            _c("block", "int", "transformer block index (0-based); empty outside blocks", nullable=True),
            _c(
                "role",
                "str",
                "finer role: `q_proj`, `k_proj`, `v_proj`, `qkv_proj`, `bmm1`, `softmax`, `bmm2`, `out_proj`, "
                "`attn_core`, `ffn_up`, `ffn_gate`, `ffn_act`, `ffn_down`, `ffn_core`, `norm`, `embedding`, "
                "`other`",
            ),
            _c("evidence", "str", "why: `pattern` (graph structure), `name` (scope fallback) or `default`"),
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
        description="Every end-to-end latency of the timing run (warm-up excluded), in order.",
        keys=("run_id", "precision", "seq_len", "iteration"),
        columns=(
            *_RUN_KEYS,
            _c("iteration", "int", "0-based index of the timed iteration"),
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
        keys=("run_id", "precision", "seq_len", "iteration", "layer_class"),
        columns=(
            *_RUN_KEYS,
            _c("iteration", "int", "0-based index of the profiled iteration"),
            _c("layer_class", "str", "attribution class"),
            _c("time_ms", "float", "sum of the class's layer times in this iteration", "ms"),
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
            "(floor ÷ end-to-end median, also per layer as `floor_ms`/`efficiency` in layers); and the "
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
            _c("iterations", "int", "timed iterations in the timing run"),
            _c("e2e_median_ms", "float", "median end-to-end latency", "ms"),
            _c("e2e_mean_ms", "float", "mean end-to-end latency", "ms"),
            _c("e2e_p90_ms", "float", "90th percentile latency", "ms"),
            _c("e2e_p95_ms", "float", "95th percentile latency", "ms"),
            _c("e2e_p99_ms", "float", "99th percentile latency", "ms"),
            _c("e2e_std_ms", "float", "standard deviation of latency", "ms"),
            _c("e2e_cv", "float", "coefficient of variation (std ÷ mean)", "fraction"),
            _c("e2e_median_ci_low_ms", "float", "bootstrap 95% CI of the median, lower end", "ms"),
            _c("e2e_median_ci_high_ms", "float", "bootstrap 95% CI of the median, upper end", "ms"),
            _c("attention_ms", "float", "attention-class time per inference (profiling run, median)", "ms"),
            _c("ffn_ms", "float", "FFN-class time per inference", "ms"),
            _c("norm_ms", "float", "norm-class time per inference", "ms"),
            _c("embedding_ms", "float", "embedding-class time per inference", "ms"),
            _c(
                "other_ms",
                "float",
                "everything else, including `mixed` remainders, `reformat` and `fused-unattributed`",
                "ms",
            ),
            _c(
                "unattributed_ms",
                "float",
                "time in layers that could not be attributed (TensorRT Myelin)",
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
                "`;`-separated warnings about the measurement; empty when none",
                nullable=True,
            ),
        ),
    )
)

COMPARISON_TABLE = register(
    Table(
        name="comparison",
        file="comparison.csv",
        description=(
            "Each plan against the baseline plan (fp32 on CPUs, fp16 on GPUs) for the same model, shape and "
            "backend.  Reductions are `1 - plan/baseline` (positive = faster)."
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
            _c("precision", "str", "compared precision plan"),
            _c(
                "attention_reduction",
                "float",
                "attention-class time reduction; empty when the class takes no time",
                "fraction",
                True,
            ),
            _c("attention_reduction_ci_low", "float", "bootstrap 95% CI, lower", "fraction", True),
            _c("attention_reduction_ci_high", "float", "bootstrap 95% CI, upper", "fraction", True),
            _c(
                "ffn_reduction",
                "float",
                "FFN-class time reduction; empty when the class takes no time",
                "fraction",
                True,
            ),
            _c("ffn_reduction_ci_low", "float", "bootstrap 95% CI, lower", "fraction", True),
            _c("ffn_reduction_ci_high", "float", "bootstrap 95% CI, upper", "fraction", True),
            _c("other_reduction", "float", "reduction of everything not attention or FFN", "fraction", True),
            _c("e2e_reduction", "float", "end-to-end median latency reduction (timing run)", "fraction"),
            _c("e2e_reduction_ci_low", "float", "bootstrap 95% CI, lower", "fraction", True),
            _c("e2e_reduction_ci_high", "float", "bootstrap 95% CI, upper", "fraction", True),
            _c(
                "attention_share_baseline",
                "float",
                "attention share of the baseline's layer time",
                "fraction",
            ),
            _c("ffn_share_baseline", "float", "FFN share of the baseline's layer time", "fraction"),
            _c(
                "amdahl_e2e_reduction",
                "float",
                "Σ class share × class reduction: the end-to-end reduction the class numbers predict",
                "fraction",
                True,
            ),
            _c("amdahl_gap", "float", "e2e_reduction − amdahl_e2e_reduction", "fraction", True),
            _c("flags", "str", "`;`-separated caveats (different power modes, clocks, noisy)", nullable=True),
        ),
    )
)


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

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "run_id": self.run_id,
                "created_utc": self.created_utc,
                "command": self.command,
                "config": dict(self.config),
                "versions": dict(self.versions),
                "host": dict(self.host),
                "fingerprint": dict(self.fingerprint),
            },
            indent=2,
            default=str,
        )


def new_run_id(model: str, backend: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    return f"{now:%Y%m%dT%H%M%S}-{safe}-{backend}-{secrets.token_hex(2)}"


def create_run_dir(results_dir: Path, run_id: str) -> Path:
    """Make ``results_dir/run_id``; never reuse an existing directory."""
    results_dir = Path(results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise OrinprofError(f"results directory {results_dir} is a file", "pass a directory to --results-dir")
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / run_id
    try:
        path.mkdir()
    except FileExistsError as err:  # pragma: no cover - the random suffix makes this very unlikely
        raise OrinprofError(f"run directory {path} already exists", "results are never overwritten") from err
    return path


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
    path = Path(run_dir) / "run.json"
    path.write_text(info.to_json() + "\n")
    return path


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
    missing = [c for c in spec.names if c not in df.columns]
    if missing:
        raise OrinprofError(f"{path} lacks columns {', '.join(missing)}", f"it is not an orinprof {spec.name} table")
    return df


def read_runs(sources: Iterable[Path], table: str) -> pd.DataFrame:
    """Concatenate one table over several run directories (or parents of run directories)."""
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
            frames.extend(read_table(p, table) for p in subs)
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
