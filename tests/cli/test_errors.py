"""One error boundary for every command: OrinprofError → one line, exit 1; Ctrl-C → exit 130 saying
finished results were kept (``orinprof cards pruning`` used to end with click's bare "Aborted!")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orinprof.cli import app
from orinprof.cli.docs import commands

runner = CliRunner()


def _callbacks(typer_app: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found = [(prefix + (c.name or c.callback.__name__), c.callback) for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        found += _callbacks(group.typer_instance, prefix + group.name + " ")
    return found


def test_every_command_is_inside_the_error_boundary() -> None:
    registered = _callbacks(app)
    assert {name for name, _ in registered} == {path for path, _ in commands()}
    for name, callback in registered:
        assert getattr(callback, "error_boundary", False), f"orinprof {name} bypasses the error boundary"


def _interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("target", "argv"),
    [
        ("orinprof.cards.pruning", ["cards", "pruning", "--model", "bert-tiny[num_layers=4]"]),
        ("orinprof.measure.profile", ["profile", "--model", "bert-tiny"]),
        ("orinprof.measure.profile", ["sweep-seq", "--model", "bert-tiny", "--seq", "16"]),
        ("orinprof.compare.compare_runs", ["compare", "results"]),
    ],
)
def test_ctrl_c_exits_130_saying_what_was_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str, argv: list[str]
) -> None:
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(f"{module}.{name}", _interrupt)
    result = runner.invoke(app, [*argv, *(["--results-dir", str(tmp_path)] if argv[0] != "compare" else [])])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "orinprof: interrupted; finished results were kept"
    assert "Aborted" not in result.output
