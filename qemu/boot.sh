#!/usr/bin/env bash
# qemu/boot.sh [--domu | --board [--hostfwd-base PORT] [--hold]] [--timeout S] [--shell]
#              [--cache DIR] [--out DIR] [--initrd FILE] [--dom0-args "..."]
#              [--xen-args "..."] [-- QEMU-ARGS...]
#
# Boots Xen 4.17 + the Debian arm64 dom0 (and with --domu one small domU) under
# qemu-system-aarch64 (virt, virtualization=on, gic-version=3, cortex-a57, TCG).
# The serial console goes to stdout and to OUT/console.log. Exits 0 iff the markers
# ("dmahil-qemu: dom0 up", with --domu also "dmahil-qemu: domU up", with --board also
# "dmahil-qemu: board ready" and the port checks) appeared within the timeout and no
# "dmahil-qemu: FAIL" line did; otherwise prints the last 40 console lines and exits 1.
# The full QEMU command line goes to stderr.
#
#   --domu           boot OUT/dom0-domu.cpio.gz: dom0 runs `xl create` for a domU
#   --board          boot OUT/board.cpio.gz, the qemu-xen-arm64 board: adds QEMU's edu
#                    device (dma_mask=0xffffffffffffffff) and a virtio-net NIC on user
#                    networking that forwards 127.0.0.1:PORT..PORT+2 to dom0's 10.0.2.15
#                    :7000 (dom0 agent), :7001 (relay to the domU agent), :7002 (engine);
#                    waits for "dmahil-qemu: board ready", then checks from the host that
#                    the dom0 agent and the relay answer HTTP/2 (gRPC) and that the engine
#                    port accepts TCP; stops QEMU unless --hold
#   --hostfwd-base PORT  first forwarded host port for --board (default 17000; the
#                    ci/farms/qemu-xen.textproto ports)
#   --hold           --board: keep the board running after the checks until the timeout
#                    or Ctrl-C (for a controller or grpcurl pointed at the ports)
#   --timeout S      kill QEMU after S seconds (default 120; 300 with --board)
#   --shell          dom0 drops to a shell on the console instead of powering off; QEMU
#                    gets this terminal (Ctrl-A x quits); markers are still checked
#   --cache DIR      fetch.sh's cache (default <repo>/build-qemu/cache)
#   --out DIR        mkinitramfs.sh's output and where console.log goes (default <repo>/build-qemu)
#   --initrd FILE    boot this dom0 initramfs instead
#   --dom0-args S    appended to the dom0 kernel command line
#   --xen-args S     appended to Xen's command line (e.g. "bootscrub=0")
#   -- ARGS          extra qemu-system-aarch64 arguments (e.g. -device edu,...)
#
# Run qemu/fetch.sh and qemu/mkinitramfs.sh first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
OUT=$REPO/build-qemu
DOMU=0 BOARD=0 HOSTFWD_BASE=17000 HOLD=0 TIMEOUT="" SHELL_MODE=0 INITRD="" DOM0_EXTRA="" XEN_EXTRA=""
QEMU_EXTRA=()
die() { echo "boot.sh: error: $*" >&2; exit 2; }
log() { echo "boot.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --domu) DOMU=1; shift ;;
    --board) BOARD=1; shift ;;
    --hostfwd-base)
      if ! [[ ${2:-} =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ] || [ "$2" -gt 65533 ]; then
        die "--hostfwd-base needs a TCP port (1..65533)"
      fi
      HOSTFWD_BASE=$2; shift 2 ;;
    --hold) HOLD=1; shift ;;
    --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
    --shell) SHELL_MODE=1; shift ;;
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; CACHE=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --initrd) [ $# -ge 2 ] || die "--initrd needs a file"; INITRD=$2; shift 2 ;;
    --dom0-args) [ $# -ge 2 ] || die "--dom0-args needs a string"; DOM0_EXTRA=$2; shift 2 ;;
    --xen-args) [ $# -ge 2 ] || die "--xen-args needs a string"; XEN_EXTRA=$2; shift 2 ;;
    --) shift; QEMU_EXTRA=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

# TCG: the board boots Xen, dom0, a 256 MB domU and two agents (~1-2 min here)
[ -n "$TIMEOUT" ] || { if [ $BOARD = 1 ]; then TIMEOUT=300; else TIMEOUT=120; fi; }
[ $DOMU = 0 ] || [ $BOARD = 0 ] || die "--domu and --board exclude each other (the board has its own domU)"
command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not found: run qemu/fetch.sh"
[ -f "$CACHE/fetch.env" ] || die "no $CACHE/fetch.env: run qemu/fetch.sh first"
# shellcheck source=/dev/null
. "$CACHE/fetch.env"
[ -f "${XEN:-}" ] || die "Xen image '${XEN:-}' missing: re-run qemu/fetch.sh"
[ -f "${KERNEL:-}" ] || die "kernel '${KERNEL:-}' missing: re-run qemu/fetch.sh"
mkdir -p "$OUT"
if [ -z "$INITRD" ]; then
  if [ $BOARD = 1 ]; then INITRD=$OUT/board.cpio.gz
  elif [ $DOMU = 1 ]; then INITRD=$OUT/dom0-domu.cpio.gz
  else INITRD=$OUT/dom0.cpio.gz; fi
