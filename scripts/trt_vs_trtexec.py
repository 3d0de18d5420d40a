#!/usr/bin/env python3
"""Benchmark (issue 3): the TensorRT Python path's end-to-end GPU time against trtexec's GPU compute
time for the same ONNX, plan and device — they should agree within 3 %.  Prints the ratio.

    python scripts/trt_vs_trtexec.py --model bert-base --seq 128 --precision fp16

Needs TensorRT (Python bindings and trtexec) and a GPU: run it on the Jetson or desktop GPU.
NOT EXECUTED during development (no TensorRT there).  Both runs use device events around the
enqueue with no host↔device copies in the loop (orinprof: CUDA events around execute_async_v3;
trtexec: --noDataTransfers --useSpinWait, computeMs of --exportTimes).  The two sides build their
own engines from the same ONNX and flags, so tactic choices can differ; the script says which
engine each used.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from orinprof import classify, export, quantize
from orinprof.backends import make_runner
from orinprof.backends.base import RunnerOptions, TimingConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bert-base")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--precision", default="fp16")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--models-dir", default="models")
    args = p.parse_args()

    exported = export.export_preset(args.model, 1, args.seq, 17, Path(args.models_dir))
    classes = classify.classify_file(exported.path)
    planned = quantize.apply_plan(
        exported, quantize.get_plan(args.precision), classes, quantize.synthetic_calibration(exported, 16)
    )
    feed = export.synthesize(exported.inputs, np.random.default_rng(0))
    timing = TimingConfig(warmup_iters=50, warmup_s=1.0, iterations=args.iterations)
    medians = {}
    for backend in ("tensorrt", "trtexec"):
        options = RunnerOptions(device="cuda", extra={"precision": args.precision})
        with make_runner(backend, planned.path, options) as runner:
            medians[backend] = float(np.median(runner.time_e2e(feed, timing)))
            print(f"{backend:9s} median GPU time {medians[backend]:.4f} ms  ({runner.info().details})")
    ratio = medians["tensorrt"] / medians["trtexec"] - 1
    verdict = "within" if abs(ratio) <= 0.03 else "MORE than"
    print(f"orinprof TensorRT path / trtexec - 1 = {100 * ratio:+.2f}% ({verdict} 3% apart)")
    print(json.dumps({"benchmark": "trt_vs_trtexec", **medians, "relative_difference": ratio, **vars(args)}))


if __name__ == "__main__":
    main()
