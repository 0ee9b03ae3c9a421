#!/usr/bin/env bash
# The qemu-xen campaign (issue 4): real Xen 4.17 and Debian's arm64 Linux 6.1 under
# qemu-system-aarch64, with our agent (cross-built) and dmahil.ko driving QEMU's edu device.
#   ci/qemu-xen.sh [OUT_DIR]           (default OUT_DIR: out/qemu-xen)
#
# Sets up everything it needs (host packages, Debian's arm64 packages under build-qemu/,
# the arm64 sysroot, dmahil.ko, the aarch64 agent, the initramfs), builds the controller,
# then runs four farms with --check-expectations:
#   ci/farms/qemu-xen.textproto              stock kernel: every fixture passes, zero
#                                            mismatches, foreign pages with pfn != bfn
#   ci/farms/qemu-xen-noncoherent.textproto  dma-coherent removed from the DTB: the
#                                            maintenance audit passes on the stock kernel
#   ci/farms/qemu-xen-faults.textproto       dmahil.ko's fault switches: each board fails
#                                            with its own diagnosis
#   ci/farms/qemu-xen-bounce.textproto       swiotlb bounce: dom0 swiotlb=force, and a
#                                            domU above 4 GiB with a 32-bit edu
# Exit status: 0 if every farm met its expectations; otherwise the status of the first
# farm that did not (1: expectations missed, 2: a board could not run) after printing the
# end of every board's console log.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/qemu-xen}

ci/setup.sh build
echo "== qemu-xen: set-up (Debian arm64 packages, sysroot, dmahil.ko, agent, initramfs)"
qemu/fetch.sh
qemu/build-kmod.sh
qemu/sysroot.sh
qemu/build-agent.sh
qemu/mkinitramfs.sh

status=0
for farm in qemu-xen qemu-xen-noncoherent qemu-xen-faults qemu-xen-bounce; do
  echo "== qemu-xen: dmahil run --farm ci/farms/$farm.textproto"
  rc=0
  build/bin/dmahil run --farm "ci/farms/$farm.textproto" --out "$OUT/$farm" \
    --check-expectations || rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$status" -ne 0 ] || status=$rc
    for log in "$OUT/$farm"/*/console.log; do
      [ -f "$log" ] || continue
      echo "== $log (last 80 lines)"
      tail -n 80 "$log"
    done
  fi
done
exit "$status"
