"""The typer app, shared options and the error boundary.

Every command module registers through :func:`command`, which turns an :class:`OrinprofError`
into one line on stderr and exit status 1 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from orinprof.errors import OrinprofError

app = typer.Typer(
    name="orinprof",
    help="What does INT8 really buy a transformer, layer by layer, on Jetson AGX Orin (or the GPU/CPU you have)?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def command(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``@app.command`` plus the error boundary."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except OrinprofError as error:
                if _state["debug"]:
                    raise
                fail(error)
            except KeyboardInterrupt:
                sys.stderr.write("orinprof: interrupted; finished results were kept\n")
                raise typer.Exit(130) from None

        app.command(*args, **kwargs)(wrapper)
        return func

    return decorate


def sub_app(name: str, help: str) -> typer.Typer:
    """A command group (``orinprof cards …``, ``orinprof ingest …``) sharing the error boundary."""
    group = typer.Typer(name=name, help=help, no_args_is_help=True, pretty_exceptions_enable=False)
    app.add_typer(group, name=name)
    return group


def group_command(group: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except OrinprofError as error:
                if _state["debug"]:
                    raise
                fail(error)

        group.command(*args, **kwargs)(wrapper)
        return func

    return decorate


# ----------------------------------------------------------------------------- shared options
ResultsDir = Annotated[
    Path, typer.Option("--results-dir", help="Where run directories are created (never overwritten).")
]
ModelsDir = Annotated[Path, typer.Option("--models-dir", help="Cache of exported ONNX files.")]
RunDirs = Annotated[list[Path], typer.Argument(help="Run directories (or folders holding them).")]
