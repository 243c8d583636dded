#!/bin/bash
# restore --config with the key given by --key-file or by WALSHIP_KEY_FILE /
# WALSHIP_OLD_KEY_FILES (a DR host that keeps the key off its configuration
# file): the restore_command restore writes must carry that key, since the
# restored instance runs it with neither the flag nor the environment.
# Before, it named only --config: restore fetched the backup with the key,
# and PostgreSQL's first wal-fetch failed ("no key_file is configured",
# exit 250), so restore --start exited 3 and a restore without --start
# left an instance that could not recover (found by adversarial pass M).
# One file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo" "$T/r1" "$T/r2" "$T/r3"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_key "$T/newkey" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" local "file://$T/repo" "mode = sync"
# the DR host's configuration: the same region, no key_file
NOKEY=$T/nokey.conf
printf '[global]\nspool_dir = %s\n\n[region local]\nurl = file://%s\n' "$T/spool-dr" "$T/repo" >"$NOKEY"
chmod 600 "$NOKEY" && chown "$(pg_user)" "$NOKEY"
ws_mkdirs "$T/spool-dr"
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

sql "create table t(i int)" >/dev/null
t "backup-push" pg_run "$WALSHIP" --config "$CONF" backup-push
sql "insert into t select generate_series(1, 100)" >/dev/null
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -f "$T/repo/wal/$last"
ok $? "the WAL after the backup is archived ($last)"
pg_stop "$T/pg"

psql_on() {   # PORT SQL
  pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2" 2>/dev/null
}
# Started by PostgreSQL (pg_ctl), not by restore --start: restore's own
# prefetcher holds the key and could hand the segments over first.
recovers() {   # DIR PORT: start the restored instance; it must promote with every row
  pg_start "$1" "$2" || return 1
  wait_for 60 bash -c "[ \"\$(runuser -u $(pg_user) -- '$PG_BIN/psql' -X -At -h '$T/pg/sock' -p $2 -U postgres -d postgres \
    -c 'select pg_is_in_recovery()' 2>/dev/null)\" = f ]"
}
on_exit "pg_stop $T/r1 immediate"
on_exit "pg_stop $T/r2 immediate"

# ---- --key-file with --config ----
P1=$(pg_free_port)
t "restore --config (no key_file) --key-file K" \
  pg_run "$WALSHIP" --config "$NOKEY" --key-file "$T/key" restore --pgdata "$T/r1/data" --target-latest
like "$(cat "$T/r1/data/postgresql.auto.conf")" "--key-file'' ''$T/key''" "restore_command carries --key-file"
recovers "$T/r1" "$P1"
ok $? "PostgreSQL recovers through that restore_command and promotes"
is "$(psql_on "$P1" "select count(*) from t")" 100 "every row is back"
pg_stop "$T/r1"

# ---- WALSHIP_KEY_FILE (a new key) and WALSHIP_OLD_KEY_FILES (the one the archive was written with) ----
P2=$(pg_free_port)
t "restore --config with WALSHIP_KEY_FILE and WALSHIP_OLD_KEY_FILES" \
  pg_run env WALSHIP_KEY_FILE="$T/newkey" WALSHIP_OLD_KEY_FILES="$T/key" \
  "$WALSHIP" --config "$NOKEY" restore --pgdata "$T/r2/data" --target-latest
like "$(cat "$T/r2/data/postgresql.auto.conf")" "WALSHIP_OLD_KEY_FILES=''$T/key''" "restore_command carries the old keys"
recovers "$T/r2" "$P2"
ok $? "PostgreSQL recovers through that restore_command and promotes"
is "$(psql_on "$P2" "select count(*) from t")" 100 "every row is back"
pg_stop "$T/r2"

# ---- a key_file from the file stays the file's: no --key-file pinned ----
t "restore --config with key_file in the file" \
  pg_run "$WALSHIP" --config "$CONF" restore --pgdata "$T/r3/data" --target-latest
unlike "$(cat "$T/r3/data/postgresql.auto.conf")" "key-file|WALSHIP_" \
  "restore_command names only --config when the key is the file's (a later key rotation there reaches it)"

done_testing
