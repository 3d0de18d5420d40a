"""``orinprof report``: the HTML report of run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orinprof.cli.app import command, out
from orinprof.cli.options import RunDirs
from orinprof.cli.tables import note_lines


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
    """Self-contained HTML report from run directories.

    Writes report.html with its PNG figures and CSV tables.

    Example: orinprof report results/ --out report/
    """
    from orinprof.report import build_report

    rep = build_report(sources, out_dir, force=force, top_n=top, verdicts=verdicts)
    out.print(f"wrote {rep.html} ({sum(f.png is not None for f in rep.figures)} figures)", soft_wrap=True)
    note_lines(out, "Skipped:", rep.skipped, style="")
