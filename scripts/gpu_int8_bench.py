#!/usr/bin/env python3
"""INT8 on the GPU, measured (issue 14's GPU benchmarks; ratios printed, not timed tests).

    python scripts/gpu_int8_bench.py attn      # attention core: SageAttention 1.0.6 vs SDPA FP16
    python scripts/gpu_int8_bench.py e2e       # bert-base e2e with and without the INT8 core
    python scripts/gpu_int8_bench.py recipes   # the torch backend's W8A8 recipes vs FP16
    python scripts/gpu_int8_bench.py kernels   # which kernels ran, per class (eager and replay)

Method.  Every variant is a CUDA graph, timed by CUDA events around one replay.  Variants of one
shape are timed in R interleaved rounds (default 5): each round times every variant for one block
of replays in a freshly shuffled order, so clock and thermal drift hit all alike.  A variant's
figure is the median of its round medians; a ratio is computed per round against the same
round's baseline and reported as the median with the min–max over rounds.  Outputs are cosine-
compared to an FP32 reference.  ``--out DIR`` writes one JSON line per measurement to
``DIR/<command>.jsonl`` beside the printed table.

Needs CUDA; SageAttention only for the variants that use it (they are skipped, and say so,
when it is missing).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import orinprof  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np
import torch
from torch.nn import functional as F

from orinprof import models
from orinprof.backends.base import RunnerOptions
from orinprof.backends.torch import attention
from orinprof.backends.torch.runner import TorchRunner
from orinprof.export import synthesize

OUT: Path | None = None


# ----------------------------------------------------------------------------- timing helpers


def graphed(fn: Callable[[], Any], warmup: int = 3) -> Callable[[], None]:
    """``fn`` captured as a CUDA graph (warmed up on a side stream first); returns its replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    torch.cuda.synchronize()
    graph._keep = fn  # type: ignore[attr-defined]  # keep captured tensors alive
    return graph.replay


