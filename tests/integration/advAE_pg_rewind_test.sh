#!/bin/bash
# pg_rewind --restore-target-wal with walship as restore_command
# (adversarial pass AE).  pg_rewind calls restore_command with %p =
# TARGET/pg_wal/SEGMENT, and wal-fetch started its prefetcher for any DEST
# in a pg_wal: the prefetcher made, renamed and removed files in the target
# data directory while pg_rewind planned and carried out its changes, and
# pg_rewind stopped halfway: "could not remove file
# .../pg_wal/.walship-prefetch/...: No such file or directory" (a target
# left half rewound, to be rebuilt from a base backup).  Now only the
# server's own %p (pg_wal/RECOVERYXLOG) starts a prefetcher.
#
# PostgreSQL 15: primary P archiving to file:// r1 (small max_wal_size, so
# its old segments are recycled and pg_rewind must fetch them), streaming
# standby S promoted while P goes on; P rewound from S and started as S's
# standby.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP SP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/spool2" "$T/r1" "$T/sb"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/p.conf" "retry_deadline = 3" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
WS_SPOOL=$T/spool2 ws_conf "$T/s.conf" "retry_deadline = 3"
ws_region "$T/s.conf" r1 "file://$T/r1" "mode = sync"
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_conf "$T/pg" "wal_log_hints = on"
pg_conf "$T/pg" "max_wal_size = 32MB"
pg_conf "$T/pg" "min_wal_size = 32MB"
pg_conf "$T/pg" "restore_command = '$WALSHIP --config $T/p.conf --log-level info wal-fetch %f %p'"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/sb immediate"
psql_p "$PP" "create table t(i int); insert into t select generate_series(1, 1000)" >/dev/null

pg_run "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PP" -U postgres -D "$T/sb/data" -R -X stream ||
  { echo "Bail out! pg_basebackup"; exit 1; }
mkdir -p "$T/sb/sock"; ws_own "$T/sb"
sed -i "s#unix_socket_directories.*#unix_socket_directories = '$T/sb/sock'#; s#--config $T/p.conf#--config $T/s.conf#g" \
  "$T/sb/data/postgresql.conf"
pg_start "$T/sb" "$SP" || { echo "Bail out! standby did not start"; exit 1; }
psql_p "$PP" "insert into t select generate_series(1, 20000)" >/dev/null
psql_p "$PP" "select pg_switch_wal()" >/dev/null
lsn=$(psql_p "$PP" "select pg_current_wal_lsn()")
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $SP -U postgres -d postgres -c \"select pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
ok $? "S replayed P's writes"

psql_p "$SP" "select pg_promote()" >/dev/null
is "$(psql_p "$SP" 'select pg_is_in_recovery()')" f "S promoted"
# P goes on: its own WAL past the fork, archived, then recycled
for i in 1 2 3 4 5 6; do
  psql_p "$PP" "insert into t select generate_series(1, 30000)" >/dev/null
  psql_p "$PP" "select pg_switch_wal()" >/dev/null
done
psql_p "$PP" "checkpoint" >/dev/null
psql_p "$SP" "insert into t values (-1)" >/dev/null
psql_p "$SP" "checkpoint" >/dev/null   # pg_rewind reads the source's timeline from its pg_control
pg_stop "$T/pg" fast

out=$(cd / && pg_run "$PG_BIN/pg_rewind" -D "$T/pg/data" -R --restore-target-wal \
  --source-server="host=127.0.0.1 port=$SP user=postgres dbname=postgres" 2>&1); rc=$?
echo "$out" | tail -4 | sed 's/^/# /'
is "$rc" 0 "pg_rewind --restore-target-wal with walship wal-fetch: exit 0"
like "$out" "fetched 0000000100000000000000.. from region r1" "... it fetched P's recycled WAL from the archive"
[ -z "$(ls "$T/pg/data/pg_wal/.walship-prefetch" 2>/dev/null | grep -E '^[0-9A-F]{24}$')" ]
ok $? "... and no prefetcher fetched ahead into the target"

pg_start "$T/pg" "$PP" || { tail -20 "$T/pg/server.log" | sed 's/^/# /'; }
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $PP -U postgres -d postgres -c 'select count(*) from t where i = -1' 2>/dev/null)\" = 1 ]"
ok $? "the rewound P runs as S's standby and has S's row"
is "$(psql_p "$PP" 'select pg_is_in_recovery()')" t "... in recovery"

done_testing
