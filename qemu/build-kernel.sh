#!/usr/bin/env bash
# qemu/build-kernel.sh [--tree DIR] [--config NAME] [--name NAME] [--jobs N] [--xen FILE]
#                      [--no-initramfs] [--force] [--source-only]
#
# Builds the qemu-xen board's dom0/domU kernel from a Linux source tree: the arm64 Image,
# the modules the board loads (qemu/mkinitramfs.sh), dmahil.ko against that very build,
# and the board's initramfs. A farm boots it through the kernel.env this writes (the
# `fetch_env` of a qemu power wiring, ci/farms/qemu-xen-source.textproto).
#
#   --tree DIR     a git work tree of Linux (a kernel developer's branch). Default:
#                  <repo>/build-qemu/linux/src, made on first use from Debian's
#                  linux-source-6.1 of the same version as the fetched linux-image (one
#                  commit, tagged debian/<version>). The tree's HEAD is built as it is
#                  checked out; uncommitted changes are built too and named "-dirty".
#   --config NAME  qemu/kernel/NAME.config, added to qemu/kernel/base.config to make the
#                  fragment .config is derived from (default dom0-4k; dom0-64k for 64 KiB
#                  pages)
#   --name NAME    also link <repo>/build-qemu/kernels/NAME to the build (default: the
#                  config's name when the tree is the default one, else none)
#   --jobs N       make -j (default: nproc)
#   --xen FILE     the hypervisor kernel.env names (default: fetch.env's XEN, Debian's)
#   --no-initramfs do not build the board's initramfs (no agent or sysroot needed)
#   --force        rebuild even if this tree revision + config was built before
#   --source-only  only make the default tree (build-qemu/linux/src) if it is missing, and
#                  build nothing (ci/kernel-bisect.sh clones it)
#
# Reproducible config: `make allnoconfig` with the fragment as KCONFIG_ALLCONFIG, then
# every value of the fragment is checked in the result (an option Kconfig dropped stops
# the build, naming it). Builds are cached by tree revision + config: the output folder is
#   <repo>/build-qemu/kernels/<config>-<rev12>[-dirty<diff8>]-<config sha12>/
#     Image  lib/modules/<release>/  dmahil.ko  config  kernel.env  board.cpio.gz
# and a second run with the same revision, config and agent/kmod sources builds nothing
# (the initramfs is remade when the agent is newer). Objects live in
# <repo>/build-qemu/linux/obj-<config>-<tree hash8>/, shared by every revision of a tree,
# so the next revision is an incremental build.
#
# kernel.env holds what fetch.env holds (ABI = the kernel release, XEN, KERNEL, MODDIR,
# BUSYBOX, ROOT) plus KERNEL_TREE, KERNEL_REV, KERNEL_DESCRIBE, KERNEL_CONFIG,
# KERNEL_CONFIG_SHA, KERNEL_PAGE_KIB, KMOD and KMOD_SHA (agent/kmod's sources); results
# name the kernel from it.
# Prints "build-kernel.sh: built <dir> in <s> s (kernel <s> s)" or "... cached <dir>".
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
DEFAULT_TREE=$REPO/build-qemu/linux/src
TREE=$DEFAULT_TREE
CONFIG=dom0-4k
NAME=
JOBS=$(nproc)
XEN_FILE=
INITRAMFS=1
FORCE=0
SOURCE_ONLY=0
die() { echo "build-kernel.sh: error: $*" >&2; exit 1; }
log() { echo "build-kernel.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --tree) [ $# -ge 2 ] || die "--tree needs a directory"; TREE=$2; shift 2 ;;
    --config) [ $# -ge 2 ] || die "--config needs a name"; CONFIG=$2; shift 2 ;;
    --name) [[ ${2:-} =~ ^[A-Za-z0-9._-]+$ ]] || die "--name needs a name ([A-Za-z0-9._-])"
            NAME=$2; shift 2 ;;
    --jobs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a number"; JOBS=$2; shift 2 ;;
    --xen) [ $# -ge 2 ] || die "--xen needs a file"; XEN_FILE=$2; shift 2 ;;
    --no-initramfs) INITRAMFS=0; shift ;;
    --force) FORCE=1; shift ;;
    --source-only) SOURCE_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
