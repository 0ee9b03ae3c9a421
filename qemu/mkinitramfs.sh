#!/usr/bin/env bash
# qemu/mkinitramfs.sh [--cache DIR] [--env FILE] [--out DIR] [--force] [--no-board] [--agent FILE]
#                     [--kmod FILE] [--sysroot DIR] [--domu-mem MB] [--compress ALG]
#
# Builds the busybox dom0 initramfs images for the qemu-xen-arm64 board from the staging
# tree that qemu/fetch.sh unpacked (run that first); board.cpio.gz also needs
# qemu/sysroot.sh, qemu/build-agent.sh and qemu/build-kmod.sh.
#
#   --cache DIR    fetch.sh's cache (default <repo>/build-qemu/cache; reads DIR/fetch.env)
#   --env FILE     read the kernel, its modules and Xen from FILE instead of DIR/fetch.env:
#                  qemu/build-kernel.sh's kernel.env for a kernel built from source
#   --out DIR      where the images go (default <repo>/build-qemu)
#   --force        rebuild even if the images are newer than their inputs
#   --no-board     build only dom0.cpio.gz and dom0-domu.cpio.gz (no agent, no dmahil.ko)
#   --agent FILE   the aarch64 agent (default <repo>/build-qemu/agent-aarch64/bin/dmahil-agent)
#   --kmod FILE    dmahil.ko (default <repo>/build-qemu/kmod/dmahil.ko); its vermagic must
#                  name the env file's ABI
#   --sysroot DIR  where the agent's libraries come from when the staging tree lacks them
#                  (default <repo>/build-qemu/sysroot, from qemu/sysroot.sh)
#   --domu-mem MB  the board domU's memory (default 256; the agent and its gRPC/protobuf/
#                  absl/OpenSSL libraries make its initramfs ~40 MB unpacked)
#   --compress ALG how every cpio is compressed: none (default), zstd, lz4 or gzip. The
#                  kernels unpack the initramfs under TCG, where gzip cost ~17 s for the
#                  board's dom0 and ~8 s for its domU. Under -icount (1 ns of virtual time
#                  per instruction) the board's unpacking took 0.81 s (dom0) and 0.42 s
#                  (domU) with zstd and 0.15 s and 0.07 s uncompressed: copying is cheaper
#                  than decompressing. lz4 (legacy frame, `lz4 -l`) cannot be followed by
#                  an archive in another format (kmod-smoke.sh appends a gzip'd cpio:
#                  "Initramfs unpacking failed: Decoding failed"). The image names keep
#                  their .cpio.gz suffix whatever ALG is: the kernel and the controller go
#                  by content.
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
#   OUT/board.cpio.gz       the qemu-xen-arm64 board (qemu/boot.sh --board; the
#                           controller's qemu power wiring): dom0 loads the Xen modules,
#                           virtio-net and dmahil.ko, brings eth0 up as 10.0.2.15/24 (QEMU
#                           user networking), starts the dom0 agent (gRPC :7000, guest relay
#                           :7001, engine :7002), `xl create`s the domU "domu" whose own
#                           initramfs runs the guest agent over a vchan, relays every domU
#                           console line as "[domU] ...", prints "dmahil-qemu: board ready"
#                           once all of that serves, and stays up (QEMU is killed by its
#                           owner, never powered off by /init)
#   OUT/initramfs/          the trees they were packed from
#
# dom0 kernel command-line switches read by /init:
#   dmahil.domu=0    do not start the domU even if the image carries one
#   dmahil.shell=1   drop to a shell on hvc0 instead of powering off (board: after a
#                    failure, or once the board is ready)
#   dmahil.board=0   board.cpio.gz: behave like dom0-domu.cpio.gz (no agent, no network)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
ENV_FILE=
OUT=$REPO/build-qemu
FORCE=0
BOARD=1
AGENT=$REPO/build-qemu/agent-aarch64/bin/dmahil-agent
KMOD=$REPO/build-qemu/kmod/dmahil.ko
SYSROOT=$REPO/build-qemu/sysroot
DOMU_MEM_MB=256
COMPRESS=none
die() { echo "mkinitramfs.sh: error: $*" >&2; exit 1; }
log() { echo "mkinitramfs.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; CACHE=$2; shift 2 ;;
    --env) [ $# -ge 2 ] || die "--env needs a file"; ENV_FILE=$2; shift 2 ;;
    --out)   [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --force) FORCE=1; shift ;;
    --no-board) BOARD=0; shift ;;
    --agent) [ $# -ge 2 ] || die "--agent needs a file"; AGENT=$2; shift 2 ;;
    --kmod) [ $# -ge 2 ] || die "--kmod needs a file"; KMOD=$2; shift 2 ;;
    --sysroot) [ $# -ge 2 ] || die "--sysroot needs a directory"; SYSROOT=$2; shift 2 ;;
    --domu-mem) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--domu-mem needs megabytes"; DOMU_MEM_MB=$2; shift 2 ;;
    --compress) [[ ${2:-} =~ ^(none|zstd|lz4|gzip)$ ]] || die "--compress needs none, zstd, lz4 or gzip"
                COMPRESS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

