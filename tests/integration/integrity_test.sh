#!/bin/bash
# An archive that cannot be confused (issue 10): every class of confusion,
# each a test against a real PostgreSQL 15, file:// regions and one real
# Swift s3api region on loopback:
#   - a WAL object renamed to another segment's name, and a same-named
#     segment of another cluster (same key): wal-fetch exits 250, verify
#     --full names it, and restore --target-latest --start fails (exit 3)
#     without promoting;
#   - a manifest, backup_label and tablespace_map copied from another
#     backup: backup-fetch refuses, verify reports;
#   - two primaries racing on one WAL name, on file:// and on Swift:
#     exactly one is acknowledged;
#   - two clusters sharing one spool_dir with same-named async regions:
#     never mixed; a queue whose region left the configuration is reported
#     and never shipped;
#   - an empty region directory and a wrong S3 prefix: wal-fetch exits 250;
#   - a failure injected in the encoder or in one region's upload: wal-push
#     and backup-push fail and acknowledge nothing.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"

read -r SP FP FC PGPORT PGPORT2 <<<"$(free_ports 5 | tr '\n' ' ')"
swift_launch "$T/s3" us-east-1 "$SP" || { echo "Bail out! swift"; exit 1; }
on_exit "swift_stop $T/s3"

U=$(pg_user)
mkdir -p "$T/r1" "$T/r2" "$T/spool" "$T/tmp"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
conf() {   # FILE SPOOL R1 R2 [extra global lines]
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $2
pg_conninfo = host=$T/pg/sock port=$PGPORT user=postgres dbname=postgres
parallel = 2
archive_timeout = 30
retry_deadline = 5
connect_timeout = 2
io_timeout = 5
delete_after_backup = false
${5:-}

[region r1]
url = file://$3
mode = sync

[region r2]
url = file://$4
mode = async
CONF
  chmod 600 "$1"
  chown "$U" "$1"
}
CONF=$T/a.conf
conf "$CONF" "$T/spool" "$T/r1" "$T/r2"
chmod 600 "$T/key"
chown -R "$U" "$T/r1" "$T/r2" "$T/spool" "$T/tmp" "$T/key"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

# ---- cluster A archiving through walship, a tablespace, two backups ----
diag "cluster A archiving through walship, a tablespace, two backups: at ${SECONDS}s"
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
pg_conf "$T/pg" "archive_mode = on"
pg_conf "$T/pg" "archive_command = '$WALSHIP --config $CONF wal-push %p'"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
SYSID=$(pg_sysid "$T/pg")
mkdir -p "$T/ts"; chown "$U" "$T/ts"
sql "create tablespace ts location '$T/ts'"
sql "create table ledger (id int primary key) tablespace ts"
sql "insert into ledger select generate_series(1, 100)"
t "backup-push (1)" ws backup-push
sql "insert into ledger select generate_series(101, 200)"
t "backup-push (2)" ws backup-push
for i in 1 2 3; do
  sql "insert into ledger select generate_series(${i}001, ${i}100)"
  sql "select pg_switch_wal()" >/dev/null
done
sql "checkpoint" >/dev/null
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "[ -e '$T/r1/wal/$last' ] && [ -e '$T/r2/wal/$last' ]"
ok $? "cluster A archived through $last in both regions"
swift_wait "$T/s3" >/dev/null || { echo "Bail out! swift"; exit 1; }
fp_start "$FP" "$SP" "$FC" "$T/fp" || { echo "Bail out! proxy"; exit 1; }
on_exit "fp_stop $T/fp"
read -r B1 B2 <<<"$(ws --region r1 backup-list --json | python3 -c 'import json,sys; print(*[b["name"] for b in json.load(sys.stdin)[0]["backups"]])')"
[ -n "$B1" ] && [ -n "$B2" ]; ok $? "two backups: $B1 $B2"
ROWS=$(sql "select count(*) from ledger")
pg_stop "$T/pg" immediate

# the segments after backup 2, in order
mapfile -t SEGS < <(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | sort)
X=${SEGS[-3]}; Y=${SEGS[-2]}

raw_swap() {   # DIR FROM TO: put FROM's stored bytes where TO was
  cp "$1/$2" "$T/tmp/swap" && rm -f "$1/$3" && cp "$T/tmp/swap" "$1/$3" && chown "$U" "$1/$3"
}
restore_raw() {   # DIR KEY: put back the saved original
  rm -f "$1/$2" && cp "$T/tmp/orig.$(basename "$2")" "$1/$2" && chown "$U" "$1/$2"
}

