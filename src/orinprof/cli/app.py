"""The typer app, its consoles and the one error boundary.

Every command registers through :func:`command` or :func:`group_command`, which wrap it in
:func:`error_boundary`: an :class:`OrinprofError` becomes one line on stderr and exit status 1
(``--debug`` shows the traceback instead), Ctrl-C exits 130 saying finished results were kept.
Shared options live in :mod:`orinprof.cli.options`.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from orinprof.errors import OrinprofError

# Plain click help (rich_markup_mode=None): rich's help panels give option descriptions a
# quarter of an 80-column terminal, a word or two per line; click's layout gives them half.
CONTEXT = {"max_content_width": 100}

app = typer.Typer(
    name="orinprof",
    help="What does INT8 really buy a transformer, layer by layer, on Jetson AGX Orin (or the GPU/CPU you have)?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)

out = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_state = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Debug logging.")] = False,
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("orinprof")
    root.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.propagate = False


def fail(error: OrinprofError) -> None:
    sys.stderr.write(f"orinprof: error: {error.one_line()}\n")
    sys.stderr.flush()
    raise typer.Exit(1)


INTERRUPTED = "orinprof: interrupted; finished results were kept\n"


def _fit_consoles() -> None:
    """Size both consoles to the terminal at each command (the consoles outlive one invocation,
    and ``COLUMNS`` or the window may have changed since they were made)."""
    width = shutil.get_terminal_size().columns
    for console in (out, err_console):
        console.width = width


def error_boundary(func: F) -> F:
    """Every command's one error policy: an :class:`OrinprofError` is one line on stderr and exit 1
    (``--debug`` re-raises it); Ctrl-C says what was kept and exits 130 (128 + SIGINT)."""

    @functools.wraps(func)
    def wrapper(*a: Any, **kw: Any) -> Any:
        _fit_consoles()
        try:
            return func(*a, **kw)
        except OrinprofError as error:
            if _state["debug"]:
                raise
            fail(error)
        except KeyboardInterrupt:
            sys.stderr.write(INTERRUPTED)
            sys.stderr.flush()
            raise typer.Exit(130) from None

    wrapper.error_boundary = True  # type: ignore[attr-defined]  # tests/cli/test_errors.py checks every command
    return wrapper  # type: ignore[return-value]


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``@app.command`` plus the error boundary."""
    return group_command(app, *args, **kwargs)


def sub_app(name: str, help: str) -> typer.Typer:
    """A command group (``orinprof cards …``, ``orinprof ingest …``) sharing the error boundary."""
    group = typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=CONTEXT,
    )
    app.add_typer(group, name=name)
    return group


def group_command(group: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``@group.command`` plus the error boundary."""

    def decorate(func: F) -> F:
        group.command(*args, **kwargs)(error_boundary(func))
        return func

    return decorate


def emit_json(payload: Any) -> None:
    """``--json``: the one thing on stdout (NaN already turned to null by :func:`tables.json_records`)."""
    sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n")
    sys.stdout.flush()


__all__ = ["app", "command", "emit_json", "err_console", "error_boundary", "group_command", "out", "sub_app"]
