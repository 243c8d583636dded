#!/bin/bash
# A warm standby in the DR region, fed from that region's archive (issue 14,
# item 4; docs/RESTORE.md "A warm standby").
#
# The primary archives to the file:// region "home"; the region "dr" is fed
# from it as bucket replication would (objects are the same bytes in every
# region), at the moments the test chooses.  On a bare host (no configuration file: --from file://dr) `restore --standby
# --start` makes a hot standby fed from dr only.  Then:
#   catch-up   the primary writes and archives; the standby replays it, rows
#              visible read-only; status --standby shows no lag (text, JSON,
#              Prometheus);
#   follow     segments archived one at a time are served by the same
#              prefetcher process (it stays between segments);
#   no promotion on error
#              a foreign object in dr where the next segment belongs: the
#              standby logs it, stays in recovery, status names the cause and
#              the lag, `walship promote` refuses; the good object put back,
#              it catches up;
#   outage     dr gone: the standby keeps running in recovery, status shows
#              the stall and its cause; dr back: it catches up;
#   restart    stopped and started by pg_ctl: still a standby, catches up;
#   promotion  the primary lost; `walship promote` replays the rest of dr,
#              is writable on timeline 2 with every acknowledged row, prints
#              the time, and leaves no restore setting behind.
# Every result is compared with a client-side ledger of acknowledged ids.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
# prefetchers that restores and standbys leave behind: stopped by the PID in their lock
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
SPORT=$(pg_free_port)
[ "$PGPORT" != "$SPORT" ] || SPORT=$((PGPORT + 1))
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/home" "$T/dr"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 2" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" home "file://$T/home" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
# the DR host: no configuration file, only the dr region
SB=$T/sb/data
dr() { pg_run "$WALSHIP" --from "file://$T/dr" --region dr --key-file "$T/key" "$@"; }

