#!/bin/bash
# status and PostgreSQL's own archiver (pg_stat_archiver).  status used to
# judge archiving by the regions' lag alone: with archive_command failing
# (every wal-push refused: a read-only spool, a wrong key, a region down)
# it said OK until the lag passed rpo_seconds, and on an idle primary, with
# no segment completed, it never did.  The same for a primary that
# archives nothing at all: archive_command empty, archive_mode off.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
# a day's rpo_seconds: the lag alone raises no alarm within this test
ws_conf "$T/c.conf" "rpo_seconds = 1d" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }
failed() { sql "select failed_count from pg_stat_archiver"; }
has_failed() { [ "$(failed)" -gt 0 ]; }
archived_since() { [ "$(sql "select last_archived_time > last_failed_time from pg_stat_archiver")" = t ]; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"

t "backup-push" w backup-push
seg=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$seg"
ok $? "a segment is archived ($seg)"
t "status: archiving works (exit 0)" w status
like "$T_OUT" "archiver: last archived [0-9A-F]{24}.* at .*archived, 0 failed" "it shows the last archived file"
out=$(w status --json 2>/dev/null)
is "$(json '(d["archiver"]["failing"], d["archiver"]["alarm"], d["archiver"]["not_archiving"], d["archiver"]["last_archived_wal"] is not None)' <<<"$out")" \
  "(False, False, None, True)" "JSON: archiver not failing"

# archive_command fails (as every wal-push would with a read-only spool)
sql "alter system set archive_command = 'false'" && sql "select pg_reload_conf()" >/dev/null
sleep 1
sql "create table t as select 1" >/dev/null
sql "select pg_switch_wal()" >/dev/null
wait_for 60 has_failed
ok $? "PostgreSQL counts failed attempts ($(failed))"
t_fail "status: archive_command failing is an alarm (exit 2), the lag within rpo_seconds" 2 w status
like "$T_OUT" "archiver: FAILING: the last attempt failed, on [0-9A-F]{24} .*<- alarm" "it says archiving fails, naming the file"
out=$(w status --json 2>/dev/null)
is "$(json '(d["archiver"]["failing"], d["archiver"]["alarm"], d["archiver"]["failed_count"] > 0)' <<<"$out")" \
  "(True, True, True)" "JSON: archiver.failing"
t_fail "status --prometheus (exit 2)" 2 w status --prometheus
like "$T_OUT" "walship_archiver_failing 1" "prometheus: walship_archiver_failing 1"
like "$T_OUT" "walship_archiver_failed_count [1-9]" "prometheus: walship_archiver_failed_count"

# archiving works again: the alarm ends with the next success
sql "alter system reset archive_command" && sql "select pg_reload_conf()" >/dev/null
wait_for 90 archived_since
ok $? "PostgreSQL archives again"
t "status: OK again once an attempt succeeded" w status
out=$(w status --prometheus 2>/dev/null)
like "$out" "walship_archiver_failing 0" "prometheus: walship_archiver_failing 0"

# archive_mode on, archive_command empty: PostgreSQL keeps every WAL file
sql "alter system set archive_command = ''" && sql "select pg_reload_conf()" >/dev/null
sleep 1
t_fail "status: an empty archive_command is an alarm (exit 2)" 2 w status
like "$T_OUT" "archiver: archive_command is empty .*<- alarm: PostgreSQL archives nothing" "... saying so"

# archive_mode off
sql "alter system reset archive_command" && sql "alter system set archive_mode = off" >/dev/null
pg_stop "$T/pg" fast && pg_start "$T/pg" "$PGPORT"
ok $? "the primary restarted with archive_mode = off"
t_fail "status: archive_mode off is an alarm (exit 2)" 2 w status
like "$T_OUT" "archiver: archive_mode is off" "... saying so"
out=$(w status --json 2>/dev/null)
like "$(json 'd["archiver"]["not_archiving"]' <<<"$out")" "archive_mode is off" "JSON: archiver.not_archiving"

grep -Eq "^ *expr: *walship_archiver_failing *== *1 *$" "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml"
ok $? "the shipped alert rules fire on walship_archiver_failing == 1"

done_testing
