#!/usr/bin/env bash
# qemu/kmod-smoke.sh [--cache DIR] [--out DIR] [--base FILE] [--timeout S] [--only WHICH]
#
# Proves dmahil.ko works on the qemu-xen-arm64 board: real Xen 4.17 + Debian's arm64
# Linux 6.1 dom0 under qemu-system-aarch64 with QEMU's edu PCI device as the DMA engine.
#
#   --cache DIR    fetch.sh's cache (default <repo>/build-qemu/cache)
#   --out DIR      images and console logs (default <repo>/build-qemu/kmod-smoke)
#   --base FILE    the dom0 initramfs to extend (default <repo>/build-qemu/dom0.cpio.gz,
#                  from qemu/mkinitramfs.sh)
#   --base-domu F  the image with the domU kernel (default <repo>/build-qemu/dom0-domu.cpio.gz)
#   --timeout S    per QEMU run (default 240)
#   --only WHICH   coherent | noncoherent | domu: run one of the three boots
#
# Steps:
#   1. qemu/build-kmod.sh -> build-qemu/kmod/dmahil.ko;
#   2. aarch64-linux-gnu-gcc -static agent/kmod/test/dmahil_smoke.c -> OUT/dmahil_smoke;
#   3. OUT/initrd.cpio.gz = BASE + an appended cpio (the kernel unpacks concatenated
#      archives) holding /dmahil-smoke-init, /usr/bin/dmahil_smoke and
#      /lib/modules/dmahil/dmahil.ko.  The init loads the Xen modules the normal /init
#      loads (/etc/dmahil/modules), mounts xenfs, insmods dmahil.ko, runs the test,
#      checks dmesg for WARNING/BUG/Oops, rmmods the module and checks `insmod faults=1`,
#      prints "dmahil-kmod: RESULT PASS|FAIL ..." and "dmahil-qemu: dom0 up" (boot.sh's
#      marker), then `poweroff -f`.  No xenstored: the foreign page is dom0's own grant.
#      The test also watches edu's own DMA-API traffic (DMAHIL_IOC_WATCH, dev_audit.c):
#      the module's maps come back with pfn, bfn and bus address, and on a non-coherent
#      boot with the maintenance the kprobes attributed to each call.
#   4. boot 1 (coherent PCIe, QEMU's default DTB): qemu/boot.sh --initrd OUT/initrd.cpio.gz
#      --dom0-args "rdinit=/dmahil-smoke-init dmahil.smoke.coherent=1"
#      -- -device edu,dma_mask=0xffffffffffffffff            (log: OUT/coherent/console.log)
#   5. boot 2 (non-coherent): the same arguments plus `-machine dumpdtb=OUT/virt.dtb`
#      dump QEMU's DTB (it records the initrd's size, so it is dumped on every run),
#      `fdtput -d ... /pcie@10000000 dma-coherent`, then boot with `-dtb` that file
#      (log: OUT/noncoherent/console.log): the audit must show the kernel's maintenance.
#      dom0's own grant has its bus frame in dom0's RAM, so swiotlb-xen maintains it with
#      arch_sync_dma_* (ARCH_SYNC records), not the hypercall;
#   6. boot 3 "domu" (non-coherent, BASE-DOMU + the same cpio, its own dumped DTB):
#      dom0 starts xenstored/xenconsoled and `xl create`s a 128 MB domU whose init
#      gntallocs a page to dom0 (agent/kmod/test/dmahil_grant.c) and prints its grant
#      ref; dom0 runs dmahil_smoke --grant DOMID:REF: that page's maintenance must be
#      GNTTABOP_cache_flush hypercalls at bfn << 12 (log: OUT/domu/console.log).
# Exits 0 iff every boot printed "dmahil-kmod: RESULT PASS"; 1 otherwise; 2 on bad usage.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
OUT=$REPO/build-qemu/kmod-smoke
BASE=$REPO/build-qemu/dom0.cpio.gz
BASE_DOMU=$REPO/build-qemu/dom0-domu.cpio.gz
TIMEOUT=240 ONLY=""
die() { echo "kmod-smoke.sh: error: $*" >&2; exit 2; }
log() { echo "kmod-smoke.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; CACHE=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --base) [ $# -ge 2 ] || die "--base needs a file"; BASE=$2; shift 2 ;;
    --base-domu) [ $# -ge 2 ] || die "--base-domu needs a file"; BASE_DOMU=$2; shift 2 ;;
    --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
    --only) [[ ${2:-} =~ ^(coherent|noncoherent|domu)$ ]] || die "--only needs coherent, noncoherent or domu"
            ONLY=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
