#!/bin/bash
# Point-in-time restore into a fresh instance in the surviving region: the
# primary is destroyed and its region stopped, then walship restore brings
# the database back to a time, an LSN, a named restore point and the
# latest point; twice in a row across timelines; refuses a gap; and works
# on a bare host with no configuration file.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r P1 P2 PGPORT RPORT <<<"$(free_ports 4 | tr '\n' ' ')"
swift_start_regions "$T/s1" us-east-1 "$P1" "$T/s2" eu-west-1 "$P2" || { echo "Bail out! swift did not start"; exit 1; }
on_exit "swift_stop $T/s1; swift_stop $T/s2"
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
swift_create_bucket "$P2" eu-west-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }

CONF=$T/walship.conf
ws_mkdirs "$T/spool"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
region() {   # NAME PORT MODE: a region of the S3 servers, appended to $CONF
  ws_region "$CONF" "$1" s3://walship/prod "endpoint = http://127.0.0.1:$2" "path_style = true" "mode = $3" \
    "access_key_id = test:tester" "secret_access_key = testing"
}
ws_conf "$CONF" "retry_deadline = 5" "connect_timeout = 2" "io_timeout = 5" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
region us-east-1 "$P1" sync
region eu-west-1 "$P2" async
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
# background shippers and prefetchers started by wal-push / wal-fetch
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

pg_run "$PG_BIN/pgbench" -i -s 2 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
sql "create table marker (id text primary key, at timestamptz default clock_timestamp())"
t "backup-push" ws backup-push

sql "insert into marker(id) values ('A')"
sleep 1.2
TARGET_TIME=$(sql "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
sleep 1.2
sql "insert into marker(id) values ('B')"
sql "insert into marker(id) values ('C')"
TARGET_LSN=$(sql "select pg_current_wal_insert_lsn()")
sql "select pg_create_restore_point('before_D')" >/dev/null
sql "insert into marker(id) values ('D')"
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select last_archived_wal from pg_stat_archiver')\" \\> '$last' ] || [ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select last_archived_wal from pg_stat_archiver')\" = '$last' ]"
ok $? "everything up to $last is archived"
# (CI once saw the background shipper hold ship.lock for minutes without
# shipping to eu-west-1: on failure, say what the shipper logged)
t "the async region is caught up" ws ship --once ||
  diag "the shipper's log and the spool:" "$(tail -n 20 "$T"/spool/*/ship.log 2>&1)" \
    "$(cat "$T"/spool/*/state/* 2>/dev/null | head -c 2000)" "$(ls -lR "$T/spool" 2>&1 | head -40)" \
    "$(ps -eo pid,etimes,args | grep '[w]alship' | head -10)"

# ---- disaster: the primary and its region are gone ----
pg_stop "$T/pg" immediate
rm -rf "$T/pg/data"
swift_stop "$T/s1"
# the DR host's configuration: only the surviving region
ws_conf "$CONF" "retry_deadline = 5" "connect_timeout = 2" "io_timeout = 5"
region eu-west-1 "$P2" sync

markers() { pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "select string_agg(id, '' order by id) from marker"; }
stop_r() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1; }
on_exit "for d in $T/r*/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }

d=$(newdir rtime)
t "restore to a time from eu-west-1" ws --region eu-west-1 restore --pgdata "$d" --target-time "$TARGET_TIME" --start --port "$RPORT"
echo "$T_OUT" | grep -E 'RTO|recovery point' | sed 's/^/# /'
is "$(markers)" "A" "exactly the markers committed before the target time"
stop_r "$d"

d=$(newdir rlsn)
mkdir -m 0755 "$d"; chown "$(pg_user)" "$d"   # an existing empty directory, as an operator makes it
t "restore to an LSN (into an existing empty directory)" ws restore --pgdata "$d" --target-lsn "$TARGET_LSN" --start --port "$RPORT"
is "$(stat -c %a "$d")" 700 "the data directory gets mode 0700, as PostgreSQL requires"
is "$(markers)" "ABC" "exactly the markers committed before the target LSN"
stop_r "$d"

