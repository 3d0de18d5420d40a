"""Telemetry: samplers that run beside a timing run, and the run fingerprint.

Interface used by :mod:`orinprof.measure` (keep it stable):

* ``open_session(source="auto", interval_s=0.1) -> TelemetrySession`` – a context manager that
  starts a background sampler on enter and stops it on exit.  It never raises for missing
  hardware unless the user named that source explicitly.
* ``TelemetrySession.source`` – the reader actually used (``none`` when nothing is available).
* ``TelemetrySession.samples() -> DataFrame`` – long table ``t_s, source, channel, value, unit,
  status`` (the ``telemetry`` table, :mod:`orinprof.telemetry.schema`).
* ``TelemetrySession.summarize(t_start, t_end, iterations) -> dict`` – summary columns for the
  timed window (power, energy per inference, clocks, temperatures, fingerprint columns) and
  ``trust_flags``.  ``t_start``/``t_end`` are :func:`clock` (``time.perf_counter``) readings.
* ``fingerprint() -> dict`` – device/software fingerprint recorded in ``run.json``.

This module is the registry: reader modules are imported lazily by name, so importing
``orinprof.telemetry`` loads no device library.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from orinprof.errors import OrinprofError
from orinprof.telemetry.base import SAMPLE_COLUMNS, Probe, Reader, ReaderState, clock, samples_frame
from orinprof.telemetry.fingerprint import fingerprint as _fingerprint
from orinprof.telemetry.fingerprint import summary_columns
from orinprof.telemetry.summary import summarize_window

log = logging.getLogger(__name__)

#: name → "module:Class"; ``auto`` tries them in this order.
READERS: dict[str, str] = {
    "jtop": "orinprof.telemetry.jtop:JtopReader",
    "tegrastats": "orinprof.telemetry.tegrastats:TegrastatsReader",
    "nvml": "orinprof.telemetry.nvml:NvmlReader",
    "host": "orinprof.telemetry.host:HostReader",
}
SOURCES = ("auto", *READERS, "none")
#: jetson-stats' service is unreliable below this; ``auto`` never asks jtop for less.
JTOP_AUTO_MIN_INTERVAL_S = 0.5


@dataclass(frozen=True)
class ReaderOptions:
    """Roots, commands and stand-in modules for the readers (tests pass temporary ones)."""

    sysfs_root: Path | str = "/"
    proc_root: Path | str = "/"
    etc_root: Path | str = "/"
    tegrastats_cmd: Sequence[str] = ("tegrastats",)
    nvpmodel_cmd: Sequence[str] = ("nvpmodel", "-q")
    nvml_index: int = 0
    jtop_module: Any = None
    pynvml_module: Any = None
    psutil_module: Any = None


def make_reader(name: str, interval_s: float = 0.1, options: ReaderOptions | None = None) -> Reader:
    """Construct (and so discover) one reader.  Unknown name → :class:`OrinprofError`."""
    if name not in READERS:
        raise OrinprofError(f"unknown telemetry source {name!r}", "choose one of: " + ", ".join(SOURCES))
    opts = options or ReaderOptions()
    module_name, cls_name = READERS[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    kwargs: dict[str, Any] = {
        "jtop": {"interval_s": interval_s, "jtop_module": opts.jtop_module},
        "tegrastats": {"tegrastats_cmd": opts.tegrastats_cmd, "sysfs_root": opts.sysfs_root},
        "nvml": {"index": opts.nvml_index, "pynvml_module": opts.pynvml_module},
        "host": {"psutil_module": opts.psutil_module},
    }[name]
    reader: Reader = cls(**kwargs)
    return reader


def probe_all(options: ReaderOptions | None = None) -> dict[str, Probe]:
    """Probe every reader (for ``orinprof doctor``)."""
    out = {}
    for name in READERS:
        try:
            out[name] = make_reader(name, 1.0, options).probe()
        except Exception as err:  # a reader that cannot even be constructed is simply unavailable
            out[name] = Probe(False, f"{type(err).__name__}: {err}")
    return out


class TelemetrySession:
    """One sampler around one or more timed windows.  Use as a context manager."""

    def __init__(
        self,
        reader: Reader | None,
        interval_s: float,
        options: ReaderOptions | None = None,
        note: str = "",
        named: bool = False,
    ) -> None:
        self._reader = reader
        self.named = named
        self.interval_s = interval_s
        self.options = options or ReaderOptions()
        self.note = note
        self._fingerprint: dict[str, Any] | None = None

    @property
    def source(self) -> str:
        return self._reader.name if self._reader is not None else "none"

    @property
    def reader(self) -> Reader | None:
        return self._reader

    def __enter__(self) -> TelemetrySession:
        if self._reader is not None:
            try:
                self._reader.start(self.interval_s)
            except OrinprofError as err:
                if self.named:
                    raise
                log.warning("telemetry: %s failed to start (%s); continuing without telemetry", self.source, err)
                self.note = f"{self.source}: {err}"
                self._reader = None
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            try:
                self._reader.stop()
            except Exception as err:  # stopping a sampler must never lose the timing results
                log.warning("telemetry: stopping %s failed: %s", self.source, err)

    def samples(self) -> pd.DataFrame:
        if self._reader is None:
            return samples_frame([])
        return self._reader.samples()

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            o = self.options
            self._fingerprint = _fingerprint(
                proc_root=o.proc_root,
                etc_root=o.etc_root,
                sysfs_root=o.sysfs_root,
                nvpmodel_cmd=o.nvpmodel_cmd,
            )
        return self._fingerprint

    def state(self) -> ReaderState:
        """The reader's power mode / clocks, completed from the fingerprint where it knows nothing."""
        fp = self.fingerprint()
        own = self._reader.state if self._reader is not None else ReaderState()
        return ReaderState(
            nvpmodel_id=own.nvpmodel_id if own.nvpmodel_id is not None else fp.get("nvpmodel_id"),
            nvpmodel_name=own.nvpmodel_name or fp.get("nvpmodel_name"),
            jetson_clocks=own.jetson_clocks or fp.get("jetson_clocks"),
            throttle_temp_c=own.throttle_temp_c,
            details=dict(own.details),
        )

    def summarize(self, t_start: float, t_end: float, iterations: int) -> dict[str, Any]:
        state = self.state()
        row = summary_columns(self.fingerprint())
        row.update(
            nvpmodel_id=state.nvpmodel_id,
            nvpmodel_name=state.nvpmodel_name,
            jetson_clocks=state.jetson_clocks,
        )
        died = self._reader.died if self._reader is not None else False
        row.update(summarize_window(self.samples(), t_start, t_end, iterations, self.source, state, died))
        return row


