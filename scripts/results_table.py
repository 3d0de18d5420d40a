#!/usr/bin/env python3
"""Print Markdown tables of published run directories: the tables in README.md and
results/README.md are this script's output, pasted (regenerate them with it, never by hand).

    python scripts/results_table.py results/<run-dir> [...]

For each run: what it ran on (device, versions, rounds × iterations), the measured table
(median of round medians with its CI over rounds, class times from the separate profiling run,
the class-time sum ÷ e2e, INT8 kernels executed, fidelity), the comparison (ratios and
reductions with CIs over rounds, the untouched class as a placebo, the profile-implied e2e and
its gap), every trust flag in words, and the run's A/A noise floor when it has one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from orinprof import results
from orinprof.cli.format import ci_text, cosine, count, flag_words, num, pct


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and frame[column].notna().any()


def header(run_dir: Path, summary: pd.DataFrame, info: dict) -> str:
    first = summary.iloc[0]
    fp = info.get("fingerprint", {})
    timing = info.get("config", {}).get("timing", {})
    mode = " (CUDA-graph replay)" if bool(summary.get("cuda_graph", pd.Series([False])).any()) else ""
    threads = f", {int(first['threads'])} intra-op threads" if _has(summary, "threads") else ""
    rounds = int(first["rounds"]) if _has(summary, "rounds") else 1
    block = f"{timing.get('iterations', '?')} timed iterations per block"
    if timing.get("block_s"):
        block += f" (≥ {timing['block_s']} s)"
    status = info.get("status", "unknown")
    return (
        f"**{run_dir.name}** ({status}): {first['model']} on {first['device']}{mode}, backend "
        f"`{first['backend']}` ({first.get('backend_versions', '')}), Python {info['versions'].get('python')}, "
        f"kernel {fp.get('kernel', '?')}{threads}; plans interleaved in {rounds} shuffled rounds, {block}, "
        f"{timing.get('profile_iterations', '?')} profiled iterations per round (separate run)."
    )


def measured(summary: pd.DataFrame) -> list[str]:
    lines = [
        "| seq | plan | e2e median ms [95% CI over rounds] | p99 ms | attention ms | FFN ms | attention share "
        "| class times ÷ e2e | INT8 kernels attn/FFN | cosine vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.to_dict("records"):
        kernels = "–"
        if r.get("int8_kernels_attention") is not None and not pd.isna(r.get("int8_kernels_attention")):
            kernels = f"{count(r['int8_kernels_attention'])}/{count(r['int8_kernels_ffn'])}"
        lines.append(
            f"| {r['seq_len']} | {r['precision']} | "
            f"{ci_text(r['e2e_median_ms'], r['e2e_median_ci_low_ms'], r['e2e_median_ci_high_ms'])} | "
            f"{num(r['e2e_p99_ms']) if not pd.isna(r['e2e_p99_ms']) else 'n/a'} | {num(r['attention_ms'])} | "
            f"{num(r['ffn_ms'])} | {pct(r['attention_share'])} | {num(r['layer_sum_over_e2e'])} | {kernels} | "
            f"{cosine(r['fidelity_cosine'])} |"
        )
    return lines


def comparison_lines(comp: pd.DataFrame) -> list[str]:
    lines = [
        "| seq | plan vs baseline | e2e ratio [CI] | attention reduction [CI] | FFN reduction [CI] "
        "| e2e reduction [CI] | placebo (untouched class) [CI] | profile-implied e2e (gap) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in comp.to_dict("records"):
        placebo = "–"
        if isinstance(c.get("placebo_class"), str):
            placebo = f"{c['placebo_class']} " + ci_text(
                c["placebo_reduction"],
                c["placebo_reduction_ci_low"],
                c["placebo_reduction_ci_high"],
                percent=True,
                sign=True,
            )
        cells = [f"{ci_text(c['e2e_ratio'], c['e2e_ratio_ci_low'], c['e2e_ratio_ci_high'])}×"]
        for name in ("attention", "ffn", "e2e"):
            point, low, high = (c[f"{name}_reduction{s}"] for s in ("", "_ci_low", "_ci_high"))
            cells.append(ci_text(point, low, high, percent=True, sign=True))
        implied = f"{pct(c['profile_implied_e2e_reduction'], sign=True)} ({pct(c['profile_implied_gap'], sign=True)})"
        cells += [placebo, implied]
        lines.append(f"| {c['seq_len']} | {c['precision']} vs {c['baseline']} | " + " | ".join(cells) + " |")
    return lines


def flags(summary: pd.DataFrame, comp: pd.DataFrame | None) -> list[str]:
    out: list[str] = []
    for frame, column in ((summary, "trust_flags"), (comp, "flags")):
        if frame is None or column not in frame.columns:
            continue
        for r in frame.to_dict("records"):
            if isinstance(r.get(column), str) and r[column]:
                label = f"seq {r['seq_len']} {r['precision']}" + (f" vs {r['baseline']}" if "baseline" in r else "")
                out.append(f"- {label}: {flag_words(r[column])}")
    return out


def main(paths: list[str]) -> None:
    for p in map(Path, paths):
        summary = results.read_table(p, "summary")
        info = json.loads((p / "run.json").read_text())
        print("\n" + header(p, summary, info) + "\n")
        print("\n".join(measured(summary)))
        comp = results.read_table(p, "comparison") if (p / "comparison.csv").exists() else None
        if comp is not None and len(comp):
            print()
            print("\n".join(comparison_lines(comp)))
        floor = info.get("noise_floor") or {}
        if floor:
            worst = max(float(v) for v in floor.values())
            per = ", ".join(f"seq {k}: {100 * float(v):.1f} %" for k, v in floor.items())
            print(
                f"\nA/A control (the baseline timed twice as two plans): differences under {100 * worst:.1f} % "
                f"are noise on this machine ({per})."
            )
        lines = flags(summary, comp)
        if lines:
            print("\nTrust flags, in words:\n")
            print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
