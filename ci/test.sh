#!/usr/bin/env bash
# All the tests: set up, build, check formatting, run every test, then the same tests
# built with AddressSanitizer + UndefinedBehaviorSanitizer, then the qemu-xen campaign
# (real Xen and Linux under QEMU: ci/qemu-xen.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ci/setup.sh build
echo "== clang-format"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror
echo "== tests"
ctest --test-dir build -j"$(nproc)" --output-on-failure --timeout 300

echo "== detection matrix (10 seeds; the full 100-seed run is in the README)"
build/bin/dmahil matrix --seeds 10 --seed 1 --out build/matrix \
  $(for b in boards/*-virtual.textproto; do printf -- '--board %s ' "$b"; done) | tail -6

echo "== dmahil bisect: the demo (300 commits, a fault in 30% of boots) and the benchmark"
DMAHIL_SEED=1 demo/bisect/run-demo.sh build/bisect-demo | tail -4
build/bin/dmahil-bisect-bench --trials 4 --commits 100 --seed 1 --model-trials 2000 \
  --out build/bisect-bench 2>build/bisect-bench.log || { tail -20 build/bisect-bench.log; exit 1; }

echo "== firmware: bare-metal cross-build (arm-none-eabi), no heap/exceptions/RTTI"
ci/firmware-cross.sh build-cross
echo "== firmware: protocol parser under libFuzzer (60 s)"
ci/fuzz.sh 60 build-fuzz

echo "== tests under ASan + UBSan"
ci/setup.sh build-asan -DDMAHIL_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -j"$(nproc)" --output-on-failure --timeout 600

# Last, so a problem with Debian's archive or a QEMU boot never hides the sanitizer run;
# bounded, so a hung guest cannot eat the CI budget (45 min; a run takes about 20).
echo "== qemu-xen: real Xen 4.17 + Linux 6.1 under QEMU (set-up included)"
timeout --kill-after=60 2700 ci/qemu-xen.sh build/qemu-xen
