"""W8A8 linear numerics and per-plan class selection (CPU; torch._int_mm has a CPU kernel)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from orinprof import models  # noqa: E402
from orinprof.backends.torch.int8 import (  # noqa: E402
    PLAN_CLASSES,
    QMAX,
    apply_w8a8,
    linear_layers,
    quantize_activation,
    quantize_weight,
    w8a8_linear_class,
)
from orinprof.errors import OrinprofError  # noqa: E402


def _linear(k: int, n: int, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    lin = torch.nn.Linear(k, n)
    with torch.no_grad():
        lin.bias.normal_()
    return lin


def _error_bound(x: np.ndarray, w: np.ndarray, sx: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Worst-case |int8 result − exact| per output element, from rounding alone: each operand is
    off by at most half a step, so |x̂ŵ − xw| ≤ |x|·Δw/2 + |w|·Δx/2 + Δx·Δw/4 summed over K."""
    ax, aw = np.abs(x), np.abs(w)  # (M, K), (N, K)
    k = x.shape[1]
    return ax.sum(1, keepdims=True) * sw[None, :] / 2 + sx * aw.sum(1)[None, :] / 2 + k * sx * sw[None, :] / 4


@pytest.mark.parametrize("granularity", ["per_token", "per_tensor"])
@pytest.mark.parametrize("cuda_shapes", [False, True])
def test_w8a8_linear_matches_fp32_within_rounding(granularity, cuda_shapes):
    # K = 60 and N = 30 are not multiples of 8 and M = 5 ≤ 16: cuda_shapes pads all three
    lin = _linear(60, 30)
    x = torch.randn(1, 5, 60, dtype=torch.float64).float()
    q = w8a8_linear_class()(lin, granularity, cuda_shapes)
    assert q.k_pad == (4 if cuda_shapes else 0)
    with torch.no_grad():
        got = q(x).double().numpy().reshape(5, 30)
        exact = (x.double() @ lin.weight.double().T + lin.bias.double()).numpy().reshape(5, 30)
    x2 = x.reshape(5, 60).double().numpy()
    w = lin.weight.detach().double().numpy()
    sw = np.abs(w).max(1) / QMAX
    amax = np.abs(x2).max(1, keepdims=True) if granularity == "per_token" else np.abs(x2).max() * np.ones((5, 1))
    bound = _error_bound(x2, w, amax / QMAX, sw)
    err = np.abs(got - exact)
    assert np.all(err <= bound * 1.001 + 1e-5), float((err - bound).max())
    cos = (got * exact).sum() / np.linalg.norm(got) / np.linalg.norm(exact)
    assert cos > 0.999


def test_cosine_on_realistic_shapes():
    # expected relative error ≈ step/√12 per operand with step ≈ 2·amax/255: ~1% → cosine ≈ 0.9999
    lin = _linear(768, 3072, seed=1)
    x = torch.randn(2, 64, 768)
    q = w8a8_linear_class()(lin, "per_token", False)
    with torch.no_grad():
        a, b = q(x).flatten(), lin(x).flatten()
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) > 0.999


def test_quantize_weight_uses_full_range_per_channel():
    w = torch.randn(16, 32) * torch.logspace(-3, 1, 16)[:, None]
    q, scale = quantize_weight(w)
    assert q.dtype == torch.int8 and scale.shape == (16,)
    assert torch.all(q.abs().amax(dim=1) == QMAX)
    assert torch.allclose(q.float() * scale[:, None], w, atol=float(scale.max()) / 2 + 1e-7)


def test_zero_activation_row_gives_bias_not_nan():
    lin = _linear(32, 16)
    x = torch.zeros(3, 32)
    xq, sx = quantize_activation(x, "per_token")
    assert torch.all(xq == 0) and torch.all(torch.isfinite(sx))
    with torch.no_grad():
        y = w8a8_linear_class()(lin, "per_token", False)(x)
    assert torch.allclose(y, lin.bias.expand(3, -1))


def test_half_keeps_fp32_scales():
    q = w8a8_linear_class()(_linear(32, 16), "per_token", False).half()
    assert q.weight_scale.dtype == torch.float32
    assert q.bias.dtype == torch.float16
    assert q.weight_int8.dtype == torch.int8