[[ $CONFIG =~ ^[A-Za-z0-9._-]+$ ]] && [ "$CONFIG" != base ] && [ -f "$REPO/qemu/kernel/$CONFIG.config" ] \
  || die "--config $CONFIG: no qemu/kernel/$CONFIG.config (there are: $(cd "$REPO/qemu/kernel" \
         && ls ./*.config | sed -e 's|^\./||' -e 's|\.config$||' | grep -vx base | tr '\n' ' '))"
[ -f "$CACHE/fetch.env" ] || die "no $CACHE/fetch.env: run qemu/fetch.sh first"
# shellcheck source=/dev/null
. "$CACHE/fetch.env"
if [ -n "$XEN_FILE" ]; then
  [ -f "$XEN_FILE" ] || die "--xen $XEN_FILE: no such file"
  XEN=$(cd "$(dirname "$XEN_FILE")" && pwd)/$(basename "$XEN_FILE")
fi
PKGS=(gcc-aarch64-linux-gnu make flex bison bc libssl-dev libelf-dev git xz-utils)
"$REPO/ci/apt-install.sh" build-kernel.sh "${PKGS[@]}"
export ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
export KBUILD_BUILD_USER=dmahil KBUILD_BUILD_HOST=dmahil KBUILD_BUILD_TIMESTAMP="@0"
GIT=(git -c user.name=dmahil -c user.email=dmahil@localhost -c advice.detachedHead=false)

# --- 1. the default tree: Debian's linux-source of the fetched image's version ----------
if [ "$TREE" = "$DEFAULT_TREE" ] && [ ! -d "$TREE/.git" ]; then
  img=$(find "$CACHE/debs" -maxdepth 1 -name "linux-image-$ABI-unsigned_*_arm64.deb" | head -n1)
  [ -n "$img" ] || die "no linux-image-$ABI-unsigned .deb in $CACHE/debs: re-run qemu/fetch.sh"
  ver=$(dpkg-deb -f "$img" Version)
  src=linux-source-$(echo "$ver" | cut -d. -f1-2)   # 6.1.192-3 -> linux-source-6.1
  deb=$(find "$CACHE/debs" -maxdepth 1 -name "${src}_${ver}_all.deb" | head -n1)
  if [ -z "$deb" ]; then
    log "apt-get download $src=$ver"
    (cd "$CACHE/debs" && apt-get -qq -o Acquire::Retries=3 -o APT::Sandbox::User=root \
       download "$src=$ver") || die "apt-get download $src=$ver failed"
    deb=$(find "$CACHE/debs" -maxdepth 1 -name "${src}_${ver}_all.deb" | head -n1)
    [ -n "$deb" ] || die "no ${src}_${ver}_all.deb after the download"
  fi
  log "unpacking $(basename "$deb") into $TREE"
  rm -rf "$TREE.tmp" && mkdir -p "$TREE.tmp"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards "./usr/src/$src.tar.xz" \
    | tar -xJ -C "$TREE.tmp" --strip-components=1 || die "cannot unpack $deb"
  # -f: Debian's .gitignore ignores everything at the top level (its packaging repository
  # holds only debian/); the tarball is the source as it is, nothing generated
  (cd "$TREE.tmp" && "${GIT[@]}" init -q && "${GIT[@]}" add -A -f \
     && "${GIT[@]}" commit -q -m "Linux ${ver%-*} as Debian's $src $ver" \
     && "${GIT[@]}" tag "debian/$ver") || die "cannot make a git repository of $TREE.tmp"
  mv "$TREE.tmp" "$TREE"
