"""PyTorch runner: the zoo's modules on CUDA (or CPU), FP32 / FP16 / W8A8 per class.

Options (``RunnerOptions.extra``): ``preset`` (a preset name or a ``ModelSpec``), ``precision``
(fp32 | fp16 | int8-attn | int8-ffn | int8-all), ``batch``, ``seq_len``, ``seed``;
``int8_recipe`` (``auto`` | a name of :data:`.int8.INT8_RECIPES`; ``auto`` is the fastest measured
recipe for the device kind), or the low-level ``int8_impl`` (``int_mm`` | ``int_mm_compiled`` |
``torchao``) and ``act_granularity`` (``per_token`` | ``per_tensor`` | ``per_tensor_static``);
``attn_core`` (``matmul`` | ``sdpa`` | ``sage``, :mod:`.attention`); ``class_timer``
(``kernels`` | ``events``: how the profiling run times classes on CUDA).  ``spec`` (a
``ModelSpec``) wins over ``preset`` when both are given.  Other keys are ignored.

Precisions.  ``fp16`` = ``module.half()``: LayerNorm and softmax keep fp16 storage, and their CUDA
kernels accumulate in fp32; the zoo's RMSNorm upcasts itself.  The INT8 plans run everything in
FP16 on CUDA (FP32 on CPU, where FP16 is emulated) except the chosen class's ``nn.Linear`` layers,
which become W8A8 (:mod:`orinprof.backends.torch.int8`), and, with ``attn_core='sage'``, the
attention core of plans that quantize attention.  ``BackendInfo.details["precision_map"]`` says
what ran in which precision, ``details["int8_recipe"]`` which recipe.

Timing run: inputs go to the device once (``prepare_timing_impl``); each call records a CUDA
event, runs the forward under ``torch.inference_mode()`` (or replays a captured CUDA graph when
``RunnerOptions.cuda_graph``), records a second event and waits for it.  On CPU:
``time.perf_counter``.  Profiling run (:mod:`.profile`): on CUDA, the GPU kernel time of each
region through ``torch.profiler`` (of the graph's replays when ``cuda_graph``); on CPU, module
hooks with ``time.perf_counter``.  After a kernel-time profiling run, ``details["summary_facts"]``
holds the summary columns it measured (``gpu_busy_ms``, ``profiled_span_ms``, ``int8_kernels_*`` …;
measure derives ``gpu_idle_ms`` = e2e − busy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import platform
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orinprof.backends.base import BackendInfo, Feed, Progress, Runner, RunnerOptions
from orinprof.backends.torch import attention
from orinprof.backends.torch.int8 import (
    ACT_GRANULARITIES,
    INT8_IMPLS,
    INT8_RECIPES,
    PLAN_CLASSES,
    RECIPE_CHOICES,
    QuantReport,
    apply_w8a8,
    calibrate_activation_amax,
    check_choice,
    linear_layers,
    recipe_for,
    resolve_recipe,
)
from orinprof.backends.torch.kernels import KernelFacts
from orinprof.backends.torch.profile import profile_kernels, profile_modules
from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

#: oldest torch this backend supports (torch._int_mm and torch.cuda.OutOfMemoryError)
TORCH_FLOOR = (2, 2)
#: INT8 tensor cores arrived with Turing (sm_75); Orin is sm_87
INT8_MIN_CAPABILITY = (7, 5)
#: warm-up forwards on a side stream before a CUDA graph is captured
GRAPH_WARMUP = 3

#: calibration forwards of the static INT8 recipe (synthetic inputs, seed + 1 as measure's)
CALIBRATION_BATCHES = 8
CLASS_TIMERS = ("kernels", "events")

_KNOWN_OPTIONS = {
    "preset",
    "spec",
    "precision",
    "batch",
    "seq_len",
    "int8_impl",
    "act_granularity",
    "int8_recipe",
    "attn_core",
    "class_timer",
    "profile_process",
    "seed",
}
#: where the profiling run runs: ``child`` = a replica of the runner in a spawned process (CUPTI
#: never attaches to the timing process: after one torch.profiler session, CUDA-graph replays in
#: the same process ran 12–20 % slower on the H200, even with TEARDOWN_CUPTI=1), ``same`` = here
PROFILE_PROCESSES = ("auto", "child", "same")
_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d+))?$")


def probe() -> tuple[bool, str]:
    """For the registry: is torch importable, and which device would ``--device cuda`` get?"""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed (pip install 'orinprof[torch]')"
    ok, reason = cuda_probe()
    import torch

    return True, f"torch {torch.__version__}; " + (reason if ok else f"CPU only ({reason})")


def cuda_probe() -> tuple[bool, str]:
    """Whether torch sees a CUDA device (GPU tests skip on this)."""
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA device"
    return True, f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}"


@dataclass(frozen=True)
class TorchOptions:
    preset: Any  # preset name or ModelSpec
    precision: str = "fp32"
    batch: int = 1
    seq_len: int | None = None
    int8_impl: str = "int_mm"
    act_granularity: str = "per_token"
    #: a recipe name or "auto"; None = the explicit int8_impl / act_granularity above
    int8_recipe: str | None = "auto"
    attn_core: str = "matmul"
    class_timer: str = "kernels"
    #: ``auto`` = ``child`` for kernel time on CUDA, else ``same``
    profile_process: str = "auto"
    seed: int = 0

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> TorchOptions:
        unknown = sorted(set(extra) - _KNOWN_OPTIONS)
        if unknown:  # measure passes one extra dict to every backend: ignore, but say so
            log.debug("torch backend ignores option(s) %s", ", ".join(unknown))
        # measure passes the ModelSpec as "spec" (variants from with_config have no preset name)
        preset = extra.get("spec") or extra.get("preset")
        if preset is None:
            raise OrinprofError(
                "the torch backend needs a model preset", "use --model NAME (it does not run ONNX files)"
            )
        seq = extra.get("seq_len")
        explicit = "int8_impl" in extra or "act_granularity" in extra
        recipe = extra.get("int8_recipe")
        if recipe is not None:
            recipe = check_choice(str(recipe), RECIPE_CHOICES, "int8_recipe")
        elif not explicit:
            recipe = "auto"
        return cls(
            preset=preset,
            precision=check_choice(str(extra.get("precision", "fp32")), tuple(PLAN_CLASSES), "precision"),
            batch=int(extra.get("batch", 1)),
            seq_len=None if seq is None else int(seq),
            int8_impl=check_choice(str(extra.get("int8_impl", "int_mm")), INT8_IMPLS, "int8_impl"),
            act_granularity=check_choice(
                str(extra.get("act_granularity", "per_token")), ACT_GRANULARITIES, "act_granularity"
            ),
            int8_recipe=recipe,
            attn_core=check_choice(str(extra.get("attn_core", "matmul")), attention.ATTN_CORES, "attn_core"),
            class_timer=check_choice(str(extra.get("class_timer", "kernels")), CLASS_TIMERS, "class_timer"),
            profile_process=check_choice(
                str(extra.get("profile_process", "auto")), PROFILE_PROCESSES, "profile_process"
            ),
            seed=int(extra.get("seed", 0)),
        )

    @property
    def int8(self) -> bool:
        return bool(PLAN_CLASSES[self.precision])


def parse_device(device: str) -> tuple[str, int]:
    match = _DEVICE.match(device.strip().lower())
    if not match:
        raise OrinprofError(
            f"device {device!r} is not a torch device",
            "use --device cuda, cuda:N or cpu with --backend torch",
        )
    return match.group(1), int(match.group(2) or 0)


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _is_jetson() -> bool:
    return Path("/etc/nv_tegra_release").exists()


class TorchRunner(Runner):
    """Eager PyTorch on CUDA or CPU.  After :meth:`activate`, :attr:`module` is the prepared
    model and :attr:`inputs` the device inputs of the last :meth:`prepare_timing_impl` (the GPU
    benchmarks time the same module with a bare loop)."""

    name = "torch"
    summary = "PyTorch on CUDA: the zoo's modules in FP16 / W8A8, optional CUDA-graph replay"
    consumes = "zoo"
    #: on CUDA, class times are summed GPU kernel time (:mod:`.kernels`); on the CPU, hooks time a
    #: synchronous forward, whose regions cannot overlap either.  ``class_timer='events'`` on CUDA
    #: is not kernel time: its summary facts say so (``kernel_time_classes`` False)
    kernel_time_classes = True

    def __init__(self, model_path: Path | None = None, options: RunnerOptions | None = None) -> None:
        super().__init__(Path(model_path or "."), options)
        self.opts = TorchOptions.from_extra(self.options.extra)
        self.kind, self.index = parse_device(self.options.device)
        self.module: Any = None
        self.inputs: dict[str, Any] = {}
        self.spec: Any = None
        self.dtype: Any = None
        self.quant: QuantReport | None = None
        self._device: Any = None
        self._events: tuple[Any, Any] | None = None
        self._graph: Any = None
        self._torch_version = ""
        self._graph_output: Any = None
        self._saved_threads: int | None = None
        self._linear_count = 0
        self.recipe = ""
        self.core: attention.AttentionCore | None = None
        self.kernel_facts: KernelFacts | None = None
        self.kernel_table: pd.DataFrame | None = None
        self._child: Any = None  # (process, connection) of the profiling replica

    # ------------------------------------------------------------------ lifecycle
    def activate_impl(self) -> None:
        try:
            self._activate()
        except BaseException:
            self.deactivate_impl()  # the base class calls deactivate only after a good activate
            raise

    def _activate(self) -> None:
        torch = _import_torch()
        self._torch_version = torch.__version__
        self._device = self._check_device(torch)
        if self.kind == "cpu" and self.options.threads:
            self._saved_threads = torch.get_num_threads()  # process-wide: restored on deactivate
            torch.set_num_threads(self.options.threads)
        from orinprof import models  # the zoo; imported late, like torch

        spec = models.get(self.opts.preset) if isinstance(self.opts.preset, str) else self.opts.preset
        seq = self.opts.seq_len or spec.default_seq
        spec.check_shape(self.opts.batch, seq)
        self.spec = spec
        # FP16 on CPU is emulated and slow: the INT8 plans keep the rest of the model in FP32 there
        half = self.opts.precision == "fp16" or (self.opts.int8 and self.kind == "cuda")
        self.dtype = torch.float16 if half else torch.float32
        classes = PLAN_CLASSES[self.opts.precision]
        core_name = self.opts.attn_core
        if core_name == "sage":  # INT8 core only where the plan quantizes attention (attention.py)
            core_name = "sage" if "attention" in classes else "sdpa"
            if core_name == "sage":
                attention.check_sage(self.kind, attention.head_dim(spec))
        with self._oom_guard("loading the model"):
            module = models.build(spec, seed=self.opts.seed).to(self._device, self.dtype).eval()
            self._linear_count = len(linear_layers(module, spec.family))
            self.core = attention.make_core(core_name, spec.family)
            if self.core is not None:
                attention.install_core(module, self.core)
            if classes:
                impl, granularity = self.opts.int8_impl, self.opts.act_granularity
                if self.opts.int8_recipe is not None:
                    recipe = resolve_recipe(self.opts.int8_recipe, self.kind)
                    impl, granularity = recipe.impl, recipe.act_granularity
                self.recipe = recipe_for(impl, granularity)
                amax = self._calibrate(module, spec, classes) if granularity == "per_tensor_static" else None
                self.quant = apply_w8a8(
                    module,
                    spec.family,
                    classes,
                    impl,
                    granularity,
                    cuda_shapes=self.kind == "cuda",
                    act_amax=amax,
                )
        self.module = module.eval()
        if self.kind == "cuda":
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        log.info(
            "torch %s: %s %s on %s (%s)",
            torch.__version__,
            spec.name,
            self.opts.precision,
            self._device,
            self.dtype,
        )

    def _calibrate(self, module: Any, spec: Any, classes: tuple[str, ...]) -> dict[str, float]:
        """Activation ranges for the static recipe: max |input| of each INT8 layer over
        :data:`CALIBRATION_BATCHES` synthetic batches (seed + 1: never the timing or fidelity inputs)."""
        from orinprof.export import synthesize

        rng = np.random.default_rng(self.opts.seed + 1)
        shapes = spec.inputs(self.opts.batch, self.opts.seq_len or spec.default_seq)
        feeds = [synthesize(shapes, rng) for _ in range(CALIBRATION_BATCHES)]

        def run() -> None:
            for feed in feeds:
                module(**self._to_device(feed))

        return calibrate_activation_amax(module, spec.family, classes, run)

    def _check_device(self, torch: Any) -> Any:
        if self.kind == "cpu":
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise OrinprofError(
                f"no CUDA device: torch {torch.__version__} sees none (torch.version.cuda = {torch.version.cuda})",
                "use --device cpu, or --backend onnxruntime",
            )
        count = torch.cuda.device_count()
        if self.index >= count:
            raise OrinprofError(
                f"CUDA device {self.index} does not exist ({count} visible)",
                f"use --device cuda:0..{count - 1}",
            )
        capability = torch.cuda.get_device_capability(self.index)
        if self.opts.int8 and capability < INT8_MIN_CAPABILITY:
            name = torch.cuda.get_device_name(self.index)
            raise OrinprofError(
                f"{self.opts.precision} needs INT8 tensor cores (compute capability ≥ 7.5); "
                f"{name} is {capability[0]}.{capability[1]}",
                "use --precisions fp16 on this GPU",
            )
        torch.cuda.set_device(self.index)
        return torch.device("cuda", self.index)

    def deactivate_impl(self) -> None:
        self._stop_child()
        self.module = None
        self.inputs = {}
        self._graph = None
        self._graph_output = None
        self._events = None
        if self._saved_threads is not None:
            import torch

            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None
        if self.kind == "cuda":
            import torch

            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ info
    def info_impl(self) -> BackendInfo:
        import torch

        versions: dict[str, str] = {"torch": str(torch.__version__)}
        details: dict[str, Any] = {
            "preset": self.spec.name,
            "precision": self.opts.precision,
            "compute_dtype": str(self.dtype).replace("torch.", ""),
            "cuda_graph": bool(self.options.cuda_graph and self.kind == "cuda"),
            "precision_map": self.precision_map(),
            "gemm_counts": self.gemm_counts(),
        }
        details["attention_core"] = self.core.name if self.core else "matmul"
        if self.core is not None and self.core.int8:
            versions["sageattention"] = attention.sage_version() or ""
        if self.quant:
            details["int8_recipe"] = self.recipe + ("+sage-core" if self.core is not None and self.core.int8 else "")
            if self.recipe in INT8_RECIPES:
                details["int8_recipe_description"] = INT8_RECIPES[self.recipe].description
            details["int8_impl"] = self.quant.impl
            details["act_granularity"] = self.quant.act_granularity
            details["int8_layers"] = [q.name for q in self.quant.quantized]
            if self.quant.padded:
                details["int8_padding"] = list(self.quant.padded)
        facts: dict[str, Any] = {"int8_recipe": details["int8_recipe"]} if "int8_recipe" in details else {}
        if self.kernel_facts is not None:
            facts.update(self.kernel_facts.summary_columns())
        elif self.kind == "cuda" and self.opts.class_timer == "events":
            facts["kernel_time_classes"] = False
        if facts:
            details["summary_facts"] = facts
        if self.kind == "cuda":
            versions["cuda"] = str(torch.version.cuda)
            versions["cudnn"] = str(torch.backends.cudnn.version())
            major, minor = torch.cuda.get_device_capability(self.index)
            details["compute_capability"] = f"{major}.{minor}"
            device = torch.cuda.get_device_name(self.index)
            kind = "jetson" if _is_jetson() else "gpu"
        else:
            details["threads"] = torch.get_num_threads()
            device, kind = _cpu_name(), "cpu"
        return BackendInfo("torch", device, kind, versions, details)

    def gemm_counts(self) -> dict[str, int]:
        """The summary's GEMM counts: ``nn.Linear`` layers before quantization, and those now in
        INT8 by class (the attention projections, plus one Q·Kᵀ per block when the core runs
        through SageAttention; P·V stays FP16 there).  What the GPU actually ran in INT8 is
        counted from kernels in ``summary_facts`` (``int8_kernels_*``)."""
        counts = self.quant.counts() if self.quant else {}
        core_int8 = 0
        if self.core is not None and self.core.int8 and self.module is not None:
            core_int8 = sum(1 for m in self.module.modules() if getattr(m, "attention_core", None) is self.core)
        return {
            "gemms_total": self._linear_count,
            "gemms_int8_attention": counts.get("attention", 0) + core_int8,
            "gemms_int8_ffn": counts.get("ffn", 0),
            "gemms_int8_other": counts.get("other", 0),
        }

    def precision_map(self) -> dict[str, str]:
        """What ran in which precision, by part of the model."""
        base = str(self.dtype).replace("torch.", "")
        classes = PLAN_CLASSES[self.opts.precision]
        granularity = self.quant.act_granularity if self.quant else self.opts.act_granularity
        w8a8 = f"int8 W8A8 (weights per channel, activations {granularity}, int32 accumulate)"
        if self.core is not None and self.core.int8:
            core = "int8 QKᵀ (SageAttention, per-block scales), fp16 softmax and PV"
        elif self.core is not None:
            core = f"{base} (scaled_dot_product_attention)"
        else:
            core = base + (" (softmax accumulates in fp32)" if base == "float16" else "")
        return {
            "attention projections": w8a8 if "attention" in classes else base,
            "attention core (QKᵀ, softmax, PV)": core,
            "ffn linears": w8a8 if "ffn" in classes else base,
            "norms": base + (" storage, fp32 statistics" if base == "float16" else ""),
            "embeddings": base,
            "lm head / other linears": base,
        }

    # ------------------------------------------------------------------ inputs
    def _to_device(self, feed: Feed) -> dict[str, Any]:
        import torch

        wanted = [i.name for i in self.spec.inputs(self.opts.batch, self.opts.seq_len or self.spec.default_seq)]
        missing = [n for n in wanted if n not in feed]
        if missing:
            raise OrinprofError(
                f"input(s) {', '.join(missing)} missing for {self.spec.name}", "inputs: " + ", ".join(wanted)
            )
        if self.core is not None:
            self.core.check_mask(feed)
        out = {}
        for name in wanted:
            tensor = torch.from_numpy(np.ascontiguousarray(feed[name])).to(self._device)
            out[name] = tensor.to(self.dtype) if tensor.is_floating_point() else tensor
        return out

    def _forward(self, inputs: Mapping[str, Any]) -> Any:
        import torch

        with torch.inference_mode():
            return self.module(**inputs)

    @contextlib.contextmanager
    def _oom_guard(self, what: str) -> Iterator[None]:
        import torch

        try:
            yield
        except torch.cuda.OutOfMemoryError as err:
            self._graph = None
            torch.cuda.empty_cache()
            raise OrinprofError(
                f"CUDA out of memory while {what} ({self.spec.name if self.spec else self.opts.preset}, "
                f"batch {self.opts.batch}, seq {self.opts.seq_len}, {self.opts.precision})",
                "use a smaller --seq or --batch; results finished so far are kept",
            ) from err

    # ------------------------------------------------------------------ runs
    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        with self._oom_guard("running inference"):
            out = self._forward(self._to_device(feed))
            return {"output": out.float().cpu().numpy()}

    def prepare_timing_impl(self, feed: Feed) -> None:
        with self._oom_guard("preparing the timing run"):
            self.inputs = self._to_device(feed)
            self._graph = None
            if self.options.cuda_graph and self.kind == "cuda":
                self._graph, self._graph_output = self._capture_graph(self.inputs)
        if self.options.cuda_graph and self.kind == "cpu":
            log.warning("cuda_graph ignored on CPU")

    def _capture_graph(self, inputs: Mapping[str, Any]) -> tuple[Any, Any]:
        """A CUDA graph of one forward on ``inputs`` (device tensors) and its output tensor."""
        import torch

        # warm-up on a side stream (lazy allocations and cuBLAS handles must not be captured)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(GRAPH_WARMUP):
                self._forward(inputs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.inference_mode(), torch.cuda.graph(graph):
                output = self.module(**inputs)
            torch.cuda.synchronize()
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:  # an op that syncs with the host or allocates outside the pool
            raise OrinprofError(
                f"CUDA graph capture of {self.spec.name} ({self.opts.precision}) failed: {str(err).splitlines()[0]}",
                "run without --cuda-graph",
            ) from err
        log.info("captured a CUDA graph of the forward")
        return graph, output

    def timed_call_impl(self) -> float:
        import torch

        # inference_mode is entered before the first stamp, so its host cost is outside the timed span
        if self.kind == "cpu":
            with torch.inference_mode():
                t0 = time.perf_counter()
                self.module(**self.inputs)
                return (time.perf_counter() - t0) * 1e3
        assert self._events is not None
        start, end = self._events
        with self._oom_guard("timing"), torch.inference_mode():
            start.record()
            if self._graph is not None:
                self._graph.replay()
            else:
                self.module(**self.inputs)
            end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    def _profile_in_child(self) -> bool:
        if self.opts.profile_process == "auto":
            return self.kind == "cuda" and self.opts.class_timer == "kernels"
        return self.opts.profile_process == "child"

    def profile_layers_impl(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        if self._profile_in_child():
            return self._child_profile(feed, iterations, progress)
        with self._oom_guard("profiling"):
            inputs = self._to_device(feed)
            for _ in range(2):  # warm the eager path (cuBLAS heuristics, allocator) outside the rows
                self._forward(inputs)
            if self.kind == "cuda" and self.opts.class_timer == "kernels":
                return self._profile_kernels(inputs, iterations, progress)
            return profile_modules(
                self.module,
                self.spec.family,
                lambda: self._forward(inputs),
                iterations,
                cuda=self.kind == "cuda",
                progress=progress,
            )

    def _profile_kernels(self, inputs: Mapping[str, Any], iterations: int, progress: Progress | None) -> pd.DataFrame:
        replay = None
        if self.options.cuda_graph:
            graph, _output = self._capture_graph(inputs)
            replay = graph.replay
        try:
            result = profile_kernels(
                self.module,
                self.spec.family,
                lambda: self._forward(inputs),
                iterations,
                replay=replay,
                progress=progress,
            )
        except RuntimeError as err:
            raise OrinprofError(
                f"kernel-time profiling failed: {str(err).splitlines()[0]}",
                "use class_timer 'events' (CUDA-event spans per region)",
            ) from err
        self.kernel_facts = result.facts
        self.kernel_table = result.kernels
        return result.rows

    # ------------------------------------------------------------------ profiling replica
    def _child_profile(self, feed: Feed, iterations: int, progress: Progress | None) -> pd.DataFrame:
        """The profiling run in a replica of this runner in a spawned process (same options and
        seed, so the same weights and calibration), kept alive across rounds."""
        if self._child is None:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            extra = {**self.options.extra, "profile_process": "same"}
            options = dataclasses.replace(self.options, extra=extra)
            process = context.Process(target=_profile_replica, args=(theirs, options), daemon=True)
            process.start()
            theirs.close()
            self._child = (process, ours)
        process, conn = self._child
        conn.send(({k: np.asarray(v) for k, v in feed.items()}, iterations))
        try:
            status, payload = conn.recv()
        except EOFError as err:
            self._stop_child()
            raise OrinprofError(
                f"the profiling process ended (exit code {process.exitcode})",
                "use profile_process 'same' (profiles in the timing process)",
            ) from err
        if status != "ok":
            raise OrinprofError(f"profiling in a child process failed: {payload}", "see the log above")
        rows, self.kernel_facts, self.kernel_table = payload
        if progress:
            progress(iterations, iterations)
        return rows

    def _stop_child(self) -> None:
        if self._child is None:
            return
        process, conn = self._child
        self._child = None
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(None)
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
        conn.close()


def _profile_replica(conn: Any, options: RunnerOptions) -> None:
    """Child process: a runner with ``options`` answers profiling requests until told to stop."""
    try:
        runner = TorchRunner(None, options)
        runner.activate()
    except Exception as err:  # reported to the parent, which raises it as a one-line error
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    try:
        while True:
            request = conn.recv()
            if request is None:
                break
            feed, iterations = request
            try:
                rows = runner.profile_layers(feed, iterations)
                conn.send(("ok", (rows, runner.kernel_facts, runner.kernel_table)))
            except Exception as err:
                conn.send(("error", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"))
    except EOFError:
        pass
    finally:
        runner.deactivate()
        conn.close()


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise OrinprofError(
            "torch is not installed (needed by --backend torch)", "pip install 'orinprof[torch]'"
        ) from err
    version = tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2])
    if version < TORCH_FLOOR:
        raise OrinprofError(
            f"torch {torch.__version__} is older than {TORCH_FLOOR[0]}.{TORCH_FLOOR[1]}",
            "upgrade torch (on Jetson: NVIDIA's JetPack wheel)",
        )
    return torch