def timed_replay(replay: Callable[[], Any]) -> Callable[[], float]:
    """One replay between two CUDA events, waited for (as the torch backend's timing run does)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def call() -> float:
        start.record()
        replay()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))

    return call


def block_ms(timed: Callable[[], float], n: int) -> list[float]:
    return [timed() for _ in range(n)]


def rounds(variants: dict[str, Callable[[], float]], n_rounds: int, block: int, seed: int) -> dict[str, list[float]]:
    """Round medians per variant (each a timed call returning ms): each round times every variant
    for ``block`` calls, in a freshly shuffled order."""
    rng = random.Random(seed)
    names = list(variants)
    for name in names:  # warm every graph once before the first round
        block_ms(variants[name], 10)
    out: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(n_rounds):
        rng.shuffle(names)
        for name in names:
            out[name].append(statistics.median(block_ms(variants[name], block)))
    return out


def ratio_stats(base: list[float], other: list[float]) -> tuple[float, float, float]:
    """Speed of ``other`` relative to ``base`` (base_ms / other_ms: > 1 = faster), per round:
    median, min, max."""
    r = [b / o for b, o in zip(base, other)]
    return statistics.median(r), min(r), max(r)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n== {title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()


def emit(command: str, record: dict[str, Any]) -> None:
    if OUT is not None:
        with (OUT / f"{command}.jsonl").open("a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


# ----------------------------------------------------------------------------- attention core


def _attn_shape(sageattn: Any, batch: int, heads: int, seq: int, dim: int, args: argparse.Namespace) -> dict[str, Any]:
    gen = torch.Generator(device="cuda").manual_seed(batch * 10_000 + seq)
    q, k, v = (torch.randn(batch, heads, seq, dim, device="cuda", dtype=torch.float16, generator=gen) for _ in range(3))
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    k_sage = k.clone()  # sageattn smooths K in place: its own copy, refreshed per call below

    def run_sdpa() -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)

    def run_sage() -> torch.Tensor:
        k_sage.copy_(k)  # the copy is part of the INT8 variant's cost (as in the backend)
        return sageattn(q, k_sage, v, tensor_layout="HND", is_causal=False)

    def run_matmul() -> torch.Tensor:  # the zoo's written-out core, for reference
        scores = torch.matmul(q, k.transpose(-1, -2)) * dim**-0.5
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    fns = {"sdpa": run_sdpa, "sage": run_sage, "matmul": run_matmul}
    cos = {f"{n}_cos": cosine(fn(), ref) for n, fn in fns.items()}
    res = rounds({n: timed_replay(graphed(fn)) for n, fn in fns.items()}, args.rounds, args.block, seed=seq)
    speed = ratio_stats(res["sdpa"], res["sage"])
    return {
        "batch": batch,
        "heads": heads,
        "seq": seq,
        "head_dim": dim,
        **{f"{n}_us": 1e3 * statistics.median(v) for n, v in res.items()},
        "sage_speed_vs_sdpa": speed[0],
        "sage_speed_min": speed[1],
        "sage_speed_max": speed[2],
        **cos,
        "rounds": args.rounds,
        "block": args.block,
    }


def attn(args: argparse.Namespace) -> None:
    sage = attention.sage_version()
    if sage is None:
        print("sageattention is not installed: pip install 'orinprof[sage]'")
        return
    from sageattention import sageattn

    heads, dim = args.heads, args.head_dim
    rows = []
    for batch in parse_ints(args.batch):
        for seq in parse_ints(args.seq):
            row = _attn_shape(sageattn, batch, heads, seq, dim, args)
            row["sageattention"] = sage
            emit("attn", row)
            rows.append(
                [
                    batch,
                    seq,
                    row["sdpa_us"],
                    row["sage_us"],
                    row["matmul_us"],
                    f"{row['sage_speed_vs_sdpa']:.2f}× [{row['sage_speed_min']:.2f}, {row['sage_speed_max']:.2f}]",
                    f"{row['sage_cos']:.5f}",
                ]
            )
            torch.cuda.empty_cache()
    table(
        f"attention core, {heads} heads × head dim {dim}, CUDA graph, median of {args.rounds} round medians "
        f"({torch.cuda.get_device_name(0)}, sageattention {sage})",
        ["batch", "seq", "sdpa_us", "sage_us", "matmul_us", "sage speed vs sdpa", "sage cos"],
        rows,
    )


# ----------------------------------------------------------------------------- end to end


def _runner(preset: str, plan: str, batch: int, seq: int, **extra: Any) -> TorchRunner:
    opts = RunnerOptions(
        device="cuda",
        cuda_graph=True,
        extra={"preset": preset, "precision": plan, "batch": batch, "seq_len": seq, **extra},
    )
    return TorchRunner(None, opts)


def _e2e_variants(args: argparse.Namespace, sage: bool) -> list[tuple[str, str, dict[str, Any], bool]]:
    """(label, plan, runner options, sage core installed by hand into an FP16 plan)."""
    out = [
        ("fp16 sdpa", "fp16", {"attn_core": "sdpa"}, False),
        ("int8-attn sdpa", "int8-attn", {"attn_core": "sdpa", "int8_recipe": args.recipe}, False),
    ]
    if sage:
        out += [
            ("fp16 + int8 core", "fp16", {"attn_core": "sdpa"}, True),
            ("int8-attn + int8 core", "int8-attn", {"attn_core": "sage", "int8_recipe": args.recipe}, False),
        ]
    return out


def e2e(args: argparse.Namespace) -> None:
    sage = attention.sage_version() is not None
    if not sage:
        print("sageattention is not installed: the INT8-core variants are skipped")
    spec = models.get(args.model)
    rows = []
    for batch in parse_ints(args.batch):
        for seq in parse_ints(args.seq):
            feed = synthesize(spec.inputs(batch, seq), np.random.default_rng(0))
            with _runner(args.model, "fp32", batch, seq) as ref_runner:
                reference = ref_runner.infer(feed)["output"]
            runners: dict[str, TorchRunner] = {}
            outputs: dict[str, np.ndarray] = {}
            try:
                for label, plan, extra, hand_sage in _e2e_variants(args, sage):
                    r = _runner(args.model, plan, batch, seq, **extra)
                    r.activate()
                    if hand_sage:  # the INT8 core alone: FP16 projections, Sage core
                        core = attention.SageCore(spec.family)
                        attention.install_core(r.module, core)
                        r.core = core
                    outputs[label] = r.infer(feed)["output"]
                    r.prepare_timing_impl(feed)  # captures the graph
                    runners[label] = r
                variants = {label: r.timed_call_impl for label, r in runners.items()}
                res = rounds(variants, args.rounds, args.block, seed=seq)
            finally:
                for r in runners.values():
                    r.deactivate()
            base = res["fp16 sdpa"]
            for label, meds in res.items():
                speed = ratio_stats(base, meds)
                cos = float(
                    np.dot(outputs[label].ravel(), reference.ravel())
                    / np.linalg.norm(outputs[label])
                    / np.linalg.norm(reference)
                )
                record = {
                    "model": args.model,
                    "batch": batch,
                    "seq": seq,
                    "variant": label,
                    "median_ms": statistics.median(meds),
                    "speed_vs_fp16": speed[0],
                    "speed_min": speed[1],
                    "speed_max": speed[2],
                    "cosine_vs_fp32": cos,
                    "int8_recipe": args.recipe,
                    "rounds": args.rounds,
                    "block": args.block,
                }
                emit("e2e", record)
                rows.append(
                    [
                        batch,
                        seq,
                        label,
                        record["median_ms"],
                        f"{speed[0]:.3f}× [{speed[1]:.3f}, {speed[2]:.3f}]",
                        f"{cos:.5f}",
                    ]
                )
            torch.cuda.empty_cache()
    table(
        f"{args.model} e2e, CUDA graph, median of {args.rounds} round medians (speed = fp16 sdpa ms ÷ variant ms)",
        ["batch", "seq", "variant", "median_ms", "speed vs fp16 [min, max]", "cos vs fp32"],
        rows,
    )


def recipes(args: argparse.Namespace) -> None:
    """Each W8A8 recipe in int8-all and int8-ffn against fp16 (the written-out attention core)."""
    spec = models.get(args.model)
    names = [r for r in args.recipes.split(",") if r]
    rows = []
    for batch in parse_ints(args.batch):
        for seq in parse_ints(args.seq):
            feed = synthesize(spec.inputs(batch, seq), np.random.default_rng(0))
            runners: dict[str, TorchRunner] = {}
            try:
                for label, plan, extra in [("fp16", "fp16", {})] + [
                    (f"{plan} {name}", plan, {"int8_recipe": name}) for name in names for plan in args.plans.split(",")
                ]:
                    r = _runner(args.model, plan, batch, seq, **extra)
                    r.activate()
                    r.prepare_timing_impl(feed)
                    runners[label] = r
                res = rounds(
                    {k: r.timed_call_impl for k, r in runners.items()},
                    args.rounds,
                    args.block,
                    seed=seq,
                )
            finally:
                for r in runners.values():
                    r.deactivate()
            for label, meds in res.items():
                speed = ratio_stats(res["fp16"], meds)
                emit(
                    "recipes",
                    {
                        "model": args.model,
                        "batch": batch,
                        "seq": seq,
                        "variant": label,
                        "median_ms": statistics.median(meds),
                        "speed_vs_fp16": speed[0],
                        "speed_min": speed[1],
                        "speed_max": speed[2],
                        "rounds": args.rounds,
                    },
                )
                rows.append(
                    [batch, seq, label, statistics.median(meds), f"{speed[0]:.3f}× [{speed[1]:.3f}, {speed[2]:.3f}]"]
                )
            torch.cuda.empty_cache()
    table(
        f"{args.model} W8A8 recipes, CUDA graph, median of {args.rounds} round medians",
        ["batch", "seq", "variant", "median_ms", "speed vs fp16 [min, max]"],
        rows,
    )


def kernels(args: argparse.Namespace) -> None:
    """The per-class kernel listing of the torch backend's kernel-time profiling, eager and replay."""
    batch, seq = parse_ints(args.batch)[0], parse_ints(args.seq)[0]
    spec = models.get(args.model)
    feed = synthesize(spec.inputs(batch, seq), np.random.default_rng(0))
    for plan in args.plans.split(","):
        for cuda_graph in (False, True):
            extra = {"preset": args.model, "precision": plan, "batch": batch, "seq_len": seq}
            extra.update(attn_core=args.attn_core, int8_recipe=args.recipe)
            r = TorchRunner(None, RunnerOptions(device="cuda", cuda_graph=cuda_graph, extra=extra))
            with r:
                lat = r.time_e2e(feed, _timing(200))
                prof = r.profile_layers(feed, 5)
                facts = r.info().details["summary_facts"]
                listing = r.kernel_table
            mode = "replay" if cuda_graph else "eager"
            by_class = prof.groupby("layer_class")["time_ms"].sum() / prof["iteration"].nunique()
            print(f"\n== {args.model} {plan} b{batch} s{seq} {mode}: e2e median {np.median(lat):.4f} ms")
            print("   " + json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in facts.items()}))
            print("   class ms/iter: " + ", ".join(f"{c}={t:.4f}" for c, t in by_class.items()))
            assert listing is not None
            with_names = listing.assign(kernel=listing["kernel"].str.slice(0, 70))
            print(with_names.head(args.top).to_string(index=False))
            emit(
                "kernels",
                {"model": args.model, "plan": plan, "mode": mode, "e2e_median_ms": float(np.median(lat)), **facts},
            )
            if OUT is not None:
                listing.assign(plan=plan, mode=mode).to_csv(OUT / "kernels.csv", mode="a", index=False)


def _timing(iterations: int) -> Any:
    from orinprof.backends.base import TimingConfig

    return TimingConfig(warmup_iters=20, warmup_s=0.5, iterations=iterations)


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("attn", "e2e", "recipes", "kernels"))
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--seq", default=None, help="default: 128..2048 for attn, 128,512 otherwise")
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--plans", default="int8-all,int8-ffn")
    parser.add_argument("--recipe", default="auto", help="W8A8 recipe of the INT8 plans (e2e, kernels)")
    parser.add_argument("--recipes", default="w8a8-dynamic,w8a8-dynamic-compiled,w8a8-static-compiled")
    parser.add_argument("--attn-core", default="sage")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=100, help="replays per variant per round")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_int8_bench.py needs a CUDA GPU")
    if args.seq is None:
        args.seq = "128,256,512,1024,2048" if args.command == "attn" else "128,512"
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        OUT = args.out
    print(f"device {torch.cuda.get_device_name(0)} | torch {torch.__version__} | cuda {torch.version.cuda}")
    {"attn": attn, "e2e": e2e, "recipes": recipes, "kernels": kernels}[args.command](args)


if __name__ == "__main__":
    main()
