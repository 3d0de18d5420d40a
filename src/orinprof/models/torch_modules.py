"""PyTorch modules for the zoo.  Imported only by :func:`orinprof.models.build` (torch at top).

Attention is written out as MatMul → Softmax → MatMul (not SDPA) so that the exported graph has
the primitive pattern TensorRT's MHA fusion matches, and Q and K are each scaled by
``head_dim ** -0.25`` before BMM1 as TensorRT's fused-attention docs ask.  Parameter names follow
the Hugging Face checkpoints so real weights load by name (``minilm-l6``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def _attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """q, k, v: (B, H, S, D).  Returns (B, H, S, D)."""
    scale = q.shape[-1] ** -0.25
    scores = torch.matmul(q * scale, (k * scale).transpose(-1, -2))
    if bias is not None:
        scores = scores + bias
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v)


class _CoreSlot:
    """Mixin: the attention core a module calls, replaceable per module instance (the torch
    backend swaps in SDPA or SageAttention on its private copy; the default is the written-out core
    that the ONNX export needs)."""

    attention_core = staticmethod(_attention_core)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, s, e = x.shape
    return x.view(b, s, heads, e // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, s, d = x.shape
    return x.transpose(1, 2).reshape(b, s, h * d)


# ----------------------------------------------------------------------------- BERT


class BertSelfAttention(_CoreSlot, nn.Module):
    def __init__(self, hidden: int, heads: int, head_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        width = heads * (head_dim or hidden // heads)  # < hidden after head pruning
        self.query = nn.Linear(hidden, width)
        self.key = nn.Linear(hidden, width)
        self.value = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q = _split_heads(self.query(x), self.heads)
        k = _split_heads(self.key(x), self.heads)
        v = _split_heads(self.value(x), self.heads)
        return _merge_heads(self.attention_core(q, k, v, bias))


class BertSelfOutput(nn.Module):
    def __init__(self, hidden: int, eps: float, width: int | None = None) -> None:
        super().__init__()
        self.dense = nn.Linear(width or hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float, head_dim: int | None = None) -> None:
        super().__init__()
        self.self = BertSelfAttention(hidden, heads, head_dim)
        self.output = BertSelfOutput(hidden, eps, heads * (head_dim or hidden // heads))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, bias), x)


class BertIntermediate(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, ffn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # erf GELU, as in BERT


class BertOutput(BertSelfOutput):
    """FFN down-projection + residual + LayerNorm (same shape as BertSelfOutput, wider input)."""

    def __init__(self, ffn: int, hidden: int, eps: float) -> None:
        nn.Module.__init__(self)
        self.dense = nn.Linear(ffn, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class BertLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float, head_dim: int | None = None) -> None:
        super().__init__()
        self.attention = BertAttention(hidden, heads, eps, head_dim)
        self.intermediate = BertIntermediate(hidden, ffn)
        self.output = BertOutput(ffn, hidden, eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class BertEmbeddings(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        return self.LayerNorm(x + self.token_type_embeddings(token_type_ids))


class BertEncoder(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            BertLayer(
                c["hidden_size"],
                c["num_heads"],
                c["intermediate_size"],
                c["layer_norm_eps"],
                c.get("head_dim"),
            )
            for _ in range(c["num_layers"])
        )


class Bert(nn.Module):
    """Returns the last hidden state (B, S, E)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        x = self.embeddings(input_ids, token_type_ids)
        # padding mask → additive bias (B, 1, 1, S); -1e4 stays finite in FP16
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x


# ----------------------------------------------------------------------------- ViT


