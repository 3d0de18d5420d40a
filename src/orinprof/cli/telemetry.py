"""``orinprof doctor`` and ``orinprof telemetry parse-tegrastats``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from orinprof.cli.app import command, group_command, out, sub_app
from orinprof.errors import OrinprofError

telemetry_app = sub_app("telemetry", "Telemetry tools: convert recorded tegrastats logs.")


@command("doctor")
def doctor() -> None:
    """Show what is available here (backends, runtimes, telemetry, device, power mode) and the next
    step for each missing piece.  Example: orinprof doctor"""
    from orinprof.doctor import doctor_checks

    checks = doctor_checks()
    table = Table(title="orinprof doctor")
    for column in ("area", "item", "status", "detail", "next step"):
        table.add_column(column, overflow="fold")
    for c in checks:
        cells = (c.area, c.item, "ok" if c.ok else "missing", c.detail, c.next_step)
        table.add_row(*(Text(cell) for cell in cells))  # Text: `[jetson]` in a hint is not markup
    out.print(table)


@group_command(telemetry_app, "parse-tegrastats")
def parse_tegrastats(
    file: Annotated[Path, typer.Argument(help="A saved tegrastats log (`tegrastats --logfile`).")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="CSV to write; default <FILE>.telemetry.csv beside the log.")
    ] = None,
    interval_ms: Annotated[
        float | None, typer.Option("--interval-ms", help="Sampling interval, for lines without a timestamp.")
    ] = None,
) -> None:
    """Convert a tegrastats log to a telemetry.csv (long format, same channels as live sampling).
    Example: orinprof telemetry parse-tegrastats tegrastats.log --out telemetry.csv"""
    from orinprof.telemetry.tegrastats import convert_file

    target = out_path or file.with_name(file.name + ".telemetry.csv")
    if interval_ms is not None and not interval_ms > 0:
        raise OrinprofError(f"--interval-ms must be positive (got {interval_ms:g})", "use e.g. --interval-ms 100")
    result = convert_file(file, target, interval_ms)
    out.print(
        f"{result.parsed} line(s) parsed, {result.skipped} skipped; {result.rows} rows, "
        f"channels: {', '.join(result.channels)} → {result.path}"
    )
