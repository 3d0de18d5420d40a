"""Give the deck back to Anki, each card's back extended by its measured evidence.

``.apkg`` output is built with genanki (deck "Tokens to Embodied Minds · Ch 11", genanki's fixed-id
Basic model); ``.tsv`` output is Anki's text format with a GUID column.  Note GUIDs come from
``genanki.guid_for(front)`` in both, so re-importing either updates the notes instead of adding
duplicates.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from orinprof.cards.claims import Claims
from orinprof.cards.deck import CardDeck, format_cards
from orinprof.cards.verdicts import unused_path
from orinprof.errors import MissingDependency, OrinprofError

EXPORT_SUFFIXES = (".apkg", ".tsv", ".txt")


def deck_id(name: str) -> int:
    """A stable deck id from the deck name (genanki wants a fixed one in [2^30, 2^31))."""
    digest = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return (1 << 30) + digest % (1 << 30)


def note_guid(front: str) -> str:
    try:
        import genanki
    except ImportError as err:
        raise MissingDependency("genanki", "cards", "to write Anki decks") from err
    guid: str = genanki.guid_for(front)
    return guid


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "?"
    return "n/a" if math.isnan(number) else f"{number:.3g}"


def evidence_html(card: int, verdicts: pd.DataFrame | None, claims: Claims | None) -> str:
    """The block appended to a card's back: one line per claim × evidence row (escaped HTML)."""
    lines: list[str] = []
    if claims is not None:
        for skip in claims.not_measurable:
            if skip.card == card:
                lines.append(f"No measurable latency claim: {html.escape(skip.reason)}")
    if verdicts is not None and len(verdicts):
        for r in verdicts[verdicts["card"] == card].to_dict("records"):
            if r["verdict"] == "no-evidence":
                lines.append(f"<b>{html.escape(str(r['claim_id']))}</b>: no evidence yet")
                continue
            ci = f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" if pd.notna(r["ci_low"]) else ""
            where = ", ".join(html.escape(str(r[k])) for k in ("device", "backend", "model") if pd.notna(r.get(k)))
            seq = f", seq {int(r['seq_len'])}" if pd.notna(r.get("seq_len")) else ""
            date = f", {html.escape(str(r['date']))}" if pd.notna(r.get("date")) else ""
            lines.append(
                f"<b>{html.escape(str(r['claim_id']))}</b>: measured {_fmt(r['measured'])}{ci} "
                f"(claimed {_fmt(r['claimed_low'])}–{_fmt(r['claimed_high'])}) · {where}{seq}{date} · "
                f"<i>{html.escape(str(r['verdict']))}</i>"
            )
    if not lines:
        return ""
    return '<hr><div class="orinprof-evidence">orinprof evidence:<br>' + "<br>".join(lines) + "</div>"


def _fields(deck: CardDeck) -> list[tuple[str, str]]:
    if deck.html:
        return [(c.front, c.back) for c in deck.cards]
    return [(html.escape(c.front), html.escape(c.back).replace("\n", "<br>")) for c in deck.cards]


def export_deck(
    deck: CardDeck,
    out: Path,
    verdicts: pd.DataFrame | None = None,
    claims: Claims | None = None,
    timestamp: float | None = None,
) -> Path:
    """Write ``out`` (.apkg or .tsv); never overwrites (adds ``-1``, ``-2`` …).  Returns the path."""
    out = Path(out)
    if out.suffix.lower() not in EXPORT_SUFFIXES:
        raise OrinprofError(f"cannot export to {out.name}", "use an .apkg (Anki package) or .tsv (Anki text) path")
    if not out.parent.exists():
        raise OrinprofError(f"directory {out.parent} does not exist", "create it or pass another --out")
    fields = _fields(deck)
    backs = [back + evidence_html(c.number, verdicts, claims) for c, (_, back) in zip(deck.cards, fields, strict=True)]
    fronts = [f for f, _ in fields]
    guids = [note_guid(c.front) for c in deck.cards]
    target = unused_path(out)
    tmp = target.with_name(target.name + ".tmp")
    if target.suffix.lower() == ".apkg":
        _write_apkg(deck.deck_name, fronts, backs, guids, tmp, timestamp)
    else:
        tmp.write_text(
            format_cards(list(zip(fronts, backs, strict=True)), deck=deck.deck_name, guids=guids),
            encoding="utf-8",
        )
    os.replace(tmp, target)
    return target


def _write_apkg(
    name: str,
    fronts: Sequence[str],
    backs: Sequence[str],
    guids: Sequence[str],
    path: Path,
    timestamp: float | None,
) -> None:
    try:
        import genanki
    except ImportError as err:
        raise MissingDependency("genanki", "cards", "to write Anki decks") from err
    anki_deck = genanki.Deck(deck_id(name), name)
    for front, back, guid in zip(fronts, backs, guids, strict=True):
        anki_deck.add_note(genanki.Note(model=genanki.BASIC_MODEL, fields=[front, back], guid=guid))
    genanki.Package(anki_deck).write_to_file(str(path), timestamp=timestamp)
