"""Per-class GPU time from kernel time (backends/torch/kernels.py), on synthetic profiler events.

The fakes follow torch's ``FunctionEvent`` as ``torch/autograd/profiler.py``
(``_parse_kineto_results``) builds it: a GPU activity has ``device_type`` CUDA and a
``linked_correlation_id`` equal to the ``id`` of the CPU op that launched it (0 for CPU ops
themselves); CPU events carry ``cpu_parent`` (``profiler_util.EventList._populate_cpu_children``);
``time_range`` is in µs from the trace start.  A replayed CUDA graph's kernels have no launching op.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from orinprof.backends.torch import kernels as kern

_ids = itertools.count(1)


@dataclass
class FakeEvent:
    name: str
    start: float
    end: float
    device: str = "CPU"
    kernels: list[Any] = field(default_factory=list)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def device_type(self) -> Any:
        return SimpleNamespace(name=self.device)

    @property
    def time_range(self) -> Any:
        return SimpleNamespace(start=self.start, end=self.end)


def _gpu(name: str, start: float, dur: float) -> FakeEvent:
    return FakeEvent(name, start, start + dur, "CUDA")


def _op(name: str, start: float, end: float, *kernels: str) -> FakeEvent:
    """A CPU op and the kernels it launched (``FunctionEvent.kernels``: name, device, duration)."""
    return FakeEvent(name, start, end, kernels=[SimpleNamespace(name=k, device=0, duration=0.0) for k in kernels])


REGIONS = [
    kern.RegionInfo("layer.0.attention", "attention", 0, "Attn"),
    kern.RegionInfo("layer.0.ffn", "ffn", 0, "FFN"),
]


def _eager_iteration(it: int, t0: float) -> list[FakeEvent]:
    """One eager forward as torch 2.11 reported it on the H200: CPU ranges and ops, GPU kernels
    running later than their launch (asynchronous) but inside the synchronised iteration, and the
    GPU-side mirror of each region range spanning the kernels launched inside it."""
    return [
        FakeEvent(f"{kern.ITERATION_PREFIX}{it}", t0, t0 + 100),
        FakeEvent(f"{kern.REGION_PREFIX}0", t0 + 1, t0 + 10),
        _op("aten::mm", t0 + 2, t0 + 5, "gemm_fp16"),
        _op("aten::add", t0 + 11, t0 + 12, "elementwise_add"),
        FakeEvent(f"{kern.REGION_PREFIX}1", t0 + 13, t0 + 20),
        _op("aten::_int_mm", t0 + 14, t0 + 16, "nvjet_tile_128x64"),
        FakeEvent(f"{kern.REGION_PREFIX}0", t0 + 30, t0 + 50, "CUDA"),  # mirror of region 0
        _gpu("gemm_fp16", t0 + 30, 20.0),
        _gpu("elementwise_add", t0 + 51, 5.0),  # launched between regions
        FakeEvent(f"{kern.REGION_PREFIX}1", t0 + 57, t0 + 67, "CUDA"),
        _gpu("nvjet_tile_128x64", t0 + 57, 10.0),
    ]


def test_eager_kernels_get_the_region_whose_gpu_span_holds_them_and_their_iteration() -> None:
    events = _eager_iteration(0, 0.0) + _eager_iteration(1, 200.0)
    kernels = kern.kernels_from_events(events)
    assert [(k.name, k.iteration, k.region, k.op) for k in kernels] == [
        ("gemm_fp16", 0, 0, "aten::mm"),
        ("elementwise_add", 0, -1, "aten::add"),
        ("nvjet_tile_128x64", 0, 1, "aten::_int_mm"),
        ("gemm_fp16", 1, 0, "aten::mm"),
        ("elementwise_add", 1, -1, "aten::add"),
        ("nvjet_tile_128x64", 1, 1, "aten::_int_mm"),
    ]
    assert kernels[0].duration_us == pytest.approx(20.0)
    assert kern.has_region_spans(events)


def test_kernels_launched_outside_aten_ops_still_get_their_region() -> None:
    """SageAttention's Triton kernels have no aten op (seen missing from every op's ``kernels``
    on the H200); the region's GPU span still holds them."""
    events = [
        FakeEvent(f"{kern.ITERATION_PREFIX}0", 0.0, 100.0),
        FakeEvent(f"{kern.REGION_PREFIX}0", 20.0, 40.0, "CUDA"),
        _gpu("quant_per_block_int8_kernel", 20.0, 5.0),
        _gpu("_attn_fwd", 26.0, 14.0),
    ]
    kernels = kern.kernels_from_events(events)
    assert [(k.name, k.region, k.op) for k in kernels] == [
        ("quant_per_block_int8_kernel", 0, ""),
        ("_attn_fwd", 0, ""),
    ]


