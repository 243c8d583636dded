#!/bin/bash
# walship delete with a real PostgreSQL 15 and two file:// regions that keep
# different numbers of backups: --dry-run lists and deletes nothing; delete
# keeps the newest N backups and the WAL they need; a restore from the
# oldest retained backup still reaches the latest point; an incomplete
# backup is kept while recent and removed once past garbage_hours; a region
# whose newest backup failed keeps its last valid one; backup-push applies
# retention when delete_after_backup is on; after a failover to timeline 2
# and a backup there, timeline 1's old WAL goes and .history stays.
# Clocks (an LD_PRELOAD shim sets walship's clock off): a backup-push whose
# clock is two days back keeps the backup it took though its name sorts
# oldest; a backup stamped a day ahead makes retain_days refuse (delete and
# after backup-push) and raises status's clock alarm; retain_days keeps the
# window's anchor, and a restore from it reaches the latest point.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
on_exit "ws_stop_daemons '$T'"   # wal-fetch prefetchers the restores started

PGPORT=$(pg_free_port)
RPORT=$(pg_free_port)
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/r1" "$T/r2"
ws_key "$T/key"
conf() {   # garbage_hours delete_after_backup
  ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "garbage_hours = $1" "delete_after_backup = $2"
  ws_region "$CONF" r1 "file://$T/r1" "mode = sync" "retain_full = 1"
  ws_region "$CONF" r2 "file://$T/r2" "mode = sync" "retain_full = 2"
}
conf 24 false
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
switch_and_wait() {
  local last
  last=$(sql "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 bash -c "[ -e $T/r1/wal/$last ] && [ -e $T/r2/wal/$last ]"
}

sql "create table marker (id int primary key)"
for i in 1 2 3; do
  sql "insert into marker values ($i)"
  switch_and_wait
  t "backup-push $i" ws backup-push
  sleep 1.1     # backup names have one-second resolution
  sql "insert into marker values (1$i)"
  switch_and_wait
done
sql "insert into marker values (99)"
switch_and_wait
ok $? "WAL after the last backup is archived"

mapfile -t B < <(ls "$T/r1/backups")
is "${#B[@]}" 3 "three backups in r1"
start_wal() { ws --region "$1" backup-list --json | python3 -c "import json,sys; d=json.load(sys.stdin); print([b for r in d for b in r['backups'] if b['name']=='$2'][0]['start_wal'])"; }
S2=$(start_wal r2 "${B[1]}")
S3=$(start_wal r1 "${B[2]}")
like "$S3" '^[0-9A-F]{24}$' "start WAL of the newest backup: $S3"

# A newer backup that failed (no manifest), recent: it must not count.
echo junk >"$T/junk"
t "an incomplete newest backup" ws --region r1 st put "$T/junk" backups/29990101T000000Z/part-0001

count() { find "$T/$1" -type f | wc -l; }
before1=$(count r1)
before2=$(count r2)
t "delete --dry-run" ws delete --dry-run
echo "$T_OUT" | sed 's/^/# /' | grep -v 'wal/' | head -20
like "$T_OUT" "region r1: would delete backup ${B[0]}" "dry run names r1's oldest backup"
like "$T_OUT" "region r1: would delete backup ${B[1]}" "dry run names r1's second backup"
like "$T_OUT" "region r2: would delete backup ${B[0]}" "dry run names r2's oldest backup"
echo "$T_OUT" | grep -q "would delete backup ${B[1]}.*" && ! echo "$T_OUT" | grep -q "region r2: would delete backup ${B[1]}"
ok $? "dry run keeps r2's second backup"
like "$T_OUT" "region r1: would delete wal/" "dry run lists WAL files"
echo "$T_OUT" | grep -q 29990101T000000Z; [ $? -ne 0 ]; ok $? "the recent incomplete backup is not listed"
is "$(count r1) $(count r2)" "$before1 $before2" "dry run deletes nothing"

t "delete" ws delete
echo "$T_OUT" | sed 's/^/# /'
like "$T_OUT" "region r1: deleted 2 backups" "r1 deleted two backups"
like "$T_OUT" "region r2: deleted 1 backups" "r2 deleted one backup"
is "$(ls "$T/r1/backups" | tr '\n' ' ')" "${B[2]} 29990101T000000Z " "r1 keeps its newest valid backup and the recent incomplete one"
is "$(ls "$T/r2/backups" | tr '\n' ' ')" "${B[1]} ${B[2]} " "r2 keeps its two newest"
lowest() { ls "$T/$1/wal" | grep -E '^[0-9A-F]{24}$' | sort | head -1; }
is "$(lowest r1)" "$S3" "r1's oldest WAL segment is the kept backup's start"
is "$(lowest r2)" "$S2" "r2's oldest WAL segment is its oldest kept backup's start"
ls "$T/r1/wal" | grep -q '\.backup$'; ok $? "the kept backup's .backup file stays"
t "backup-list still works" ws backup-list
t "a second delete is a no-op" ws delete
like "$T_OUT" "region r1: deleted 0 backups and 0 WAL files" "nothing more to delete"

markers() { pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "select string_agg(id::text, ',' order by id) from marker"; }
stop_r() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1; }
on_exit "for d in $T/x*/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }
WANT="1,2,3,11,12,13,99"
d=$(newdir x2)
t "restore from r2's oldest retained backup" ws --region r2 restore --pgdata "$d" --backup "${B[1]}" --target-latest --start --port "$RPORT"
is "$(markers)" "$WANT" "it reaches the latest point"
stop_r "$d"
d=$(newdir x1)
t "restore from r1's only backup" ws --region r1 restore --pgdata "$d" --backup "${B[2]}" --target-latest --start --port "$RPORT"
is "$(markers)" "$WANT" "it reaches the latest point"
stop_r "$d"

