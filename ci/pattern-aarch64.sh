#!/usr/bin/env bash
# The pattern engine on aarch64: cross-compiles common/pattern_fast.cc with its NEON
# kernels (common/pattern_neon.cc; the x86 files compile to nothing there) and the path
# comparison common/pattern_paths_standalone.cc (the cases of common/pattern_paths_test.cc,
# without GoogleTest) with Debian's g++-aarch64-linux-gnu, and runs it under qemu-aarch64
# user mode: every path of the emulated CPU (scalar, neon) must write the same bytes and
# report the same findings as the scalar engine. Prints its own elapsed time: 15-20 s
# without ccache, 11-13 s with it, on a 2-core machine shared with other builds (load 8);
# the qemu run itself is about 5 s.
#   ci/pattern-aarch64.sh [BUILD_DIR]        (default BUILD_DIR: build-pattern-aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s%N)
BUILD=${1:-build-pattern-aarch64}

ci/apt-install.sh pattern-aarch64 g++-aarch64-linux-gnu qemu-user

CXX=(aarch64-linux-gnu-g++)
if command -v ccache >/dev/null; then
  CXX=(ccache aarch64-linux-gnu-g++)
fi
FLAGS=(-std=c++20 -O2 -I. -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
       -Werror)
SOURCES=(common/pattern_fast.cc common/pattern_neon.cc common/pattern_x86_sse2.cc
         common/pattern_x86_avx2.cc common/pattern_x86_avx512.cc
         common/pattern_paths_standalone.cc)
mkdir -p "$BUILD"
pids=()
objs=()
for src in "${SOURCES[@]}"; do
  obj="$BUILD/$(basename "${src%.cc}").o"
  "${CXX[@]}" "${FLAGS[@]}" -c "$src" -o "$obj" &
  pids+=($!)
  objs+=("$obj")
done
for pid in "${pids[@]}"; do wait "$pid"; done
aarch64-linux-gnu-g++ "${objs[@]}" -o "$BUILD/pattern_paths_standalone"

echo "== pattern paths on aarch64 (qemu-aarch64 user mode)"
status=0
qemu-aarch64 -L /usr/aarch64-linux-gnu "$BUILD/pattern_paths_standalone" || status=$?
ms=$((($(date +%s%N) - start) / 1000000))
printf 'ci/pattern-aarch64.sh: %d.%01d s\n' $((ms / 1000)) $((ms % 1000 / 100))
exit "$status"
