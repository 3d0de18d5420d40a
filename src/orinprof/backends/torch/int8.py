"""W8A8 for the torch backend: which ``nn.Linear`` layers belong to which layer class, and the
INT8 linear that replaces them.

Scheme (SmoothQuant's W8A8 without smoothing, the same as torchao's
``Int8DynamicActivationInt8WeightConfig``): weights symmetric int8 per output channel, quantized
once; activations symmetric int8 per token (a row of the flattened ``(tokens, features)`` input) or
per tensor, quantized dynamically on every call; the GEMM accumulates in int32
(``torch._int_mm``: cuBLASLt int8 tensor-core GEMM on CUDA, a oneDNN/reference kernel on CPU);
the int32 result is rescaled by row scale × column scale in fp32, then cast to the compute dtype and
the bias is added.

Only the ``nn.Linear`` layers of the chosen class change.  The attention core (QKᵀ, softmax, PV)
is a pair of ``torch.matmul`` calls inside the model's forward, not a module, and stays in the
compute dtype (FP16 on CUDA).

torch is imported inside functions (house rule); :func:`w8a8_linear_class` builds the module class
on first use.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orinprof.errors import OrinprofError
from orinprof.plans import PLANS

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INT8_IMPLS = ("int_mm", "int_mm_compiled", "torchao")
#: ``per_tensor_static``: one activation scale per layer, calibrated before the run (TensorRT's
#: implicit INT8 calibration does the same), so no amax reduction runs per call
ACT_GRANULARITIES = ("per_token", "per_tensor", "per_tensor_static")


@dataclass(frozen=True)
class Int8Recipe:
    """A named W8A8 recipe of the torch backend: the GEMM implementation and the activation
    scales."""

    name: str
    impl: str
    act_granularity: str
    description: str


#: the torch backend's INT8 recipes (``int8_recipe``); ``auto`` picks :data:`AUTO_RECIPE`
INT8_RECIPES: dict[str, Int8Recipe] = {
    r.name: r
    for r in (
        Int8Recipe("w8a8-dynamic", "int_mm", "per_token", "eager torch._int_mm, dynamic per-token scales"),
        Int8Recipe(
            "w8a8-dynamic-compiled",
            "int_mm_compiled",
            "per_token",
            "torch._int_mm with quantize and rescale fused by torch.compile, dynamic per-token scales",
        ),
        Int8Recipe(
            "w8a8-static-compiled",
            "int_mm_compiled",
            "per_tensor_static",
            "torch._int_mm with quantize and rescale fused by torch.compile, static per-tensor activation "
            "scales calibrated on synthetic inputs (as TensorRT calibrates)",
        ),
        Int8Recipe("torchao", "torchao", "per_token", "torchao Int8DynamicActivationInt8WeightConfig"),
    )
}
RECIPE_CHOICES = ("auto", *INT8_RECIPES)
#: ``auto`` per device kind: on CPU, eager (compiling costs more than it saves in a short run)
AUTO_RECIPE = {"cpu": "w8a8-dynamic", "cuda": "w8a8-static-compiled"}


def resolve_recipe(name: str, device_kind: str) -> Int8Recipe:
    check_choice(name, RECIPE_CHOICES, "int8_recipe")
    return INT8_RECIPES[AUTO_RECIPE[device_kind] if name == "auto" else name]


def recipe_for(impl: str, act_granularity: str) -> str:
    """The recipe name of an explicit (impl, granularity) pair; ``custom:…`` when none matches."""
    for r in INT8_RECIPES.values():
        if (r.impl, r.act_granularity) == (impl, act_granularity):
            return r.name
    return f"custom:{impl}/{act_granularity}"


#: symmetric int8 range; -128 is left out so that the range is symmetric (as torchao and TensorRT)
QMAX = 127
#: smallest scale: an all-zero row quantizes to zeros instead of dividing by zero
SCALE_EPS = 1e-12

#: precision plan → layer classes whose Linear layers become W8A8 (derived from orinprof.plans:
#: only attention and FFN Linear layers exist to quantize in the zoo's modules; the LM heads are
#: "other" and never quantized, so int8-all means attention + FFN here)
PLAN_CLASSES: dict[str, tuple[str, ...]] = {
    name: tuple(c for c in ("attention", "ffn") if c in plan.int8_classes) for name, plan in PLANS.items()
}

# Linear layers by qualified module name, per zoo family (models/torch_modules.py).  Anything
# unmatched (the LM heads of GPT-2 and Llama) is "other" and never quantized by a plan.
_LINEAR_RULES: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "bert": (
        (
            "attention",
            re.compile(r"^encoder\.layer\.(\d+)\.attention\.(self\.(query|key|value)|output\.dense)$"),
        ),
        ("ffn", re.compile(r"^encoder\.layer\.(\d+)\.(intermediate|output)\.dense$")),
    ),
    "vit": (
        ("attention", re.compile(r"^blocks\.(\d+)\.(query|key|value|attn_out)$")),
        ("ffn", re.compile(r"^blocks\.(\d+)\.(fc1|fc2)$")),
    ),
    "gpt2": (
        ("attention", re.compile(r"^h\.(\d+)\.attn\.(c_attn|c_proj)$")),
        ("ffn", re.compile(r"^h\.(\d+)\.mlp\.(c_fc|c_proj)$")),
    ),
    "llama": (
        ("attention", re.compile(r"^layers\.(\d+)\.self_attn\.(q|k|v|o)_proj$")),
        ("ffn", re.compile(r"^layers\.(\d+)\.mlp\.(gate|up|down)_proj$")),
    ),
}


@dataclass(frozen=True)
class LinearInfo:
    """One ``nn.Linear`` of the model and the class it belongs to."""

    name: str
    layer_class: str  # attention | ffn | other
    block: int | None
    in_features: int
    out_features: int


@dataclass(frozen=True)
class QuantReport:
    """What :func:`apply_w8a8` did (goes into ``BackendInfo.details``)."""

    quantized: tuple[LinearInfo, ...]
    kept: tuple[LinearInfo, ...]
    impl: str
    act_granularity: str
    padded: tuple[str, ...]  # "name: K 60→64" notes where CUDA's shape rules needed padding

    def counts(self) -> dict[str, int]:
        out = {"attention": 0, "ffn": 0, "other": 0}
        for info in self.quantized:
            out[info.layer_class] = out.get(info.layer_class, 0) + 1
        return out


def linear_layers(model: Any, family: str) -> list[LinearInfo]:
    """Every ``nn.Linear`` of a zoo model with its layer class, in module order."""
    from torch import nn

    if family not in _LINEAR_RULES:
        raise OrinprofError(
            f"no layer-class rules for model family {family!r}", "families: " + ", ".join(_LINEAR_RULES)
        )
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        cls, block = "other", None
        for rule_cls, pattern in _LINEAR_RULES[family]:
            match = pattern.match(name)
            if match:
                cls, block = rule_cls, int(match.group(1))
                break
        rows.append(LinearInfo(name, cls, block, module.in_features, module.out_features))
    return rows


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise OrinprofError(f"unknown {what} {value!r}", "choose one of: " + ", ".join(choices))
    return value


# ----------------------------------------------------------------------------- numerics


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``(N, K)`` → int8 ``(N, K)`` and fp32 scales ``(N,)``."""
    import torch

    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / QMAX).clamp(min=SCALE_EPS)
    q = torch.round(w / scale[:, None]).clamp(-QMAX, QMAX).to(torch.int8)
    return q, scale


