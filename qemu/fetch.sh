#!/usr/bin/env bash
# qemu/fetch.sh [CACHE]
#
# Fetches everything the qemu-xen-arm64 board needs from Debian's package archive and
# unpacks it into a staging tree. Idempotent: downloaded .debs are cached, unpacked ones
# are skipped; re-running only does what is missing.
#
#   CACHE   default: <repo>/build-qemu/cache
#
# Produces
#   CACHE/debs/*.deb      the arm64 packages (apt-get download, never installed)
#   CACHE/rootfs/         staging tree (dpkg-deb -x of every .deb)
#   CACHE/fetch.env       XEN=, KERNEL=, ABI=, MODDIR=, BUSYBOX= for mkinitramfs.sh / boot.sh
#
# Needs root (or sudo) for the host tools and `dpkg --add-architecture arm64`.
# Environment: QEMU_KERNEL_ABI=6.1.0-NN-arm64 pins the kernel instead of the newest one.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${1:-$REPO/build-qemu/cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DEBS=$CACHE/debs
ROOT=$CACHE/rootfs
mkdir -p "$DEBS" "$ROOT/.unpacked"

die() { echo "fetch.sh: error: $*" >&2; exit 1; }
log() { echo "fetch.sh: $*"; }
# shellcheck source=qemu/lib.sh
. "$REPO/qemu/lib.sh"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)

# --- host tools ----------------------------------------------------------------------
# qemu-system-arm ships qemu-system-aarch64; binutils for the readelf-based library walk;
# the cross compilers build the agent and dmahil.ko; lz4 (and zstd) compress the
# initramfs images (mkinitramfs.sh --compress).
HOST_PKGS=(qemu-system-arm cpio binutils-aarch64-linux-gnu device-tree-compiler
           gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross lz4 zstd)
"$REPO/ci/apt-install.sh" qemu-fetch "${HOST_PKGS[@]}" \
  || die "could not install host tools: ${HOST_PKGS[*]}"
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 missing after install"

# --- arm64 architecture --------------------------------------------------------------
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "adding the arm64 architecture"
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get "${APT_OPTS[@]}" update -qq
fi
# the architecture may have been added by someone else without an update since
# (capture first: `cmd | grep -q` under pipefail fails when grep closes the pipe early)
have_arm64_lists() {
  local pol
  pol=$(apt-cache policy busybox-static:arm64 2>/dev/null || true)
  [[ $pol == *"Candidate: "[0-9]* ]]
}
if ! have_arm64_lists; then
  log "no arm64 package lists yet: apt-get update"
  $SUDO apt-get "${APT_OPTS[@]}" update -qq
  have_arm64_lists || die "no arm64 candidate for busybox-static after apt-get update"
fi

# --- which kernel --------------------------------------------------------------------
if [ -n "${QEMU_KERNEL_ABI:-}" ]; then
  ABI=$QEMU_KERNEL_ABI
else
  ABI=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-arm64-unsigned$' \
          | awk '{print $1}' | sed -e 's/^linux-image-//' -e 's/-unsigned$//' \
          | sort -V | tail -n1)
  [ -n "$ABI" ] || die "apt-cache search found no linux-image-*-arm64-unsigned package"
fi
log "kernel ABI $ABI"

# --- arm64 packages ------------------------------------------------------------------
ARM64_PKGS=(
  xen-hypervisor-4.17-arm64
  "linux-image-$ABI-unsigned"
  busybox-static
  xen-utils-4.17 xenstore-utils
  libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenmisc4.17
  libxenstore4 libxentoollog1 libyajl2 libxenhypfs1 libxendevicemodel1 libxentoolcore1
  libc6 zlib1g libuuid1 libfdt1 libgcc-s1
)

# the cached .deb for a package name (any version), or nothing
cached_deb() { find "$DEBS" -maxdepth 1 -name "$1_*_arm64.deb" | sort -V | tail -n1; }

missing=()
for p in "${ARM64_PKGS[@]}"; do
  [ -n "$(cached_deb "$p")" ] || missing+=("$p:arm64")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${#missing[@]} package(s): ${missing[*]}"
  (cd "$DEBS" && apt-get "${APT_OPTS[@]}" -o APT::Sandbox::User=root -q download "${missing[@]}") \
    || die "apt-get download failed for: ${missing[*]}"
fi

debs=()
for p in "${ARM64_PKGS[@]}"; do
  deb=$(cached_deb "$p")
  [ -n "$deb" ] || die "no .deb for $p in $DEBS"
  debs+=("$deb")
done
unpack_debs "$ROOT" "${debs[@]}"

# --- locate the pieces ---------------------------------------------------------------
XEN=$(find "$ROOT/boot" -maxdepth 1 -name 'xen-4.17*-arm64' | sort -V | tail -n1)
[ -n "$XEN" ] || die "no boot/xen-4.17*-arm64 in $ROOT"
KERNEL=$ROOT/boot/vmlinuz-$ABI
[ -f "$KERNEL" ] || die "no $KERNEL"
MODDIR=$ROOT/lib/modules/$ABI
[ -d "$MODDIR" ] || MODDIR=$ROOT/usr/lib/modules/$ABI
[ -d "$MODDIR" ] || die "no modules directory for $ABI"
BUSYBOX=$ROOT/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$ROOT/usr/bin/busybox
[ -x "$BUSYBOX" ] || die "no busybox in $ROOT"

cat > "$CACHE/fetch.env.tmp" <<ENV
# written by qemu/fetch.sh
ABI=$ABI
XEN=$XEN
KERNEL=$KERNEL
MODDIR=$MODDIR
BUSYBOX=$BUSYBOX
ROOT=$ROOT
ENV
# replace only on change: mkinitramfs.sh rebuilds when fetch.env is newer than its images
if cmp -s "$CACHE/fetch.env.tmp" "$CACHE/fetch.env"; then rm -f "$CACHE/fetch.env.tmp"
else mv "$CACHE/fetch.env.tmp" "$CACHE/fetch.env"; fi

log "have:"
for p in "${ARM64_PKGS[@]}"; do
  printf '  %-40s %s\n' "$p" "$(basename "$(cached_deb "$p")")"
done
printf '  %-10s %s (%s)\n' xen "$XEN" "$(du -h "$XEN" | cut -f1)"
printf '  %-10s %s (%s)\n' kernel "$KERNEL" "$(du -h "$KERNEL" | cut -f1)"
printf '  %-10s %s\n' modules "$MODDIR"
printf '  %-10s %s\n' busybox "$BUSYBOX"
printf '  %-10s %s\n' qemu "$(qemu-system-aarch64 --version | head -n1)"
log "settings in $CACHE/fetch.env"
