#!/usr/bin/env bash
# compute-sanitizer over the CUDA tests (needs a GPU and a CUDA build): memcheck (out-of-bounds and misaligned
# accesses, with PyTorch's caching allocator off so that every tensor is its own allocation and an overrun past
# it is caught) and racecheck (shared-memory hazards). Logs go to ${1:-sanitizer}/.
#   bash tests/run_sanitizer.sh [log dir] [extra pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-sanitizer}"
shift || true
mkdir -p "$out"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
# the GPU-only tests and the op tests on the cuda backend; torch.compile is left out (Inductor's own kernels
# are not ours, and compiling them under the sanitizer takes minutes); a short hypothesis profile
tests=(tests/test_cuda.py tests/test_short_conv.py tests/test_attention.py tests/test_rms_norm.py
       tests/test_rounding.py tests/test_errors.py)
select="cuda and not compile"
export PYTORCH_NO_CUDA_MEMORY_CACHING=1 HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-dev}
status=0
for tool in memcheck racecheck; do
  echo "== compute-sanitizer --tool $tool"
  "$sanitizer" --tool "$tool" --error-exitcode 99 --print-limit 20 --target-processes all \
    python3 -m pytest -q -p no:cacheprovider "${tests[@]}" -k "$select" "$@" >"$out/sanitizer-$tool.log" 2>&1
  rc=$?
  tail -n 4 "$out/sanitizer-$tool.log"
  grep -E "ERROR SUMMARY|Invalid|Race reported|hazard" "$out/sanitizer-$tool.log" | sort | uniq -c | head -20
  [ "$rc" -ne 0 ] && status=$rc && echo "== $tool: exit $rc (99 = sanitizer errors; see $out/sanitizer-$tool.log)"
done
exit $status
