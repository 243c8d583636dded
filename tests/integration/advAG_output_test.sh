#!/bin/bash
# Output that cannot be written, and standard descriptors closed at start
# (adversarial pass AG).  A command whose output is the product (a JSON
# document, Prometheus metrics, a listing) never exits 0 after writing a
# truncated or no document; a reader that goes away (restore | head -1)
# never kills a command between two changes (SIGPIPE), nor turns its
# success into a failure; descriptors 0, 1, 2 closed by the caller (cron,
# systemd, 'wal-push %p <&- >&- 2>&-') are never reused for a file whose
# content a log line or a document could then land in.
#   - to a full disk (/dev/full): backup-list --json, status --prometheus,
#     verify --json, --version: exit 3, "could not write to standard output";
#   - into a pipe whose reader is gone with SIGPIPE ignored (a systemd
#     service: IgnoreSIGPIPE=yes): exit 3, not 0;
#   - stdout closed: backup-list exits 3; stdin closed: st put - refuses
#     and uploads nothing;
#   - restore --start | head -1: exit 0 (not 141, killed by SIGPIPE),
#     promoted, its settings removed, a warning that stdout was cut;
#   - restore 2>&1 | head -1: exit 0, the backup fetched and the recovery
#     settings written (it was killed at its second log line: an empty
#     directory, or one fetched halfway);
#   - restore with 0, 1, 2 closed: exit 0, and no log line in the restored
#     files.
# A PostgreSQL 15 archiving into one file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
[ -w /dev/full ] || skip_all "no /dev/full"

read -r PGPORT RPORT <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/rs"
ws_key "$T/key"
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "rpo_seconds = 1d" "backup_max_age = 1d"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/p.conf" "$@"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
on_exit "ws_stop_daemons '$T'"
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "pg_stop $T/rs/head immediate; pg_stop $T/rs/closed immediate"
# pg_stop takes DIR/data: the restored directories are data directories
pg_stop() {
  local d=$1/data
  [ -f "$d/postmaster.pid" ] || d=$1
  [ -f "$d/postmaster.pid" ] || return 0
  pg_run "$PG_BIN/pg_ctl" -D "$d" -m "${2:-fast}" -w -t 60 stop >/dev/null 2>&1 || true
}

sql "create table t (id int)"
sql "insert into t select generate_series(1, 5000)"
t "backup-push" ws backup-push
sql "insert into t select generate_series(5001, 6000)"
sql "select pg_switch_wal()" >/dev/null
wait_for 60 test -n "$(ls "$T/r1/wal" | grep -E '^0{7}1.{16}$' | sort | tail -n +3)"
t "precondition: status is healthy (exit 0)" ws status --prometheus
t "precondition: verify finds nothing wrong (exit 0)" ws verify --json

# ---- a full disk ----
full() {   # NAME ARGS...: the command writing to /dev/full
  local name=$1 st out
  shift
  out=$(pg_run "$WALSHIP" --config "$T/p.conf" "$@" 2>&1 >/dev/full)
  st=$?
  is "$st" 3 "$name to a full disk: exit 3, not 0"
  like "$out" "could not write to standard output" "... and it says so"
}
full "backup-list --json" backup-list --json
full "status --prometheus" status --prometheus
full "status --json" status --json
full "verify --json" verify --json
full "--version" --version

# ---- a reader gone, SIGPIPE ignored (as under systemd) ----
gone() {   # a pipe whose read end is closed before the command starts
  python3 - "$@" <<'PY'
import os, signal, subprocess, sys
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE,
                   restore_signals=False)
sys.stderr.write(p.stderr.decode(errors="replace"))
sys.exit(p.returncode)
PY
}
out=$(gone runuser -u "$(pg_user)" -- "$WALSHIP" --config "$T/p.conf" backup-list --json 2>&1)
is "$?" 3 "backup-list --json into a pipe nobody reads, SIGPIPE ignored: exit 3, not 0"
like "$out" "could not write to standard output" "... and it says so"

# ---- closed descriptors ----
ws backup-list --json >&- 2>/dev/null
is "$?" 3 "backup-list with standard output closed: exit 3 (nothing was printed)"
echo secret >"$T/probe"
ws st put - test/probe --raw <&- 2>/dev/null
st=$?
[ "$st" -ne 0 ] && [ ! -e "$T/r1/test/probe" ]
ok $? "st put - with standard input closed: refused (exit $st), nothing uploaded"

# ---- restore --start | head -1 ----
out=$( { pg_run "$WALSHIP" --config "$T/p.conf" restore --pgdata "$T/rs/head" --start --port "$RPORT" 2>"$T/head.err" |
         head -1; } )
st=${PIPESTATUS[0]}
is "$st" 0 "restore --start | head -1: exit 0, not killed by SIGPIPE"
like "$out" "^fetched backup" "... head got the first line"
is "$(PGCONNECT_TIMEOUT=10 pg_run "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$RPORT" -U postgres -d postgres \
      -c 'select pg_is_in_recovery(), count(*) from t' 2>&1)" "f|6000" "... promoted, every row there"
unlike "$(grep -v '^#' "$T/rs/head/postgresql.auto.conf")" "restore_command|recovery_target" \
  "... and restore's recovery settings removed after the promotion"
like "$(cat "$T/head.err")" "WARNING: could not write to standard output \(Broken pipe\).*status 0" \
  "... with a warning that its output was cut" || diag "$(tail -3 "$T/head.err")"
pg_stop "$T/rs/head" immediate

# ---- restore 2>&1 | head -1: its log lines into a reader gone ----
out=$( { pg_run "$WALSHIP" --config "$T/p.conf" restore --pgdata "$T/rs/log" 2>&1 | head -1; } )
st=${PIPESTATUS[0]}
is "$st" 0 "restore 2>&1 | head -1: exit 0, not killed by SIGPIPE at its next log line"
[ -f "$T/rs/log/backup_label" ] && [ -f "$T/rs/log/recovery.signal" ] &&
  grep -q '^restore_command' "$T/rs/log/postgresql.auto.conf"
ok $? "... the whole backup fetched and the recovery settings written"

# ---- restore with 0, 1, 2 closed ----
pg_run "$WALSHIP" --config "$T/p.conf" --log-level debug restore --pgdata "$T/rs/closed" <&- >&- 2>&-
is "$?" 0 "restore with standard input, output and error closed: exit 0"
found=$(grep -rlE 'walship\[[0-9]+\]|recovery settings written' "$T/rs/closed" --exclude=walship-restore.log)
is "$found" "" "... and no log line or output in any restored file"
t "... the restored directory holds the recovery settings" grep -q '^restore_command' "$T/rs/closed/postgresql.auto.conf"

done_testing
