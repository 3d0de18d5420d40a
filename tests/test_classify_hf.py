"""The classifier on Hugging Face models (random weights, tiny configs), exported by the TorchScript
exporter and by the dynamo exporter (which names nodes ``node_MatMul_54``)."""

from __future__ import annotations

import warnings

import onnx
import pandas as pd
import pytest

from orinprof import classify

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

LAYERS = 2


class _Wrap(torch.nn.Module):
    """Positional-argument wrapper: some HF forwards take only keyword inputs cleanly."""

    def __init__(self, model: torch.nn.Module, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        out = (
            self.model(**dict(zip(self.keys, args)), use_cache=False)
            if "use_cache" in self.model.forward.__code__.co_varnames
            else self.model(**dict(zip(self.keys, args)))
        )
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


def _models() -> dict[str, tuple[torch.nn.Module, tuple[str, ...], set[str], int]]:
    t = transformers
    small = {"vocab_size": 100}
    return {
        "distilbert": (
            t.DistilBertModel(t.DistilBertConfig(dim=64, n_layers=LAYERS, n_heads=4, hidden_dim=128, **small)),
            ("input_ids", "attention_mask"),
            {"q_proj", "k_proj", "v_proj"},
            2,
        ),
        "t5-encoder": (
            t.T5EncoderModel(t.T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=LAYERS, num_heads=4, **small)),
            ("input_ids", "attention_mask"),
            {"q_proj", "k_proj", "v_proj"},
            2,
        ),
        "gpt2": (
            t.GPT2Model(t.GPT2Config(n_embd=64, n_layer=LAYERS, n_head=4, n_positions=64, **small)),
            ("input_ids",),
            {"qkv_proj"},
            2,
        ),
        "llama-gqa": (
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
            {"q_proj", "k_proj", "v_proj"},
            3,
        ),
    }


def _export(name: str, dynamo: bool, tmp_path) -> tuple[pd.DataFrame, set[str], int]:  # type: ignore[no-untyped-def]
    model, keys, roles, ffn = _models()[name]
    model.config._attn_implementation = "eager" if not dynamo else model.config._attn_implementation
    wrapped = _Wrap(model.eval(), keys)
    args = tuple(
        torch.randint(1, 100, (1, 16)) if k == "input_ids" else torch.ones(1, 16, dtype=torch.long) for k in keys
    )
    path = tmp_path / f"{name}-{'dynamo' if dynamo else 'ts'}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapped, args, str(path), opset_version=17 if not dynamo else 18, dynamo=dynamo)
        except Exception as err:  # an exporter failure is not a classifier result
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            pytest.skip(f"{name} does not export with dynamo={dynamo} here: {type(err).__name__}: {first}")
    return classify.classify(onnx.load(str(path))), roles, ffn


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", ["distilbert", "t5-encoder", "gpt2", "llama-gqa"])
def test_hf_model(name: str, dynamo: bool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    df, roles, ffn_gemms = _export(name, dynamo, tmp_path)
    g = df[df["op_type"].isin(["MatMul", "Gemm"])]
    assert (df["role"] == "softmax").sum() == LAYERS
    attn = g[g["layer_class"] == "attention"]
    assert set(attn["role"]) == roles | {"bmm1", "bmm2", "out_proj"}
    assert (attn["role"] == "bmm1").sum() == LAYERS and (attn["role"] == "bmm2").sum() == LAYERS
    assert (attn["role"] == "out_proj").sum() == LAYERS
    proj = attn[attn["role"].isin(roles)]
    assert len(proj) == LAYERS * len(roles)
    assert (g["layer_class"] == "ffn").sum() == LAYERS * ffn_gemms
    # every projection/FFN GEMM has a block in 0..LAYERS-1, and each block has the same roles
    assert set(g[g["layer_class"].isin(["attention", "ffn"])]["block"].dropna().astype(int)) == set(range(LAYERS))