fi
if [ $SOURCE_ONLY = 1 ]; then
  [ -d "$DEFAULT_TREE/.git" ] || die "--source-only makes the default tree only, not --tree $TREE"
  log "source $DEFAULT_TREE ($(git -C "$DEFAULT_TREE" describe --tags --always))"
  exit 0
fi
[ -d "$TREE" ] || die "--tree $TREE: no such directory"
TREE=$(cd "$TREE" && pwd)
[ -f "$TREE/Makefile" ] && [ -d "$TREE/arch/arm64" ] || die "$TREE is not a Linux source tree"
REV=$(git -C "$TREE" rev-parse HEAD 2>/dev/null) \
  || die "$TREE is not a git work tree with a commit (dmahil names a kernel by its revision)"
DESCRIBE=$(git -C "$TREE" describe --tags --always --dirty 2>/dev/null || echo "$REV")
KEYREV=${REV:0:12}
DIFF=$(git -C "$TREE" diff HEAD --binary | sha256sum | cut -c1-8)
if [ -n "$(git -C "$TREE" status --porcelain --untracked-files=no)" ]; then
  KEYREV=$KEYREV-dirty$DIFF
fi
[ -n "$NAME" ] || [ "$TREE" != "$DEFAULT_TREE" ] || NAME=$CONFIG

# --- 2. the config -------------------------------------------------------------------
OBJ=$REPO/build-qemu/linux/obj-$CONFIG-$(echo "$TREE" | sha256sum | cut -c1-8)
mkdir -p "$OBJ"
FRAGMENT=$OBJ/fragment.config
cat "$REPO/qemu/kernel/base.config" "$REPO/qemu/kernel/$CONFIG.config" >"$FRAGMENT"
make -s -C "$TREE" O="$OBJ" KCONFIG_ALLCONFIG="$FRAGMENT" allnoconfig >"$OBJ/config.log" 2>&1 \
  || { tail -n 20 "$OBJ/config.log" >&2; die "make allnoconfig with $FRAGMENT failed"; }
lost=
while IFS= read -r line; do
  key=${line%%=*}
  if [ "${line#*=}" = n ]; then
    grep -q "^$key=" "$OBJ/.config" && lost+=" $line(got $(grep "^$key=" "$OBJ/.config"))"
  else
    grep -qxF -- "$line" "$OBJ/.config" || lost+=" $line(got $(grep "^$key=" "$OBJ/.config" || echo unset))"
  fi
