"""End to end: ``measure.profile`` (what ``orinprof profile`` runs) with ``--backend trtexec`` and
``--backend tensorrt`` against the FAKE trtexec and FAKE tensorrt of several versions, for every
plan.  The fakes enforce the real tools' rules (tests/fakes/*.py cite them); nothing here runs
TensorRT, so the numbers are meaningless: the test asserts that the pipeline completes with a row
per plan and that what the fakes report (typing, Myelin regions) reaches the summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from fakes import tensorrt_fake
from fakes import trtexec as fake_trtexec
from orinprof.backends.base import TimingConfig
from orinprof.backends.tensorrt import runner as trt_runner
from orinprof.measure import ProfileConfig, profile
from orinprof.plans import PLAN_NAMES

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

FAST = TimingConfig(warmup_iters=1, warmup_s=0.0, iterations=5, profile_iterations=2)
WEAK_PLANS = PLAN_NAMES  # fp32, fp16, int8-attn, int8-ffn, int8-all


def _cfg(backend: str, tmp_path: Path, models_dir: Path, precisions: tuple[str, ...]) -> ProfileConfig:
    return ProfileConfig(
        model="bert-tiny",
        precisions=precisions,
        seq_lens=(16,),
        backend=backend,
        timing=FAST,
        calib_batches=2,
        fidelity_samples=1,
        telemetry="none",
        results_dir=tmp_path / "results",
        models_dir=models_dir,
        threads=1,
    )


@pytest.mark.slow
@pytest.mark.parametrize("version", ["8.6.2", "10.3.0"])
def test_trtexec_profiles_every_plan(tmp_path: Path, models_dir: Path, monkeypatch, version: str) -> None:  # type: ignore[no-untyped-def]
    """B1 + B2: every trtexec plan used to fail (static --shapes), and the first plan aborted the
    run (fidelity called infer on a runner that returns no outputs)."""
    exe = fake_trtexec.install(tmp_path / "bin", version)
    monkeypatch.setenv("PATH", f"{exe.parent}:{Path(sys.executable).parent}:/usr/bin:/bin")
    result = profile(_cfg("trtexec", tmp_path, models_dir, WEAK_PLANS))
    assert result.failures == ()
    summary = result.summary
    assert list(summary["precision"]) == list(WEAK_PLANS)
    assert summary["fidelity_cosine"].isna().all()  # trtexec returns no outputs: NaN, not a crash
    assert (summary["e2e_median_ms"] > 0).all()
    assert (summary["engine_typing"] == "weak").all()  # m3: the typing used, per engine
    layers = pd.read_csv(result.run_dir / "layers.csv")
    if version.startswith("8."):
        # Myelin {ForeignNode[...]} regions are traced over the ONNX order or left unattributed
        assert layers["layer"].str.startswith("{ForeignNode[").any()
        assert summary["fused_mha"].isna().all()  # unknown under a Myelin region, not a false "no"
        assert (summary["myelin_regions"] > 0).all()
        # INT8 layers a Myelin region may hide: unknown, never a false zero (and no false flag)
        int8_rows = summary[summary["precision"].str.startswith("int8")]
        assert int8_rows[["int8_kernels_attention", "int8_kernels_ffn"]].isna().all().all()
        assert not summary["trust_flags"].fillna("").str.contains("int8_class_not_executed").any()
    else:
        # issue 14, say what ran: the engine's layer precisions, per class
        by_plan = summary.set_index("precision")
        assert by_plan.loc["fp16", ["int8_kernels_attention", "int8_kernels_ffn"]].tolist() == [0, 0]
        assert by_plan.loc["int8-ffn", "int8_kernels_ffn"] > 0
        assert by_plan.loc["int8-ffn", "int8_kernels_attention"] == 0
        assert by_plan.loc["int8-attn", "int8_kernels_attention"] > 0
        assert by_plan.loc["int8-attn", "int8_kernels_ffn"] == 0


@pytest.mark.slow
def test_trtexec_11_profiles_every_plan_strongly_typed(tmp_path: Path, models_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """B3 + M2: TensorRT 11 has no --fp16/--int8 (the fake rejects them); the INT8 plans are built
    from their FP16 Q/DQ form (FP16 scales, opset 19), no longer refused."""
    exe = fake_trtexec.install(tmp_path / "bin", "11.1.0")
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_TRTEXEC_CALLS", str(calls))
    monkeypatch.setenv("PATH", f"{exe.parent}:{Path(sys.executable).parent}:/usr/bin:/bin")
    result = profile(_cfg("trtexec", tmp_path, models_dir, WEAK_PLANS))
    assert result.failures == ()
    assert list(result.summary["precision"]) == list(WEAK_PLANS)
    assert (result.summary["engine_typing"] == "strong").all()
    built = [json.loads(line) for line in calls.read_text().splitlines() if '"--saveEngine' in line]
    onnx_args = [next(a for a in argv if a.startswith("--onnx=")) for argv in built]
    int8_sources = [a for a in onnx_args if ".int8-" in a]
    assert len(int8_sources) == 3 and all(a.endswith(".strong-fp16.onnx") for a in int8_sources)
    assert not any(a in ("--fp16", "--int8") for argv in built for a in argv)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["8.6.2", "10.3.0", "11.1.0"])
def test_tensorrt_profiles_every_plan(tmp_path: Path, models_dir: Path, monkeypatch, version: str) -> None:  # type: ignore[no-untyped-def]
    module = tensorrt_fake.make(version)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    monkeypatch.setattr(trt_runner, "load_cuda", tensorrt_fake.FakeCuda)
    result = profile(_cfg("tensorrt", tmp_path, models_dir, WEAK_PLANS))
    assert result.failures == ()
    assert list(result.summary["precision"]) == list(WEAK_PLANS)
    assert result.summary["engine_layers"].gt(0).all()
    assert (result.summary["engine_typing"] == ("strong" if version.startswith("11") else "weak")).all()


@pytest.mark.slow
def test_tensorrt_11_int8_layers_are_fp16_outside_the_int8_gemms(tmp_path: Path, models_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """M2 through the whole pipeline: in the strongly typed int8-ffn engine (fake TensorRT 11) only
    the FFN GEMMs run INT8; the layers the fp16 engine runs in FP16 are FP16 there too."""
    monkeypatch.setitem(sys.modules, "tensorrt", tensorrt_fake.make("11.1.0"))
    monkeypatch.setattr(trt_runner, "load_cuda", tensorrt_fake.FakeCuda)
    result = profile(_cfg("tensorrt", tmp_path, models_dir, ("fp16", "int8-ffn")))
    assert result.failures == ()
    precision = {plan: _engine_precisions(models_dir, "11.1.0", plan) for plan in ("fp16", "int8-ffn")}
    int8 = {name for name, fmt in precision["int8-ffn"].items() if "Int8" in fmt}
    assert int8 and all("intermediate/dense" in n or "output/dense" in n for n in int8)
    fp16_in_baseline = {name for name, fmt in precision["fp16"].items() if "FP16" in fmt}
    assert fp16_in_baseline - int8
    assert all("FP16" in precision["int8-ffn"][name] for name in fp16_in_baseline - int8)


def _engine_precisions(models_dir: Path, version: str, plan: str) -> dict[str, str]:
    """Layer → output format of the (fake) engine cached for ``plan`` under ``version``, strong typing."""
    for sidecar in (models_dir.parent / "engines").glob("*.json"):
        key = json.loads(sidecar.read_text())["key"]
        if key["plan"] == plan and key["tensorrt_version"] == version and key["builder_options"]["typing"] == "strong":
            engine = json.loads(sidecar.with_suffix(".engine").read_text())
            return {lay["Name"]: lay["Outputs"][0]["Format/Datatype"] for lay in engine["info"]["Layers"]}
    raise AssertionError(f"no {version} engine for {plan}")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorrt", "trtexec"])
def test_strongly_typed_10_3_profiles_every_plan(tmp_path: Path, models_dir: Path, monkeypatch, backend: str) -> None:  # type: ignore[no-untyped-def]
    """``--strongly-typed`` on TensorRT 10.3 (JetPack 6.1/6.2): every plan builds strongly typed, the
    INT8 plans from their FP16 Q/DQ form (the fakes fail a strong build given precision flags)."""
    if backend == "tensorrt":
        monkeypatch.setitem(sys.modules, "tensorrt", tensorrt_fake.make("10.3.0"))
        monkeypatch.setattr(trt_runner, "load_cuda", tensorrt_fake.FakeCuda)
    else:
        exe = fake_trtexec.install(tmp_path / "bin", "10.3.0")
        monkeypatch.setenv("PATH", f"{exe.parent}:{Path(sys.executable).parent}:/usr/bin:/bin")
    cfg = _cfg(backend, tmp_path, models_dir, WEAK_PLANS)
    cfg.extra["strongly_typed"] = True
    result = profile(cfg)
    assert result.failures == ()
    assert list(result.summary["precision"]) == list(WEAK_PLANS)
    assert (result.summary["engine_typing"] == "strong").all()