ENV_FILE=${ENV_FILE:-$CACHE/fetch.env}
[ -f "$ENV_FILE" ] || die "no $ENV_FILE: run qemu/fetch.sh (or qemu/build-kernel.sh) first"
# shellcheck source=/dev/null
. "$ENV_FILE"
for v in ABI XEN KERNEL MODDIR BUSYBOX ROOT; do
  [ -n "${!v:-}" ] || die "$ENV_FILE does not set $v: re-run qemu/fetch.sh (or qemu/build-kernel.sh)"
done
[ -d "$ROOT" ] || die "staging tree $ROOT missing: re-run qemu/fetch.sh"
ZIP=$COMPRESS
[ "$COMPRESS" != none ] || ZIP="cat"
for t in cpio "$ZIP" aarch64-linux-gnu-readelf aarch64-linux-gnu-objcopy aarch64-linux-gnu-strip; do
  command -v "$t" >/dev/null || die "$t not found: run qemu/fetch.sh (it installs the host tools)"
done

if [ $BOARD = 1 ]; then
  [ -f "$AGENT" ] || die "board.cpio.gz needs the aarch64 agent $AGENT: run qemu/build-agent.sh (or pass --agent FILE; --no-board builds only dom0.cpio.gz and dom0-domu.cpio.gz)"
  [[ $(file -b "$AGENT") == *"ARM aarch64"* ]] || die "$AGENT is not an aarch64 ELF: $(file -b "$AGENT")"
  [ -f "$KMOD" ] || die "board.cpio.gz needs dmahil.ko at $KMOD: run qemu/build-kmod.sh (or pass --kmod FILE; --no-board builds only dom0.cpio.gz and dom0-domu.cpio.gz)"
  vermagic=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$KMOD" /dev/stdout \
             | tr '\0' '\n' | sed -n 's/^vermagic=//p')
  [[ $vermagic == "$ABI "* ]] || die "$KMOD has vermagic '$vermagic', but the board kernel is $ABI: rebuild it with qemu/build-kmod.sh"
  [ -d "$SYSROOT/usr/lib/aarch64-linux-gnu" ] || die "no sysroot $SYSROOT (the agent's libraries): run qemu/sysroot.sh"
  SYSROOT=$(cd "$SYSROOT" && pwd)
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DOM0_IMG=$OUT/dom0.cpio.gz
DOMU_IMG=$OUT/dom0-domu.cpio.gz
BOARD_IMG=$OUT/board.cpio.gz

