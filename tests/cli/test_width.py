"""Every command's output read in an 80-column terminal (issue 12 item 3): no line wider than 80,
no number or header cut to ``…``, and ``--json`` prints JSON alone on stdout.

Runs on the tiny presets (bert-tiny, sequence 16, 5 timed iterations): the point is what the
tables look like, not the numbers, so nothing here is a benchmark.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, REPO
from orinprof.cli import app
from orinprof.cli import format as fmt

WIDTH = 80
ENV = {"COLUMNS": str(WIDTH)}
FAST = ["--iterations", "5", "--rounds", "5", "--warmup-s", "0", "--profile-iterations", "2"]
CARDS = ["--cards", str(REPO / "cards.tsv"), "--claims", str(REPO / "claims.toml")]
runner = CliRunner()

# a number as the CLI writes it, followed by the ellipsis rich puts where it cuts a cell
CUT_NUMBER = re.compile(r"[-+]?\d[\d.,%]*…")


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args), env=ENV)
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result


def assert_readable(text: str) -> None:
    """Fits 80 columns; nothing ellipsised (a cut number, header or word).  A line may run over
    only to keep a long file path whole (pytest's temporary folders; a path is copied, not read)."""
    for line in text.splitlines():
        long_path = any("/" in token and len(token) > WIDTH // 2 for token in line.split())
        assert len(line) <= WIDTH or long_path, f"{len(line)} columns: {line!r}"
    assert not CUT_NUMBER.search(text), CUT_NUMBER.search(text)
    assert "…" not in text, [line for line in text.splitlines() if "…" in line]


def strict_json(text: str) -> Any:
    """stdout must be one JSON document, with null (never NaN/Infinity) for missing values."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    pytest.importorskip("torch")
    results = tmp_path_factory.mktemp("results")
    args = ["profile", "--model", "bert-tiny", "--seq", "16", "--precisions", "fp32,int8-attn,int8-ffn"]
    res = run(*args, *FAST, "--telemetry", "none", "--results-dir", str(results), "--models-dir", str(models_dir))
    assert_readable(res.stdout)
    # the measured table, then the reductions, both as tables (they fit 80 columns)
    assert re.search(r"^seq +plan +e2e ms \[95% CI\] +attn ms +FFN ms +attn share +cosine", res.stdout, re.M)
    assert re.search(r"^seq +plan +attention +FFN +e2e", res.stdout, re.M)
    # progress: plans done and left, the block count (3 plans × 1 length × rounds × 2), time left
    rounds = 5
    assert f"[1/3 plans done, 2 left, block {3 * rounds * 2}/{3 * rounds * 2}, about " in res.stderr
    assert "✓ [3/3 plans done, 0 left" in res.stderr
    (made,) = results.iterdir()
    return made


def test_profile_json_is_the_only_stdout(tmp_path: Path, models_dir: Path) -> None:
    pytest.importorskip("torch")
    args = ["profile", "--model", "bert-tiny", "--seq", "16", "--precisions", "fp32,int8-attn", *FAST]
    res = run(*args, "--telemetry", "none", "--results-dir", str(tmp_path), "--models-dir", str(models_dir), "--json")
    doc = strict_json(res.stdout)
    assert set(doc) == {"run_dir", "summary", "comparison", "failures"}
    assert [r["precision"] for r in doc["summary"]] == ["fp32", "int8-attn"]
    assert doc["summary"][0]["e2e_median_ms"] > 0 and doc["comparison"][0]["baseline"] == "fp32"
    assert doc["summary"][0]["norm_ms"] is None or isinstance(doc["summary"][0]["norm_ms"], float)
    assert Path(doc["run_dir"]).is_dir() and doc["failures"] == []
    assert "plans done" in res.stderr  # progress went to stderr


def test_profile_wide_and_narrow(run_dir: Path) -> None:
    wide = run("compare", str(run_dir), "--wide")
    assert_readable(wide.stdout)
    assert "profile-implied e2e" in wide.stdout  # --wide: the Amdahl column too
    narrow = runner.invoke(app, ["compare", str(run_dir)], env={"COLUMNS": "40"})
    assert narrow.exit_code == 0
    assert all(len(line) <= 40 for line in narrow.stdout.splitlines())
    assert re.search(r"^seq 16 · int8-attn vs fp32$", narrow.stdout, re.M)  # the vertical layout


def test_compare_table_and_json(run_dir: Path) -> None:
    res = run("compare", str(run_dir))
    assert_readable(res.stdout)
    assert "int8-attn vs fp32" in res.stdout
    doc = strict_json(run("compare", str(run_dir), "--json").stdout)
    rows = {r["precision"]: r for r in doc["comparison"]}
    assert set(rows) == {"int8-attn", "int8-ffn"}
    point, interval = fmt.ci(
        rows["int8-attn"]["e2e_reduction"],
        rows["int8-attn"]["e2e_reduction_ci_low"],
        rows["int8-attn"]["e2e_reduction_ci_high"],
        percent=True,
        sign=True,
    )
    assert point in res.stdout and interval in res.stdout  # the table shows the JSON's numbers, rounded


def test_cards_validate_table_and_json(run_dir: Path, tmp_path: Path) -> None:
    res = run("cards", "validate", str(run_dir), *CARDS, "--out", str(tmp_path / "v.csv"))
    assert_readable(res.stdout)
    assert "Card claims vs measurements" in res.stdout
    assert "inf" not in res.stdout and "––" not in res.stdout  # open-ended claims read "≥ 0"
    assert "where: bert-tiny / 16 · " in res.stdout  # one evidence context: a caption, not a column
    doc = strict_json(run("cards", "validate", str(run_dir), *CARDS, "--out", str(tmp_path / "w.csv"), "--json").stdout)
    assert {"verdicts", "amdahl", "written"} <= set(doc) and doc["verdicts"]
    assert all("verdict" in row for row in doc["verdicts"]) and Path(doc["written"]).exists()


def test_report_lines(run_dir: Path, tmp_path: Path) -> None:
    assert_readable(run("report", str(run_dir), "--out", str(tmp_path / "report")).stdout)


def test_export_layers_lint_presets_doctor(models_dir: Path) -> None:
    pytest.importorskip("torch")
    res = run("export", "--model", "bert-tiny", "--seq", "16", "--precisions", "fp32,int8-attn",
              "--models-dir", str(models_dir))  # fmt: skip
    assert_readable(res.stdout)
    plan_file = next(models_dir.rglob("*int8-attn*.onnx"))
    for args in (
        ["layers", "bert-tiny", "--seq", "16", "--models-dir", str(models_dir)],
        ["lint-qdq", str(plan_file)],
        ["presets"],
        ["presets", "--wide"],
        ["doctor"],
    ):
        assert_readable(run(*args).stdout)


def test_project_tables_and_json(models_dir: Path) -> None:
    pytest.importorskip("torch")
    args = ["project", "bert-tiny", "--device", "agx-orin-64gb", "--sweep", "16,32", "--models-dir", str(models_dir)]
    res = run(*args)
    assert_readable(res.stdout)
    assert re.search(
        r"^seq +plan +attn ms +FFN ms +e2e ms +attn red\.", res.stdout, re.M
    )  # a table, not a grid of cut cells
    doc = strict_json(run(*args, "--json").stdout)
    assert {"projection", "card_crossing"} <= set(doc)
    assert {r["seq_len"] for r in doc["projection"]} == {16, 32}


def test_ingest_trtexec_table(tmp_path: Path) -> None:
    # the layout of trtexec --exportProfile (see tests/cli/test_ingest.py's recorded fixtures):
    # a {"count": N} header, then one record per engine layer
    layers = ["/embeddings/Gather", "/encoder/layer.0/attention/self/MatMul", "/encoder/layer.0/intermediate/MatMul"]
    records = [{"count": 10}] + [
        {"name": n, "timeMs": 1.0 + i, "averageMs": 0.1 + i / 10, "medianMs": 0.1 + i / 10, "percentage": 30.0}
        for i, n in enumerate(layers)
    ]
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(records))
    res = run("ingest", "trtexec", "--profile", str(profile), "--seq-len", "16", "--results-dir", str(tmp_path / "r"))
    assert_readable(res.stdout)
    assert re.search(r"^class +time ms +share +layers", res.stdout, re.M)


def test_inspect_lines() -> None:
    layer_info = FIXTURES / "trt2023_controlnet_fp16" / "layerinfo.json"
    res = run("inspect", str(layer_info))
    assert_readable(res.stdout)
    assert res.stdout.startswith("engine layers: ")


def test_cards_outliers_table(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    res = run("cards", "outliers", "--model", "minilm-l6", "--out", str(tmp_path / "outliers.csv"))
    assert_readable(res.stdout)
    assert re.search(r"^layer +top dims +top ÷ median \[95% CI\]$", res.stdout, re.M)


def test_every_help_screen_reads_at_80_columns() -> None:
    from orinprof.cli.docs import commands, help_text

    for path in ["", "cards", "ingest", "telemetry", *(p for p, _ in commands())]:
        text = help_text(path)
        assert_readable(text)
        lines = text.splitlines()
        for line in lines:
            cut = line.rstrip().endswith("...") and not line.startswith("Usage:")  # [ARGS]... is syntax
            assert not cut, f"`orinprof {path} --help` cuts a description: {line!r}"
        # option descriptions get half the screen: continuation lines start by column 36
        for line in lines[lines.index("Options:") + 1 :] if "Options:" in lines else []:
            if line.strip() and line.startswith("    "):
                assert len(line) - len(line.lstrip()) <= 36, f"`orinprof {path} --help`: narrow column: {line!r}"
