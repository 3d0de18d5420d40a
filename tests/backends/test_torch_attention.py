"""The torch backend's attention-core option (backends/torch/attention.py): SDPA computes the zoo's
core, SageAttention refuses cleanly where it cannot run, and the runner records which core ran.
GPU tests carry the ``gpu`` marker (they run on the lent machine)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from orinprof import models  # noqa: E402
from orinprof.backends import make_runner  # noqa: E402
from orinprof.backends.base import RunnerOptions, TimingConfig  # noqa: E402
from orinprof.backends.torch import attention  # noqa: E402
from orinprof.backends.torch.runner import cuda_probe  # noqa: E402
from orinprof.errors import OrinprofError  # noqa: E402
from orinprof.export import synthesize  # noqa: E402

HAS_CUDA, CUDA_REASON = cuda_probe()


def _runner(preset: str, precision: str, device: str = "cpu", **extra: object):  # type: ignore[no-untyped-def]
    options = RunnerOptions(device=device, extra={"preset": preset, "precision": precision, "batch": 2, **extra})
    return make_runner("torch", None, options)


def _feed(preset: str, batch: int = 2, seed: int = 3) -> dict[str, np.ndarray]:
    spec = models.get(preset)
    return synthesize(spec.inputs(batch, spec.default_seq), np.random.default_rng(seed))


@pytest.mark.parametrize("preset", ["bert-tiny", "gpt2-tiny", "llama-tiny", "vit-tiny"])
def test_sdpa_core_computes_the_zoo_core(preset: str) -> None:
    """Same weights, fp32 on the CPU: the SDPA core (causal flag for GPT-2/Llama, no bias for an
    all-ones BERT mask) gives the written-out core's output."""
    feed = _feed(preset)
    with _runner(preset, "fp32") as ref:
        expected = ref.infer(feed)["output"]
    with _runner(preset, "fp32", attn_core="sdpa") as r:
        got = r.infer(feed)["output"]
        details = r.info().details
    assert details["attention_core"] == "sdpa"
    assert "scaled_dot_product_attention" in details["precision_map"]["attention core (QKᵀ, softmax, PV)"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_sdpa_core_keeps_a_real_padding_mask() -> None:
    """BERT with zeros in attention_mask: the bias is not dropped, outputs still match."""
    feed = _feed("bert-tiny")
    feed["attention_mask"][:, -3:] = 0
    with _runner("bert-tiny", "fp32") as ref:
        expected = ref.infer(feed)["output"]
    with _runner("bert-tiny", "fp32", attn_core="sdpa") as r:
        got = r.infer(feed)["output"]
        assert r.core is not None and r.core.mask_free is False
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_sage_on_cpu_is_a_one_line_error() -> None:
    with pytest.raises(OrinprofError) as err:
        _runner("bert-tiny", "int8-attn", attn_core="sage").activate()
    assert "needs a CUDA GPU" in err.value.message and "\n" not in err.value.message


def test_sage_missing_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attention, "sage_version", lambda: None)
    with pytest.raises(OrinprofError) as err:
        attention.check_sage("cuda", 64)
    assert "not installed" in err.value.message and "orinprof[sage]" in (err.value.hint or "")


def test_sage_refuses_other_head_dims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attention, "sage_version", lambda: "1.0.6")
    with pytest.raises(OrinprofError, match="head dim"):
        attention.check_sage("cuda", 32)


def test_sage_choice_runs_sdpa_in_plans_that_keep_attention_fp() -> None:
    """attn_core='sage' only changes plans that quantize attention; the rest run SDPA (its FP16
    counterpart) — on the CPU too, where SageAttention itself cannot run."""
    for plan in ("fp32", "int8-ffn"):
        with _runner("bert-tiny", plan, attn_core="sage") as r:
            assert r.info().details["attention_core"] == "sdpa"


def test_unknown_core_is_a_one_line_error() -> None:
    with pytest.raises(OrinprofError, match="unknown attn_core"):
        _runner("bert-tiny", "fp32", attn_core="flash")


# --------------------------------------------------------------------------- GPU (lent machine)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA or attention.sage_version() is None, reason="needs CUDA and sageattention")
@pytest.mark.parametrize("preset", ["bert-tiny", "llama-tiny"])
def test_gpu_sage_core_is_faithful_and_runs_int8_kernels(preset: str) -> None:
    # head dim 64 (SageAttention takes 64/96/128; the tiny presets have 16)
    spec = models.with_config(models.get(preset), hidden_size=256, num_heads=4)
    feed = synthesize(spec.inputs(2, spec.default_seq), np.random.default_rng(3))
    with _runner(preset, "fp32", device="cuda", spec=spec) as ref:
        expected = ref.infer(feed)["output"]
    with _runner(preset, "int8-attn", device="cuda", spec=spec, attn_core="sage", cuda_graph=True) as r:
        got = r.infer(feed)["output"]
        r.time_e2e(feed, TimingConfig(warmup_iters=2, warmup_s=0.0, iterations=3))
        r.profile_layers(feed, 3)
        facts = r.info().details["summary_facts"]
    cos = float(np.dot(got.ravel(), expected.ravel()) / np.linalg.norm(got) / np.linalg.norm(expected))
    assert cos > 0.99
    assert facts["int8_recipe"].endswith("+sage-core")
    # per block: the four projections through _int_mm and Sage's INT8 Q·Kᵀ kernel
    assert facts["int8_kernels_attention"] == spec.config["num_layers"] * 5
    assert facts["int8_kernels_ffn"] == 0
