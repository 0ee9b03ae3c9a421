#!/usr/bin/env bash
# Fuzzes the firmware's protocol parser (firmware/wire/FrameHandler, nanopb) with libFuzzer
# under ASan + UBSan for a bounded time (firmware/fuzz/). Exits nonzero on any crash,
# sanitizer report, protocol-rule violation or timeout; the input that did it is left in
# BUILD_DIR as crash-*/timeout-* and can be replayed with BUILD_DIR/frame_handler_fuzz FILE.
#   ci/fuzz.sh [SECONDS] [BUILD_DIR]          (defaults: 60, build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
BUILD=${2:-build-fuzz}

PKGS=(cmake ninja-build protobuf-compiler nanopb clang libclang-rt-14-dev)
ci/apt-install.sh fuzz "${PKGS[@]}"

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CXX=clang++ cmake -S firmware/fuzz -B "$BUILD" -G Ninja "${launcher[@]}" >/dev/null
cmake --build "$BUILD"

mkdir -p "$BUILD/seeds" "$BUILD/corpus"
"$BUILD/make_seeds" "$BUILD/seeds"
# New inputs go to corpus/ (kept between runs); seeds/ is regenerated every time.
"$BUILD/frame_handler_fuzz" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
  -max_len=4096 -print_final_stats=1 -artifact_prefix="$BUILD/" \
  "$BUILD/corpus" "$BUILD/seeds"
