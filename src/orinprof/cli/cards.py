"""``orinprof cards …``: validate the drill cards' claims against results, export the deck to Anki,
and run the card experiments (card 3's activation outliers, cards 6 and 10's pruning)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from orinprof import cards as lib
from orinprof.cli import format as fmt
from orinprof.cli import options as O
from orinprof.cli import tables as T
from orinprof.cli.app import emit_json, err_console, group_command, out, sub_app
from orinprof.cli.tables import Col

group = sub_app(
    "cards",
    "Drill cards: claim verdicts, Anki export, experiments.\n\n"
    "Claims → verdicts with evidence, the Amdahl check, the deck annotated for Anki, and the card "
    "experiments (activation outliers, pruning).",
)

CardsFile = Annotated[Path, typer.Option("--cards", help="Anki text file with the drill cards.")]
ClaimsFile = Annotated[Path, typer.Option("--claims", help="Claims file (TOML) mapping cards to metrics.")]

_VERDICT_STYLE = {
    "supported": "green",
    "contradicted": "red",
    "inconclusive": "yellow",
    "measured-off-target": "cyan",
    "no-evidence": "dim",
}


def _verdict_style(row: T.Row) -> str:
    return _VERDICT_STYLE.get(str(row["verdict"]), "")


def _where(row: T.Row) -> str:
    """``bert-base / 128 · cpu · onnxruntime``: the evidence row's model, shape and runtime."""
    model = "" if fmt.is_missing(row.get("model")) else str(row["model"])
    if model and not fmt.is_missing(row.get("seq_len")):
        model += f" / {fmt.count(row['seq_len'])}"
    parts = [model] + [str(row[k]) for k in ("device", "backend") if not fmt.is_missing(row.get(k))]
    return " · ".join(p for p in parts if p)


def _claim_number(value: object) -> str | None:
    """A claimed bound as typed in claims.toml (no digits to round); None for an open end."""
    if fmt.is_missing(value) or math.isinf(float(value)):  # type: ignore[arg-type]
        return None
    return f"{float(value):g}"  # type: ignore[arg-type]


def _claimed(row: T.Row) -> str:
    low, high = _claim_number(row["claimed_low"]), _claim_number(row["claimed_high"])
    if low is None and high is None:
        return fmt.MISSING
    if high is None:
        return f"≥ {low}"
    return f"≤ {high}" if low is None else f"{low}–{high}"


VERDICTS = (
    T.text("claim_id", "claim"),
    Col("claimed", ("claimed_low", "claimed_high"), _claimed),
    T.with_ci("measured [95% CI]", "measured", [("ci_low", "ci_high")]),
    Col("verdict", ("verdict",), lambda r: str(r["verdict"]), numeric=False, style=_verdict_style),
    Col("where", ("model", "seq_len", "device", "backend"), _where, numeric=False, sparse=True),
    T.text("run_ids", "evidence", wide=True),
    T.text("reason", wide=True),
)

AMDAHL = (
    Col("model / seq", ("model", "seq_len"), lambda r: f"{r['model']} / {fmt.count(r['seq_len'])}", numeric=False),
    T.percent("attention_share_baseline", "attn share"),
    T.percent("implied_e2e_at_claim", "implied e2e"),
    T.percent("e2e_reduction", "measured e2e"),
    Col(
        "needs share",
        ("required_share_low", "required_share_high"),
        lambda r: f"{fmt.pct(r['required_share_low'])}–{fmt.pct(r['required_share_high'])}",
    ),
    Col("ok", ("consistent",), lambda r: "yes" if r["consistent"] else "no", numeric=False,
        style=lambda r: "" if r["consistent"] else "red"),
    Col("device · backend", ("device", "backend"), lambda r: f"{r['device']} · {r['backend']}", False, wide=True),
)  # fmt: skip


@group_command(group, "validate")
def validate(
    results: O.RunDirs,
    cards: CardsFile = Path("cards.tsv"),
    claims: ClaimsFile = Path("claims.toml"),
    out_path: Annotated[
        Path, typer.Option("--out", help="Verdicts CSV (never overwritten: a suffix is added).")
    ] = Path("verdicts.csv"),
    wide: O.Wide = False,
    json_out: O.Json = False,
) -> None:
    """Judge every card claim against measured results.

    Prints the verdicts and card 9's Amdahl check, and writes the verdicts CSV.

    Example: orinprof cards validate results/ --out verdicts.csv
    """
    deck = lib.read_cards(cards)
    claim_set = lib.load_claims(claims, deck)
    evidence = lib.load_evidence(results)
    verdicts = lib.validate(evidence, claim_set)
    amdahl = pd.DataFrame()
    if "comparison" in evidence.tables:
        amdahl = lib.amdahl_check(evidence.tables["comparison"], lib.amdahl_claim_from(claim_set))
    written = lib.write_verdicts(verdicts, out_path)
    if json_out:
        emit_json({"verdicts": T.json_records(verdicts), "amdahl": T.json_records(amdahl), "written": str(written)})
        return
    T.show(out, verdicts, VERDICTS, "Card claims vs measurements", wide=wide, key_count=1)
    if len(amdahl):
        T.show(out, amdahl, AMDAHL, "Amdahl check, card 9 (−40 % on attention only → end-to-end)", wide=wide,
               key_count=1)  # fmt: skip
        T.note_lines(out, "Flags:", [str(f) for f in amdahl["flag"][amdahl["flag"] != ""].unique()])
    out.print(f"verdicts written to {written}", soft_wrap=True, highlight=False)


