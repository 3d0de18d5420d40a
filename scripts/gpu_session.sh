#!/usr/bin/env bash
# What the lent GPU machine ran for issues 10 (item 4, GPU part of 8) and 14 (GPU part), stage by
# stage, from a copy of this checkout (run from its root; SageAttention travels as a wheel in whl/):
#
#     bash scripts/gpu_session.sh preflight   # versions, GPU tests, kernel listing, attention microbenchmark
#     bash scripts/gpu_session.sh bench       # bert-base e2e with/without the INT8 core; W8A8 recipes
#     bash scripts/gpu_session.sh republish   # orinprof profile, bert-base and llama-4l, CUDA graph
#
# Output: $OUT/log.txt and JSON lines / CSVs under $OUT (the device tool brings back 8 files).
set -uo pipefail
STAGE=${1:?stage: preflight | bench | republish}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log-$STAGE.txt") 2>&1
export PYTHONUNBUFFERED=1
if compgen -G "whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src"
else
  export PYTHONPATH="$PWD/src"
fi
echo "== $STAGE $(date -u +%FT%TZ)"

case "$STAGE" in
preflight)
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv
  python3 -c "import sys, torch, triton, sageattention, pandas, typer, onnx; import orinprof; \
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, \
'triton', triton.__version__, 'orinprof', orinprof.__file__)"
  timeout 200 python3 -m pytest -q -p no:cacheprovider -m gpu -k "kernel_time or sage" \
    tests/backends/test_torch_runner.py tests/backends/test_torch_attention.py 2>&1 | tail -40
  timeout 200 python3 scripts/gpu_int8_bench.py kernels --model bert-base --batch 1 --seq 128 \
    --plans fp16,int8-all --top 12 --out "$OUT"
  [ -n "${SKIP_ATTN:-}" ] || timeout 100 python3 scripts/gpu_int8_bench.py attn --batch 1,32 --rounds 3 --block 50 \
    --out "$OUT"
  ;;
bench)
  timeout 150 python3 scripts/gpu_int8_bench.py recipes --plans int8-all --batch 1,32 --seq 128 --rounds 5 \
    --block 100 --out "$OUT"
  timeout 240 python3 scripts/gpu_int8_bench.py e2e --batch 1,8,32 --seq 128,512 --rounds 5 --block 50 --out "$OUT"
  timeout 60 python3 scripts/gpu_int8_bench.py attn --batch 8 --rounds 3 --block 50 --out "$OUT"
  ;;
republish)
  RES=/tmp/results
  COMMON="--backend torch --device cuda --cuda-graph --seq ${SEQS:-128,512} --precisions fp16,int8-attn,int8-ffn,int8-all
    --telemetry nvml --rounds ${ROUNDS:-5} --block-s ${BLOCK_S:-0.5} --aa-control --results-dir $RES"
  # smoke first: kernel-time profiling in a child process; fall back to the timing process if it fails
  PROFILE=(python3 -m orinprof)
  if [ -z "${SKIP_SMOKE:-}" ] && ! timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu -k "kernel_time" \
    tests/backends/test_torch_runner.py 2>&1 | tail -3; then
    echo "== child-process profiling failed its smoke test: profiling in the timing process"
    PROFILE=(python3 scripts/gpu_profile.py --torch-option profile_process=same --)
  fi
  for model in ${MODELS:-bert-base llama-4l}; do
    timeout "${LIMIT_S:-280}" "${PROFILE[@]}" profile --model "$model" $COMMON
  done
  if [ -n "${SAGE:-}" ] && [ "$SECONDS" -lt "${SAGE_IF_BEFORE_S:-330}" ]; then
    timeout "${LIMIT_S:-280}" python3 scripts/gpu_profile.py --torch-option attn_core=sage -- \
      profile --model bert-base $COMMON
  fi
  tar czf "$OUT/results.tar.gz" -C "$RES" .
  ;;
*)
  echo "unknown stage $STAGE" && exit 2
  ;;
esac
echo "== done $(date -u +%FT%TZ)"