fi
[ -f "$INITRD" ] || die "no initramfs $INITRD: run qemu/mkinitramfs.sh first"

# Load addresses (guest-loader writes the /chosen multiboot nodes Xen reads)
KADDR=0x49000000 IADDR=0x4d000000
ksize=$(stat -c %s "$KERNEL")
[ $((KADDR + ksize)) -le $((IADDR)) ] || die "kernel ($ksize bytes) overlaps the initrd at $IADDR"

DOM0_ARGS="console=hvc0 earlycon=xenboot rdinit=/init"
[ $DOMU = 1 ] || [ $BOARD = 1 ] || DOM0_ARGS+=" dmahil.domu=0"
# Xen 4.17 (Debian, no CONFIG_HAS_ITS) gives dom0 no MSI controller, so virtio-net's
# pci_enable_msix fails with two WARNINGs (drivers/pci/msi/msi.h: no arch fallback)
# before it falls back to INTx; pci=nomsi goes straight to INTx
[ $BOARD = 0 ] || DOM0_ARGS+=" pci=nomsi"
[ $SHELL_MODE = 0 ] || DOM0_ARGS+=" dmahil.shell=1"
[ -z "$DOM0_EXTRA" ] || DOM0_ARGS+=" $DOM0_EXTRA"

LOG=$OUT/console.log
MARKERS=("dmahil-qemu: dom0 up")
[ $DOMU = 0 ] || MARKERS+=("dmahil-qemu: domU up")
[ $BOARD = 0 ] || MARKERS+=("dmahil-qemu: board ready")

# The board's devices. user networking forwards host ports to dom0 (QEMU's slirp: guest
# 10.0.2.15, gateway 10.0.2.2); romfile= because Debian's QEMU lacks efi-virtio.rom.
BOARD_ARGS=()
SMP=2
H0=$HOSTFWD_BASE H1=$((HOSTFWD_BASE + 1)) H2=$((HOSTFWD_BASE + 2))
if [ $BOARD = 1 ]; then
  for p in $H0 $H1 $H2; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "host port 127.0.0.1:$p is already in use (pick another --hostfwd-base)"
    fi
  done
  # shellcheck disable=SC2054  # the commas are QEMU option syntax
  BOARD_ARGS=(
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$H0-10.0.2.15:7000,hostfwd=tcp:127.0.0.1:$H1-10.0.2.15:7001,hostfwd=tcp:127.0.0.1:$H2-10.0.2.15:7002"
    -device virtio-net-pci,netdev=n0,romfile=
    -device edu,dma_mask=0xffffffffffffffff
    # as the farms: one vCPU, the virtual clock driven by instructions and warped over
    # idle time (edu's 100 ms DMA timer costs no wall time); Xen scrubs no RAM at boot
    -icount shift=0,sleep=off)
  SMP=1
  XEN_EXTRA="bootscrub=0${XEN_EXTRA:+ $XEN_EXTRA}"
fi

# shellcheck disable=SC2054  # the commas are QEMU option syntax
QEMU=(qemu-system-aarch64
  -machine virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp "$SMP" -m 2048
  -nographic -no-reboot -nic none
  -kernel "$XEN"
  -append "dom0_mem=512M,max:512M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all${XEN_EXTRA:+ $XEN_EXTRA}"
  -device "guest-loader,addr=$KADDR,kernel=$KERNEL,bootargs=$DOM0_ARGS"
  -device "guest-loader,addr=$IADDR,initrd=$INITRD"
  "${BOARD_ARGS[@]}" "${QEMU_EXTRA[@]}")

log "Xen $(basename "$XEN"), kernel $ABI, initrd $(basename "$INITRD") ($(du -h "$INITRD" | cut -f1)), timeout ${TIMEOUT}s"
log "console -> stdout and $LOG"
log "qemu command: ${QEMU[*]}" >&2
: > "$LOG"
start=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) $start" | awk '{printf "%.1f", $1 - $2}'; }

declare -A AT=()
check_markers() {
  local m
  for m in "${MARKERS[@]}"; do
    [ -n "${AT[$m]:-}" ] && continue
    grep -qF "$m" "$LOG" && AT[$m]=$(elapsed)
  done
  return 0
}
all_seen() { local m; for m in "${MARKERS[@]}"; do [ -n "${AT[$m]:-}" ] || return 1; done; }

