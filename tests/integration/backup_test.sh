#!/bin/bash
# Base backups with a real PostgreSQL 15 (pgbench + a tablespace) and two
# real Swift s3api regions: backup-push under load, backup-list,
# backup-fetch + recovery to a consistent cluster, and the failure cases.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r P1 P2 F2 C2 PGPORT PGPORT2 <<<"$(free_ports 6 | tr '\n' ' ')"
swift_start_regions "$T/s1" us-east-1 "$P1" "$T/s2" eu-west-1 "$P2" || { echo "Bail out! swift did not start"; exit 1; }
on_exit "swift_stop $T/s1; swift_stop $T/s2"
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
swift_create_bucket "$P2" eu-west-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
fp_start "$F2" "$P2" "$C2" "$T/fp2" || { echo "Bail out! proxy"; exit 1; }
on_exit "fp_stop $T/fp2"

CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/ts1"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 4" "connect_timeout = 2" "io_timeout = 5" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" us-east-1 s3://walship/prod "endpoint = http://127.0.0.1:$P1" "path_style = true" "mode = sync" \
  "access_key_id = test:tester" "secret_access_key = testing"
ws_region "$CONF" eu-west-1 s3://walship/prod "endpoint = http://127.0.0.1:$F2" "path_style = true" "mode = async" \
  "access_key_id = test:tester" "secret_access_key = testing"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
# background shippers and prefetchers started by wal-push / wal-fetch
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
bench() { pg_run "$PG_BIN/pgbench" -h "$T/pg/sock" -p "$PGPORT" -U postgres "$@" postgres >/dev/null 2>&1; }

sql "create tablespace ts1 location '$T/ts1'"
bench -i -s 8 -q
sql "create table tsdata (id int, v text) tablespace ts1"
sql "insert into tsdata select g, md5(g::text) from generate_series(1, 50000) g"
sql "create unlogged table scratch (id int)"
sql "insert into scratch select generate_series(1, 10000)"

# ---- backup-push while pgbench writes ----
bench -n -c 2 -T 30 &
load=$!
sleep 2
t "backup-push while pgbench writes" ws backup-push
out=$T_OUT
kill "$load" 2>/dev/null; wait "$load" 2>/dev/null
like "$(ws --region us-east-1 backup-list 2>&1)" '[0-9]{8}T[0-9]{6}Z +[0-9]{4}-' "backup-list shows it in us-east-1"
like "$(ws --region eu-west-1 backup-list 2>&1)" '[0-9]{8}T[0-9]{6}Z +[0-9]{4}-' "backup-list shows it in eu-west-1"
json=$(ws backup-list --json 2>/dev/null)
name=$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["backups"][-1]["name"])' 2>/dev/null)
like "$name" '^[0-9]{8}T[0-9]{6}Z$' "backup-list --json names the backup"
count=$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(r["backups"]) for r in d))' 2>/dev/null)
is "$count" 2 "the backup is listed once per region"

# the expected content, taken after the backup while the primary runs
sql "insert into tsdata values (-1, 'after backup')"
ws_rows=$(sql "select count(*) from tsdata where id > 0")

# ---- backup-fetch, then recover with wal-fetch ----
mkdir -p "$T/r1"; chown "$(pg_user)" "$T/r1"
t "backup-fetch LATEST from eu-west-1" ws --region eu-west-1 backup-fetch LATEST "$T/r1/data" --tablespace-map "$T/ts1=$T/r1/ts1"
[ -f "$T/r1/data/backup_label" ]; ok $? "backup_label is written"
[ -L "$T/r1/data/pg_tblspc/$(sql "select oid from pg_tablespace where spcname='ts1'")" ]; ok $? "the tablespace link is recreated"
[ ! -e "$T/r1/data/postmaster.pid" ]; ok $? "postmaster.pid is not in the backup"
[ -z "$(ls -A "$T/r1/data/pg_wal" | grep -v archive_status)" ]; ok $? "pg_wal is restored empty"
cat >>"$T/r1/data/postgresql.conf" <<CONF
port = $PGPORT2
unix_socket_directories = '$T/r1/sock'
archive_mode = off
restore_command = '$WALSHIP --config $CONF wal-fetch %f %p'
recovery_target = 'immediate'
recovery_target_action = 'promote'
CONF
mkdir -p "$T/r1/sock"; chown -R "$(pg_user)" "$T/r1"
touch "$T/r1/data/recovery.signal"; chown "$(pg_user)" "$T/r1/data/recovery.signal"
pg_run "$PG_BIN/pg_ctl" -D "$T/r1/data" -l "$T/r1/server.log" -w -t 120 start >/dev/null 2>&1
ok $? "the restored cluster starts and reaches consistency"
on_exit "pg_run $PG_BIN/pg_ctl -D $T/r1/data -m immediate stop"
wait_for 60 bash -c "runuser -u postgres -- $PG_BIN/psql -X -At -h $T/r1/sock -p $PGPORT2 -U postgres -d postgres -c 'select not pg_is_in_recovery()' | grep -q t"
ok $? "the restored cluster is promoted"
rsql() { pg_run "$PG_BIN/psql" -X -At -h "$T/r1/sock" -p "$PGPORT2" -U postgres -d postgres -c "$1"; }
is "$(rsql "select count(*) from tsdata where id > 0")" "$ws_rows" "the tablespace table has every row"
is "$(rsql "select count(*) from pgbench_accounts")" 800000 "pgbench_accounts has every row"
pg_run "$PG_BIN/pg_amcheck" -h "$T/r1/sock" -p "$PGPORT2" -U postgres --install-missing --heapallindexed postgres >"$T/amcheck.out" 2>&1
ok $? "pg_amcheck finds no corruption" || diag "$(tail -5 "$T/amcheck.out")"
rsql "select count(*) from scratch" >/dev/null 2>&1
ok $? "the unlogged table exists (empty after recovery)"
pg_run "$PG_BIN/pg_ctl" -D "$T/r1/data" -m fast -w stop >/dev/null 2>&1

