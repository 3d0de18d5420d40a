"""Shared test helpers: where the recorded fixtures live (``../shared`` beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared() -> Path:
    return SHARED


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
