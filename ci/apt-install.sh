#!/usr/bin/env bash
# Installs the given Debian packages that are not installed yet (as root, or through sudo).
#   ci/apt-install.sh WHO PKG...      (WHO prefixes the "installing" line, e.g. "setup")
set -euo pipefail
WHO=$1
shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "$WHO: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
