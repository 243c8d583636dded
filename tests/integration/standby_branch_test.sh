#!/bin/bash
# A warm standby that a drill's timeline took along (adversarial pass L).
#
# A DR standby made by `restore --standby` follows recovery_target_timeline
# 'latest'.  A drill restored to latest with --keep-archive promotes to
# timeline 2 and archives its history file and WAL into the same region.
# A standby waiting for production's next segment then rescans the
# archive, finds 00000002.history forking at (or after) its replay point,
# and switches to the drill's timeline: it replays the drill's rows and
# never reads production's timeline-1 WAL again.  `walship promote
# --region R` used to promote it with exit 0: the DR instance held the
# drill's row and not production's last ones, and `status --standby` said
# OK.  Now status raises an alarm on the standby, promote refuses (exit 3)
# and names both branches; --force promotes anyway and warns.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP SP DP S2P <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 4 | tr '\n' ' ')"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/r1" "$T/sb" "$T/sb2" "$T/drill"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 5" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
rows() { psql_p "$1" "select string_agg(id, '' order by at) from m" 2>/dev/null; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "wal_retrieve_retry_interval = 1s"   # the standby rescans the archive every second
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/sb/data $T/sb2/data $T/drill/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
psql_p "$PP" "create table m(id text, at timestamptz default clock_timestamp())"
psql_p "$PP" "insert into m values ('A')"
t "backup-push" ws backup-push
psql_p "$PP" "insert into m values ('B')"
psql_p "$PP" "select pg_switch_wal()" >/dev/null

t "a warm standby from the region" ws restore --standby --pgdata "$T/sb/data" --start --port "$SP"
psql_p "$PP" "insert into m values ('C')"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $SP -U postgres -d postgres -c \"select string_agg(id, '' order by at) from m\")\" = ABC ]"
ok $? "the standby replays production's rows"

# the drill: to latest, archiving kept on, promoted to timeline 2; it writes
# while production is quiet, and the standby follows it
t "a drill restored to latest with --keep-archive" \
  ws restore --pgdata "$T/drill/data" --target-latest --keep-archive --start --port "$DP"
psql_p "$DP" "insert into m values ('X')"
psql_p "$DP" "select pg_switch_wal()" >/dev/null
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $SP -U postgres -d postgres -c \"select string_agg(id, '' order by at) from m\")\" = ABCX ]"
ok $? "the standby followed the drill's timeline 2 (PostgreSQL's 'latest')"
pg_run "$PG_BIN/pg_ctl" -D "$T/drill/data" -m fast -w stop >/dev/null 2>&1

# production goes on writing on timeline 1, then is lost
psql_p "$PP" "insert into m values ('D')"
psql_p "$PP" "select pg_switch_wal()" >/dev/null
psql_p "$PP" "insert into m values ('E')"
last=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$last"
ok $? "production's timeline-1 WAL is archived ($last)"
# a standby told which branch is production follows it, and promotes
t "a standby made with --target-timeline 1 (production's branch)" \
  ws restore --standby --target-timeline 1 --pgdata "$T/sb2/data" --start --port "$S2P"
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $S2P -U postgres -d postgres -c \"select string_agg(id, '' order by at) from m\")\" = ABCDE ]"
ok $? "... it replays production's rows"
pg_stop "$T/pg" immediate

t_fail "status --standby: an alarm (exit 2)" 2 ws --region r1 status --standby "$T/sb/data"
like "$T_OUT" "standby .*: ALARM" "... on the standby itself, not only on the region"
like "$T_OUT" "branch: +the standby follows timeline 2, .* timeline 1 went on past that point too" \
  "... naming the branch it follows and the one that went on"
ws --region r1 status --standby "$T/sb/data" --json >"$T/st.json" 2>/dev/null
is "$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["standby"]["branch"]; print(b["timeline"], b["went_on"])' "$T/st.json" 2>&1)" \
  "2 1" "... and in JSON (standby.branch)"

t_fail "promote --region refuses a standby on the drill's branch (exit 3)" 3 ws --region r1 promote "$T/sb/data"
like "$T_OUT" "holds two branches: the standby follows timeline 2" "... naming the branch the standby follows"
like "$T_OUT" "timeline 1 went on past that point too \\(up to $last\\)" "... and production's WAL it would leave behind"
is "$(psql_p "$SP" "select pg_is_in_recovery()")" t "the standby is still in recovery"

t "promote --force promotes anyway" ws --region r1 promote --force "$T/sb/data"
like "$T_OUT" "promoting although timeline 1 went on" "... and warns what it leaves behind"
is "$(rows "$SP")" ABCX "(the forced promotion holds the drill's row, not production's D and E)"

ws --region r1 status --standby "$T/sb2/data" >"$T/st2.out" 2>&1
unlike "$(grep -A12 '^standby' "$T/st2.out")" "branch:" "status --standby: no branch line for the standby told its timeline"
t "promote --region promotes the standby told its timeline" ws --region r1 promote "$T/sb2/data"
is "$(rows "$S2P")" ABCDE "... with every production row and not the drill's"

done_testing