conf 0 false
t "delete with garbage_hours = 0" ws delete
is "$(ls "$T/r1/backups" | tr '\n' ' ')" "${B[2]} " "the incomplete backup is removed at any age"

conf 24 true
sleep 1.1
t "backup-push with delete_after_backup" ws backup-push
is "$(ls "$T/r1/backups" | wc -l) $(ls "$T/r2/backups" | wc -l)" "1 2" "retention applied after the backup"
ls "$T/r1/backups" | grep -q "${B[2]}"; [ $? -ne 0 ]; ok $? "r1's previous backup went"

# ---- two timelines: fail over to timeline 2, back up there, apply retention ----
sql "insert into marker values (100)"
switch_and_wait
pg_stop "$T/pg" immediate
mv "$T/pg/data" "$T/pg/data.tl1"
t "fail over: restore to the latest point on a new timeline, archiving on" \
  ws --region r1 restore --pgdata "$T/pg/data" --target-latest --keep-archive --start --port "$PGPORT"
is "$(sql "select timeline_id from pg_control_checkpoint()")" 2 "the new primary runs on timeline 2"
sql "insert into marker values (200)"
switch_and_wait
wait_for 30 bash -c "[ -e $T/r1/wal/00000002.history ]"
ok $? "the timeline 2 history file is archived"
sleep 1.1
t "backup-push on timeline 2 (with retention)" ws backup-push
# Right after the failover, timeline 1 may still be written on (a drill
# or a production that has not archived since; docs/RETENTION.md "Two
# branches"): its newest backup stays, with a warning, until timeline 1
# has been silent RET_BRANCH_QUIET (a day) before the newest kept backup.
like "$T_OUT" "is kept beyond the retention policy: it is the only backup from which timeline 1 can be restored" \
  "right after the failover, timeline 1's backup is kept, with a warning"
is "$(ls "$T/r1/backups" | wc -l)" 2 "r1 keeps it beside the timeline 2 backup"
find "$T/r1/wal" "$T/r2/wal" -name '00000001*' -exec touch -d '2 days ago' {} +
t "delete once timeline 1's segments are two days old" ws delete
mapfile -t B2 < <(ls "$T/r1/backups")
is "${#B2[@]}" 1 "r1 keeps only the timeline 2 backup"
S_TL2=$(start_wal r1 "${B2[0]}")
like "$S_TL2" '^00000002' "that backup starts on timeline 2 ($S_TL2)"
old_tl1=$(ls "$T/r1/wal" | grep -E '^00000001[0-9A-F]{16}$' | awk -v s="${S_TL2:8}" 'substr($0, 9) < s' | wc -l)
is "$old_tl1" 0 "timeline 1 segments before the timeline 2 backup's start are gone"
[ -e "$T/r1/wal/00000002.history" ]; ok $? "the .history file is kept"
pg_stop "$T/pg" fast
d=$(newdir xtl2)
t "restore from r1 after retention across timelines" ws --region r1 restore --pgdata "$d" --target-latest --start --port "$RPORT"
is "$(markers)" "$WANT,100,200" "it has every marker, including the one written on timeline 2"
stop_r "$d"

# ---- clocks (docs/RETENTION.md "Clocks") ----
SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds (tests/lib/clockshift.c)"
ws_at() { local s=$1; shift; pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS="$s" "$WALSHIP" --config "$CONF" "$@"; }
took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }
DAY=86400
conf_days() {   # r1's retain_days, delete_after_backup
  ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "garbage_hours = 24" "delete_after_backup = $2"
  ws_region "$CONF" r1 "file://$T/r1" "mode = sync" "retain_days = $1"
  ws_region "$CONF" r2 "file://$T/r2" "mode = sync" "retain_full = 2"
}
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not restart"; exit 1; }
sql "insert into marker values (300)"
switch_and_wait