# check_board_ports: from the host, through QEMU's forwards. A forward accepts even when
# nothing listens in the guest (slirp then closes the socket), so the gRPC ports must
# answer the HTTP/2 client preface (RFC 9113 §3.4) with a SETTINGS frame (type 0x04, the
# 4th byte of its 9-byte frame header): that is the dom0 agent on H0 and, through dom0's
# relay and the vchan, the domU agent on H1. The engine (device protocol) speaks only when
# spoken to: accepting and staying open for 1 s is the check there.
PORTS_CHECKED="" PORTS_OK=1
# (the bash -c scripts get the port as $1: single quotes on purpose)
# shellcheck disable=SC2016
h2_answer() {  # PORT -> prints the first 9 bytes the server sends, as hex
  timeout 10 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00" >&3
    head -c 9 <&3 | od -An -tx1 | tr -d " \n"' _ "$1" 2>/dev/null || true
}
check_board_ports() {
  local p name hex ok=1
  for p in "$H0:dom0 agent" "$H1:domU agent via the relay"; do
    name=${p#*:} p=${p%%:*}
    hex=$(h2_answer "$p")
    if [ ${#hex} -ge 8 ] && [ "${hex:6:2}" = 04 ]; then
      log "127.0.0.1:$p ($name): HTTP/2 SETTINGS frame received ($hex)"
    else
      log "127.0.0.1:$p ($name): no HTTP/2 answer (got '${hex}')"; ok=0
    fi
  done
  # shellcheck disable=SC2016
  if timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && sleep 1 && printf "" >&3' _ "$H2" 2>/dev/null; then
    log "127.0.0.1:$H2 (engine): TCP connection accepted"
  else
    log "127.0.0.1:$H2 (engine): TCP connection failed"; ok=0
  fi
  [ $ok = 1 ]
}

rc=0
if [ $SHELL_MODE = 1 ]; then
  timeout -k 5 "$TIMEOUT" "${QEMU[@]}" > >(tee "$LOG") 2>&1 || rc=$?
  sleep 0.2
  check_markers
else
  timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null > >(tee "$LOG") 2>&1 &
  QPID=$!
  trap 'kill "$QPID" 2>/dev/null || true' EXIT INT TERM
  grace=""
  while kill -0 "$QPID" 2>/dev/null; do
    sleep 0.25
    check_markers
    # the board never powers off: check its ports from the host, then stop (or --hold)
    if [ $BOARD = 1 ] && all_seen && [ -z "$PORTS_CHECKED" ]; then
      PORTS_CHECKED=1
      check_board_ports || PORTS_OK=0
      if [ $HOLD = 1 ] && [ $PORTS_OK = 1 ]; then
        log "--hold: board up on 127.0.0.1:$H0 (agent) :$H1 (guest relay) :$H2 (engine) until the ${TIMEOUT} s timeout or Ctrl-C"
        continue
      fi
      kill "$QPID" 2>/dev/null || true
      break
    fi
    # dom0 powers itself off after the markers; if QEMU lingers, stop it after 20 s
    if [ $BOARD = 0 ] && all_seen; then
      [ -n "$grace" ] || grace=$(date +%s)
      if [ $(( $(date +%s) - grace )) -ge 20 ]; then
        log "markers seen but QEMU still running after 20 s: stopping it"
        kill "$QPID" 2>/dev/null || true
        break
      fi
    fi
  done
  wait "$QPID" || rc=$?
  trap - EXIT INT TERM
  sleep 0.2   # let tee flush
  check_markers
fi
total=$(elapsed)

echo
ok=1
for m in "${MARKERS[@]}"; do
  if [ -n "${AT[$m]:-}" ]; then log "marker '$m' at ~${AT[$m]} s"
  else log "marker '$m' NOT seen"; ok=0; fi
done
if [ $rc = 124 ] || [ $rc = 137 ]; then log "QEMU killed by the ${TIMEOUT} s timeout"; fi
if grep -q "dmahil-qemu: FAIL" "$LOG"; then
  log "the console has: $(grep -m1 "dmahil-qemu: FAIL" "$LOG")"; ok=0
fi
if [ $BOARD = 1 ] && [ $ok = 1 ]; then
  if [ -z "$PORTS_CHECKED" ]; then log "board ports not checked (QEMU ended first)"; ok=0
  elif [ $PORTS_OK = 0 ]; then log "board ports check FAILED"; ok=0; fi
fi
if [ $ok = 1 ]; then
  log "PASS in ${total} s (qemu exit status $rc)"
  exit 0
fi
log "FAIL after ${total} s (qemu exit status $rc); last 40 console lines:"
tail -n 40 "$LOG" | sed 's/^/  | /'
exit 1
