#!/usr/bin/env python3
"""How many warm-up runs does a plan need at the start of a round, after the other plans ran?

    python scripts/round_warmup_probe.py [--model bert-base] [--seq 128] [--plans fp32,int8-attn]
                                         [--rounds 6] [--runs 8] [--int8-recipe trt-qdq]

``orinprof profile`` keeps every plan's runner loaded and runs the plans' blocks interleaved, so
each block starts right after another plan's block.  This probe does exactly that with ONNX
Runtime sessions of the plan files ``orinprof export`` writes (no warm-up inside the blocks) and
prints, per plan and round, the first four runs of each block divided by the median of its runs
5 to ``--runs``.  Runs after the warm-up a plan needs read ≈ 1.00; the number of runs above that is
the warm-up ``round_warmup_iters`` (timing) and the ONNX Runtime runner's later profiling blocks
need on this machine.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from orinprof import export, measure
from orinprof.backends.base import RunnerOptions, TimingConfig
from orinprof.backends.onnxruntime.runner import OnnxRuntimeRunner
from orinprof.identity import cpu_model, package_versions


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bert-base")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--plans", default="fp32,int8-attn")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--int8-recipe", default="trt-qdq")
    ns = p.parse_args()
    if ns.runs < 6:
        raise SystemExit("--runs must be at least 6 (4 shown, the median of the rest as reference)")
    cfg = measure.ProfileConfig(
        model=ns.model, precisions=tuple(ns.plans.split(",")), seq_lens=(ns.seq,), int8_recipe=ns.int8_recipe
    )
    planned = measure.prepare(cfg)
    runners = [(pm.plan.name, OnnxRuntimeRunner(pm.path, RunnerOptions(plan=pm.plan.name))) for _, pm in planned]
    feed = export.synthesize(export.from_onnx(planned[0][1].path, 1, ns.seq).inputs, np.random.default_rng(0))
    ratios: dict[str, list[np.ndarray]] = {name: [] for name, _ in runners}
    # the first block of each plan warms up fully, as orinprof profile's does; the probed blocks not at all
    first = TimingConfig(warmup_iters=5, warmup_s=0.0, iterations=1)
    probed = TimingConfig(warmup_iters=0, warmup_s=0.0, iterations=ns.runs)
    for _, runner in runners:
        runner.activate()
        runner.time_e2e(feed, first)
    for _ in range(ns.rounds):
        for name, runner in runners:
            lat = runner.time_e2e(feed, probed)
            ratios[name].append(lat[:4] / np.median(lat[4:]))
    versions = package_versions()
    print(f"{ns.model} seq {ns.seq}, plans {ns.plans} ({ns.int8_recipe}), ONNX Runtime on {cpu_model()}")
    print(f"onnxruntime {versions.get('onnxruntime', '?')}; {ns.rounds} rounds × {ns.runs} runs per block, no warm-up")
    print("run k of a block ÷ median of its runs 5..N (1.00 = warm):\n")
    print(f"{'plan':<12}{'round':>6}{'run 1':>9}{'run 2':>9}{'run 3':>9}{'run 4':>9}")
    for name, rows in ratios.items():
        for r, row in enumerate(rows):
            print(f"{name:<12}{r + 1:>6}" + "".join(f"{x:>9.3f}" for x in row))
    for name, rows in ratios.items():
        a = np.array(rows)
        print(
            f"\n{name}: run 1 {a[:, 0].min():.3f}–{a[:, 0].max():.3f}, "
            f"run 2 {a[:, 1].min():.3f}–{a[:, 1].max():.3f}, runs 3–4 {a[:, 2:].min():.3f}–{a[:, 2:].max():.3f}"
        )
    for _, runner in runners:
        runner.deactivate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
