"""`orinprof doctor` and `orinprof telemetry parse-tegrastats` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from conftest import FIXTURES
from orinprof.cli import app

LOG = FIXTURES / "tegrastats_logs" / "orin_nano_8gb_tegrastats_data.txt"
runner = CliRunner()


def test_doctor_lists_everything_and_exits_0() -> None:
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for item in (
        "onnxruntime",
        "ONNX Runtime",
        "PyTorch",
        "TensorRT",
        "jtop",
        "tegrastats",
        "nvml",
        "host",
        "device",
    ):
        assert item in result.output
    # a missing jtop names the next step
    if "jetson-stats (jtop) is not installed" in result.output:
        assert "jtop.service" in result.output


def test_parse_tegrastats_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "telemetry.csv"
    result = runner.invoke(app, ["telemetry", "parse-tegrastats", str(LOG), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = sum(1 for line in LOG.read_text().splitlines() if line.strip())
    assert f"{lines} line(s) parsed, 0 skipped" in result.output
    df = pd.read_csv(out)
    assert list(df.columns[:6]) == ["t_s", "source", "channel", "value", "unit", "status"]
    assert (df["channel"] == "power_total").sum() == lines
    # nothing already written is lost: a second run refuses
    again = runner.invoke(app, ["telemetry", "parse-tegrastats", str(LOG), "--out", str(out)])
    assert again.exit_code == 1
    assert (
        again.stderr.strip()
        == f"orinprof: error: {out} already exists (results are never overwritten; pass another --out)"
    )


def test_parse_tegrastats_bad_inputs(tmp_path: Path) -> None:
    missing = tmp_path / "nope.log"
    r = runner.invoke(app, ["telemetry", "parse-tegrastats", str(missing)])
    assert r.exit_code == 1
    assert r.stderr.strip().startswith(f"orinprof: error: tegrastats log {missing} not found")
    assert len(r.stderr.strip().splitlines()) == 1

    junk = tmp_path / "junk.log"
    junk.write_text("hello\nworld\n")
    r = runner.invoke(app, ["telemetry", "parse-tegrastats", str(junk), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 1
    assert r.stderr.strip().startswith(f"orinprof: error: no tegrastats lines found in {junk} (2 line(s)")
    assert not (tmp_path / "o.csv").exists()

    r = runner.invoke(app, ["telemetry", "parse-tegrastats", str(junk), "--interval-ms", "0"])
    assert r.exit_code == 1 and "--interval-ms must be positive" in r.stderr

    good = tmp_path / "good.log"
    good.write_text("RAM 3150/7620MB (lfb 37x4MB) CPU [0%@883,off] VDD_IN 4233mW/4233mW\n")
    r = runner.invoke(app, ["telemetry", "parse-tegrastats", str(good), "--out", str(tmp_path / "no" / "o.csv")])
    assert r.exit_code == 1
    assert (
        r.stderr.strip() == f"orinprof: error: output folder {tmp_path / 'no'} does not exist "
        "(create it or pass another --out)"
    )