LEDGER=$T/ledger
: >"$LEDGER"
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
sql() { psql_p "$PGPORT" "$1"; }
ssql() { psql_p "$SPORT" "$1"; }
write_ids() {   # FROM TO: one transaction per id, ledgered when acknowledged
  local i
  for ((i = $1; i <= $2; i++)); do
    sql "insert into ledger(id) values ($i)" >/dev/null && echo "$i" >>"$LEDGER"
  done
}
want_ids() { sort -n "$LEDGER" | tr '\n' ' ' | sed 's/ $//'; }
got_ids() { psql_p "$1" "select string_agg(id::text, ' ' order by id) from ledger" 2>/dev/null; }
standby_has_all() { [ "$(got_ids "$SPORT")" = "$(want_ids)" ]; }
archive_switch() {  # switch WAL, wait until home has the finished segment; echo its name
  local sw
  sw=$(sql "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 test -e "$T/home/wal/$sw" || return 1
  echo "$sw"
}
ship_dr() {    # what home has and dr lacks, as bucket replication would: never overwrites
  local f
  (cd "$T/home" && find . -type f ! -name '.walship-tmp-*') | while read -r f; do
    [ -e "$T/dr/$f" ] && continue
    mkdir -p "$(dirname "$T/dr/$f")"
    cp -p "$T/home/$f" "$(dirname "$T/dr/$f")/.walship-tmp-repl" && mv "$(dirname "$T/dr/$f")/.walship-tmp-repl" "$T/dr/$f"
  done
  chown -R "$(pg_user)" "$T/dr"
}
in_recovery() { ssql "select pg_is_in_recovery()"; }
sb_alive() { [ -f "$SB/postmaster.pid" ] && kill -0 "$(head -1 "$SB/postmaster.pid")" 2>/dev/null; }
on_exit "for d in $T/pg/data $SB; do [ -f \$d/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

# ---- the primary ----
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
# the standby inherits it with the backup: it asks the archive every second
pg_conf "$T/pg" "wal_retrieve_retry_interval = 1s"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
sql "create table ledger (id int primary key, at timestamptz default clock_timestamp())"
write_ids 1 10
t "backup-push" ws backup-push
archive_switch >/dev/null; ok $? "WAL archived to home"
ship_dr

# ---- restore --standby: refusals, then the standby ----
mkdir -p "$T/sb" "$T/sb0" && chown "$(pg_user)" "$T/sb" "$T/sb0"
t_fail "restore --standby with --target-time: usage error" 2 dr restore --standby --pgdata "$T/x" \
  --target-time "2026-01-01 00:00:00+00"
t_fail "restore --standby with --target-latest: usage error" 2 dr restore --standby --pgdata "$T/x" --target-latest
t_fail "restore --standby with --target-action: usage error" 2 dr restore --standby --pgdata "$T/x" \
  --target-action pause
t_fail "restore --standby with --keep-restore-command: usage error (promote's option)" 2 dr restore --standby \
  --pgdata "$T/x" --keep-restore-command
[ ! -e "$T/x" ]; ok $? "a refused restore touches nothing"

# --from s3:// with credentials only in the environment: restore_command
# names none, so a server started another way after a restart has none
out=$(pg_run env AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret "$WALSHIP" --from s3://nobucket/p \
  --endpoint http://127.0.0.1:9 --key-file "$T/key" restore --standby --pgdata "$T/x3" 2>&1)
like "$out" "restore_command names no credentials.*AWS_ACCESS_KEY_ID" \
  "restore --standby --from s3:// warns that restore_command carries no credentials from the environment"
t "restore --standby without --start" dr restore --standby --pgdata "$T/sb0/data"
like "$T_OUT" "standby settings written .*start it with" "without --start: says how to start it"
[ -e "$T/sb0/data/standby.signal" ] && [ ! -e "$T/sb0/data/postmaster.pid" ]; ok $? "without --start: standby.signal, not started"
rm -rf "$T/sb0"
t "restore --standby --start on a bare host" dr restore --standby --pgdata "$SB" --port "$SPORT" --start
like "$T_OUT" "standby running: backup .* from region dr" "restore says the standby runs"
like "$T_OUT" "accepting read-only connections at LSN" "restore returns once it accepts read-only connections"
like "$T_OUT" "walship promote" "restore says how to promote it"
[ -e "$SB/standby.signal" ] && [ ! -e "$SB/recovery.signal" ]; ok $? "standby.signal written, no recovery.signal"
is "$(grep -cE "^hot_standby = 'on'" "$SB/postgresql.auto.conf")" 1 "hot_standby = on"
is "$(grep -cE "^recovery_target_timeline = 'latest'" "$SB/postgresql.auto.conf")" 1 "recovery_target_timeline = latest"
is "$(grep -cE '^[[:space:]]*recovery_target(_lsn|_time|_xid|_name|_action|_inclusive)?[[:space:]]*=' "$SB/postgresql.auto.conf")" 0 \
  "no recovery target and no recovery_target_action"
like "$(grep -E '^restore_command' "$SB/postgresql.auto.conf")" "--from.*file://$T/dr.*--region.*'dr'.* wal-fetch %f %p" \
  "restore_command: wal-fetch from the dr region only"
sb_alive; ok $? "restore left the standby running"
is "$(in_recovery)" t "the standby is in recovery"
is "$(got_ids "$SPORT")" "$(want_ids)" "the standby holds every acknowledged row of the backup's time"
ssql "insert into ledger(id) values (100000)" >/dev/null 2>&1; [ $? -ne 0 ]; ok $? "the standby refuses writes"

# ---- catch-up ----
write_ids 11 20
archive_switch >/dev/null
ship_dr
wait_for 60 standby_has_all; ok $? "catch-up: the standby replays what reaches dr"
# lag 0: the standby is in the newest segment dr holds
wait_for 30 bash -c "runuser -u postgres -- '$WALSHIP' --from 'file://$T/dr' --region dr --key-file '$T/key' status --standby '$SB' | grep -q 'behind region dr: 0 segments'"
t "status --standby: OK when caught up" dr status --standby "$SB"
like "$T_OUT" "standby $SB: OK" "status --standby: the standby's line"
like "$T_OUT" "replay: +in recovery, replayed up to LSN [0-9A-F]+/[0-9A-F]+" "status --standby: the replay position"
like "$T_OUT" "behind region dr: 0 segments, 0 s" "status --standby: no lag"
like "$T_OUT" "waiting for: +[0-9A-F]{24} \\(not archived yet" "status --standby: the segment it waits for"
J=$(dr status --standby "$SB" --json)
is "$(python3 -c 'import json,sys; s=json.load(sys.stdin)["standby"]; print(s["in_recovery"], s["replay_lag_segments"], s["fetch_failing"], s["alarm"])' <<<"$J")" \
  "True 0 False False" "status --json: the standby's lag and state"
P=$(dr status --standby "$SB" --prometheus)
like "$P" "^walship_standby_replay_lag_segments\\{pgdata=\"$SB\",region=\"dr\"\\} 0$" "status --prometheus: replay lag in segments"
like "$P" "^walship_standby_replay_lag_seconds\\{" "status --prometheus: replay lag in seconds"
like "$P" "^walship_standby_up\\{.*\\} 1$" "status --prometheus: the standby is up"
grep -q "walship_standby_replay_lag_seconds" "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml"
ok $? "the alert rules watch the standby's replay lag"

# ---- the prefetcher stays between segments ----
# a standby's archive grows a segment at a time; the prefetcher restore
# started follows it (its window opens again from each segment a question
# finds, on connections already open) instead of leaving at each one, so
# the call that asks for the not-yet-archived next segment, which promotion
# waits for, is a question to it, not a new connection
PF=$SB/pg_wal/.walship-prefetch/.lock
P0=$(ws_lock_pid "$PF")
[ -n "$P0" ] && kill -0 "$P0" 2>/dev/null; ok $? "follow: a prefetcher serves the caught-up standby"
for r in 1 2 3; do
  write_ids $((1000 + r * 10)) $((1005 + r * 10))
  archive_switch >/dev/null
  ship_dr
  wait_for 60 standby_has_all || break
done
standby_has_all; ok $? "follow: the standby replays three segments archived one at a time"
is "$(ws_lock_pid "$PF")" "$P0" "follow: the same prefetcher served all three"

# ---- no promotion on error: a foreign object where the next segment goes ----
# the segment the caught-up standby asks for (and dr does not hold yet)
state() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, s))' "$SB/walship-standby.state" "$1" 2>/dev/null; }
waiting() { [ "$(state 'missing_unix > fetched_unix')" = True ]; }
wait_for 30 waiting
NEXT=$(state missing)
[ ! -e "$T/dr/wal/$NEXT" ]; ok $? "foreign object: the standby waits for $NEXT, not archived yet"
OTHER=$(ls "$T/dr/wal" | grep -E '^[0-9A-F]{24}$' | head -1)
cp "$T/dr/wal/$OTHER" "$T/dr/wal/$NEXT" && chown "$(pg_user)" "$T/dr/wal/$NEXT"
wait_for 30 bash -c "grep -q '\"error_file\": \"$NEXT\"' '$SB/walship-standby.state'"
ok $? "foreign object: wal-fetch notes the failure"
sleep 3
sb_alive && [ "$(in_recovery)" = t ]; ok $? "foreign object: the standby keeps running, in recovery"
grep -qE "wal-fetch $NEXT: .*standby: exit 1" "$SB/walship-restore.log"; ok $? "foreign object: the standby's log says why"
write_ids 21 25
archive_switch >/dev/null
write_ids 26 30
archive_switch >/dev/null
ship_dr
t_fail "foreign object: status --standby is an alarm" 2 dr status --standby "$SB"
like "$T_OUT" "fetch failing: $NEXT at .*<- stalled" "foreign object: status shows the stall and its cause"
like "$T_OUT" "behind region dr: [1-9][0-9]* segments" "foreign object: status shows the lag in segments"
t_fail "foreign object: walship promote refuses" 3 dr promote "$SB"
like "$T_OUT" "wal-fetch on this standby is failing" "foreign object: promote says why"
# an operator looking into the stall fetches a later segment by hand, from
# the data directory: that is not the server's progress, and promote must
# still refuse (it used to clear the failure, and promote ended recovery)
LATER=$(ls "$T/dr/wal" | grep -E '^[0-9A-F]{24}$' | sort | tail -1)
mkdir -p "$T/hr" && chown "$(pg_user)" "$T/hr"
(cd "$SB" && dr wal-fetch "$LATER" "$T/hr/$LATER" --no-prefetch >/dev/null 2>&1)
[ -s "$T/hr/$LATER" ]; ok $? "foreign object: a hand-run wal-fetch of a later segment in the data directory works"
t_fail "foreign object: ... and walship promote still refuses" 3 dr promote "$SB"
like "$T_OUT" "wal-fetch on this standby is failing" "foreign object: ... for the failure it still knows of"
is "$(in_recovery)" t "foreign object: still in recovery after the refused promotion"
# the good object back
rm "$T/dr/wal/$NEXT"
ship_dr
wait_for 60 standby_has_all; ok $? "foreign object replaced: the standby catches up"
t "foreign object replaced: status --standby OK again" dr status --standby "$SB"

