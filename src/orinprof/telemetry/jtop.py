"""jetson-stats (``jtop``) reader, for jetson-stats >= 4.2 and 7.x.

Reads the documented client properties (``rbonghi/jetson_stats: jtop/jtop.py``; keys and units in
``shared/reference/jetson_anchors.md`` §1.2): ``power['rail'][name]['power']`` (mW, instantaneous;
``avg`` is a halving filter and is not used), ``gpu[...]['status']['load']`` (%) and
``['freq']['cur']``/``['GPC']`` (kHz), ``memory['EMC']`` (kHz, load %), ``temperature`` (°C,
-256 = offline), ``cpu['cpu'][i]`` (kHz, idle %), ``nvpmodel``, ``jetson_clocks``, ``board``.

``Power TOT`` is not used: on AGX Orin it is a plain sum of every rail, which counts
VDDQ_VDD2_1V8AO twice (it is inside VIN_SYS_5V0).  The total comes from
:func:`orinprof.telemetry.base.total_power_mw` like every other reader's.

``jtop`` is imported inside functions only; tests pass a fake module with the same API.
"""

from __future__ import annotations

import logging
import math
from types import ModuleType
from typing import Any

from orinprof.errors import OrinprofError
from orinprof.telemetry.base import Probe, Reader, Reading, clock, power_readings, temperature_reading

log = logging.getLogger(__name__)

#: jetson-stats says sampling faster than this is unreliable (rbonghi/jetson_stats issue #414).
MIN_RELIABLE_INTERVAL_S = 0.5

_INSTALL_HINT = (
    "install jetson-stats system-wide (`sudo pip3 install -U jetson-stats`) and use a venv made with "
    "--system-site-packages, or pip install 'orinprof[jetson]'"
)


def explain_jtop_error(message: str) -> str:
    """Map a ``JtopException`` message (jtop/jtop.py, 4.x and 7.x) to one line naming the fix."""
    text = " ".join(str(message).split())
    low = text.lower()
    if "not active" in low:
        return (
            "the jtop service is not active; run `sudo systemctl restart jtop.service` "
            "(jetson-stats 7.x: `sudo jtop --install-service`)"
        )
    if "can't access" in low or "permission" in low:
        return (
            "no permission for the jtop service socket /run/jtop.sock; add your user to the jtop group "
            "(`sudo usermod -aG jtop $USER`), then log out and in"
        )
    if "mismatch" in low:
        return (
            f"jtop client and service differ ({text}); reinstall the service with "
            "`sudo jtop --install-service` or `sudo systemctl restart jtop.service`"
        )
    return f"jtop failed: {text}"


def _import_jtop() -> ModuleType:
    import jtop  # jetson-stats; a device library, imported only here

    return jtop


class JtopReader(Reader):
    """``jtop_module``: the ``jtop`` package or a stand-in with ``jtop`` and ``JtopException``."""

    name = "jtop"

    def __init__(self, interval_s: float = 1.0, jtop_module: ModuleType | Any | None = None) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._module = jtop_module
        self._jetson: Any = None
        self._probe = self._discover()

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> Probe:
        if self._module is None:
            try:
                self._module = _import_jtop()
            except ImportError:
                return Probe(False, f"jetson-stats (jtop) is not installed; {_INSTALL_HINT}")
        exc_type = getattr(self._module, "JtopException", Exception)
        try:
            jetson = self._module.jtop(interval=max(self.interval_s, MIN_RELIABLE_INTERVAL_S))
            jetson.start()
        except exc_type as err:
            return Probe(False, explain_jtop_error(str(err)))
        except OSError as err:
            return Probe(False, f"cannot reach the jtop service ({err}); {explain_jtop_error('not active')}")
        try:
            self._read_state(jetson)
        finally:
            jetson.close()
        return Probe(True, f"jetson-stats, service interval {self.state.details.get('jtop_interval_s')} s")

    def _read_state(self, jetson: Any) -> None:
        nvp = _safe(lambda: jetson.nvpmodel)
        if nvp is not None:
            self.state.nvpmodel_id = _safe(lambda: int(nvp.id))
            self.state.nvpmodel_name = _safe(lambda: str(nvp.name)) or str(nvp)
        clocks = _safe(lambda: jetson.jetson_clocks)
        if clocks is not None:
            self.state.jetson_clocks = "on" if bool(clocks) else "off"
        board = _safe(lambda: jetson.board) or {}
        self.state.details["board"] = board
        self.state.details["jtop_interval_s"] = _safe(lambda: float(jetson.interval))
        temps = _safe(lambda: jetson.temperature) or {}
        trips = [
            float(v[key])
            for v in temps.values()
            if isinstance(v, dict)
            for key in ("max", "crit")
            if isinstance(v.get(key), (int, float)) and v[key] > 0
        ]
        self.state.throttle_temp_c = min(trips) if trips else None

    def probe(self) -> Probe:
        return self._probe

    # ------------------------------------------------------------------ sampling
    def open_impl(self) -> None:
        if not self._probe.ok:
            raise OrinprofError(f"jtop unavailable: {self._probe.reason}")
        if self.interval_s < MIN_RELIABLE_INTERVAL_S:
            log.warning(
                "jtop: interval %.3g s is below %.1f s, which jetson-stats calls unreliable; "
                "use --telemetry tegrastats for faster sampling",
                self.interval_s,
                MIN_RELIABLE_INTERVAL_S,
            )
        exc_type = getattr(self._module, "JtopException", Exception)
        assert self._module is not None
        try:
            self._jetson = self._module.jtop(interval=self.interval_s)
            self._jetson.start()
        except exc_type as err:
            raise OrinprofError(explain_jtop_error(str(err))) from err
        actual = _safe(lambda: float(self._jetson.interval))
        if actual is not None and not math.isclose(actual, self.interval_s, rel_tol=0.01):
            # the first client sets the service rate; a running jtop GUI or exporter fixes it
            log.warning("jtop: service samples every %.3g s, not the requested %.3g s", actual, self.interval_s)
            self.state.details["jtop_interval_s"] = actual

    def _run(self) -> None:
        jetson = self._jetson
        while not self._stop.is_set():
            if not jetson.ok():  # blocks until the service pushes the next sample
                if self._stop.is_set():
                    break
                raise RuntimeError("lost connection with the jtop service")
            self.record(clock(), self.read())

    def read(self) -> list[Reading]:
        return readings_from_jtop(self._jetson)

    def close_impl(self) -> None:
        if self._jetson is not None:
            try:
                self._jetson.close()
            except Exception as err:  # closing must not hide the run's results
                log.debug("jtop close failed: %s", err)
            self._jetson = None


