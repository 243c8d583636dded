#!/bin/bash
# A timeline that forks off INSIDE a backup's run (adversarial pass AA).
# Backup B runs from LSN s to e on timeline 1; a point-in-time restore to a
# point between them (from the older backup A: B ended after the target),
# kept archiving (--keep-archive), promotes to timeline 2, which forks off
# timeline 1 between s and e.  PostgreSQL cannot replay B onto timeline 2:
# B's end record is on timeline 1 after the fork ("online backup was
# canceled, recovery cannot continue").  Only A leads to timeline 2.
#
# Retention counted B as a way to timeline 2 (it starts on its path) and,
# with retain_full = 1, deleted A and the WAL from A's start: timeline 2
# (a drill, or production after a rollback) could no longer be restored,
# exit 0.  verify followed B along timeline 2, a path B cannot take, and
# never looked at B's own timeline after the fork: B's stop segment could
# be missing and verify said OK.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
on_exit "ws_stop_daemons '$T'"

PGPORT=$(pg_free_port)
P2=$(pg_free_port)
P3=$(pg_free_port)
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/r1" "$T/out"
ws_key "$T/key"
ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "delete_after_backup = false"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync" "retain_full = 1"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/x*/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
# the restored instances keep the primary's unix_socket_directories
sqlp() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
switch_and_wait() {   # [PORT]
  local last
  last=$(sqlp "${1:-$PGPORT}" "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 test -e "$T/r1/wal/$last"
}
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }
lsn() { python3 -c 'import sys; h, l = sys.argv[1].split("/"); print((int(h, 16) << 32) | int(l, 16))' "$1"; }
hexlsn() { python3 -c 'import sys; v = int(sys.argv[1]); print("%X/%X" % (v >> 32, v & 0xffffffff))' "$1"; }

sql "create table marker (id int primary key)"
sql "create table w (id serial primary key, pad text)"
sql "insert into marker values (1)"
switch_and_wait
t "backup A" ws backup-push
A=$(ls "$T/r1/backups")
sleep 1.1
sql "insert into marker values (2)"
# some data, so that B runs a while, and a writer all through B
sql "create table big as select g, repeat('x', 400) pad from generate_series(1, 50000) g"
switch_and_wait
(while [ ! -e "$T/stop" ]; do sqlp "$PGPORT" "insert into w (pad) values (repeat('y', 200))" >/dev/null 2>&1; done) &
WRITER=$!
on_exit "touch $T/stop; kill $WRITER 2>/dev/null"
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select count(*) from w')\" -gt 20 ]"
t "backup B, while a writer runs" ws backup-push
touch "$T/stop"
wait "$WRITER"
B=$(ls "$T/r1/backups" | grep -v "^$A\$")
sql "insert into marker values (3)"
switch_and_wait

t "B's label" ws st get "backups/$B/backup_label" "$T/out/label_b"
CKPT=$(sed -n 's/^CHECKPOINT LOCATION: \([0-9A-F/]*\).*/\1/p' "$T/out/label_b")
field() {   # NAME FIELD: from backup-list --json
  ws backup-list --json 2>/dev/null | python3 -c 'import json, sys
for r in json.load(sys.stdin):
    for b in r["backups"]:
        if b["name"] == sys.argv[1]: print(b[sys.argv[2]])' "$1" "$2"
}
STOP=$(field "$B" stop_lsn)
STOPSEG=$(field "$B" stop_wal)
like "$STOP" '^[0-9A-F]+/[0-9A-F]+$' "B ($B) checkpoint $CKPT, stop $STOP"
MID=$(hexlsn $(( ($(lsn "$CKPT") + $(lsn "$STOP")) / 2 )))

# the fork: restore (from A, the newest backup that ended before MID) to
# MID, archiving on; timeline 2 writes its own marker
d2=$(newdir x2)
t "restore to $MID, inside B's run, archiving on" \
  ws restore --pgdata "$d2" --target-lsn "$MID" --keep-archive --start --port "$P2"
like "$T_OUT" "backup $A|$A" "...from backup A"
is "$(sqlp "$P2" "select timeline_id from pg_control_checkpoint()")" 2 "the restored instance runs on timeline 2"
sqlp "$P2" "insert into marker values (20)"
switch_and_wait "$P2"; ok $? "timeline 2 archives into r1"
t "timeline 2's history" ws st get wal/00000002.history "$T/out/h2"
FORK=$(awk '$1 == 1 { print $2 }' "$T/out/h2")
[ "$(lsn "$FORK")" -gt "$(lsn "$CKPT")" ] && [ "$(lsn "$FORK")" -lt "$(lsn "$STOP")" ]
ok $? "timeline 2 forks off at $FORK, after B's checkpoint ($CKPT) and before its end ($STOP)" ||
  { echo "Bail out! the fork is not inside B"; exit 1; }
pg_run "$PG_BIN/pg_ctl" -D "$d2" -m fast -w stop >/dev/null 2>&1

# ---- retention ----
t "delete --dry-run (retain_full = 1)" ws delete --dry-run
unlike "$T_OUT" "would delete backup $A" "A, the only way to timeline 2, is not planned for deletion"
like "$T_OUT" "backup $A is kept beyond the retention policy: it is the only backup from which timeline 2 can be restored" \
  "...and the dry run says why"
t "delete" ws delete
ws backup-list | grep -q "^  $A "; ok $? "A is still listed"
[ -e "$T/r1/backups/$A/manifest.json" ]; ok $? "...with its manifest"
S_A=$(field "$A" start_wal)
[ -n "$S_A" ] && [ -e "$T/r1/wal/$S_A" ]; ok $? "the WAL from A's start is kept ($S_A)"

# restore: --target-timeline 2 alone picks a backup on timeline 2's way,
# A (B, newer, cannot be replayed onto it); B named is refused up front
d3=$(newdir x3)
t "restore --target-timeline 2 --target-latest after retention" \
  ws restore --pgdata "$d3" --target-timeline 2 --target-latest --start --port "$P3"
like "$T_OUT" "$A" "...from backup A"
is "$(sqlp "$P3" "select string_agg(id::text, ',' order by id) from marker")" "1,2,20" "...with timeline 2's marker"
pg_run "$PG_BIN/pg_ctl" -D "$d3" -m fast -w stop >/dev/null 2>&1
d4=$(newdir x4)
t_fail "restore --backup B --target-timeline 2: refused before the fetch (exit 1)" 1 \
  ws restore --pgdata "$d4" --backup "$B" --target-timeline 2 --target-latest
like "$T_OUT" "timeline 2 does not descend from timeline 1, where backup $B was taken" "...saying why"
[ ! -e "$d4/PG_VERSION" ]; ok $? "...and nothing was fetched"

# ---- verify follows B along its own timeline ----
t "verify: all there" ws verify
[ -e "$T/r1/wal/$STOPSEG" ]; ok $? "B's stop segment $STOPSEG is archived on timeline 1"
mv "$T/r1/wal/$STOPSEG" "$T/stopseg"
t_fail "verify without B's stop segment: exit 3" 3 ws verify
like "$T_OUT" "PROBLEM wal/$STOPSEG: .*backup $B" "...naming the segment and backup B"
mv "$T/stopseg" "$T/r1/wal/$STOPSEG"

done_testing
