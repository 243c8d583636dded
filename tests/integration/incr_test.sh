#!/bin/bash
# Block-level incremental backups (issue 13) with PostgreSQL 15 and two
# file:// regions: a full backup, then changes that defeat page-LSN
# detection (VACUUM's visibility and free space maps, hint bits), created,
# dropped, truncated and extended relations, CREATE DATABASE with FILE_COPY
# and WAL_LOG, an unlogged table; an incremental; an incremental of it; each
# restored on a bare host (--from) and compared query by query with the
# source, and checked by pg_amcheck; also under pgbench, with a table moved
# to a tablespace; backup-list; the max_chain / full_every policy.  A missing or damaged link is refused
# naming it; kill -9 during an incremental leaves nothing visible;
# retention keeps a retained backup's parents; a chain that lost a part
# gets a full backup; a part removed while a backup runs fails it.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"   # free_ports
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
# prefetchers that restores and standbys leave behind: stopped by the PID in their lock
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT RPORT <<<"$(free_ports 2 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo1" "$T/repo2"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "compression = zstd:3" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo1" "mode = sync"
ws_region "$CONF" two "file://$T/repo2" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "autovacuum = off"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
rsql() { pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d "${2:-postgres}" -c "$1"; }
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }
on_exit "for d in $T/r*/data; do [ -f \$d/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

pg_run "$PG_BIN/pgbench" -i -s 4 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
sql "create table t_drop as select g, md5(g::text) v from generate_series(1, 50000) g"
sql "create table t_trunc as select g, md5(g::text) v from generate_series(1, 50000) g"
sql "create table t_grow (id int primary key, v text)"
sql "insert into t_grow select g, repeat('x', 200) from generate_series(1, 20000) g"
sql "create unlogged table t_unlogged as select g from generate_series(1, 1000) g"
mkdir -p "$T/ts1"; chown "$(pg_user)" "$T/ts1"
sql "create tablespace ts1 location '$T/ts1'"
sql "create table t_ts (id int primary key, v text) tablespace ts1"
sql "insert into t_ts select g, md5(g::text) from generate_series(1, 20000) g"
sql "create table t_move as select g, md5(g::text) v from generate_series(1, 20000) g"
sql "checkpoint"

t "full backup" ws backup-push
FULL=$(ls "$T/repo1/backups")

# ---- changes that page LSNs miss, and relations coming and going ----
sql "update pgbench_accounts set abalance = abalance + 1 where aid between 1000 and 3000"
sql "vacuum pgbench_accounts"                                    # VM and FSM: no LSN bump on every page
sql "select count(*) from pgbench_accounts where aid > 390000" >/dev/null   # hint bits only
sql "create table t_new as select g, md5(g::text) v from generate_series(1, 30000) g"
sql "drop table t_drop"
sql "truncate t_trunc"
sql "insert into t_trunc values (1, 'after truncate')"
sql "insert into t_grow select g, repeat('y', 200) from generate_series(20001, 80000) g"  # grows past its size
sql "create database db_copy strategy file_copy"
sql "create database db_wal strategy wal_log"
pg_run "$PG_BIN/psql" -X -q -h "$T/pg/sock" -p "$PGPORT" -U postgres -d db_copy -c "create table c as select generate_series(1, 5000) g" >/dev/null
sql "insert into t_unlogged select generate_series(1, 1000)"
sql "update t_ts set v = 'changed' where id between 100 and 200"
sql "alter table t_move set tablespace ts1"                     # its files move to pg_tblspc/
sql "checkpoint"

t "incremental backup" ws backup-push --incremental
like "$T_OUT" "is an incremental of backup $FULL" "it is an incremental of the full backup"
INCR1=$(ls "$T/repo1/backups" | tail -1)
full_bytes=$(du -sb "$T/repo1/backups/$FULL" | cut -f1)
incr_bytes=$(du -sb "$T/repo1/backups/$INCR1" | cut -f1)
diag "stored: full $full_bytes bytes, incremental $incr_bytes bytes"
[ "$incr_bytes" -lt $((full_bytes / 2)) ]; ok $? "the incremental stores less than half the full ($incr_bytes < $full_bytes)"
t "verify --full reads the incremental" ws verify --full
t "backup-list lists it" ws backup-list
like "$T_OUT" "$INCR1 .* incremental of $FULL" "as an incremental of the full backup"
ws backup-list --json >"$T/list.json" 2>/dev/null
is "$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))[0]["backups"]; print(b[0]["type"], b[1]["type"], b[1]["parent"], b[1]["depth"])' "$T/list.json")" \
  "full incr $FULL 1" "backup-list --json gives type, parent and depth"

