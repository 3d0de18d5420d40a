"""cards.tsv parsing: Anki text headers, BOM, CRLF, quoted fields, malformed lines by number."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO
from orinprof.cards import format_cards, parse_cards, read_cards
from orinprof.errors import OrinprofError

HEADER = "#separator:tab\n#html:true\n#deck:D\n#notetype:Basic\n#columns:Front\tBack\n"


def test_repository_cards_match_the_seed_deck() -> None:
    seed = (FIXTURES / "seed" / "000_f9238a30e4d9d751.txt").read_text()
    rows = [line[2:-2].split(" | ") for line in seed.splitlines() if line.startswith("| ") and "| Front |" not in line]
    deck = read_cards(REPO / "cards.tsv")
    assert [(c.front, c.back) for c in deck.cards] == [(html.escape(f, False), html.escape(b, False)) for f, b in rows]
    assert deck.deck_name == "Tokens to Embodied Minds · Ch 11"
    assert deck.headers["notetype"] == "Basic" and deck.html


def test_bom_crlf_quotes_embedded_tab_newline_and_doubled_quotes() -> None:
    text = "\ufeff" + HEADER.replace("\n", "\r\n") + 'a\t"x\ty"\r\n"multi\r\nline"\t"say ""hi"""\r\nb<br>\t&#9;c\r\n'
    deck = parse_cards(text)
    assert [(c.front, c.back) for c in deck.cards] == [
        ("a", "x\ty"),
        ("multi\nline", 'say "hi"'),
        ("b<br>", "&#9;c"),  # HTML (and an entity-escaped tab) stays as written with #html:true
    ]
    assert [c.line for c in deck.cards] == [6, 7, 9]
    assert deck.headers["deck"] == "D"


def test_malformed_line_is_reported_by_number() -> None:
    text = HEADER + "ok\tfine\n\nonly one field\n"
    with pytest.raises(OrinprofError, match=r"cards\.tsv:8: expected 2 tab-separated fields"):
        parse_cards(text)


def test_unterminated_quote_names_the_line_where_the_record_starts() -> None:
    text = HEADER + 'ok\tfine\n"open\tnever closed\n'
    with pytest.raises(OrinprofError, match=r"cards\.tsv:7: malformed record"):
        parse_cards(text)


def test_header_without_colon_and_empty_file() -> None:
    with pytest.raises(OrinprofError, match=r"cards\.tsv:1: header line"):
        parse_cards("#separator tab\na\tb\n")
    with pytest.raises(OrinprofError, match="holds no cards"):
        parse_cards(HEADER)


def test_other_separator_and_columns_header() -> None:
    deck = parse_cards('#separator:Semicolon\n#columns:Back;Front\nback1;front1\n"b;2";f2\n')
    assert [(c.front, c.back) for c in deck.cards] == [("front1", "back1"), ("f2", "b;2")]


def test_format_then_parse_round_trips_awkward_fields() -> None:
    cards = [("q\twith tab", 'a "quoted"\nline'), ("#hash first", "x")]
    deck = parse_cards(format_cards(cards))
    assert deck.cards[0].front == "q\twith tab" and deck.cards[0].back == 'a "quoted"\nline'
    assert deck.cards[1].front == "&#35;hash first"  # a leading '#' would read as a header line


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(OrinprofError, match="not found"):
        read_cards(tmp_path / "nope.tsv")
    bad = tmp_path / "latin1.tsv"
    bad.write_bytes("caf\xe9\tx\n".encode("latin-1"))
    with pytest.raises(OrinprofError, match="not UTF-8"):
        read_cards(bad)
