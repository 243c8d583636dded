#!/bin/bash
# A restore --start interrupted (SIGTERM, as Ctrl-C or a dropped ssh
# session would) while PostgreSQL replays (adversarial pass AG): nothing is
# left that a later command takes for a finished restore, and each says
# what to do.
#   - the server restore started outlives it, still in recovery: never
#     promoted, restore's settings and recovery.signal in place;
#   - a second restore into the directory refuses it (exit 2, "not empty");
#   - walship promote refuses it (exit 2) and says how to finish by hand
#     (pg_wal_replay_resume after checking where it stopped).
# A PostgreSQL 15 archiving into one file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT RPORT <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/rs"
ws_key "$T/key"
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/p.conf" "$@"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
rsql() { PGCONNECT_TIMEOUT=5 pg_run "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$RPORT" -U postgres -d postgres -c "$1" 2>/dev/null; }
on_exit "ws_stop_daemons '$T'"
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "[ -f '$T/rs/d/postmaster.pid' ] && pg_run '$PG_BIN/pg_ctl' -D '$T/rs/d' -m immediate -w stop >/dev/null 2>&1"

sql "create table t (id int, pad text)"
t "backup-push" ws backup-push
# replay long enough to be caught in the middle of it
sql "insert into t select g, repeat('x', 200) from generate_series(1, 300000) g"
sql "select pg_switch_wal()" >/dev/null
wait_for 60 test -n "$(ls "$T/r1/wal" | sort | grep -E '^0{7}1.{16}$' | tail -n +8)"

# the restore, its PID known (as the PostgreSQL user: no runuser in between)
pg_run bash -c 'echo $$ >"$1"; exec "$2" --config "$3" restore --pgdata "$4" --start --port "$5"' _ \
  "$T/rs/rpid" "$WALSHIP" "$T/p.conf" "$T/rs/d" "$RPORT" >"$T/r.out" 2>"$T/r.err" &
RUNNER=$!
wait_for 60 test -s "$T/rs/rpid"
RPID=$(cat "$T/rs/rpid")
# as soon as the server runs, end restore: the server replays on
i=0
while [ ! -f "$T/rs/d/postmaster.pid" ] && [ "$i" -lt 6000 ] && kill -0 "$RPID" 2>/dev/null; do sleep 0.01; i=$((i + 1)); done
kill -TERM "$RPID" 2>/dev/null
inrec() { [ "$(rsql 'select pg_is_in_recovery()')" = t ]; }
paused() { [ "$(rsql 'select pg_get_wal_replay_pause_state()')" = paused ]; }
wait_for 60 paused
wait "$RUNNER"
st=$?
[ "$st" -ne 0 ]
ok $? "restore --start ended by SIGTERM during recovery: not exit 0 ($st)" || diag "$(tail -3 "$T/r.err")"
is "$(rsql 'select pg_is_in_recovery(), pg_get_wal_replay_pause_state()')" "t|paused" \
  "... the server it started replayed on and paused at the target: in recovery, not promoted"
[ -f "$T/rs/d/recovery.signal" ] && grep -q '^recovery_target_action' "$T/rs/d/postgresql.auto.conf"
ok $? "... its recovery settings and recovery.signal are still there"
t_fail "a second restore into the directory refuses it (exit 2)" 2 \
  ws restore --pgdata "$T/rs/d" --start --port "$RPORT"
like "$T_OUT" "not empty" "... saying it is not empty"
t_fail "walship promote refuses it (exit 2)" 2 pg_run "$WALSHIP" promote "$T/rs/d" --timeout 30
like "$T_OUT" "interrupted.*pg_wal_replay_resume" "... and says how to finish an interrupted restore"
is "$(rsql 'select pg_is_in_recovery()')" t "... still not promoted"

done_testing
