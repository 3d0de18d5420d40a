"""TensorRT-related commands: ``orinprof lint-qdq`` and ``orinprof inspect``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orinprof.cli import tables as T
from orinprof.cli.app import command, out
from orinprof.cli.tables import Col

FINDINGS = (
    T.value("block"),
    T.text("check"),
    Col("ok", ("ok",), lambda r: "?" if r["ok"] is None else "no", numeric=False),
    T.text("detail"),
)


@command("lint-qdq")
def lint_qdq(
    model: Annotated[Path, typer.Argument(help="Q/DQ ONNX file of an INT8 plan.")],
    csv: Annotated[Path | None, typer.Option("--csv", help="Also write the findings (qdq_lint table).")] = None,
    trt_version: Annotated[
        str | None, typer.Option("--trt-version", help="Target TensorRT, e.g. 10.3 (default: 8.6, the strictest).")
    ] = None,
) -> None:
    """Check Q/DQ layouts against TensorRT's fused-attention rules.

    Per attention block: does the INT8 plan's Q/DQ layout meet TensorRT's INT8 fused-MHA
    preconditions?

    Example: orinprof lint-qdq models/bert-base.s128.int8-attn.onnx
    """
    from orinprof.backends.tensorrt.features import parse_version
    from orinprof.lint import block_verdicts
    from orinprof.lint import lint_qdq as run_lint

    findings = run_lint(model, trt_version=parse_version(trt_version) if trt_version else None)
    failed = findings[findings["ok"] != True]  # noqa: E712 (ok may be None)
    if len(failed):
        T.show(out, failed, FINDINGS, f"{model.name}: INT8 fused-MHA preconditions", hoist=False, key_count=1)
    for row in block_verdicts(findings).itertuples():
        block = "-" if row.block is None or str(row.block) == "<NA>" else str(row.block)
        out.print(f"block {block} core {row.core}: {row.verdict}" + (f" ({row.reason})" if row.reason else ""))
    if csv is not None:
        findings.to_csv(csv, index=False)
        out.print(f"wrote {csv}")


def engine_summary_lines(summary: object) -> list[str]:
    """What a layer-information file says, one fact a line (80 columns)."""
    from orinprof.trt_formats import EngineSummary

    assert isinstance(summary, EngineSummary)
    kind = "detailed" if summary.detailed else "names-only"
    lines = [f"engine layers: {summary.layer_count} ({kind})"]
    if not summary.detailed:
        lines.append("note: no precisions; rebuild with --profilingVerbosity=detailed")
    if summary.precision_counts:
        mix = sorted(summary.precision_counts.items(), key=lambda kv: -kv[1])
        lines.append("precisions: " + ", ".join(f"{p} {n}" for p, n in mix))
    if summary.fused_mha_layers:
        where = f" ({', '.join(summary.fused_mha_precisions)})" if summary.fused_mha_precisions else ""
        lines.append(f"fused MHA kernels: {len(summary.fused_mha_layers)}{where}")
    elif summary.myelin_regions:
        lines.append("fused MHA kernels: unknown (none visible; a Myelin region may hide one)")
    else:
        lines.append("fused MHA kernels: none")
    lines.append(f"Myelin regions ({{ForeignNode[...]}}): {len(summary.myelin_regions)}")
    lines.append(f"reformat layers: {summary.reformat_layers}")
    return lines


@command("inspect")
def inspect(
    layers: Annotated[Path, typer.Argument(help="trtexec --exportLayerInfo JSON (or engine inspector JSON).")],
) -> None:
    """Engine facts from a trtexec layer-information file alone.

    Layer count, precision mix, fused-MHA kernels, Myelin regions and reformat layers; no
    profiling needed.

    Example: orinprof inspect bert.int8-attn.layers.json
    """
    from orinprof.trt_formats import engine_summary, read_layer_info

    for line in engine_summary_lines(engine_summary(read_layer_info(layers))):
        out.print(line)
