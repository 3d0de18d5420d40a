"""The repository is self-contained: tests read only files inside it, and every fixture is present.

A clone anywhere must pass its own tests (issue 12: the suite used to read ``../shared`` beside
the checkout and failed in a fresh clone).  ``scripts/test.sh`` also runs the suite from a copy of
the repository alone; these tests catch the same mistakes in seconds.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO

#: ways code has reached outside the repository (each was in this repository once, or is the
#: absolute form of the same folder)
OUTSIDE_REFERENCES = {
    "../shared": re.compile(r"\.\./shared"),
    "REPO.parent": re.compile(r"\bREPO\.parent\b"),
    'a path joined with ".."': re.compile(r"/\s*[\"']\.\.[\"']"),
    'a path joined with "shared"': re.compile(r"/\s*[\"']shared[\"']"),
    "/work/shared": re.compile(r"/work/shared"),
}
CODE_SUFFIXES = {".py", ".sh", ".toml", ".ini", ".cfg"}


def _outside_references(text: str) -> list[str]:
    return [name for name, pattern in OUTSIDE_REFERENCES.items() if pattern.search(text)]


def _code_files() -> list[Path]:
    roots = [REPO / "src", REPO / "tests", REPO / "scripts", REPO / ".ci"]
    files = [p for root in roots for p in root.rglob("*") if p.is_file()]
    return sorted(
        p
        for p in files
        if (p.suffix in CODE_SUFFIXES or p.parent.name == ".ci")
        and FIXTURES not in p.parents
        and "__pycache__" not in p.parts
        and p != Path(__file__).resolve()
    )


@pytest.mark.parametrize(
    "line",
    [
        'SHARED = REPO.parent / "shared"',
        'FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"',
        'seed = Path("../shared/seed/000.txt")',
        "LOG = '/work/shared/fixtures/tegrastats_logs/x.txt'",
    ],
)
def test_the_detector_catches_the_forms_this_repository_once_used(line: str) -> None:
    assert _outside_references(line)


def test_no_code_reads_files_beside_the_checkout() -> None:
    files = _code_files()
    assert REPO / "tests" / "conftest.py" in files and REPO / "scripts" / "test.sh" in files
    offenders = {
        str(p.relative_to(REPO)): found for p in files if (found := _outside_references(p.read_text(errors="replace")))
    }
    assert offenders == {}, "copy what the tests need into tests/fixtures/ (with its licence and a README row)"


def _provenance_rows() -> dict[str, tuple[int, str]]:
    """``file -> (bytes, sha256)`` from the table in tests/fixtures/README.md."""
    rows = {}
    for line in (FIXTURES / "README.md").read_text().splitlines():
        match = re.match(r"\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|", line)
        if match:
            rows[match[1]] = (int(match[2]), match[3])
    return rows


def test_every_fixture_is_listed_with_its_provenance_and_matches_it() -> None:
    rows = _provenance_rows()
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()} - {"README.md"}
    assert on_disk == set(rows), "every file in tests/fixtures/ has one README row, and every row a file"
    for name, (size, sha256) in rows.items():
        data = (FIXTURES / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha256), f"{name} differs from its README row"


def test_every_fixture_folder_carries_its_licence() -> None:
    # the seed deck is the project's own input; every third-party folder has its licence text
    third_party = [d for d in FIXTURES.iterdir() if d.is_dir() and d.name != "seed"]
    assert third_party
    for folder in third_party:
        assert list(folder.glob("LICENSE*")), f"{folder.name}/ has no LICENSE file"