@group_command(group, "export")
def export(
    evidence: Annotated[list[Path], typer.Option("--evidence", help="Run directories or verdicts.csv.")] = [],  # noqa: B006
    out_path: Annotated[Path, typer.Option("--out", help="deck.apkg (Anki package) or deck.tsv (Anki text).")] = Path(
        "deck.apkg"
    ),
    cards: CardsFile = Path("cards.tsv"),
    claims: ClaimsFile = Path("claims.toml"),
) -> None:
    """Export the deck to Anki, backs extended by the evidence.

    Example: orinprof cards export --evidence results/ --out deck.apkg
    """
    deck = lib.read_cards(cards)
    claim_set = lib.load_claims(claims, deck)
    verdicts = lib.verdicts_from(evidence, claim_set) if evidence else None
    written = lib.export_deck(deck, out_path, verdicts, claim_set)
    out.print(f"{len(deck.cards)} notes written to {written}")


OUTLIERS = (
    T.value("layer"),
    T.text("top_dims", "top dims"),
    T.with_ci(
        "top ÷ median [95% CI]", "top_to_median_ratio", [("top_to_median_ratio_ci_low", "top_to_median_ratio_ci_high")],
        one_line=True,
    ),
)  # fmt: skip


@group_command(group, "outliers")
def outliers(
    model: Annotated[str, typer.Option("--model", help="Pretrained BERT preset.")] = "minilm-l6",
    top_fraction: Annotated[float, typer.Option("--top-fraction", help="Share of dimensions counted as 'top'.")] = 0.01,
    out_path: Annotated[Path, typer.Option("--out", help="outliers CSV (never overwritten).")] = Path("outliers.csv"),
    wide: O.Wide = False,
) -> None:
    """Card 3: per-dimension activation magnitudes of a real model.

    Measures the hidden states of a pretrained model and how far its top dimensions stand out.

    Example: orinprof cards outliers --model minilm-l6 --out outliers.csv
    """
    table = lib.outlier_experiment(model, top_fraction)
    written = lib.write_table_file(table, "outliers", out_path)
    T.show(out, table, OUTLIERS, "Card 3: activation outliers per layer", wide=wide, key_count=1)
    out.print(f"Written to {written}", soft_wrap=True, highlight=False)
    out.print(f"Judge it with: orinprof cards validate {written}", soft_wrap=True, highlight=False)


PRUNING = (
    T.text("variant"),
    T.text("variant_kind", "kind"),
    T.percent("params_removed_fraction", "weights removed"),
    T.with_ci("e2e reduction [95% CI]", "e2e_reduction", [("e2e_reduction_ci_low", "e2e_reduction_ci_high")],
              percent=True, sign=True, one_line=True),
    T.text("baseline_run_id", "vs run", wide=True),
)  # fmt: skip


@group_command(group, "pruning")
def pruning(
    model: Annotated[str, typer.Option("--model", "-m", help="BERT preset, or a variant: bert-tiny[num_layers=4].")] = (
        "bert-base"
    ),
    seq: Annotated[int | None, typer.Option("--seq", help="Sequence length (default: the preset's).")] = None,
    backend: O.Backend = "onnxruntime",
    device: O.Device = "cpu",
    iterations: O.Iterations = 20,
    warmup_s: O.WarmupS = 1.0,
    profile_iterations: O.ProfileIterations = 2,
    results_dir: O.ResultsDir = Path("results"),
    models_dir: O.ModelsDir = Path("models"),
    wide: O.Wide = False,
) -> None:
    """Cards 6 and 10: time pruned variants against the dense model.

    Times the dense model, 50 % zeroed weights, fewer heads + smaller FFN, one layer fewer and the
    matching fewer heads (fp32, same backend), and writes the pruning table.

    Example: orinprof cards pruning --model bert-base --seq 128
    """
    from dataclasses import replace

    from orinprof.cli.progress import duration, time_left
    from orinprof.measure import Reporter, profile

    class StagesUnsaid(Reporter):
        def stage(self, message: str) -> None:
            pass

    cfg = O.profile_config(
        model=model, precisions=("fp32",), seq=str(seq) if seq else None, backend=backend, device=device,
        iterations=iterations, warmup_s=warmup_s, profile_iterations=profile_iterations, telemetry="none",
        results_dir=results_dir, models_dir=models_dir,
        rounds=1,  # one profile call is one block of the experiment's own interleaved rounds
    )  # fmt: skip

    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        left = time_left(time.monotonic() - started, done, total)
        eta = "" if left is None else f", about {duration(left)} left"
        err_console.print(f"[dim]pruning: {done}/{total} models timed{eta}[/dim]")

    def profile_run(name: str) -> Path:
        # the experiment reports its own progress (above); each run's stages would bury it
        return Path(profile(replace(cfg, model=name), StagesUnsaid()).run_dir)

    run_dir, table = lib.pruning(model, profile_run, results_dir, cfg.command, progress)
    T.show(out, table, PRUNING, "Cards 6 and 10: pruned variants (positive = faster than the reference)",
           wide=wide, key_count=1)  # fmt: skip
    out.print(f"Results: {run_dir}", soft_wrap=True, highlight=False)
    out.print(f"Judge them with: orinprof cards validate {run_dir}", soft_wrap=True, highlight=False)
