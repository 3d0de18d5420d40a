"""Tiny Hugging Face models (random weights, 2 layers) and the positional wrapper the exporters
need, shared by the classifier tests on HF graphs (``test_classify_hf``, ``test_classify_runtime``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

LAYERS = 2


def tiny_models() -> dict[str, Callable[[], tuple[Any, tuple[str, ...]]]]:
    """name → a builder of (model, the input names its forward takes), built only when asked for."""
    t = pytest.importorskip("transformers")
    small = {"vocab_size": 100}
    return {
        "distilbert": lambda: (
            t.DistilBertModel(t.DistilBertConfig(dim=64, n_layers=LAYERS, n_heads=4, hidden_dim=128, **small)),
            ("input_ids", "attention_mask"),
        ),
        "t5-encoder": lambda: (
            t.T5EncoderModel(t.T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=LAYERS, num_heads=4, **small)),
            ("input_ids", "attention_mask"),
        ),
        "gpt2": lambda: (
            t.GPT2Model(t.GPT2Config(n_embd=64, n_layer=LAYERS, n_head=4, n_positions=64, **small)),
            ("input_ids",),
        ),
        "llama-gqa": lambda: (
            t.LlamaModel(
                t.LlamaConfig(
                    hidden_size=64,
                    intermediate_size=128,
                    num_hidden_layers=LAYERS,
                    num_attention_heads=4,
                    num_key_value_heads=2,
                    max_position_embeddings=64,
                    **small,
                )
            ),
            ("input_ids", "attention_mask"),
        ),
    }


class Wrap(torch.nn.Module):
    """Positional-argument wrapper: some HF forwards take only keyword inputs cleanly."""

    def __init__(self, model: torch.nn.Module, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        kwargs = dict(zip(self.keys, args))
        if "use_cache" in self.model.forward.__code__.co_varnames:
            kwargs["use_cache"] = False
        out = self.model(**kwargs)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


def example_inputs(keys: tuple[str, ...]) -> tuple[Any, ...]:
    """Token ids and an all-ones mask, batch 1 × 16 tokens."""
    return tuple(
        torch.randint(1, 100, (1, 16)) if k == "input_ids" else torch.ones(1, 16, dtype=torch.long) for k in keys
    )
