from __future__ import annotations

import pandas as pd
import pytest

from conftest import REPO
from orinprof import results
from orinprof.errors import OrinprofError


def test_schema_doc_is_current() -> None:
    doc = (REPO / "docs" / "results-schema.md").read_text()
    assert doc == results.schema_markdown(), "regenerate: python -m orinprof.results > docs/results-schema.md"


def test_every_core_table_is_documented() -> None:
    doc = results.schema_markdown()
    for name in ("layer_classes", "layers", "latencies", "class_times", "summary", "comparison", "telemetry"):
        assert f"## `{name}`" in doc


def test_run_dirs_are_unique_and_never_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ids = {results.new_run_id("m", "b") for _ in range(50)}
    assert len(ids) == 50
    d = results.create_run_dir(tmp_path, "x")
    with pytest.raises(OrinprofError):
        results.create_run_dir(tmp_path, "x")
    assert d.exists()


def test_check_rejects_missing_columns() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        results.check(pd.DataFrame({"run_id": ["a"]}), "latencies")


def test_read_table_refuses_other_schema_versions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"schema_version": "9.0"}')
    pd.DataFrame({c: [1] for c in results.TABLES["latencies"].names}).to_csv(run / "latencies.csv", index=False)
    with pytest.raises(OrinprofError, match=r"schema 9\.0"):
        results.read_table(run, "latencies")
