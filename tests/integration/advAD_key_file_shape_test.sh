#!/bin/bash
# Adversarial pass AD: key files that are not a key.
#   - a hex key file cut short at 32 bytes (read while an in-place rewrite
#     was half done, or truncated) was taken as a *raw* 32-byte key: a
#     different key, silently.  wal-push encrypted with it and exited 0,
#     and the segment could be read by no configured key (the real key
#     says "key id ... not among the configured keys");
#   - so was a 31-digit hex key with its newline (32 bytes);
#   - a FIFO as key_file: open(2) waited for a writer for ever, and
#     wal-push (PostgreSQL's archiver) and wal-fetch hung with it.
# A raw 32-byte key still works.  file:// region, no server.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000031
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1" "$T/out"
n() { printf '0000000100000000000000%02X' "$1"; }
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n "$1")" "$(n "$1")" "$SYS" --seed "$1" >/dev/null; }
conf() {   # NAME KEYFILE [REGIONDIR]
  { printf '[global]\nkey_file = %s\npgdata = %s\nspool_dir = %s\nretry_deadline = 5\n' "$2" "$T/pg" "$T/spool"
    printf '\n[region r1]\nurl = file://%s\nmode = sync\n' "${3:-$T/r1}"; } >"$T/$1.conf"
  chmod 600 "$T/$1.conf"
}
w() { local c=$1; shift; timeout 60 "$WALSHIP" --config "$T/$c.conf" "$@"; }

"$WALSHIP" keygen "$T/key" >/dev/null 2>&1; ok $? "keygen"
conf good "$T/key"
seg 1
t "the real key: segment 1 archived" w good wal-push "$T/pg/pg_wal/$(n 1)"

# ---- the first 32 bytes of the hex key, archiving into a new region ----
# (an existing region's identity would refuse the other key; a new one
# took it, and the repository was the cut key's from then on)
head -c 32 "$T/key" >"$T/key32"; chmod 600 "$T/key32"
mkdir -p "$T/r3"
conf cut "$T/key32" "$T/r3"
conf good3 "$T/key" "$T/r3"
seg 2
t_fail "a hex key cut short at 32 bytes: wal-push refuses it (exit 2)" 2 w cut wal-push "$T/pg/pg_wal/$(n 2)"
like "$T_OUT" 'does not hold a key.*cut short' "... saying it looks cut short"
[ ! -e "$T/r3/wal/$(n 2)" ] && [ ! -e "$T/r3/identity.json" ]; ok $? "... and nothing was archived under another key"
t "... so the real key archives it there afterwards" w good3 wal-push "$T/pg/pg_wal/$(n 2)"
t "... and reads it back" w good3 wal-fetch "$(n 2)" "$T/out/2c"
t_fail "... wal-fetch with it stops recovery (exit 250), as for any unusable key" 250 \
  w cut wal-fetch "$(n 1)" "$T/out/1"
[ ! -e "$T/out/1" ]; ok $? "... writing nothing"

# ---- 31 hex digits and the newline: 32 bytes too ----
{ head -c 31 "$T/key"; echo; } >"$T/key31"; chmod 600 "$T/key31"
conf cut31 "$T/key31"
t_fail "31 hex digits and a newline (32 bytes): refused (exit 2)" 2 w cut31 wal-push "$T/pg/pg_wal/$(n 2)"

# ---- a FIFO ----
mkfifo -m 600 "$T/fifo"
conf fifo "$T/fifo"
t_fail "a FIFO as key_file: wal-push refuses it at once (exit 2), no hang" 2 w fifo wal-push "$T/pg/pg_wal/$(n 2)"
like "$T_OUT" 'is not a regular file' "... naming it"
t_fail "... wal-fetch too (exit 250)" 250 w fifo wal-fetch "$(n 1)" "$T/out/1"
out=$(timeout 60 "$WALSHIP" --config "$T/fifo.conf" config check 2>&1); rc=$?
[ "$rc" -ne 124 ]; ok $? "... config check returns (exit $rc)"
like "$out" 'is not a regular file' "... and says the key file cannot be used"

# ---- a raw 32-byte key still works ----
printf '\x00\x01\xfe\xff%.0s' 1 2 3 4 5 6 7 8 >"$T/raw"; chmod 600 "$T/raw"
mkdir -p "$T/r2"
sed "s|$T/r1|$T/r2|; s|key_file = .*|key_file = $T/raw|" "$T/good.conf" >"$T/raw.conf"; chmod 600 "$T/raw.conf"
t "a raw 32-byte key: segment 2 archived" w raw wal-push "$T/pg/pg_wal/$(n 2)"
t "... and fetched" w raw wal-fetch "$(n 2)" "$T/out/2"
cmp -s "$T/out/2" "$T/pg/pg_wal/$(n 2)"; ok $? "... as archived"

done_testing
