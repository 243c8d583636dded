#!/bin/bash
# Adversarial pass AH: the files backup-push copies must be the server's.
# pgdata is read from the configuration, pg_conninfo reaches a server, and
# nothing tied the two together: with pgdata set to a streaming standby's
# data directory (replay paused, so its files are old) beside a
# pg_conninfo that reaches the primary, backup-push took the primary's
# backup_label over the standby's files and reported the backup complete;
# a restore replayed from the primary's start on those old files and came
# back "promoted" without most of the rows.  The same with another
# cluster's data directory.  Now the data directory's pg_control must be
# the server's cluster and must have seen the checkpoint the backup starts
# from (exit 2 otherwise, no backup listed).
# Also: a data directory whose pg_wal is a symbolic link (initdb -X) was
# backed up with a warning that pg_wal "is not in the backup" and "a
# restore will lack it", which was false.
# PostgreSQL 15 primary P (data checksums, pg_wal linked elsewhere) archiving
# to file:// r1, streaming standby S.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP SP RP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 3 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/sb" "$T/rs" "$T/walhere"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
# the primary's connection, another data directory
conf_with() {   # FILE PGDATA
  ws_conf "$1" "$(ws_pg_conninfo "$T/pg" "$PP")" "pgdata = $2"
  ws_region "$1" r1 "file://$T/r1" "mode = sync"
}
conf_with "$T/sb.conf" "$T/sb/data"
conf_with "$T/other.conf" "$T/other/data"
ln -s "$T/pg" "$T/via"
conf_with "$T/via.conf" "$T/via/data"
ws() { pg_run "$WALSHIP" --config "$T/$1.conf" "${@:2}"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
counts() { psql_p "$1" "select count(*), sum(i), count(*) filter (where pad = 'c') from t"; }
nbackups() { ws p backup-list --json 2>/dev/null | python3 -c "import json,sys; print(len(json.load(sys.stdin)[0].get('backups', [])))"; }

pg_init "$T/pg" -k -X "$T/walhere/pg_wal" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/sb immediate; pg_stop $T/other immediate; pg_stop $T/rs immediate"
psql_p "$PP" "create table t(i int, pad text); insert into t select g, 'a' from generate_series(1, 1000) g"

pg_run "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PP" -U postgres -D "$T/sb/data" -R -X stream ||
  { echo "Bail out! pg_basebackup"; exit 1; }
mkdir -p "$T/sb/sock"; ws_own "$T/sb"
# S never archives into r1 (once promoted it would be a second primary there)
printf "unix_socket_directories = '%s'\narchive_mode = off\n" "$T/sb/sock" >>"$T/sb/data/postgresql.conf"
pg_start "$T/sb" "$SP" || { echo "Bail out! standby did not start"; exit 1; }
psql_p "$SP" "select pg_wal_replay_pause()" >/dev/null
# the primary goes on; the standby's files stay at 1000 rows
psql_p "$PP" "insert into t select g, 'b' from generate_series(1001, 5000) g; update t set pad = 'c' where i < 500"
psql_p "$PP" "checkpoint"
want=$(counts "$PP")

# ---- a standby is refused, by its connection or by its files ----
WS_SPOOL=$T/spool ws_conf "$T/s.conf" "$(ws_pg_conninfo "$T/sb" "$SP")"
ws_region "$T/s.conf" r1 "file://$T/r1" "mode = sync"
t_fail "backup-push connected to the standby is refused (exit 2)" 2 ws s backup-push
like "$T_OUT" "the server is a standby" "... saying the server is a standby"

t_fail "backup-push of the standby's data directory through the primary's connection is refused (exit 2)" 2 \
  ws sb backup-push
like "$T_OUT" "is not the data directory of the server pg_conninfo reaches" "... naming the mismatch"
is "$(nbackups)" 0 "... and no backup is listed"

# ---- another cluster's data directory ----
pg_init "$T/other" || { echo "Bail out! initdb other"; exit 1; }
t_fail "backup-push of another cluster's data directory through the primary's connection is refused (exit 2)" 2 \
  ws other backup-push
like "$T_OUT" "holds cluster [0-9]+, not the cluster of the server" "... naming both clusters"
is "$(nbackups)" 0 "... and no backup is listed"

# ---- a copy promoted to a timeline of its own, its checkpoint ahead of the primary ----
psql_p "$SP" "select pg_wal_replay_resume()" >/dev/null
psql_p "$SP" "select pg_promote(true, 60)" >/dev/null
is "$(psql_p "$SP" "select pg_is_in_recovery()")" f "S promoted"
for _ in 1 2 3 4 5 6 7 8; do psql_p "$SP" "select txid_current(), pg_switch_wal()" >/dev/null; done
psql_p "$SP" "checkpoint"
ahead=$(psql_p "$SP" "select redo_lsn from pg_control_checkpoint()")
is "$(psql_p "$PP" "select '$ahead'::pg_lsn > pg_current_wal_lsn() + 16777216")" t \
  "S's last checkpoint ($ahead) is ahead of the primary's position"
t_fail "backup-push of the promoted copy's data directory through the primary's connection is refused (exit 2)" 2 \
  ws sb backup-push
like "$T_OUT" "its last checkpoint is on timeline 2, the server's on 1" "... naming the two timelines"
is "$(nbackups)" 0 "... and no backup is listed"

# ---- the right one, through a symbolic link, pg_wal linked elsewhere ----
t "backup-push of the primary's data directory named through a symbolic link" ws via backup-push
unlike "$T_OUT" "symbolic link in PGDATA \\(pg_wal\\)" "no warning that pg_wal (a link made by initdb -X) is left out"
is "$(nbackups)" 1 "one backup listed"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
t "restore of it" ws p restore --pgdata "$T/rs/data" --target-immediate --start --port "$RP"
is "$(counts "$RP")" "$want" "the restored cluster has the primary's rows at the backup ($want)"
ok "$([ -d "$T/rs/data/pg_wal" ] && [ ! -L "$T/rs/data/pg_wal" ] && echo 0 || echo 1)" \
  "the restored pg_wal is a directory"
pg_stop "$T/rs"
t "pg_checksums --check on the restored cluster" pg_run "$PG_BIN/pg_checksums" --check -D "$T/rs/data"

done_testing