# The host's clock two days back: the new backup's name sorts before every
# other; retain_full = 1 (r1) and 2 (r2) would pick it, it is protected.
conf 24 true
t "backup-push with the clock two days back (retention on)" ws_at -$((2 * DAY)) backup-push
Y=$(took)
is "${Y:0:8}" "$(date -u -d '2 days ago' +%Y%m%d)" "its name is two days old ($Y)"
[ -e "$T/r1/backups/$Y/manifest.json" ] && [ -e "$T/r2/backups/$Y/manifest.json" ]
ok $? "the backup just taken is kept in both regions though it sorts oldest"
SY=$(start_wal r1 "$Y")
[ -n "$SY" ] && [ -e "$T/r1/wal/$SY" ] && [ -e "$T/r2/wal/$SY" ]; ok $? "and the WAL from its start ($SY)"
is "$(ls "$T/r1/backups" | wc -l)" 2 "r1 keeps it and its newest by name"
sleep 1.1

# A backup stamped a day ahead (its host's clock ran fast): retain_days
# refuses the region, delete and backup-push say why, status alarms.
conf_days 1 false
t "backup-push with the clock a day ahead" ws_at $DAY backup-push
F=$(took)
before=$(count r1)
t_fail "delete with retain_days refuses the region (exit 3)" 3 ws delete
echo "$T_OUT" | sed 's/^/# /'
like "$T_OUT" "region r1: FAILED: backup $F carries the time [^,]*, 86[34][0-9][0-9] s ahead of this host's clock" \
  "it names the backup and the skew"
is "$(count r1)" "$before" "nothing is deleted in r1"
[ -e "$T/r1/backups/$Y/manifest.json" ]; ok $? "the two-day-old backup is still there"
like "$T_OUT" "region r2: deleted" "r2 (retain_full only) still runs"
t_fail "status --json: the clock alarm (exit 2)" 2 ws --region r1 status --json
is "$(python3 -c 'import json,sys; r=json.loads(sys.stdin.read())["regions"][0]; a=r["backup_ahead_seconds"]; print(r["backup"], r["alarm_clock"], r["alarm"], 86000 < a <= 86400)' <<<"$(sed -n '/^{/,$p' <<<"$T_OUT")")" \
  "$F True True True" "JSON: backup, alarm_clock, alarm, backup_ahead_seconds"
t_fail "status (text)" 2 ws --region r1 status
like "$T_OUT" "region r1: ALARM" "text: the region alarms"
like "$T_OUT" "clock: +backup $F is 86[34][0-9][0-9] s ahead of this host's clock  <- alarm" "text: says why"
t_fail "status --prometheus" 2 ws --region r1 status --prometheus
like "$T_OUT" 'walship_backup_ahead_seconds\{region="r1"\} 86[34][0-9][0-9]' "prometheus: walship_backup_ahead_seconds"
like "$T_OUT" 'walship_alarm\{region="r1"\} 1' "prometheus: walship_alarm is 1"
sleep 1.1
conf_days 1 true
t_fail "backup-push: the backup is taken, its retention refused (exit 3)" 3 ws backup-push
N2=$(took)
like "$T_OUT" "region r1: retention failed \(the backup is valid\): backup $F carries" "backup-push says why"
[ -n "$N2" ] && [ -e "$T/r1/backups/$N2/manifest.json" ]; ok $? "the new backup is there ($N2)"
rm -rf "$T/r1/backups/$F" "$T/r2/backups/$F"
t "status once the backup ahead is gone" ws --region r1 status --json
like "$T_OUT" '"alarm_clock": false' "no clock alarm"

# retain_days = 1 keeps the window's anchor: of P (four days old) and Y
# (two days), Y is the newest full backup that stopped before the window.
conf_days 1 false
t "backup-push with the clock four days back" ws_at -$((4 * DAY)) backup-push
P=$(took)
[ -e "$T/r1/backups/$P/manifest.json" ]; ok $? "a four-day-old backup $P"
t "delete with retain_days = 1" ws delete
echo "$T_OUT" | sed 's/^/# /'
like "$T_OUT" "region r1: deleted 1 backups" "r1 deleted one backup"
[ ! -e "$T/r1/backups/$P" ]; ok $? "the four-day-old backup went"
[ -e "$T/r1/backups/$Y/manifest.json" ]; ok $? "the two-day-old one stays: the window's anchor"
[ -e "$T/r1/wal/$SY" ]; ok $? "with the WAL from its start"
sql "insert into marker values (400)"
switch_and_wait
pg_stop "$T/pg" fast
d=$(newdir xanchor)
t "restore from the anchor" ws --region r1 restore --pgdata "$d" --backup "$Y" --target-latest --start --port "$RPORT"
is "$(markers)" "$WANT,100,200,300,400" "it reaches the latest point"
stop_r "$d"

done_testing
