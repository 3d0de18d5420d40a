"""TensorRT runner: the pure parts (engine facts from inspector JSON, profiler rows, options, probe,
CUDA return-code checks).  TensorRT and CUDA are not installed here: nothing in this file runs an
engine; engine facts are read from a real recorded inspector file (trtexec --exportLayerInfo)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import FIXTURES
from orinprof.backends import available
from orinprof.backends.tensorrt import runner
from orinprof.backends.tensorrt.cuda import CudaPython
from orinprof.backends.tensorrt.runner import TrtOptions, engine_facts, profile_rows
from orinprof.errors import OrinprofError

LAYERINFO = FIXTURES / "trt2023_controlnet_fp16" / "layerinfo.json"


@pytest.fixture(scope="module")
def controlnet():
    text = LAYERINFO.read_text()
    return json.loads(text)["Layers"], engine_facts(text)


def test_facts_count_every_layer(controlnet):
    layers, facts = controlnet
    assert facts.layer_count == len(layers)
    assert sum(facts.precision_counts.values()) == len(layers)
    assert set(facts.layer_precisions) == {layer["Name"] for layer in layers}


def test_facts_read_precision_from_the_input_format(controlnet):
    layers, facts = controlnet
    fp16 = next(lay for lay in layers if lay.get("Inputs") and "FP16" in lay["Inputs"][0]["Format/Datatype"])
    fp32 = next(lay for lay in layers if lay.get("Inputs") and lay["Inputs"][0]["Format/Datatype"].endswith("FP32"))
    assert facts.layer_precisions[fp16["Name"]] == "fp16"
    assert facts.layer_precisions[fp32["Name"]] == "fp32"


def test_facts_split_metadata_into_onnx_nodes(controlnet):
    layers, facts = controlnet
    fused = next(lay for lay in layers if "\x1e" in (lay.get("Metadata") or ""))
    expected = re.findall(r"\[ONNX Layer: ([^\]|]+?)(?: \|[^\]]*)?\]", fused["Metadata"])
    assert len(expected) >= 2
    assert facts.onnx_nodes[fused["Name"]] == ";".join(expected)
    myelin = next(lay for lay in layers if lay["LayerType"] == "Myelin")
    assert facts.onnx_nodes[myelin["Name"]] == ""  # empty Metadata stays empty, never guessed


def test_fp16_controlnet_has_no_fused_mha(controlnet):
    layers, facts = controlnet
    assert not any("mha" in (lay["Name"] + lay.get("TacticName", "")).lower() for lay in layers)
    assert facts.fused_mha_precisions == () and facts.fused_mha_layers == ()
    # Myelin regions could hide a fused MHA on 8.6: "unknown", never a false "no" (review M1)
    assert facts.fused_mha is None and len(facts.myelin_regions) == 7


def test_fused_mha_and_its_precision_are_reported():
    # shape of a TRT 10 Myelin MHA kernel as quoted in NVIDIA/TensorRT#4397 (hand-written, not a fixture)
    info = {
        "Layers": [
            {
                "Name": "/enc/layers_0/attn/query/MatMul_myl0_1",
                "LayerType": "gemm",
                "Inputs": [{"Name": "a", "Format/Datatype": "Int8"}],
                "Outputs": [{"Name": "b", "Format/Datatype": "Int8"}],
                "TacticName": "sm87_xmma_gemm_i8i8",
                "Metadata": "[ONNX Layer: /enc/layers.0/attn/query/MatMul]",
            },
            {
                "Name": "_gemm_mha_v2_myl0_2",
                "LayerType": "kgen",
                "Inputs": [{"Name": "b", "Format/Datatype": "Int8"}],
                "Outputs": [{"Name": "c", "Format/Datatype": "Half"}],
                "TacticName": "_gemm_mha_v2_0x957a",
                "Metadata": "[ONNX Layer: /enc/layers.0/attn/MatMul]\x1f"
                "[ONNX Layer: /enc/layers.0/attn/Softmax]\x1f[ONNX Layer: /enc/layers.0/attn/MatMul_1]",
            },
        ],
        "Bindings": ["a", "c"],
    }
    facts = engine_facts(json.dumps(info))
    assert facts.fused_mha_layers == ("_gemm_mha_v2_myl0_2",)
    assert facts.fused_mha_precisions == ("int8",)
    assert facts.onnx_nodes["_gemm_mha_v2_myl0_2"].split(";") == [
        "/enc/layers.0/attn/MatMul",
        "/enc/layers.0/attn/Softmax",
        "/enc/layers.0/attn/MatMul_1",
    ]


def test_invalid_inspector_json_is_a_user_error():
    with pytest.raises(OrinprofError, match="invalid JSON"):
        engine_facts("{truncated")


def test_profile_rows_keep_iterations_and_missing_nodes(controlnet):
    layers, facts = controlnet
    named = layers[0]["Name"]
    reports = [[(named, 0.5), ("not-in-inspector", 0.25)], [(named, 0.75), ("not-in-inspector", 0.5)]]
    df = profile_rows(reports, facts, onnx_node_names=[])
    assert list(df.columns[:5]) == ["iteration", "layer", "op_type", "onnx_nodes", "time_ms"]
    assert df["iteration"].tolist() == [0, 0, 1, 1]
    assert df["time_ms"].tolist() == [0.5, 0.25, 0.75, 0.5]
    assert df.loc[0, "op_type"] == layers[0]["LayerType"]
    assert math.isnan(df.loc[1, "onnx_nodes"])  # unknown stays NaN, not ""


def test_options_from_extra(tmp_path):
    opts = TrtOptions.from_extra({"precision": "int8-all", "engine_dir": tmp_path, "dla_core": "1"})
    assert opts.dla_core == 1 and opts.timing_cache == tmp_path / "timing.cache"
    assert opts.build_options().key_parts()["precision"] == "int8-all"
    with pytest.raises(OrinprofError, match="unknown TensorRT option"):
        TrtOptions.from_extra({"workspace": 10})


def test_probe_without_tensorrt_gives_reason_not_exception(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    ok, reason = runner.probe()
    assert not ok and "python3-libnvinfer" in reason
    rows = {a.name: a for a in available()}
    assert rows["tensorrt"].ok is False and "TensorRT" in rows["tensorrt"].reason


def test_backend_modules_import_no_device_library():
    code = (
        "import sys, orinprof.backends.tensorrt.runner, orinprof.backends.tensorrt.build, "
        "orinprof.backends.tensorrt.cuda, orinprof.lint; "
        "print(sorted(m for m in ('tensorrt', 'cuda', 'pycuda', 'onnxruntime', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cuda_python_return_codes_are_checked():
    codes = SimpleNamespace(cudaSuccess=0)
    fail = SimpleNamespace(name="cudaErrorMemoryAllocation")
    cudart = SimpleNamespace(
        cudaError_t=codes,
        cudaMalloc=lambda n: (0, 1234) if n < 100 else (fail, 0),
        cudaFree=lambda p: (0,),
    )
    api = CudaPython(cudart)
    assert api.malloc(10) == 1234
    api.free(1234)
    with pytest.raises(OrinprofError) as err:
        api.malloc(1000)
    assert "cudaErrorMemoryAllocation" in err.value.one_line() and "out of memory" in err.value.one_line()


def test_options_accept_what_measure_passes(tmp_path) -> None:
    """The pipeline hands every runner typed options plus legacy extra keys; TrtOptions takes both."""
    from orinprof.backends.tensorrt.runner import TrtOptions
    from orinprof.measure import ProfileConfig, ProfileRun, Shape
    from orinprof.models import get

    cfg = ProfileConfig(
        model="bert-tiny",
        backend="tensorrt",
        models_dir=tmp_path / "models",
        extra={"dla_core": 0, "strongly_typed": True},
    )
    inputs = get("bert-tiny").inputs(1, 32)
    shape = Shape(32, 1, tuple(inputs), {}, [], lambda: iter(()), "none")
    options = ProfileRun(cfg).runner_options("int8-attn", shape)
    trt_options = TrtOptions.from_runner_options(options)
    assert trt_options.precision == "int8-attn" and trt_options.dla_core == 0 and trt_options.strongly_typed
    assert trt_options.input_shapes == {i.name: tuple(i.shape) for i in inputs}
