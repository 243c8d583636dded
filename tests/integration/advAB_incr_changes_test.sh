#!/bin/bash
# Incremental backups against every kind of change between parent and child
# (adversarial pass AB), with PostgreSQL 15 and a file:// region: a table
# truncated by VACUUM then grown back to its size with other rows, VACUUM
# FULL, CLUSTER, TRUNCATE, a dropped table; a file that is not a relation
# rewritten in place at the same size with its old mtime put back; a file
# only the parent has; an empty file; a temporary file PostgreSQL excludes.
# The restored incremental is compared query by query and byte by byte with
# the source.  Then the source is restored and promoted (timeline 2), the
# old primary stopped, and an incremental taken on the new timeline over the
# parent from timeline 1; its restore is compared with the new primary.
# Last, the parent under its name is replaced (another backup's folder
# copied there; a backup really re-made there with the clock set back; one
# part swapped): each restore of the chain fails naming the link and never
# leaves a directory that looks complete (backup_label, recovery.signal).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"   # free_ports
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT RPORT R2PORT <<<"$(free_ports 3 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo1"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "compression = zstd:1" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "autovacuum = off"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/r*/data; do [ -f \$d/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
psqlp() { local port=$1; shift; pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$port" -U postgres -d postgres -c "$1"; }
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }
relpath() { sql "select pg_relation_filepath('$1')"; }

sql "create table t_vac (id int, v text)"
sql "insert into t_vac select g, md5(g::text) from generate_series(1, 40000) g"
sql "create table t_vf as select g id, md5(g::text) v from generate_series(1, 30000) g"
sql "create table t_cl (id int primary key, v text)"
sql "insert into t_cl select g, md5(g::text) from generate_series(30000, 1, -1) g"
sql "create table t_tr as select g id, md5(g::text) v from generate_series(1, 20000) g"
sql "create table t_drop as select g id, md5(g::text) v from generate_series(1, 20000) g"
sql "checkpoint"
P=$T/pg/data
DROP_PATH=$(relpath t_drop)
VAC_PATH=$(relpath t_vac)
# files that are not relations: rewritten in place, one only in the parent
head -c 200000 /dev/urandom >"$P/same_size.dat"
head -c 100000 /dev/urandom >"$P/parent_only.dat"
chown "$(pg_user)" "$P/same_size.dat" "$P/parent_only.dat"
touch -d '2020-01-01 00:00:00' "$P/same_size.dat"
# segments as PostgreSQL names them (no pg_class row: it ignores them): a
# second segment that goes, one that comes (1 GiB segments made small)
DB=$(sql "select oid from pg_database where datname = 'postgres'")
head -c 300000 /dev/urandom >"$P/base/$DB/999990"
head -c 100000 /dev/urandom >"$P/base/$DB/999990.1"
head -c 300000 /dev/urandom >"$P/base/$DB/999991"
chown "$(pg_user)" "$P/base/$DB/99999"*
vac_size0=$(stat -c %s "$P/$VAC_PATH")

t "full backup" ws backup-push
FULL=$(ls "$T/repo1/backups" | tail -1)

# ---- the changes ----
sql "delete from t_vac where id > 10000"
sql "vacuum t_vac"                                   # truncates its file
vac_size1=$(stat -c %s "$P/$VAC_PATH")
[ "$vac_size1" -lt "$vac_size0" ]; ok $? "VACUUM truncated t_vac's file ($vac_size0 -> $vac_size1)"
sql "insert into t_vac select g, md5((g * 7)::text) || 'x' from generate_series(40001, 70000) g"
sql "checkpoint"
vac_size2=$(stat -c %s "$P/$VAC_PATH")
diag "t_vac: $vac_size0 -> $vac_size1 -> $vac_size2 bytes"
sql "update t_vf set v = 'vf' where id % 3 = 0"
sql "vacuum full t_vf"
sql "cluster t_cl using t_cl_pkey"
sql "truncate t_tr"
sql "insert into t_tr select g, 'after' from generate_series(1, 100) g"
sql "drop table t_drop"
sql "create table t_after as select g id, md5(g::text) v from generate_series(1, 20000) g"
# same size, same mtime, other bytes (a block in the middle and the last one)
python3 - "$P/same_size.dat" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(70000); f.write(os.urandom(5000))
    f.seek(199990); f.write(os.urandom(10))
PY
touch -d '2020-01-01 00:00:00' "$P/same_size.dat"
rm -f "$P/parent_only.dat"
rm -f "$P/base/$DB/999990.1"
head -c 50000 /dev/urandom >>"$P/base/$DB/999990"
head -c 120000 /dev/urandom >"$P/base/$DB/999991.1"
chown "$(pg_user)" "$P/base/$DB/99999"*
cp "$P/base/$DB/999990" "$T/seg0.want"
cp "$P/base/$DB/999991.1" "$T/seg1.want"
: >"$P/empty.dat"
mkdir -p "$P/base/pgsql_tmp"
head -c 100000 /dev/urandom >"$P/base/pgsql_tmp/pgsql_tmp999.0"
chown -R "$(pg_user)" "$P/empty.dat" "$P/base/pgsql_tmp"
sql "checkpoint"
cp "$P/same_size.dat" "$T/same_size.want"

snapshot() {   # QUERY-RUNNER PORT
  "$1" "$2" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_vac"
  "$1" "$2" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_vf"
  "$1" "$2" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_cl"
  "$1" "$2" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_tr"
  "$1" "$2" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_after"
  "$1" "$2" "select count(*) from pg_class where relname = 't_drop'"
}

t "incremental backup" ws backup-push --incremental
like "$T_OUT" "is an incremental of backup $FULL" "it is an incremental of the full backup"
INCR=$(ls "$T/repo1/backups" | tail -1)
sw=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "ls $T/repo1/wal/ | grep -q '^$sw'"
snapshot psqlp "$PGPORT" >"$T/src1.txt"

restore_to() {   # DIR PORT NAME
  pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" restore \
    --pgdata "$1" --backup "$3" --target-latest >"$T/restore.out" 2>&1
  ok $? "restore of $3" || diag "$(tail -5 "$T/restore.out")"
  pg_run "$PG_BIN/pg_ctl" -D "$1" -l "$1.log" -o "-p $2" -w -t 120 start >/dev/null 2>&1
  wait_for 60 bash -c "runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $2 -U postgres -d postgres -c 'select not pg_is_in_recovery()' | grep -q t"
  ok $? "the restored $3 is promoted"
}

R1=$(newdir r1)
F=$(newdir f)
# the pure file check first: backup-fetch assembles the chain
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" backup-fetch \
  "$INCR" "$F" >"$T/fetch.out" 2>&1
ok $? "backup-fetch of the chain" || diag "$(tail -5 "$T/fetch.out")"
cmp -s "$T/same_size.want" "$F/same_size.dat"; ok $? "the file rewritten at the same size and mtime is the new one"
[ ! -e "$F/parent_only.dat" ]; ok $? "the file only the parent had is absent"
[ -f "$F/empty.dat" ] && [ ! -s "$F/empty.dat" ]; ok $? "the empty file is there, empty"
[ ! -e "$F/base/$DB/999990.1" ]; ok $? "the segment only the parent had is absent"
cmp -s "$T/seg0.want" "$F/base/$DB/999990"; ok $? "the segment that grew is the new one"
cmp -s "$T/seg1.want" "$F/base/$DB/999991.1"; ok $? "the new segment is there"
[ ! -e "$F/$DROP_PATH" ]; ok $? "the dropped table's file is absent"
[ -z "$(ls -A "$F/base/pgsql_tmp" 2>/dev/null)" ]; ok $? "no temporary file"
is "$(stat -c %s "$F/$VAC_PATH")" "$vac_size2" "t_vac's file has its size at the incremental"

restore_to "$R1" "$RPORT" "$INCR"
snapshot psqlp "$RPORT" >"$T/got1.txt"
diff "$T/src1.txt" "$T/got1.txt" >"$T/diff.txt"
ok $? "every query gives the source's result" || diag "$(cat "$T/diff.txt")"
pg_run "$PG_BIN/pg_amcheck" -h "$T/pg/sock" -p "$RPORT" -U postgres --all --install-missing --heapallindexed >"$T/amcheck.out" 2>&1
ok $? "pg_amcheck finds nothing" || diag "$(head -5 "$T/amcheck.out")"

# ---- promoted on timeline 2, an incremental over the parent from timeline 1 ----
pg_stop "$T/pg" fast
CONF2=$T/walship2.conf
ws_conf "$CONF2" "compression = zstd:1" "$(ws_pg_conninfo "$T/pg" "$RPORT")"
ws_region "$CONF2" one "file://$T/repo1" "mode = sync"
ws2() { pg_run "$WALSHIP" --config "$CONF2" "$@"; }
# the restore leaves archiving off: the new primary archives into the same repository
psqlp "$RPORT" "alter system set archive_mode = on" >/dev/null
psqlp "$RPORT" "alter system set archive_command = '$WALSHIP --config $CONF2 wal-push %p'" >/dev/null
pg_run "$PG_BIN/pg_ctl" -D "$R1" -l "$R1.log" -o "-p $RPORT" -w -t 120 restart >/dev/null 2>&1
ok $? "the new primary restarts archiving"
is "$(psqlp "$RPORT" "select timeline_id from pg_control_checkpoint()")" 2 "the restored cluster runs on timeline 2"
psqlp "$RPORT" "update t_vac set v = 'tl2' where id between 100 and 300" >/dev/null
psqlp "$RPORT" "vacuum full t_cl" >/dev/null
psqlp "$RPORT" "checkpoint" >/dev/null
t "incremental on timeline 2" ws2 backup-push --incremental
like "$T_OUT" "is an incremental of backup $INCR" "its parent is the incremental from timeline 1"
INCR2=$(ls "$T/repo1/backups" | tail -1)
sw=$(psqlp "$RPORT" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "ls $T/repo1/wal/ | grep -q '^$sw'"
snapshot psqlp "$RPORT" >"$T/src2.txt"
R2=$(newdir r2)
restore_to "$R2" "$R2PORT" "$INCR2"
snapshot psqlp "$R2PORT" >"$T/got2.txt"
diff "$T/src2.txt" "$T/got2.txt" >"$T/diff.txt"
ok $? "every query gives timeline 2's result" || diag "$(cat "$T/diff.txt")"
is "$(psqlp "$R2PORT" "select timeline_id from pg_control_checkpoint()")" 3 "the restore of it promoted to timeline 3"

# ---- the parent re-made under the same name: the chain is refused ----
t "a full backup on timeline 2" ws2 backup-push
FULL2=$(ls "$T/repo1/backups" | tail -1)
mv "$T/repo1/backups/$INCR" "$T/incr.saved"
cp -a "$T/repo1/backups/$FULL2" "$T/repo1/backups/$INCR"
R3=$(newdir r3)
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" restore \
  --pgdata "$R3" --backup "$INCR2" --target-latest >"$T/restore.out" 2>&1
rc=$?
[ "$rc" -ne 0 ]; ok $? "the restore of $INCR2 over a re-made parent fails (exit $rc)"
like "$(cat "$T/restore.out")" "$INCR" "naming the parent"
diag "$(grep ERROR "$T/restore.out" | tail -1)"
[ ! -e "$R3/backup_label" ] && [ ! -e "$R3/recovery.signal" ]; ok $? "no backup_label, no recovery.signal: it never looks complete"
rm -rf "$T/repo1/backups/$INCR"; mv "$T/incr.saved" "$T/repo1/backups/$INCR"
# a parent really re-made under its name: taken away, and a new backup
# pushed with the clock set back onto its name (the name is the start
# second: a try that lands on the next second is removed and tried again)
SHIM=$T/clockshift.so
if ws_clockshift_build "$SHIM"; then
  mv "$T/repo1/backups/$INCR" "$T/incr.saved"
  want=$(date -u -d "$(echo "$INCR" | sed -E 's/(....)(..)(..)T(..)(..)(..)Z/\1-\2-\3 \4:\5:\6/')" +%s)
  for try in 1 2 3; do
    pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=$((want - $(date +%s))) "$WALSHIP" --config "$CONF2" \
      backup-push >"$T/remade.out" 2>&1
    [ -d "$T/repo1/backups/$INCR" ] && break
    for b in $(ls "$T/repo1/backups"); do   # the try that missed: not one of ours
      case " $FULL $INCR2 $FULL2 " in *" $b "*) ;; *) rm -rf "$T/repo1/backups/$b" ;; esac
    done
  done
  [ -f "$T/repo1/backups/$INCR/manifest.json" ]; ok $? "backup $INCR re-made under its name" || diag "$(tail -3 "$T/remade.out")"
  R6=$(newdir r6)
  pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" restore \
    --pgdata "$R6" --backup "$INCR2" --target-latest >"$T/restore.out" 2>&1
  rc=$?
  [ "$rc" -ne 0 ]; ok $? "the restore of $INCR2 over its re-made parent fails (exit $rc)"
  like "$(cat "$T/restore.out")" "not the one $INCR2 was taken against" "saying the parent is not the one it was taken against"
  diag "$(grep ERROR "$T/restore.out" | tail -1)"
  [ ! -e "$R6/backup_label" ] && [ ! -e "$R6/recovery.signal" ]; ok $? "no backup_label, no recovery.signal: it never looks complete"
  rm -rf "$T/repo1/backups/$INCR"; mv "$T/incr.saved" "$T/repo1/backups/$INCR"
