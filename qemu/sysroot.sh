#!/usr/bin/env bash
# qemu/sysroot.sh [--out DIR] [--clean]
#
# Builds the arm64 sysroot that qemu/build-agent.sh cross-compiles the dmahil agent
# against: the Debian arm64 -dev packages the agent needs and their whole Depends closure,
# fetched with `apt-get download` (never installed) and unpacked with `dpkg-deb -x`.
# Idempotent: cached .debs are not downloaded again, unpacked ones leave a stamp.
#
#   --out DIR   the sysroot (default <repo>/build-qemu/sysroot)
#   --clean     delete DIR first (use after the archive moved a package to a new version:
#               otherwise the old version's files stay under the new one)
#
# Produces
#   DIR/                    the sysroot (usr/include, usr/lib/aarch64-linux-gnu, lib/...)
#   DIR/.debs/*.deb         the downloaded packages
#   DIR/.unpacked/<deb>     one stamp per unpacked package
#   DIR/.packages           name:arch=version of every package in the sysroot
#   DIR/usr/bin/grpc_*_plugin  symlinks to the HOST's /usr/bin/grpc_*_plugin, so that the
#                           arm64 gRPCTargets.cmake (which imports gRPC::grpc_cpp_plugin
#                           from <prefix>/bin and checks the file exists) resolves to the
#                           amd64 plugin that can run here; protoc is found on the host by
#                           the toolchain file (CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
#
# The protobuf and gRPC packages are pinned to the versions installed on the host, because
# the host's protoc and grpc_cpp_plugin generate the code the arm64 headers compile
# (protobuf's generated headers refuse other runtime versions). Everything else takes the
# archive's candidate. Absolute symlinks inside the sysroot (e.g. Debian's
# libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.N) are rewritten to relative ones so that
# they point into the sysroot, not at the host's files.
#
# Needs: the arm64 dpkg architecture with package lists (qemu/fetch.sh sets that up), the
# host's protobuf-compiler and protobuf-compiler-grpc (the repository's normal build deps).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/build-qemu/sysroot
CLEAN=0
die() { echo "sysroot.sh: error: $*" >&2; exit 1; }
log() { echo "sysroot.sh: $*"; }
# shellcheck source=qemu/lib.sh
. "$REPO/qemu/lib.sh"
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done

for t in apt-get apt-cache dpkg-deb dpkg-query realpath; do
  command -v "$t" >/dev/null || die "$t not found (this script needs a Debian host)"
done
dpkg --print-foreign-architectures | grep -qx arm64 \
  || die "the arm64 dpkg architecture is not enabled: run qemu/fetch.sh first"
pol=$(apt-cache policy libc6:arm64 2>/dev/null || true)
[[ $pol == *"Candidate: "[0-9]* ]] || die "no arm64 package lists (apt-get update after qemu/fetch.sh)"

if [ $CLEAN = 1 ] && [ -d "$OUT" ]; then
  log "removing $OUT"
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DEBS=$OUT/.debs
STAMPS=$OUT/.unpacked
mkdir -p "$DEBS" "$STAMPS"

# Nothing to do when the last run finished after this script and the package lists last
# changed (apt-get update renames new lists into /var/lib/apt/lists).
if [ -f "$OUT/.packages" ] && [ -z "$(find "${BASH_SOURCE[0]}" /var/lib/apt/lists -maxdepth 0 -newer "$OUT/.packages")" ]; then
  log "up to date: $OUT ($(wc -l < "$OUT/.packages") packages; --clean rebuilds)"
  exit 0
fi

