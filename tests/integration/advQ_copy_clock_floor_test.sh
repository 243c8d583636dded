#!/bin/bash
# walship copy after a clock went back between two backups (adversarial
# pass Q).  copy took the WAL floor from the backup that sorts first by
# NAME; a backup taken while the clock was a day behind sorts first though
# it starts later, so the WAL between the older backup's stop and the
# newer one's start was not copied, exit 0: the copy restored the older
# backup only to its end point, not to a later time as r1 does.  The floor
# is now the earliest start segment of the selected backups.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

ws_copy_pair
SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds (tests/lib/clockshift.c)"

t "a backup into r1" pg_run "$WALSHIP" --config "$T/p.conf" backup-push
B1=$(took)
for i in 1 2 3; do
  sql "create table t$i as select g from generate_series(1, 1000) g" >/dev/null
  sql "select pg_switch_wal()" >/dev/null
done
t "a second backup, its host's clock a day behind" \
  pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=-86400 "$WALSHIP" --config "$T/p.conf" backup-push
B2=$(took)
[ -n "$B1" ] && [ -n "$B2" ] && [[ "$B2" < "$B1" ]]; ok $? "the newer backup ($B2) sorts before the older ($B1)"
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$last"; ok $? "everything up to $last is archived in r1"

start_wal() {
  wc2 backup-list --region r1 --json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin)
for r in d:
    for b in r.get("backups", []):
        if b.get("name") == sys.argv[1]: print(b.get("start_wal", ""))' "$1"
}
s1=$(start_wal "$B1"); s2=$(start_wal "$B2")
[ -n "$s1" ] && [[ "$s1" < "$s2" ]]; ok $? "$B1 starts ($s1) before $B2 ($s2)"

t "copy r1 to r2" wc2 copy --from r1 --to r2
like "$T_OUT" "WAL from $s1" "the WAL floor is the older backup's start"
missing=
for f in "$T"/r1/wal/*; do
  n=${f##*/}
  [[ "$n" < "$s1" ]] && continue
  cmp -s "$f" "$T/r2/wal/$n" || missing="$missing $n"
done
is "$missing" "" "every WAL file of r1 from $s1 on is in r2"
t "r2 verifies" wc2 verify --region r2

done_testing
