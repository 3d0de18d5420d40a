"""Fingerprint probes on temporary roots; the host reader on this machine."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import pytest

from orinprof.telemetry import ReaderOptions, open_session
from orinprof.telemetry.fingerprint import (
    cpu_model,
    device_identity,
    fingerprint,
    jetson_clocks_state,
    l4t_release,
    parse_nvpmodel_query,
)


def _jetson_root(tmp_path: Path, clocks_on: bool) -> Path:
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    (tmp_path / "proc" / "device-tree" / "compatible").write_bytes(b"nvidia,p3737-0000\x00nvidia,tegra234\x00")
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
        "DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    )
    gpu = tmp_path / "sys" / "class" / "devfreq" / "17000000.gpu"
    gpu.mkdir(parents=True)
    (gpu / "max_freq").write_text("1300500000\n")
    (gpu / "min_freq").write_text("1300500000\n" if clocks_on else "306000000\n")
    return tmp_path


def _nvpmodel_cmd(tmp_path: Path, text: str) -> list[str]:
    script = tmp_path / "nvpmodel.py"
    script.write_text(f"print({text!r})")
    return [sys.executable, str(script)]


def test_jetson_fingerprint_from_files(tmp_path: Path) -> None:
    root = _jetson_root(tmp_path, clocks_on=False)
    fp = fingerprint(
        proc_root=root,
        etc_root=root,
        sysfs_root=root,
        cuda_root=root / "cuda",
        nvpmodel_cmd=_nvpmodel_cmd(tmp_path, "NV Power Mode: MODE_30W\n2"),
        probe_gpu=False,
    )
    assert fp["device_model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert (fp["l4t"], fp["jetpack"]) == ("36.4.3", "6.2")
    assert (fp["nvpmodel_id"], fp["nvpmodel_name"]) == (2, "MODE_30W")
    assert fp["jetson_clocks"] == "off" and fp["soc"] == "tegra234"
    assert fp["cpu_model"] == "Arm Cortex-A78AE"
    assert "cuda_version" not in fp["reasons"] and fp["python"]


def test_clock_state_and_session_flags(tmp_path: Path) -> None:
    root = _jetson_root(tmp_path, clocks_on=True)
    assert jetson_clocks_state(root) == ("on", "")
    opts = ReaderOptions(
        proc_root=root,
        etc_root=root,
        sysfs_root=root,
        nvpmodel_cmd=_nvpmodel_cmd(tmp_path, "NV Power Mode: MAXN\n0"),
    )
    with open_session("host", interval_s=0.05, options=opts) as session:
        t0 = time.perf_counter()
        time.sleep(0.3)
        t1 = time.perf_counter()
    s = session.summarize(t0, t1, 3)
    assert s["nvpmodel_name"] == "MAXN" and s["jetson_clocks"] == "on" and s["l4t"] == "36.4.3"
    assert "clocks_not_locked" not in s["trust_flags"] and "power_mode_not_maxn" not in s["trust_flags"]
    assert s["telemetry_source"] == "host" and s["telemetry_samples"] >= 2
    assert set(session.samples().columns) >= {"t_s", "source", "channel", "value", "unit", "status"}


def test_absent_everything_gives_reasons(tmp_path: Path) -> None:
    fp = fingerprint(
        proc_root=tmp_path,
        etc_root=tmp_path,
        sysfs_root=tmp_path,
        nvpmodel_cmd=["no-such-nvpmodel"],
        probe_gpu=False,
    )
    assert fp["device_model"] is None and fp["l4t"] is None and fp["jetpack"] is None
    assert {"device_model", "l4t", "nvpmodel", "jetson_clocks"} <= set(fp["reasons"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NV Power Mode: MAXN\n0\n", (0, "MAXN")),
        ("NV Power Mode[3]: MODE_50W", (3, "MODE_50W")),
        ("", (None, None)),
    ],
)
def test_parse_nvpmodel(text: str, expected: tuple[int | None, str | None]) -> None:
    assert parse_nvpmodel_query(text) == expected


def test_l4t_two_part_revision(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R35 (release), REVISION: 3.1, GCID: 1\n")
    assert l4t_release(tmp_path) == ("35.3.1", "")


def test_cpu_model_x86(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n")
    assert cpu_model(tmp_path) == "Some CPU @ 2GHz"


@pytest.mark.parametrize(
    ("compatible", "part", "device_id"),
    [
        # device-tree `compatible` as NVIDIA's AGX Orin DTBs write it (carrier+module, then the SoC)
        (b"nvidia,p3737-0000+p3701-0005\x00nvidia,p3737-0000\x00nvidia,tegra234\x00", "p3701-0005", "agx-orin-64gb"),
        (b"nvidia,p3737-0000+p3701-0004\x00nvidia,tegra234\x00", "p3701-0004", "agx-orin-32gb"),
        (b"nvidia,p3737-0000+p3701-0000\x00nvidia,tegra234\x00", "p3701-0000", "agx-orin-devkit-p3701-0000"),
        (b"nvidia,p3737-0000\x00nvidia,tegra234\x00", None, None),  # carrier only: cannot tell
    ],
)
def test_device_identity_from_the_module_part_number(
    tmp_path: Path, compatible: bytes, part: str | None, device_id: str | None
) -> None:
    root = _jetson_root(tmp_path, clocks_on=True)
    (root / "proc" / "device-tree" / "compatible").write_bytes(compatible)
    fp = fingerprint(proc_root=root, etc_root=root, sysfs_root=root, nvpmodel_cmd=(), probe_gpu=False)
    assert (fp["module_part"], fp["device_id"]) == (part, device_id)
    assert device_identity(fp) == device_id
    assert ("device_id" in fp["reasons"]) == (device_id is None)
    # free text never identifies a module: CUDA calls every Orin GPU "Orin"
    assert device_identity({"device_model": "NVIDIA Jetson AGX Orin 64GB", "gpu_name": "Orin"}) is None


def test_cpu_model_without_cpuinfo_falls_back_to_platform(tmp_path: Path) -> None:
    assert cpu_model(tmp_path) == (platform.processor() or platform.machine() or "unknown")
