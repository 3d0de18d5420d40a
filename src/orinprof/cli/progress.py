"""Progress on stderr: plans done, plans left and the time left, for ``measure``'s Reporter.

The overall bar counts plans (one plan at one sequence length = one step).  The time left is the
mean time per finished plan × plans left — rich's own ``TimeRemainingColumn`` needs two progress
samples inside a 30 s window, which a minute-long plan never gives.  The library tells us a plan
ended through ``Reporter.done``; the hooks ``plan_started(index, total, label)`` and
``plan_finished(index, total, label, ok)`` (proposed for ``measure.Reporter``) are used when the
library calls them and are not needed: without them the CLI counts ``done`` calls against the
plan count it computed from the options.  Each finished plan also prints a line with the count
and the estimate, so logs without a live display (CI, ``ssh`` without a tty) show them too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from orinprof.measure import Reporter


def duration(seconds: float) -> str:
    """``42 s``, ``4 min``, ``1 h 05 min``: the time left, rounded to what an estimate can say."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def time_left(elapsed_s: float, done: int, total: int) -> float | None:
    """Mean time per finished plan × plans left; None before the first plan finishes."""
    if done <= 0 or total <= 0:
        return None
    return elapsed_s / done * max(0, total - done)


class PlanProgress(Reporter):
    """Rich progress for ``measure.profile``: an overall bar across plans, one bar for the step
    running now, a line per finished plan."""

    def __init__(self, console: Console, total_plans: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.total = max(1, total_plans)
        self.finished = 0
        self.clock = clock
        self.started = clock()
        self._hooked = False  # the library reports plan boundaries itself (plan_started/plan_finished)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.overall: TaskID = self.bar.add_task("plans", total=self.total, count="")
        self.step: TaskID | None = None
        self._refresh()
        self.bar.start()

    # ------------------------------------------------------------------ measure.Reporter protocol
    def stage(self, message: str) -> None:
        self.console.print(f"[dim]{message}[/dim]", highlight=False)

    def progress(self, label: str) -> Any:
        if self.step is not None:
            self.bar.remove_task(self.step)
        step = self.bar.add_task(label, total=None, count="")
        self.step = step

        def update(done: int, total: int) -> None:
            self.bar.update(step, completed=done, total=total, count=f"{done}/{total}")

        return update

    def done(self, label: str) -> None:
        if not self._hooked:
            self._advance()
        self.console.print(f"✓ {self.count_text()} {label}", highlight=False)

    # ------------------------------------------------------------------ proposed hooks (optional)
    def plan_started(self, index: int, total: int, label: str = "") -> None:
        self._hooked = True
        self.total = max(1, total)
        self.finished = index
        self._refresh()

    def plan_finished(self, index: int, total: int, label: str = "", ok: bool = True) -> None:
        self._hooked = True
        self.total = max(1, total)
        self.finished = index + 1
        self._refresh()
        if not ok:
            self.console.print(f"✗ {self.count_text()} {label}", highlight=False)

    # ------------------------------------------------------------------ internals
    def _advance(self) -> None:
        self.finished = min(self.total, self.finished + 1)
        self._refresh()

    def _refresh(self) -> None:
        self.bar.update(self.overall, completed=self.finished, total=self.total, count=self.count_text())

    def seconds_left(self) -> float | None:
        return time_left(self.clock() - self.started, self.finished, self.total)

    def count_text(self) -> str:
        """``[3/10, 7 left, about 4 min left]``: plans done, plans left, time left."""
        left = self.seconds_left()
        eta = "" if left is None else f", about {duration(left)} left"
        return f"[{self.finished}/{self.total} plans, {self.total - self.finished} left{eta}]"

    def close(self) -> None:
        self.bar.stop()


def plan_count(precisions: tuple[str, ...], seq_lens: tuple[int, ...]) -> int:
    """Plans × sequence lengths (no ``--seq``: the preset's one default length)."""
    return max(1, len(precisions)) * max(1, len(seq_lens))
