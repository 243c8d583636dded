#!/bin/bash
# walship copy: seed a second region from the first, byte for byte, with
# no primary to talk to; restore from the copy; a second copy copies
# nothing; a half-finished copy is finished by running it again; --since
# and --dry-run.  file:// regions and a real PostgreSQL 15.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
on_exit "ws_stop_daemons '$T'"   # wal-fetch prefetchers the restores started

PGPORT=$(pg_free_port)
RPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1" "$T/r2"
ws_key "$T/key"
# The primary archives to R1 only.
ws_conf "$T/primary.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/primary.conf" r1 "file://$T/r1" "mode = sync"
# The copying host knows both regions, and nothing about the primary.
ws_conf "$T/copy.conf"
ws_region "$T/copy.conf" r1 "file://$T/r1"
ws_region "$T/copy.conf" r2 "file://$T/r2"
# The DR host knows only R2.
ws_conf "$T/dr.conf"
ws_region "$T/dr.conf" r2 "file://$T/r2"
wp() { pg_run "$WALSHIP" --config "$T/primary.conf" "$@"; }
wc2() { pg_run "$WALSHIP" --config "$T/copy.conf" "$@"; }
wdr() { pg_run "$WALSHIP" --config "$T/dr.conf" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/primary.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

pg_run "$PG_BIN/pgbench" -i -s 1 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
sql "create table marker (id text primary key)"
sql "insert into marker values ('A')"
t "first backup into r1" wp backup-push
sleep 1.1
sql "insert into marker values ('B')"
t "second backup into r1" wp backup-push
sql "insert into marker values ('C')"
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$last"
ok $? "everything up to $last is archived in r1"
pg_stop "$T/pg" fast

B1=$(ls "$T/r1/backups" | sort | head -1)
B2=$(ls "$T/r1/backups" | sort | tail -1)
[ -n "$B1" ] && [ "$B1" != "$B2" ]; ok $? "r1 holds two backups ($B1, $B2)"
is "$(ls "$T/r2" | wc -l)" 0 "r2 starts empty"

# ---- restore: a first region that answers but has no backup yet ----
# (a region being seeded: its identity and WAL, no backup copied yet)
ws_mkdirs "$T/r0/backups"
cp -a "$T/r1/identity.json" "$T/r1/wal" "$T/r0/" && ws_own "$T/r0"
ws_conf "$T/seed.conf"
ws_region "$T/seed.conf" r0 "file://$T/r0"
ws_region "$T/seed.conf" r1 "file://$T/r1"
ws_mkdirs "$T/seed"
t "restore without --region: the first region has no backup, the next one does" \
  pg_run "$WALSHIP" --config "$T/seed.conf" restore --pgdata "$T/seed/data" --target-latest
like "$T_OUT" "restoring backup $B2 .* from region r1" "...the backup comes from r1"
like "$T_OUT" "region r0: there is no complete backup to restore from; trying the next region" \
  "...and r0 is named as passed over"
rm -rf "$T/r0" "$T/seed"

# start_wal NAME: the backup's start segment, from backup-list --json.
start_wal() {
  wc2 backup-list --region r1 --json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin)
def walk(x):
    if isinstance(x, dict):
        if x.get("name") == sys.argv[1]: print(x.get("start_wal","")); sys.exit()
        for v in x.values(): walk(v)
    elif isinstance(x, list):
        for v in x: walk(v)
walk(d)' "$1"
}

# ---- usage and not found ----
t_fail "copy without --to is a usage error" 2 wc2 copy --from r1
t_fail "copy to an unknown region is a configuration error" 2 wc2 copy --from r1 --to nowhere
t_fail "copy --since a backup r1 does not have exits 1" 1 wc2 copy --from r1 --to r2 --since 20010101T000000Z

# ---- dry run ----
t "copy --dry-run" wc2 copy --from r1 --to r2 --dry-run
like "$T_OUT" "would copy backups/$B1/manifest.json" "the dry run names what it would copy"
is "$(find "$T/r2" -type f | wc -l)" 0 "and copies nothing"

