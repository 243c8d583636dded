# shellcheck shell=bash
# tests/lib/pg.sh — a throwaway PostgreSQL 15 on 127.0.0.1 for tests.
#
#   pg_init DIR [initdb args...]       initdb into DIR/data (as the postgres user when run as root)
#   pg_conf DIR 'line'                 append a line to postgresql.conf
#   pg_start DIR PORT                  start on 127.0.0.1:PORT, wait until it accepts connections
#   pg_stop DIR [mode]                 stop (fast by default; immediate to simulate a crash)
#   pg_sql DIR PORT 'SQL'              run SQL, print tuples only, unaligned
#   pg_run CMD...                      run a command as the PostgreSQL user
#   pg_free_port                       a free TCP port on 127.0.0.1
#   pg_sysid DIR                       the cluster's system identifier (pg_controldata)
#   walseg OUT NAME SYSID [SEED [SIZE]] a synthetic WAL segment with a real page header
#
# PostgreSQL refuses to run as root, so under root every server command
# runs as "postgres" (which owns DIR).  Servers listen on 127.0.0.1 only
# and use a socket directory inside DIR.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

pg_user() {
  if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

pg_run() {
  local st a
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- env PATH="$PG_BIN:$PATH" "$@"
  else
    env PATH="$PG_BIN:$PATH" "$@"
  fi
  st=$?
  # A walship that died of SIGILL, SIGABRT, SIGBUS, SIGFPE or SIGSEGV is a
  # failure of the script whatever the case asserted (done_testing reports
  # it): no test here sends those signals.
  case $st in
    132 | 134 | 135 | 136 | 139)
      for a in "$@"; do
        if [ "$a" = "${WALSHIP:-}" ]; then
          printf '%s: %s\n' "$st" "$*" >>"${T:-${TMPDIR:-/tmp}}/.walship-crashes"
          break
        fi
      done ;;
  esac
  return "$st"
}

pg_sysid() {
  "$PG_BIN/pg_controldata" -D "$1/data" | sed -n 's/^Database system identifier: *//p'
}

walseg() {   # OUT NAME SYSID [SEED [SEG_SIZE]]
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$1" "$2" "$3" --seed "${4:-1}" --seg-size "${5:-16777216}" &&
    { [ "$(id -u)" != 0 ] || chown "$(pg_user)" "$1"; }
}

pg_free_port() {   # below the ephemeral range, registered (tests/lib/free_ports.py)
  python3 "$(dirname "${BASH_SOURCE[0]}")/free_ports.py" 1
}

pg_init() {
  local dir=$1; shift
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown "$(pg_user)" "$dir"
  pg_run "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C "$@" >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  mkdir -p "$dir/sock"
  [ "$(id -u)" = 0 ] && chown "$(pg_user)" "$dir/sock"
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
fsync = off
full_page_writes = on
max_wal_senders = 4
wal_level = replica
logging_collector = off
log_min_messages = warning
CONF
}

pg_conf() {
  echo "$2" >>"$1/data/postgresql.conf"
}

pg_start() {
  local dir=$1 port=$2
  pg_run "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null ||
    { tail -30 "$dir/server.log" >&2; return 1; }
}

pg_stop() {
  local dir=$1 mode=${2:-fast}
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pg_run "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

pg_sql() {
  local dir=$1 port=$2 sql=$3
  pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres -d postgres -c "$sql"
}