# --------------------------------------------------------------------------- class selection

# Linear layers per block and class, read off each family's architecture (BERT: Q, K, V, attention
# output dense | intermediate, output; ViT: Q, K, V, out | fc1, fc2; GPT-2: fused c_attn, c_proj |
# c_fc, c_proj; Llama: q, k, v, o | gate, up, down) and the LM heads outside the blocks.
PER_BLOCK = {"bert": (4, 2), "vit": (4, 2), "gpt2": (2, 2), "llama": (4, 3)}
HEADS = {"bert": 0, "vit": 0, "gpt2": 1, "llama": 1}


@pytest.mark.parametrize("preset", ["bert-tiny", "vit-tiny", "gpt2-tiny", "llama-tiny"])
@pytest.mark.parametrize("plan", list(PLAN_CLASSES))
def test_plan_quantizes_exactly_its_class(preset, plan):
    spec = models.get(preset)
    model = models.build(spec)
    before = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    report = apply_w8a8(model, spec.family, PLAN_CLASSES[plan])
    w8a8 = w8a8_linear_class()
    quantized = {n for n, m in model.named_modules() if isinstance(m, w8a8)}
    still_linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert quantized | still_linear == before and not quantized & still_linear
    assert quantized == {q.name for q in report.quantized}

    layers = spec.config["num_layers"]
    attn, ffn = PER_BLOCK[spec.family]
    want = {"attention": attn * layers, "ffn": ffn * layers}
    for cls in ("attention", "ffn"):
        n = sum(1 for q in report.quantized if q.layer_class == cls)
        assert n == (want[cls] if cls in PLAN_CLASSES[plan] else 0), cls
    assert len(before) == want["attention"] + want["ffn"] + HEADS[spec.family]
    assert all(not n.startswith("lm_head") for n in quantized)  # "other" is never quantized
    for q in report.quantized:  # block index and class agree with the module path
        assert f".{q.block}." in f".{q.name}"
        if spec.family == "bert" and q.layer_class == "attention":
            assert ".attention." in q.name
        if spec.family == "bert" and q.layer_class == "ffn":
            assert ".attention." not in q.name


def test_int8_model_output_close_to_fp32():
    spec = models.get("bert-tiny")
    ids = torch.randint(0, 1000, (2, 32))
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    ref = models.build(spec)
    model = models.build(spec)
    apply_w8a8(model, spec.family, ("attention", "ffn"), granularity="per_tensor")
    with torch.no_grad():
        a, b = ref(*args).flatten(), model(*args).flatten()
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) > 0.999


def test_bad_choices_are_one_line_errors():
    spec = models.get("bert-tiny")
    with pytest.raises(OrinprofError, match="unknown INT8 implementation 'cutlass'"):
        apply_w8a8(models.build(spec), spec.family, ("ffn",), impl="cutlass")
    with pytest.raises(OrinprofError, match="activation granularity"):
        apply_w8a8(models.build(spec), spec.family, ("ffn",), granularity="per_block")
    with pytest.raises(OrinprofError, match="family 'mamba'"):
        linear_layers(models.build(spec), "mamba")


def test_torchao_missing_is_a_clear_error():
    try:
        import torchao  # noqa: F401
    except ImportError:
        spec = models.get("bert-tiny")
        with pytest.raises(OrinprofError, match="torchao is not installed") as info:
            apply_w8a8(models.build(spec), spec.family, ("ffn",), impl="torchao")
        assert "int_mm" in (info.value.hint or "")
    else:
        pytest.skip("torchao is installed")


