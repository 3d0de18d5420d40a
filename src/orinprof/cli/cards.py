"""``orinprof cards …``: validate the drill cards' claims against results, export the deck to Anki,
and run card 3's activation-outlier experiment."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table as RichTable

from orinprof import cards as lib
from orinprof.cli.app import ModelsDir, ResultsDir, RunDirs, command, err_console, group_command, out, sub_app
from orinprof.errors import OrinprofError

group = sub_app("cards", "Drill cards: claims → verdicts with evidence, the Amdahl check, Anki export.")

CardsFile = Annotated[Path, typer.Option("--cards", help="Anki text file with the drill cards.")]
ClaimsFile = Annotated[Path, typer.Option("--claims", help="Claims file (TOML) mapping cards to metrics.")]
Backend = Annotated[str, typer.Option("--backend", help="onnxruntime, tensorrt, trtexec or torch.")]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda (torch / ORT CUDA EP) or trt (ORT TensorRT EP).")]
Iterations = Annotated[int, typer.Option("--iterations", help="Timed iterations per block (each plan, each round).")]
WarmupS = Annotated[float, typer.Option("--warmup-s", help="Warm-up time in seconds (at least).")]
ProfileIterations = Annotated[int, typer.Option("--profile-iterations", help="Per-layer iterations per round.")]

_VERDICT_STYLE = {
    "supported": "green",
    "contradicted": "red",
    "inconclusive": "yellow",
    "measured-off-target": "cyan",
    "no-evidence": "dim",
}


def _num(value: object, fmt: str = "{:.3g}") -> str:
    return "" if value is None or pd.isna(value) else fmt.format(value)  # type: ignore[call-overload]


def _verdict_table(verdicts: pd.DataFrame) -> RichTable:
    table = RichTable(title="Card claims vs measurements")
    for name in (
        "claim",
        "claimed",
        "measured [95% CI]",
        "model / seq",
        "device · backend",
        "evidence",
        "verdict",
    ):
        table.add_column(name)
    for r in verdicts.to_dict("records"):
        ci = f" [{_num(r['ci_low'])}, {_num(r['ci_high'])}]" if pd.notna(r["ci_low"]) else ""
        seq = f" / {int(r['seq_len'])}" if pd.notna(r["seq_len"]) else ""
        style = _VERDICT_STYLE.get(str(r["verdict"]), "")
        table.add_row(
            str(r["claim_id"]),
            f"{_num(r['claimed_low'])}–{_num(r['claimed_high'])}",
            _num(r["measured"]) + ci,
            f"{r['model'] or ''}{seq}" if pd.notna(r["model"]) else "",
            " · ".join(str(r[k]) for k in ("device", "backend") if pd.notna(r[k])),
            str(r["run_ids"]) if pd.notna(r["run_ids"]) else "",
            f"[{style}]{r['verdict']}[/{style}]" if style else str(r["verdict"]),
        )
    return table


def _amdahl_table(amdahl: pd.DataFrame) -> RichTable:
    table = RichTable(title="Amdahl check, card 9 (−40 % on attention only → end-to-end)")
    for name in (
        "model / seq",
        "device · backend",
        "attn share",
        "implied e2e",
        "measured e2e",
        "needs share",
        "ok",
    ):
        table.add_column(name)
    for r in amdahl.to_dict("records"):
        table.add_row(
            f"{r['model']} / {r['seq_len']}",
            f"{r['device']} · {r['backend']}",
            _num(r["attention_share_baseline"], "{:.1%}"),
            _num(r["implied_e2e_at_claim"], "{:.1%}"),
            _num(r["e2e_reduction"], "{:.1%}"),
            f"{r['required_share_low']:.1%}–{r['required_share_high']:.1%}",
            "yes" if r["consistent"] else "[red]no[/red]",
        )
    return table


@group_command(group, "validate")
def validate(
    results: RunDirs,
    cards: CardsFile = Path("cards.tsv"),
    claims: ClaimsFile = Path("claims.toml"),
    out_path: Annotated[
        Path, typer.Option("--out", help="Verdicts CSV (never overwritten: a suffix is added).")
    ] = Path("verdicts.csv"),
) -> None:
    """Judge every card claim against measured results and write the verdicts CSV.

    Example: orinprof cards validate results/ --out verdicts.csv
    """
    deck = lib.read_cards(cards)
    claim_set = lib.load_claims(claims, deck)
    evidence = lib.load_evidence(results)
    verdicts = lib.validate(evidence, claim_set)
    out.print(_verdict_table(verdicts))
    if "comparison" in evidence.tables:
        amdahl = lib.amdahl_check(evidence.tables["comparison"], lib.amdahl_claim_from(claim_set))
        if len(amdahl):
            out.print(_amdahl_table(amdahl))
            for flag in amdahl["flag"][amdahl["flag"] != ""].unique():
                out.print(f"[yellow]flag:[/yellow] {flag}")
    written = lib.write_verdicts(verdicts, out_path)
    out.print(f"verdicts written to {written}")


@group_command(group, "export")
def export(
    evidence: Annotated[list[Path], typer.Option("--evidence", help="Run directories or verdicts.csv.")] = [],  # noqa: B006
    out_path: Annotated[Path, typer.Option("--out", help="deck.apkg (Anki package) or deck.tsv (Anki text).")] = Path(
        "deck.apkg"
    ),
    cards: CardsFile = Path("cards.tsv"),
    claims: ClaimsFile = Path("claims.toml"),
) -> None:
    """Export the deck to Anki with each card's back extended by its measured evidence.

    Example: orinprof cards export --evidence results/ --out deck.apkg
    """
    deck = lib.read_cards(cards)
    claim_set = lib.load_claims(claims, deck)
    verdicts = lib.verdicts_from(evidence, claim_set) if evidence else None
    written = lib.export_deck(deck, out_path, verdicts, claim_set)
    out.print(f"{len(deck.cards)} notes written to {written}")


@group_command(group, "outliers")
def outliers(
    model: Annotated[str, typer.Option("--model", help="Pretrained BERT preset.")] = "minilm-l6",
    top_fraction: Annotated[float, typer.Option("--top-fraction", help="Share of dimensions counted as 'top'.")] = 0.01,
    out_path: Annotated[Path, typer.Option("--out", help="outliers CSV (never overwritten).")] = Path("outliers.csv"),
) -> None:
    """Card 3: per-dimension activation magnitudes of a real model's hidden states.

    Example: orinprof cards outliers --model minilm-l6 --out outliers.csv
    """
    table = lib.outlier_experiment(model, top_fraction)
    written = lib.write_table_file(table, "outliers", out_path)
    out.print(
        table[
            [
                "layer",
                "top_dims",
                "top_to_median_ratio",
                "top_to_median_ratio_ci_low",
                "top_to_median_ratio_ci_high",
            ]
        ]
    )
    out.print(f"written to {written}; judge it with: orinprof cards validate {written}")


def _profile_config(**kw: Any) -> Any:
    """The spine's ProfileConfig with this command line recorded (measure is imported late: it
    pulls in onnx and the backend registry)."""
    from orinprof.backends.base import TimingConfig
    from orinprof.measure import ProfileConfig

    timing = TimingConfig(
        iterations=kw.pop("iterations"),
        warmup_s=kw.pop("warmup_s"),
        profile_iterations=kw.pop("profile_iterations"),
        rounds=kw.pop("rounds", TimingConfig.rounds),
    )
    command = "orinprof " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return ProfileConfig(timing=timing, command=command, **kw)


def _pruning_table(table: pd.DataFrame) -> RichTable:
    rich = RichTable(title="Cards 6 and 10: pruned variants (positive = faster than the reference)")
    for name in ("variant", "kind", "weights removed", "e2e reduction [95% CI]", "vs run"):
        rich.add_column(name)
    for r in table.to_dict("records"):
        ci = f" [{_num(r['e2e_reduction_ci_low'], '{:+.1%}')}, {_num(r['e2e_reduction_ci_high'], '{:+.1%}')}]"
        rich.add_row(
            str(r["variant"]),
            str(r["variant_kind"]),
            _num(r["params_removed_fraction"], "{:.1%}"),
            _num(r["e2e_reduction"], "{:+.1%}") + ci,
            str(r["baseline_run_id"]),
        )
    return rich


@group_command(group, "pruning")
def pruning(
    model: Annotated[str, typer.Option("--model", "-m", help="BERT preset, or a variant: bert-tiny[num_layers=4].")] = (
        "bert-base"
    ),
    seq: Annotated[int | None, typer.Option("--seq", help="Sequence length (default: the preset's).")] = None,
    backend: Backend = "onnxruntime",
    device: Device = "cpu",
    iterations: Iterations = 20,
    warmup_s: WarmupS = 1.0,
    profile_iterations: ProfileIterations = 2,
    results_dir: ResultsDir = Path("results"),
    models_dir: ModelsDir = Path("models"),
) -> None:
    """Cards 6 and 10: time the dense model, 50 % zeroed weights, fewer heads + smaller FFN, one layer
    fewer and the matching fewer heads (fp32, same backend), and write the pruning table.

    Example: orinprof cards pruning --model bert-base --seq 128 --iterations 200
    """
    from dataclasses import replace

    from orinprof.measure import profile

    cfg = _profile_config(
        model=model, precisions=("fp32",), seq_lens=(seq,) if seq else (), backend=backend, device=device,
        iterations=iterations, warmup_s=warmup_s, profile_iterations=profile_iterations, telemetry="none",
        results_dir=results_dir, models_dir=models_dir,
        rounds=1,  # one profile call is one block of the experiment's own interleaved rounds
    )  # fmt: skip

    def progress(done: int, total: int) -> None:
        err_console.print(f"[dim]pruning: {done}/{total} models timed[/dim]")

    def profile_run(name: str) -> Path:
        return Path(profile(replace(cfg, model=name)).run_dir)

    run_dir, table = lib.pruning(model, profile_run, results_dir, cfg.command, progress)
    out.print(_pruning_table(table))
    out.print(f"Results: {run_dir}; judge them with: orinprof cards validate {run_dir}")


def _sweep_table(sweep: pd.DataFrame) -> RichTable:
    models = ", ".join(sweep["model"].astype(str).unique())
    rich = RichTable(title=f"Sequence sweep of {models}: attention share and reductions vs the baseline plan")
    for name in ("seq", "attn share", "int8-attn: attention", "int8-attn: e2e", "Amdahl at −40 %", "int8-all: e2e"):
        rich.add_column(name)
    rich.add_column("card 9 can hold")
    for r in sweep.to_dict("records"):
        rich.add_row(
            str(r["seq_len"]),
            _num(r["attention_share_baseline"], "{:.1%}"),
            _num(r["attention_reduction"], "{:+.1%}"),
            _num(r["e2e_reduction"], "{:+.1%}"),
            _num(r["implied_e2e_at_claim"], "{:+.1%}"),
            _num(r["e2e_reduction_int8_all"], "{:+.1%}"),
            "yes" if r["consistent"] else "[red]no[/red]",
        )
    return rich


@command("sweep-seq")
def sweep_seq(
    model: Annotated[str, typer.Option("--model", "-m", help="Preset name (see `orinprof presets`).")],
    seq: Annotated[str, typer.Option("--seq", help="Sequence lengths: 64..512 (powers of two) or 128,384.")] = (
        "64..512"
    ),
    precisions: Annotated[str, typer.Option(help="Plans; include the baseline and int8-attn.")] = (
        "fp32,int8-attn,int8-ffn,int8-all"
    ),
    backend: Backend = "onnxruntime",
    device: Device = "cpu",
    iterations: Iterations = 20,
    warmup_s: WarmupS = 1.0,
    profile_iterations: ProfileIterations = 4,
    telemetry: Annotated[str, typer.Option(help="auto, jtop, tegrastats, nvml, host or none.")] = "auto",
    results_dir: ResultsDir = Path("results"),
    models_dir: ModelsDir = Path("models"),
) -> None:
    """How attention share and the INT8 reductions move with sequence length, and where card 9 can hold.

    Example: orinprof sweep-seq --model bert-base --seq 64..512 --precisions fp32,int8-attn,int8-all
    """
    from orinprof.measure import parse_seq_lens, profile

    cfg = _profile_config(
        model=model, precisions=tuple(p.strip() for p in precisions.split(",") if p.strip()),
        seq_lens=parse_seq_lens(seq), backend=backend, device=device, iterations=iterations, warmup_s=warmup_s,
        profile_iterations=profile_iterations, telemetry=telemetry, results_dir=results_dir, models_dir=models_dir,
    )  # fmt: skip
    result = profile(cfg)
    if result.failures:
        raise OrinprofError(
            f"{len(result.failures)} plan(s) failed: " + " | ".join(result.failures),
            f"the other plans' results are in {result.run_dir}",
        )
    sweep = lib.seq_sweep_table(result.comparison) if len(result.comparison) else pd.DataFrame()
    if sweep.empty:
        out.print("No sweep: --precisions needs the baseline plan (fp32 on CPU, fp16 on GPU) and int8-attn.")
    else:
        out.print(_sweep_table(sweep))
        out.print(f"card 9's 25–35 % end-to-end is reachable at seq: {sweep['reachable_at_seq_lens'].iloc[0]}")
    out.print(f"Results: {result.run_dir}")
