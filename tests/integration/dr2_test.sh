#!/bin/bash
# Second- and third-generation DR (issue 17), and restore_command for any
# path (issue 11, item 2).
#
# A primary made by a point-in-time restore is backed up, written to and
# lost; the next restore must not stop at the first restore's target.  Three
# generations, each restore compared exactly with a client-side ledger of
# committed ids; every recovery setting planted in a backup's configuration
# is commented out and named by restore; after --start, postgresql.auto.conf
# holds no recovery_target line; backup-push warns and verify reports a
# backup that carries recovery settings; a standby made from restore's output
# and promoted by hand gives the same result.  (walship has no
# `restore --standby`: the standby is made by replacing recovery.signal with
# standby.signal, as docs/RESTORE.md describes.)  One file:// region: the
# storage is not what is under test here.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
RPORT=$(pg_free_port)
[ "$PGPORT" != "$RPORT" ] || RPORT=$((PGPORT + 1))
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" local "file://$T/repo" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
on_exit "ws_stop_daemons '$T'"

# ---- helpers ----
LEDGER=$T/ledger          # ids whose INSERT was acknowledged, one per line, in commit order
: >"$LEDGER"
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$T/pg/sock" -p "$1" -U postgres -d postgres -c "$2"; }
sql() { psql_p "$PGPORT" "$1"; }
write_ids() {   # FROM TO: one transaction per id, ledgered when acknowledged
  local i
  for ((i = $1; i <= $2; i++)); do
    sql "insert into ledger(id) values ($i)" >/dev/null && echo "$i" >>"$LEDGER"
  done
}
now_utc() { sql "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"; }
mark() {        # NAME: remember the ledger length at this moment
  wc -l <"$LEDGER" >"$T/mark.$1"
}
want_upto() {   # NAME: the ids acknowledged before the mark, sorted, on one line
  head -n "$(cat "$T/mark.$1")" "$LEDGER" | sort -n | tr '\n' ' ' | sed 's/ $//'
}
got_ids() {     # PORT
  psql_p "$1" "select string_agg(id::text, ' ' order by id) from ledger"
}
archive_all() { # switch WAL and wait until the finished segment is in the region
  local sw
  sw=$(sql "select pg_walfile_name(pg_switch_wal())")
  wait_for 120 bash -c "runuser -u postgres -- '$WALSHIP' --config '$CONF' st ls 'wal/$sw' 2>/dev/null | grep -q '$sw'"
}
lose_primary() {
  pg_stop "$T/pg" immediate
  rm -rf "$T/pg/data"
}
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1/data"; }
stop_d() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 120 stop >/dev/null 2>&1; }
become_primary() { stop_d "$1"; rm -rf "$T/pg/data"; mv "$1" "$T/pg/data"; }
active_targets() { grep -cE '^[[:space:]]*recovery_target' "$1/postgresql.auto.conf"; }
on_exit "for d in $T/pg/data $T/r*/data; do [ -f \$d/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

# ---- generation 1 ----
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
sql "create table ledger (id int primary key, at timestamptz default clock_timestamp())"
t "generation 1: backup-push" ws backup-push
write_ids 1 10
mark T1
sleep 1.2
T1=$(now_utc)
sleep 1.2
write_ids 11 20
archive_all; ok $? "generation 1: WAL archived"
lose_primary

# ---- restore 1: PITR to T1, promoted, archiving on: generation 2 ----
d=$(newdir r1)
t "restore 1: to a time, --start --keep-archive" ws restore --pgdata "$d" --target-time "$T1" --start --keep-archive \
  --port "$PGPORT"
like "$T_OUT" "no recovery settings found" "restore 1: a clean backup has nothing to neutralise"
like "$T_OUT" "promoted: recovery settings removed" "restore 1: says it removed its settings after promotion"
is "$(got_ids "$PGPORT")" "$(want_upto T1)" "restore 1: exactly the ids acknowledged before T1 (ledger)"
is "$(active_targets "$d")" 0 "restore 1: after --start, postgresql.auto.conf sets no recovery_target*"
is "$(grep -c recovery_target "$d/postgresql.auto.conf")" 0 "restore 1: no line of postgresql.auto.conf names recovery_target"
grep -qE '^[[:space:]]*restore_command' "$d/postgresql.auto.conf"; [ $? -ne 0 ]; ok $? "restore 1: restore_command removed too"
grep -q 'promoted: recovery settings removed' "$d/walship-restore.log"; ok $? "restore 1: the restore log says the same"
# the ledger is what generation 2 holds: 11..20 were lost by choice (PITR)
head -n "$(cat "$T/mark.T1")" "$LEDGER" >"$T/l2" && mv "$T/l2" "$LEDGER"
become_primary "$d"   # generation 2 lives where the primary lived
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! generation 2 did not restart"; exit 1; }

