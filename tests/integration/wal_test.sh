#!/bin/bash
# WAL archiving across two real Swift s3api regions (us-east-1 sync,
# eu-west-1 async, each behind the fault proxy) with a real PostgreSQL 15
# whose archive_command is walship wal-push, and wal-fetch back.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

# ---- two regions, each behind a fault proxy ----
read -r P1 P2 F1 F2 C1 C2 PGPORT <<<"$(free_ports 7 | tr '\n' ' ')"
swift_start_regions "$T/s1" us-east-1 "$P1" "$T/s2" eu-west-1 "$P2" || { echo "Bail out! swift did not start"; exit 1; }
on_exit "swift_stop $T/s1; swift_stop $T/s2"
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
swift_create_bucket "$P2" eu-west-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
fp_start "$F1" "$P1" "$C1" "$T/fp1" || { echo "Bail out! proxy"; exit 1; }
fp_start "$F2" "$P2" "$C2" "$T/fp2" || { echo "Bail out! proxy"; exit 1; }
on_exit "fp_stop $T/fp1; fp_stop $T/fp2"

# ---- configuration, owned by the PostgreSQL user ----
CONF=$T/walship.conf
mkdir -p "$T/spool"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
cat >"$CONF" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 2
retry_deadline = 10
connect_timeout = 3
io_timeout = 10
log_level = info

[region us-east-1]
url = s3://walship/prod
endpoint = http://127.0.0.1:$F1
path_style = true
mode = sync
access_key_id = test:tester
secret_access_key = testing

[region eu-west-1]
url = s3://walship/prod
endpoint = http://127.0.0.1:$F2
path_style = true
mode = async
access_key_id = test:tester
secret_access_key = testing
CONF
chmod 600 "$CONF" "$T/key"
chown -R "$(pg_user)" "$T/spool" "$CONF" "$T/key"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
# background shippers and prefetchers started by wal-push / wal-fetch
on_exit "ws_stop_daemons '$T'"

t "st check passes on both regions" ws st check

# ---- PostgreSQL archiving through walship ----
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
pg_conf "$T/pg" "archive_mode = on"
pg_conf "$T/pg" "archive_command = '$WALSHIP --config $CONF wal-push %p'"
pg_conf "$T/pg" "wal_keep_size = 4GB"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
SYSID=$(pg_sysid "$T/pg")
# the spool keeps one directory per cluster, one queue per region (name and url)
EUQ() { ls -d "$T/spool/$SYSID/queue/eu-west-1-"* 2>/dev/null | head -1; }

archived_up_to() {   # wait until pg_stat_archiver has archived $1 or later
  local want=$1
  wait_for "${2:-90}" bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select coalesce(last_archived_wal, \$\$\$\$) from pg_stat_archiver')\" \\> '$want' ] || [ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select coalesce(last_archived_wal, \$\$\$\$) from pg_stat_archiver')\" = '$want' ]"
}
switch_wal() {       # switch and print the name of the segment just finished
  sql "select pg_walfile_name(pg_switch_wal())"
}

pg_run "$PG_BIN/pgbench" -i -s 4 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
seg=$(switch_wal)
archived_up_to "$seg"
ok $? "PostgreSQL archived through $seg"
is "$(sql 'select failed_count from pg_stat_archiver')" 0 "no archive_command failure"

