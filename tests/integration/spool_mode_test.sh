#!/usr/bin/env bash
# A backlog queued for an async region reaches it after the region is made
# sync (an adversarial pass: the shipper only shipped queues of regions that
# were async now, so an operator who switched a region to sync after an
# outage left its backlog in the spool for ever, reported as "a region that
# is not configured", and the region kept a gap).  file:// regions, no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000011
ws_fake_pgdata "$T/pg" "$SYS"
echo 15 >"$T/pg/PG_VERSION"
mkdir -p "$T/r1" "$T/r2"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
conf() {   # FILE MODE_OF_R2
  printf '[global]\nkey_file = %s\nspool_dir = %s\npgdata = %s\nparallel = 1\nretry_deadline = 3\n\n' \
    "$T/key" "$T/spool" "$T/pg" >"$1"
  printf '[region r1]\nurl = file://%s\n\n[region r2]\nurl = file://%s\nmode = %s\n' "$T/r1" "$T/r2" "$2" >>"$1"
}
conf "$T/async.conf" async
conf "$T/sync.conf" sync
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$1" "$1" "$SYS" --seed "$2" --seg-size 1048576 >/dev/null; }
push() { (cd "$T/pg" && "$WALSHIP" --config "$T/$1.conf" wal-push "pg_wal/$2"); }
on_exit "ws_stop_daemons '$T/spool'"
# the shipper wal-push starts takes its lock a moment after wal-push exits:
# wait for it (it keeps retrying an unreachable region), then stop it
stop_shipper() {
  wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$T/spool/$SYS/ship.lock')\" ]"
  ws_stop_daemons "$T/spool"
}

N1=000000010000000000000001
N2=000000010000000000000002
N3=000000010000000000000003

# r2 is reachable for the first segment, so it has an identity
seg $N1 1
t "async r2: segment 1 archived" push async $N1
t "... and shipped" "$WALSHIP" --config "$T/async.conf" ship --once
ws_stop_daemons "$T/spool"

# r2 goes dark: segment 2 waits in the spool
mv "$T/r2" "$T/r2.off" && touch "$T/r2"
seg $N2 2
t "async r2 unreachable: segment 2 acknowledged (spooled)" push async $N2
stop_shipper
[ -e "$T/spool/$SYS/queue" ] && ls "$T/spool/$SYS/queue/"r2-*/$N2 >/dev/null 2>&1
ok $? "... and queued for r2"

# r2 is back, and the operator makes it sync
rm "$T/r2" && mv "$T/r2.off" "$T/r2"
seg $N3 3
t "r2 now sync: segment 3 archived to both" push sync $N3
t "ship --once drains the backlog queued while r2 was async" "$WALSHIP" --config "$T/sync.conf" ship --once
[ -e "$T/r2/wal/$N2" ]; ok $? "... so r2 holds segment 2: no gap"
t "... which decodes to the segment" "$WALSHIP" --config "$T/sync.conf" --region r2 st get "wal/$N2" "$T/got2"
cmp -s "$T/got2" "$T/pg/pg_wal/$N2"; ok $? "... byte for byte"
t "status does not call r2 a region that is not configured" sh -c \
  "'$WALSHIP' --config '$T/sync.conf' status 2>&1 | grep -q 'regions that are not configured' && exit 1 || exit 0"

# with sync regions only, wal-push itself starts the shipper for a backlog
mv "$T/r2" "$T/r2.off" && touch "$T/r2"
seg 000000010000000000000004 4
t "async r2 unreachable again: segment 4 spooled" push async 000000010000000000000004
stop_shipper
rm "$T/r2" && mv "$T/r2.off" "$T/r2"
seg 000000010000000000000005 5
t "r2 sync: segment 5 archived" push sync 000000010000000000000005
wait_for 60 test -e "$T/r2/wal/000000010000000000000004"
ok $? "... and the shipper wal-push started sent segment 4 to r2"
ws_stop_daemons "$T/spool"

done_testing
