#!/bin/bash
# A detached walship (the archiver process, the shipper, a prefetcher)
# keeps none of its caller's descriptors.  PostgreSQL 15 opens its files
# without O_CLOEXEC, so the startup process running restore_command would
# hand its relation files down (a dropped table's space stays allocated
# while the prefetcher runs), and a shell reading the output of a wal-push
# to its end waited for the archiver process to go idle.  file:// regions,
# no server: the caller's descriptor is a file here and a pipe below.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000052
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1" "$T/r2"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
seg() { ws_fake_ready "$T/pg" "$SYS" "$1" "$2"; }   # NAME SEED
on_exit "ws_stop_daemons '$T'"
n() { printf '0000000100000000000000%02X' "$1"; }
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 5
archive_async_process = on
archive_async_idle = 6
log_level = info

[region r1]
url = file://$T/r1
mode = sync

[region r2]
url = file://$T/r2
mode = async
CONF
chmod 600 "$T/a.conf"
SP=$T/spool/$SYS
holds() {   # PID FILE: the process has FILE open
  local f
  for f in /proc/"$1"/fd/*; do
    [ "$(readlink "$f" 2>/dev/null)" = "$2" ] && return 0
  done
  return 1
}

# the caller's pipe: $(...) returns when every writer of the pipe has
# closed it; the archiver process, idle for 6 s, must not be one of them
seg "$(n 1)" 1
start=$(date +%s)
out=$(cd "$T/pg" && exec 7>&1 && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$(n 1)" >/dev/null 2>&1; echo "rc=$?")
took=$(( $(date +%s) - start ))
[ "$out" = "rc=0" ]; ok $? "segment 1 archived with descriptor 7 a copy of the caller's pipe"
[ "$took" -lt 5 ]; ok $? "... and the caller's read of the pipe ended with wal-push, not with the archiver process ($took s)"

ws_stop_daemons "$T"

seg "$(n 2)" 2
: >"$T/held"
(cd "$T/pg" && exec 7>>"$T/held" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$(n 2)") >/dev/null 2>&1
ok $? "segment 2 archived with descriptor 7 open on a file of the caller's"
wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$SP/archd.lock')\" ]"
APID=$(ws_lock_pid "$SP/archd.lock")
[ -n "$APID" ]; ok $? "the archiver process runs"
holds "$APID" "$T/held"; [ $? -ne 0 ]; ok $? "... without the caller's file open"
holds "$APID" "$SP/archd.log"; ok $? "... (the check sees its own files: its log is open)"

# a prefetcher started by wal-fetch: only for a DEST in a pg_wal (as
# PostgreSQL's %p), and it stays while its window (parallel x 4 = 4
# segments: 2 to 5) waits for recovery to take them
for i in 3 4 5; do seg "$(n $i)" $i; (cd "$T/pg" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$(n $i)") >/dev/null 2>&1; done
: >"$T/held2"
(cd "$T/pg" && exec 8>>"$T/held2" && "$WALSHIP" --config "$T/a.conf" wal-fetch "$(n 1)" pg_wal/RECOVERYXLOG) >/dev/null 2>&1
ok $? "wal-fetch of segment 1 with descriptor 8 open on a file of the caller's"
wait_for 60 test -e "$T/pg/pg_wal/.walship-prefetch/$(n 5)"
ok $? "a prefetcher fetched ahead (segment 5)"
# by the PID in its lock file: pgrep -f "wal-fetch NAME" could find (and the
# kill below stop) another test's walship fetching a segment of that name
PF=$(ws_lock_pid "$T/pg/pg_wal/.walship-prefetch/.lock")
[ -n "$PF" ]; ok $? "the prefetcher still runs, its window full ($PF)"
holds "$PF" "$T/held2"; [ $? -ne 0 ]; ok $? "... without the caller's file open"
[ -n "$PF" ] && kill "$PF" 2>/dev/null
done_testing
