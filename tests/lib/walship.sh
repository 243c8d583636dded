# shellcheck shell=bash
# tests/lib/walship.sh — the integration fixture: walship's configuration,
# key, ownership, regions and PostgreSQL archiving, and its own processes.
# Source tests/lib/tap.sh and tests/lib/pg.sh first.
#
#   ws_key PATH                       a new key file (mode 0600), owned by
#                                     the PostgreSQL user
#   ws_mkdirs DIR...                  mkdir -p, owned by the PostgreSQL user
#   ws_own PATH...                    chown -R to the PostgreSQL user
#   ws_conf OUT [LINE...]             a configuration file (mode 0600, owned
#                                     by the PostgreSQL user) whose [global]
#                                     has key_file = $WS_KEY, spool_dir =
#                                     $WS_SPOOL, parallel = $WS_PARALLEL
#                                     (defaults $T/key, $T/spool, 2) and then
#                                     each LINE ("name = value")
#   ws_region OUT NAME URL [LINE...]  append a [region NAME] with url = URL
#                                     and each LINE ("mode = sync", ...)
#   ws_pg_conninfo PGDIR PORT         the pg_conninfo line for a server of
#                                     tests/lib/pg.sh (socket in PGDIR/sock)
#   ws_pg_archiving PGDIR CONF        archive_mode on, archive_command
#                                     wal-push with CONF
#   ws_fake_pgdata DIR SYSID          a data directory without a server:
#                                     global/pg_control naming SYSID,
#                                     PG_VERSION 15, pg_wal/archive_status
#
#   ws_lock_pid LOCKFILE              the PID a lock file names, if that
#                                     process is alive and is a walship
#                                     (prints nothing otherwise)
#   ws_kill_lock_holder [-SIG] LOCKFILE
#                                     signal (default TERM) the walship that
#                                     holds LOCKFILE; 1 if none does
#   ws_stop_daemons DIR...            stop every background shipper and
#                                     wal-fetch prefetcher whose lock file is
#                                     under one of DIRs (a spool_dir, a pg_wal,
#                                     or the test's whole $T), and wait until
#                                     they are gone
#
# walship writes the PID of whoever holds a lock into the lock file
# (docs/OPERATIONS.md §6): SPOOL/SYSID/ship.lock for the shipper,
# SPOOL/SYSID/backup.lock for backup-push, SPOOL/SYSID/claims/SEGMENT for
# the wal-push archiving SEGMENT, and pg_wal/.walship-prefetch/.lock for
# the prefetcher.  Processes are only ever signalled by that PID, and only
# when /proc/PID/cmdline says the process is a walship: never by pattern.

ws_lock_pid() {
  local f=$1 pid exe
  [ -r "$f" ] || return 0
  read -r pid <"$f" 2>/dev/null || return 0
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 0
  exe=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)
  case "${exe##*/}" in
    walship | lt-walship) echo "$pid" ;;
  esac
}

ws_kill_lock_holder() {
  local sig=-TERM pid
  case "$1" in -*) sig=$1; shift ;; esac
  pid=$(ws_lock_pid "$1")
  [ -n "$pid" ] || return 1
  kill "$sig" "$pid" 2>/dev/null
}

# Wait until none of the PIDs runs any more (up to $2 tenths of a second).
_ws_wait_gone() {
  local pids=$1 tenths=$2 p alive
  while [ "$tenths" -gt 0 ]; do
    alive=
    for p in $pids; do
      [ -d "/proc/$p" ] && alive=1
    done
    [ -z "$alive" ] && return 0
    sleep 0.1
    tenths=$((tenths - 1))
  done
  return 1
}

ws_stop_daemons() {
  local d f pid pids=
  for d in "$@"; do
    [ -d "$d" ] || continue
    while IFS= read -r f; do
      pid=$(ws_lock_pid "$f")
      [ -n "$pid" ] && pids="$pids $pid"
    done < <(find "$d" \( -path '*/.walship-prefetch/.lock' -o -name ship.lock -o -name archd.lock \) -type f 2>/dev/null)
  done
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  _ws_wait_gone "$pids" 50 && return 0
  for pid in $pids; do   # still a walship (not a reused PID)?
    case "$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)" in
      */walship | walship | */lt-walship) kill -KILL "$pid" 2>/dev/null ;;
    esac
  done
  _ws_wait_gone "$pids" 20
}

ws_key() {
  "$WALSHIP" keygen "$1" >/dev/null 2>&1 || return 1
  chmod 600 "$1"
  chown "$(pg_user)" "$1"
}

ws_mkdirs() {
  mkdir -p "$@" && chown -R "$(pg_user)" "$@"
}

ws_own() {
  chown -R "$(pg_user)" "$@"
}

