#!/usr/bin/env bash
# Creates a synthetic Linux (or Xen) git history for the `dmahil bisect` demonstration.
#
#   demo/bisect/make-history.sh DIR [--commits N] [--culprit K] [--fault ID]
#                               [--boot-rate R] [--tree linux|xen] [--untestable A-B]
#
# DIR becomes a git repository of N+1 commits on branch main (default N=300): commit 0 is
# tagged "good", commit N "bad". Every commit carries dmahil-revision.textproto, the
# dmahil.v1.Revision a virtual board reads at boot (demo/bisect/deploy-hook.sh copies it
# to the board's revision folder). Commit K (default 217) turns on catalogue fault ID
# (default cache-flush-local-addr) with boot_rate R (default 0.3: the bug shows in about
# 30% of boots). Commits A..B (optional) carry a BROKEN file: demo/bisect/build-hook.sh
# exits 125 on them, as a tree that does not build. Authors and dates are fixed, so the
# same arguments give the same commit ids. Prints "culprit <commit id>".
set -euo pipefail
export LC_ALL=C  # ${#s} below must count bytes, as fast-import's `data` does
usage() { sed -n '2,16p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR=$1; shift
N=300; K=217; FAULT=cache-flush-local-addr; RATE=0.3; TREE=linux; BROKEN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --commits) N=$2; shift 2 ;;
    --culprit) K=$2; shift 2 ;;
    --fault) FAULT=$2; shift 2 ;;
    --boot-rate) RATE=$2; shift 2 ;;
    --tree) TREE=$2; shift 2 ;;
    --untestable) BROKEN=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$N" =~ ^[0-9]+$ && "$K" =~ ^[0-9]+$ && $K -ge 1 && $K -le $N ]] ||
  { echo "make-history: need 1 <= culprit ($K) <= commits ($N)" >&2; exit 2; }
[[ "$TREE" == linux || "$TREE" == xen ]] || { echo "make-history: --tree linux|xen" >&2; exit 2; }
B_LO=-1; B_HI=-1
if [ -n "$BROKEN" ]; then
  [[ "$BROKEN" =~ ^([0-9]+)-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] &&
    [ "${BASH_REMATCH[1]}" -le "${BASH_REMATCH[2]}" ] && [ "${BASH_REMATCH[2]}" -lt "$N" ] ||
    { echo "make-history: --untestable A-B with 1 <= A <= B < commits ($N)" >&2; exit 2; }
  B_LO=${BASH_REMATCH[1]}; B_HI=${BASH_REMATCH[2]}
fi
[ ! -e "$DIR" ] || { echo "make-history: $DIR exists" >&2; exit 2; }

if [ "$TREE" = linux ]; then
  FILES=(drivers/xen/swiotlb-xen.c arch/arm64/mm/dma-mapping.c arch/arm/xen/mm.c
         drivers/xen/gntdev.c kernel/dma/direct.c drivers/xen/grant-table.c)
else
  FILES=(xen/common/grant_table.c xen/arch/arm/p2m.c xen/drivers/passthrough/arm/smmu.c
         xen/arch/arm/mm.c xen/common/memory.c)
fi

revision() {  # $1: 1 if the fault is in
  printf '# proto-file: proto/dmahil/v1/revision.proto\n# proto-message: dmahil.v1.Revision\n'
  printf 'tree: "%s"\ndescribe: "dmahil bisect demo tree"\n' "$TREE"
  [ "$1" = 1 ] && printf 'fault { id: "%s" boot_rate: %s }\n' "$FAULT" "$RATE"
  return 0
}
blob() { printf 'data %d\n%s\n\n' $((${#1} + 1)) "$1"; }

git init -q -b main "$DIR"
{
  for ((i = 0; i <= N; i++)); do
    f=${FILES[$((i % ${#FILES[@]}))]}
    if [ "$i" -eq 0 ]; then subject="demo: import the $TREE tree"
    elif [ "$i" -eq "$K" ]; then subject="${f%%/*}: rework cache maintenance for foreign pages"
    else subject="${f%%/*}: cleanup $i in $(basename "$f")"; fi
    printf 'commit refs/heads/main\nmark :%d\n' $((i + 1))
    printf 'author dmahil demo <demo@dmahil.invalid> %d +0000\n' $((1700000000 + i * 3600))
    printf 'committer dmahil demo <demo@dmahil.invalid> %d +0000\n' $((1700000000 + i * 3600))
    blob "$subject"
    [ "$i" -gt 0 ] && printf 'from :%d\n' "$i"
    printf 'M 100644 inline %s\n' "$f"
    blob "/* $f: revision $i */"
    if [ "$i" -eq 0 ] || [ "$i" -eq "$K" ]; then
      printf 'M 100644 inline dmahil-revision.textproto\n'
      blob "$(revision $([ "$i" -ge "$K" ] && echo 1 || echo 0))"
    fi
    if [ "$i" -eq "$B_LO" ]; then printf 'M 100644 inline BROKEN\n'; blob "does not build"; fi
    if [ "$i" -eq $((B_HI + 1)) ] && [ "$B_HI" -ge 0 ]; then printf 'D BROKEN\n'; fi
    printf '\n'
  done
  printf 'reset refs/tags/good\nfrom :1\n\nreset refs/tags/bad\nfrom :%d\n\n' $((N + 1))
} | git -C "$DIR" fast-import --quiet
git -C "$DIR" checkout -q main
echo "culprit $(git -C "$DIR" rev-list --reverse main | sed -n "$((K + 1))p")"
