#!/usr/bin/env bash
# Cross-builds the aarch64 test runner (tests/neon/runner.cpp + every CPU kernel, NEON and portable), statically
# linked so qemu-aarch64 needs no sysroot. Usage: build.sh OUTPUT
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1"
cxx="${LFM25_AARCH64_CXX:-aarch64-linux-gnu-g++}"
srcs=("$root/tests/neon/runner.cpp" "$root/csrc/status.cpp")
bf16=()
for f in dispatch validate parallel; do srcs+=("$root/csrc/cpu/$f.cpp"); done
for op in short_conv short_conv_update qk_norm_rope_append gqa_decode rms_norm linear; do
  srcs+=("$root/csrc/cpu/${op}_portable.cpp" "$root/csrc/cpu/${op}_neon.cpp")
  bf16+=("$root/csrc/cpu/${op}_neon_bf16.cpp")
done
# the same flags as the native build (CMakeLists.txt): no fp contraction behind our back; BF16 files with +bf16
flags=(-std=c++17 -O2 -ffp-contract=off -fno-math-errno -DLFM25_CPU_NEON -I"$root/csrc/include")
objdir="$(mktemp -d)"
trap 'rm -rf "$objdir"' EXIT
for f in "${bf16[@]}"; do
  "$cxx" "${flags[@]}" -march=armv8.2-a+bf16 -c "$f" -o "$objdir/$(basename "$f").o"
done
"$cxx" "${flags[@]}" -march=armv8-a -static -pthread "${srcs[@]}" "$objdir"/*.o -o "$out"
