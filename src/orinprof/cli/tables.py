"""One DataFrame → terminal table helper for every command.

A command describes the columns that answer its question as :class:`Col` specs (a header, the
DataFrame columns the cell needs, how to write the cell).  :func:`show` then

* keeps a spec only when the frame has every column it needs (the library's tables grow: a
  column appears when it exists, in the order of the preference list, and no command breaks
  when one is missing);
* with ``wide=True`` adds every remaining column of the frame, written by :func:`format.text`;
* moves columns that hold one value in every row into a caption line (``model: bert-base``);
* measures the table against the console: numbers are never wrapped or cut (``no_wrap`` and a
  minimum width of their widest cell), text columns wrap at word boundaries; when even that does
  not fit, it prints each row as ``key: value`` lines instead (the vertical layout).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from orinprof.cli import format as fmt

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Col:
    """One column of a printed table.

    ``needs``: DataFrame columns the cell reads (the column is shown only when all exist).
    ``cell``: row → text; a ``\\n`` splits a cell over lines (used for CIs under their point).
    ``numeric``: never wrapped, right-aligned.  ``wide``: shown only with ``--wide``.
    """

    header: str
    needs: tuple[str, ...]
    cell: Callable[[Row], str]
    numeric: bool = True
    wide: bool = False
    style: Callable[[Row], str] | None = None
    also: tuple[str, ...] = ()  # further columns the cell reads when present (a CI's bounds)
    fold_to: int | None = None  # text: may fold long words down to this width (node names, paths)
    sparse: bool = False  # an empty cell means "not applicable": one value elsewhere still hoists


def value(column: str, header: str | None = None, *, wide: bool = False) -> Col:
    """A plain value (numbers at 3 significant figures)."""
    return Col(header or header_for(column), (column,), lambda r: fmt.text(r[column]), _numeric_name(column), wide)


def number(column: str, header: str | None = None, *, wide: bool = False, sign: bool = False) -> Col:
    return Col(header or header_for(column), (column,), lambda r: fmt.num(r[column], sign), True, wide)


def integer(column: str, header: str | None = None, *, wide: bool = False) -> Col:
    """A count or size (sequence length, layers, rounds): whole."""
    return Col(header or header_for(column), (column,), lambda r: fmt.count(r[column]), True, wide)


def percent(column: str, header: str | None = None, *, wide: bool = False, sign: bool = False) -> Col:
    return Col(header or header_for(column), (column,), lambda r: fmt.pct(r[column], sign), True, wide)


def with_ci(
    header: str,
    point: str,
    bounds: Sequence[tuple[str, str]],
    *,
    percent: bool = False,
    sign: bool = False,
    wide: bool = False,
    one_line: bool = False,
) -> Col:
    """A point with its CI at the same precision; ``bounds`` lists (low, high) column names in
    order of preference (the first pair the frame has is used; without one, the point alone)."""

    def cell(r: Row) -> str:
        for low, high in bounds:
            if low in r and high in r:
                return fmt.ci_text(r[point], r[low], r[high], percent, sign, " " if one_line else "\n")
        return fmt.ci_text(r[point], None, None, percent, sign)

    return Col(header, (point,), cell, True, wide, also=tuple(name for pair in bounds for name in pair))


def text(column: str, header: str | None = None, *, wide: bool = False, fold_to: int | None = None) -> Col:
    return Col(header or header_for(column), (column,), lambda r: fmt.text(r[column]), False, wide, fold_to=fold_to)


_HEADERS = {"seq_len": "seq", "precision": "plan", "layer_class": "class", "fidelity_cosine": "cosine"}


def header_for(column: str) -> str:
    """``attention_ms`` → ``attention ms``; a few names read better renamed."""
    return _HEADERS.get(column, column.replace("_", " "))


def _numeric_name(column: str) -> bool:
    return column.endswith(("_ms", "_s", "_w", "_mj", "_c", "_mhz", "_pct")) or column in {"seq_len", "batch"}


def _generic(frame: pd.DataFrame, column: str) -> Col:
    """A column the command did not describe (``--wide``): by its dtype and name."""
    series = frame[column]
    if series.dtype == bool:
        return Col(header_for(column), (column,), lambda r: fmt.text(r[column]), False)
    if pd.api.types.is_numeric_dtype(series):
        if column in {"seq_len", "batch", "rounds", "iterations", "threads", "layers", "block"} or column.startswith(
            "gemms_"
        ):
            return integer(column)
        if column.endswith(("_share", "_reduction", "_fraction", "_over_e2e")) or "_reduction_ci_" in column:
            return percent(column)
        return number(column)
    return text(column)


@dataclass(frozen=True)
class Layout:
    """What :func:`show` decided, for tests: ``"table"`` or ``"vertical"``, and the columns shown."""

    kind: str
    headers: tuple[str, ...]


def _selected(
    frame: pd.DataFrame, cols: Iterable[Col], wide: bool, hoist: bool, key_count: int
) -> tuple[list[Col], list[str]]:
    chosen = [c for c in cols if all(n in frame.columns for n in c.needs) and (wide or not c.wide)]
    if wide:
        used = {n for c in chosen for n in (*c.needs, *c.also)}
        chosen += [
            _generic(frame, name)
            for name in frame.columns
            if name not in used and not frame[name].map(fmt.is_missing).all()  # an empty column says nothing
        ]
    captions: list[str] = []
    if hoist and len(frame) > 1:
        keep = chosen[:key_count]  # the row keys stay columns
        for c in chosen[key_count:]:
            cells = {c.cell(r) for r in frame.to_dict("records")}
            if c.sparse:  # one value in every row that has one (rows without evidence have none)
                cells -= {"", fmt.MISSING}
            if len(cells) == 1 and not c.numeric:
                captions.append(f"{c.header}: {next(iter(cells))}")
            else:
                keep.append(c)
        chosen = keep
    return chosen, captions


def _words(cell: str) -> int:
    return max((len(w) for line in cell.split("\n") for w in line.split()), default=0)


def _lines(cell: str) -> int:
    return max((len(line) for line in cell.split("\n")), default=0)


@dataclass
class _Planned:
    col: Col
    cells: list[str]
    natural: int  # widest line of a cell or the header: the width needing no wrap
    minimum: int  # what the column can shrink to: numbers never; text to its longest word
    width: int = 0


def _plan_widths(planned: list[_Planned], available: int) -> bool:
    """Give each column a width so the table fits ``available`` characters of content; shrink text
    columns (widest first) down to their longest word.  False when even that does not fit."""
    for p in planned:
        p.width = p.natural
    excess = sum(p.width for p in planned) - available
    while excess > 0:
        shrinkable = [p for p in planned if p.width > p.minimum]
        if not shrinkable:
            return False
        widest = max(shrinkable, key=lambda p: p.width)
        second = max((p.width for p in shrinkable if p is not widest), default=widest.minimum)
        step = max(1, min(excess, widest.width - max(second, widest.minimum)))
        widest.width -= step
        excess -= step
    return True


def _new_table() -> Table:
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True, expand=False)


def _overhead(columns: int) -> int:
    """The table's own characters beside its cells (padding, column separators), measured on a
    table of 1-character columns rather than assumed from the box style."""
    probe = _new_table()
    for _ in range(columns):
        probe.add_column(width=1)
    probe.add_row(*("x" for _ in range(columns)))
    return Console(width=100_000).measure(probe).maximum - columns


def note_lines(console: Console, heading: str, lines: Iterable[str], style: str = "yellow") -> None:
    """A heading and indented lines whose continuation lines stay indented."""
    lines = list(lines)
    if not lines:
        return
    console.print(Text(heading, style=style))
    grid = Table.grid()
    grid.add_column(width=2)
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row("", Text(line))
    console.print(grid)


def build(
    frame: pd.DataFrame,
    cols: Iterable[Col],
    width: int,
    *,
    wide: bool = False,
    hoist: bool = True,
    key_count: int = 2,
) -> tuple[Table | None, list[Col], list[str], list[Row]]:
    """The table sized to ``width`` (None when it cannot fit), the columns, the captions, the rows."""
    chosen, captions = _selected(frame, cols, wide, hoist, key_count)
    rows = frame.to_dict("records")
    planned = []
    for c in chosen:
        cells = [c.cell(r) for r in rows]
        natural = max([_lines(x) for x in cells] + [len(c.header)])
        header_word = _words(c.header)
        if c.numeric:  # cells never wrap; the header may, at its spaces
            minimum = max([_lines(x) for x in cells] + [header_word])
        else:
            longest = max([_words(x) for x in cells] + [8])
            minimum = max(header_word, min(natural, longest, c.fold_to or longest))
        planned.append(_Planned(c, cells, natural, max(minimum, header_word)))
    if not _plan_widths(planned, width - _overhead(len(planned))):
        return None, chosen, captions, rows
    table = _new_table()
    table.leading = 1 if any("\n" in x for p in planned for x in p.cells) else 0  # rows of two lines
    for p in planned:
        header = textwrap.fill(p.col.header, p.width) if p.col.numeric else p.col.header
        table.add_column(
            header,
            justify="right" if p.col.numeric else "left",
            width=p.width,
            no_wrap=p.col.numeric,
            overflow="fold",  # a word longer than its column folds; nothing is cut to "…"
        )
    for i, r in enumerate(rows):
        table.add_row(*(Text(p.cells[i], style=p.col.style(r) if p.col.style else "") for p in planned))
    return table, chosen, captions, rows


def _vertical(chosen: list[Col], rows: list[Row], key_count: int, width: int) -> RenderableType:
    parts: list[RenderableType] = []
    keys, rest = chosen[:key_count], chosen[key_count:]
    label_width = max((len(c.header) + 3 for c in rest), default=0)  # "  header:"
    for r in rows:
        # a number needs its header to mean something ("seq 128"); a name reads alone
        heading = " · ".join(f"{c.header} {c.cell(r)}" if c.numeric else c.cell(r) for c in keys)
        parts.append(Text(heading, style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for c in rest:
            cell = c.cell(r)
            if not cell.strip():
                continue
            if c.numeric and _lines(cell.replace("\n", " ")) + label_width + 1 <= width:
                cell = cell.replace("\n", " ")  # point and CI on one line when they fit
            elif c.numeric:
                cell = cell.replace(" [", "\n[")  # else the CI under its point, never split inside
            grid.add_row(f"  {c.header}:", Text(cell, style=c.style(r) if c.style else ""))
        parts.append(grid)
    return Group(*parts)


def show(
    console: Console,
    frame: pd.DataFrame,
    cols: Iterable[Col],
    title: str | None = None,
    *,
    wide: bool = False,
    hoist: bool = True,
    key_count: int = 2,
) -> Layout:
    """Print ``title``, the one-value columns as a caption line, then ``frame`` as a table that fits
    ``console.width`` — or, when it cannot, each row as ``key: value`` lines."""
    table, chosen, captions, rows = build(frame, cols, console.width, wide=wide, hoist=hoist, key_count=key_count)
    if title:
        console.print(Text(title, style="bold"))
    if captions:
        console.print(Text(" · ".join(captions)))
    if table is not None:
        console.print(table)
        return Layout("table", tuple(c.header for c in chosen))
    console.print(_vertical(chosen, rows, min(key_count, len(chosen)), console.width))
    return Layout("vertical", tuple(c.header for c in chosen))


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (pandas' own writer: NaN/NA → null, numpy → Python, 15 digits)."""
    return list(json.loads(frame.to_json(orient="records", double_precision=15, date_format="iso")))
