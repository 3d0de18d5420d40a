#!/usr/bin/env python3
"""Where does INT8 pay?  A sweep over batch and sequence length (issue 14), printed as ratios.

    python scripts/int8_sweep.py --model bert-base --batches 1,8 --seqs 128,512 --out DIR [-- extra profile flags]

For each batch size, one ``orinprof profile`` run (all sequence lengths, the baseline, the INT8 plans
and the A/A control, interleaved in rounds; a fresh process each) writes a run directory under
``--out``.  The script then prints, from those runs' ``comparison.csv``: the attention and
end-to-end reductions with their CIs over rounds, the run's A/A noise floor, the placebo verdict,
and where the INT8 plan is faster with its whole CI above the noise floor — beside card 9's claim
(about 40 % on attention, 25–35 % end to end).  Every figure comes from the run directories named
in the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from trust_benchmarks import pct, run_profile  # the same fresh-process run and formatting


def run_batch(batch: int, ns: argparse.Namespace, extra: list[str]) -> Path:
    """One ``orinprof profile`` run (fresh process) for this batch size: every length, every plan."""
    args = ["--model", ns.model, "--batch", str(batch), "--seq", ns.seqs, "--precisions", ns.precisions]
    run_dir, _wall = run_profile([*args, "--aa-control", *extra], Path(ns.out))
    return run_dir


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bert-base")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--seqs", default="128,512")
    p.add_argument("--precisions", default="fp32,int8-attn,int8-all", help="the baseline first")
    p.add_argument("--out", required=True)
    ns = p.parse_args(argv)
    runs = [run_batch(int(b), ns, extra) for b in ns.batches.split(",")]
    rows = []
    for run in runs:
        comp = pd.read_csv(run / "comparison.csv")
        info = json.loads((run / "run.json").read_text())
        floors = {int(k): float(v) for k, v in (info.get("noise_floor") or {}).items()}
        batch = int(pd.read_csv(run / "summary.csv")["batch"].iloc[0])
        for c in comp[~comp["precision"].str.endswith("~aa")].to_dict("records"):
            floor = floors.get(int(c["seq_len"]), float("nan"))
            pays = c["e2e_reduction_ci_low"] > (floor if pd.notna(floor) else 0.0)
            flags = str(c.get("flags") or "")
            rows.append(
                {
                    "run": run.name,
                    "batch": batch,
                    "seq": int(c["seq_len"]),
                    "plan": f"{c['precision']} vs {c['baseline']}",
                    "attention": f"{pct(c['attention_reduction'])} [{pct(c['attention_reduction_ci_low'])}, "
                    f"{pct(c['attention_reduction_ci_high'])}]",
                    "e2e": f"{pct(c['e2e_reduction'])} [{pct(c['e2e_reduction_ci_low'])}, "
                    f"{pct(c['e2e_reduction_ci_high'])}]",
                    "A/A floor": pct(floor).lstrip("+"),
                    "placebo": "failed" if "placebo_failed" in flags else "ok",
                    "INT8 pays": "yes" if pays else "no",
                }
            )
    table = pd.DataFrame(rows)
    print(f"\n{ns.model}: INT8 plans vs the baseline, reductions with 95% CIs over rounds (positive = faster)")
    print("runs: " + ", ".join(r.name for r in runs) + "\n")
    print(table.drop(columns=["run"]).to_string(index=False))
    print(
        "\n'INT8 pays' = the e2e reduction's whole CI lies above the run's A/A noise floor.  Card 9 claims "
        "about 40 % on attention and 25-35 % end to end (AGX Orin, TensorRT): off target here."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
