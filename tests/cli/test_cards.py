"""``orinprof cards …`` through typer's CliRunner: outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REPO
from orinprof import results
from orinprof.cli import app

runner = CliRunner()
CARDS = ["--cards", str(REPO / "cards.tsv"), "--claims", str(REPO / "claims.toml")]


def _run_dir(tmp_path: Path, schema: str = "1.0", drop: str | None = None) -> Path:
    run = tmp_path / "20250101T000000-bert-base-tensorrt-ab12"
    run.mkdir()
    row = {c: np.nan for c in results.TABLES["comparison"].names}
    row.update(
        run_id=run.name,
        baseline_run_id="base",
        model="bert-base",
        backend="tensorrt",
        device="NVIDIA Jetson AGX Orin",
        batch=1,
        seq_len=128,
        baseline="fp16",
        precision="int8-attn",
        attention_reduction=0.40,
        attention_reduction_ci_low=0.37,
        attention_reduction_ci_high=0.43,
        e2e_reduction=0.11,
        e2e_reduction_ci_low=0.09,
        e2e_reduction_ci_high=0.13,
        attention_share_baseline=0.3,
        ffn_share_baseline=0.5,
    )
    df = pd.DataFrame([row])
    if drop:
        df = df.drop(columns=[drop])
    df.to_csv(run / "comparison.csv", index=False)
    (run / "run.json").write_text(json.dumps({"schema_version": schema, "run_id": run.name}))
    return run


def test_validate_prints_writes_and_never_overwrites(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    out = tmp_path / "verdicts.csv"
    for expected in ("verdicts.csv", "verdicts-1.csv"):
        res = runner.invoke(app, ["cards", "validate", str(run), *CARDS, "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert expected in res.output
    text = " ".join(res.output.split())  # rich wraps to the test terminal's width
    assert "Card claims vs measurements" in text and "Amdahl check" in text
    assert "cannot hold as a whole" in text  # Amdahl flag: share 0.30 cannot give 25-35 %
    v = pd.read_csv(tmp_path / "verdicts-1.csv").set_index("claim_id")
    assert v.loc["c9-attention", "verdict"] == "supported"
    assert v.loc["c9-e2e-int8-attn", "verdict"] == "contradicted"


def test_export_apkg(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    res = runner.invoke(app, ["cards", "export", "--evidence", str(run), "--out", str(tmp_path / "d.apkg"), *CARDS])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "d.apkg").stat().st_size > 0 and "10 notes" in res.output


def _error_line(res) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_cards", "orinprof: error: cards file"),
        ("malformed_cards", "orinprof: error: bad.tsv:3: expected 2 tab-separated fields"),
        ("old_schema", "uses results schema 2.0"),
        ("lacks_metric", "lacks columns attention_reduction"),
        ("bad_metric", "table 'comparison' has no column 'speedup'"),
        ("bad_out", "cannot export to d.pdf"),
    ],
)
def test_bad_input_gives_one_line_and_exit_1(tmp_path: Path, setup: str, message: str) -> None:
    cards, claims = REPO / "cards.tsv", REPO / "claims.toml"
    run = _run_dir(
        tmp_path,
        schema="2.0" if setup == "old_schema" else "1.0",
        drop="attention_reduction" if setup == "lacks_metric" else None,
    )
    if setup == "missing_cards":
        cards = tmp_path / "none.tsv"
    if setup == "malformed_cards":
        cards = tmp_path / "bad.tsv"
        cards.write_text("#separator:tab\nfront\tback\nno tab here\n")
    if setup == "bad_metric":
        claims = tmp_path / "claims.toml"
        claims.write_text(
            (REPO / "claims.toml").read_text().replace("comparison.attention_reduction", "comparison.speedup")
        )
    args = ["--cards", str(cards), "--claims", str(claims)]
    if setup == "bad_out":
        cmd = ["cards", "export", "--out", str(tmp_path / "d.pdf"), *args]
    else:
        cmd = ["cards", "validate", str(run), *args, "--out", str(tmp_path / "v.csv")]
    res = runner.invoke(app, cmd)
    assert res.exit_code == 1
    assert message in _error_line(res)
    assert not (tmp_path / "v.csv").exists()  # nothing half-written
