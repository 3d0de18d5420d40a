"""The roofline device table: peaks and bandwidths per device and nvpmodel mode, each with its source.

The table lives in ``orinprof/data/devices.toml``; per nvpmodel mode the peaks scale with
``TPCs/all TPCs × GPU clock/max clock`` and the bandwidth with ``EMC clock/max EMC clock`` (the caps
from NVIDIA's nvpmodel files).  ``local-cpu`` is calibrated at run time (:func:`calibrate_cpu`),
never guessed.  A mode row may carry ``unverified`` (why its caps are in doubt); :func:`get_device`
puts it in the device's notes, so every projection in that mode says so.

This module answers "what can this device do" for the roofline; "which device is this run on" is
:mod:`orinprof.identity`'s (the ids agree: ``agx-orin-64gb`` …).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from orinprof.errors import OrinprofError
from orinprof.identity import cpu_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - JetPack 6 ships Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

_PEAK_KEYS = {"fp32": "fp32_tflops", "fp16": "fp16_tflops", "int8": "int8_tops"}


@dataclass(frozen=True)
class Device:
    """One device in one power mode, with the figures the projection uses."""

    key: str
    name: str
    kind: str  # "jetson" | "gpu" | "cpu"
    mode: str
    peak_tflops: Mapping[str, float]  # "fp32", "fp16", "int8" → TFLOP/s (TOP/s for int8), mode-scaled
    bandwidth_gbs: float  # mode-scaled
    bandwidth_basis: str  # "achievable" | "datasheet" | "measured"
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def baseline(self) -> str:
        return "fp32" if self.kind == "cpu" else "fp16"


def devices_path() -> Path:
    return Path(str(resources.files("orinprof") / "data" / "devices.toml"))


def device_table(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The raw device table (``devices.toml``)."""
    with open(path or devices_path(), "rb") as f:
        return dict(tomllib.load(f)["devices"])


def device_names() -> list[str]:
    return list(device_table())


def get_device(
    name: str,
    mode: str | None = None,
    bandwidth: str = "achievable",
    results_dir: Path | None = Path("results"),
    recalibrate: bool = False,
) -> Device:
    """A :class:`Device` in ``mode`` (default: the table's default mode).

    ``bandwidth="achievable"`` uses a measured bandwidth where the table has one (and says so in
    ``bandwidth_basis``), else the datasheet figure.  ``local-cpu`` is calibrated (and cached under
    ``results_dir/calibration``).
    """
    table = device_table()
    if name not in table:
        raise OrinprofError(f"unknown device {name!r}", "choose one of: " + ", ".join(table))
    if bandwidth not in ("achievable", "datasheet"):
        raise OrinprofError(f"unknown bandwidth basis {bandwidth!r}", "choose achievable or datasheet")
    entry = table[name]
    modes = dict(entry.get("modes", {}))
    mode = mode or str(entry.get("default_mode", next(iter(modes), "default")))
    if mode not in modes:
        raise OrinprofError(f"device {name} has no mode {mode!r}", "choose one of: " + ", ".join(modes))
    if entry.get("calibrated"):
        return _calibrated_cpu(name, entry, mode, results_dir, recalibrate)

    m = modes[mode]
    sources = {k[: -len("_source")]: str(v) for k, v in entry.items() if k.endswith("_source")}
    sources["mode"] = str(m.get("source", ""))
    notes: list[str] = []
    compute_scale = 1.0
    if "compute_scale" in m:  # a vendor figure for this mode overrides the TPC × clock rule
        compute_scale = float(m["compute_scale"])
        sources["mode_compute_scale"] = str(m.get("compute_scale_source", ""))
    elif "gpu_mhz" in m:
        compute_scale = (float(m["tpcs"]) / float(entry["tpc_count"])) * (
            float(m["gpu_mhz"]) / float(entry["gpu_max_mhz"])
        )
    if m.get("unverified"):
        notes.append(f"{mode} unverified: {m['unverified']}")
    bw_scale = float(m["emc_mhz"]) / float(entry["emc_max_mhz"]) if "emc_mhz" in m else 1.0
    if compute_scale != 1.0 or bw_scale != 1.0:
        notes.append(
            f"{mode}: peaks × {compute_scale:.3f} "
            + ("(NVIDIA's figure for the mode)" if "compute_scale" in m else "(TPCs × GPU clock vs max)")
            + f", bandwidth × {bw_scale:.3f} "
            "(EMC clock vs max)"
        )
    peaks = {p: float(entry[k]) * compute_scale for p, k in _PEAK_KEYS.items()}
    if bandwidth == "achievable" and "bandwidth_achievable_gbs" in entry:
        bw, basis = float(entry["bandwidth_achievable_gbs"]), "achievable"
    else:
        bw, basis = float(entry["bandwidth_gbs"]), "datasheet"
    return Device(
        name, str(entry["name"]), str(entry["kind"]), mode, peaks, bw * bw_scale, basis, sources, tuple(notes)
    )


