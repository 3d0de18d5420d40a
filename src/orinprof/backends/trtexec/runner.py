"""Backend ``trtexec``: build and time an engine with NVIDIA's ``trtexec`` binary, then ingest the
JSON it exports.

One trtexec invocation does both runs orinprof needs: with ``--separateProfileRun`` it first times
the engine without a profiler (``--exportTimes``: per-iteration GPU compute time from CUDA events
around enqueue) and then runs again with the layer profiler attached (``--exportProfile``).  So
:meth:`TrtexecRunner.time_e2e` launches trtexec once and :meth:`TrtexecRunner.profile_layers`
reads the profile that same launch wrote (it launches again only if the input shapes changed).

Arguments are always an argument list, never a shell string.  Flags follow trtexec 8.6–10.x help
(``samples/common/sampleOptions.cpp``); TensorRT 11 makes several of them no-ops but still
accepts them.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from orinprof import trt_formats as parse
from orinprof.backends.base import BackendInfo, Feed, Progress, Runner, RunnerOptions, TimingConfig
from orinprof.errors import OrinprofError
from orinprof.ingest import trtexec as ingest
from orinprof.plans import PLAN_NAMES

log = logging.getLogger(__name__)

#: Where JetPack and NVIDIA's Debian/tar packages put trtexec (it is not on PATH by default).
DEFAULT_TRTEXEC = Path("/usr/src/tensorrt/bin/trtexec")

INSTALL_HINT = (
    "on Jetson (JetPack): sudo apt install tensorrt, then use /usr/src/tensorrt/bin/trtexec; "
    "on a desktop GPU: install TensorRT from NVIDIA (apt package tensorrt or the tar archive) and put its "
    "bin/ directory on PATH"
)

PLAN_PRECISIONS = PLAN_NAMES


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


def shapes_arg(shapes: Mapping[str, Sequence[int]]) -> str:
    """``{"input_ids": (1, 128)}`` → ``input_ids:1x128`` (comma-separated for several inputs)."""
    return ",".join(f"{name}:{'x'.join(str(int(d)) for d in dims)}" for name, dims in shapes.items())


def trtexec_args(
    trtexec: str | os.PathLike[str],
    onnx: Path,
    engine: Path,
    profile: Path,
    layers: Path,
    times: Path,
    precision: str,
    *,
    strongly_typed: bool = False,
    warmup_ms: int = 200,
    iterations: int = 100,
    duration_s: int = 0,
    cuda_graph: bool = False,
    shapes: Mapping[str, Sequence[int]] | None = None,
    dla_core: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The trtexec command line for one plan, as an argument list.

    Precision flags: ``fp32`` → none; ``fp16`` → ``--fp16``; ``int8-*`` → ``--fp16 --int8``: the
    ONNX carries explicit Q/DQ, and ``--fp16`` lets layers outside the Q/DQ islands run in FP16
    instead of falling back to FP32 (weakly typed build).  ``strongly_typed`` → ``--stronglyTyped``
    and no precision flag (TensorRT rejects them together; the ONNX's own types decide)."""
    if precision not in PLAN_PRECISIONS:
        raise OrinprofError(
            f"unknown precision {precision!r} for trtexec", "choose one of: " + ", ".join(PLAN_PRECISIONS)
        )
    if iterations < 1 or warmup_ms < 0 or duration_s < 0:
        raise OrinprofError(
            f"bad trtexec timing (iterations={iterations}, warm-up={warmup_ms} ms, duration={duration_s} s)",
            "iterations ≥ 1, warm-up and duration ≥ 0",
        )
    args = [
        str(trtexec),
        f"--onnx={onnx}",
        f"--saveEngine={engine}",
        "--separateProfileRun",  # the profiler's synchronisation must not touch the timing run
        f"--exportProfile={profile}",
        f"--exportLayerInfo={layers}",
        f"--exportTimes={times}",
        "--profilingVerbosity=detailed",  # build-time setting: Metadata and precisions in layer info
        "--noDataTransfers",  # time GPU compute only, like the Python TensorRT path
        "--useSpinWait",  # trtexec's own advice for stable GPU timing
    ]
    if cuda_graph:
        args.append("--useCudaGraph")
    args += [f"--warmUp={int(warmup_ms)}", f"--iterations={int(iterations)}", f"--duration={int(duration_s)}"]
    if shapes:
        args.append(f"--shapes={shapes_arg(shapes)}")
    if strongly_typed:
        args.append("--stronglyTyped")
    elif precision == "fp16":
        args.append("--fp16")
    elif precision.startswith("int8"):
        args += ["--fp16", "--int8"]
    if dla_core is not None:
        if dla_core not in (0, 1):
            raise OrinprofError(f"DLA core {dla_core} does not exist", "AGX Orin has DLA cores 0 and 1")
        args += [f"--useDLACore={dla_core}", "--allowGPUFallback"]
    args += list(extra)
    return args


