#!/usr/bin/env bash
# Command-line edges that meant something else than they looked (each
# found by a review of the adversarial passes' leftovers):
# - 'wal-push %p -h' and 'wal-fetch %f %p -h' printed help and exited 0,
#   which archive_command and restore_command read as "done";
# - 'wal-fetch --skip-region R' with a misspelt R skipped nothing;
# - two regions whose names differ only in case were both accepted;
# - backup-push and status took the next option as an option's value
#   ('--pgdata --incremental');
# - the background shipper wal-push starts did not get its --log-level.
# file:// regions, no server.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

cd "$T" || exit 1
mkdir -p ra rb pg_wal/archive_status global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
SEG=000000010000000000000001
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/$SEG $SEG 7311234567890123456
printf '[region ra]\nurl = file://%s/ra\n[region rb]\nurl = file://%s/rb\n' "$T" "$T" >w.conf
chmod 600 w.conf

# help where exit 0 means "archived" / "restored"
t_fail "wal-push %p -h: not 0 (archive_command would take it as archived)" 2 \
  "$WALSHIP" --config "$T/w.conf" wal-push pg_wal/$SEG -h
like "$T_OUT" "exit status 0 would say the file was archived" "  says why"
test ! -e "$T/ra/wal/$SEG"; ok $? "  and archived nothing"
t_fail "wal-fetch %f %p --help: 250, not 0" 250 \
  "$WALSHIP" --config "$T/w.conf" wal-fetch $SEG pg_wal/RECOVERYXLOG --help
test ! -e pg_wal/RECOVERYXLOG; ok $? "  and wrote nothing"
touch standby.signal
t_fail "on a standby: 1" 1 "$WALSHIP" --config "$T/w.conf" wal-fetch $SEG pg_wal/RECOVERYXLOG -h
rm -f standby.signal
t "wal-push --help alone is still help" "$WALSHIP" wal-push --help
like "$T_OUT" "usage: walship wal-push" "  the usage"
t "walship help wal-fetch" "$WALSHIP" help wal-fetch
t "restore --pgdata X --help is help (its exit 0 restores nothing)" "$WALSHIP" restore --pgdata "$T/x" --help

# --skip-region names a configured region
t "wal-push to both regions" "$WALSHIP" --config "$T/w.conf" wal-push pg_wal/$SEG
t_fail "wal-fetch --skip-region rA (misspelt): refused, 250" 250 \
  "$WALSHIP" --config "$T/w.conf" wal-fetch $SEG pg_wal/RECOVERYXLOG --no-prefetch --skip-region rA
like "$T_OUT" "--skip-region \"rA\": no region of that name is configured" "  names it"
t "wal-fetch --skip-region rb: served by ra" \
  "$WALSHIP" --config "$T/w.conf" wal-fetch $SEG pg_wal/RECOVERYXLOG --no-prefetch --skip-region rb
cmp -s pg_wal/RECOVERYXLOG pg_wal/$SEG; ok $? "  the same bytes"
rm -f pg_wal/RECOVERYXLOG

# region names differing only in case
printf '[region eu]\nurl = file://%s/ra\n[region EU]\nurl = file://%s/rb\n' "$T" "$T" >case.conf
chmod 600 case.conf
t_fail "regions eu and EU: refused" 2 "$WALSHIP" --config "$T/case.conf" config check
like "$T_OUT" "differs from region \"eu\" only in case" "  says which"

# an option taken as another's value
t_fail "backup-push --pgdata --incremental: usage error" 2 \
  "$WALSHIP" --config "$T/w.conf" backup-push --pgdata --incremental
like "$T_OUT" "--pgdata needs a value, and \"--incremental\" is an option" "  names both"
t_fail "backup-push --part-size with no value: usage error" 2 "$WALSHIP" --config "$T/w.conf" backup-push --part-size
t_fail "status --standby --json: usage error" 2 "$WALSHIP" --config "$T/w.conf" status --standby --json
like "$T_OUT" "--standby needs a value" "  says so"
t_fail "status --pg-user --prometheus: usage error" 2 "$WALSHIP" --config "$T/w.conf" status --pg-user --prometheus

# the shipper gets wal-push's --log-level
rm -rf ra/* rb/*
printf '[global]\nspool_dir = %s/spool\n[region ra]\nurl = file://%s/ra\nmode = async\n' "$T" "$T" >a.conf
chmod 600 a.conf
on_exit "ws_stop_daemons '$T/spool'"
t "wal-push --log-level error to an async region" \
  "$WALSHIP" --config "$T/a.conf" --log-level error wal-push pg_wal/$SEG
wait_for 60 test -f "$T/ra/wal/$SEG"
ok $? "the shipper delivered it"
sleep 1
log=$(cat "$T"/spool/*/ship.log 2>/dev/null)
if printf '%s\n' "$log" | grep -q "INFO:"; then ok 1 "the shipper logged at info though wal-push had --log-level error"
else ok 0 "the shipper logged at wal-push's --log-level (no INFO line)"; fi

done_testing
