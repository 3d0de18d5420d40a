"""The trtexec backend against a FAKE trtexec (``tests/fakes/trtexec.py``) that enforces the real
tool's rules, each cited there: version banner, option sets per version, the static-shape rule,
strong typing, ``--skipInference``/``--loadEngine``.  TensorRT never runs here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from conftest import FIXTURES
from fakes import trtexec as fake_trtexec
from orinprof.backends import runner_class
from orinprof.backends.base import RAW_PROFILE_COLUMNS, RunnerOptions, TimingConfig
from orinprof.backends.trtexec import runner as trtexec_runner
from orinprof.backends.trtexec.runner import (
    TrtexecOptions,
    TrtexecRunner,
    build_args,
    parse_version,
    precision_flags,
    probe,
    run_args,
)
from orinprof.errors import OrinprofError

CONTROLNET = FIXTURES / "trt2023_controlnet_fp16"
TIMING = FIXTURES / "trex" / "rtx3090_tensorflow_resnet_fp32" / "resnet.onnx.engine.timing.json"

P = Path
FEED = {"x": np.zeros((1, 8, 16), dtype=np.float32)}


def _onnx(path: Path, dims: list[int | str] | None = None, elem: int = TensorProto.FLOAT) -> Path:
    dims = dims or [1, 8, 16]
    w = helper.make_tensor("w", elem, [16, 16], np.ones(256, dtype=np.float32).tolist())
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="/fc/MatMul"),
            helper.make_node("Relu", ["h"], ["y"], name="/act/Relu"),
        ],
        "g",
        [helper.make_tensor_value_info("x", elem, dims)],
        [helper.make_tensor_value_info("y", elem, dims)],
        [w],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _qdq_onnx(path: Path) -> Path:
    """x → Q → DQ → MatMul: an FP32 Q/DQ graph with FP32 scales, as quantize.py writes."""
    inits = [
        helper.make_tensor("w", TensorProto.FLOAT, [16, 16], np.ones(256, dtype=np.float32).tolist()),
        helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
        helper.make_tensor("z", TensorProto.INT8, [], [0]),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        helper.make_node("MatMul", ["xd", "w"], ["y"], name="/fc/MatMul"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16])],
        inits,
    )
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``fake(version)`` puts a fake trtexec of that TensorRT version first on PATH; returns
    the list of argv it was called with (read after the calls)."""
    calls = tmp_path / "calls.jsonl"

    def install(version: str) -> Path:
        exe = fake_trtexec.install(tmp_path / "bin", version, calls)
        monkeypatch.setenv("PATH", f"{exe.parent}:/usr/bin:/bin")
        return exe

    def argv() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    install.calls = argv  # type: ignore[attr-defined]
    return install


def _builds(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if any(a.startswith("--onnx=") for a in c)]


def _opts(tmp_path: Path, plan: str, **kw: object) -> RunnerOptions:
    return RunnerOptions(plan=plan, backend=TrtexecOptions(work_dir=tmp_path / "work", **kw))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the fake enforces the rules


