#!/usr/bin/env bash
# A cluster that keeps its configuration outside its data directory
# (Debian's /etc/postgresql/15/main): its backups hold no postgresql.conf
# and no pg_hba.conf, and PostgreSQL cannot start from the restored
# directory alone.  restore --start used to fetch the whole backup, start,
# and fail on PostgreSQL's "could not access the server configuration
# file"; now it refuses before fetching anything (exit 2), and a restore
# without --start says how to start the instance.  The instance then
# started with the outside configuration recovers to the end of the
# archive.  file:// region, one real PostgreSQL.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT RPORT <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo" "$T/etc" "$T/rs"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "pgdata = $T/pg/data" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" r1 "file://$T/repo"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
on_exit "ws_stop_daemons '$T'"

# the Debian layout: the configuration in etc/, naming the data directory
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
mv "$T/pg/data/postgresql.conf" "$T/pg/data/pg_hba.conf" "$T/pg/data/pg_ident.conf" "$T/etc/"
{
  echo "data_directory = '$T/pg/data'"
  echo "hba_file = '$T/etc/pg_hba.conf'"
  echo "ident_file = '$T/etc/pg_ident.conf'"
  echo "port = $PGPORT"
  echo "archive_mode = on"
  echo "archive_command = '$WALSHIP --config $CONF wal-push %p'"
} >>"$T/etc/postgresql.conf"
chown -R "$(pg_user)" "$T/etc"
pg_run "$PG_BIN/pg_ctl" -D "$T/etc" -l "$T/pg/server.log" -w -t 60 start >/dev/null ||
  { tail -20 "$T/pg/server.log"; echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_run $PG_BIN/pg_ctl -D $T/etc -m immediate -w stop >/dev/null 2>&1"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

sql "create table t (x int)"
t "backup-push of a cluster configured from outside its data directory" ws backup-push
sql "insert into t select generate_series(1, 1000)"
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "[ -e '$T/repo/wal/$last' ]"
ok $? "the WAL after the backup is archived ($last)"

out=$(ws restore --pgdata "$T/rs/a" --target-latest --start --port "$RPORT" 2>&1)
rc=$?
is "$rc" 2 "restore --start of such a backup: refused (exit 2)"
like "$out" "has no postgresql.conf and pg_hba.conf" "... naming what the backup lacks"
like "$out" "nothing was fetched" "... before fetching"
[ ! -e "$T/rs/a/base" ] && [ ! -e "$T/rs/a/backup_label" ]
ok $? "... and nothing was fetched"
[ ! -e "$T/rs/a/postmaster.pid" ]
ok $? "... nor started"

out=$(ws restore --pgdata "$T/rs/a" --target-latest 2>&1)
rc=$?
is "$rc" 0 "restore without --start into the same directory: done"
like "$out" "NOTE: the backup has no postgresql.conf and pg_hba.conf" "... with a note on how to start it"
like "$out" "must hold no recovery settings" "... and on the outside configuration's recovery settings"

# run as root: PostgreSQL never starts on what root restores
if [ "$(id -u)" -eq 0 ]; then
  out=$("$WALSHIP" --config "$CONF" restore --pgdata "$T/rs/root" --target-latest --start --port "$RPORT" 2>&1)
  is "$?" 2 "restore --start as root: refused (exit 2)"
  like "$out" "does not run as root.*sudo -u postgres" "... saying to run it as the server's user"
  [ ! -e "$T/rs/root" ]; ok $? "... before anything was fetched (the directory not even made)"
  out=$("$WALSHIP" --config "$CONF" backup-fetch LATEST "$T/rs/root2" 2>&1)
  is "$?" 0 "backup-fetch as root: done"
  like "$out" "belong to root.*chown -R postgres: $T/rs/root2" "... with a warning naming the chown PostgreSQL needs"
else
  diag "not root: the restore-as-root checks are not run"
fi

# started as the note says, with the configuration copied in
pg_run "$PG_BIN/pg_ctl" -D "$T/etc" -m fast -w stop >/dev/null 2>&1
grep -v -E '^(data_directory|hba_file|ident_file|port|archive_mode|archive_command) ' "$T/etc/postgresql.conf" \
  >"$T/rs/a/postgresql.conf"
cp "$T/etc/pg_hba.conf" "$T/etc/pg_ident.conf" "$T/rs/a/"
ws_own "$T/rs/a"
pg_run "$PG_BIN/pg_ctl" -D "$T/rs/a" -l "$T/rs/server.log" -o "-p $RPORT" -w -t 120 start >/dev/null
ok $? "the restored instance starts with the configuration copied in"
on_exit "pg_run $PG_BIN/pg_ctl -D $T/rs/a -m immediate -w stop >/dev/null 2>&1"
wait_for 120 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $RPORT -U postgres -d postgres -c 'select pg_is_in_recovery()' 2>/dev/null)\" = f ]"
ok $? "... recovers to the end of the archive and promotes"
is "$(pg_sql "$T/pg" "$RPORT" "select count(*) from t" 2>&1)" 1000 "... with every row archived"

done_testing
