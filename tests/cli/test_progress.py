"""Progress with plans done, plans left and the time left (cli/progress.py)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orinprof.cli.progress import PlanProgress, duration, plan_count, time_left


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reporter(total: int) -> tuple[PlanProgress, Clock, io.StringIO]:
    clock, sink = Clock(), io.StringIO()
    return PlanProgress(Console(file=sink, width=80), total, clock=clock), clock, sink


def test_time_left_is_the_mean_plan_time_times_plans_left() -> None:
    assert time_left(120.0, 2, 10) == pytest.approx(480.0)
    assert time_left(5.0, 0, 10) is None  # no estimate before a plan has finished
    assert time_left(50.0, 5, 5) == 0.0


@pytest.mark.parametrize(("seconds", "text"), [(0.2, "1 s"), (42, "42 s"), (250, "4 min"), (3900, "1 h 05 min")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_done_counts_plans_without_library_hooks() -> None:
    reporter, clock, sink = _reporter(plan_count(("fp32", "int8-attn"), (128, 384)))
    assert reporter.count_text() == "[0/4 plans, 4 left]"
    clock.now += 60
    reporter.done("bert-base · seq 128 · fp32: median 10 ms")
    assert "✓ [1/4 plans, 3 left, about 3 min left] bert-base · seq 128 · fp32" in sink.getvalue()
    clock.now += 120
    reporter.done("bert-base · seq 128 · int8-attn: median 8 ms")
    assert reporter.count_text() == "[2/4 plans, 2 left, about 3 min left]"  # 90 s a plan × 2
    update = reporter.progress("timing")
    update(5, 10)  # the library's per-step progress callback works alongside
    reporter.close()


def test_library_hooks_take_over_the_count_when_called() -> None:
    reporter, clock, sink = _reporter(2)  # the CLI guessed 2; the library knows 3
    reporter.plan_started(0, 3, "a")
    clock.now += 10
    reporter.plan_finished(0, 3, "a", ok=True)
    reporter.done("a: median 1 ms")  # done after a hook does not count twice
    assert reporter.count_text() == "[1/3 plans, 2 left, about 20 s left]"
    reporter.plan_started(1, 3, "b")
    clock.now += 10
    reporter.plan_finished(1, 3, "b", ok=False)
    assert "✗ [2/3 plans, 1 left" in sink.getvalue()  # a failed plan still counts as done
    reporter.close()


def test_plan_count_without_seq_is_one_length() -> None:
    assert plan_count(("fp32", "int8-attn", "int8-all"), ()) == 3
