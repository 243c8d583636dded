#!/usr/bin/env bash
# Adversarial pass Z: --region was checked (a region of that name must be
# configured) and then ignored, without a word, by the commands that work on
# every region: 'walship --region r1 wal-push %p' archived to r2 as well,
# 'walship --region r1 backup-push' backed up everywhere, and ship, copy,
# config check and keygen took it too.  Refused now (exit 2); with --from,
# --region still names the one region; the commands that honour it take it.
# file:// regions, no server.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p r1 r2 pg_wal/archive_status global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/000000010000000000000001 000000010000000000000001 7311234567890123456
printf '[global]\nspool_dir = %s/spool\n[region r1]\nurl = file://%s/r1\n[region r2]\nurl = file://%s/r2\n' "$T" "$T" "$T" >c.conf
chmod 600 c.conf
ws() { "$WALSHIP" --config "$T/c.conf" "$@"; }

t_fail "--region r1 wal-push: refused, not ignored" 2 ws --region r1 wal-push pg_wal/000000010000000000000001
like "$T_OUT" "wal-push does not take --region" "  says so"
[ ! -e "$T/r2/wal/000000010000000000000001" ] && [ ! -e "$T/r1/wal/000000010000000000000001" ]
ok $? "  nothing archived"
t_fail "--region r1 backup-push: refused" 2 ws --region r1 backup-push
t_fail "--region r1 ship --once: refused" 2 ws --region r1 ship --once
t_fail "--region r1 copy --from r1 --to r2: refused" 2 ws --region r1 copy --from r1 --to r2
t_fail "--region r1 config check: refused" 2 ws --region r1 config check
t_fail "--region r1 keygen: refused" 2 ws --region r1 keygen "$T/k"
[ ! -e "$T/k" ]; ok $? "  no key written"

t "wal-push without --region archives to every region" ws wal-push pg_wal/000000010000000000000001
t "--region r1 backup-list is honoured" ws --region r1 backup-list
t "--region r2 st ls is honoured" ws --region r2 st ls wal/
t "with --from, --region names the region" "$WALSHIP" --from "file://$T/r1" --region dr config check

done_testing
