"""Run fingerprint: which device, power mode, clocks and software produced a result.

Every probe is best-effort: a field that cannot be read is None and ``reasons[field]`` says why.
All file roots and commands are parameters so tests run on temporary directories.  Versions come
from ``importlib.metadata``; no heavy module is imported to learn its version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orinprof.identity import cpu_model, device_identity, dist_version, module_part

__all__ = ["cpu_model", "device_identity", "fingerprint", "module_part", "summary_columns"]

log = logging.getLogger(__name__)

#: L4T → JetPack (rbonghi/jetson_stats ``jtop/core/jetson_variables.py`` NVIDIA_JETPACK, via
#: shared/reference/jetson_anchors.md §5.1).  Only releases that run on Orin.
L4T_TO_JETPACK = {
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "35.6.1": "5.1.5",
    "35.6.2": "5.1.5",
    "35.6.3": "5.1.5",
    "35.6.4": "5.1.6",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.2": "6.1 (rev1)",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "36.4.7": "6.2.1",
    "36.5.0": "6.2.2",
    "38.4.0": "7.1",
    "39.0.0": "7.2 EA",
    "39.2.0": "7.2 GA",
}

#: SoC (device-tree ``compatible``) → CUDA compute capability (jetson-stats CUDA_TABLE).
SOC_COMPUTE_CAPABILITY = {"tegra234": "8.7", "tegra194": "7.2", "tegra186": "6.2", "tegra210": "5.3"}

_NV_TEGRA_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)")

#: (field, distributions to try) for importlib.metadata
_PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tensorrt_version", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu12", "tensorrt-cu11")),
    ("onnxruntime_version", ("onnxruntime", "onnxruntime-gpu", "onnxruntime-gpu-cuda12")),
    ("torch_version", ("torch",)),
    ("jetson_stats_version", ("jetson-stats",)),
    ("nvidia_ml_py_version", ("nvidia-ml-py",)),
)


def l4t_release(etc_root: Path | str = "/") -> tuple[str | None, str]:
    """``/etc/nv_tegra_release`` first line ``# R36 (release), REVISION: 4.3, …`` → ``36.4.3``."""
    path = Path(etc_root) / "etc" / "nv_tegra_release"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None, f"{path} not found (not a Jetson)"
    m = _NV_TEGRA_RE.search(text)
    if not m:
        return None, f"{path} has no `# R<major> (release), REVISION: <x.y>` line"
    revision = m.group(2).strip(".")
    parts = revision.split(".")
    return ".".join([m.group(1), *parts, *(["0"] if len(parts) == 1 else [])]), ""


def jetpack_for(l4t: str | None) -> str | None:
    return L4T_TO_JETPACK.get(l4t) if l4t else None


def parse_nvpmodel_query(text: str) -> tuple[int | None, str | None]:
    """``nvpmodel -q`` prints ``NV Power Mode: MAXN`` then the id on the next line."""
    name: str | None = None
    mode_id: int | None = None
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        m = re.match(r"NV Power Mode\s*(?:\[(\d+)\])?\s*:\s*(\S+)", line)
        if m:
            name = m.group(2)
            if m.group(1):
                mode_id = int(m.group(1))
            elif i + 1 < len(lines) and lines[i + 1].isdigit():
                mode_id = int(lines[i + 1])
            break
    return mode_id, name


