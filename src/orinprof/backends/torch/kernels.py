"""Per-class GPU time from kernel time: what the GPU itself spent on each layer class.

The profiling run records every GPU activity (kernels, memsets, memcopies) through
``torch.profiler`` (CUPTI).  A class's time is the sum of its kernels' durations, so class times
add up to the GPU's busy time, which cannot exceed the forward's span; the rest of the span (launch
gaps, idle) is reported on its own (``gpu_idle_ms``).

Which class a kernel belongs to:

* **Eager.** Each region (:mod:`.profile`) opens a ``record_function`` range in its module's
  forward-pre-hook and closes it in the forward-hook; kineto mirrors the range onto the GPU
  timeline, spanning the kernels launched inside it, and a kernel belongs to the region whose
  mirror contains it (:func:`kernels_from_events`).  Kernels launched outside every region
  (residual adds, mask building) are ``other``.
* **CUDA-graph replay.** A replay launches the captured kernels with no CPU op per kernel, so
  the replay's kernel-name sequence is aligned to an attributed eager sequence of the same
  forward, kernel by kernel (:func:`align`, :class:`difflib.SequenceMatcher`); a replay kernel
  with no counterpart (cuBLAS may pick another algorithm under capture) is ``unattributed``,
  never guessed.

Which iteration a kernel belongs to: each profiled iteration is a ``record_function`` range that
ends with a device synchronisation, so every kernel of the iteration starts inside it (kineto puts
GPU and CPU timestamps on one clock).

INT8 kernels are recognised by the op that launched them (:data:`INT8_OPS`, carried from the eager
kernel to its replay counterpart) or by name (:data:`INT8_KERNEL_PATTERNS`): on Hopper, cuBLAS's
``nvjet_*`` kernels name their tiles, not their types.

Everything here is plain Python: tests feed :func:`kernels_from_events` fakes of torch's
``FunctionEvent``.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from orinprof.backends.base import RAW_PROFILE_COLUMNS

#: the class of replay kernels that match no eager kernel (counted in ``unattributed_ms``)
UNATTRIBUTED = "unattributed"
#: the row name of kernels launched outside every region, and of unmatched replay kernels
OUTSIDE_REGIONS = "(outside regions)"
UNMATCHED = "(unmatched replay kernels)"

#: record_function names the profiling run opens (a region's index follows the prefix)
REGION_PREFIX = "orinprof::region::"
ITERATION_PREFIX = "orinprof::iteration::"
_OURS = "orinprof::"

#: kernel-name patterns of INT8 arithmetic (INT8 operands into a tensor-core MMA), each with where
#: the name comes from.  Quantize/rescale kernels are not counted: they do no INT8 math.
INT8_KERNEL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # cuBLASLt / CUTLASS integer GEMMs name their MMA (imma) or operand types (s8/i8) in the kernel
    # name, e.g. "sm80_xmma_gemm_i8i32_...", "cutlass_80_tensorop_i16832gemm_s8_..."
    (re.compile(r"imma|xmma_gemm_i8|[_x]i8i8|i8i32|s8s8|gemm_s8|_s8_s8|int8_gemm|i16832gemm_s8"), "cuBLASLt/CUTLASS"),
    # SageAttention 1.0.6: the INT8 Q·Kᵀ attention kernel (attn_qk_int8_per_block*.py, `_attn_fwd`)
    (re.compile(r"^_attn_fwd$"), "SageAttention 1.0.6"),
)


#: CPU ops whose kernels do INT8 arithmetic (``torch._int_mm``: int8 × int8 → int32 GEMM)
INT8_OPS = ("aten::_int_mm",)


def is_int8_kernel(name: str, op: str = "") -> bool:
    """Whether a kernel does INT8 arithmetic: launched by an INT8 op, or named as such."""
    return op in INT8_OPS or any(p.search(name) for p, _source in INT8_KERNEL_PATTERNS)


@dataclass(frozen=True)
class Kernel:
    """One GPU activity of the profiling run."""

    name: str
    start_us: float
    duration_us: float
    iteration: int
    #: index of the region open at launch (eager), or of the matched eager kernel's region
    #: (replay); -1 = outside every region; None = a replay kernel that matched nothing
    region: int | None
    #: the CPU op that launched it (eager), or that launched its matched eager kernel (replay)
    op: str = ""


# ----------------------------------------------------------------------------- from torch.profiler


def _device_kind(event: Any) -> str:
    kind = getattr(event, "device_type", None)
    return str(getattr(kind, "name", kind)).upper()


def _prefixed(name: str, prefix: str) -> int | None:
    return int(name[len(prefix) :]) if name.startswith(prefix) else None


def _within(spans: Sequence[tuple[float, float, int]], t: float) -> int | None:
    """The tag of the span (start, end, tag) containing ``t``; spans are sorted and disjoint."""
    i = bisect.bisect_right(spans, (t, float("inf"), 0)) - 1
    if i >= 0 and spans[i][0] <= t <= spans[i][1]:
        return spans[i][2]
    return None


def kernels_from_events(events: Iterable[Any]) -> list[Kernel]:
    """GPU activities of a ``torch.profiler`` run (``prof.events()``), in start order, each with
    its iteration, region and launching op.

    Rules, as torch 2.11 reports them on the H200 (seen there; ``torch/autograd/profiler.py``
    ``_parse_kineto_results``):

    * a GPU activity is a ``FunctionEvent`` with ``device_type`` CUDA;
    * kineto mirrors each ``record_function`` range that launched GPU work as a CUDA event of the
      same name (``is_user_annotation`` where torch has the flag) spanning, on the GPU timeline,
      the work launched inside it: a region's mirror covers its kernels, so a kernel belongs to
      the region whose mirror contains its start (none: ``-1``, outside every region).  torch 2.11's
      GPU events carry no link to their op (no ``linked_correlation_id``), so time is the link;
    * an iteration is the CPU range ``orinprof::iteration::N``, which ends with a device
      synchronisation, so its kernels start inside it; activities outside every iteration are
      dropped;
    * the op that launched a kernel: the CPU op whose ``kernels`` list names it (the most frequent
      one for that kernel name), for INT8 recognition (:data:`INT8_OPS`) and listings.
    """
    iterations: list[tuple[float, float, int]] = []
    regions: list[tuple[float, float, int]] = []
    gpu: list[Any] = []
    ops_by_kernel: dict[str, Counter[str]] = {}
    for event in events:
        name = str(event.name)
        if _device_kind(event) == "CUDA":
            region = _prefixed(name, REGION_PREFIX)
            if region is not None:
                regions.append((float(event.time_range.start), float(event.time_range.end), region))
            elif not (getattr(event, "is_user_annotation", False) or name.startswith(_OURS)):
                gpu.append(event)
            continue
        it = _prefixed(name, ITERATION_PREFIX)
        if it is not None:
            iterations.append((float(event.time_range.start), float(event.time_range.end), it))
        for k in getattr(event, "kernels", None) or ():
            ops_by_kernel.setdefault(str(k.name), Counter())[name] += 1
    iterations.sort()
    regions.sort()
    out: list[Kernel] = []
    for event in sorted(gpu, key=lambda e: float(e.time_range.start)):
        start, end = float(event.time_range.start), float(event.time_range.end)
        iteration = _within(iterations, start)
        if iteration is None:
            continue
        region = _within(regions, start)
        ops = ops_by_kernel.get(str(event.name))
        op = ops.most_common(1)[0][0] if ops else ""
        out.append(Kernel(str(event.name), start, end - start, iteration, -1 if region is None else region, op))
    return out


def has_region_spans(events: Iterable[Any]) -> bool:
    """Whether the profiler mirrored the region ranges onto the GPU timeline (needed by eager
    attribution; a torch that does not would file every kernel under ``other``)."""
    return any(_device_kind(e) == "CUDA" and str(e.name).startswith(REGION_PREFIX) for e in events)


# ----------------------------------------------------------------------------- replay alignment


def align(reference: Sequence[str], observed: Sequence[str]) -> list[int | None]:
    """For each observed kernel name, the index of the reference kernel it is matched to, or
    ``None``: a longest common subsequence of the two name sequences, so kernels map one to one,
    in order, and inserted or substituted kernels map to nothing.

    Why not :class:`difflib.SequenceMatcher`: it matches the longest block first, and a
    transformer's kernel sequence repeats every block, so one inserted kernel lets it pair block
    *i* with block *i + k* and leave half the sequence unmatched (the tests show it).  The LCS
    table is filled a row at a time with numpy: ``L[i, j] = cummax_j max(L[i-1, j],
    L[i-1, j-1] + [a_i = b_j])``."""
    n, m = len(reference), len(observed)
    out: list[int | None] = [None] * m
    if n == 0 or m == 0:
        return out
    if list(reference) == list(observed):
        return list(range(m))
    codes: dict[str, int] = {}
    a = np.array([codes.setdefault(x, len(codes)) for x in reference], dtype=np.int64)
    b = np.array([codes.setdefault(x, len(codes)) for x in observed], dtype=np.int64)
    table = np.zeros((n + 1, m + 1), dtype=np.int32)
    for i in range(1, n + 1):
        prev = table[i - 1]
        cand = np.maximum(prev[1:], prev[:-1] + (b == a[i - 1]))
        table[i, 1:] = np.maximum.accumulate(cand)
    i, j = n, m
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1] and table[i, j] == table[i - 1, j - 1] + 1:
            out[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif table[i - 1, j] >= table[i, j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def attribute_replay(reference: Sequence[Kernel], replay: Sequence[Kernel]) -> list[Kernel]:
    """Replay kernels with the region of their matched eager kernel (per iteration; alignments
    are cached by the replay's name sequence, which is normally the same every replay)."""
    ref_names = [k.name for k in reference]
    by_iteration: dict[int, list[Kernel]] = {}
    for k in replay:
        by_iteration.setdefault(k.iteration, []).append(k)
    cache: dict[tuple[str, ...], list[int | None]] = {}
    out: list[Kernel] = []
    for it in sorted(by_iteration):
        kernels = by_iteration[it]
        names = tuple(k.name for k in kernels)
        if names not in cache:
            cache[names] = align(ref_names, names)
        for k, idx in zip(kernels, cache[names]):
            ref = None if idx is None else reference[idx]
            region = None if ref is None else ref.region
            out.append(Kernel(k.name, k.start_us, k.duration_us, k.iteration, region, ref.op if ref else ""))
    return out


def reference_iteration(kernels: Sequence[Kernel]) -> list[Kernel]:
    """The kernels of the last profiled eager iteration (the warmest), in order."""
    if not kernels:
        return []
    last = max(k.iteration for k in kernels)
    return [k for k in kernels if k.iteration == last]


# ----------------------------------------------------------------------------- rows and facts


@dataclass(frozen=True)
class RegionInfo:
    """What a profile row needs of a region (mirrors :class:`.profile.Region`)."""

    name: str
    layer_class: str
    block: int | None
    op_type: str


@dataclass
class KernelFacts:
    """Summary columns of one kernel-time profiling run (medians over its iterations)."""

    source: str  # "eager" | "cuda_graph_replay"
    gpu_busy_ms: float
    #: the profiled forward's device-timed span (CUDA events around it, profiler attached: CUPTI
    #: stretches it, so the summary's ``gpu_idle_ms`` = timing-run e2e − busy, not this − busy)
    profiled_span_ms: float
    kernels_per_iteration: float
    kernels_unattributed: float
    int8_kernels: dict[str, float] = field(default_factory=dict)
    eager_gpu_busy_ms: float = float("nan")

    def summary_columns(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class_time_source": f"kernels:{self.source}",
            "gpu_busy_ms": self.gpu_busy_ms,
            "profiled_span_ms": self.profiled_span_ms,
            "kernels_per_iteration": self.kernels_per_iteration,
            "kernels_unattributed": self.kernels_unattributed,
        }
        for cls in ("attention", "ffn", "other"):
            out[f"int8_kernels_{cls}"] = self.int8_kernels.get(cls, 0.0)
        if np.isfinite(self.eager_gpu_busy_ms):
            out["eager_gpu_busy_ms"] = self.eager_gpu_busy_ms
        return out


def _class_of(region: int | None, regions: Sequence[RegionInfo]) -> str:
    if region is None:
        return UNATTRIBUTED
    if region < 0:
        return "other"
    return regions[region].layer_class


def kernel_rows(kernels: Sequence[Kernel], regions: Sequence[RegionInfo], iterations: Sequence[int]) -> pd.DataFrame:
    """Raw profile rows (``RAW_PROFILE_COLUMNS`` + ``layer_class``, ``block``): per iteration, one
    row per region with the summed duration of its kernels (0 when it launched none), plus
    :data:`OUTSIDE_REGIONS` (class ``other``) and :data:`UNMATCHED` (:data:`UNATTRIBUTED`), so that
    an iteration's rows sum to its GPU busy time."""
    sums: dict[tuple[int, int | None], float] = {}
    for k in kernels:
        key = (k.iteration, k.region)
        sums[key] = sums.get(key, 0.0) + k.duration_us
    rows: list[tuple[Any, ...]] = []
    for pos, it in enumerate(iterations):
        for i, r in enumerate(regions):
            rows.append((pos, r.name, r.op_type, "", sums.get((it, i), 0.0) / 1e3, r.layer_class, r.block))
        rows.append((pos, OUTSIDE_REGIONS, "kernels", "", sums.get((it, -1), 0.0) / 1e3, "other", None))
        rows.append((pos, UNMATCHED, "kernels", "", sums.get((it, None), 0.0) / 1e3, UNATTRIBUTED, None))
    df = pd.DataFrame(rows, columns=[*RAW_PROFILE_COLUMNS, "layer_class", "block"])
    df["block"] = df["block"].astype("Int64")
    return df


def kernel_facts(
    kernels: Sequence[Kernel],
    regions: Sequence[RegionInfo],
    spans_ms: Mapping[int, float],
    source: str,
) -> KernelFacts:
    """Medians over iterations of busy time (Σ durations), the device-timed span of the profiled
    forward, kernel counts and INT8 kernels per class."""
    iterations = sorted(spans_ms)
    busy = dict.fromkeys(iterations, 0.0)
    count = dict.fromkeys(iterations, 0)
    unmatched = dict.fromkeys(iterations, 0)
    int8: dict[str, dict[int, int]] = {c: dict.fromkeys(iterations, 0) for c in ("attention", "ffn", "other")}
    for k in kernels:
        if k.iteration not in busy:
            continue
        busy[k.iteration] += k.duration_us / 1e3
        count[k.iteration] += 1
        cls = _class_of(k.region, regions)
        if k.region is None:
            unmatched[k.iteration] += 1
        if is_int8_kernel(k.name, k.op):
            key = cls if cls in int8 else "other"
            int8[key][k.iteration] += 1

    def med(values: Iterable[float]) -> float:
        arr = np.asarray(list(values), dtype=float)
        return float(np.median(arr)) if arr.size else float("nan")

    return KernelFacts(
        source=source,
        gpu_busy_ms=med(busy.values()),
        profiled_span_ms=med(spans_ms[it] for it in iterations),
        kernels_per_iteration=med(count.values()),
        kernels_unattributed=med(unmatched.values()),
        int8_kernels={c: med(v.values()) for c, v in int8.items()},
    )


def kernel_table(kernels: Sequence[Kernel], regions: Sequence[RegionInfo]) -> pd.DataFrame:
    """Per kernel name and class: calls per iteration, total ms per iteration, INT8 or not (for
    diagnostics and the GPU benchmarks' kernel listings)."""
    n_iter = max(1, len({k.iteration for k in kernels}))
    rows: dict[tuple[str, str, str], list[float]] = {}
    for k in kernels:
        key = (_class_of(k.region, regions), k.name, k.op)
        acc = rows.setdefault(key, [0.0, 0.0])
        acc[0] += 1
        acc[1] += k.duration_us / 1e3
    columns = ["layer_class", "kernel", "op", "calls_per_iteration", "ms_per_iteration", "int8"]
    table = pd.DataFrame(
        [
            (cls, name, op, calls / n_iter, ms / n_iter, is_int8_kernel(name, op))
            for (cls, name, op), (calls, ms) in rows.items()
        ],
        columns=columns,
    )
    return table.sort_values("ms_per_iteration", ascending=False, ignore_index=True)
