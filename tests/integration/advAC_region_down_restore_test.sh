#!/bin/bash
# restore with one configured region down (adversarial pass AC).  r1 holds
# more WAL than r2 (r2 an async region behind), and r1 cannot be reached
# on the DR host.  restore warned "the end is taken from the other regions,
# and recovery may end short of what r1 holds" and went on, fetched the
# whole backup, started PostgreSQL, whose restore_command asked r1 too:
# wal-fetch's first question r2 could not answer (the startup probe of
# 00000002.history) exited 250 on r1 (right: it cannot know r1 lacks it),
# PostgreSQL stopped, "NOT promoted", exit 3.  Every restore with a
# configured region down failed so, after the whole fetch, whatever the
# target.  Now the restore_command restore writes leaves out the regions
# restore itself could not ask (--skip-region): recovery sees the archive
# restore judged, and ends where restore said it would.  And the end of
# the archive unreadable (the newest segment damaged where it is, absent
# elsewhere) is exit 3 naming the damage, not exit 1.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PP XP <<<"$(python3 "$TOP_SRCDIR/tests/lib/free_ports.py" 2 | tr '\n' ' ')"
ws_mkdirs "$T/spool" "$T/r1" "$T/r2" "$T/x" "$T/y" "$T/z"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$T/c.conf" "retry_deadline = 5" "$(ws_pg_conninfo "$T/pg" "$PP")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
ws_region "$T/c.conf" r2 "file://$T/r2" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
psql_p() { pg_run "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }
stop_x() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PP" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
on_exit "for d in $T/x/data $T/y/data $T/z/data $T/w/data; do runuser -u postgres -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"

psql_p "$PP" "create table m(id text)"
psql_p "$PP" "insert into m values ('A')"
t "backup-push" ws backup-push
for x in B C D; do
  psql_p "$PP" "insert into m values ('$x')"
  seg=$(psql_p "$PP" "select pg_walfile_name(pg_switch_wal())")
done
wait_for 60 test -e "$T/r2/wal/$seg"
ok $? "archived through $seg in both regions"
pg_stop "$T/pg" fast
# r2 is behind: its two newest segments (C and D) never reached it
mapfile -t NEW < <(ls "$T/r2/wal" | grep -E '^[0-9A-F]{24}$' | sort | tail -2)
rm -f "$T/r2/wal/${NEW[0]}" "$T/r2/wal/${NEW[1]}"
[ ! -e "$T/r2/wal/${NEW[0]}" ] && [ -e "$T/r1/wal/${NEW[0]}" ]
ok $? "r2 lacks ${NEW[0]} and ${NEW[1]}, which r1 holds"

t "r1 reachable: restore --region r2 --target-latest --start" \
  ws --region r2 restore --pgdata "$T/x/data" --target-latest --start --port "$XP"
is "$(psql_p "$XP" "select string_agg(id, '' order by id) from m")" ABCD "... every row: the end is r1's"
stop_x "$T/x/data"

mv "$T/r1" "$T/r1.away"
t "r1 down: restore --region r2 --target-latest --start succeeds" \
  ws --region r2 restore --pgdata "$T/y/data" --target-latest --start --port "$XP"
like "$T_OUT" "region r1 cannot be asked.*restore_command written does not ask it" "... warning that r1 is not asked, by restore nor by recovery"
is "$(psql_p "$XP" "select string_agg(id, '' order by id) from m")" AB "... with the rows r2 holds, as it said"
unlike "$(cat "$T/y/data/walship-restore.log" 2>/dev/null)" "exit 250|FATAL" "... no wal-fetch failure on the way"
stop_x "$T/y/data"

t "r1 down: restore --region r2 --target-lsn (inside r2's WAL) --start succeeds" \
  ws --region r2 restore --pgdata "$T/z/data" --target-lsn 0/3000000 --start --port "$XP"
like "$(psql_p "$XP" "select pg_is_in_recovery()")" "^f$" "... promoted"
stop_x "$T/z/data"

# r1 back, its copy of the newest segment damaged, r2 without it: the end
# of the archive cannot be read.  restore said so with r2's "No such file
# or directory" and exit 1 ("does not exist"); the damage was a warning.
mv "$T/r1.away" "$T/r1"
python3 - "$T/r1/wal/${NEW[1]}" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0xFF
open(p, 'wb').write(b)
PY
ws_mkdirs "$T/w"
t_fail "newest segment damaged in r1, absent in r2: restore --target-latest exits 3, not 1" 3 \
  ws restore --pgdata "$T/w/data" --target-latest --start --port "$XP"
like "$(grep ERROR <<<"$T_OUT")" "region r1: .*(authentication|corrupt)" "... the error names r1's damaged copy"

done_testing
