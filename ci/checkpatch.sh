#!/usr/bin/env bash
# Kernel style for dmahil.ko: runs Linux's checkpatch.pl --strict on agent/kmod's sources.
#   ci/checkpatch.sh [BUILD_DIR]        (default BUILD_DIR: build-checkpatch)
#
# checkpatch.pl comes from Debian's linux-source-6.1 package (installed if missing with
# ci/apt-install.sh). Only the files it needs are extracted from
# /usr/src/linux-source-6.1.tar.xz: scripts/checkpatch.pl, scripts/spelling.txt,
# scripts/const_structs.checkpatch, plus scripts/kernel-doc to check the kernel-doc
# comments. They go to BUILD_DIR/linux-scripts and are extracted again only when the
# tarball changes.
#
# Checks every agent/kmod/*.[ch] and agent/kmod/test/*.c with
#   checkpatch.pl --no-tree --strict --max-line-length=80 -f FILE
# and the module's sources with `kernel-doc -v -none` (malformed or missing kernel-doc,
# parameters or return values). Prints each file's counts, the complaints and its own
# elapsed time. Exit status: 0 if every file has 0 errors and 0 warnings and kernel-doc
# has no complaint (checks are printed; keep them at 0 too); 1 otherwise; 2 if the tools
# cannot be set up.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUILD=${1:-build-checkpatch}
T0=$(date +%s.%N)
elapsed() { printf '%.1f s' "$(echo "$(date +%s.%N) - $T0" | bc)"; }

TARBALL=/usr/src/linux-source-6.1.tar.xz
[ -f "$TARBALL" ] || ci/apt-install.sh checkpatch linux-source-6.1 || {
  echo "checkpatch.sh: error: cannot install linux-source-6.1" >&2; exit 2; }
[ -f "$TARBALL" ] || { echo "checkpatch.sh: error: no $TARBALL" >&2; exit 2; }

mkdir -p "$BUILD"
DEST=$(cd "$BUILD" && pwd)/linux-scripts
STAMP=$DEST/.from
want="$(stat -c '%n %s %Y' "$TARBALL")"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "== checkpatch: extracting checkpatch.pl from $TARBALL"
  rm -rf "$DEST"
  mkdir -p "$DEST"
  top=linux-source-6.1
  tar -xJf "$TARBALL" -C "$DEST" --strip-components=2 \
    "$top/scripts/checkpatch.pl" "$top/scripts/spelling.txt" \
    "$top/scripts/const_structs.checkpatch" "$top/scripts/kernel-doc" || {
    echo "checkpatch.sh: error: cannot extract the scripts from $TARBALL" >&2; exit 2; }
  echo "$want" >"$STAMP"
  echo "== checkpatch: extracted ($(elapsed))"
fi

files=(agent/kmod/*.[ch])
for f in agent/kmod/test/*.c; do [ -f "$f" ] && files+=("$f"); done

status=0 errors=0 warnings=0 checks=0
for f in "${files[@]}"; do
  # run from DEST: inside a git checkout checkpatch.pl leaves a .checkpatch-camelcase.git.*
  # cache file in its working directory
  # (checkpatch.pl exits 1 on any complaint: the counts below decide)
  out=$(cd "$DEST" && { perl ./checkpatch.pl --no-tree --strict --color=never \
          --max-line-length=80 -f "$REPO/$f" 2>&1 || true; })
  total=$(grep -E '^total: ' <<<"$out" | tail -n 1)
  if [[ $total =~ ^total:\ ([0-9]+)\ errors,\ ([0-9]+)\ warnings,\ ([0-9]+)\ checks ]]; then
    e=${BASH_REMATCH[1]} w=${BASH_REMATCH[2]} c=${BASH_REMATCH[3]}
  else
    echo "$out"
    echo "checkpatch.sh: error: no 'total:' line for $f" >&2
    exit 2
  fi
  errors=$((errors + e)) warnings=$((warnings + w)) checks=$((checks + c))
  echo "== checkpatch: $f: $e errors, $w warnings, $c checks"
  if [ "$((e + w + c))" -ne 0 ]; then
    grep -E -A4 '^(ERROR|WARNING|CHECK):' <<<"$out" || true
  fi
  [ "$((e + w))" -eq 0 ] || status=1
done

kdoc=$(perl "$DEST/kernel-doc" -v -none agent/kmod/*.[ch] 2>&1 | grep -v ': info: ' || true)
if [ -n "$kdoc" ]; then
  echo "$kdoc"
  echo "== checkpatch: kernel-doc: $(grep -c . <<<"$kdoc") lines of complaints"
  status=1
else
  echo "== checkpatch: kernel-doc: clean"
fi

echo "== checkpatch: ${#files[@]} files: $errors errors, $warnings warnings, $checks checks" \
  "($(elapsed))"
exit "$status"
