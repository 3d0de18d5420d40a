"""``orinprof sweep-seq``: attention share and the INT8 reductions against sequence length."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orinprof import cards as lib
from orinprof.cli import options as O
from orinprof.cli import tables as T
from orinprof.cli.app import command, err_console, out
from orinprof.cli.tables import Col
from orinprof.errors import OrinprofError

SWEEP = (
    T.integer("seq_len", "seq"),
    T.percent("attention_share_baseline", "attn share"),
    T.percent("attention_reduction", "int8-attn: attention", sign=True),
    T.percent("e2e_reduction", "int8-attn: e2e", sign=True),
    T.percent("implied_e2e_at_claim", "Amdahl at −40 %", sign=True),
    T.percent("e2e_reduction_int8_all", "int8-all: e2e", sign=True),
    Col("card 9 can hold", ("consistent",), lambda r: "yes" if r["consistent"] else "no", numeric=False,
        style=lambda r: "" if r["consistent"] else "red"),
)  # fmt: skip


@command("sweep-seq")
def sweep_seq(
    model: O.Model,
    seq: O.Seq = "64..512",
    precisions: O.Precisions = O.default_precisions(),
    backend: O.Backend = "onnxruntime",
    device: O.Device = "cpu",
    iterations: O.Iterations = 20,
    warmup_s: O.WarmupS = 1.0,
    profile_iterations: O.ProfileIterations = 4,
    telemetry: O.Telemetry = "auto",
    results_dir: O.ResultsDir = Path("results"),
    models_dir: O.ModelsDir = Path("models"),
    wide: O.Wide = False,
) -> None:
    """Attention share and INT8 reductions against sequence length.

    Profiles every plan at every length and shows where card 9's ranges can hold. Include the
    baseline plan and int8-attn in --precisions.

    Example: orinprof sweep-seq --model bert-base --seq 64..512
    """
    from orinprof.cli.progress import for_config
    from orinprof.measure import profile

    if model is None:
        raise OrinprofError("sweep-seq needs a preset", "pass --model PRESET (see `orinprof presets`)")
    cfg = O.profile_config(
        model=model, precisions=precisions, seq=seq, backend=backend, device=device, iterations=iterations,
        warmup_s=warmup_s, profile_iterations=profile_iterations, telemetry=telemetry, results_dir=results_dir,
        models_dir=models_dir,
    )  # fmt: skip
    reporter = for_config(err_console, cfg)
    try:
        result = profile(cfg, reporter)
    finally:
        reporter.close()
    if result.failures:
        raise OrinprofError(
            f"{len(result.failures)} plan(s) failed: " + " | ".join(result.failures),
            f"the other plans' results are in {result.run_dir}",
        )
    sweep = lib.seq_sweep_table(result.comparison) if len(result.comparison) else pd.DataFrame()
    if sweep.empty:
        out.print("No sweep: --precisions needs the baseline plan (fp32 on CPU, fp16 on GPU) and int8-attn.")
    else:
        models = ", ".join(sweep["model"].astype(str).unique())
        title = f"Sequence sweep of {models}: attention share and reductions vs the baseline plan"
        T.show(out, sweep, SWEEP, title, wide=wide, key_count=1)
        reachable = sweep["reachable_at_seq_lens"].iloc[0]
        out.print(f"card 9's 25–35 % end-to-end is reachable at seq: {reachable or 'none'}", highlight=False)
    out.print(f"Results: {result.run_dir}", soft_wrap=True, highlight=False)
