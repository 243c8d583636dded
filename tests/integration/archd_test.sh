#!/bin/bash
# The archiver process (archive_async_process, docs/WAL.md "Archiving
# throughput", issue 14): wal-push hands .ready segments to one detached
# walship per spool, which keeps its region connections, and acknowledges a
# segment only by the marker of that very file.  One Swift s3api region
# behind the fault proxy, a real PostgreSQL 15 archiving through wal-push.
#   - the process archives what PostgreSQL archives, every segment decodes;
#   - it exits when idle;
#   - kill -9 of the process in the middle of a push: nothing is
#     acknowledged that the region does not hold, and wal-push falls back
#     (or a new process takes over);
#   - a segment changed after the process pushed it is archived again,
#     never acknowledged on the old marker;
#   - a wal-push with another configuration does not trust the running
#     process's markers and asks it to stop;
#   - markers that cannot be written (pushed/ read-only; a full tmpfs spool
#     when root): every wal-push still exits 0 with the file in the region,
#     in seconds, not retry_deadline;
#   - a stale marker (another file of the name; another configuration's
#     tag) is never accepted: wal-push pushes the file itself;
#   - two clusters sharing spool_dir get a process each;
#   - a key file rewritten in place is another configuration;
#   - under pgbench, the archive lag stays at most one segment most of the
#     time (the median of the samples).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r P1 F1 C1 PGPORT <<<"$(free_ports 4 | tr '\n' ' ')"
swift_start_regions "$T/s1" us-east-1 "$P1" || { echo "Bail out! swift did not start"; exit 1; }
on_exit "swift_stop $T/s1"
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
fp_start "$F1" "$P1" "$C1" "$T/fp1" || { echo "Bail out! proxy"; exit 1; }
on_exit "fp_stop $T/fp1"

ws_mkdirs "$T/spool"
ws_key "$T/key"
ws_key "$T/key.prev"    # old_key_files: an unrelated key until the rotation below
cp -p "$T/key.prev" "$T/key.unrelated"
CONF=$T/walship.conf
ws_conf "$CONF" "retry_deadline = 30" "connect_timeout = 3" "io_timeout = 20" "log_level = info" \
  "archive_async_process = on" "archive_async_idle = 3" "old_key_files = $T/key.prev"
ws_region "$CONF" us-east-1 s3://walship/prod "endpoint = http://127.0.0.1:$F1" "path_style = true" \
  "mode = sync" "access_key_id = test:tester" "secret_access_key = testing"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
pg_conf "$T/pg" "archive_mode = on"
pg_conf "$T/pg" "archive_command = '$WALSHIP --config $CONF wal-push %p'"
pg_conf "$T/pg" "wal_keep_size = 4GB"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
SYSID=$(pg_sysid "$T/pg")
SP=$T/spool/$SYSID
LOCK=$SP/archd.lock
last_archived() { sql "select coalesce(last_archived_wal, '') from pg_stat_archiver"; }
reached() { local la; la=$(last_archived); [[ $la > $1 || $la == "$1" ]]; }
archived_up_to() { wait_for "${2:-90}" reached "$1"; }
daemon_pid() { ws_lock_pid "$LOCK"; }
no_daemon() { [ -z "$(daemon_pid)" ]; }
# wal-push of pg_wal/NAME in $T/pa (a WAL directory PostgreSQL does not run)
# and, as PostgreSQL does, its .ready renamed .done on exit 0
pa_push() {
  (cd "$T/pa" && pg_run "$WALSHIP" --config "${2:-$CONF}" wal-push "pg_wal/$1") || return
  [ ! -e "$T/pa/pg_wal/archive_status/$1.ready" ] || mv "$T/pa/pg_wal/archive_status/$1.ready" "$T/pa/pg_wal/archive_status/$1.done"
}
in_region() { rm -f "$T/spool/got.$$"; ws st get "wal/$1" "$T/spool/got.$$" >/dev/null 2>&1 && cmp -s "$T/spool/got.$$" "$2"; }