# ---- a WAL object under another segment's name ----
diag "a WAL object under another segment's name: at ${SECONDS}s"
conf "$T/r1only.conf" "$T/spool" "$T/r1" "$T/r2"
sed -i '/^\[region r2\]/,$d' "$T/r1only.conf"
w1() { pg_run "$WALSHIP" --config "$T/r1only.conf" "$@"; }
cp "$T/r1/wal/$Y" "$T/tmp/orig.$Y"
raw_swap "$T/r1/wal" "$X" "$Y"
t_fail "wal-fetch of a segment stored under another name exits 250" 250 \
  w1 wal-fetch "$Y" "$T/tmp/got" --no-prefetch
like "$T_OUT" "stored as \"wal/$Y\" was written as \"wal/$X\"" "...naming what was expected and what was found"
[ ! -e "$T/tmp/got" ]; ok $? "...and writes nothing"
t "the other region's good copy is served meanwhile" ws --region r1 wal-fetch "$Y" "$T/tmp/got2" --no-prefetch
ws verify --region r1 --full >"$T/tmp/v.out" 2>&1
is "$?" 3 "verify --full exits 3"
like "$(cat "$T/tmp/v.out")" "wal/$Y" "...and names the swapped object"

# ---- the same name from another cluster, encrypted with the same key ----
diag "the same name from another cluster, encrypted with the same key: at ${SECONDS}s"
mkdir -p "$T/rB" "$T/spoolB"; chown "$U" "$T/rB" "$T/spoolB"
conf "$T/b.conf" "$T/spoolB" "$T/rB" "$T/rB2" ""
sed -i '/^\[region r2\]/,$d' "$T/b.conf"
walseg "$T/tmp/$Y" "$Y" 7000000000000000001 7
t "cluster B archives a segment of the same name" pg_run "$WALSHIP" --config "$T/b.conf" wal-push "$T/tmp/$Y"
cp "$T/rB/wal/$Y" "$T/tmp/foreign"
rm -f "$T/r1/wal/$Y"; cp "$T/tmp/foreign" "$T/r1/wal/$Y"; chown "$U" "$T/r1/wal/$Y"
t_fail "wal-fetch of another cluster's segment exits 250" 250 w1 wal-fetch "$Y" "$T/tmp/got" --no-prefetch
like "$T_OUT" "belongs to the cluster with system identifier 7000000000000000001, not to this repository's cluster $SYSID" \
  "...naming both clusters"
mkdir -p "$T/tmp/a"; chown "$U" "$T/tmp/a"
ws --region r2 st get "wal/$Y" "$T/tmp/a/$Y" >/dev/null 2>&1
t_fail "pushing cluster A's own $Y into r1 now fails: r1 holds B's" 3 ws wal-push "$T/tmp/a/$Y"

# ---- restore --target-latest through a foreign object: exit 3, no promotion ----
diag "restore --target-latest through a foreign object: exit 3, no promotion: at ${SECONDS}s"
rm -f "$T/r2/wal/$Y"; cp "$T/tmp/foreign" "$T/r2/wal/$Y"; chown "$U" "$T/r2/wal/$Y"
mkdir -p "$T/re"; chown "$U" "$T/re"
t_fail "restore --target-latest --start through it exits 3" 3 \
  ws restore --pgdata "$T/re/data" --target-latest --start --port "$PGPORT2" --tablespace-map "$T/ts=$T/re/ts"
out=$T_OUT
like "$out" "was NOT promoted|not promoted" "...and says the instance was not promoted"
! grep -q "database system is ready to accept connections" "$T/re/data/walship-restore.log" 2>/dev/null
ok $? "...PostgreSQL never opened for writes"
[ ! -e "$T/r1/wal/00000002.history" ] && [ ! -e "$T/r2/wal/00000002.history" ]
ok $? "...and no timeline 2 was archived"
pg_stop "$T/re" immediate
restore_raw "$T/r1/wal" "$Y"
restore_raw "$T/r2/wal" "$Y"
rm -rf "$T/re"; mkdir -p "$T/re"; chown "$U" "$T/re"
t "with the objects back, restore --target-latest --start succeeds" \
  ws restore --pgdata "$T/re/data" --target-latest --start --port "$PGPORT2" --tablespace-map "$T/ts=$T/re/ts"
is "$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$PGPORT2" -U postgres -d postgres -c 'select count(*) from ledger' 2>/dev/null)" \
  "$ROWS" "...with every row ($ROWS)"
pg_stop "$T/re" fast

