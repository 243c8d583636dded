#!/bin/bash
# A .ready whose segment is gone (an orphan; PostgreSQL removes it itself
# when its archiver reaches it, but not while it is stopped) is no work for
# the archiver process (an adversarial review's finding): it used to try it
# every 2 s for ever, each time "changed while it was being archived" in
# its log, a failure marker and new region connections, and never became
# idle, so it outlived PostgreSQL indefinitely.  file:// region, no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000051
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
seg() { ws_fake_ready "$T/pg" "$SYS" "$1" "$2"; }   # NAME SEED
push() {  # NAME, and .ready renamed .done on exit 0 as PostgreSQL does
  (cd "$T/pg" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$1") || return
  mv "$T/pg/pg_wal/archive_status/$1.ready" "$T/pg/pg_wal/archive_status/$1.done" 2>/dev/null
  return 0
}
on_exit "ws_stop_daemons '$T'"
n() { printf '0000000100000000000000%02X' "$1"; }
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 5
archive_async_process = on
archive_async_idle = 4
log_level = info

[region r1]
url = file://$T/r1
mode = sync
CONF
chmod 600 "$T/a.conf"
SP=$T/spool/$SYS

seg "$(n 1)" 1
touch "$T/pg/pg_wal/archive_status/$(n 2).ready"     # its segment is gone
t "segment 1 archived (the process started)" push "$(n 1)"
wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$SP/archd.lock')\" ]"
[ -n "$(ws_lock_pid "$SP/archd.lock")" ]; ok $? "the archiver process runs"
wait_for 15 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -z \"\$(ws_lock_pid '$SP/archd.lock')\" ]"
[ -z "$(ws_lock_pid "$SP/archd.lock")" ]; ok $? "with only an orphan .ready left it exits idle (archive_async_idle 4 s, longer than the 2 s retry of a failure)"
! grep -q "could not archive $(n 2)" "$SP/archd.log"; ok $? "... without failing on the orphan again and again"
[ ! -e "$SP/pushed/$(n 2).fail" ]; ok $? "... and without a failure marker for it"
# the control: a real segment after it is still archived through a process
seg "$(n 3)" 3
t "segment 3 archived" push "$(n 3)"
grep -q "archived $(n 3)" "$SP/archd.log"; ok $? "... by a new archiver process"
done_testing
