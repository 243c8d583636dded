#!/bin/bash
# A segment of a parent timeline under a child timeline's name (adversarial
# pass AE).  wal-push let a segment's first page be of an older timeline
# than its name's for any segment, because the first segment of a new
# timeline is a copy of the parent's up to the switch point; so a segment
# of timeline 1 renamed to timeline 2's name was archived, and would be
# served, as timeline 2's.  Now an older first page is accepted only where
# the timeline's history file (beside the segment, in pg_wal) puts a
# switch inside the segment.
#
# PostgreSQL 15: primary P archiving to file:// r1, streaming standby S
# archiving there too, P stopped in the middle of a segment, S promoted:
# S archives the history file, the .partial and its first segment (which
# starts with timeline 1's page) with no failure.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP SP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/spool2" "$T/r1" "$T/sb" "$T/x/pg_wal"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/p.conf" "retry_deadline = 3"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
WS_SPOOL=$T/spool2 ws_conf "$T/s.conf" "retry_deadline = 3"
ws_region "$T/s.conf" r1 "file://$T/r1" "mode = sync"
wss() { (cd "$T/sb/data" && pg_run "$WALSHIP" --config "$T/s.conf" "$@"); }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/sb immediate"
psql_p "$PP" "create table t(i int); insert into t select generate_series(1, 1000)" >/dev/null
pg_run "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PP" -U postgres -D "$T/sb/data" -R -X stream ||
  { echo "Bail out! pg_basebackup"; exit 1; }
mkdir -p "$T/sb/sock"; ws_own "$T/sb"
sed -i "s#unix_socket_directories.*#unix_socket_directories = '$T/sb/sock'#; s#--config $T/p.conf#--config $T/s.conf#g" \
  "$T/sb/data/postgresql.conf"
pg_start "$T/sb" "$SP" || { echo "Bail out! standby did not start"; exit 1; }

for i in 1 2; do
  psql_p "$PP" "insert into t select generate_series(1, 20000)" >/dev/null
  prev=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
done
psql_p "$PP" "insert into t values (-5)" >/dev/null   # into the middle of the next segment
lsn=$(psql_p "$PP" "select pg_current_wal_lsn()")
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $SP -U postgres -d postgres -c \"select pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
ok $? "S replayed P's writes"
wait_for 60 test -e "$T/r1/wal/$prev"
ok $? "P archived $prev"
pg_stop "$T/pg" immediate
psql_p "$SP" "select pg_promote()" >/dev/null
psql_p "$SP" "insert into t values (-1)" >/dev/null
first=$(psql_p "$SP" "select pg_walfile_name(pg_switch_wal())")
case $first in 00000002*) ;; *) first=$(psql_p "$SP" "select pg_walfile_name(pg_switch_wal())") ;; esac
wait_for 60 test -e "$T/r1/wal/$first"
ok $? "S archived its first segment of timeline 2, $first (its first page is timeline 1's)"
[ -e "$T/r1/wal/00000002.history" ] && ls "$T/r1/wal" | grep -q '^00000001.*\.partial$'
ok $? "... and 00000002.history and timeline 1's .partial"
is "$(psql_p "$SP" 'select failed_count from pg_stat_archiver')" 0 "no archive_command failure on S"

# timeline 1's $prev (complete, before the fork) under timeline 2's name,
# beside timeline 2's history file, as in a pg_wal
R=00000002${prev:8}
wss wal-fetch "$prev" "$T/x/pg_wal/$R" --no-prefetch >/dev/null 2>&1
cp "$T/sb/data/pg_wal/00000002.history" "$T/x/pg_wal/"
ws_own "$T/x"
t_fail "wal-push: timeline 1's $prev renamed $R is refused (exit 3)" 3 wss wal-push "$T/x/pg_wal/$R"
like "$T_OUT" "puts no switch from timeline 1 inside it" "... saying why"
[ ! -e "$T/r1/wal/$R" ]; ok $? "... nothing archived under $R"
# the real first segment of timeline 2, pushed again: the same bytes, 0
cp "$T/sb/data/pg_wal/$first" "$T/x/pg_wal/$first" 2>/dev/null || wss wal-fetch "$first" "$T/x/pg_wal/$first" --no-prefetch >/dev/null 2>&1
ws_own "$T/x"
t "wal-push of the real $first again (beside the history file): exit 0" wss wal-push "$T/x/pg_wal/$first"

done_testing
