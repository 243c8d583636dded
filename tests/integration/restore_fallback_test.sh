#!/bin/bash
# restore from a region whose WAL stops before the newest backup's start:
# an async DR region whose shipper is behind (backup-push needs only the
# spool to hold its stop segment), the primary's site lost with its spool.
# restore chose the newest backup and refused ("WAL segment X, where backup
# B starts, is not archived"), on the worst day, though the older backup
# restores from the WAL the region holds (adversarial pass N).  Now restore
# falls back to it by itself, saying so; with --backup it does not.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP XP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/r2" "$T/x" "$T/y" "$T/z"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/c.conf" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
ws_region "$T/c.conf" r2 "file://$T/r2" "mode = sync"
# the DR host: the surviving region only
ws_conf "$T/dr.conf"
ws_region "$T/dr.conf" r2 "file://$T/r2"
ws() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
dr() { pg_run "$WALSHIP" --config "$T/dr.conf" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/x/data $T/y/data $T/z/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

psql_p "$PP" "create table m(id text)"
psql_p "$PP" "insert into m values ('A')"
t "backup B1" ws backup-push
B1=$(took)
psql_p "$PP" "insert into m values ('B')"
seg=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r2/wal/$seg"
ok $? "B is archived ($seg)"
sleep 1
t "backup B2" ws backup-push
B2=$(took)
[ -n "$B1" ] && [ -n "$B2" ] && [ "$B1" \< "$B2" ]; ok $? "two backups ($B1, $B2)"
START=$(python3 -c "import json,sys; print(json.load(sys.stdin)['start_wal'])" \
  <<<"$(ws --region r2 st get "backups/$B2/manifest.json" - 2>/dev/null)")
psql_p "$PP" "insert into m values ('C')"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
pg_stop "$T/pg" immediate
# r2's WAL stops before B2's start (its shipper was behind when the site was lost)
n=0
for f in "$T"/r2/wal/0*; do
  b=$(basename "$f")
  case $b in *.history) continue ;; esac
  if [ "${b:0:24}" \> "$START" ] || [ "${b:0:24}" = "$START" ]; then rm -f "$f"; n=$((n + 1)); fi
done
[ -n "$START" ] && [ "$n" -gt 0 ] && [ ! -e "$T/r2/wal/$START" ]
ok $? "r2 lacks B2's start segment $START and every one after it ($n objects)"

t_fail "restore --backup B2 (named): refused, exit 3, nothing started" 3 \
  dr restore --pgdata "$T/x/data" --backup "$B2" --target-latest --start --port "$XP"
like "$T_OUT" "where backup $B2 starts, is not archived" "... naming the missing start segment"
[ ! -e "$T/x/data/postmaster.pid" ]; ok $? "... nothing runs"

t_fail "restore --target-immediate: no fallback (B2's own consistent point), exit 3" 3 \
  dr restore --pgdata "$T/x/data" --target-immediate
like "$T_OUT" "where backup $B2 starts, is not archived" "... naming B2's missing start segment"

t "restore --target-latest from r2: falls back to B1" \
  dr restore --pgdata "$T/y/data" --target-latest --start --port "$XP"
like "$T_OUT" "restoring from backup $B1 instead, the newest before it" "... saying why and which"
is "$(psql_p "$XP" "select string_agg(id, '' order by id) from m")" AB "... with every row the region's WAL holds"
pg_run "$PG_BIN/pg_ctl" -D "$T/y/data" -m fast -w stop >/dev/null 2>&1

# with B1 gone too there is nothing to fall back to
rm -rf "$T/r2/backups/$B1"
t_fail "no older backup: refused (exit 3), saying so" 3 \
  dr restore --pgdata "$T/z/data" --target-latest --start --port "$XP"
like "$T_OUT" "no older backup of region r2 can be restored instead" "... naming what was tried"

done_testing
