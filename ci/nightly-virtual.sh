#!/usr/bin/env bash
# The main job: set up, build, and run the nightly campaign on the embedded virtual farm.
# The farm is a self-test farm: clean boards must pass, each board with an injected fault
# must fail with its diagnosis; the exit status says whether that held (0) or not (1),
# 2 for a configuration or infrastructure error.
#   ci/nightly-virtual.sh [OUT_DIR] [dmahil run args...]     (default OUT_DIR: out/virtual)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/virtual}
shift || true
ci/setup.sh build
# A new seed every night (printed, so any run can be reproduced with --seed); the farm's
# own seed is used when DMAHIL_SEED is set to "farm".
SEED=${DMAHIL_SEED:-$(date -u +%Y%m%d)}
[ "$SEED" = farm ] && SEED_ARGS=() || SEED_ARGS=(--seed "$SEED")
exec build/bin/dmahil run --farm ci/farms/virtual.textproto --out "$OUT" --check-expectations \
  "${SEED_ARGS[@]}" "$@"