# skip when every image is newer than every input
IMAGES=("$DOM0_IMG" "$DOMU_IMG")
# the settings that change the images' bytes but are no file: rewritten only on a change
SETTINGS=$OUT/.mkinitramfs-settings
want_settings="compress=$COMPRESS domu_mem=$DOMU_MEM_MB"
[ "$(cat "$SETTINGS" 2>/dev/null)" = "$want_settings" ] || echo "$want_settings" > "$SETTINGS"
INPUTS=("${BASH_SOURCE[0]}" "$ENV_FILE" "$SETTINGS")
if [ $BOARD = 1 ]; then IMAGES+=("$BOARD_IMG"); INPUTS+=("$AGENT" "$KMOD" "$SYSROOT/.packages"); fi
up_to_date() {
  local img
  for img in "${IMAGES[@]}"; do
    [ -s "$img" ] && [ -z "$(find "${INPUTS[@]}" -newer "$img" 2>/dev/null)" ] || return 1
  done
}
if [ $FORCE = 0 ] && up_to_date; then
  log "up to date: ${IMAGES[*]} (--force rebuilds)"
  exit 0
fi

WORK=$OUT/initramfs
DOM0=$WORK/dom0
DOMU=$WORK/domu
EXTRA=$WORK/domu-extra
BOARD0=$WORK/board-dom0
BOARDU=$WORK/board-domu
BOARDX=$WORK/board-extra
rm -rf "$WORK"
mkdir -p "$DOM0" "$DOMU" "$EXTRA"

# ---- helpers ------------------------------------------------------------------------
LIBDIRS=(lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib)
# where add_elf looks for a file: the staging tree first (the Xen tools' libraries), then,
# for the board image, the sysroot (the agent's gRPC/protobuf/absl/OpenSSL/libstdc++)
SEARCH=("$ROOT")
[ $BOARD = 0 ] || SEARCH+=("$SYSROOT")
DEST=""   # the tree that add_elf / add_mods copy into

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

declare -A SEEN=() NELF=()
# add_elf REL [SRC]: copy an ELF file to DEST/REL (from SRC, else from REL in the search
# roots) and, recursively, its DT_NEEDED libraries
add_elf() {
  local rel=$1 src=${2:-} need lib
  [ -n "${SEEN[$DEST|$rel]:-}" ] && return 0
  SEEN[$DEST|$rel]=1
  NELF[$DEST]=$((${NELF[$DEST]:-0} + 1))
  [ -n "$src" ] || src=$(src_of "$rel") \
    || die "$rel is in neither ${SEARCH[*]} (missing package in fetch.sh or sysroot.sh?)"
  mkdir -p "$DEST/$(dirname "$rel")"
  cp -L "$src" "$DEST/$rel"
  for need in $(aarch64-linux-gnu-readelf -d "$src" 2>/dev/null \
                | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    lib=$(find_lib "$need") || die "$rel needs $need, which is in no staged package (searched ${SEARCH[*]}; add its package to fetch.sh or sysroot.sh)"
    add_elf "$lib"
  done
}
src_of() {
  local r
  for r in "${SEARCH[@]}"; do [ -e "$r/$1" ] && { echo "$r/$1"; return 0; }; done
  return 1
}
find_lib() {
  local r d
  for r in "${SEARCH[@]}"; do
    for d in "${LIBDIRS[@]}"; do
      [ -e "$r/$d/$1" ] && { echo "$d/$1"; return 0; }
    done
  done
  return 1
}
# the dynamic loader (PT_INTERP /lib/ld-linux-aarch64.so.1) and libgcc_s, which glibc
# dlopens for pthread_cancel (xl create needs it)
add_loader() {
  local gcc_s
  add_elf lib/aarch64-linux-gnu/ld-linux-aarch64.so.1
  ln -sfn aarch64-linux-gnu/ld-linux-aarch64.so.1 "$DEST/lib/ld-linux-aarch64.so.1"
  gcc_s=$(find_lib libgcc_s.so.1) || die "libgcc_s.so.1 not staged (libgcc-s1 in fetch.sh)"
  add_elf "$gcc_s"
}
# the agent, stripped of its debug info (RelWithDebInfo: ~21 MB -> a few MB), at
# /usr/bin/dmahil-agent with its libraries
add_agent() {
  mkdir -p "$WORK/agent"
  [ -s "$WORK/agent/dmahil-agent" ] \
    || aarch64-linux-gnu-strip --strip-unneeded -o "$WORK/agent/dmahil-agent" "$AGENT" \
    || die "aarch64-linux-gnu-strip $AGENT failed"
  add_elf usr/bin/dmahil-agent "$WORK/agent/dmahil-agent"
}

# Kernel modules in dependency order. The kernel package has no modules.dep, so the
# dependencies come from each module's .modinfo `depends=` (what depmod reads).
declare -A MSEEN=()
MODLIST=()
modpath() {
  local f
  f=$(find "$MODDIR/kernel" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -n1)
  [ -n "$f" ] || die "module $1.ko not in $MODDIR"
  echo "$f"
}
add_mod() {
  local sub=$1 name=$2 f deps d
  [ -n "${MSEEN[$name]:-}" ] && return 0
  MSEEN[$name]=1
  f=$(modpath "$name")
  deps=$(aarch64-linux-gnu-objcopy -O binary --only-section=.modinfo "$f" /dev/stdout \
         | tr '\0' '\n' | sed -n 's/^depends=//p')
  for d in ${deps//,/ }; do add_mod "$sub" "$d"; done
  mkdir -p "$DEST/lib/modules/$sub"
  cp "$f" "$DEST/lib/modules/$sub/"
  MODLIST+=("$(basename "$f")")
}
# add_mods SUBDIR LISTFILE NAME...: DEST/lib/modules/SUBDIR/*.ko, load order in DEST/LISTFILE
add_mods() {
  local sub=$1 list=$2 m
  shift 2
  MSEEN=()
  MODLIST=()
  for m in "$@"; do add_mod "$sub" "$m"; done
  mkdir -p "$(dirname "$DEST/$list")"
  printf '%s\n' "${MODLIST[@]}" > "$DEST/$list"
}

# cpio newc, owned by root, reproducible order
squeeze() {
  case $COMPRESS in
    lz4) lz4 -l -9 -q ;;
    gzip) gzip -6n ;;
    zstd) zstd -q -10 -T2 ;;
    none) cat ;;
  esac
}
pack() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | squeeze; }

