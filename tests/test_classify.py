"""The structural classifier on every preset family, nn.TransformerEncoder, and Hugging Face models
exported by both exporters.  Expected counts come from each architecture's definition, not from
running the classifier."""

from __future__ import annotations

import onnx
import pandas as pd
import pytest

from orinprof import classify

GEMMS = ("MatMul", "Gemm")


def _gemms(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["op_type"].isin(GEMMS)]


def _check_blocks(df: pd.DataFrame, layers: int, proj_roles: set[str], ffn_gemms: int) -> None:
    g = _gemms(df)
    assert (df["role"] == "softmax").sum() == layers
    for block in range(layers):
        b = g[g["block"] == block]
        attn = b[b["layer_class"] == "attention"]
        assert set(attn["role"]) == proj_roles | {"bmm1", "bmm2", "out_proj"}, (block, sorted(attn["role"]))
        assert (attn["role"] == "bmm1").sum() == 1 and (attn["role"] == "bmm2").sum() == 1
        assert (b["layer_class"] == "ffn").sum() == ffn_gemms, block


@pytest.mark.parametrize(
    "preset, proj_roles, ffn_gemms, extra_other",
    [
        ("bert-tiny", {"q_proj", "k_proj", "v_proj"}, 2, 0),
        ("vit-tiny", {"q_proj", "k_proj", "v_proj"}, 2, 0),
        ("gpt2-tiny", {"qkv_proj"}, 2, 1),  # the LM head is "other"
        ("llama-tiny", {"q_proj", "k_proj", "v_proj"}, 3, 1),  # SwiGLU: gate, up, down
    ],
)
def test_presets(tiny_export, preset, proj_roles, ffn_gemms, extra_other) -> None:  # type: ignore[no-untyped-def]
    exported = tiny_export(preset)
    df = classify.classify(onnx.load(str(exported.path)))
    layers = exported.preset.config["num_layers"]
    _check_blocks(df, layers, proj_roles, ffn_gemms)
    g = _gemms(df)
    assert (~g["layer_class"].isin(["attention", "ffn"])).sum() == extra_other
    assert set(df["layer_class"]) <= {"attention", "ffn", "norm", "embedding", "other"}
    assert (df["layer_class"] == "embedding").any()
    assert (df["layer_class"] == "norm").sum() >= 2 * layers


def test_swiglu_roles(tiny_export) -> None:  # type: ignore[no-untyped-def]
    df = classify.classify(onnx.load(str(tiny_export("llama-tiny").path)))
    g = _gemms(df)
    for block in range(2):
        roles = sorted(g[(g["block"] == block) & (g["layer_class"] == "ffn")]["role"])
        assert roles == ["ffn_down", "ffn_gate", "ffn_up"]
    # SiLU's Sigmoid sits inside the FFN, not in "other"
    assert set(df[df["op_type"] == "Sigmoid"]["layer_class"]) == {"ffn"}


def test_gelu_chain_is_ffn(tiny_export) -> None:  # type: ignore[no-untyped-def]
    df = classify.classify(onnx.load(str(tiny_export("bert-tiny").path)))
    assert set(df[df["op_type"] == "Erf"]["layer_class"]) == {"ffn"}
    tanh = classify.classify(onnx.load(str(tiny_export("gpt2-tiny").path)))
    assert set(tanh[tanh["op_type"] == "Tanh"]["layer_class"]) == {"ffn"}


def test_names_are_only_a_hint(tiny_export) -> None:  # type: ignore[no-untyped-def]
    """Renaming every node (as the dynamo exporter does) must not change any class."""
    model = onnx.load(str(tiny_export("bert-tiny").path))
    before = classify.classify(model)
    for i, node in enumerate(model.graph.node):
        node.name = f"node_{node.op_type}_{i}"
    after = classify.classify(model)
    assert list(before["layer_class"]) == list(after["layer_class"])
    assert list(before["role"]) == list(after["role"])
    # blocks come from the order of attention cores when names carry none
    g = _gemms(after)
    assert set(g[g["layer_class"] == "attention"]["block"].dropna()) == {0, 1}


def test_unnamed_nodes_get_names(tiny_export) -> None:  # type: ignore[no-untyped-def]
    model = onnx.load(str(tiny_export("bert-tiny").path))
    for node in model.graph.node:
        node.name = ""
    df = classify.classify(model)
    assert df["node"].is_unique and (df["node"] != "").all()
    assert (df["role"] == "softmax").sum() == 2


def test_transformer_encoder_layer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    enc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    path = tmp_path / "tel.onnx"
    torch.onnx.export(enc, (torch.randn(1, 16, 64),), str(path), opset_version=17, dynamo=False)
    df = classify.classify(onnx.load(str(path)))
    # fused in_proj (Q, K, V in one weight) → qkv_proj; out_proj is a Gemm with bias
    _check_blocks(df, 2, {"qkv_proj"}, 2)


def test_no_attention_cnn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 30 * 30, 10)
    )
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(cnn.eval(), (torch.randn(1, 3, 32, 32),), str(path), opset_version=17, dynamo=False)
    df = classify.classify(onnx.load(str(path)))
    assert (df["layer_class"] == "attention").sum() == 0
    assert (df["layer_class"] == "ffn").sum() == 0


def test_layer_map_saved_beside_onnx(tiny_export) -> None:  # type: ignore[no-untyped-def]
    path = tiny_export("vit-tiny").path
    df = classify.classify_file(path)
    saved = pd.read_csv(classify.layer_map_path(path))
    assert list(saved.columns) == ["node", "op_type", "layer_class", "block", "role", "evidence"]
    assert len(saved) == len(df) == len(onnx.load(str(path)).graph.node)
