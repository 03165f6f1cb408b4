#!/usr/bin/env bash
# Cross-builds the aarch64 test runner (tests/neon/runner.cpp + every CPU kernel, NEON and portable), statically
# linked so qemu-aarch64 needs no sysroot. Usage: build.sh OUTPUT
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1"
cxx="${LFM25_AARCH64_CXX:-aarch64-linux-gnu-g++}"
srcs=("$root/tests/neon/runner.cpp" "$root/csrc/status.cpp")
for f in dispatch validate parallel; do srcs+=("$root/csrc/cpu/$f.cpp"); done
for op in short_conv short_conv_update qk_norm_rope_append gqa_decode rms_norm; do
  srcs+=("$root/csrc/cpu/${op}_portable.cpp" "$root/csrc/cpu/${op}_neon.cpp")
done
# the same flags as the native build (CMakeLists.txt): no fp contraction behind our back
"$cxx" -std=c++17 -O2 -march=armv8-a -ffp-contract=off -fno-math-errno -DLFM25_CPU_NEON -I"$root/csrc/include" \
  -static -pthread "${srcs[@]}" -o "$out"
