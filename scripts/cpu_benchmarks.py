#!/usr/bin/env python3
"""CPU benchmarks for the spine (they print ratios; they are not tests).

    python scripts/cpu_benchmarks.py overhead    [--model bert-base --seq 128]
    python scripts/cpu_benchmarks.py int8        [--model bert-base --seq 128]
    python scripts/cpu_benchmarks.py repeat      [--model bert-base --seq 128 --plan fp32 --repeats 5
                                                  --int8-recipe auto]
    python scripts/cpu_benchmarks.py recipes     [--model bert-base --seq 128 --rounds 10 --iterations 20]

* overhead: orinprof's ONNX Runtime runner (``Runner.time_e2e``) against a bare ``session.run``
  loop on the same session: median ratio (target ≤ 1 % apart).
* int8: orinprof's ``int8-all`` plan (TensorRT-style Q/DQ) against ONNX Runtime's own
  ``quantize_dynamic`` and default ``quantize_static`` (QDQ) output of the same model, each timed
  with the same bare loop, plus which kernels ONNX Runtime actually ran for the GEMMs (read from
  the optimised graph) — that is the "why".
* repeat: five independent timing runs of one plan: the spread of their medians.
* recipes (issue 14): orinprof ``int8-all`` with ``--int8-recipe auto`` (ONNX Runtime: ``ort-dynamic``)
  against ONNX Runtime's ``quantize_dynamic`` of the whole model, plus ``int8-attn``, ``int8-ffn``
  and fp32, all in one process and in the same rounds: each round times every session once, in a
  shuffled order; a variant's figure is the median of its round medians with a bootstrap CI over
  rounds, and the speed ratio int8-all ÷ quantize_dynamic is the median of the per-round paired
  ratios (target ≥ 0.95×).  Beside each: the integer kernels that executed per class (ONNX
  Runtime's optimised graph) and the output cosine against fp32.  The reference is ORT's default
  ``quantize_dynamic`` (per-tensor weights, attention core FP32); ``ort-dynamic`` quantizes
  weights per channel and the attention core too, so its cosine and kernel counts differ.

Each subcommand prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from orinprof import classify, export, quantize, stats
from orinprof.analysed import AnalysedModel
from orinprof.attribute import dominant_class
from orinprof.backends.base import RunnerOptions, TimingConfig
from orinprof.backends.onnxruntime.runner import OnnxRuntimeRunner
from orinprof.identity import cpu_model
from orinprof.plans import get_plan

GEMM_KERNELS = (
    "MatMul",
    "Gemm",
    "FusedMatMul",
    "MatMulInteger",
    "QLinearMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QGemm",
)


def bare_loop(session: ort.InferenceSession, feed: dict, iterations: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        session.run(None, feed)
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        session.run(None, feed)
        out.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(out)


def session(path: Path, threads: int | None, optimized: Path | None = None) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def gemm_kernels(optimized: Path) -> dict[str, int]:
    model = onnx.load(str(optimized), load_external_data=False)
    counts = Counter(n.op_type for n in model.graph.node if n.op_type in GEMM_KERNELS or "MatMul" in n.op_type)
    counts["DequantizeLinear"] = sum(1 for n in model.graph.node if n.op_type == "DequantizeLinear")
    return dict(counts)


def setup(args: argparse.Namespace) -> tuple[export.ExportedModel, dict, object]:
    exported = export.export_preset(args.model, 1, args.seq, 17, Path(args.models_dir))
    feed = export.synthesize(exported.inputs, np.random.default_rng(0))
    return exported, feed, classify.classify_file(exported.path)


def cmd_overhead(args: argparse.Namespace) -> dict:
    exported, feed, _ = setup(args)
    runner = OnnxRuntimeRunner(exported.path, RunnerOptions(threads=args.threads))
    timing = TimingConfig(warmup_iters=args.warmup, warmup_s=0.0, iterations=args.iterations)
    with runner:
        ours, bare = [], []
        for _ in range(3):  # interleave, so drift hits both loops alike
            ours.append(np.median(runner.time_e2e(feed, timing)))
            bare.append(np.median(bare_loop(runner._session, feed, args.iterations, args.warmup)))
    ratio = float(np.median(ours) / np.median(bare) - 1)
    print(f"\n== harness overhead ({cpu_model()}, {args.model} fp32 seq {args.seq}, 3×{args.iterations} runs each)")
    print(f"orinprof Runner.time_e2e median {np.median(ours):.3f} ms | bare session.run loop {np.median(bare):.3f} ms")
    print(f"orinprof / bare - 1 = {100 * ratio:+.2f}%  ({'within' if abs(ratio) <= 0.01 else 'MORE than'} 1% apart)")
    return {
        "benchmark": "overhead",
        "orinprof_ms": float(np.median(ours)),
        "bare_ms": float(np.median(bare)),
        "relative_difference": ratio,
    }


def cmd_int8(args: argparse.Namespace) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    exported, feed, classes = setup(args)
    tmp = Path(tempfile.mkdtemp(prefix="orinprof-int8-"))
    calib = quantize.synthetic_calibration(exported, args.calib_batches)
    variants: dict[str, Path] = {"fp32": exported.path}
    planned = quantize.apply_plan(exported, get_plan("int8-all"), classes, calib, "bench")
    variants["orinprof int8-all (TensorRT Q/DQ)"] = planned.path
    ort_style = quantize.apply_plan(exported, get_plan("int8-all"), classes, calib, "bench", qdq_style="ort")
    variants["orinprof int8-all --qdq-style ort"] = ort_style.path
    variants["ORT quantize_dynamic"] = tmp / "dynamic.onnx"
    quantize_dynamic(str(exported.path), str(variants["ORT quantize_dynamic"]), weight_type=QuantType.QInt8)
    variants["ORT quantize_static (default QDQ)"] = tmp / "static.onnx"
    quantize_static(
        str(exported.path),
        str(variants["ORT quantize_static (default QDQ)"]),
        _reader(calib),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    rows = []
    for name, path in variants.items():
        opt = tmp / (path.stem + ".opt.onnx")
        sess = session(path, args.threads, opt)
        lat = bare_loop(sess, feed, args.iterations, args.warmup)
        rows.append({"variant": name, "median_ms": float(np.median(lat)), "kernels": gemm_kernels(opt)})
    base = rows[0]["median_ms"]
    print(
        f"\n== INT8 on ONNX Runtime CPU ({cpu_model()}, {args.model} seq {args.seq}, {args.iterations} runs each,"
        f" onnxruntime {ort.__version__})"
    )
    print(f"{'variant':38s} {'median ms':>10s} {'speedup vs fp32':>16s}  GEMM kernels in the optimised graph")
    for r in rows:
        print(f"{r['variant']:38s} {r['median_ms']:10.2f} {base / r['median_ms']:15.2f}×  {r['kernels']}")
    return {"benchmark": "int8", "cpu": cpu_model(), "rows": rows}


def _reader(calib):  # type: ignore[no-untyped-def]
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib())

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.it, None)

    return Reader()


def cmd_repeat(args: argparse.Namespace) -> dict:
    exported, feed, classes = setup(args)
    planned = quantize.apply_plan(
        exported,
        get_plan(args.plan),
        classes,
        quantize.synthetic_calibration(exported, args.calib_batches),
        "bench",
        recipe=quantize.resolve_recipe(args.int8_recipe, OnnxRuntimeRunner.int8_recipes, "onnxruntime"),
    )
    timing = TimingConfig(warmup_iters=args.warmup, warmup_s=0.0, iterations=args.iterations)
    medians = []
    for _ in range(args.repeats):
        with OnnxRuntimeRunner(planned.path, RunnerOptions(threads=args.threads)) as runner:
            medians.append(float(np.median(runner.time_e2e(feed, timing))))
    spread = (max(medians) - min(medians)) / statistics.median(medians)
    print(
        f"\n== repeatability ({cpu_model()}, {args.model} {args.plan} seq {args.seq}, {args.repeats} runs × "
        f"{args.iterations} iterations, fresh session each)"
    )
    print("medians ms: " + ", ".join(f"{m:.2f}" for m in medians))
    print(f"(max - min) / median = {100 * spread:.1f}%")
    return {"benchmark": "repeat", "medians_ms": medians, "relative_spread": spread}


def timed_block(session: ort.InferenceSession, feed: dict, iterations: int, warmup: int) -> float:
    """One round's block for one session: warm-up, then the median of ``iterations`` timed runs."""
    return float(np.median(bare_loop(session, feed, iterations, warmup)))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def cmd_recipes(args: argparse.Namespace) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if args.rounds < 5 and not args.smoke:
        raise SystemExit("recipes: use --rounds 5 or more (a CI over fewer rounds means little); --smoke to try")
    exported, feed, classes = setup(args)
    source = AnalysedModel.load(exported.path, save_map=False)  # the class map every variant inherits
    tmp = Path(tempfile.mkdtemp(prefix="orinprof-recipes-"))
    recipe = quantize.resolve_recipe("auto", OnnxRuntimeRunner.int8_recipes, "onnxruntime")
    whole = tmp / "quantize_dynamic.onnx"
    quantize_dynamic(str(exported.path), str(whole), weight_type=QuantType.QInt8)  # ORT's defaults
    variants: dict[str, Path] = {"fp32": exported.path, "ORT quantize_dynamic": whole}
    intent: dict[str, dict[str, int]] = {}
    for plan in ("int8-all", "int8-attn", "int8-ffn"):
        planned = quantize.apply_plan(exported, get_plan(plan), classes, recipe=recipe)
        variants[f"orinprof {plan}"] = planned.path
        intent[f"orinprof {plan}"] = dict(planned.gemm_counts)
    sessions, kernels, fidelity = {}, {}, {}
    reference = None
    for name, path in variants.items():
        opt = tmp / f"{len(sessions)}.opt.onnx"
        sessions[name] = session(path, args.threads, opt)
        optimised = onnx.load(str(opt), load_external_data=False)
        runtime = source.derive(path).runtime_classes(optimised)  # the source's class map, inherited
        kernels[name] = quantize.count_int8_kernels(optimised, dominant_class(runtime))
        out = sessions[name].run(None, feed)[0]
        reference = out if reference is None else reference
        fidelity[name] = cosine(out, reference)
    order = random.Random(args.seed)
    rounds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):
        names = list(sessions)
        order.shuffle(names)
        for name in names:
            rounds[name].append(timed_block(sessions[name], feed, args.iterations, args.warmup))
    rows = []
    for name, values in rounds.items():
        lo, hi = stats.bootstrap_ci(values)
        rows.append(
            {
                "variant": name,
                "median_ms": float(np.median(values)),
                "ci_low_ms": lo,
                "ci_high_ms": hi,
                "round_medians_ms": values,
                "int8_kernels": kernels[name],
                "gemms_int8_intent": intent.get(name),
                "cosine_vs_fp32": fidelity[name],
            }
        )
    # speed ratio per round (the same round's two sessions), then its median and CI over rounds
    paired = np.asarray(rounds["ORT quantize_dynamic"]) / np.asarray(rounds["orinprof int8-all"])
    ratio, (ratio_lo, ratio_hi) = float(np.median(paired)), stats.bootstrap_ci(paired)
    fp32 = float(np.median(rounds["fp32"]))

    print(
        f"\n== INT8 recipes on ONNX Runtime {ort.__version__} CPU ({cpu_model()})\n"
        f"   {args.model} seq {args.seq}, recipe auto = {recipe}; {args.rounds} rounds × "
        f"{args.iterations} runs, shuffled"
    )
    print(f"{'variant':24s} {'median ms':>9s} {'95% CI over rounds':>19s} {'×fp32':>6s} {'INT8 a/f/o':>11s} cos")
    for r in rows:
        k = r["int8_kernels"]
        counts = f"{k['int8_kernels_attention']}/{k['int8_kernels_ffn']}/{k['int8_kernels_other']}"
        ci = f"[{r['ci_low_ms']:.2f}, {r['ci_high_ms']:.2f}]"
        print(
            f"{r['variant']:24s} {r['median_ms']:9.2f} {ci:>19s} {fp32 / r['median_ms']:5.2f}× {counts:>11s}"
            f" {r['cosine_vs_fp32']:.4f}"
        )
    print("INT8 a/f/o: integer kernels run for attention/FFN/other (ORT's optimised graph)")
    verdict = "met" if ratio_lo >= 0.95 else ("not met" if ratio_hi < 0.95 else "inconclusive (CI spans 0.95)")
    print("orinprof int8-all speed ÷ ORT quantize_dynamic speed (paired per round):")
    print(f"  {ratio:.3f}× [{ratio_lo:.3f}, {ratio_hi:.3f}]; target ≥ 0.95×: {verdict}")
    return {
        "benchmark": "recipes",
        "cpu": cpu_model(),
        "onnxruntime": ort.__version__,
        "recipe": recipe,
        "rounds": args.rounds,
        "iterations_per_round": args.iterations,
        "rows": rows,
        "int8_all_speed_over_quantize_dynamic": {"median": ratio, "ci_low": ratio_lo, "ci_high": ratio_hi},
        "target_met": verdict,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("benchmark", choices=["overhead", "int8", "repeat", "recipes"])
    p.add_argument("--model", default="bert-base")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--plan", default="fp32")
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calib-batches", type=int, default=8)
    p.add_argument("--int8-recipe", default="auto", help="repeat: the INT8 recipe of --plan")
    p.add_argument("--rounds", type=int, default=10, help="recipes: interleaved rounds (at least 5)")
    p.add_argument("--seed", type=int, default=0, help="recipes: seed of the shuffled order")
    p.add_argument("--smoke", action="store_true", help="recipes: allow fewer than 5 rounds (a check, not a result)")
    p.add_argument("--models-dir", default="models")
    args = p.parse_args()
    commands = {"overhead": cmd_overhead, "int8": cmd_int8, "repeat": cmd_repeat, "recipes": cmd_recipes}
    result = commands[args.benchmark](args)
    result.update(model=args.model, seq_len=args.seq, host=platform.node(), cpu_count=os.cpu_count())
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
