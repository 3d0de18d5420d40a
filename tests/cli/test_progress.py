"""Progress with plans done, plans left and the time left (cli/progress.py)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orinprof.cli.progress import PlanProgress, duration, for_config, plan_count, time_left


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reporter(plans: int, blocks: int | None = None) -> tuple[PlanProgress, Clock, io.StringIO]:
    clock, sink = Clock(), io.StringIO()
    return PlanProgress(Console(file=sink, width=80), plans, blocks, clock=clock), clock, sink


def test_time_left_is_the_mean_plan_time_times_plans_left() -> None:
    assert time_left(120.0, 2, 10) == pytest.approx(480.0)
    assert time_left(5.0, 0, 10) is None  # no estimate before a plan has finished
    assert time_left(50.0, 5, 5) == 0.0


@pytest.mark.parametrize(("seconds", "text"), [(0.2, "1 s"), (42, "42 s"), (250, "4 min"), (3900, "1 h 05 min")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_blocks_drive_the_estimate_and_plans_are_counted_when_done() -> None:
    # 2 plans × 1 length × 3 rounds × (timing + profiling) = 12 blocks, as measure runs them
    reporter, clock, sink = _reporter(plans=2, blocks=12)
    assert reporter.count_text() == "[0/2 plans done, 2 left]"
    reporter.progress("fp32 timing, round 1")
    assert reporter.seconds_left() is None  # nothing finished yet: no estimate
    for label in ("int8-attn timing, round 1", "fp32 profiling, round 1"):
        clock.now += 10
        reporter.progress(label)
    assert reporter.count_text() == "[0/2 plans done, 2 left, block 3/12, about 2 min left]"  # 10 s × 10 = 100 s
    for n in range(9):
        clock.now += 10
        update = reporter.progress(f"block {n + 4}")
    update(5, 10)  # the library's per-step callback works alongside
    clock.now += 10
    reporter.done("bert-base · seq 128 · fp32: median 10 ms")
    reporter.done("bert-base · seq 128 · int8-attn: median 8 ms")
    assert "✓ [1/2 plans done, 1 left, block 12/12, about 0 s left]" not in sink.getvalue()
    assert "✓ [2/2 plans done, 0 left, block 12/12] bert-base" in sink.getvalue()  # done: no estimate
    reporter.close()


def test_without_blocks_plans_give_the_estimate() -> None:
    reporter, clock, sink = _reporter(plans=4)
    clock.now += 60
    reporter.done("a: median 1 ms")
    assert "✓ [1/4 plans done, 3 left, about 3 min left] a" in sink.getvalue()
    reporter.close()


def test_the_library_may_correct_the_totals() -> None:
    reporter, clock, _ = _reporter(plans=2, blocks=4)
    reporter.expect(plans=3, blocks=6)
    clock.now += 5
    reporter.progress("x")
    clock.now += 5
    reporter.progress("y")
    assert reporter.count_text() == "[0/3 plans done, 3 left, block 2/6, about 50 s left]"
    reporter.close()


def test_totals_from_the_options() -> None:
    assert plan_count(("fp32", "int8-attn", "int8-all"), ()) == 3  # no --seq: one length
    assert plan_count(("fp32", "int8-attn"), (128, 384), aa_control=True) == 6

    class Timing:
        rounds = 5

    class Config:
        precisions = ("fp32", "int8-attn")
        seq_lens = (128,)
        aa_control = False
        timing = Timing()

    reporter = for_config(Console(file=io.StringIO()), Config())
    assert (reporter.plans, reporter.blocks) == (2, 20)
    reporter.close()
