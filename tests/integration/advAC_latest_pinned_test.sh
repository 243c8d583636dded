#!/bin/bash
# restore --target-latest follows the timeline it judged, not one archived
# after (adversarial pass AC).  restore works out the end of the archive
# (timeline and last record) before it fetches the backup, then wrote
# recovery_target_timeline = 'latest'.  A history file archived between
# that check and PostgreSQL's start (a drill restored from the same
# archive with --keep-archive, promoting while this restore fetched) was
# followed by PostgreSQL: on the drill's timeline, which forked before the
# end restore had computed and went on past it, recovery stopped at that
# LSN on the drill's branch and promoted: the drill's rows, production's
# last ones gone, no error.  A time target the same (restore judged the
# path on timeline 1).  Now the timeline restore judged is written as a
# number, so PostgreSQL recovers exactly the history restore checked.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP DP XP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 3 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/drill" "$T/x"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/c.conf" "retry_deadline = 5" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
# the drill's configuration: the same region name, another place (its
# WAL reaches production's region only later)
ws_conf "$T/d.conf" "retry_deadline = 5"
ws_region "$T/d.conf" r1 "file://$T/side" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
wd() { pg_run "$WALSHIP" --config "$T/d.conf" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
promoted() { [ "$(psql_p "$1" "select pg_is_in_recovery()" 2>/dev/null)" = f ]; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/drill/data $T/x/data $T/y/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

psql_p "$PP" "create table m(id text, at timestamptz default clock_timestamp())"
psql_p "$PP" "insert into m values ('A')"
t "backup-push" ws backup-push
sleep 1.5   # the backup's end time has whole seconds: TT must be after it
psql_p "$PP" "insert into m values ('B')"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
sleep 0.3
TT=$(psql_p "$PP" "select clock_timestamp()")
sleep 0.3
for x in C D; do
  psql_p "$PP" "insert into m values ('$x')"
  psql_p "$PP" "select pg_switch_wal()" >/dev/null
done
sleep 0.3
TD=$(psql_p "$PP" "select clock_timestamp()")   # between D and E
sleep 0.3
psql_p "$PP" "insert into m values ('E')"
seg=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$seg"
ok $? "production archived through $seg"
pg_stop "$T/pg" fast
cp -a "$T/r1" "$T/side"

# the drill: restored to before C, promoted to timeline 2, writes past
# production's end
t "a drill restored to a time before C, --keep-archive" \
  wd restore --pgdata "$T/drill/data" --target-time "$TT" --keep-archive --port "$DP"
echo "archive_command = '$WALSHIP --config $T/d.conf wal-push %p'" >>"$T/drill/data/postgresql.auto.conf"
pg_run "$PG_BIN/pg_ctl" -D "$T/drill/data" -l "$T/drill/server.log" -w -t 120 start >/dev/null 2>&1
wait_for 60 promoted "$DP"
ok $? "... promoted"
for i in 1 2 3 4 5; do
  psql_p "$DP" "insert into m values ('X$i')"
  d=$(psql_p "$DP" "select pg_walfile_name(pg_switch_wal())")
done
[ -n "$d" ] && wait_for 60 test -e "$T/side/wal/$d"
ok $? "the drill archived timeline 2 through $d (elsewhere for now)"
pg_run "$PG_BIN/pg_ctl" -D "$T/drill/data" -m fast -w stop >/dev/null 2>&1

t "restore --target-latest (not started): the end is timeline 1's" \
  ws restore --pgdata "$T/x/data" --target-latest --port "$XP"
like "$T_OUT" "ends on timeline 1 in" "... judged on timeline 1"
like "$(grep recovery_target_timeline "$T/x/data/postgresql.auto.conf")" "= 'current'" \
  "... and the backup's own timeline (1) written as 'current', not 'latest'"

ws_mkdirs "$T/y"
t "restore --target-time between D and E (not started)" ws restore --pgdata "$T/y/data" --target-time "$TD" --port "$XP"
like "$(grep recovery_target_timeline "$T/y/data/postgresql.auto.conf")" "= 'current'" \
  "... the backup's own timeline written as 'current', not 'latest'"

# the drill's timeline reaches production's region now, before the starts
cp -p "$T/side/wal/00000002.history" "$T"/side/wal/00000002000000* "$T/r1/wal/"
chown -R "$(pg_user)" "$T/r1"
for x in x:ABCDE y:ABCD; do
  want=${x#*:} x=${x%:*}
  pg_run "$PG_BIN/pg_ctl" -D "$T/$x/data" -l "$T/$x/server.log" -w -t 120 start >/dev/null 2>&1
  wait_for 60 promoted "$XP"
  ok $? "$x: the restored instance, started by hand, is promoted"
  is "$(psql_p "$XP" "select string_agg(id, '' order by at) from m" 2>/dev/null)" "$want" \
    "$x: it holds production's rows ($want), none of the drill's"
  pg_run "$PG_BIN/pg_ctl" -D "$T/$x/data" -m fast -w stop >/dev/null 2>&1
done

done_testing
