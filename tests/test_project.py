"""Roofline projection: device table, monotonicity, INT8 floors, measured-run efficiency."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from orinprof import devices as D
from orinprof import roofline as R
from orinprof.errors import OrinprofError

FIGURES = (
    "fp32_tflops",
    "fp16_tflops",
    "int8_tops",
    "bandwidth_gbs",
    "bandwidth_achievable_gbs",
    "sm_count",
    "tpc_count",
    "gpu_max_mhz",
    "emc_max_mhz",
    "gemm_measured_tflops",
)


def test_every_figure_in_the_device_table_has_a_source():
    table = D.device_table()
    assert {
        "agx-orin-64gb",
        "agx-orin-32gb",
        "orin-nx-16gb",
        "orin-nx-8gb",
        "orin-nano-8gb",
        "orin-nano-4gb",
        "h100",
        "h200",
        "local-cpu",
    } <= set(table)
    for key, entry in table.items():
        numeric = [k for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for fig in numeric:
            assert str(entry.get(f"{fig}_source", "")).strip(), f"{key}.{fig} has no source"
        for mode, m in entry["modes"].items():
            assert str(m.get("source", "")).strip(), f"{key} mode {mode} has no source"
        if not entry.get("calibrated"):
            assert {"fp16_tflops", "int8_tops", "bandwidth_gbs"} <= set(numeric)


def test_mode_scaling_follows_tpcs_and_clocks():
    table = D.device_table()["agx-orin-64gb"]
    maxn = D.get_device("agx-orin-64gb", "MAXN")
    w30 = D.get_device("agx-orin-64gb", "30W")
    m = table["modes"]["30W"]
    expected = m["tpcs"] / table["tpc_count"] * m["gpu_mhz"] / table["gpu_max_mhz"]
    assert w30.peak_tflops["int8"] == pytest.approx(maxn.peak_tflops["int8"] * expected)
    assert w30.bandwidth_gbs == pytest.approx(maxn.bandwidth_gbs * m["emc_mhz"] / table["emc_max_mhz"])
    assert maxn.peak_tflops["int8"] == pytest.approx(2 * maxn.peak_tflops["fp16"])


def test_15w_uses_nvidias_figure_and_says_it_is_unverified():
    # audit §5.2: the TPC × clock rule gives 20 sparse INT8 TOPS at 15W; NVIDIA's DLA-SW README 14 of 171
    table = D.device_table()["agx-orin-64gb"]
    m = table["modes"]["15W"]
    rule = m["tpcs"] / table["tpc_count"] * m["gpu_mhz"] / table["gpu_max_mhz"]
    assert 2 * table["int8_tops"] * rule == pytest.approx(20.0, abs=0.1)
    w15 = D.get_device("agx-orin-64gb", "15W")
    maxn = D.get_device("agx-orin-64gb", "MAXN")
    assert w15.peak_tflops["int8"] / maxn.peak_tflops["int8"] == pytest.approx(14 / 171, rel=1e-3)
    assert any("15W unverified" in n for n in w15.notes)
    assert "Deep-Learning-Accelerator-SW" in w15.sources["mode_compute_scale"]
    assert not any("unverified" in n for n in maxn.notes)


def test_unknown_device_and_mode_list_the_choices():
    with pytest.raises(OrinprofError) as err:
        D.get_device("xavier")
    assert "agx-orin-64gb" in err.value.one_line() and "h200" in err.value.one_line()
    with pytest.raises(OrinprofError) as err:
        D.get_device("agx-orin-64gb", "99W")
    assert "50W" in err.value.one_line()


def _tiny_transformer(seq: int | str = "seq", hidden: int = 64) -> onnx.ModelProto:
    """x → Q/K/V GEMMs → QKᵀ → Softmax → PV → out GEMM → FFN up → Relu → down (weights as initializers)."""
    w = lambda n, s: numpy_helper.from_array(np.zeros(s, np.float32), n)  # noqa: E731
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], name="v_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="bmm1"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["a"], name="bmm2"),
        helper.make_node("MatMul", ["a", "wo"], ["o"], name="out_proj"),
        helper.make_node("MatMul", ["o", "w1"], ["h"], name="ffn_up"),
        helper.make_node("Relu", ["h"], ["r"], name="act"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="ffn_down"),
    ]
    inits = [w(n, (hidden, hidden)) for n in ("wq", "wk", "wv", "wo")]
    inits += [w("w1", (hidden, 4 * hidden)), w("w2", (4 * hidden, hidden))]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, hidden])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _classes() -> pd.DataFrame:
    """A stub layer_classes map for the tiny graph (the real classifier is tested elsewhere)."""
    attn = ["q_proj", "k_proj", "v_proj", "kt", "bmm1", "softmax", "bmm2", "out_proj"]
    ffn = ["ffn_up", "act", "ffn_down"]
    ops = {n.name: n.op_type for n in _tiny_transformer().graph.node}
    rows = [
        {
            "node": n,
            "op_type": ops[n],
            "layer_class": "attention",
            "block": 0,
            "role": "x",
            "evidence": "stub",
        }
        for n in attn
    ]
    rows += [
        {"node": n, "op_type": ops[n], "layer_class": "ffn", "block": 0, "role": "x", "evidence": "stub"} for n in ffn
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("device", ["agx-orin-64gb", "orin-nano-4gb", "h100"])
def test_projection_grows_with_sequence_length(device):
    prev = None
    for seq in (16, 64, 256, 1024):
        s = R.summarize_projection(R.project(_tiny_transformer(), device, seq_len=seq, batch=1, classes=_classes()))
        e2e = s.set_index("plan")["e2e_ms"]
        if prev is not None:
            assert (e2e.to_numpy() > prev).all()
        prev = e2e.to_numpy()


def test_int8_floor_never_above_fp16_for_gemms():
    nodes = R.project(_tiny_transformer(), "agx-orin-64gb", ["int8-all"], seq_len=128, batch=1, classes=_classes())
    base = nodes[nodes["plan"] == "fp16"].set_index("node")
    int8 = nodes[nodes["plan"] == "int8-all"].set_index("node")
    gemms = base.index[base["kind"].isin(["gemm", "matmul"])]
    assert len(gemms) == 8  # 6 weighted GEMMs + BMM1 + BMM2
    assert (int8.loc[gemms, "precision"] == "int8").all()
    assert (int8.loc[gemms, "floor_ms"] <= base.loc[gemms, "floor_ms"]).all()
    assert (int8.loc[gemms, "floor_ms"] < base.loc[gemms, "floor_ms"]).any()
    # non-GEMMs are untouched by an INT8 plan
    rest = base.index.difference(gemms)
    assert np.allclose(int8.loc[rest, "floor_ms"], base.loc[rest, "floor_ms"])


def test_floor_is_max_of_compute_and_memory_by_hand():
    # ffn_up at seq 128 (no fusion: Relu's input would be kept on chip): fp32 graph → fp16 bytes
    nodes = R.project(_tiny_transformer(), "agx-orin-64gb", [], seq_len=128, batch=1, classes=_classes(), fusion=False)
    r = nodes.set_index("node").loc["ffn_up"]
    dev = D.get_device("agx-orin-64gb")
    flops = 2 * 128 * 256 * 64
    nbytes = (64 * 256 + 128 * 64 + 128 * 256) * 2
    expected = max(flops / (dev.peak_tflops["fp16"] * 1e12), nbytes / (dev.bandwidth_gbs * 1e9)) * 1e3
    assert r["floor_ms"] == pytest.approx(expected)


def test_attention_plan_only_changes_attention():
    s = R.summarize_projection(
        R.project(_tiny_transformer(), "agx-orin-64gb", ["int8-attn"], seq_len=256, batch=1, classes=_classes())
    ).set_index("plan")
    assert s.loc["int8-attn", "attention_reduction"] > 0
    assert s.loc["int8-attn", "ffn_reduction"] == pytest.approx(0.0)
    assert 0 < s.loc["int8-attn", "e2e_reduction"] < s.loc["int8-attn", "attention_reduction"]


def test_efficiency_factor_divides_the_floor():
    args = dict(seq_len=64, batch=1, classes=_classes())
    plain = R.project(_tiny_transformer(), "agx-orin-64gb", [], **args)
    slow = R.project(_tiny_transformer(), "agx-orin-64gb", [], efficiency={"gemm": 0.5}, **args)
    g = plain["kind"] == "gemm"
    assert np.allclose(slow.loc[g, "time_ms"], 2 * plain.loc[g, "time_ms"])
    assert np.allclose(slow.loc[~g, "time_ms"], plain.loc[~g, "time_ms"])


def test_dynamic_onnx_without_seq_asks_for_seq_and_batch():
    with pytest.raises(OrinprofError) as err:
        R.project(_tiny_transformer(), "agx-orin-64gb", classes=_classes())
    assert "--seq" in err.value.one_line() and "--batch" in err.value.one_line()


def test_card_crossing_finds_sequence_lengths_in_range():
    sweep = pd.DataFrame(
        {
            "seq_len": [64, 128, 256, 64, 128, 256],
            "plan": ["fp16"] * 3 + ["int8-attn"] * 3,
            "attention_reduction": [0, 0, 0, 0.2, 0.38, 0.47],
            "e2e_reduction": [0, 0, 0, 0.1, 0.2, 0.3],
        }
    )
    ranges = {"attention_reduction": (0.35, 0.45), "e2e_reduction": (0.25, 0.35)}
    c = R.card_crossing(sweep, ranges).set_index("claim")
    assert c.loc["attention", "first_seq_in_range"] == 128
    assert c.loc["e2e", "seq_in_range"] == "256"


def test_layer_efficiency_and_fit_on_named_layers():
    nodes = R.project(_tiny_transformer(), "agx-orin-64gb", [], seq_len=64, batch=1, classes=_classes())
    floors = nodes.set_index("node")["floor_ms"]
    names = ["q_proj", "k_proj", "v_proj", "softmax"]
    layers = pd.DataFrame(
        {
            "precision": "fp16",
            "layer": names,
            "onnx_nodes": names,
            "median_ms": [floors[n] * 4 for n in names[:3]] + [math.nan],
        }
    )
    out = R.layer_floors(layers, nodes).set_index("layer")
    assert out.loc["q_proj", "efficiency"] == pytest.approx(0.25)
    assert math.isnan(out.loc["softmax", "efficiency"])  # missing stays missing
    fit = R.fit_efficiency(out.reset_index()).set_index("kind")
    assert fit.loc["gemm", "efficiency"] == pytest.approx(0.25) and fit.loc["gemm", "layers"] == 3
    model = R.model_efficiency(out.reset_index())
    assert model["efficiency"].iloc[0] == pytest.approx(0.25)


def test_local_cpu_is_measured_and_cached(tmp_path, monkeypatch):
    calls = []
    real = D.calibrate_cpu

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(D, "calibrate_cpu", spy)
    dev = D.get_device("local-cpu", results_dir=tmp_path)
    assert dev.peak_tflops["fp32"] > 0 and dev.bandwidth_gbs > 0
    assert dev.bandwidth_basis == "measured"
    assert "numpy" in dev.sources["fp32_tflops"]
    cache = tmp_path / "calibration" / "local-cpu.json"
    assert cache.exists()
    again = D.get_device("local-cpu", results_dir=tmp_path)
    assert again.peak_tflops == dev.peak_tflops  # read from the cache, not re-measured


@pytest.mark.slow
def test_mlperf_bert_large_check(tmp_path):
    check = R.mlperf_bert_check(models_dir=tmp_path)
    assert check.projected_ms > 0
    assert "MLPerf" in check.line()


def test_fused_mha_keeps_the_attention_probabilities_on_chip():
    # audit §5.4: P = Softmax(QKᵀ) (B·S·S floats here, one head) is neither written nor read by P·V
    seq = 256
    args = {"seq_len": seq, "batch": 1, "classes": _classes()}
    fused = R.project(_tiny_transformer(), "agx-orin-64gb", [], **args).set_index("node")
    unfused = R.project(_tiny_transformer(), "agx-orin-64gb", [], fused_mha=False, **args).set_index("node")
    p_bytes = seq * seq * 2  # fp16 baseline
    assert unfused.loc["softmax", "bytes"] - fused.loc["softmax", "bytes"] == pytest.approx(p_bytes)
    assert unfused.loc["bmm2", "bytes"] - fused.loc["bmm2", "bytes"] == pytest.approx(p_bytes)
    others = fused.index.difference(["softmax", "bmm2"])
    assert (fused.loc[others, "bytes"] == unfused.loc[others, "bytes"]).all()


def test_fused_mha_needs_p_to_feed_only_the_pv_matmul():
    # a Softmax whose output is also a graph output (or read by a weight GEMM) must reach memory
    model = _tiny_transformer(seq=64)
    model.graph.output.append(onnx.helper.make_tensor_value_info("p", TensorProto.FLOAT, None))
    costs = R.node_costs(model, batch=1, seq_len=64)
    mha = R.fused_mha_bytes(model, costs).set_index("node")
    assert mha["mha_out_bytes"].sum() == 0 and mha["mha_in_bytes"].sum() == 0