# ---- which packages ----------------------------------------------------------------
# What the agent (agent/, proto/, common/, sim/, firmware/ host part) links or includes,
# plus libxen-dev for libxenvchan (agent/transport/), libblkid-dev for the block device's
# signature probe (agent/linux_xen/block_device.cc) and the C/C++ runtime dev packages.
# The cross g++ brings its own libstdc++ headers; libstdc++-12-dev:arm64 is here for the
# sysroot's libstdc++.so / libgcc, which the link uses.
ROOTS=(libgrpc++-dev:arm64 libgrpc-dev:arm64 libprotobuf-dev:arm64 libabsl-dev:arm64
       libssl-dev:arm64 zlib1g-dev:arm64 libc-ares-dev:arm64 libre2-dev:arm64
       libspdlog-dev:arm64 libfmt-dev:arm64 libboost-dev:arm64 libboost-filesystem-dev:arm64
       libxen-dev:arm64 linux-libc-dev:arm64 libc6-dev:arm64 libstdc++-12-dev:arm64
       libgcc-12-dev:arm64 libcli11-dev nlohmann-json3-dev libblkid-dev:arm64)
# Host tools and things no link needs that the Depends closure drags in.
SKIP_RE='^(pkgconf|pkgconf-bin|libpkgconf3|libc-dev-bin|rpcsvc-proto|catch2|gcc-12-base)(:arm64)?$'
# Pinned to the host's installed version (see the header).
PIN_RE='^(libprotobuf|libprotoc|libgrpc)'

log "resolving the Depends closure of ${#ROOTS[@]} packages"
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances "${ROOTS[@]}" \
  | grep -v '^ ' | grep -v '^<' | sort -u)