def _safe(get: Any) -> Any:
    try:
        return get()
    except Exception:  # a property missing in this jetson-stats version
        return None


def readings_from_jtop(jetson: Any) -> list[Reading]:
    """One snapshot of a connected ``jtop`` object as long-table readings."""
    out: list[Reading] = []
    power = _safe(lambda: jetson.power) or {}
    rails = {
        name: float(rail["power"])
        for name, rail in (power.get("rail") or {}).items()
        if isinstance(rail, dict) and rail.get("online", True) and "power" in rail
    }
    out.extend(power_readings(rails))

    gpus = _safe(lambda: jetson.gpu) or {}
    for idx, gpu in enumerate(gpus.values()):
        prefix = "gpu" if idx == 0 else f"gpu{idx}"
        load = (gpu.get("status") or {}).get("load")
        out.append(Reading(f"{prefix}_load", float(load), "%") if load is not None else _absent(f"{prefix}_load", "%"))
        freq = gpu.get("freq") or {}
        gpcs = freq.get("GPC") or ([freq["cur"]] if "cur" in freq else [])
        for gpc, khz in enumerate(gpcs):
            out.append(Reading(prefix + "_freq" if gpc == 0 else f"{prefix}_freq_gpc{gpc}", khz / 1000.0, "MHz"))

    emc = (_safe(lambda: jetson.memory) or {}).get("EMC")
    if isinstance(emc, dict) and emc.get("online", True):
        if "cur" in emc:
            out.append(Reading("emc_freq", emc["cur"] / 1000.0, "MHz"))
        if "val" in emc:
            out.append(Reading("emc_load", float(emc["val"]), "%"))

    for name, temp in (_safe(lambda: jetson.temperature) or {}).items():
        value = temp.get("temp") if isinstance(temp, dict) else None
        online = temp.get("online", True) if isinstance(temp, dict) else False
        out.append(temperature_reading(name, float(value) if (value is not None and online) else -256.0))

    cpus = (_safe(lambda: jetson.cpu) or {}).get("cpu") or []
    for idx, cpu in enumerate(cpus):
        if not cpu.get("online", True):
            out.append(Reading(f"cpu{idx}_load", math.nan, "%", "offline"))
            out.append(Reading(f"cpu{idx}_freq", math.nan, "MHz", "offline"))
            continue
        if "idle" in cpu:
            out.append(Reading(f"cpu{idx}_load", 100.0 - float(cpu["idle"]), "%"))
        cur = (cpu.get("freq") or {}).get("cur")
        if cur is not None:
            out.append(Reading(f"cpu{idx}_freq", cur / 1000.0, "MHz"))
    return out


def _absent(channel: str, unit: str) -> Reading:
    return Reading(channel, math.nan, unit, "not_reported")
