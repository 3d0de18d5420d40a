"""The spine's commands: ``profile``, ``compare``, ``layers``, ``presets``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orinprof import models
from orinprof.backends.base import TimingConfig
from orinprof.cli.app import ModelsDir, ResultsDir, RunDirs, command, err_console, out
from orinprof.errors import OrinprofError

QdqStyle = Annotated[
    str | None,
    typer.Option(
        "--qdq-style",
        help="Older spelling of --int8-recipe: trt = trt-qdq, ort = ort-qdq.",
    ),
]
Int8Recipe = Annotated[
    str,
    typer.Option(
        "--int8-recipe",
        help="How INT8 plans are built: auto (the backend's fastest), trt-qdq, ort-qdq or ort-dynamic "
        "(docs/backends.md).",
    ),
]


# options shared by `profile` and `export` (defined once so they mean the same in both)
Model = Annotated[str | None, typer.Option("--model", "-m", help="Preset name (see `orinprof presets`).")]
Onnx = Annotated[Path | None, typer.Option("--onnx", help="Your own ONNX file instead of a preset.")]
Seq = Annotated[str | None, typer.Option("--seq", help="Sequence lengths: 128,384 or 64..512.")]
Batch = Annotated[int, typer.Option(help="Batch size.")]
Opset = Annotated[int, typer.Option(help="ONNX opset (TensorRT 8.x parsers need ≤ 17).")]
CalibBatches = Annotated[int, typer.Option(help="Synthetic calibration batches for INT8 plans.")]
CalibMethod = Annotated[str, typer.Option(help="minmax, entropy or percentile.")]
Inputs = Annotated[Path | None, typer.Option("--inputs", help=".npz of inputs (calibration + held-out).")]


def _config(
    model: str | None,
    onnx: Path | None,
    precisions: str,
    seq: str | None,
    batch: int,
    opset: int,
    calib_batches: int,
    calib_method: str,
    qdq_style: str | None,
    inputs: Path | None,
    models_dir: Path,
    **rest: Any,
) -> Any:
    """The ProfileConfig behind `profile` and `export` (their shared options mean the same)."""
    from orinprof.measure import ProfileConfig, parse_seq_lens

    return ProfileConfig(
        model=model,
        onnx=onnx,
        precisions=tuple(p.strip() for p in precisions.split(",") if p.strip()),
        seq_lens=parse_seq_lens(seq) if seq else (),
        batch=batch,
        opset=opset,
        calib_batches=calib_batches,
        calib_method=calib_method,
        qdq_style=qdq_style,
        inputs_npz=inputs,
        models_dir=models_dir,
        **rest,
    )


class _RichReporter:
    """Progress bars on stderr for the library's Reporter protocol."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self.bar.start()

    def stage(self, message: str) -> None:
        err_console.print(f"[dim]{message}[/dim]")

    def progress(self, label: str) -> Any:
        task = self.bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            self.bar.update(task, completed=done, total=total)

        return update

    def done(self, label: str) -> None:
        err_console.print(f"✓ {label}")

    def close(self) -> None:
        self.bar.stop()


def _pct(x: object) -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if v != v else f"{100 * v:+.1f}%"


def _ci(row: object, name: str) -> str:
    point, lo, hi = (getattr(row, f"{name}_reduction{s}") for s in ("", "_ci_low", "_ci_high"))
    return f"{_pct(point)} [{_pct(lo)}, {_pct(hi)}]"


def print_comparison(df: pd.DataFrame) -> None:
    if df.empty:
        out.print("No comparison: include the baseline plan (fp32 on CPU, fp16 on GPU) in --precisions.")
        return
    table = Table(title="Reduction vs baseline (positive = faster); 95% CI over rounds in brackets")
    for col in ("model", "seq", "plan", "attention", "FFN", "end-to-end", "profile implies", "flags"):
        table.add_column(col)
    for r in df.itertuples(index=False):
        table.add_row(
            str(r.model),
            str(r.seq_len),
            f"{r.precision} vs {r.baseline}",
            _ci(r, "attention"),
            _ci(r, "ffn"),
            _ci(r, "e2e"),
            _pct(r.profile_implied_e2e_reduction),
            str(r.flags) if isinstance(r.flags, str) else "",
        )
    out.print(table)
    from orinprof.compare import noise_floor_sentence, noise_floors

    sentence = noise_floor_sentence(noise_floors(df))
    if sentence:
        out.print(sentence)


