"""docs/architecture.md stays true: every module and registry entry is on the page, and every module
the page names exists (the sqlite-utils habit: documentation checked by a test)."""

from __future__ import annotations

import re
from pathlib import Path

from orinprof.backends import BACKENDS
from orinprof.plans import PLANS
from orinprof.telemetry import READERS

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "orinprof"
DOC = (REPO / "docs" / "architecture.md").read_text()


def _top_level_units() -> list[str]:
    """Top-level modules (``x.py``) and packages (``x/``) of orinprof, as the page names them."""
    units = [p.name for p in SRC.glob("*.py") if not p.name.startswith("_")]
    units += [p.name + "/" for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    return sorted(units)


def test_every_module_and_package_is_on_the_page() -> None:
    missing = [u for u in _top_level_units() if f"`{u}" not in DOC]
    assert not missing, f"docs/architecture.md does not mention {missing}"


def test_every_module_the_page_names_exists() -> None:
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)*\.py|[a-z_]+/)`", DOC))
    absent = [n for n in named if not (REPO / n).exists() and not any(SRC.rglob(n.rstrip("/")))]
    assert not absent, f"docs/architecture.md names modules that do not exist: {absent}"


def test_every_backend_reader_and_plan_is_on_the_page() -> None:
    for name in (*BACKENDS, *READERS, *PLANS):
        assert f"`{name}`" in DOC or f"`{name}" in DOC, name


def test_the_capabilities_named_exist_on_the_runner() -> None:
    from orinprof.backends.base import Runner

    for cap in ("consumes", "returns_outputs", "engine_layers", "int8_recipes"):
        assert hasattr(Runner, cap), cap
        assert f"`{cap}`" in DOC, cap
