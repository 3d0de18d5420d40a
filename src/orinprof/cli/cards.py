"""``orinprof cards …``: validate the drill cards' claims against results, export the deck to Anki,
and run card 3's activation-outlier experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table as RichTable

from orinprof import cards as lib
from orinprof.cli.app import RunDirs, group_command, out, sub_app

group = sub_app("cards", "Drill cards: claims → verdicts with evidence, the Amdahl check, Anki export.")

CardsFile = Annotated[Path, typer.Option("--cards", help="Anki text file with the drill cards.")]
ClaimsFile = Annotated[Path, typer.Option("--claims", help="Claims file (TOML) mapping cards to metrics.")]

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
