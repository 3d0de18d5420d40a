"""``orinprof`` command line: one thin function per verb over the library.

Command modules register themselves on import; a module whose import fails (a bug, or a missing
optional package at import time) is reported instead of breaking the whole CLI.
"""

from __future__ import annotations

import importlib
import logging

from orinprof.cli.app import app

_COMMAND_MODULES = (
    "orinprof.cli.spine",
    "orinprof.cli.trt",
    "orinprof.cli.doctor",
    "orinprof.cli.sweep",
    "orinprof.cli.report",
    "orinprof.cli.project",
    "orinprof.cli.telemetry",
    "orinprof.cli.cards",
    "orinprof.cli.ingest",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _err:
        if _err.name != _name:  # the module exists but something it imports does not
            logging.getLogger(__name__).warning("commands in %s unavailable: %s", _name, _err)


def main() -> None:
    app(prog_name="orinprof")


__all__ = ["app", "main"]
