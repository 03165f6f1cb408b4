#!/usr/bin/env bash
# Everything that needs a GPU, for a session that has one (the device tool: one call per stage fits its
# 10-minute limit; the machine keeps the build between calls while it stays warm):
#   bash tools/gpu_check.sh build      build for this GPU with ptxas reports (build.log)
#   bash tools/gpu_check.sh test       the CUDA tests: test_cuda.py + every op test on the cuda backend
#   bash tools/gpu_check.sh sanitize   compute-sanitizer memcheck + racecheck over them (tests/run_sanitizer.sh)
#   bash tools/gpu_check.sh bench      python -m bench --device cuda --no-e2e: every op at the LFM2.5-350M shapes,
#                                      cold and graph-replayed, vs copy and torch (<gpu>.jsonl, bench.log)
#   bash tools/gpu_check.sh all        all four (may exceed one device call: prefer two calls)
# Logs and results go to ${OUT:-gpu-check}/. No network is needed (--no-build-isolation --no-deps).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
stage="${1:-all}"
status=0

build() {
  nvidia-smi >"$out/nvidia-smi.txt" 2>&1
  local arch
  arch=$(python3 -c "import torch; m, n = torch.cuda.get_device_capability(); print(f'{m}{n}')")
  export LFM25_CUDA=ON LFM25_CUDA_ARCHITECTURES="$arch"
  export CUDACXX=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  echo "== build for sm_$arch with $CUDACXX"
  local t0=$SECONDS
  python3 -m pip install --no-build-isolation --no-deps -v -e . -Ccmake.define.LFM25_CUDA_PTXAS_VERBOSE=ON \
    >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; return 1; }
  echo "built in $((SECONDS - t0)) s"
  grep -E "bytes stack frame|spill" "$out/build.log" | grep -v " 0 bytes spill stores, 0 bytes spill loads" | sort | uniq -c | head
  python3 -c "import lfm25_kernels as L; assert L.cuda_available(), 'CUDA kernels not built'; print('with_cuda', L._C.with_cuda)"
}

tests() {
  echo "== CUDA tests"
  HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} python3 -m pytest -q -p no:cacheprovider -rfE tests -k cuda \
    --junitxml="$out/pytest-cuda.xml" >"$out/pytest-cuda.log" 2>&1
  local rc=$?
  tail -n 25 "$out/pytest-cuda.log"
  return $rc
}

sanitize() { bash tests/run_sanitizer.sh "$out"; }

bench() {
  echo "== python -m bench --device cuda --no-e2e"
  timeout 540 python3 -m bench --device cuda --no-e2e --results-dir "$out" >"$out/bench.log" 2>&1
  local rc=$?
  tail -n 60 "$out/bench.log"
  return $rc
}

case "$stage" in
  build) build || status=1 ;;
  test) tests || status=1 ;;
  sanitize) sanitize || status=1 ;;
  bench) bench || status=1 ;;
  all) build && { tests || status=1; sanitize || status=1; bench || status=1; } || status=1 ;;
  *) echo "usage: $0 [build|test|sanitize|bench|all]"; exit 2 ;;
esac
exit $status
