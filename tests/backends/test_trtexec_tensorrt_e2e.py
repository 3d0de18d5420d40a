"""End to end: ``measure.profile`` (what ``orinprof profile`` runs) with ``--backend trtexec`` and
``--backend tensorrt`` against the FAKE trtexec and FAKE tensorrt of several versions, for every
plan.  The fakes enforce the real tools' rules (tests/fakes/*.py cite them); nothing here runs
TensorRT, so the numbers are meaningless: the test asserts that the pipeline completes with a row
per plan and that what the fakes report (typing, Myelin regions) reaches the summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from fakes import tensorrt_fake
from fakes import trtexec as fake_trtexec
from orinprof.backends.base import TimingConfig
from orinprof.backends.tensorrt import runner as trt_runner
from orinprof.errors import OrinprofError
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


@pytest.mark.slow
def test_trtexec_11_profiles_fp32_and_fp16_and_refuses_int8(tmp_path: Path, models_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """B3 + M2: TensorRT 11 has no --fp16/--int8; FP32 Q/DQ INT8 plans cannot be built strongly typed."""
    exe = fake_trtexec.install(tmp_path / "bin", "11.1.0")
    monkeypatch.setenv("PATH", f"{exe.parent}:{Path(sys.executable).parent}:/usr/bin:/bin")
    result = profile(_cfg("trtexec", tmp_path, models_dir, WEAK_PLANS))
    assert list(result.summary["precision"]) == ["fp32", "fp16"]
    assert (result.summary["engine_typing"] == "strong").all()
    assert len(result.failures) == 3 and all("strongly typed" in f for f in result.failures)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["8.6.2", "10.3.0", "11.1.0"])
def test_tensorrt_profiles_every_plan(tmp_path: Path, models_dir: Path, monkeypatch, version: str) -> None:  # type: ignore[no-untyped-def]
    module = tensorrt_fake.make(version)
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    monkeypatch.setattr(trt_runner, "load_cuda", tensorrt_fake.FakeCuda)
    plans = WEAK_PLANS if not version.startswith("11") else ("fp32", "fp16")
    result = profile(_cfg("tensorrt", tmp_path, models_dir, plans))
    assert result.failures == ()
    assert list(result.summary["precision"]) == list(plans)
    assert result.summary["engine_layers"].gt(0).all()


@pytest.mark.slow
def test_tensorrt_11_int8_is_refused_in_one_line(tmp_path: Path, models_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "tensorrt", tensorrt_fake.make("11.1.0"))
    monkeypatch.setattr(trt_runner, "load_cuda", tensorrt_fake.FakeCuda)
    with pytest.raises(OrinprofError, match="cannot be built strongly typed"):
        profile(_cfg("tensorrt", tmp_path, models_dir, ("int8-attn",)))