_ERROR_LINE = re.compile(r"\[E\]|error", re.I)
_DEVICE_LINE = re.compile(r"Selected Device:\s*(.+)")
_VERSION_LINE = re.compile(r"TensorRT version:\s*([\d.]+)")


class TrtexecRunner(Runner):
    """Runner around the trtexec binary.  ``options.extra`` keys: ``precision`` (default fp16),
    ``strongly_typed``, ``dla_core``, ``shapes`` (name → dims; default: the feed's shapes),
    ``trtexec`` (path to the binary), ``work_dir`` (where engine and JSON files go; default a new
    temporary directory that is kept, so the files can be ingested again)."""

    name = "trtexec"
    summary = "NVIDIA's trtexec binary: builds, times and profiles an engine from the plan's ONNX"
    returns_outputs = False  # trtexec writes no model outputs back
    engine_layers = True

    def __init__(self, model_path: Path, options: RunnerOptions | None = None) -> None:
        super().__init__(model_path, options)
        extra = self.options.extra
        self.precision = str(extra.get("precision", "fp16"))
        self.strongly_typed = bool(extra.get("strongly_typed", False))
        dla = extra.get("dla_core")
        self.dla_core = int(dla) if dla is not None else None
        self.trtexec: Path | None = None
        self.work_dir: Path | None = None
        self._shapes: dict[str, tuple[int, ...]] | None = None
        self._outputs: dict[str, Path] | None = None
        self._log = ""

    # ------------------------------------------------------------------ lifecycle
    def activate_impl(self) -> None:
        explicit = self.options.extra.get("trtexec")
        self.trtexec = find_trtexec(explicit)
        if self.trtexec is None:
            where = f"at {explicit}" if explicit is not None else f"on PATH or at {DEFAULT_TRTEXEC}"
            raise OrinprofError(f"trtexec not found {where}", INSTALL_HINT)
        if not self.model_path.is_file():
            raise OrinprofError(f"ONNX model {self.model_path} does not exist", "export the model first")
        work = self.options.extra.get("work_dir")
        if work is not None:
            self.work_dir = Path(work)
            self.work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.work_dir = Path(tempfile.mkdtemp(prefix="orinprof-trtexec-"))
        log.info("trtexec %s; files in %s", self.trtexec, self.work_dir)

    def info_impl(self) -> BackendInfo:
        device = _DEVICE_LINE.search(self._log)
        version = _VERSION_LINE.search(self._log)
        name = device.group(1).strip() if device else "unknown (trtexec not run yet)"
        kind = "jetson" if re.search(r"orin|xavier|tegra", name, re.I) else "gpu"
        versions = {"tensorrt": version.group(1)} if version else {}
        return BackendInfo(self.name, name, kind, versions, {"trtexec": str(self.trtexec), "precision": self.precision})

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        raise OrinprofError("the trtexec backend cannot return model outputs", "use --backend tensorrt for outputs")

    # ------------------------------------------------------------------ the one trtexec launch
    def _paths(self) -> dict[str, Path]:
        assert self.work_dir is not None
        stem = f"{self.model_path.stem}.{self.precision}"
        return {
            "engine": self.work_dir / f"{stem}.engine",
            "profile": self.work_dir / f"{stem}.profile.json",
            "layers": self.work_dir / f"{stem}.layers.json",
            "times": self.work_dir / f"{stem}.times.json",
            "log": self.work_dir / f"{stem}.trtexec.log",
        }

    def _run(self, feed: Feed, timing: TimingConfig) -> dict[str, Path]:
        explicit = self.options.extra.get("shapes")
        shapes = (
            {str(k): tuple(int(d) for d in v) for k, v in explicit.items()}
            if explicit
            else {name: tuple(int(d) for d in np.asarray(arr).shape) for name, arr in feed.items()}
        )
        if self._outputs is not None and shapes == self._shapes:
            return self._outputs
        paths = self._paths()
        assert self.trtexec is not None
        args = trtexec_args(
            self.trtexec,
            self.model_path,
            paths["engine"],
            paths["profile"],
            paths["layers"],
            paths["times"],
            self.precision,
            strongly_typed=self.strongly_typed,
            warmup_ms=round(timing.warmup_s * 1000),
            iterations=timing.iterations,
            duration_s=math.ceil(timing.min_duration_s),
            cuda_graph=self.options.cuda_graph,
            shapes=shapes or None,
            dla_core=self.dla_core,
        )
        log.info("running %s", " ".join(args))
        try:
            proc = subprocess.run(args, capture_output=True, text=True, check=False)
        except OSError as err:
            raise OrinprofError(f"cannot run {self.trtexec} ({err.strerror})", INSTALL_HINT) from err
        self._log = proc.stdout + proc.stderr
        paths["log"].write_text(self._log)
        if proc.returncode != 0:
            errors = [ln.strip() for ln in self._log.splitlines() if _ERROR_LINE.search(ln)]
            last = errors[-1] if errors else (self._log.strip().splitlines() or ["no output"])[-1]
            raise OrinprofError(f"trtexec failed (exit {proc.returncode}): {last}", f"full log: {paths['log']}")
        missing = [str(paths[k]) for k in ("profile", "layers", "times") if not paths[k].is_file()]
        if missing:
            raise OrinprofError(
                f"trtexec exited 0 but did not write {', '.join(missing)}",
                f"this trtexec may lack --exportLayerInfo (TensorRT ≥ 8.2 needed); log: {paths['log']}",
            )
        self._shapes, self._outputs = shapes, paths
        return paths

    # ------------------------------------------------------------------ public API (batch-shaped)
    def time_e2e(self, feed: Feed, timing: TimingConfig, progress: Progress | None = None) -> np.ndarray:
        """GPU compute time of every timed iteration (``computeMs`` of ``--exportTimes``: CUDA
        events around enqueue, inside trtexec).  trtexec runs its own warm-up and loop, so the base
        class's per-call loop does not apply; it drops warm-up iterations itself."""
        self._require_active()
        paths = self._run(feed, timing)
        latencies = parse.read_times(paths["times"])["compute_ms"].to_numpy(dtype=float)
        if progress:
            progress(len(latencies), timing.iterations)
        return latencies

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        """The raw per-layer frame of the separate profiling run trtexec already made."""
        timing = TimingConfig(iterations=max(iterations, 1), profile_iterations=max(iterations, 1))
        paths = self._run(feed, timing)
        profile = parse.read_profile(paths["profile"])
        layers = parse.read_layer_info(paths["layers"])
        node_order = ingest.onnx_node_order(self.model_path)
        raw = ingest.build_raw_profile(profile, layers, node_order)
        if progress:
            progress(1, 1)
        return raw

    @property
    def output_files(self) -> Mapping[str, Path] | None:
        """Engine, JSON and log files of the last launch (for ``ingest`` and debugging)."""
        return dict(self._outputs) if self._outputs else None
