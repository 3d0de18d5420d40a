"""Attribution rules: single class, mixed by FLOPs, opaque fused regions, reformats, totals."""

from __future__ import annotations

import pandas as pd
import pytest

from orinprof.attribute import attribute_layers, class_times, class_totals

CLASSES = pd.DataFrame(
    {
        "node": ["q", "k", "softmax", "up", "down", "add", "ln"],
        "op_type": ["MatMul", "MatMul", "Softmax", "MatMul", "MatMul", "Add", "LayerNormalization"],
        "layer_class": ["attention", "attention", "attention", "ffn", "ffn", "other", "norm"],
        "block": [0, 0, 0, 0, 0, None, 0],
        "role": ["q_proj", "k_proj", "softmax", "ffn_up", "ffn_down", "other", "norm"],
        "evidence": ["pattern"] * 7,
    }
)


def _raw(rows: list[tuple[int, str, str, float]], **extra: list) -> pd.DataFrame:  # type: ignore[type-arg]
    df = pd.DataFrame(rows, columns=["iteration", "layer", "onnx_nodes", "time_ms"])
    df["op_type"] = "x"
    for k, v in extra.items():
        df[k] = v
    return df


def test_single_class_and_mixed_by_flops() -> None:
    raw = _raw(
        [
            (0, "qk", "q;k", 1.0),
            (1, "qk", "q;k", 3.0),
            (0, "down+add", "down;add", 2.0),
            (1, "down+add", "down;add", 2.0),
        ]
    )
    layers = attribute_layers(raw, CLASSES, {"down": 900.0, "add": 100.0}).set_index("layer")
    assert layers.loc["qk", "layer_class"] == "attention"
    assert layers.loc["qk", "median_ms"] == pytest.approx(2.0)
    assert layers.loc["down+add", "layer_class"] == "mixed"
    assert layers.loc["down+add", "class_split"] == "ffn=0.9000;other=0.1000"
    totals = class_totals(layers.reset_index())
    assert totals["attention_ms"] == pytest.approx(2.0)
    assert totals["ffn_ms"] == pytest.approx(1.8)
    assert totals["other_ms"] == pytest.approx(0.2)
    assert totals["layer_sum_ms"] == pytest.approx(4.0)


def test_mixed_without_flops_splits_by_count_and_says_so() -> None:
    layers = attribute_layers(_raw([(0, "l", "up;add", 1.0)]), CLASSES, None)
    assert layers.loc[0, "layer_class"] == "mixed"
    assert layers.loc[0, "status"] == "split_by_count"


def test_opaque_regions_are_never_given_to_a_class() -> None:
    raw = _raw(
        [
            (0, "{ForeignNode[a...b]}", "", 5.0),
            (0, "Reformatting CopyNode", "", 1.0),
            (0, "mystery", "zz", 1.0),
        ],
        status=["fused-unattributed", "reformat", "ok"],
    )
    layers = attribute_layers(raw, CLASSES, None).set_index("layer")
    assert layers.loc["{ForeignNode[a...b]}", "layer_class"] == "fused-unattributed"
    assert layers.loc["Reformatting CopyNode", "layer_class"] == "reformat"
    # a layer naming nodes the class map does not know is unattributed, never "other"
    assert layers.loc["mystery", "layer_class"] == "unattributed"
    assert layers.loc["mystery", "status"] == "unmatched"
    totals = class_totals(layers.reset_index())
    assert totals["attention_ms"] == 0 and totals["ffn_ms"] == 0
    assert totals["unattributed_ms"] == pytest.approx(6.0)
    # other_ms holds everything outside the four classes, so the class columns sum to the layers
    assert totals["other_ms"] == pytest.approx(7.0)


def test_backend_supplied_classes_win() -> None:
    raw = _raw([(0, "encoder.layer.0.attention", "", 2.0)], layer_class=["attention"], block=[0])
    layers = attribute_layers(raw, None, None)
    assert layers.loc[0, "layer_class"] == "attention" and layers.loc[0, "block"] == 0


def test_class_times_per_iteration_sum_to_layer_times() -> None:
    raw = _raw([(0, "qk", "q;k", 1.0), (1, "qk", "q;k", 3.0), (0, "ln", "ln", 0.5), (1, "ln", "ln", 0.7)])
    layers = attribute_layers(raw, CLASSES, None)
    ct = class_times(raw, layers)
    assert ct.groupby("iteration")["time_ms"].sum().tolist() == pytest.approx([1.5, 3.7])
    att = ct[ct.layer_class == "attention"].set_index("iteration")["time_ms"]
    assert att.tolist() == pytest.approx([1.0, 3.0])