# ---- --since: only the second backup ----
t "copy --since the second backup" wc2 copy --from r1 --to r2 --since "$B2"
[ -e "$T/r2/backups/$B2/manifest.json" ] && [ ! -e "$T/r2/backups/$B1" ]; ok $? "only $B2 was copied"
start2=$(start_wal "$B2")
older=$(cd "$T/r1/wal" && ls | grep -E '^[0-9A-F]{24}$' | sort | head -1)
if [ -n "$start2" ]; then
  [ ! -e "$T/r2/wal/$older" ] || [ "$older" \> "$start2" ] || [ "$older" = "$start2" ]
  ok $? "WAL older than $B2's start ($start2) was not copied"
else
  [ ! -e "$T/r2/wal/$older" ]; ok $? "the oldest WAL segment ($older) was not copied"
fi
[ -e "$T/r2/wal/$last" ]; ok $? "the newest WAL ($last) was copied"

# ---- the full copy ----
t "copy r1 to r2" wc2 copy --from r1 --to r2
like "$T_OUT" "manifests +1 copied" "one manifest copied (the other was there)"
list=$(wc2 backup-list --region r2 2>&1)
like "$list" "$B1" "backup-list shows $B1 in r2"
like "$list" "$B2" "backup-list shows $B2 in r2"
start1=$(start_wal "$B1")
same=0
for f in $(cd "$T/r1" && find backups wal -type f | sort); do
  n=${f#wal/}
  # WAL before the oldest backup's start is not needed, and not copied
  if [ "$n" != "$f" ] && [[ $n =~ ^[0-9A-F]{24} ]] && [ "${n:8:16}" \< "${start1:8:16}" ]; then
    [ ! -e "$T/r2/$f" ] || { same=1; diag "copied but not needed: $f"; }
    continue
  fi
  cmp -s "$T/r1/$f" "$T/r2/$f" || { same=1; diag "differs or missing: $f"; }
done
ok $same "every backup object, and all WAL from $B1's start ($start1) on, is in r2 byte for byte"

t "a second copy" wc2 copy --from r1 --to r2
like "$T_OUT" "backups +0 copied" "copies no backup object"
like "$T_OUT" "wal +0 copied" "and no WAL"

# ---- a half-finished copy is finished by the next one ----
part=$(cd "$T/r2/backups/$B2" && ls | grep -v manifest | head -1)
rm -f "$T/r2/backups/$B2/manifest.json" "$T/r2/backups/$B2/$part" "$T/r2/wal/$last"
list=$(wc2 backup-list --region r2 2>&1)
echo "$list" | grep -q "$B2"; [ $? -ne 0 ]; ok $? "a backup without its manifest is not listed in r2"
t "copy again" wc2 copy --from r1 --to r2
like "$T_OUT" "backups +1 copied" "copies exactly the missing part"
like "$T_OUT" "manifests +1 copied" "and the manifest"
like "$T_OUT" "wal +1 copied" "and the missing WAL file"
cmp -s "$T/r1/backups/$B2/$part" "$T/r2/backups/$B2/$part" &&
  cmp -s "$T/r1/backups/$B2/manifest.json" "$T/r2/backups/$B2/manifest.json"
ok $? "the repaired backup is identical"

# ---- a copied region is enough for a restore, with r1 gone ----
mv "$T/r1" "$T/r1.gone"
mkdir -p "$T/rst"
chown "$(pg_user)" "$T/rst"
on_exit "runuser -u postgres -- $PG_BIN/pg_ctl -D $T/rst/data -m immediate stop"
t "restore --target-latest from r2" wdr --region r2 restore --pgdata "$T/rst/data" --target-latest --start --port "$RPORT"
got=$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres \
  -c "select string_agg(id, '' order by id) from marker" 2>&1)
is "$got" "ABC" "the restored instance has every marker"
pg_run "$PG_BIN/pg_ctl" -D "$T/rst/data" -m fast -w stop >/dev/null 2>&1