def test_replay_kernels_are_placed_by_time_and_mirrors_are_not_work() -> None:
    events = [
        FakeEvent(f"{kern.ITERATION_PREFIX}0", 0.0, 50.0),
        FakeEvent(f"{kern.ITERATION_PREFIX}1", 60.0, 110.0),
        FakeEvent("cudaGraphLaunch", 1.0, 2.0),
        # kineto's GPU-side mirror of the iteration range (seen on the H200): a span, not a kernel
        FakeEvent(f"{kern.ITERATION_PREFIX}0", 5.0, 12.0, "CUDA"),
        _gpu("a", 5.0, 3.0),
        _gpu("b", 9.0, 3.0),
        _gpu("a", 65.0, 3.0),
        _gpu("b", 69.0, 3.0),
        _gpu("stray", 150.0, 1.0),  # outside every iteration: dropped
    ]
    kernels = kern.kernels_from_events(events)
    assert [(k.name, k.iteration, k.region) for k in kernels] == [
        ("a", 0, -1),
        ("b", 0, -1),
        ("a", 1, -1),
        ("b", 1, -1),
    ]
    assert not kern.has_region_spans(events)


def test_align_maps_equal_sequences_one_to_one() -> None:
    names = ["gemm", "softmax", "gemm", "add", "layernorm"] * 3
    assert kern.align(names, names) == list(range(len(names)))


def test_align_leaves_inserted_and_substituted_kernels_unmatched() -> None:
    reference = ["emb", "gemm", "softmax", "gemm", "ln", "gemm", "gelu", "gemm", "ln"]
    # under capture cuBLAS picked a split-K GEMM (two kernels) for the first FFN GEMM, and a
    # different kernel for the last one
    observed = ["emb", "gemm", "softmax", "gemm", "ln", "gemm_splitk", "splitk_reduce", "gelu", "gemm_other", "ln"]
    got = kern.align(reference, observed)
    assert got == [0, 1, 2, 3, 4, None, None, 6, None, 8]


def test_align_handles_missing_kernels() -> None:
    reference = ["a", "b", "c", "d"]
    assert kern.align(reference, ["a", "c", "d"]) == [0, 2, 3]


def test_align_keeps_blocks_in_step_in_a_repetitive_sequence() -> None:
    # 24 identical blocks of 25 kernels, one kernel inserted and one substituted: difflib's
    # SequenceMatcher pairs block i with block i + 12 here and matches 300 of 599 kernels
    reference = [f"k{i % 7}" for i in range(25)] * 24
    observed = list(reference)
    observed[300] = "other"
    observed.insert(100, "inserted")
    got = kern.align(reference, observed)
    expected: list[int | None] = [*range(100), None, *range(100, 300), None, *range(301, 600)]
    assert got == expected


def _replay_setup() -> tuple[list[kern.Kernel], list[kern.Kernel]]:
    reference = [
        kern.Kernel("gemm_fp16", 0, 20.0, 1, 0, "aten::mm"),
        kern.Kernel("elementwise_add", 0, 5.0, 1, -1, "aten::add"),
        kern.Kernel("nvjet_tile_128x64", 0, 10.0, 1, 1, "aten::_int_mm"),
    ]
    replay = [
        kern.Kernel("gemm_fp16", 0, 18.0, 0, None),
        kern.Kernel("elementwise_add", 0, 4.0, 0, None),
        kern.Kernel("nvjet_tile_128x64", 0, 9.0, 0, None),
        kern.Kernel("gemm_fp16", 0, 18.0, 1, None),
        kern.Kernel("memset_workspace", 0, 1.0, 1, None),  # only in this replay
        kern.Kernel("elementwise_add", 0, 4.0, 1, None),
        kern.Kernel("nvjet_tile_128x64", 0, 9.0, 1, None),
    ]
    return reference, replay


def test_attribute_replay_carries_region_and_op_from_the_eager_kernel() -> None:
    reference, replay = _replay_setup()
    got = kern.attribute_replay(reference, replay)
    assert [(k.iteration, k.region, k.op) for k in got] == [
        (0, 0, "aten::mm"),
        (0, -1, "aten::add"),
        (0, 1, "aten::_int_mm"),
        (1, 0, "aten::mm"),
        (1, None, ""),
        (1, -1, "aten::add"),
        (1, 1, "aten::_int_mm"),
    ]
    assert [k.duration_us for k in got] == [k.duration_us for k in replay]  # replay's own durations


