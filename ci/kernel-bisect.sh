#!/usr/bin/env bash
# `dmahil bisect` on a real Linux history, each step a real kernel booted under real Xen.
#   ci/kernel-bisect.sh [--commits N] [--culprit K] [--seed S] [--patch FILE] [--dmahil FILE]
#                       [--port-base P] [OUT] [-- DMAHIL-BISECT-OPTIONS...]
#                                                     (default OUT: out/kernel-bisect)
#
#   --commits N    commits on top of the stock source (default 60, at least 2)
#   --culprit K    which of them (1..N) applies the regression patch (default: drawn from
#                  the seed)
#   --seed S       seeds the culprit's position and the bisection's runs (default: today,
#                  YYYYMMDD; printed)
#   --patch FILE   the regression (default regressions/linux-6.1/unmap-no-invalidate-foreign.patch,
#                  which the non-coherent board's foreign-from-device fixture catches as
#                  missing-maintenance)
#   --dmahil FILE  use this controller and skip `ci/setup.sh build`
#   --port-base P  the board's three forwarded host ports P..P+2 (default 17310)
#   after --        more options for `dmahil bisect`, e.g. --confidence 0.9, or
#                  --rule fixed --fixed-runs 1 for a bug that shows in every run
#
# Stages, each timed:
#  1. set-up: the controller; Debian's linux-source-6.1 as a git tree
#     (qemu/build-kernel.sh --source-only: build-qemu/linux/src, tagged debian/<version>);
#  2. history: OUT/linux, a `git clone --shared` of it, branch kernel-bisect from the
#     debian/* tag with N commits, each appending a comment to one of a few drivers/xen or
#     kernel/dma files the board's kernel compiles (so each step is an incremental build),
#     except commit K, which is the patch applied with `git am`. OUT/history.env names
#     base, tip and culprit; a second run with the same settings reuses the history;
#  3. the farm OUT/farm.textproto: the non-coherent board of
#     ci/farms/qemu-xen-source.textproto with its kernel paths at build-qemu/kernels/bisect/;
#  4. the first kernel build (full, 15-25 min on 2 cores) of the base in the bisection's
#     worktree OUT/bisect/trees/linux, so every step after it is incremental (on a second
#     run: the worktree as the bisection left it, from build-kernel.sh's cache);
#  5. the board's agent (qemu/sysroot.sh, qemu/build-agent.sh);
#  6. dmahil bisect --tree linux=OUT/linux --good <base> --bad <tip> --fixture
#     foreign-from-device, build hook `qemu/build-kernel.sh --tree "$DMAHIL_WORKTREE" --name
#     bisect` (cached by revision + config; links build-qemu/kernels/bisect to the build),
#     deploy hook: check that build-qemu/kernels/bisect is DMAHIL_REV's build, which the
#     board boots at its next power-on. Resumable: run the same command again.
#
# Prints the report (OUT/bisect/bisect.txt, bisect.json) and the total time. Exit status:
# 0 iff dmahil names the seeded commit as the first bad one; 1 if it names another; 2 for
# a set-up error or a bisection that gave no answer.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=ci/lib.sh
. ci/lib.sh
COMMITS=60 CULPRIT="" SEED="" DMAHIL="" PORT_BASE=17310 OUT=out/kernel-bisect
PATCH=$REPO/regressions/linux-6.1/unmap-no-invalidate-foreign.patch
EXTRA=()
die() { echo "kernel-bisect.sh: $*" >&2; exit 2; }
number() { [[ ${2:-} =~ ^[0-9]+$ ]] || die "$1 needs a number"; }
while [ $# -gt 0 ]; do
  case $1 in
    --commits) number "$@"; COMMITS=$2; shift 2 ;;
    --culprit) number "$@"; CULPRIT=$2; shift 2 ;;
    --seed) number "$@"; SEED=$2; shift 2 ;;
    --port-base) number "$@"; PORT_BASE=$2; shift 2 ;;
    --patch) [ -f "${2:-}" ] || die "--patch needs a file"
             PATCH=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    --dmahil) DMAHIL=$(executable_path kernel-bisect.sh "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    -*) die "unknown option $1 (try --help)" ;;
    *) OUT=$1; shift ;;
  esac
