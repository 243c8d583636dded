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
swift_create_bucket "$P1" us-east-1 walship >/dev/null
fp_start "$F1" "$P1" "$C1" "$T/fp1" || { echo "Bail out! proxy"; exit 1; }
on_exit "fp_stop $T/fp1"

ws_mkdirs "$T/spool"
ws_key "$T/key"
CONF=$T/walship.conf
ws_conf "$CONF" "retry_deadline = 20" "connect_timeout = 3" "io_timeout = 20" "log_level = info" \
  "archive_async_process = on" "archive_async_idle = 3"
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
pa_push() { (cd "$T/pa" && pg_run "$WALSHIP" --config "${2:-$CONF}" wal-push "pg_wal/$1"); }
in_region() { rm -f "$T/spool/got.$$"; ws st get "wal/$1" "$T/spool/got.$$" >/dev/null 2>&1 && cmp -s "$T/spool/got.$$" "$2"; }

# ---- PostgreSQL archives through the process ----
pg_run "$PG_BIN/pgbench" -i -s 2 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
for _ in 1 2 3; do seg=$(sql "select pg_walfile_name(pg_switch_wal())"); sql "select 1" >/dev/null; done
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
wait_for 10 test ! -d "/proc/${old:-0}"
ok $? "and the process of the other configuration stopped"

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