# ---- outage: dr unreachable ----
mv "$T/dr" "$T/dr.off"
write_ids 31 40
archive_switch >/dev/null   # home has it; dr is down, nothing reaches it
wait_for 30 bash -c "grep -q '\"error_unix\"' '$SB/walship-standby.state' && runuser -u postgres -- '$WALSHIP' --from 'file://$T/dr' --region dr --key-file '$T/key' status --standby '$SB' | grep -q 'fetch failing'"
ok $? "outage: wal-fetch fails and says so"
sleep 3
sb_alive && [ "$(in_recovery)" = t ]; ok $? "outage: the standby keeps running, in recovery, does not promote"
t_fail "outage: status --standby is an alarm" 2 dr status --standby "$SB"
like "$T_OUT" "fetch failing: .*<- stalled" "outage: status shows the stall"
like "$T_OUT" "behind region dr: unknown" "outage: the lag is unknown, not 0"
mv "$T/dr.off" "$T/dr"
ship_dr
wait_for 60 standby_has_all; ok $? "outage over: the standby catches up"

# ---- restart ----
pg_run "$PG_BIN/pg_ctl" -D "$SB" -m fast -w -t 60 stop >/dev/null 2>&1; ok $? "restart: standby stopped"
t_fail "restart: status --standby of a stopped standby is an alarm" 2 dr status --standby "$SB"
like "$T_OUT" "not running" "restart: status says it is not running"
write_ids 41 50
archive_switch >/dev/null
ship_dr
pg_start "$T/sb" "$SPORT"; ok $? "restart: standby started by pg_ctl"
is "$(in_recovery)" t "restart: still a standby"
wait_for 60 standby_has_all; ok $? "restart: it catches up"

