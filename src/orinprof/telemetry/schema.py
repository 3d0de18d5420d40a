"""Declares the ``telemetry`` table (``telemetry.csv``) with :func:`orinprof.results.register`."""

from __future__ import annotations

from orinprof.results import Column, Table, register

TELEMETRY_TABLE = register(
    Table(
        name="telemetry",
        file="telemetry.csv",
        description=(
            "Raw instantaneous telemetry samples taken beside a timing run, one row per channel per sample "
            "(long format).  Channel names are shared by all sources: `power_<RAIL>` and `power_total` (mW; "
            "the total rule is in docs/telemetry.md), `gpu_freq`/`gpu_freq_gpc<N>`, `emc_freq`, `mem_freq`, "
            "`cpu<N>_freq` (MHz), `gpu_load`, `emc_load`, `cpu<N>_load` (%), `temp_<sensor>` (°C), "
            "`engine_<name>_freq` (MHz), `throttle_reasons` (NVML bitmask), `energy_counter` (NVML, mJ)."
        ),
        keys=("t_s", "channel"),
        open_ended=True,
        columns=(
            Column(
                "t_s",
                "float",
                "sample time on `time.perf_counter()` (seconds since the first line for "
                "`orinprof telemetry parse-tegrastats`)",
                "s",
            ),
            Column("source", "str", "reader: `jtop`, `tegrastats`, `nvml` or `host`"),
            Column("channel", "str", "what was measured (see the table description)"),
            Column("value", "float", "instantaneous value; empty when `status` is not `ok`", "see `unit`", True),
            Column("unit", "str", "`mW`, `MHz`, `%`, `C`, `MB`, `mJ` or `bitmask`"),
            Column(
                "status",
                "str",
                "`ok`, `offline` (CPU core off), `sensor_offline` (-256 °C), `sensor_absent`, `off` (engine "
                "idle), `not_reported`, `not_supported` (NVML), `no_total_rule` (rails without a total rule)",
            ),
        ),
    )
)