# ---- a manifest, a label, a tablespace map from another backup ----
diag "a manifest, a label, a tablespace map from another backup: at ${SECONDS}s"
for what in manifest.json backup_label tablespace_map; do
  cp "$T/r1/backups/$B2/$what" "$T/tmp/orig.$what"
  raw_swap "$T/r1/backups" "$B1/$what" "$B2/$what"
  rm -rf "$T/bf"; mkdir -p "$T/bf"; chown "$U" "$T/bf"
  t_fail "backup-fetch of $B2 with $B1's $what exits 3" 3 \
    ws --region r1 backup-fetch "$B2" "$T/bf/data" --tablespace-map "$T/ts=$T/bf/ts"
  like "$T_OUT" "written as \"backups/$B1/$what\"" "...naming where the $what came from"
  [ ! -e "$T/bf/data/backup_label" ]; ok $? "...leaving nothing that looks restorable"
  ws --region r1 verify --full >"$T/tmp/v.out" 2>&1
  like "$(cat "$T/tmp/v.out")" "$B2" "verify --full reports $B2"
  restore_raw "$T/r1/backups/$B2" "$what"
done
t "with its own objects back, $B2 verifies" ws --region r1 verify --full

# ---- two primaries racing on one WAL name ----
diag "two primaries racing on one WAL name: at ${SECONDS}s"
race() {   # KIND CONFIG-A CONFIG-B NAME: both push their own file at once, $RACES times
  local ca=$2 cb=$3 name=$4 wins=0 both=0 kept=0 i n pa pb ra rb t0=$SECONDS
  # 1 MiB segments (a valid wal_segment_size): the races are about names
  : >"$T/tmp/batch"
  for i in $(seq 1 "$RACES"); do
    n=$(printf '%s%08X' "${name:0:16}" $((0x${name:16:8} + i)))
    echo "$T/tmp/ra/$n $n $SYSID $((i * 2)) 1048576" >>"$T/tmp/batch"
    echo "$T/tmp/rb/$n $n $SYSID $((i * 2 + 1)) 1048576" >>"$T/tmp/batch"
  done
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" --batch "$T/tmp/batch" && chown -R "$U" "$T/tmp/ra" "$T/tmp/rb"
  for i in $(seq 1 "$RACES"); do
    n=$(printf '%s%08X' "${name:0:16}" $((0x${name:16:8} + i)))
    pg_run "$WALSHIP" --config "$ca" wal-push "$T/tmp/ra/$n" >/dev/null 2>&1 & pa=$!
    pg_run "$WALSHIP" --config "$cb" wal-push "$T/tmp/rb/$n" >/dev/null 2>&1 & pb=$!
    wait "$pa"; ra=$?; wait "$pb"; rb=$?
    if { [ "$ra" = 0 ] && [ "$rb" != 0 ]; } || { [ "$ra" != 0 ] && [ "$rb" = 0 ]; }; then
      wins=$((wins + 1))
    elif [ "$ra" = 0 ] && [ "$rb" = 0 ]; then
      both=$((both + 1))
    else
      echo "# race $i on $1: exits $ra and $rb"
    fi
    # what the archive holds is an acknowledged writer's file, never a loser's
    pg_run "$WALSHIP" --config "$ca" st get "wal/$n" "$T/tmp/held" >/dev/null 2>&1
    if { [ "$ra" = 0 ] && cmp -s "$T/tmp/held" "$T/tmp/ra/$n"; } || { [ "$rb" = 0 ] && cmp -s "$T/tmp/held" "$T/tmp/rb/$n"; }; then
      kept=$((kept + 1))
    fi
  done
  diag "$1: $RACES races in $((SECONDS - t0)) s"
  is "$kept" "$RACES" "$1: the archive always holds the file of a writer that was acknowledged ($RACES races)"
  if [ -n "${RACE_SWIFT:-}" ]; then
    diag "$1: $wins races with exactly one acknowledged, $both with both (the documented window)"
    [ $((wins + both)) = "$RACES" ]; ok $? "$1: every race acknowledged one writer or, in the window, both"
  else
    is "$wins" "$RACES" "$1: of two primaries racing on one name, exactly one is acknowledged ($RACES races)"
  fi
}
RACES=${RACES:-10}
mkdir -p "$T/tmp/ra" "$T/tmp/rb" "$T/spoolr1" "$T/spoolr2" "$T/rr"
chown -R "$U" "$T/tmp" "$T/spoolr1" "$T/spoolr2" "$T/rr"
for k in 1 2; do
  conf "$T/race$k.conf" "$T/spoolr$k" "$T/rr" "$T/r2"
  sed -i '/^\[region r2\]/,$d' "$T/race$k.conf"
