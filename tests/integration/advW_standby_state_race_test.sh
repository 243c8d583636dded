#!/bin/bash
# Two wal-fetch noting a standby's answers at once (adversarial pass W):
# PostgreSQL's restore_command and an operator's wal-fetch run by hand in
# the standby's data directory (a failure is noted whoever asked).  Each
# read walship-standby.state, changed it and wrote it back through one
# fixed temp name: the write of the one that read first replaced the
# other's, and a failure noted meanwhile was gone (`status --standby` and
# `promote` then saw a standby that fetches fine); two writes at once
# could also mix their bytes in the shared temp file.  The read, change and
# write now happen under a lock on the data directory (flock), through a
# temp file of the writer's own.
#
# Deterministic: the other writer is emulated by flock(1) holding the data
# directory while it reads the state, waits, and writes it back changed, as
# a wal-fetch of the same binary would.  file:// region, a cluster made of
# files.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v flock >/dev/null || skip_all "flock(1) is not installed"
SYS=7000000000000000061
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
printf '[global]\nkey_file = %s\nspool_dir = %s\nparallel = 1\nretry_deadline = 2\n[region r1]\nurl = file://%s\nmode = sync\n' \
  "$T/key" "$T/spool" "$T/r1" >"$T/a.conf"
mkdir -p "$T/r1" "$T/spool"
N1=000000010000000000000001
N2=000000010000000000000002
for n in $N1 $N2; do
  ws_fake_ready "$T/pg" "$SYS" $n "${n: -1}"
  (cd "$T/pg" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$n") >/dev/null 2>&1
done
[ -e "$T/r1/wal/$N1" ] && [ -e "$T/r1/wal/$N2" ]; ok $? "$N1 and $N2 archived"
# the standby: standby.signal in its data directory; N2 damaged in the region
SB=$T/pg
touch "$SB/standby.signal"
rm -f "$SB"/pg_wal/0000*
head -c 4096 "$T/r1/wal/$N2" >"$T/n2" && cat "$T/n2" >"$T/r1/wal/$N2"
fetch() { (cd "$SB" && "$WALSHIP" --config "$T/a.conf" wal-fetch "$1" pg_wal/RECOVERYXLOG --no-prefetch); }
STATE=$SB/walship-standby.state
t "PostgreSQL's wal-fetch of $N1" fetch $N1
[ -s "$STATE" ]; ok $? "the standby's state is written"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$STATE" "$1" 2>/dev/null; }

# another wal-fetch (PostgreSQL's, of N1 again) in the middle of its
# read-change-write: it read the state before the failure below, and
# writes it back once that failing fetch has ended (or after 6 s, if that
# one waits for the lock)
flock "$SB" sh -c "cp '$STATE' '$T/read'; i=0; while [ ! -e '$T/done' ] && [ \$i -lt 60 ]; do sleep 0.1; i=\$((i+1)); done; cp '$T/read' '$STATE.other' && mv '$STATE.other' '$STATE'" &
holder=$!
wait_for 10 bash -c "! flock -n '$SB' true"
ok $? "another writer holds the data directory's lock"
fetch $N2 >"$T/fail.out" 2>&1
st=$?
touch "$T/done"
[ "$st" -ne 0 ]; ok $? "a wal-fetch of the damaged $N2 meanwhile fails (exit $st)"
wait "$holder"
diag "state: $(cat "$STATE")"
[ "$(field failing_segment)" = "$N2" ] && [ "$(field failing)" = True ]
ok $? "the failure of $N2 is still noted after the other writer's write"

done_testing