done < <(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$FRAGMENT")
[ -z "$lost" ] || die "Kconfig did not keep these values of qemu/kernel/{base,$CONFIG}.config:$lost"
CFGSHA=$(grep -v '^#' "$OBJ/.config" | grep -v '^$' | sha256sum | cut -c1-12)
KEY=$CONFIG-$KEYREV-$CFGSHA
OUT=$REPO/build-qemu/kernels/$KEY
link_name() {
  [ -z "$NAME" ] && return 0
  ln -sfn "$KEY" "$REPO/build-qemu/kernels/$NAME"
  log "build-qemu/kernels/$NAME -> $KEY"
}
# dmahil.ko is built against this very kernel: a change to agent/kmod rebuilds it (the
# kernel's own make is then an incremental no-op for this revision)
KMOD_SHA=$(cat "$REPO"/agent/kmod/Kbuild "$REPO"/agent/kmod/*.[ch] | sha256sum | cut -c1-12)
initramfs() {
  [ $INITRAMFS = 1 ] || return 0
  # it rebuilds only when an input (agent, dmahil.ko, kernel.env, settings) is newer
  "$REPO/qemu/mkinitramfs.sh" --env "$OUT/kernel.env" --kmod "$OUT/dmahil.ko" --out "$OUT" \
    >"$OUT/mkinitramfs.log" 2>&1 || { tail -n 20 "$OUT/mkinitramfs.log" >&2
      die "qemu/mkinitramfs.sh for $OUT failed (log: $OUT/mkinitramfs.log)"; }
}
if [ $FORCE = 0 ] && [ -f "$OUT/kernel.env" ] && grep -qx "KMOD_SHA=$KMOD_SHA" "$OUT/kernel.env"; then
  initramfs
  link_name
  log "cached $OUT ($DESCRIBE, config $CONFIG $CFGSHA, dmahil.ko $KMOD_SHA)"
  exit 0
fi

# --- 3. Image, modules, dmahil.ko ------------------------------------------------------
t0=$SECONDS
log "building $DESCRIBE with $CONFIG ($CFGSHA) in $OBJ, make -j$JOBS"
if ! make -s -C "$TREE" O="$OBJ" -j"$JOBS" Image modules >"$OBJ/build.log" 2>&1; then
  grep -E 'error|Error' "$OBJ/build.log" | head -n 20 >&2
  die "make Image modules failed (log: $OBJ/build.log)"
fi
tk=$((SECONDS - t0))
RELEASE=$(make -s -C "$TREE" O="$OBJ" kernelrelease)
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
cp "$OBJ/arch/arm64/boot/Image" "$OUT.tmp/Image"
cp "$OBJ/.config" "$OUT.tmp/config"
make -s -C "$TREE" O="$OBJ" INSTALL_MOD_PATH="$OUT.tmp" INSTALL_MOD_STRIP=1 \
  modules_install >>"$OBJ/build.log" 2>&1 || die "make modules_install failed (log: $OBJ/build.log)"
rm -f "$OUT.tmp/lib/modules/$RELEASE/build" "$OUT.tmp/lib/modules/$RELEASE/source"
# dmahil.ko from a copy of agent/kmod (the source folder never gets build artifacts)
mkdir -p "$OUT.tmp/kmod"
cp "$REPO"/agent/kmod/Kbuild "$REPO"/agent/kmod/*.[ch] "$OUT.tmp/kmod/"
if ! make -C "$OBJ" M="$OUT.tmp/kmod" KCFLAGS=-Werror modules >"$OUT.tmp/kmod/build.log" 2>&1 \
   || grep -q 'warning:' "$OUT.tmp/kmod/build.log"; then
  grep -E 'warning:|error' "$OUT.tmp/kmod/build.log" | head -n 20 >&2
  die "dmahil.ko did not build cleanly against $DESCRIBE (log: $OUT.tmp/kmod/build.log)"
fi
cp "$OUT.tmp/kmod/dmahil.ko" "$OUT.tmp/dmahil.ko"
page_kib=4
grep -q '^CONFIG_ARM64_64K_PAGES=y' "$OBJ/.config" && page_kib=64
grep -q '^CONFIG_ARM64_16K_PAGES=y' "$OBJ/.config" && page_kib=16
cat >"$OUT.tmp/kernel.env" <<ENV
# written by qemu/build-kernel.sh: a kernel built from source, for qemu/mkinitramfs.sh --env
# and a qemu power wiring's fetch_env
ABI=$RELEASE
XEN=$XEN
KERNEL=$OUT/Image
MODDIR=$OUT/lib/modules/$RELEASE
BUSYBOX=$BUSYBOX
ROOT=$ROOT
KMOD=$OUT/dmahil.ko
KMOD_SHA=$KMOD_SHA
KERNEL_TREE=$TREE
KERNEL_REV=$REV
KERNEL_DESCRIBE=$DESCRIBE
KERNEL_CONFIG=$CONFIG
KERNEL_CONFIG_SHA=$CFGSHA
KERNEL_PAGE_KIB=$page_kib
ENV
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
# --- 4. the board's initramfs ----------------------------------------------------------
initramfs
link_name
log "built $OUT in $((SECONDS - t0)) s (kernel $tk s): $DESCRIBE, $RELEASE, ${page_kib} KiB pages"
