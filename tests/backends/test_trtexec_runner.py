"""The trtexec backend's command line and orchestration.

TensorRT cannot run here.  The orchestration test points the runner at a FAKE ``trtexec``: a small
Python script written by the test that records its arguments and copies real recorded trtexec
files to the paths it is asked for.  That proves argument handling, output checks and ingestion;
it is not a TensorRT run."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from orinprof.backends import runner_class
from orinprof.backends.base import RAW_PROFILE_COLUMNS, RunnerOptions, TimingConfig
from orinprof.backends.trtexec import runner as trtexec_runner
from orinprof.backends.trtexec.runner import TrtexecRunner, probe, trtexec_args
from orinprof.errors import OrinprofError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONTROLNET = FIXTURES / "trt2023_controlnet_fp16"
TIMING = FIXTURES / "trex" / "rtx3090_tensorflow_resnet_fp32" / "resnet.onnx.engine.timing.json"

P = Path


def _args(precision: str, **kw: object) -> list[str]:
    return trtexec_args("trtexec", P("m.onnx"), P("m.engine"), P("p.json"), P("l.json"), P("t.json"), precision, **kw)  # type: ignore[arg-type]


def test_registry_points_at_this_runner() -> None:
    assert runner_class("trtexec") is TrtexecRunner


@pytest.mark.parametrize(
    ("precision", "kw", "present", "absent"),
    [
        ("fp32", {}, [], ["--fp16", "--int8", "--stronglyTyped"]),
        ("fp16", {}, ["--fp16"], ["--int8", "--stronglyTyped"]),
        ("int8-attn", {}, ["--fp16", "--int8"], ["--stronglyTyped"]),
        ("int8-all", {"strongly_typed": True}, ["--stronglyTyped"], ["--fp16", "--int8"]),
        ("fp16", {"cuda_graph": True}, ["--useCudaGraph"], []),
        ("fp16", {"dla_core": 1}, ["--useDLACore=1", "--allowGPUFallback"], []),
        (
            "fp16",
            {"shapes": {"input_ids": (1, 128), "mask": (1, 128)}},
            ["--shapes=input_ids:1x128,mask:1x128"],
            [],
        ),
    ],
)
def test_trtexec_args_flags(precision: str, kw: dict[str, object], present: list[str], absent: list[str]) -> None:
    args = _args(precision, **kw)
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)
    for flag in (
        "--onnx=m.onnx",
        "--saveEngine=m.engine",
        "--separateProfileRun",
        "--exportProfile=p.json",
        "--exportLayerInfo=l.json",
        "--exportTimes=t.json",
        "--profilingVerbosity=detailed",
        "--noDataTransfers",
        "--useSpinWait",
        "--duration=0",
        *present,
    ):
        assert flag in args
    for flag in absent:
        assert flag not in args
    assert "--useCudaGraph" not in args or kw.get("cuda_graph")
    assert len(args) == len(set(args))  # no flag given twice


def test_trtexec_args_timing_values() -> None:
    args = _args("fp16", warmup_ms=500, iterations=42, duration_s=3)
    assert {"--warmUp=500", "--iterations=42", "--duration=3"} <= set(args)


@pytest.mark.parametrize(
    ("precision", "kw", "message"),
    [
        ("int4", {}, "unknown precision"),
        ("fp16", {"iterations": 0}, "bad trtexec timing"),
        ("fp16", {"dla_core": 2}, "DLA core 2"),
    ],
)
def test_trtexec_args_bad_input(precision: str, kw: dict[str, object], message: str) -> None:
    with pytest.raises(OrinprofError, match=message):
        _args(precision, **kw)


def test_probe_without_trtexec_names_install_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(trtexec_runner, "DEFAULT_TRTEXEC", tmp_path / "missing" / "trtexec")
    ok, reason = probe()
    assert not ok
    assert "sudo apt install tensorrt" in reason and "desktop" in reason
    with pytest.raises(OrinprofError, match="trtexec not found") as err, TrtexecRunner(tmp_path / "m.onnx"):
        pass
    assert "sudo apt install tensorrt" in err.value.one_line()


# ------------------------------------------------------------------ orchestration with a fake trtexec

FAKE = """#!{python}
# FAKE trtexec written by a test: records its arguments, copies recorded files.  Not TensorRT.
import json, shutil, sys
args = sys.argv[1:]
json.dump(args, open({record!r}, "w"))
if {fail!r}:
    print("[E] Error[4]: [network.cpp::validate::3000] fake build failure")
    sys.exit(1)
opts = dict(a[2:].split("=", 1) for a in args if "=" in a)
shutil.copy({profile!r}, opts["exportProfile"])
shutil.copy({layers!r}, opts["exportLayerInfo"])
if {write_times!r}:
    shutil.copy({times!r}, opts["exportTimes"])
