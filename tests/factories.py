"""Factories for result rows and run directories, built through :mod:`orinprof.results`.

A hand-built row lists the columns its author remembered; these start from the declared schema
(every column, ``NaN`` unless given), so a test keeps working, and keeps meaning the same, when a
column is added.  Summary rows come from :func:`orinprof.results.summary_row`, the builder
``measure``, ``ingest`` and the card experiments use; run directories are written with
``create_run_dir``, ``write_table`` (which checks each table) and ``RunInfo.create``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orinprof import results

#: the setting of the card tests' rows: BERT-base on TensorRT, batch 1, sequence length 128
BERT_BASE_TRT = {"model": "bert-base", "backend": "tensorrt", "batch": 1, "seq_len": 128}


def row(table: str, **values: Any) -> dict[str, Any]:
    """One row of ``table``: every declared column, ``NaN`` unless given.  A column the table
    does not declare is refused unless the table is open-ended (a typo would otherwise pass)."""
    spec = results.table_spec(table)
    unknown = sorted(set(values) - set(spec.names))
    if unknown and not spec.open_ended:
        raise TypeError(f"table {table!r} declares no column(s) {unknown}")
    return {**{c: np.nan for c in spec.names}, **values}


def comparison_row(**values: Any) -> dict[str, Any]:
    """A ``comparison`` row (plan vs baseline): the given columns, ``NaN`` elsewhere."""
    return row("comparison", **values)


def summary_row(
    *,
    run_id: str = "20260101T000000-bert-tiny-onnxruntime-0000",
    model: str = "bert-tiny",
    backend: str = "onnxruntime",
    precision: str = "fp32",
    batch: int = 1,
    seq_len: int = 64,
    e2e_ms: float = 1.0,
    class_ms: Mapping[str, float] | None = None,
    gemm_counts: Mapping[str, int] | None = None,
    device: str = "test-cpu",
    device_kind: str = "cpu",
    rounds: int = 2,
    iterations: int = 20,
    trust_flags: Sequence[str] = (),
    telemetry_source: str = "none",
    **columns: Any,
) -> dict[str, Any]:
    """A ``summary`` row from :func:`orinprof.results.summary_row`.

    Each of ``rounds`` rounds holds ``iterations`` latencies spread evenly over ±2 % of
    ``e2e_ms``, so ``e2e_median_ms`` is ``e2e_ms``.  ``class_ms``: class-time columns
    (``attention_ms`` …; a class not given took 0 ms); their sum is ``layer_sum_ms`` and each
    share is of that sum, as
    :func:`orinprof.attribute.class_totals` gives them.  ``columns`` are set as given afterwards
    (optional columns, or a computed one a test judges at a chosen value)."""
    keys = {
        "run_id": run_id,
        "model": model,
        "backend": backend,
        "precision": precision,
        "batch": batch,
        "seq_len": seq_len,
    }
    latencies = [e2e_ms * np.linspace(0.98, 1.02, iterations) for _ in range(rounds)]
    totals: dict[str, float] = {}
    if class_ms:
        unknown_classes = sorted(set(class_ms) - set(results.CLASS_TOTAL_COLUMNS))
        if unknown_classes:
            raise TypeError(f"class_ms: {unknown_classes} are not {results.CLASS_TOTAL_COLUMNS}")
        totals = {c: float(class_ms.get(c, 0.0)) for c in results.CLASS_TOTAL_COLUMNS}
        layer_sum = float(sum(totals.values()))
        totals["layer_sum_ms"] = layer_sum
        for cls in ("attention", "ffn"):
            totals[f"{cls}_share"] = totals.get(f"{cls}_ms", 0.0) / layer_sum if layer_sum > 0 else float("nan")
    built = results.summary_row(
        keys,
        latencies,
        device=device,
        device_kind=device_kind,
        class_totals=totals,
        gemm_counts=gemm_counts,
        telemetry_source=telemetry_source,
        trust_flags=trust_flags,
    )
    return {**built, **columns}  # the summary table is open-ended: fingerprint and engine columns


def run_dir(
    root: Path,
    tables: Mapping[str, pd.DataFrame | Sequence[Mapping[str, Any]]],
    *,
    run_id: str | None = None,
    model: str = "bert-tiny",
    backend: str = "onnxruntime",
    command: str = "orinprof profile",
    config: Mapping[str, Any] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    schema_version: str | None = None,
    status: str = "complete",
    drop: Sequence[str] = (),
) -> Path:
    """A run directory as ``orinprof profile`` leaves it: ``run.json`` and each table's CSV.

    ``tables``: table name → rows (a row without ``run_id`` gets this run's).  Each table passes
    :func:`orinprof.results.write_table`'s schema check; ``drop`` then removes columns from the
    written CSVs, for tests of damaged run directories.  ``schema_version`` overrides the
    ``run.json`` one (tests of old or future runs)."""
    run_id = run_id or results.new_run_id(model, backend)
    run = results.create_run_dir(Path(root), run_id)
    for table, rows in tables.items():
        df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame([dict(r) for r in rows])
        if "run_id" not in df.columns:
            df.insert(0, "run_id", run_id)
        path = results.write_table(df, run, table)
        if drop:
            written = pd.read_csv(path)
            written.drop(columns=[c for c in drop if c in written.columns]).to_csv(path, index=False)
    info = results.RunInfo.create(
        run_id,
        command,
        config or {},
        fingerprint=fingerprint,
        versions={"orinprof": "test", "python": "test"},
    )
    info = dataclasses.replace(info, status=status, schema_version=schema_version or info.schema_version)
    results.write_run_info(info, run)
    return run