[ -f "$BASE" ] || die "no base initramfs $BASE: run qemu/mkinitramfs.sh first"
[ -f "$BASE_DOMU" ] || [ "$ONLY" = coherent ] || [ "$ONLY" = noncoherent ] \
  || die "no $BASE_DOMU: run qemu/mkinitramfs.sh first"
[ -f "$CACHE/fetch.env" ] || die "no $CACHE/fetch.env: run qemu/fetch.sh first"
# shellcheck source=/dev/null
. "$CACHE/fetch.env"
[ -d "${MODDIR:-}" ] || die "modules directory '${MODDIR:-}' missing: re-run qemu/fetch.sh"
[ -x "${BUSYBOX:-}" ] || die "busybox '${BUSYBOX:-}' missing: re-run qemu/fetch.sh"
for t in aarch64-linux-gnu-gcc cpio gzip fdtput qemu-system-aarch64; do
  command -v "$t" >/dev/null || die "$t not found: run qemu/fetch.sh (it installs the host tools)"
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# --- 1. module -----------------------------------------------------------------------
"$REPO/qemu/build-kmod.sh" --cache "$CACHE" || { echo "kmod-smoke.sh: error: qemu/build-kmod.sh failed" >&2; exit 1; }
KO=$REPO/build-qemu/kmod/dmahil.ko

# --- 2. test program -----------------------------------------------------------------
TEST_SRC=$REPO/agent/kmod/test/dmahil_smoke.c
log "aarch64-linux-gnu-gcc -static $TEST_SRC"
aarch64-linux-gnu-gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$OUT/dmahil_smoke.tmp" "$TEST_SRC" \
  || { echo "kmod-smoke.sh: error: cross-compiling $TEST_SRC failed" >&2; exit 1; }
mv "$OUT/dmahil_smoke.tmp" "$OUT/dmahil_smoke"
GRANT_SRC=$REPO/agent/kmod/test/dmahil_grant.c
aarch64-linux-gnu-gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$OUT/dmahil_grant.tmp" "$GRANT_SRC" \
  || { echo "kmod-smoke.sh: error: cross-compiling $GRANT_SRC failed" >&2; exit 1; }
mv "$OUT/dmahil_grant.tmp" "$OUT/dmahil_grant"

# --- 3. initramfs --------------------------------------------------------------------
TREE=$OUT/overlay
rm -rf "$TREE"
mkdir -p "$TREE/usr/bin" "$TREE/lib/modules/dmahil"
cp "$OUT/dmahil_smoke" "$TREE/usr/bin/dmahil_smoke"
cp "$KO" "$TREE/lib/modules/dmahil/dmahil.ko"

# the domU of boot 3: busybox, xen-gntalloc.ko and dmahil_grant
DU=$OUT/domu-tree
rm -rf "$DU"
mkdir -p "$DU/bin" "$DU/usr/bin" "$DU/proc" "$DU/sys" "$DU/dev" "$DU/lib/modules"
cp -L "$BUSYBOX" "$DU/bin/busybox"
ln -sfn busybox "$DU/bin/sh"
[ "$(id -u)" != 0 ] || { mknod -m 600 "$DU/dev/console" c 5 1; mknod -m 666 "$DU/dev/null" c 1 3; }
gntalloc_ko=$(find "$MODDIR/kernel" -name xen-gntalloc.ko | head -n1)
[ -n "$gntalloc_ko" ] || die "xen-gntalloc.ko not in $MODDIR"
cp "$gntalloc_ko" "$DU/lib/modules/"
cp "$OUT/dmahil_grant" "$DU/usr/bin/"
cat > "$DU/init" <<'DINIT'
#!/bin/busybox sh
# kmod smoke domU (generated by qemu/kmod-smoke.sh): grant one page to dom0, then wait
/bin/busybox --install -s
export PATH=/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
insmod /lib/modules/xen-gntalloc.ko || echo "dmahil-grant: FAIL: insmod xen-gntalloc"
/usr/bin/dmahil_grant
echo "dmahil-grant: FAIL: dmahil_grant exited"
poweroff -f
DINIT
chmod 755 "$DU/init"
mkdir -p "$TREE/boot" "$TREE/etc/xen"
(cd "$DU" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6n > "$TREE/boot/kmod-domu.cpio.gz"
cat > "$TREE/etc/xen/kmod-domu.cfg" <<'CFG'
# dmahil kmod smoke domU (generated by qemu/kmod-smoke.sh; kernel from dom0-domu.cpio.gz)
name = "kmod-domu"
kernel = "/boot/domu-Image"
ramdisk = "/boot/kmod-domu.cpio.gz"
extra = "console=hvc0 rdinit=/init"
memory = 128
vcpus = 1
on_crash = "destroy"
CFG
cat > "$TREE/dmahil-smoke-init" <<'INIT'
#!/bin/busybox sh
# dmahil.ko smoke test init (generated by qemu/kmod-smoke.sh; rdinit=/dmahil-smoke-init)
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
say() { echo "dmahil-kmod: $*"; }
finish() {
  say "RESULT $*"
  echo "dmahil-qemu: dom0 up (kmod smoke done)"
  sync
  poweroff -f
}
for m in $(cat /etc/dmahil/modules); do
  insmod "/lib/modules/xen/$m" || finish "FAIL: insmod $m"
done
mount -t xenfs xenfs /proc/xen || finish "FAIL: mount xenfs"
coh=-1 domu=0
for a in $(cat /proc/cmdline); do
  case $a in
    dmahil.smoke.coherent=*) coh=${a#dmahil.smoke.coherent=} ;;
    dmahil.smoke.domu=1) domu=1 ;;
  esac