# ---- PostgreSQL archives through the process ----
pg_run "$PG_BIN/pgbench" -i -s 2 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
sql "create table t_sw (x int)" >/dev/null
for _ in 1 2 3 4 5 6; do
  sql "insert into t_sw values (1)" >/dev/null
  seg=$(sql "select pg_walfile_name(pg_switch_wal())")
done
archived_up_to "$seg"
ok $? "PostgreSQL archived through $seg"
is "$(sql 'select failed_count from pg_stat_archiver')" 0 "no archive_command failure"
grep -q "archiver process [0-9]* serving" "$SP/archd.log" 2>/dev/null
ok $? "wal-push started the archiver process"
[ "$(grep -c ' archived 0000' "$SP/archd.log")" -ge 2 ]
ok $? "the process archived the segments ($(grep -c ' archived 0000' "$SP/archd.log") in its log)"
bad=0 n=0
for f in "$T"/pg/data/pg_wal/archive_status/*.done; do
  name=$(basename "$f" .done)
  [[ $name =~ ^[0-9A-F]{24}$ ]] || continue
  n=$((n + 1))
  in_region "$name" "$T/pg/data/pg_wal/$name" || { bad=$((bad + 1)); echo "# $name missing or different"; }
done
[ "$n" -gt 0 ] && [ "$bad" = 0 ]; ok $? "every archived segment is in the region and decodes to the original ($n)"

# ---- idle exit ----
wait_for 30 no_daemon
ok $? "the process exits when idle"
grep -q "archiver process [0-9]* exits" "$SP/archd.log"; ok $? "and says so in its log"

# ---- kill -9 in the middle of a push ----
PA=$T/pa/pg_wal
mkdir -p "$PA/archive_status"
seg_name() { printf '0000000100000040000000%02X' "$1"; }
for i in 1 2 3 4; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
fp_ctl "$C1" delay 400 >/dev/null      # slow uploads: the process is found at work
(pa_push "$(seg_name 1)" >"$T/kill.out" 2>&1; echo $? >"$T/kill.rc") &
client=$!
claimed() { for c in "$SP"/claims/0000000100000040*; do [ -s "$c" ] && return 0; done; return 1; }
wait_for 30 claimed
victim=$(daemon_pid)
[ -n "$victim" ]; ok $? "the process is pushing (pid ${victim:-none})"
kill -KILL "${victim:-0}" 2>/dev/null
fp_ctl "$C1" delay 0 >/dev/null
wait "$client"
is "$(cat "$T/kill.rc")" 0 "wal-push still archives its segment after the process was killed"
in_region "$(seg_name 1)" "$PA/$(seg_name 1)"; ok $? "... and the region holds it"
bad=0
for m in "$SP"/pushed/0000000100000040*; do
  [ -e "$m" ] || continue
  name=$(basename "$m"); name=${name%.acked}
  case $name in *.fail) continue ;; esac
  in_region "$name" "$PA/$name" || { bad=1; echo "# marker for $name but the region lacks it"; }
done
is "$bad" 0 "no marker for a segment the region does not hold"
for i in 2 3 4; do
  pa_push "$(seg_name "$i")" >/dev/null 2>&1 || { echo "# push $i failed"; bad=1; }
  in_region "$(seg_name "$i")" "$PA/$(seg_name "$i")" || { echo "# $i missing"; bad=1; }
done
is "$bad" 0 "the next calls archive the rest"

# ---- a segment changed after the process pushed it ----
for i in 5 6 7; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
t "a .ready segment after the kill" pa_push "$(seg_name 5)"
new=$(daemon_pid)
[ -n "$new" ] && [ "$new" != "$victim" ]; ok $? "a new process took over (pid ${new:-none})"
wait_for 30 test -e "$SP/pushed/$(seg_name 6)" -a -e "$SP/pushed/$(seg_name 7)"
ok $? "the process pushed the new .ready segments ahead of PostgreSQL's calls"
touch "$PA/$(seg_name 6)"
t "a segment touched after its push is archived again" \
  pa_push "$(seg_name 6)"
like "$T_OUT" "changed since" "the old marker was not trusted"
printf 'X' | dd of="$PA/$(seg_name 7)" bs=1 seek=4096 conv=notrunc status=none
t_fail "a segment whose content changed after its push is refused" 3 \
  pa_push "$(seg_name 7)"
like "$T_OUT" "different content" "it is compared with the archived copy"

# ---- another configuration does not trust the running process ----
for i in 8 9; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
pa_push "$(seg_name 8)" >/dev/null 2>&1
old=$(daemon_pid)
cp "$CONF" "$T/other.conf"; sed -i 's/^log_level = info/log_level = debug/' "$T/other.conf"; ws_own "$T/other.conf"
[ -n "$old" ]; ok $? "a process runs (pid ${old:-none})"
t "wal-push with another configuration archives its segment" pa_push "$(seg_name 9)" "$T/other.conf"
wait_for 30 test ! -d "/proc/${old:-0}"
ok $? "and the process of the other configuration stopped"

# ---- a key rotated in place is another configuration ----
ws_stop_daemons "$SP"
for i in 22 23; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
pa_push "$(seg_name 22)" >/dev/null 2>&1
kp=$(daemon_pid)
cat "$T/key" >"$T/key.prev"     # the rotation: the old key becomes an old key ...
ws_key "$T/key.new"
cat "$T/key.new" >"$T/key"      # ... and the same file holds a new one
t "wal-push after the key file was rewritten" pa_push "$(seg_name 23)"
[ -n "$kp" ] && wait_for 30 test ! -d "/proc/$kp"
ok $? "the process holding the old key was asked to stop (pid ${kp:-none})"
in_region "$(seg_name 23)" "$PA/$(seg_name 23)"; ok $? "... and the segment is in the region under the new key"
cat "$T/key.prev" >"$T/key"     # back, for the tests below
cat "$T/key.unrelated" >"$T/key.prev"
ws_stop_daemons "$SP"

# ---- other credentials in the environment are another configuration ----
# The process signs with the environment it started with: a wal-push given
# other AWS_* variables (another profile, rotated keys) must not be served
# by it.
for i in 40 41; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
pa_push "$(seg_name 40)" >/dev/null 2>&1
ep=$(daemon_pid)
[ -n "$ep" ]; ok $? "a process runs (pid ${ep:-none})"
AWS_PROFILE=walship-other t "wal-push with another AWS_PROFILE archives its segment" pa_push "$(seg_name 41)"
[ -n "$ep" ] && wait_for 30 test ! -d "/proc/$ep"
ok $? "the process started with the old credentials environment was asked to stop (pid ${ep:-none})"
in_region "$(seg_name 41)" "$PA/$(seg_name 41)"; ok $? "... and the segment is in the region"
ws_stop_daemons "$SP"

# ---- keys rotated in the shared credentials file: another configuration ----
# A profile's keys are read once, when the process starts: after the file
# is rewritten, a process that goes on signing with the old (revoked) keys
# must not be the one wal-push waits for.
printf '[default]\naws_access_key_id = AKIDOLD\naws_secret_access_key = old\n' >"$T/aws-credentials"
chmod 644 "$T/aws-credentials"
for i in 42 43 44; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials pa_push "$(seg_name 42)" >/dev/null 2>&1
cp=$(daemon_pid)
[ -n "$cp" ]; ok $? "a process runs with the shared credentials file (pid ${cp:-none})"
AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials pa_push "$(seg_name 43)" >/dev/null 2>&1
is "$(daemon_pid)" "$cp" "... and serves the next wal-push while the file is unchanged"
printf '[default]\naws_access_key_id = AKIDNEW\naws_secret_access_key = new\n' >"$T/aws-credentials.new"
chmod 644 "$T/aws-credentials.new"
mv "$T/aws-credentials.new" "$T/aws-credentials"    # rotated as tools do: a new file renamed over
AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials t "wal-push after the shared credentials file was rotated" \
  pa_push "$(seg_name 44)"
[ -n "$cp" ] && wait_for 30 test ! -d "/proc/$cp"
ok $? "the process that read the old keys was asked to stop (pid ${cp:-none})"
in_region "$(seg_name 44)" "$PA/$(seg_name 44)"; ok $? "... and the segment is in the region"
ws_stop_daemons "$SP"

# ---- markers that cannot be written: wal-push pushes itself within seconds ----
# pushed/ read-only for the process (what a full disk does to a marker):
# neither the pushed marker nor the failure marker can be written.  Each
# call must finish in seconds, not retry_deadline (30 s here).
ws_stop_daemons "$SP"
for i in 10 11 12; do
  walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
  touch "$PA/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa"
chmod 0555 "$SP/pushed"
slow=0 bad=0
for i in 10 11 12; do
  t0=$(date +%s%N)
  pa_push "$(seg_name "$i")" >"$T/ro.out" 2>&1 || { bad=1; echo "# push $i: $(tail -2 "$T/ro.out")"; }
  ms=$((($(date +%s%N) - t0) / 1000000))
  diag "unwritable markers: wal-push of $(seg_name "$i") took $ms ms"
  [ "$ms" -lt 12000 ] || slow=1
  in_region "$(seg_name "$i")" "$PA/$(seg_name "$i")" || { bad=1; echo "# $i missing or different"; }
done
chmod 0700 "$SP/pushed"
is "$bad" 0 "markers unwritable: every wal-push exits 0 and the region holds the very file"
is "$slow" 0 "... each in seconds (< 12 s), not retry_deadline (30 s)"
grep -q "pushing 0000000100000040000000.* here: " "$T/ro.out"; ok $? "wal-push says why it pushed the file itself"

# ---- a real full disk (root only: a 4 MB tmpfs spool) ----
MNT=$T/fullspool
mkdir -p "$MNT"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=4m,mode=0755 tmpfs "$MNT" 2>/dev/null; then
  on_exit "umount -l '$MNT'"
  on_exit "ws_stop_daemons '$MNT'"
  chown "$(pg_user)" "$MNT"
  sed "s|^spool_dir = .*|spool_dir = $MNT|" "$CONF" >"$T/full.conf"; chmod 600 "$T/full.conf"; ws_own "$T/full.conf"
  for i in 13 14 15 16; do
    walseg "$PA/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID" "$i"
    touch "$PA/archive_status/$(seg_name "$i").ready"
  done
  ws_own "$T/pa"
  pa_push "$(seg_name 13)" "$T/full.conf" >/dev/null 2>&1
  fpid=$(ws_lock_pid "$MNT/$SYSID/archd.lock")
  [ -n "$fpid" ]; ok $? "a process runs on the tmpfs spool (pid ${fpid:-none})"
  dd if=/dev/zero of="$MNT/fill" bs=64k status=none 2>/dev/null
  slow=0 bad=0
  for i in 14 15 16; do
    # the process may have pushed it ahead while there was room: take that
    # marker away, so that the file must be pushed now
    rm -f "$MNT/$SYSID/pushed/$(seg_name "$i")"
    t0=$(date +%s%N)
    pa_push "$(seg_name "$i")" "$T/full.conf" >"$T/full.out" 2>&1 || { bad=1; echo "# push $i: $(tail -2 "$T/full.out")"; }
    ms=$((($(date +%s%N) - t0) / 1000000))
    diag "full disk: wal-push of $(seg_name "$i") took $ms ms"
    [ "$ms" -lt 12000 ] || slow=1
    in_region "$(seg_name "$i")" "$PA/$(seg_name "$i")" || { bad=1; echo "# $i missing or different"; }
  done
  is "$bad" 0 "full spool disk: every wal-push exits 0 and the region holds the very file"
  is "$slow" 0 "... each in seconds (< 12 s), not retry_deadline (30 s)"
  rm -f "$MNT/fill"
  ws_stop_daemons "$MNT"
else
  ok 0 "# SKIP no tmpfs (not root): the full disk is covered by the unwritable markers above"
  ok 0 "# SKIP no tmpfs"
  ok 0 "# SKIP no tmpfs"
fi

# ---- a stale marker is never accepted ----
# A marker for the name, left by another file of that name (same content
# size, another inode and times) or written under another tag: wal-push
# pushes the file itself; exit 0 then means the region holds this file.
ws_stop_daemons "$SP"
walseg "$PA/$(seg_name 17)" "$(seg_name 17)" "$SYSID" 17
walseg "$T/pa/other17" "$(seg_name 17)" "$SYSID" 1717
ws_own "$T/pa"
# a marker that is right for other17 but names 17, with this config's tag
walseg "$PA/$(seg_name 21)" "$(seg_name 21)" "$SYSID" 21
touch "$PA/archive_status/$(seg_name 21).ready"
ws_own "$T/pa"
pa_push "$(seg_name 21)" >/dev/null 2>&1   # a process of this configuration, for its tag
tag=$(sed -n 3p "$SP/archd.id")
st() { stat -c '%d %i %s' "$1"; }
mt() { python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print("%d.%09d %d.%09d" % (s.st_mtime_ns // 10**9, s.st_mtime_ns % 10**9, s.st_ctime_ns // 10**9, s.st_ctime_ns % 10**9))' "$1"; }
printf '%s %s\n%s\n%s\n' "$(st "$T/pa/other17")" "$(mt "$T/pa/other17")" "$(printf '0%.0s' $(seq 64))" "$tag" \
  >"$SP/pushed/$(seg_name 17)"
ws_own "$SP/pushed"
touch "$PA/archive_status/$(seg_name 17).ready"
t "wal-push with another file's marker under its name" \
  pg_run sh -c "cd '$T/pa' && '$WALSHIP' --config '$CONF' wal-push pg_wal/$(seg_name 17)"
in_region "$(seg_name 17)" "$PA/$(seg_name 17)"; ok $? "... pushed this very file: the region holds it"
# the file wal-push pushed itself is marked acknowledged while it is .ready:
# the process does not push it once more before PostgreSQL marks it done
[ -e "$SP/pushed/$(seg_name 17).acked" ]; ok $? "... and recorded as acknowledged for the process"
mv "$PA/archive_status/$(seg_name 17).ready" "$PA/archive_status/$(seg_name 17).done"
# the right identity, another tag (another configuration's marker)
walseg "$PA/$(seg_name 18)" "$(seg_name 18)" "$SYSID" 18
ws_own "$T/pa"
printf '%s %s\n%s\n%s\n' "$(st "$PA/$(seg_name 18)")" "$(mt "$PA/$(seg_name 18)")" "$(printf '0%.0s' $(seq 64))" \
  "$(printf 'f%.0s' $(seq 64))" >"$SP/pushed/$(seg_name 18)"
ws_own "$SP/pushed"
t "wal-push with a marker of its very file but another configuration's tag" pa_push "$(seg_name 18)"
in_region "$(seg_name 18)" "$PA/$(seg_name 18)"; ok $? "... pushed the file itself: the region holds it"
# the same with the right tag is accepted: the planted markers above were
# well formed, refused only for what they said.  With no process running:
# a running one removes, every 2 s, the markers of segments that are not
# .ready (gc_markers), and 19 is not .ready, so on a loaded machine the
# marker could go before the push read it (seen in CI twice).
ws_stop_daemons "$SP"
walseg "$PA/$(seg_name 19)" "$(seg_name 19)" "$SYSID" 19
ws_own "$T/pa"
printf '%s %s\n%s\n%s\n' "$(st "$PA/$(seg_name 19)")" "$(mt "$PA/$(seg_name 19)")" "$(printf '0%.0s' $(seq 64))" \
  "$tag" >"$SP/pushed/$(seg_name 19)"
ws_own "$SP/pushed"
t "a marker of the very file with this configuration's tag" pa_push "$(seg_name 19)"
in_region "$(seg_name 19)" "$PA/$(seg_name 19)"
is $? 1 "... is trusted (the control case: nothing was uploaded)"

# ---- two clusters share the spool_dir, never a process ----
SYSID2=$((SYSID + 1))
PA2=$T/pa2/pg_wal
mkdir -p "$PA2/archive_status"
for i in 1 2; do
  walseg "$PA2/$(seg_name "$i")" "$(seg_name "$i")" "$SYSID2" "$((i + 40))"
  touch "$PA2/archive_status/$(seg_name "$i").ready"
done
ws_own "$T/pa2"
sed 's|s3://walship/prod|s3://walship/other|' "$CONF" >"$T/c2.conf"; chmod 600 "$T/c2.conf"; ws_own "$T/c2.conf"
walseg "$PA/$(seg_name 20)" "$(seg_name 20)" "$SYSID" 20
touch "$PA/archive_status/$(seg_name 20).ready"
ws_own "$T/pa"
pa_push "$(seg_name 20)" >/dev/null 2>&1
p1=$(daemon_pid)
(cd "$T/pa2" && pg_run "$WALSHIP" --config "$T/c2.conf" wal-push "pg_wal/$(seg_name 1)") >"$T/c2.out" 2>&1
is $? 0 "the second cluster's wal-push exits 0"
p2=$(ws_lock_pid "$T/spool/$SYSID2/archd.lock")
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p1" != "$p2" ]
ok $? "each cluster has its own process (${p1:-none} and ${p2:-none})"
# (the first may have gone idle meanwhile, archive_async_idle = 3 s, but
# nothing asked it to stop)
[ "$(cat "$SP/archd.stop" 2>/dev/null)" != "$p1" ] && [ "$(cat "$T/spool/$SYSID2/archd.stop" 2>/dev/null)" != "$p1" ]
ok $? "the second cluster's wal-push did not ask the first cluster's process to stop"
(cd "$T/pa2" && pg_run "$WALSHIP" --config "$T/c2.conf" wal-push "pg_wal/$(seg_name 2)") >/dev/null 2>&1
bad=0
for i in 1 2; do
  rm -f "$T/spool/got2"
  pg_run "$WALSHIP" --config "$T/c2.conf" st get "wal/$(seg_name "$i")" "$T/spool/got2" >/dev/null 2>&1 &&
    cmp -s "$T/spool/got2" "$PA2/$(seg_name "$i")" || bad=1
done
is "$bad" 0 "the second cluster's segments are in its own region, byte for byte"
[ "$(sed -n 2p "$T/spool/$SYSID2/archd.id")" = "$(stat -c '%d %i' "$PA2/archive_status")" ]
ok $? "its process serves its own archive_status"
ws_stop_daemons "$T/spool/$SYSID2"

# ---- archive lag under pgbench ----
ws_stop_daemons "$SP"
samples=()
pg_run "$PG_BIN/pgbench" -n -c 2 -j 2 -T 20 -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >"$T/pgbench.log" 2>&1 &
bench=$!
while [ -d "/proc/$bench" ]; do
  lag=$(sql "select (('x' || lpad(substr(pg_walfile_name(pg_current_wal_lsn()), 9, 16), 16, '0'))::bit(64)::bigint
                   - ('x' || lpad(substr(coalesce(last_archived_wal, '000000010000000000000000'), 9, 16), 16, '0'))::bit(64)::bigint) - 1
               from pg_stat_archiver" 2>/dev/null)
  [[ $lag =~ ^-?[0-9]+$ ]] && samples+=("$lag")
  sleep 0.5
done
wait "$bench"
diag "pgbench: $(tail -3 "$T/pgbench.log")"
med=$(printf '%s\n' "${samples[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : 99) }')
max=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
diag "archive lag under pgbench: ${#samples[@]} samples, median $med, max $max segments"
[ "${#samples[@]}" -ge 5 ] && [ "$med" -le 1 ]; ok $? "the median archive lag under pgbench is at most one segment"
is "$(sql 'select failed_count from pg_stat_archiver')" 0 "no archive_command failure under pgbench"

done_testing
