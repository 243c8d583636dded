#!/bin/bash
# Segment names and wal_segment_size (adversarial pass AE).  A segment's
# last 8 hex digits count segments within one 4 GB "log": up to 0xFF for
# 16 MB segments, 0xFFF for 1 MB, 0x3F for 64 MB.  walship took any 8
# digits, and its segment arithmetic (log * per_log + seg) made a name past
# the limit stand for another segment: 000000010000000100000000 renamed to
# 000000010000000000001000 (1 MB segments) was archived with exit 0, its
# header's page address agreeing with the number the wrong name computed
# to; and with that object in the archive, verify counted the real
# 000000010000000100000000 as present after it was gone.
#
# A real PostgreSQL 15 with 1 MB segments, reset to just below the end of
# log 0 (pg_resetwal -l), archiving across the boundary.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
RPORT=$(pg_free_port)
[ "$PGPORT" != "$RPORT" ] || RPORT=$((PGPORT + 1))
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/r1" "$T/x/pg_wal" "$T/rs"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 3" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
wsd() { (cd "$T/pg/data" && ws "$@"); }   # in the data directory, as PostgreSQL runs it
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

pg_init "$T/pg" --wal-segsize=1 || { echo "Bail out! initdb"; exit 1; }
pg_run "$PG_BIN/pg_resetwal" -l 000000010000000000000FFE -D "$T/pg/data" >/dev/null || { echo "Bail out! pg_resetwal"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate; pg_stop $T/rs immediate"

sql "create table t(i int)"
t "backup-push at the end of log 0" ws backup-push
last=
for i in 1 2 3; do
  sql "insert into t values ($i)"
  last=$(sql "select pg_walfile_name(pg_switch_wal())")
done
wait_for 60 test -e "$T/r1/wal/$last"
ok $? "PostgreSQL archived through $last"
B=000000010000000100000000
[ -e "$T/r1/wal/000000010000000000000FFF" ] && [ -e "$T/r1/wal/$B" ]
ok $? "... across the boundary: 000000010000000000000FFF, then $B"
is "$(sql 'select failed_count from pg_stat_archiver')" 0 "no archive_command failure"
t "verify: every segment from the backup's start" ws verify

# the bytes of segment 1/0 under a name past the last segment of log 0
wsd wal-fetch "$B" "$T/x/pg_wal/$B" --no-prefetch >/dev/null 2>&1
cp "$T/x/pg_wal/$B" "$T/x/pg_wal/000000010000000000001000"
ws_own "$T/x"
t_fail "wal-push: a segment renamed to a name past 0xFFF (1 MB segments) is refused (exit 3)" 3 \
  wsd wal-push "$T/x/pg_wal/000000010000000000001000"
like "$T_OUT" "no segment name for 1048576-byte segments" "... saying why"
[ ! -e "$T/r1/wal/000000010000000000001000" ]; ok $? "... nothing archived under that name"
cp "$T/x/pg_wal/$B" "$T/x/pg_wal/000000010000000000001000.partial"; ws_own "$T/x"
t_fail "wal-push: the same as a .partial: refused" 3 wsd wal-push "$T/x/pg_wal/000000010000000000001000.partial"

# such an object in the region (put there by hand) stands for nothing
ws st put "$T/x/pg_wal/$B" wal/000000010000000000001000 >/dev/null 2>&1
ws_own "$T/r1"
mv "$T/r1/wal/$B" "$T/x/$B.obj"
t_fail "verify: $B gone, a misnamed object does not stand for it (exit 3)" 3 ws verify
like "$T_OUT" "$B" "... naming the missing segment"
mv "$T/x/$B.obj" "$T/r1/wal/$B"
t "verify with $B back" ws verify

# restore across the boundary (prefetch follows the names PostgreSQL asks for)
t "restore --start across the boundary" ws restore --pgdata "$T/rs/data" --start --port "$RPORT"
is "$(pg_run "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$RPORT" -U postgres -d postgres -c 'select string_agg(i::text, $$ $$ order by i) from t' 2>/dev/null)" "1 2 3" \
  "the restored instance has every row"

# status with the primary down judges names by the repository's segment
# size, not 16 MB: ...00000F00 (log 1) is a 1 MB segment name
pg_stop "$T/pg" immediate
N=000000010000000100000F00
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/x/$N" "$N" "$(pg_sysid "$T/pg")" --seg-size 1048576 >/dev/null
ws_own "$T/x"
ws st put "$T/x/$N" "wal/$N" >/dev/null 2>&1
ws_own "$T/r1"
out=$(ws status --json 2>/dev/null)
is "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["regions"][0]["wal"])' <<<"$out")" "$N" \
  "status, the primary down: the newest WAL is $N (the repository's 1 MB segments, not 16 MB)"

done_testing
