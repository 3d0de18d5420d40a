#!/usr/bin/env bash
# Validate the INT8 drill-card claims on a Jetson AGX Orin with JetPack 6.x: one command.
#
#   scripts/orin_validate.sh            # from anywhere; runs in the repository root
#   scripts/orin_validate.sh --dry-run  # print every command and builder setting, run nothing
#
# Steps:
#   1. device, L4T/JetPack, CUDA version (/usr/local/cuda/version.json); JetPack 5 is refused;
#   2. system packages: python3-venv and python3-dev (it says what to apt install);
#   3. a --system-site-packages venv (JetPack's TensorRT and NVIDIA's torch stay visible), orinprof
#      installed with numpy < 2 as a constraint (NVIDIA's Jetson torch is built against numpy 1.x);
#   4. cuda-python pinned to the JetPack's CUDA (12.2.* on 6.0, 12.6.* on 6.1/6.2), checked with one
#      real call; on failure pycuda (built with nvcc from /usr/local/cuda/bin), else orinprof uses
#      the system libcudart by itself;
#   5. MAXN and locked clocks when sudo works without a password; otherwise it records that they
#      were not set (it never asks for a password);
#   6. the plans: exported here when torch works, else the ONNX files under models/<preset>/ copied
#      from a host (orinprof export); lint-qdq on every INT8 plan;
#   7. orinprof profile with --backend tensorrt and --backend trtexec, all plans, --cuda-graph,
#      --long-run (≥ 3 s blocks, ≥ 10 interleaved rounds) and --aa-control (the noise floor);
#   8. the four first-run checks (cuda-python probe, fused_mha fp16 vs int8-attn, ForeignNode count
#      and share, numpy/torch), orinprof compare, and one tarball to send back.
#
# Environment overrides: VENV (.venv-orin), MODEL (bert-base), SEQS (128,256,384,512),
# PRECISIONS (fp32,fp16,int8-attn,int8-ffn,int8-all), RESULTS (results/<device>-<date>),
# NO_CLOCK_LOCK=1 (leave power mode and clocks alone).
set -euo pipefail

DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h | --help)
            sed -n '2,24p' "$0"
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (use --dry-run or --help)" >&2
            exit 2
            ;;
    esac
done

cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-orin}
MODEL=${MODEL:-bert-base}
SEQS=${SEQS:-128,256,384,512}
PRECISIONS=${PRECISIONS:-fp32,fp16,int8-attn,int8-ffn,int8-all}
BACKENDS=(tensorrt trtexec)