[ ${#closure[@]} -gt 0 ] || die "apt-cache depends gave nothing for ${ROOTS[*]}"

# name:arch=version for each package to fetch. Unqualified names are either arch:all
# (headers only: keep) or the host's amd64 package that satisfied a Multi-Arch: foreign
# dependency (tools: skip). One apt-cache call per question (each takes ~1-2 s here).
unqual=()
for p in "${closure[@]}"; do
  [[ $p =~ $SKIP_RE ]] && continue
  [ "${p%:arm64}" = "$p" ] && unqual+=("$p")
done
declare -A ARCH_ALL=()
if [ ${#unqual[@]} -gt 0 ]; then
  while read -r name arch; do
    [ "$arch" = all ] && ARCH_ALL[$name]=1
  done < <(apt-cache show --no-all-versions "${unqual[@]}" 2>/dev/null \
           | awk '/^Package: /{n=$2} /^Architecture: /{print n, $2}')
fi
wanted=()
for p in "${closure[@]}"; do
  [[ $p =~ $SKIP_RE ]] && continue
  if [ "${p%:arm64}" = "$p" ]; then
    [ -n "${ARCH_ALL[$p]:-}" ] && wanted+=("$p:all")
  else
    wanted+=("$p")
  fi
done
# candidates and every available version, from one `apt-cache policy`
declare -A CAND=() AVAIL=()
while read -r kind pkg ver; do
  case $kind in
    C) CAND[$pkg]=$ver ;;
    V) AVAIL[$pkg]+=" $ver " ;;
  esac
done < <(apt-cache policy "${wanted[@]/%:all/}" 2>/dev/null | awk '
  /^[^ ].*:$/ { pkg = substr($0, 1, length($0) - 1); intable = 0; next }
  /^  Candidate: / { print "C", pkg, $2; next }
  /^  Version table:/ { intable = 1; next }
  intable && /^ [ *][ *][ *][ *][^ ]+ [0-9]+$/ { v = $0; sub(/^ [ *][ *][ *][ *]/, "", v); sub(/ [0-9]+$/, "", v); print "V", pkg, v }')
specs=()
for p in "${wanted[@]}"; do
  name=${p%:*} arch=${p##*:}
  key=$name; [ "$arch" = all ] || key=$name:$arch
  if [[ $name =~ $PIN_RE ]]; then
    ver=$(dpkg-query -W -f='${Version}' "$name:amd64" 2>/dev/null || true)
    [ -n "$ver" ] || ver=${CAND[$key]:-}
    [[ ${AVAIL[$key]:-} == *" $ver "* ]] \
      || die "$name:$arch=$ver (the host's version, needed to match the host protoc/grpc_cpp_plugin) is not in the arm64 archive (it has:${AVAIL[$key]:- nothing}); upgrade the host's protobuf/gRPC packages to the archive's version"
  else
    ver=${CAND[$key]:-}
  fi
  if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then die "no candidate version for $key (apt-get update?)"; fi
  specs+=("$name:$arch=$ver")
done
printf '%s\n' "${specs[@]}" > "$OUT/.packages.new"

# ---- download -----------------------------------------------------------------------
debfile() {  # name:arch=version -> the file name apt-get download writes
  local s=$1 name arch ver
  name=${s%%:*}; arch=${s#*:}; arch=${arch%%=*}; ver=${s#*=}
  echo "${name}_${ver//:/%3a}_${arch}.deb"
}
# as root, apt drops to the _apt user, which cannot write into a build folder: stay root
SANDBOX=()
[ "$(id -u)" != 0 ] || SANDBOX=(-o APT::Sandbox::User=root)
missing=()
for s in "${specs[@]}"; do
  [ -s "$DEBS/$(debfile "$s")" ] || missing+=("$s")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${#missing[@]} of ${#specs[@]} packages"
  (cd "$DEBS" && apt-get -o Acquire::Retries=3 "${SANDBOX[@]}" download -qq "${missing[@]}") \
    || die "apt-get download failed for: ${missing[*]}"
  for s in "${missing[@]}"; do
    [ -s "$DEBS/$(debfile "$s")" ] || die "apt-get download did not produce $(debfile "$s") for $s"
  done
else
  log "all ${#specs[@]} packages already downloaded"
fi

# ---- unpack -------------------------------------------------------------------------
debs=()
for s in "${specs[@]}"; do debs+=("$DEBS/$(debfile "$s")"); done
unpack_debs "$OUT" "${debs[@]}" >/dev/null  # 74 packages: the count, not a line each
log "unpacked $UNPACKED new packages"
mv "$OUT/.packages.new" "$OUT/.packages.done"

# ---- absolute symlinks -> relative ones inside the sysroot --------------------------
fixed=0
while IFS= read -r -d '' l; do
  t=$(readlink "$l")
  [[ $t == /* ]] || continue
  # our deliberate links to host tools (below) stay absolute
  [[ $l == "$OUT/usr/bin/grpc_"*_plugin ]] && continue
  rel=$(realpath -m --relative-to="$(dirname "$l")" "$OUT$t")
  ln -sfn "$rel" "$l"
  fixed=$((fixed + 1))
done < <(find "$OUT" -path "$DEBS" -prune -o -type l -print0)
log "rewrote $fixed absolute symlinks"

# ---- host gRPC plugins for the arm64 gRPC CMake package -----------------------------
targets=$OUT/usr/lib/aarch64-linux-gnu/cmake/grpc/gRPCTargets-none.cmake
[ -f "$targets" ] || die "$targets missing: libgrpc-dev:arm64 did not unpack"
mkdir -p "$OUT/usr/bin"
# shellcheck disable=SC2016  # ${_IMPORT_PREFIX} is CMake's, matched literally
mapfile -t plugins < <(sed -n 's|.*"${_IMPORT_PREFIX}/bin/\([^"]*\)".*|\1|p' "$targets" | sort -u)
[ ${#plugins[@]} -gt 0 ] || die "$targets imports no programs from bin/ (gRPC CMake package changed?)"
for plugin in "${plugins[@]}"; do
  [ -x "/usr/bin/$plugin" ] \
    || die "host /usr/bin/$plugin missing (install protobuf-compiler-grpc on the host)"
  ln -sfn "/usr/bin/$plugin" "$OUT/usr/bin/$plugin"
done
command -v protoc >/dev/null || die "host protoc missing (install protobuf-compiler)"

mv "$OUT/.packages.done" "$OUT/.packages"   # last: marks a complete run
log "sysroot $OUT: ${#specs[@]} packages, $(du -sh --exclude=.debs "$OUT" | cut -f1)"
