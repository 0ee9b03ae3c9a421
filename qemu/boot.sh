#!/usr/bin/env bash
# qemu/boot.sh [--domu] [--timeout S] [--shell] [--cache DIR] [--out DIR] [--initrd FILE]
#              [--dom0-args "..."] [-- QEMU-ARGS...]
#
# Boots Xen 4.17 + the Debian arm64 dom0 (and with --domu one small domU) under
# qemu-system-aarch64 (virt, virtualization=on, gic-version=3, cortex-a57, TCG).
# The serial console goes to stdout and to OUT/console.log. Exits 0 iff the markers
# ("dmahil-qemu: dom0 up", with --domu also "dmahil-qemu: domU up") appeared within the
# timeout; otherwise prints the last 40 console lines and exits 1.
#
#   --domu           boot OUT/dom0-domu.cpio.gz: dom0 runs `xl create` for a domU
#   --timeout S      kill QEMU after S seconds (default 120)
#   --shell          dom0 drops to a shell on the console instead of powering off; QEMU
#                    gets this terminal (Ctrl-A x quits); markers are still checked
#   --cache DIR      fetch.sh's cache (default <repo>/build-qemu/cache)
#   --out DIR        mkinitramfs.sh's output and where console.log goes (default <repo>/build-qemu)
#   --initrd FILE    boot this dom0 initramfs instead
#   --dom0-args S    appended to the dom0 kernel command line
#   -- ARGS          extra qemu-system-aarch64 arguments (e.g. -device edu,...)
#
# Run qemu/fetch.sh and qemu/mkinitramfs.sh first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=$REPO/build-qemu/cache
OUT=$REPO/build-qemu
DOMU=0 TIMEOUT=120 SHELL_MODE=0 INITRD="" DOM0_EXTRA=""
QEMU_EXTRA=()
die() { echo "boot.sh: error: $*" >&2; exit 2; }
log() { echo "boot.sh: $*"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --domu) DOMU=1; shift ;;
    --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs seconds"; TIMEOUT=$2; shift 2 ;;
    --shell) SHELL_MODE=1; shift ;;
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; CACHE=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --initrd) [ $# -ge 2 ] || die "--initrd needs a file"; INITRD=$2; shift 2 ;;
    --dom0-args) [ $# -ge 2 ] || die "--dom0-args needs a string"; DOM0_EXTRA=$2; shift 2 ;;
    --) shift; QEMU_EXTRA=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

command -v qemu-system-aarch64 >/dev/null || die "qemu-system-aarch64 not found: run qemu/fetch.sh"
[ -f "$CACHE/fetch.env" ] || die "no $CACHE/fetch.env: run qemu/fetch.sh first"
# shellcheck source=/dev/null
. "$CACHE/fetch.env"
[ -f "${XEN:-}" ] || die "Xen image '${XEN:-}' missing: re-run qemu/fetch.sh"
[ -f "${KERNEL:-}" ] || die "kernel '${KERNEL:-}' missing: re-run qemu/fetch.sh"
mkdir -p "$OUT"
if [ -z "$INITRD" ]; then
  if [ $DOMU = 1 ]; then INITRD=$OUT/dom0-domu.cpio.gz; else INITRD=$OUT/dom0.cpio.gz; fi
fi
[ -f "$INITRD" ] || die "no initramfs $INITRD: run qemu/mkinitramfs.sh first"

# Load addresses (guest-loader writes the /chosen multiboot nodes Xen reads)
KADDR=0x49000000 IADDR=0x4d000000
ksize=$(stat -c %s "$KERNEL")
[ $((KADDR + ksize)) -le $((IADDR)) ] || die "kernel ($ksize bytes) overlaps the initrd at $IADDR"

DOM0_ARGS="console=hvc0 earlycon=xenboot rdinit=/init"
[ $DOMU = 1 ] || DOM0_ARGS+=" dmahil.domu=0"
[ $SHELL_MODE = 0 ] || DOM0_ARGS+=" dmahil.shell=1"
[ -z "$DOM0_EXTRA" ] || DOM0_ARGS+=" $DOM0_EXTRA"

LOG=$OUT/console.log
MARKERS=("dmahil-qemu: dom0 up")
[ $DOMU = 0 ] || MARKERS+=("dmahil-qemu: domU up")

# shellcheck disable=SC2054  # the commas are QEMU option syntax
QEMU=(qemu-system-aarch64
  -machine virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp 2 -m 2048
  -nographic -no-reboot -nic none
  -kernel "$XEN"
  -append "dom0_mem=512M,max:512M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all"
  -device "guest-loader,addr=$KADDR,kernel=$KERNEL,bootargs=$DOM0_ARGS"
  -device "guest-loader,addr=$IADDR,initrd=$INITRD"
  "${QEMU_EXTRA[@]}")

log "Xen $(basename "$XEN"), kernel $ABI, initrd $(basename "$INITRD") ($(du -h "$INITRD" | cut -f1)), timeout ${TIMEOUT}s"
log "console -> stdout and $LOG"
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
    # dom0 powers itself off after the markers; if QEMU lingers, stop it after 20 s
    if all_seen; then
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
if [ $ok = 1 ]; then
  log "PASS in ${total} s (qemu exit status $rc)"
  exit 0
fi
log "FAIL after ${total} s (qemu exit status $rc); last 40 console lines:"
tail -n 40 "$LOG" | sed 's/^/  | /'
exit 1
