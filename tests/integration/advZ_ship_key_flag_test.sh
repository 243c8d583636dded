#!/usr/bin/env bash
# Adversarial pass Z: a flag wal-push was given did not reach the shipper
# it starts.  With 'walship --config C --key-file K wal-push %p' (C without
# key_file), wal-push encrypted the segment with K and spooled it for the
# async region (exit 0), then started 'walship --config C ship', which had
# no key: every spooled object "does not check" (encrypted, no key_file),
# and the async region never got any WAL while wal-push kept succeeding.
# The shipper now gets --key-file too.  file:// region, no server.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

cd "$T" || exit 1
mkdir -p ra pg_wal/archive_status global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/000000010000000000000001 000000010000000000000001 7311234567890123456
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1; ok $? "keygen"
printf '[global]\nspool_dir = %s/spool\n[region ra]\nurl = file://%s/ra\nmode = async\n' "$T" "$T" >c.conf
chmod 600 c.conf
on_exit "ws_stop_daemons '$T/spool'"

t "wal-push --key-file K to an async region: spooled" \
  "$WALSHIP" --config "$T/c.conf" --key-file "$T/key" wal-push pg_wal/000000010000000000000001
wait_for 60 test -f "$T/ra/wal/000000010000000000000001"
ok $? "the background shipper delivered it to the async region (it had the key)"
! grep -q "does not check" "$T"/spool/*/ship.log 2>/dev/null
ok $? "  and never found a spooled object it could not check"

done_testing