ws_conf() {
  local out=$1 line
  shift
  {
    printf '[global]\nkey_file = %s\nspool_dir = %s\nparallel = %s\n' \
      "${WS_KEY:-$T/key}" "${WS_SPOOL:-$T/spool}" "${WS_PARALLEL:-2}"
    for line in "$@"; do printf '%s\n' "$line"; done
  } >"$out"
  chmod 600 "$out"
  chown "$(pg_user)" "$out"
}

ws_region() {
  local out=$1 name=$2 url=$3 line
  shift 3
  {
    printf '\n[region %s]\nurl = %s\n' "$name" "$url"
    for line in "$@"; do printf '%s\n' "$line"; done
  } >>"$out"
}

ws_pg_conninfo() {
  printf 'pg_conninfo = host=%s port=%s user=postgres dbname=postgres' "$1/sock" "$2"
}

ws_pg_archiving() {
  pg_conf "$1" "archive_mode = on"
  pg_conf "$1" "archive_command = '$WALSHIP --config $2 wal-push %p'"
}

# ws_copy_pair: the two-region setting of the copy tests.  A PostgreSQL 15
# on a free port ($PGPORT) archiving into file:// region r1 ($T/p.conf,
# its conninfo in $CI), and $T/copy.conf naming r1 and r2 ($T/r1, $T/r2)
# for `walship copy`.  Defines wc2 (walship with copy.conf), sql (one
# query) and took (the name of the backup $T_OUT reports).  Bails out when
# PostgreSQL does not start.
ws_copy_pair() {
  PGPORT=$(pg_free_port)
  ws_mkdirs "$T/spool" "$T/r1" "$T/r2"
  ws_key "$T/key"
  CI=$(ws_pg_conninfo "$T/pg" "$PGPORT")
  ws_conf "$T/p.conf" "$CI"
  ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
  ws_conf "$T/copy.conf"
  ws_region "$T/copy.conf" r1 "file://$T/r1"
  ws_region "$T/copy.conf" r2 "file://$T/r2"
  wc2() { pg_run "$WALSHIP" --config "$T/copy.conf" "$@"; }
  sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
  took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }
  pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
  ws_pg_archiving "$T/pg" "$T/p.conf"
  pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
  on_exit "pg_stop $T/pg immediate"
}

# Build tests/lib/clockshift.c into $1 (an LD_PRELOAD shim: the process's
# wall clock runs CLOCKSHIFT_SECONDS seconds off).  Fails when no C
# compiler is found.  Under ASan the runtime must come first or not be
# checked: verify_asan_link_order=0 is added to ASAN_OPTIONS.
ws_clockshift_build() {
  "${CC:-cc}" -shared -fPIC -O2 -o "$1" "$TOP_SRCDIR/tests/lib/clockshift.c" -ldl >/dev/null 2>&1 || return 1
  chmod 755 "$1"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# Build tests/lib/renamehook.c into $1 (an LD_PRELOAD shim: another writer
# removes RENAMEHOOK_UNLINK just before the process first publishes a file
# ending with RENAMEHOOK_SUFFIX).
ws_renamehook_build() {
  "${CC:-cc}" -shared -fPIC -O2 -o "$1" "$TOP_SRCDIR/tests/lib/renamehook.c" -ldl >/dev/null 2>&1 || return 1
  chmod 755 "$1"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# Build tests/lib/fsynchook.c into $1 (an LD_PRELOAD shim: fsync of a
# directory fails with EIO once a file named FSYNCHOOK_NAME is in it).
ws_fsynchook_build() {
  "${CC:-cc}" -shared -fPIC -O2 -o "$1" "$TOP_SRCDIR/tests/lib/fsynchook.c" -ldl >/dev/null 2>&1 || return 1
  chmod 755 "$1"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# Build tests/lib/keyswap.c into $1 (an LD_PRELOAD shim: KEYSWAP_NEW is
# renamed over KEYSWAP_PATH right after the process first opens it).
ws_keyswap_build() {
  "${CC:-cc}" -shared -fPIC -O2 -o "$1" "$TOP_SRCDIR/tests/lib/keyswap.c" -ldl >/dev/null 2>&1 || return 1
  chmod 755 "$1"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

ws_fake_pgdata() {   # DIR SYSID
  mkdir -p "$1/global" "$1/pg_wal/archive_status" || return
  python3 - "$1/global/pg_control" "$2" <<'PY'
import struct, sys
b = bytearray(8192)
b[0:8] = struct.pack('<Q', int(sys.argv[2]))
open(sys.argv[1], 'wb').write(b)
PY
  echo 15 >"$1/PG_VERSION"
}

ws_fake_ready() {   # PGDATA SYSID NAME SEED: a 1 MiB segment, .ready as PostgreSQL marks it
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$1/pg_wal/$3" "$3" "$2" --seed "$4" --seg-size 1048576 >/dev/null &&
    touch "$1/pg_wal/archive_status/$3.ready"
}
