"""Progress on stderr: plans done, plans left and the time left, for ``measure``'s Reporter.

``measure`` times every plan in interleaved rounds: each round runs one timing block and one
profiling block per plan, and a plan is done (``Reporter.done``) only when its shape's last round
ends.  So the time left is counted in blocks: each ``Reporter.progress`` call starts one, and the
estimate is the mean time per finished block × blocks left.  (rich's ``TimeRemainingColumn``
needs two progress samples inside a 30 s window, which long blocks never give.)

The totals come from the options (plans × sequence lengths, rounds, the A/A control's extra
plan).  A library that knows better (a plan that failed to start) may call the proposed hook
``expect(plans, blocks)``; nothing depends on it being called.  Each finished plan prints a line
with the counts and the estimate, so logs without a live display (CI, ``ssh`` without a tty)
show them too.
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
    """Mean time per finished step (block, or plan) × steps left; None before the first ends."""
    if done <= 0 or total <= 0:
        return None
    return elapsed_s / done * max(0, total - done)


class PlanProgress(Reporter):
    """Rich progress for ``measure.profile``: an overall bar across blocks, one bar for the step
    running now, a line per finished plan."""

    def __init__(
        self,
        console: Console,
        plans: int,
        blocks: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.plans = max(1, plans)
        self.plans_done = 0
        self.blocks = max(1, blocks if blocks is not None else plans)
        self.blocks_started = 0
        self.blocks_done = 0
        self.clock = clock
        self.started = clock()
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.overall: TaskID = self.bar.add_task("blocks", total=self.blocks, count="")
        self.step: TaskID | None = None
        self._refresh()
        self.bar.start()

    # ------------------------------------------------------------------ measure.Reporter protocol
    def stage(self, message: str) -> None:
        self.console.print(f"[dim]{message}[/dim]", highlight=False)

    def progress(self, label: str) -> Any:
        """A block starts: the one before it has finished."""
        self.blocks_done = self.blocks_started
        self.blocks_started += 1
        self.blocks = max(self.blocks, self.blocks_started)
        self._refresh()
        if self.step is not None:
            self.bar.remove_task(self.step)
        step = self.bar.add_task(label, total=None, count="")
        self.step = step

        def update(done: int, total: int) -> None:
            self.bar.update(step, completed=done, total=total, count=f"{done}/{total}")

        return update

    def done(self, label: str) -> None:
        self.plans_done += 1
        self.plans = max(self.plans, self.plans_done)
        self.blocks_done = self.blocks_started  # a plan is done once its last block is
        self._refresh()
        self.console.print(f"✓ {self.count_text()} {label}", highlight=False)

    # ------------------------------------------------------------------ proposed hook (optional)
    def expect(self, plans: int, blocks: int) -> None:
        """The library's own totals (it knows which plans started)."""
        self.plans, self.blocks = max(1, plans), max(1, blocks)
        self._refresh()

    # ------------------------------------------------------------------ internals
    def _refresh(self) -> None:
        self.bar.update(self.overall, completed=self.blocks_done, total=self.blocks, count=self.count_text())

    def seconds_left(self) -> float | None:
        if self.blocks_started == 0:  # a library that reports no blocks: count plans
            return time_left(self.clock() - self.started, self.plans_done, self.plans)
        return time_left(self.clock() - self.started, self.blocks_done, self.blocks)

    def count_text(self) -> str:
        """``[1/4 plans done, 3 left, block 9/40, about 4 min left]``."""
        left = None if self.plans_done >= self.plans else self.seconds_left()
        blocks = f", block {min(self.blocks_started, self.blocks)}/{self.blocks}" if self.blocks_started else ""
        eta = "" if left is None else f", about {duration(left)} left"
        return f"[{self.plans_done}/{self.plans} plans done, {self.plans - self.plans_done} left{blocks}{eta}]"

    def close(self) -> None:
        self.bar.stop()


def for_config(console: Console, cfg: Any) -> PlanProgress:
    """The progress display of a ``ProfileConfig``: plans × sequence lengths (plus the A/A control's
    second baseline), each timed and profiled once per round."""
    plans = plan_count(cfg.precisions, cfg.seq_lens, aa_control=bool(getattr(cfg, "aa_control", False)))
    rounds = int(getattr(cfg.timing, "rounds", 1))
    return PlanProgress(console, plans, blocks=plans * rounds * 2)


def plan_count(precisions: tuple[str, ...], seq_lens: tuple[int, ...], aa_control: bool = False) -> int:
    """Plans × sequence lengths (no ``--seq``: the preset's one default length)."""
    return (max(1, len(precisions)) + int(aa_control)) * max(1, len(seq_lens))