# ---- generation 2 ----
t "generation 2: backup-push of the promoted instance" ws backup-push
echo "$T_OUT" | grep -q "carries recovery settings"; [ $? -ne 0 ]; ok $? "generation 2: backup-push sees no recovery settings"
write_ids 21 30
mark T2
sleep 1.2
T2=$(now_utc)
sleep 1.2
write_ids 31 40
mark END2
archive_all; ok $? "generation 2: WAL archived"
lose_primary

# ---- restore 2: latest, the issue's failure: generation 3 ----
d=$(newdir r2)
t "restore 2: latest from generation 2's backup, --start --keep-archive" ws restore --pgdata "$d" --target-latest \
  --start --keep-archive --port "$PGPORT"
is "$(got_ids "$PGPORT")" "$(want_upto END2)" "restore 2: every acknowledged id, none after the old target lost"
is "$(psql_p "$PGPORT" "select timeline_id from pg_control_checkpoint()")" 3 "restore 2: timeline 3"
is "$(active_targets "$d")" 0 "restore 2: after --start, postgresql.auto.conf sets no recovery_target*"
become_primary "$d"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! generation 3 did not restart"; exit 1; }

# ---- generation 3, with every recovery setting planted in its configuration ----
D=$T/pg/data
mkdir -p "$D/conf.d"
cat >>"$D/postgresql.conf" <<EOF
Recovery_Target_Time = '2001-01-01 00:00:00+00'   # left by an operator
include_dir 'conf.d'
include_if_exists 'extra.conf'
EOF
cat >"$D/conf.d/recovery.conf" <<'EOF'
recovery_target_xid = '3'
recovery_target_name 'nowhere'
recovery_end_command = 'false'
archive_cleanup_command = 'false'
EOF
cat >"$D/extra.conf" <<'EOF'
primary_conninfo = 'host=192.0.2.1 password=secret'
primary_slot_name = 'gone'
recovery_target = 'immediate'
EOF
cat >>"$D/postgresql.auto.conf" <<'EOF'
recovery_target_lsn = '0/3000000'
recovery_target_action = 'shutdown'
recovery_target_inclusive = off
recovery_target_timeline = '1'
restore_command = 'false'
EOF
: >"$D/standby.signal"; : >"$D/recovery.signal"
chown -R "$(pg_user)" "$D"
t "generation 3: backup-push" ws backup-push
like "$T_OUT" "carries recovery settings: .*recovery_target_time \\(postgresql.conf:[0-9]+\\)" \
  "generation 3: backup-push warns, naming the setting and its line"
like "$T_OUT" "recovery_target_lsn \\(postgresql.auto.conf:[0-9]+\\)" "generation 3: ... and those of the auto file"
rm -f "$D/standby.signal" "$D/recovery.signal"   # the running primary must be able to restart
write_ids 41 50
mark T3
sleep 1.2
T3=$(now_utc)
sleep 1.2
write_ids 51 60
mark END3
archive_all; ok $? "generation 3: WAL archived"

ws verify >"$T/verify.out" 2>&1
ok $? "verify: the region verifies (recovery settings are a note, not damage)"
like "$(cat "$T/verify.out")" "NOTE backups/[^:]+/manifest.json: backup .* carries recovery settings in its configuration: .*recovery_target_lsn" \
  "verify reports the backup that carries recovery settings"
is "$(grep -c 'carries recovery settings' "$T/verify.out")" 1 "verify: only generation 3's backup carries any"
ws verify --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; sys.exit(0 if len(r["notes"])==1 and not r["problems"] else 1)'
ok $? "verify --json: one note, no problem"
lose_primary

# ---- restore 3: latest, with everything planted ----
d=$(newdir r3)
t "restore 3: latest from a backup that carries every recovery setting" ws restore --pgdata "$d" --target-latest \
  --start --port "$RPORT"
