#!/bin/sh
# `dmahil bisect --build-hook` for the demo trees: "builds" the checked-out revision.
# Exit 125 (cannot be tested, as `git bisect run`) on the commits make-history.sh marked
# BROKEN; exit 1 if the revision file is missing.
set -eu
if [ -e BROKEN ]; then echo "$DMAHIL_REV does not build"; exit 125; fi
test -f dmahil-revision.textproto
echo "built $DMAHIL_TREE $DMAHIL_REV"
