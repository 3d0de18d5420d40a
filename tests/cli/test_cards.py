"""``orinprof cards …`` through typer's CliRunner: outputs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import factories
from conftest import REPO
from orinprof import results
from orinprof.cli import app

runner = CliRunner()
CARDS = ["--cards", str(REPO / "cards.tsv"), "--claims", str(REPO / "claims.toml")]


def _run_dir(tmp_path: Path, schema: str = "1.0", drop: str | None = None) -> Path:
    row = factories.comparison_row(
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
    return factories.run_dir(
        tmp_path,
        {"comparison": [row]},
        run_id="20250101T000000-bert-base-tensorrt-ab12",
        schema_version=schema,
        drop=[drop] if drop else [],
    )


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
    # a typed device string and no fingerprint in run.json: never on target (cards/verdicts.py)
    assert set(v.loc[["c9-attention", "c9-e2e-int8-attn"], "verdict"]) == {"measured-off-target"}


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


# --------------------------------------------------------------------------- experiments that run models

FAST = ["--iterations", "5", "--warmup-s", "0", "--profile-iterations", "1"]


def test_pruning_writes_evidence_that_validate_judges(tmp_path: Path, models_dir: Path) -> None:
    pytest.importorskip("torch")
    results_dir = tmp_path / "results"
    dirs = ["--results-dir", str(results_dir), "--models-dir", str(models_dir)]
    args = ["cards", "pruning", "--model", "bert-tiny[num_layers=4]", "--seq", "16", *FAST, *dirs]
    res = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output + res.stderr
    table = [line for line in res.stdout.splitlines() if "%" in line and "CI]" not in line]
    assert len(table) == 5 and all(len(line) <= 80 and "…" not in line for line in table)  # a row per variant
    (pruning_dir,) = results_dir.glob("*-pruning-*")
    table = results.read_table(pruning_dir, "pruning")
    assert set(table["variant_kind"]) == {"unstructured", "heads+ffn", "layers", "heads", "layers-vs-heads"}
    info = json.loads((pruning_dir / "run.json").read_text())
    rounds = info["config"]["rounds"]
    assert (table["rounds"] == rounds).all() and len(info["config"]["orders"]) == rounds
    evidence = info["config"]["evidence_runs"]  # model → one real profile run per round
    assert len(evidence) == 5 and all(len(dirs) == rounds for dirs in evidence.values())
    for model_name, dirs in evidence.items():
        for run_dir in dirs:
            summary = results.read_table(Path(run_dir), "summary")
            assert list(summary["model"]) == [model_name] and list(summary["seq_len"]) == [16]
    assert "bert-tiny[num_layers=4]" in evidence

    out = tmp_path / "v.csv"
    res = runner.invoke(app, ["cards", "validate", str(pruning_dir), *CARDS, "--out", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    verdicts = pd.read_csv(out).set_index("claim_id")
    # a CPU run: card 6 claims a GPU, so its numbers are shown but judged off target
    assert verdicts.loc["c6-unstructured", "verdict"] == "measured-off-target"
    assert verdicts.loc["c6-structured", "verdict"] == "measured-off-target"
    # card 10 names no device: its CPU evidence gets a real verdict
    assert verdicts.loc["c10-layers-vs-heads", "verdict"] in {"supported", "contradicted", "inconclusive"}
    assert verdicts.loc["c10-layers-vs-heads", "run_ids"] == pruning_dir.name  # one run, interleaved rounds


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("bert-tiny", "use a deeper model, e.g. bert-tiny[num_layers=4]"),
        ("gpt2-tiny", "pruning variants of gpt2-tiny (gpt2) are not supported"),
        ("bert-tiny[num_layer=4]", "sets unknown config key(s) num_layer"),
    ],
)
def test_pruning_bad_model_one_line(tmp_path: Path, model: str, message: str) -> None:
    res = runner.invoke(app, ["cards", "pruning", "--model", model, "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert message in _error_line(res)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_sweep_seq_prints_a_row_per_sequence_length(tmp_path: Path, models_dir: Path) -> None:
    pytest.importorskip("torch")
    dirs = ["--results-dir", str(tmp_path / "results"), "--models-dir", str(models_dir)]
    args = ["sweep-seq", "--model", "bert-tiny", "--seq", "16,32", "--precisions", "fp32,int8-attn"]
    res = runner.invoke(app, [*args, *FAST, "--telemetry", "none", *dirs], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output + res.stderr
    text = " ".join(res.stdout.split())
    assert "Sequence sweep" in text and "reachable at seq" in text
    rows = [line for line in res.stdout.splitlines() if "%" in line and line.split()[0].isdigit()]
    assert [line.split()[0] for line in rows] == ["16", "32"]  # one table row per length, at 80 columns
    assert all(len(line) <= 80 and "…" not in line for line in rows)


def test_sweep_seq_bad_seq_one_line(tmp_path: Path) -> None:
    res = runner.invoke(app, ["sweep-seq", "--model", "bert-tiny", "--seq", "64..x"])
    assert res.exit_code == 1
    assert "bad sequence length '64..x'" in _error_line(res)
