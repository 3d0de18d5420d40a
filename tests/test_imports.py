"""`import orinprof`, every module and `orinprof --help` work without loading a device library
(Polygraphy's test_dependencies idea): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

DEVICE_LIBS = ("torch", "onnxruntime", "tensorrt", "pynvml", "jtop", "pycuda", "cuda")
#: modules whose purpose is to hold torch code: imported only from inside functions elsewhere
TORCH_MODULES = {"orinprof.models.torch_modules"}

SCRIPT = f"""
import importlib, pkgutil, sys
import orinprof
names = [m.name for m in pkgutil.walk_packages(orinprof.__path__, "orinprof.")]
skip = {sorted(TORCH_MODULES)!r}
for name in names:
    if name in skip or name.endswith("__main__"):
        continue
    importlib.import_module(name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({DEVICE_LIBS!r}))
print(",".join(loaded))
"""


def test_no_device_library_is_imported() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "", f"device libraries imported at module level: {out.stdout}"


def test_cli_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orinprof", "--help"], capture_output=True, text=True, cwd=REPO, check=True
    )
    for verb in (
        "profile",
        "compare",
        "layers",
        "doctor",
        "cards",
        "report",
        "ingest",
        "lint-qdq",
        "project",
    ):
        assert verb in out.stdout, verb
