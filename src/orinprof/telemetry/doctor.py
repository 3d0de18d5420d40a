"""Checks behind ``orinprof doctor``: software stack, telemetry sources, device and power mode.

Each check is a :class:`Check` with the next step to take when something is missing.  Backends
themselves are listed by :func:`orinprof.backends.available` (the CLI joins the two lists).
Device libraries are imported only inside the check that needs them, and only when installed.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

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


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def check_onnxruntime() -> Check:
    version = _version("onnxruntime", "onnxruntime-gpu")
    if version is None and importlib.util.find_spec("onnxruntime") is None:
        return Check("software", "ONNX Runtime", False, "not installed", "pip install 'orinprof[ort]'")
    try:
        import onnxruntime  # device library: imported only here, and only because it is installed

        providers = onnxruntime.get_available_providers()
    except Exception as err:  # a broken install is reported, not raised
        return Check("software", "ONNX Runtime", False, f"{version}: import failed ({err})", "reinstall onnxruntime")
    gpu = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
    step = "" if gpu else "CPU only; for GPUs install onnxruntime-gpu (Jetson: the wheel from jetson-ai-lab)"
    return Check("software", "ONNX Runtime", True, f"{version}; providers: {', '.join(providers)}", step)


def check_torch() -> Check:
    version = _version("torch")
    if version is None:
        return Check(
            "software",
            "PyTorch",
            False,
            "not installed",
            "pip install 'orinprof[torch]' (CPU) or NVIDIA's wheel",
        )
    try:
        import torch  # only because it is installed; needed to ask whether CUDA works

        cuda = bool(torch.cuda.is_available())
        detail = f"{version}; CUDA {'available: ' + torch.cuda.get_device_name(0) if cuda else 'not available'}"
    except Exception as err:  # a broken CUDA install is reported, not raised
        return Check("software", "PyTorch", False, f"{version}: import failed ({err})", "reinstall torch")
    step = "" if cuda else "CPU build; on Jetson install NVIDIA's JetPack PyTorch wheel for CUDA"
    return Check("software", "PyTorch", True, detail, step)


def check_tensorrt(trtexec_paths: tuple[str, ...] = ("/usr/src/tensorrt/bin/trtexec",)) -> list[Check]:
    version = _version("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu12")
    found = version is not None or importlib.util.find_spec("tensorrt") is not None
    out = [
        Check(
            "software",
            "TensorRT (Python)",
            found,
            version or ("installed (version unknown)" if found else "not importable"),
            "" if found else "on Jetson: `sudo apt install python3-libnvinfer` and a venv with --system-site-packages",
        )
    ]
    trtexec = shutil.which("trtexec") or next((p for p in trtexec_paths if Path(p).is_file()), None)
    out.append(
        Check(
            "software",
            "trtexec",
            trtexec is not None,
            trtexec or "not found",
            "" if trtexec else "ships with TensorRT",
        )
    )
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
    """Everything ``orinprof doctor`` reports except the backend list."""
    return [
        check_onnxruntime(),
        check_torch(),
        *check_tensorrt(),
        *check_telemetry(options),
        *check_device(options),
    ]