# ---- incremental chains: copied whole, parents first (issue 13) ----
mv "$T/r1.gone" "$T/r1"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not restart"; exit 1; }
sql "insert into marker values ('D')"
t "a full backup into r1" wp backup-push
sleep 1.1
sql "update pgbench_accounts set abalance = abalance + 1 where aid between 1 and 5000"
sql "insert into marker values ('E')"
t "an incremental of it" wp backup-push --incremental
like "$T_OUT" "is an incremental of backup" "it is an incremental"
sleep 1.1
sql "update pgbench_accounts set abalance = abalance + 2 where aid between 5001 and 9000"
sql "insert into marker values ('F')"
t "an incremental of the incremental" wp backup-push --incremental
sql "insert into marker values ('G')"
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$last"
ok $? "everything up to $last is archived in r1"
pg_stop "$T/pg" fast
read -r F I1 I2 <<<"$(ls "$T/r1/backups" | sort | tail -3 | xargs)"
ws_mkdirs "$T/r3" "$T/r4" "$T/r5"
ws_region "$T/copy.conf" r3 "file://$T/r3"
ws_region "$T/copy.conf" r4 "file://$T/r4"
ws_region "$T/copy.conf" r5 "file://$T/r5"

t "copy --since the second incremental ($I2) into an empty region" wc2 copy --from r1 --to r3 --since "$I2"
order=$(grep -oE "copying backup [0-9TZ]+" <<<"$T_OUT" | awk '{print $3}' | xargs)
is "$order" "$F $I1 $I2" "it copies the chain's links, parents first"
[ -e "$T/r3/backups/$F/manifest.json" ] && [ -e "$T/r3/backups/$I1/manifest.json" ] &&
  [ -e "$T/r3/backups/$I2/manifest.json" ] && [ ! -e "$T/r3/backups/$B1" ] && [ ! -e "$T/r3/backups/$B2" ]
ok $? "r3 holds the chain and no backup outside it"
t "a second copy into r3" wc2 copy --from r1 --to r3 --since "$I2"
like "$T_OUT" "backups +0 copied" "copies nothing more"

# a link missing in the source is refused before anything is copied
cp -a "$T/r1" "$T/r1m"
rm "$T/r1m/backups/$I1/manifest.json"
ws_region "$T/copy.conf" r1m "file://$T/r1m"
t_fail "copy of an incremental whose parent the source lacks" 3 wc2 copy --from r1m --to r4 --since "$I2"
like "$T_OUT" "not copying backup $I2: it needs backup $I1 \(the parent of $I2\)" "naming the backup and its missing parent"
is "$(find "$T/r4" -name manifest.json | wc -l)" 0 "nothing became visible in r4"
# a parent whose part is missing in the source: the copy stops before the child
cp -a "$T/r1" "$T/r1d"
rm "$T/r1d/backups/$I1/$(ls "$T/r1d/backups/$I1" | grep part- | head -1)"
ws_region "$T/copy.conf" r1d "file://$T/r1d"
t_fail "copy of an incremental whose parent is damaged in the source" 3 wc2 copy --from r1d --to r5 --since "$I2"
like "$T_OUT" "$I1" "naming the damaged link"
[ ! -e "$T/r5/backups/$I1/manifest.json" ] && [ ! -e "$T/r5/backups/$I2/manifest.json" ]
ok $? "neither the damaged link nor its child became visible in r5"

# r3 alone restores the chain's newest backup
mv "$T/r1" "$T/r1.gone"
ws_conf "$T/dr3.conf"
ws_region "$T/dr3.conf" r3 "file://$T/r3"
mkdir -p "$T/rst3"
chown "$(pg_user)" "$T/rst3"
on_exit "runuser -u postgres -- $PG_BIN/pg_ctl -D $T/rst3/data -m immediate stop"
t "restore --target-latest from r3" pg_run "$WALSHIP" --config "$T/dr3.conf" --region r3 restore \
  --pgdata "$T/rst3/data" --target-latest --start --port "$RPORT"
like "$T_OUT" "$I2" "from the newest incremental"
got=$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres \
  -c "select (select string_agg(id, '' order by id) from marker) || ' ' || (select sum(abalance) from pgbench_accounts)" 2>&1)
is "$got" "ABCDEFG 13000" "the restored instance has every marker and every update"
pg_run "$PG_BIN/pg_ctl" -D "$T/rst3/data" -m fast -w stop >/dev/null 2>&1

done_testing