out3=$T_OUT
for s in "postgresql.conf:[0-9]+: commented out recovery_target_time = '2001-01-01 00:00:00\\+00'" \
         "conf.d/recovery.conf:1: commented out recovery_target_xid = '3'" \
         "conf.d/recovery.conf:2: commented out recovery_target_name = 'nowhere'" \
         "conf.d/recovery.conf:3: commented out recovery_end_command" \
         "conf.d/recovery.conf:4: commented out archive_cleanup_command" \
         "extra.conf:1: commented out primary_conninfo \\(value not shown\\)" \
         "extra.conf:2: commented out primary_slot_name" \
         "extra.conf:3: commented out recovery_target = 'immediate'" \
         "postgresql.auto.conf:[0-9]+: commented out recovery_target_lsn = '0/3000000'" \
         "postgresql.auto.conf:[0-9]+: commented out recovery_target_action = 'shutdown'" \
         "postgresql.auto.conf:[0-9]+: commented out recovery_target_inclusive = 'off'" \
         "postgresql.auto.conf:[0-9]+: commented out recovery_target_timeline = '1'" \
         "postgresql.auto.conf:[0-9]+: commented out restore_command" \
         "standby.signal: removed" "recovery.signal: removed"; do
  like "$out3" "$s" "restore 3 names: ${s%%:*} ${s##*out }"
done
echo "$out3" | grep -q "secret"; [ $? -ne 0 ]; ok $? "restore 3: a password in primary_conninfo is not printed"
grep -q "commented out recovery_target_lsn" "$d/walship-restore.log"; ok $? "restore 3: the restore log lists the changes"
is "$(got_ids "$RPORT")" "$(want_upto END3)" "restore 3: every acknowledged id (the operator's old target ignored)"
is "$(active_targets "$d")" 0 "restore 3: after --start, postgresql.auto.conf sets no recovery_target*"
grep -qE "^# walship restore: Recovery_Target_Time = '2001" "$d/postgresql.conf"; ok $? "restore 3: postgresql.conf keeps the old line, commented out"
[ ! -e "$d/standby.signal" ]; ok $? "restore 3: no standby.signal"
stop_d "$d"

d=$(newdir r3t)
t "restore 3t: to a time in generation 3, --keep-restore-command" ws restore --pgdata "$d" --target-time "$T3" \
  --start --port "$RPORT" --keep-restore-command
is "$(got_ids "$RPORT")" "$(want_upto T3)" "restore 3t: exactly the ids acknowledged before T3"
is "$(grep -c recovery_target "$d/postgresql.auto.conf")" 0 "restore 3t: the targets are removed after promotion"
is "$(grep -cE '^restore_command = ' "$d/postgresql.auto.conf")" 1 "restore 3t: --keep-restore-command keeps one restore_command"
stop_d "$d"

d=$(newdir r3s)
t "restore 3s: to a time, --target-action shutdown" ws restore --pgdata "$d" --target-time "$T3" --target-action shutdown \
  --start --port "$RPORT"
grep -q "^recovery_target_time = '$T3'" "$d/postgresql.auto.conf"
ok $? "restore 3s: not promoted, so the target stays for the operator's next start"
[ ! -f "$d/postmaster.pid" ]; ok $? "restore 3s: the instance is shut down at the target"
# the summary's recovery point came from the last poll, before the stop
like "$T_OUT" "PostgreSQL: recovery stopping before commit of transaction [0-9]+, time " \
  "restore 3s: the summary quotes where PostgreSQL stopped"

d=$(newdir r2t)
t "restore 2t: to a time after generation 2's backup" ws restore --pgdata "$d" --target-time "$T2" --start --port "$RPORT"
like "$T_OUT" "no recovery settings found" "restore 2t: generation 2's backup was clean"
is "$(got_ids "$RPORT")" "$(want_upto T2)" "restore 2t: exactly the ids acknowledged before T2"
stop_d "$d"

# ---- a standby made from restore's output, promoted by hand ----
d=$(newdir rsb)
t "standby: restore latest without --start, archiving kept" ws restore --pgdata "$d" --target-latest --keep-archive \
  --port "$PGPORT"