d=$(newdir rname)
t "restore to a named restore point" ws restore --pgdata "$d" --target-name before_D --start --port "$RPORT"
is "$(markers)" "ABC" "exactly the markers before the restore point"
stop_r "$d"

d=$(newdir rlatest)
t "restore to the latest point, keeping archiving on" ws restore --pgdata "$d" --target-latest --keep-archive --start --port "$RPORT"
echo "$T_OUT" | grep -E 'RTO' | sed 's/^/# /'
is "$(markers)" "ABCD" "every marker after restoring to latest"
tl=$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "select timeline_id from pg_control_checkpoint()")
is "$tl" 2 "the restored instance runs on timeline 2"
grep -q "archive_mode = 'off'" "$d/postgresql.auto.conf"; [ $? -ne 0 ]; ok $? "--keep-archive leaves archiving on"
pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "insert into marker(id) values ('E')" >/dev/null
sw=$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "runuser -u postgres -- $WALSHIP --config $CONF st ls wal/$sw 2>/dev/null | grep -q $sw"
ok $? "the new timeline's WAL is archived ($sw)"
wait_for 30 bash -c "runuser -u postgres -- $WALSHIP --config $CONF st ls wal/00000002.history 2>/dev/null | grep -q history"
ok $? "the timeline 2 history file is archived"
stop_r "$d"

d=$(newdir rtl3)
t "restore again, following timeline 2" ws restore --pgdata "$d" --target-latest --start --port "$RPORT"
is "$(markers)" "ABCDE" "the second restore has the marker written on timeline 2"
tl=$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "select timeline_id from pg_control_checkpoint()")
is "$tl" 3 "and runs on timeline 3"
grep -q "pausing at the end of recovery" "$d/walship-restore.log" && ! grep -q "received promote request" "$d/walship-restore.log"
ok $? "recovery ended by resuming at the target, not by a promote request (PostgreSQL 15 sees that only after a 1 s sleep)"
stop_r "$d"

# ---- DR restore with no configuration file at all ----
d=$(newdir rbare)
pg_run env AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing WALSHIP_CONFIG= \
  "$WALSHIP" --from s3://walship/prod --endpoint "http://127.0.0.1:$P2" --path-style --region eu-west-1 \
  --key-file "$T/key" --ca-file /etc/ssl/certs/ca-certificates.crt \
  restore --pgdata "$d" --target-name before_D >"$T/bare.out" 2>&1
ok $? "restore with --from and no configuration file"
grep -q -- "--from" "$d/postgresql.auto.conf"; ok $? "its restore_command carries --from"
grep -q -- "--ca-file'* '*/etc/ssl/certs/ca-certificates.crt" "$d/postgresql.auto.conf"; ok $? "... and --ca-file"
pg_run env AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing "$PG_BIN/pg_ctl" -D "$d" -l "$T/rbare/log" -o "-p $RPORT" -w -t 120 start >/dev/null 2>&1
wait_for 60 bash -c "runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $RPORT -U postgres -d postgres -c 'select not pg_is_in_recovery()' | grep -q t"
is "$(markers)" "ABC" "the bare-host restore reaches the restore point"
stop_r "$d"

# ---- a target before the oldest backup ----
d=$(newdir rold)
t_fail "a target before the oldest backup is refused" 1 ws restore --pgdata "$d" --target-time "2001-01-01 00:00:00+00"
like "$T_OUT" "oldest reachable point" "the message gives the oldest reachable point"

# ---- targets PostgreSQL would read as no target, or never reach: usage errors ----
d=$(newdir rbadtgt)
t_fail "an empty --target-name is refused (PostgreSQL: no target, recovery to the end)" 2 ws restore --pgdata "$d" --target-name ""
t_fail "an empty --target-xid is refused" 2 ws restore --pgdata "$d" --target-xid ""
t_fail "a --target-xid that is not a number is refused" 2 ws restore --pgdata "$d" --target-xid "12abc"
t_fail "a --target-name longer than a restore point's 63 bytes is refused" 2 ws restore --pgdata "$d" --target-name "$(printf 'n%.0s' $(seq 1 64))"
[ -z "$(ls -A "$d" 2>/dev/null)" ]; ok $? "... and nothing was fetched into PGDATA"

