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
from hf_tiny import LAYERS, Wrap, example_inputs, tiny_models  # noqa: E402  (after the torch skip)

#: name → the attention projection roles and FFN GEMMs per block the classifier must find
EXPECTED: dict[str, tuple[set[str], int]] = {
    "distilbert": ({"q_proj", "k_proj", "v_proj"}, 2),
    "t5-encoder": ({"q_proj", "k_proj", "v_proj"}, 2),
    "gpt2": ({"qkv_proj"}, 2),
    "llama-gqa": ({"q_proj", "k_proj", "v_proj"}, 3),
}


def _export(name: str, dynamo: bool, tmp_path) -> tuple[pd.DataFrame, set[str], int]:  # type: ignore[no-untyped-def]
    model, keys = tiny_models()[name]()
    roles, ffn = EXPECTED[name]
    model.config._attn_implementation = "eager" if not dynamo else model.config._attn_implementation
    wrapped = Wrap(model.eval(), keys)
    args = example_inputs(keys)
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
