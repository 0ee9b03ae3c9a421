#!/usr/bin/env bash
# qemu/build-kmod.sh [--cache DIR] [--out DIR] [--force]
#
# Cross-builds the dom0 kernel module agent/kmod/dmahil.ko for the qemu-xen-arm64 board's
# Debian arm64 kernel (the ABI in fetch.sh's CACHE/fetch.env, e.g. 6.1.0-56-arm64).
#
#   --cache DIR   fetch.sh's cache (default <repo>/build-qemu/cache; reads DIR/fetch.env)
#   --out DIR     build folder (default <repo>/build-qemu/kmod)
#   --force       rebuild even if the module is up to date
#
# Steps (each skipped when already done):
#   1. apt-get download (never install) linux-headers-$ABI:arm64, the matching
#      linux-headers-<abi>-common and the amd64 linux-kbuild-6.1 pinned to the SAME
#      version as the headers (its fixdep/modpost run on this host) into
#      CACHE/kheaders/debs;
#   2. dpkg-deb -x them into CACHE/kheaders/root (stamps in CACHE/kheaders/root/.unpacked)
#      and point the headers' absolute `include /usr/src/...-common/Makefile` at the
#      extracted tree;
#   3. copy agent/kmod's Kbuild, *.c and *.h into OUT/src (only changed files, so make
#      stays incremental; agent/kmod itself never gets build artifacts) and run
#      make -C <headers> M=OUT/src ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
#      KCFLAGS=-Werror modules.  Any "warning:" in the output fails the build.
#
# Produces OUT/dmahil.ko (plus OUT/src/, the build tree) and prints its vermagic.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
OUT=$REPO/build-qemu/kmod
FORCE=0
die() { echo "build-kmod.sh: error: $*" >&2; exit 1; }
log() { echo "build-kmod.sh: $*"; }
# shellcheck source=qemu/lib.sh
. "$REPO/qemu/lib.sh"
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
[ -n "${ABI:-}" ] || die "$CACHE/fetch.env does not set ABI: re-run qemu/fetch.sh"
for t in aarch64-linux-gnu-gcc-12 aarch64-linux-gnu-ld make dpkg-deb apt-get; do
  command -v "$t" >/dev/null || die "$t not found: run qemu/fetch.sh (it installs the cross tools)"
done
SRC=$REPO/agent/kmod
[ -f "$SRC/Kbuild" ] || die "no $SRC/Kbuild"

KH=$CACHE/kheaders
DEBS=$KH/debs
KROOT=$KH/root
mkdir -p "$DEBS" "$KROOT/.unpacked" "$OUT"
OUT=$(cd "$OUT" && pwd)
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 -o APT::Sandbox::User=root -q)

# the cached .deb for a package name and architecture (any version), or nothing
cached_deb() { find "$DEBS" -maxdepth 1 -name "$1_*_$2.deb" | sort -V | tail -n1; }
download() { # NAME ARCH [VERSION]
  local spec="$1:$2"
  [ -z "${3:-}" ] || spec="$1:$2=$3"
  log "apt-get download $spec"
  (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "$spec") \
    || die "apt-get download $spec failed (is the package list current? apt-get update)"
}

# --- 1. the three packages -----------------------------------------------------------
HDR=linux-headers-$ABI
[ -n "$(cached_deb "$HDR" arm64)" ] || download "$HDR" arm64
hdr_deb=$(cached_deb "$HDR" arm64)
[ -n "$hdr_deb" ] || die "no $HDR .deb in $DEBS after download"
VER=$(dpkg-deb -f "$hdr_deb" Version)
# Depends: linux-headers-6.1.0-56-common (= 6.1.192-2), linux-kbuild-6.1 (>= ...), gcc-12
COMMON=$(dpkg-deb -f "$hdr_deb" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-headers-[^ ]*-common\) .*/\1/p')
KBUILD=$(dpkg-deb -f "$hdr_deb" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-kbuild-[0-9.]*\) .*/\1/p')
[ -n "$COMMON" ] && [ -n "$KBUILD" ] || die "cannot read the -common/-kbuild dependencies of $hdr_deb"
log "headers $HDR $VER, $COMMON, $KBUILD (amd64) pinned to $VER"

# -common is Architecture: all; kbuild must be the host's (amd64) and exactly $VER
common_deb=$(find "$DEBS" -maxdepth 1 -name "${COMMON}_${VER}_all.deb" | head -n1)
if [ -z "$common_deb" ]; then
  download "$COMMON" all "$VER"
  common_deb=$(find "$DEBS" -maxdepth 1 -name "${COMMON}_${VER}_all.deb" | head -n1)
  [ -n "$common_deb" ] || die "no ${COMMON}_${VER}_all.deb in $DEBS after download"
