#!/usr/bin/env bash
# Cross-builds the aarch64 test runner (tests/neon/runner.cpp + every CPU kernel, NEON and portable), statically
# linked so qemu-aarch64 needs no sysroot. The sources are found as CMakeLists.txt finds them: each op folder's
# portable.cpp and validate.cpp, every simd.cpp twice, for neon and for neon_bf16, and linear_q's
# dotprod and i8mm kernels. Usage: build.sh OUTPUT
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1"
cxx="${LFM25_AARCH64_CXX:-aarch64-linux-gnu-g++}"
cpu="$root/csrc/cpu"
srcs=("$root/tests/neon/runner.cpp" "$root/csrc/status.cpp" "$cpu/dispatch.cpp" "$cpu/common/parallel.cpp"
      "$cpu"/*/portable.cpp "$cpu"/*/validate.cpp)
# the same flags as the native build (CMakeLists.txt): no fp contraction behind our back; neon_bf16 with +bf16
flags=(-std=c++17 -O2 -ffp-contract=off -fno-math-errno -DLFM25_CPU_NEON -I"$root/csrc/include" -I"$cpu")
objdir="$(mktemp -d)"
trap 'rm -rf "$objdir"' EXIT
for f in "$cpu"/*/simd.cpp; do
  op="$(basename "$(dirname "$f")")"
  "$cxx" "${flags[@]}" -march=armv8-a -DLFM25_SIMD_ISA=neon -c "$f" -o "$objdir/$op.neon.o"
  "$cxx" "${flags[@]}" -march=armv8.2-a+bf16 -DLFM25_SIMD_ISA=neon_bf16 -c "$f" -o "$objdir/$op.neon_bf16.o"
done
# linear_q on the dot-product and int8 matrix multiply extensions, as CMakeLists.txt compiles them
"$cxx" "${flags[@]}" -march=armv8.2-a+dotprod -c "$cpu/linear_q/neon_dotprod.cpp" -o "$objdir/linear_q.dotprod.o"
"$cxx" "${flags[@]}" -march=armv8.2-a+dotprod+i8mm -c "$cpu/linear_q/neon_i8mm.cpp" -o "$objdir/linear_q.i8mm.o"
"$cxx" "${flags[@]}" -march=armv8-a -static -pthread "${srcs[@]}" "$objdir"/*.o -o "$out"
