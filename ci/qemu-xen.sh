#!/usr/bin/env bash
# The qemu-xen campaign: real Xen 4.17 and Debian's arm64 Linux 6.1 under
# qemu-system-aarch64, with our agent (cross-built) and dmahil.ko driving QEMU's edu device.
#   ci/qemu-xen.sh [--jobs N] [--dmahil FILE] [OUT_DIR]     (default OUT_DIR: out/qemu-xen)
#
#   --jobs N       farms run at once (default: the number of CPUs). Each board is one
#                  single-threaded QEMU (-icount, see qemu/README.md), so N CPUs keep N
#                  boards busy; every board has its own forwarded ports, so farms never
#                  collide.
#   --dmahil FILE  use this controller and skip `ci/setup.sh build` (e.g. a build folder
#                  made with `ninja dmahil`); default: ci/setup.sh build, then build/bin/dmahil
#
# Sets up everything it needs (host packages, Debian's arm64 packages under build-qemu/,
# the arm64 sysroot, dmahil.ko, the aarch64 agent, the initramfs), builds the controller,
# then runs four farms with --check-expectations, the longest first:
#   ci/farms/qemu-xen-faults.textproto       dmahil.ko's fault switches: each board fails
#                                            with its own diagnosis
#   ci/farms/qemu-xen-bounce.textproto       swiotlb bounce: dom0 swiotlb=force, and a
#                                            domU above 4 GiB with a 32-bit edu
#   ci/farms/qemu-xen.textproto              stock kernel: every fixture passes, zero
#                                            mismatches, foreign pages with pfn != bfn;
#                                            the same board on "the user's own" Xen, and
#                                            with the PV disk without persistent grants
#   ci/farms/qemu-xen-noncoherent.textproto  dma-coherent removed from the DTB: the
#                                            maintenance audit passes on the stock kernel
# Each farm's output goes to OUT_DIR/<farm>.log and is printed when the farm ends. Every
# stage prints its elapsed time.
# Exit status: 0 if every farm met its expectations; otherwise the status of the first
# farm (in the order above) that did not (1: expectations missed, 2: a board could not
# run) after printing the end of every board's console log of that farm.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh
JOBS=$(nproc) DMAHIL="" OUT=out/qemu-xen
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "qemu-xen.sh: --jobs needs N >= 1" >&2; exit 2; }
            JOBS=$2; shift 2 ;;
    --dmahil) DMAHIL=$(executable_path qemu-xen.sh "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "qemu-xen.sh: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done

stage_clock qemu-xen

if [ -z "$DMAHIL" ]; then
  echo "== qemu-xen: ci/setup.sh build"
  ci/setup.sh build
  DMAHIL=build/bin/dmahil
  stage_done "controller build"
fi
echo "== qemu-xen: set-up (Debian arm64 packages, sysroot, dmahil.ko, agent, initramfs)"
for step in fetch build-kmod sysroot build-agent mkinitramfs; do
  "qemu/$step.sh"
  stage_done "qemu/$step.sh"
done

# Bring your own Xen: ci/farms/qemu-xen.textproto's second board boots the hypervisor at
# build-qemu/own-xen/ (a wiring's `xen` field). The archive has no Xen source to build, so
# a copy of Debian's stands in for the user's build; the results must name that file.
# shellcheck source=/dev/null
XEN_DEBIAN=$(. build-qemu/cache/fetch.env && echo "$XEN")
ci/apt-install.sh qemu-xen jq
mkdir -p build-qemu/own-xen
cp "$XEN_DEBIAN" build-qemu/own-xen/xen-4.17-arm64

FARMS=(qemu-xen-faults qemu-xen-bounce qemu-xen qemu-xen-noncoherent)
mkdir -p "$OUT"
# run_farm FARM: one `dmahil run`, its output in OUT/FARM.log, its status in OUT/FARM.rc
run_farm() {
  local farm=$1 start rc=0
  start=$(date +%s)
  "$DMAHIL" run --farm "ci/farms/$farm.textproto" --out "$OUT/$farm" --check-expectations \
    >"$OUT/$farm.log" 2>&1 || rc=$?
  echo "$rc" >"$OUT/$farm.rc"
  echo "$(($(date +%s) - start))" >"$OUT/$farm.seconds"
}
report_farm() {
  local farm=$1
  echo "== qemu-xen: dmahil run --farm ci/farms/$farm.textproto: exit $(cat "$OUT/$farm.rc")" \
    "after $(cat "$OUT/$farm.seconds") s"
  cat "$OUT/$farm.log"
}

echo "== qemu-xen: ${#FARMS[@]} farms, $JOBS at a time"
rm -f "$OUT"/*.rc
declare -A PID_FARM=()
running=0
for farm in "${FARMS[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_farm "$farm" &
  PID_FARM[$!]=$farm
  running=$((running + 1))
done
# report each farm as it ends
while [ "${#PID_FARM[@]}" -gt 0 ]; do
  for pid in "${!PID_FARM[@]}"; do
    farm=${PID_FARM[$pid]}
    if [ -f "$OUT/$farm.rc" ]; then
      wait "$pid" 2>/dev/null || true
      report_farm "$farm"
      unset "PID_FARM[$pid]"
    fi
  done
  [ "${#PID_FARM[@]}" -eq 0 ] || sleep 1
done
stage_done "farms"

status=0
for farm in "${FARMS[@]}"; do
  rc=$(cat "$OUT/$farm.rc")
  echo "== qemu-xen: $farm: exit $rc in $(cat "$OUT/$farm.seconds") s"
  if [ "$rc" -ne 0 ]; then
    [ "$status" -ne 0 ] || status=$rc
    for log in "$OUT/$farm"/*/console.log; do
      [ -f "$log" ] || continue
      echo "== $log (last 80 lines)"
      tail -n 80 "$log"
    done
  fi
done
# the results must name the user's Xen by its own path and content (results.json "boards")
own=$(jq -r '.boards[] | select(.name == "qemu-xen-own-xen") | .hypervisor' \
      "$OUT/qemu-xen/results.json" 2>/dev/null || true)
want="build-qemu/own-xen/xen-4.17-arm64 (sha256 $(sha256sum build-qemu/own-xen/xen-4.17-arm64 | cut -c1-16))"
if [[ $own != *"$want" ]]; then
  echo "== qemu-xen: results.json does not name the user's Xen for qemu-xen-own-xen: '$own' (want '...$want')"
  [ "$status" -ne 0 ] || status=1
fi
# the PV block fixtures ran with persistent grants on the first board and without them on
# qemu-xen-no-persistent-grants (blkfront's own report, AgentInfo.block_grants)
for want in "qemu-xen-arm64=persistent grants: enabled" \
            "qemu-xen-no-persistent-grants=persistent grants: disabled"; do
  board=${want%%=*} grants=${want#*=}
  n=$(jq --arg b "$board" --arg g ", $grants" \
        '[.results[] | select(.board == $b and (.fixture | startswith("pv-block-"))
                         and (.detail | contains($g)))] | length' \
        "$OUT/qemu-xen/results.json" 2>/dev/null || echo 0)
  if [ "$n" -ne 4 ]; then
    echo "== qemu-xen: $n of the 4 PV block results of $board say \"$grants\""
    [ "$status" -ne 0 ] || status=1
  fi
done
echo "== qemu-xen: total $(($(date +%s) - CI_CLOCK_T0)) s, exit $status"
exit "$status"