# what the source holds now: compared after each restore
snapshot() {   # QUERY-RUNNER
  "$1" "select sum(abalance), count(*), md5(string_agg(aid::text || ':' || abalance, ',' order by aid)) from pgbench_accounts"
  "$1" "select md5(string_agg(g::text || v, ',' order by g)) from t_new"
  "$1" "select count(*), md5(string_agg(v, ',' order by g)) from t_trunc"
  "$1" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_grow"
  "$1" "select count(*) from pg_class where relname = 't_drop'"
  "$1" "select datname from pg_database order by 1"
  "$1" "select count(*), md5(string_agg(id::text || v, ',' order by id)) from t_ts"
  "$1" "select count(*), md5(string_agg(g::text || v, ',' order by g)) from t_move"
  "$1" "select count(*), sum(abalance) from pgbench_accounts where aid % 7 = 3"
}
sw=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "ls $T/repo2/wal/ | grep -q '^$sw'"
snapshot sql >"$T/src1.txt"
sleep 1.2
TIME1=$(sql "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 1.2
count_c=$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$PGPORT" -U postgres -d db_copy -c "select count(*) from c")

check_restore() {   # DIR NAME SNAPSHOT [RESTORE OPTIONS]
  local d=$1 name=$2 snap=$3
  shift 3
  [ $# -gt 0 ] || set -- --backup "$name" --target-latest
  pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo2" --key-file "$T/key" restore \
    --pgdata "$d" --tablespace-map "$T/ts1=$d.ts1" "$@" >"$T/restore.out" 2>&1
  ok $? "restore of $name on a bare host (--from $*)" || diag "$(tail -5 "$T/restore.out")"
  like "$(cat "$T/restore.out")" "$name" "it restores backup $name"
  pg_run "$PG_BIN/pg_ctl" -D "$d" -l "$d.log" -o "-p $RPORT" -w -t 120 start >/dev/null 2>&1
  wait_for 60 bash -c "runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $RPORT -U postgres -d postgres -c 'select not pg_is_in_recovery()' | grep -q t"
  ok $? "the restored $name is promoted"
  snapshot rsql >"$T/got.txt"
  diff "$snap" "$T/got.txt" >"$T/diff.txt"
  ok $? "every query gives the source's result" || diag "$(cat "$T/diff.txt")"
  is "$(rsql 'select count(*) from c' db_copy)" "$count_c" "the FILE_COPY database's table"
  is "$(rsql 'select count(*) from t_unlogged')" 0 "the unlogged table is there, empty (its init fork)"
  if [ -x "$PG_BIN/pg_amcheck" ]; then
    pg_run "$PG_BIN/pg_amcheck" -h "$T/pg/sock" -p "$RPORT" -U postgres --all --install-missing --heapallindexed >"$T/amcheck.out" 2>&1
    ok $? "pg_amcheck --heapallindexed finds nothing" || diag "$(head -5 "$T/amcheck.out")"
  fi
  pg_run "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1
}
check_restore "$(newdir r1)" "$INCR1" "$T/src1.txt"

# ---- an incremental of an incremental ----
sql "update pgbench_accounts set abalance = abalance - 7 where aid between 200000 and 200500"
sql "update t_new set v = 'changed' where g % 1000 = 0"
sql "alter table t_grow set (fillfactor = 50)"
sql "vacuum full t_grow"                                          # a new relfilenode
sql "checkpoint"
t "incremental of the incremental" ws backup-push --incremental
like "$T_OUT" "is an incremental of backup $INCR1" "its parent is the first incremental"
INCR2=$(ls "$T/repo1/backups" | tail -1)
ws backup-list --json >"$T/list2.json" 2>/dev/null
is "$(python3 -c 'import json,sys
b=json.load(open(sys.argv[1]))[0]["backups"]
ok = b[0]["chain_size"] == b[0]["stored_size"] and b[1]["chain_size"] == b[0]["stored_size"] + b[1]["stored_size"] \
  and b[2]["chain_size"] == b[0]["stored_size"] + b[1]["stored_size"] + b[2]["stored_size"] and b[2]["depth"] == 2
print(ok)' "$T/list2.json")" "True" "backup-list --json: chain_size is the stored bytes of the backup and its ancestors"
t "backup-list shows the chain" ws backup-list
like "$T_OUT" "$INCR2 .* incremental of $INCR1, depth 2, chain [0-9.]+ [kMG]?i?B" "with its depth and chain size in text"
sw=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "ls $T/repo2/wal/ | grep -q '^$sw'"
snapshot sql >"$T/src2.txt"
check_restore "$(newdir r2)" "$INCR2" "$T/src2.txt"

# ---- an incremental taken while pgbench writes ----
pg_run "$PG_BIN/pgbench" -n -c 2 -T 8 -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >"$T/pgbench.out" 2>&1 &
pgb=$!
sleep 2
t "incremental under pgbench" ws backup-push --incremental
INCR3=$(ls "$T/repo1/backups" | tail -1)
wait "$pgb"
ok $? "pgbench ran through the backup"
sw=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "ls $T/repo2/wal/ | grep -q '^$sw'"
snapshot sql >"$T/src3.txt"
check_restore "$(newdir r3)" "$INCR3" "$T/src3.txt"

# restore to a time: the newest backup before it is the first incremental
check_restore "$(newdir r4)" "$INCR1" "$T/src1.txt" --target-time "$TIME1"

# the pure file check, without WAL: backup-fetch assembles the chain and
# checks every file's SHA-256 against the newest manifest
d=$(newdir f2)
t "backup-fetch of the second incremental" ws backup-fetch "$INCR2" "$d" --tablespace-map "$T/ts1=$d.ts1"

# ---- a missing or damaged link is refused, naming it ----
cp -a "$T/repo2" "$T/repo3"
rm "$T/repo3/backups/$FULL/manifest.json"
d=$(newdir f3)
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo3" --key-file "$T/key" backup-fetch "$INCR2" "$d" --tablespace-map "$T/ts1=$d.ts1" >"$T/f3.out" 2>&1
st=$?
is "$st" 3 "a chain without its full backup is refused (exit 3)"
like "$(cat "$T/f3.out")" "needs backup $FULL" "the message names the missing link"
[ ! -e "$d" ] || [ -z "$(ls -A "$d")" ]; ok $? "and nothing was written"
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo3" --key-file "$T/key" verify >"$T/v3.out" 2>&1
is "$?" 3 "verify fails on a chain without its full backup"
like "$(cat "$T/v3.out")" "$INCR1 is an incremental of backup $FULL, which is missing" "naming the missing link"
like "$(cat "$T/v3.out")" "$INCR2 cannot be restored: backup $INCR2 needs backup $FULL \(link 2 of its chain" \
  "and the chain of the second incremental, naming the link"
rm -rf "$T/repo3"

cp -a "$T/repo2" "$T/repo3"
part=$(ls "$T/repo3/backups/$INCR1/" | grep part- | head -1)
python3 -c "
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 1
open(p, 'wb').write(bytes(b))" "$T/repo3/backups/$INCR1/$part"
d=$(newdir f4)
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo3" --key-file "$T/key" backup-fetch "$INCR2" "$d" --tablespace-map "$T/ts1=$d.ts1" >"$T/f4.out" 2>&1
st=$?
is "$st" 3 "a chain with a damaged link is refused (exit 3)"
like "$(cat "$T/f4.out")" "$INCR1" "the message names the damaged link"
[ ! -e "$d/backup_label" ]; ok $? "and the directory has no backup_label"
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo3" --key-file "$T/key" verify --full >"$T/v4.out" 2>&1
is "$?" 3 "verify --full fails on a chain with a damaged link"
like "$(cat "$T/v4.out")" "$INCR2 cannot be restored: its chain .* link 1 \($INCR1\) is damaged" \
  "naming the chain and the damaged link"
rm -rf "$T/repo3"

# ---- kill -9 during an incremental: nothing visible ----
sql "create table t_big as select g, md5(g::text) v from generate_series(1, 600000) g"
sql "checkpoint"
before=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
ls -d "$T"/repo1/backups/*/ >"$T/bk.before" 2>/dev/null
# PostgreSQL's archiver is stopped meanwhile: backup-push then waits (up
# to archive_timeout) for its stop segment after its last part, so the
# kill lands while it runs however fast it stores the parts
ARCH=$(sql "select pid from pg_stat_activity where backend_type = 'archiver'")
[ -n "$ARCH" ] && kill -STOP "$ARCH" && on_exit "kill -CONT $ARCH 2>/dev/null"
pg_run "$WALSHIP" --config "$CONF" backup-push --incremental --part-size 1MB >/dev/null 2>&1 &
bk=$!
# killed once a part of the new backup is stored, by the PID in its lock
new_part() {
  local dir
  for dir in "$T"/repo1/backups/*/; do
    grep -qxF "$dir" "$T/bk.before" && continue
    ls "$dir"part-* >/dev/null 2>&1 && return 0
  done
  return 1
}
wait_for 60 new_part
ws_kill_lock_holder -KILL "$(ls "$T"/spool/*/backup.lock | head -1)"
ok $? "the incremental is killed with -9 while it uploads"
wait "$bk" 2>/dev/null
[ -n "$ARCH" ] && kill -CONT "$ARCH"
after=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
is "$after" "$before" "an incremental killed with -9 is not listed"
t "an incremental after the killed one" ws backup-push --incremental
like "$T_OUT" "is an incremental of backup $INCR3" "it takes the newest complete backup as its parent"

# ---- retention keeps what a retained backup needs ----
sed 's/^mode = sync$/mode = sync\nretain_full = 1/' "$CONF" >"$T/ret.conf"
chmod 600 "$T/ret.conf"; chown "$(pg_user)" "$T/ret.conf"
t "delete with retain_full = 1" pg_run "$WALSHIP" --config "$T/ret.conf" delete
for b in "$FULL" "$INCR1" "$INCR2" "$INCR3"; do
  [ -e "$T/repo1/backups/$b/manifest.json" ]; ok $? "backup $b, a parent of the newest, is kept"
done

# ---- what a small change costs ----
sql "update pgbench_accounts set abalance = abalance + 1 where aid between 300000 and 300100"
sql "checkpoint"
t0=$(date +%s.%N)
t "incremental after a 100-row update" ws backup-push --incremental
t1=$(date +%s.%N)
last=$(ls "$T/repo1/backups" | tail -1)
full_parts=$(cat "$T/repo1/backups/$FULL"/part-* | wc -c)
last_parts=$(cat "$T/repo1/backups/$last"/part-* 2>/dev/null | wc -c)
diag "100-row update: incremental parts $last_parts bytes (+ blockhash $(stat -c %s "$T/repo1/backups/$last/blockhash")), full parts $full_parts bytes; $(echo "$t1 - $t0" | bc) s"
[ "$last_parts" -lt $((full_parts / 10)) ]; ok $? "it stores less than a tenth of the full backup"

# ---- the schedule policy: max_chain, full_every ----
sed 's/^parallel = 2$/parallel = 2\nmax_chain = 2/' "$CONF" >"$T/mc.conf"
chmod 600 "$T/mc.conf"; chown "$(pg_user)" "$T/mc.conf"
t "max_chain = 2: an incremental on a long chain" pg_run "$WALSHIP" --config "$T/mc.conf" backup-push --incremental
like "$T_OUT" "max_chain = 2" "is a full backup, and says why"
FULL2=$(ls "$T/repo1/backups" | tail -1)
mkdir -p "$T/get"; chown "$(pg_user)" "$T/get"
ws st get "backups/$FULL2/manifest.json" "$T/get/m.json" >/dev/null 2>&1
grep -q '"type":"full"' "$T/get/m.json"; ok $? "its manifest says full"
t "the next incremental" pg_run "$WALSHIP" --config "$T/mc.conf" backup-push --incremental
like "$T_OUT" "is an incremental of backup $FULL2" "takes the new full backup as its parent"
sed 's/^parallel = 2$/parallel = 2\nfull_every = 1s/' "$CONF" >"$T/fe.conf"
chmod 600 "$T/fe.conf"; chown "$(pg_user)" "$T/fe.conf"
sleep 1
t "full_every = 1s: an incremental" pg_run "$WALSHIP" --config "$T/fe.conf" backup-push --incremental
like "$T_OUT" "full_every" "is a full backup, and says why"

# ---- a parent whose block hashes are gone: a full backup, saying why ----
last=$(ls "$T/repo1/backups" | tail -1)
rm "$T/repo1/backups/$last/blockhash"
t "an incremental whose parent lost its block hashes" ws backup-push --incremental
like "$T_OUT" "block hashes of backup $last" "is a full backup, and says why"
t_fail "verify reports the missing blockhash" 3 ws verify
like "$T_OUT" "$last: blockhash is missing" "naming it"

# ---- a parent whose chain lost a part: a full backup, saying why ----
# (an incremental over it was reported done and could never be restored,
# and the next one built on it again: adversarial pass, incr_parent.sh)
t "a full backup" ws backup-push
NF=$(ls "$T/repo1/backups" | tail -1)
sql "update pgbench_accounts set abalance = abalance + 1 where aid < 100"
t "an incremental of it" ws backup-push --incremental
NI=$(ls "$T/repo1/backups" | tail -1)
mkdir -p "$T/away"
mv "$T/repo1/backups/$NF/part-0001" "$T/away/"
t "an incremental whose chain lost a part in one region" ws backup-push --incremental
like "$T_OUT" "chain of backup $NI is damaged: region one: part 1 of backup $NF is missing" \
  "is a full backup, and names the region, the backup and the part"
last=$(ls "$T/repo1/backups" | tail -1)
ws st get "backups/$last/manifest.json" "$T/get/m2.json" >/dev/null 2>&1
grep -q '"type":"full"' "$T/get/m2.json"; ok $? "its manifest says full"
mv "$T/away/part-0001" "$T/repo1/backups/$NF/"

# ---- a part removed while the backup runs: no manifest over it ----
# (a `delete` with garbage_hours = 0, or a clock ahead, took the backup in
# progress for an abandoned one; the backup was reported done over missing
# parts and its own retention then deleted the last good backup)
before=$(ls "$T/repo1/backups" | wc -l)
ls "$T/repo1/backups" >"$T/race.before"
ws backup-push --part-size 1MB >"$T/race.out" 2>&1 &
bp=$!
new=""
end=$((SECONDS + 60))   # polled by time, not by count: a loaded run polls slowly
while [ "$SECONDS" -lt "$end" ] && kill -0 "$bp" 2>/dev/null; do
  new=$(ls "$T/repo1/backups" | grep -vxF -f "$T/race.before" | head -1)
  [ -n "$new" ] && [ -e "$T/repo1/backups/$new/part-0001" ] && break
  new=""
  sleep 0.01
done
[ -n "$new" ] && mv "$T/repo1/backups/$new/part-0001" "$T/away/" 2>/dev/null
if [ -n "$new" ] && kill -0 "$bp" 2>/dev/null; then
  wait "$bp"; st=$?
  is "$st" 3 "backup-push whose part was removed while it ran exits 3"
  like "$(cat "$T/race.out")" "not writing the manifest.*part 1 of backup $new is missing" "... saying why"
  [ ! -e "$T/repo1/backups/$new/manifest.json" ]; ok $? "... and writes no manifest in that region"
else
  wait "$bp"
  ok 0 "a part removed while the backup runs # SKIP the backup finished before its part could be removed"
fi
[ "$(ls "$T/repo1/backups" | wc -l)" -ge "$before" ]; ok $? "no backup was lost"

# ---- an incremental whose parent sorts after it (taken with the clock a
# day back): backup-list still sums its chain ----
SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds"
sql "insert into t_grow values (424242, 'x')" >/dev/null 2>&1
pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=-86400 "$WALSHIP" --config "$CONF" backup-push --incremental >"$T/back.out" 2>&1
ok $? "backup-push --incremental with the clock a day back"
back=$(sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' "$T/back.out" | head -1)
like "$(cat "$T/back.out")" "incremental of" "... an incremental (of a parent that sorts after it)"
out=$(ws backup-list 2>&1)
unlike "$out" "a link is missing" "backup-list: its chain is not taken for broken"
ws backup-list --json >"$T/list3.json" 2>/dev/null
is "$(python3 -c 'import json,sys; b=[x for r in json.load(open(sys.argv[1])) for x in r["backups"] if x["name"]==sys.argv[2]]; print(all(x.get("chain_size") for x in b) and len(b) > 0)' "$T/list3.json" "$back")" "True" \
  "backup-list --json: its chain_size is known"

done_testing
