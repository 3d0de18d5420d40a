"""TensorRT-related commands: ``orinprof lint-qdq``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from orinprof.cli.app import command, out


@command("lint-qdq")
def lint_qdq(
    model: Annotated[Path, typer.Argument(help="Q/DQ ONNX file of an INT8 plan.")],
    csv: Annotated[Path | None, typer.Option("--csv", help="Also write the findings (qdq_lint table).")] = None,
) -> None:
    """Check each attention block's Q/DQ layout against TensorRT's INT8 fused-attention rules.

    Example: orinprof lint-qdq models/bert-base.s128.int8-attn.onnx
    """
    from orinprof.lint import block_verdicts
    from orinprof.lint import lint_qdq as run_lint

    findings = run_lint(model)
    table = Table(title=f"{model.name}: INT8 fused-MHA preconditions")
    for col in ("block", "check", "ok", "detail"):
        table.add_column(col)
    for row in findings[findings["ok"] != True].itertuples():  # noqa: E712 (ok may be None)
        table.add_row(str(row.block), row.check, "?" if row.ok is None else "no", row.detail)
    if table.row_count:
        out.print(table)
    for row in block_verdicts(findings).itertuples():
        block = "-" if row.block is None or str(row.block) == "<NA>" else str(row.block)
        out.print(f"block {block} core {row.core}: {row.verdict}" + (f" ({row.reason})" if row.reason else ""))
    if csv is not None:
        findings.to_csv(csv, index=False)
        out.print(f"wrote {csv}")
