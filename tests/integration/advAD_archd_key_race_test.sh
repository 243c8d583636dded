#!/bin/bash
# Adversarial pass AD: a key file replaced between the moment wal-push
# reads the key and the moment it takes the key file's identity for the
# archiver process's tag (docs/WAL.md).  The process it started kept the
# OLD key under a tag that named the NEW key file, so:
#   - its watch (which took the key file's identity later still) never saw
#     the key change, and it ran on until idle;
#   - every later wal-push, holding the new key, counted it as its own and
#     acknowledged segments it had encrypted with the old key.  With the
#     old key kept in old_key_files they read back, but the operator who
#     retires that key once the objects written before the rotation have
#     expired loses every segment that process wrote after it.
# Now the key file's identity is the one of the file the key was read from
# (fstat of that descriptor).  The rotation is made at that exact moment by
# an LD_PRELOAD shim (tests/lib/keyswap.c).  file:// region, no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

ws_keyswap_build "$T/keyswap.so" || skip_all "no C compiler for the LD_PRELOAD shim"
SYS=7000000000000000053
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1" "$T/out"
keyid() { "$WALSHIP" keygen "$1" 2>&1 | sed -n 's/.*key id \([0-9a-f]\{32\}\).*/\1/p'; }
A=$(keyid "$T/key")
B=$(keyid "$T/key.new")
cp -p "$T/key" "$T/key.old"   # the rotation as prepared: the old key stays readable
seg() { ws_fake_ready "$T/pg" "$SYS" "$1" "$2"; }   # NAME SEED
n() { printf '0000000100000000000000%02X' "$1"; }
on_exit "ws_stop_daemons '$T'"
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
old_key_files = $T/key.old
spool_dir = $T/spool
parallel = 1
retry_deadline = 10
archive_async_process = on
archive_async_idle = 600
log_level = info

[region r1]
url = file://$T/r1
mode = sync
CONF
chmod 600 "$T/a.conf"
SP=$T/spool/$SYS
obj_key() { od -An -tx1 -j8 -N16 "$1" | tr -d ' \n'; }   # FORMAT.md: key id at offset 8
push() { (cd "$T/pg" && timeout 120 "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$1"); }

[ -n "$A" ] && [ -n "$B" ] && [ "$A" != "$B" ]; ok $? "two keys ($A, $B)"
seg "$(n 1)" 1
(cd "$T/pg" && KEYSWAP_PATH=$T/key KEYSWAP_NEW=$T/key.new LD_PRELOAD=$T/keyswap.so \
  timeout 120 "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$(n 1)") >"$T/push1.out" 2>&1
ok $? "segment 1 archived while the key file was replaced under wal-push"
[ ! -e "$T/key.new" ]
ok $? "... the key file holds the new key now"
is "$(obj_key "$T/r1/wal/$(n 1)")" "$A" "... segment 1 is under the key wal-push read (the old one)"
wait_for 60 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$SP/archd.lock')\" ]"
APID=$(ws_lock_pid "$SP/archd.lock")
[ -n "$APID" ]; ok $? "the archiver process was started (pid ${APID:-none})"

wait_for 60 bash -c "[ ! -d /proc/$APID ] || ! grep -q walship /proc/$APID/cmdline"
ok $? "... and leaves by itself: the key file is not the one its key came from"

seg "$(n 2)" 2
t "segment 2 archived after the rotation" push "$(n 2)"
is "$(obj_key "$T/r1/wal/$(n 2)")" "$B" "... under the new key, not by a process holding the old one"
t "... and read back" "$WALSHIP" --config "$T/a.conf" wal-fetch "$(n 2)" "$T/out/2"
cmp -s "$T/out/2" "$T/pg/pg_wal/$(n 2)"; ok $? "... as archived"

done_testing
