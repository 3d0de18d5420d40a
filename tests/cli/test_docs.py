"""The CLI documents itself (sqlite-utils' tests/test_docs.py idea): every command has help, is in
the README's Commands table and in the generated docs/cli.md; every registry entry is in --help."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from orinprof.backends import BACKENDS
from orinprof.cli.docs import commands, help_text, markdown
from orinprof.plans import PLAN_NAMES
from orinprof.quantize import RECIPE_CHOICES
from orinprof.telemetry import SOURCES

COMMANDS = [path for path, _ in commands()]


def _readme_commands() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("## Commands", 1)[1].split("\n## ", 1)[0]


def test_the_walk_finds_every_command() -> None:
    assert {"profile", "compare", "cards validate", "cards pruning", "sweep-seq", "doctor", "project"} <= set(COMMANDS)
    assert "cards" not in COMMANDS  # groups are not commands


@pytest.mark.parametrize("path", COMMANDS)
def test_command_has_help_and_an_example(path: str) -> None:
    (command,) = [c for p, c in commands() if p == path]
    assert command.help and command.help.strip(), f"orinprof {path} has no help text"
    assert f"Example: orinprof {path}" in help_text(path)


@pytest.mark.parametrize("path", COMMANDS)
def test_command_is_in_the_readme_commands_table(path: str) -> None:
    # `orinprof cards validate …` / `cards export`: a group's later commands may drop the prefix
    named = rf"`(orinprof )?{re.escape(path)}\b" if " " in path else rf"`orinprof {re.escape(path)}\b"
    assert re.search(named, _readme_commands()), f"README's Commands table lacks {path}"


def test_docs_cli_md_is_current() -> None:
    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == markdown(), "docs/cli.md is stale: python -m orinprof.cli.docs > docs/cli.md"


@pytest.mark.parametrize(
    ("registry", "names"),
    [
        ("backend", list(BACKENDS)),
        ("plan", list(PLAN_NAMES)),
        ("telemetry", list(SOURCES)),
        ("INT8 recipe", list(RECIPE_CHOICES)),
    ],
)
def test_profile_help_names_every_registry_entry(registry: str, names: list[str]) -> None:
    text = " ".join(help_text("profile").split())
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{registry} {name!r} not in profile --help"
