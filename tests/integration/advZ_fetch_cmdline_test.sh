#!/usr/bin/env bash
# Adversarial pass Z: a restore_command whose command line walship cannot
# read.  PostgreSQL reads any status from 1 to 125 as "not in the archive"
# (DESIGN.md §5: wal-fetch exits 1 only on a definite "no such object"),
# but a misspelt global option before wal-fetch
# ('walship --confg /etc/walship/walship.conf wal-fetch %f %p', or -c) was
# taken for the command's name, and a misspelt command ('wal_fetch %f %p')
# was unknown: both exited 2, the usage status, which ends recovery there.
# Now both are answered as wal-fetch's own failures: 250 (PostgreSQL stops
# recovery), 1 on a standby (which waits).  What is not a restore_command
# still exits 2.  No server needed.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra pg_wal global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
printf '[region ra]\nurl = file://%s/ra\n' "$T" >w.conf
chmod 600 w.conf
SEG=000000010000000000000001

t_fail "a misspelt --config before wal-fetch: 250, not 2" 250 \
  "$WALSHIP" --confg "$T/w.conf" wal-fetch "$SEG" pg_wal/RECOVERYXLOG
like "$T_OUT" "unknown command \"--confg\"" "  says what it could not read"
t_fail "-c FILE before wal-fetch: 250" 250 "$WALSHIP" -c "$T/w.conf" wal-fetch "$SEG" pg_wal/RECOVERYXLOG
t_fail "--confg=FILE before wal-fetch: 250" 250 "$WALSHIP" --confg="$T/w.conf" wal-fetch "$SEG" pg_wal/RECOVERYXLOG
t_fail "a misspelt command given PostgreSQL's %p (wal_fetch): 250" 250 \
  "$WALSHIP" --config "$T/w.conf" wal_fetch "$SEG" pg_wal/RECOVERYXLOG
t_fail "a misspelt command given pg_wal/RECOVERYHISTORY: 250" 250 \
  "$WALSHIP" --config "$T/w.conf" walfetch 00000002.history pg_wal/RECOVERYHISTORY
touch standby.signal
t_fail "on a standby: 1 (it asks again; a 250 would shut it down)" 1 \
  "$WALSHIP" --confg "$T/w.conf" wal-fetch "$SEG" pg_wal/RECOVERYXLOG
rm -f standby.signal
# what is no restore_command keeps the usage status
t_fail "an unknown command otherwise: 2" 2 "$WALSHIP" --config "$T/w.conf" bogus x y
t_fail "a misspelt option before another command: 2" 2 "$WALSHIP" --confg "$T/w.conf" status
t_fail "a misspelt wal-push (archive_command): 2" 2 "$WALSHIP" --config "$T/w.conf" wal_push pg_wal/$SEG

done_testing
