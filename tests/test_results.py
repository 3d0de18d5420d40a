from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from orinprof import results
from orinprof.errors import OrinprofError


def test_schema_doc_is_current() -> None:
    doc = (REPO / "docs" / "results-schema.md").read_text()
    assert doc == results.schema_markdown(), "regenerate: python -m orinprof.results > docs/results-schema.md"


def test_every_core_table_is_documented() -> None:
    doc = results.schema_markdown()
    for name in ("layer_classes", "layers", "latencies", "class_times", "summary", "comparison", "telemetry"):
        assert f"## `{name}`" in doc


NOW = datetime(2026, 11, 30, 5, 0, 0, tzinfo=timezone.utc)  # one clock second for every id below


def _scripted_suffixes(monkeypatch: pytest.MonkeyPatch, suffixes: Iterable[str]) -> list[str]:
    """Replace the random suffix by a fixed sequence (thread-safe); returns the list of draws made."""
    source = iter(suffixes)
    drawn: list[str] = []
    lock = threading.Lock()

    def draw() -> str:
        with lock:
            drawn.append(next(source))
            return drawn[-1]

    monkeypatch.setattr(results, "_random_suffix", draw)
    monkeypatch.setattr(results, "_issued_run_ids", set())  # ids issued by earlier tests do not count
    return drawn


def test_run_ids_stay_unique_in_a_process_when_the_random_suffix_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _scripted_suffixes(monkeypatch, ["aaaa", "aaaa", "aaaa", "bbbb"])
    first = results.new_run_id("m", "b", NOW)
    second = results.new_run_id("m", "b", NOW)
    assert (first, second) == ("20261130T050000-m-b-aaaa", "20261130T050000-m-b-bbbb")
    assert drawn == ["aaaa", "aaaa", "aaaa", "bbbb"]  # the repeats were drawn and refused


def test_thousands_of_run_ids_in_one_second_are_all_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3000 random 4-hex suffixes repeat ~65 times (birthday bound); every repeat must be redrawn
    monkeypatch.setattr(results, "_issued_run_ids", set())
    ids = [results.new_run_id("m", "b", NOW) for _ in range(3000)]
    assert len(set(ids)) == 3000


def test_run_ids_give_up_with_an_error_when_the_suffix_never_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    _scripted_suffixes(monkeypatch, itertools.repeat("cccc"))
    results.new_run_id("m", "b", NOW)
    with pytest.raises(OrinprofError, match="no unused run id"):
        results.new_run_id("m", "b", NOW)


def test_a_fixed_run_dir_is_never_reused(tmp_path: Path) -> None:
    d = results.create_run_dir(tmp_path, "x")
    (d / "run.json").write_text("{}")
    with pytest.raises(OrinprofError, match="already exists"):
        results.create_run_dir(tmp_path, "x")
    assert [p.name for p in d.iterdir()] == ["run.json"]


def test_new_run_dir_skips_a_directory_another_process_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = tmp_path / "20261130T050000-m-b-aaaa"  # another process's run with the same id
    taken.mkdir()
    (taken / "run.json").write_text("theirs")
    drawn = _scripted_suffixes(monkeypatch, ["aaaa", "bbbb"])
    run_dir = results.new_run_dir(tmp_path, "m", "b", NOW)
    assert run_dir == tmp_path / "20261130T050000-m-b-bbbb" and run_dir.is_dir()
    assert list(run_dir.iterdir()) == [] and (taken / "run.json").read_text() == "theirs"
    assert drawn == ["aaaa", "bbbb"]


def test_run_dirs_are_unique_and_never_reused_under_concurrent_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every suffix is drawn twice, so about half the draws collide with an id already issued
    _scripted_suffixes(monkeypatch, (f"{i // 2:04x}" for i in itertools.count()))
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: results.new_run_dir(tmp_path, "m", "b", NOW), range(64)))
    assert len(set(made)) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in made)


_OTHER_PROCESS = """
import itertools, sys
from datetime import datetime, timezone
from pathlib import Path
from orinprof import results
suffixes = (f"{i:04x}" for i in itertools.count())  # the same sequence in every process: all collide
results._random_suffix = lambda: next(suffixes)
now = datetime(2026, 11, 30, 5, 0, 0, tzinfo=timezone.utc)
for _ in range(20):
    print(results.new_run_dir(Path(sys.argv[1]), "m", "b", now).name)
"""


def test_concurrent_processes_with_identical_suffixes_get_distinct_run_dirs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(results.__file__).parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OTHER_PROCESS, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(3)
    ]
    names = [out.split() for out, _ in (p.communicate(timeout=120) for p in procs)]
    assert [p.returncode for p in procs] == [0, 0, 0]
    every = [name for batch in names for name in batch]
    assert len(every) == 60 and len(set(every)) == 60  # no directory handed to two processes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(every)


def test_check_rejects_missing_columns() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        results.check(pd.DataFrame({"run_id": ["a"]}), "latencies")


def test_read_table_refuses_other_schema_versions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"schema_version": "9.0"}')
    pd.DataFrame({c: [1] for c in results.TABLES["latencies"].names}).to_csv(run / "latencies.csv", index=False)
    with pytest.raises(OrinprofError, match=r"schema 9\.0"):
        results.read_table(run, "latencies")
