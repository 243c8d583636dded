#!/bin/bash
# Adversarial pass U: backups taken under write load restore to consistent,
# correct data.  PostgreSQL 15 with data checksums, two file:// regions;
# pgbench (tpcb-like, 4 clients) and a DDL loop (CREATE/DROP TABLE,
# TRUNCATE, VACUUM FULL, CLUSTER, CREATE/DROP DATABASE, a table moved to a
# tablespace, unlogged tables) run through a full backup and a chain of two
# incrementals.  Each is restored with --target-immediate, the last also
# with --target-latest; checked: pgbench's invariant, the DDL loop's tables
# (row counts known by their name), the source's state (latest), pg_amcheck
# --heapallindexed, and pg_checksums --check on the stopped restored cluster.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"   # free_ports
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
# What this test checks is the data PostgreSQL gets back, not walship's
# memory: the sanitizer builds run walship's backup and restore paths in
# backup_test, incr_test and restore_test, and CI's time goes to them there
# (WALSHIP_LOAD_TEST=1 runs it anyway).
grep -q -- '-fsanitize=' "$TOP_BUILDDIR/Makefile" 2>/dev/null && [ "${WALSHIP_LOAD_TEST:-}" != 1 ] &&
  skip_all "a sanitizer build (the default build runs it)"

read -r PGPORT RPORT <<<"$(free_ports 2 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo1" "$T/repo2"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "compression = zstd:1" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo1" "mode = sync"
ws_region "$CONF" two "file://$T/repo2" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" -k || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "archive_timeout = 30"
pg_conf "$T/pg" "max_wal_size = 256MB"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
rsql() { pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d "${2:-postgres}" -c "$1"; }
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }
on_exit "for d in $T/r*/data; do [ -f \$d/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

SCALE=${ADVU_SCALE:-10}
pg_run "$PG_BIN/pgbench" -i -s "$SCALE" -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
ok $? "pgbench -i -s $SCALE"
mkdir -p "$T/ts1"; chown "$(pg_user)" "$T/ts1"
sql "create tablespace ts1 location '$T/ts1'"
sql "create table ddl_log (i int primary key, t timestamptz default clock_timestamp())"
sql "create table cl (id int primary key, v text)"
sql "insert into cl select g, md5(g::text) from generate_series(1, 20000) g"