done
[ "$COMMITS" -ge 2 ] || die "--commits must be at least 2"
SEED=${SEED:-$(date +%Y%m%d)}
CULPRIT=${CULPRIT:-$(( (SEED * 2654435761 + 97) % COMMITS + 1 ))}
if [ "$CULPRIT" -lt 1 ] || [ "$CULPRIT" -gt "$COMMITS" ]; then die "--culprit must be in 1..$COMMITS"; fi
echo "kernel-bisect: $COMMITS commits, culprit at $CULPRIT ($(basename "$PATCH")), seed $SEED"
stage_clock kernel-bisect

# --- 1. set-up ---------------------------------------------------------------------------
ci/apt-install.sh kernel-bisect jq git
if [ -z "$DMAHIL" ]; then
  DMAHIL_TARGETS=dmahil ci/setup.sh build
  DMAHIL=$REPO/build/bin/dmahil
fi
[ -f build-qemu/cache/fetch.env ] || qemu/fetch.sh >/dev/null || die "qemu/fetch.sh failed"
qemu/build-kernel.sh --source-only || die "qemu/build-kernel.sh --source-only failed"
SRC=$REPO/build-qemu/linux/src
BASE_TAG=$(git -C "$SRC" tag -l 'debian/*' | head -n1)
[ -n "$BASE_TAG" ] || die "$SRC has no debian/* tag"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
stage_done "set-up (controller, linux-source-6.1 as $BASE_TAG)"

# --- 2. the history ----------------------------------------------------------------------
SETTINGS="commits=$COMMITS culprit=$CULPRIT patch=$(sha256sum <"$PATCH" | cut -c1-12) base=$BASE_TAG"
LINUX=$OUT/linux
if [ -f "$OUT/history.env" ] && grep -qxF "SETTINGS='$SETTINGS'" "$OUT/history.env"; then
  echo "kernel-bisect: reusing the history in $LINUX"
