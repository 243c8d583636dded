#!/usr/bin/env bash
# Adversarial pass Z: a key file of 32 bytes was taken as a raw key whatever
# it held.  A hex key from `walship keygen` pasted without its line end and
# cut at 32 characters (or an AES-128 key in hex, or a passphrase) was
# accepted: WAL was archived, encrypted under a key other than the one kept
# in escrow, which then opens none of it.  32 bytes of printable text are
# refused now (one random raw key in 10^13 is); the same bytes written as
# 64 hex digits are still that key.  file:// region, no server.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra pg_wal/archive_status global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/000000010000000000000001 000000010000000000000001 7311234567890123456
"$WALSHIP" keygen "$T/escrow.key" >/dev/null 2>&1; ok $? "keygen: the key kept in escrow"
head -c 32 "$T/escrow.key" >"$T/cut.key"; chmod 600 "$T/cut.key"
printf '[global]\nkey_file = %s/cut.key\nspool_dir = %s/spool\n[region ra]\nurl = file://%s/ra\n' "$T" "$T" "$T" >w.conf
chmod 600 w.conf

o=$("$WALSHIP" --config "$T/w.conf" wal-push pg_wal/000000010000000000000001 2>&1); st=$?
is "$st" 2 "wal-push with half a hex key (32 hex digits, no line end): exit 2"
like "$o" "holds 32 characters of text" "  says what the file holds"
[ ! -e "$T/ra/wal/000000010000000000000001" ]; ok $? "  nothing archived under the wrong key"
printf 'correct horse battery staple 123' >"$T/cut.key"
o=$("$WALSHIP" --config "$T/w.conf" wal-push pg_wal/000000010000000000000001 2>&1); st=$?
is "$st" 2 "a 32-character passphrase: exit 2"

# these very bytes as the key: written as 64 hex digits, as the message says
od -An -tx1 "$T/cut.key" | tr -d ' \n' >"$T/hex.key"; chmod 600 "$T/hex.key"
sed -i "s|cut.key|hex.key|" w.conf
t "the same bytes as 64 hex digits: archived" "$WALSHIP" --config "$T/w.conf" wal-push pg_wal/000000010000000000000001
# a raw key of 32 random bytes is still read
head -c 32 /dev/urandom >"$T/raw.key"; chmod 600 "$T/raw.key"
o=$("$WALSHIP" --from "file://$T/ra" --key-file "$T/raw.key" config check 2>&1)
unlike "$o" "does not hold a key" "a raw key of 32 random bytes is read"

done_testing
