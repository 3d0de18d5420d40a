"""``orinprof ingest trtexec`` through typer's CliRunner, on the recorded fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES
from orinprof.cli import app

FIX = FIXTURES
CONTROLNET = FIX / "trt2023_controlnet_fp16"
QAT = FIX / "trex" / "a100_pytorch_resnet_qat"
RTX = FIX / "trex" / "rtx3090_tensorflow_resnet_fp32"

runner = CliRunner()


def _run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []


def test_ingest_controlnet_writes_layers_and_run_json(tmp_path: Path) -> None:
    results = tmp_path / "results"
    res = runner.invoke(
        app,
        [
            "ingest",
            "trtexec",
            "--profile",
            str(CONTROLNET / "profile.json"),
            "--layers",
            str(CONTROLNET / "layerinfo.json"),
            "--precision",
            "fp16",
            "--seq-len",
            "77",
            "--results-dir",
            str(results),
        ],
    )
    assert res.exit_code == 0, res.output
    (run_dir,) = _run_dirs(results)
    layers = pd.read_csv(run_dir / "layers.csv")
    records = json.loads((CONTROLNET / "profile.json").read_text())[1:]
    assert len(layers) == len(records)
    assert set(layers["backend"]) == {"trtexec"} and set(layers["precision"]) == {"fp16"}
    assert set(layers["seq_len"]) == {77}
    assert "fused-unattributed" in set(layers["layer_class"])
    info = json.loads((run_dir / "run.json").read_text())
    assert info["fingerprint"]["myelin_regions"] == sum(r["name"].startswith("{ForeignNode[") for r in records)
    assert "fused MHA kernel: no" in res.output and "Myelin regions could hide one" in res.output
    assert "summary.csv" in res.output  # says why no summary was written
    assert not (run_dir / "summary.csv").exists()


def test_ingest_with_times_writes_latencies(tmp_path: Path) -> None:
    # the RTX 3090 folder has a timing trace but no profile; pair the trace with the QAT profile
    results = tmp_path / "results"
    res = runner.invoke(
        app,
        [
            "ingest",
            "trtexec",
            "--profile",
            str(QAT / "resnet-qat.onnx.engine.profile.json"),
            "--layers",
            str(QAT / "resnet-qat.onnx.engine.graph.json"),
            "--times",
            str(RTX / "resnet.onnx.engine.timing.json"),
            "--precision",
            "int8-all",
            "--seq-len",
            "1",
            "--results-dir",
            str(results),
        ],
    )
    assert res.exit_code == 0, res.output
    (run_dir,) = _run_dirs(results)
    lat = pd.read_csv(run_dir / "latencies.csv")
    trace = json.loads((RTX / "resnet.onnx.engine.timing.json").read_text())
    assert lat["latency_ms"].tolist() == pytest.approx([r["computeMs"] for r in trace], rel=1e-5)
    assert "int8" in res.output  # precisions seen


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "not a trtexec --exportProfile file (the file is empty)"),
        ("this is not json", "not a trtexec --exportProfile file (invalid JSON"),
        ('{"Layers": ["a"]}', "not a trtexec --exportProfile file (found an object with keys Layers"),
    ],
)
def test_ingest_bad_profile_is_one_line_error(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    results = tmp_path / "results"
    res = runner.invoke(
        app, ["ingest", "trtexec", "--profile", str(bad), "--seq-len", "1", "--results-dir", str(results)]
    )
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("orinprof: error: ") and message in lines[0]
    assert str(bad) in lines[0]
    assert _run_dirs(results) == []  # nothing written


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layers", "{bad}"], "not a trtexec --exportLayerInfo file"),
        (["--times", "{bad}"], "not a trtexec --exportTimes file"),
        (["--precision", "int3"], "unknown precision 'int3'"),
        (["--onnx", "{bad}"], "not a readable ONNX model"),
    ],
)
def test_ingest_other_bad_inputs(tmp_path: Path, extra: list[str], message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('"just a string"')
    args = [a.replace("{bad}", str(bad)) for a in extra]
    results = tmp_path / "results"
    res = runner.invoke(
        app,
        [
            "ingest",
            "trtexec",
            "--profile",
            str(CONTROLNET / "profile.json"),
            *args,
            "--seq-len",
            "1",
            "--results-dir",
            str(results),
        ],
    )
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith(" ") and "WARNING" not in ln]
    assert lines[-1].startswith("orinprof: error: ") and message in lines[-1]
    assert _run_dirs(results) == []


def test_ingest_requires_seq_len(tmp_path: Path) -> None:
    results = tmp_path / "results"
    res = runner.invoke(
        app,
        ["ingest", "trtexec", "--profile", str(CONTROLNET / "profile.json"), "--results-dir", str(results)],
    )
    assert res.exit_code == 1
    assert "orinprof: error: --batch and --seq-len are required" in res.stderr
    assert _run_dirs(results) == []


def test_ingest_help_has_example() -> None:
    res = runner.invoke(app, ["ingest", "trtexec", "--help"])
    assert res.exit_code == 0 and "orinprof ingest trtexec --profile" in res.output


# ------------------------------------------------------------------ engine facts from a layer file alone


def test_inspect_reports_engine_facts_from_layer_info() -> None:
    res = runner.invoke(app, ["inspect", str(CONTROLNET / "layerinfo.json")])
    assert res.exit_code == 0, res.output
    info = json.loads((CONTROLNET / "layerinfo.json").read_text())["Layers"]
    lines = res.output.splitlines()
    assert lines[0] == f"engine layers: {len(info)} (detailed)"
    foreign = sum(lay["Name"].startswith("{ForeignNode[") for lay in info)
    assert f"Myelin regions ({{ForeignNode[...]}}): {foreign}" in lines
    assert "fused MHA kernels: unknown (none visible; a Myelin region may hide one)" in lines
    # a layer's precision is its input's (its output's when it has no input, e.g. a constant)
    fp16 = sum("FP16" in (lay.get("Inputs") or lay["Outputs"])[0]["Format/Datatype"] for lay in info)
    assert f"fp16 {fp16}" in next(ln for ln in lines if ln.startswith("precisions: "))
    assert all(len(ln) <= 80 for ln in lines)


def test_inspect_names_only_and_qat_reformats(tmp_path: Path) -> None:
    info = json.loads((QAT / "resnet-qat.onnx.engine.graph.json").read_text())["Layers"]
    names_only = tmp_path / "names.json"
    names_only.write_text(json.dumps({"Layers": [lay["Name"] for lay in info], "Bindings": []}))
    res = runner.invoke(app, ["inspect", str(names_only)])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == f"engine layers: {len(info)} (names-only)"
    reformats = sum(lay["Name"].startswith("Reformatting CopyNode") for lay in info)
    assert reformats > 0 and f"reformat layers: {reformats}" in res.output
    assert "fused MHA kernels: none" in res.output and "\nprecisions:" not in res.output


def test_ingest_layers_without_profile_prints_facts_and_writes_nothing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = ["ingest", "trtexec", "--layers", str(CONTROLNET / "layerinfo.json"), "--results-dir", str(results)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "Myelin regions" in res.output and "no run directory was written" in res.output
    assert _run_dirs(results) == []
    res = runner.invoke(app, ["ingest", "trtexec"])
    assert res.exit_code != 0 and "give --profile, --layers or both" in res.output
