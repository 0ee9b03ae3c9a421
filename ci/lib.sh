# shellcheck shell=bash
# ci/lib.sh: what the ci/ scripts share. Source it; it defines functions only.

# stage_clock NAME: starts the clock stage_done reads; NAME prefixes its lines.
stage_clock() {
  CI_CLOCK_NAME=$1
  CI_CLOCK_T0=$(date +%s)
  CI_CLOCK_STAGE=$CI_CLOCK_T0
}

# stage_done LABEL: prints "== NAME: LABEL: <s> s (total <s> s)", the seconds since the
# previous stage_done (or stage_clock) and since stage_clock.
stage_done() {
  local now
  now=$(date +%s)
  echo "== $CI_CLOCK_NAME: $1: $((now - CI_CLOCK_STAGE)) s (total $((now - CI_CLOCK_T0)) s)"
  CI_CLOCK_STAGE=$now
}

# executable_path WHO PATH: PATH made absolute if it is an executable file; otherwise
# prints "WHO: --dmahil needs an executable" and exits 2 (a bad command line).
executable_path() {
  [ -x "${2:-}" ] && [ -f "$2" ] || { echo "$1: --dmahil needs an executable" >&2; exit 2; }
  echo "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
}
