#!/usr/bin/env bash
# The prepared GPU check (issue 21): one script, under 8 minutes on a CUDA machine.
#   bench/device_check.sh OUT_DIR          the real check (needs CUDA): probe, ES sweep, trainer, trace vs
#                                          CPU fp32 (tolerances in bench/device_check.py), the per-GPU
#                                          executor on two GPUs when present; then `lca-tui doctor` and one
#                                          full trace with the direct attribution (both CUDA bf16) and the
#                                          GPU benchmark figures
#   bench/device_check.sh --dry OUT_DIR    the same checks on the CPU with a tiny model (CI runs this)
# Everything lands under OUT_DIR: device_check.json, device_check.log; not --dry: doctor.json (+ .log),
# trace_bf16.json (+ .log), bench_hijack.txt. The whole script keeps to BUDGET seconds (default 480): each
# step's timeout is cut to what is left; a step with under 20 s left is skipped and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=""
if [[ "${1:-}" == "--dry" ]]; then DRY="--dry"; shift; fi
OUT="${1:?usage: bench/device_check.sh [--dry] OUT_DIR}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python3
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
BUDGET="${BUDGET:-480}"
status=0
# left CAP: seconds for the next step, CAP at most, never past the budget; 0 when under 20 s are left
left() { local l=$(( BUDGET - SECONDS )); (( l > $1 )) && l=$1; (( l < 20 )) && l=0; echo "$l"; }
skip() { echo "device_check: SKIPPED $1: out of the ${BUDGET} s budget" | tee -a "$OUT/device_check.log"; status=1; }
timeout 420 "$PY" bench/device_check.py --out "$OUT" $DRY 2>&1 | tee "$OUT/device_check.log" || status=$?
if [[ -z "$DRY" ]]; then
  # versions, the model's parts, the fast trace against plain forwards at bf16's tolerance, times, memory
  t=$(left 90)
  if (( t )); then
    timeout "$t" "$PY" -m lca_tui.cli doctor --device cuda --dtype bfloat16 --json > "$OUT/doctor.json" 2> "$OUT/doctor.log" || status=$?
  else skip doctor; fi
  # one full trace (restores at every prompt position, knockouts, heads with their direct attribution) in bf16
  t=$(left 60)
  if (( t )); then
    timeout "$t" "$PY" -m lca_tui.cli trace --device cuda --dtype bfloat16 --prompt "The Eiffel Tower is in" \
      --prepend "The Eiffel Tower is not in Chicago. The Eiffel Tower is not in Chicago. The Eiffel Tower is not in Chicago. The Eiffel Tower is not in Chicago. " \
      --true " Paris" --false " Chicago" --no-save --json > "$OUT/trace_bf16.json" 2> "$OUT/trace_bf16.log" || status=$?
  else skip "trace bf16"; fi
  # the GPU figures of the hijack benchmark (probe speed-up, ES sweep records x n per second)
  t=$(left 150)
  if (( t )); then
    timeout "$t" "$PY" bench/bench_hijack.py --model smollm2-135m --device cuda --repeats 3 --limit 64 --naive-limit 16 2>&1 | tee "$OUT/bench_hijack.txt" || status=$?
  else skip bench_hijack; fi
fi
exit "$status"
