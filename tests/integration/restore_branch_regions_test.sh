#!/bin/bash
# A time target and a branch that only another region shows (adversarial
# pass L).  A drill restored with --keep-archive promoted to timeline 2
# and its history file and WAL reached region r2 only (an async copy not
# shipped yet, a drill configured with the DR region alone); production
# went on on timeline 1 in both regions.  restore --region r1
# --target-time checked the path on r1's listing alone: no branch there,
# so it went ahead; but restore_command asks every region, PostgreSQL
# found 00000002.history in r2, followed the drill's timeline and
# stopped at the time on it: exit 0 with the drill's rows and none of
# production's.  --target-latest already merged every region's listing;
# now every target does, and the two branches are refused as for latest.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP DP XP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 3 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/r1" "$T/r2" "$T/drill" "$T/x" "$T/y" "$T/z" "$T/w"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 5" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync"
ws_region "$CONF" r2 "file://$T/r2" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/drill/data $T/x/data $T/y/data $T/z/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
psql_p "$PP" "create table m(id text, at timestamptz default clock_timestamp())"
psql_p "$PP" "insert into m values ('A')"
t "backup-push" ws backup-push
psql_p "$PP" "insert into m values ('B')"
b=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r2/wal/$b"
ok $? "B is archived ($b)"
t "a drill restored to latest with --keep-archive" \
  ws restore --pgdata "$T/drill/data" --target-latest --keep-archive --start --port "$DP"
for i in 1 2 3; do
  psql_p "$PP" "insert into m values ('P$i')"
  psql_p "$DP" "insert into m values ('X$i')"
  sleep 0.3
done
TT=$(psql_p "$PP" "select clock_timestamp()")
sleep 0.3
psql_p "$PP" "insert into m values ('P4')"
psql_p "$DP" "insert into m values ('X4')"
t "production's next backup, on timeline 1 after the drill forked" ws backup-push
p=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
d=$(psql_p "$DP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "[ -e $T/r1/wal/$p ] && [ -e $T/r2/wal/$p ] && [ -e $T/r2/wal/$d ]"
ok $? "production's $p and the drill's $d are archived"
pg_run "$PG_BIN/pg_ctl" -D "$T/drill/data" -m fast -w stop >/dev/null 2>&1
pg_stop "$T/pg" immediate
# the drill's timeline reached r2 only
rm -f "$T/r1/wal/00000002.history" "$T"/r1/wal/00000002000000*
[ ! -e "$T/r1/wal/00000002.history" ] && [ -e "$T/r2/wal/00000002.history" ]
ok $? "r1 holds timeline 1 only, r2 the drill's timeline 2 too"

t_fail "restore --region r1 --target-time: two branches, refused (exit 2)" 2 \
  ws --region r1 restore --pgdata "$T/x/data" --target-time "$TT" --start --port "$XP"
like "$T_OUT" "regions r1, r2: the archive holds two branches" "... judged on every region's listing"
[ ! -e "$T/x/data/postmaster.pid" ]; ok $? "... nothing was started"
pg_run "$PG_BIN/pg_ctl" -D "$T/x/data" -m immediate -w stop >/dev/null 2>&1   # (started only without the fix)

t "restore --region r1 --target-time --target-timeline 1: production's branch" \
  ws --region r1 restore --pgdata "$T/y/data" --target-time "$TT" --target-timeline 1 --start --port "$XP"
is "$(psql_p "$XP" "select string_agg(id, '' order by at) from m")" ABP1P2P3 \
  "... exactly production's rows before the target time, none of the drill's"

pg_run "$PG_BIN/pg_ctl" -D "$T/y/data" -m fast -w stop >/dev/null 2>&1

# --target-timeline 2 picks the newest backup on timeline 2's path, and
# timeline 2's history file is in r2 only: the backup is chosen on the
# union too (it used to be the newest backup of r1, production's after
# the fork, which cannot reach timeline 2: exit 1)
t "restore --region r1 --target-latest --target-timeline 2: the drill's branch, from the backup before the fork" \
  ws --region r1 restore --pgdata "$T/z/data" --target-latest --target-timeline 2 --start --port "$XP"
like "$T_OUT" "on the way to timeline 2; backup .*, newer, is not \(another branch\)" "... passing over production's newer backup"
is "$(psql_p "$XP" "select string_agg(id, '' order by at) from m")" ABX1X2X3X4 "... with the drill's rows"
pg_run "$PG_BIN/pg_ctl" -D "$T/z/data" -m fast -w stop >/dev/null 2>&1

# r2 opens but cannot be listed (its WAL volume unmounted behind a link):
# the path is judged on r1 alone, and that must be said, since
# restore_command will ask r2 too once it is back
mv "$T/r2/wal" "$T/r2/wal.away" && ln -s "$T/nowhere" "$T/r2/wal"
t "restore --region r1 --target-time --target-timeline 1 with r2 unlistable" \
  ws --region r1 restore --pgdata "$T/w/data" --target-time "$TT" --target-timeline 1
like "$T_OUT" "way to timeline 1 is judged without: r2" "... says the backup was chosen without r2"
like "$T_OUT" "archive is checked without: r2" "... says the WAL was checked without r2"

done_testing
