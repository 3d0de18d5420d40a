"""Facts with one owner (issue 13 item 3): a second definition anywhere in ``src/`` fails here."""

from __future__ import annotations

import ast
from collections import defaultdict

from conftest import REPO

SRC = REPO / "src" / "orinprof"

#: function → the one module that may define it
OWNED_FUNCTIONS = {
    "cpu_model": "identity.py",  # "which CPU is this"
    "package_versions": "identity.py",  # run.json's versions
    "device_identity": "identity.py",  # "which Jetson module is this"
    "module_part": "identity.py",
    "get_device": "devices.py",  # the roofline device table
    "calibrate_cpu": "devices.py",
}
#: names that must not be assigned anywhere: the cards' ranges live in claims.toml only
FORBIDDEN_NAMES = {"CARD_RANGES"}


def _definitions() -> tuple[dict[str, list[str]], list[str]]:
    defined: dict[str, list[str]] = defaultdict(list)
    forbidden: list[str] = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if isinstance(node, ast.FunctionDef) and node.name in OWNED_FUNCTIONS:
                defined[node.name].append(rel)
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                forbidden += [f"{rel}: {t.id}" for t in targets if isinstance(t, ast.Name) and t.id in FORBIDDEN_NAMES]
    return defined, forbidden


def test_each_fact_is_defined_once_by_its_owner() -> None:
    defined, forbidden = _definitions()
    assert {name: sorted(where) for name, where in defined.items()} == {
        name: [owner] for name, owner in OWNED_FUNCTIONS.items()
    }
    assert forbidden == []
