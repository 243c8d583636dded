#!/bin/bash
# Every threaded path of walship in one short run, against a real
# PostgreSQL 15 and two file:// regions (one sync, one async), so that the
# ThreadSanitizer build (configure --enable-tsan, contrib/run-tests --tsan)
# can watch them: wal-push from archive_command and with push-ahead
# workers, the archiver process (archive_async_process: 8 workers, 4
# encoding and 4 committing at once; then 4 workers whose every upload
# fails), ship, backup-push with 4 part
# workers, backup-fetch with 4 parts at once, verify --full, wal-fetch with
# prefetch workers.
#
# Under TSan every walship process (also those PostgreSQL and wal-push
# start in the background) writes its reports to $T/tsan/; the last test
# asserts there are none.  Other builds skip it unless WALSHIP_THREADS_TEST=1
# (then the assertions on results hold, and the TSan one is skipped).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
tsan=no
grep -q -- '-fsanitize=thread' "$TOP_BUILDDIR/Makefile" 2>/dev/null && tsan=yes
# The other builds cover these paths in wal_test, backup_test and
# restore_test; CI's time goes to them there (WALSHIP_THREADS_TEST=1 runs it
# anyway).
[ "$tsan" = yes ] || [ "${WALSHIP_THREADS_TEST:-}" = 1 ] || skip_all "not a ThreadSanitizer build"
# walship refuses unknown WALSHIP_* variables in its environment
unset WALSHIP_THREADS_TEST

U=$(pg_user)
PGPORT=$(pg_free_port)
ws_mkdirs "$T/tsan" "$T/r1" "$T/r2" "$T/r3" "$T/r4" "$T/r5" "$T/r6" "$T/spool" "$T/spool2" "$T/spool3" "$T/spool4" \
  "$T/out"
# halt_on_error=0: collect every report; the files are the verdict.
export TSAN_OPTIONS="log_path=$T/tsan/report halt_on_error=0 second_deadlock_stack=1 history_size=4 \
suppressions=$TOP_SRCDIR/tests/tsan.supp ${TSAN_OPTIONS:-}"
diag "ThreadSanitizer build: $tsan"

CONF=$T/walship.conf
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
conf() {   # FILE SPOOL SYNC-DIR ASYNC-DIR
  WS_SPOOL=$2 WS_PARALLEL=4 ws_conf "$1" "retry_deadline = 20" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
  ws_region "$1" sync "file://$3" "mode = sync"
  ws_region "$1" async "file://$4" "mode = async"
}
# the cluster's own archive, and a second one for synthetic segments
conf "$CONF" "$T/spool" "$T/r1" "$T/r2"
conf "$T/pa.conf" "$T/spool2" "$T/r3" "$T/r4"
# the archiver process, one sync region
WS_SPOOL=$T/spool3 WS_PARALLEL=4 ws_conf "$T/ad.conf" "retry_deadline = 30" "archive_async_process = on" \
  "archive_async_idle = 1"
ws_region "$T/ad.conf" sync "file://$T/r5" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
wpa() { pg_run "$WALSHIP" --config "$T/pa.conf" "$@"; }
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
pg_conf "$T/pg" "archive_mode = on"
pg_conf "$T/pg" "archive_command = 'TSAN_OPTIONS=\"$TSAN_OPTIONS\" $WALSHIP --config $CONF wal-push %p'"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
SYSID=$(pg_sysid "$T/pg")

# ---- wal-push from archive_command, several segments queued at once ----
sql "create table t (id int, v text)"
for i in 1 2 3 4; do
  sql "insert into t select g, md5(g::text) from generate_series(1, 20000) g"
  sql "select pg_switch_wal()" >/dev/null
done
archived() { [ "$(sql "select archived_count from pg_stat_archiver")" -ge 4 ]; }
wait_for 120 archived
ok $? "PostgreSQL archived 4 segments through wal-push"

# ---- push-ahead: 8 ready segments, 3 worker threads ----
mkdir -p "$T/pa/pg_wal/archive_status"
for i in 1 2 3 4 5 6 7 8; do
  n=$(printf '0000000100000030000000%02X' "$i")
  walseg "$T/pa/pg_wal/$n" "$n" "$SYSID" "$i"
  touch "$T/pa/pg_wal/archive_status/$n.ready"
