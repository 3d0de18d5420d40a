"""Backend ``trtexec``: build an engine with NVIDIA's ``trtexec`` binary once, then time and profile
it in separate launches of the saved engine, and ingest the JSON trtexec exports.

Three kinds of launch (argument lists, never shell strings):

* **build** (in :meth:`TrtexecRunner.activate`): ``--onnx … --saveEngine … --skipInference`` with
  ``--profilingVerbosity=detailed``, ``--exportLayerInfo`` and a persistent ``--timingCacheFile``
  (review m11), so repeated builds do not re-time every tactic;
* **timing** (:meth:`TrtexecRunner.time_e2e`, any number of times): ``--loadEngine`` with
  ``--exportTimes``; no profiler.  :attr:`timed_window` brackets the timed iterations of that
  launch only, never the build (review M5);
* **profiling** (:meth:`TrtexecRunner.profile_layers`): ``--loadEngine`` with ``--exportProfile``.

Version rules (each checked against trtexec's source, ``samples/common/sampleOptions.cpp``):
``--fp16``/``--int8`` exist up to 10.x and are *unknown options* in 11.x, where every network is
strongly typed (review B3); ``--stronglyTyped`` exists from 10.0; ``--shapes`` is refused for a
static ONNX ("Static model does not take explicit shapes", ``sampleEngines.cpp``; review B1), so it
is passed only for ONNX inputs with dynamic dimensions.  The version is read from the banner
``&&&& RUNNING TensorRT.trtexec [TensorRT v100300]`` that every launch prints (``logging.h``).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from orinprof import quantize
from orinprof import trt_formats as parse
from orinprof.backends.base import BackendInfo, Feed, Progress, Runner, RunnerOptions, TimingConfig
from orinprof.errors import OrinprofError
from orinprof.plans import PLAN_NAMES, get_plan

log = logging.getLogger(__name__)

#: Where JetPack and NVIDIA's Debian/tar packages put trtexec (it is not on PATH by default).
DEFAULT_TRTEXEC = Path("/usr/src/tensorrt/bin/trtexec")

INSTALL_HINT = (
    "on Jetson (JetPack 6): sudo apt install tensorrt, then use /usr/src/tensorrt/bin/trtexec; "
    "on a desktop GPU: install TensorRT from NVIDIA (apt package tensorrt or the tar archive) and put its "
    "bin/ directory on PATH"
)

#: oldest trtexec supported: TensorRT 8.6 (JetPack 6.0); JetPack 5's 8.5 is not supported (review B4)
VERSION_MIN = (8, 6)

PLAN_PRECISIONS = PLAN_NAMES


@dataclass(frozen=True)
class TrtexecOptions:
    """The trtexec backend's own options (``RunnerOptions.backend``)."""

    #: the binary; None = ``trtexec`` on PATH, else :data:`DEFAULT_TRTEXEC`
    trtexec: Path | None = None
    #: None = what this trtexec does by default (weak typing up to 10.x, strong typing in 11.x)
    strongly_typed: bool | None = None
    dla_core: int | None = None
    #: where engines, JSON and logs go; None = ``RunnerOptions.artifact_dir/trtexec`` or a temp dir
    work_dir: Path | None = None
    #: keep a temporary work directory after the run (engines are hundreds of MB; review m12)
    keep_work_dir: bool = False

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> TrtexecOptions:
        """The legacy untyped ``RunnerOptions.extra`` form (the CLI until it passes this class)."""
        dla = extra.get("dla_core")
        exe, work = extra.get("trtexec"), extra.get("work_dir")
        strong = extra.get("strongly_typed")
        return cls(
            trtexec=Path(exe) if exe else None,
            strongly_typed=None if strong is None else bool(strong),
            dla_core=None if dla is None else int(dla),
            work_dir=Path(work) if work else None,
            keep_work_dir=bool(extra.get("keep_work_dir", False)),
        )


