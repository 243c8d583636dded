#!/bin/bash
# Adversarial pass AD: an async region's repository is encrypted with one
# key; wal-push spooled WAL under keys that could never be shipped there
# or read back, and acknowledged it (exit 0):
#   - key_file removed (encryption "turned off"): the segment was spooled
#     unencrypted; the shipper without a key could not read the region's
#     identity, and once the key was back the shipper put the unencrypted
#     object into the encrypted repository, where wal-fetch refuses it
#     ("refusing an unauthenticated object", exit 250) and verify --full
#     calls it a problem: acknowledged WAL no configuration can restore;
#   - key_file replaced by a new key without the old one in old_key_files:
#     spooled (exit 0), and the shipper cannot read the identity;
#   - the other way round, key_file added over an async repository begun
#     without encryption.
# And the shipper, holding the key, shipped an unencrypted spooled object
# into the encrypted repository (no reader there can decode it): it keeps
# it in the spool now, and says why.
# Now wal-push refuses (the spool remembers the key id of each region's
# identity, spool_dir/SYSID/known/REGION); a proper rotation (new key_file,
# old key in old_key_files) still archives.  file:// region, no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000032
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1" "$T/r2" "$T/out"
"$WALSHIP" keygen "$T/keyA" >/dev/null 2>&1
"$WALSHIP" keygen "$T/keyB" >/dev/null 2>&1
n() { printf '0000000100000000000000%02X' "$1"; }
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n "$1")" "$(n "$1")" "$SYS" --seed "$1" >/dev/null; }
conf() {   # NAME REGIONDIR, then the key lines
  local f=$T/$1.conf r=$2
  shift 2
  { echo "[global]"; printf '%s\n' "$@"; printf 'pgdata = %s\nspool_dir = %s\nretry_deadline = 5\n' "$T/pg" "$T/spool"
    printf '\n[region r1]\nurl = file://%s\nmode = async\n' "$r"; } >"$f"
  chmod 600 "$f"
}
conf a "$T/r1" "key_file = $T/keyA"
conf plain "$T/r1"
conf b "$T/r1" "key_file = $T/keyB"
conf ba "$T/r1" "key_file = $T/keyB" "old_key_files = $T/keyA"
w() { local c=$1; shift; timeout 120 "$WALSHIP" --config "$T/$c.conf" "$@"; }
queued() { local f c=0; for f in "$T/spool/$SYS/queue/"*/"$1"; do [ -e "$f" ] && c=$((c + 1)); done; echo "$c"; }
cleanup() { ws_stop_daemons "$T/spool" >/dev/null 2>&1 || true; }
on_exit cleanup

seg 1; seg 2; seg 3; seg 4
t "key A: segment 1 archived (spooled)" w a wal-push "$T/pg/pg_wal/$(n 1)"
t "... and shipped" w a ship --once
[ -e "$T/r1/wal/$(n 1)" ]; ok $? "... it is in the region"

t_fail "key_file removed: wal-push of segment 2 refuses (exit 3)" 3 w plain wal-push "$T/pg/pg_wal/$(n 2)"
like "$T_OUT" "region r1 holds a repository encrypted with key id .*no key_file" "... naming the region and its key id"
is "$(queued "$(n 2)")" 0 "... and nothing of it is spooled"

t_fail "key_file B without key A in old_key_files: wal-push of segment 3 refuses (exit 3)" 3 \
  w b wal-push "$T/pg/pg_wal/$(n 3)"
like "$T_OUT" "not among the configured keys" "... saying the identity's key is not configured"
is "$(queued "$(n 3)")" 0 "... and nothing of it is spooled"

t "rotated properly (key_file B, old_key_files A): segments 2..4 archived" \
  bash -c "for i in 2 3 4; do timeout 120 '$WALSHIP' --config '$T/ba.conf' wal-push '$T/pg/pg_wal/'\$(printf '0000000100000000000000%02X' \$i) || exit 1; done"
t "... and shipped" w ba ship --once
for i in 1 2 3 4; do
  t "segment $i fetched with the rotated configuration" w ba wal-fetch "$(n "$i")" "$T/out/$i"
  cmp -s "$T/out/$i" "$T/pg/pg_wal/$(n "$i")"; ok $? "... as archived"
done
t "verify --full finds every object readable" bash -c \
  "timeout 120 '$WALSHIP' --config '$T/ba.conf' verify --full | grep -q 'PROBLEM wal/' && exit 1; exit 0"

# st check says which key the identity is read with, one to keep
t "st check after the rotation" w ba st check
like "$T_OUT" "region r1: identity: encrypted with key id [0-9a-f]{32}, an old key \\(old_key_files\\): keep that key" \
  "... names the identity's key as an old key to keep"
t "st check before it" w a st check
like "$T_OUT" "region r1: identity: encrypted with key id [0-9a-f]{32} \\(key_file\\)" "... and as key_file before"

# ---- a region the spool knows without its key id (an older walship's
# known/ file): the keyless push is not caught there, but the shipper,
# holding the key, must not put the unencrypted object into the encrypted
# repository (every reader refuses it there, and the spool's copy would be
# gone); it keeps it, loudly ----
for K in "$T/spool/$SYS/known/"r1-*; do
  awk '{print $1}' "$K" >"$T/known.old" && cat "$T/known.old" >"$K"
done
seg 5
t "an older known/ file: a keyless push of segment 5 is spooled (not checked)" w plain wal-push "$T/pg/pg_wal/$(n 5)"
# the keyless shipper that push started (it cannot read the identity and
# would retry for 10 minutes): once it holds the spool, stop it
wait_for 60 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$T/spool/$SYS/ship.lock')\" ]"
ws_stop_daemons "$T/spool" >/dev/null 2>&1
t_fail "... the shipper with the key refuses to ship it (ship --once exits 3)" 3 w ba ship --once
like "$T_OUT" "spooled \"$(n 5)\" for region r1 is not encrypted, but the region's repository is encrypted" \
  "... saying why"
[ ! -e "$T/r1/wal/$(n 5)" ]; ok $? "... it is not put into the region"
is "$(queued "$(n 5)")" 1 "... and stays in the spool"

# ---- an async repository begun without encryption, key_file added later ----
cleanup
rm -rf "$T/spool"
conf p2 "$T/r2"
conf a2 "$T/r2" "key_file = $T/keyA"
t "no key: segment 1 archived into a second region" w p2 wal-push "$T/pg/pg_wal/$(n 1)"
t "... and shipped" w p2 ship --once
t_fail "key_file added: wal-push of segment 2 refuses (exit 3)" 3 w a2 wal-push "$T/pg/pg_wal/$(n 2)"
like "$T_OUT" "written without encryption" "... saying the repository is unencrypted"
is "$(queued "$(n 2)")" 0 "... and nothing of it is spooled"

done_testing
