#!/usr/bin/env bash
# A stand-in for qemu-system-aarch64 in the tests of qemu_power.h and board_runner.h: enough
# of QEMU's behaviour for the controller's side of the qemu-xen board.
#   - `-machine ...,dumpdtb=F`: writes a tiny device tree with QEMU virt's
#     /pcie@10000000 { dma-coherent; } (compiled by dtc) to F and exits 0, as QEMU does;
#   - otherwise writes a boot log to the `-serial` path (a tty) and sleeps, with one child
#     process (so power off must kill the group), until killed.
# Every run appends its arguments, one per line, then "--", to $FAKE_QEMU_DIR/args, and its
# pid and its child's pid to $FAKE_QEMU_DIR/pids. $FAKE_QEMU_DIR/mode selects the boot:
#   ready  (default) prints the boot lines and "dmahil-qemu: board ready"
#   silent prints the boot lines only (a board that never becomes ready)
#   exit   prints "fake-qemu: cannot boot" to stderr and exits 1 at once
#   panic  prints a Xen panic on the serial port
set -euo pipefail

if [[ "${1:-}" == "--help" ]]; then
  sed -n '2,14p' "$0"
  exit 0
fi
dir="${FAKE_QEMU_DIR:?FAKE_QEMU_DIR must name the test folder}"
mode="$(cat "$dir/mode" 2>/dev/null || echo ready)"
{ printf '%s\n' "$@"; echo "--"; } >>"$dir/args"

serial="" machine="" dtb=""
while (($#)); do
  case "$1" in
    -serial) serial="$2"; shift ;;
    -machine) machine="$2"; shift ;;
    -dtb) dtb="$2"; shift ;;
  esac
  shift
done

if [[ "$machine" == *dumpdtb=* ]]; then
  out="${machine#*dumpdtb=}"
  out="${out%%,*}"
  printf '/dts-v1/;\n/ {\n  #address-cells = <2>;\n  #size-cells = <2>;\n  chosen { };\n  pcie@10000000 {\n    compatible = "pci-host-ecam-generic";\n    dma-coherent;\n  };\n};\n' |
    dtc -q -I dts -O dtb -o "$out" -
  echo "fake-qemu: dumped $out" >&2
  exit 0
fi

if [[ "$mode" == exit ]]; then
  echo "fake-qemu: cannot boot" >&2
  exit 1
fi

sleep 1000 &
echo "$$ $!" >>"$dir/pids"
coherent="no dtb"
if [[ -n "$dtb" ]]; then
  if fdtget "$dtb" /pcie@10000000 dma-coherent >/dev/null 2>&1; then coherent="dma-coherent"
  else coherent="not dma-coherent"; fi
fi
# stderr first: the test powers off as soon as the serial port says ready
echo "fake-qemu: running" >&2
{
  echo "Xen 4.17 (fake-qemu pid $$)"
  echo "(XEN) pcie@10000000: $coherent"
  echo "[    1.000000] Linux version 6.1.0-fake-arm64"
  case "$mode" in
    ready) echo "dmahil-qemu: board ready" ;;
    panic) echo "(XEN) Panic on CPU 0:"; echo "(XEN) fake panic" ;;
  esac
} >"$serial"
wait