def print_summary(df: pd.DataFrame) -> None:
    table = Table(title="Measured (timing run: end-to-end; profiling run: class times)")
    for col in (
        "seq",
        "plan",
        "median ms",
        "p99 ms",
        "CV",
        "attention ms",
        "FFN ms",
        "other ms",
        "attn share",
        "cosine",
    ):
        table.add_column(col)
    for r in df.itertuples(index=False):
        table.add_row(
            str(r.seq_len),
            str(r.precision),
            f"{r.e2e_median_ms:.3f} [{r.e2e_median_ci_low_ms:.3f}, {r.e2e_median_ci_high_ms:.3f}]",
            "–" if pd.isna(r.e2e_p99_ms) else f"{r.e2e_p99_ms:.3f}",
            f"{r.e2e_cv:.3f}",
            f"{r.attention_ms:.3f}",
            f"{r.ffn_ms:.3f}",
            f"{r.other_ms + r.norm_ms + r.embedding_ms:.3f}",
            f"{100 * r.attention_share:.1f}%",
            "–" if pd.isna(r.fidelity_cosine) else f"{r.fidelity_cosine:.5f}",
        )
    out.print(table)


@command("profile")
def profile_cmd(
    model: Model = None,
    onnx: Onnx = None,
    precisions: Annotated[str, typer.Option(help="Plans: fp32,fp16,int8-attn,int8-ffn,int8-all.")] = (
        "fp32,int8-attn,int8-ffn,int8-all"
    ),
    seq: Seq = None,
    batch: Batch = 1,
    backend: Annotated[str, typer.Option(help="onnxruntime, tensorrt, trtexec or torch.")] = "onnxruntime",
    device: Annotated[str, typer.Option(help="cpu, cuda (torch / ORT CUDA EP) or trt (ORT TensorRT EP).")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="Intra-op threads on CPU (default: the backend's).")] = None,
    iterations: Annotated[int, typer.Option(help="Timed iterations per block (each plan, each round).")] = 20,
    rounds: Annotated[int, typer.Option(help="Rounds: every plan timed once per round, shuffled.")] = 5,
    block_s: Annotated[float, typer.Option(help="Minimum seconds per timing block.")] = 0.0,
    long_run: Annotated[bool, typer.Option(help="Publication timing: ≥ 3 s blocks, ≥ 10 rounds.")] = False,
    aa_control: Annotated[bool, typer.Option(help="Time the baseline twice: the noise floor.")] = False,
    isolate: Annotated[str, typer.Option(help="none (runners stay loaded) or process.")] = "none",
    warmup: Annotated[int, typer.Option(help="Warm-up iterations (at least; also --warmup-s).")] = 10,
    warmup_s: Annotated[float, typer.Option(help="Warm-up time in seconds (at least).")] = 1.0,
    min_duration_s: Annotated[float, typer.Option(help="Keep timing until this many seconds passed.")] = 0.0,
    profile_iterations: Annotated[int, typer.Option(help="Profiling iterations per round (separate run).")] = 4,
    opset: Opset = 17,
    calib_batches: CalibBatches = 16,
    calib_method: CalibMethod = "minmax",
    int8_recipe: Int8Recipe = "auto",
    qdq_style: QdqStyle = None,
    inputs: Inputs = None,
    telemetry: Annotated[str, typer.Option(help="auto, jtop, tegrastats, nvml, host or none.")] = "auto",
    telemetry_interval: Annotated[float, typer.Option(help="Telemetry sampling interval (s).")] = 0.1,
    cuda_graph: Annotated[bool, typer.Option(help="Replay a CUDA graph in the timing run (GPU backends).")] = False,
    roofline: Annotated[
        str | None,
        typer.Option(help="Device for per-layer roofline efficiency (local-cpu, h100, agx-orin-64gb, …)."),
    ] = None,
    int8_impl: Annotated[
        str | None,
        typer.Option(
            help="torch backend: int_mm (eager), int_mm_compiled (torch.compile fuses quantize/rescale) or torchao."
        ),
    ] = None,
    dla: Annotated[int | None, typer.Option(help="TensorRT: DLA core 0|1 with GPU fallback.")] = None,
    strongly_typed: Annotated[bool, typer.Option(help="TensorRT: strongly typed network.")] = False,
    results_dir: ResultsDir = Path("results"),
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Export, quantize, measure and compare: one command.

    Example: orinprof profile --model bert-base --precisions fp32,int8-attn,int8-ffn,int8-all --seq 128,384
    """
    from orinprof.measure import profile

    extra: dict[str, Any] = {}
    if int8_impl:
        extra["int8_impl"] = int8_impl
    if dla is not None:
        extra["dla_core"] = dla
    if strongly_typed:
        extra["strongly_typed"] = True
    timing = TimingConfig(
        warmup_iters=warmup,
        warmup_s=warmup_s,
        iterations=iterations,
        min_duration_s=min_duration_s,
        profile_iterations=profile_iterations,
        rounds=rounds,
        block_s=block_s,
    )
    cfg = _config(
        model,
        onnx,
        precisions,
        seq,
        batch,
        opset,
        calib_batches,
        calib_method,
        qdq_style,
        inputs,
        models_dir,
        int8_recipe=int8_recipe,
        backend=backend,
        device=device,
        threads=threads,
        timing=timing.long_run() if long_run else timing,
        aa_control=aa_control,
        isolate=isolate,
        telemetry=telemetry,
        telemetry_interval_s=telemetry_interval,
        cuda_graph=cuda_graph,
        roofline_device=roofline,
        results_dir=results_dir,
        extra=extra,
        command="orinprof " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    reporter = _RichReporter()
    try:
        result = profile(cfg, reporter)  # type: ignore[arg-type]
    finally:
        reporter.close()
    print_summary(result.summary)
    print_comparison(result.comparison)
    out.print(f"Results: {result.run_dir}")
    if result.failures:
        raise OrinprofError(
            f"{len(result.failures)} plan(s) failed: " + " | ".join(result.failures),
            f"the other plans' results are in {result.run_dir}",
        )


@command("export")
def export_cmd(
    model: Model = None,
    onnx: Onnx = None,
    precisions: Annotated[str, typer.Option(help="Plans to write.")] = "fp32,fp16,int8-attn,int8-ffn,int8-all",
    seq: Seq = None,
    batch: Batch = 1,
    opset: Opset = 17,
    calib_batches: CalibBatches = 16,
    calib_method: CalibMethod = "minmax",
    int8_recipe: Int8Recipe = "auto",
    qdq_style: QdqStyle = None,
    inputs: Inputs = None,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Write the plans' ONNX files (export, classify, quantize) without measuring: prepare on a host
    with torch, copy models/ to a Jetson, profile there.

    Example: orinprof export --model bert-base --seq 128,384 --precisions fp16,int8-attn
    """
    from orinprof.measure import prepare

    cfg = _config(
        model,
        onnx,
        precisions,
        seq,
        batch,
        opset,
        calib_batches,
        calib_method,
        qdq_style,
        inputs,
        models_dir,
        int8_recipe=int8_recipe,
    )
    table = Table(title="Plans written")
    for col in ("seq", "plan", "file", "INT8 GEMMs (attention / FFN / other)"):
        table.add_column(col)
    for seq_len, planned in prepare(cfg):
        c = planned.gemm_counts
        table.add_row(
            str(seq_len),
            planned.plan.name,
            str(planned.path),
            f"{c['gemms_int8_attention']} / {c['gemms_int8_ffn']} / {c['gemms_int8_other']} of {c['gemms_total']}",
        )
    out.print(table)


