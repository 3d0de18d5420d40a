"""Interleaved rounds, paired reductions, controls and run status, on a synthetic backend.

``SyntheticRunner`` is not a model of any real device: it is a latency generator whose ground truth
the tests know (each plan's speed, a drift that changes from round to round, the class times),
registered in :data:`orinprof.backends.BACKENDS` like any backend.  It lets the tests check what
:mod:`orinprof.measure` and :mod:`orinprof.compare` do with the numbers (schedule, pairing, CIs,
flags, run status) in milliseconds, and that measure accepts a backend it has never heard of.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from orinprof import results
from orinprof.backends import BACKENDS
from orinprof.backends.base import BackendInfo, Feed, Progress, Runner, TimingConfig
from orinprof.measure import ProfileConfig, profile

TIMING = TimingConfig(warmup_iters=1, warmup_s=0.0, iterations=8, profile_iterations=3, rounds=6, round_warmup_iters=1)


class Clock:
    """Shared state of the synthetic machine: which block is running (drift follows it)."""

    blocks = 0
    runners = 0
    plans_per_round = 3
    timing_calls: ClassVar[list[str]] = []
    #: raise KeyboardInterrupt at this timing block (None: never)
    interrupt_at: int | None = None
    #: plan → (attention factor, ffn factor, e2e factor) relative to fp32
    speed: ClassVar[dict[str, tuple[float, float, float]]] = {}

    @classmethod
    def reset(
        cls, speed: dict[str, tuple[float, float, float]], interrupt_at: int | None = None, plans_per_round: int = 3
    ) -> None:
        cls.blocks = 0
        cls.plans_per_round = plans_per_round
        cls.timing_calls = []
        cls.interrupt_at = interrupt_at
        cls.speed = speed


class SyntheticRunner(Runner):
    name = "synthetic"
    consumes = "zoo"
    summary = "test double: latencies from a known formula"

    def activate_impl(self) -> None:
        Clock.runners += 1  # every runner its own noise, the A/A copy too
        self._rng = np.random.default_rng(Clock.runners)
        self._drift = 1.0

    def info_impl(self) -> BackendInfo:
        return BackendInfo(self.name, "synthetic CPU", "cpu")

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        return {"out": np.arange(8, dtype=np.float32) + 1.0}

    def _factors(self) -> tuple[float, float, float]:
        return Clock.speed.get(self.options.plan, (1.0, 1.0, 1.0))

    def prepare_timing_impl(self, feed: Feed) -> None:
        if Clock.interrupt_at is not None and Clock.blocks == Clock.interrupt_at:
            raise KeyboardInterrupt
        Clock.timing_calls.append(self.options.plan)
        # the machine drifts a lot from round to round (+50 % per round, steady within a round): a
        # comparison over all rounds pooled sees it, a per-round paired one cancels it
        self._drift = 10.0 * (1.0 + 0.5 * (Clock.blocks // Clock.plans_per_round))
        Clock.blocks += 1

    def timed_call_impl(self) -> float:
        return float(self._drift * self._factors()[2] * (1 + 0.001 * self._rng.standard_normal()))

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        att, ffn, _ = self._factors()
        rows = []
        for it in range(iterations):
            for layer, cls, t in (("attn", "attention", 4.0 * att), ("ffn", "ffn", 5.0 * ffn), ("ln", "norm", 1.0)):
                rows.append(
                    {
                        "iteration": it,
                        "layer": layer,
                        "op_type": "Module",
                        "onnx_nodes": None,
                        "time_ms": t * (1 + 0.001 * self._rng.standard_normal()),
                        "layer_class": cls,
                    }
                )
        return pd.DataFrame(rows)


class NoOutputsRunner(SyntheticRunner):
    name = "synthetic-no-outputs"
    returns_outputs = False


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "synthetic", f"{__name__}:SyntheticRunner")
    monkeypatch.setitem(BACKENDS, "synthetic-no-outputs", f"{__name__}:NoOutputsRunner")


def _cfg(tmp_path: Path, **kw: Any) -> ProfileConfig:
    base: dict[str, Any] = dict(
        model="bert-tiny",
        precisions=("fp32", "int8-attn", "int8-ffn"),
        seq_lens=(16,),
        backend="synthetic",
        timing=TIMING,
        telemetry="none",
        results_dir=tmp_path / "res",
        models_dir=tmp_path / "m",
    )
    base.update(kw)
    return ProfileConfig(**base)


HALF_ATTENTION = {"int8-attn": (0.5, 1.0, 0.8), "int8-ffn": (1.0, 0.5, 0.75)}


def test_every_plan_runs_once_per_round_in_a_shuffled_recorded_order(tmp_path: Path) -> None:
    Clock.reset(HALF_ATTENTION)
    result = profile(_cfg(tmp_path))
    blocks = results.read_table(result.run_dir, "blocks")
    timing = blocks[blocks["kind"] == "timing"].sort_values(["round", "position"])
    plans = {"fp32", "int8-attn", "int8-ffn"}
    orders = []
    for _r, grp in timing.groupby("round"):
        assert set(grp["precision"]) == plans and len(grp) == 3  # every plan, once, every round
        orders.append(tuple(grp["precision"]))
    assert len(orders) == TIMING.rounds
    assert len(set(orders)) > 1  # shuffled anew each round (6 rounds: 1/6⁵ chance of one order)
    # the recorded order is the order the runners were called in
    assert [p for o in orders for p in o] == Clock.timing_calls
    profiling = blocks[blocks["kind"] == "profiling"]
    assert (profiling.groupby("round")["precision"].nunique() == 3).all()
    # seeded: the same configuration gives the same schedule
    Clock.reset(HALF_ATTENTION)
    again = results.read_table(profile(_cfg(tmp_path)).run_dir, "blocks")
    assert again[["round", "kind", "position", "precision"]].values.tolist() == (
        blocks[["round", "kind", "position", "precision"]].values.tolist()
    )


def test_reductions_are_paired_per_round(tmp_path: Path) -> None:
    """Drift of +50 % per round swamps an unpaired comparison; per-round pairing recovers the
    known 20 % e2e reduction of int8-attn within a tight CI."""
    from orinprof.stats import unpaired_comparison

    Clock.reset(HALF_ATTENTION)
    result = profile(_cfg(tmp_path))
    comp = result.comparison.set_index("precision")
    attn = comp.loc["int8-attn"]
    assert attn["rounds"] == TIMING.rounds and bool(attn["paired"])
    assert attn["e2e_ratio"] == pytest.approx(0.8, abs=0.005)
    assert attn["e2e_reduction"] == pytest.approx(0.2, abs=0.005)
    assert attn["e2e_reduction_ci_high"] - attn["e2e_reduction_ci_low"] < 0.01
    # the same round medians, unpaired: the drift shows up as a CI over 20 points wide
    lat = results.read_table(result.run_dir, "latencies")
    medians = lat.groupby(["precision", "round"])["latency_ms"].median()
    unpaired = unpaired_comparison(medians["fp32"].to_numpy(), medians["int8-attn"].to_numpy())
    assert unpaired.reduction_ci_high - unpaired.reduction_ci_low > 0.2
    # class times do not drift in this machine: paired class reductions are exact
    assert attn["attention_reduction"] == pytest.approx(0.5, abs=0.01)
    assert attn["attention_ratio"] == pytest.approx(0.5, abs=0.01)
    assert set(lat["round"]) == set(range(TIMING.rounds))


def test_placebo_flag(tmp_path: Path) -> None:
    # int8-attn that also slows the untouched FFN by 20 %: the placebo fails; int8-ffn leaves
    # attention exactly alone: no flag
    Clock.reset({"int8-attn": (0.5, 1.2, 0.8), "int8-ffn": (1.0, 0.5, 0.75)})
    comp = profile(_cfg(tmp_path)).comparison.set_index("precision")
    attn, ffn = comp.loc["int8-attn"], comp.loc["int8-ffn"]
    assert attn["placebo_class"] == "ffn"
    assert attn["placebo_reduction"] == pytest.approx(-0.2, abs=0.01)
    assert "placebo_failed:ffn" in attn["flags"]
    assert ffn["placebo_class"] == "attention"
    assert abs(ffn["placebo_reduction"]) < 0.01
    assert "placebo_failed" not in str(ffn["flags"])


def test_aa_control_gives_the_noise_floor(tmp_path: Path) -> None:
    Clock.reset(HALF_ATTENTION, plans_per_round=3)  # fp32, fp32~aa, int8-attn
    # the A/A copy is of the baseline (fp32 on this CPU), not of the first plan listed
    result = profile(_cfg(tmp_path, precisions=("int8-attn", "fp32"), aa_control=True))
    assert set(result.summary["precision"]) == {"int8-attn", "fp32", "fp32~aa"}
    comp = result.comparison.set_index("precision")
    aa = comp.loc["fp32~aa"]
    # the baseline against itself: a spurious reduction whose CI ends give the floor
    floor = max(abs(aa["e2e_reduction_ci_low"]), abs(aa["e2e_reduction_ci_high"]))
    assert 0 < floor < 0.01  # the machine's known noise is 0.1 % per iteration
    assert result.noise_floor == {16: pytest.approx(floor)}
    assert result.comparison["noise_floor"].tolist() == pytest.approx([floor] * len(result.comparison))
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["noise_floor"] == {"16": pytest.approx(floor)}
    from orinprof.compare import noise_floor_sentence

    sentence = noise_floor_sentence(result.noise_floor)
    assert sentence is not None and f"differences under {100 * floor:.1f} % are noise" in sentence


def test_interrupt_keeps_rows_and_says_interrupted(tmp_path: Path) -> None:
    # 3 plans × 6 rounds = 18 timing blocks at seq 16; interrupt in seq 32's third round
    Clock.reset(HALF_ATTENTION, interrupt_at=18 + 7)
    with pytest.raises(KeyboardInterrupt):
        profile(_cfg(tmp_path, seq_lens=(16, 32)))
    (run_dir,) = (tmp_path / "res").iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert sorted(info["plans_done"]) == ["16/fp32", "16/int8-attn", "16/int8-ffn"]
    summary = results.read_table(run_dir, "summary")
    assert set(summary["seq_len"]) == {16}
    lat = results.read_table(run_dir, "latencies")
    # seq 32's two finished rounds are kept too
    assert sorted(lat[lat["seq_len"] == 32]["round"].unique()) == [0, 1]
    # a parent-directory read skips the interrupted run; naming it reads it, flagged
    with pytest.raises(Exception, match="no results given"):
        results.read_runs([tmp_path / "res"], "summary")
    from orinprof.compare import compare_runs

    comp = compare_runs([run_dir])
    assert comp["flags"].str.contains("run_incomplete:interrupted").all()


def test_backend_without_outputs_skips_fidelity(tmp_path: Path) -> None:
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    summary = profile(_cfg(tmp_path, backend="synthetic-no-outputs", precisions=("fp32", "int8-attn"))).summary
    assert summary["fidelity_cosine"].isna().all()
    assert summary["fidelity_note"].str.contains("returns no model outputs").all()
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    with_outputs = profile(_cfg(tmp_path, precisions=("fp32", "int8-attn"))).summary
    assert with_outputs["fidelity_cosine"].tolist() == pytest.approx([1.0, 1.0])


class PidRunner(SyntheticRunner):
    """Reports the id of the process it runs in as its "latency": shows where each block ran."""

    name = "synthetic-pid"

    def prepare_timing_impl(self, feed: Feed) -> None:
        pass

    def timed_call_impl(self) -> float:
        return float(os.getpid())


def test_isolate_process_runs_every_block_in_a_fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "synthetic-pid", f"{__name__}:PidRunner")
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, iterations=2, profile_iterations=1, rounds=2)
    cfg = _cfg(tmp_path, backend="synthetic-pid", precisions=("fp32", "int8-attn"), isolate="process", timing=timing)
    result = profile(cfg)
    lat = results.read_table(result.run_dir, "latencies")
    pids = lat.groupby(["precision", "round"])["latency_ms"].agg(["nunique", "first"])
    assert (pids["nunique"] == 1).all()  # one process per block …
    assert pids["first"].nunique() == 4 and os.getpid() not in set(pids["first"])  # … a fresh one each time
    assert result.summary["fidelity_cosine"].tolist() == pytest.approx([1.0, 1.0])  # outputs cross back too


def test_measure_never_compares_backend_names() -> None:
    """Backends are told apart by declared capabilities (issue 13): no backend name is compared."""
    source = (Path(__file__).parents[1] / "src" / "orinprof" / "measure.py").read_text()
    names = "|".join(re.escape(n) for n in ("onnxruntime", "tensorrt", "trtexec", "torch"))
    comparisons = re.findall(rf"""(?:==|!=|\bin\b)\s*\(?[^\n]*["'](?:{names})["']""", source)
    assert comparisons == []
    assert "ONNX_BACKENDS" not in source


class FailingRunner(SyntheticRunner):
    """Fails with a programming error (not a user error) in the fourth timing block."""

    name = "synthetic-failing"

    def prepare_timing_impl(self, feed: Feed) -> None:
        if Clock.blocks == 3:
            raise RuntimeError("backend bug")
        super().prepare_timing_impl(feed)


class UnattributedRunner(SyntheticRunner):
    """Files 10 % of the layer time as ``fused-unattributed`` (a Myelin region)."""

    name = "synthetic-unattributed"

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        df = super().profile_layers_impl(feed, iterations, progress)
        df.loc[df["layer"] == "ln", "layer_class"] = "fused-unattributed"
        return df


def test_a_crash_marks_the_run_failed_and_keeps_finished_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(BACKENDS, "synthetic-failing", f"{__name__}:FailingRunner")
    Clock.reset(HALF_ATTENTION)
    with pytest.raises(RuntimeError, match="backend bug"):
        profile(_cfg(tmp_path, backend="synthetic-failing"))
    (run_dir,) = (tmp_path / "res").iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and info["plans_done"] == []
    assert results.read_table(run_dir, "latencies")["round"].unique().tolist() == [0]


def test_unattributed_time_over_5_percent_is_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "synthetic-unattributed", f"{__name__}:UnattributedRunner")
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    result = profile(_cfg(tmp_path, backend="synthetic-unattributed", precisions=("fp32", "int8-attn")))
    assert result.summary["trust_flags"].str.contains("attribution_incomplete:").all()
    assert result.comparison["flags"].str.contains("attribution_incomplete").all()
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    clean = profile(_cfg(tmp_path, precisions=("fp32", "int8-attn"))).summary
    assert not clean["trust_flags"].fillna("").str.contains("attribution_incomplete").any()


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_measure_accepts_every_registered_backend(backend: str, tmp_path: Path) -> None:
    """One registry line is enough: measure's checks pass for every backend in BACKENDS (whether
    the device library is installed is the runner's business, at activation)."""
    from orinprof.measure import ProfileRun

    run = ProfileRun(_cfg(tmp_path, backend=backend))
    assert run.runner_cls.consumes in ("onnx", "zoo")
    options = run.runner_options("int8-attn", _shape())
    assert options.plan == "int8-attn" and options.seq_len == 16
    assert options.input_shapes == {"input_ids": (1, 16), "attention_mask": (1, 16), "token_type_ids": (1, 16)}


def _shape():  # type: ignore[no-untyped-def]
    """A prepared shape without exporting (the runner options only need its inputs)."""
    from orinprof import models
    from orinprof.measure import Shape

    spec = models.get("bert-tiny")
    inputs = tuple(spec.inputs(1, 16))
    return Shape(16, 1, inputs, {}, [], lambda: iter(()), "none")


class DeferredRunner(SyntheticRunner):
    """Keeps one profiler session across blocks and hands every block's rows over at the end (the
    ONNX Runtime runner's shape: its profiler cannot restart on a session)."""

    name = "synthetic-deferred"
    handed_over: ClassVar[list[int]] = []  # blocks handed over per finish_profiling call

    def activate_impl(self) -> None:
        super().activate_impl()
        self._pending: list[pd.DataFrame] = []

    def profile_block(self, feed: Feed, iterations: int, progress: Progress | None = None) -> pd.DataFrame | None:
        self._pending.append(self.profile_layers_impl(feed, iterations, progress))
        return None

    def finish_profiling_impl(self) -> list[pd.DataFrame]:
        pending, self._pending = self._pending, []
        DeferredRunner.handed_over.append(len(pending))
        return pending


def test_rows_handed_over_at_the_end_keep_their_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner whose profiling rows arrive after the last round gives the same per-round class
    times and paired reductions as one that returns them block by block."""
    monkeypatch.setitem(BACKENDS, "synthetic-deferred", f"{__name__}:DeferredRunner")
    DeferredRunner.handed_over = []
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    deferred = profile(_cfg(tmp_path / "d", backend="synthetic-deferred", precisions=("fp32", "int8-attn")))
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    direct = profile(_cfg(tmp_path / "i", precisions=("fp32", "int8-attn")))
    assert DeferredRunner.handed_over == [TIMING.rounds, TIMING.rounds]  # each plan's blocks, once
    (run_dir,) = (tmp_path / "d" / "res").iterdir()
    class_times = results.read_table(run_dir, "class_times")
    assert sorted(class_times["round"].unique()) == list(range(TIMING.rounds))
    assert (class_times.groupby(["precision", "round"])["iteration"].nunique() == TIMING.profile_iterations).all()
    blocks = results.read_table(run_dir, "blocks")
    profiling = blocks[blocks["kind"] == "profiling"]
    assert len(profiling) == 2 * TIMING.rounds and (profiling["iterations"] == TIMING.profile_iterations).all()
    for col in ("attention_reduction", "ffn_reduction", "placebo_reduction"):
        a, b = deferred.comparison[col].to_numpy(float), direct.comparison[col].to_numpy(float)
        assert np.allclose(a, b, atol=0.005), col
    assert deferred.comparison["attention_reduction"].iloc[0] == pytest.approx(0.5, abs=0.01)


class ShortDeferredRunner(DeferredRunner):
    """Hands over one block fewer than it was asked for (a backend bug)."""

    name = "synthetic-short"

    def finish_profiling_impl(self) -> list[pd.DataFrame]:
        return super().finish_profiling_impl()[1:]


def test_a_runner_losing_profiling_blocks_fails_its_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "synthetic-short", f"{__name__}:ShortDeferredRunner")
    Clock.reset(HALF_ATTENTION, plans_per_round=2)
    with pytest.raises(RuntimeError, match="profiling blocks"):
        profile(_cfg(tmp_path, backend="synthetic-short", precisions=("fp32", "int8-attn")))