mv "$d/recovery.signal" "$d/standby.signal"
# a standby follows the archive for as long as it runs: the end-of-archive
# target restore wrote for a one-off recovery goes (docs/RESTORE.md)
sed -i -E 's/^(recovery_target_(lsn|inclusive|action) = )/# walship standby: \1/' "$d/postgresql.auto.conf"
# and it follows a new timeline: restore wrote the one it judged, as a number
echo "recovery_target_timeline = 'latest'" >>"$d/postgresql.auto.conf"
pg_run "$PG_BIN/pg_ctl" -D "$d" -l "$T/rsb/log" -o "-p $PGPORT" -w -t 120 start >/dev/null 2>&1
ok $? "standby: started"
want=$(want_upto END3)
wait_for 180 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c \"select string_agg(id::text, ' ' order by id) from ledger\")\" = '$want' ]"
ok $? "standby: replayed every acknowledged id from the archive"
pg_run "$PG_BIN/pg_ctl" -D "$d" -w -t 120 promote >/dev/null 2>&1
ok $? "standby: promoted by hand"
become_primary "$d"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! the promoted standby did not restart"; exit 1; }
t "standby generation: backup-push" ws backup-push
like "$T_OUT" "carries recovery settings: .*restore_command" "standby generation: backup-push warns about the settings a hand promotion leaves"
write_ids 61 70
mark END4
archive_all; ok $? "standby generation: WAL archived"
lose_primary
d=$(newdir r4)
t "restore 4: latest from the promoted standby's backup" ws restore --pgdata "$d" --target-latest --start --port "$RPORT"
like "$T_OUT" "commented out restore_command" "restore 4: the hand-promoted standby's restore_command is neutralised"
is "$(got_ids "$RPORT")" "$(want_upto END4)" "restore 4: every acknowledged id"
is "$(active_targets "$d")" 0 "restore 4: after --start, postgresql.auto.conf sets no recovery_target*"
stop_d "$d"

# ---- issue 11.2: restore_command for paths with ' \ spaces, UTF-8 and % ----
W="$T/it's a \\ dir é€ 100%f"
mkdir -p "$W"
cp "$CONF" "$W/walship.conf"
cp "$T/key" "$W/key file"
chown -R "$(pg_user)" "$W"
SEG=$(ws st ls wal/ 2>/dev/null | grep -oE '[0-9A-F]{24}' | head -1)
# PostgreSQL's own substitution (%f, %p, %%; any other % stays), then sh -c
run_restore_command() {   # PGDATA COMMAND
  local cmd
  cmd=$(python3 -c 'import re,sys; print(re.sub(r"%([fp%])", lambda m: {"f": sys.argv[2], "p": "pg_wal/RESTORED", "%": "%"}[m.group(1)], sys.argv[1]), end="")' "$2" "$SEG")
  (cd "$1" && pg_run sh -c "$cmd")
}
d=$(newdir rq)
pg_run "$WALSHIP" --config "$W/walship.conf" restore --pgdata "$d" --target-latest >"$T/rq.out" 2>&1
ok $? "restore with --config in a directory named $W"
rc=$(pg_run "$PG_BIN/postgres" -D "$d" -C restore_command 2>"$T/rq.err")
ok $? "postgres -C restore_command reads the configuration ($(head -c 200 "$T/rq.err"))"
like "$rc" "walship.conf" "restore_command names the configuration file"
run_restore_command "$d" "$rc" >"$T/rq.run" 2>&1
ok $? "the command PostgreSQL would run fetches $SEG ($(tail -c 300 "$T/rq.run"))"
is "$(stat -c %s "$d/pg_wal/RESTORED" 2>/dev/null)" 16777216 "the fetched segment is whole"
rm -f "$d/pg_wal/RESTORED"

d="$W/pgdata"
on_exit '[ -f "$W/pgdata/postmaster.pid" ] && pg_run "$PG_BIN/pg_ctl" -D "$W/pgdata" -m immediate stop'
pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo" --region local --key-file "$W/key file" \
  restore --pgdata "$d" --target-latest >"$T/rq2.out" 2>&1
ok $? "bare-host restore into that directory, --key-file there too ($(tail -c 200 "$T/rq2.out"))"
rc=$(pg_run "$PG_BIN/postgres" -D "$d" -C restore_command 2>"$T/rq2.err")
ok $? "postgres -C restore_command reads it"
like "$rc" "key file" "restore_command names the key file"
run_restore_command "$d" "$rc" >"$T/rq2.run" 2>&1
ok $? "and the command fetches $SEG ($(tail -c 300 "$T/rq2.run"))"
is "$(stat -c %s "$d/pg_wal/RESTORED" 2>/dev/null)" 16777216 "the fetched segment is whole"
rm -f "$d/pg_wal/RESTORED"
start_line=$(grep -A1 'start it with:' "$T/rq2.out" | tail -1)
(cd / && pg_run sh -c "$start_line -l '$T/rq/server.log' -o '-p $RPORT' -w -t 120") >/dev/null 2>&1
ok $? "the start command restore prints works as printed: $start_line"
wait_for 120 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $RPORT -U postgres -d postgres -c 'select not pg_is_in_recovery()')\" = t ]"
ok $? "PostgreSQL recovers through that restore_command and promotes"
is "$(got_ids "$RPORT")" "$(want_upto END4)" "every acknowledged id, fetched through the quoted paths"
stop_d "$d"

done_testing
