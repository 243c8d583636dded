#!/bin/bash
# status right after a promotion (adversarial pass AE).  status took the
# primary's timeline from pg_control_checkpoint(), which PostgreSQL 15
# updates only when the first checkpoint after the promotion completes: a
# spread checkpoint, minutes on a server with many dirty buffers.  Until
# then status judged the lag on the old timeline's path:
#   - split brain (the old primary still archiving timeline 1 past the fork,
#     the new primary's segments not archived): "lag: 0 segments", OK,
#     while none of the new primary's WAL was in the region (the case a
#     pass before had fixed for a promoted primary whose checkpoint was done);
#   - an ordinary failover: the new timeline's archived segments did not
#     count, and the lag grew.
# The timeline is now the one PostgreSQL inserts WAL on.
#
# PostgreSQL 15: primary P archiving to file:// r1, streaming standby S with
# checkpoint_timeout = 1h (its post-promotion checkpoint is spread over
# minutes), S promoted while P goes on.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP SP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/spool2" "$T/r1" "$T/sb"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/p.conf" "retry_deadline = 3" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
# the configuration that watches the new primary S
WS_SPOOL=$T/spool2 ws_conf "$T/s.conf" "retry_deadline = 3" "rpo_seconds = 3600" "$(ws_pg_conninfo "$T/sb" "$SP")"
ws_region "$T/s.conf" r1 "file://$T/r1" "mode = sync"
wsp() { pg_run "$WALSHIP" --config "$T/s.conf" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/sb immediate"
psql_p "$PP" "create table t(i int, pad text)" >/dev/null
t "a backup of the primary" pg_run "$WALSHIP" --config "$T/p.conf" backup-push

pg_run "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PP" -U postgres -D "$T/sb/data" -R -X stream ||
  { echo "Bail out! pg_basebackup"; exit 1; }
mkdir -p "$T/sb/sock"; ws_own "$T/sb"
{
  echo "unix_socket_directories = '$T/sb/sock'"
  echo "checkpoint_timeout = '1h'"
  echo "max_wal_size = '4GB'"
  # the new primary's segments are not archived (a failing archive_command);
  # its history file is, so the way to its timeline can be read
  echo "archive_command = 'case %f in *.history) $WALSHIP --config $T/p.conf wal-push %p;; *) exit 1;; esac'"
} >>"$T/sb/data/postgresql.conf"
pg_start "$T/sb" "$SP" || { echo "Bail out! standby did not start"; exit 1; }

# many pages dirtied by replay on S: its checkpoint after the promotion is long
psql_p "$PP" "insert into t select g, repeat('x', 200) from generate_series(1, 150000) g" >/dev/null
lsn=$(psql_p "$PP" "select pg_current_wal_lsn()")
wait_for 60 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h 127.0.0.1 -p $SP -U postgres -d postgres -c \"select pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
ok $? "the standby replayed the primary's writes"

psql_p "$SP" "select pg_promote()" >/dev/null
is "$(psql_p "$SP" 'select pg_is_in_recovery()')" f "S promoted"
wait_for 60 test -e "$T/r1/wal/00000002.history"
ok $? "S archived 00000002.history"
psql_p "$SP" "insert into t values (-1, 'new primary')" >/dev/null
for i in 1 2 3; do psql_p "$SP" "select pg_switch_wal()" >/dev/null; psql_p "$SP" "insert into t values (-1, 'x')" >/dev/null; done
# the old primary goes on: timeline 1 archived past the fork and past S's position
for i in 1 2 3 4 5 6; do psql_p "$PP" "insert into t values ($i, 'old')" >/dev/null; psql_p "$PP" "select pg_switch_wal()" >/dev/null; done
last=$(psql_p "$PP" "select pg_walfile_name(pg_current_wal_lsn() - 1)")
wait_for 60 test -e "$T/r1/wal/$last"
ok $? "the old primary archived timeline 1 up to $last"
is "$(psql_p "$SP" 'select timeline_id from pg_control_checkpoint()')" 1 \
  "S's first checkpoint since the promotion is still running (pg_control says timeline 1)"

out=$(wsp status --json 2>/dev/null)
is "$(json 'd["primary_timeline"]' <<<"$out")" 2 "status: the primary's timeline is the one it writes WAL on (2)"
seg=$(json 'd["regions"][0]["lag_segments"]' <<<"$out")
[ "${seg:-0}" -ge 2 ]; ok $? "status: none of S's segments is archived: a lag of 2 segments or more (got ${seg:-none})"

done_testing