# ---- dom0 /init ---------------------------------------------------------------------
write_dom0_init() {
cat > "$DEST/init" <<'INIT'
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

# ---- board mode (board.cpio.gz): agents, engine, network; never powers off ----------
# listening PORT: a TCP socket listens on PORT (the hex local port, state 0A = LISTEN, in
# /proc/net/tcp{,6}: net/ipv4/tcp_ipv4.c get_tcp4_sock)
listening() {
  grep -qE ":$(printf '%04X' "$1") [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
board_main() {
  . /etc/dmahil/board
  # 1. virtio-net (a module in Debian's kernel) and dmahil.ko, which binds QEMU's edu
  # dmahil.ko's parameters come from the dom0 command line: `dmahil.faults=N` (the
  # DMAHIL_FAULT_* bits of agent/kmod/dmahil_uapi.h) and `dmahil.dma_bits=N` (edu's mask,
  # as QEMU's edu,dma_mask=). insmod, unlike modprobe, does not read /proc/cmdline.
  faults=0 dma_bits=64
  for w in $cmdline; do
    case $w in
      dmahil.faults=*) faults=${w#dmahil.faults=} ;;
      dmahil.dma_bits=*) dma_bits=${w#dmahil.dma_bits=} ;;
    esac
  done
  for m in $(cat /etc/dmahil/board-modules); do
    if [ "$m" = dmahil.ko ]; then
      insmod "/lib/modules/board/$m" "faults=$faults" "dma_bits=$dma_bits" ||
        fail "insmod $m faults=$faults dma_bits=$dma_bits"
      say "dmahil.ko loaded, faults=$(cat /sys/module/dmahil/parameters/faults) dma_bits=$(cat /sys/module/dmahil/parameters/dma_bits)"
    else
      # the command line's <module>.<param>=<value> words, as modprobe would pass them
      # (e.g. xen_blkback.feature_persistent=0: the PV disk without persistent grants)
      n=$(echo "${m%.ko}" | tr - _) args=""
      for w in $cmdline; do
        case $w in "$n".*=*) args="$args ${w#"$n".}" ;; esac
      done
      # shellcheck disable=SC2086  # args: zero or more words
      insmod "/lib/modules/board/$m" $args || fail "insmod $m$args"
      [ -z "$args" ] || say "${m%.ko} loaded with$args"
    fi
  done
  [ -c /dev/dmahil ] || fail "/dev/dmahil missing after insmod dmahil.ko"
  edu=""
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor" 2>/dev/null)" = 0x1234 ] && [ "$(cat "$d/device" 2>/dev/null)" = 0x11e8 ] && edu=$d
  done
  [ -n "$edu" ] || fail "no edu PCI device (1234:11e8): QEMU needs -device edu,dma_mask=0xffffffffffffffff"
  [ -e "$edu/driver" ] || fail "edu device ${edu##*/} is not bound to dmahil.ko (see dmesg)"

  # 2. network: QEMU user networking's fixed addresses (guest 10.0.2.15, gateway 10.0.2.2)
  i=0
  while [ ! -e "/sys/class/net/$NET_IF" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -e "/sys/class/net/$NET_IF" ] || fail "no $NET_IF after insmod virtio_net (QEMU needs -netdev user,id=n0,... -device virtio-net-pci,netdev=n0,romfile=)"
  ip link set lo up
  ip link set "$NET_IF" up || fail "ip link set $NET_IF up"
  ip addr add "$NET_ADDR" dev "$NET_IF" || fail "ip addr add $NET_ADDR dev $NET_IF"
  ip route add default via "$NET_GW" || fail "ip route add default via $NET_GW"

  # 3. an NVMe namespace (QemuPower.nvme_disk_mib) becomes the domU's PV disk xvdb, and
  # dom0's agent serves it too (its --block-device: the disk's device side as a lab board
  # shows it, controller/run/disk_backing.h AgentDiskBacking)
  nvme=""
  for d in /sys/bus/pci/devices/*; do  # PCI class 01 08 02: NVM Express
    [ "$(cat "$d/class" 2>/dev/null)" = 0x010802 ] && nvme=$d
  done
  disk_arg=""
  if [ -n "$nvme" ]; then
    i=0
    while [ ! -b /dev/nvme0n1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -b /dev/nvme0n1 ] || fail "NVMe controller ${nvme##*/} but no /dev/nvme0n1 after 10 s (see dmesg)"
    echo "disk = [ 'vdev=xvdb, access=rw, backendtype=phy, script=/etc/xen/scripts/dmahil-block, target=/dev/nvme0n1' ]" >> /etc/xen/domu.cfg
    disk_arg="--block-device /dev/nvme0n1"
    say "PV disk: /dev/nvme0n1 ($(cat /sys/block/nvme0n1/size) sectors, NVMe ${nvme##*/}) -> $DOMU_NAME xvdb"
  fi

  # 3b. the dom0 agent, logging to the console
  # shellcheck disable=SC2086  # disk_arg: no word or two
  dmahil-agent --backend linux-xen --role dom0 --listen "0.0.0.0:$AGENT_PORT" \
    --engine-listen "0.0.0.0:$ENGINE_PORT" --guest-relay "0.0.0.0:$RELAY_PORT" \
    --guest-domain "$DOMU_NAME" --board "$BOARD_NAME" $disk_arg &
  agent=$!

  # 4. the domU, its whole console relayed as "[domU] ..." (xenconsoled writes it to the log)
  log=/var/log/xen/guest-$DOMU_NAME.log
  : > "$log"
  xl create /etc/xen/domu.cfg || fail "xl create /etc/xen/domu.cfg"
  (tail -n +1 -F "$log" 2>/dev/null | tr -d '\r' | while IFS= read -r l; do echo "[domU] $l"; done) &

  # 5. ready = the dom0 agent listens on its three ports and the guest agent serves its vchan
  n=0
  while :; do
    kill -0 "$agent" 2>/dev/null || { wait "$agent"; fail "dom0 agent exited with status $? before it served"; }
    xl domid "$DOMU_NAME" >/dev/null 2>&1 || fail "domU $DOMU_NAME is gone (see the [domU] lines)"
    grep -q "dmahil-qemu: FAIL" "$log" && fail "domU failed (see the [domU] lines)"
    if listening "$AGENT_PORT" && listening "$RELAY_PORT" && listening "$ENGINE_PORT" \
       && grep -q "dmahil-agent: guest ready" "$log"; then break; fi
    [ $n -lt "$READY_TIMEOUT_DS" ] || fail "not ready after $((READY_TIMEOUT_DS / 10)) s (dom0 agent ports $AGENT_PORT/$RELAY_PORT/$ENGINE_PORT, guest agent in $log)"
    sleep 0.1; n=$((n + 1))
  done
  say "board ready ($BOARD_NAME: dom0 agent ${NET_ADDR%/*}:$AGENT_PORT, engine :$ENGINE_PORT, relay :$RELAY_PORT -> $DOMU_NAME domid $(xl domid "$DOMU_NAME"))"

  # 6. stay up: the controller kills QEMU
  wait "$agent"
  say "FAIL: dom0 agent exited with status $? (the board stays up for inspection)"
  if want dmahil.shell=1; then setsid cttyhack sh -l; fi
  while :; do sleep 3600; done
}
if [ -f /etc/dmahil/board ] && ! want dmahil.board=0; then board_main; fi

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
chmod 755 "$DEST/init"
}

