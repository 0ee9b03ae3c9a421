#!/usr/bin/env bash
# qemu/mkinitramfs.sh [--cache DIR] [--out DIR] [--force]
#
# Builds the busybox dom0 initramfs for the qemu-xen-arm64 board from the staging tree
# that qemu/fetch.sh unpacked (run that first).
#
#   --cache DIR   fetch.sh's cache (default <repo>/build-qemu/cache; reads DIR/fetch.env)
#   --out DIR     where the images go (default <repo>/build-qemu)
#   --force       rebuild even if the images are newer than their inputs
#
# Produces
#   OUT/dom0.cpio.gz        dom0 only: /init loads the Xen modules, mounts xenfs, starts
#                           xenstored, xen-init-dom0, xenconsoled, prints
#                           "dmahil-qemu: dom0 up" and powers off
#   OUT/dom0-domu.cpio.gz   the same plus an appended cpio (the kernel accepts
#                           concatenated archives) holding the domU kernel, a tiny domU
#                           initramfs and /etc/xen/domu.cfg; /init then runs `xl create`,
#                           relays the domU console log ("dmahil-qemu: domU up") and
#                           powers off
#   OUT/initramfs/          the trees they were packed from
#
# dom0 kernel command-line switches read by /init:
#   dmahil.domu=0    do not start the domU even if the image carries one
#   dmahil.shell=1   drop to a shell on hvc0 instead of powering off
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
OUT=$REPO/build-qemu
FORCE=0
die() { echo "mkinitramfs.sh: error: $*" >&2; exit 1; }
log() { echo "mkinitramfs.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; CACHE=$2; shift 2 ;;
    --out)   [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

[ -f "$CACHE/fetch.env" ] || die "no $CACHE/fetch.env: run qemu/fetch.sh first"
# shellcheck source=/dev/null
. "$CACHE/fetch.env"
for v in ABI XEN KERNEL MODDIR BUSYBOX ROOT; do
  [ -n "${!v:-}" ] || die "$CACHE/fetch.env does not set $v: re-run qemu/fetch.sh"
done
[ -d "$ROOT" ] || die "staging tree $ROOT missing: re-run qemu/fetch.sh"
for t in cpio gzip aarch64-linux-gnu-readelf aarch64-linux-gnu-objcopy; do
  command -v "$t" >/dev/null || die "$t not found: run qemu/fetch.sh (it installs the host tools)"
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DOM0_IMG=$OUT/dom0.cpio.gz
DOMU_IMG=$OUT/dom0-domu.cpio.gz

if [ $FORCE = 0 ] && [ -s "$DOM0_IMG" ] && [ -s "$DOMU_IMG" ] \
   && [ -z "$(find "${BASH_SOURCE[0]}" "$CACHE/fetch.env" -newer "$DOM0_IMG")" ] \
   && [ -z "$(find "${BASH_SOURCE[0]}" "$CACHE/fetch.env" -newer "$DOMU_IMG")" ]; then
  log "up to date: $DOM0_IMG $DOMU_IMG (--force rebuilds)"
  exit 0
fi

WORK=$OUT/initramfs
DOM0=$WORK/dom0
DOMU=$WORK/domu
EXTRA=$WORK/domu-extra
rm -rf "$WORK"
mkdir -p "$DOM0" "$DOMU" "$EXTRA"

# ---- helpers ------------------------------------------------------------------------
LIBDIRS=(lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib)

# base tree: busybox, the directories /init expects, /dev/console
base_tree() {
  local t=$1 d
  for d in bin sbin usr/bin usr/sbin proc sys dev run tmp etc root var; do mkdir -p "$t/$d"; done
  ln -sfn ../run "$t/var/run"
  cp -L "$BUSYBOX" "$t/bin/busybox"
  ln -sfn busybox "$t/bin/sh"
  # the kernel opens /dev/console before /init runs; /init also re-opens it after devtmpfs
  if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$t/dev/console" c 5 1
    mknod -m 666 "$t/dev/null" c 1 3
  fi
}

declare -A SEEN=()
# copy an ELF file (path relative to the staging tree) and, recursively, its DT_NEEDED
add_elf() {
  local rel=$1 need lib
  [ -n "${SEEN[$rel]:-}" ] && return 0
  SEEN[$rel]=1
  [ -e "$ROOT/$rel" ] || die "$rel not in the staging tree $ROOT (missing package in fetch.sh?)"
  mkdir -p "$DOM0/$(dirname "$rel")"
  cp -L "$ROOT/$rel" "$DOM0/$rel"
  for need in $(aarch64-linux-gnu-readelf -d "$ROOT/$rel" 2>/dev/null \
                | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    lib=$(find_lib "$need") || die "$rel needs $need, which is in no staged package (add its package to fetch.sh)"
    add_elf "$lib"
  done
}
find_lib() {
  local d
  for d in "${LIBDIRS[@]}"; do
    [ -e "$ROOT/$d/$1" ] && { echo "$d/$1"; return 0; }
  done
  return 1
}

# cpio newc, owned by root, reproducible order
pack() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6n; }

# ---- dom0 tree ----------------------------------------------------------------------
log "dom0 tree (kernel $ABI)"
base_tree "$DOM0"
mkdir -p "$DOM0"/{var/log/xen,var/lib/xen,var/lib/xenstored,var/lock,etc/xen,proc/xen,lib/modules/xen,etc/dmahil}
: > "$DOM0/etc/xen/xl.conf"

XENBIN=usr/lib/xen-4.17/bin
for b in xl xenstored xenconsoled xen-init-dom0 xenconsole; do
  add_elf "$XENBIN/$b"
  ln -sfn "/$XENBIN/$b" "$DOM0/usr/sbin/$b"
done
for b in xenstore-ls xenstore-read xenstore-write xenstore-list xenstore-rm xenstore-exists; do
  add_elf "usr/bin/$b"
done
# the dynamic loader (PT_INTERP /lib/ld-linux-aarch64.so.1) and libgcc_s, which glibc
# dlopens for pthread_cancel (xl create needs it)
add_elf lib/aarch64-linux-gnu/ld-linux-aarch64.so.1
ln -sfn aarch64-linux-gnu/ld-linux-aarch64.so.1 "$DOM0/lib/ld-linux-aarch64.so.1"
gcc_s=$(find_lib libgcc_s.so.1) || die "libgcc_s.so.1 not staged (libgcc-s1 in fetch.sh)"
add_elf "$gcc_s"

# Xen modules in dependency order (modules.dep is not in the package: read .modinfo)
declare -A MSEEN=()
MODLIST=()
modpath() {
  local f
  f=$(find "$MODDIR/kernel" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -n1)
  [ -n "$f" ] || die "module $1.ko not in $MODDIR"
  echo "$f"
}
add_mod() {
  local name=$1 f deps d
  [ -n "${MSEEN[$name]:-}" ] && return 0
  MSEEN[$name]=1
  f=$(modpath "$name")
  deps=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$f" /dev/stdout \
         | tr '\0' '\n' | sed -n 's/^depends=//p')
  for d in ${deps//,/ }; do add_mod "$d"; done
  cp "$f" "$DOM0/lib/modules/xen/"
  MODLIST+=("$(basename "$f")")
}
for m in xen-evtchn xen-privcmd xenfs xen-gntdev xen-gntalloc; do add_mod "$m"; done
printf '%s\n' "${MODLIST[@]}" > "$DOM0/etc/dmahil/modules"
echo "$ABI" > "$DOM0/etc/dmahil/kernel-abi"

cat > "$DOM0/init" <<'INIT'
#!/bin/busybox sh
# dmahil qemu-xen dom0 /init (generated by qemu/mkinitramfs.sh)
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/xen /run/xenstored /run/lock
exec </dev/console >/dev/console 2>&1

say() { echo "dmahil-qemu: $*"; }
cmdline=$(cat /proc/cmdline)
want() { case " $cmdline " in *" $1 "*) return 0 ;; esac; return 1; }
finish() {
  if want dmahil.shell=1; then
    say "dmahil.shell=1: shell on the console (poweroff -f to stop)"
    setsid cttyhack sh -l
  fi
  sync
  poweroff -f
}
fail() { say "FAIL: $*"; finish; }

for m in $(cat /etc/dmahil/modules); do
  insmod "/lib/modules/xen/$m" || fail "insmod $m"
done
mount -t xenfs xenfs /proc/xen || fail "mount xenfs on /proc/xen"
grep -q control_d /proc/xen/capabilities 2>/dev/null || fail "not the control domain (is Xen running?)"

xenstored --pid-file /run/xenstored.pid || fail "xenstored"
i=0
while [ ! -S /run/xenstored/socket ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
xen-init-dom0 || fail "xen-init-dom0"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen || fail "xenconsoled"
say "dom0 up (kernel $(uname -r), $(cat /proc/xen/capabilities), xenstore domid $(xenstore-read domid 2>/dev/null))"

if [ -f /etc/xen/domu.cfg ] && ! want dmahil.domu=0; then
  xl create /etc/xen/domu.cfg || fail "xl create"
  xl list
  log=/var/log/xen/guest-domu.log
  n=0 seen=0
  # relay the domU console until it has powered off (or 60 s)
  while [ $n -lt 600 ]; do
    if [ $seen = 0 ] && grep -q "dmahil-qemu: domU up" "$log" 2>/dev/null; then seen=1; fi
    xl domid domu >/dev/null 2>&1 || break
    sleep 0.1; n=$((n + 1))
  done
  sed 's/^/[domU] /' "$log" 2>/dev/null | grep -E "dmahil-qemu|Kernel panic|Run /init" || true
  if [ $seen = 0 ]; then
    say "domU console log ($log), last 30 lines:"
    tail -n 30 "$log" 2>/dev/null | sed 's/^/[domU] /'
    fail "no domU marker in $log"
  fi
  xl domid domu >/dev/null 2>&1 && { say "domU still running: destroying"; xl destroy domu; }
  say "domU done"
fi
finish
INIT
chmod 755 "$DOM0/init"

# ---- domU tree ----------------------------------------------------------------------
log "domU tree"
base_tree "$DOMU"
cat > "$DOMU/init" <<'INIT'
#!/bin/busybox sh
# dmahil qemu-xen domU /init (generated by qemu/mkinitramfs.sh)
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo "dmahil-qemu: domU up (kernel $(uname -r))"
sync
poweroff -f
INIT
chmod 755 "$DOMU/init"

# ---- domU extra (appended to the dom0 image) ----------------------------------------
mkdir -p "$EXTRA/boot" "$EXTRA/etc/xen"
cp "$KERNEL" "$EXTRA/boot/domu-Image"
pack "$DOMU" > "$EXTRA/boot/domu.cpio.gz"
cat > "$EXTRA/etc/xen/domu.cfg" <<'CFG'
# dmahil qemu-xen test domU (generated by qemu/mkinitramfs.sh)
name = "domu"
kernel = "/boot/domu-Image"
ramdisk = "/boot/domu.cpio.gz"
extra = "console=hvc0 rdinit=/init"
memory = 128
vcpus = 1
on_crash = "destroy"
CFG

# ---- pack ---------------------------------------------------------------------------
log "packing"
pack "$DOM0" > "$DOM0_IMG.tmp"
pack "$EXTRA" > "$WORK/domu-extra.cpio.gz"
cat "$DOM0_IMG.tmp" "$WORK/domu-extra.cpio.gz" > "$DOMU_IMG.tmp"
mv "$DOM0_IMG.tmp" "$DOM0_IMG"
mv "$DOMU_IMG.tmp" "$DOMU_IMG"

log "modules: ${MODLIST[*]}"
log "dom0 tree $(du -sh "$DOM0" | cut -f1), $((${#SEEN[@]})) ELF files"
log "$(du -h "$DOM0_IMG" | cut -f1)  $DOM0_IMG"
log "$(du -h "$DOMU_IMG" | cut -f1)  $DOMU_IMG (domU initramfs $(du -h "$EXTRA/boot/domu.cpio.gz" | cut -f1))"
