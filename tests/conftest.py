"""Shared test helpers: where the recorded fixtures live (``tests/fixtures``, inside the repository).

Everything a test reads is in the repository, so a clone anywhere passes its own tests
(``scripts/test.sh`` runs the suite from a copy of the tracked files alone to keep it so).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: recorded TensorRT / Jetson outputs and the seed deck, with licences and provenance (README.md there)
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the whole test session (exports are deterministic)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_export(models_dir: Path):  # type: ignore[no-untyped-def]
    """Export a tiny preset once per session: ``tiny_export("bert-tiny")``."""
    from orinprof import export

    cache: dict[str, object] = {}

    def get(name: str, seq: int | None = None):  # type: ignore[no-untyped-def]
        key = f"{name}:{seq}"
        if key not in cache:
            cache[key] = export.export_preset(name, 1, seq, 17, models_dir)
        return cache[key]

    return get