done
chown -R "$U" "$T/pa"
t "wal-push with push-ahead workers" wpa wal-push "$T/pa/pg_wal/000000010000003000000001"
n=$(ls "$T/spool2/$SYSID/pushed/" 2>/dev/null | grep -c '^000000010000003')
[ "$n" -ge 2 ]; ok $? "segments were pushed ahead ($n markers)"
t "ship the async region's queue" wpa ship
shipped() { [ -f "$T/r4/wal/000000010000003000000005" ]; }
wait_for 60 shipped; ok $? "the async region holds a pushed-ahead segment"

# ---- the archiver process: 8 workers, 4 encoding and 4 committing at once ----
mkdir -p "$T/pb/pg_wal/archive_status"
for i in $(seq 1 12); do
  n=$(printf '0000000100000031000000%02X' "$i")
  walseg "$T/pb/pg_wal/$n" "$n" "$SYSID" "$i"
  touch "$T/pb/pg_wal/archive_status/$n.ready"
done
chown -R "$U" "$T/pb"
bad=0
for i in $(seq 1 12); do
  n=$(printf '0000000100000031000000%02X' "$i")
  pg_run "$WALSHIP" --config "$T/ad.conf" wal-push "$T/pb/pg_wal/$n" >/dev/null 2>&1 || bad=$((bad + 1))
  mv "$T/pb/pg_wal/archive_status/$n.ready" "$T/pb/pg_wal/archive_status/$n.done"
done
[ "$bad" -eq 0 ]; ok $? "12 segments archived through the archiver process ($bad failed)"
[ "$(ls "$T/r5/wal" | grep -c '^0000000100000031')" -eq 12 ]; ok $? "the region holds all 12"
grep -q "8 workers, 4 encoding and 4 committing at once" "$T"/spool3/*/archd.log
ok $? "the process ran 8 workers, 4 encoding and 4 committing at once"
n=$(grep -c "archived 0000000100000031" "$T"/spool3/*/archd.log)
[ "$n" -ge 1 ]; ok $? "the process archived segments itself ($n of 12)"
# a worker stuck on a slot keeps the process busy: it would never go idle
apid=$(ws_lock_pid "$T/spool3/$SYSID/archd.lock")
gone() { [ -z "$apid" ] || [ ! -d "/proc/$apid" ]; }
wait_for 60 gone; ok $? "the process goes idle and exits (archive_async_idle = 1)"

# ---- the archiver process when every upload fails: the slots' error path ----
# an injected fault at the region's upload: the process (which inherits
# wal-push's environment) fails each segment, wal-push falls back, fails
# too, and exits 3; nothing is acknowledged and no slot is leaked
mkdir -p "$T/pc/pg_wal/archive_status"
for i in 1 2 3 4 5 6; do
  n=$(printf '0000000100000032000000%02X' "$i")
  walseg "$T/pc/pg_wal/$n" "$n" "$SYSID" "$i"
  touch "$T/pc/pg_wal/archive_status/$n.ready"
done
chown -R "$U" "$T/pc"
WS_SPOOL=$T/spool4 WS_PARALLEL=2 ws_conf "$T/af.conf" "retry_deadline = 5" "archive_async_process = on" \
  "archive_async_idle = 1"
ws_region "$T/af.conf" sync "file://$T/r6" "mode = sync"
fail3=0
for i in 1 2 3 4 5 6; do
  n=$(printf '0000000100000032000000%02X' "$i")
  pg_run env WALSHIP_FAULT_INJECT=upload.sync:write "$WALSHIP" --config "$T/af.conf" wal-push "$T/pc/pg_wal/$n" \
    >/dev/null 2>&1
  [ $? -eq 3 ] && fail3=$((fail3 + 1))
