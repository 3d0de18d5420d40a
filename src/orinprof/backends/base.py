"""The backend interface (Polygraphy's runner shape).

A backend is a folder under ``backends/`` with a ``runner.py`` defining a :class:`Runner` subclass,
plus one line in :mod:`orinprof.backends` (the registry).  The public lifecycle lives here once;
subclasses fill in the ``*_impl`` methods.

Two runs, never one: :meth:`Runner.time_e2e` is the clean timing run (no profiler attached);
:meth:`Runner.profile_layers` is the separate per-layer profiling run, whose synchronisation
overhead would distort end-to-end numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

Feed = Mapping[str, np.ndarray]
#: progress callback: (done, total) – the CLI turns it into a progress bar
Progress = Callable[[int, int], None]

#: Columns of the raw per-layer profile a runner returns (before attribution).
RAW_PROFILE_COLUMNS = ("iteration", "layer", "op_type", "onnx_nodes", "time_ms")


@dataclass(frozen=True)
class TimingConfig:
    """How long to warm up and how much to time.

    :mod:`orinprof.measure` times every plan in ``rounds`` rounds; in each round each plan runs one
    *block*: ``iterations`` timed runs, or more until ``block_s`` seconds have passed (capped at
    ``max_iterations``), then one profiling block of ``profile_iterations``.  The first block of
    each plan warms up with at least ``warmup_iters`` iterations *and* ``warmup_s`` seconds; later
    blocks with ``round_warmup_iters`` (the runner stays loaded, but other plans ran in between).

    ``min_duration_s`` is the runner-level minimum of a single :meth:`Runner.time_e2e` call (measure
    sets it to ``block_s``)."""

    warmup_iters: int = 10
    warmup_s: float = 1.0
    iterations: int = 20
    min_duration_s: float = 0.0
    max_iterations: int = 100_000
    profile_iterations: int = 4
    rounds: int = 5
    block_s: float = 0.0
    #: after another plan's block only the first run is slow (ONNX Runtime, bert-base, 2-core VM:
    #: run 1 +8–27 %, run 2 inside the spread of runs 3–4; results/cpu-2026-11-30/round-warmup.txt)
    round_warmup_iters: int = 1

    #: seconds per block in :meth:`long_run` (trtexec's default ``--duration=3``)
    LONG_RUN_BLOCK_S: ClassVar[float] = 3.0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.profile_iterations < 1:
            raise OrinprofError("iterations must be at least 1", "use --iterations N with N ≥ 1")
        if self.rounds < 1:
            raise OrinprofError("rounds must be at least 1", "use --rounds R with R ≥ 1 (5 or more for CIs)")
        if self.block_s < 0 or self.min_duration_s < 0:
            raise OrinprofError("block durations must not be negative", "use e.g. --block-s 3")

    def long_run(self) -> TimingConfig:
        """Publication settings (``--long-run``): at least trtexec's 3 s per block, 10 rounds and
        2 s of first warm-up; larger values already set are kept."""
        return replace(
            self,
            block_s=max(self.block_s, self.LONG_RUN_BLOCK_S),
            rounds=max(self.rounds, 10),
            warmup_s=max(self.warmup_s, 2.0),
        )

    def block(self, first: bool) -> TimingConfig:
        """The settings of one timing block (the first block of a plan warms up fully)."""
        if first:
            return replace(self, min_duration_s=max(self.min_duration_s, self.block_s))
        return replace(
            self,
            warmup_iters=self.round_warmup_iters,
            warmup_s=0.0,
            min_duration_s=max(self.min_duration_s, self.block_s),
        )


@dataclass(frozen=True)
class RunnerOptions:
    """What every runner is told, typed once here (the plan, the shape, where artefacts go);
    backend-specific settings travel in ``backend`` as that backend's own options dataclass
    (``extra`` is the legacy untyped form, being retired backend by backend)."""

    device: str = "cpu"  # "cpu", "cuda", "cuda:0", "trt" (ORT TensorRT EP) …
    threads: int | None = None  # intra-op threads on CPU; None = backend default
    inter_threads: int | None = None
    cuda_graph: bool = False
    #: the precision plan (a name from :data:`orinprof.plans.PLANS`); one default for every backend
    plan: str = "fp32"
    batch: int = 1
    seq_len: int | None = None
    #: the zoo preset (:class:`orinprof.models.ModelSpec`) for backends that consume ``"zoo"``
    spec: Any = None
    #: input name → concrete shape, for models with dynamic axes (TensorRT profiles, trtexec --shapes)
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    #: where a backend keeps what it builds (engines, timing caches); None = its own default
    artifact_dir: Path | None = None
    #: the backend's own typed options (e.g. TrtOptions, TorchOptions); None = its defaults
    backend: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendInfo:
    name: str
    device: str
    device_kind: str  # cpu | gpu | jetson
    versions: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


class Runner:
    """Base class: context manager, warm-up/timing loops and input validation written once.

    A backend *declares* what it can do in the class attributes below; :mod:`orinprof.measure`
    reads them and never compares a backend's name.
    """

    name = "base"
    #: what the runner runs: ``"onnx"`` (the plan's ONNX file) or ``"zoo"`` (the preset's module)
    consumes: ClassVar[str] = "onnx"
    #: can :meth:`infer` return model outputs (for the fidelity check)?
    returns_outputs: ClassVar[bool] = True
    #: are profiled layers engine layers that may span several ONNX nodes (split by FLOPs)?
    engine_layers: ClassVar[bool] = False
    #: are the profile's class times summed device-kernel time (so they cannot exceed e2e)?  When
    #: False and they sum past e2e, ``compare`` flags ``class_times_exceed_e2e``
    kernel_time_classes: ClassVar[bool] = False
    #: one line for docs and ``--help``: what this backend is
    summary: ClassVar[str] = ""

    #: the INT8 recipes (:data:`orinprof.quantize.INT8_RECIPES`) this backend runs; the first is what
    #: ``--int8-recipe auto`` picks (the fastest known here).  Default: TensorRT's Q/DQ layout
    int8_recipes: ClassVar[tuple[str, ...]] = ("trt-qdq",)

    def __init__(self, model_path: Path, options: RunnerOptions | None = None) -> None:
        self.model_path = Path(model_path)
        self.options = options or RunnerOptions()
        self._active = False
        #: (start, end) of the last timing run's timed iterations, ``time.perf_counter`` seconds;
        #: ``None`` when the backend times elsewhere (trtexec)
        self.timed_window: tuple[float, float] | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deactivate()

    def activate(self) -> None:
        if not self._active:
            self.activate_impl()
            self._active = True

    def deactivate(self) -> None:
        if self._active:
            self.deactivate_impl()
            self._active = False

    def _require_active(self) -> None:
        if not self._active:
            raise RuntimeError(f"{type(self).__name__} used before activate()")

    # ------------------------------------------------------------------ public API
    def info(self) -> BackendInfo:
        self._require_active()
        return self.info_impl()

    def infer(self, feed: Feed) -> dict[str, np.ndarray]:
        self._require_active()
        return self.infer_impl(feed)

    def infer_all(self, feeds: Sequence[Feed]) -> list[dict[str, np.ndarray]]:
        """Outputs for several inputs (the fidelity check); one call, so a process-isolated runner
        starts one process for all of them."""
        return [self.infer(f) for f in feeds]

    def time_e2e(self, feed: Feed, timing: TimingConfig, progress: Progress | None = None) -> np.ndarray:
        """Warm up, then time end-to-end inferences.  Returns every latency in ms, in order."""
        self._require_active()
        self.prepare_timing_impl(feed)
        start = time.perf_counter()
        done = 0
        while done < timing.warmup_iters or time.perf_counter() - start < timing.warmup_s:
            self.timed_call_impl()
            done += 1
        latencies: list[float] = []
        t0 = time.perf_counter()
        self.timed_window = (t0, t0)
        total = timing.iterations
        while len(latencies) < timing.iterations or (
            time.perf_counter() - t0 < timing.min_duration_s and len(latencies) < timing.max_iterations
        ):
            latencies.append(self.timed_call_impl())
            if progress:
                progress(min(len(latencies), total), total)
        # the timed window (time.perf_counter, the telemetry clock): energy per inference is
        # the energy inside it, so warm-up must stay outside
        self.timed_window = (t0, time.perf_counter())
        return np.asarray(latencies, dtype=float)

    def profile_layers(self, feed: Feed, iterations: int, progress: Progress | None = None) -> pd.DataFrame:
        """Separate profiling run.  One row per layer execution: :data:`RAW_PROFILE_COLUMNS`."""
        self._require_active()
        df = self.profile_layers_impl(feed, iterations, progress)
        missing = [c for c in RAW_PROFILE_COLUMNS if c not in df.columns]
        if missing:
            raise RuntimeError(f"{self.name} profile lacks {missing}")
        return df

    def profile_block(self, feed: Feed, iterations: int, progress: Progress | None = None) -> pd.DataFrame | None:
        """One profiling block of a run of several (:mod:`orinprof.measure`'s rounds).  Returns the
        block's rows now, or ``None`` when the runner keeps one profiler session across blocks and
        hands the rows over in :meth:`finish_profiling` (ONNX Runtime: its profiler cannot restart
        on a session, and a new session per round would reload the model every round)."""
        return self.profile_layers(feed, iterations, progress)

    def finish_profiling(self) -> list[pd.DataFrame]:
        """The rows of every block :meth:`profile_block` returned ``None`` for since the last call,
        one frame per block in the order they ran (:data:`RAW_PROFILE_COLUMNS`)."""
        self._require_active()
        frames = self.finish_profiling_impl()
        for df in frames:
            missing = [c for c in RAW_PROFILE_COLUMNS if c not in df.columns]
            if missing:
                raise RuntimeError(f"{self.name} profile lacks {missing}")
        return frames

    def attribution_graph(self) -> Path | None:
        """The ONNX graph whose node names the profile's ``onnx_nodes`` refer to, when it is not
        the model file itself (ONNX Runtime's optimised graph).  ``None`` = the model file."""
        return None

    # ------------------------------------------------------------------ to implement
    def activate_impl(self) -> None:
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        pass

    def info_impl(self) -> BackendInfo:
        raise NotImplementedError

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def prepare_timing_impl(self, feed: Feed) -> None:
        """Bind inputs (and on GPUs: copy them to the device once, outside the loop)."""
        raise NotImplementedError

    def timed_call_impl(self) -> float:
        """Run one inference on the prepared inputs; return its latency in ms.  GPU backends
        measure with device events, CPU backends with ``time.perf_counter``."""
        raise NotImplementedError

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        raise NotImplementedError

    def finish_profiling_impl(self) -> list[pd.DataFrame]:
        """Runners that return every block's rows at once have nothing left to hand over."""
        return []
