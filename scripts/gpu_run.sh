#!/usr/bin/env bash
# The one script for the lent GPU machine (H100/H200): torch-backend profiles of bert-base and
# llama-4l, a CUDA-graph variant, the GPU tests, and the three benchmarks.  Run from the repo root:
#
#     PYTHONUNBUFFERED=1 bash scripts/gpu_run.sh
#
# Everything is teed to $OUT/log.txt; run directories are packed into $OUT/results.tar.gz (the
# device tool brings back at most 8 files), benchmark JSON lines go to $OUT/benchmarks.jsonl.
# Each stage has its own time limit inside a total budget (default 520 s, under the tool's 10-minute
# cap), and a failing stage is logged and skipped so that the later stages still run.
set -euo pipefail

OUT="${OUT:-/tmp/orinprof-gpu-out}"
BUDGET_S="${BUDGET_S:-520}"
RESULTS=/tmp/orinprof-results
PY="${PYTHON:-python3}"
mkdir -p "$OUT" "$RESULTS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/log.txt") 2>&1

pack() {
  tar czf "$OUT/results.tar.gz" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")" || true
  echo "== packed $(find "$RESULTS" -name summary.csv | wc -l) run directories into $OUT/results.tar.gz"
}
trap pack EXIT

# stage NAME LIMIT_S CMD...: run with a limit capped by what is left of the budget; never abort
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET_S - SECONDS))
  if ((left < 20)); then
    echo "== SKIP $name: only ${left}s of the ${BUDGET_S}s budget left"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "== [$(date +%T) +${SECONDS}s] $name (limit ${limit}s)"
  local t0=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "$@" || rc=$?
  echo "== [$(date +%T) +${SECONDS}s] $name: rc=$rc in $((SECONDS - t0))s"
}

echo "== orinprof GPU run: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) on $(hostname)"
nvidia-smi | tee "$OUT/nvidia-smi.txt" || echo "nvidia-smi failed"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
  --format=csv || true
"$PY" - <<'EOF' || echo "environment report failed"
import sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda)
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "| capability", torch.cuda.get_device_capability(0))
else:
    print("device: NO CUDA DEVICE (the profiles below will fail; benchmarks fall back to CPU smoke)")
for mod in ("pandas", "onnx", "onnxruntime", "typer", "rich", "pynvml", "torchao", "pytest"):
    try:
        m = __import__(mod)
        print(f"  {mod} {getattr(m, '__version__', '?')}")
    except ImportError:
        print(f"  {mod} MISSING")
EOF

# NVML telemetry when it answers; a named source that fails would stop the profile, so fall back
TELEMETRY=auto
if "$PY" -c "import pynvml; pynvml.nvmlInit(); pynvml.nvmlDeviceGetPowerUsage(pynvml.nvmlDeviceGetHandleByIndex(0))" 2>/dev/null; then
  TELEMETRY=nvml
fi
echo "== telemetry: $TELEMETRY"

# --min-duration-s keeps each timed window long enough for ~20 NVML power samples (energy/inference)
COMMON=(--backend torch --device cuda --telemetry "$TELEMETRY" --results-dir "$RESULTS"
  --iterations 100 --min-duration-s 2 --warmup 20 --warmup-s 0.5 --profile-iterations 20)
PLANS=(--precisions fp16,int8-attn,int8-ffn,int8-all)

# CUDA-graph replay first: eager PyTorch at batch 1 is launch-bound, the graph shows the GPU's time
stage "profile bert-base, CUDA graph replay" 150 "$PY" -m orinprof profile --model bert-base \
  --seq 128,256,384,512 "${PLANS[@]}" --cuda-graph "${COMMON[@]}"
stage "profile llama-4l, CUDA graph replay" 90 "$PY" -m orinprof profile --model llama-4l --seq 128,512 \
  "${PLANS[@]}" --cuda-graph "${COMMON[@]}"
stage "profile bert-base, eager" 150 "$PY" -m orinprof profile --model bert-base --seq 128,256,384,512 \
  "${PLANS[@]}" "${COMMON[@]}"
stage "profile llama-4l, eager" 80 "$PY" -m orinprof profile --model llama-4l --seq 128,512 \
  "${PLANS[@]}" "${COMMON[@]}"

if "$PY" -c "import pytest" 2>/dev/null; then
  stage "GPU tests" 60 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/backends/test_torch_runner.py
fi

for bench in overhead int8 roofline; do
  stage "benchmark $bench" 120 bash -c "set -o pipefail; '$PY' scripts/gpu_benchmarks.py $bench | tee /tmp/bench_$bench.txt"
  grep -h '^{' "/tmp/bench_$bench.txt" >>"$OUT/benchmarks.jsonl" 2>/dev/null || true
done

echo "== done in ${SECONDS}s"