# dom0 tree: busybox, the Xen tools and their libraries, the Xen modules, /init
make_dom0_tree() {
  local b
  base_tree "$DEST"
  mkdir -p "$DEST"/{var/log/xen,var/lib/xen,var/lib/xenstored,var/lock,etc/xen,proc/xen,etc/dmahil}
  : > "$DEST/etc/xen/xl.conf"
  XENBIN=usr/lib/xen-4.17/bin
  for b in xl xenstored xenconsoled xen-init-dom0 xenconsole; do
    add_elf "$XENBIN/$b"
    ln -sfn "/$XENBIN/$b" "$DEST/usr/sbin/$b"
  done
  for b in xenstore-ls xenstore-read xenstore-write xenstore-list xenstore-rm xenstore-exists; do
    add_elf "usr/bin/$b"
  done
  add_loader
  add_mods xen etc/dmahil/modules xen-evtchn xen-privcmd xenfs xen-gntdev xen-gntalloc
  echo "$ABI" > "$DEST/etc/dmahil/kernel-abi"
  write_dom0_init
}

# ---- dom0 tree ----------------------------------------------------------------------
log "dom0 tree (kernel $ABI)"
DEST=$DOM0
make_dom0_tree
XEN_MODS=$(tr '\n' ' ' < "$DOM0/etc/dmahil/modules")

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
# write_domu_extra DIR DOMU-TREE MEMORY-MB: the domU kernel, its initramfs, domu.cfg
write_domu_extra() {
  local x=$1 tree=$2 mem=$3
  mkdir -p "$x/boot" "$x/etc/xen"
  cp "$KERNEL" "$x/boot/domu-Image"
  pack "$tree" > "$x/boot/domu.cpio.gz"
  cat > "$x/etc/xen/domu.cfg" <<CFG
# dmahil qemu-xen test domU (generated by qemu/mkinitramfs.sh)
name = "domu"
kernel = "/boot/domu-Image"
ramdisk = "/boot/domu.cpio.gz"
extra = "console=hvc0 rdinit=/init"
memory = $mem
vcpus = 1
on_crash = "destroy"
CFG
}
write_domu_extra "$EXTRA" "$DOMU" 128