# ---- a second backup-push while one runs is refused ----
bench -n -c 1 -T 20 &
load=$!
ws backup-push >/dev/null 2>&1 &
first=$!
bk_lock_held() { [ -n "$(ws_lock_pid "$(ls "$T"/spool/*/backup.lock 2>/dev/null | head -1)")" ]; }
wait_for 60 bk_lock_held
ok $? "the first backup-push holds the backup lock"
t_fail "a concurrent backup-push is refused" 3 ws backup-push
like "$T_OUT" "another backup-push" "the message says another backup-push runs"
wait "$first"
ok $? "the first backup-push still succeeds"

# ---- kill -9 during backup-push: nothing visible ----
before=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
# eu-west-1 is slow, so the backup is surely still uploading when it dies:
# killed as soon as its first part is in us-east-1
fp_ctl "$C2" delay 500 >/dev/null
parts=$(ws --region us-east-1 st ls backups/ 2>/dev/null | grep -c /part-)
pg_run "$WALSHIP" --config "$CONF" backup-push >/dev/null 2>&1 &
bk=$!
wait_for 60 bash -c "[ \$(runuser -u postgres -- $WALSHIP --config $CONF --region us-east-1 st ls backups/ 2>/dev/null | grep -c /part-) -gt $parts ]"
ws_kill_lock_holder -KILL "$(ls "$T"/spool/*/backup.lock | head -1)"
wait "$bk" 2>/dev/null
fp_ctl "$C2" clear >/dev/null
after=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
is "$after" "$before" "a backup killed with -9 is not listed"
ws backup-list --all >"$T/all.out" 2>&1
like "$(cat "$T/all.out")" "[Ii][Nn][Cc][Oo][Mm][Pp][Ll][Ee][Tt][Ee]" "backup-list --all reports its orphaned parts"

# ---- a region down during backup-push ----
fp_ctl "$C2" dark >/dev/null
t_fail "backup-push with eu-west-1 dark exits 3" 3 ws backup-push
dark_out=$T_OUT
like "$T_OUT" "eu-west-1" "the failure names eu-west-1"
fp_ctl "$C2" up >/dev/null
n1=$(ws --region us-east-1 backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
n2=$(ws --region eu-west-1 backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["backups"]))')
[ "$n1" -eq $((n2 + 1)) ]; ok $? "us-east-1 has the backup, eu-west-1 does not ($n1 vs $n2)" || diag "$dark_out"
mkdir -p "$T/r2"; chown "$(pg_user)" "$T/r2"
t "the us-east-1 copy of that backup fetches cleanly" ws --region us-east-1 backup-fetch LATEST "$T/r2/data" --tablespace-map "$T/ts1=$T/r2/ts1"

# ---- a corrupt part: backup-fetch fails naming it ----
latest=$(ws --region us-east-1 backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backups"][-1]["name"])')
mkdir -p "$T/tmp"; chown "$(pg_user)" "$T/tmp"
ws --region us-east-1 st get "backups/$latest/part-0001" "$T/tmp/part" --raw >/dev/null 2>&1
size=$(stat -c %s "$T/tmp/part" 2>/dev/null || echo 0)
[ "$size" -gt 0 ]; ok $? "the raw part can be downloaded ($size bytes)"
printf '\xff' | dd of="$T/tmp/part" bs=1 seek=$((size / 2)) conv=notrunc status=none
ws --region us-east-1 st rm "backups/$latest/part-0001" >/dev/null 2>&1
ws --region us-east-1 st put "$T/tmp/part" "backups/$latest/part-0001" --raw >/dev/null 2>&1
mkdir -p "$T/r3"; chown "$(pg_user)" "$T/r3"
t_fail "backup-fetch of a corrupt part fails" 3 ws --region us-east-1 backup-fetch "$latest" "$T/r3/data" --tablespace-map "$T/ts1=$T/r3/ts1"
like "$T_OUT" "part-0001" "the error names the part"
unlike "$T_OUT" "another region may hold it" "... and, --region given, points to no other region"
[ ! -f "$T/r3/data/backup_label" ]; ok $? "no backup_label is left to make it look complete"
mkdir -p "$T/r3b"; chown "$(pg_user)" "$T/r3b"
t_fail "backup-fetch of it without --region fails too (us-east-1 comes first)" 3 ws backup-fetch "$latest" "$T/r3b/data" --tablespace-map "$T/ts1=$T/r3b/ts1"
like "$T_OUT" "another region may hold it: empty $T/r3b/data, then run again with --region \\(one of: eu-west-1" \
  "... and says how to take it from another region"

# ---- kill -9 during backup-fetch: DIR does not look restored ----
# eu-west-1 answers each request 500 ms late: killed once the first files
# are written, the fetch still has parts (and backup_label, written last,
# after syncfs) to go
descendants() { local p; for p in $(ps -o pid= --ppid "$1"); do descendants "$p"; echo "$p"; done; }
mkdir -p "$T/r4"; chown "$(pg_user)" "$T/r4"
fp_ctl "$C2" delay 500 >/dev/null
pg_run "$WALSHIP" --config "$CONF" --region eu-west-1 backup-fetch LATEST "$T/r4/data" \
    --tablespace-map "$T/ts1=$T/r4/ts1" >/dev/null 2>&1 &
bf=$!
wait_for 60 bash -c "[ -n \"\$(ls -A '$T/r4/data' 2>/dev/null)\" ]"
ok $? "backup-fetch started writing DIR"
# shellcheck disable=SC2046
kill -KILL $(descendants "$bf") 2>/dev/null
wait "$bf" 2>/dev/null
fp_ctl "$C2" clear >/dev/null
[ ! -f "$T/r4/data/backup_label" ]; ok $? "a backup-fetch killed with -9 leaves no backup_label"
t_fail "a new backup-fetch into the DIR it left is refused" 2 ws --region eu-west-1 backup-fetch LATEST "$T/r4/data" \
    --tablespace-map "$T/ts1=$T/r4/ts1b"
like "$T_OUT" "not empty" "because DIR is not empty"

# ---- a full disk during backup-fetch: a clear error, no backup_label ----
# (a 24 MB tmpfs: pgbench_accounts alone is larger, and it is written with
# O_DIRECT from the writer threads, whose ENOSPC must reach the command)
FULL=$T/full
mkdir -p "$FULL"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=24m,mode=0755 tmpfs "$FULL" 2>/dev/null; then
  on_exit "umount '$FULL' 2>/dev/null"
  mkdir -p "$FULL/r"; chown "$(pg_user)" "$FULL/r"
  ws --region eu-west-1 backup-fetch LATEST "$FULL/r/data" --tablespace-map "$T/ts1=$FULL/r/ts1" >"$T/tmp/full.out" 2>&1
  st=$?
  is "$st" 3 "backup-fetch into a full disk fails (exit 3)"
  like "$(cat "$T/tmp/full.out")" "No space left on device" "... naming the full disk"
  [ ! -f "$FULL/r/data/backup_label" ]; ok $? "... and leaves no backup_label"
  umount "$FULL"
else
  ok 1 "# SKIP no tmpfs (not root)"
  ok 1 "# SKIP no tmpfs (not root)"
  ok 1 "# SKIP no tmpfs (not root)"
fi

# ---- every name taken (a clock standing still or set back onto older
# backups): backup-push never writes into another backup's folder ----
# The names taken run from 2 s before the first put to at least 20 s past
# the clock once the puts are done: on a slow run 28 puts take seconds, and
# a window fixed before them could end while backup-push still tried names
# (it then found a free one and succeeded).
echo foreign >"$T/tmp/foreign"
bname() { date -u -d "@$1" +%Y%m%dT%H%M%SZ; }
put_foreign() { ws --region us-east-1 st put "$T/tmp/foreign" "backups/$(bname "$1")/part-0099" >/dev/null 2>&1; }
lo=$(($(date -u +%s) - 2))
hi=$((lo - 1))
for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ "$hi" -lt $(($(date -u +%s) + 20)) ] || break
  to=$(($(date -u +%s) + 25))
  pids=()
  for i in $(seq $((hi + 1)) "$to"); do
    put_foreign "$i" &
    pids+=($!)
    [ ${#pids[@]} -lt 4 ] || { wait "${pids[@]}"; pids=(); }
  done
  [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
  hi=$to
done
t_fail "backup-push whose every name is taken fails (exit 3)" 3 ws backup-push
like "$T_OUT" "is taken, and so was every name of the 5 seconds before" "... saying why"
wrote=
for i in $(seq "$lo" "$hi"); do
  n=$(bname "$i")
  ws --region us-east-1 st ls "backups/$n/" 2>/dev/null | grep -qv "part-0099$" && wrote="$wrote $n"
done
is "$wrote" "" "... and wrote nothing into those folders"

done_testing