@command("compare")
def compare_cmd(
    runs: RunDirs,
    baseline: Annotated[str | None, typer.Option(help="Baseline plan (default: fp32 on CPU, fp16 on GPU).")] = None,
    out_csv: Annotated[Path | None, typer.Option("--out", help="Also write the table to this CSV (new file).")] = None,
    allow_mixed: Annotated[bool, typer.Option(help="Compare across run modes (rows flagged).")] = False,
) -> None:
    """Reductions of each plan vs the baseline, with CIs over rounds and the controls.

    Example: orinprof compare results/20261127T120000-bert-base-onnxruntime-ab12
    """
    from orinprof.compare import compare_runs

    df = compare_runs(list(runs), baseline, allow_mixed=allow_mixed)
    print_comparison(df)
    if out_csv is not None:
        if out_csv.exists():
            raise OrinprofError(f"{out_csv} already exists", "results are never overwritten; choose another --out")
        df.to_csv(out_csv, index=False)
        out.print(f"Wrote {out_csv}")


@command("layers")
def layers_cmd(
    model: Annotated[str, typer.Argument(help="A preset name or an ONNX file.")],
    seq: Annotated[int | None, typer.Option(help="Sequence length (presets).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset for presets.")] = 17,
    show_all: Annotated[bool, typer.Option("--all", help="List every node, not only GEMMs and Softmax.")] = False,
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Classify every node (attention / FFN / norm / embedding / other) and save the map beside the ONNX.

    Example: orinprof layers bert-base
    """
    from orinprof import classify, export

    if model in models.PRESETS:
        path = export.export_preset(model, 1, seq, opset, models_dir).path
    elif model.endswith(".onnx") or Path(model).exists():
        path = Path(model)
    else:
        raise OrinprofError(f"{model!r} is neither a preset nor an ONNX file", "presets: " + ", ".join(models.PRESETS))
    df = classify.classify_file(path)
    shown = df if show_all else df[df["op_type"].isin(["MatMul", "Gemm", "Softmax", "Conv"])]
    table = Table(title=f"{path.name}: {classify.summarize(df)}")
    for col in ("node", "op_type", "class", "block", "role", "evidence"):
        table.add_column(col)
    for r in shown.itertuples(index=False):
        table.add_row(r.node, r.op_type, r.layer_class, "" if pd.isna(r.block) else str(r.block), r.role, r.evidence)
    out.print(table)
    out.print(f"Map saved: {classify.layer_map_path(path)}")


@command("presets")
def presets_cmd() -> None:
    """List the model presets.

    Example: orinprof presets
    """
    table = Table(title="Model presets")
    for col in ("name", "family", "default seq", "max seq", "description"):
        table.add_column(col)
    for p in models.PRESETS.values():
        table.add_row(p.name, p.family, str(p.default_seq), str(p.max_seq), p.description)
    out.print(table)
