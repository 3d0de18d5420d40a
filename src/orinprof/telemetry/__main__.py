"""Smoke-test a telemetry source on its own, e.g. on a lent GPU machine::

    python -m orinprof.telemetry --source nvml --seconds 5 --out telemetry.csv

Samples for ``--seconds``, writes the long ``telemetry`` table to ``--out`` and the summary of
the whole window (as JSON) beside it (``<out>.summary.json``), and the fingerprint into it.
Never overwrites an existing file.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

from orinprof.errors import OrinprofError
from orinprof.results import check
from orinprof.telemetry import SOURCES, clock, open_session
from orinprof.telemetry import schema as _schema  # noqa: F401  (registers the telemetry table)


def _plain(value: object) -> object:
    """NaN → null so the JSON is strict."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orinprof.telemetry", description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=SOURCES, default="auto")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=0.1, help="sampling interval in seconds")
    parser.add_argument("--iterations", type=int, default=1, help="divide the window's energy by this")
    parser.add_argument("--out", type=Path, default=Path("telemetry.csv"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    summary_path = args.out.with_name(args.out.name + ".summary.json")
    try:
        for path in (args.out, summary_path):
            if path.exists():
                raise OrinprofError(f"{path} already exists", "results are never overwritten; pass another --out")
        with open_session(args.source, args.interval) as session:
            t0 = clock()
            time.sleep(args.seconds)
            t1 = clock()
        df = check(session.samples(), "telemetry")
        df.to_csv(args.out, index=False, float_format="%.6g")
        summary = session.summarize(t0, t1, args.iterations)
        payload = {"summary": _plain(summary), "window_s": t1 - t0, "fingerprint": session.fingerprint()}
        summary_path.write_text(json.dumps(payload, indent=2, default=str))
    except OrinprofError as err:
        sys.stderr.write(f"orinprof: error: {err.one_line()}\n")
        return 1
    sys.stdout.write(json.dumps(_plain(summary), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
