#!/bin/bash
# Adversarial pass AH: symbolic links where PostgreSQL keeps its data.
# A database directory moved to another disk and linked back (base/OID ->
# elsewhere; PostgreSQL runs on it as on a directory) was left out of the
# backup with a warning, the backup listed as complete, and a restore said
# "restored" and promoted a cluster in which that database did not exist
# ("The database subdirectory base/OID is missing").  The same for a linked
# pg_xact (the restore did not start) and a relation file linked
# elsewhere.  Now a link inside PostgreSQL's data directories is backed up
# as what it points to; a link elsewhere (a linked postgresql.conf) is
# still left out with the warning (pgdata_shape_test.sh).
# PostgreSQL 15, file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP RP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/rs" "$T/disk"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/p.conf" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "${3:-postgres}" -c "$2"; }
state() {   # PORT: what the restore must bring back
  echo "$(psql_p "$1" "select count(*), sum(i) from t" app 2>&1)" \
    "$(psql_p "$1" "select count(*), sum(i) from moved" 2>&1)" \
    "$(psql_p "$1" "select count(*) from pg_database where datname = 'app'" 2>&1)"
}

pg_init "$T/pg" -k || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/rs immediate"
D=$T/pg/data
psql_p "$PP" "create database app"
psql_p "$PP" "create table t(i int primary key); insert into t select generate_series(1, 4000)" app
psql_p "$PP" "create table moved(i int); insert into moved select generate_series(1, 3000)"
oid=$(psql_p "$PP" "select oid from pg_database where datname = 'app'")
rel=$(psql_p "$PP" "select pg_relation_filepath('moved')")
pg_stop "$T/pg"
# the database directory, pg_xact and one relation file on "another disk"
pg_run mv "$D/base/$oid" "$T/disk/db" && pg_run ln -s "$T/disk/db" "$D/base/$oid"
pg_run mv "$D/pg_xact" "$T/disk/xact" && pg_run ln -s "$T/disk/xact" "$D/pg_xact"
pg_run mv "$D/$rel" "$T/disk/rel" && pg_run ln -s "$T/disk/rel" "$D/$rel"
pg_run ln -s /etc/hostname "$D/linked.conf"
# links that loop: to the database directory from inside it, and a
# directory linked from pg_xact holding two links back to itself (walked
# each time, the second made 2^64 walks)
pg_run ln -s "$T/disk/db" "$D/base/$oid/again"
pg_run mkdir "$T/disk/loop" && pg_run ln -s "$T/disk/loop" "$T/disk/loop/a" && pg_run ln -s "$T/disk/loop" "$T/disk/loop/b"
pg_run ln -s "$T/disk/loop" "$D/pg_xact/loop"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not restart"; exit 1; }
want=$(state "$PP")
is "$want" "4000|8002000 3000|4501500 1" "the source runs on its linked directories and file"

t "backup-push (ends, links that loop or not)" pg_run timeout 300 "$WALSHIP" --config "$T/p.conf" backup-push
like "$T_OUT" "4 symbolic links in PGDATA \\((base/$oid/again|linked.conf), \\.\\.\\.\\) are not in the backup" \
  "the links that loop and a link outside PostgreSQL's directories are left out, with the warning"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
t "restore --target-immediate --start" ws restore --pgdata "$T/rs/data" --target-immediate --start --port "$RP"
is "$(state "$RP")" "$want" "the restored cluster has the linked database, the linked relation and its commits"
R=$T/rs/data
ok "$([ -d "$R/base/$oid" ] && [ ! -L "$R/base/$oid" ] && [ -d "$R/pg_xact" ] && [ ! -L "$R/pg_xact" ] &&
  [ -f "$R/$rel" ] && [ ! -L "$R/$rel" ] && echo 0 || echo 1)" \
  "they come back as a directory and a file in the restored data directory"
pg_stop "$T/rs"
t "pg_checksums --check on the restored cluster" pg_run "$PG_BIN/pg_checksums" --check -D "$R"

done_testing
