#!/usr/bin/env python3
"""Benchmarks of the measurement design itself (issue 10): printed ratios, not timed tests.

    python scripts/trust_benchmarks.py repeat [--runs 3] [--model bert-base] [--seq 128] [--out DIR]
    python scripts/trust_benchmarks.py cost --old-src PATH [--model bert-base] [--seq 128] [--pairs 2]

``repeat`` runs ``orinprof profile --precisions fp32,int8-attn --aa-control`` ``--runs`` times, each
in its own process, and prints from the runs' own ``comparison.csv``:

- repeatability: the spread (max − min) of the e2e ratio int8-attn/fp32 across runs, relative to
  their mean (target ≤ 3 %), and of the attention reduction in points (target ≤ 5 points);
- the FFN placebo of int8-attn in every run (target: within ±5 %);
- the A/A control of every run: the baseline timed against itself, whose e2e reduction CI should
  contain 0 with |point| ≤ 2 %.

``cost`` times ``orinprof profile`` with this checkout and with an older source tree (``--old-src``,
e.g. a ``git worktree`` of the previous release), both at their default iterations (100 timed and
20 profiled per plan in both designs: one 100-iteration run before, 5 rounds × 20 now) and on the
same plan files (``--new-args "--int8-recipe trt-qdq"``: the old tree knew only that layout), and
prints new ÷ old (target ≤ 1.2).  A wall time on the 2-core VM moves 10–20 % from run to run, so
the two designs run in ``--pairs`` pairs in ABBA order (new, old, old, new, …): each pair gives a
ratio, and the verdict uses the median of the pairs' ratios.

Every figure printed comes from the run directories named in the output; nothing is typed in.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run_profile(args: list[str], results_dir: Path, src: Path | None = None) -> tuple[Path, float]:
    """Run ``orinprof profile`` in a fresh process; return its run directory and wall time."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    before = set(results_dir.glob("*")) if results_dir.exists() else set()
    cmd = [sys.executable, "-m", "orinprof", "profile", *args, "--results-dir", str(results_dir)]
    print("$", " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    new = sorted(set(results_dir.glob("*")) - before)
    if len(new) != 1:
        raise SystemExit(f"expected one new run directory under {results_dir}, found {len(new)}")
    return new[0], wall


def pct(x: float) -> str:
    return "nan" if pd.isna(x) else f"{100 * x:+.1f} %"


def repeat(ns: argparse.Namespace) -> int:
    out = Path(ns.out)
    rows = []
    extra_args = ns.extra_args.split()
    for i in range(ns.runs):
        run_dir, wall = run_profile(
            ["--model", ns.model, "--seq", str(ns.seq), "--precisions", "fp32,int8-attn", "--aa-control", *extra_args],
            out,
        )
        comp = pd.read_csv(run_dir / "comparison.csv")
        plan = comp[comp["precision"] == "int8-attn"].iloc[0]
        aa = comp[comp["precision"].str.endswith("~aa")].iloc[0]
        rows.append(
            {
                "run": run_dir.name,
                "wall_s": wall,
                "rounds": int(plan["rounds"]),
                "e2e_ratio": plan["e2e_ratio"],
                "attention_reduction": plan["attention_reduction"],
                "ffn_placebo": plan["placebo_reduction"],
                "ffn_placebo_ci": (plan["placebo_reduction_ci_low"], plan["placebo_reduction_ci_high"]),
                "aa_e2e": aa["e2e_reduction"],
                "aa_e2e_ci": (aa["e2e_reduction_ci_low"], aa["e2e_reduction_ci_high"]),
                "flags": plan.get("flags") if isinstance(plan.get("flags"), str) else "",
            }
        )
        print(f"  run {i + 1}: {run_dir.name} ({wall:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    ratio_spread = (df["e2e_ratio"].max() - df["e2e_ratio"].min()) / df["e2e_ratio"].mean()
    attn_spread = df["attention_reduction"].max() - df["attention_reduction"].min()
    extra = f" {ns.extra_args}" if ns.extra_args else ""
    print(f"\n{ns.model} seq {ns.seq}, {ns.runs} separate runs of fp32,int8-attn with --aa-control{extra}\n")
    for r in df.itertuples():
        lo, hi = r.ffn_placebo_ci
        alo, ahi = r.aa_e2e_ci
        print(
            f"{r.run}: e2e ratio int8-attn/fp32 {r.e2e_ratio:.3f}; attention reduction "
            f"{pct(r.attention_reduction)}; FFN placebo {pct(r.ffn_placebo)} [{pct(lo)}, {pct(hi)}]; "
            f"A/A e2e {pct(r.aa_e2e)} [{pct(alo)}, {pct(ahi)}]; rounds {r.rounds}; flags {r.flags or '-'}"
        )
    placebo_ok = all(abs(x) <= 0.05 for x in df["ffn_placebo"])
    placebo_ci_ok = all(lo >= -0.05 and hi <= 0.05 for lo, hi in df["ffn_placebo_ci"])
    aa_ok = all(lo <= 0 <= hi for lo, hi in df["aa_e2e_ci"])
    aa_point_ok = all(abs(x) <= 0.02 for x in df["aa_e2e"])
    print()
    print(
        f"spread of the e2e ratio: {100 * ratio_spread:.1f} % of its mean (target ≤ 3 %): "
        f"{'met' if ratio_spread <= 0.03 else 'NOT met'}"
    )
    print(
        f"spread of the attention reduction: {100 * attn_spread:.1f} points (target ≤ 5): "
        f"{'met' if attn_spread <= 0.05 else 'NOT met'}"
    )
    print(
        f"FFN placebo point within ±5 % in every run: {'yes' if placebo_ok else 'NO'}; "
        f"its CI inside ±5 % in every run: {'yes' if placebo_ci_ok else 'NO'}"
    )
    print(
        f"A/A e2e CI contains 0 in every run: {'yes' if aa_ok else 'NO'}; "
        f"|A/A point| ≤ 2 % in every run: {'yes' if aa_point_ok else 'NO'}"
    )
    print(f"wall time per run: {', '.join(f'{w:.0f} s' for w in df['wall_s'])}")
    return 0


def cost(ns: argparse.Namespace) -> int:
    args = ["--model", ns.model, "--seq", str(ns.seq), "--precisions", ns.precisions]
    out = Path(ns.out)
    pairs = []
    designs = {
        "new": ([*args, *ns.new_args.split()], out / "new", None),
        "old": (args, out / "old", Path(ns.old_src).resolve()),
    }
    for i in range(ns.pairs):
        order = ("new", "old") if i % 2 == 0 else ("old", "new")  # ABBA: neither always runs first
        ran = {name: run_profile(*designs[name]) for name in order}
        pairs.append((*ran["new"], *ran["old"]))
    new_n = json.loads((pairs[0][0] / "run.json").read_text()).get("config", {}).get("timing", {})
    print(f"\n{ns.model}, seq {ns.seq}, {ns.precisions}, each design at its default iterations:")
    print(f"  this checkout: {' '.join(ns.new_args.split()) or 'no extra flags'}; timing config {new_n}")
    print(f"  old source: {ns.old_src}")
    ratios = []
    for i, (new_dir, new_wall, old_dir, old_wall) in enumerate(pairs):
        ratios.append(new_wall / old_wall)
        print(
            f"  pair {i + 1} ({'new first' if i % 2 == 0 else 'old first'}): new {new_wall:.0f} s "
            f"({new_dir.name}), old {old_wall:.0f} s ({old_dir.name}): {ratios[-1]:.2f}"
        )
    median = float(pd.Series(ratios).median())
    print(
        f"  new ÷ old wall time, median of {len(ratios)} pair(s): {median:.2f} (target ≤ 1.2): "
        f"{'met' if median <= 1.2 else 'NOT met'}"
    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("repeat")
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--model", default="bert-base")
    r.add_argument("--seq", type=int, default=128)
    r.add_argument("--out", default="results/trust-benchmarks-runs")
    r.add_argument("--extra-args", default="", help='more profile flags, e.g. "--rounds 10"')
    r.set_defaults(fn=repeat)
    c = sub.add_parser("cost")
    c.add_argument("--old-src", required=True, help="src/ folder of the older tree")
    c.add_argument("--model", default="bert-base")
    c.add_argument("--seq", type=int, default=128)
    c.add_argument("--precisions", default="fp32,fp16,int8-attn,int8-ffn,int8-all")
    c.add_argument("--out", default="/tmp/orinprof-cost")
    c.add_argument("--pairs", type=int, default=2, help="new/old pairs, run in ABBA order")
    c.add_argument(
        "--new-args",
        default="--int8-recipe trt-qdq",
        help="extra flags for this checkout, so both trees run the same plan files (the old tree had only trt-qdq)",
    )
    c.set_defaults(fn=cost)
    ns = p.parse_args()
    return int(ns.fn(ns))


if __name__ == "__main__":
    sys.exit(main())
