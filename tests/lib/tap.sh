# shellcheck shell=bash
# tests/lib/tap.sh — TAP output and clean-up for integration tests.
#
#   ok COND_EXIT_STATUS "name"      (use: ok $? "name", or t "name" cmd...)
#   t "name" cmd args...            passes when cmd exits 0
#   t_fail "name" STATUS cmd...     passes when cmd exits with STATUS
#   is "got" "want" "name"
#   like "got" "pattern" "name"     grep -E pattern
#   on_exit 'shell code'            run at exit, last registered first
#   skip_all "reason"
#   done_testing                    print the plan, exit 1 if any failed
#
# Each test script gets a private work directory $T (removed at exit unless
# KEEP_TMP=1) and a watchdog that kills the script after $TEST_TIMEOUT
# seconds (default 900) so that no test can hang CI.

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TOP_BUILDDIR=${TOP_BUILDDIR:-$TOP_SRCDIR/_build/default}
WALSHIP=${WALSHIP:-$TOP_BUILDDIR/walship}
TEST_TIMEOUT=${TEST_TIMEOUT:-900}

_tap_n=0
_tap_failed=0
_tap_exit_hooks=()
T_OUT=

_tap_run_exit_hooks() {
  local i
  for ((i = ${#_tap_exit_hooks[@]} - 1; i >= 0; i--)); do
    eval "${_tap_exit_hooks[$i]}" >/dev/null 2>&1 || true
  done
}

on_exit() { _tap_exit_hooks+=("$1"); }

_tap_on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  _tap_run_exit_hooks
  if [ -n "${_tap_watchdog:-}" ]; then
    # the watchdog first (else, its sleep gone, it would fire), then its sleep
    local kids
    kids=$(pgrep -P "$_tap_watchdog" 2>/dev/null)
    kill "$_tap_watchdog" 2>/dev/null
    [ -n "$kids" ] && kill $kids 2>/dev/null
  fi
  if [ -n "${T:-}" ] && [ -e "$T/.watchdog-fired" ]; then
    echo "not ok - watchdog: test exceeded ${TEST_TIMEOUT}s"
    rc=1
  fi
  if [ "${KEEP_TMP:-0}" != 1 ] && [ -n "${T:-}" ] && [ -d "$T" ]; then
    rm -rf "$T"
  elif [ -n "${T:-}" ]; then
    echo "# kept $T"
  fi
  exit "$rc"
}

T=$(mktemp -d "${TMPDIR:-/tmp}/walship-it.XXXXXX")
chmod 755 "$T"
trap _tap_on_exit EXIT
trap 'exit 130' INT TERM HUP
# The watchdog must not hold the test's stdout open (the TAP driver waits
# for EOF), so it writes nothing; the exit trap reports it.
( exec >/dev/null 2>&1; sleep "$TEST_TIMEOUT"; touch "$T/.watchdog-fired"; kill -TERM $$ ) &
_tap_watchdog=$!
disown "$_tap_watchdog" 2>/dev/null || true

ok() {
  local st=$1; shift
  _tap_n=$((_tap_n + 1))
  if [ "$st" -eq 0 ]; then
    echo "ok $_tap_n - $*"
  else
    echo "not ok $_tap_n - $*"
    _tap_failed=$((_tap_failed + 1))
  fi
  return "$st"
}

diag() { echo "# $*" | sed '2,$s/^/# /'; }

t() {
  local name=$1; shift
  local out
  out=$("$@" 2>&1)
  local st=$?
  T_OUT=$out
  ok "$st" "$name" || diag "command: $* (exit $st)" "$(printf '%s' "$out" | tail -5)"
  return "$st"
}

t_fail() {
  local name=$1 want=$2; shift 2
  local out st
  out=$("$@" 2>&1)
  st=$?
  if [ "$st" -eq "$want" ]; then
    ok 0 "$name"
  else
    ok 1 "$name"
    diag "command: $* exited $st, wanted $want" "$(printf '%s' "$out" | tail -5)"
  fi
  T_OUT=$out
  [ "$st" -eq "$want" ]
}

is() {
  if [ "$1" = "$2" ]; then
    ok 0 "$3"
  else
    ok 1 "$3"
    diag "got:  '$1'" "want: '$2'"
    return 1
  fi
}

like() {
  # A here-string, not printf | grep -q: under pipefail, grep -q exiting at a
  # match on an early line can kill printf with SIGPIPE and fail the match.
  if grep -qE -- "$2" <<<"$1"; then
    ok 0 "$3"
  else
    ok 1 "$3"
    diag "'$(printf '%s' "$1" | tail -3)' does not match /$2/"
    return 1
  fi
}

unlike() {
  if grep -qE -- "$2" <<<"$1"; then
    ok 1 "$3"
    diag "'$(grep -E -- "$2" <<<"$1" | head -3)' matches /$2/"
    return 1
  fi
  ok 0 "$3"
}

skip_all() {
  echo "1..0 # SKIP $*"
  exit 0
}

done_testing() {
  if [ -n "${T:-}" ] && [ -s "$T/.walship-crashes" ]; then
    ok 1 "no walship process died of a crash signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT)"
    diag "$(head -20 "$T/.walship-crashes")"
  fi
  echo "1..$_tap_n"
  [ "$_tap_failed" -eq 0 ]
}

# Free TCP ports on 127.0.0.1.
tap_free_port() {   # below the ephemeral range, registered (tests/lib/free_ports.py)
  python3 "$(dirname "${BASH_SOURCE[0]}")/free_ports.py" 1
}

# wait_for SECONDS cmd...: poll until cmd succeeds.
wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$end" ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
