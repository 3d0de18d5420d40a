"""Per-module timing for the torch backend (the separate profiling run, never the timing run).

A *region* is a stretch of the forward pass that belongs to one layer class: it opens at a
module's forward-pre-hook and closes at a (possibly different) module's forward-hook.  Whole
modules are regions where the zoo has them (GPT-2's ``attn``/``mlp``, Llama's ``self_attn``/``mlp``,
every norm and embedding); where it does not, a region spans from the first module of the stretch to
the last (BERT's attention = ``attention.self`` … ``attention.output.dense``, which leaves the
post-attention LayerNorm to its own norm region; ViT's attention = ``query`` … ``attn_out``, so
the attention core, which is a function and not a module, is inside it).

Regions never overlap, so their sum is at most the end-to-end time; residual adds, mask building
and the like fall between regions and are not reported (the caller's ``layer_sum_ms`` vs e2e shows
them).

Two ways to time the regions:

* :func:`profile_kernels` (CUDA, the default): the regions open ``record_function`` ranges and the
  time of a region is the summed duration of the GPU kernels launched inside it, read through
  ``torch.profiler``; with a CUDA graph, the graph's replays are profiled and their kernels
  attributed by alignment to an eager pass (:mod:`.kernels`).  Class times then sum to the GPU's
  busy time.
* :func:`profile_modules` (CPU, or ``class_timer="events"`` on CUDA): each hook records a
  ``torch.cuda.Event`` on the current stream (no synchronisation inside the forward) or reads
  ``time.perf_counter`` on CPU.  On a GPU these spans include launch gaps and queueing, and their
  sum can exceed the end-to-end time (the audit measured 3.7–15× e2e on an H100).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from orinprof.backends.base import RAW_PROFILE_COLUMNS, Progress
from orinprof.backends.torch import kernels as kern
from orinprof.backends.torch.int8 import linear_layers

log = logging.getLogger(__name__)

#: raw profile columns of this backend: the spine's plus the class and block it already knows
PROFILE_COLUMNS = (*RAW_PROFILE_COLUMNS, "layer_class", "block")

_BLOCK = re.compile(r"(?:^|\.)(?:layer|layers|blocks|h)\.(\d+)(?:\.|$)")

# family → (class, start-module pattern, end-module template, region-name template, op_type);
# the templates take the block index.  None as end = the start module itself.
_SPANS: dict[str, tuple[tuple[str, str, str | None, str, str], ...]] = {
    "bert": (
        (
            "attention",
            r"^encoder\.layer\.(\d+)\.attention\.self$",
            "encoder.layer.{0}.attention.output.dense",
            "encoder.layer.{0}.attention",
            "BertSelfAttention+dense",
        ),
        (
            "ffn",
            r"^encoder\.layer\.(\d+)\.intermediate$",
            "encoder.layer.{0}.output.dense",
            "encoder.layer.{0}.ffn",
            "BertIntermediate+dense",
        ),
    ),
    "vit": (
        (
            "attention",
            r"^blocks\.(\d+)\.query$",
            "blocks.{0}.attn_out",
            "blocks.{0}.attention",
            "PreLNAttention",
        ),
        ("ffn", r"^blocks\.(\d+)\.fc1$", "blocks.{0}.fc2", "blocks.{0}.mlp", "PreLNMLP"),
    ),
    "gpt2": (
        ("attention", r"^h\.(\d+)\.attn$", None, "h.{0}.attn", "GPT2Attention"),
        ("ffn", r"^h\.(\d+)\.mlp$", None, "h.{0}.mlp", "GPT2MLP"),
    ),
    "llama": (
        ("attention", r"^layers\.(\d+)\.self_attn$", None, "layers.{0}.self_attn", "LlamaAttention"),
        ("ffn", r"^layers\.(\d+)\.mlp$", None, "layers.{0}.mlp", "LlamaMLP"),
    ),
}
_NORM_TYPES = ("LayerNorm", "RMSNorm")


@dataclass(frozen=True)
class Region:
    name: str
    layer_class: str
    block: int | None
    start: str  # module whose forward-pre-hook opens the region
    end: str  # module whose forward-hook closes it
    op_type: str


def _block(name: str) -> int | None:
    match = _BLOCK.search(name)
    return int(match.group(1)) if match else None


def module_regions(model: Any, family: str) -> list[Region]:
    """The measured regions of a zoo model, in forward order of their start modules."""
    from torch import nn

    modules = dict(model.named_modules())
    regions: list[Region] = []
    for name, module in modules.items():
        for cls, pattern, end, region_name, op_type in _SPANS.get(family, ()):
            match = re.match(pattern, name)
            if match:
                block = match.group(1)
                end_name = end.format(block) if end else name
                if end_name not in modules:
                    raise RuntimeError(f"region rule for {name} names missing module {end_name}")
                regions.append(Region(region_name.format(block), cls, int(block), name, end_name, op_type))
        kind = type(module).__name__
        if kind in _NORM_TYPES:
            regions.append(Region(name, "norm", _block(name), name, name, kind))
        elif isinstance(module, nn.Embedding) or (family == "vit" and name == "patch_embed"):
            regions.append(Region(name, "embedding", None, name, name, kind))
    regions += [
        Region(info.name, "other", info.block, info.name, info.name, "Linear")
        for info in linear_layers(model, family)
        if info.layer_class == "other"
    ]
    return regions


class _Marks:
    """Start/end stamps of every region in one iteration (CUDA events or perf_counter seconds)."""

    def __init__(self, n_regions: int, cuda: bool) -> None:
        self.cuda = cuda
        self.starts: list[list[Any]] = [[] for _ in range(n_regions)]
        self.ends: list[list[Any]] = [[] for _ in range(n_regions)]
        self._pool: list[Any] = []
        self._used = 0

    def reset(self) -> None:
        for lst in (*self.starts, *self.ends):
            lst.clear()
        self._used = 0

    def stamp(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        import torch

        # events are reused across iterations: each iteration synchronises before reading them
        if self._used == len(self._pool):
            self._pool.append(torch.cuda.Event(enable_timing=True))
        event = self._pool[self._used]
        self._used += 1
        event.record()
        return event

    def elapsed_ms(self, i: int) -> float:
        starts, ends = self.starts[i], self.ends[i]
        if len(starts) != len(ends) or not starts:
            raise RuntimeError(f"region {i}: {len(starts)} starts, {len(ends)} ends")
        if self.cuda:
            return float(sum(s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)))
        return float(sum(e - s for s, e in zip(starts, ends, strict=True)) * 1e3)


def profile_modules(
    model: Any,
    family: str,
    forward: Callable[[], Any],
    iterations: int,
    cuda: bool,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run ``forward`` ``iterations`` times with region hooks attached; one row per region per
    iteration (:data:`PROFILE_COLUMNS`).  Hooks are removed afterwards, also on error."""
    import torch

    regions = module_regions(model, family)
    marks = _Marks(len(regions), cuda)
    handles = []
    for i, region in enumerate(regions):

        def pre(_module: Any, _args: Any, i: int = i) -> None:
            marks.starts[i].append(marks.stamp())

        def post(_module: Any, _args: Any, _out: Any, i: int = i) -> None:
            marks.ends[i].append(marks.stamp())

        handles.append(model.get_submodule(region.start).register_forward_pre_hook(pre))
        handles.append(model.get_submodule(region.end).register_forward_hook(post))
    rows: list[tuple[Any, ...]] = []
    try:
        for it in range(iterations):
            marks.reset()
            forward()
            if cuda:
                torch.cuda.synchronize()  # once per iteration, after the whole forward
            rows += [
                (it, r.name, r.op_type, "", marks.elapsed_ms(i), r.layer_class, r.block) for i, r in enumerate(regions)
            ]
            if progress:
                progress(it + 1, iterations)
    finally:
        for handle in handles:
            handle.remove()
    df = pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
    df["block"] = df["block"].astype("Int64")  # missing outside transformer blocks, never 0
    log.debug("profiled %d regions × %d iterations", len(regions), iterations)
    return df


