"""``orinprof project``: roofline projection of a model onto a device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from orinprof.cli import format as fmt
from orinprof.cli import options as O
from orinprof.cli import tables as T
from orinprof.cli.app import command, emit_json, out
from orinprof.cli.tables import Col
from orinprof.errors import OrinprofError

#: preferred columns per projection table; --wide (or a table not named here) shows every column
VIEWS: dict[str, tuple[T.Col, ...]] = {
    "projection": (
        T.integer("seq_len", "seq"),
        T.text("plan"),
        T.number("attention_ms", "attn ms"),
        T.number("ffn_ms", "FFN ms"),
        T.number("e2e_ms", "e2e ms"),
        T.percent("attention_reduction", "attn red.", sign=True),
        T.percent("ffn_reduction", "FFN red.", sign=True),
        T.percent("e2e_reduction", "e2e red.", sign=True),
        T.number("other_ms", "other ms", wide=True),
        T.percent("compute_bound_share", "compute-bound", wide=True),
    ),
    "card_crossing": (
        T.text("plan"),
        T.text("claim"),
        T.text("range"),
        T.percent("min_reduction", "min red."),
        T.percent("max_reduction", "max red."),
        Col("seq in range", ("seq_in_range",), lambda r: _seq_list(r["seq_in_range"]), numeric=False),
    ),
}

TITLES = {
    "projection": "Projected per-class time and reductions (positive = faster)",
    "card_crossing": "Where the projected reductions fall inside the cards' ranges",
    "efficiency": "Efficiency factors fitted on the runs (floor ÷ measured)",
    "model_efficiency": "Efficiency per model",
}


def _seq_list(value: object) -> str:
    """``128;384`` → ``128, 384``; no length in range → ``none``."""
    return "none" if fmt.is_missing(value) or not str(value).strip() else str(value).replace(";", ", ")


def parse_sweep(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise OrinprofError(f"--sweep {text!r} is not a list of integers", "e.g. --sweep 128,256,384") from err


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
    models_dir: O.ModelsDir = Path("models"),
    wide: O.Wide = False,
    json_out: O.Json = False,
) -> None:
    """Roofline projection of a model onto a device.

    Devices: Jetson AGX Orin modes, H100/H200, or the local CPU.

    Example: orinprof project bert-base --device agx-orin-64gb --sweep 128,384
    """
    from orinprof import devices, roofline
    from orinprof.cards.verdicts import card9_ranges

    claims = Path("claims.toml")  # as `orinprof cards validate` reads it; without it, no card crossing
    request = roofline.ProjectionRequest(
        model=model,
        seq_len=seq,
        batch=batch,
        plans=[p.strip() for p in plans.split(",") if p.strip()],
        sweep=parse_sweep(sweep),
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
    if json_out:
        emit_json({name: _json(value) for name, value in tables.items()})
        return
    for name, value in tables.items():
        if isinstance(value, pd.DataFrame):
            T.show(out, value, VIEWS.get(name, ()), TITLES.get(name, name), wide=wide or name not in VIEWS)
        else:
            out.print(str(value), soft_wrap=False, highlight=False)


def _json(value: Any) -> Any:
    return T.json_records(value) if isinstance(value, pd.DataFrame) else str(value)
