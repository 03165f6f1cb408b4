#!/usr/bin/env bash
# The CPU kernels under AddressSanitizer and UndefinedBehaviorSanitizer: _C built with
# -fsanitize=address,undefined (every report fatal), then the op, graph, error and fuzz tests on the host's CPU
# tables with libasan (and libstdc++, whose operator new it must see first) preloaded into python, leak checks
# off (python and torch keep their allocations to exit). Any report fails the run. The CUDA kernels have
# tests/run_sanitizer.sh (compute-sanitizer); the aarch64 ones run under qemu, not here.
#   bash tests/run_asan.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/build/asan
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
# Debug and -O1: much faster to compile than the -O3 kernels, assertions on, exact stack traces
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLFM25_CUDA=OFF -DCMAKE_CXX_FLAGS="$flags" -DLFM25_CPU_OPT=-O1 \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python3)" >/dev/null
cmake --build "$build" --target _C

# a scratch tree whose lfm25_kernels holds the sanitized _C (the source tree's may be another build)
tree=$build/tree
rm -rf "$tree" && mkdir -p "$tree"
cp -r lfm25_kernels python_model tests pyproject.toml "$tree"/
rm -f "$tree"/lfm25_kernels/_C*.so
cp "$build"/_C*.so "$tree"/lfm25_kernels/

export LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libstdc++.so)"
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-dev}
cd "$tree"
log=$build/asan.log
# NOTE: an editable install's import hook (scikit-build-core) would hand out the installed _C ahead of the
# path; it is taken off sys.meta_path here, and the test below checks which _C is loaded.
python3 - "$@" <<'PY' 2>&1 | tee "$log"
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
sys.path[:0] = [".", "tests", "python_model"]
import lfm25_kernels
import os
assert os.path.dirname(lfm25_kernels._C.__file__) == os.path.abspath("lfm25_kernels"), lfm25_kernels._C.__file__
import pytest
# the qemu and cuda-cpu backends run other programs, built without the sanitizers
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-m", "not neon and not cuda and not cuda_cpu",
                      "tests/test_errors.py", "tests/test_graph.py", "tests/test_reliability.py", "tests/test_fuzz.py",
                      "tests/test_short_conv.py", "tests/test_attention.py", "tests/test_rms_norm.py",
                      "tests/test_linear.py", "tests/test_linear_q.py", *sys.argv[1:]]))
PY
status=${PIPESTATUS[0]}
if grep -qE "ERROR: AddressSanitizer|runtime error:" "$log"; then
  echo "run_asan: sanitizer reports in $log"
  exit 1
fi
exit "$status"
