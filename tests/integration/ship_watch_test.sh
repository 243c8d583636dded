#!/bin/bash
# The background shipper notices what it was started with changing: its
# configuration file, the key file, the shared AWS credentials files.  A
# shipper that keeps failing after such a change (keys rotated in
# ~/.aws/credentials, a region's settings fixed in walship.conf) leaves
# the queue to a new shipper, which the next wal-push starts with the new
# settings; it used to go on failing with what it had read at its start
# for 10 minutes (until "no progress for 600 s").  file:// regions, one of
# them async and unreachable (a file where its directory should be); a
# cluster made of files, no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000051
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
mkdir -p "$T/r1"
touch "$T/r3"           # unreachable: a file, not a directory
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 3

[region r1]
url = file://$T/r1
mode = sync

[region r3]
url = file://$T/r3
mode = async
CONF
printf '[default]\naws_access_key_id = AKIDOLD\naws_secret_access_key = old\n' >"$T/creds"
export AWS_SHARED_CREDENTIALS_FILE=$T/creds
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$1" "$1" "$SYS" --seed "$2" --seg-size 1048576 >/dev/null; }
push() { (cd "$T/pg" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$1"); }
LOCK=$T/spool/$SYS/ship.lock
shipper() { ws_lock_pid "$LOCK"; }
running() { [ -n "$(shipper)" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
on_exit "ws_stop_daemons '$T/spool'"
N1=000000010000000000000001
N2=000000010000000000000002
N3=000000010000000000000003
seg $N1 1; seg $N2 2; seg $N3 3

# ---- the configuration file changes ----
t "wal-push: the file is spooled for the unreachable async region" push $N1
wait_for 30 running
ok $? "a background shipper runs"
pid=$(shipper)
sleep 2
kill -0 "$pid" 2>/dev/null
ok $? "it keeps trying while nothing changes"
printf '# edited by the operator\n' >>"$T/a.conf"
wait_for 40 gone "$pid"
ok $? "the configuration file changed and its pass failed: the shipper leaves (within one back-off)"
like "$(cat "$T/spool/$SYS/ship.log" 2>/dev/null)" "configuration, key or credentials files changed" \
  "...saying why in ship.log"

# ---- the shared credentials file changes ----
t "the next wal-push starts a new shipper" push $N2
wait_for 30 running
ok $? "...which runs"
pid=$(shipper)
sleep 1
printf '[default]\naws_access_key_id = AKIDNEW\naws_secret_access_key = new\n' >"$T/creds"
wait_for 40 gone "$pid"
ok $? "keys rotated in the shared credentials file: the failing shipper leaves"

# ---- the region is fixed: a new shipper takes the whole queue ----
rm -f "$T/r3"; mkdir -p "$T/r3"
t "wal-push once the region is back" push $N3
wait_for 60 bash -c "[ -e '$T/r3/wal/$N1' ] && [ -e '$T/r3/wal/$N2' ] && [ -e '$T/r3/wal/$N3' ]"
ok $? "a new shipper ships every queued file to the async region"

done_testing