done
race file:// "$T/race1.conf" "$T/race2.conf" 000000010000005000000000
swift_create_bucket "$SP" us-east-1 race >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
for k in 1 2; do
  cat >"$T/srace$k.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spoolr$k
parallel = 2
retry_deadline = 10

[region s1]
url = s3://race/p
endpoint = http://127.0.0.1:$SP
path_style = true
aws_region = us-east-1
access_key_id = test:tester
secret_access_key = testing
CONF
  chmod 600 "$T/srace$k.conf"; chown "$U" "$T/srace$k.conf"
done
# S3 with conditional writes (If-None-Match: *, as AWS has them): the fault
# proxy gives Swift that semantics
sed -i "s|endpoint = http://127.0.0.1:$SP|endpoint = http://127.0.0.1:$FP|" "$T/srace1.conf" "$T/srace2.conf"
fp_ctl "$FC" conditional on >/dev/null
race "S3 with conditional writes" "$T/srace1.conf" "$T/srace2.conf" 000000010000006000000000
is "$(pg_run "$WALSHIP" --config "$T/srace1.conf" st ls wal/ 2>/dev/null | wc -l)" "$RACES" "...every raced name holds one object"
# Swift itself answers 501 to If-None-Match: walship checks before and reads
# back after; both writers can still win when their check-write-readback
# sequences interleave exactly (docs/S3.md): the stored object is then one
# acknowledged writer's
sed -i "s|endpoint = http://127.0.0.1:$FP|endpoint = http://127.0.0.1:$SP|; s|url = s3://race/p|url = s3://race/q|" \
  "$T/srace1.conf" "$T/srace2.conf"
RACE_SWIFT=1 race "Swift (no conditional writes)" "$T/srace1.conf" "$T/srace2.conf" 000000010000007000000000

# ---- a wrong prefix, an empty directory: never "end of the archive" ----
diag "a wrong prefix, an empty directory: never end of the archive: at ${SECONDS}s"
sed 's|url = s3://race/.*|url = s3://race/wrong-prefix|' "$T/srace1.conf" >"$T/wrong.conf"
chmod 600 "$T/wrong.conf"; chown "$U" "$T/wrong.conf"
t_fail "wal-fetch from a wrong S3 prefix exits 250" 250 \
  pg_run "$WALSHIP" --config "$T/wrong.conf" wal-fetch 000000010000006000000001 "$T/tmp/w" --no-prefetch
like "$T_OUT" "holds no walship repository" "...saying there is no repository there"
mkdir -p "$T/empty"; chown "$U" "$T/empty"
mkdir -p "$T/empty2"; chown "$U" "$T/empty2"
conf "$T/empty.conf" "$T/spool" "$T/empty" "$T/empty2"
t_fail "wal-fetch from an empty region directory (an unmounted mount point) exits 250" 250 \
  pg_run "$WALSHIP" --config "$T/empty.conf" wal-fetch "$Y" "$T/tmp/w" --no-prefetch
t_fail "backup-list on it exits 3" 3 pg_run "$WALSHIP" --config "$T/empty.conf" backup-list
t_fail "restore from it exits 3" 3 pg_run "$WALSHIP" --config "$T/empty.conf" restore --pgdata "$T/tmp/none"

# ---- two clusters sharing one spool, async regions of the same name ----
diag "two clusters sharing one spool, async regions of the same name: at ${SECONDS}s"
mkdir -p "$T/shared" "$T/c1/global" "$T/c2/global" "$T/s1" "$T/s2" "$T/e1" "$T/e2"
for k in 1 2; do
  python3 -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('=Q', int(sys.argv[2])) + bytes(8184))" \
    "$T/c$k/global/pg_control" "700000000000000000$k"
  echo 15 >"$T/c$k/PG_VERSION"
  conf "$T/c$k.conf" "$T/shared" "$T/s$k" "$T/e$k" "pgdata = $T/c$k"
  mkdir -p "$T/c$k/pg_wal"
  walseg "$T/c$k/pg_wal/000000010000000000000010" 000000010000000000000010 "700000000000000000$k" "$k"
done
chown -R "$U" "$T/shared" "$T/c1" "$T/c2" "$T/s1" "$T/s2"
# the async regions are not there yet: both files wait in the shared spool
t "cluster 1 archives 000000010000000000000010 (its async region waits)" \
  pg_run "$WALSHIP" --config "$T/c1.conf" wal-push "$T/c1/pg_wal/000000010000000000000010"
