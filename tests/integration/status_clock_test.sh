#!/bin/bash
# status and WAL stamped ahead of this host's clock.  The lag's seconds are
# now − the time of the newest archived segment (and the spool's oldest
# file), and read 0 when that time is ahead: after the clock stepped back,
# or with a file server whose clock runs fast, status said OK (exit 0) of
# a region whose archiving had stopped with segments missing, however
# long past rpo_seconds (found by an adversarial pass).  Now WAL stamped
# more than RET_CLOCK_SKEW_MAX (300 s) ahead is the clock alarm; so are a
# warm standby's waiting segments (status --standby).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
SPORT=$(pg_free_port)
[ "$PGPORT" != "$SPORT" ] || SPORT=$((PGPORT + 1))
on_exit "ws_stop_daemons '$T'"
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_conf "$T/c.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "rpo_seconds = 60" "backup_max_age = 1d"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }
SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds (tests/lib/clockshift.c)"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

# the backup two hours ago, so that a clock an hour back does not see it ahead
t "a backup taken two hours ago (the clock shim)" \
  pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=-7200 "$WALSHIP" --config "$T/c.conf" backup-push
sql "create table t(a int); insert into t values (1)"
seg=$(sql "select pg_walfile_name(pg_current_wal_lsn())")
sql "select pg_switch_wal()" >/dev/null
wait_for 60 test -f "$T/r1/wal/$seg"; ok $? "$seg is archived"
t "status: caught up" w status

# a warm standby that waits (recovery_min_apply_delay): the segments it has
# not replayed, stored an hour ahead of a clock that stepped back
mkdir -p "$T/sb/sock"; ws_own "$T/sb"
t "restore --standby --start" w restore --standby --pgdata "$T/sb/data" --port "$SPORT" --start
on_exit "pg_stop $T/sb immediate"
echo "recovery_min_apply_delay = '1h'" >>"$T/sb/data/postgresql.auto.conf"
pg_run "$PG_BIN/pg_ctl" -D "$T/sb/data" reload >/dev/null
sleep 0.5
for i in 10 11; do sql "insert into t values ($i); select pg_switch_wal()" >/dev/null; done
last=$(sql "select pg_walfile_name(pg_current_wal_lsn() - 1)")
wait_for 60 test -f "$T/r1/wal/$last"
t "status --standby: it waits less than rpo_seconds" w status --standby "$T/sb/data"
like "$T_OUT" "behind region r1: [1-9][0-9]* segments" "the standby lags by segments"
t_fail "status --standby, this host's clock stepped back an hour: alarm (exit 2)" 2 \
  pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=-3600 "$WALSHIP" --config "$T/c.conf" status --standby "$T/sb/data"
like "$T_OUT" "standby $T/sb/data: ALARM" "the standby's line says ALARM"
like "$T_OUT" "clock: +the oldest segment waiting is stamped [0-9]+ s ahead .*<- alarm" "and why"
pg_stop "$T/sb" immediate
seg=$(sql "select pg_walfile_name(pg_current_wal_lsn() - 1)")

# archiving stops; two more segments complete (a command that archives
# nothing and exits 0: PostgreSQL's archiver sees no failure, so the
# region's lag and the clock are status's only signals; with a failing
# command the archiver alarm would fire too, status_archiver_test.sh)
sql "alter system set archive_command = '/bin/true'"
sql "select pg_reload_conf()" >/dev/null
for i in 2 3; do sql "insert into t values ($i); select pg_switch_wal()" >/dev/null; done
ahead() { pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=-3600 "$WALSHIP" --config "$T/c.conf" "$@"; }

t_fail "this host's clock stepped back an hour: status alarms (exit 2)" 2 ahead status
like "$T_OUT" "lag: +[1-9][0-9]* segments" "the region lags by segments"
like "$T_OUT" "clock: +WAL is stamped [0-9]+ s ahead of this host's clock  <- alarm" "the clock alarm names the WAL"
out=$(ahead status --json 2>/dev/null)
is "$(json '(d["regions"][0]["alarm"], d["regions"][0]["alarm_clock"], d["regions"][0]["wal_ahead_seconds"] > 300)' \
  <<<"$out")" "(True, True, True)" "JSON: alarm, alarm_clock, wal_ahead_seconds"
t_fail "status --prometheus (exit 2)" 2 ahead status --prometheus
like "$T_OUT" 'walship_alarm\{region="r1"\} 1' "prometheus: walship_alarm is 1"

# a file server whose clock runs an hour fast stamped the newest segment
touch -d '+1 hour' "$T/r1/wal/$seg"
t_fail "the newest segment stamped an hour ahead: status alarms (exit 2)" 2 w status
like "$T_OUT" "clock: +WAL is stamped [0-9]+ s ahead .*<- alarm" "the clock alarm names the WAL"
touch -d '-10 seconds' "$T/r1/wal/$seg"
t "stamped within the skew allowed: no alarm yet (rpo_seconds = 60)" w status
unlike "$T_OUT" "clock:" "no clock line"

done_testing
