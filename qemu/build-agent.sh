#!/usr/bin/env bash
# qemu/build-agent.sh [--sysroot DIR] [--build DIR] [--jobs N] [--target T]... [--run]
#
# Cross-builds the dmahil agent for the qemu-xen-arm64 board (aarch64 Linux, Debian 12
# userspace): CMake with cmake/aarch64-linux-gnu.cmake, -DDMAHIL_AGENT_ONLY=ON, the arm64
# sysroot from qemu/sysroot.sh and the host's protoc / grpc_cpp_plugin /
# protoc-gen-nanopb. Idempotent: re-running only rebuilds what changed.
#
#   --sysroot DIR  the arm64 sysroot (default <repo>/build-qemu/sysroot; built by
#                  qemu/sysroot.sh if it is missing)
#   --build DIR    the build folder (default <repo>/build-qemu/agent-aarch64)
#   --jobs N       parallel jobs (default: nproc)
#   --target T     build T (repeatable). Default: dmahil-agent if agent/CMakeLists.txt
#                  defines it, and dmahil-vboard (an agent program that always exists and
#                  proves the toolchain)
#   --run          afterwards run each target's `--help` under qemu-user
#                  (qemu-aarch64-static -L SYSROOT) when it is installed
#
# Produces BUILD/bin/<target> (aarch64 ELF, dynamically linked against the sysroot's
# libraries; qemu/mkinitramfs.sh copies them with their DT_NEEDED closure).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYSROOT=$REPO/build-qemu/sysroot
BUILD=$REPO/build-qemu/agent-aarch64
JOBS=$(nproc)
TARGETS=()
RUN=0
die() { echo "build-agent.sh: error: $*" >&2; exit 1; }
log() { echo "build-agent.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --sysroot) [ $# -ge 2 ] || die "--sysroot needs a directory"; SYSROOT=$2; shift 2 ;;
    --build) [ $# -ge 2 ] || die "--build needs a directory"; BUILD=$2; shift 2 ;;
    --jobs) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--jobs needs a number"; JOBS=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || die "--target needs a name"; TARGETS+=("$2"); shift 2 ;;
    --run) RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

for t in cmake aarch64-linux-gnu-g++ aarch64-linux-gnu-gcc protoc grpc_cpp_plugin protoc-gen-nanopb; do
  command -v "$t" >/dev/null || die "$t not found (qemu/fetch.sh installs the cross compilers; protoc, grpc_cpp_plugin and protoc-gen-nanopb are the repository's normal build deps)"
done
if [ ! -e "$SYSROOT/.packages" ]; then
  log "no sysroot at $SYSROOT: running qemu/sysroot.sh"
  "$REPO/qemu/sysroot.sh" --out "$SYSROOT" || die "qemu/sysroot.sh failed"
fi
SYSROOT=$(cd "$SYSROOT" && pwd)

if [ ${#TARGETS[@]} = 0 ]; then
  TARGETS=(dmahil-vboard)
  if grep -q 'add_executable(dmahil-agent\b' "$REPO/agent/CMakeLists.txt"; then
    TARGETS=(dmahil-agent dmahil-vboard)
  else
    log "agent/CMakeLists.txt has no dmahil-agent target yet: building dmahil-vboard only"
  fi
fi

GEN=()
command -v ninja >/dev/null && [ ! -f "$BUILD/Makefile" ] && GEN=(-G Ninja)
log "configure $BUILD (sysroot $SYSROOT)"
cmake -S "$REPO" -B "$BUILD" "${GEN[@]}" \
  -DCMAKE_TOOLCHAIN_FILE="$REPO/cmake/aarch64-linux-gnu.cmake" \
  -DDMAHIL_SYSROOT="$SYSROOT" \
  -DDMAHIL_AGENT_ONLY=ON \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
  > "$BUILD.configure.log" 2>&1 \
  || { tail -n 40 "$BUILD.configure.log" >&2; die "cmake configure failed (full log: $BUILD.configure.log)"; }

log "build ${TARGETS[*]} (-j$JOBS)"
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" \
  || die "build of ${TARGETS[*]} failed"

for t in "${TARGETS[@]}"; do
  f=$BUILD/bin/$t
  [ -x "$f" ] || die "$f was not produced"
  desc=$(file -b "$f")
  [[ $desc == *"ARM aarch64"* ]] || die "$f is not an aarch64 ELF: $desc"
  log "$f: $(du -h "$f" | cut -f1), ${desc%%, BuildID*}"
done

if [ $RUN = 1 ]; then
  qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
  if [ -z "$qemu" ]; then
    log "--run: no qemu-aarch64(-static) installed (apt-get install qemu-user-static): skipped"
  else
    for t in "${TARGETS[@]}"; do
      log "--run: $qemu -L $SYSROOT $BUILD/bin/$t --help"
      "$qemu" -L "$SYSROOT" "$BUILD/bin/$t" --help || die "$t --help failed under $qemu"
    done
  fi
fi
