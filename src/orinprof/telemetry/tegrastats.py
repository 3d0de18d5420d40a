"""tegrastats: a pure line parser and a subprocess reader.

The parser handles every form seen on Orin-class boards (see docs/telemetry.md and the recorded
lines in ``shared/fixtures/tegrastats``): JetPack 5 ``GR3D_FREQ x%@f GR3D2_FREQ y%@f`` (one field
per GPC), JetPack 6 ``GR3D_FREQ x%@[f0,f1]``, JetPack 7.2 three-value rails and lower-case
``name@cur C/max C`` temperatures, Orin NX/Nano lines (``VDD_IN``, ``off`` cores, no EMC, no GPU
frequency without sudo), a missing timestamp, runs of spaces, ``NVDLA0_FREQ @1600`` and
``-256C`` for an offline sensor.  One function per field, regexes modelled on jetson-stats'
``jtop/core/tegra_parse.py`` but written here.  Fields are found by pattern, not by position,
so a new field or a new order does not break the others.

A line that yields nothing recognisable is skipped and counted; the parser never raises.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from orinprof.errors import OrinprofError
from orinprof.telemetry.base import (
    Probe,
    Reader,
    Reading,
    clock,
    power_readings,
    samples_frame,
    temperature_reading,
    thermal_throttle_c,
)

log = logging.getLogger(__name__)

TIMESTAMP_RE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})")
RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)MB")
SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)MB")
CPU_RE = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
CPU_CORE_RE = re.compile(r"^(\d+)%(?:@(\d+))?$")
EMC_RE = re.compile(r"\bEMC_FREQ +(?:(\d+)%)?(?:@(\d+))?")
# GR3D_FREQ 0%@114 | 0%@[305,305] | 0% | @[1000,1000,1000] (Thor); GR3D2_FREQ is GPC1 on JetPack 5
GR3D_RE = re.compile(r"\b(GR3D2?)_FREQ +(?:(\d+)%)?(?:@(?:\[([0-9,]*)\]|(\d+)))?")
# engines: `VIC_FREQ 729`, `APE 174`, `NVJPG1 729`, `NVENC off`, `NVDLA0_FREQ @1600`
ENGINE_RE = re.compile(r"(?<![\w@/])([A-Z][A-Z0-9_]*) +(off|@?\d+)(?=\s|$)")
# temperatures: `CPU@43.5C`, `cv0@-256C`, JP7.2 `cpu@52.968C/52.968C` (current/max)
TEMP_RE = re.compile(r"(?<![\w@])([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?:/(-?\d+(?:\.\d+)?)C)?(?![\w.])")
# rails: `VDD_GPU_SOC 4788mW/4788mW`, JP7.2 `5139mW/5139mW/5139mW`, tolerate a missing `mW`
RAIL_RE = re.compile(r"(?<![\w@/])([A-Z][A-Z0-9_]*) +(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)")

_NOT_ENGINES = {"RAM", "SWAP", "CPU", "EMC_FREQ", "GR3D_FREQ", "GR3D2_FREQ", "IRAM", "MTS"}
#: ``NC`` = an INA3221 channel that is not connected; always 0 mW.
_NOT_RAILS = {"NC", "RAM", "SWAP", "IRAM"}


@dataclass(frozen=True)
class Core:
    online: bool
    load_pct: float = math.nan
    freq_mhz: float = math.nan


@dataclass(frozen=True)
class Rail:
    cur_mw: float
    avg_mw: float
    max_mw: float = math.nan  # JetPack 7.2's third value (cur/avg/max per jetson-stats PR #894; unverified)


@dataclass(frozen=True)
class TegraSample:
    """Everything one tegrastats line says.  NaN = the line did not say it."""

    timestamp: datetime | None = None
    ram_used_mb: float = math.nan
    ram_total_mb: float = math.nan
    swap_used_mb: float = math.nan
    cpus: tuple[Core, ...] = ()
    emc_load_pct: float = math.nan
    emc_freq_mhz: float = math.nan
    gpu_load_pct: float = math.nan
    #: per GPC (JetPack 6/7 array, or GR3D_FREQ + GR3D2_FREQ on JetPack 5)
    gpu_freq_mhz: tuple[float, ...] = ()
    #: GR3D2_FREQ's load on JetPack 5 (second GPC)
    gpu_load_gpc1_pct: float = math.nan
    #: engine → MHz, NaN when ``off``
    engines: dict[str, float] = field(default_factory=dict)
    #: sensor (lower case) → °C; None = offline (-256C)
    temps: dict[str, float | None] = field(default_factory=dict)
    rails: dict[str, Rail] = field(default_factory=dict)


# ----------------------------------------------------------------------------- field parsers


def parse_timestamp(line: str) -> datetime | None:
    m = TIMESTAMP_RE.search(line)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%m-%d-%Y %H:%M:%S")
    except ValueError:
        return None


def parse_ram(line: str) -> tuple[float, float]:
    m = RAM_RE.search(line)
    return (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)


def parse_swap(line: str) -> float:
    m = SWAP_RE.search(line)
    return float(m.group(1)) if m else math.nan


def parse_cpus(line: str) -> tuple[Core, ...]:
    """``CPU [0%@729,…,off]``; the old ``CPU [x%,y%]@f`` form has one frequency after the bracket."""
    m = CPU_RE.search(line)
    if not m:
        return ()
    shared_freq = float(m.group(2)) if m.group(2) else math.nan
    cores = []
    for raw in m.group(1).split(","):
        token = raw.strip()
        if token.lower() == "off":
            cores.append(Core(online=False))
            continue
        cm = CPU_CORE_RE.match(token)
        if not cm:
            return ()  # a garbled list is not trusted at all
        freq = float(cm.group(2)) if cm.group(2) else shared_freq
        cores.append(Core(online=True, load_pct=float(cm.group(1)), freq_mhz=freq))
    return tuple(cores)


def parse_emc(line: str) -> tuple[float, float]:
    m = EMC_RE.search(line)
    if not m:
        return math.nan, math.nan
    load = float(m.group(1)) if m.group(1) else math.nan
    freq = float(m.group(2)) if m.group(2) else math.nan
    return load, freq


def parse_gpu(line: str) -> tuple[float, tuple[float, ...], float]:
    """(load %, per-GPC MHz, GR3D2 load %)."""
    load, load2 = math.nan, math.nan
    freqs: list[float] = []
    freq2: list[float] = []
    for m in GR3D_RE.finditer(line):
        name, pct, array, single = m.groups()
        values = [float(v) for v in array.split(",") if v] if array else ([float(single)] if single else [])
        if name == "GR3D":
            load = float(pct) if pct else math.nan
            freqs = values
        else:
            load2 = float(pct) if pct else math.nan
            freq2 = values
    return load, tuple(freqs + freq2), load2


def parse_engines(line: str) -> dict[str, float]:
    engines: dict[str, float] = {}
    for name, value in ENGINE_RE.findall(line):
        if name in _NOT_ENGINES:
            continue
        key = name[: -len("_FREQ")] if name.endswith("_FREQ") else name
        engines[key] = math.nan if value == "off" else float(value.lstrip("@"))
    return engines


def parse_temps(line: str) -> dict[str, float | None]:
    temps: dict[str, float | None] = {}
    for name, cur, _max in TEMP_RE.findall(line):
        value = float(cur)
        temps[name.lower()] = None if value <= -255 else value
    return temps


def parse_rails(line: str) -> dict[str, Rail]:
    rails: dict[str, Rail] = {}
    for name, cur, avg, peak in RAIL_RE.findall(line):
        if name in _NOT_RAILS:
            continue
        rails[name] = Rail(float(cur), float(avg), float(peak) if peak else math.nan)
    return rails


def parse_line(line: str) -> TegraSample | None:
    """Parse one line; None when it holds none of RAM, CPU, GR3D or a power rail."""
    try:
        ram_used, ram_total = parse_ram(line)
        cpus = parse_cpus(line)
        gpu_load, gpu_freqs, gpu_load2 = parse_gpu(line)
        rails = parse_rails(line)
        if math.isnan(ram_used) and not cpus and not rails and math.isnan(gpu_load) and not gpu_freqs:
            return None
        emc_load, emc_freq = parse_emc(line)
        return TegraSample(
            timestamp=parse_timestamp(line),
            ram_used_mb=ram_used,
            ram_total_mb=ram_total,
            swap_used_mb=parse_swap(line),
            cpus=cpus,
            emc_load_pct=emc_load,
            emc_freq_mhz=emc_freq,
            gpu_load_pct=gpu_load,
            gpu_freq_mhz=gpu_freqs,
            gpu_load_gpc1_pct=gpu_load2,
            engines=parse_engines(line),
            temps=parse_temps(line),
            rails=rails,
        )
    except (ValueError, OverflowError):  # e.g. a number too long for float; skip, don't crash
        return None


def parse_lines(lines: Iterable[str]) -> tuple[list[TegraSample], int]:
    """Parse many lines: (samples, number of skipped non-empty lines)."""
    samples: list[TegraSample] = []
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        sample = parse_line(line)
        if sample is None:
            skipped += 1
        else:
            samples.append(sample)
    return samples, skipped


def _value_reading(channel: str, value: float, unit: str, missing: str = "not_reported") -> Reading:
    return Reading(channel, value, unit) if math.isfinite(value) else Reading(channel, math.nan, unit, missing)


def readings(sample: TegraSample) -> list[Reading]:
    """A parsed line as long-table readings (channel names shared with the other readers)."""
    out: list[Reading] = []
    if math.isfinite(sample.ram_used_mb):
        out.append(Reading("ram_used", sample.ram_used_mb, "MB"))
    for idx, core in enumerate(sample.cpus):
        if core.online:
            out.append(_value_reading(f"cpu{idx}_load", core.load_pct, "%"))
            out.append(_value_reading(f"cpu{idx}_freq", core.freq_mhz, "MHz"))
        else:
            out.append(Reading(f"cpu{idx}_load", math.nan, "%", "offline"))
            out.append(Reading(f"cpu{idx}_freq", math.nan, "MHz", "offline"))
    if "EMC_FREQ" in _seen_fields(sample):
        out.append(_value_reading("emc_load", sample.emc_load_pct, "%"))
        out.append(_value_reading("emc_freq", sample.emc_freq_mhz, "MHz"))
    if math.isfinite(sample.gpu_load_pct) or sample.gpu_freq_mhz:
        out.append(_value_reading("gpu_load", sample.gpu_load_pct, "%"))
        if sample.gpu_freq_mhz:
            for gpc, mhz in enumerate(sample.gpu_freq_mhz):
                out.append(Reading("gpu_freq" if gpc == 0 else f"gpu_freq_gpc{gpc}", mhz, "MHz"))
        else:  # without sudo tegrastats prints `GR3D_FREQ 0%` and no frequency
            out.append(Reading("gpu_freq", math.nan, "MHz", "not_reported"))
    if math.isfinite(sample.gpu_load_gpc1_pct):
        out.append(Reading("gpu_load_gpc1", sample.gpu_load_gpc1_pct, "%"))
    for name, mhz in sample.engines.items():
        out.append(_value_reading(f"engine_{name.lower()}_freq", mhz, "MHz", "off"))
    for name, temp in sample.temps.items():
        out.append(temperature_reading(name, temp if temp is not None else -256.0))
    out.extend(power_readings({name: rail.cur_mw for name, rail in sample.rails.items()}))
    return out


def _seen_fields(sample: TegraSample) -> set[str]:
    return {"EMC_FREQ"} if (math.isfinite(sample.emc_load_pct) or math.isfinite(sample.emc_freq_mhz)) else set()


def parse_file(path: Path | str, interval_ms: float | None = None) -> tuple[pd.DataFrame, int, int]:
    """A saved tegrastats log → (telemetry table, lines parsed, lines skipped).

    ``t_s`` is seconds since the first timestamped line (tegrastats stamps whole seconds, so lines
    within one second share a ``t_s``).  Lines without a timestamp use ``index × interval_ms``
    when given, else their line index (a sample counter, not seconds).
    """
    path = Path(path)
    if not path.is_file():
        raise OrinprofError(f"tegrastats log {path} not found", "pass the file written by `tegrastats --logfile`")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise OrinprofError(f"cannot read {path}: {err.strerror}") from err
    rows: list[tuple[float, str, str, float, str, str]] = []
    parsed = skipped = 0
    first: datetime | None = None
    for index, line in enumerate(line for line in text.splitlines() if line.strip()):
        sample = parse_line(line)
        if sample is None:
            skipped += 1
            continue
        parsed += 1
        if sample.timestamp is not None:
            first = first or sample.timestamp
            t = (sample.timestamp - first).total_seconds()
        else:
            t = index * interval_ms / 1000.0 if interval_ms else float(index)
        rows.extend((t, "tegrastats", r.channel, r.value, r.unit, r.status) for r in readings(sample))
    return samples_frame(rows), parsed, skipped


@dataclass(frozen=True)
class Conversion:
    path: Path
    parsed: int
    skipped: int
    rows: int
    channels: tuple[str, ...]


def convert_file(src: Path | str, dest: Path | str, interval_ms: float | None = None) -> Conversion:
    """``orinprof telemetry parse-tegrastats``: a tegrastats log → a ``telemetry`` CSV at ``dest``.

    Never overwrites: an existing ``dest`` is an error.
    """
    from orinprof.results import check
    from orinprof.telemetry import schema  # noqa: F401  (registers the telemetry table)

    dest = Path(dest)
    if dest.exists():
        raise OrinprofError(f"{dest} already exists", "results are never overwritten; pass another --out")
    df, parsed, skipped = parse_file(src, interval_ms)
    if parsed == 0:
        raise OrinprofError(
            f"no tegrastats lines found in {src} ({skipped} line(s) did not parse)",
            "pass a log written by `tegrastats --logfile` or `tegrastats > file`",
        )
    df = check(df, "telemetry")
    if not dest.parent.is_dir():
        raise OrinprofError(f"output folder {dest.parent} does not exist", "create it or pass another --out")
    tmp = dest.with_name(dest.name + ".tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, dest)  # atomic: a crash never leaves half a CSV
    return Conversion(dest, parsed, skipped, len(df), tuple(sorted(set(df["channel"]))))


# ----------------------------------------------------------------------------- live reader


class TegrastatsReader(Reader):
    """Runs ``tegrastats --interval <ms>`` and parses its stdout line by line.

    Lines are stamped with :func:`orinprof.telemetry.base.clock` on arrival (tegrastats' own
    timestamp has 1 s resolution).  Without sudo some fields are missing; that is fine.
    """

    name = "tegrastats"

    def __init__(self, tegrastats_cmd: Sequence[str] = ("tegrastats",), sysfs_root: Path | str = "/") -> None:
        super().__init__()
        self.cmd = list(tegrastats_cmd)
        self.sysfs_root = Path(sysfs_root)
        self._exe = shutil.which(self.cmd[0]) if self.cmd else None
        self._proc: subprocess.Popen[str] | None = None
        self.state.throttle_temp_c = thermal_throttle_c(self.sysfs_root)

    def probe(self) -> Probe:
        if not self._exe:
            return Probe(False, f"{self.cmd[0] if self.cmd else 'tegrastats'!s} not found (it ships with JetPack)")
        return Probe(True, self._exe)

    def read(self) -> list[Reading]:  # pragma: no cover - streaming reader; see _run
        raise NotImplementedError

    def open_impl(self) -> None:
        if not self._exe:
            raise OrinprofError("tegrastats not found", "it ships with JetPack; use --telemetry auto or none")
        interval_ms = max(1, round(self.interval_s * 1000))
        try:
            self._proc = subprocess.Popen(
                [*self.cmd, "--interval", str(interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                errors="replace",
            )
        except OSError as err:
            raise OrinprofError(f"cannot start tegrastats: {err.strerror}") from err

    def _run(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in _lines(proc.stdout):
            if self._stop.is_set():
                break
            t = clock()
            sample = parse_line(line)
            if sample is None:
                if line.strip():
                    self.skipped += 1
                continue
            self.record(t, readings(sample))
        if not self._stop.is_set():
            rc = proc.wait()
            err = proc.stderr.read().strip().splitlines() if proc.stderr else []
            raise RuntimeError(f"tegrastats exited early (status {rc}){': ' + err[-1] if err else ''}")

    def stop_impl(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def close_impl(self) -> None:
        if self._proc is not None:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None
        if self.skipped:
            log.info("tegrastats: %d line(s) did not parse and were skipped", self.skipped)


def _lines(stream: Iterable[str]) -> Iterator[str]:
    yield from stream
