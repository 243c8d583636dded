#!/bin/bash
# The spool and the regions cannot be made to acknowledge WAL they do not
# keep (issue 10, review findings): file:// regions and a cluster made of
# files (pg_control and WAL segments written by tests/lib/walseg.py), no
# server needed.
#   - a segment pushed again with other content while the first is still
#     queued for an async region is refused, the same content is not;
#   - the shipper authenticates each spooled file before it uploads it: a
#     damaged entry is set aside, never published nor dropped, `ship --once`
#     fails and `status` raises an alarm;
#   - a region that held this cluster's repository and is empty now (an
#     unmounted file system) is not made a new repository by wal-push;
#   - a region whose wal/ is a symbolic link to nothing is an error for
#     wal-fetch (exit 250), never "not found";
#   - "file:///x/" and "file:///x" are one region: one spool queue;
#   - with async regions only, another cluster's segment pushed by hand is
#     refused when the spool knows the region as this cluster's;
#   - a file changed while wal-push reads it (even with its mtime set back):
#     exit 3 and no object, then the retry archives it;
#   - the shipper's state file (spool_dir/SYSID/state/QUEUE.json): status
#     shows an unreachable region's last error and code from it, without
#     ship.log, and clears it once the region took the queue.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000001
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
conf() {   # FILE ASYNC_URL
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 3

[region r1]
url = file://$T/r1
mode = sync

[region r3]
url = $2
mode = async
CONF
}
conf "$T/a.conf" "file://$T/r3"
touch "$T/r3"            # the async region is unreachable: a file, not a directory
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$1" "$1" "$SYS" --seed "$2" --seg-size 1048576 >/dev/null; }
push() { (cd "$T/pg" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$1"); }
fetch() { (cd "$T/pg" && "$WALSHIP" --config "$T/a.conf" "$@"); }
# wal-push starts a detached shipper; stop ours by the PID in its lock file
stop_shippers() { ws_stop_daemons "$T/spool"; }
on_exit stop_shippers
N1=000000010000000000000001
N3=000000010000000000000003

seg $N1 1
t "wal-push: segment 1 (sync uploaded, async spooled)" push $N1
seg $N3 3
t "wal-push: segment 3" push $N3
seg $N3 33
t_fail "pushed again with other content while queued: refused (exit 3)" 3 push $N3
like "$T_OUT" "already queued in the spool" "... saying another copy is queued"
seg $N3 3
t "pushed again with the same content: acknowledged" push $N3
like "$T_OUT" "1 already there, 1 spooled" "... counted as already there and spooled"

# the sync region holds the name and its copy cannot be compared: refused,
# and the file is not queued for the async region past it
N5=000000010000000000000005
seg $N5 5
mkdir -p "$T/r1/wal" && printf 'not an object' >"$T/r1/wal/$N5"
t_fail "the sync region holds the name, its copy unreadable: refused (exit 3)" 3 push $N5
like "$T_OUT" "could not be compared" "... saying the copy could not be compared"
[ -z "$(ls "$T"/spool/"$SYS"/queue/r3-*/"$N5" 2>/dev/null)" ]
ok $? "... and not queued for the async region"
rm -f "$T/r1/wal/$N5" "$T/pg/pg_wal/$N5"

# the background shipper is found by the PID in its lock file (docs/OPERATIONS.md §6)
wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$T/spool/$SYS/ship.lock')\" ]"
shipper=$(ws_lock_pid "$T/spool/$SYS/ship.lock")
like "$(tr '\0' ' ' <"/proc/${shipper:-0}/cmdline" 2>/dev/null)" "walship .*ship --system-identifier $SYS" \
  "ship.lock names the running background shipper"

# the shipper's state file: status shows r3's last error, from the file
stop_shippers
[ -n "$shipper" ] && [ ! -d "/proc/$shipper" ]; ok $? "ws_stop_daemons stopped it by that PID"
t_fail "ship --once while r3 is unreachable: fails" 3 fetch ship --once --system-identifier "$SYS"
SF=$(ls "$T/spool/$SYS/state/"r3-*.json 2>/dev/null | head -1)
[ -n "$SF" ] && python3 - "$SF" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["region"] == "r3" and s["last_error_time"] > 0 and s["last_error_code"] and s["last_error"], s
assert s["backlog_files"] == 2 and s["backlog_bytes"] > 0 and s["last_success"] == 0, s
PY
ok $? "the shipper wrote r3's state file: the error, its code, backlog 2 files"
sj=$(fetch status --json 2>/dev/null)
python3 -c '
import json, sys
r = [x for x in json.loads(sys.argv[1])["regions"] if x["region"] == "r3"][0]
assert r["last_error"] and r["last_error_code"] and r["last_error_time_unix"] > 0, r
assert r["last_shipped_unix"] is None, r
' "$sj"
ok $? "status --json: r3's last error, its code and time from the state file; nothing shipped yet"
fetch status >"$T/status.txt" 2>/dev/null
like "$(cat "$T/status.txt")" "last error: +\[[^]]+\] .*r3" "status: r3's last error with its code"
rm -f "$T/spool/$SYS/ship.log"
t_fail "status without ship.log: still an alarm" 2 fetch status
like "$T_OUT" "last error: +\[" "... and still the last error (status reads the state file, not the log)"

# the shipper authenticates before it uploads
Q=$(ls -d "$T/spool/$SYS/queue/"r3-*)
truncate -s 2000 "$Q/$N3"
rm "$T/r3" && mkdir "$T/r3"
t_fail "ship --once with a damaged entry: fails (exit 3)" 3 fetch ship --once --system-identifier "$SYS"
like "$T_OUT" "does not check" "... naming the entry that does not check"
[ ! -e "$T/r3/wal/$N3" ]; ok $? "the damaged entry was not published"
[ -e "$T/r3/wal/$N1" ]; ok $? "the good entry was"
ls "$T/spool/$SYS/conflicts/"r3-*/"$N3" >/dev/null 2>&1; ok $? "the damaged entry is kept in the spool's conflicts/"
t_fail "status: an alarm (exit 2)" 2 fetch status --json
like "$T_OUT" '"spool_conflicts": 1' "... with spool_conflicts 1 for the region"

# an emptied (unmounted) region is not made a new repository
mv "$T/r1" "$T/r1.real" && mkdir "$T/r1"
seg 000000010000000000000004 4
t_fail "wal-push into a region that lost its identity: refused (exit 3)" 3 push 000000010000000000000004
like "$T_OUT" "held this cluster's repository before" "... saying it held the repository before"
[ ! -e "$T/r1/identity.json" ]; ok $? "no new identity was created there"
rmdir "$T/r1" && mv "$T/r1.real" "$T/r1"
t "the region back: wal-push works" push 000000010000000000000004

# wal/ a symbolic link to nothing
mv "$T/r1/wal" "$T/r1/wal.real" && ln -s "$T/nowhere/wal" "$T/r1/wal"
# r3 lacks segment 3 (set aside above): only r1 could serve it
t_fail "wal-fetch with wal/ pointing nowhere: exit 250, not the end of the archive" 250 fetch wal-fetch "$N3" "$T/out"
like "$T_OUT" "symbolic link to nothing" "... naming the dangling link"
rm "$T/r1/wal" && mv "$T/r1/wal.real" "$T/r1/wal"
t "wal-fetch with wal/ back" fetch wal-fetch "$N3" "$T/out"

# verify --full reads each segment's first page
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/foreign5" 000000010000000000000005 7000000000000000002 --seed 5 \
  --seg-size 1048576 >/dev/null
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/moved6" 000000010000000000000009 "$SYS" --seed 6 \
  --seg-size 1048576 >/dev/null
t "st put: another cluster's segment 5 under its name" fetch --region r1 st put "$T/foreign5" wal/000000010000000000000005
t "st put: segment 9's content under segment 6's name" fetch --region r1 st put "$T/moved6" wal/000000010000000000000006
t_fail "verify --full: a problem (exit 3)" 3 fetch --region r1 verify --full
like "$T_OUT" "000000010000000000000005.*(system identifier|another cluster|7000000000000000002)" "... naming the foreign segment"
like "$T_OUT" "000000010000000000000006" "... and the one whose pages say another segment"
if grep -q "instead of 16777216" <<<"$T_OUT"; then ok 1 "... segments measured in the identity's 1 MiB"; else ok 0 "... segments measured in the identity's 1 MiB"; fi
fetch --region r1 st rm wal/000000010000000000000005 >/dev/null 2>&1
fetch --region r1 st rm wal/000000010000000000000006 >/dev/null 2>&1

# a trailing slash does not make another region
stop_shippers
conf "$T/a.conf" "file://$T/r3/"
t "ship --once with the url written with a trailing slash" fetch ship --once --system-identifier "$SYS"
if grep -q "not configured" <<<"$T_OUT"; then ok 1 "... sees no orphaned queue"; else ok 0 "... sees no orphaned queue"; fi
[ -e "$T/r3/wal/000000010000000000000004" ]; ok $? "... and ships the queue to the region"
stop_shippers
sj=$(fetch status --json 2>/dev/null)
python3 -c '
import json, sys
r = [x for x in json.loads(sys.argv[1])["regions"] if x["region"] == "r3"][0]
assert r["last_error"] is None and r["last_error_code"] is None and r["last_shipped_unix"] > 0, r
assert r["spool_files"] == 0, r
' "$sj"
ok $? "status --json after r3 recovered: no last error, a last shipment, an empty queue"
fetch status >"$T/status.txt" 2>/dev/null
if grep -q "last error" "$T/status.txt"; then ok 1 "status: no last error line once r3 recovered"; else ok 0 "status: no last error line once r3 recovered"; fi

# copy repairs a damaged WAL object in the destination, never keeps it
cat >"$T/c.conf" <<CONF
[global]
key_file = $T/key

[region r1]
url = file://$T/r1

[region rc]
url = file://$T/rc
CONF
mkdir -p "$T/rc"
t "copy r1 -> rc" "$WALSHIP" --config "$T/c.conf" copy --from r1 --to rc
truncate -s 3000 "$T/rc/wal/$N1"
t "copy again with rc's segment 1 truncated: exit 0" "$WALSHIP" --config "$T/c.conf" copy --from r1 --to rc
like "$T_OUT" "does not decode.*replacing it|replacing it" "... replacing the damaged copy"
t "rc's segment 1 decodes again" "$WALSHIP" --config "$T/c.conf" --region rc st get "wal/$N1" "$T/c1"
cmp -s "$T/c1" "$T/pg/pg_wal/$N1"; ok $? "... to the original bytes"

# one configuration serves one cluster
SYSB=7000000000000000002
mkdir -p "$T/pgb/global" "$T/pgb/pg_wal" "$T/rb"
python3 - "$T/pgb/global/pg_control" "$SYSB" <<'PY'
import struct, sys
b = bytearray(8192)
b[0:8] = struct.pack('<Q', int(sys.argv[2]))
open(sys.argv[1], 'wb').write(b)
PY
echo 15 >"$T/pgb/PG_VERSION"
printf '[global]\nkey_file = %s\n\n[region rb]\nurl = file://%s\n' "$T/key" "$T/rb" >"$T/b.conf"
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pgb/pg_wal/$N1" "$N1" "$SYSB" --seed 7 --seg-size 1048576 >/dev/null
t "cluster B archives to its own region" sh -c "cd '$T/pgb' && '$WALSHIP' --config '$T/b.conf' wal-push pg_wal/$N1"
printf '[global]\nkey_file = %s\n\n[region r1]\nurl = file://%s\n\n[region rb]\nurl = file://%s\n' \
  "$T/key" "$T/r1" "$T/rb" >"$T/m.conf"
for cmd in verify backup-list "delete --dry-run"; do
  # shellcheck disable=SC2086
  t_fail "$cmd over regions of two clusters: refused (exit 3)" 3 "$WALSHIP" --config "$T/m.conf" $cmd
  like "$T_OUT" "one configuration serves one cluster" "... naming the two clusters"
done

# A file changed while wal-push reads it: nothing is committed, so the
# retry archives it whole (an adversarial pass found the torn object left
# under the name, and every retry refused as "different content"); an
# mtime set back after each write is still a change (ctime)
mkdir -p "$T/rt"
printf '[global]\nkey_file = %s\ncompression = zstd:19\n\n[region rt]\nurl = file://%s\n' "$T/key" "$T/rt" \
  >"$T/t.conf"
torn_case() {   # NAME SEED WHAT [--keep-mtime]
  local n=$1 f="$T/pgb/pg_wal/$1" w=$T/torn.writer
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$f" "$n" "$SYSB" --seed "$2" --seg-size 1048576 >/dev/null
  local mt; mt=$(stat -c %Y "$f")
  # a writer that keeps rewriting one byte past the header while the push runs
  rm -f "$w.stop"
  ( i=0; until [ -e "$w.stop" ]; do
      printf '%s' $((i % 10)) | dd of="$f" bs=1 seek=$((65536 + i % 4096)) conv=notrunc status=none
      [ "${4:-}" = --keep-mtime ] && touch -m -d "@$mt" "$f"
      i=$((i + 1))
    done ) &
  local wp=$!
  sleep 0.2
  (cd "$T/pgb" && "$WALSHIP" --config "$T/t.conf" wal-push "pg_wal/$n") >"$T/torn.out" 2>&1
  local rc=$?
  touch "$w.stop"; wait "$wp"
  is "$rc" 3 "$3: wal-push exits 3"
  like "$(cat "$T/torn.out")" "changed while it was being read" "... saying the file changed while it was read"
  [ ! -e "$T/rt/wal/$n" ]; ok $? "... and leaves no object under the name"
  t "$3: the retry, once the file is still, archives it" sh -c "cd '$T/pgb' && '$WALSHIP' --config '$T/t.conf' wal-push pg_wal/$n"
  "$WALSHIP" --config "$T/t.conf" st get "wal/$n" "$T/torn.got" >/dev/null 2>&1 && cmp -s "$T/torn.got" "$f"
  ok $? "... and the region holds the file as it is now"
}
# Async regions only, a file pushed by hand without pgdata: no region's
# identity is checked before the file is acknowledged, so another
# cluster's segment was spooled (exit 0) for a region that will never take
# it; the spool's memory of the region (known/) refuses it now
mkdir -p "$T/ra" "$T/foreign"
printf '[global]\nkey_file = %s\nspool_dir = %s\n\n[region ra]\nurl = file://%s\nmode = async\n' \
  "$T/key" "$T/spoolA" "$T/ra" >"$T/ao.conf"
on_exit "ws_stop_daemons '$T/spoolA'"
seg 000000010000000000000021 31
t "async only: this cluster's segment is spooled" sh -c "cd '$T/pg' && '$WALSHIP' --config '$T/ao.conf' wal-push pg_wal/000000010000000000000021"
t "... and shipped (the region's identity is checked and remembered)" "$WALSHIP" --config "$T/ao.conf" ship --once
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/foreign/000000010000000000000022" 000000010000000000000022 "$SYSB" \
  --seed 32 --seg-size 1048576 >/dev/null
t_fail "async only: another cluster's segment pushed by hand without pgdata is refused (exit 3)" 3 \
  sh -c "cd '$T' && '$WALSHIP' --config '$T/ao.conf' wal-push '$T/foreign/000000010000000000000022'"
like "$T_OUT" "region ra holds the repository of cluster $SYS" "... naming the region's cluster"
[ ! -e "$T/spoolA/$SYSB" ]; ok $? "... and nothing is spooled for the other cluster"

torn_case 000000010000000000000011 21 "a file rewritten in place while it is read"
torn_case 000000010000000000000012 22 "a file rewritten with its mtime set back" --keep-mtime
done_testing
