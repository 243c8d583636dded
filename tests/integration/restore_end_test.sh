#!/bin/bash
# restore --start never ends short silently (issue 10, item 5) and never
# waits forever (issue 11, item 3).  A real PostgreSQL 15 archiving into a
# file:// region; its bootstrap superuser is "walship_dba", not the OS user
# walship runs as.
#   - restore to latest and to a time: exit 0, checked, promoted, exact rows;
#   - a target time beyond the archive: exit 3, not promoted;
#   - a segment missing in the middle of the archive, seen before starting:
#     exit 3 at once, naming the segment and the LSN recovery would stop at;
#   - the same segment vanishing after that check, while the backup is
#     fetched: recovery stops short, exit 3, not promoted, no new timeline
#     archived, the message names the stop LSN and quotes PostgreSQL;
#   - bounded: no role to log in as (exit 3 at once, no log spam), and the
#     same restore with --pg-user succeeds; a port in use (by another
#     restored instance); no connection within --start-timeout; replay
#     standing still past --stall-timeout; a server killed
#     during recovery; a recovery that pauses short of the target
#     (insufficient parameter settings): each exit 3, quickly.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT RPORT <<<"$(free_ports 2 | tr '\n' ' ')"
U=$(pg_user)
DBA=walship_dba
ws_mkdirs "$T/r1" "$T/spool" "$T/tmp"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
CONF=$T/a.conf
ws_conf "$CONF" "pg_conninfo = host=$T/pg/sock port=$PGPORT user=$DBA dbname=postgres" "retry_deadline = 5"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
on_exit "ws_stop_daemons '$T'"

