#!/bin/bash
# status's lag is the primary's own: segments another branch archived do
# not count (adversarial pass L).  In a split brain (an old primary, a
# drill restored with --keep-archive) another timeline's segments can
# number higher than the primary's; status took the region's newest
# segment of any timeline, so with the primary's own archiving stopped
# it said "lag: 0 segments" (walship_wal_lag_segments 0) while the
# primary's WAL piled up unarchived.  Now the lag counts from the newest
# segment on the primary's timeline path, below the one it writes.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_conf "$T/c.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"

t "backup-push" w backup-push
sql "select pg_switch_wal()" >/dev/null
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$last"
ok $? "timeline 1 is archived up to $last"
t "status: no lag" w status --json
is "$(json 'd["regions"][0]["lag_segments"]' <<<"$T_OUT")" 0 "... lag_segments 0"

# another branch in the region: timeline 2 forked at 0/3000000 and went on
# far past the primary (a drill restored with --keep-archive, say)
printf '1\t0/3000000\tno recovery target specified\n' >"$T/h2"
printf 'not a segment, only a name\n' >"$T/seg"
ws_own "$T/h2" "$T/seg"
t "a drill's history file in the region" w st put "$T/h2" wal/00000002.history
for s in 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10; do
  w st put "$T/seg" "wal/0000000200000000000000$s" >/dev/null 2>&1 || break
done
ok $? "... and its segments up to 000000020000000000000010"

# the primary's archiving stops; it fills three segments
sql "alter system set archive_command = '/bin/false'" >/dev/null
sql "select pg_reload_conf()" >/dev/null
for i in 1 2 3; do sql "create table t$i()" >/dev/null; sql "select pg_switch_wal()" >/dev/null; done
cur=$(sql "select pg_walfile_name(pg_current_wal_lsn())")
T_OUT=$(w status --json 2>/dev/null)
is "$(json 'd["regions"][0]["lag_segments"]' <<<"$T_OUT")" 3 \
  "status counts the 3 segments the primary did not archive (up to $cur), not the drill's newer ones"
T_OUT=$(w status 2>&1)
like "$T_OUT" "lag: +3 segments" "... in the text too"

# a segment of the primary's own timeline archived past where it writes:
# its data directory was restored from a snapshot (or reset), and its
# pushes of the same names now fail.  That is not its WAL; status took it
# for the newest and said "lag: 0 segments" (adversarial pass O).
t "timeline 1's segment 0x40 in the region, past the primary" w st put "$T/seg" wal/000000010000000000000040
T_OUT=$(w status --json 2>/dev/null)
is "$(json 'd["regions"][0]["lag_segments"]' <<<"$T_OUT")" 3 \
  "status still counts the primary's 3 segments, not the one past it"
T_OUT=$(w status 2>&1)
like "$T_OUT" "newest WAL: +000000010000000000000040" "... the region's newest is still shown"

done_testing
