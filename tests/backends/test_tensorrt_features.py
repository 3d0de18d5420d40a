"""Feature detection against fake ``tensorrt`` modules with the attribute layout of 8.5, 8.6, 10.3 and
11.x (from NvInfer.h / pyCore.cpp at those tags, quantization_path.md §2.1).  No TensorRT here."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from orinprof.backends.tensorrt import features
from orinprof.backends.tensorrt.features import detect_features, import_tensorrt, plan_typing
from orinprof.errors import OrinprofError


def fake_trt(version: str) -> SimpleNamespace:
    """A stand-in module: only the names features.py looks for, with each version's values."""
    major = int(version.split(".")[0])
    creation = {}
    if major < 11:
        creation["EXPLICIT_BATCH"] = 0
    if major == 10:
        creation["STRONGLY_TYPED"] = 1
    elif major >= 11:
        creation["STRONGLY_TYPED"] = 0  # deprecated and ignored in 11.x
    flags = {"TF32": 6}
    if major < 11:
        flags.update(FP16=0, INT8=1, OBEY_PRECISION_CONSTRAINTS=9, GPU_FALLBACK=3)
    builder = SimpleNamespace(**({"platform_has_fast_int8": True} if major < 11 else {}))
    return SimpleNamespace(
        __version__=version,
        NetworkDefinitionCreationFlag=SimpleNamespace(**creation),
        BuilderFlag=SimpleNamespace(**flags),
        Builder=builder,
        IBuilderConfig=SimpleNamespace(set_memory_pool_limit=lambda *a: None),
        IExecutionContext=SimpleNamespace(execute_async_v3=lambda *a: True),
        ICudaEngine=SimpleNamespace(create_engine_inspector=lambda: None),
        IProfiler=object,
    )


def test_trt86_needs_explicit_batch_and_has_no_strong_typing():
    f = detect_features(fake_trt("8.6.2.3"))
    assert (f.major, f.minor) == (8, 6)
    assert f.explicit_batch_bit == 1 << 0
    assert f.strongly_typed_bit is None
    assert f.weak_typing_available and f.has_layer_metadata
    plan = plan_typing(f, "int8-attn")
    assert plan == features.TypingPlan(False, 1, ("FP16", "INT8"))
    with pytest.raises(OrinprofError, match="no strongly typed"):
        plan_typing(f, "fp16", strongly_typed=True)


def test_trt103_ignores_explicit_batch_and_reads_strongly_typed_value():
    trt = fake_trt("10.3.0.30")
    f = detect_features(trt)
    assert f.explicit_batch_bit == 0  # deprecated in 10.0: not set
    assert f.strongly_typed_bit == 1 << trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert plan_typing(f, "fp16").builder_flags == ("FP16",)
    strong = plan_typing(f, "int8-all", strongly_typed=True)
    assert strong.strongly_typed and strong.builder_flags == () and strong.network_flags == f.strongly_typed_bit


def test_strongly_typed_value_is_read_not_assumed():
    trt = fake_trt("10.3.0.30")
    trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED = 2  # the 9.x value
    assert detect_features(trt).strongly_typed_bit == 1 << 2


def test_trt11_is_strongly_typed_only():
    f = detect_features(fake_trt("11.0.0.1"))
    assert f.strongly_typed_required and not f.has_fp16_flag and not f.has_int8_flag
    assert not f.has_platform_has_fast_int8 and not f.has_obey_precision_constraints
    plan = plan_typing(f, "int8-ffn")
    assert plan.strongly_typed and plan.builder_flags == ()
    with pytest.raises(OrinprofError, match="only strongly typed") as err:
        plan_typing(f, "fp16", strongly_typed=False)
    assert "--weakly-typed" not in err.value.one_line()  # m7: no such flag exists


def test_jetpack5_trt85_is_refused_in_one_line():
    """B4/m6: JetPack 5 (TensorRT 8.5.2, Python 3.8) cannot install or run orinprof."""
    for version in ("8.5.2.2", "8.4.3.1"):
        with pytest.raises(OrinprofError) as err:
            detect_features(fake_trt(version))
        line = err.value.one_line()
        assert "need ≥ 8.6" in line and "JetPack 5 is unsupported" in line and "JetPack 6" in line


def test_unknown_precision_lists_choices():
    with pytest.raises(OrinprofError) as err:
        plan_typing(detect_features(fake_trt("10.3.0.30")), "int4")
    assert "int8-attn" in err.value.one_line()


def test_missing_tensorrt_names_both_install_routes(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    with pytest.raises(OrinprofError) as err:
        import_tensorrt()
    line = err.value.one_line()
    assert "python3-libnvinfer" in line and "--system-site-packages" in line and "pip install tensorrt" in line