def find_trtexec(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """``explicit`` if given, else ``trtexec`` on PATH, else the JetPack location."""
    if explicit is not None:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which("trtexec")
    if found:
        return Path(found)
    if DEFAULT_TRTEXEC.is_file() and os.access(DEFAULT_TRTEXEC, os.X_OK):
        return DEFAULT_TRTEXEC
    return None


def probe() -> tuple[bool, str]:
    """For the backend registry (``orinprof doctor``): is a trtexec binary there?"""
    path = find_trtexec()
    if path is None:
        return False, f"trtexec not found on PATH or at {DEFAULT_TRTEXEC} ({INSTALL_HINT})"
    return True, str(path)


_BANNER = re.compile(r"\[TensorRT v(\d+)\]")
_VERSION_LINE = re.compile(r"TensorRT version:\s*(\d+)\.(\d+)\.(\d+)")
_DEVICE_LINE = re.compile(r"Selected Device:\s*(.+)")
_ERROR_LINE = re.compile(r"\[E\]|error", re.I)


def parse_version(log_text: str) -> tuple[int, int, int] | None:
    """TensorRT version from trtexec output: the ``[TensorRT vN]`` banner, N = NV_TENSORRT_VERSION
    (``major*1000+minor*100+patch`` in 8.x, ``major*10000+minor*100+patch`` from 10.0;
    ``include/NvInferRuntimeBase.h``), or the ``TensorRT version: x.y.z`` line."""
    line = _VERSION_LINE.search(log_text)
    if line:
        return int(line.group(1)), int(line.group(2)), int(line.group(3))
    banner = _BANNER.search(log_text)
    if not banner:
        return None
    n = int(banner.group(1))
    if n >= 100000:
        return n // 10000, (n // 100) % 100, n % 100
    return n // 1000, (n // 100) % 10, n % 100


def trtexec_version(trtexec: Path) -> tuple[int, int, int]:
    """Run ``trtexec --help`` once and read its banner; refuse versions older than 8.6."""
    try:
        proc = subprocess.run([str(trtexec), "--help"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise OrinprofError(f"cannot run {trtexec} ({err})", INSTALL_HINT) from err
    version = parse_version(proc.stdout + proc.stderr)
    if version is None:
        raise OrinprofError(f"cannot tell the TensorRT version of {trtexec} (no banner in --help)", INSTALL_HINT)
    if version[:2] < VERSION_MIN:
        raise OrinprofError(
            f"trtexec {'.'.join(map(str, version))} is too old: orinprof needs TensorRT ≥ 8.6 "
            "(JetPack 5 is unsupported)",
            "flash JetPack 6.x (TensorRT 8.6/10.3), or profile on the CPU with --backend onnxruntime",
        )
    return version


def dynamic_inputs(onnx_path: Path) -> list[str]:
    """Graph inputs with a ``dim_param`` or a non-positive ``dim_value``: only those take ``--shapes``."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    out = []
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if any(d.HasField("dim_param") or d.dim_value <= 0 for d in dims):
            out.append(value.name)
    return out


def shapes_arg(shapes: Mapping[str, Sequence[int]]) -> str:
    """``{"input_ids": (1, 128)}`` → ``input_ids:1x128`` (comma-separated for several inputs)."""
    return ",".join(f"{name}:{'x'.join(str(int(d)) for d in dims)}" for name, dims in shapes.items())


def precision_flags(plan: str, major: int, strongly_typed: bool) -> list[str]:
    """Builder precision flags for ``plan`` on trtexec ``major``.  Strong typing (always on 11.x)
    takes none: the ONNX's types decide, and 11.x no longer knows ``--fp16``/``--int8``."""
    if plan not in PLAN_PRECISIONS:
        raise OrinprofError(f"unknown precision {plan!r} for trtexec", "choose one of: " + ", ".join(PLAN_PRECISIONS))
    if major >= 11:
        return []  # --stronglyTyped is a deprecated no-op there
    if strongly_typed:
        return ["--stronglyTyped"]
    chosen = get_plan(plan)
    if chosen.fp16:
        return ["--fp16"]
    if chosen.is_int8:
        # weak typing: Q/DQ networks need --int8; --fp16 lets the rest run FP16 instead of FP32
        return ["--fp16", "--int8"]
    return []


def build_args(
    trtexec: str | os.PathLike[str],
    onnx_path: Path,
    engine: Path,
    layers: Path,
    timing_cache: Path,
    plan: str,
    *,
    major: int,
    strongly_typed: bool = False,
    shapes: Mapping[str, Sequence[int]] | None = None,
    dla_core: int | None = None,
) -> list[str]:
    """The build launch: engine, detailed layer info and timing cache, no inference."""
    if strongly_typed and major < 10:
        raise OrinprofError(
            f"trtexec {major}.x has no --stronglyTyped (added in TensorRT 10.0)", "leave --strongly-typed off"
        )
    if dla_core is not None and plan == "fp32":
        raise OrinprofError("DLA runs FP16 and INT8 only, not the fp32 plan", "drop --dla for fp32, or use fp16")
    args = [
        str(trtexec),
        f"--onnx={onnx_path}",
        f"--saveEngine={engine}",
        f"--timingCacheFile={timing_cache}",
        "--profilingVerbosity=detailed",  # build-time setting: Metadata and precisions in layer info
        f"--exportLayerInfo={layers}",
        "--skipInference",
        *precision_flags(plan, major, strongly_typed),
    ]
    if shapes:
        args.append(f"--shapes={shapes_arg(shapes)}")
    if dla_core is not None:
        if dla_core not in (0, 1):
            raise OrinprofError(f"DLA core {dla_core} does not exist", "AGX Orin has DLA cores 0 and 1")
        args += [f"--useDLACore={dla_core}", "--allowGPUFallback"]
    return args


def run_args(
    trtexec: str | os.PathLike[str],
    engine: Path,
    *,
    times: Path | None = None,
    profile: Path | None = None,
    layers: Path | None = None,
    warmup_ms: int = 200,
    iterations: int = 100,
    duration_s: int = 0,
    cuda_graph: bool = False,
    shapes: Mapping[str, Sequence[int]] | None = None,
    dla_core: int | None = None,
) -> list[str]:
    """A launch of the saved engine: timing (``times``) or profiling (``profile``)."""
    if iterations < 1 or warmup_ms < 0 or duration_s < 0:
        raise OrinprofError(
            f"bad trtexec timing (iterations={iterations}, warm-up={warmup_ms} ms, duration={duration_s} s)",
            "iterations ≥ 1, warm-up and duration ≥ 0",
        )
    args = [
        str(trtexec),
        f"--loadEngine={engine}",
        "--noDataTransfers",  # time GPU compute only, like the Python TensorRT path
        "--useSpinWait",  # trtexec's own advice for stable GPU timing
        f"--warmUp={int(warmup_ms)}",
        f"--iterations={int(iterations)}",
        f"--duration={int(duration_s)}",
    ]
    if times is not None:
        args.append(f"--exportTimes={times}")
    if profile is not None:
        args.append(f"--exportProfile={profile}")
    if layers is not None:
        args.append(f"--exportLayerInfo={layers}")
    if cuda_graph:
        args.append("--useCudaGraph")
    if shapes:
        args.append(f"--shapes={shapes_arg(shapes)}")
    if dla_core is not None:
        args.append(f"--useDLACore={dla_core}")
    return args


class TrtexecRunner(Runner):
    """Runner around the trtexec binary (options: :class:`TrtexecOptions` in ``options.backend``;
    the legacy ``options.extra`` keys of the same names are still read)."""

    name = "trtexec"
    summary = "NVIDIA's trtexec binary: builds an engine once, then times and profiles it"
    returns_outputs = False  # trtexec writes no model outputs back
    engine_layers = True

    def __init__(self, model_path: Path, options: RunnerOptions | None = None) -> None:
        super().__init__(model_path, options)
        backend = self.options.backend
        self.trtexec_options = (
            backend if isinstance(backend, TrtexecOptions) else TrtexecOptions.from_extra(self.options.extra)
        )
        self.precision = str(self.options.extra.get("precision") or self.options.plan)
        explicit = self.options.input_shapes or self.options.extra.get("shapes") or {}
        self._given_shapes = {str(k): tuple(int(d) for d in v) for k, v in explicit.items()}
        self.trtexec: Path | None = None
        self.version: tuple[int, int, int] | None = None
        self.strongly_typed = False
        self.source: Path | None = None
        self.work_dir: Path | None = None
        self._temp_work = False
        self._dynamic: list[str] = []
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._build_log = ""
        self._paths: dict[str, Path] = {}
        self._timing_runs = 0

    # ------------------------------------------------------------------ lifecycle
    def activate_impl(self) -> None:
        opts = self.trtexec_options
        self.trtexec = find_trtexec(opts.trtexec)
        if self.trtexec is None:
            where = f"at {opts.trtexec}" if opts.trtexec is not None else f"on PATH or at {DEFAULT_TRTEXEC}"
            raise OrinprofError(f"trtexec not found {where}", INSTALL_HINT)
        if not self.model_path.is_file():
            raise OrinprofError(f"ONNX model {self.model_path} does not exist", "export the model first")
        if opts.dla_core is not None and self.precision == "fp32":
            raise OrinprofError("DLA runs FP16 and INT8 only, not the fp32 plan", "drop --dla for fp32, or use fp16")
        self.version = trtexec_version(self.trtexec)
        major = self.version[0]
        self.strongly_typed = major >= 11 or bool(opts.strongly_typed)
        if opts.strongly_typed is False and major >= 11:
            log.warning("trtexec %d.x builds strongly typed networks only; weak typing is not available", major)
        self.source = quantize.trt_plan_source(self.model_path, self.precision, self.strongly_typed)
        self._dynamic = dynamic_inputs(self.source)
        if opts.work_dir is not None:
            self.work_dir = Path(opts.work_dir)
        elif self.options.artifact_dir is not None:
            self.work_dir = Path(self.options.artifact_dir) / "trtexec"
        else:
            self.work_dir = Path(tempfile.mkdtemp(prefix="orinprof-trtexec-"))
            self._temp_work = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.source.stem}.{self.precision}.{'strong' if self.strongly_typed else 'weak'}"
        self._paths = {
            "engine": self.work_dir / f"{stem}.engine",
            "layers": self.work_dir / f"{stem}.layers.json",
            "profile": self.work_dir / f"{stem}.profile.json",
            "profile_layers": self.work_dir / f"{stem}.profile-layers.json",
            "times": self.work_dir / f"{stem}.times.json",
            "log": self.work_dir / f"{stem}.trtexec.log",
            # one timing cache per TensorRT version: a cache of another version is useless
            "timing_cache": self.work_dir / f"trtexec-{'.'.join(map(str, self.version))}.timing.cache",
        }
        log.info("trtexec %s (TensorRT %s); files in %s", self.trtexec, ".".join(map(str, self.version)), self.work_dir)
        if not self._dynamic or self._given_shapes:
            self._build(self._given_shapes)
        # else: a dynamic ONNX without given shapes is built on first use, with the feed's shapes

    def deactivate_impl(self) -> None:
        if self._temp_work and self.work_dir is not None and not self.trtexec_options.keep_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)  # engines are hundreds of MB (review m12)

    def _launch(self, args: list[str], what: str) -> str:
        log.info("running %s", " ".join(args))
        try:
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
        except OSError as err:
            raise OrinprofError(f"cannot run {self.trtexec} ({err.strerror})", INSTALL_HINT) from err
        text = proc.stdout + proc.stderr
        with self._paths["log"].open("a") as fh:
            fh.write(f"$ {' '.join(args)}\n{text}\n")
        if proc.returncode != 0:
            errors = [ln.strip() for ln in text.splitlines() if _ERROR_LINE.search(ln) and "&&&&" not in ln]
            last = errors[0] if errors else (text.strip().splitlines() or ["no output"])[-1]
            raise OrinprofError(
                f"trtexec {what} failed (exit {proc.returncode}): {last}", f"full log: {self._paths['log']}"
            )
        return text

    def _shapes_for(self, feed: Feed | None) -> dict[str, tuple[int, ...]]:
        if not self._dynamic:
            return {}  # static ONNX: trtexec refuses --shapes (review B1)
        shapes = dict(self._given_shapes)
        if feed is not None:
            for name in self._dynamic:
                if name not in shapes and name in feed:
                    shapes[name] = tuple(int(d) for d in np.asarray(feed[name]).shape)
        missing = [n for n in self._dynamic if n not in shapes]
        if missing:
            raise OrinprofError(
                f"ONNX inputs {', '.join(missing)} have dynamic dimensions and no shape was given",
                "pass --batch and --seq so orinprof can give trtexec --shapes",
            )
        return {n: shapes[n] for n in self._dynamic}

    def _build(self, given: Mapping[str, tuple[int, ...]], feed: Feed | None = None) -> None:
        assert self.trtexec is not None and self.version is not None and self.source is not None
        shapes = self._shapes_for(feed) if self._dynamic else {}
        for name in ("engine", "layers"):
            self._paths[name].unlink(missing_ok=True)  # never read a previous run's files
        args = build_args(
            self.trtexec,
            self.source,
            self._paths["engine"],
            self._paths["layers"],
            self._paths["timing_cache"],
            self.precision,
            major=self.version[0],
            strongly_typed=self.strongly_typed and self.version[0] < 11,
            shapes=shapes,
            dla_core=self.trtexec_options.dla_core,
        )
        self._build_log = self._launch(args, "build")
        missing = [str(self._paths[k]) for k in ("engine", "layers") if not self._paths[k].is_file()]
        if missing:
            raise OrinprofError(
                f"trtexec exited 0 but did not write {', '.join(missing)}", f"log: {self._paths['log']}"
            )
        self._shapes = shapes

    def _ensure_engine(self, feed: Feed) -> dict[str, tuple[int, ...]]:
        shapes = self._shapes_for(feed)
        if self._shapes is None or shapes != self._shapes:
            self._build(self._given_shapes, feed)
        return shapes

    # ------------------------------------------------------------------ facts
    def info_impl(self) -> BackendInfo:
        device = _DEVICE_LINE.search(self._build_log)
        name = device.group(1).strip() if device else _device_model() or "unknown"
        kind = "jetson" if re.search(r"orin|xavier|tegra|jetson", name, re.I) else "gpu"
        versions = {"tensorrt": ".".join(map(str, self.version))} if self.version else {}
        details: dict[str, Any] = {
            "trtexec": str(self.trtexec),
            "precision": self.precision,
            "typing": "strong" if self.strongly_typed else "weak",
            "plan_source": str(self.source),
            "engine_path": str(self._paths.get("engine")),
        }
        layers = self._paths.get("layers")
        if layers is not None and layers.is_file():
            details.update(parse.engine_summary(parse.read_layer_info(layers)).details())
        return BackendInfo(self.name, name, kind, versions, details)

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        raise OrinprofError("the trtexec backend cannot return model outputs", "use --backend tensorrt for outputs")

    # ------------------------------------------------------------------ timing and profiling launches
    def time_e2e(self, feed: Feed, timing: TimingConfig, progress: Progress | None = None) -> np.ndarray:
        """GPU compute time of every timed iteration (``computeMs`` of ``--exportTimes``) from one
        launch of the saved engine; callable any number of times (no rebuild).

        :attr:`timed_window` covers the timed iterations only: its length is the span of the
        iterations on trtexec's own clock (``startComputeMs`` of the first to ``endComputeMs`` of
        the last), placed to end when the launch returned, so engine loading and warm-up before it
        stay outside (the few ms trtexec spends writing its reports after it shift it slightly)."""
        self._require_active()
        shapes = self._ensure_engine(feed)
        assert self.trtexec is not None
        self._paths["times"].unlink(missing_ok=True)
        args = run_args(
            self.trtexec,
            self._paths["engine"],
            times=self._paths["times"],
            warmup_ms=round(timing.warmup_s * 1000),
            iterations=timing.iterations,
            duration_s=math.ceil(timing.min_duration_s),
            cuda_graph=self.options.cuda_graph,
            shapes=shapes,
            dla_core=self.trtexec_options.dla_core,
        )
        start = time.perf_counter()
        self._launch(args, "timing run")
        end = time.perf_counter()
        if not self._paths["times"].is_file():
            raise OrinprofError(f"trtexec did not write {self._paths['times']}", f"log: {self._paths['log']}")
        trace = parse.read_times(self._paths["times"])
        latencies = trace["compute_ms"].to_numpy(dtype=float)
        span_s = float((trace["start_compute_ms"].iloc[-1] + latencies[-1] - trace["start_compute_ms"].iloc[0]) / 1000)
        self.timed_window = (max(start, end - span_s), end)
        self._timing_runs += 1
        if progress:
            progress(len(latencies), timing.iterations)
        return latencies

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        """Per-layer times from a separate profiling launch of the saved engine."""
        shapes = self._ensure_engine(feed)
        assert self.trtexec is not None and self.source is not None
        for key in ("profile", "profile_layers"):
            self._paths[key].unlink(missing_ok=True)
        args = run_args(
            self.trtexec,
            self._paths["engine"],
            profile=self._paths["profile"],
            layers=self._paths["profile_layers"],
            warmup_ms=0,
            iterations=max(iterations, 1),
            shapes=shapes,
            dla_core=self.trtexec_options.dla_core,
        )
        self._launch(args, "profiling run")
        profile = parse.read_profile(self._paths["profile"])
        info_path = self._paths["profile_layers"] if self._paths["profile_layers"].is_file() else self._paths["layers"]
        layers = parse.read_layer_info(info_path)
        raw = parse.build_raw_profile(profile, layers, parse.onnx_node_order(self.source))
        if progress:
            progress(1, 1)
        return raw

    def attribution_graph(self) -> Path | None:
        """The engine was built from :attr:`source` (the FP32 export for a weakly typed fp16 plan)."""
        return self.source if self.source != self.model_path else None

    @property
    def output_files(self) -> Mapping[str, Path] | None:
        """Engine, JSON and log files (for ``ingest`` and debugging)."""
        return {k: v for k, v in self._paths.items() if v.is_file()} or None


def _device_model() -> str | None:
    """The Jetson's model string (``/proc/device-tree/model``), when trtexec did not name the GPU."""
    try:
        return Path("/proc/device-tree/model").read_text().rstrip("\x00").strip() or None
    except OSError:
        return None


__all__ = ["TrtexecOptions", "TrtexecRunner", "build_args", "run_args"]
