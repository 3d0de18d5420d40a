"""ONNX Runtime backend: CPU now; the CUDA and TensorRT execution providers when
``onnxruntime-gpu`` is installed (``--device cuda`` / ``--device trt``).

Timing run: a plain session, host wall-clock around ``session.run`` (a CPU backend; with the CUDA
EP ``run`` returns after the device work, so the wall-clock includes it).  Profiling run: a second
session with ORT's profiler; its per-node kernel times are read from the profile JSON and grouped
into iterations by the ``model_run`` events.  ORT's Python API cannot restart profiling on a session
(``end_profiling`` ends it), and a fresh session per round reloads and re-prepacks the model, so
after the first block (whose session ends at once, telling the events per run) one profiling session
spans every later block (:meth:`OnnxRuntimeRunner.profile_block`); its events are split back into
blocks by run when :meth:`OnnxRuntimeRunner.finish_profiling` asks.  ORT fuses and renames nodes
while optimising (``…/MatMulAddFusion``, ``SkipLayerNormalization``), so the optimised graph is saved
during the first profiling session and :meth:`attribution_graph` hands it to attribution, which maps
it onto the plan's inherited class map (:meth:`orinprof.analysed.AnalysedModel.runtime_classes`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orinprof.backends.base import BackendInfo, Feed, Progress, Runner
from orinprof.errors import MissingDependency, OrinprofError
from orinprof.identity import cpu_model  # the one CPU-model answer (re-exported)

log = logging.getLogger(__name__)

#: ORT records at most this many events per profiling session and past it only logs a warning
#: (``onnxruntime/core/common/profiler.cc``: ``Profiler::global_max_num_events_{1000 * 1000}``); a
#: session holds runs up to half of it, counted from the events per run its first block recorded
PROFILER_EVENT_CAP = 1_000_000
#: warm-up runs of a block: a new session's first runs allocate and prepack; a later block of the
#: same session runs right after other plans' blocks, and there only the first run is slow (bert-base
#: on the 2-core VM: run 1 +8–27 %, run 2 inside the spread of runs 3–4;
#: results/cpu-2026-11-30/round-warmup.txt, scripts/round_warmup_probe.py)
PROFILE_WARMUP_NEW_SESSION = 3
PROFILE_WARMUP_LATER_BLOCK = 1

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def probe() -> tuple[bool, str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return False, "onnxruntime is not installed (pip install 'orinprof[ort]')"
    import onnxruntime as ort

    return True, f"onnxruntime {ort.__version__}; providers: {', '.join(ort.get_available_providers())}"


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    summary = "ONNX Runtime on the CPU (CUDA / TensorRT execution providers with onnxruntime-gpu)"
    #: dynamic quantization first: on bert-base seq 128 orinprof's per-class ort-dynamic int8-all ran
    #: 1.75× fp32, 0.985× ORT's whole-model quantize_dynamic (results/cpu-2026-11-30/int8-recipes.txt),
    #: while the TensorRT layout's int8-attn ran at 1.27× fp32's latency (…/cost-runs/); that layout
    #: stays available as the reference for Jetson (and for ``--device trt``)
    int8_recipes = ("ort-dynamic", "ort-qdq", "trt-qdq")

    def __init__(self, model_path: Path, options: Any = None) -> None:
        super().__init__(model_path, options)
        self._ort: Any = None
        self._session: Any = None
        self._feed: Feed = {}
        self._optimized: Path | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="orinprof-ort-")
        self._profiler: Any = None  # the profiling session the current blocks run in
        self._profiler_runs = 0  # runs issued in it (warm-up included)
        #: the current session's blocks: (first run of the block, iterations)
        self._profiler_blocks: list[tuple[int, int]] = []
        self._events_per_run: float | None = None  # learnt when the first session ends
        #: ended sessions' blocks, in the order they ran, until handed over
        self._finished: list[pd.DataFrame] = []

    # ------------------------------------------------------------------ lifecycle
    def _reuse_optimised(self) -> bool:
        """The saved optimised graph can stand in for the model on the CPU provider (other
        providers may compile nodes that a saved graph cannot hold)."""
        return self._optimized is not None and self._optimized.exists() and self.options.device.split(":")[0] == "cpu"

    def _session_options(self, profile: bool = False) -> Any:
        so = self._ort.SessionOptions()
        so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.options.threads:
            so.intra_op_num_threads = int(self.options.threads)
        if self.options.inter_threads:
            so.inter_op_num_threads = int(self.options.inter_threads)
        so.log_severity_level = 3
        if profile:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(self._tmp.name, "profile")
            if self._optimized is None or not self._optimized.exists():
                # the optimised graph is the same every profiling round: write it once (hundreds
                # of MB for bert-base; measure profiles once per round)
                self._optimized = Path(self._tmp.name) / "optimized.onnx"
                so.optimized_model_filepath = str(self._optimized)
        return so

    def _providers(self) -> list[str]:
        device = self.options.device.split(":")[0]
        if device not in PROVIDERS:
            raise OrinprofError(
                f"unknown device {self.options.device!r} for onnxruntime", "use --device cpu, cuda or trt"
            )
        wanted = PROVIDERS[device]
        have = self._ort.get_available_providers()
        if wanted[0] not in have:
            raise OrinprofError(
                f"ONNX Runtime provider {wanted[0]!r} not available (have: {', '.join(have)})",
                "install onnxruntime-gpu for cuda/trt, or use --device cpu",
            )
        return [p for p in wanted if p in have]

    def _make_session(self, profile: bool = False) -> Any:
        path, options = self.model_path, self._session_options(profile)
        if profile and self._reuse_optimised():
            # later profiling rounds load the graph the first one optimised and saved, as it is:
            # the same nodes and names, without paying for the optimisation again every round
            path = self._optimized  # type: ignore[assignment]
            options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return self._ort.InferenceSession(str(path), options, providers=self._providers())
        except OrinprofError:
            raise
        except Exception as err:  # ORT raises its own Fail/InvalidGraph types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OrinprofError(f"ONNX Runtime cannot load {self.model_path.name}: {first}") from err

    def activate_impl(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise MissingDependency("onnxruntime", "ort", "for the onnxruntime backend") from err
        self._ort = ort
        self._session = self._make_session()

    def deactivate_impl(self) -> None:
        self._session = None
        self._profiler = None  # a profile nobody asked for is dropped with the temp dir
        self._profiler_blocks, self._finished = [], []
        self._tmp.cleanup()

    # ------------------------------------------------------------------ info / inference
    def info_impl(self) -> BackendInfo:
        providers = self._session.get_providers()
        gpu = providers[0] != "CPUExecutionProvider"
        opts = self._session.get_session_options()
        threads = opts.intra_op_num_threads or os.cpu_count() or 0
        return BackendInfo(
            name=self.name,
            device=("GPU via " + providers[0]) if gpu else cpu_model(),
            device_kind="gpu" if gpu else "cpu",
            versions={"onnxruntime": self._ort.__version__},
            details={"providers": providers, "threads": None if gpu else int(threads)},
        )

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        names = [o.name for o in self._session.get_outputs()]
        outs = self._session.run(None, dict(feed))
        return {n: np.asarray(o) for n, o in zip(names, outs)}

    def prepare_timing_impl(self, feed: Feed) -> None:
        self._feed = dict(feed)

    def timed_call_impl(self) -> float:
        t0 = time.perf_counter()
        self._session.run(None, self._feed)
        return (time.perf_counter() - t0) * 1e3

    def attribution_graph(self) -> Path | None:
        """The optimised graph the profiled node names belong to (after a profiling run)."""
        return self._optimized if self._optimized is not None and self._optimized.exists() else None

    # ------------------------------------------------------------------ profiling
    def profile_block(self, feed: Feed, iterations: int, progress: Progress | None = None) -> pd.DataFrame | None:
        """Profile ``iterations`` runs in the profiling session the earlier blocks ran in (a new one
        first, when there is none or this block could pass ORT's event cap); the rows come from
        :meth:`finish_profiling`."""
        self._require_active()
        if self._profiler is not None and not self._fits(PROFILE_WARMUP_LATER_BLOCK + iterations):
            self._end_profiler()
        if self._profiler is None:
            self._profiler = self._make_session(profile=True)
            self._profiler_runs = 0
        warmup = PROFILE_WARMUP_NEW_SESSION if self._profiler_runs == 0 else PROFILE_WARMUP_LATER_BLOCK
        for _ in range(warmup):
            self._profiler.run(None, dict(feed))
        self._profiler_blocks.append((self._profiler_runs + warmup, iterations))
        for k in range(iterations):
            self._profiler.run(None, dict(feed))
            if progress:
                progress(k + 1, iterations)
        self._profiler_runs += warmup + iterations
        return None

    def finish_profiling_impl(self) -> list[pd.DataFrame]:
        self._end_profiler()
        frames, self._finished = self._finished, []
        return frames

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        """One block whose rows are needed now (outside measure's rounds): the last one ended."""
        self.profile_block(feed, iterations, progress)
        self._end_profiler()
        return self._finished.pop()

    def _fits(self, runs: int) -> bool:
        """Can the current session record ``runs`` more runs?  Unknown before a session has ended
        (ORT writes its events only then): the first session holds one block."""
        if self._events_per_run is None:
            return False
        return (self._profiler_runs + runs) * self._events_per_run <= PROFILER_EVENT_CAP // 2

    def _end_profiler(self) -> None:
        """End the profiling session and split its events into its blocks' rows."""
        if self._profiler is None:
            return
        path = self._profiler.end_profiling()
        self._profiler = None
        events = json.loads(Path(path).read_text())
        Path(path).unlink(missing_ok=True)
        if self._profiler_runs:
            self._events_per_run = max(self._events_per_run or 0.0, len(events) / self._profiler_runs)
        # every run of the session in one pass (raises when ORT dropped runs), then cut into blocks
        runs = parse_profile(events, runs=self._profiler_runs)
        for first_run, iterations in self._profiler_blocks:
            part = runs[(runs["iteration"] >= first_run) & (runs["iteration"] < first_run + iterations)]
            self._finished.append(part.assign(iteration=part["iteration"] - first_run).reset_index(drop=True))
        self._profiler_blocks = []


def parse_profile(events: list[dict[str, Any]], skip_runs: int = 0, runs: int | None = None) -> pd.DataFrame:
    """ORT profiler events → raw rows (iteration, layer, op_type, onnx_nodes, time_ms) of the
    ``runs`` runs after the first ``skip_runs`` (all the rest when ``runs`` is None).  A profile
    holding fewer runs than that is an error: ORT stops recording at its event cap."""
    model_runs = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    end = len(model_runs) if runs is None else skip_runs + runs
    if end > len(model_runs):
        raise OrinprofError(
            f"ONNX Runtime's profile holds {len(model_runs)} runs, {end} were profiled "
            f"(its profiler stops recording at {PROFILER_EVENT_CAP:,} events per session)",
            "use fewer --profile-iterations",
        )
    starts = np.array([r[0] for r in model_runs], dtype=float)
    rows = []
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        k = int(np.searchsorted(starts, e["ts"], side="right")) - 1
        if k < skip_runs or k >= end:
            continue
        name = e["name"][: -len("_kernel_time")]
        rows.append(
            {
                "iteration": k - skip_runs,
                "layer": name,
                "op_type": e.get("args", {}).get("op_name", ""),
                "onnx_nodes": name,
                "time_ms": e["dur"] / 1e3,
            }
        )
    df = pd.DataFrame(rows, columns=["iteration", "layer", "op_type", "onnx_nodes", "time_ms"])
    # a node that runs twice in one iteration (loops) counts once per inference with its summed time
    if not df.empty:
        df = df.groupby(["iteration", "layer", "op_type", "onnx_nodes"], as_index=False, sort=False)["time_ms"].sum()
    return df