# ---- a failure while it promotes: PostgreSQL stops, the standby stays one ----
# PostgreSQL, asked to promote, replays what restore_command still gives and
# ends recovery at the first file it does not get: a standby's usual answer
# to a failure (1) would end it there, before WAL dr holds.  The standby now
# asks once a minute, so dr can fail between two of its questions, unseen
# until the promotion asks.
echo "wal_retrieve_retry_interval = '60s'" >>"$SB/postgresql.auto.conf"
pg_run "$PG_BIN/pg_ctl" -D "$SB" reload >/dev/null 2>&1
sleep 3
write_ids 200 205
archive_switch >/dev/null
ship_dr                     # dr holds them; the standby has not asked yet
mv "$T/dr" "$T/dr.off"
t_fail "failing fetch while promoting: promote fails (exit 3)" 3 dr promote "$SB"
like "$T_OUT" "PostgreSQL stopped rather than end recovery before WAL the region may hold" \
  "failing fetch while promoting: promote says what happened and what to do"
wait_for 30 bash -c "! { [ -f '$SB/postmaster.pid' ] && kill -0 \$(head -1 '$SB/postmaster.pid') 2>/dev/null; }"
ok $? "failing fetch while promoting: PostgreSQL stopped instead of ending recovery"
grep -qh "a promotion is under way" "$SB/walship-restore.log" "$T/sb/server.log" 2>/dev/null
ok $? "failing fetch while promoting: wal-fetch said why it answered 250"
[ -e "$SB/standby.signal" ] && [ ! -e "$SB/walship-promoting" ]; ok $? "failing fetch while promoting: still a standby on disk, no promotion mark left"
sed -i "/^wal_retrieve_retry_interval = '60s'$/d" "$SB/postgresql.auto.conf"
mv "$T/dr.off" "$T/dr"
pg_start "$T/sb" "$SPORT"; ok $? "failing fetch while promoting: started again"
is "$(in_recovery)" t "failing fetch while promoting: a standby again"
wait_for 60 standby_has_all; ok $? "failing fetch while promoting: it replays what dr holds, nothing lost"

# ---- promote pointed at the primary or at another standby ----
md5_auto=$(md5sum <"$T/pg/data/postgresql.auto.conf")
t "promote on a primary does nothing" dr promote "$T/pg/data"
like "$T_OUT" "holds no walship standby settings: nothing to do" "promote on a primary says so"
is "$(md5sum <"$T/pg/data/postgresql.auto.conf")" "$md5_auto" "promote on a primary leaves its postgresql.auto.conf alone"

# ---- a gap in dr: the standby waits at it, status says so, promote refuses ----
write_ids 300 302
GAP=$(archive_switch)
write_ids 303 305
archive_switch >/dev/null
mv "$T/home/wal/$GAP" "$T/gap.seg"; ship_dr; mv "$T/gap.seg" "$T/home/wal/$GAP"
wait_for 30 bash -c "runuser -u postgres -- '$WALSHIP' --from 'file://$T/dr' --region dr --key-file '$T/key' status --standby '$SB' | grep -q 'gap in region dr: $GAP'"
ok $? "gap: status --standby names the segment dr lacks ($GAP)"
t_fail "gap: status --standby is an alarm" 2 dr status --standby "$SB"
t_fail "gap: walship promote --region dr refuses" 3 dr promote "$SB"
like "$T_OUT" "region dr lacks $GAP while it holds later WAL" "gap: promote says which segment and why"
is "$(in_recovery)" t "gap: still a standby"
t_fail "promote --region naming no configured region: usage error, nothing done" 2 \
  pg_run "$WALSHIP" --config "$CONF" --region nosuch promote "$SB"