def quantize_activation(x2d: torch.Tensor, granularity: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic symmetric int8 of a ``(M, K)`` activation: int8 ``(M, K)`` and fp32 scales ``(M, 1)``
    (per token) or ``(1, 1)`` (per tensor).  Computed in fp32: an fp16 scale of a small row would be
    subnormal and lose its precision."""
    import torch

    x = x2d.float()
    if granularity == "per_tensor_static":
        raise ValueError("static activation scales come from calibration: use quantize_activation_static")
    if granularity == "per_token":
        amax = x.abs().amax(dim=1, keepdim=True)
    else:
        amax = x.abs().amax().reshape(1, 1)
    scale = (amax / QMAX).clamp(min=SCALE_EPS)
    q = torch.round(x / scale).clamp(-QMAX, QMAX).to(torch.int8)
    return q, scale


def quantize_activation_static(x2d: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Int8 of a ``(M, K)`` activation with a calibrated fp32 ``(1, 1)`` scale (values beyond the
    calibrated range saturate at ±127, as in TensorRT)."""
    import torch

    return torch.round(x2d.float() / scale).clamp(-QMAX, QMAX).to(torch.int8)


def int8_linear(
    x: torch.Tensor,
    weight_int8_t: torch.Tensor,
    weight_scale: torch.Tensor,
    bias: torch.Tensor | None,
    granularity: str,
    out_features: int,
    k_pad: int = 0,
    min_rows: int = 0,
    act_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``y = x Wᵀ + b`` through int8: ``weight_int8_t`` is the ``(K, N)`` transpose view of a
    contiguous ``(N, K)`` int8 weight (column-major, the operand layout torchao passes to
    ``_int_mm``), ``weight_scale`` fp32 ``(1, N)``.  ``k_pad``/``min_rows`` satisfy CUDA's
    ``_int_mm`` rules (K a multiple of 8, more than 16 rows) with zero padding.  ``act_scale``
    (fp32 ``(1, 1)``) replaces the dynamic activation scale when given."""
    import torch
    from torch.nn import functional as F

    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    rows = x2.shape[0]
    row_pad = max(0, min_rows - rows)
    if k_pad or row_pad:  # zero rows/columns change no dot product and no per-token scale
        x2 = F.pad(x2, (0, k_pad, 0, row_pad))
    if act_scale is not None:
        xq, x_scale = quantize_activation_static(x2, act_scale), act_scale
    else:
        xq, x_scale = quantize_activation(x2, granularity)
    acc = torch._int_mm(xq, weight_int8_t)
    # fp32 epilogue: |acc| reaches 127²·K (5·10⁷ at K = 3072), far beyond fp16's 65504
    y = acc.float().mul_(x_scale).mul_(weight_scale)
    if row_pad or y.shape[1] != out_features:
        y = y[:rows, :out_features]
    y = y.to(x.dtype)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, out_features)


@functools.cache
def compiled_int8_linear() -> Any:
    """:func:`int8_linear` through ``torch.compile``: Inductor fuses the activation quantization
    and the rescale epilogue around ``_int_mm`` (in eager they are separate memory-bound kernels).
    One graph per GEMM shape, so the recompile limit is raised from its default of 8."""
    import torch

    dynamo_config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # renamed across torch versions
        if hasattr(dynamo_config, name):
            setattr(dynamo_config, name, max(int(getattr(dynamo_config, name)), 64))
    return torch.compile(int8_linear, dynamic=False)


@functools.cache
def w8a8_linear_class() -> type:
    """The ``W8A8Linear`` module class (built on first use so that torch loads late)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class W8A8Linear(nn.Module):
        """Drop-in for an ``nn.Linear``: int8 weight per output channel, int8 activations per
        token or per tensor, int32 accumulation.  Buffers only (no parameters): nothing trains."""

        weight_int8: torch.Tensor
        weight_scale: torch.Tensor
        bias: torch.Tensor | None
        act_scale: torch.Tensor | None

        def __init__(
            self,
            linear: nn.Linear,
            granularity: str,
            cuda_shapes: bool,
            compiled: bool = False,
            act_amax: float | None = None,
        ) -> None:
            super().__init__()
            self.compiled = compiled
            self.in_features = linear.in_features
            self.out_features = linear.out_features
            self.granularity = granularity
            weight = linear.weight.detach()
            n, k = weight.shape
            # CUDA's _int_mm needs K and N multiples of 8 and M > 16 (Blas.cpp TORCH_CHECKs)
            self.k_pad = (-k) % 8 if cuda_shapes else 0
            n_pad = (-n) % 8 if cuda_shapes else 0
            self.min_rows = 17 if cuda_shapes else 0
            if self.k_pad or n_pad:
                weight = F.pad(weight, (0, self.k_pad, 0, n_pad))
            q, scale = quantize_weight(weight)
            self.register_buffer("weight_int8", q.contiguous())
            self.register_buffer("weight_scale", scale.reshape(1, -1))
            bias = linear.bias.detach().clone() if linear.bias is not None else None
            self.register_buffer("bias", bias)
            if granularity == "per_tensor_static":
                if act_amax is None:
                    raise ValueError("per_tensor_static needs the calibrated activation amax")
                amax = torch.tensor([[max(float(act_amax), 0.0)]], dtype=torch.float32)
                self.register_buffer("act_scale", (amax / QMAX).clamp(min=SCALE_EPS))
            else:
                self.act_scale = None

        def _apply(self, fn: Any, recurse: bool = True) -> W8A8Linear:  # type: ignore[override]
            # .half()/.to(dtype) must not touch the fp32 scales; device moves still apply
            scale, act_scale = self.weight_scale, self.act_scale
            super()._apply(fn, recurse)
            self.weight_scale = scale.to(self.weight_int8.device)
            if act_scale is not None:
                self.act_scale = act_scale.to(self.weight_int8.device)
            return self

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            fn = compiled_int8_linear() if self.compiled else int8_linear
            return fn(
                x,
                self.weight_int8.t(),
                self.weight_scale,
                self.bias,
                self.granularity,
                self.out_features,
                self.k_pad,
                self.min_rows,
                self.act_scale,
            )

        def extra_repr(self) -> str:
            return f"in={self.in_features}, out={self.out_features}, act={self.granularity}"

    return W8A8Linear


# ----------------------------------------------------------------------------- applying a plan


def _set_submodule(model: Any, name: str, new: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def apply_w8a8(
    model: Any,
    family: str,
    classes: tuple[str, ...] | list[str],
    impl: str = "int_mm",
    granularity: str = "per_token",
    cuda_shapes: bool = False,
    act_amax: Mapping[str, float] | None = None,
) -> QuantReport:
    """Replace (in place) the ``nn.Linear`` layers of ``classes`` with W8A8 linears.

    ``model`` is the runner's private copy (built by the runner, never the caller's object), already
    in its device and compute dtype.  ``cuda_shapes`` pads to CUDA's ``_int_mm`` shape rules.
    ``act_amax`` (layer name → calibrated max |input|, from :func:`calibrate_activation_amax`) is
    required by ``per_tensor_static``.
    """
    check_choice(impl, INT8_IMPLS, "INT8 implementation")
    check_choice(granularity, ACT_GRANULARITIES, "activation granularity")
    layers = linear_layers(model, family)
    chosen = tuple(info for info in layers if info.layer_class in classes)
    kept = tuple(info for info in layers if info.layer_class not in classes)
    if impl == "torchao":
        _apply_torchao(model, {info.name for info in chosen}, granularity)
        return QuantReport(chosen, kept, impl, granularity, ())
    if granularity == "per_tensor_static":
        missing = [info.name for info in chosen if info.name not in (act_amax or {})]
        if missing:
            raise OrinprofError(
                f"no calibrated activation range for {len(missing)} layer(s), e.g. {missing[0]}",
                "calibrate with calibrate_activation_amax before applying a static recipe",
            )
    cls = w8a8_linear_class()
    padded = []
    for info in chosen:
        linear = model.get_submodule(info.name)
        amax = (act_amax or {}).get(info.name)
        new = cls(linear, granularity, cuda_shapes, compiled=impl == "int_mm_compiled", act_amax=amax)
        n_padded = -(-info.out_features // 8) * 8 if cuda_shapes else info.out_features
        if new.k_pad or n_padded != info.out_features:
            note = f"{info.name}: K {info.in_features}→{info.in_features + new.k_pad}, N {info.out_features}→{n_padded}"
            padded.append(note)
            log.info("padding %s for CUDA _int_mm (K and N must be multiples of 8)", note)
        _set_submodule(model, info.name, new.to(linear.weight.device))
    return QuantReport(chosen, kept, impl, granularity, tuple(padded))


def calibrate_activation_amax(
    model: Any, family: str, classes: tuple[str, ...] | list[str], run_batches: Any
) -> dict[str, float]:
    """Max |input| of every ``nn.Linear`` of ``classes`` over the forwards ``run_batches()`` makes
    (max calibration, as TensorRT's ``IInt8MinMaxCalibrator``); the model is unchanged."""
    import torch

    amax: dict[str, float] = {}
    handles = []
    for info in linear_layers(model, family):
        if info.layer_class not in classes:
            continue

        def hook(_module: Any, args: Any, name: str = info.name) -> None:
            value = float(args[0].detach().abs().amax().float())
            amax[name] = max(amax.get(name, 0.0), value)

        handles.append(model.get_submodule(info.name).register_forward_pre_hook(hook))
    try:
        with torch.inference_mode():
            run_batches()
    finally:
        for handle in handles:
            handle.remove()
    return amax


def _apply_torchao(model: Any, names: set[str], granularity: str) -> None:
    """torchao's maintained W8A8 (not installed here, nor on the lent GPU image: untested path)."""
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError as err:
        raise OrinprofError(
            "torchao is not installed (int8_impl='torchao')",
            "pip install torchao, or use int8_impl='int_mm' (the default)",
        ) from err
    kwargs: Mapping[str, Any] = {}
    if granularity == "per_tensor":
        from torchao.quantization import PerRow, PerTensor

        kwargs = {"granularity": [PerTensor(), PerRow()]}  # activations per tensor, weights per row
    try:
        config = Int8DynamicActivationInt8WeightConfig(**kwargs)
    except TypeError as err:
        raise OrinprofError(
            "this torchao version has no per-tensor activation option", "use act_granularity='per_token'"
        ) from err
    quantize_(model, config, filter_fn=lambda _module, fqn: fqn in names)