def _cpu_id() -> str:
    """Cache key of a calibration: host, CPU model (:func:`orinprof.identity.cpu_model`), cores."""
    return f"{platform.node()}|{cpu_model()}|{os.cpu_count()}"


def calibrate_cpu(cache_dir: Path | None = Path("results") / "calibration", force: bool = False) -> dict[str, Any]:
    """Measure this CPU: FP32 GEMM rate (numpy BLAS, 1024³ and 2048³, best of several) and a large
    copy's bandwidth (numpy, 256 MiB, read + write counted).  Cached per host/CPU in ``cache_dir``.

    An INT8 GEMM rate is added by ``scripts/calibrate_cpu.py`` (ONNX Runtime MatMulInteger); without
    it the INT8 peak is taken as the FP32 one and the projection says so.
    """
    cache = Path(cache_dir) / "local-cpu.json" if cache_dir is not None else None
    cpu = _cpu_id()
    if cache is not None and cache.exists() and not force:
        try:
            data = json.loads(cache.read_text())
            if data.get("cpu") == cpu:
                return dict(data)
        except json.JSONDecodeError:
            log.warning("ignoring unreadable calibration cache %s", cache)
    log.info("calibrating local CPU (GEMM rate and copy bandwidth, a few seconds)")
    best = 0.0
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
        a @ b  # warm-up: thread pool start, page faults
        for _ in range(3):
            t0 = time.perf_counter()
            a @ b
            dt = time.perf_counter() - t0
            best = max(best, 2.0 * n**3 / dt)
    src = np.ones(64 * 1024 * 1024, dtype=np.float32)  # 256 MiB: far beyond any cache
    dst = np.empty_like(src)
    np.copyto(dst, src)
    bw = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        dt = time.perf_counter() - t0
        bw = max(bw, 2.0 * src.nbytes / dt)
    measured: dict[str, Any] = {
        "cpu": cpu,
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fp32_gemm_flops": best,
        "fp32_gemm_source": "numpy float32 matmul 1024³/2048³, best of 3 after a warm-up",
        "copy_bandwidth_bytes_s": bw,
        "copy_bandwidth_source": "numpy copyto of 256 MiB, best of 5, bytes read + written",
        "numpy": np.__version__,
    }
    if cache is not None:
        old = {}
        if cache.exists():
            try:
                old = json.loads(cache.read_text())
            except json.JSONDecodeError:
                old = {}
        if old.get("cpu") == cpu and "int8_gemm_ops" in old:  # keep the script's INT8 figure
            measured.update({k: v for k, v in old.items() if k.startswith("int8_gemm")})
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(measured, indent=2) + "\n")
    return measured


def _calibrated_cpu(name: str, entry: Mapping[str, Any], mode: str, results_dir: Path | None, force: bool) -> Device:
    cal = calibrate_cpu(None if results_dir is None else Path(results_dir) / "calibration", force=force)
    fp32 = float(cal["fp32_gemm_flops"]) / 1e12
    notes = []
    sources = {
        "fp32_tflops": f"{cal['fp32_gemm_source']} ({cal['measured_utc']})",
        "bandwidth_gbs": f"{cal['copy_bandwidth_source']} ({cal['measured_utc']})",
    }
    if "int8_gemm_ops" in cal:
        int8 = float(cal["int8_gemm_ops"]) / 1e12
        sources["int8_tops"] = str(cal.get("int8_gemm_source", "scripts/calibrate_cpu.py"))
    else:
        int8 = fp32
        sources["int8_tops"] = "not calibrated: taken = FP32 rate (run scripts/calibrate_cpu.py)"
        notes.append("INT8 GEMM peak not calibrated; assumed equal to FP32 (run scripts/calibrate_cpu.py)")
    peaks = {"fp32": fp32, "fp16": fp32, "int8": int8}
    bw = float(cal["copy_bandwidth_bytes_s"]) / 1e9
    return Device(name, str(entry["name"]), "cpu", mode, peaks, bw, "measured", sources, tuple(notes))


def device_record(dev: Device) -> dict[str, Any]:
    """JSON-ready record of the device figures a projection used (``device.json``)."""
    return {
        "key": dev.key,
        "name": dev.name,
        "mode": dev.mode,
        "peak_tflops": dict(dev.peak_tflops),
        "bandwidth_gbs": dev.bandwidth_gbs,
        "bandwidth_basis": dev.bandwidth_basis,
        "sources": dict(dev.sources),
        "notes": list(dev.notes),
    }
