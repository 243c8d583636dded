#!/bin/bash
# `walship copy` seeding an empty region, and this host's wal-push creating
# that region's identity at the same moment (adversarial pass W: a copy
# timer and archive_command, once R2 is added to the configuration).  The
# fix of the shipper/wal-push race (known/.create.lock, commit 0f17f2a)
# serialised the creators that go through repo_ident_ensure; copy puts the
# identity of R1 into R2 by another path and did not take the lock.  On a
# store without conditional writes (Swift's s3api) both PUTs can succeed: a
# wal-push whose identity copy then replaced kept its own creation time in
# spool_dir/SYSID/known/ and refused R2 from then on as "another repository
# mounted there".  Copy now takes the host's creation lock, and reads R2's
# identity again once it has it.  file:// regions (where the put itself
# cannot replace: the order is what is checked), a cluster made of files.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v flock >/dev/null || skip_all "flock(1) is not installed"
SYS=7000000000000000051
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
conf() {   # FILE SPOOL REGION...
  local f=$1 sp=$2 r
  shift 2
  printf '[global]\nkey_file = %s\nspool_dir = %s\nparallel = 1\nretry_deadline = 3\n' "$T/key" "$sp" >"$f"
  for r in "$@"; do printf '\n[region %s]\nurl = file://%s\nmode = sync\n' "$r" "$T/$r" >>"$f"; done
}
conf "$T/a.conf" "$T/spoolA" r1
conf "$T/copy.conf" "$T/spoolA" r1 r2
conf "$T/b.conf" "$T/spoolB" r2
mkdir -p "$T/r1" "$T/r2" "$T/spoolA/$SYS/known" "$T/spoolB"
N1=000000010000000000000001
N2=000000010000000000000002
N3=000000010000000000000003
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$1" "$1" "$SYS" --seed "$2" --seg-size 1048576 >/dev/null; }
push() { (cd "$T/pg" && "$WALSHIP" --config "$T/$1.conf" wal-push "pg_wal/$2"); }
seg $N1 1; seg $N2 2; seg $N3 3
t "r1 holds the cluster's repository" push a $N1
# identity.json is an encoded object: r1's copied byte for byte, or another
same_ident() { cmp -s "$T/r1/identity.json" "$T/r2/identity.json"; }

# a wal-push of this host is creating r2's identity (here: flock(1) holds
# the lock until the test has made the identity, 30 s at most)
LOCK=$T/spoolA/$SYS/known/.create.lock
flock "$LOCK" sh -c "i=0; while [ ! -e '$T/made' ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i+1)); done" &
holder=$!
wait_for 10 bash -c "! flock -n '$LOCK' true"
ok $? "the creation lock is held by another process"

"$WALSHIP" --config "$T/copy.conf" copy --from r1 --to r2 >"$T/copy.out" 2>&1 &
c=$!
sleep 1.2
[ ! -e "$T/r2/identity.json" ] && kill -0 "$c" 2>/dev/null
ok $? "copy waits for the host's creation lock instead of putting r1's identity into r2"
# the creator's identity lands meanwhile (through another spool here: a
# creation time of its own, a second younger than r1's)
t "meanwhile the identity of r2 is created" push b $N2
touch "$T/made"
wait "$holder"
wait "$c"
st=$?
diag "$(tail -3 "$T/copy.out")"
is "$st" 0 "then copy reads r2's identity again and copies into it"
[ -s "$T/r2/identity.json" ] && ! same_ident
ok $? "r2 keeps the identity created there (not r1's, copied over it)"
[ -e "$T/r2/wal/$N1" ]; ok $? "... and holds $N1, copied"
t "a wal-push into r2 through the copying host's spool is not refused" push copy $N3
unlike "$T_OUT" "spool knew another one" "... no complaint about the identity"

# nobody creating: copy seeds an empty region with r1's identity, as before
rm -rf "$T/r2"; mkdir -p "$T/r2"
rm -f "$T"/spoolA/"$SYS"/known/r2-*
t "copy into an empty region, the lock free" "$WALSHIP" --config "$T/copy.conf" copy --from r1 --to r2
same_ident; ok $? "... r2's identity is r1's, byte for byte"

# root running copy by hand on a spool that belongs to the user
# archive_command runs as: nothing of root's is made in that spool (a
# directory or lock file there owned by root would be refused as not
# trusted, or could not be locked by its owner), and no spool is made for a
# cluster that has none on this host
if [ "$(id -u)" = 0 ] && id "$(pg_user)" >/dev/null 2>&1; then
  mkdir -p "$T/spoolC/$SYS" "$T/r3"
  chown -R "$(pg_user)" "$T/spoolC"
  conf "$T/c3.conf" "$T/spoolC" r1 r3
  t "copy as root into an empty region, the spool another user's" "$WALSHIP" --config "$T/c3.conf" copy --from r1 --to r3
  [ -z "$(find "$T/spoolC" -user 0)" ]; ok $? "... nothing in that spool belongs to root"
  conf "$T/c4.conf" "$T/spoolD" r1 r4
  mkdir -p "$T/r4"
  t "copy into an empty region, no spool of the cluster on this host" "$WALSHIP" --config "$T/c4.conf" copy --from r1 --to r4
  [ ! -e "$T/spoolD/$SYS" ]; ok $? "... and none is made"
fi

done_testing
