"""Identity facts with one owner each: which CPU this is, which Jetson module a fingerprint shows,
and which package versions a run used.

:mod:`orinprof.telemetry.fingerprint` (doctor, ``run.json``), the backends (their ``device``
string), ``ingest``, the card experiments and ``measure`` all ask here, so the answers cannot drift
apart.  Nothing here imports a device library or anything above :mod:`orinprof.results`; backends
may import it (the import contracts keep them apart from :mod:`orinprof.telemetry`).
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def cpu_model(proc_root: Path | str = "/") -> str:
    """The one answer to "which CPU is this": ``model name`` from /proc/cpuinfo; on Arm (no model
    name) the implementer/part pair; without /proc/cpuinfo, what :mod:`platform` says."""
    return _cpuinfo_model(proc_root) or platform.processor() or platform.machine() or "unknown"


def _cpuinfo_model(proc_root: Path | str) -> str | None:
    try:
        text = (Path(proc_root) / "proc" / "cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    if fields.get("model name"):
        return fields["model name"]
    part = fields.get("CPU part")
    if part:
        # a few Arm parts seen on Jetsons (Arm/NVIDIA technical reference manuals)
        names = {
            "0xd42": "Arm Cortex-A78AE",
            "0xd08": "Arm Cortex-A72",
            "0xd07": "Arm Cortex-A57",
            "0x004": "NVIDIA Carmel",
        }
        return names.get(part.lower(), f"Arm implementer {fields.get('CPU implementer', '?')} part {part}")
    return fields.get("Hardware") or None


def _dist_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def dist_version(*dists: str) -> str | None:
    """Installed version of the first of ``dists`` found (several names: GPU/CUDA-specific wheels)."""
    return next((v for v in map(_dist_version, dists) if v), None)


#: distributions whose versions every ``run.json`` records (``versions``), in this order
VERSIONED_PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("numpy", ("numpy",)),
    ("pandas", ("pandas",)),
    ("onnx", ("onnx",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("onnxconverter-common", ("onnxconverter-common",)),
    ("torch", ("torch",)),
    ("tensorrt", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu12")),
)


def package_versions() -> dict[str, str]:
    """The one ``versions`` mapping of ``run.json``: Python, orinprof (with its git version) and
    every installed package of :data:`VERSIONED_PACKAGES`; missing packages are left out."""
    from orinprof import __version__, results

    out = {"python": platform.python_version(), "orinprof": __version__, "git": results.git_version()}
    for key, dists in VERSIONED_PACKAGES:
        version = dist_version(*dists)
        if version:
            out[key] = version
    return out


#: Jetson module P-number → orinprof's device id.  P-numbers and their modules:
#: rbonghi/jetson_stats ``jtop/core/jetson_variables.py`` MODULE_NAME_TABLE (``'p3701-0005': 'NVIDIA
#: Jetson AGX Orin (64GB ram)'``, ``'p3701-0004': '… (32GB ram)'``, ``'p3701-0000': 'NVIDIA Jetson AGX
#: Orin'``).  The ids match ``data/devices.toml`` where a roofline entry exists.  P3701-0000 (the
#: first developer kit's module, 32 GB of memory) keeps its own id: no claim may read it as the 64 GB
#: module, whose 275 TOPS figure the datasheet gives (the 32 GB module: 200 TOPS).
MODULE_DEVICE_IDS = {
    "p3701-0005": "agx-orin-64gb",
    "p3701-0004": "agx-orin-32gb",
    "p3701-0000": "agx-orin-devkit-p3701-0000",
    "p3701-0008": "agx-orin-industrial",
    "p3767-0000": "orin-nx-16gb",
    "p3767-0001": "orin-nx-8gb",
    "p3767-0003": "orin-nano-8gb",
    "p3767-0004": "orin-nano-4gb",
    "p3767-0005": "orin-nano-devkit",
}

_PART_RE = re.compile(r"\b(p\d{4}-\d{4})\b", re.IGNORECASE)


def module_part(proc_root: Path | str = "/") -> str | None:
    """The module's P-number from the device tree: ``compatible`` lists carrier and module as
    ``nvidia,p3737-0000+p3701-0005``; the module is the last P-number of that entry."""
    try:
        compatible = (Path(proc_root) / "proc" / "device-tree" / "compatible").read_bytes()
    except OSError:
        return None
    for entry in compatible.decode(errors="replace").split("\x00"):
        parts = _PART_RE.findall(entry)
        known = [p.lower() for p in parts if p.lower() in MODULE_DEVICE_IDS]
        if known:
            return known[-1]
    return None


def device_identity(fp: Mapping[str, Any] | None) -> str | None:
    """The one answer to "what device is this", from a fingerprint (this run's, or a ``run.json``'s):
    a device id of :data:`MODULE_DEVICE_IDS` from the module's P-number, or None when the fingerprint
    cannot say (no fingerprint, a typed ``--device`` string, a desktop GPU or a CPU).  Free text such
    as ``device_model`` or ``gpu_name`` is never parsed: CUDA names every Orin GPU just "Orin"."""
    if not fp:
        return None
    recorded = fp.get("device_id")
    if isinstance(recorded, str) and recorded in MODULE_DEVICE_IDS.values():
        return recorded
    part = fp.get("module_part")
    return MODULE_DEVICE_IDS.get(str(part).lower()) if part else None
