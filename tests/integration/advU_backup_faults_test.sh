#!/bin/bash
# Adversarial pass U: backup-push's failures around the server.  The stop
# segment not archivable in one region, then in none: never a complete
# backup where the WAL is missing.  Two backup-push at once, with their own
# spool directories (two hosts, or two configurations) and the same second:
# never one folder for both (each claims its name, backups/NAME/claim,
# before anything else; seen in CI: both failed, one manifest in each
# region, under one name).  backup-push killed while the backup runs on
# the server: the session's backup ends, and no manifest appears.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"   # free_ports
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT <<<"$(free_ports 1)"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/spool2" "$T/repo1" "$T/repo2"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "compression = zstd:1" "archive_timeout = 5" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo1" "mode = sync"
ws_region "$CONF" two "file://$T/repo2" "mode = sync"
sed "s|spool_dir = .*|spool_dir = $T/spool2|" "$CONF" >"$T/walship2.conf"
chmod 600 "$T/walship2.conf"; chown "$(pg_user)" "$T/walship2.conf"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" -k || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
sql "create table t as select generate_series(1, 100000) g"
t "a first backup" ws backup-push
manifests() { find "$T/$1/backups" -name manifest.json | wc -l; }
in_backup() { sql "select count(*) from pg_stat_activity where backend_type = 'client backend' and query ~ 'pg_backup_start|pg_backup_stop' and pid <> pg_backend_pid()"; }

# ---- the stop segment cannot be archived in region two ----
# Not before PostgreSQL archived everything the first backup left: its
# backup history file (.backup) is archived after its stop segment, which
# is all backup-push waits for.  Failing in region two, that file held
# PostgreSQL's archiver (it retries the oldest file, and archives nothing
# after it), the new stop segment reached neither region, and the case
# below failed for the wrong reason (seen in CI under load).
nothing_ready() { ! ls "$T/pg/data/pg_wal/archive_status" | grep -q '\.ready$'; }
# After failures PostgreSQL's archiver waits up to 60 s before it tries
# again: a WAL switch wakes it, then everything is archived.  (The
# backup-push that follows gives its stop segment archive_timeout = 5 s,
# and a backlog of failed files comes first.)
drain_archive() {
  sql "select txid_current()" >/dev/null && sql "select pg_switch_wal()" >/dev/null
  wait_for 60 nothing_ready
}
wait_for 60 nothing_ready
ok $? "PostgreSQL archived everything the first backup left (its .backup file too)"
chmod 0555 "$T/repo2/wal"
ws backup-push >"$T/out" 2>&1
st=$?
is "$st" 3 "region two cannot take the stop segment: backup-push exits 3"
like "$(cat "$T/out")" "not complete in 1 region \(two\)" "naming region two" || diag "$(tail -3 "$T/out")"
is "$(manifests repo2)" 1 "no manifest of it in region two"
is "$(manifests repo1)" 2 "region one, which has the WAL, has it"

# ---- ... and in no region ----
chmod 0555 "$T/repo1/wal"
ws backup-push >"$T/out" 2>&1
st=$?
is "$st" 3 "no region can take the stop segment: backup-push exits 3"
like "$(cat "$T/out")" "not complete in 2 regions" "naming both" || diag "$(tail -3 "$T/out")"
is "$(manifests repo1)/$(manifests repo2)" "2/1" "and no new manifest anywhere"
chmod 0755 "$T/repo1/wal" "$T/repo2/wal"
drain_archive
ok $? "archiving recovers"