# ---- board: dom0 + agent + dmahil.ko + virtio-net; domU + guest agent ---------------
if [ $BOARD = 1 ]; then
  log "board dom0 tree (agent $AGENT, $(basename "$KMOD"))"
  mkdir -p "$BOARD0" "$BOARDU" "$BOARDX"
  DEST=$BOARD0
  make_dom0_tree
  add_agent
  # virtio-pci and virtio-net are modules (CONFIG_VIRTIO_PCI=m, CONFIG_VIRTIO_NET=m);
  # virtio_net needs net_failover -> failover, virtio_pci its modern/legacy helpers
  # nvme (-> nvme-core, t10-pi, crc64-rocksoft, ...) drives QemuPower.nvme_disk_mib's
  # disk; xen-blkback gives its namespace to the domU (drivers/block/xen-blkback)
  add_mods board etc/dmahil/board-modules virtio_pci virtio_net nvme xen-blkback
  # libxl runs a `phy:` disk's hotplug script itself (run_hotplug_scripts, libxl_linux.c):
  # Xen's own /etc/xen/scripts/block needs bash and more; blkback needs only the device's
  # major:minor in the backend's xenstore directory (xenbus.c backend_changed)
  mkdir -p "$BOARD0/etc/xen/scripts"
  cat > "$BOARD0/etc/xen/scripts/dmahil-block" <<'SCRIPT'
