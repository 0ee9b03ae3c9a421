#!/usr/bin/env bash
# The `dmahil bisect` demonstration, on the virtual farm, runnable by anyone:
#   demo/bisect/run-demo.sh [OUT]          (default OUT: out/bisect-demo)
# Sets up and builds (ci/setup.sh), makes a 300-commit synthetic Linux history whose commit
# CULPRIT (default 217) turns on cache-flush-local-addr with boot_rate 0.3 (the stale line
# shows in ~30% of boots) and a Xen history pinned at its good end, then runs
# `dmahil bisect` on the demo farm's zcu102 and checks it named the planted commit.
# DMAHIL_SEED sets the run seed (default: today's date). Exit 0 iff the right commit was
# named with at least the requested confidence.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(realpath -m "${1:-$ROOT/out/bisect-demo}")  # relative to where it was called from
SEED=${DMAHIL_SEED:-$(date +%Y%m%d)}
CULPRIT=${CULPRIT:-217}
MARK=.dmahil-bisect-demo
cd "$ROOT"

# Only ever delete a folder this script made.
if [ -e "$OUT" ] && [ ! -e "$OUT/$MARK" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
  echo "demo: $OUT exists and was not made by this demo; give another folder" >&2
  exit 2
fi
ci/setup.sh build >/dev/null
rm -rf "$OUT"
mkdir -p "$OUT"
touch "$OUT/$MARK"
planted=$(demo/bisect/make-history.sh "$OUT/linux" --commits 300 --culprit "$CULPRIT" \
            --boot-rate 0.3 | awk '{print $2}')
demo/bisect/make-history.sh "$OUT/xen" --tree xen --commits 20 --culprit 20 \
  --fault grant-not-in-iommu >/dev/null

status=0
build/bin/dmahil bisect --farm demo/bisect/farm.textproto --board zcu102 \
  --fixture foreign-to-device --tree "linux=$OUT/linux" --good good --bad bad \
  --pin "xen=$OUT/xen" --pin-rev good --seed "$SEED" --out "$OUT/bisect" \
  --build-hook "'$ROOT/demo/bisect/build-hook.sh'" \
  --deploy-hook "'$ROOT/demo/bisect/deploy-hook.sh'" || status=$?

found=$(sed -n 's/^first bad commit: \([0-9a-f]*\).*/\1/p' "$OUT/bisect/bisect.txt" 2>/dev/null || true)
if [ "$found" = "$planted" ]; then
  echo "demo: dmahil bisect named the planted commit $planted (commit $CULPRIT of 300)"
else
  echo "demo: the fault was planted in $planted (commit $CULPRIT), dmahil bisect said ${found:-nothing}"
  status=1
fi
exit "$status"
