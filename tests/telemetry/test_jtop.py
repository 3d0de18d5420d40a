"""jtop reader against a FAKE jtop module that follows the documented jetson-stats client API
(jtop/jtop.py; shapes from the Orin Nano dump in shared/reference/jetson_anchors.md).  No real
jtop service ran here."""

from __future__ import annotations

import logging
import math
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from orinprof.errors import OrinprofError
from orinprof.telemetry import ReaderOptions, open_session
from orinprof.telemetry.jtop import JtopReader, explain_jtop_error, readings_from_jtop

NANO_POWER = {
    "rail": {
        "VDD_CPU_GPU_CV": {
            "volt": 4928,
            "curr": 216,
            "warn": 32760,
            "crit": 32760,
            "power": 1064,
            "online": True,
            "avg": 806,
        },
        "VDD_SOC": {
            "volt": 4936,
            "curr": 312,
            "warn": 32760,
            "crit": 32760,
            "power": 1540,
            "online": True,
            "avg": 1524,
        },
    },
    "tot": {
        "volt": 4936,
        "curr": 1040,
        "warn": 5232,
        "crit": 5232,
        "power": 5133,
        "online": True,
        "avg": 4800,
        "name": "VDD_IN",
    },
}
AGX_RAILS = {"VDD_GPU_SOC": 9000, "VDD_CPU_CV": 2000, "VIN_SYS_5V0": 5000, "VDDQ_VDD2_1V8AO": 1000}
GPU = {
    "gpu": {
        "type": "integrated",
        "status": {"railgate": False, "tpc_pg_mask": False, "3d_scaling": True, "load": 4.8},
        "freq": {"governor": "nvhost_podgov", "cur": 306000, "max": 1020000, "min": 306000, "GPC": [305981]},
        "power_control": "auto",
    }
}
TEMPS = {
    "cpu": {"temp": 46.062, "online": True},
    "cv0": {"temp": -256, "online": False},
    "gpu": {"temp": 46.406, "online": True},
    "tj": {"temp": 47.906, "online": True},
}
MEMORY = {"EMC": {"cur": 2133000, "max": 3199000, "min": 204000, "override": 0, "val": 0, "online": True}}
CPU = {
    "total": {"user": 1.0, "nice": 0.0, "system": 1.0, "idle": 98.0},
    "cpu": [
        {"online": True, "freq": {"min": 115200, "max": 1728000, "cur": 729600}, "idle": 82.0},
        {"online": False, "freq": {}, "idle": 0.0},
    ],
}


class JtopException(Exception):
    pass


class NVPModel:
    def __init__(self, mode_id: int, name: str) -> None:
        self.id, self.name = mode_id, name

    def __str__(self) -> str:
        return self.name


def fake_module(
    power: dict[str, Any] | None = None,
    nvp: tuple[int, str] = (1, "25W"),
    clocks: bool = False,
    service_interval: float | None = None,
    fail: str | None = None,
) -> SimpleNamespace:
    class jtop:
        def __init__(self, interval: float = 1.0) -> None:
            self.interval_user = interval
            self.interval = service_interval or interval
            self._closed = threading.Event()
            self.power = power or NANO_POWER
            self.gpu, self.temperature, self.memory, self.cpu = GPU, TEMPS, MEMORY, CPU
            self.nvpmodel = NVPModel(*nvp)
            self.jetson_clocks = clocks
            self.board = {"hardware": {"Model": "fake", "L4T": "36.4.3", "Jetpack": "6.2"}}

        def start(self) -> None:
            if fail:
                raise JtopException(fail)

        def ok(self, spin: bool = False) -> bool:
            # like jtop: block until the next sample, False once closed
            return not self._closed.wait(min(self.interval, 0.05))

        def close(self) -> None:
            self._closed.set()

    return SimpleNamespace(jtop=jtop, JtopException=JtopException)


