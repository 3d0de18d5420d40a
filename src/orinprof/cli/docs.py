"""``python -m orinprof.cli.docs > docs/cli.md``: every command's ``--help``, as the CLI prints it
at 80 columns (sqlite-utils' generated CLI reference; ``tests/cli/test_docs.py`` fails when the
file is stale)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

WIDTH = 80


def _subcommands(command: Any) -> dict[str, Any]:
    return dict(getattr(command, "commands", {}))  # typer's groups carry their commands; leaves none


def walk(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``group``, depth first, in registration order."""
    for name, sub in _subcommands(group).items():
        yield (*path, name), sub
        yield from walk(sub, (*path, name))


def root_command() -> Any:
    from orinprof.cli import app

    return typer.main.get_command(app)


def commands() -> list[tuple[str, Any]]:
    """``[("profile", cmd), ("cards validate", cmd), …]``: leaf commands (not groups)."""
    return [(" ".join(path), cmd) for path, cmd in walk(root_command()) if not _subcommands(cmd)]


def help_text(path: str) -> str:
    """``orinprof <path> --help`` as printed in an 80-column terminal."""
    root = root_command()
    ctx = root.context_class(root, info_name="orinprof", terminal_width=WIDTH, max_content_width=WIDTH)
    command = root
    for name in path.split():
        command = _subcommands(command)[name]
        ctx = command.context_class(command, info_name=name, parent=ctx, terminal_width=WIDTH, max_content_width=WIDTH)
    return str(command.get_help(ctx))


def markdown() -> str:
    lines = [
        "# Command reference",
        "",
        "Generated from the CLI itself by `python -m orinprof.cli.docs > docs/cli.md`",
        "(a test fails when it is stale). Every table a command prints fits the",
        "terminal: `--wide` adds every column, and rows become `key: value` lines",
        "when even the default columns do not fit.",
        "",
        "```",
        help_text("").rstrip(),
        "```",
        "",
    ]
    for path, _ in commands():
        lines += [f"## orinprof {path}", "", "```", help_text(path).rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
