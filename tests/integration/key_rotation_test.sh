#!/bin/bash
# Key rotation, done and half done (an adversarial review's finding):
# file:// regions and a cluster made of files, no server needed.
#   - key A archives segment 1; after the rotation (key_file = B,
#     old_key_files = A) segment 2 is archived under B and both are fetched;
#   - half done (old_key_files = A, no key_file): wal-push fails, nothing
#     lands in the region, and PostgreSQL keeps the segment.  It used to
#     archive it unencrypted and acknowledge it, and then every
#     configuration holding a key refused it ("refusing an unauthenticated
#     object"), this one included: acknowledged WAL no restore could read;
#   - `config check` says so.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000023
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1" "$T/out"
"$WALSHIP" keygen "$T/keyA" >/dev/null 2>&1
"$WALSHIP" keygen "$T/keyB" >/dev/null 2>&1
n() { printf '0000000100000000000000%02X' "$1"; }
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n "$1")" "$(n "$1")" "$SYS" --seed "$1" >/dev/null; }
conf() {   # FILE, then the key lines
  local f=$1
  shift
  { echo "[global]"; printf '%s\n' "$@"; printf 'pgdata = %s\nspool_dir = %s\nretry_deadline = 5\n' "$T/pg" "$T/spool"
    printf '\n[region r1]\nurl = file://%s\nmode = sync\n' "$T/r1"; } >"$f"
  chmod 600 "$f"
}
conf "$T/a.conf" "key_file = $T/keyA"
conf "$T/b.conf" "key_file = $T/keyB" "old_key_files = $T/keyA"
conf "$T/half.conf" "old_key_files = $T/keyA"
w() { local c=$1; shift; "$WALSHIP" --config "$T/$c.conf" "$@"; }

seg 1
t "key A: segment 1 archived" w a wal-push "$T/pg/pg_wal/$(n 1)"
seg 2
t "rotated (key_file B, old_key_files A): segment 2 archived" w b wal-push "$T/pg/pg_wal/$(n 2)"
t "... segment 1 (key A) fetched after the rotation" w b wal-fetch "$(n 1)" "$T/out/1"
t "... segment 2 (key B) fetched" w b wal-fetch "$(n 2)" "$T/out/2"
cmp -s "$T/out/1" "$T/pg/pg_wal/$(n 1)" && cmp -s "$T/out/2" "$T/pg/pg_wal/$(n 2)"
ok $? "... both as archived"

seg 3
out=$(w half wal-push "$T/pg/pg_wal/$(n 3)" 2>&1); rc=$?
[ "$rc" -ne 0 ]; ok $? "half done (old_key_files, no key_file): wal-push of segment 3 fails (exit $rc)"
like "$out" "no key_file" "... naming the missing key_file"
[ ! -e "$T/r1/wal/$(n 3)" ]; ok $? "... and nothing is in the region under its name"
t_fail "... so wal-fetch says it is not there (exit 1), rather than refuse it forever" 1 \
  w b wal-fetch "$(n 3)" "$T/out/3"
like "$(w half config check 2>&1)" "old_key_files is set but key_file is not" "config check warns about it"
t "the rotation completed: segment 3 archived again" w b wal-push "$T/pg/pg_wal/$(n 3)"
t "... and fetched" w b wal-fetch "$(n 3)" "$T/out/3"
t "the half-done configuration still reads what was archived (key A)" w half wal-fetch "$(n 1)" "$T/out/1h"

# encryption turned on over an archive begun without it: refused (its
# objects could be forged), and the message says what to do
mkdir -p "$T/r2"
sed "s|$T/r1|$T/r2|" "$T/b.conf" | grep -v '^key_file\|^old_key_files' >"$T/plain.conf"
sed "s|$T/r1|$T/r2|" "$T/b.conf" >"$T/b2.conf"
chmod 600 "$T/plain.conf" "$T/b2.conf"
t "an archive begun without encryption: segment 1 archived" w plain wal-push "$T/pg/pg_wal/$(n 1)"
t_fail "key_file set afterwards: wal-push refuses (exit 3)" 3 w b2 wal-push "$T/pg/pg_wal/$(n 2)"
like "$T_OUT" "region r1: the repository identity \\(identity.json\\).*not encrypted" "... naming the region and the object"
like "$T_OUT" "give the region a new, empty prefix and take a full backup there" "... and saying what to do"

done_testing