# ---- a target timeline that does not exist: exit 1 before anything is fetched ----
d=$(newdir rnotl)
t_fail "a target timeline whose history is not archived is refused (exit 1)" 1 ws restore --pgdata "$d" --target-name before_D --target-timeline 7 --start --port "$RPORT"
like "$T_OUT" "timeline 7 does not exist: 00000007.history is not archived" "... naming the timeline and its history file"
[ -z "$(ls -A "$d" 2>/dev/null)" ]; ok $? "... and nothing was fetched into PGDATA"
t_fail "... with --target-latest too (exit 1)" 1 ws restore --pgdata "$d" --target-latest --target-timeline 7
like "$T_OUT" "timeline 7 does not exist" "... saying so"
d=$(newdir rtl02)
t "--target-timeline 02 (a number with a leading zero)" ws restore --pgdata "$d" --target-name before_D --target-timeline 02
grep -q "recovery_target_timeline = '2'" "$d/postgresql.auto.conf"
ok $? "... is written as the number checked, '2' (PostgreSQL would read '010' as octal)"
d=$(newdir rsbtl)
t "--standby --target-timeline 2: a standby may be told which timeline to follow" ws restore --pgdata "$d" --standby --target-timeline 2
grep -q "recovery_target_timeline = '2'" "$d/postgresql.auto.conf" && [ -f "$d/standby.signal" ]
ok $? "... standby.signal and recovery_target_timeline = '2'"

