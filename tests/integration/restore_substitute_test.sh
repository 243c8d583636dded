#!/bin/bash
# Regions that disagree on the newest WAL segment (adversarial pass N).
# A cold copy of the primary's data directory (a clone for staging: same
# system identifier) archives with the same key to a repository of its
# own.  Its segment 7 continues production's last record, so it decodes
# under production's name and cluster and passes the page-header check.
# Whoever can write to region r1 puts it there in place of production's.
# restore --target-latest took the end of the archive from r1's copy,
# PostgreSQL replayed it, exit 0 with the clone's row and without
# production's, although r2 still held production's copy.  Now every
# region's copy of the newest segment is compared: they differ, refused
# (exit 3) before anything is fetched, both regions named.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP CP XP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 3 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/spoolB" "$T/r1" "$T/r2" "$T/rB" "$T/x" "$T/y" "$T/f"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 5" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync"
ws_region "$CONF" r2 "file://$T/r2" "mode = sync"
# the clone's configuration: the same key, its own region
WS_SPOOL=$T/spoolB ws_conf "$T/clone.conf" "retry_deadline = 5"
ws_region "$T/clone.conf" rB "file://$T/rB" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/clone/data $T/x/data $T/y/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
psql_p "$PP" "create table m(id text, at timestamptz default clock_timestamp())"
psql_p "$PP" "insert into m values ('A')"
t "backup-push" ws backup-push
psql_p "$PP" "insert into m values ('B')"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
pg_run "$PG_BIN/pg_ctl" -D "$T/pg/data" -m fast -w stop >/dev/null 2>&1
ok $? "the primary is stopped"

# the clone: a cold copy of the data directory, archiving to rB
cp -a "$T/pg" "$T/clone"
sed -i -e "s|$CONF|$T/clone.conf|" -e "s|$T/pg/sock|$T/clone/sock|" "$T/clone/data/postgresql.conf"
ws_own "$T/clone"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not restart"; exit 1; }
pg_start "$T/clone" "$CP" || { echo "Bail out! the clone did not start"; exit 1; }
psql_p "$PP" "insert into m values ('P')"
p=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
psql_p "$CP" "insert into m values ('CLONE')"
c=$(psql_p "$CP" "select pg_walfile_name(pg_switch_wal())")
is "$c" "$p" "production and the clone both wrote segment $p"
wait_for 60 bash -c "[ -e $T/r1/wal/$p ] && [ -e $T/r2/wal/$p ] && [ -e $T/rB/wal/$p ]"
ok $? "... each archived it to its own regions"
pg_run "$PG_BIN/pg_ctl" -D "$T/clone/data" -m fast -w stop >/dev/null 2>&1
pg_stop "$T/pg" fast

# the substitution, in r1 only
cp "$T/rB/wal/$p" "$T/r1/wal/$p"
t "wal-fetch serves r1's copy (it is bound to the name and the cluster)" \
  ws wal-fetch "$p" "$T/f/fetched" --region r1

t_fail "restore --target-latest: the regions' copies of the newest segment differ, refused (exit 3)" 3 \
  ws restore --pgdata "$T/x/data" --target-latest --start --port "$XP"
like "$T_OUT" "regions r1 and r2 hold different copies of wal/$p, the newest WAL segment" "... naming both regions"
[ ! -e "$T/x/data/postmaster.pid" ]; ok $? "... nothing was started"
pg_run "$PG_BIN/pg_ctl" -D "$T/x/data" -m immediate -w stop >/dev/null 2>&1   # (started only without the fix)

t "the substituted copy is removed from r1" ws --region r1 st rm "wal/$p"
t "restore --target-latest" ws restore --pgdata "$T/y/data" --target-latest --start --port "$XP"
is "$(psql_p "$XP" "select string_agg(id, '' order by at) from m")" ABP "... production's rows, none of the clone's"

done_testing