else
  if [ -e "$LINUX" ] || [ -e "$OUT/bisect" ]; then
    die "$OUT holds a history made with other settings: remove it, or give another OUT"
  fi
  GIT=(git -C "$LINUX.tmp" -c user.name=dmahil -c user.email=dmahil@localhost)
  rm -rf "$LINUX.tmp"
  git clone -q --shared --no-checkout "$SRC" "$LINUX.tmp"
  "${GIT[@]}" checkout -q -b kernel-bisect "$BASE_TAG"
  # Files the board's kernel compiles (qemu/kernel/base.config), minus the patch's own.
  touched=$(sed -n 's|^+++ b/||p' "$PATCH")
  FILES=()
  for f in kernel/dma/mapping.c drivers/xen/grant-table.c kernel/dma/direct.c \
           drivers/xen/balloon.c kernel/dma/swiotlb.c drivers/xen/gntdev.c \
           drivers/xen/features.c drivers/xen/gntalloc.c; do
    grep -qxF "$f" <<<"$touched" || FILES+=("$f")
  done
  when=1700000000
  for i in $(seq 1 "$COMMITS"); do
    export GIT_AUTHOR_DATE="@$((when + i)) +0000" GIT_COMMITTER_DATE="@$((when + i)) +0000"
    if [ "$i" = "$CULPRIT" ]; then
      "${GIT[@]}" am -q "$PATCH" || die "$PATCH does not apply after commit $((i - 1))"
    else
      f=${FILES[$(( (i - 1) % ${#FILES[@]} ))]}
      printf '/* kernel-bisect.sh: history commit %d of %d */\n' "$i" "$COMMITS" >>"$LINUX.tmp/$f"
      "${GIT[@]}" commit -q -m "$(dirname "$f"): kernel-bisect note $i of $COMMITS" -- "$f"
    fi
  done
  unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
  mv "$LINUX.tmp" "$LINUX"
  {
    echo "SETTINGS='$SETTINGS'"
    echo "BASE=$(git -C "$LINUX" rev-parse "$BASE_TAG^{commit}")"
    echo "TIP=$(git -C "$LINUX" rev-parse HEAD)"
    echo "CULPRIT_REV=$(git -C "$LINUX" rev-parse "HEAD~$((COMMITS - CULPRIT))")"
  } >"$OUT/history.env"
fi
# shellcheck source=/dev/null
. "$OUT/history.env"
echo "kernel-bisect: base $BASE, tip $TIP, culprit $CULPRIT_REV" \
     "\"$(git -C "$LINUX" log -1 --format=%s "$CULPRIT_REV")\""
stage_done "history ($COMMITS commits in $LINUX)"

# --- 3. the farm -------------------------------------------------------------------------
BOARD=qemu-xen-src-noncoherent
KDIR=$REPO/build-qemu/kernels/bisect
{
  echo "# written by ci/kernel-bisect.sh: the $BOARD board of ci/farms/qemu-xen-source.textproto"
  echo "# booting $KDIR (qemu/build-kernel.sh --name bisect)"
  echo 'name: "kernel-bisect"'
  echo 'parallel: 1'
  echo "fixture_file: \"$REPO/fixtures/foreign-from-device.textproto\""
  awk -v want="name: \"$BOARD\"" '/^board \{/ {blk = ""; inb = 1}
    inb {blk = blk $0 "\n"} /^\}/ && inb {inb = 0; if (index(blk, want)) printf "%s", blk}' \
    ci/farms/qemu-xen-source.textproto \
    | sed -e "s|\"\\.\\./\\.\\./|\"$REPO/|g" -e "s|build-qemu/kernels/dom0-4k/|build-qemu/kernels/bisect/|g" \
          -e "s/17110/$PORT_BASE/; s/17111/$((PORT_BASE + 1))/; s/17112/$((PORT_BASE + 2))/"
} >"$OUT/farm.textproto"
grep -q "name: \"$BOARD\"" "$OUT/farm.textproto" || die "no board $BOARD in ci/farms/qemu-xen-source.textproto"
stage_done "farm ($OUT/farm.textproto, ports $PORT_BASE..$((PORT_BASE + 2)))"

# --- 4. the first kernel build, in the bisection's own worktree --------------------------
# A resumed run builds the worktree as the last bisection left it (cached when it was built).
WT=$OUT/bisect/trees/linux
what="kernel build of the worktree as left"
if [ ! -e "$WT/.git" ]; then
  mkdir -p "$(dirname "$WT")"
  git -C "$LINUX" worktree add -q --detach "$WT" "$BASE"
  what="first kernel build"
fi
qemu/build-kernel.sh --tree "$WT" --name bisect --no-initramfs | tail -n 2 \
  || die "the $what failed"
stage_done "$what ($(git -C "$WT" describe --tags --always), objects reused by every step)"

# --- 5. the board's agent ----------------------------------------------------------------
for step in sysroot build-agent; do
  "qemu/$step.sh" >/dev/null || die "qemu/$step.sh failed"
done
stage_done "qemu set-up (sysroot, aarch64 agent)"

# --- 6. the bisection --------------------------------------------------------------------
BUILD_HOOK="'$REPO/qemu/build-kernel.sh' --tree \"\$DMAHIL_WORKTREE\" --name bisect"
DEPLOY_HOOK="grep -qx \"KERNEL_REV=\$DMAHIL_REV\" '$KDIR/kernel.env' && test -s '$KDIR/board.cpio.gz'"
DEPLOY_HOOK+=" && echo \"the board boots \$(readlink '$KDIR') at its next power-on\""
rc=0
"$DMAHIL" bisect --farm "$OUT/farm.textproto" --board "$BOARD" --fixture foreign-from-device \
  --tree "linux=$LINUX" --good "$BASE" --bad "$TIP" --seed "$SEED" \
  --build-hook "$BUILD_HOOK" --deploy-hook "$DEPLOY_HOOK" --out "$OUT/bisect" "${EXTRA[@]}" \
  >"$OUT/bisect.log" 2>&1 || rc=$?
stage_done "dmahil bisect (exit $rc)"
[ -f "$OUT/bisect/bisect.json" ] || { tail -n 30 "$OUT/bisect.log" >&2
  die "dmahil bisect gave no answer (exit $rc; log $OUT/bisect.log): run the same command again to resume"; }
cat "$OUT/bisect/bisect.txt"
named=$(jq -r .first_bad.rev "$OUT/bisect/bisect.json")
echo "kernel-bisect: total $(($(date +%s) - CI_CLOCK_T0)) s; per step (build/deploy/board s):"
jq -r '.steps[] | "  \(.rev[0:12]) \(.verdict) runs \(.runs): build \(.build_ms / 1000) s," +
       " deploy \(.deploy_ms / 1000) s, board \(.board_ms / 1000) s"' "$OUT/bisect/bisect.json"
if [ "$named" = "$CULPRIT_REV" ]; then
  echo "kernel-bisect: dmahil named the seeded culprit $CULPRIT_REV (commit $CULPRIT of $COMMITS)"
  exit 0
fi
echo "kernel-bisect: dmahil named $named, the culprit is $CULPRIT_REV (commit $CULPRIT of $COMMITS)"
exit 1
