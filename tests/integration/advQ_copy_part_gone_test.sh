#!/bin/bash
# walship copy when a part it copied (or took as already there) disappears
# from the destination before the manifest is written (adversarial pass
# Q): a resumed copy takes the parts an interrupted one left as done, and
# if they are older than garbage_hours a `delete` in R2 removes them as an
# abandoned incomplete backup while the WAL is being copied.  copy then
# wrote the manifest, exit 0: a visible backup in R2 without its part,
# which verify reports and no restore can use.  Now the parts are checked
# just before the manifest (as backup-push checks its own): exit 3, no
# manifest, and the next copy repairs it.  An LD_PRELOAD shim removes the
# part at the exact moment (tests/lib/renamehook.c); a real PostgreSQL 15.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

ws_copy_pair
HOOK=$T/renamehook.so
ws_renamehook_build "$HOOK"; ok $? "the rename hook builds (tests/lib/renamehook.c)"

t "a backup into r1" pg_run "$WALSHIP" --config "$T/p.conf" backup-push
N=$(took)
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -e "$T/r1/wal/$last"; ok $? "everything up to $last is archived in r1"
start=$(wc2 backup-list --region r1 --json 2>/dev/null | python3 -c 'import json,sys
for r in json.load(sys.stdin):
    for b in r.get("backups", []):
        if b.get("name") == sys.argv[1]: print(b.get("start_wal", ""))' "$N")
[ -n "$start" ] && [ -e "$T/r1/backups/$N/part-0001" ]; ok $? "backup $N starts at $start and has part-0001"

t_fail "copy while a delete in r2 removes part-0001 before the manifest: exit 3" 3 \
  pg_run env LD_PRELOAD="$HOOK" RENAMEHOOK_SUFFIX="/wal/$start" RENAMEHOOK_UNLINK="$T/r2/backups/$N/part-0001" \
  "$WALSHIP" --config "$T/copy.conf" copy --from r1 --to r2
like "$T_OUT" "not writing the manifest of backup $N into region r2" "...saying why"
[ ! -e "$T/r2/backups/$N/manifest.json" ]; ok $? "...and r2 has no manifest for it"
t "the next copy repairs it" wc2 copy --from r1 --to r2
[ -e "$T/r2/backups/$N/part-0001" ] && [ -e "$T/r2/backups/$N/manifest.json" ]; ok $? "...part and manifest are there"
t "r2 verifies (--full)" wc2 verify --region r2 --full

# The same for the WAL the backup needs: while the backup is not visible
# in r2, its WAL lies before r2's retention cut, and a delete there removes
# it; copy wrote the manifest of a backup r2 could not restore.  A history
# file (put with st put, so it decodes) is published after the backup's
# segments: the hook removes the start segment from r2 then.
rm -rf "$T/r2"/* 
printf '1\t0/3000000\tno recovery target specified\n' >"$T/hist"
chown "$(pg_user)" "$T/hist"
t "a history file into r1 (st put)" pg_run "$WALSHIP" --config "$T/copy.conf" --region r1 st put "$T/hist" wal/00000002.history
t_fail "copy while a delete in r2 removes the backup's start segment before the manifest: exit 3" 3 \
  pg_run env LD_PRELOAD="$HOOK" RENAMEHOOK_SUFFIX="/wal/00000002.history" RENAMEHOOK_UNLINK="$T/r2/wal/$start" \
  "$WALSHIP" --config "$T/copy.conf" copy --from r1 --to r2
like "$T_OUT" "region r2 lacks wal/$start, which backup $N needs" "...naming the segment"
[ ! -e "$T/r2/backups/$N/manifest.json" ]; ok $? "...and r2 has no manifest for it"
t "the next copy repairs it" wc2 copy --from r1 --to r2
[ -e "$T/r2/wal/$start" ] && [ -e "$T/r2/backups/$N/manifest.json" ]; ok $? "...segment and manifest are there"

# A damaged part in r1 is not propagated: nothing of the backup becomes
# visible in r2 (copy authenticates every object on its way).
rm -rf "$T/r2"/*
cp -p "$T/r1/backups/$N/part-0001" "$T/part.good"
python3 -c "
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$T/r1/backups/$N/part-0001"
t_fail "copy of a backup whose part is damaged in r1: exit 3" 3 wc2 copy --from r1 --to r2
like "$T_OUT" "backups/$N/part-0001" "...naming the part"
[ ! -e "$T/r2/backups/$N/manifest.json" ] && [ ! -e "$T/r2/backups/$N/part-0001" ]; ok $? "...neither it nor the manifest is in r2"
cp -p "$T/part.good" "$T/r1/backups/$N/part-0001"

# An object in r1's backup folder that is none of the backup's and does
# not decode (a file dropped there by hand) is left out, with a warning,
# and does not stop the backup's copy.
rm -rf "$T/r2"/*
echo "notes" >"$T/r1/backups/$N/README"
t "copy with a stray object in r1's backup folder" wc2 copy --from r1 --to r2
like "$T_OUT" "backups/$N/README.*not one of backup $N's objects, not copied" "...which is named and left out"
[ ! -e "$T/r2/backups/$N/README" ] && [ -e "$T/r2/backups/$N/manifest.json" ]; ok $? "...and the backup is copied"
t "r2 verifies (--full)" wc2 verify --region r2 --full

done_testing