fi
host_arch=$(dpkg --print-architecture)
kbuild_deb=$(find "$DEBS" -maxdepth 1 -name "${KBUILD}_${VER}_${host_arch}.deb" | head -n1)
if [ -z "$kbuild_deb" ]; then
  download "$KBUILD" "$host_arch" "$VER"
  kbuild_deb=$(find "$DEBS" -maxdepth 1 -name "${KBUILD}_${VER}_${host_arch}.deb" | head -n1)
  [ -n "$kbuild_deb" ] || die "no ${KBUILD}_${VER}_${host_arch}.deb in $DEBS after download"
fi

# --- 2. unpack + fix the absolute include ----------------------------------------------
unpack_debs "$KROOT" "$hdr_deb" "$common_deb" "$kbuild_deb"
KDIR=$KROOT/usr/src/$HDR
[ -f "$KDIR/Makefile" ] || die "no $KDIR/Makefile after unpacking $hdr_deb"
[ -x "$KROOT/usr/lib/$KBUILD/scripts/basic/fixdep" ] \
  || die "no host fixdep in $KROOT/usr/lib/$KBUILD (wrong linux-kbuild architecture?)"
# "include /usr/src/linux-headers-<abi>-common/Makefile" -> the extracted copy
if grep -q '^include /usr/src/' "$KDIR/Makefile"; then
  sed -i "s|^include /usr/src/|include $KROOT/usr/src/|" "$KDIR/Makefile"
  log "pointed $KDIR/Makefile at $KROOT/usr/src"
fi
grep -q "^include $KROOT/usr/src/$COMMON/Makefile" "$KDIR/Makefile" \
  || die "$KDIR/Makefile does not include $KROOT/usr/src/$COMMON/Makefile"
grep -qx 'CONFIG_KPROBES=y' "$KDIR/.config" || log "note: CONFIG_KPROBES is not y: the audit will be unarmed"

# --- 3. build out of tree ------------------------------------------------------------
BUILD=$OUT/src
mkdir -p "$BUILD"
changed=0
for f in "$SRC"/Kbuild "$SRC"/*.c "$SRC"/*.h; do
  [ -e "$f" ] || continue
  if ! cmp -s "$f" "$BUILD/$(basename "$f")"; then cp -p "$f" "$BUILD/"; changed=1; fi
done
# sources removed from agent/kmod must not linger in the build copy
for f in "$BUILD"/*.c "$BUILD"/*.h; do
  [ -e "$f" ] || continue
  case $f in *.mod.c) continue ;; esac   # kbuild's own
  [ -e "$SRC/$(basename "$f")" ] || { rm -f "$f"; changed=1; }
done
if [ $FORCE = 0 ] && [ $changed = 0 ] && [ -s "$OUT/dmahil.ko" ] \
   && [ -z "$(find "$BUILD" "$KDIR/Makefile" -newer "$OUT/dmahil.ko" -type f \( -name '*.[ch]' -o -name Kbuild -o -name Makefile \))" ]; then
  log "up to date: $OUT/dmahil.ko (--force rebuilds)"
  exit 0
fi
[ $FORCE = 0 ] || make -s -C "$KDIR" M="$BUILD" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- clean >/dev/null

log "make -C $KDIR M=$BUILD ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- KCFLAGS=-Werror modules"
blog=$OUT/build.log
if ! make -C "$KDIR" M="$BUILD" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- KCFLAGS=-Werror \
       -j"$(nproc)" modules >"$blog" 2>&1; then
  cat "$blog" >&2
  die "module build failed (log: $blog)"
fi
if grep -i 'warning:' "$blog" >&2; then
  die "the module build printed warnings (log: $blog)"
fi
cp "$BUILD/dmahil.ko" "$OUT/dmahil.ko.tmp"
mv "$OUT/dmahil.ko.tmp" "$OUT/dmahil.ko"
vermagic=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$OUT/dmahil.ko" /dev/stdout \
           | tr '\0' '\n' | sed -n 's/^vermagic=//p')
case $vermagic in
  "$ABI "*) ;;
  *) die "vermagic '$vermagic' does not start with $ABI" ;;
esac
log "built $OUT/dmahil.ko ($(stat -c %s "$OUT/dmahil.ko") bytes), vermagic: $vermagic"