#!/bin/sh
# dmahil: hotplug script of the board's PV disk (qemu/mkinitramfs.sh). libxl calls it with
# add|remove and XENBUS_PATH=backend/vbd/<domid>/<devid>; `params` holds the target.
dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
case $1 in
  add)
    if [ ! -b "$dev" ]; then
      xenstore-write "$XENBUS_PATH/hotplug-error" "$dev is not a block device" \
        "$XENBUS_PATH/hotplug-status" error
      exit 1
    fi
    xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c %t:%T "$dev")" \
      "$XENBUS_PATH/physical-device-path" "$dev" "$XENBUS_PATH/hotplug-status" connected
    ;;
esac
exit 0
SCRIPT
  chmod 755 "$BOARD0/etc/xen/scripts/dmahil-block"
  cp "$KMOD" "$BOARD0/lib/modules/board/dmahil.ko"
  echo dmahil.ko >> "$BOARD0/etc/dmahil/board-modules"
  BOARD_MODS=$(tr '\n' ' ' < "$BOARD0/etc/dmahil/board-modules")
  # the settings /init reads (ports: ci/farms/qemu-xen.textproto)
  cat > "$BOARD0/etc/dmahil/board" <<'ENV'
# qemu-xen-arm64 board settings (generated by qemu/mkinitramfs.sh; sourced by /init)
BOARD_NAME=qemu-xen-arm64
DOMU_NAME=domu
NET_IF=eth0
NET_ADDR=10.0.2.15/24   # QEMU user networking's guest address
NET_GW=10.0.2.2         # and its gateway (the host)
AGENT_PORT=7000         # dom0 agent gRPC
RELAY_PORT=7001         # TCP -> vchan relay to the domU agent's gRPC
ENGINE_PORT=7002        # DMA engine, device protocol (docs/device-protocol.md)
READY_TIMEOUT_DS=1800   # tenths of a second (180 s) for both agents to serve
ENV

  log "board domU tree (guest agent, ${DOMU_MEM_MB} MB)"
  DEST=$BOARDU
  base_tree "$BOARDU"
  add_agent
  add_loader
  # the vchan server side needs gntalloc + evtchn (tools/libs/vchan/init.c
  # libxenvchan_server_init); gntdev for a client; xenstore goes through /dev/xen/xenbus
  # (drivers/xen/xenbus/xenbus_dev_frontend.c, built in), which devtmpfs creates
  add_mods xen etc/dmahil/modules xen-evtchn xen-gntalloc xen-gntdev xen-blkfront
  cp "$BOARD0/etc/dmahil/board" "$BOARDU/etc/dmahil/board"
  cat > "$BOARDU/init" <<'INIT'