# ---- the primary: bootstrap superuser walship_dba ----
pg_init "$T/pg" -U "$DBA" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$PGPORT" -U "$DBA" -d postgres -c "$1"; }
# bounded: a case below stops the startup process, which may hold a lock
# a query needs
rsql() { PGCONNECT_TIMEOUT=5 pg_run timeout 20 "$PG_BIN/psql" -X -q -At -h "$T/pg/sock" -p "$RPORT" -U "$DBA" -d postgres -c "$1" 2>/dev/null; }
# wait_for with a 10 ms poll, for the moments that last a fraction of a second
wait_fast() {
  local end=$((SECONDS + $1)); shift
  while [ "$SECONDS" -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.01; done
  return 1
}
sql "create table ledger (id int primary key, at timestamptz default clock_timestamp())"
sql "insert into ledger(id) select generate_series(1, 100)"
t "backup-push" ws backup-push
sql "insert into ledger(id) select generate_series(101, 1100)"
sql "select pg_switch_wal()" >/dev/null
sleep 1.2
TIME1=$(sql "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 1.2
for i in 2 3 4 5 6 7 8 9 10 11; do
  sql "insert into ledger(id) select generate_series(${i}0001, ${i}1000)"
  sql "select pg_switch_wal()" >/dev/null
done
sql "insert into ledger(id) select generate_series(9001, 9500)"
ROWS=$(sql "select count(*) from ledger")
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 120 test -e "$T/r1/wal/$last"
ok $? "archived through $last ($ROWS rows)"
pg_stop "$T/pg" fast

mapfile -t SEGS < <(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | sort)
MID=${SEGS[-3]}
on_exit "for d in $T/x*/data; do runuser -u $U -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
newdir() { mkdir -p "$T/x$1"; chown "$U" "$T/x$1"; echo "$T/x$1/data"; }
stop_r() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1; }
not_promoted() {   # DIR: the server is stopped, or still in recovery
  [ ! -e "$1/postmaster.pid" ] || [ "$(rsql 'select pg_is_in_recovery()')" = t ] || [ -z "$(rsql 'select 1')" ]
}
no_new_timeline() { ! ls "$T/r1/wal" | grep -q '^00000002'; }
R=(restore --pg-user "$DBA" --port "$RPORT" --keep-archive)

# ---- login: the OS user has no role there ----
d=$(newdir 1)
s0=$SECONDS
t_fail "without --pg-user, the login fails: exit 3" 3 ws restore --pgdata "$d" --target-latest --start --port "$RPORT"
el=$((SECONDS - s0))
[ "$el" -lt 120 ]; ok $? "...within the bound ($el s)"
like "$T_OUT" "cannot log in .*--pg-user" "...saying so and naming --pg-user"
like "$T_OUT" "NOT promoted" "...and that the instance was not promoted"
nl=$(grep -c 'does not exist' "$d/walship-restore.log")
[ "$nl" -le 3 ]; ok $? "...with no log spam ($nl failed logins in the server log)"
not_promoted "$d"; ok $? "...and the instance is not promoted"
stop_r "$d"

# ---- the normal cases ----
d=$(newdir 2)
t "restore --target-latest --start --pg-user $DBA" ws "${R[@]}" --pgdata "$d" --target-latest --start
echo "$T_OUT" | grep -E 'recovery point|promoted|RTO' | sed 's/^/# /'
like "$T_OUT" "checked, then promoted" "...checked, then promoted"
is "$(rsql 'select count(*) from ledger')" "$ROWS" "...with every row"
is "$(rsql 'select pg_is_in_recovery()')" f "...and out of recovery"
# the target restore wrote (and removed once promoted, issue 17) was an LSN
like "$T_OUT" "removed recovery_target_lsn" "...recovery was asked for the end of the archive (an LSN target)"
if grep -q "^recovery_target" "$d/postgresql.auto.conf"; then ok 1 "...and the promoted instance keeps no target"; else ok 0 "...and the promoted instance keeps no target"; fi

# ---- bounded: a port in use (by the instance just restored) ----
d2=$d
d=$(newdir 20)
s0=$SECONDS
t_fail "a port in use: exit 3" 3 ws restore --pg-user "$DBA" --pgdata "$d" --target-latest --start --port "$RPORT"
el=$((SECONDS - s0))
[ "$el" -lt 120 ]; ok $? "...within the bound ($el s)"
like "$T_OUT" "exited during" "...saying PostgreSQL exited"
like "$T_OUT" "in use|could not bind|could not create" "...quoting why"
is "$(rsql 'select count(*) from ledger')" "$ROWS" "...and the instance on that port is untouched"
stop_r "$d2"
rm -f "$T/r1/wal/00000002.history" "$T/r1/wal/00000002"*   # that drill's timeline: not wanted below

d=$(newdir 3)
t "restore --target-time --start" ws "${R[@]}" --pgdata "$d" --target-time "$TIME1" --start
is "$(rsql 'select count(*) from ledger')" 1100 "...exactly the rows before the target time"
is "$(rsql 'select pg_is_in_recovery()')" f "...promoted"
stop_r "$d"
rm -f "$T/r1/wal/00000002.history" "$T/r1/wal/00000002"*

# ---- a target time beyond the archive ----
d=$(newdir 4)
s0=$SECONDS
t_fail "a target time beyond the archive: exit 3" 3 \
  ws "${R[@]}" --pgdata "$d" --target-time "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')" --start
el=$((SECONDS - s0))
like "$T_OUT" "recovery stopped at LSN [0-9A-F]+/[0-9A-F]+" "...naming where recovery stopped ($el s)"
like "$T_OUT" "recovery ended before configured recovery target was reached" "...quoting PostgreSQL"
not_promoted "$d"; ok $? "...not promoted"
no_new_timeline; ok $? "...no new timeline archived"
stop_r "$d"

# ---- a segment missing in the middle, seen before starting ----
mv "$T/r1/wal/$MID" "$T/tmp/$MID"
d=$(newdir 5)
t_fail "latest with $MID missing from the archive: exit 3 before starting" 3 \
  ws "${R[@]}" --pgdata "$d" --target-latest --start
like "$T_OUT" "$MID is missing.*would stop at LSN" "...naming the segment and the LSN recovery would stop at"
[ ! -e "$d/postmaster.pid" ]; ok $? "...nothing was started"
mv "$T/tmp/$MID" "$T/r1/wal/$MID"

# ---- the segment vanishes after that check: recovery stops short ----
d=$(newdir 6)
s0=$SECONDS
ws "${R[@]}" --pgdata "$d" --target-latest --start >"$T/tmp/gap.out" 2>&1 &
bg=$!
wait_fast 120 test -e "$d/PG_VERSION"    # the archive check is done; the prefetcher not started
mv "$T/r1/wal/$MID" "$T/tmp/$MID"
wait "$bg"
is "$?" 3 "latest when $MID vanishes during the restore: exit 3"
out=$(cat "$T/tmp/gap.out")
like "$out" "recovery stopped at LSN [0-9A-F]+/[0-9A-F]+" "...naming the stop LSN"
like "$out" "recovery ended before configured recovery target was reached" "...quoting why PostgreSQL stopped"
like "$out" "NOT promoted" "...saying it was not promoted"
not_promoted "$d"; ok $? "...not promoted"
no_new_timeline; ok $? "...no timeline 2 and no 00000002.history archived"
echo "$out" | grep -E 'stopped at|said|    ' | head -8 | sed 's/^/# /'
stop_r "$d"
mv "$T/tmp/$MID" "$T/r1/wal/$MID"

# A pg_ctl that adds -c restore_command='sleep 20' (the command line wins
# over postgresql.auto.conf): recovery then cannot end on its own.
HB=$T/hangbin
mkdir -p "$HB"
for b in "$PG_BIN"/*; do ln -sf "$b" "$HB/"; done
rm -f "$HB/pg_ctl"
printf '#!/bin/sh\nexec "%s/pg_ctl" -o "-c restore_command='"'"'sleep 20'"'"'" "$@"\n' "$PG_BIN" >"$HB/pg_ctl"
chmod 755 "$HB/pg_ctl"

# ---- bounded: the server killed during recovery ----
# (with the hanging restore_command above: recovery of a few segments
# from file:// can end before the kill lands on a fast machine)
d=$(newdir 8)
s0=$SECONDS
ws "${R[@]}" --pg-bin "$HB" --pgdata "$d" --target-latest --start >"$T/tmp/kill.out" 2>&1 &
bg=$!
wait_for 120 test -s "$d/postmaster.pid"
kill -9 "$(head -1 "$d/postmaster.pid")"
wait "$bg"
is "$?" 3 "the server killed during recovery: exit 3"
el=$((SECONDS - s0))
[ "$el" -lt 180 ]; ok $? "...within the bound ($el s)"
like "$(cat "$T/tmp/kill.out")" "exited during" "...saying PostgreSQL exited"
no_new_timeline; ok $? "...no new timeline"

# ---- bounded: the instance never accepts connections (--start-timeout) ----
# PostgreSQL's restore_command hangs (a hung mount, say): the server never
# reaches consistency, so it never accepts connections.  Made certain with
# the pg_ctl above, HB, whose restore_command is 'sleep 20'; everything
# else is PostgreSQL's own.
# (Stopping the postmaster once it exists was not: CI was once too late.)
d=$(newdir 30)
s0=$SECONDS
ws "${R[@]}" --pg-bin "$HB" --pgdata "$d" --target-latest --start --start-timeout 8 >"$T/tmp/st.out" 2>&1
is "$?" 3 "no connection within --start-timeout 8: exit 3"
el=$((SECONDS - s0))
[ "$el" -lt 120 ]; ok $? "...within the bound ($el s)"
like "$(cat "$T/tmp/st.out")" "did not accept connections within 8 s" "...naming the timeout"
like "$(cat "$T/tmp/st.out")" "NOT promoted" "...not promoted"
stop_r "$d"
no_new_timeline; ok $? "...no new timeline"

# ---- bounded: replay stops moving (--stall-timeout) ----
# PostgreSQL's restore_command hangs once the instance is consistent: the
# WAL up to the backup's end comes as usual, then every later segment
# hangs.  walship logs in, sees the replay LSN stand still, and gives up.
# (Made certain: stopping the startup process at the right moment was not.)
# (the segment after the backup's last too: its end record may open it)
STOPWAL=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys
w=json.load(sys.stdin)[0]["backups"][-1]["stop_wal"]
n=int(w[8:16],16)*256+int(w[16:],16)+1
print("%s%08X%08X" % (w[:8], n // 256, n % 256))')
{
  echo '#!/bin/bash'
  echo "# restore_command: as walship's up to $STOPWAL, then a segment hangs"
  echo 'if [[ "$1" =~ ^[0-9A-F]{24}$ && "$1" > "'"$STOPWAL"'" ]]; then sleep 30; exit 1; fi'
  echo 'exec "'"$WALSHIP"'" --config "'"$CONF"'" wal-fetch "$1" "$2" --no-prefetch'
} >"$T/hang-after"
chmod 755 "$T/hang-after"
HS=$T/hangsbin
mkdir -p "$HS"
for b in "$PG_BIN"/*; do ln -sf "$b" "$HS/"; done
rm -f "$HS/pg_ctl"
printf '#!/bin/sh\nexec "%s/pg_ctl" -o "-c restore_command='"'"'%s %%f %%p'"'"'" "$@"\n' "$PG_BIN" "$T/hang-after" >"$HS/pg_ctl"
chmod 755 "$HS/pg_ctl"
d=$(newdir 31)
s0=$SECONDS
ws "${R[@]}" --pg-bin "$HS" --pgdata "$d" --target-latest --start --stall-timeout 6 >"$T/tmp/stall.out" 2>&1
is "$?" 3 "replay stalls: exit 3"
el=$((SECONDS - s0))
[ "$el" -lt 120 ]; ok $? "...within the bound ($el s)"
like "$(cat "$T/tmp/stall.out")" "no progress for 6 s at LSN [0-9A-F]+/[0-9A-F]+" "...naming --stall-timeout and the LSN"
is "$(rsql 'select pg_is_in_recovery()')" t "...the instance is left in recovery"
stop_r "$d"
no_new_timeline; ok $? "...no new timeline"

# ---- bounded: the server stops answering walship's questions ----
# A startup process stopped while it holds the spinlock that "where is
# replay" needs leaves every such query waiting (seen in CI: 526 s, until
# PostgreSQL's stuck-spinlock PANIC).  The same, made certain: replay held
# as above, and walship's own session stopped once it is logged in.  Each
# question has a time limit; no answer counts as no progress.
d=$(newdir 32)
s0=$SECONDS
ws "${R[@]}" --pg-bin "$HS" --pgdata "$d" --target-latest --start --stall-timeout 6 >"$T/tmp/mute.out" 2>&1 &
bg=$!
mute_pid() { rsql "select pid from pg_stat_activity where application_name = 'walship restore'"; }
mute_seen() { [ -n "$(mute_pid)" ]; }
wait_fast 60 mute_seen
mute=$(mute_pid)
[ -n "$mute" ] && kill -STOP $mute
ok $? "walship's session is stopped"
wait "$bg"
is "$?" 3 "a session that never answers: exit 3"
el=$((SECONDS - s0))
[ "$el" -lt 60 ]; ok $? "...within the bound ($el s)"
like "$(cat "$T/tmp/mute.out")" "no progress for 6 s (at LSN [0-9A-F]+/[0-9A-F]+|before PostgreSQL said where replay is)" "...as a stall"
like "$(cat "$T/tmp/mute.out")" "where replay is: no answer within [0-9]+ s" "...saying the question had no answer"
[ -n "$mute" ] && kill -CONT $mute
is "$(rsql 'select pg_is_in_recovery()')" t "...the instance is left in recovery"
stop_r "$d"
no_new_timeline; ok $? "...no new timeline"

# ---- bounded: recovery pauses short of the target ----
# The primary runs with more connections than the restored configuration
# allows: replaying that parameter change pauses recovery.
pg_run "$PG_BIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/server.log" -o "-p $PGPORT -c max_connections=150" -w -t 60 start >/dev/null
sql "insert into ledger(id) select generate_series(10001, 10100)"
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 120 test -e "$T/r1/wal/$last"
ok $? "the primary, restarted with max_connections = 150, archived through $last"
pg_stop "$T/pg" fast
d=$(newdir 9)
s0=$SECONDS
t_fail "recovery paused short of the target: exit 3" 3 ws "${R[@]}" --pgdata "$d" --target-latest --start
el=$((SECONDS - s0))
[ "$el" -lt 180 ]; ok $? "...within the bound ($el s)"
like "$T_OUT" "insufficient parameter settings" "...quoting PostgreSQL's reason"
like "$T_OUT" "NOT promoted" "...not promoted"
is "$(rsql 'select pg_is_in_recovery()')" t "...the instance is left in recovery"
no_new_timeline; ok $? "...no new timeline"
stop_r "$d"

done_testing
