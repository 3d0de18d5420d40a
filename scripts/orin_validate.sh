#!/usr/bin/env bash
# Validate the INT8 drill-card claims on a Jetson AGX Orin (JetPack 6.x): one command.
#
#   scripts/orin_validate.sh            # from the repository root, on the Orin
#
# What it does (and does not do):
#   1. reports the power mode (nvpmodel -q) and clocks (jetson_clocks --show); it NEVER changes
#      them, it only tells you how to set MAXN;
#   2. makes a virtual environment with --system-site-packages so JetPack's TensorRT (and NVIDIA's
#      torch wheel, if installed) are visible, and installs orinprof into it with the [ort] extra
#      (never torch, never tensorrt);
#   3. profiles bert-base at seq 128/256/384/512 with fp16, int8-attn, int8-ffn and int8-all through
#      the TensorRT Python API and through trtexec, into results/<device>-<date>/;
#   4. prints the comparison (orinprof compare).
#
# Environment overrides: VENV (default .venv-orin), MODEL (bert-base), SEQS, PRECISIONS,
# RESULTS (results/<device>-<date>).
set -euo pipefail

cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-orin}
MODEL=${MODEL:-bert-base}
SEQS=${SEQS:-128,256,384,512}
PRECISIONS=${PRECISIONS:-fp16,int8-attn,int8-ffn,int8-all}

say() { printf '\n== %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- 0. which device
device="unknown-device"
if [[ -r /proc/device-tree/model ]]; then
    device=$(tr -d '\0' < /proc/device-tree/model)
fi
device_slug=$(printf '%s' "$device" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
RESULTS=${RESULTS:-results/${device_slug}-$(date +%Y%m%d)}
say "device: $device"
if [[ -r /etc/nv_tegra_release ]]; then
    l4t=$(head -n 1 /etc/nv_tegra_release)
    echo "L4T: $l4t"
    if [[ "$l4t" != *"R36"* ]]; then
        warn "this is not L4T R36 (JetPack 6.x); the script targets JetPack 6.0-6.2 (TensorRT 8.6 / 10.3)"
    fi
else
    warn "no /etc/nv_tegra_release: this does not look like a Jetson; continuing anyway"
fi

# ---------------------------------------------------------------- 1. power mode and clocks (read only)
say "power mode (nvpmodel -q)"
if command -v nvpmodel > /dev/null; then
    mode=$(nvpmodel -q 2> /dev/null || sudo -n nvpmodel -q 2> /dev/null || true)
    echo "${mode:-could not read nvpmodel (try with sudo)}"
    if [[ "$mode" != *MAXN* ]]; then
        warn "not in MAXN: latency numbers will not match the cards."
        echo "  to set MAXN yourself:  sudo nvpmodel -m 0 && sudo jetson_clocks"
        echo "  (this script never changes the power mode or clocks)"
    fi
else
    warn "nvpmodel not found"
fi

say "clocks (jetson_clocks --show)"
if command -v jetson_clocks > /dev/null; then
    if ! sudo -n jetson_clocks --show 2> /dev/null; then
        echo "jetson_clocks --show needs root: run 'sudo jetson_clocks --show' to see the clock state."
    fi
    echo "  clocks locked at the mode's maximum give stable numbers:  sudo jetson_clocks"
else
    warn "jetson_clocks not found"
fi

# ---------------------------------------------------------------- 2. environment
say "virtual environment $VENV (--system-site-packages: JetPack's TensorRT stays visible)"
if [[ ! -d "$VENV" ]]; then
    python3 -m venv --system-site-packages "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if ! python -c 'import tensorrt; print("TensorRT", tensorrt.__version__)'; then
    echo "TensorRT's Python package is not importable." >&2
    echo "  install it with: sudo apt install python3-libnvinfer  (then re-run; the venv sees it)" >&2
    exit 1
fi
python -m pip install --upgrade pip > /dev/null
# [ort] only: torch comes from NVIDIA's Jetson wheel (never pip's), tensorrt from JetPack.
python -m pip install -e '.[ort]'
if ! python -c 'import cuda.bindings.runtime' 2> /dev/null && ! python -c 'import cuda.cudart' 2> /dev/null \
    && ! python -c 'import pycuda.driver' 2> /dev/null; then
    echo "Neither cuda-python nor pycuda is importable (the tensorrt backend needs one)." >&2
    echo "  install one inside the venv: pip install 'cuda-python<13'   or   pip install pycuda" >&2
    exit 1
fi
command -v trtexec > /dev/null || export PATH="$PATH:/usr/src/tensorrt/bin"

if ! python -c 'import torch' 2> /dev/null; then
    if [[ ! -d models ]] || ! ls models/*.onnx > /dev/null 2>&1; then
        echo "torch is not installed here, so models cannot be exported on the Orin." >&2
        echo "  on an x86 host with torch: run the same 'orinprof profile' (it exports into models/), or" >&2
        echo "  'orinprof export' for $MODEL at seq $SEQS and $PRECISIONS, then copy models/ into this repo." >&2
        exit 1
    fi
    echo "torch not installed: using the ONNX files already in models/ (exported on a host)"
fi

# ---------------------------------------------------------------- 3. measure
mkdir -p "$RESULTS"
say "Q/DQ lint of the INT8 plans in models/ (TensorRT's INT8 fused-attention preconditions)"
shopt -s nullglob
for onnx_file in models/*int8*.onnx; do
    orinprof lint-qdq "$onnx_file" || warn "lint-qdq failed on $onnx_file"
done
shopt -u nullglob

failed=()
for backend in tensorrt trtexec; do
    say "profiling $MODEL (seq $SEQS; $PRECISIONS) with --backend $backend -> $RESULTS"
    if ! orinprof profile --model "$MODEL" --seq "$SEQS" --precisions "$PRECISIONS" \
        --backend "$backend" --results-dir "$RESULTS"; then
        warn "the $backend run failed; its finished plans are kept in $RESULTS"
        failed+=("$backend")
    fi
done

# ---------------------------------------------------------------- 4. compare
say "comparison"
orinprof compare "$RESULTS"

if ((${#failed[@]})); then
    warn "backend run(s) failed: ${failed[*]}"
    exit 1
fi
say "done: results in $RESULTS"