# every archived segment is in the sync region and decodes to the original bytes
check_region_has_all() {   # region: every .done segment decodes to the pg_wal file
  local region=$1 bad=0 n=0 f name
  for f in "$T"/pg/data/pg_wal/archive_status/*.done; do
    name=$(basename "$f" .done)
    [[ $name =~ ^[0-9A-F]{24}$ ]] || continue
    n=$((n + 1))
    if ! ws --region "$region" st get "wal/$name" "$T/spool/check.$$" >"$T/check.err" 2>&1; then
      bad=$((bad + 1)); echo "# $region: $name: $(tail -1 "$T/check.err")"
    elif ! cmp -s "$T/spool/check.$$" "$T/pg/data/pg_wal/$name"; then
      bad=$((bad + 1)); echo "# $region: $name differs from pg_wal"
    fi
    rm -f "$T/spool/check.$$"
  done
  echo "# $region: $n segments checked, $bad bad"
  [ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
}
check_region_has_all us-east-1
ok $? "every archived segment is in us-east-1 and decodes to the original"
wait_for 60 bash -c "[ -z \"\$(ls -A $T/spool/$SYSID/queue/eu-west-1-* 2>/dev/null)\" ]"
ok $? "the background shipper drained the spool"
check_region_has_all eu-west-1
ok $? "every archived segment is in eu-west-1 and decodes to the original"

# ---- the async region goes dark: archiving goes on, the spool grows ----
fp_ctl "$C2" dark >/dev/null
for i in 1 2 3; do
  pg_run "$PG_BIN/pgbench" -n -t 300 -c 2 -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
  seg=$(switch_wal)
done
archived_up_to "$seg"
ok $? "archiving keeps up while eu-west-1 is dark"
is "$(sql 'select failed_count from pg_stat_archiver')" 0 "no failure while the async region is dark"
queued=$(ls "$(EUQ)" 2>/dev/null | wc -l)
[ "$queued" -ge 3 ]; ok $? "the spool holds the files for eu-west-1 ($queued queued)"
fp_ctl "$C2" up >/dev/null
t "ship --once catches eu-west-1 up" ws ship --once
is "$(ls -A "$(EUQ)" | wc -l)" 0 "spool is empty afterwards"
check_region_has_all eu-west-1
ok $? "after the outage eu-west-1 has every segment"

# ---- the sync region goes dark: wal-push fails, WAL stays, no gap later ----
before=$(sql 'select failed_count from pg_stat_archiver')
fp_ctl "$C1" dark >/dev/null
pg_run "$PG_BIN/pgbench" -n -t 300 -c 2 -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
stuck=$(switch_wal)
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select failed_count from pg_stat_archiver')\" -gt $before ]"
ok $? "failed_count rises while us-east-1 is dark"
[ -f "$T/pg/data/pg_wal/archive_status/$stuck.ready" ] || [ -f "$T/pg/data/pg_wal/archive_status/$(sql "select last_failed_wal from pg_stat_archiver").ready" ]
ok $? "the unarchived segment stays .ready in pg_wal"
fp_ctl "$C1" up >/dev/null
archived_up_to "$stuck" 120
ok $? "archiving resumes once us-east-1 is back"
check_region_has_all us-east-1
ok $? "no gap in us-east-1 after its outage"

# ---- idempotency ----
name=$(basename "$(ls "$T"/pg/data/pg_wal/archive_status/*.done | head -1)" .done)
mkdir -p "$T/re/pg_wal"; chown -R "$(pg_user)" "$T/re"
cp "$T/pg/data/pg_wal/$name" "$T/re/pg_wal/$name"; chown "$(pg_user)" "$T/re/pg_wal/$name"
t "re-push of an identical file succeeds" ws wal-push "$T/re/pg_wal/$name"
ws ship --once >/dev/null 2>&1   # the identical re-push queued it again for eu-west-1
head -c 100 /dev/urandom | dd of="$T/re/pg_wal/$name" bs=1 seek=1000 conv=notrunc status=none
t_fail "re-push of a different file under the same name fails" 3 ws wal-push "$T/re/pg_wal/$name"
like "$T_OUT" "different content" "the error says the content differs"
[ ! -e "$(EUQ)/$name" ]; ok $? "the different file is not spooled for the async region either"

# ---- push-ahead: a follow-up call succeeds at once only for the very same file ----
mkdir -p "$T/pa/pg_wal/archive_status"
for i in 1 2 3; do
  walseg "$T/pa/pg_wal/00000001000000200000000$i" "00000001000000200000000$i" "$SYSID" "$i"
  touch "$T/pa/pg_wal/archive_status/00000001000000200000000$i.ready"
done
chown -R "$(pg_user)" "$T/pa"
t "wal-push pushes the next .ready segments ahead" ws wal-push "$T/pa/pg_wal/000000010000002000000001"
[ -f "$T/spool/$SYSID/pushed/000000010000002000000002" ] && [ -f "$T/spool/$SYSID/pushed/000000010000002000000003" ]
ok $? "push-ahead recorded segments 2 and 3"
t "the follow-up call for a pushed-ahead segment succeeds" ws wal-push "$T/pa/pg_wal/000000010000002000000002"
[ ! -f "$T/spool/$SYSID/pushed/000000010000002000000002" ]; ok $? "and consumes its marker"
printf 'X' | dd of="$T/pa/pg_wal/000000010000002000000003" bs=1 seek=4096 conv=notrunc status=none
t_fail "a pushed-ahead segment changed since is not acknowledged blindly" 3 ws wal-push "$T/pa/pg_wal/000000010000002000000003"
like "$T_OUT" "different content" "it is compared with the archived copy and refused"

# ---- wal-fetch ----
t "wal-fetch of an archived segment" ws wal-fetch "$name" "$T/re/fetched" --no-prefetch
cmp -s "$T/re/fetched" "$T/pg/data/pg_wal/$name"; ok $? "fetched bytes equal the original"
t_fail "wal-fetch of a segment no region has exits 1" 1 ws wal-fetch 0000000100000FFF000000FF "$T/re/none"
[ ! -e "$T/re/none" ]; ok $? "nothing written for a missing segment"

# ---- prefetch: a connection per worker for the whole run, not one per
# segment; served segments cost no request; the last segment before the
# archive's end is kept for PostgreSQL's second request of it ----
mkdir -p "$T/pf/src" "$T/pf/pg_wal"
for i in 1 2 3 4 5 6 7 8; do
  walseg "$T/pf/src/00000001000000300000000$i" "00000001000000300000000$i" "$SYSID" "$((i + 40))"
done
chown -R "$(pg_user)" "$T/pf"
for i in 1 2 3 4 5 6 7 8; do ws wal-push "$T/pf/src/00000001000000300000000$i" >/dev/null 2>&1 || echo "# push $i failed"; done
c0=$(fp_stat "$C1" connections)
fp_ctl "$C1" delay 250 >/dev/null   # long enough to find the prefetcher at work
t "wal-fetch with prefetch (8 ahead, 2 workers)" ws --region us-east-1 wal-fetch 000000010000003000000001 "$T/pf/pg_wal/RECOVERYXLOG"
PFLOCK=$T/pf/pg_wal/.walship-prefetch/.lock
wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$PFLOCK')\" ]"
pf=$(ws_lock_pid "$PFLOCK")
like "$(tr '\0' ' ' <"/proc/${pf:-0}/cmdline" 2>/dev/null)" "walship .*wal-fetch 000000010000003000000001" \
  "the prefetcher's lock file names it while it works (docs/OPERATIONS.md)"
fp_ctl "$C1" delay 0 >/dev/null
wait_for 60 test -f "$T/pf/pg_wal/.walship-prefetch/.end"
wait_for 40 test ! -s "$PFLOCK"; ok $? "... and is emptied when it is done (after answering questions for 15 s)"
is "$(cat "$T/pf/pg_wal/.walship-prefetch/.end" 2>/dev/null)" 000000010000003000000008 \
  "the prefetcher notes the last segment before the archive's end"
c1=$(fp_stat "$C1" connections)
[ $((c1 - c0)) -lt 7 ]; ok $? "prefetching 7 segments opened $((c1 - c0)) connections to us-east-1 (one per worker, not per segment)"
r0=$(fp_stat "$C1" requests)
good=0
for i in 2 3 4 5 6 7 8; do
  ws wal-fetch "00000001000000300000000$i" "$T/pf/pg_wal/RECOVERYXLOG" --no-prefetch >/dev/null 2>&1 &&
    cmp -s "$T/pf/pg_wal/RECOVERYXLOG" "$T/pf/src/00000001000000300000000$i" && good=$((good + 1))
done
is "$good" 7 "the 7 prefetched segments are served, byte for byte"
t "the last one asked again (as PostgreSQL does at promotion)" ws wal-fetch 000000010000003000000008 "$T/pf/pg_wal/RECOVERYXLOG" --no-prefetch
cmp -s "$T/pf/pg_wal/RECOVERYXLOG" "$T/pf/src/000000010000003000000008"; ok $? "... is served again, the same bytes"
is "$(fp_stat "$C1" requests)" "$r0" "serving them sent no request to the region"

# the prefetcher follows recovery: 8 ready ahead, moving as they are taken,
# well past the first 8 (one run, not one prefetcher per 8 segments)
seg4() { printf '0000000100000040%08X' "$1"; }
mkdir -p "$T/pf2/src" "$T/pf2/pg_wal"
for i in $(seq 1 20); do walseg "$T/pf2/src/$(seg4 "$i")" "$(seg4 "$i")" "$SYSID" "$((i + 60))"; done
chown -R "$(pg_user)" "$T/pf2"
for i in $(seq 1 20); do ws wal-push "$T/pf2/src/$(seg4 "$i")" >/dev/null 2>&1 || echo "# push $i failed"; done
t "wal-fetch with prefetch, 20 segments in the archive" ws wal-fetch "$(seg4 1)" "$T/pf2/pg_wal/RECOVERYXLOG"
served=0
for i in $(seq 2 20); do
  wait_for 60 test -f "$T/pf2/pg_wal/.walship-prefetch/$(seg4 "$i")" || break
  out=$(ws --log-level debug wal-fetch "$(seg4 "$i")" "$T/pf2/pg_wal/RECOVERYXLOG" --no-prefetch 2>&1) &&
    grep -q "served from the prefetch directory" <<<"$out" &&
    cmp -s "$T/pf2/pg_wal/RECOVERYXLOG" "$T/pf2/src/$(seg4 "$i")" && served=$((served + 1))
done
is "$served" 19 "one prefetcher kept recovery supplied through all 19 segments, byte for byte"
# a segment recovery skipped (it fetched it itself before it was ready)
# does not hold the window: the prefetcher moves past the newest one taken
mkdir -p "$T/pf3/pg_wal"; chown -R "$(pg_user)" "$T/pf3"
ws wal-fetch "$(seg4 1)" "$T/pf3/pg_wal/RECOVERYXLOG" >/dev/null 2>&1
wait_for 60 test -f "$T/pf3/pg_wal/.walship-prefetch/$(seg4 9)"
ok $? "the window holds 8 segments ahead"
ws wal-fetch "$(seg4 3)" "$T/pf3/pg_wal/RECOVERYXLOG" --no-prefetch >/dev/null 2>&1
wait_for 60 test -f "$T/pf3/pg_wal/.walship-prefetch/$(seg4 11)"
ok $? "after recovery took segment 3 (skipping 2), the window moves on to 11"
wait_for 30 test ! -e "$T/pf3/pg_wal/.walship-prefetch/$(seg4 2)"
ok $? "... and the skipped segment 2 is dropped"

# a restore_command call that misses the prefetch directory asks the
# running prefetcher, which answers on its open connection, afresh
seg5() { printf '0000000100000050%08X' "$1"; }
mkdir -p "$T/pf4/src" "$T/pf4/pg_wal" "$T/pf4/global"
# wal-fetch runs in the data directory, as PostgreSQL runs it: a question
# names the cluster of its pg_control
cp "$T/pg/data/global/pg_control" "$T/pf4/global/"; cp "$T/pg/data/PG_VERSION" "$T/pf4/"
wsd() { (cd "$T/pf4" && ws "$@"); }
for i in 1 2 3 4; do walseg "$T/pf4/src/$(seg5 "$i")" "$(seg5 "$i")" "$SYSID" "$((i + 90))"; done
chown -R "$(pg_user)" "$T/pf4"
for i in 1 2 3; do ws wal-push "$T/pf4/src/$(seg5 "$i")" >/dev/null 2>&1 || echo "# push $i failed"; done
t "wal-fetch with prefetch, 3 segments in the archive" wsd --region us-east-1 wal-fetch "$(seg5 1)" "$T/pf4/pg_wal/RECOVERYXLOG"
wait_for 60 test -f "$T/pf4/pg_wal/.walship-prefetch/.end"
PF4=$(ws_lock_pid "$T/pf4/pg_wal/.walship-prefetch/.lock")
[ -n "$PF4" ]; ok $? "past the archive's end, the prefetcher stays to answer questions"
c0=$(fp_stat "$C1" connections)
out=$(wsd --region us-east-1 wal-fetch 00000009.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1); rc=$?
is "$rc" 1 "a history file no region has: exit 1"
like "$out" "answered by the prefetcher" "... answered by the prefetcher"
is "$(fp_stat "$C1" connections)" "$c0" "... over its open connection (no new one)"
ws wal-push "$T/pf4/src/$(seg5 4)" >/dev/null 2>&1 || echo "# push 4 failed"
for i in 2 3; do wsd wal-fetch "$(seg5 "$i")" "$T/pf4/pg_wal/RECOVERYXLOG" --no-prefetch >/dev/null 2>&1; done
out=$(wsd --region us-east-1 --log-level debug wal-fetch "$(seg5 4)" "$T/pf4/pg_wal/RECOVERYXLOG" --no-prefetch 2>&1); rc=$?
is "$rc" 0 "a segment archived after the prefetcher met the end is fetched (its answer is live, not remembered)"
cmp -s "$T/pf4/pg_wal/RECOVERYXLOG" "$T/pf4/src/$(seg5 4)"; ok $? "... byte for byte"
like "$out" "served from the prefetch directory" "... through the prefetcher"
# a standby's archive grows a segment at a time: the prefetcher stays and
# opens its window again from the segment the question found
pf4_pid() { ws_lock_pid "$T/pf4/pg_wal/.walship-prefetch/.lock"; }
# (.end names the last window's end until the new window closes)
wait_for 60 grep -qx "$(seg5 4)" "$T/pf4/pg_wal/.walship-prefetch/.end"
kill -0 "$PF4" 2>/dev/null && [ "$(pf4_pid)" = "$PF4" ]
ok $? "the archive grew: that prefetcher stays, its window open again from the new segment"
is "$(cat "$T/pf4/pg_wal/.walship-prefetch/.end" 2>/dev/null)" "$(seg5 4)" "... and it notes the new end of the archive"
# the region's identity gone (a re-pointed or emptied bucket) while the
# prefetcher waits: its "no" would not be this cluster's repository's
ws --region us-east-1 st get identity.json "$T/pf4/identity.bak" --raw >/dev/null 2>&1
ws --region us-east-1 st rm identity.json >/dev/null 2>&1
out=$(wsd --region us-east-1 wal-fetch 0000000B.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1); rc=$?
# the history of the timeline PostgreSQL is on, which pg_wal holds (asked
# at the end of a promotion whose region is gone): 1, and PostgreSQL reads
# its own copy
echo "10	0/5000000	no recovery target specified" >"$T/pf4/pg_wal/0000000B.history"
out3=$(wsd --region us-east-1 wal-fetch 0000000B.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1); rc3=$?
rm -f "$T/pf4/pg_wal/0000000B.history"
# a segment the region holds is served all the same: its object is bound
# to this cluster and its key by its own header (docs/FORMAT.md)
rm -f "$T/pf4/pg_wal/NOID"
wsd --region us-east-1 wal-fetch "$(seg5 2)" "$T/pf4/pg_wal/NOID" --no-prefetch >/dev/null 2>&1; rc2=$?
ws --region us-east-1 st put "$T/pf4/identity.bak" identity.json --raw >/dev/null 2>&1
is "$rc2" 0 "a segment the region holds is served without its identity (bound by its own header)"
cmp -s "$T/pf4/pg_wal/NOID" "$T/pf4/src/$(seg5 2)"; ok $? "... and it is that segment, byte for byte"
[ "$rc" -gt 125 ]; ok $? "no identity in a region while the prefetcher waits: exit $rc, never \"not in the archive\""
is "$rc3" 1 "... but a history file pg_wal already holds: exit 1, PostgreSQL reads that copy"
like "$out3" "pg_wal holds 0000000B.history, which PostgreSQL reads instead" "... saying so"
! grep -q "answered by the prefetcher" <<<"$out"; ok $? "... and the prefetcher's answer was not a \"no\""
wait_for 30 bash -c "! kill -0 $PF4 2>/dev/null"
ok $? "... and that prefetcher leaves: a failed question, its window closed (the calls fetch for themselves)"
# a new prefetcher for the next case
wsd --region us-east-1 wal-fetch "$(seg5 1)" "$T/pf4/pg_wal/RECOVERYXLOG" >/dev/null 2>&1
new_pf4() { local p; p=$(pf4_pid); [ -n "$p" ] && [ "$p" != "$PF4" ]; }
wait_for 60 new_pf4
ok $? "the next wal-fetch starts a new prefetcher"
wait_for 60 test -f "$T/pf4/pg_wal/.walship-prefetch/.end"
fp_ctl "$C1" dark >/dev/null
out=$(wsd --region us-east-1 wal-fetch 0000000A.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1); rc=$?
fp_ctl "$C1" up >/dev/null
[ "$rc" -gt 125 ]; ok $? "the region dark while the prefetcher waits: exit $rc, never \"not in the archive\""
! grep -q "answered by the prefetcher" <<<"$out"; ok $? "... the prefetcher gave no answer it could not check"

# a question from another configuration (here: the same key under another
# path) is not this prefetcher's to answer: the call fetches for itself,
# and the leftover prefetcher leaves
ws --region us-east-1 wal-fetch "$(seg5 1)" "$T/pf4/pg_wal/RECOVERYXLOG" >/dev/null 2>&1
wait_for 60 test -f "$T/pf4/pg_wal/.walship-prefetch/.end"
PF5=$(ws_lock_pid "$T/pf4/pg_wal/.walship-prefetch/.lock")
cp "$T/key" "$T/key2" 2>/dev/null || cp "$(sed -n 's/^key_file = //p' "$CONF")" "$T/key2"
chown "$(pg_user)" "$T/key2"; chmod 600 "$T/key2"
sed "s|^key_file = .*|key_file = $T/key2|" "$CONF" >"$T/other.conf"; chmod 600 "$T/other.conf"; chown "$(pg_user)" "$T/other.conf"
out=$( (cd "$T/pf4" && pg_run "$WALSHIP" --config "$T/other.conf" --region us-east-1 wal-fetch 0000000C.history "$T/pf4/pg_wal/RECOVERYHISTORY") 2>&1); rc=$?
is "$rc" 1 "another configuration's miss: exit 1, from its own requests"
! grep -q "answered by the prefetcher" <<<"$out"; ok $? "... not from a prefetcher of another configuration"
wait_for 30 bash -c "! kill -0 ${PF5:-0} 2>/dev/null"; ok $? "... which leaves"
# the same key named by a relative path (restore --from --key-file ./key
# runs its prefetcher so, and writes the absolute path into
# restore_command): the same configuration, answered.  Only a flag may be
# relative: the file refuses a relative key_file (docs/CONFIG.md)
kf=$(sed -n 's/^key_file = //p' "$CONF")
rm -f "$T/pf4/pg_wal/.walship-prefetch/.end"
(cd "$T/pf4" && pg_run "$WALSHIP" --config "$CONF" --key-file "$(realpath --relative-to="$T/pf4" "$kf")" \
  --region us-east-1 wal-fetch "$(seg5 1)" "$T/pf4/pg_wal/RECOVERYXLOG") >/dev/null 2>&1
wait_for 60 test -f "$T/pf4/pg_wal/.walship-prefetch/.end"
PF7=$(ws_lock_pid "$T/pf4/pg_wal/.walship-prefetch/.lock")
out=$(wsd --region us-east-1 wal-fetch 0000000D.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1); rc=$?
is "$rc" 1 "the key file by a relative path, then by its absolute one: exit 1"
like "$out" "answered by the prefetcher" "... answered by the prefetcher of the relative path"
[ -n "$PF7" ] && kill "$PF7" 2>/dev/null
wait_for 30 bash -c "! kill -0 ${PF7:-0} 2>/dev/null"

# keys rotated in the shared credentials file: the prefetcher read the old
# ones when it started, so a call that sees the new file is of another
# configuration; it fetches for itself and the prefetcher leaves
printf '[default]\naws_access_key_id = AKIDOLD\naws_secret_access_key = old\n' >"$T/aws-creds"; chmod 644 "$T/aws-creds"
rm -f "$T/pf4/pg_wal/.walship-prefetch/.end"
AWS_SHARED_CREDENTIALS_FILE=$T/aws-creds ws --region us-east-1 wal-fetch "$(seg5 1)" "$T/pf4/pg_wal/RECOVERYXLOG" >/dev/null 2>&1
wait_for 60 test -f "$T/pf4/pg_wal/.walship-prefetch/.end"
PF8=$(ws_lock_pid "$T/pf4/pg_wal/.walship-prefetch/.lock")
out=$(AWS_SHARED_CREDENTIALS_FILE=$T/aws-creds wsd --region us-east-1 wal-fetch 0000000E.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1)
like "$out" "answered by the prefetcher" "the shared credentials file unchanged: answered by the prefetcher"
printf '[default]\naws_access_key_id = AKIDNEW\naws_secret_access_key = new\n' >"$T/aws-creds.new"; chmod 644 "$T/aws-creds.new"
mv "$T/aws-creds.new" "$T/aws-creds"
out=$(AWS_SHARED_CREDENTIALS_FILE=$T/aws-creds wsd --region us-east-1 wal-fetch 0000000F.history "$T/pf4/pg_wal/RECOVERYHISTORY" 2>&1); rc=$?
is "$rc" 1 "after the shared credentials file was rotated: exit 1, from its own requests"
! grep -q "answered by the prefetcher" <<<"$out"; ok $? "... not from the prefetcher that read the old keys"
wait_for 30 bash -c "! kill -0 ${PF8:-0} 2>/dev/null"; ok $? "... which leaves"

# the data directory wiped and made again (a second restore into the same
# path): a prefetcher of the first one stops, and writes nothing there
rm -f "$T/pf4/pg_wal/.walship-prefetch/.end"
ws --region us-east-1 wal-fetch "$(seg5 1)" "$T/pf4/pg_wal/RECOVERYXLOG" >/dev/null 2>&1
wait_for 60 test -f "$T/pf4/pg_wal/.walship-prefetch/.end"
PF6=$(ws_lock_pid "$T/pf4/pg_wal/.walship-prefetch/.lock")
rm -rf "$T/pf4/pg_wal/.walship-prefetch"; mkdir -m 700 "$T/pf4/pg_wal/.walship-prefetch"; chown "$(pg_user)" "$T/pf4/pg_wal/.walship-prefetch"
wait_for 30 bash -c "! kill -0 ${PF6:-0} 2>/dev/null"; ok $? "a prefetcher whose directory was wiped and made again stops"
is "$(ls -A "$T/pf4/pg_wal/.walship-prefetch")" "" "... and left nothing in the new one"

# a corrupt object in both regions: abort recovery (exit > 125)
head -c 5000 /dev/urandom >"$T/re/junk"; chown postgres "$T/re/junk"
ws --region us-east-1 st put "$T/re/junk" wal/000000010000000E000000AA --raw >/dev/null 2>&1
ws --region eu-west-1 st put "$T/re/junk" wal/000000010000000E000000AA --raw >/dev/null 2>&1
t_fail "wal-fetch of a corrupt object exits 250" 250 ws wal-fetch 000000010000000E000000AA "$T/re/bad"
[ ! -e "$T/re/bad" ]; ok $? "nothing written for a corrupt object"

# a wrong key: abort recovery
"$WALSHIP" keygen "$T/otherkey" >/dev/null 2>&1; chown postgres "$T/otherkey"
sed "s|key_file = .*|key_file = $T/otherkey|" "$CONF" >"$T/wrongkey.conf"; chmod 600 "$T/wrongkey.conf"; chown postgres "$T/wrongkey.conf"
t_fail "wal-fetch with the wrong key exits 250" 250 pg_run "$WALSHIP" --config "$T/wrongkey.conf" wal-fetch "$name" "$T/re/wk"
like "$T_OUT" "key" "the error names the key problem"

# one region dark, the other serves
fp_ctl "$C1" dark >/dev/null
t "wal-fetch is served by eu-west-1 while us-east-1 is dark" ws --region us-east-1 wal-fetch "$name" "$T/re/fromeu" --no-prefetch
cmp -s "$T/re/fromeu" "$T/pg/data/pg_wal/$name"; ok $? "bytes from eu-west-1 equal the original"
fp_ctl "$C1" up >/dev/null

# both regions unreachable: never "not found"
fp_ctl "$C1" dark >/dev/null; fp_ctl "$C2" dark >/dev/null
t_fail "wal-fetch with every region unreachable exits 250, not 1" 250 ws wal-fetch 0000000100000FFF000000FE "$T/re/dark"
fp_ctl "$C1" up >/dev/null; fp_ctl "$C2" up >/dev/null

# ---- a destination that is not a regular file is written, never replaced ----
# (`st get KEY /dev/null` run as root once swapped /dev/null for a file)
mknod -m 666 "$T/re/nulldev" c 1 3
mkfifo -m 666 "$T/re/fifo"; chown postgres "$T/re/fifo"
t "st get into a character device succeeds" ws --region us-east-1 st get "wal/$name" "$T/re/nulldev"
[ -c "$T/re/nulldev" ]; ok $? "... and the device is still a device"
t "st get --raw into a character device succeeds" ws --region us-east-1 st get "wal/$name" "$T/re/nulldev" --raw
[ -c "$T/re/nulldev" ]; ok $? "... and the device is still a device after --raw"
rm -f "$T/fifo.out"
(cat "$T/re/fifo" >"$T/fifo.out") &
catpid=$!
t "st get into a FIFO streams through it" ws --region us-east-1 st get "wal/$name" "$T/re/fifo"
wait "$catpid"
cmp -s "$T/fifo.out" "$T/pg/data/pg_wal/$name"; ok $? "... the reader got the decoded segment"
[ -p "$T/re/fifo" ]; ok $? "... and the FIFO is still a FIFO"
ls "$T/re" | grep -q 'walship-tmp'; ok $((!$?)) "... and no temp file is left beside them"
t_fail "wal-fetch into a device aborts recovery (exit 250)" 250 ws wal-fetch "$name" "$T/re/nulldev" --no-prefetch
like "$T_OUT" "not a regular file" "... and says the destination is not a regular file"
[ -c "$T/re/nulldev" ]; ok $? "... and leaves the device alone"
ln -s "$T/re/linktarget" "$T/re/alink"; : >"$T/re/linktarget"; chown -h postgres "$T/re/alink" "$T/re/linktarget"
t "st get through a symbolic link writes what it points to" ws --region us-east-1 st get "wal/$name" "$T/re/alink"
[ -L "$T/re/alink" ] && cmp -s "$T/re/linktarget" "$T/pg/data/pg_wal/$name"; ok $? "... the link stays a link, its target holds the segment"
t_fail "wal-fetch into a symbolic link aborts recovery (exit 250)" 250 ws wal-fetch "$name" "$T/re/alink" --no-prefetch
like "$T_OUT" "symbolic link" "... and says so"
[ -L "$T/re/alink" ]; ok $? "... and leaves the link alone"
# temp files of a wal-fetch killed mid-download are swept, a live one's kept
mkdir -p "$T/re/sw/pg_wal"; chown -R postgres "$T/re/sw"
sleep 0 & deadpid=$!; wait "$deadpid"
for f in "RECOVERYXLOG.walship-tmp.$deadpid" "RECOVERYXLOG.walship-tmp.$deadpid.3" "RECOVERYXLOG.walship-tmp.$$" "other.walship-tmp.$deadpid"; do
  head -c 1000 /dev/zero >"$T/re/sw/pg_wal/$f"; chown postgres "$T/re/sw/pg_wal/$f"
done
t "wal-fetch beside a killed one's temp files succeeds" ws wal-fetch "$name" "$T/re/sw/pg_wal/RECOVERYXLOG" --no-prefetch
is "$(cd "$T/re/sw/pg_wal" && ls | tr '\n' ' ')" "RECOVERYXLOG RECOVERYXLOG.walship-tmp.$$ other.walship-tmp.$deadpid " \
  "... and removes the dead writer's temp files of DEST only"
# a prefetcher runs only for a DEST in pg_wal, and never in a planted link
mkdir -p "$T/re/manual"; chown postgres "$T/re/manual"
t "wal-fetch by hand outside pg_wal succeeds" ws wal-fetch "$name" "$T/re/manual/seg"
sleep 1
[ ! -e "$T/re/manual/.walship-prefetch" ]; ok $? "... and starts no prefetcher there"
mkdir -p "$T/re/pl/pg_wal" "$T/re/victim"; head -c 100 /dev/zero >"$T/re/victim/keep"
touch -d '30 minutes ago' "$T/re/victim/keep"; ln -s "$T/re/victim" "$T/re/pl/pg_wal/.walship-prefetch"
chown -R postgres "$T/re/pl" "$T/re/victim"; chown -h postgres "$T/re/pl/pg_wal/.walship-prefetch"
t "wal-fetch with a planted prefetch link succeeds" ws wal-fetch "$name" "$T/re/pl/pg_wal/RECOVERYXLOG"
sleep 1
[ -e "$T/re/victim/keep" ] && [ ! -e "$T/re/victim/.lock" ]; ok $? "... and the prefetcher neither sweeps nor locks the link's target"
mkdir -p "$T/re/adir"; chown postgres "$T/re/adir"
t_fail "st get into a directory is a usage error" 2 ws --region us-east-1 st get "wal/$name" "$T/re/adir"
[ -d "$T/re/adir" ] && [ -z "$(ls -A "$T/re/adir")" ]; ok $? "... and the directory is untouched"

# ---- kill -9 in the middle of an upload ----
fp_ctl "$C1" delay 300 >/dev/null
walseg "$T/re/pg_wal/000000010000001000000001" 000000010000001000000001 "$SYSID" 11
pg_run "$WALSHIP" --config "$CONF" wal-push "$T/re/pg_wal/000000010000001000000001" >/dev/null 2>&1 &
pushpid=$!
sleep 0.8
ws_kill_lock_holder -KILL "$T/spool/$SYSID/claims/000000010000001000000001"
wait "$pushpid" 2>/dev/null
fp_ctl "$C1" delay 0 >/dev/null
got=$(ws --region us-east-1 st ls wal/000000010000001000000001 2>/dev/null)
if [ -n "$got" ]; then
  ws --region us-east-1 st get wal/000000010000001000000001 "$T/re/k9" >/dev/null 2>&1 && cmp -s "$T/re/k9" "$T/re/pg_wal/000000010000001000000001"
  ok $? "after kill -9 the object is either absent or complete"
else
  ok 0 "after kill -9 the object is either absent or complete (absent)"
fi
t "wal-push after kill -9 succeeds" ws wal-push "$T/re/pg_wal/000000010000001000000001"
ws --region us-east-1 st get wal/000000010000001000000001 "$T/re/k9b" >/dev/null 2>&1
cmp -s "$T/re/k9b" "$T/re/pg_wal/000000010000001000000001"; ok $? "and the archived copy is the file"

# the shipper killed mid-upload: the entry stays queued, a new shipper finishes
fp_ctl "$C2" delay 400 >/dev/null
SHIPLOCK="$T/spool/$SYSID/ship.lock"
wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -z \"\$(ws_lock_pid '$SHIPLOCK')\" ]"
ws_kill_lock_holder -KILL "$SHIPLOCK"
walseg "$T/re/pg_wal/000000010000001000000002" 000000010000001000000002 "$SYSID" 12
ws wal-push "$T/re/pg_wal/000000010000001000000002" >/dev/null 2>&1
# killed a second into its work (each round trip to eu-west-1 takes 0.8 s):
# a shipper that a loaded machine started late was not killed at all
wait_for 60 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$SHIPLOCK')\" ]"
ok $? "wal-push started the shipper"
sleep 1
ws_kill_lock_holder -KILL "$SHIPLOCK"
ok $? "... which is killed while it ships"
[ -e "$(EUQ)/000000010000001000000002" ]; ok $? "a killed shipper leaves the file queued"
fp_ctl "$C2" delay 0 >/dev/null
t "a new shipper finishes the job" ws ship --once
ws --region eu-west-1 st get wal/000000010000001000000002 "$T/re/k9c" >/dev/null 2>&1
cmp -s "$T/re/k9c" "$T/re/pg_wal/000000010000001000000002"; ok $? "eu-west-1 has the complete file"

# ---- early failures on a standby: answered and noted like any other ----
mkdir -p "$T/sbx/global" "$T/sbx/pg_wal"
cp "$T/pg/data/global/pg_control" "$T/sbx/global/"; cp "$T/pg/data/PG_VERSION" "$T/sbx/"
: >"$T/sbx/standby.signal"; chown -R postgres "$T/sbx"
SEGX=$name   # t_fail's own "local name" would shadow it inside early()
early() { (cd "$T/sbx" && pg_run "$WALSHIP" --config "$T/no-such.conf" wal-fetch "$SEGX" pg_wal/RECOVERYXLOG); }
t_fail "standby, configuration missing: wal-fetch answers 1 (the standby waits)" 1 early
python3 - "$T/sbx/walship-standby.state" "$SEGX" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["failing"] is True and s["error_file"] == sys.argv[2] and "no-such.conf" in s["error"], s
PY
ok $? "... and notes the failure in walship-standby.state, with its cause" ||
  diag "state: $(cat "$T/sbx/walship-standby.state" 2>&1)"
# a mark names the server it was made for (postmaster.pid's PID and start)
printf '4242\n%s\n1700000000\n' "$T/sbx" >"$T/sbx/postmaster.pid"
echo "4242 1700000000" >"$T/sbx/walship-promoting"
t_fail "standby being promoted, configuration missing: wal-fetch answers 250" 250 early
like "$T_OUT" "a promotion is under way" "... and says why"
printf '4242\n%s\n1700000555\n' "$T/sbx" >"$T/sbx/postmaster.pid"
t_fail "a promotion mark of a server since restarted is ignored: 1 again" 1 early
rm -f "$T/sbx/standby.signal"
t_fail "not a standby, configuration missing: wal-fetch answers 250" 250 early
# a restore_command that ends in a global option without its value: a 2
# would read to PostgreSQL as "not in the archive" and end recovery there
t_fail "wal-fetch NAME DEST --region (no value): 250, not a usage error's 2" 250 \
  ws wal-fetch "$SEGX" "$T/sbx/pg_wal/RECOVERYXLOG" --region
like "$T_OUT" "needs a value" "... saying which option"
t_fail "... other commands: the usage error's 2" 2 ws st ls --region

ws_stop_daemons "$T/spool"
done_testing
