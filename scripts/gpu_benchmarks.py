#!/usr/bin/env python3
"""Benchmarks of the torch backend (ratios, not tests).  Each prints a small table and one JSON line.

    python scripts/gpu_benchmarks.py overhead   # orinprof's median vs a bare CUDA-event loop (≤ 1%)
    python scripts/gpu_benchmarks.py roofline   # bert-base FP16 e2e vs its FLOP/byte floor
    python scripts/gpu_benchmarks.py int8       # W8A8 path vs torch._int_mm alone vs FP16 matmul
    python scripts/gpu_benchmarks.py all

On a machine without CUDA every benchmark runs on the CPU with smaller sizes, labelled ``cpu-smoke``
in the table and the JSON, so that the script can be smoke-tested anywhere; those numbers say
nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import orinprof  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch

from orinprof import models
from orinprof.backends.base import RunnerOptions, TimingConfig
from orinprof.backends.torch.int8 import int8_linear, quantize_activation, quantize_weight
from orinprof.backends.torch.runner import TorchRunner
from orinprof.export import synthesize


def _setup(args: argparse.Namespace) -> tuple[torch.device, bool, str]:
    cuda = torch.cuda.is_available() and args.device != "cpu"
    device = torch.device("cuda" if cuda else "cpu")
    label = torch.cuda.get_device_name(0) if cuda else "cpu-smoke"
    if not cuda:
        torch.set_num_threads(args.threads)
    return device, cuda, label


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def time_ms(fn: Callable[[], Any], cuda: bool, repeats: int, inner: int, warmup: int = 3) -> float:
    """Median over ``repeats`` of the mean time of ``inner`` back-to-back calls (CUDA events on
    GPU, perf_counter on CPU)."""
    for _ in range(warmup):
        fn()
    _sync(cuda)
    times = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / inner)
        else:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - t0) * 1e3 / inner)
    return statistics.median(times)


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n== {title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)


def _runner(preset: str, precision: str, seq: int, cuda: bool, args: argparse.Namespace) -> TorchRunner:
    extra = {"preset": preset, "precision": precision, "batch": 1, "seq_len": seq}
    opts = RunnerOptions(device="cuda" if cuda else "cpu", threads=None if cuda else args.threads, extra=extra)
    return TorchRunner(None, opts)


# ----------------------------------------------------------------------------- overhead


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    _device, cuda, label = _setup(args)
    preset, precision, seq = ("bert-base", "fp16", 128) if cuda else ("bert-tiny", "fp32", 32)
    iters = args.iterations or (300 if cuda else 50)
    spec = models.get(preset)
    feed = synthesize(spec.inputs(1, seq), np.random.default_rng(0))
    timing = TimingConfig(warmup_iters=20, warmup_s=1.0 if cuda else 0.2, iterations=iters)
    ours: list[float] = []
    bare: list[float] = []
    with _runner(preset, precision, seq, cuda, args) as runner:
        module, inputs = runner.module, None
        for _round in range(2):  # interleaved, so clock drift hits both alike
            ours += runner.time_e2e(feed, timing).tolist()
            inputs = runner.inputs
            with torch.inference_mode():
                for _ in range(20):
                    module(**inputs)
                _sync(cuda)
                for _ in range(iters):
                    if cuda:
                        start, end = (
                            torch.cuda.Event(enable_timing=True),
                            torch.cuda.Event(enable_timing=True),
                        )
                        start.record()
                        module(**inputs)
                        end.record()
                        end.synchronize()
                        bare.append(start.elapsed_time(end))
                    else:
                        t0 = time.perf_counter()
                        module(**inputs)
                        bare.append((time.perf_counter() - t0) * 1e3)
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    diff = m_ours / m_bare - 1
    _table(
        f"harness overhead ({label}; {preset} {precision} seq {seq}, {len(ours)} timed runs each)",
        ["loop", "median_ms", "p10_ms", "p90_ms"],
        [
            ["orinprof TorchRunner.time_e2e", m_ours, *np.percentile(ours, [10, 90]).tolist()],
            [
                "bare CUDA-event loop" if cuda else "bare perf_counter loop",
                m_bare,
                *np.percentile(bare, [10, 90]).tolist(),
            ],
        ],
    )
    verdict = "within 1%" if abs(diff) <= 0.01 else "MORE than 1% apart"
    print(f"orinprof / bare - 1 = {diff:+.2%}  ({verdict})")
    record = {
        "benchmark": "overhead",
        "device": label,
        "preset": preset,
        "precision": precision,
        "seq_len": seq,
        "orinprof_median_ms": m_ours,
        "bare_median_ms": m_bare,
        "relative_difference": diff,
        "within_1pct": abs(diff) <= 0.01,
    }
    _emit(record)
    return record


# ----------------------------------------------------------------------------- roofline


def _matrix_rate(cuda: bool, device: torch.device) -> tuple[float, str]:
    n, dtype = (8192, torch.float16) if cuda else (1024, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ms = time_ms(lambda: torch.matmul(a, b), cuda, repeats=5, inner=10 if cuda else 2)
    return 2 * n**3 / (ms * 1e-3), f"{n}³ {str(dtype).replace('torch.', '')} matmul"


def _copy_bandwidth(cuda: bool, device: torch.device) -> tuple[float, str]:
    nbytes = (1 << 30) if cuda else (64 << 20)
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), cuda, repeats=5, inner=10 if cuda else 2)
    return 2 * nbytes / (ms * 1e-3), f"{nbytes >> 20} MiB copy, read + write counted"


def _analytic_ops(c: dict[str, Any], batch: int, seq: int, elem: int) -> list[tuple[str, float, float]]:
    """(op, flops, bytes) per BERT op: projections and FFN GEMMs, the attention core, the rest
    elementwise (one read, one write per element)."""
    e, f, h, n = c["hidden_size"], c["intermediate_size"], c["num_heads"], c["num_layers"]
    m = batch * seq
    ops: list[tuple[str, float, float]] = []
    for _ in range(n):
        for k, nn_ in ((e, e), (e, e), (e, e), (e, e), (e, f), (f, e)):
            ops.append(("gemm", 2.0 * m * k * nn_, float(elem * (m * k + k * nn_ + m * nn_))))
        scores = batch * h * seq * seq
        ops.append(("bmm1", 2.0 * scores * (e // h), float(elem * (2 * m * e + scores))))
        ops.append(("softmax", 5.0 * scores, float(elem * 2 * scores)))
        ops.append(("bmm2", 2.0 * scores * (e // h), float(elem * (scores + 2 * m * e))))
        for width in (e, e, f, e, e):  # two LayerNorms, GELU, two residual adds
            ops.append(("elementwise", 8.0 * m * width, float(elem * 2 * m * width)))
    return ops


def _onnx_ops(preset: str, seq: int, elem: int) -> list[tuple[str, float, float]]:
    import onnx

    from orinprof.costs import node_costs
    from orinprof.export import export_preset

    exported = export_preset(preset, batch=1, seq_len=seq, models_dir=Path("/tmp/orinprof-models"))
    costs = node_costs(onnx.load(str(exported.path)), batch=1, seq_len=seq)
    ok = costs[costs["status"] == "ok"]
    scale = elem / 4  # the export is fp32; the run stores fp16
    bytes_ = (ok["weight_bytes"] + ok["act_in_bytes"] + ok["act_out_bytes"]) * scale
    return list(zip(ok["op_type"], ok["flops"].astype(float), bytes_.astype(float), strict=True))


def roofline(args: argparse.Namespace) -> dict[str, Any]:
    device, cuda, label = _setup(args)
    preset, precision, seq = ("bert-base", "fp16", 128) if cuda else ("bert-tiny", "fp32", 32)
    elem = 2 if precision == "fp16" else 4
    rate, rate_how = _matrix_rate(cuda, device)
    bw, bw_how = _copy_bandwidth(cuda, device)
    spec = models.get(preset)
    feed = synthesize(spec.inputs(1, seq), np.random.default_rng(0))
    with _runner(preset, precision, seq, cuda, args) as runner:
        lat = runner.time_e2e(feed, TimingConfig(warmup_iters=20, warmup_s=0.5, iterations=args.iterations or 200))
    e2e = float(np.median(lat))
    try:
        ops, source = _onnx_ops(preset, seq, elem), "orinprof.costs.node_costs on the exported ONNX"
    except Exception as err:  # no onnx/exporter on this machine: say so and count by hand
        ops, source = (
            _analytic_ops(dict(spec.config), 1, seq, elem),
            f"analytic count ({type(err).__name__}: {err})",
        )
    flops = sum(o[1] for o in ops)
    nbytes = sum(o[2] for o in ops)
    per_op_floor = sum(max(fl / rate, by / bw) for _, fl, by in ops) * 1e3
    global_floor = max(flops / rate, nbytes / bw) * 1e3
    _table(
        f"roofline ({label}; {preset} {precision} seq {seq}, batch 1)",
        ["quantity", "value", "how"],
        [
            ["matrix rate TFLOP/s", rate / 1e12, rate_how],
            ["copy bandwidth GB/s", bw / 1e9, bw_how],
            ["model GFLOP", flops / 1e9, source[:60]],
            ["model MB moved", nbytes / 1e6, "weights + activations in and out, no fusion"],
            ["floor ms (Σ per-op max)", per_op_floor, "each op at the slower of its two roofs"],
            ["floor ms (whole model)", global_floor, "max(FLOPs/rate, bytes/bandwidth)"],
            ["measured e2e median ms", e2e, "TorchRunner.time_e2e, eager"],
        ],
    )
    print(f"e2e / floor = {e2e / per_op_floor:.2f}× (per-op floor), {e2e / global_floor:.2f}× (whole-model floor)")
    record = {
        "benchmark": "roofline",
        "device": label,
        "preset": preset,
        "precision": precision,
        "seq_len": seq,
        "matrix_tflops": rate / 1e12,
        "copy_gbps": bw / 1e9,
        "gflop": flops / 1e9,
        "mbytes": nbytes / 1e6,
        "cost_source": source,
        "floor_per_op_ms": per_op_floor,
        "floor_global_ms": global_floor,
        "e2e_median_ms": e2e,
        "e2e_over_floor": e2e / per_op_floor,
    }
    _emit(record)
    return record


# ----------------------------------------------------------------------------- int8


def _torchao_linear(k: int, n: int, device: torch.device, dtype: torch.dtype) -> Callable[[torch.Tensor], Any] | None:
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        return None
    lin = torch.nn.Linear(k, n, bias=False).to(device, dtype)
    quantize_(lin, Int8DynamicActivationInt8WeightConfig())
    return lin


def int8(args: argparse.Namespace) -> dict[str, Any]:
    device, cuda, label = _setup(args)
    if cuda:
        seqs, shapes, dtype = (128, 384), ((768, 768), (768, 3072), (3072, 768)), torch.float16
    else:  # CPU smoke: a quarter of bert-base's widths
        seqs, shapes, dtype = (32, 64), ((192, 192), (192, 768), (768, 192)), torch.float32
    reps, inner = (20, 50) if cuda else (5, 5)
    rows, out_rows = [], []
    have_torchao = True
    for seq in seqs:
        for k, n in shapes:
            m = seq  # batch 1
            x = torch.randn(m, k, device=device, dtype=dtype)
            w = torch.randn(n, k, device=device, dtype=dtype) * 0.02
            wq, ws = quantize_weight(w)
            wq_t, ws = wq.t(), ws.reshape(1, -1)
            xq, _ = quantize_activation(x, "per_token")
            t_fp = time_ms(lambda x=x, w=w: torch.matmul(x, w.t()), cuda, reps, inner)
            t_mm = time_ms(lambda xq=xq, wq_t=wq_t: torch._int_mm(xq, wq_t), cuda, reps, inner)
            t_w8 = time_ms(
                lambda x=x, wq_t=wq_t, ws=ws, n=n: int8_linear(x, wq_t, ws, None, "per_token", n),
                cuda,
                reps,
                inner,
            )
            ao = _torchao_linear(k, n, device, dtype)
            have_torchao = ao is not None
            t_ao = time_ms(lambda x=x, ao=ao: ao(x), cuda, reps, inner) if ao is not None else float("nan")
            rows.append([f"{m}×{k}×{n}", t_fp, t_mm, t_w8, t_ao, t_fp / t_mm, t_fp / t_w8])
            out_rows.append(
                {
                    "m": m,
                    "k": k,
                    "n": n,
                    "fp_matmul_ms": t_fp,
                    "int_mm_ms": t_mm,
                    "w8a8_ms": t_w8,
                    "torchao_ms": None if np.isnan(t_ao) else t_ao,
                }
            )
    fp_name = "fp16" if cuda else "fp32"
    _table(
        f"INT8 GEMM paths ({label}; bert-base GEMM shapes{'' if cuda else ' ÷4, CPU smoke'}, M = seq, batch 1)",
        [
            "M×K×N",
            f"{fp_name}_matmul_ms",
            "int_mm_ms",
            "w8a8_ms",
            "torchao_ms",
            f"{fp_name}/int_mm",
            f"{fp_name}/w8a8",
        ],
        rows,
    )
    total = {key: sum(r[key] for r in out_rows) for key in ("fp_matmul_ms", "int_mm_ms", "w8a8_ms")}
    ao_total = sum(r["torchao_ms"] for r in out_rows) if have_torchao else None
    print(
        f"sum over shapes: {fp_name} {total['fp_matmul_ms']:.4g} ms, int_mm {total['int_mm_ms']:.4g} ms, "
        f"w8a8 (quantize + int_mm + rescale) {total['w8a8_ms']:.4g} ms"
        + (f", torchao {ao_total:.4g} ms" if ao_total is not None else ", torchao not installed")
    )
    quant_cost = total["w8a8_ms"] - total["int_mm_ms"]
    print(
        f"the W8A8 wrapper's quantize/rescale kernels cost {quant_cost:.4g} ms "
        f"({quant_cost / total['w8a8_ms']:.0%} of the W8A8 time): eager mode runs them as separate "
        "memory-bound kernels"
    )
    if ao_total is None:
        chosen = "int_mm"
        why = "torchao is not installed; int_mm-based W8A8 is the only INT8 path here"
    elif ao_total < total["w8a8_ms"]:
        chosen, why = "torchao", "torchao's W8A8 was faster over these shapes"
    else:
        chosen, why = "int_mm", "orinprof's int_mm W8A8 was at least as fast as torchao over these shapes"
    print(f"chosen implementation: {chosen} ({why})")
    record = {
        "benchmark": "int8",
        "device": label,
        "dtype": fp_name,
        "rows": out_rows,
        "totals_ms": {**total, "torchao_ms": ao_total},
        "chosen": chosen,
        "why": why,
    }
    _emit(record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["overhead", "roofline", "int8", "all"])
    parser.add_argument("--device", choices=["auto", "cpu"], default="auto", help="auto = CUDA when present")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (CPU smoke runs only)")
    parser.add_argument("--iterations", type=int, default=0, help="timed runs (0 = the benchmark's default)")
    args = parser.parse_args(argv)
    todo = [overhead, roofline, int8] if args.which == "all" else [globals()[args.which]]
    for bench in todo:
        bench(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
