"""The attention core (Q·Kᵀ → softmax → P·V) of the torch backend, and where it runs in INT8.

``attn_core`` chooses how the core runs:

* ``matmul`` (default): the zoo's written-out core (two ``torch.matmul`` and a softmax, the
  pattern the ONNX export needs), in the compute dtype in every plan.
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` (fused FP16 kernels) in every
  plan.
* ``sage``: the plans that quantize attention (``int8-attn``, ``int8-all``) run the core through
  SageAttention 1.0.6 (INT8 Q·Kᵀ with per-block scales, FP16 P·V; ``pip install
  'orinprof[sage]'``); the other plans run ``sdpa``, the FP16 kernel it is measured against.

The zoo's masks are additive biases.  SageAttention takes no mask but a causal flag, so GPT-2
and Llama (causal bias) pass ``is_causal=True`` and BERT runs only on inputs whose padding mask is
all ones (the runner checks each feed, :meth:`AttentionCore.check_mask`); with such a mask the
bias is zero, and SDPA drops it too, so both cores compute the same function.  ViT has no mask.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np

from orinprof.errors import OrinprofError

ATTN_CORES = ("matmul", "sdpa", "sage")
#: the SageAttention release this backend was written and measured against
SAGE_VERSION = "1.0.6"
#: head dimensions SageAttention 1.0.6 accepts (core.py: ``assert headdim in [64, 96, 128]``)
SAGE_HEAD_DIMS = (64, 96, 128)
#: families whose bias is causal (GPT-2, Llama), padding (BERT) or absent (ViT)
_CAUSAL = {"gpt2": True, "llama": True, "bert": False, "vit": False}


def sage_version() -> str | None:
    if importlib.util.find_spec("sageattention") is None:
        return None
    try:
        return importlib.metadata.version("sageattention")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def check_sage(device_kind: str, head_dim: int) -> None:
    """One-line refusals for ``attn_core='sage'`` where it cannot run."""
    if device_kind != "cuda":
        raise OrinprofError(
            "attn_core 'sage' needs a CUDA GPU (SageAttention is Triton code)",
            "use --device cuda, or attn_core 'matmul' on the CPU",
        )
    if sage_version() is None:
        raise OrinprofError(
            "attn_core 'sage' needs SageAttention, which is not installed",
            f"pip install 'orinprof[sage]' (sageattention=={SAGE_VERSION})",
        )
    if head_dim not in SAGE_HEAD_DIMS:
        raise OrinprofError(
            f"SageAttention takes head dim {', '.join(map(str, SAGE_HEAD_DIMS))}; this model has {head_dim}",
            "use attn_core 'sdpa' for this model",
        )


class AttentionCore:
    """A replacement for the zoo's ``_attention_core(q, k, v, bias)`` (q, k, v: ``(B, H, S, D)``)."""

    name = "matmul"
    int8 = False

    def __init__(self, family: str) -> None:
        self.family = family
        self.causal = _CAUSAL.get(family, False)
        #: the runner sets this after checking a feed: True when BERT's padding mask is all ones
        self.mask_free = False

    def check_mask(self, feed: Mapping[str, np.ndarray]) -> None:
        """Called by the runner on every feed before the forward runs."""
        mask = feed.get("attention_mask")
        self.mask_free = mask is None or bool(np.all(np.asarray(mask) == 1))

    def __call__(self, q: Any, k: Any, v: Any, bias: Any) -> Any:
        raise NotImplementedError


class SdpaCore(AttentionCore):
    name = "sdpa"

    def __call__(self, q: Any, k: Any, v: Any, bias: Any) -> Any:
        from torch.nn import functional as F

        if self.causal:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        mask = None if (bias is None or self.mask_free) else bias
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class SageCore(AttentionCore):
    name = "sage"
    int8 = True

    def __init__(self, family: str) -> None:
        super().__init__(family)
        from sageattention import sageattn

        self._sageattn = sageattn

    def check_mask(self, feed: Mapping[str, np.ndarray]) -> None:
        super().check_mask(feed)
        if not self.causal and not self.mask_free:
            raise OrinprofError(
                "SageAttention takes no padding mask and this input's attention_mask has zeros",
                "use inputs with an all-ones attention_mask, or attn_core 'sdpa'",
            )

    def __call__(self, q: Any, k: Any, v: Any, bias: Any) -> Any:
        # sageattn smooths K in place (core.py: ``k -= km``): K is a fresh tensor here, but a copy
        # keeps the caller's projection output intact whatever the model does with it next
        return self._sageattn(q, k.clone(), v, tensor_layout="HND", is_causal=self.causal)


def make_core(name: str, family: str) -> AttentionCore | None:
    """The core object for ``name`` (``None`` = keep the zoo's written-out core)."""
    if name == "matmul":
        return None
    if name == "sdpa":
        return SdpaCore(family)
    if name == "sage":
        return SageCore(family)
    raise OrinprofError(f"unknown attn_core {name!r}", "choose one of: " + ", ".join(ATTN_CORES))


def install_core(model: Any, core: AttentionCore) -> int:
    """Point every attention module of a zoo model at ``core``; returns how many were changed."""
    n = 0
    for module in model.modules():
        if hasattr(type(module), "attention_core"):
            module.attention_core = core
            n += 1
    return n


def head_dim(spec: Any) -> int:
    config = dict(spec.config)
    return int(config.get("head_dim") or config["hidden_size"] // config["num_heads"])
