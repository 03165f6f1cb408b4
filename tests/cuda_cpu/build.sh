#!/usr/bin/env bash
# Builds the cuda-cpu test programs into OUTDIR: `runner` (every csrc/cuda kernel, compiled unchanged as C++
# with -DLFM25_CUDA_CPU on the runtime of runtime.cpp) and `toys` (the runtime's own test kernels).
# Usage: build.sh OUTDIR
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1"
here="$root/tests/cuda_cpu"
cxx="${CXX:-g++}"
# no fp contraction (the kernels' explicit __fmul_rn / __fmaf_rn must stay as written); memory is bytes, as on
# the GPU, so no type-based alias analysis; the uint4 copies check alignment, hence not trivially copyable
flags=(-std=c++17 -O2 -g -ffp-contract=off -fno-strict-aliasing -fno-math-errno -Wall -Wno-unknown-pragmas
       -Wno-class-memaccess -DLFM25_CUDA_CPU -I"$here/include" -I"$here" -I"$root/csrc/include")
objdir="$(mktemp -d)"
trap 'rm -rf "$objdir"' EXIT
pids=()
for f in "$root"/csrc/cuda/*.cu; do
  "$cxx" "${flags[@]}" -x c++ -c "$f" -o "$objdir/$(basename "$f" .cu).o" & pids+=($!)
done
"$cxx" "${flags[@]}" -c "$here/runtime.cpp" -o "$objdir/runtime.o" & pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
mkdir -p "$out"
"$cxx" "${flags[@]}" -I"$root/csrc/cpu" "$here/runner.cpp" "$root/csrc/status.cpp" "$objdir"/*.o -o "$out/runner"
"$cxx" "${flags[@]}" "$here/toys.cpp" "$objdir/runtime.o" -o "$out/toys"