def open_session(
    source: str = "auto", interval_s: float = 0.1, options: ReaderOptions | None = None
) -> TelemetrySession:
    """Choose a reader.  ``auto``: jtop → tegrastats → nvml → host → none, one log line saying which
    and why the others were skipped.  A named source that is unavailable raises."""
    if source not in SOURCES:
        raise OrinprofError(f"unknown telemetry source {source!r}", "choose one of: " + ", ".join(SOURCES))
    if not interval_s > 0:
        raise OrinprofError(f"telemetry interval must be positive (got {interval_s})", "use e.g. 0.1")
    opts = options or ReaderOptions()
    if source == "none":
        return TelemetrySession(None, interval_s, opts)
    if source != "auto":
        reader = make_reader(source, interval_s, opts)
        probe = reader.probe()
        if not probe.ok:
            raise OrinprofError(
                f"telemetry source {source!r} is not available: {probe.reason}",
                "use --telemetry auto (falls back) or --telemetry none",
            )
        return TelemetrySession(reader, interval_s, opts, named=True)
    skipped: list[str] = []
    for name in READERS:
        wanted = max(interval_s, JTOP_AUTO_MIN_INTERVAL_S) if name == "jtop" else interval_s
        try:
            reader = make_reader(name, wanted, opts)
            probe = reader.probe()
        except Exception as err:  # discovery must not break a run; try the next source
            probe = Probe(False, f"{type(err).__name__}: {err}")
        if probe.ok:
            note = "; ".join(skipped)
            log.info("telemetry: using %s%s", name, f" ({note})" if note else "")
            return TelemetrySession(reader, wanted, opts, note)
        skipped.append(f"{name}: {probe.reason}")
    note = "; ".join(skipped)
    log.warning("telemetry: no source available, continuing without (%s)", note)
    return TelemetrySession(None, interval_s, opts, note)


def fingerprint(**roots: Any) -> dict[str, Any]:
    """Device/software fingerprint for ``run.json`` (see :mod:`orinprof.telemetry.fingerprint`)."""
    return _fingerprint(**roots)


__all__ = [
    "READERS",
    "SAMPLE_COLUMNS",
    "SOURCES",
    "Probe",
    "ReaderOptions",
    "TelemetrySession",
    "clock",
    "fingerprint",
    "make_reader",
    "open_session",
    "probe_all",
    "summary_columns",
]
