"""Anki export: the .apkg is Anki's format (a zip holding collection.anki2 with ten notes) and
note GUIDs are stable across exports, so re-importing updates notes."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import genanki
import pandas as pd

from conftest import REPO
from factories import comparison_row
from orinprof.cards import export_deck, load_claims, parse_cards, read_cards, validate


def _notes(apkg: Path, tmp: Path) -> list[tuple[str, str]]:
    with zipfile.ZipFile(apkg) as z:
        assert "collection.anki2" in z.namelist()
        z.extract("collection.anki2", tmp)
    con = sqlite3.connect(tmp / "collection.anki2")
    try:
        return con.execute("select guid, flds from notes order by id").fetchall()
    finally:
        con.close()


def test_apkg_holds_ten_notes_with_stable_guids_and_evidence(tmp_path: Path) -> None:
    deck = read_cards(REPO / "cards.tsv")
    claims = load_claims(REPO / "claims.toml", deck)
    row = comparison_row(
        run_id="20250301T101010-m-onnxruntime-aa11",
        baseline_run_id="b",
        model="bert-tiny",
        backend="onnxruntime",
        device="AMD EPYC",
        batch=1,
        seq_len=64,
        baseline="fp32",
        precision="int8-attn",
        attention_reduction=0.21,
        attention_reduction_ci_low=0.2,
        attention_reduction_ci_high=0.22,
    )
    verdicts = validate({"comparison": pd.DataFrame([row])}, claims)
    first = export_deck(deck, tmp_path / "deck.apkg", verdicts, claims)
    second = export_deck(deck, tmp_path / "deck.apkg", None, claims)
    assert second.name == "deck-1.apkg"  # never overwritten
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    notes1, notes2 = _notes(first, tmp_path / "a"), _notes(second, tmp_path / "b")
    assert len(notes1) == len(notes2) == 10
    assert [g for g, _ in notes1] == [g for g, _ in notes2] == [genanki.guid_for(c.front) for c in deck.cards]
    card9 = notes1[8][1].split("\x1f")
    assert card9[0] == deck.card(9).front
    assert "measured-off-target" in card9[1] and "AMD EPYC" in card9[1] and "2025-03-01" in card9[1]
    assert "No measurable latency claim" in notes1[0][1]


def test_tsv_export_reimports_with_same_guids(tmp_path: Path) -> None:
    deck = read_cards(REPO / "cards.tsv")
    out = export_deck(deck, tmp_path / "deck.tsv")
    again = parse_cards(out.read_text())
    assert again.headers["guid column"] == "1"
    assert len(again.cards) == 10
    lines = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert lines[0].split("\t")[0] == genanki.guid_for(deck.cards[0].front)