# ---- the load: pgbench, and a DDL loop whose tables k_N hold N*10 rows ----
ddl_loop() {
  local i=$1 a drop
  while [ ! -e "$T/stop" ]; do
    drop=""
    [ $((i % 8)) = 1 ] && [ "$i" -gt 5 ] && drop="drop table if exists k_$((i - 5));"
    a=(-c "begin; create table k_$i as select g from generate_series(1, $i * 10) g; $drop insert into ddl_log(i) values ($i); commit;")
    case $((i % 8)) in
      0) a+=(-c "begin; truncate cl; insert into cl select g, md5((g + $i)::text) from generate_series(1, 20000) g; commit;") ;;
      2) a+=(-c "create unlogged table u_$i as select generate_series(1, 1000) g") ;;
      3) a+=(-c "alter table k_$i set tablespace ts1") ;;
      4) a+=(-c "vacuum full cl") ;;
      5) a+=(-c "cluster cl using cl_pkey") ;;
      6) a+=(-c "create database d_$i" -c "drop database if exists d_$((i > 8 ? i - 8 : i))") ;;
      7) a+=(-c "vacuum full pgbench_branches" -c "vacuum full pgbench_tellers") ;;
    esac
    pg_run "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$PGPORT" -U postgres -d postgres "${a[@]}" >>"$T/ddl.log" 2>&1 ||
      echo "iteration $i failed" >>"$T/ddl.fail"
    i=$((i + 1))
    sleep 0.1
  done
}
load_start() {   # SECONDS FIRST-DDL-ITERATION
  rm -f "$T/stop" "$T/ddl.fail"
  pg_run "$PG_BIN/pgbench" -n -c 4 -j 2 -T "$1" -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >"$T/pgbench.out" 2>&1 &
  PGB=$!
  ddl_loop "$2" &
  DDL=$!
  sleep 3
}
backup_under_load() {   # LABEL FIRST-DDL-ITERATION [BACKUP-PUSH OPTIONS...]
  local l=$1 i=$2
  shift 2
  load_start 25 "$i"
  t "$l under load" ws backup-push "$@"
  kill -0 "$PGB" 2>/dev/null
  ok $? "$l: pgbench still ran when the backup ended"
  touch "$T/stop"
  wait "$DDL"
  wait "$PGB"
  ok $? "$l: pgbench ran through the backup" || diag "$(tail -5 "$T/pgbench.out")"
  [ ! -e "$T/ddl.fail" ]; ok $? "$l: every DDL iteration succeeded" || diag "$(tail -3 "$T/ddl.log")"
}
check_db() {   # RUN-QUERY LABEL
  local q=$1 l=$2 a b t h bad
  read -r a b t h <<<"$("$q" "select (select sum(abalance) from pgbench_accounts), (select sum(bbalance) from pgbench_branches), (select sum(tbalance) from pgbench_tellers), (select coalesce(sum(delta),0) from pgbench_history)" | tr '|' ' ')"
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$t" ] && [ "$a" = "$h" ]
  ok $? "$l: pgbench's invariant holds (accounts $a, branches $b, tellers $t, history $h)"
  bad=$("$q" "select string_agg(c.relname, ',') from pg_class c where c.relname ~ '^k_[0-9]+$' and c.relkind = 'r' and
        (xpath('/row/n/text()', query_to_xml('select count(*) as n from ' || c.relname, false, true, '')))[1]::text::int
        <> substring(c.relname from 3)::int * 10")
  is "$bad" "" "$l: every k_N table holds N*10 rows"
  bad=$("$q" "select string_agg(i::text, ',') from ddl_log l where not exists (select 1 from pg_class where relname = 'k_' || l.i) and not exists (select 1 from ddl_log d where d.i = l.i + 5 and d.i % 8 = 1)")
  is "$bad" "" "$l: every logged DDL iteration's table is there (or was dropped by a later logged one)"
  is "$("$q" "select count(*) from cl")" 20000 "$l: the TRUNCATEd, VACUUM FULLed and CLUSTERed table has its rows"
}

snapshot() {   # RUN-QUERY
  "$1" "select md5(string_agg(aid::text || ':' || abalance, ',' order by aid)) from pgbench_accounts"
  "$1" "select count(*), sum(delta) from pgbench_history"
  "$1" "select string_agg(i::text, ',' order by i) from ddl_log"
  "$1" "select string_agg(relname, ',' order by relname) from pg_class where relname ~ '^[ku]_[0-9]+$'"
  "$1" "select string_agg(datname, ',' order by datname) from pg_database"
  "$1" "select md5(string_agg(id::text || v, ',' order by id)) from cl"
}

check_restore() {   # DIR NAME LABEL [RESTORE OPTIONS...]
  local d=$1 name=$2 l=$3
  shift 3
  pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo2" --key-file "$T/key" restore \
    --pgdata "$d" --tablespace-map "$T/ts1=$d.ts1" --backup "$name" "$@" >"$T/restore.out" 2>&1
  ok $? "$l: restore of $name ($*)" || { diag "$(tail -5 "$T/restore.out")"; return 1; }
  pg_run "$PG_BIN/pg_ctl" -D "$d" -l "$d.log" -o "-p $RPORT" -w -t 300 start >/dev/null 2>&1
  wait_for 300 bash -c "runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $RPORT -U postgres -d postgres -c 'select not pg_is_in_recovery()' | grep -q t"
  ok $? "$l: the restored cluster is promoted" || { diag "$(tail -5 "$d.log")"; return 1; }
  check_db rsql "$l"
  if [ -n "${SNAP:-}" ]; then
    snapshot rsql >"$T/got.txt"
    diff "$SNAP" "$T/got.txt" >"$T/diff.txt"
    ok $? "$l: the restored cluster holds the source's final state" || diag "$(head -c 600 "$T/diff.txt")"
  fi
  pg_run "$PG_BIN/pg_amcheck" -h "$T/pg/sock" -p "$RPORT" -U postgres --all --install-missing --heapallindexed >"$T/amcheck.out" 2>&1
  ok $? "$l: pg_amcheck --heapallindexed finds nothing" || diag "$(head -5 "$T/amcheck.out")"
  pg_run "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
  pg_run "$PG_BIN/pg_checksums" --check -D "$d" >"$T/checksums.out" 2>&1
  ok $? "$l: pg_checksums --check on the stopped cluster" || diag "$(tail -5 "$T/checksums.out")"
}

# ---- a full backup and two incrementals, each under load ----
backup_under_load "full backup" 1 --part-size 1MB
FULL=$(ls "$T/repo1/backups" | tail -1)
backup_under_load "first incremental" 1001 --incremental
INCR1=$(ls "$T/repo1/backups" | tail -1)
like "$T_OUT" "is an incremental of backup $FULL" "the first incremental's parent is the full"
backup_under_load "second incremental" 2001 --incremental
INCR2=$(ls "$T/repo1/backups" | tail -1)
like "$T_OUT" "is an incremental of backup $INCR1" "the second incremental's parent is the first"
check_db sql "source"
sw=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 120 bash -c "ls $T/repo2/wal/ | grep -q '^$sw'"
snapshot sql >"$T/src.txt"

check_restore "$(newdir r1)" "$FULL" "full, immediate" --target-immediate
check_restore "$(newdir r2)" "$INCR1" "incr1, immediate" --target-immediate
check_restore "$(newdir r3)" "$INCR2" "incr2, immediate" --target-immediate
SNAP=$T/src.txt check_restore "$(newdir r4)" "$INCR2" "incr2, latest" --target-latest
SNAP=$T/src.txt check_restore "$(newdir r5)" "$FULL" "full, latest" --target-latest

done_testing