else
  ok 0 "# SKIP no C compiler for the clock shim"
fi

# the parent's manifest kept, its part swapped for the other backup's
cp -a "$T/repo1/backups/$INCR/part-0001" "$T/part.saved"
cp "$T/repo1/backups/$FULL2/part-0001" "$T/repo1/backups/$INCR/part-0001"
R4=$(newdir r4)
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" restore \
  --pgdata "$R4" --backup "$INCR2" --target-latest >"$T/restore.out" 2>&1
rc=$?
[ "$rc" -ne 0 ]; ok $? "the restore of $INCR2 over a parent's swapped part fails (exit $rc)"
diag "$(grep ERROR "$T/restore.out" | tail -1)"
[ ! -e "$R4/backup_label" ] && [ ! -e "$R4/recovery.signal" ]; ok $? "no backup_label, no recovery.signal: it never looks complete"
cp "$T/part.saved" "$T/repo1/backups/$INCR/part-0001"
pg_run "$PG_BIN/pg_ctl" -D "$R2" -m fast -w stop >/dev/null 2>&1
R5=$(newdir r5)
restore_to "$R5" "$R2PORT" "$INCR2"
snapshot psqlp "$R2PORT" >"$T/got5.txt"
diff "$T/src2.txt" "$T/got5.txt" >/dev/null; ok $? "with the part put back, the chain restores timeline 2's data"

done_testing
