#!/usr/bin/env python3
"""Print Markdown tables of published run directories (the tables quoted in README.md and
results/README.md are this script's output, pasted).

    python scripts/results_table.py results/<run-dir> [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from orinprof import results


def pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:+.1f}%"


def main(paths: list[str]) -> None:
    for p in map(Path, paths):
        summary = results.read_table(p, "summary")
        info = json.loads((p / "run.json").read_text())
        fp = info.get("fingerprint", {})
        graph = " (CUDA-graph replay)" if summary.get("cuda_graph", pd.Series([False])).any() else ""
        versions = summary["backend_versions"].iloc[0] if "backend_versions" in summary else ""
        threads = summary["threads"].iloc[0] if "threads" in summary and summary["threads"].notna().any() else None
        print(
            f"\n**{p.name}**: {summary['model'].iloc[0]} on {summary['device'].iloc[0]}{graph}, backend "
            f"`{summary['backend'].iloc[0]}` ({versions}), Python {info['versions'].get('python')}, "
            f"kernel {fp.get('kernel', '?')}" + (f", {int(threads)} intra-op threads" if threads else "") + "\n"
        )
        print(
            "| seq | plan | e2e median ms [95% CI] | p99 ms | CV | attention ms | FFN ms | attention share "
            "| cosine vs fp32 |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in summary.itertuples():
            print(
                f"| {r.seq_len} | {r.precision} | {r.e2e_median_ms:.3g} [{r.e2e_median_ci_low_ms:.3g}, "
                f"{r.e2e_median_ci_high_ms:.3g}] | {r.e2e_p99_ms:.3g} | {r.e2e_cv:.3f} | {r.attention_ms:.3g} | "
                f"{r.ffn_ms:.3g} | {100 * r.attention_share:.0f}% | {r.fidelity_cosine:.5f} |"
            )
        comp_path = p / "comparison.csv"
        if comp_path.exists():
            comp = results.read_table(p, "comparison")
            print(
                "\n| seq | plan vs baseline | attention reduction [CI] | FFN reduction [CI] | e2e reduction [CI] "
                "| Amdahl-predicted e2e |"
            )
            print("|---|---|---|---|---|---|")
            for c in comp.itertuples():
                print(
                    f"| {c.seq_len} | {c.precision} vs {c.baseline} | {pct(c.attention_reduction)} "
                    f"[{pct(c.attention_reduction_ci_low)}, {pct(c.attention_reduction_ci_high)}] | "
                    f"{pct(c.ffn_reduction)} [{pct(c.ffn_reduction_ci_low)}, {pct(c.ffn_reduction_ci_high)}] | "
                    f"{pct(c.e2e_reduction)} [{pct(c.e2e_reduction_ci_low)}, {pct(c.e2e_reduction_ci_high)}] | "
                    f"{pct(c.profile_implied_e2e_reduction)} |"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