#!/bin/busybox sh
# dmahil qemu-xen board domU /init (generated by qemu/mkinitramfs.sh): the guest agent
# serving gRPC over a vchan to dom0. Never powers off: dom0 (or QEMU's end) stops it.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
say() { echo "dmahil-qemu: $*"; }
hang() { while :; do sleep 3600; done; }
fail() { say "FAIL: $*"; hang; }
. /etc/dmahil/board
for m in $(cat /etc/dmahil/modules); do
  insmod "/lib/modules/xen/$m" || fail "insmod $m"
done
for d in /dev/xen/xenbus /dev/xen/gntalloc /dev/xen/evtchn; do
  i=0
  while [ ! -c $d ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -c $d ] || fail "$d missing"
done
# a PV disk (dom0's NVMe namespace through xen-blkback): blkfront's xvdb once connected,
# the guest agent's BlockIo device
block="" grants=""
if [ -n "$(ls /sys/bus/xen/devices | grep '^vbd-')" ]; then
  i=0
  while [ ! -b /dev/xvdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  [ -b /dev/xvdb ] || fail "a vbd on xenbus but no /dev/xvdb after 10 s"
  # how blkfront connected it (its "blkfront: xvdb: ... persistent grants: enabled; ..."
  # line; dom0's xen_blkback.feature_persistent=0 turns them off), for GetInfo
  grants=$(dmesg | sed -n 's/.*blkfront: xvdb:.*\(persistent grants: [a-z]*\).*/\1/p' | tail -n 1)
  say "PV disk xvdb: $(cat /sys/block/xvdb/size) sectors, ${grants:-persistent grants: not logged}"
  block="--block-device /dev/xvdb"
fi
say "domU up (kernel $(uname -r))"
if [ -n "$grants" ]; then
  dmahil-agent --backend linux-xen --role guest --vchan --board "$BOARD_NAME" $block \
    --block-grants "$grants"
else
  dmahil-agent --backend linux-xen --role guest --vchan --board "$BOARD_NAME" $block
fi
fail "guest agent exited with status $?"
INIT
  chmod 755 "$BOARDU/init"
  write_domu_extra "$BOARDX" "$BOARDU" "$DOMU_MEM_MB"
fi

# ---- pack ---------------------------------------------------------------------------
log "packing"
pack "$DOM0" > "$DOM0_IMG.tmp"
pack "$EXTRA" > "$WORK/domu-extra.cpio.gz"
cat "$DOM0_IMG.tmp" "$WORK/domu-extra.cpio.gz" > "$DOMU_IMG.tmp"
mv "$DOM0_IMG.tmp" "$DOM0_IMG"
mv "$DOMU_IMG.tmp" "$DOMU_IMG"
if [ $BOARD = 1 ]; then
  { pack "$BOARD0"; pack "$BOARDX"; } > "$BOARD_IMG.tmp"
  mv "$BOARD_IMG.tmp" "$BOARD_IMG"
fi

log "modules: $XEN_MODS"
log "dom0 tree $(du -sh "$DOM0" | cut -f1), ${NELF[$DOM0]} ELF files"
log "$(du -h "$DOM0_IMG" | cut -f1)  $DOM0_IMG"
log "$(du -h "$DOMU_IMG" | cut -f1)  $DOMU_IMG (domU initramfs $(du -h "$EXTRA/boot/domu.cpio.gz" | cut -f1))"
if [ $BOARD = 1 ]; then
  log "board modules: $BOARD_MODS"
  log "board dom0 tree $(du -sh "$BOARD0" | cut -f1), ${NELF[$BOARD0]} ELF files; domU tree $(du -sh "$BOARDU" | cut -f1), ${NELF[$BOARDU]} ELF files"
  log "$(du -h "$BOARD_IMG" | cut -f1)  $BOARD_IMG (domU initramfs $(du -h "$BOARDX/boot/domu.cpio.gz" | cut -f1), domU memory $DOMU_MEM_MB MB)"
fi
