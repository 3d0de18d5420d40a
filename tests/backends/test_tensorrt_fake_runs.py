"""The TensorRT Python backend end to end against FAKE ``tensorrt`` modules of 8.6.2, 10.3 and 11.1
(``tests/fakes/tensorrt_fake.py``; every rule there cites its source) and a fake CUDA API.  No
TensorRT and no GPU run here: this checks the runner's calls and decisions, not TensorRT."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from fakes import tensorrt_fake
from fakes.tensorrt_fake import FakeCuda
from orinprof import attribute
from orinprof.backends.base import RunnerOptions, TimingConfig
from orinprof.backends.tensorrt import cuda as cuda_module
from orinprof.backends.tensorrt import runner as trt_runner
from orinprof.backends.tensorrt.cuda import CudaPython, LibCudart, PyCuda, load_cuda
from orinprof.backends.tensorrt.engine_cache import CacheKey
from orinprof.backends.tensorrt.runner import TensorRTRunner, TrtOptions, engine_facts, profile_rows
from orinprof.errors import OrinprofError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FEED = {"x": np.ones((1, 8, 16), dtype=np.float32)}
TIMING = TimingConfig(warmup_iters=1, warmup_s=0, iterations=5)


def _onnx(path: Path, dims: list[int | str] | None = None, qdq: bool = False) -> Path:
    dims = dims or [1, 8, 16]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [16, 16], np.eye(16, dtype=np.float32).ravel().tolist())]
    nodes = []
    x = "x"
    if qdq:
        inits += [
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        ]
        x = "xd"
    nodes += [
        helper.make_node("MatMul", [x, "w"], ["h"], name="/fc/MatMul"),
        helper.make_node("Relu", ["h"], ["y"], name="/act/Relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
        inits,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def trt(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``trt(version)`` installs a fake tensorrt module and a fake CUDA; returns (module, cuda)."""

    def install(version: str):  # type: ignore[no-untyped-def]
        module = tensorrt_fake.make(version)
        fake_cuda = FakeCuda()
        monkeypatch.setitem(sys.modules, "tensorrt", module)
        monkeypatch.setattr(trt_runner, "load_cuda", lambda: fake_cuda)
        return module, fake_cuda

    return install


