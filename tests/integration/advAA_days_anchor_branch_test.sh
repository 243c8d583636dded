#!/bin/bash
# retain_days' anchor and a drill's backup (adversarial pass AA).
# retain_days keeps the window's anchor: the newest full backup that
# stopped at or before the window's start, so that the window's oldest
# points can be restored.  It was chosen by stop time alone, whatever its
# branch: a drill restored with --keep-archive that took a backup into
# production's region a little before the window's start became the
# anchor, and production's own last backup before the window went, with
# the WAL from its start.  Production's points from the window's start to
# its next backup could then be restored from nothing, exit 0.
# Times: an LD_PRELOAD shim sets walship's clock back (tests/lib/clockshift.c).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
on_exit "ws_stop_daemons '$T'"
SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM" || skip_all "no C compiler for the clock shim"
DAY=86400

PGPORT=$(pg_free_port)
P2=$(pg_free_port)
P3=$(pg_free_port)
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/spool2" "$T/r1"
ws_key "$T/key"
ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "delete_after_backup = false"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync" "retain_days = 2"
# the drill's own configuration: its server, its spool, the same region
WS_SPOOL=$T/spool2 ws_conf "$T/drill.conf" "pg_conninfo = host=$T/pg/sock port=$P2 user=postgres dbname=postgres" \
  "delete_after_backup = false"
ws_region "$T/drill.conf" r1 "file://$T/r1" "mode = sync" "retain_days = 2"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
ws_at() { local s=$1; shift; pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS="$s" "$WALSHIP" "$@"; }
took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/x*/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
sqlp() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
sql() { sqlp "$PGPORT" "$1"; }
switch_and_wait() {   # [PORT]
  local last
  last=$(sqlp "${1:-$PGPORT}" "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 test -e "$T/r1/wal/$last"
}
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }

sql "create table marker (id int primary key)"
sql "insert into marker values (1)"
switch_and_wait
t "production's backup P2, three days ago" ws_at $((-3 * DAY)) --config "$CONF" backup-push
PB2=$(took)

# a drill from P2, archiving into production's region, backs itself up
d2=$(newdir x2)
t "a drill: restore, archiving on" ws restore --pgdata "$d2" --target-latest --keep-archive --start --port "$P2"
sqlp "$P2" "insert into marker values (900)"
switch_and_wait "$P2"; ok $? "the drill archives timeline 2 into r1"
t "the drill's backup D, 2.2 days ago" ws_at $((-22 * DAY / 10)) --config "$T/drill.conf" backup-push
DB=$(took)
pg_run "$PG_BIN/pg_ctl" -D "$d2" -m fast -w stop >/dev/null 2>&1

# production goes on: a point inside the window, then its next backup
sql "insert into marker values (2)"
L=$(sql "select pg_current_wal_insert_lsn()")
switch_and_wait
sql "insert into marker values (3)"
switch_and_wait
t "production's backup P3, a day ago" ws_at $((-1 * DAY)) --config "$CONF" backup-push
PB3=$(took)
sql "insert into marker values (4)"
switch_and_wait
is "$(ls "$T/r1/backups" | tr '\n' ' ')" "$PB2 $DB $PB3 " "three backups: P2 ($PB2), the drill's D ($DB), P3 ($PB3)"

t "delete --dry-run (retain_days = 2)" ws delete --dry-run
unlike "$T_OUT" "would delete backup $PB2" "P2, production's last backup before the window, is not planned for deletion"
t "delete" ws delete
[ -e "$T/r1/backups/$PB2/manifest.json" ]; ok $? "P2 is kept"
S2=$(ws backup-list --json 2>/dev/null | python3 -c 'import json, sys
for r in json.load(sys.stdin):
    for b in r["backups"]:
        if b["name"] == sys.argv[1]: print(b["start_wal"])' "$PB2")
[ -n "$S2" ] && [ -e "$T/r1/wal/$S2" ]; ok $? "...with the WAL from its start ($S2)"

# production's point inside the window, before P3: from P2 only
d3=$(newdir x3)
t "restore production to $L (inside the window, before P3)" \
  ws restore --pgdata "$d3" --target-lsn "$L" --target-timeline 1 --start --port "$P3"
like "$T_OUT" "$PB2" "...from P2"
is "$(sqlp "$P3" "select string_agg(id::text, ',' order by id) from marker")" "1,2" "...with production's marker 2"
pg_run "$PG_BIN/pg_ctl" -D "$d3" -m fast -w stop >/dev/null 2>&1

done_testing