say() { printf '\n== %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
# run CMD…: print it; execute it unless --dry-run
run() {
    printf '+ %s\n' "$*"
    if ((DRY_RUN)); then return 0; fi
    "$@"
}

# ---------------------------------------------------------------- 1. device, JetPack, CUDA
device="unknown-device"
if [[ -r /proc/device-tree/model ]]; then
    device=$(tr -d '\0' < /proc/device-tree/model)
fi
device_slug=$(printf '%s' "$device" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
RESULTS=${RESULTS:-results/${device_slug}-$(date +%Y%m%d)}
LOGS="$RESULTS/validate"
say "device: $device$( ((DRY_RUN)) && echo ' (dry run: nothing is executed)')"
l4t=""
if [[ -r /etc/nv_tegra_release ]]; then
    l4t=$(head -n 1 /etc/nv_tegra_release)
    echo "L4T: $l4t"
    if [[ "$l4t" == *"R35"* || "$l4t" == *"R34"* || "$l4t" == *"R32"* ]]; then
        echo "JetPack 5 or older is not supported (TensorRT 8.5 and Python 3.8): flash JetPack 6.x" >&2
        ((DRY_RUN)) || exit 1
    fi
else
    warn "no /etc/nv_tegra_release: this does not look like a Jetson"
fi
cuda_version=""
if [[ -r /usr/local/cuda/version.json ]]; then
    cuda_version=$(python3 -c 'import json; print(json.load(open("/usr/local/cuda/version.json"))["cuda"]["version"])' 2> /dev/null || true)
fi
cuda_mm=$(printf '%s' "$cuda_version" | cut -d. -f1,2)
cuda_pin="cuda-python==${cuda_mm:-12.6}.*"
echo "CUDA: ${cuda_version:-unknown (no /usr/local/cuda/version.json)}; cuda-python pin: $cuda_pin"

# ---------------------------------------------------------------- 2. system packages
say "system packages"
missing=()
python3 -c 'import ensurepip, venv' 2> /dev/null || missing+=(python3-venv)
py_include=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2> /dev/null || echo /nonexistent)
[[ -f "$py_include/Python.h" ]] || missing+=(python3-dev)
if ((${#missing[@]})); then
    echo "missing: ${missing[*]}   install with:  sudo apt install ${missing[*]}" >&2
    ((DRY_RUN)) || exit 1
else
    echo "python3-venv and python3-dev present"
fi

# ---------------------------------------------------------------- 3. venv and orinprof
say "virtual environment $VENV (--system-site-packages: JetPack's TensorRT stays visible)"
[[ -d "$VENV" ]] || run python3 -m venv --system-site-packages "$VENV"
if ((!DRY_RUN)); then
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
fi
constraints="$LOGS/constraints.txt"
run mkdir -p "$LOGS"
printf '+ echo "numpy<2" > %s\n' "$constraints"
((DRY_RUN)) || echo 'numpy<2' > "$constraints"
run python -m pip install --upgrade pip
# [ort] and [jetson] only: torch comes from NVIDIA's Jetson wheel, tensorrt from JetPack
run python -m pip install -c "$constraints" -e '.[ort,jetson]'
run python -c 'import numpy; print("numpy", numpy.__version__)'
run python -c 'import tensorrt; print("TensorRT", tensorrt.__version__)'

# ---------------------------------------------------------------- 4. CUDA binding
say "CUDA binding for the TensorRT backend"
probe_cmd='from cuda.bindings import runtime as r; print("cudaGetDeviceCount:", r.cudaGetDeviceCount())'
probe_old='from cuda import cudart as r; print("cudaGetDeviceCount:", r.cudaGetDeviceCount())'
cuda_probe="not run"
run python -m pip install -c "$constraints" "$cuda_pin"
if ((DRY_RUN)); then
    printf "+ python -c '%s'\n  (cuda-python < 12.8: python -c '%s')\n" "$probe_cmd" "$probe_old"
    printf '+ on failure: PATH=/usr/local/cuda/bin:$PATH python -m pip install pycuda\n'
else
    if out=$(python -c "$probe_cmd" 2>&1 || python -c "$probe_old" 2>&1) && [[ "$out" == *"cudaSuccess"* ]]; then
        cuda_probe="ok: $out"
    else
        cuda_probe="failed: $out"
        warn "cuda-python $cuda_pin does not work with this driver: trying pycuda"
        PATH=/usr/local/cuda/bin:$PATH python -m pip install -c "$constraints" pycuda \
            || warn "pycuda did not build; orinprof falls back to the system libcudart"
    fi
    echo "cuda-python probe: $cuda_probe"
fi

# ---------------------------------------------------------------- 5. power mode and clocks
say "power mode and clocks"
power_log="$LOGS/power.txt"
if ((DRY_RUN)); then
    printf '+ sudo -n nvpmodel -m 0 && sudo -n jetson_clocks   (only if sudo needs no password; NO_CLOCK_LOCK=1 skips)\n'
    printf '+ nvpmodel -q; sudo -n jetson_clocks --show  > %s\n' "$power_log"
else
    if [[ "${NO_CLOCK_LOCK:-0}" != 1 ]] && sudo -n true 2> /dev/null; then
        { sudo -n nvpmodel -m 0 && sudo -n jetson_clocks && echo "locked: MAXN + jetson_clocks"; } > "$power_log" 2>&1 \
            || echo "could not set MAXN/clocks (see above)" >> "$power_log"
    else
        echo "NOT locked: sudo needs a password (or NO_CLOCK_LOCK=1); numbers may not match the cards" > "$power_log"
        echo "  to lock: sudo nvpmodel -m 0 && sudo jetson_clocks" >> "$power_log"
    fi
    { nvpmodel -q 2>&1 || true; sudo -n jetson_clocks --show 2>&1 || echo "jetson_clocks --show needs root"; } >> "$power_log"
    cat "$power_log"
fi

# ---------------------------------------------------------------- 6. plans
say "plans for $MODEL (seq $SEQS; $PRECISIONS)"
command -v trtexec > /dev/null || export PATH="$PATH:/usr/src/tensorrt/bin"
if ((!DRY_RUN)) && ! python -c 'import torch' 2> /dev/null; then
    if [[ -z "$(find "models/$MODEL" -name '*.onnx' 2> /dev/null | head -n 1)" ]]; then
        echo "torch is not installed here and models/$MODEL/ holds no ONNX files." >&2
        echo "  on a host with torch: orinprof export --model $MODEL --seq $SEQS --precisions $PRECISIONS" >&2
        echo "  then copy models/$MODEL/ into this repository's models/ and re-run" >&2
        exit 1
    fi
    echo "torch not installed: using the plans exported on a host, under models/$MODEL/"
else
    run orinprof export --model "$MODEL" --seq "$SEQS" --precisions "$PRECISIONS"
fi
echo "plan files under models/$MODEL/:"
find "models/$MODEL" -name '*.onnx' 2> /dev/null | sort | sed 's/^/  /' || true
echo "builder settings per plan (trtexec; the Python API sets the same builder flags):"
python3 - "$PRECISIONS" << 'PY' 2> /dev/null || echo "  (orinprof not importable yet: chosen at run time by the TensorRT version)"
import sys
from orinprof.backends.trtexec.runner import precision_flags
from orinprof.plans import get_plan
for plan in sys.argv[1].split(","):
    weak = " ".join(precision_flags(plan, 10, False)) or "(none)"
    strong = "refused (FP32 Q/DQ)" if get_plan(plan).is_int8 else "no flags"
    print(f"  {plan:10s} 8.6/10.3 (weak): {weak:14s} 11.x (strong): {strong}")
print("  build: --profilingVerbosity=detailed --skipInference --exportLayerInfo")
print("         --timingCacheFile=<work dir>/trtexec-<version>.timing.cache")
print("  timing: --loadEngine --noDataTransfers --useSpinWait --useCudaGraph --exportTimes")
print("  profiling: --loadEngine --exportProfile --exportLayerInfo (a separate launch)")
PY
say "Q/DQ lint of the INT8 plans"
while IFS= read -r onnx_file; do
    run orinprof lint-qdq "$onnx_file" || warn "lint-qdq failed on $onnx_file"
done < <(find models -name '*int8*.onnx' 2> /dev/null | sort)

# ---------------------------------------------------------------- 7. measure
failed=()
for backend in "${BACKENDS[@]}"; do
    say "profiling $MODEL with --backend $backend -> $RESULTS"
    profile_cmd=(orinprof profile --model "$MODEL" --seq "$SEQS" --precisions "$PRECISIONS"
        --backend "$backend" --cuda-graph --long-run --aa-control --results-dir "$RESULTS")
    if ((DRY_RUN)); then
        run "${profile_cmd[@]}"
    elif ! run "${profile_cmd[@]}" 2>&1 | tee "$LOGS/profile-$backend.log"; then
        warn "the $backend run failed; its finished plans are kept in $RESULTS"
        failed+=("$backend")
    fi
done

# ---------------------------------------------------------------- 8. first-run checks, compare, tarball
say "first-run checks"
checks="$LOGS/first_run_checks.txt"
if ((DRY_RUN)); then
    echo "+ 1. cuda-python probe: $probe_cmd"
    echo "+ 2. fused_mha per engine, fp16 vs int8-attn (summary.csv: backend, precision, seq_len, fused_mha)"
    echo "+ 3. {ForeignNode[...]} layers per engine and their share of layer time (layers.csv)"
    echo "+ 4. numpy version and torch.from_numpy(numpy.zeros(1)) inside the venv"
else
    {
        echo "1. cuda-python probe: $cuda_probe"
        python - "$RESULTS" << 'PY' || echo "checks 2-3: could not read the results"
import sys
from pathlib import Path
import pandas as pd
for run in sorted(p for p in Path(sys.argv[1]).iterdir() if (p / "summary.csv").exists()):
    s = pd.read_csv(run / "summary.csv")
    cols = [c for c in ("backend", "precision", "seq_len", "fused_mha", "fused_mha_precision") if c in s]
    print(f"2. fused_mha ({run.name}):")
    print(s[cols].to_string(index=False))
    if (run / "layers.csv").exists():
        lay = pd.read_csv(run / "layers.csv")
        lay["foreign"] = lay["layer"].astype(str).str.startswith("{ForeignNode[")
        g = lay.groupby(["precision", "seq_len"])
        share = g.apply(lambda d: d.loc[d.foreign, "median_ms"].sum() / d["median_ms"].sum())
        print(f"3. ForeignNode layers and share of layer time ({run.name}):")
        print(pd.DataFrame({"count": g["foreign"].sum(), "share": share.round(3)}).to_string())
PY
        python -c 'import numpy; print("4. numpy", numpy.__version__)'
        python -c 'import numpy, torch; torch.from_numpy(numpy.zeros(1)); print("4. torch", torch.__version__, "works with this numpy")' \
            2>&1 | tail -n 1 || true
    } | tee "$checks"
fi

say "comparison (each run on its own: compare refuses to mix the tensorrt and trtexec run modes)"
for run_dir in "$RESULTS"/*/; do
    [ -f "$run_dir/summary.csv" ] || continue
    run orinprof compare "$run_dir" || warn "orinprof compare failed on $run_dir (see above)"
done
if ((DRY_RUN)); then
    run orinprof compare "$RESULTS/<each run directory>"
fi

tarball="orin-validate-${device_slug}-$(date +%Y%m%d-%H%M).tar.gz"
say "packing $tarball (send this file back)"
if ((DRY_RUN)); then
    printf '+ pip freeze > %s/pip-freeze.txt; tar czf %s %s\n' "$LOGS" "$tarball" "$RESULTS"
else
    python -m pip freeze > "$LOGS/pip-freeze.txt" 2>&1 || true
    { echo "device: $device"; echo "L4T: $l4t"; echo "CUDA: $cuda_version"; } > "$LOGS/platform.txt"
    tar czf "$tarball" "$RESULTS"
    echo "wrote $tarball"
fi

if ((${#failed[@]})); then
    warn "backend run(s) failed: ${failed[*]}"
    exit 1
fi
say "done: results in $RESULTS"
