"""``orinprof doctor``: what is available here, and the next step for each missing piece."""

from __future__ import annotations

import pandas as pd

from orinprof.cli import options as O
from orinprof.cli import tables as T
from orinprof.cli.app import command, out
from orinprof.cli.tables import Col

CHECKS = (
    T.text("area"),
    T.text("item"),
    Col("status", ("ok",), lambda r: "ok" if r["ok"] else "missing", numeric=False,
        style=lambda r: "green" if r["ok"] else "yellow"),
    T.text("detail"),
    T.text("next_step", "next step"),
)  # fmt: skip


@command("doctor")
def doctor(wide: O.Wide = False) -> None:
    """What is available here, and the next step for each gap.

    Backends, runtimes, telemetry sources, the device and its power mode.

    Example: orinprof doctor
    """
    from orinprof.doctor import doctor_checks

    rows = [
        {"area": c.area, "item": c.item, "ok": c.ok, "detail": c.detail, "next_step": c.next_step}
        for c in doctor_checks()
    ]
    T.show(out, pd.DataFrame(rows), CHECKS, "orinprof doctor", wide=wide, hoist=False)
