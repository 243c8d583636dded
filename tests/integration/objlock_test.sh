#!/bin/bash
# Object Lock (issue 15, item 4): retention against an S3 region whose
# bucket keeps some objects under lock.  Swift has no Object Lock, so the
# fault proxy answers deletes of chosen keys the way S3 does for an object
# version under retention ("lock PATTERN": DELETE gets 403 AccessDenied
# "Access Denied because object protected by object lock.", DeleteObjects
# gets that <Error> per key).  With a real PostgreSQL 15, three backups and
# retain_full = 1: the locked backup stays whole and listed, the other
# expired backup goes except its locked part, the WAL a locked backup needs
# stays, `walship delete` exits 0 and says how many objects are kept under
# Object Lock; once the lock is gone a second delete removes the rest.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r P1 F1 C1 PGPORT <<<"$(free_ports 4 | tr '\n' ' ')"
on_exit "swift_stop $T/s1"
swift_start_regions "$T/s1" us-east-1 "$P1" || { echo "Bail out! swift did not start"; exit 1; }
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
on_exit "fp_stop $T/fp"
fp_start "$F1" "$P1" "$C1" "$T/fp" || { echo "Bail out! proxy"; exit 1; }

CONF=$T/walship.conf
ws_mkdirs "$T/spool"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "retry_deadline = 4" "connect_timeout = 2" "io_timeout = 5" "delete_after_backup = false" \
  "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" locked s3://walship/lock "endpoint = http://127.0.0.1:$F1" "aws_region = us-east-1" \
  "path_style = true" "mode = sync" "retain_full = 1" "access_key_id = test:tester" "secret_access_key = testing"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
wal() { ws st ls wal/ 2>/dev/null | sed -n 's|^wal/\([0-9A-F]\{24\}\)$|\1|p'; }
switch_and_wait() {
  local last
  last=$(sql "select pg_walfile_name(pg_switch_wal())")
  has_wal() { wal | grep -qx "$1"; }
  wait_for 60 has_wal "$last"
}

sql "create table marker (id int primary key)"
for i in 1 2 3; do
  sql "insert into marker values ($i)"
  switch_and_wait
  t "backup-push $i" ws backup-push
  sleep 1.1
done
sql "insert into marker values (99)"
switch_and_wait
ok $? "WAL after the last backup is archived"

mapfile -t B < <(ws backup-list --json | python3 -c "import json,sys; [print(b['name']) for r in json.load(sys.stdin) for b in r['backups']]" | sort)
is "${#B[@]}" 3 "three backups" || { echo "Bail out! the backups failed"; exit 1; }
start_wal() { ws backup-list --json | python3 -c "import json,sys; d=json.load(sys.stdin); print([b for r in d for b in r['backups'] if b['name']=='$1'][0]['start_wal'])"; }
S0=$(start_wal "${B[0]}")
S2=$(start_wal "${B[2]}")
like "$S0" '^[0-9A-F]{24}$' "the oldest backup starts at $S0"
LOW=$(wal | head -1)
[[ "$LOW" < "$S0" ]]
ok $? "a segment older than the oldest backup exists ($LOW)"
PART1=$(ws st ls "backups/${B[1]}/" | grep -v manifest.json | head -1)
like "$PART1" "^backups/${B[1]}/" "the second backup has a data object ($PART1)"

# The bucket keeps: the whole oldest backup, one object of the second, the
# oldest WAL segment.
fp_ctl "$C1" lock "backups/${B[0]}/" "$PART1" "wal/$LOW" >/dev/null
ok $? "proxy: deletes of those keys are refused as under Object Lock"

fp_ctl "$C1" lock walship-probe/ >/dev/null
t "st check on a bucket that keeps its probe object under Object Lock" ws st check
like "$T_OUT" "region locked: the bucket keeps objects under Object Lock: the probe object \"walship-probe/" \
  "... says the probe object stays"
t "st rm of a locked object succeeds" ws st rm "backups/${B[0]}/manifest.json"
like "$T_OUT" "kept under Object Lock until its retention ends" "... and says it is kept"

t "delete with objects under Object Lock exits 0" ws delete
echo "$T_OUT" | sed 's/^/# /'
like "$T_OUT" "region locked: deleted 1 backups" "one backup deleted (the second)"
like "$T_OUT" "region locked: kept under Object Lock: backup ${B[0]}" "the log names the backup kept"
like "$T_OUT" "region locked: deleted backup ${B[1]}" "... and the one deleted"
like "$T_OUT" "region locked: 3 objects are kept under Object Lock until their retention ends \(1 backups stay whole\)" \
  "three objects reported as kept under Object Lock, one backup whole"
! echo "$T_OUT" | grep -q FAILED
ok $? "no failure reported"
is "$(ws backup-list --json | python3 -c "import json,sys; print(' '.join(sorted(b['name'] for r in json.load(sys.stdin) for b in r['backups'])))")" \
  "${B[0]} ${B[2]}" "the locked backup is still listed, the second is gone"
ws st ls "backups/${B[0]}/" | grep -q manifest.json
ok $? "the locked backup keeps its manifest"
is "$(wal | awk -v s="$S0" '$0 < s' | wc -l)" 0 "no WAL before the locked backup's start is left (the locked segment was refused, though Swift, behind the proxy, removed it)"
is "$(wal | awk -v s="$S0" -v e="$S2" '$0 >= s && $0 < e' | wc -l)" \
  "$(printf '%s\n' "$S0" "$S2" | python3 -c "import sys; a,b=[int(l[8:16],16)*256+int(l[16:],16) for l in sys.stdin.read().split()]; print(b-a)")" \
  "the WAL from the locked backup's start to the newest backup's stays"
grep -q "under Object Lock" "$T/fp/faultproxy.log"
ok $? "the proxy answered deletes as Object Lock refusals"

fp_ctl "$C1" unlock >/dev/null
t "delete once the retention has ended" ws delete
echo "$T_OUT" | sed 's/^/# /'
! echo "$T_OUT" | grep -q "Object Lock"
ok $? "nothing is kept any more"
is "$(ws backup-list --json | python3 -c "import json,sys; print(' '.join(b['name'] for r in json.load(sys.stdin) for b in r['backups']))")" \
  "${B[2]}" "only the newest backup is left"
is "$(wal | head -1)" "$S2" "the oldest WAL segment is the newest backup's start"

done_testing
