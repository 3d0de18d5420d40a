"""Telemetry: samplers that run beside a timing run, and the run fingerprint.

Interface used by :mod:`orinprof.measure` (keep it stable):

* ``open_session(source="auto", interval_s=0.1) -> TelemetrySession`` – a context manager that
  starts a background sampler on enter and stops it on exit.  It never raises for missing
  hardware unless the user named that source explicitly.
* ``TelemetrySession.source`` – the reader actually used (``none`` when nothing is available).
* ``TelemetrySession.samples() -> DataFrame`` – long table ``t_s, source, channel, value, unit``.
* ``TelemetrySession.summarize(t_start, t_end, iterations) -> dict`` – summary columns for the
  timed window (power, energy per inference, clocks, temperatures) and ``trust_flags``.
* ``fingerprint() -> dict`` – device/software fingerprint recorded in ``run.json``.

This file is the minimal implementation (``none`` only); the telemetry readers replace it.
"""

from __future__ import annotations

import platform
from types import TracebackType
from typing import Any

import pandas as pd

SAMPLE_COLUMNS = ("t_s", "source", "channel", "value", "unit")


class TelemetrySession:
    source = "none"

    def __enter__(self) -> TelemetrySession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def samples(self) -> pd.DataFrame:
        return pd.DataFrame(columns=list(SAMPLE_COLUMNS))

    def summarize(self, t_start: float, t_end: float, iterations: int) -> dict[str, Any]:
        return {"telemetry_source": self.source}


def open_session(source: str = "auto", interval_s: float = 0.1) -> TelemetrySession:
    return TelemetrySession()


def fingerprint() -> dict[str, Any]:
    return {"platform": platform.platform(), "machine": platform.machine()}
