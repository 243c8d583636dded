#!/bin/bash
# `walship promote --force` of a warm standby whose region is gone for good
# (docs/RESTORE.md "Promoting it"): recovery ends where the fetches fail,
# and the promotion must complete, and say that it ended short.
#
#   - PostgreSQL, at the end of recovery, after it removed standby.signal,
#     asks restore_command for the parent timeline's history file
#     (00000001.history, which timeline 1 never has).  wal-fetch, no longer
#     in standby mode, answered the failing region with 250: the server
#     stopped halfway, without standby.signal and without its new timeline.
#   - promote reported "wal-fetch failed while it promoted" by comparing the
#     failure's time with its own start: a clock stepped back during the
#     promotion hid it (exit 0).  Here promote runs with its clock an hour
#     ahead of the server's (tests/lib/clockshift.c).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
SPORT=$(pg_free_port)
[ "$PGPORT" != "$SPORT" ] || SPORT=$((PGPORT + 1))
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/home" "$T/dr"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 2" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" home "file://$T/home" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
SB=$T/sb/data
dr() { pg_run "$WALSHIP" --from "file://$T/dr" --region dr --key-file "$T/key" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
sql() { psql_p "$PGPORT" "$1"; }
ssql() { psql_p "$SPORT" "$1"; }
archive_switch() {
  local sw
  sw=$(sql "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 test -e "$T/home/wal/$sw" || return 1
  echo "$sw"
}
ship_dr() {
  local f
  (cd "$T/home" && find . -type f ! -name '.walship-tmp-*') | while read -r f; do
    [ -e "$T/dr/$f" ] && continue
    mkdir -p "$(dirname "$T/dr/$f")"
    cp -p "$T/home/$f" "$(dirname "$T/dr/$f")/.walship-tmp-repl" && mv "$(dirname "$T/dr/$f")/.walship-tmp-repl" "$T/dr/$f"
  done
  chown -R "$(pg_user)" "$T/dr"
}
rows() { psql_p "$1" "select count(*) from t" 2>/dev/null; }
on_exit "for d in $T/pg/data $SB; do [ -f \$d/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "wal_retrieve_retry_interval = 1s"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
sql "create table t (id int)"
sql "insert into t select generate_series(1, 10)"
t "backup-push" ws backup-push
archive_switch >/dev/null
ship_dr
mkdir -p "$T/sb" && chown "$(pg_user)" "$T/sb"
t "restore --standby --start" dr restore --standby --pgdata "$SB" --port "$SPORT" --start
sql "insert into t select generate_series(11, 20)"
archive_switch >/dev/null
ship_dr
has20() { [ "$(rows "$SPORT")" = 20 ]; }
wait_for 60 has20
ok $? "the standby replays what reaches dr"

# the primary and the region lost for good
pg_stop "$T/pg" immediate
mv "$T/dr" "$T/dr.gone"
t_fail "promote --force, region gone: exit 3" 3 \
  pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=3600 "$WALSHIP" --from "file://$T/dr" --region dr \
  --key-file "$T/key" promote "$SB" --force
like "$T_OUT" "the instance IS promoted, but wal-fetch failed while it promoted" \
  "promote --force says recovery may have ended short (its clock an hour off the server's)"
[ -f "$SB/postmaster.pid" ] && kill -0 "$(head -1 "$SB/postmaster.pid")" 2>/dev/null
ok $? "the promoted server runs"
grep -q 'could not restore file "00000001.history"' "$T/sb/server.log" "$SB/walship-restore.log" 2>/dev/null
[ $? -ne 0 ]; ok $? "PostgreSQL did not stop at timeline 1's history file"
is "$(ssql "select pg_is_in_recovery()")" f "out of recovery"
is "$(rows "$SPORT")" 20 "every row the standby had replayed"
ssql "insert into t values (21)" >/dev/null; ok $? "writable"
is "$(ssql "select timeline_id from pg_control_checkpoint()")" 2 "on timeline 2"
[ ! -e "$SB/standby.signal" ] && [ ! -e "$SB/walship-promoting" ]; ok $? "no standby.signal, no promotion mark"

# wal-fetch's answer for timeline 1's history file, whatever the regions say
out=$(cd "$SB" && pg_run "$WALSHIP" --from "file://$T/dr" --region dr --key-file "$T/key" wal-fetch \
  00000001.history "$T/x.history" 2>&1)
is "$?" 1 "wal-fetch 00000001.history: 1 (no timeline 1 history exists), not 250, with the region gone"
[ ! -e "$T/x.history" ]; ok $? "... and writes nothing"

done_testing