open(opts["saveEngine"], "wb").write(b"not an engine")
print("[I] TensorRT version: 10.3.0")
print("[I] Selected Device: Orin")
"""


def _fake(tmp_path: Path, fail: bool = False, write_times: bool = True) -> tuple[Path, Path]:
    record = tmp_path / "argv.json"
    exe = tmp_path / "bin" / "trtexec"
    exe.parent.mkdir()
    exe.write_text(
        FAKE.format(
            python=sys.executable,
            record=str(record),
            fail=fail,
            profile=str(CONTROLNET / "profile.json"),
            layers=str(CONTROLNET / "layerinfo.json"),
            times=str(TIMING),
            write_times=write_times,
        )
    )
    exe.chmod(0o755)
    return exe, record


def _onnx(tmp_path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="/Mul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "tiny.onnx"
    save(helper.make_model(graph), str(path))
    return path


def test_runner_orchestration_with_fake_trtexec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe, record = _fake(tmp_path)
    monkeypatch.setenv("PATH", str(exe.parent))  # found on PATH, like a desktop install
    assert probe() == (True, str(exe))
    model = _onnx(tmp_path)
    options = RunnerOptions(extra={"precision": "int8-attn", "work_dir": tmp_path / "work"})
    feed = {"x": np.zeros((1, 4), dtype=np.float32)}
    with TrtexecRunner(model, options) as runner:
        lat = runner.time_e2e(feed, TimingConfig(iterations=50, warmup_s=0.5))
        argv = json.loads(record.read_text())
        raw = runner.profile_layers(feed, 20)
        info = runner.info()
    # arguments: one list, the plan's flags, the feed's shapes
    assert {
        "--fp16",
        "--int8",
        "--separateProfileRun",
        "--iterations=50",
        "--warmUp=500",
        "--shapes=x:1x4",
    } <= set(argv)
    assert f"--onnx={model}" in argv
    # time_e2e returns the trace's GPU compute times (the fixture file's computeMs, in order)
    expected = [r["computeMs"] for r in json.loads(TIMING.read_text())]
    assert lat.tolist() == expected
    # profile_layers reuses the same launch (argv file untouched) and ingests the exported profile
    assert json.loads(record.read_text()) == argv
    assert list(raw.columns[: len(RAW_PROFILE_COLUMNS)]) == list(RAW_PROFILE_COLUMNS)
    assert len(raw) == len(json.loads((CONTROLNET / "profile.json").read_text())) - 1
    assert raw.loc[raw["layer"] == "/Mul", "onnx_nodes"].tolist() == ["/Mul"]  # resolved against the ONNX
    assert info.versions == {"tensorrt": "10.3.0"} and info.device_kind == "jetson"
    assert (tmp_path / "work" / "tiny.int8-attn.trtexec.log").exists()


def test_runner_reports_trtexec_failure_in_one_line(tmp_path: Path) -> None:
    exe, _ = _fake(tmp_path, fail=True)
    options = RunnerOptions(extra={"trtexec": exe, "work_dir": tmp_path / "work"})
    with TrtexecRunner(_onnx(tmp_path), options) as runner, pytest.raises(OrinprofError) as err:
        runner.time_e2e({"x": np.zeros((1, 4))}, TimingConfig(iterations=5))
    line = err.value.one_line()
    assert "trtexec failed (exit 1)" in line and "fake build failure" in line and "\n" not in line


def test_runner_reports_missing_outputs(tmp_path: Path) -> None:
    exe, _ = _fake(tmp_path, write_times=False)
    options = RunnerOptions(extra={"trtexec": exe, "work_dir": tmp_path / "work"})
    with (
        TrtexecRunner(_onnx(tmp_path), options) as runner,
        pytest.raises(OrinprofError, match="did not write"),
    ):
        runner.time_e2e({"x": np.zeros((1, 4))}, TimingConfig(iterations=5))


def test_runner_needs_the_onnx_file(tmp_path: Path) -> None:
    exe, _ = _fake(tmp_path)
    with (
        pytest.raises(OrinprofError, match="does not exist"),
        TrtexecRunner(tmp_path / "none.onnx", RunnerOptions(extra={"trtexec": exe})),
    ):
        pass
    shutil.rmtree(tmp_path / "bin")


def test_runner_cannot_infer(tmp_path: Path) -> None:
    exe, _ = _fake(tmp_path)
    with (
        TrtexecRunner(_onnx(tmp_path), RunnerOptions(extra={"trtexec": exe, "work_dir": tmp_path})) as runner,
        pytest.raises(OrinprofError, match="cannot return model outputs"),
    ):
        runner.infer({})
