"""``cards.tsv``: read and write Anki's plain-text import format.

Format (Anki manual, "Importing → Text files"): optional header lines at the top of the file,
``#key:value`` (``#separator:tab``, ``#html:true``, ``#deck:…``, ``#notetype:…``, ``#columns:…``,
``#tags:…``, ``#guid column:N`` …), then one note per record.  Fields are separated by the
separator; a field holding the separator, a newline or a double quote is wrapped in double quotes,
with inner quotes doubled (``""``).  That quoting is the only way to escape a tab.  With
``#html:true`` fields are HTML, so ``&#9;`` / ``&lt;`` stay entities in the field text.

Parsing uses the standard :mod:`csv` module (strict mode) rather than a hand-written splitter; we
only add line numbers and the header block.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

DECK_NAME = "Tokens to Embodied Minds · Ch 11"

#: Anki's named separators (``#separator:Tab`` etc.); a single literal character is accepted too.
_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|", "colon": ":"}
_SEPARATOR_NAMES = {v: k for k, v in _SEPARATORS.items()}
_KNOWN_HEADERS = {
    "separator",
    "html",
    "deck",
    "notetype",
    "columns",
    "tags",
    "guid column",
    "notetype column",
    "deck column",
    "tags column",
}


@dataclass(frozen=True)
class Card:
    """One note of the deck.  ``number`` is its 1-based position; ``line`` where its record starts."""

    number: int
    front: str
    back: str
    line: int


@dataclass(frozen=True)
class CardDeck:
    cards: tuple[Card, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    source: str = "cards.tsv"

    @property
    def html(self) -> bool:
        return self.headers.get("html", "false").strip().lower() == "true"

    @property
    def deck_name(self) -> str:
        return self.headers.get("deck", DECK_NAME)

    def card(self, number: int) -> Card:
        for c in self.cards:
            if c.number == number:
                return c
        raise OrinprofError(f"{self.source} has no card {number}", f"it holds cards 1–{len(self.cards)}")


def _malformed(source: str, line: int, what: str, hint: str | None = None) -> OrinprofError:
    return OrinprofError(f"{source}:{line}: {what}", hint or "fix that line of the cards file")


def parse_cards(text: str, source: str = "cards.tsv") -> CardDeck:
    """Parse the text of a cards file (BOM, CRLF or LF, quoted fields, header lines)."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    headers: dict[str, str] = {}
    n_header = 0
    for raw in lines:
        if not raw.startswith("#"):
            break
        n_header += 1
        body = raw[1:].rstrip("\r\n")
        key, sep, value = body.partition(":")
        if not sep:
            raise _malformed(source, n_header, f"header line {raw.strip()!r} has no ':'", "write it as #key:value")
        key = key.strip().lower()
        if key not in _KNOWN_HEADERS:
            log.warning("%s:%d: unknown header %r ignored", source, n_header, key)
        headers[key] = value
    separator = _separator(headers.get("separator", "tab"), source, headers)
    columns = _columns(headers, separator)
    if "html" in headers and headers["html"].strip().lower() not in ("true", "false"):
        raise _malformed(source, _header_line(lines, "html"), f"#html must be true or false, not {headers['html']!r}")

    body_text = "".join(lines[n_header:])
    reader = csv.reader(io.StringIO(body_text, newline=""), delimiter=separator, quotechar='"', strict=True)
    cards: list[Card] = []
    last_line = 0
    while True:
        start = n_header + last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise _malformed(
                source, start, f"malformed record ({err})", 'quote fields as "…" and double inner quotes'
            ) from err
        last_line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) == 1 and row[0].startswith("#"):
            continue  # a comment line after the header block
        if len(row) != len(columns):
            sep_name = _SEPARATOR_NAMES.get(separator, repr(separator))
            raise _malformed(
                source,
                start,
                f"expected {len(columns)} {sep_name}-separated fields ({', '.join(columns)}), found {len(row)}",
                'quote a field that contains the separator: "a<TAB>b"',
            )
        row = [v.replace("\r\n", "\n") for v in row]  # CRLF files: newlines inside quoted fields too
        values = dict(zip(columns, row, strict=True))
        front, back = values.get("Front", row[0]), values.get("Back", row[1] if len(row) > 1 else "")
        if not front.strip():
            raise _malformed(source, start, "empty Front field")
        cards.append(Card(number=len(cards) + 1, front=front, back=back, line=start))
    if not cards:
        raise OrinprofError(f"{source} holds no cards", "add tab-separated Front/Back lines")
    fronts = [c.front for c in cards]
    for c in cards:
        if fronts.count(c.front) > 1:
            raise _malformed(source, c.line, "duplicate Front (note GUIDs come from the Front, so it must be unique)")
    return CardDeck(cards=tuple(cards), headers=headers, source=source)


def _header_line(lines: Sequence[str], key: str) -> int:
    for i, raw in enumerate(lines, start=1):
        if raw.lower().startswith(f"#{key}:"):
            return i
    return 1


def _separator(value: str, source: str, headers: Mapping[str, str]) -> str:
    name = value.strip("\r\n")
    if name.strip().lower() in _SEPARATORS:
        return _SEPARATORS[name.strip().lower()]
    if len(name) == 1:
        return name
    raise OrinprofError(
        f"{source}: #separator {name!r} is not a separator",
        "use one of " + ", ".join(s.capitalize() for s in _SEPARATORS) + " or a single character",
    )


def _columns(headers: Mapping[str, str], separator: str) -> list[str]:
    if "columns" not in headers:
        return ["Front", "Back"]
    return [c.strip() for c in headers["columns"].split(separator)]


def read_cards(path: Path) -> CardDeck:
    """Read ``cards.tsv`` (or another Anki text file); errors name ``FILE:LINE``."""
    path = Path(path)
    if not path.is_file():
        raise OrinprofError(f"cards file {path} not found", "pass --cards PATH (the repository has cards.tsv)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise OrinprofError(f"{path} is not UTF-8 text", "Anki text files must be UTF-8; re-save it as UTF-8") from err
    return parse_cards(text, source=path.name)


def format_cards(
    cards: Sequence[tuple[str, str]],
    deck: str = DECK_NAME,
    notetype: str = "Basic",
    guids: Sequence[str] | None = None,
) -> str:
    """Anki text with header lines; fields are written as given (HTML) and quoted where needed."""
    columns = ["Front", "Back"]
    header = ["#separator:tab", "#html:true"]
    if guids is not None:
        header.append("#guid column:1")
        columns = ["GUID", *columns]
    header += [f"#deck:{deck}", f"#notetype:{notetype}", "#columns:" + "\t".join(columns)]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for i, (front, back) in enumerate(cards):
        row = [front, back] if guids is None else [guids[i], front, back]
        if any(v.startswith("#") for v in row[:1]):
            row[0] = f"&#35;{row[0][1:]}"  # a leading '#' would read as a header/comment line
        writer.writerow(row)
    return "\n".join(header) + "\n" + buf.getvalue()


_TAG = re.compile(r"<[^>]+>")


def plain_text(field_html: str) -> str:
    """An HTML field as one line of plain text (for terminal tables)."""
    text = _TAG.sub(" ", field_html.replace("<br>", " "))
    return " ".join(html.unescape(text).split())
