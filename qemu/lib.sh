# shellcheck shell=bash
# qemu/lib.sh: shell functions the qemu/ set-up scripts share. Source it after defining
# die() and log(); it defines functions only.

# unpack_debs ROOT DEB...: `dpkg-deb -x` each .deb into ROOT, once: an unpacked .deb leaves
# a stamp ROOT/.unpacked/<file name>, so re-runs skip it. Sets UNPACKED to how many were
# new. Stops (die) naming the .deb that is missing or fails to unpack.
unpack_debs() {
  local root=$1 deb stamp
  shift
  mkdir -p "$root/.unpacked"
  UNPACKED=0
  for deb in "$@"; do
    [ -f "$deb" ] || die "no $deb to unpack"
    stamp=$root/.unpacked/$(basename "$deb")
    [ -e "$stamp" ] && continue
    log "unpacking $(basename "$deb")"
    dpkg-deb -x "$deb" "$root" || die "dpkg-deb -x $deb failed"
    : >"$stamp"
    UNPACKED=$((UNPACKED + 1))
  done
}