# ---- killed while the backup runs on the server ----
# (by the PID in its lock: pg_run's runuser would survive a kill and leave
# walship running)
sql "create table big as select g, md5(g::text) v from generate_series(1, 1500000) g"
LOCK=$T/spool/$(pg_sysid "$T/pg")/backup.lock
kill_during() {   # LABEL CONDITION-SCRIPT
  local before pid old
  before=$(manifests repo1)
  old=$(ls "$T/repo1/backups" | tail -1)
  pg_run "$WALSHIP" --config "$CONF" backup-push >"$T/killed.out" 2>&1 &
  pid=$!
  wait_for 60 bash -c "$2"
  ok $? "$1: the point to kill it is reached" || diag "$(tail -3 "$T/killed.out")"
  ws_kill_lock_holder -KILL "$LOCK"
  ok $? "$1: backup-push killed"
  wait "$pid" 2>/dev/null
  wait_for 30 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -c \"select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()\")\" = 0 ]"
  ok $? "$1: the killed backup-push's session is gone"
  t "$1: a new backup can start and stop (none is left running)" sql "select pg_backup_start('probe', true); select pg_backup_stop(false)"
  is "$(manifests repo1)" "$before" "$1: no manifest from the killed backup-push"
}
n_dirs=$(ls "$T/repo1/backups" | wc -l)
# a new folder with more than its name's claim in it: parts are on the way
kill_during "while it copies files" "[ \$(ls $T/repo1/backups | wc -l) -gt $n_dirs ] &&
  [ -n \"\$(ls -A $T/repo1/backups/\$(ls $T/repo1/backups | tail -1) | grep -v '^claim\$')\" ]"
chmod 0555 "$T/repo1/wal" "$T/repo2/wal"
# a backup history file newer than any before (not a count: the backup's
# own checkpoint removes the archived ones)
last_hist=$(ls "$T/pg/data/pg_wal/" | grep '\.backup$' | tail -1)
kill_during "while it waits for the stop segment" \
  "[[ \"\$(ls $T/pg/data/pg_wal/ | grep '\\.backup\$' | tail -1)\" > '$last_hist' ]]"
chmod 0755 "$T/repo1/wal" "$T/repo2/wal"
drain_archive
ok $? "archiving recovers again"

# ---- a tablespace created while the backup runs: its CREATE is replayed
# at its original path (PostgreSQL empties it first), which
# --tablespace-map cannot move: backup-push says so ----
mkdir -p "$T/ts_new"; chown "$(pg_user)" "$T/ts_new"
n_dirs=$(ls "$T/repo1/backups" | wc -l)
pg_run "$WALSHIP" --config "$CONF" backup-push >"$T/ts.out" 2>&1 &
pid=$!
wait_for 60 bash -c "[ \$(ls $T/repo1/backups | wc -l) -gt $n_dirs ] &&
  [ -n \"\$(ls -A $T/repo1/backups/\$(ls $T/repo1/backups | tail -1) | grep -v '^claim\$')\" ]"
sql "create tablespace ts_new location '$T/ts_new'"
if kill -0 "$pid" 2>/dev/null; then
  wait "$pid"
  is "$?" 0 "backup-push during which a tablespace was created succeeds"
  like "$(cat "$T/ts.out")" "tablespace [0-9]+ was created while backup .* ran: .*never restore it on this host" \
    "and warns that a restore replays its creation at its original path"
else
  wait "$pid"
  ok 0 "a tablespace created while the backup runs # SKIP the backup finished first"
  ok 0 "# SKIP"
fi
t "a backup after it" ws backup-push
unlike "$T_OUT" "was created while backup" "does not warn again"
# an in-place tablespace (allow_in_place_tablespaces, PostgreSQL 15: a
# directory in pg_tblspc, never in the tablespace map) is inside PGDATA:
# no warning about it
sql "alter system set allow_in_place_tablespaces = on" >/dev/null
sql "select pg_reload_conf()" >/dev/null
sleep 0.5
sql "create tablespace ts_inplace location ''" >/dev/null
[ -d "$T/pg/data/pg_tblspc/$(sql "select oid from pg_tablespace where spcname = 'ts_inplace'")" ]
ok $? "an in-place tablespace exists (a directory in pg_tblspc)"
t "a backup with an in-place tablespace" ws backup-push
unlike "$T_OUT" "was created while backup" "does not warn about it"

# ---- two backup-push at once ----
# (the second starts once the first holds the lock: after a fixed 0.3 s a
# slow start of the first let the second take it, and the first was refused)
pg_run "$WALSHIP" --config "$CONF" backup-push >"$T/first.out" 2>&1 &
first=$!
wait_for 60 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$LOCK')\" ]"
ok $? "a backup-push holds the backup lock"
t_fail "a second backup-push on the same spool is refused while one runs" 3 ws backup-push
like "$T_OUT" "another backup-push" "... saying another backup-push runs"
wait "$first"
ok $? "... and the first succeeds" || diag "$(tail -3 "$T/first.out")"
before=$(manifests repo1)
before2=$(manifests repo2)
pg_run "$WALSHIP" --config "$CONF" backup-push >"$T/a.out" 2>&1 &
a=$!
pg_run "$WALSHIP" --config "$T/walship2.conf" backup-push >"$T/b.out" 2>&1 &
b=$!
wait "$a"; sa=$?
wait "$b"; sb=$?
diag "two at once: $sa $(tail -1 "$T/a.out") / $sb $(tail -1 "$T/b.out")"
na=$(sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' "$T/a.out")
nb=$(sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' "$T/b.out")
[ -z "$na" ] || [ -z "$nb" ] || [ "$na" != "$nb" ]
ok $? "two backup-push at once never report the same backup ($na, $nb)"
is "$sa $sb" "0 0" "both succeed: the second to claim a name in the first region takes the next second's"
is "$(manifests repo1)" $((before + (sa == 0) + (sb == 0))) "one manifest for each that succeeded"
is "$(manifests repo2)" $((before2 + (sa == 0) + (sb == 0))) "and as many in the other region (never a name split between two backups)"
t "verify --full reads every backup" ws verify --full

done_testing
