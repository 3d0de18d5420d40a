"""compare: run modes are never mixed silently, pairing within a run, flags, card check, old files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from orinprof import results
from orinprof.compare import CardCheck, card_checks, compare
from orinprof.errors import OrinprofError


def _run(
    run_id: str,
    plans: dict[str, float],
    rounds: int = 5,
    mode: str = "device=cpu",
    cuda_graph: bool = False,
    **row: Any,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary, class_times, latencies) of a synthetic run: plan → e2e ms (round r adds r %)."""
    summary, ct, lat = [], [], []
    for plan, ms in plans.items():
        keys = {"run_id": run_id, "model": "m", "backend": "b", "precision": plan, "batch": 1, "seq_len": 16}
        per_round = [np.full(4, ms * (1 + r / 100)) for r in range(rounds)]
        totals = {"attention_ms": 0.4 * ms, "ffn_ms": 0.5 * ms, "norm_ms": 0.1 * ms, "layer_sum_ms": ms}
        extra = {"run_mode": mode, "cuda_graph": cuda_graph, **row}
        built = results.summary_row(keys, per_round, device="cpu0", device_kind="cpu", class_totals=totals, extra=extra)
        summary.append({**built, **row})
        for r, values in enumerate(per_round):
            for it, v in enumerate(values):
                lat.append({**keys, "round": r, "iteration": it, "latency_ms": v})
                for cls, f in (("attention", 0.4), ("ffn", 0.5), ("norm", 0.1)):
                    ct.append({**keys, "round": r, "iteration": it, "layer_class": cls, "time_ms": f * ms})
    return pd.DataFrame(summary), pd.DataFrame(ct), pd.DataFrame(lat)


def _cat(*runs: tuple[pd.DataFrame, ...]) -> tuple[pd.DataFrame, ...]:
    return tuple(pd.concat([r[i] for r in runs], ignore_index=True) for i in range(3))


def test_refuses_to_mix_run_modes_unless_allowed() -> None:
    eager = _run("r1", {"fp32": 10.0, "int8-attn": 8.0}, mode="device=cuda")
    graph = _run("r2", {"fp32": 5.0, "int8-attn": 4.0}, mode="device=cuda", cuda_graph=True)
    with pytest.raises(OrinprofError, match="run modes") as err:
        compare(*_cat(eager, graph), claims={})
    assert "--allow-mixed" in err.value.hint
    mixed = compare(*_cat(eager, graph), allow_mixed=True, claims={})
    assert mixed["flags"].str.contains("mixed_modes").all()
    # other backend options are another mode too
    threads = _run("r3", {"fp32": 10.0, "int8-attn": 8.0}, mode="device=cuda,threads=2")
    with pytest.raises(OrinprofError, match="run modes"):
        compare(*_cat(eager, threads), claims={})
    # and so is another machine with the same device string (the fingerprint tells them apart)
    a = _run("r4", {"fp32": 10.0, "int8-attn": 8.0}, gpu_name="NVIDIA H100")
    b = _run("r5", {"fp32": 10.0, "int8-attn": 8.0}, gpu_name="NVIDIA H200")
    with pytest.raises(OrinprofError, match=r"device=.*NVIDIA H200"):
        compare(*_cat(a, b), claims={})
    assert len(compare(*_cat(a, _run("r6", {"fp32": 9.0}, gpu_name="NVIDIA H100")), claims={})) == 1