done
[ "$fail3" -eq 6 ]; ok $? "every wal-push with a failing upload exits 3 ($fail3 of 6)"
[ "$(ls "$T/r6/wal" 2>/dev/null | grep -c '^0000000100000032')" -eq 0 ]; ok $? "the region holds none of them"
[ "$(ls "$T/spool4/$SYSID/pushed" 2>/dev/null | grep -c '^0000000100000032[0-9A-F]*$')" -eq 0 ]
ok $? "no pushed marker was written for them"
grep -q "could not archive 0000000100000032.*injected fault" "$T"/spool4/*/archd.log
ok $? "the process logged its failed pushes"
apid=$(ws_lock_pid "$T/spool4/$SYSID/archd.lock")
gone() { [ -z "$apid" ] || [ ! -d "/proc/$apid" ]; }
wait_for 60 gone; ok $? "the process that failed every push goes idle and exits"
bad=0
for i in 1 2 3 4 5 6; do
  n=$(printf '0000000100000032000000%02X' "$i")
  pg_run "$WALSHIP" --config "$T/af.conf" wal-push "$T/pc/pg_wal/$n" >/dev/null 2>&1 || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] && [ "$(ls "$T/r6/wal" | grep -c '^0000000100000032')" -eq 6 ]
ok $? "without the fault, a new process archives all 6 ($bad failed)"
apid=$(ws_lock_pid "$T/spool4/$SYSID/archd.lock")
wait_for 60 gone; ok $? "and goes idle and exits"

# ---- backup-push, 4 part workers; backup-fetch, 4 parts at once ----
pg_run "$PG_BIN/pgbench" -h "$T/pg/sock" -p "$PGPORT" -U postgres -i -s 1 -q postgres >/dev/null 2>&1
t "backup-push with 4 workers and 1 MB parts" ws backup-push --part-size 1MB
parts=$(ls "$T"/r1/backups/*/ 2>/dev/null | grep -c '^part-')
[ "$parts" -ge 8 ]; ok $? "the backup has many parts ($parts)"
t "backup-fetch with 4 parts at once" ws --region sync backup-fetch LATEST "$T/out/data"
[ -f "$T/out/data/backup_label" ] && [ -f "$T/out/data/global/pg_control" ]
ok $? "the fetched backup is complete"
t "verify --full decodes every part" ws --region sync verify --full

# ---- wal-fetch with prefetch workers ----
first=$(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | sort | head -1)
t "wal-fetch with prefetch" ws --region sync wal-fetch "$first" "$T/out/$first"
[ -s "$T/out/$first" ]; ok $? "the segment was fetched"
sleep 1

# ---- a prefetcher that follows a growing archive (a standby's) ----
# its window closes at the end of the archive; a question that then finds
# a segment opens it again from there (the question server and the main
# thread hand over through a condition variable), twice
mapfile -t segs < <(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | sort)
mkdir -p "$T/fd/global" "$T/fd/pg_wal" "$T/hidden"
cp "$T/pg/data/global/pg_control" "$T/fd/global/" && chown -R "$U" "$T/fd"
for n in "${segs[@]:2}"; do mv "$T/r1/wal/$n" "$T/hidden/"; done
# as the server asks (pg_wal/RECOVERYXLOG, the only %p that starts a
# prefetcher), keeping the file under its name as the server does
fd_fetch() { (cd "$T/fd" && ws --region sync wal-fetch "$1" pg_wal/RECOVERYXLOG && mv pg_wal/RECOVERYXLOG "pg_wal/$1"); }
PFD=$T/fd/pg_wal/.walship-prefetch
fd_fetch "${segs[0]}" >/dev/null 2>&1; ok $? "follow: the first segment"
wait_for 30 test -e "$PFD/${segs[1]}"; ok $? "follow: its prefetcher fetched the next one"
FP=$(ws_lock_pid "$PFD/.lock")
mv "$T/hidden/${segs[2]}" "$T/r1/wal/"
fd_fetch "${segs[1]}" >/dev/null 2>&1 && out=$(fd_fetch "${segs[2]}" 2>&1) && ! grep -q "fetched .* from region" <<<"$out"
ok $? "follow: a segment archived after the window closed, served through the prefetcher"
for n in "${segs[@]:3}"; do mv "$T/hidden/$n" "$T/r1/wal/"; done
out=$(fd_fetch "${segs[3]}" 2>&1) && ! grep -q "fetched .* from region" <<<"$out"
ok $? "follow: the archive grew again, served through the prefetcher"
[ -n "$FP" ] && [ "$(ws_lock_pid "$PFD/.lock")" = "$FP" ]; ok $? "follow: one prefetcher throughout"
cmp -s <(cd "$T/fd/pg_wal" && cat "${segs[@]:0:4}" | md5sum) <(cd "$T/out" && for n in "${segs[@]:0:4}"; do
  ws --region sync wal-fetch --no-prefetch "$n" "$T/out/x" >/dev/null 2>&1 && cat "$T/out/x"; done | md5sum)
ok $? "follow: every segment served is the archived one"
ws_stop_daemons "$T/fd"
sleep 1

# ---- the verdict ----
pg_stop "$T/pg" fast
reports=$(ls "$T/tsan" | wc -l)
if [ "$tsan" = yes ]; then
  [ "$reports" -eq 0 ]; ok $? "ThreadSanitizer reported nothing ($reports report files)" ||
    for f in "$T"/tsan/*; do diag "$(head -60 "$f")"; done
else
  ok 0 "not a ThreadSanitizer build: no reports expected ($reports)"
fi
done_testing
