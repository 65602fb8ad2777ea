#!/usr/bin/env bash
# The prepared GPU check (issue 21): one script, under 8 minutes on a CUDA machine.
#   bench/device_check.sh OUT_DIR          the real check (needs CUDA): probe, ES sweep, trainer, trace vs
#                                          CPU fp32 (tolerances in bench/device_check.py), the per-GPU
#                                          executor on two GPUs when present, then the GPU benchmark figures
#   bench/device_check.sh --dry OUT_DIR    the same checks on the CPU with a tiny model (CI runs this)
# Everything lands under OUT_DIR: device_check.json, device_check.log, bench_hijack.txt (not --dry).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=""
if [[ "${1:-}" == "--dry" ]]; then DRY="--dry"; shift; fi
OUT="${1:?usage: bench/device_check.sh [--dry] OUT_DIR}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
status=0
timeout 420 "$PY" bench/device_check.py --out "$OUT" $DRY 2>&1 | tee "$OUT/device_check.log" || status=$?
if [[ -z "$DRY" ]]; then
  # the GPU figures of the hijack benchmark (probe speed-up, ES sweep records x n per second)
  timeout 150 "$PY" bench/bench_hijack.py --model smollm2-135m --device cuda --repeats 3 --limit 64 --naive-limit 16 2>&1 | tee "$OUT/bench_hijack.txt" || status=$?
fi
exit "$status"