is "$(in_recovery)" t "... still a standby"
ship_dr
wait_for 60 standby_has_all; ok $? "gap filled: the standby catches up"

# ---- paused replay: a stall, and no promotion ----
# PostgreSQL pauses a standby by itself when the primary raises
# max_connections (or a like setting) above the standby's, and then shuts
# it down when asked to promote; an operator's pg_wal_replay_pause() looks
# the same from outside.  status used to say OK, and promote shut it down.
ssql "select pg_wal_replay_pause()" >/dev/null
replay_paused() { [ "$(ssql "select pg_get_wal_replay_pause_state()")" = paused ]; }
wait_for 30 replay_paused; ok $? "paused: replay paused on the standby"
t_fail "paused: status --standby is an alarm" 2 dr status --standby "$SB"
like "$T_OUT" "in recovery \\(PAUSED\\).*<- stalled: replay is paused" "paused: status says replay is paused"
is "$(dr status --standby "$SB" --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin)["standby"]; print(s["replay_paused"], s["alarm"])')" \
  "True True" "paused: status --json says so"
t_fail "paused: walship promote refuses" 3 dr promote "$SB"
like "$T_OUT" "is paused at LSN" "paused: promote says why"
is "$(in_recovery)" t "paused: still a standby"
[ ! -e "$SB/walship-promoting" ]; ok $? "paused: no promotion mark left"
ssql "select pg_wal_replay_resume()" >/dev/null
t "paused: resumed, status --standby OK again" dr status --standby "$SB"

# ---- promotion: the primary is lost ----
write_ids 51 60
LAST=$(archive_switch)
ship_dr
[ -e "$T/dr/wal/$LAST" ]; ok $? "promotion: dr holds the last segment"
pg_stop "$T/pg" immediate
t "promotion: walship promote" dr promote "$SB"
PROMOTE_OUT=$T_OUT
like "$T_OUT" "promoted $SB to timeline 2: writable [0-9.]+ s after the promotion request" "promotion: timeline and time printed"
like "$T_OUT" "promoted: recovery settings removed" "promotion: restore's settings removed"
is "$(ssql "select pg_is_in_recovery()")" f "promotion: out of recovery"
is "$(got_ids "$SPORT")" "$(want_ids)" "promotion: every acknowledged row, the last segment's included"
ssql "insert into ledger(id) values (61)" >/dev/null; ok $? "promotion: writable"
is "$(ssql "select timeline_id from pg_control_checkpoint()")" 2 "promotion: timeline 2 (checkpointed)"
is "$(grep -cE '^[[:space:]]*(restore_command|recovery_target)' "$SB/postgresql.auto.conf")" 0 \
  "promotion: postgresql.auto.conf sets no restore_command or recovery_target"
[ ! -e "$SB/standby.signal" ] && [ ! -e "$SB/walship-standby.state" ]; ok $? "promotion: no standby.signal, no standby state"
t "promotion: promote again is a no-op" dr promote "$SB"
like "$T_OUT" "already promoted" "promotion: says it is already promoted"
# run as root, promote's clean-up keeps the server's file the server's
echo "restore_command = 'false'" >>"$SB/postgresql.auto.conf"
t "promotion: promote again as root (a restore_command put back)" "$WALSHIP" promote "$SB" --pg-user postgres
is "$(stat -c '%U %a' "$SB/postgresql.auto.conf")" "postgres 600" \
  "promotion: postgresql.auto.conf rewritten by root stays the server's (owner and mode)"
is "$(grep -c "^restore_command" "$SB/postgresql.auto.conf")" 0 "promotion: ... and the restore_command is removed again"
# status --standby of a server promoted (here by walship promote; by
# pg_ctl promote behind status' back it is the same): no warm standby any
# more, an alarm, and the rule on walship_standby_up fires (adversarial
# pass V)
t_fail "promotion: status --standby of the promoted server is an alarm (exit 2)" 2 dr status --standby "$SB"
like "$T_OUT" "not in recovery: promoted, not a standby any more" "promotion: status says it is no standby"
like "$(dr status --standby "$SB" --prometheus 2>/dev/null)" "walship_standby_up\\{pgdata=\"$SB\",region=\"dr\"\\} 0" \
  "promotion: walship_standby_up 0"
diag "$(grep -E 'writable' <<<"$PROMOTE_OUT")"

done_testing
