#!/usr/bin/env bash
# All the tests: set up, build, check formatting and kernel style, run every test under
# AddressSanitizer + UndefinedBehaviorSanitizer, a 10-seed detection matrix, the bisect
# demo and benchmarks, the pattern engine's NEON path under qemu-aarch64, the firmware's
# cross-build and fuzzer, then the qemu-xen campaign
# (real Xen and Linux under QEMU: ci/qemu-xen.sh). Each stage prints its own time.
#
# Two builds: build/ (RelWithDebInfo) holds the programs the campaigns and benchmarks run;
# build-asan/ (-O0 -g1 with ASan + UBSan: a quarter of the compile time of an -O2 ASan
# build) holds the tests, which all run there.
set -euo pipefail
cd "$(dirname "$0")/.."

T0=$SECONDS
# stage NAME CMD...: runs CMD, then prints how long it took.
stage() {
  local name=$1 t=$SECONDS
  shift
  echo "== $name"
  "$@"
  echo "== $name: $((SECONDS - t)) s (total $((SECONDS - T0)) s)"
}

export DMAHIL_TARGETS="dmahil dmahil-vboard dmahil-bench dmahil-bisect-bench"
# No debug info in CI's programs: -g is a third of their compile time (README "CI").
stage "build: the programs (build/, -O2 without -g)" ci/setup.sh build \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG"
stage "clang-format" bash -c "git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror"
stage "kernel style: checkpatch.pl --strict on dmahil.ko" ci/checkpatch.sh build-checkpatch
unset DMAHIL_TARGETS
stage "build: everything with ASan + UBSan (build-asan/)" \
  ci/setup.sh build-asan -DDMAHIL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1"
stage "tests under ASan + UBSan" env ASAN_OPTIONS=detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -j"$(nproc)" --output-on-failure --timeout 600

matrix() {
  build/bin/dmahil matrix --seeds 10 --seed 1 --out build/matrix \
    $(for b in boards/*-virtual.textproto; do printf -- '--board %s ' "$b"; done) | tail -6
}
stage "detection matrix (10 seeds; the full 100-seed run is in the README)" matrix

export DMAHIL_TARGETS="dmahil dmahil-vboard dmahil-bench dmahil-bisect-bench"
bisect() {
  DMAHIL_SEED=1 demo/bisect/run-demo.sh build/bisect-demo | tail -4
  build/bin/dmahil-bisect-bench --trials 4 --commits 100 --seed 1 --model-trials 2000 \
    --out build/bisect-bench 2>build/bisect-bench.log || { tail -20 build/bisect-bench.log; exit 1; }
}
stage "dmahil bisect: the demo (300 commits, a fault in 30% of boots) and the benchmark" bisect
stage "oracle benchmark (dmahil-bench)" build/bin/dmahil-bench
stage "pattern engine on aarch64 (NEON) under qemu-aarch64" ci/pattern-aarch64.sh build-pattern-aarch64

stage "firmware: bare-metal cross-build (arm-none-eabi), no heap/exceptions/RTTI" \
  ci/firmware-cross.sh build-cross
stage "firmware: protocol parser under libFuzzer (30 s)" ci/fuzz.sh 30 build-fuzz

# Last, so a problem with Debian's archive or a QEMU boot never hides the sanitizer run;
# bounded, so a hung guest cannot eat the CI budget.
stage "qemu-xen: real Xen 4.17 + Linux 6.1 under QEMU (set-up included)" \
  timeout --kill-after=60 1800 ci/qemu-xen.sh --dmahil build/bin/dmahil build/qemu-xen
# Real kernel code under test: Linux built from Debian's linux-source-6.1, stock and with
# one regression patch (the whole table: ci/kernel-table.sh, README "Real kernel code").
stage "qemu-xen on Linux built from source: stock + regression dma-ops-bypass-xen" \
  timeout --kill-after=60 2400 ci/kernel-table.sh --faults dma-ops-bypass-xen \
  --dmahil build/bin/dmahil build/kernel-table
echo "== all stages: $((SECONDS - T0)) s"