def test_fake_refuses_shapes_for_a_static_model(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    exe = fake("10.3.0")
    model = _onnx(tmp_path / "m.onnx")
    proc = subprocess.run([str(exe), f"--onnx={model}", "--shapes=x:1x8x16"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Static model does not take explicit shapes" in proc.stdout


def test_fake_trt11_rejects_fp16_flag(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    exe = fake("11.1.0")
    proc = subprocess.run([str(exe), f"--onnx={_onnx(tmp_path / 'm.onnx')}", "--fp16"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Unknown option: --fp16" in proc.stdout


@pytest.mark.parametrize(
    ("banner", "version"), [("v8601", (8, 6, 1)), ("v100300", (10, 3, 0)), ("v110100", (11, 1, 0))]
)
def test_version_from_banner(banner: str, version: tuple[int, int, int]) -> None:
    assert parse_version(f"&&&& RUNNING TensorRT.trtexec [TensorRT {banner}] # trtexec --help") == version


# ------------------------------------------------------------------ B1, B3, M2, M3: the build command


def test_static_onnx_builds_and_times_without_shapes(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    """B1: every plan failed because --shapes was always passed to a static ONNX."""
    fake("10.3.0")
    with TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")) as runner:
        lat = runner.time_e2e(FEED, TimingConfig(iterations=7, warmup_s=0))
    assert len(lat) == 7
    assert not any(a.startswith("--shapes") for c in fake.calls() for a in c)


def test_dynamic_onnx_gets_the_feed_shapes(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    model = _onnx(tmp_path / "m.onnx", [1, "seq", 16])
    with TrtexecRunner(model, _opts(tmp_path, "fp16")) as runner:
        runner.time_e2e(FEED, TimingConfig(iterations=3, warmup_s=0))
    assert all("--shapes=x:1x8x16" in c for c in fake.calls() if "--help" not in c)


def test_trt11_builds_strongly_typed_without_precision_flags(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    """B3: TensorRT 11's trtexec rejects --fp16/--int8 ("Unknown option")."""
    fake("11.1.0")
    fp16_graph = _onnx(tmp_path / "m.fp16.onnx", elem=TensorProto.FLOAT16)
    with TrtexecRunner(fp16_graph, _opts(tmp_path, "fp16")) as runner:
        runner.time_e2e(FEED, TimingConfig(iterations=3, warmup_s=0))
        info = runner.info()
    (build,) = _builds(fake.calls())
    assert not {"--fp16", "--int8"} & set(build) and f"--onnx={fp16_graph}" in build
    assert info.details["typing"] == "strong"
    assert info.details["precision_counts"] == {"fp16": 2}  # strong typing follows the FP16 ONNX
    # an FP32 graph as the fp16 plan would run FP32 under strong typing: refused, nothing built
    with (
        pytest.raises(OrinprofError, match="FP32 graph"),
        TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")),
    ):
        pass
    assert len(_builds(fake.calls())) == 1


def test_int8_under_strong_typing_builds_the_fp16_qdq_form(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    """M2: an FP32 Q/DQ graph built strongly typed ran FP32 outside the INT8 GEMMs (it was refused);
    trtexec 11 now gets the plan's FP16 form (FP16 scales, opset 19) and no precision flag."""
    fake("11.1.0")
    model = _qdq_onnx(tmp_path / "m.int8-attn.abc.onnx")
    with TrtexecRunner(model, _opts(tmp_path, "int8-attn")) as runner:
        info = runner.info()
    (build,) = _builds(fake.calls())
    assert f"--onnx={tmp_path / 'm.int8-attn.abc.strong-fp16.onnx'}" in build
    assert not {"--fp16", "--int8"} & set(build) and info.details["typing"] == "strong"
    assert info.details["precision_counts"].get("int8") == 1 and "fp16" in info.details["precision_counts"]


def test_weak_int8_builds_with_fp16_and_int8(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("8.6.2")
    model = _qdq_onnx(tmp_path / "m.int8-ffn.abc.onnx")
    with TrtexecRunner(model, _opts(tmp_path, "int8-ffn")) as runner:
        info = runner.info()
    (build,) = _builds(fake.calls())
    assert {"--fp16", "--int8"} <= set(build) and info.details["typing"] == "weak"
    assert info.details["precision_counts"].get("int8") == 1


def test_weak_fp16_plan_is_built_from_the_fp32_export(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    """M3: fp16 and INT8 plans must come from the same FP32 graph under weak typing."""
    fake("10.3.0")
    export = _onnx(tmp_path / "b1_s8.onnx")
    converted = _onnx(tmp_path / "b1_s8.fp16.onnx")  # stands in for onnxconverter's Cast-wrapped graph
    with TrtexecRunner(converted, _opts(tmp_path, "fp16")) as runner:
        assert runner.info().details["plan_source"] == str(export)
    (build,) = _builds(fake.calls())
    assert f"--onnx={export}" in build and "--fp16" in build


# ------------------------------------------------------------------ M5, m11, m1, m12: build once, time often


def test_engine_is_built_once_and_timed_in_separate_launches(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    runner = TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16"))
    with runner:
        assert len(_builds(fake.calls())) == 1  # built in activate
        for _ in range(3):  # interleaved rounds call time_e2e several times
            import time as _t

            before = _t.perf_counter()
            runner.time_e2e(FEED, TimingConfig(iterations=5, warmup_s=0))
            after = _t.perf_counter()
            assert runner.timed_window is not None
            start, end = runner.timed_window
            assert before <= start <= end <= after  # the window is inside the timing launch, not the build
        raw = runner.profile_layers(FEED, 4)
    calls = [c for c in fake.calls() if "--help" not in c]
    build, *runs = calls
    assert len(_builds(calls)) == 1
    assert "--skipInference" in build and any(a.startswith("--timingCacheFile=") for a in build)
    assert all(any(a.startswith("--loadEngine=") for a in c) for c in runs) and len(runs) == 4
    assert not any(a.startswith("--exportProfile") for c in runs[:3] for a in c)  # no profiler while timing
    assert list(raw.columns[: len(RAW_PROFILE_COLUMNS)]) == list(RAW_PROFILE_COLUMNS)
    assert set(raw["layer"]) == {"/fc/MatMul", "/act/Relu"}


def test_info_names_device_and_version_before_timing(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    """m1: info() ran before trtexec, so every row said "unknown"."""
    fake("10.3.0")
    with TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")) as runner:
        info = runner.info()
    assert info.device == "Orin" and info.device_kind == "jetson" and info.versions == {"tensorrt": "10.3.0"}
    assert info.details["layer_count"] == 2


def test_temporary_work_dir_is_removed(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    with TrtexecRunner(_onnx(tmp_path / "m.onnx"), RunnerOptions(plan="fp16")) as runner:
        work = runner.work_dir
        assert work is not None and any(work.glob("*.engine"))
    assert not work.exists()


# ------------------------------------------------------------------ bad input


def test_jetpack5_trtexec_is_refused(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("8.5.2")
    with (
        pytest.raises(OrinprofError, match="JetPack 5 is unsupported"),
        TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")),
    ):
        pass


def test_dla_with_fp32_is_refused(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    with (
        pytest.raises(OrinprofError, match="DLA runs FP16 and INT8 only"),
        TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp32", dla_core=0)),
    ):
        pass


def test_strongly_typed_on_trt86_is_refused(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("8.6.2")
    with (
        pytest.raises(OrinprofError, match="no --stronglyTyped"),
        TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp32", strongly_typed=True)),
    ):
        pass


def test_engine_from_another_tensorrt_fails_in_one_line(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    with TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")) as runner:
        fake("10.4.0")  # the binary changed under a kept engine
        with pytest.raises(OrinprofError) as err:
            runner.time_e2e(FEED, TimingConfig(iterations=3, warmup_s=0))
    line = err.value.one_line()
    assert "timing run failed (exit 1)" in line and "Version tag does not match" in line and "\n" not in line


def test_dynamic_onnx_without_any_shape_is_one_line(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    model = _onnx(tmp_path / "m.onnx", [1, "seq", 16])
    with TrtexecRunner(model, _opts(tmp_path, "fp16")) as runner, pytest.raises(OrinprofError) as err:
        runner.time_e2e({}, TimingConfig(iterations=3, warmup_s=0))
    assert "dynamic dimensions" in err.value.one_line() and "--seq" in err.value.one_line()


def test_build_failure_is_one_line_with_the_log(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    """A trtexec that fails mid-build: the first error line and where the full log is."""
    fake("8.6.2")
    model = _qdq_onnx(tmp_path / "m.onnx")  # a Q/DQ graph as the fp16 plan: 8.x wants --int8 for Q/DQ
    with pytest.raises(OrinprofError) as err, TrtexecRunner(model, _opts(tmp_path, "fp16")):
        pass
    line = err.value.one_line()
    assert "trtexec build failed (exit 1)" in line and "INT8 builder flag" in line and "full log:" in line
    assert "\n" not in line


def test_missing_trtexec_names_install_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(trtexec_runner, "DEFAULT_TRTEXEC", tmp_path / "missing" / "trtexec")
    ok, reason = probe()
    assert not ok and "sudo apt install tensorrt" in reason
    with pytest.raises(OrinprofError, match="trtexec not found"), TrtexecRunner(tmp_path / "m.onnx"):
        pass


def test_runner_cannot_infer_and_says_so(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    assert TrtexecRunner.returns_outputs is False and runner_class("trtexec") is TrtexecRunner
    with TrtexecRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")) as runner, pytest.raises(OrinprofError):
        runner.infer(FEED)


def test_legacy_extra_options_still_work(tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    fake("10.3.0")
    options = RunnerOptions(extra={"precision": "fp16", "work_dir": tmp_path / "w"})
    with TrtexecRunner(_onnx(tmp_path / "m.onnx"), options) as runner:
        assert runner.precision == "fp16" and runner.work_dir == tmp_path / "w"


# ------------------------------------------------------------------ argument builders


@pytest.mark.parametrize(
    ("plan", "major", "strong", "flags"),
    [
        ("fp32", 10, False, []),
        ("fp16", 8, False, ["--fp16"]),
        ("int8-attn", 10, False, ["--fp16", "--int8"]),
        ("int8-all", 10, True, ["--stronglyTyped"]),
        ("fp16", 11, True, []),
        ("int8-ffn", 11, True, []),
    ],
)
def test_precision_flags(plan: str, major: int, strong: bool, flags: list[str]) -> None:
    assert precision_flags(plan, major, strong) == flags


def test_argument_builders_bad_input() -> None:
    with pytest.raises(OrinprofError, match="unknown precision"):
        precision_flags("int4", 10, False)
    with pytest.raises(OrinprofError, match="bad trtexec timing"):
        run_args("trtexec", P("e"), iterations=0)
    with pytest.raises(OrinprofError, match="DLA core 2"):
        build_args("t", P("m"), P("e"), P("l"), P("c"), "fp16", major=10, dla_core=2)
    args = run_args("trtexec", P("e"), times=P("t.json"), cuda_graph=True, warmup_ms=500, iterations=42)
    assert {"--loadEngine=e", "--exportTimes=t.json", "--useCudaGraph", "--warmUp=500", "--iterations=42"} <= set(args)