done
grant=""
if [ $domu = 1 ]; then
  # as qemu/mkinitramfs.sh's /init: xenstored, xen-init-dom0, xenconsoled, then xl create
  export LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu
  mkdir -p /dev/pts /dev/shm
  mount -t devpts devpts /dev/pts
  mount -t tmpfs tmpfs /run
  mkdir -p /run/xen /run/xenstored /run/lock
  xenstored --pid-file /run/xenstored.pid || finish "FAIL: xenstored"
  i=0
  while [ ! -S /run/xenstored/socket ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  xen-init-dom0 || finish "FAIL: xen-init-dom0"
  xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen || finish "FAIL: xenconsoled"
  xl create /etc/xen/kmod-domu.cfg || finish "FAIL: xl create kmod-domu"
  log=/var/log/xen/guest-kmod-domu.log
  i=0
  while ! grep -q "dmahil-grant: ref=" "$log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
  sed 's/^/[domU] /' "$log" 2>/dev/null | grep -E "dmahil-grant|Kernel panic" || true
  ref=$(sed -n 's/.*dmahil-grant: ref=\([0-9]*\).*/\1/p' "$log" | head -n1)
  did=$(xl domid kmod-domu 2>/dev/null || true)
  [ -n "$ref" ] && [ -n "$did" ] || { tail -n 20 "$log" 2>/dev/null; finish "FAIL: no grant from the domU"; }
  grant="--grant $did:$ref"
  say "domU $did granted ref $ref"
fi
insmod /lib/modules/dmahil/dmahil.ko || finish "FAIL: insmod dmahil.ko"
dmesg | grep -i dmahil
say "running dmahil_smoke --expect-coherent $coh $grant"
rc=0
# shellcheck disable=SC2086
/usr/bin/dmahil_smoke --expect-coherent "$coh" $grant || rc=$?
[ $domu = 0 ] || xl destroy kmod-domu || true
rmmod dmahil || finish "FAIL: rmmod dmahil"
insmod /lib/modules/dmahil/dmahil.ko faults=1 || finish "FAIL: insmod dmahil.ko faults=1"
f=$(cat /sys/module/dmahil/parameters/faults)
say "insmod faults=1 -> /sys/module/dmahil/parameters/faults = $f"
rmmod dmahil || finish "FAIL: rmmod dmahil (2)"
bad=$(dmesg | grep -E 'WARNING:|BUG:|Oops|Unable to handle|Call trace' || true)
if [ -n "$bad" ]; then
  dmesg | tail -n 60
  finish "FAIL: kernel warnings in dmesg"
fi
[ "$f" = 1 ] || finish "FAIL: faults parameter is '$f' after insmod faults=1"
[ $rc = 0 ] || finish "FAIL: dmahil_smoke exit status $rc"
finish PASS
INIT
chmod 755 "$TREE/dmahil-smoke-init"
INITRD=$OUT/initrd.cpio.gz
(cd "$TREE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6n > "$OUT/overlay.cpio.gz"
cat "$BASE" "$OUT/overlay.cpio.gz" > "$INITRD.tmp"
mv "$INITRD.tmp" "$INITRD"
log "initrd $INITRD ($(du -h "$INITRD" | cut -f1))"

EDU=(-device edu,dma_mask=0xffffffffffffffff)
results=()
run_boot() { # NAME INITRD DOM0-ARGS QEMU-ARGS...
  local name=$1 initrd=$2 args=$3 rc=0
  shift 3
  mkdir -p "$OUT/$name"
  log "boot '$name': qemu/boot.sh --initrd $initrd --dom0-args \"$args\" -- $*"
  "$REPO/qemu/boot.sh" --cache "$CACHE" --out "$OUT/$name" --timeout "$TIMEOUT" --initrd "$initrd" \
    --dom0-args "$args" -- "$@" >"$OUT/$name/boot.out" 2>&1 || rc=$?
  local clog=$OUT/$name/console.log
  grep -E 'dmahil-smoke: (FAIL|PASS)|dmahil-kmod:|dmahil-smoke: info|\[domU\]' "$clog" || true
  if grep -q 'dmahil-kmod: RESULT PASS' "$clog"; then
    results+=("$name: PASS")
  else
    log "boot '$name' FAILED (boot.sh exit $rc); last 40 lines of $clog:"
    tail -n 40 "$clog" | sed 's/^/  | /'
    results+=("$name: FAIL")
  fi
}

if [ -z "$ONLY" ] || [ "$ONLY" = coherent ]; then
  run_boot coherent "$INITRD" "rdinit=/dmahil-smoke-init dmahil.smoke.coherent=1" "${EDU[@]}"
fi
# noncoherent_dtb NAME INITRD DOM0-ARGS: dump QEMU's DTB with the boot's own arguments
# (it holds the initrd's size and the bootargs), drop dma-coherent from the PCIe host
noncoherent_dtb() {
  local name=$1 initrd=$2 args=$3 dtb=$OUT/$1.dtb
  rm -f "$dtb"
  mkdir -p "$OUT/dumpdtb-$name"
  "$REPO/qemu/boot.sh" --cache "$CACHE" --out "$OUT/dumpdtb-$name" --timeout 60 --initrd "$initrd" \
    --dom0-args "$args" -- "${EDU[@]}" -machine dumpdtb="$dtb" \
    >"$OUT/dumpdtb-$name/boot.out" 2>&1 || true   # QEMU exits after the dump: no marker
  [ -s "$dtb" ] || { echo "kmod-smoke.sh: error: QEMU did not dump $dtb (see $OUT/dumpdtb-$name/boot.out)" >&2; exit 1; }
  fdtput -d "$dtb" /pcie@10000000 dma-coherent \
    || { echo "kmod-smoke.sh: error: fdtput -d $dtb /pcie@10000000 dma-coherent failed" >&2; exit 1; }
  log "non-coherent DTB $dtb (dma-coherent removed from /pcie@10000000)"
}
if [ -z "$ONLY" ] || [ "$ONLY" = noncoherent ]; then
  args="rdinit=/dmahil-smoke-init dmahil.smoke.coherent=0"
  noncoherent_dtb noncoherent "$INITRD" "$args"
  run_boot noncoherent "$INITRD" "$args" "${EDU[@]}" -dtb "$OUT/noncoherent.dtb"
fi
if [ -z "$ONLY" ] || [ "$ONLY" = domu ]; then
  INITRD_DOMU=$OUT/initrd-domu.cpio.gz
  cat "$BASE_DOMU" "$OUT/overlay.cpio.gz" > "$INITRD_DOMU.tmp"
  mv "$INITRD_DOMU.tmp" "$INITRD_DOMU"
  log "initrd $INITRD_DOMU ($(du -h "$INITRD_DOMU" | cut -f1))"
  args="rdinit=/dmahil-smoke-init dmahil.smoke.coherent=0 dmahil.smoke.domu=1"
  noncoherent_dtb domu "$INITRD_DOMU" "$args"
  run_boot domu "$INITRD_DOMU" "$args" "${EDU[@]}" -dtb "$OUT/domu.dtb"
fi

echo
fail=0
for r in "${results[@]}"; do
  log "$r"
  case $r in *FAIL) fail=1 ;; esac
done
if [ $fail = 0 ]; then log "PASS"; exit 0; fi
log "FAIL (console logs under $OUT)"
exit 1
