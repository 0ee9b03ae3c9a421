#!/bin/sh
# `dmahil bisect --deploy-hook` for the demo trees (make-history.sh): installs the checked
# out revision on a virtual board by copying its revision file to the board's revision
# folder, read at the next power-on. Environment: see controller/bisect/board_runner.h.
set -eu
cp "$DMAHIL_WORKTREE/dmahil-revision.textproto" "$DMAHIL_DEPLOY_DIR/$DMAHIL_TREE.textproto"
echo "deployed $DMAHIL_TREE $DMAHIL_REV to $DMAHIL_BOARD"
