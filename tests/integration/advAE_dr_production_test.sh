#!/bin/bash
# A DR restore made production (adversarial pass AE).  walship restore
# promotes with archive_mode off unless --keep-archive, so PostgreSQL never
# marks the new timeline's history file for archiving; the operator turns
# archiving on, as the restore's own comment says, and takes backups on
# timeline 2.  status then raised the branch alarm "the way to the latest
# timeline (2) cannot be read ... restore to latest fails" (exit 2) for
# ever, while restore to latest from that backup works (it reads the
# backup's own timeline alone, as 'current').  Now status raises no alarm
# there; verify still reports the missing history file (a restore from
# an older backup cannot follow into timeline 2) and says how to archive
# it from the data directory.
#
# PostgreSQL 15, file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP RP R2P <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 3 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/rs" "$T/rs2"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/p.conf" "retry_deadline = 3" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
# the configuration of the new production (the restored instance)
ws_conf "$T/n.conf" "retry_deadline = 3" "pg_conninfo = host=127.0.0.1 port=$RP user=postgres dbname=postgres"
ws_region "$T/n.conf" r1 "file://$T/r1" "mode = sync"
wp() { pg_run "$WALSHIP" --config "$T/p.conf" "$@"; }
wn() { pg_run "$WALSHIP" --config "$T/n.conf" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/rs immediate; pg_stop $T/rs2 immediate"
psql_p "$PP" "create table t(i int); insert into t values (1)" >/dev/null
t "a backup of the old primary" wp backup-push
psql_p "$PP" "insert into t values (2)" >/dev/null
seg=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$seg"
ok $? "archived through $seg"
pg_stop "$T/pg" immediate

t "the DR restore (archiving off at its promotion)" wp restore --pgdata "$T/rs/data" --start --port "$RP"
psql_p "$RP" "alter system set archive_mode = on" >/dev/null
psql_p "$RP" "alter system set archive_command = '$WALSHIP --config $T/n.conf wal-push %p'" >/dev/null
pg_run "$PG_BIN/pg_ctl" -D "$T/rs/data" -m fast -w -t 60 restart -l "$T/rs/server.log" >/dev/null
is "$(psql_p "$RP" 'show archive_mode')" on "... made production: archiving on"
psql_p "$RP" "insert into t values (3)" >/dev/null
t "a backup of the new production on timeline 2" wn backup-push
psql_p "$RP" "insert into t values (4)" >/dev/null
seg=$(psql_p "$RP" "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$seg"
ok $? "archived through $seg"
[ ! -e "$T/r1/wal/00000002.history" ]; ok $? "00000002.history is not in the region (PostgreSQL never marked it)"

t "status: no alarm (restore to latest works from the backup on timeline 2)" wn status
t "restore to latest" wn restore --pgdata "$T/rs2/data" --start --port "$R2P"
is "$(psql_p "$R2P" "select string_agg(i::text, ' ' order by i) from t")" "1 2 3 4" "... has every row"

t_fail "verify: the missing history file is a problem (exit 3)" 3 wn verify
like "$T_OUT" "00000002.history is not archived" "... naming it"
like "$T_OUT" "wal-push pg_wal/00000002.history" "... and how to archive it"
(cd "$T/rs/data" && wn wal-push pg_wal/00000002.history >/dev/null 2>&1)
ok $? "wal-push pg_wal/00000002.history in the data directory"
t "verify afterwards" wn verify

done_testing