@pytest.mark.slow
def test_compiled_w8a8_matches_eager() -> None:
    """``int_mm_compiled`` (torch.compile around the same function) computes what eager computes."""
    import torch

    from orinprof.backends.torch.int8 import compiled_int8_linear, int8_linear, quantize_weight

    gen = torch.Generator().manual_seed(3)
    x, w = torch.randn(32, 64, generator=gen), torch.randn(48, 64, generator=gen)
    q, s = quantize_weight(w)
    args = (x, q.t(), s.reshape(1, -1), None, "per_token", 48)
    eager = int8_linear(*args)
    compiled = compiled_int8_linear()(*args)
    assert torch.allclose(compiled, eager, atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- static scales, recipes


def test_static_scale_linear_within_rounding_and_saturates_beyond_the_calibrated_range():
    lin = _linear(64, 24)
    x = torch.randn(1, 20, 64, dtype=torch.float64).float()
    amax = float(x.abs().max())
    q = w8a8_linear_class()(lin, "per_tensor_static", False, act_amax=amax)
    with torch.no_grad():
        got = q(x).double().numpy().reshape(20, 24)
        exact = (x.double() @ lin.weight.double().T + lin.bias.double()).numpy().reshape(20, 24)
    x2 = x.reshape(20, 64).double().numpy()
    w = lin.weight.detach().double().numpy()
    bound = _error_bound(x2, w, amax / QMAX * np.ones((20, 1)), np.abs(w).max(1) / QMAX)
    assert np.all(np.abs(got - exact) <= bound * 1.001 + 1e-5)
    # an input 4× beyond the calibrated range saturates at ±127 steps (TensorRT's behaviour)
    with torch.no_grad():
        big = q(4 * x).double().numpy().reshape(20, 24)
        saturated = (torch.clamp(4 * x, -amax, amax).double() @ lin.weight.double().T + lin.bias.double()).numpy()
    assert np.abs(big - saturated.reshape(20, 24)).max() <= bound.max() * 1.001 + 1e-5


def test_static_scale_is_required_and_stays_fp32_under_half():
    lin = _linear(16, 8)
    with pytest.raises(ValueError, match="amax"):
        w8a8_linear_class()(lin, "per_tensor_static", False)
    q = w8a8_linear_class()(lin, "per_tensor_static", False, act_amax=2.54).half()
    assert q.act_scale.dtype == torch.float32 and float(q.act_scale) == pytest.approx(2.54 / QMAX)


def test_calibration_records_max_input_of_the_chosen_class_only():
    from orinprof.backends.torch.int8 import calibrate_activation_amax

    spec = models.get("bert-tiny")
    model = models.build(spec).eval()
    batches = [torch.randint(0, spec.config["vocab_size"], (1, 16)) for _ in range(3)]
    mask, types = torch.ones(1, 16, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long)
    seen: dict[str, float] = {}

    def spy(_m, args, name):  # an independent record of what the FFN up-projection saw
        seen[name] = max(seen.get(name, 0.0), float(args[0].abs().max()))

    up = "encoder.layer.0.intermediate.dense"
    handle = model.get_submodule(up).register_forward_pre_hook(lambda m, a: spy(m, a, up))
    amax = calibrate_activation_amax(model, spec.family, ("ffn",), lambda: [model(ids, mask, types) for ids in batches])
    handle.remove()
    ffn = {i.name for i in linear_layers(model, spec.family) if i.layer_class == "ffn"}
    assert set(amax) == ffn
    assert amax[up] == pytest.approx(seen[up])
    assert not model.get_submodule(up)._forward_pre_hooks  # calibration removed its hooks


def test_static_apply_without_calibration_is_a_one_line_error():
    spec = models.get("bert-tiny")
    with pytest.raises(OrinprofError, match="no calibrated activation range"):
        apply_w8a8(models.build(spec), spec.family, ("ffn",), granularity="per_tensor_static")


def test_recipes_resolve_per_device_kind():
    from orinprof.backends.torch.int8 import AUTO_RECIPE, INT8_RECIPES, recipe_for, resolve_recipe

    assert resolve_recipe("auto", "cpu").name == AUTO_RECIPE["cpu"]
    assert resolve_recipe("auto", "cuda").name == AUTO_RECIPE["cuda"]
    for name, recipe in INT8_RECIPES.items():
        assert recipe_for(recipe.impl, recipe.act_granularity) == name
    assert recipe_for("int_mm", "per_tensor") == "custom:int_mm/per_tensor"
    with pytest.raises(OrinprofError, match="unknown int8_recipe 'fastest'"):
        resolve_recipe("fastest", "cuda")