@dataclass(frozen=True)
class KernelProfile:
    """What :func:`profile_kernels` measured: raw profile rows, summary facts and the per-kernel
    table of the profiled pass (replay when a graph was given, else eager)."""

    rows: pd.DataFrame
    facts: kern.KernelFacts
    kernels: pd.DataFrame


def _region_infos(regions: list[Region]) -> list[kern.RegionInfo]:
    return [kern.RegionInfo(r.name, r.layer_class, r.block, r.op_type) for r in regions]


def _profiled_pass(
    forward: Callable[[], Any], iterations: int, progress: Progress | None
) -> tuple[Any, dict[int, float]]:
    """Run ``forward`` ``iterations`` times under torch.profiler (CUDA activities), each inside an
    iteration range that ends with a synchronisation; returns the events and each iteration's
    device-timed span (CUDA events around the forward) in ms."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iterations)]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for it, (start, end) in enumerate(pairs):
            with record_function(f"{kern.ITERATION_PREFIX}{it}"):
                start.record()
                forward()
                end.record()
                torch.cuda.synchronize()
            if progress:
                progress(it + 1, iterations)
    spans = {it: float(start.elapsed_time(end)) for it, (start, end) in enumerate(pairs)}
    return prof.events(), spans


def _region_hooks(model: Any, regions: list[Region]) -> list[Any]:
    """Hooks that open a ``record_function`` range per region (closed by the end module's hook)."""
    from torch.autograd.profiler import record_function

    handles = []
    open_ranges: dict[int, Any] = {}
    for i, region in enumerate(regions):

        def pre(_module: Any, _args: Any, i: int = i) -> None:
            rf = record_function(f"{kern.REGION_PREFIX}{i}")
            rf.__enter__()
            open_ranges[i] = rf

        def post(_module: Any, _args: Any, _out: Any, i: int = i) -> None:
            rf = open_ranges.pop(i, None)
            if rf is not None:
                rf.__exit__(None, None, None)

        handles.append(model.get_submodule(region.start).register_forward_pre_hook(pre))
        handles.append(model.get_submodule(region.end).register_forward_hook(post))
    return handles


def profile_kernels(
    model: Any,
    family: str,
    forward: Callable[[], Any],
    iterations: int,
    replay: Callable[[], Any] | None = None,
    reference_iterations: int = 2,
    progress: Progress | None = None,
) -> KernelProfile:
    """Per-region GPU kernel time on CUDA.  Without ``replay``: ``iterations`` eager forwards with
    region ranges.  With ``replay`` (a captured CUDA graph's ``replay``): ``reference_iterations``
    eager forwards give the attributed kernel sequence, then ``iterations`` replays are profiled
    and aligned to it."""
    regions = module_regions(model, family)
    infos = _region_infos(regions)
    handles = _region_hooks(model, regions)
    try:
        eager_events, eager_spans = _profiled_pass(
            forward, reference_iterations if replay is not None else iterations, None if replay else progress
        )
    finally:
        for handle in handles:
            handle.remove()
    eager = kern.kernels_from_events(eager_events)
    if not eager:
        raise RuntimeError("torch.profiler recorded no GPU kernels (is CUPTI available?)")
    if not kern.has_region_spans(eager_events):
        raise RuntimeError("torch.profiler did not put the region ranges on the GPU timeline")
    eager_facts = kern.kernel_facts(eager, infos, eager_spans, "eager")
    if replay is None:
        kernels, spans, facts = eager, eager_spans, eager_facts
    else:
        events, spans = _profiled_pass(replay, iterations, progress)
        kernels = kern.attribute_replay(kern.reference_iteration(eager), kern.kernels_from_events(events))
        facts = kern.kernel_facts(kernels, infos, spans, "cuda_graph_replay")
        facts.eager_gpu_busy_ms = eager_facts.gpu_busy_ms
    rows = kern.kernel_rows(kernels, infos, sorted(spans))
    log.debug("kernel profile: %d kernels per iteration (%s)", facts.kernels_per_iteration, facts.source)
    return KernelProfile(rows, facts, kern.kernel_table(kernels, infos))
