"""Every option more than one command takes, defined once, and the one ``ProfileConfig`` builder.

Choice lists in help texts come from the registries (:data:`orinprof.backends.BACKENDS`,
:data:`orinprof.telemetry.SOURCES`, :data:`orinprof.plans.PLAN_NAMES`), so a new backend, telemetry
reader or plan shows up in ``--help`` without touching the CLI (``tests/cli/test_docs.py``
checks it).  The registries are import-light: naming them loads no device library.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from orinprof.backends import BACKENDS
from orinprof.plans import PLAN_NAMES
from orinprof.telemetry import SOURCES


def choices(names: Sequence[str]) -> str:
    names = list(names)
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def default_precisions() -> str:
    """The plans ``profile`` runs unless told: every plan that is not fp16 (fp16 is a GPU plan)."""
    return ",".join(name for name in PLAN_NAMES if name != "fp16")


# --------------------------------------------------------------------------------- what to run
Model = Annotated[str | None, typer.Option("--model", "-m", help="Preset name (see `orinprof presets`).")]
Onnx = Annotated[Path | None, typer.Option("--onnx", help="Your own ONNX file instead of a preset.")]
Precisions = Annotated[str, typer.Option("--precisions", help=f"Plans, comma-separated: {choices(PLAN_NAMES)}.")]
Seq = Annotated[str | None, typer.Option("--seq", help="Sequence lengths: 128,384 or 64..512 (powers of two).")]
Batch = Annotated[int, typer.Option("--batch", help="Batch size.")]
Opset = Annotated[int, typer.Option("--opset", help="ONNX opset (TensorRT 8.x parsers need ≤ 17).")]
CalibBatches = Annotated[int, typer.Option("--calib-batches", help="Synthetic calibration batches for INT8 plans.")]
CalibMethod = Annotated[str, typer.Option("--calib-method", help="minmax, entropy or percentile.")]
# recipe names spelled out (quantize, their registry, loads onnx: too heavy for every --help);
# tests/cli/test_docs.py checks that each of quantize.RECIPE_CHOICES is named here
Int8Recipe = Annotated[
    str,
    typer.Option(
        "--int8-recipe",
        help="How INT8 plans are built: auto (the backend's fastest), trt-qdq, ort-qdq or ort-dynamic "
        "(docs/backends.md).",
    ),
]
QdqStyle = Annotated[
    str | None, typer.Option("--qdq-style", help="Older spelling of --int8-recipe: trt = trt-qdq, ort = ort-qdq.")
]
Inputs = Annotated[Path | None, typer.Option("--inputs", help=".npz of inputs (calibration + held-out).")]

# --------------------------------------------------------------------------------- where to run
Backend = Annotated[str, typer.Option("--backend", help=f"Backend: {choices(list(BACKENDS))}.")]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda (torch / ORT CUDA EP) or trt (ORT TensorRT EP).")]
Telemetry = Annotated[str, typer.Option("--telemetry", help=f"Telemetry source: {choices(SOURCES)}.")]

# --------------------------------------------------------------------------------- how long
Iterations = Annotated[int, typer.Option("--iterations", help="Timed iterations per block (each plan, each round).")]
Rounds = Annotated[int, typer.Option("--rounds", help="Rounds: every plan timed once per round, shuffled.")]
BlockS = Annotated[float, typer.Option("--block-s", help="Minimum seconds per timing block.")]
WarmupS = Annotated[float, typer.Option("--warmup-s", help="Warm-up time in seconds (at least).")]
ProfileIterations = Annotated[
    int, typer.Option("--profile-iterations", help="Per-layer profiling iterations per round (separate run).")
]

# --------------------------------------------------------------------------------- files
ResultsDir = Annotated[
    Path, typer.Option("--results-dir", help="Where run directories are created (never overwritten).")
]
ModelsDir = Annotated[Path, typer.Option("--models-dir", help="Cache of exported ONNX files.")]
RunDirs = Annotated[list[Path], typer.Argument(help="Run directories (or folders holding them).")]

# --------------------------------------------------------------------------------- output
Wide = Annotated[bool, typer.Option("--wide", help="Every column, not only the ones that answer the question.")]
Json = Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout (progress: stderr).")]


def command_line() -> str:
    """The command as typed, for ``run.json``."""
    return "orinprof " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def profile_config(
    *,
    precisions: str | Sequence[str],
    seq: str | None = None,
    iterations: int | None = None,
    warmup: int | None = None,
    warmup_s: float | None = None,
    min_duration_s: float | None = None,
    profile_iterations: int | None = None,
    rounds: int | None = None,
    block_s: float | None = None,
    long_run: bool = False,
    inputs: Path | None = None,
    **fields: Any,
) -> Any:
    """The ``ProfileConfig`` of every command that profiles (``profile``, ``export``, ``sweep-seq``,
    ``cards pruning``): CLI spellings (``--seq 64..512``, ``--precisions a,b``, flat timing
    options, ``--long-run``) become the library's fields; the command line is recorded.  Fields the command does
    not set keep the library's defaults.  ``measure`` is imported here, late: it pulls in onnx and
    the backend registry's runners."""
    from orinprof.backends.base import TimingConfig
    from orinprof.measure import ProfileConfig, parse_seq_lens

    timing_fields: dict[str, Any] = {
        "iterations": iterations,
        "warmup_iters": warmup,
        "warmup_s": warmup_s,
        "min_duration_s": min_duration_s,
        "profile_iterations": profile_iterations,
        "rounds": rounds,
        "block_s": block_s,
    }
    timing = TimingConfig(**{k: v for k, v in timing_fields.items() if v is not None})
    if long_run:
        timing = timing.long_run()
    plans = precisions.split(",") if isinstance(precisions, str) else list(precisions)
    fields.setdefault("command", command_line())
    return ProfileConfig(
        precisions=tuple(p.strip() for p in plans if p.strip()),
        seq_lens=parse_seq_lens(seq) if seq else (),
        timing=timing,
        inputs_npz=inputs,
        **fields,
    )