def _opts(tmp_path: Path, plan: str, **kw: object) -> RunnerOptions:
    return RunnerOptions(plan=plan, backend=TrtOptions(engine_dir=tmp_path / "engines", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["8.6.2", "10.3.0", "11.1.0"])
def test_fp32_plan_runs_on_every_version(tmp_path: Path, trt, version: str) -> None:  # type: ignore[no-untyped-def]
    trt(version)
    with TensorRTRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp32")) as runner:
        lat = runner.time_e2e(FEED, TIMING)
        raw = runner.profile_layers(FEED, 3)
        outputs = runner.infer(FEED)
        info = runner.info()
    assert len(lat) == 5 and set(raw["iteration"]) == {0, 1, 2}
    assert outputs["y"].shape == (1, 8, 16)
    assert info.details["typing"] == ("strong" if version.startswith("11") else "weak")


def test_runner_times_several_blocks_in_a_row(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    """Interleaved rounds call time_e2e several times on one runner: no rebuild, same results shape."""
    module, _ = trt("10.3.0")
    with TensorRTRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")) as runner:
        blocks = [runner.time_e2e(FEED, TIMING) for _ in range(3)]
        assert runner.timed_window is not None
    assert [len(b) for b in blocks] == [5, 5, 5] and len(module.calls) == 1


# ------------------------------------------------------------------ M4: dynamic axes


def test_dynamic_onnx_runs_with_input_shapes(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    """M4: a dynamic ONNX could not run: no shapes reached the build, set_input_shape was never called."""
    trt("10.3.0")
    options = RunnerOptions(
        plan="fp16", input_shapes={"x": (1, 8, 16)}, backend=TrtOptions(engine_dir=tmp_path / "engines")
    )
    with TensorRTRunner(_onnx(tmp_path / "m.onnx", [1, "seq", 16]), options) as runner:
        runner.time_e2e(FEED, TIMING)
        raw = runner.profile_layers(FEED, 2)
        assert runner.infer(FEED)["y"].shape == (1, 8, 16)
    assert len(raw)


def test_dynamic_onnx_without_shapes_is_one_line(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    trt("10.3.0")
    with (
        pytest.raises(OrinprofError) as err,
        TensorRTRunner(_onnx(tmp_path / "m.onnx", [1, "seq", 16]), _opts(tmp_path, "fp16")),
    ):
        pass
    assert "dynamic" in err.value.one_line() and "\n" not in err.value.one_line()


# ------------------------------------------------------------------ M2, M3, m3: typing


def test_int8_under_strong_typing_builds_the_fp16_qdq_form(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    """M2: strong typing builds the INT8 plan's FP16 form (FP16 scales, opset 19), with no
    precision flag, and records which ONNX and typing the engine was built from."""
    module, _ = trt("11.1.0")
    model = _onnx(tmp_path / "m.int8-ffn.k.onnx", qdq=True)
    with TensorRTRunner(model, _opts(tmp_path, "int8-ffn")) as runner:
        info = runner.info()
    assert info.details["plan_source"] == str(tmp_path / "m.int8-ffn.k.strong-fp16.onnx")
    assert info.details["typing"] == "strong"
    (build,) = module.calls
    assert build[2] == []
    # the MatMul in INT8; the input Cast and the Relu in FP16; the output Cast back to the FP32 output
    assert info.details["precision_counts"] == {"int8": 1, "fp16": 2, "fp32": 1}


def test_weak_fp16_builds_the_fp32_export_with_the_fp16_flag(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    module, _ = trt("8.6.2")
    export = _onnx(tmp_path / "b1.onnx")
    with TensorRTRunner(_onnx(tmp_path / "b1.fp16.onnx"), _opts(tmp_path, "fp16")) as runner:
        info = runner.info()
        assert runner.attribution_graph() == export
    assert info.details["plan_source"] == str(export) and info.details["typing"] == "weak"
    (build,) = module.calls
    assert build[2] == [module.BuilderFlag.FP16]
    sidecar = json.loads(next((tmp_path / "engines").glob("*.json")).read_text())
    assert sidecar["key"]["builder_options"]["typing"] == "weak"  # m3: the typing used is recorded


def test_weak_int8_gets_fp16_and_int8_flags(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    module, _ = trt("10.3.0")
    with TensorRTRunner(_onnx(tmp_path / "m.int8-ffn.k.onnx", qdq=True), _opts(tmp_path, "int8-ffn")) as runner:
        info = runner.info()
    assert sorted(module.calls[0][2]) == sorted([module.BuilderFlag.FP16, module.BuilderFlag.INT8])
    assert info.details["precision_counts"].get("int8") == 1


# ------------------------------------------------------------------ M1: Myelin regions and reformats


def test_foreign_node_and_reformat_are_never_other(tmp_path: Path) -> None:
    """M1: on TensorRT 8.6 the Myelin region and reformats were attributed to other/ok."""
    facts = engine_facts((FIXTURES / "trt2023_controlnet_fp16" / "layerinfo.json").read_text())
    foreign = facts.myelin_regions[0]
    reformat = next(n for n in facts.layer_types if n.startswith("Reformatting CopyNode"))
    raw = profile_rows([[(foreign, 1.0), (reformat, 0.1)]], facts, onnx_node_names=["unrelated"])
    layers = attribute.attribute_layers(raw, None, None).set_index("layer")
    assert layers.loc[foreign, "layer_class"] == "fused-unattributed"
    assert layers.loc[reformat, "layer_class"] == "reformat"


def test_trt86_engine_reports_myelin_and_unknown_fused_mha(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    trt("8.6.2")
    nodes = [
        helper.make_node("MatMul", ["q", "k"], ["s"], name="/attn/MatMul"),
        helper.make_node("Softmax", ["s"], ["p"], name="/attn/Softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"], name="/attn/MatMul_1"),
    ]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8, 8]) for n in ("q", "k", "v", "y")]
    path = tmp_path / "attn.onnx"
    save(
        helper.make_model(helper.make_graph(nodes, "g", vi[:3], vi[3:]), opset_imports=[helper.make_opsetid("", 17)]),
        str(path),
    )
    feed = {n: np.ones((1, 8, 8), np.float32) for n in ("q", "k", "v")}
    with TensorRTRunner(path, _opts(tmp_path, "fp16")) as runner:
        raw = runner.profile_layers(feed, 1)
        info = runner.info()
    assert info.details["myelin_regions"] == 1 and info.details["fused_mha"] is None
    foreign = raw[raw["layer"].str.startswith("{ForeignNode[")]
    assert len(foreign) == 1 and foreign["mapping"].iloc[0] == "range"  # expanded over the ONNX order


# ------------------------------------------------------------------ minors


def test_corrupt_timing_cache_falls_back_to_an_empty_one(tmp_path: Path, trt, caplog) -> None:  # type: ignore[no-untyped-def]
    """m2: create_timing_cache returns None for a stale cache; the build used to crash on it."""
    trt("10.3.0")
    cache = tmp_path / "old.cache"
    cache.write_bytes(b"TensorRT 8.6 cache bytes")
    options = _opts(tmp_path, "fp16", timing_cache=cache)
    with caplog.at_level(logging.WARNING), TensorRTRunner(_onnx(tmp_path / "m.onnx"), options):
        pass
    assert "not usable by this TensorRT" in caplog.text
    assert cache.read_bytes().startswith(b'{"fake_timing_cache"')  # replaced by a valid one


def test_default_timing_cache_is_named_per_version_and_gpu(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    trt("10.3.0")
    with TensorRTRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")):
        pass
    assert [p.name for p in (tmp_path / "engines").glob("timing.*")] == ["timing.trt10.3.0.Orin.sm16.cache"]


def test_cache_key_tells_orin_modules_apart() -> None:
    """m14: AGX and NX Orin share the name and CC 8.7; SM count and memory differ."""
    agx = CacheKey(
        "sha", "fp16", gpu_name="Orin", compute_capability="8.7", gpu_multiprocessors=16, gpu_memory=64 << 30
    )
    nx = CacheKey("sha", "fp16", gpu_name="Orin", compute_capability="8.7", gpu_multiprocessors=8, gpu_memory=16 << 30)
    assert agx.digest() != nx.digest()


def test_dla_with_fp32_is_refused(tmp_path: Path, trt) -> None:  # type: ignore[no-untyped-def]
    """m8: DLA runs FP16/INT8 only; the build used to fail late."""
    module, _ = trt("10.3.0")
    with (
        pytest.raises(OrinprofError, match="DLA runs FP16 and INT8 only"),
        TensorRTRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp32", dla_core=0)),
    ):
        pass
    assert module.calls == []


def test_host_located_tensor_is_refused(tmp_path: Path, trt, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """m15: a host-located (shape) tensor would have been given a device pointer."""
    module, _ = trt("10.3.0")
    monkeypatch.setattr(module.ICudaEngine, "get_tensor_location", lambda self, name: module.TensorLocation.HOST)
    with (
        pytest.raises(OrinprofError, match="host memory"),
        TensorRTRunner(_onnx(tmp_path / "m.onnx"), _opts(tmp_path, "fp16")),
    ):
        pass


def test_failed_graph_capture_times_without_a_graph(tmp_path: Path, trt, caplog) -> None:  # type: ignore[no-untyped-def]
    """m4: a failed capture raised mid-run and left the stream capturing."""
    _, fake_cuda = trt("10.3.0")
    ended = []

    def begin(stream: int) -> None:
        pass

    def end(stream: int) -> None:
        ended.append(stream)
        raise OrinprofError("CUDA call cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated")

    fake_cuda.supports_graphs = True
    fake_cuda.graph_begin_capture, fake_cuda.graph_end_capture = begin, end
    options = RunnerOptions(plan="fp16", cuda_graph=True, backend=TrtOptions(engine_dir=tmp_path / "e"))
    with caplog.at_level(logging.WARNING), TensorRTRunner(_onnx(tmp_path / "m.onnx"), options) as runner:
        assert len(runner.time_e2e(FEED, TIMING)) == 5
        assert runner._graph is None
    assert ended and "timing without a graph" in caplog.text


def test_cuda11_graph_instantiate_signature() -> None:
    """m5: cuda-python 11.x has cudaGraphInstantiate(graph, logBuffer, bufferSize)."""

    def instantiate(graph, log_buffer, size):  # type: ignore[no-untyped-def]
        return (0, "exec", None)

    rt = SimpleNamespace(
        cudaError_t=SimpleNamespace(cudaSuccess=0),
        cudaStreamEndCapture=lambda s: (0, "graph"),
        cudaGraphInstantiate=instantiate,
    )
    assert CudaPython(rt).graph_end_capture(1) == "exec"


# ------------------------------------------------------------------ B6: cuda-python newer than the driver


def _insufficient_driver_cudart() -> SimpleNamespace:
    fail = SimpleNamespace(name="cudaErrorInsufficientDriver")
    return SimpleNamespace(cudaError_t=SimpleNamespace(cudaSuccess=0), cudaGetDeviceCount=lambda: (fail, 0))


def test_cuda_python_failing_its_probe_falls_back_to_pycuda(monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """B6: cuda-python 12.9 imports on JetPack 6 and then fails with cudaErrorInsufficientDriver."""
    pycuda_api = PyCuda(SimpleNamespace(Error=RuntimeError))
    monkeypatch.setattr(cuda_module, "_cuda_python", lambda: CudaPython(_insufficient_driver_cudart()))
    monkeypatch.setattr(cuda_module, "_pycuda", lambda: pycuda_api)
    with caplog.at_level(logging.WARNING):
        assert load_cuda() is pycuda_api
    assert "cudaErrorInsufficientDriver" in caplog.text


def test_no_working_binding_is_one_line_naming_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda_module, "_cuda_python", lambda: CudaPython(_insufficient_driver_cudart()))
    monkeypatch.setattr(cuda_module, "_pycuda", lambda: None)
    monkeypatch.setattr(cuda_module, "_libcudart", lambda: None)
    with pytest.raises(OrinprofError) as err:
        load_cuda()
    line = err.value.one_line()
    assert "cudaErrorInsufficientDriver" in line and "cuda-python==12.6.*" in line and "\n" not in line


def test_libcudart_fallback_checks_return_codes() -> None:
    """The ctypes path: C return codes checked, the error name read with cudaGetErrorName."""
    import ctypes

    def get_count(ptr):  # type: ignore[no-untyped-def]
        ptr._obj.value = 1
        return 0

    def malloc(ptr, size):  # type: ignore[no-untyped-def]
        if size.value > 100:
            return 2  # cudaErrorMemoryAllocation
        ptr._obj.value = 4096
        return 0

    lib = SimpleNamespace(
        cudaGetDeviceCount=get_count, cudaMalloc=malloc, cudaGetErrorName=lambda e: b"cudaErrorMemoryAllocation"
    )
    api = LibCudart(lib)
    api.probe()
    assert api.malloc(10) == 4096
    with pytest.raises(OrinprofError) as err:
        api.malloc(1000)
    assert "cudaErrorMemoryAllocation" in err.value.one_line() and "out of memory" in err.value.one_line()
    assert ctypes  # the fake receives real ctypes byref arguments