class PreLNBlock(_CoreSlot, nn.Module):
    """Pre-LN transformer block with separate Q/K/V (ViT) and a GELU MLP."""

    def __init__(self, hidden: int, heads: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        q, k, v = (_split_heads(p(h), self.heads) for p in (self.query, self.key, self.value))
        x = x + self.attn_out(_merge_heads(self.attention_core(q, k, v, None)))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Returns the final normed hidden states (B, 1 + patches, E)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        e = c["hidden_size"]
        self.patch_embed = nn.Conv2d(c["channels"], e, kernel_size=c["patch_size"], stride=c["patch_size"])
        self.cls_token = nn.Parameter(torch.randn(1, 1, e) * 0.02)
        max_tokens = (c["image_size"] // c["patch_size"]) ** 2 + 1
        self.max_tokens = max(max_tokens, 577)
        self.pos_embed = nn.Parameter(torch.randn(1, self.max_tokens, e) * 0.02)
        self.blocks = nn.ModuleList(
            PreLNBlock(e, c["num_heads"], c["intermediate_size"], c["layer_norm_eps"]) for _ in range(c["num_layers"])
        )
        self.norm = nn.LayerNorm(e, eps=c["layer_norm_eps"])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed[:, : x.shape[1] + 1]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


# ----------------------------------------------------------------------------- GPT-2


class GPT2Attention(_CoreSlot, nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(hidden, 3 * hidden)  # fused QKV, as in GPT-2's Conv1D
        self.c_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn(x).split(x.shape[-1], dim=-1)
        q, k, v = (_split_heads(t, self.heads) for t in (q, k, v))
        return self.c_proj(_merge_heads(self.attention_core(q, k, v, bias)))


class GPT2MLP(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(hidden, ffn)
        self.c_proj = nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=eps)
        self.attn = GPT2Attention(hidden, heads)
        self.ln_2 = nn.LayerNorm(hidden, eps=eps)
        self.mlp = GPT2MLP(hidden, ffn)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), bias)
        return x + self.mlp(self.ln_2(x))


def _causal_bias(seq: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive causal mask (1, 1, S, S); -1e4 stays finite in FP16."""
    mask = torch.full((seq, seq), -10000.0, dtype=dtype).triu(1)
    return mask[None, None]


class GPT2(nn.Module):
    """Returns logits (B, S, vocab) through the tied LM head."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        e = c["hidden_size"]
        self.wte = nn.Embedding(c["vocab_size"], e)
        self.wpe = nn.Embedding(c["max_position"], e)
        self.h = nn.ModuleList(
            GPT2Block(e, c["num_heads"], c["intermediate_size"], c["layer_norm_eps"]) for _ in range(c["num_layers"])
        )
        self.ln_f = nn.LayerNorm(e, eps=c["layer_norm_eps"])
        self.lm_head = nn.Linear(e, c["vocab_size"], bias=False)
        self.lm_head.weight = self.wte.weight
        # a buffer, so the exported graph holds a constant instead of Trilu ops
        self.register_buffer("causal_bias", _causal_bias(c["max_position"], torch.float32), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        s = input_ids.shape[1]
        positions = torch.arange(s, device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(positions)
        bias = self.causal_bias[:, :, :s, :s].to(x.dtype)  # type: ignore[index]
        for block in self.h:
            x = block(x, bias)
        return self.lm_head(self.ln_f(x))


# ----------------------------------------------------------------------------- Llama


class RMSNorm(nn.Module):
    def __init__(self, hidden: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # no-op casts in the exported graph trip ORT's optimizer
            return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))
        h = x.float()  # half precision: the variance overflows without the upcast (as HF Llama)
        return self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaAttention(_CoreSlot, nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int, theta: float) -> None:
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads
        self.head_dim = hidden // heads
        self.q_proj = nn.Linear(hidden, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden, bias=False)
        self.theta = theta

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        rep = self.heads // self.kv_heads  # grouped-query attention: share each K/V head
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        return self.o_proj(_merge_heads(self.attention_core(q, k, v, bias)))


class LlamaMLP(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, ffn, bias=False)
        self.up_proj = nn.Linear(hidden, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # SwiGLU


class LlamaBlock(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        e = c["hidden_size"]
        self.input_layernorm = RMSNorm(e, c["rms_norm_eps"])
        self.self_attn = LlamaAttention(e, c["num_heads"], c["num_kv_heads"], c["rope_theta"])
        self.post_attention_layernorm = RMSNorm(e, c["rms_norm_eps"])
        self.mlp = LlamaMLP(e, c["intermediate_size"])

    def forward(self, x: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), bias, cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Returns logits (B, S, vocab)."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        e = c["hidden_size"]
        self.head_dim = e // c["num_heads"]
        self.theta = c["rope_theta"]
        self.embed_tokens = nn.Embedding(c["vocab_size"], e)
        self.layers = nn.ModuleList(LlamaBlock(c) for _ in range(c["num_layers"]))
        self.norm = RMSNorm(e, c["rms_norm_eps"])
        self.lm_head = nn.Linear(e, c["vocab_size"], bias=False)
        # RoPE tables and the causal mask as buffers: constants in the exported graph
        inv = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        freqs = torch.outer(torch.arange(c["max_position"]).float(), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("rope_cos", emb.cos()[None, None], persistent=False)
        self.register_buffer("rope_sin", emb.sin()[None, None], persistent=False)
        self.register_buffer("causal_bias", _causal_bias(c["max_position"], torch.float32), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        s = input_ids.shape[1]
        x = self.embed_tokens(input_ids)
        bias = self.causal_bias[:, :, :s, :s].to(x.dtype)  # type: ignore[index]
        cos = self.rope_cos[:, :, :s].to(x.dtype)  # type: ignore[index]
        sin = self.rope_sin[:, :, :s].to(x.dtype)  # type: ignore[index]
        for layer in self.layers:
            x = layer(x, bias, cos, sin)
        return self.lm_head(self.norm(x))


_FAMILIES = {"bert": Bert, "vit": ViT, "gpt2": GPT2, "llama": Llama}


def build(spec: Any, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    module = _FAMILIES[spec.family](dict(spec.config))
    # BERT-style init scale keeps activations in a realistic range for calibration and FP16
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2 and "embed" not in name and "wte" not in name and "wpe" not in name:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
    return module


#: where each family keeps its transformer blocks (unstructured pruning touches only these)
_BLOCKS = {"bert": "encoder.layer.", "vit": "blocks.", "gpt2": "h.", "llama": "layers."}


def prune_unstructured(module: nn.Module, family: str, fraction: float) -> int:
    """Zero the smallest-magnitude ``fraction`` of every nn.Linear weight inside the transformer
    blocks, in place (biases, embeddings and the LM head stay dense).  Returns weights zeroed."""
    from orinprof.models import zero_smallest_magnitude

    zeroed = 0
    with torch.no_grad():
        for name, sub in module.named_modules():
            if isinstance(sub, nn.Linear) and name.startswith(_BLOCKS[family]):
                pruned, k = zero_smallest_magnitude(sub.weight.detach().cpu().numpy(), fraction)
                sub.weight.copy_(torch.from_numpy(pruned))
                zeroed += k
    return zeroed
