"""``orinprof.doctor`` asks the backends, telemetry probes and the fingerprint; it owns no check."""

from __future__ import annotations

import sys
from pathlib import Path

from orinprof.backends import BACKENDS
from orinprof.doctor import check_device, doctor_checks
from orinprof.telemetry import ReaderOptions


def test_one_backend_row_per_registered_backend() -> None:
    rows = [c for c in doctor_checks() if c.area == "backend"]
    assert [c.item for c in rows] == list(BACKENDS)
    assert all(c.detail for c in rows)  # the probe's reason (and the runner's summary) is shown


def test_device_rows_name_the_module_and_power_state(tmp_path: Path) -> None:
    dt = tmp_path / "proc" / "device-tree"
    dt.mkdir(parents=True)
    (dt / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    (dt / "compatible").write_bytes(b"nvidia,p3737-0000+p3701-0005\x00nvidia,tegra234\x00")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1\n")
    script = tmp_path / "nvpmodel.py"
    script.write_text("print('NV Power Mode: MODE_15W\\n1')")
    options = ReaderOptions(
        sysfs_root=tmp_path, proc_root=tmp_path, etc_root=tmp_path, nvpmodel_cmd=(sys.executable, str(script))
    )
    rows = {c.item: c for c in check_device(options)}
    assert rows["module"].ok and rows["module"].detail == "agx-orin-64gb (part p3701-0005)"
    assert not rows["power mode"].ok and "nvpmodel -m 0" in rows["power mode"].next_step