def test_readings_follow_documented_units() -> None:
    jet = fake_module().jtop()
    by = {r.channel: r for r in readings_from_jtop(jet)}
    assert by["power_VDD_SOC"].value == 1540 and by["power_VDD_SOC"].unit == "mW"
    assert "power_VDD_IN" not in by  # jtop's `tot` is not a rail; the total follows our rule
    assert math.isnan(by["power_total"].value) and by["power_total"].status == "no_total_rule"
    assert by["gpu_freq"].value == pytest.approx(305.981) and by["gpu_load"].value == 4.8
    assert by["emc_freq"].value == 2133.0
    assert by["temp_cv0"].status == "sensor_offline" and math.isnan(by["temp_cv0"].value)
    assert by["cpu0_load"].value == pytest.approx(18.0) and by["cpu0_freq"].value == pytest.approx(729.6)
    assert by["cpu1_load"].status == "offline"


def test_agx_total_is_not_jtop_tot() -> None:
    rails = {name: {"power": mw, "online": True, "avg": mw // 2} for name, mw in AGX_RAILS.items()}
    power = {"rail": rails, "tot": {"power": sum(AGX_RAILS.values()), "online": True}}
    by = {r.channel: r.value for r in readings_from_jtop(fake_module(power=power).jtop())}
    assert by["power_total"] == AGX_RAILS["VDD_GPU_SOC"] + AGX_RAILS["VDD_CPU_CV"] + AGX_RAILS["VIN_SYS_5V0"]
    assert by["power_total"] != sum(AGX_RAILS.values())


def test_session_samples_and_state() -> None:
    opts = ReaderOptions(jtop_module=fake_module(nvp=(0, "MAXN"), clocks=True))
    with open_session("jtop", interval_s=0.5, options=opts) as session:
        t0 = time.perf_counter()
        time.sleep(0.3)
        t1 = time.perf_counter()
    assert session.source == "jtop"
    summary = session.summarize(t0, t1, 5)
    assert summary["nvpmodel_name"] == "MAXN" and summary["jetson_clocks"] == "on"
    assert "clocks_not_locked" not in summary["trust_flags"]
    assert "power_mode_not_maxn" not in summary["trust_flags"]
    assert summary["gpu_load_pct_median"] == 4.8 and summary["telemetry_samples"] >= 2


def test_power_mode_and_clock_flags() -> None:
    opts = ReaderOptions(jtop_module=fake_module(nvp=(1, "25W"), clocks=False))
    with open_session("jtop", interval_s=0.5, options=opts) as session:
        t0 = time.perf_counter()
        time.sleep(0.2)
        t1 = time.perf_counter()
    flags = session.summarize(t0, t1, 1)["trust_flags"].split(";")
    assert "clocks_not_locked" in flags and "power_mode_not_maxn" in flags


def test_interval_warnings(caplog: pytest.LogCaptureFixture) -> None:
    reader = JtopReader(interval_s=0.1, jtop_module=fake_module(service_interval=1.0))
    with caplog.at_level(logging.WARNING, logger="orinprof.telemetry.jtop"):
        reader.start(0.1)
        reader.stop()
    text = caplog.text
    assert "unreliable" in text and "not the requested" in text


@pytest.mark.parametrize(
    ("message", "fix"),
    [
        (
            "The jtop.service is not active. Please run:\nsudo jtop --install-service",
            "systemctl restart jtop.service",
        ),
        ("I can't access jtop.service.\nPlease logout or reboot this board.", "jtop group"),
        (
            "Mismatch version jtop service: [4.2.0] and client: [4.3.1]. Please run:\n sudo jtop --install-service",
            "--install-service",
        ),
    ],
)
def test_jtop_errors_become_one_line_reasons(message: str, fix: str) -> None:
    reader = JtopReader(jtop_module=fake_module(fail=message))
    probe = reader.probe()
    assert not probe.ok and fix in probe.reason and "\n" not in probe.reason
    assert fix in explain_jtop_error(message)


def test_named_jtop_raises_auto_falls_back(tmp_path: Any) -> None:
    broken = fake_module(fail="The jtop.service is not active. Please run:\nsudo jtop --install-service")
    opts = ReaderOptions(jtop_module=broken, tegrastats_cmd=[str(tmp_path / "none")], sysfs_root=tmp_path)
    with pytest.raises(OrinprofError, match="jtop"):
        open_session("jtop", options=opts)
    session = open_session("auto", options=opts)
    assert session.source != "jtop"
    assert "jtop: the jtop service is not active" in session.note
