"""Cards 3, 6, 10: outlier statistics, matched parameter reduction, pruning tables, weight zeroing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from orinprof.cards import (
    PruneVariant,
    TimedRun,
    activation_outlier_stats,
    matched_head_fraction,
    pruning_table,
    run_pruning_experiment,
    zero_smallest_weights,
)
from orinprof.cards.pruning import FULL, default_variants, encoder_params, paired_rounds
from orinprof.errors import OrinprofError


def test_planted_outlier_dimensions_are_found_with_their_ratio() -> None:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(400, 200))
    h[:, [7, 42]] *= 8.0  # two planted outlier dimensions, 8× the typical scale
    table = activation_outlier_stats([h], model="synthetic", top_fraction=0.01)
    row = table.iloc[0]
    assert set(row["top_dims"].split(";")) == {"7", "42"}
    assert row["top_k"] == 2
    assert row["top_to_median_ratio"] == pytest.approx(8.0, rel=0.1)
    assert row["top_to_median_ratio_ci_low"] < row["top_to_median_ratio"] < row["top_to_median_ratio_ci_high"]


def test_matched_head_fraction_agrees_with_a_parameter_count_of_real_modules() -> None:
    torch = pytest.importorskip("torch")
    hidden, ffn, layers = 384, 1536, 6

    def gemm_weights(width: int) -> int:  # Q, K, V, O + FFN of one layer, counted from nn.Linear modules
        mods = [torch.nn.Linear(hidden, width) for _ in range(3)] + [torch.nn.Linear(width, hidden)]
        mods += [torch.nn.Linear(hidden, ffn), torch.nn.Linear(ffn, hidden)]
        return sum(m.weight.numel() for m in mods)

    f = matched_head_fraction(1, layers, hidden, ffn)
    one_layer = gemm_weights(hidden)
    heads_removed = layers * (gemm_weights(hidden) - gemm_weights(round(hidden * (1 - f))))
    assert heads_removed == pytest.approx(one_layer, rel=1e-3)
    assert encoder_params(hidden, ffn, layers) == layers * one_layer
    with pytest.raises(OrinprofError, match="more weights than all heads"):
        matched_head_fraction(3, layers, hidden, ffn)


def _run(name: str, latency: float, n: int = 50, seed: int = 0) -> TimedRun:
    rng = np.random.default_rng(seed)
    return TimedRun(name, latency + rng.normal(0, 0.01, n), "bert", "torch", "gpu0", "gpu", 1, 128)


def _rounds(name: str, latency: float, rounds: int = 5, seed: int = 0) -> list[TimedRun]:
    return [_run(f"{name}-r{r}", latency, seed=seed * 100 + r) for r in range(rounds)]


def test_pruning_table_rows_and_layers_vs_heads() -> None:
    variants = default_variants(num_layers=6, num_heads=12, hidden=384, ffn=1536)
    kinds = {v.kind: v for v in variants}
    assert kinds["heads"].params_removed_fraction == pytest.approx(kinds["layers"].params_removed_fraction, abs=0.02)
    times = {"unstructured": 10.0, "heads+ffn": 6.0, "layers": 8.3, "heads": 9.5}
    timed = [(v, _rounds(v.name, times[v.kind], seed=i)) for i, v in enumerate(variants, 1)]
    table = pruning_table(_rounds("full", 10.0), timed, run_id="R").set_index("variant_kind")
    assert table.loc["unstructured", "e2e_reduction"] == pytest.approx(0.0, abs=0.01)
    assert table.loc["heads+ffn", "e2e_reduction"] == pytest.approx(0.4, abs=0.01)
    assert table.loc["heads+ffn", "reference"] == FULL and (table["rounds"] == 5).all()
    lvh = table.loc["layers-vs-heads"]
    assert lvh["e2e_reduction"] == pytest.approx(1 - 8.3 / 9.5, abs=0.01)
    assert lvh["reference"] == kinds["heads"].name and lvh["run_id"] == "R"
    assert lvh["e2e_reduction_ci_low"] < lvh["e2e_reduction"] < lvh["e2e_reduction_ci_high"]


def test_one_round_gives_no_ci() -> None:
    v = PruneVariant("L", "layers", 1 / 6, 1 / 6)
    table = pruning_table(_rounds("full", 5.0, rounds=1), [(v, _rounds("L", 4.0, rounds=1))])
    row = table.iloc[0]
    assert row["rounds"] == 1 and row["status"] == "one_round_no_ci"
    assert np.isnan(row["e2e_reduction_ci_low"]) and row["e2e_reduction"] == pytest.approx(0.2, abs=0.01)


def test_rounds_interleave_every_model_in_a_fresh_order() -> None:
    seen: list[str] = []

    def build(v: PruneVariant | None) -> str:
        return "full" if v is None else v.name

    def time_model(m: object) -> TimedRun:
        seen.append(str(m))
        return _run(str(m), 5.0 if m == "full" else 4.0, seed=len(seen))

    variants = [PruneVariant("L", "layers", 1 / 6, 1 / 6), PruneVariant("H", "heads", 0.25, 1 / 6)]
    timed = run_pruning_experiment(variants, build, time_model, rounds=6)
    assert len(seen) == 18 and len(timed.orders) == 6
    for r, order in enumerate(timed.orders):  # each round times each model exactly once
        assert sorted(order) == sorted([FULL, "L", "H"])
        assert seen[3 * r : 3 * r + 3] == ["full" if n == FULL else n for n in order]
    assert len({tuple(o) for o in timed.orders}) > 1  # shuffled afresh, not one fixed order
    assert [len(b) for b in timed.blocks.values()] == [6, 6, 6]
    table = pruning_table(timed.blocks[FULL], [(v, timed.blocks[v.name]) for v in variants])
    assert table.set_index("variant").loc["L", "e2e_reduction"] == pytest.approx(0.2, abs=0.01)


def test_paired_rounds_cancel_a_drifting_machine() -> None:
    # the machine slows down 40 % over the experiment: two identical models timed in one block each,
    # one after the other (the published card-10 design), differ by the drift; paired rounds do not
    clock = iter(range(1000))

    def time_model(m: object) -> TimedRun:
        return _run(str(m), 10.0 * (1 + 0.04 * next(clock)), seed=0)

    variants = [PruneVariant("same", "layers", 0.1, 0.1)]
    timed = run_pruning_experiment(variants, lambda v: "m", time_model, rounds=5)
    sequential = 1 - timed.blocks["same"][-1].median_ms / timed.blocks[FULL][0].median_ms
    assert abs(sequential) > 0.2
    paired = paired_rounds(timed.blocks[FULL], timed.blocks["same"])
    assert paired.rounds == 5 and paired.ci_low <= 0.0 <= paired.ci_high
    assert abs(paired.reduction) < 0.05


def test_mismatched_shapes_are_refused() -> None:
    other = TimedRun("v", np.ones(5), "bert", "torch", "gpu0", "gpu", 1, 256)
    with pytest.raises(OrinprofError, match="seq 256, the full model on torch/gpu0 seq 128") as err:
        pruning_table([_run("full", 1.0)], [(PruneVariant("v", "layers", 0.1, 0.1), [other])])
    assert "same backend, device and shape" in err.value.one_line()


def test_zero_smallest_weights_keeps_shapes(tmp_path: Path) -> None:
    w = np.arange(1, 17, dtype=np.float32).reshape(4, 4) * np.where(np.arange(16) % 2, 1, -1).reshape(4, 4)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(w, "w")],
    )
    src, dst = tmp_path / "m.onnx", tmp_path / "m50.onnx"
    onnx.save(helper.make_model(graph), str(src))
    assert zero_smallest_weights(src, dst, 0.5) == 8
    out = numpy_helper.to_array(onnx.load(str(dst)).graph.initializer[0])
    assert out.shape == w.shape
    assert np.array_equal(out == 0, np.abs(w) <= 8)


@pytest.mark.slow
def test_minilm_outliers_on_real_weights() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tokenizers")
    from orinprof.cards import outlier_experiment

    table = outlier_experiment("minilm-l6")
    assert list(table["layer"]) == list(range(7))  # embeddings + 6 blocks
    assert (table["hidden_size"] == 384).all() and (table["top_k"] == 4).all()
    assert (table["top_to_median_ratio"] > 1).all()
