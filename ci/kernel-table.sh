#!/usr/bin/env bash
# The real-code detection table: the qemu-xen boards on Linux built from source, stock and
# with each regression patch of regressions/linux-6.1/ (one catalogue fault each).
#   ci/kernel-table.sh [--faults all|none|ID,ID...] [--runs N] [--dmahil FILE] [OUT_DIR]
#                                                        (default OUT_DIR: out/kernel-table)
#
#   --faults   which regression patches (catalogue ids; default all: every fault whose
#              kernel_patch `dmahil faults --json` names); none: the stock kernel only
#   --runs N   runs of the farm per kernel (default 1); a claim must hold in every run
#   --dmahil   use this controller and skip `ci/setup.sh build`
#
# Sets up what it needs (qemu/fetch.sh, sysroot.sh, build-agent.sh), builds the stock
# kernel from Debian's linux-source-6.1 (qemu/build-kernel.sh, cached by revision +
# config), then for each patch a branch regress/<id> of the same tree (the objects are
# shared, so each is an incremental build). Every kernel runs
# ci/farms/qemu-xen-source.textproto (four boards: coherent, non-coherent, swiotlb=force,
# domU above 4 GiB with a 32-bit edu) with its kernel folder substituted.
#
# Prints one row per kernel x board x fixture (n/a rows left out): the verdicts over the
# runs, the diagnoses, and for a regression whether the cell is claimed (a Dmahil-Claims
# trailer of the patch) and caught (FAIL with the catalogue's diagnosis for a board
# without caches in every run). Writes OUT_DIR/table.txt and OUT_DIR/table.json (jq).
# Exit status: 0 iff the stock kernel has no FAIL or ERROR in any run and every claim of
# every patch is caught in every run; 1 otherwise; 2 for a set-up error.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=ci/lib.sh
. ci/lib.sh
FAULTS=all RUNS=1 DMAHIL="" OUT=out/kernel-table
while [ $# -gt 0 ]; do
  case $1 in
    --faults) [ -n "${2:-}" ] || { echo "kernel-table.sh: --faults needs a list" >&2; exit 2; }
              FAULTS=$2; shift 2 ;;
    --runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "kernel-table.sh: --runs needs N >= 1" >&2; exit 2; }
            RUNS=$2; shift 2 ;;
    --dmahil) DMAHIL=$(executable_path kernel-table.sh "${2:-}"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "kernel-table.sh: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done
stage_clock kernel-table
ci/apt-install.sh kernel-table jq git bsdextrautils  # column
if [ -z "$DMAHIL" ]; then
  ci/setup.sh build
  DMAHIL=$REPO/build/bin/dmahil
  stage_done "controller build"
fi
for step in fetch sysroot build-agent; do
  "qemu/$step.sh" >/dev/null || { echo "kernel-table.sh: qemu/$step.sh failed" >&2; exit 2; }
done
stage_done "qemu set-up (fetch, sysroot, agent)"
mkdir -p "$OUT/farms"
OUT=$(cd "$OUT" && pwd)
"$DMAHIL" faults --json >"$OUT/faults.json"
if [ "$FAULTS" = all ]; then
  mapfile -t IDS < <(jq -r '.[] | select(.kernel_patch != "") | .id' "$OUT/faults.json")
elif [ "$FAULTS" = none ]; then
  IDS=()
else
  IFS=, read -r -a IDS <<<"$FAULTS"
fi
patch_of() { # ID: the catalogue's kernel_patch of fault ID (a path in the repository, or "")
  jq -r --arg id "$1" '.[] | select(.id == $id) | .kernel_patch' "$OUT/faults.json"
}
for id in "${IDS[@]}"; do
  [ -n "$(patch_of "$id")" ] \
    || { echo "kernel-table.sh: $id: no catalogue fault with a kernel patch (dmahil faults)" >&2; exit 2; }
done

# --- kernels ---------------------------------------------------------------------------
TREE=$REPO/build-qemu/linux/src
build_kernel() { # NAME: build the tree as checked out, link build-qemu/kernels/NAME
  local start=$SECONDS
  qemu/build-kernel.sh --name "$1" | tail -n 3
  echo "$((SECONDS - start))" >"$OUT/$1.build-seconds"
}
# an earlier run that stopped half-way leaves the tree on a regress/<id> branch
if [ -d "$TREE/.git" ] && [[ $(git -C "$TREE" symbolic-ref --short -q HEAD || true) == regress/* ]]; then
  git -C "$TREE" checkout -q master
fi
build_kernel dom0-4k
stage_done "stock kernel (qemu/build-kernel.sh)"
BASE=$(git -C "$TREE" rev-parse HEAD)
BASE_DATE=$(git -C "$TREE" log -1 --format=%cI "$BASE")
HOME_BRANCH=$(git -C "$TREE" symbolic-ref --short -q HEAD || echo "$BASE")
GIT=(git -C "$TREE" -c user.name=dmahil -c user.email=dmahil@localhost -c advice.detachedHead=false)
for id in "${IDS[@]}"; do
  patch=$REPO/$(patch_of "$id")
  "${GIT[@]}" checkout -q -B "regress/$id" "$BASE"
  # the base's date as author and committer date: the same patch on the same base is the
  # same commit, so qemu/build-kernel.sh's cache (revision + config) finds it next time
  GIT_AUTHOR_DATE=$BASE_DATE GIT_COMMITTER_DATE=$BASE_DATE "${GIT[@]}" am -q "$patch" || { "${GIT[@]}" am --abort; "${GIT[@]}" checkout -q "$HOME_BRANCH"
    echo "kernel-table.sh: $patch does not apply to $BASE" >&2; exit 2; }
  build_kernel "$id" || { "${GIT[@]}" checkout -q "$HOME_BRANCH"; exit 2; }
  stage_done "kernel with $(basename "$patch") (incremental)"
done
"${GIT[@]}" checkout -q "$HOME_BRANCH"

# --- runs ------------------------------------------------------------------------------
for k in dom0-4k "${IDS[@]}"; do
  sed -e "s|\"\\.\\./\\.\\./|\"$REPO/|g" -e "s|build-qemu/kernels/dom0-4k/|build-qemu/kernels/$k/|g" \
    ci/farms/qemu-xen-source.textproto >"$OUT/farms/$k.textproto"
  mkdir -p "$OUT/$k"
  for r in $(seq 1 "$RUNS"); do
    start=$SECONDS rc=0
    "$DMAHIL" run --farm "$OUT/farms/$k.textproto" --out "$OUT/$k/run$r" >"$OUT/$k/run$r.log" 2>&1 \
      || rc=$?
    [ -f "$OUT/$k/run$r/results.json" ] || { tail -n 20 "$OUT/$k/run$r.log" >&2
      echo "kernel-table.sh: no results from $k run $r (exit $rc)" >&2; exit 2; }
    stage_done "kernel $k: run $r of $RUNS (dmahil run exit $rc, $((SECONDS - start)) s)"
  done
done

# --- the table -------------------------------------------------------------------------
claims_json() { # ID: the patch's Dmahil-Claims as a JSON array
  sed -n 's/^Dmahil-Claims: //p' "$REPO/$(patch_of "$1")" | jq -R . | jq -s .
}
{
  for k in dom0-4k "${IDS[@]}"; do
    if [ "$k" = dom0-4k ]; then claims='[]' expect=null; else
      claims=$(claims_json "$k")
      expect=$(jq --arg id "$k" '.[] | select(.id == $id) | .diagnosis.cacheless' "$OUT/faults.json")
    fi
    # shellcheck disable=SC2046  # one results.json per run
    jq -s --arg k "$k" --argjson claims "$claims" --argjson expect "$expect" \
       --slurpfile env <(jq -R -n '[inputs | capture("^(?<k>KERNEL_[A-Z_]+)=(?<v>.*)$")
                                   | {(.k): .v}] | add' <"build-qemu/kernels/$k/kernel.env") '
      [.[] | .results[]] | group_by([.board, .fixture]) | map({
        kernel: $k, kernel_env: $env[0], board: .[0].board, fixture: .[0].fixture,
        verdicts: map(.verdict), diagnoses: (map(.diagnosis // "-") | unique),
        claimed: ((.[0].board + "/" + .[0].fixture) as $c | $claims | index($c) != null),
        caught: (($expect != null) and all(.verdict == "fail" and .diagnosis == $expect)),
        expected: $expect})' $(ls "$OUT/$k"/run*/results.json)
  done
} | jq -s 'add' >"$OUT/table.json"
jq -r '
  ["KERNEL", "BOARD", "FIXTURE", "RUNS", "DIAGNOSIS", "CLAIM"],
  (.[] | select(any(.verdicts[]; . != "n/a")) |
   [.kernel, .board, .fixture, (.verdicts | join(",")), (.diagnoses | join(",")),
    (if .kernel == "dom0-4k" then (if any(.verdicts[]; . == "fail" or . == "error")
       then "FALSE POSITIVE" else "clean" end)
     elif .claimed then (if .caught then "caught" else "MISSED (expected " + .expected + ")" end)
     else "-" end)]) | @tsv' "$OUT/table.json" | column -t -s $'\t' | tee "$OUT/table.txt"
bad=$(jq '[.[] | select((.kernel == "dom0-4k" and any(.verdicts[]; . == "fail" or . == "error"))
                        or (.claimed and (.caught | not)))] | length' "$OUT/table.json")
unclaimed=$(for id in "${IDS[@]}"; do
  jq -r --arg id "$id" --argjson c "$(claims_json "$id")" \
    '$c[] as $x | if any(.[]; .kernel == $id and (.board + "/" + .fixture) == $x) then empty
     else "\($id): claim \($x) matches no result" end' "$OUT/table.json"; done)
[ -z "$unclaimed" ] || echo "$unclaimed"
stage_done "table ($OUT/table.txt, table.json)"
for k in dom0-4k "${IDS[@]}"; do
  echo "kernel $k: $(sed -n 's/^KERNEL_DESCRIBE=//p' "build-qemu/kernels/$k/kernel.env"), built in" \
       "$(cat "$OUT/$k.build-seconds") s"
done
if [ "$bad" = 0 ] && [ -z "$unclaimed" ]; then
  echo "kernel-table: stock kernel clean, every claim caught in every run ($RUNS run(s))"
  exit 0
fi
echo "kernel-table: $bad cell(s) wrong (a false positive on the stock kernel or a missed claim)"
exit 1
