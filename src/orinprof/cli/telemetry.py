"""``orinprof telemetry parse-tegrastats``: recorded tegrastats logs → telemetry.csv."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orinprof.cli.app import group_command, out, sub_app
from orinprof.errors import OrinprofError

telemetry_app = sub_app("telemetry", "Telemetry tools: convert recorded tegrastats logs.")


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
    """Convert a tegrastats log to a telemetry.csv.

    Long format, the same channels as live sampling.

    Example: orinprof telemetry parse-tegrastats t.log --out telemetry.csv
    """
    from orinprof.telemetry.tegrastats import convert_file

    target = out_path or file.with_name(file.name + ".telemetry.csv")
    if interval_ms is not None and not interval_ms > 0:
        raise OrinprofError(f"--interval-ms must be positive (got {interval_ms:g})", "use e.g. --interval-ms 100")
    result = convert_file(file, target, interval_ms)
    out.print(
        f"{result.parsed} line(s) parsed, {result.skipped} skipped; {result.rows} rows, "
        f"channels: {', '.join(result.channels)} → {result.path}"
    )