def test_pairs_with_the_baseline_of_the_same_run() -> None:
    # two runs of one mode on a machine that got twice as slow: each plan against its own run's fp32
    fast = _run("r1", {"fp32": 10.0, "int8-attn": 8.0})
    slow = _run("r2", {"fp32": 20.0, "int8-attn": 16.0})
    comp = compare(*_cat(fast, slow), claims={}).set_index("run_id")
    for rid in ("r1", "r2"):
        assert comp.loc[rid, "baseline_run_id"] == rid and bool(comp.loc[rid, "paired"])
        assert comp.loc[rid, "e2e_reduction"] == pytest.approx(0.2)
    # the times beside the reductions come from the same round values (audit §1.3: one estimator)
    r1 = comp.loc["r1"]
    assert (r1["e2e_ms_baseline"], r1["e2e_ms_plan"]) == pytest.approx((10.2, 8.16))
    assert (r1["attention_ms_baseline"], r1["attention_ms_plan"]) == pytest.approx((4.0, 3.2))
    assert 1 - r1["attention_ms_plan"] / r1["attention_ms_baseline"] == pytest.approx(r1["attention_reduction"])
    # a plan run without a baseline is compared unpaired, and says so
    lone = _run("r3", {"int8-attn": 8.0})
    row = compare(*_cat(fast, lone), claims={}).set_index("run_id").loc["r3"]
    assert not bool(row["paired"]) and "unpaired" in row["flags"]


def test_class_times_beyond_e2e_are_flagged_unless_kernel_time() -> None:
    hooked = _run("r1", {"fp16": 1.0, "int8-attn": 0.8}, layer_sum_over_e2e=3.7)
    flags = compare(*hooked, baseline="fp16", claims={})["flags"].iloc[0]
    assert "class_times_exceed_e2e:baseline=3.70x" in flags
    kernel = _run("r1", {"fp16": 1.0, "int8-attn": 0.8}, layer_sum_over_e2e=3.7, kernel_time_classes=True)
    assert "class_times_exceed_e2e" not in str(compare(*kernel, baseline="fp16", claims={})["flags"].iloc[0])


def test_card_check_column(tmp_path: Path) -> None:
    toml = tmp_path / "claims.toml"
    toml.write_text(
        '[[claim]]\nmetric = "comparison.attention_reduction"\nwhere = { precision = "int8-attn" }\n'
        "claimed = 0.40\nlow = 0.35\nhigh = 0.45\n"
        '[[claim]]\nmetric = "comparison.e2e_reduction"\nwhere = { precision = "int8-attn" }\n'
        "low = 0.25\nhigh = 0.35\n"
    )
    checks = card_checks(toml)
    assert checks == {"int8-attn": CardCheck(0.40, 0.25, 0.35)}
    row = compare(*_run("r1", {"fp32": 10.0, "int8-attn": 8.0}), claims=checks).iloc[0]
    # baseline attention share 0.4 × claimed 40 % = 16 % implied, against a claimed 25-35 %
    assert row["card_implied_e2e_reduction"] == pytest.approx(0.16)
    assert (row["card_claimed_e2e_low"], row["card_claimed_e2e_high"]) == (0.25, 0.35)


def test_the_repository_claims_give_card_9s_check() -> None:
    checks = card_checks()
    assert checks["int8-attn"].attention_reduction == pytest.approx(0.40)
    assert (checks["int8-attn"].e2e_low, checks["int8-attn"].e2e_high) == (0.25, 0.35)


def test_old_run_directories_still_compare(tmp_path: Path) -> None:
    """A schema-1.0 run (no rounds, the Amdahl column's old name) reads as one round: a point, no CI."""
    summary, ct, lat = _run("old", {"fp32": 10.0, "int8-attn": 8.0}, rounds=1)
    run = tmp_path / "old"
    run.mkdir()
    summary = summary.drop(columns=["run_mode"])
    for name, df in (("summary", summary), ("class_times", ct), ("latencies", lat)):
        df.drop(columns=["round"], errors="ignore").to_csv(run / results.TABLES[name].file, index=False)
    legacy = pd.DataFrame({"amdahl_e2e_reduction": [0.1], "run_id": ["old"]})
    upgraded = results._upgrade(legacy, results.TABLES["comparison"])
    assert upgraded["profile_implied_e2e_reduction"].tolist() == [0.1]
    read = results.read_table(run, "latencies")
    assert (read["round"] == 0).all()
    from orinprof.compare import compare_runs

    comp = compare_runs([run])
    assert comp["rounds"].tolist() == [1] and np.isnan(comp["e2e_reduction_ci_low"]).all()
    assert comp["e2e_reduction"].tolist() == pytest.approx([0.2])
