"""Checks behind ``orinprof doctor``: backends, telemetry sources, device and power mode.

Each check is a :class:`Check` with the next step to take when something is missing.  Doctor only
asks: backends answer through their own ``probe()`` (:func:`orinprof.backends.available`), telemetry
sources through :func:`orinprof.telemetry.probe_all`, and the device through the fingerprint and
:func:`orinprof.identity.device_identity`; it holds no check of its own to drift from theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orinprof.errors import OrinprofError
from orinprof.telemetry import ReaderOptions, probe_all
from orinprof.telemetry.fingerprint import fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    area: str
    item: str
    ok: bool
    detail: str
    next_step: str = ""


#: next step per telemetry source when it is unavailable
_TELEMETRY_STEPS = {
    "jtop": (
        "on a Jetson: `sudo pip3 install -U jetson-stats`, `sudo systemctl restart jtop.service`, "
        "`sudo usermod -aG jtop $USER` then log out/in; use a venv with --system-site-packages"
    ),
    "tegrastats": "on a Jetson it is /usr/bin/tegrastats (JetPack); run with sudo for rails and clocks",
    "nvml": "on a desktop/data-centre GPU: install the NVIDIA driver and `pip install nvidia-ml-py`",
    "host": "pip install psutil",
}


def check_backends() -> list[Check]:
    """One row per registered backend, from the backend's own ``probe()``
    (:func:`orinprof.backends.available`): the probe says what is there and what to install."""
    from orinprof.backends import available, runner_class

    out = []
    for b in available():
        try:
            summary = runner_class(b.name).summary
        except OrinprofError:  # not implemented in this install: the probe's reason says so
            summary = ""
        detail = "; ".join(x for x in (b.reason or "ok", summary) if x)
        out.append(Check("backend", b.name, b.ok, detail))  # the probe's reason names the fix
    return out


def check_telemetry(options: ReaderOptions | None = None) -> list[Check]:
    return [
        Check("telemetry", name, probe.ok, probe.reason, "" if probe.ok else _TELEMETRY_STEPS[name])
        for name, probe in probe_all(options).items()
    ]


def check_device(options: ReaderOptions | None = None) -> list[Check]:
    o = options or ReaderOptions()
    fp = fingerprint(proc_root=o.proc_root, etc_root=o.etc_root, sysfs_root=o.sysfs_root, nvpmodel_cmd=o.nvpmodel_cmd)
    device = fp["device_model"] or fp["gpu_name"] or fp["cpu_model"] or "unknown"
    jetson = fp["device_model"] is not None and fp["l4t"] is not None
    out = [Check("device", "device", True, f"{device} ({fp['machine']}, kernel {fp['kernel']})")]
    if fp["soc"]:
        out.append(
            Check(
                "device",
                "module",
                fp["device_id"] is not None,
                f"{fp['device_id']} (part {fp['module_part']})" if fp["device_id"] else fp["reasons"]["device_id"],
                "" if fp["device_id"] else "card verdicts need the module id: report the board's compatible string",
            )
        )
    if jetson:
        out.append(Check("device", "L4T / JetPack", True, f"L4T {fp['l4t']} / JetPack {fp['jetpack'] or 'unknown'}"))
        mode = fp["nvpmodel_name"]
        out.append(
            Check(
                "device",
                "power mode",
                mode is not None and mode.upper().startswith("MAXN"),
                f"{mode} (id {fp['nvpmodel_id']})" if mode else fp["reasons"].get("nvpmodel", "unknown"),
                "" if mode and mode.upper().startswith("MAXN") else "for peak numbers: `sudo nvpmodel -m 0`",
            )
        )
        clocks = fp["jetson_clocks"]
        out.append(
            Check(
                "device",
                "jetson_clocks",
                clocks == "on",
                clocks or fp["reasons"].get("jetson_clocks", "unknown"),
                "" if clocks == "on" else "lock clocks for stable timings: `sudo jetson_clocks`",
            )
        )
    if fp["gpu_name"]:
        out.append(Check("device", "GPU", True, f"{fp['gpu_name']} (compute capability {fp['compute_capability']})"))
    else:
        out.append(Check("device", "GPU", False, fp["reasons"].get("gpu", "none"), "CPU backends only"))
    return out


def doctor_checks(options: ReaderOptions | None = None) -> list[Check]:
    """Everything ``orinprof doctor`` reports."""
    return [*check_backends(), *check_telemetry(options), *check_device(options)]
