#!/usr/bin/env python3
"""``orinprof profile`` with torch-backend options the CLI has no flag for yet.

    python scripts/gpu_profile.py --torch-option attn_core=sage -- profile --backend torch ...

Everything after ``--`` is passed to the ``orinprof`` CLI unchanged; each ``--torch-option
KEY=VALUE`` (``attn_core``, ``int8_recipe``, ``class_timer``: see ``backends/torch/runner.py``) is
added to the run's backend options, and to the command recorded in ``run.json``, so the run says
how it was made.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

try:
    import orinprof  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from orinprof import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-option", action="append", default=[], metavar="KEY=VALUE")
    args, rest = parser.parse_known_args()
    if rest and rest[0] == "--":
        rest = rest[1:]
    options: dict[str, Any] = {}
    for item in args.torch_option:
        key, sep, value = item.partition("=")
        if not sep:
            sys.exit(f"--torch-option {item!r}: use KEY=VALUE")
        options[key.strip()] = value.strip()
    original = measure.profile

    def profile(cfg: measure.ProfileConfig, reporter: Any = None) -> Any:
        suffix = " ".join(f"--torch-option {k}={v}" for k, v in options.items())
        cfg = dataclasses.replace(cfg, extra={**cfg.extra, **options}, command=f"{cfg.command} [{suffix}]")
        return original(cfg, reporter)

    measure.profile = profile  # the CLI imports measure.profile when the command runs
    from orinprof.cli import main as cli_main

    sys.argv = ["orinprof", *rest]
    cli_main()


if __name__ == "__main__":
    main()
