"""``orinprof report`` and ``orinprof project``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orinprof.cli.app import RunDirs, command, out
from orinprof.errors import OrinprofError


@command("report")
def report(
    sources: RunDirs,
    out_dir: Annotated[Path, typer.Option("--out", help="New (or empty) directory for report.html, PNGs, CSVs.")],
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty --out.")] = False,
    top: Annotated[int, typer.Option("--top", help="Layers in the waterfall.")] = 15,
    verdicts: Annotated[
        Path | None, typer.Option("--verdicts", help="Card verdicts CSV (`orinprof cards validate --out`).")
    ] = None,
) -> None:
    """Self-contained HTML report (plus PNGs and CSVs) from run directories.

    Example: orinprof report results/ --out report/
    """
    from orinprof.report import build_report

    rep = build_report(sources, out_dir, force=force, top_n=top, verdicts=verdicts)
    out.print(f"wrote {rep.html} ({sum(f.png is not None for f in rep.figures)} figures)", soft_wrap=True)
    for line in rep.skipped:
        out.print(f"  {line}", soft_wrap=True)


def _parse_seqs(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        seqs = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise OrinprofError(f"--sweep {text!r} is not a list of integers", "e.g. --sweep 128,256,384") from err
    return seqs


@command("project")
def project_cmd(
    model: Annotated[str | None, typer.Argument(help="Model preset name or ONNX file.")] = None,
    device: Annotated[str, typer.Option("--device", help="Device from the device table.")] = "agx-orin-64gb",
    mode: Annotated[str | None, typer.Option("--mode", help="nvpmodel mode (default: the device's).")] = None,
    seq: Annotated[int | None, typer.Option("--seq", help="Sequence length (fixes dynamic ONNX dims).")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Batch size (fixes dynamic ONNX dims).")] = None,
    plans: Annotated[str, typer.Option("--plans", help="INT8 plans to project.")] = "int8-attn,int8-ffn,int8-all",
    sweep: Annotated[str | None, typer.Option("--sweep", help="Presets: sequence lengths, e.g. 128,384.")] = None,
    efficiency: Annotated[Path | None, typer.Option("--efficiency", help="efficiency.csv from --fit.")] = None,
    fit: Annotated[list[Path] | None, typer.Option("--fit", help="Run dir(s) to fit efficiency on.")] = None,
    onnx_file: Annotated[Path | None, typer.Option("--onnx", help="With --fit: the ONNX the runs measured.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write CSVs here (new directory).")] = None,
    check_mlperf: Annotated[bool, typer.Option("--check-mlperf", help="Compare with MLPerf BERT-99.")] = False,
    models_dir: Annotated[Path, typer.Option("--models-dir", help="Cache of exported ONNX files.")] = Path("models"),
) -> None:
    """Roofline projection of a model onto a device (Jetson, H100/H200, or the local CPU).

    Example: orinprof project bert-base --device agx-orin-64gb --mode MAXN --sweep 128,384
    """
    from orinprof import devices, roofline
    from orinprof.cards.verdicts import card9_ranges

    claims = Path("claims.toml")  # as `orinprof cards validate` reads it; without it, no card crossing
    request = roofline.ProjectionRequest(
        model=model,
        seq_len=seq,
        batch=batch,
        plans=[p.strip() for p in plans.split(",") if p.strip()],
        sweep=_parse_seqs(sweep),
        efficiency=roofline.efficiency_from_file(efficiency) if efficiency else None,
        fit=fit or (),
        onnx_path=onnx_file,
        check_mlperf=check_mlperf,
        models_dir=models_dir,
        card_ranges=card9_ranges(claims) if claims.is_file() else None,
    )
    dev = devices.get_device(device, mode)
    tables = roofline.projection_tables(request, dev)
    if out_dir is not None:
        roofline.write_projection(tables, dev, out_dir)
    tables = {k: v for k, v in tables.items() if k not in roofline.FILE_ONLY_TABLES}
    for name, df in tables.items():
        if name == "check":
            out.print(str(df), soft_wrap=True)
            continue
        t = Table(title=name)
        for c in df.columns:
            t.add_column(str(c))
        for row in df.itertuples(index=False):
            t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
        out.print(t)
