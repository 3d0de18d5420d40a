"""The spine's commands: ``profile``, ``export``, ``compare``, ``layers``, ``presets``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orinprof import models
from orinprof.cli import options as O
from orinprof.cli import tables as T
from orinprof.cli.app import command, emit_json, err_console, out
from orinprof.cli.views import print_measured, print_reductions
from orinprof.errors import OrinprofError


def _raise_failures(failures: tuple[str, ...] | list[str], run_dir: Any) -> None:
    if failures:
        raise OrinprofError(
            f"{len(failures)} plan(s) failed: " + " | ".join(failures),
            f"the other plans' results are in {run_dir}",
        )


@command("profile")
def profile_cmd(
    model: O.Model = None,
    onnx: O.Onnx = None,
    precisions: O.Precisions = O.default_precisions(),
    seq: O.Seq = None,
    batch: O.Batch = 1,
    backend: O.Backend = "onnxruntime",
    device: O.Device = "cpu",
    threads: Annotated[int | None, typer.Option(help="Intra-op threads on CPU (default: the backend's).")] = None,
    iterations: O.Iterations = 20,
    rounds: O.Rounds = 5,
    block_s: O.BlockS = 0.0,
    long_run: Annotated[bool, typer.Option(help="Publication timing: ≥ 3 s blocks, ≥ 10 rounds.")] = False,
    aa_control: Annotated[bool, typer.Option(help="Time the baseline twice: the noise floor.")] = False,
    isolate: Annotated[str, typer.Option(help="none (runners stay loaded) or process.")] = "none",
    warmup: Annotated[int, typer.Option(help="Warm-up iterations (at least; also --warmup-s).")] = 10,
    warmup_s: O.WarmupS = 1.0,
    min_duration_s: Annotated[float, typer.Option(help="Keep timing until this many seconds passed.")] = 0.0,
    profile_iterations: O.ProfileIterations = 4,
    opset: O.Opset = 17,
    calib_batches: O.CalibBatches = 16,
    calib_method: O.CalibMethod = "minmax",
    int8_recipe: O.Int8Recipe = "auto",
    qdq_style: O.QdqStyle = None,
    inputs: O.Inputs = None,
    telemetry: O.Telemetry = "auto",
    telemetry_interval: Annotated[float, typer.Option(help="Telemetry sampling interval (s).")] = 0.1,
    cuda_graph: Annotated[bool, typer.Option(help="Replay a CUDA graph in the timing run (GPU backends).")] = False,
    roofline: Annotated[
        str | None,
        typer.Option(help="Device for per-layer roofline efficiency (local-cpu, h100, agx-orin-64gb, ...)."),
    ] = None,
    int8_impl: Annotated[
        str | None,
        typer.Option(
            help="torch backend: int_mm (eager), int_mm_compiled (torch.compile fuses quantize/rescale) or torchao."
        ),
    ] = None,
    dla: Annotated[int | None, typer.Option(help="TensorRT: DLA core 0|1 with GPU fallback.")] = None,
    strongly_typed: Annotated[bool, typer.Option(help="TensorRT: strongly typed network.")] = False,
    results_dir: O.ResultsDir = Path("results"),
    models_dir: O.ModelsDir = Path("models"),
    wide: O.Wide = False,
    json_out: O.Json = False,
) -> None:
    """Export, quantize, time and compare plans: the main job.

    Prints the measured table (seq, plan, end-to-end median with its 95 % CI, attention and FFN
    time, attention share, fidelity) and the reductions against the baseline.

    Example: orinprof profile --model bert-base --seq 128
    """
    from orinprof.cli.progress import for_config
    from orinprof.measure import profile

    extra: dict[str, Any] = {}
    if int8_impl:
        extra["int8_impl"] = int8_impl
    if dla is not None:
        extra["dla_core"] = dla
    if strongly_typed:
        extra["strongly_typed"] = True
    cfg = O.profile_config(
        model=model,
        onnx=onnx,
        precisions=precisions,
        seq=seq,
        batch=batch,
        opset=opset,
        calib_batches=calib_batches,
        calib_method=calib_method,
        int8_recipe=int8_recipe,
        qdq_style=qdq_style,
        inputs=inputs,
        models_dir=models_dir,
        backend=backend,
        device=device,
        threads=threads,
        iterations=iterations,
        warmup=warmup,
        warmup_s=warmup_s,
        min_duration_s=min_duration_s,
        profile_iterations=profile_iterations,
        rounds=rounds,
        block_s=block_s,
        long_run=long_run,
        aa_control=aa_control,
        isolate=isolate,
        telemetry=telemetry,
        telemetry_interval_s=telemetry_interval,
        cuda_graph=cuda_graph,
        roofline_device=roofline,
        results_dir=results_dir,
        extra=extra,
    )
    reporter = for_config(err_console, cfg)
    try:
        result = profile(cfg, reporter)
    finally:
        reporter.close()
    if json_out:
        emit_json(
            {
                "run_dir": str(result.run_dir),
                "summary": T.json_records(result.summary),
                "comparison": T.json_records(result.comparison),
                "failures": list(result.failures),
            }
        )
    else:
        print_measured(out, result.summary, wide)
        print_reductions(out, result.comparison, wide)
        out.print(f"Results: {result.run_dir}", soft_wrap=True, highlight=False)
    _raise_failures(result.failures, result.run_dir)


EXPORTED = (
    T.integer("seq", "seq"),
    T.text("plan"),
    T.text("file"),
    T.text("int8_gemms", "INT8 GEMMs attn/FFN/other of all"),
)


@command("export")
def export_cmd(
    model: O.Model = None,
    onnx: O.Onnx = None,
    precisions: O.Precisions = ",".join(O.PLAN_NAMES),
    seq: O.Seq = None,
    batch: O.Batch = 1,
    opset: O.Opset = 17,
    calib_batches: O.CalibBatches = 16,
    calib_method: O.CalibMethod = "minmax",
    int8_recipe: O.Int8Recipe = "auto",
    qdq_style: O.QdqStyle = None,
    inputs: O.Inputs = None,
    models_dir: O.ModelsDir = Path("models"),
    wide: O.Wide = False,
) -> None:
    """Write the plans' ONNX files without measuring.

    Exports, classifies and quantizes: prepare on a host with torch, copy models/ to a Jetson,
    profile there.

    Example: orinprof export --model bert-base --precisions fp16,int8-attn
    """
    import pandas as pd

    from orinprof.measure import prepare

    cfg = O.profile_config(
        model=model,
        onnx=onnx,
        precisions=precisions,
        seq=seq,
        batch=batch,
        opset=opset,
        calib_batches=calib_batches,
        calib_method=calib_method,
        int8_recipe=int8_recipe,
        qdq_style=qdq_style,
        inputs=inputs,
        models_dir=models_dir,
    )
    rows = []
    for seq_len, planned in prepare(cfg):
        c = planned.gemm_counts
        counts = f"{c['gemms_int8_attention']}/{c['gemms_int8_ffn']}/{c['gemms_int8_other']} of {c['gemms_total']}"
        rows.append({"seq": seq_len, "plan": planned.plan.name, "file": str(planned.path), "int8_gemms": counts})
    T.show(out, pd.DataFrame(rows), EXPORTED, "Plans written", wide=wide, hoist=False)


@command("compare")
def compare_cmd(
    runs: O.RunDirs,
    baseline: Annotated[str | None, typer.Option(help="Baseline plan (default: fp32 on CPU, fp16 on GPU).")] = None,
    out_csv: Annotated[Path | None, typer.Option("--out", help="Also write the table to this CSV (new file).")] = None,
    allow_mixed: Annotated[bool, typer.Option(help="Compare across run modes (rows flagged).")] = False,
    wide: O.Wide = False,
    json_out: O.Json = False,
) -> None:
    """Reductions of each plan vs the baseline, with CIs over rounds.

    Flags the controls (placebo, A/A noise floor) in words; --wide adds the ratios and the
    profile-implied end-to-end change.

    Example: orinprof compare results/*-bert-base-onnxruntime-*
    """
    from orinprof.compare import compare_runs

    df = compare_runs(list(runs), baseline, allow_mixed=allow_mixed)
    if out_csv is not None and out_csv.exists():
        raise OrinprofError(f"{out_csv} already exists", "results are never overwritten; choose another --out")
    if json_out:
        emit_json({"comparison": T.json_records(df)})
    else:
        print_reductions(out, df, wide)
    if out_csv is not None:
        df.to_csv(out_csv, index=False)
        (err_console if json_out else out).print(f"Wrote {out_csv}", soft_wrap=True, highlight=False)


LAYER_MAP = (
    T.text("node", fold_to=24),  # ONNX node names run long: fold them rather than lose the table
    T.text("op_type", "op"),
    T.text("layer_class", "class"),
    T.value("block"),
    T.text("role"),
    T.text("evidence", wide=True),
)


@command("layers")
def layers_cmd(
    model: Annotated[str, typer.Argument(help="A preset name or an ONNX file.")],
    seq: Annotated[int | None, typer.Option(help="Sequence length (presets).")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset for presets.")] = 17,
    show_all: Annotated[bool, typer.Option("--all", help="List every node, not only GEMMs and Softmax.")] = False,
    models_dir: O.ModelsDir = Path("models"),
    wide: O.Wide = False,
) -> None:
    """Classify every node and save the map beside the ONNX.

    Classes: attention, FFN, norm, embedding, other.

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
    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in classify.summarize(df).items())
    out.print(f"{path.name}: {counts}", highlight=False)
    T.show(out, shown, LAYER_MAP, None, wide=wide, hoist=False, key_count=1)
    out.print(f"Map saved: {classify.layer_map_path(path)}", soft_wrap=True, highlight=False)


PRESETS = (
    T.text("name"),
    T.text("family"),
    T.integer("default_seq", "default seq"),
    T.integer("max_seq", "max seq"),
    T.text("description"),
)


@command("presets")
def presets_cmd(wide: O.Wide = False) -> None:
    """List the model presets.

    Example: orinprof presets
    """
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"name": p.name, "family": p.family, "default_seq": p.default_seq, "max_seq": p.max_seq,
             "description": p.description}
            for p in models.PRESETS.values()
        ]
    )  # fmt: skip
    T.show(out, frame, PRESETS, "Model presets", wide=wide, hoist=False, key_count=1)
