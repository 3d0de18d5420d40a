"""``orinprof ingest …``: convert profiler output users already have into orinprof results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orinprof.cli import options as O
from orinprof.cli import tables as T
from orinprof.cli.app import group_command, out, sub_app
from orinprof.errors import OrinprofError
from orinprof.ingest.trtexec import class_summary, ingest_trtexec, write_ingest_run

ingest_app = sub_app("ingest", "Convert profiler output (trtexec JSON) to a run directory.")

CLASSES = (T.text("layer_class", "class"), T.number("time_ms", "time ms"), T.percent("share"), T.integer("layers"))


@group_command(ingest_app, "trtexec")
def trtexec(
    profile: Annotated[Path | None, typer.Option("--profile", help="trtexec --exportProfile JSON.")] = None,
    layers: Annotated[Path | None, typer.Option("--layers", help="trtexec --exportLayerInfo JSON.")] = None,
    times: Annotated[Path | None, typer.Option("--times", help="trtexec --exportTimes JSON.")] = None,
    onnx: Annotated[Path | None, typer.Option("--onnx", help="The ONNX the engine was built from.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name (default: file stem).")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help=f"Plan: {O.choices(O.PLAN_NAMES)}.")] = None,
    batch: Annotated[int, typer.Option("--batch", help="Batch size the engine ran.")] = 1,
    seq_len: Annotated[int | None, typer.Option("--seq-len", help="Sequence length the engine ran.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Device the files came from.")] = None,
    results_dir: O.ResultsDir = Path("results"),
) -> None:
    """Ingest trtexec JSON files into a new run directory.

    Writes layers.csv, summary.csv, run.json and the other tables; --layers alone prints the
    engine's facts.

    Example: orinprof ingest trtexec --profile p.json --seq-len 128
    """
    if profile is None:
        if layers is None:
            raise OrinprofError("give --profile, --layers or both", "--layers alone prints the engine's facts")
        from orinprof.cli.trt import engine_summary_lines
        from orinprof.trt_formats import engine_summary, read_layer_info

        for line in engine_summary_lines(engine_summary(read_layer_info(layers))):
            out.print(line)
        out.print("note: no --profile, so no run directory was written")
        return
    result = ingest_trtexec(profile, layers, onnx, times, model, precision)
    run_dir, skipped = write_ingest_run(result, results_dir, batch, seq_len, device, command="orinprof ingest trtexec")
    title = f"{result.model} · {result.precision} · {len(result.raw)} engine layers"
    T.show(out, class_summary(result.layers), CLASSES, title, hoist=False, key_count=1)
    hidden = f" ({result.myelin_regions} Myelin regions could hide one)" if result.myelin_regions else ""
    out.print(f"fused MHA kernel: {'yes' if result.fused_mha else 'no'}{hidden}")
    out.print(f"precisions seen: {', '.join(result.precisions) or 'unknown (no detailed --layers)'}")
    for line in [*result.notes, *skipped]:
        out.print(f"note: {line}")
    out.print(f"wrote {run_dir}")
