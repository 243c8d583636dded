#!/bin/bash
# status and a newest backup that cannot be restored: its manifest does not
# load (bit rot, a stray folder whose name sorts last).  status used to
# show it as the newest backup, stopped when its manifest object was
# written, and exit 0 however old the last usable backup was.  Now it is
# named and passed over: the newest backup whose manifest loads is the one
# judged against backup_max_age; with none, the region has no backup.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_conf "$T/c.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
# the monitoring host: no primary to ask, a day's backup_max_age
ws_conf "$T/mon.conf" "backup_max_age = 1d" "rpo_seconds = 1d"
ws_region "$T/mon.conf" r1 "file://$T/r1"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
mon() { pg_run "$WALSHIP" --config "$T/mon.conf" "$@"; }
took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }
SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds (tests/lib/clockshift.c)"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"

t "a backup taken two days ago (the clock shim)" \
  pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=-172800 "$WALSHIP" --config "$T/c.conf" backup-push
OLD=$(took)
t "a backup now" w backup-push
NEW=$(took)
[ -n "$OLD" ] && [ -n "$NEW" ] && [ "$OLD" \< "$NEW" ]; ok $? "two backups ($OLD, $NEW)"
t "status: the new backup is fresh" mon status

# the newest backup's manifest is damaged
python3 - "$T/r1/backups/$NEW/manifest.json" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0x40; open(p, 'wb').write(b)
PY
t_fail "status alarms: the newest backup that loads is two days old (exit 2)" 2 mon status
like "$T_OUT" "newest backup: +$OLD .*<- older than backup_max_age" "it names the usable one, too old"
like "$T_OUT" "error: .*$NEW.*passed over" "and the damaged one"
t_fail "status --json (exit 2)" 2 mon status --json
out=$(mon status --json 2>/dev/null)
is "$(json '(d["regions"][0]["backup"], d["regions"][0]["alarm_backup_age"])' <<<"$out")" "('$OLD', True)" \
  "JSON: backup and alarm_backup_age"
t_fail "status --prometheus (exit 2)" 2 mon status --prometheus
like "$T_OUT" 'walship_alarm\{region="r1"\} 1' "prometheus: walship_alarm is 1"

# a stray folder whose name sorts after every backup, with a "manifest"
rm -rf "$T/r1/backups/$NEW"
mkdir -p "$T/r1/backups/zz-manual-copy"
echo '{}' >"$T/r1/backups/zz-manual-copy/manifest.json"
ws_own "$T/r1"
t_fail "status: a stray folder is not a fresh backup (exit 2)" 2 mon status
like "$T_OUT" "newest backup: +$OLD " "the newest backup is still $OLD"

# no manifest that loads: no backup
rm -rf "$T/r1/backups/$OLD"
t_fail "status with no loadable backup (exit 2)" 2 mon status
like "$T_OUT" "newest backup: +none" "says none"

done_testing