def nvpmodel_mode(nvpmodel_cmd: Sequence[str] = ("nvpmodel", "-q")) -> tuple[int | None, str | None, str]:
    if not nvpmodel_cmd or not shutil.which(nvpmodel_cmd[0]):
        return None, None, "nvpmodel not found (not a Jetson)"
    try:
        out = subprocess.run(list(nvpmodel_cmd), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        return None, None, f"nvpmodel -q failed: {err}"
    mode_id, name = parse_nvpmodel_query(out.stdout + "\n" + out.stderr)
    return mode_id, name, "" if name else "nvpmodel -q printed no `NV Power Mode` line"


def jetson_clocks_state(sysfs_root: Path | str = "/") -> tuple[str | None, str]:
    """Infer ``jetson_clocks`` from sysfs without root: it pins the GPU devfreq ``min_freq`` to
    ``max_freq`` (NVIDIA's jetson_clocks script), so equal min/max on the GPU devfreq node = on."""
    base = Path(sysfs_root) / "sys" / "class" / "devfreq"
    try:
        nodes = [p for p in base.iterdir() if any(k in p.name for k in ("gpu", "ga10b", "gv11b", "gp10b"))]
    except OSError:
        return None, "no /sys/class/devfreq GPU node (not a Jetson)"
    for node in sorted(nodes):
        try:
            lo = int((node / "min_freq").read_text().strip())
            hi = int((node / "max_freq").read_text().strip())
        except (OSError, ValueError):
            continue
        return ("on" if lo == hi else "off"), ""
    return None, "no readable GPU devfreq min_freq/max_freq"


def device_model(proc_root: Path | str = "/") -> tuple[str | None, str | None]:
    """(model, SoC) from the device tree; SoC is the ``tegraNNN`` entry of ``compatible``."""
    dt = Path(proc_root) / "proc" / "device-tree"
    model = soc = None
    with contextlib.suppress(OSError):
        model = (dt / "model").read_bytes().rstrip(b"\x00").decode(errors="replace").strip() or None
    try:
        compatible = (dt / "compatible").read_bytes().decode(errors="replace").split("\x00")
        soc = next((c.split(",")[-1] for c in compatible if re.search(r"tegra\d+", c)), None)
    except OSError:
        pass
    return model, soc


def cuda_version(cuda_root: Path | str = "/usr/local/cuda") -> str | None:
    root = Path(cuda_root)
    try:
        data = json.loads((root / "version.json").read_text())
        return str(data["cuda"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        m = re.search(r"(\d+\.\d+(?:\.\d+)?)", (root / "version.txt").read_text())
        if m:
            return m.group(1)
    except OSError:
        pass
    for dist in ("nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu11"):
        version = dist_version(dist)
        if version:
            return version
    torch = sys.modules.get("torch")  # only if the caller already imported it
    return getattr(getattr(torch, "version", None), "cuda", None) if torch else None


def gpu_identity(soc: str | None) -> tuple[str | None, str | None, str]:
    """(GPU name, compute capability, reason) from NVML, an already-imported torch, or the SoC."""
    try:
        import pynvml  # nvidia-ml-py: a device library, imported only inside this function

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        return (name.decode() if isinstance(name, bytes) else str(name)), f"{major}.{minor}", ""
    except Exception as err:  # ImportError, NVMLError: fall through to the next source
        nvml_reason = f"NVML: {type(err).__name__}"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                major, minor = torch.cuda.get_device_capability(0)
                return str(torch.cuda.get_device_name(0)), f"{major}.{minor}", ""
        except Exception as err:  # a broken CUDA install must not break the fingerprint
            log.debug("torch.cuda probe failed: %s", err)
    if soc in SOC_COMPUTE_CAPABILITY:
        return f"{soc} integrated GPU", SOC_COMPUTE_CAPABILITY[soc], ""
    return None, None, f"no GPU found ({nvml_reason}; torch not imported or no CUDA)"


def fingerprint(
    proc_root: Path | str = "/",
    etc_root: Path | str = "/",
    sysfs_root: Path | str = "/",
    cuda_root: Path | str = "/usr/local/cuda",
    nvpmodel_cmd: Sequence[str] = ("nvpmodel", "-q"),
    probe_gpu: bool = True,
) -> dict[str, Any]:
    """Flat, JSON-ready fingerprint; ``reasons`` maps each missing field to why."""
    reasons: dict[str, str] = {}
    model, soc = device_model(proc_root)
    if model is None:
        reasons["device_model"] = "/proc/device-tree/model not found (not a Jetson)"
    l4t, why = l4t_release(etc_root)
    if l4t is None:
        reasons["l4t"] = why
    jetpack = jetpack_for(l4t)
    if l4t and jetpack is None:
        reasons["jetpack"] = f"L4T {l4t} is not in orinprof's JetPack table"
    mode_id, mode_name, why = nvpmodel_mode(nvpmodel_cmd)
    if mode_name is None:
        reasons["nvpmodel"] = why
    clocks, why = jetson_clocks_state(sysfs_root)
    if clocks is None:
        reasons["jetson_clocks"] = why
    gpu_name, cc, why = gpu_identity(soc) if probe_gpu else (None, None, "not probed")
    if gpu_name is None:
        reasons["gpu"] = why
    fp: dict[str, Any] = {
        "device_model": model,
        "soc": soc,
        "l4t": l4t,
        "jetpack": jetpack,
        "nvpmodel_id": mode_id,
        "nvpmodel_name": mode_name,
        "jetson_clocks": clocks,
        "gpu_name": gpu_name,
        "compute_capability": cc,
        "cuda_version": cuda_version(cuda_root),
        "cpu_model": cpu_model(proc_root),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for key, dists in _PACKAGES:
        fp[key] = dist_version(*dists)
    fp["module_part"] = module_part(proc_root)
    fp["device_id"] = device_identity(fp)
    if fp["device_id"] is None and soc:
        reasons["device_id"] = f"module part {fp['module_part'] or 'unknown'} is not in orinprof's module table"
    fp["reasons"] = reasons
    return fp


#: fingerprint keys copied into summary rows (as ``fp_<key>`` would be noise: names are unique)
SUMMARY_KEYS = (
    "device_id",
    "module_part",
    "device_model",
    "l4t",
    "jetpack",
    "nvpmodel_id",
    "nvpmodel_name",
    "jetson_clocks",
    "gpu_name",
    "compute_capability",
    "cuda_version",
    "tensorrt_version",
    "onnxruntime_version",
    "torch_version",
    "cpu_model",
    "kernel",
)


def summary_columns(fp: dict[str, Any]) -> dict[str, Any]:
    return {key: fp.get(key) for key in SUMMARY_KEYS}
