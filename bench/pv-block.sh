#!/usr/bin/env bash
# The PV block path's speed on the qemu-xen board: boots the board of bench/pv-block.textproto
# (Debian's kernel, the domU's PV disk on dom0's NVMe) and runs bench/pv-block-4m.textproto
# (4 MiB requests written and read back 8 times, every line checked on both sides). Prints
# the time to a healthy board, the fixture's time and its checked MB/s (bytes checked on
# the disk's device side and in the domU, per second of wall time), and the board's whole
# time (power on to off).
#
#   bench/pv-block.sh [--dmahil FILE] [OUT_DIR]     (default OUT_DIR: out/pv-block-bench)
#
# Needs the qemu-xen set-up (ci/qemu-xen.sh, or qemu/README.md's steps). Exit 1 if the
# fixture did not pass.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh
DMAHIL=build/bin/dmahil
OUT=out/pv-block-bench
while [ $# -gt 0 ]; do
  case $1 in
    --dmahil) DMAHIL=$(executable_path pv-block.sh "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "pv-block.sh: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done
command -v jq >/dev/null || ci/apt-install.sh pv-block-bench jq

rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s.%N)
rc=0
"$DMAHIL" -v run --farm bench/pv-block.textproto --out "$OUT/run" >"$OUT/stdout" 2>"$OUT/stderr" \
  || rc=$?
end=$(date +%s.%N)
# spdlog's "[YYYY-mm-dd HH:MM:SS.mmm]" of the first line matching $1, as seconds
stamp() {
  local line
  line=$(grep -m1 -- "$1" "$OUT/stderr" | sed -n 's/^\[\([0-9-]* [0-9:.]*\)\].*/\1/p')
  [ -n "$line" ] || { echo "pv-block.sh: no \"$1\" in $OUT/stderr" >&2; tail -20 "$OUT/stderr" >&2; exit 1; }
  date -d "$line" +%s.%N
}
healthy=$(stamp ": healthy in ")
done_at=$(stamp "/ pv-block-4m-bench: ")
verdict=$(jq -r '.results[0].verdict' "$OUT/run/results.json")
lines=$(jq -r '.results[0].lines_checked' "$OUT/run/results.json")
# the line map has a glyph per cache line, a string per 4 KiB page
per_page=$(jq -r '.results[0].line_map[0] | length' "$OUT/run/results.json")
boot_ms=$(grep -m1 -o "healthy in [0-9]* ms" "$OUT/stderr" | grep -o "[0-9]*")
awk -v s="$start" -v h="$healthy" -v d="$done_at" -v e="$end" -v l="$lines" -v pp="$per_page" \
    -v b="$boot_ms" 'BEGIN {
  bytes = l * (4096 / pp)
  printf "pv-block bench: power on to healthy %.1f s (health check included; board says %d ms)\n", h - s, b
  printf "pv-block bench: fixture pv-block-4m-bench %.1f s: %d lines checked (%.0f MiB), %.2f MB/s checked\n", d - h, l, bytes / 1048576, bytes / (d - h) / 1e6
  printf "pv-block bench: whole board %.1f s (power on to off)\n", e - s
}'
echo "pv-block bench: verdict $verdict (dmahil exit $rc; output in $OUT)"
[ "$verdict" = pass ]