def test_rows_sum_to_busy_time_with_outside_and_unmatched_rows() -> None:
    reference, replay = _replay_setup()
    kernels = kern.attribute_replay(reference, replay)
    rows = kern.kernel_rows(kernels, REGIONS, [0, 1])
    per_iter = rows.groupby("iteration")["time_ms"].sum()
    assert per_iter.tolist() == pytest.approx([0.031, 0.032])
    it1 = rows[rows["iteration"] == 1].set_index("layer")
    assert it1.loc["layer.0.attention", "time_ms"] == pytest.approx(0.018)
    assert it1.loc["layer.0.attention", "layer_class"] == "attention"
    assert it1.loc[kern.OUTSIDE_REGIONS, "layer_class"] == "other"
    assert it1.loc[kern.UNMATCHED, "layer_class"] == kern.UNATTRIBUTED
    assert it1.loc[kern.UNMATCHED, "time_ms"] == pytest.approx(0.001)


def test_rows_attribute_cleanly_with_the_spine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows go through attribute.py: unmatched time lands in unattributed_ms, never attention."""
    from orinprof import attribute

    reference, replay = _replay_setup()
    rows = kern.kernel_rows(kern.attribute_replay(reference, replay), REGIONS, [0, 1])
    totals = attribute.class_totals(attribute.attribute_layers(rows, None))
    assert totals["attention_ms"] == pytest.approx(0.018)
    assert totals["ffn_ms"] == pytest.approx(0.009)
    assert totals["unattributed_ms"] == pytest.approx(0.0005)  # median over the two iterations
    assert totals["layer_sum_ms"] == pytest.approx(0.0315)


def test_facts_busy_idle_and_int8_counts_per_class() -> None:
    reference, replay = _replay_setup()
    kernels = kern.attribute_replay(reference, replay)
    facts = kern.kernel_facts(kernels, REGIONS, {0: 0.040, 1: 0.050}, "cuda_graph_replay")
    assert facts.gpu_busy_ms == pytest.approx(0.0315)
    assert facts.profiled_span_ms == pytest.approx(0.045)
    assert facts.kernels_per_iteration == pytest.approx(3.5)
    assert facts.kernels_unattributed == pytest.approx(0.5)
    # the nvjet kernel is INT8 because aten::_int_mm launched its eager counterpart, not by name
    assert facts.int8_kernels == {"attention": 0.0, "ffn": 1.0, "other": 0.0}
    cols = facts.summary_columns()
    assert cols["class_time_source"] == "kernels:cuda_graph_replay"
    assert cols["int8_kernels_ffn"] == 1.0 and cols["profiled_span_ms"] == pytest.approx(0.045)


@pytest.mark.parametrize(
    ("name", "op", "int8"),
    [
        ("sm80_xmma_gemm_i8i32_i8i32_i32_tn_n_tilesize128x128x64", "", True),
        ("cutlass_80_tensorop_s8_i16832gemm_s8_256x128_64x3_tn_align16", "", True),
        ("_attn_fwd", "", True),  # SageAttention's INT8 Q·Kᵀ kernel
        ("nvjet_tst_128x64_64x8_1x1_v_bz_TNT", "aten::_int_mm", True),
        ("nvjet_tst_128x64_64x8_1x1_v_bz_TNT", "aten::mm", False),
        ("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1", "aten::addmm", False),
        ("ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_nn", "aten::mm", False),
        ("cutlass_80_tensorop_f16_s16816gemm_relu_f16_64x64_32x6_tn_align8", "", False),
        ("quant_per_block_int8_kernel", "", False),  # quantizes; does no INT8 math
        ("triton_poi_fused__to_copy_clamp_div_round_0", "", False),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::AUnaryFunctor>", "aten::add", False),
    ],
)
def test_int8_kernel_recognition(name: str, op: str, int8: bool) -> None:
    assert kern.is_int8_kernel(name, op) is int8


def test_kernel_table_lists_names_per_class() -> None:
    reference, replay = _replay_setup()
    table = kern.kernel_table(kern.attribute_replay(reference, replay), REGIONS)
    row = table[table["kernel"] == "nvjet_tile_128x64"].iloc[0]
    assert row["layer_class"] == "ffn" and bool(row["int8"]) and row["calls_per_iteration"] == 1.0
    assert set(table["layer_class"]) == {"attention", "ffn", "other", kern.UNATTRIBUTED}
