#!/bin/bash
# Two writers of one host creating a region's repository identity at once
# (the shipper and a wal-push, two wal-push) must end up remembering the
# identity the region holds.  On a store without conditional writes (Swift's
# s3api) both PUTs could succeed, and the writer whose identity was replaced
# a second later kept its own creation time in spool_dir/SYSID/known/, then
# refused the region as "another repository mounted there" for good (seen
# in CI: restore_test's async region).  Creation is serialised per host by
# spool_dir/SYSID/known/.create.lock, and the writer that waited reads the
# identity again.  file:// regions and a cluster made of files: no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v flock >/dev/null || skip_all "flock(1) is not installed"
SYS=7000000000000000031
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
conf() {   # FILE SPOOL
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $2
parallel = 1
retry_deadline = 3

[region r1]
url = file://$T/r1
mode = sync
CONF
}
conf "$T/a.conf" "$T/spoolA"
conf "$T/b.conf" "$T/spoolB"
mkdir -p "$T/r1" "$T/spoolA/$SYS/known" "$T/spoolB"
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$1" "$1" "$SYS" --seed "$2" --seg-size 1048576 >/dev/null; }
push() { (cd "$T/pg" && "$WALSHIP" --config "$T/$1.conf" wal-push "pg_wal/$2"); }
N1=000000010000000000000001
N2=000000010000000000000002
N3=000000010000000000000003
seg $N1 1; seg $N2 2; seg $N3 3

# another creator of this host holds the lock until the test releases it
# (a holder for a fixed time let a slow run see the waiting push finish)
LOCK=$T/spoolA/$SYS/known/.create.lock
hold() {   # N: hold LOCK until $T/release-N exists (or $T is gone)
  ( exec 9>>"$LOCK" && flock 9 && : >"$T/held-$1" &&
    while [ -d "$T" ] && [ ! -e "$T/release-$1" ]; do sleep 0.1; done ) &
  holder=$!
  on_exit ": >'$T/release-$1'"
  wait_for 30 test -e "$T/held-$1"
}
hold 1
ok $? "the creation lock is held by another process"

push a $N1 >"$T/a.out" 2>&1 &
a=$!
sleep 1.2       # the identity B creates is a second younger than A's
t "meanwhile another host (its own spool) creates the identity" push b $N2
sleep 0.5
kill -0 "$a" 2>/dev/null
ok $? "wal-push waits for the host's creation lock instead of creating its own identity"
: >"$T/release-1"
wait "$holder"
wait "$a"
is "$?" 0 "then reads the identity again and archives into it"
known_a=$(cat "$T"/spoolA/"$SYS"/known/r1-* 2>/dev/null)
known_b=$(cat "$T"/spoolB/"$SYS"/known/r1-* 2>/dev/null)
[ -n "$known_a" ] && [ "$known_a" = "$known_b" ]
ok $? "and remembers the identity the region holds ($known_a, as the creator: $known_b)"
t "a later push through the first spool is not refused as another repository" push a $N3
unlike "$T_OUT" "spool knew another one" "... no complaint about the identity"

# an empty region again: nothing is created while the lock is held, and
# the waiting push creates the identity once it is free (a holder that
# keeps it for a minute makes wal-push fail with exit 3: not waited for here)
rm -rf "$T/r1"; mkdir -p "$T/r1"
rm -f "$T"/spoolA/"$SYS"/known/r1-* "$T"/spoolA/"$SYS"/pushed/* 2>/dev/null
hold 2
push a $N1 >"$T/c.out" 2>&1 &
a=$!
sleep 1.5
[ ! -e "$T/r1/identity.json" ] && kill -0 "$a" 2>/dev/null
ok $? "no identity is created while another process holds the lock"
: >"$T/release-2"
wait "$holder"; wait "$a"
is "$?" 0 "once it is free, the waiting push creates it"
[ -e "$T/r1/identity.json" ]
ok $? "... identity.json exists"

done_testing