# ---- two living branches: a drill restored with --keep-archive forks
# timeline 3 off timeline 2, and timeline 2's primary goes on writing ----
DPORT=$(pg_free_port)
rsql() { pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
pg_run "$PG_BIN/pg_ctl" -D "$T/rlatest/data" -l "$T/rlatest/log2" -w -t 60 start >/dev/null 2>&1
ok $? "timeline 2's primary (the first latest restore) runs again"
like "$(ws status --prometheus 2>/dev/null)" 'walship_branches\{region="eu-west-1"\} 0' "status before the drill: one branch"
d=$(newdir rdrill)
t "a drill restored with --keep-archive (the mistake)" ws restore --pgdata "$d" --target-latest --keep-archive --start --port "$DPORT"
is "$(rsql "$DPORT" "select timeline_id from pg_control_checkpoint()")" 3 "the drill runs on timeline 3"
wait_for 30 bash -c "runuser -u postgres -- $WALSHIP --config $CONF st ls wal/00000003.history 2>/dev/null | grep -q history"
ok $? "... and archived 00000003.history"
rsql "$RPORT" "insert into marker(id) values ('G')" >/dev/null
rsql "$RPORT" "select pg_switch_wal()" >/dev/null
rsql "$RPORT" "insert into marker(id) values ('H')" >/dev/null
for i in 1 2 3; do rsql "$RPORT" "select pg_switch_wal(); insert into marker(id) values ('h$i'); delete from marker where id = 'h$i'" >/dev/null; done
sw=$(rsql "$RPORT" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 bash -c "runuser -u postgres -- $WALSHIP --config $CONF st ls wal/$sw 2>/dev/null | grep -q $sw"
ok $? "timeline 2 went on after the fork ($sw archived)"
t_fail "status raises an alarm for two living branches (exit 2)" 2 ws status
like "$T_OUT" "two living branches: at LSN [0-9A-F]+/[0-9A-F]+ the way to the latest timeline \(3\) leaves timeline 2, which went on" \
  "... naming the fork and both timelines"
like "$(ws status --prometheus 2>/dev/null)" 'walship_branches\{region="eu-west-1"\} 1' "... walship_branches 1"
is "$(ws status --json 2>/dev/null | sed -n '/^{/,$p' | python3 -c 'import json,sys; r=json.load(sys.stdin)["regions"][0]; print(r["alarm_branch"], r["alarm"], r["branch"]["latest_timeline"], r["branch"]["other_timeline"])')" \
  "True True 3 2" "... alarm_branch in --json, with the two timelines"
# the drill then takes a backup into production's region, whose policy
# keeps one full backup: production's only backup must survive it
DCONF=$T/drill.conf
ws_conf "$DCONF" "retry_deadline = 5" "connect_timeout = 2" "io_timeout = 5" "$(ws_pg_conninfo "$T/pg" "$DPORT")"
ws_region "$DCONF" eu-west-1 s3://walship/prod "endpoint = http://127.0.0.1:$P2" "path_style = true" "mode = sync" \
  "access_key_id = test:tester" "secret_access_key = testing" "retain_full = 1"
nb=$(ws backup-list 2>/dev/null | grep -cE '^ *[0-9]{8}T[0-9]{6}Z')
t "the drill takes a backup on its branch (retention: retain_full = 1)" pg_run "$WALSHIP" --config "$DCONF" backup-push
# (timeline 1 or 2: timeline 1's last segments, past its switch to 2, were
# stored less than RET_BRANCH_QUIET ago, so it counts as living too, and
# the backup kept for it, before the switch, serves timeline 2 as well)
like "$T_OUT" "is kept beyond the retention policy: it is the only backup from which timeline [12] can be restored" \
  "... its retention keeps production's backup, and says why"
[ "$nb" -ge 1 ]; ok $? "production's backups before the drill's: $nb"
is "$(ws backup-list 2>/dev/null | grep -cE '^ *[0-9]{8}T[0-9]{6}Z')" "$((nb + 1))" "... nothing was deleted (the drill's backup added)"
t "walship delete --dry-run says the same" pg_run "$WALSHIP" --config "$DCONF" delete --dry-run
like "$T_OUT" "only backup from which timeline [12] can be restored" "... naming the timeline"
stop_r "$d"
stop_r "$T/rlatest/data"
d=$(newdir rbranch)
t_fail "restore to latest with two living branches is refused (exit 2)" 2 ws restore --pgdata "$d" --target-latest --start --port "$RPORT"
like "$T_OUT" "two branches: at LSN .* recovery to the latest timeline \\(3\\) goes on as timeline 3, but timeline 2 went on past that point too" "... naming the fork"
like "$T_OUT" "--target-timeline 3 .*--target-timeline 2" "... and the two ways to choose"
[ -z "$(ls -A "$d" 2>/dev/null)" ]; ok $? "... before anything is fetched"
t_fail "a target time with the timeline left to default is refused too" 2 ws restore --pgdata "$d" --target-time "$(date -u '+%Y-%m-%d %H:%M:%S+00')"
t "--target-timeline 2: production's branch" ws restore --pgdata "$d" --target-latest --target-timeline 2 --start --port "$RPORT"
like "$T_OUT" "restoring from backup .*, on the way to timeline 2; backup .*, newer, is not" \
  "... from the newest backup on its way, not the drill's newer one"
is "$(markers)" "ABCDEGH" "every marker production wrote on timeline 2 after the fork"
stop_r "$d"
d=$(newdir rbranch3)
t "--target-timeline latest, said explicitly: the drill's branch (PostgreSQL's choice)" ws restore --pgdata "$d" --target-latest --target-timeline latest
grep -q "recovery_target_timeline = 'latest'" "$d/postgresql.auto.conf"; ok $? "... written as 'latest'"

# ---- a missing WAL segment in the middle: fail, never promote ----
seg=$(ws st ls wal/00000001 2>/dev/null | grep -E '^wal/[0-9A-F]{24}$' | tail -2 | head -1)
[ -n "$seg" ] && ws st rm "$seg" >/dev/null 2>&1
d=$(newdir rgap)
t_fail "restore to latest with a gap in the archive fails (exit 3, before starting)" 3 ws restore --pgdata "$d" --target-latest --target-timeline 2 --start --port "$RPORT"
like "$T_OUT" "missing.*would stop at LSN" "the message names the missing segment and where recovery would stop"
d=$(newdir rgap2)
ws restore --pgdata "$d" --target-time "$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')" --target-timeline 2 --start --port "$RPORT" >"$T/gap2.out" 2>&1
st=$?
is "$st" 3 "restore to a time beyond the gap fails with exit 3 (not a crash, not a success)"
pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "select 1" >/dev/null 2>&1
[ $? -ne 0 ]; ok $? "and leaves no running, promoted instance"
# an LSN beyond the gap is known to be out of reach before anything is
# fetched (before, only a warning: exit 0 without --start, and exit 3 with
# it only after the whole backup was fetched)
d=$(newdir rgap3)
t_fail "restore to an LSN beyond the gap fails with exit 3, without --start too" 3 \
  ws restore --pgdata "$d" --target-lsn FF/0 --target-timeline 2
# (the gap is the chosen backup's start segment: refused as such, no older
# backup on the way to timeline 2 to fall back to)
like "$T_OUT" "is past a gap in the archive, so recovery cannot reach it|where backup .* starts, is not archived.*no older backup" "... saying so"
[ -z "$(ls -A "$d" 2>/dev/null)" ]; ok $? "... before anything is fetched"

# ---- production (timeline 2) backs up after the drill forked timeline 3
# off it: PostgreSQL's 'latest' (3) no longer descends from the newest
# backup ----
pg_run "$PG_BIN/pg_ctl" -D "$T/rlatest/data" -l "$T/rlatest/log3" -w -t 60 start >/dev/null 2>&1
ok $? "production (timeline 2) runs again"
PCONF=$T/prod2.conf
ws_conf "$PCONF" "retry_deadline = 5" "connect_timeout = 2" "io_timeout = 5" "$(ws_pg_conninfo "$T/pg" "$RPORT")"
ws_region "$PCONF" eu-west-1 s3://walship/prod "endpoint = http://127.0.0.1:$P2" "path_style = true" "mode = sync" \
  "access_key_id = test:tester" "secret_access_key = testing"
t "production takes a backup on timeline 2, after the fork" pg_run "$WALSHIP" --config "$PCONF" backup-push
stop_r "$T/rlatest/data"
t_fail "status: the latest timeline forked off before the newest backup (exit 2)" 2 ws status
like "$T_OUT" "the latest timeline \(3\) forked off before the newest backup \(on timeline 2\)" "... says so"
is "$(ws status --json 2>/dev/null | sed -n '/^{/,$p' | python3 -c 'import json,sys; b=json.load(sys.stdin)["regions"][0]["branch"]; print(b["kind"], b["latest_timeline"], b["other_timeline"])')" \
  "not_a_child 3 2" "... --json: kind not_a_child"
d=$(newdir rnotchild)
t_fail "restore --target-latest from it fails (exit 1), before anything is fetched" 1 ws restore --pgdata "$d" --target-latest
like "$T_OUT" "timeline 3 does not descend from timeline 2.*forked off before that backup.*--target-timeline 2" "... and says how to choose"
[ -z "$(ls -A "$d" 2>/dev/null)" ]; ok $? "... nothing fetched"
# a target after the new backup's end: "now" may still be the second that
# backup ended in, and then the drill's backup (on timeline 3's way) is
# the right choice and the restore goes on (seen on a fast CI machine)
t_fail "... so does a target time (exit 1; PostgreSQL would refuse at startup)" 1 ws restore --pgdata "$d" --target-time "$(date -u -d '+1 minute' '+%Y-%m-%d %H:%M:%S+00')" --target-timeline latest
t "--target-timeline 2: production's line, from its new backup" ws restore --pgdata "$d" --target-latest --target-timeline 2

done_testing
