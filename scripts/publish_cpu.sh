#!/usr/bin/env bash
# Every CPU result published in README.md and results/README.md, in one go. Run it on a quiet
# machine from the repository root with orinprof installed (the quick start's venv):
#
#   bash scripts/publish_cpu.sh            # OUT=results/cpu-YYYY-MM-DD by default
#
# What it runs, in order (each command's output is kept under $OUT):
#   1. the README quick start's main job (bert-base, five plans, seq 128, A/A control), timed
#   2. repeatability, placebo and A/A over 3 separate runs (scripts/trust_benchmarks.py repeat)
#   3. INT8 recipes on ONNX Runtime vs its own quantize_dynamic (scripts/cpu_benchmarks.py recipes)
#   4. cards 6 and 10: the pruning variants, interleaved in rounds (orinprof cards pruning)
#   5. the cost of the new measurement design against the previous release (trust_benchmarks cost)
#   6. card 3's outliers on the real MiniLM weights, then card verdicts over everything published
#   7. where INT8 pays: batch 1/8 × seq 128/512 on minilm-l6 (scripts/int8_sweep.py; bert-base at
#      batch 32 × seq 2048 would take hours on 2 cores)
#   8. the warm-up a plan needs at the start of a round (scripts/round_warmup_probe.py)
#   9. the audit's seq-384 attention figure re-measured with one class map (its TensorRT Q/DQ plans)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/cpu-$(date -u +%Y-%m-%d)}"
OLD_REV="${OLD_REV:-d42326a}" # the release before interleaved rounds (for the cost benchmark)
STEPS="${STEPS:-1 2 3 4 5 6 7 8 9}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 COLUMNS=80

step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if step 1; then
  start=$(date +%s)
  orinprof profile --model bert-base --precisions fp32,fp16,int8-attn,int8-ffn,int8-all --seq 128 \
    --aa-control --results-dir "$OUT" | tee "$OUT/quickstart.txt"
  echo "wall time of the quick start's main job: $(($(date +%s) - start)) s" | tee -a "$OUT/quickstart.txt"
fi
if step 2; then
  python scripts/trust_benchmarks.py repeat --runs 3 --model bert-base --seq 128 --out "$OUT/repeatability-runs" \
    | tee "$OUT/repeatability.txt"
  # the same with --long-run's 10 rounds: one disturbed round among 5 can push a placebo CI past ±5 %
  python scripts/trust_benchmarks.py repeat --runs 3 --model bert-base --seq 128 --extra-args "--rounds 10" \
    --out "$OUT/repeatability-10-rounds-runs" | tee "$OUT/repeatability-10-rounds.txt"
fi
if step 3; then
  python scripts/cpu_benchmarks.py recipes --model bert-base --seq 128 --rounds 10 --iterations 20 \
    | tee "$OUT/int8-recipes.txt"
fi
if step 4; then
  orinprof cards pruning --model bert-base --seq 128 --iterations 20 --results-dir "$OUT" | tee "$OUT/pruning.txt"
fi
if step 5; then
  old=$(mktemp -d)
  git worktree add -q --detach "$old/tree" "$OLD_REV"
  python scripts/trust_benchmarks.py cost --old-src "$old/tree/src" --model bert-base --seq 128 \
    --precisions fp32,int8-attn --out "$old/runs" | tee "$OUT/cost.txt"
  mkdir -p "$OUT/cost-runs" && cp -r "$old"/runs/new/* "$old"/runs/old/* "$OUT/cost-runs/"
  git worktree remove --force "$old/tree"
fi
if step 6; then
  rm -f "$OUT/outliers.csv" "$OUT/verdicts.csv" # regenerated here (orinprof itself never overwrites)
  orinprof cards outliers --model minilm-l6 --out "$OUT/outliers.csv" | tee "$OUT/outliers.txt"
  # every published set: this one (runs, outliers, pruning), its repeatability runs, the GPU runs
  orinprof cards validate "$OUT" "$OUT/repeatability-runs" "$OUT/repeatability-10-rounds-runs" \
    results/h200-*/runs-child-profiler \
    --out "$OUT/verdicts.csv" | tee "$OUT/validate.txt"
fi
if step 7; then
  python scripts/int8_sweep.py --model minilm-l6 --batches 1,8 --seqs 128,512 \
    --precisions fp32,int8-attn,int8-all --out "$OUT/sweep-runs" | tee "$OUT/int8-sweep.txt"
fi
if step 8; then
  python scripts/round_warmup_probe.py --model bert-base --seq 128 --plans fp32,int8-attn | tee "$OUT/round-warmup.txt"
fi
if step 9; then
  # results-audit 1.1: published −21 % at seq 384, "about −55 %" once attention rows are counted
  orinprof profile --model bert-base --seq 384 --precisions fp32,int8-attn --int8-recipe trt-qdq \
    --aa-control --results-dir "$OUT/seq384-runs" | tee "$OUT/seq384.txt"
fi
echo "done: $OUT"
