"""mypy really type-checks TensorRT calls against the vendored tensorrt-stubs 10.13 (typings/).

One mypy run over the backend package plus a snippet with deliberate mistakes: the package must be
clean and each mistake must be reported.  Runs in-process through ``mypy.api``."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = """
from __future__ import annotations


def launch(context: "tensorrt.IExecutionContext") -> None:
    context.execute_async_v3("x")


def inspect(engine: "tensorrt.ICudaEngine") -> int:
    return engine.no_such_attr


def ok(context: "tensorrt.IExecutionContext", stream: int) -> bool:
    return context.execute_async_v3(stream)


import tensorrt
"""


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory):
    snippet = tmp_path_factory.mktemp("typing") / "trt_snippet.py"
    snippet.write_text(SNIPPET)
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(REPO / "mypy-tensorrt.ini"),
            "--cache-dir",
            str(tmp_path_factory.mktemp("mypy_cache")),
            "--no-error-summary",
            str(REPO / "src" / "orinprof" / "backends" / "tensorrt"),
            str(snippet),
        ]
    )
    return stdout, stderr, status


def test_wrong_argument_type_to_execute_async_v3_is_reported(mypy_report):
    stdout, _, status = mypy_report
    assert status == 1
    assert re.search(
        r'trt_snippet\.py:6: error: Argument 1 to "execute_async_v3" of "IExecutionContext" '
        r'has incompatible type "str"; expected "int"',
        stdout,
    ), stdout


def test_unknown_engine_attribute_is_reported(mypy_report):
    stdout, _, _ = mypy_report
    assert re.search(r'trt_snippet\.py:10: error: "ICudaEngine" has no attribute "no_such_attr"', stdout), stdout


def test_backend_package_and_correct_calls_are_clean(mypy_report):
    stdout, stderr, _ = mypy_report
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, stdout  # exactly the two planted mistakes
    assert all("trt_snippet.py" in line for line in errors), stdout
    assert "tensorrt_libs" not in stdout + stderr  # the stub patch holds