t "cluster 2 archives a file of the same name: not taken for cluster 1's" \
  pg_run "$WALSHIP" --config "$T/c2.conf" wal-push "$T/c2/pg_wal/000000010000000000000010"
n1=$(ls "$T/shared/7000000000000000001/queue/"r2-*/ 2>/dev/null | wc -l)
n2=$(ls "$T/shared/7000000000000000002/queue/"r2-*/ 2>/dev/null | wc -l)
[ "$n1" = 1 ] && [ "$n2" = 1 ]; ok $? "each cluster's entry waits in its own spool ($n1, $n2)"
chown "$U" "$T/e1" "$T/e2"
t "cluster 1's shipper ships" pg_run "$WALSHIP" --config "$T/c1.conf" ship --once
t "cluster 2's shipper ships" pg_run "$WALSHIP" --config "$T/c2.conf" ship --once
for k in 1 2; do
  pg_run "$WALSHIP" --config "$T/c$k.conf" --region r2 st get wal/000000010000000000000010 "$T/tmp/e$k" >/dev/null 2>&1 &&
    cmp -s "$T/tmp/e$k" "$T/c$k/pg_wal/000000010000000000000010"
  ok $? "cluster $k's async region holds cluster $k's file"
done
# a queue whose region left the configuration: reported, never shipped
walseg "$T/c1/pg_wal/000000010000000000000011" 000000010000000000000011 7000000000000000001 3
rmdir "$T/e1" 2>/dev/null; mv "$T/e1" "$T/e1.away"
t "cluster 1 archives 000000010000000000000011 (its async region is away)" \
  pg_run "$WALSHIP" --config "$T/c1.conf" wal-push "$T/c1/pg_wal/000000010000000000000011"
# the background shipper wal-push started retries the absent region: stop
# it, once it holds its lock (it is detached: it may not have started yet)
wait_for 30 test -s "$T/shared/7000000000000000001/ship.lock"
ws_stop_daemons "$T/shared/7000000000000000001"
sed -i "s|url = file://$T/e1|url = file://$T/e1-moved|" "$T/c1.conf"
mkdir -p "$T/e1-moved"; chown "$U" "$T/e1-moved"
pg_run "$WALSHIP" --config "$T/c1.conf" ship --once >"$T/tmp/ship.out" 2>&1
like "$(cat "$T/tmp/ship.out")" "not configured" "ship reports the files queued for a region no longer configured"
[ -z "$(ls "$T/e1-moved")" ]; ok $? "...and never ships them to the region's new url"
pg_run "$WALSHIP" --config "$T/c1.conf" status >"$T/tmp/status.out" 2>&1
like "$(cat "$T/tmp/status.out")" "not configured" "status reports them too"

# ---- a failure anywhere in the chain: nothing acknowledged ----
diag "a failure anywhere in the chain: nothing acknowledged: at ${SECONDS}s"
walseg "$T/c1/pg_wal/000000010000000000000012" 000000010000000000000012 7000000000000000001 4
for point in obj.encode:close obj.zstd:write obj.encode:write; do
  t_fail "wal-push with a fault injected at $point exits 3" 3 \
    pg_run env WALSHIP_FAULT_INJECT="$point" "$WALSHIP" --config "$T/c1.conf" wal-push "$T/c1/pg_wal/000000010000000000000012"
  [ ! -e "$T/s1/wal/000000010000000000000012" ] &&
    [ -z "$(ls "$T/shared/7000000000000000001/queue/"*/000000010000000000000012 2>/dev/null)" ]
  ok $? "...nothing uploaded, nothing spooled"
done
t_fail "wal-push with r1's upload failing at close exits 3" 3 \
  pg_run env WALSHIP_FAULT_INJECT=upload.r1:close "$WALSHIP" --config "$T/c1.conf" wal-push "$T/c1/pg_wal/000000010000000000000012"
like "$T_OUT" "r1" "...naming the region"
t "without the fault it is archived" pg_run "$WALSHIP" --config "$T/c1.conf" wal-push "$T/c1/pg_wal/000000010000000000000012"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres"; exit 1; }
before=$(ws --region r1 backup-list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
for point in obj.encode:close upload.r1:write; do
  t_fail "backup-push with a fault at $point exits 3" 3 pg_run env WALSHIP_FAULT_INJECT="$point" "$WALSHIP" --config "$CONF" backup-push
  after=$(ws --region r1 backup-list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
  is "$after" "$before" "...and r1 has no new backup"
done
pg_stop "$T/pg" fast
done_testing
