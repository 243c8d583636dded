#!/bin/bash
# Chains of incremental backups across regions (adversarial pass C):
# backup-push --incremental checks the parent's whole chain in every region
# it writes to with that region's own manifests, as restore and verify load
# them there.  A link whose manifest one region lost or holds damaged gets a
# full backup (saying why), never an incremental that backup-push reports
# "ok" in that region and that no restore from it can use; nor one whose
# parent goes just as its manifest is written.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"   # free_ports
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT <<<"$(free_ports 1)"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo1" "$T/repo2" "$T/get"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "compression = zstd:3" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo1" "mode = sync"
ws_region "$CONF" two "file://$T/repo2" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "autovacuum = off"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
newest() { ls "$T/repo1/backups" | tail -1; }
mtype() {   # NAME REGION-DIR: full or incr, from the manifest
  rm -f "$T/get/m.json"
  ws st get "backups/$1/manifest.json" "$T/get/m.json" --region "$2" >/dev/null 2>&1
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["type"])' "$T/get/m.json" 2>/dev/null
}
flip() { python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(bytes(b))' "$1"; }
change() { sql "update pgbench_accounts set abalance = abalance + 1 where aid between $1 and $(($1 + 2000))"; }

pg_run "$PG_BIN/pgbench" -i -s 2 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1

# ---- the full backup's manifest lost in the second region only ----
t "full backup" ws backup-push
F=$(newest)
change 1000
t "an incremental of it" ws backup-push --incremental
I1=$(newest)
like "$T_OUT" "is an incremental of backup $F" "its parent is the full backup"
mkdir -p "$T/away"
mv "$T/repo2/backups/$F/manifest.json" "$T/away/"
change 50000
t "an incremental whose chain lost its full backup's manifest in region two" ws backup-push --incremental
N=$(newest)
unlike "$T_OUT" "is an incremental of" "is not an incremental"
like "$T_OUT" "chain of backup $I1 cannot be read in region two" "is a full backup, and names the chain and the region"
is "$(mtype "$N" two)" "full" "its manifest in region two says full"
d=$T/f1
mkdir -p "$d"; chown "$(pg_user)" "$d"
t "and it restores from region two" ws backup-fetch "$N" "$d/data" --region two
mv "$T/away/manifest.json" "$T/repo2/backups/$F/"

# ---- a middle link's manifest damaged in the second region only ----
change 90000
t "an incremental of the new full backup" ws backup-push --incremental
J1=$(newest)
change 120000
t "an incremental of that incremental" ws backup-push --incremental
J2=$(newest)
like "$T_OUT" "is an incremental of backup $J1" "its parent is the first incremental"
cp "$T/repo2/backups/$J1/manifest.json" "$T/away/j1.json"
flip "$T/repo2/backups/$J1/manifest.json"
change 150000
pg_run "$WALSHIP" --config "$CONF" backup-push --incremental >"$T/j3.out" 2>&1
J3=$(newest)
unlike "$(cat "$T/j3.out")" "is an incremental of" "an incremental over a chain whose middle manifest is damaged in region two is not taken"
like "$(cat "$T/j3.out")" "chain of backup $J2 cannot be read in region two" "... a full backup, saying why"
is "$(mtype "$J3" two)" "full" "its manifest in region two says full"
cp "$T/away/j1.json" "$T/repo2/backups/$J1/manifest.json"

# with every link whole again, incrementals resume
change 180000
t "an incremental once the chain is whole again" ws backup-push --incremental
like "$T_OUT" "is an incremental of backup $J3" "its parent is the newest backup"
t "verify finds nothing" ws verify

# ---- the parent taken from one region while the incremental runs ----
# (a `delete` on another host, or one run where the regions diverged): the
# parent is chosen and its chain checked when the backup starts; the
# manifest is written only if the parent is still there, checked again
P=$(newest)
ws_renamehook_build "$T/renamehook.so" || { echo "Bail out! renamehook"; exit 1; }
cp -p "$T/repo2/backups/$P/manifest.json" "$T/away/p.json"
change 200000
out=$(pg_run env LD_PRELOAD="$T/renamehook.so" RENAMEHOOK_SUFFIX=/backup_label \
  RENAMEHOOK_UNLINK="$T/repo2/backups/$P/manifest.json" "$WALSHIP" --config "$CONF" backup-push --incremental 2>&1)
is "$?" 3 "an incremental whose parent's manifest went from region two while it ran: backup-push fails (exit 3)"
R=$(newest)
like "$out" "not writing the manifest of incremental backup $R: its parent, backup $P, cannot be read in region two" \
  "... and says why, naming the backup, its parent and the region"
[ ! -e "$T/repo2/backups/$R/manifest.json" ]; ok $? "... no manifest in region two: the backup does not exist there"
[ -e "$T/repo1/backups/$R/manifest.json" ]; ok $? "... region one, whose chain is whole, has it"
cp -p "$T/away/p.json" "$T/repo2/backups/$P/manifest.json"
t "verify finds nothing once it is back" ws verify

# ---- the parent taken from region one just as the child's manifest is
# written (after the check above): backup-push said "one ok", exit 0, over
# a parent that was gone, an incremental no restore from region one could
# use (adversarial pass P); now the manifest goes again and it fails ----
change 210000
t "an incremental in both regions" ws backup-push --incremental
Q=$(newest)
cp -p "$T/repo1/backups/$Q/manifest.json" "$T/away/q.json"
change 220000
out=$(pg_run env LD_PRELOAD="$T/renamehook.so" RENAMEHOOK_SUFFIX=/manifest.json \
  RENAMEHOOK_UNLINK="$T/repo1/backups/$Q/manifest.json" "$WALSHIP" --config "$CONF" backup-push --incremental 2>&1)
is "$?" 3 "an incremental whose parent's manifest went from region one as its own was written: backup-push fails (exit 3)"
R2=$(ls "$T/repo2/backups" | tail -1)
like "$out" "incremental backup $R2: its parent, backup $Q, went from region one as its manifest was written" \
  "... naming the backup, its parent and the region"
[ ! -e "$T/repo1/backups/$R2/manifest.json" ]; ok $? "... its manifest in region one was removed again"
[ -e "$T/repo2/backups/$R2/manifest.json" ]; ok $? "... region two, whose chain is whole, has it"
cp -p "$T/away/q.json" "$T/repo1/backups/$Q/manifest.json"
t "verify finds nothing once the parent is back" ws verify

# ---- copy: a chain whose middle link the source lacks and whose full
# backup the destination lacks.  copy stopped at the first link the
# destination held and made the incremental visible there without its
# full backup, exit 0, though the source had it (adversarial pass P) ----
t "a full backup" ws backup-push
CF=$(newest)
change 230000
t "an incremental of it" ws backup-push --incremental
CI1=$(newest)
change 240000
t "an incremental of that" ws backup-push --incremental
CI2=$(newest)
C3=$T/c3.conf
ws_mkdirs "$T/repo3"
ws_conf "$C3"
ws_region "$C3" one "file://$T/repo1"
ws_region "$C3" three "file://$T/repo3"
ws3() { pg_run "$WALSHIP" --config "$C3" "$@"; }
t "copy the chain up to its first incremental into region three" ws3 copy --from one --to three --since "$CI1"
rm -rf "$T/repo3/backups/$CI2"                                 # (--since copies the newer ones too)
mv "$T/repo3/backups/$CF" "$T/away/cf3"                       # region three lost the full backup
mv "$T/repo1/backups/$CI1/manifest.json" "$T/away/ci1.json"    # region one the first incremental's manifest
t "copy of the second incremental: the full backup comes from region one" ws3 copy --from one --to three --since "$CI2"
[ -e "$T/repo3/backups/$CF/manifest.json" ]; ok $? "... the full backup region three lacked is copied"
d=$T/f3
mkdir -p "$d"; chown "$(pg_user)" "$d"
t "... and the second incremental restores from region three" ws3 backup-fetch "$CI2" "$d/data" --region three
rm -rf "$T/repo3/backups/$CF" "$T/repo3/backups/$CI2"
mv "$T/repo1/backups/$CF/manifest.json" "$T/away/cf1.json"     # and now region one lacks it too
t_fail "with the full backup in neither region, copy refuses" 3 ws3 copy --from one --to three --since "$CI2"
like "$T_OUT" "not copying backup $CI2: it needs backup $CF \(the parent of $CI1\)" "... naming the link"
[ ! -e "$T/repo3/backups/$CI2/manifest.json" ]; ok $? "... and the incremental is not visible in region three"
mv "$T/away/cf1.json" "$T/repo1/backups/$CF/manifest.json"

# ---- status: the newest backup of region one is an incremental whose
# chain is broken there (its parent's manifest is gone): it was reported
# as the region's fresh newest backup, though no restore could use it ----
ws status --json >"$T/st.json" 2>/dev/null
st_field() { python3 -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1]))["regions"] if x["region"]=="one"][0]; print(r[sys.argv[2]] or "")' "$T/st.json" "$1"; }
is "$(st_field backup)" "$CF" "status: region one's newest usable backup is the full backup"
like "$(st_field error)" "backup $CI2 cannot be restored: it needs backup $CI1 \(the parent of $CI2\)" \
  "... and the broken incremental is named, passed over"

# ---- restore --target-latest from that region: it chose the broken
# incremental and refused, though the full backup restores with the WAL
# the region holds; now it falls back to it, saying why (as for a start
# segment not archived) ----
d=$T/rl
mkdir -p "$d"; chown "$(pg_user)" "$d"
t "restore --target-latest from region one, whose newest chain is broken" \
  ws restore --region one --pgdata "$d/data" --target-latest
like "$T_OUT" "backup $CI2 needs backup $CI1 .*: restoring from backup $CF instead" "... falls back to the full backup, saying why"
[ -e "$d/data/backup_label" ]; ok $? "... and restores it"
d=$T/rl2
mkdir -p "$d"; chown "$(pg_user)" "$d"
t_fail "with --backup naming the broken incremental, restore refuses" 3 \
  ws restore --region one --pgdata "$d/data" --target-latest --backup "$CI2"
like "$T_OUT" "needs backup $CI1" "... naming the missing link"
mv "$T/away/ci1.json" "$T/repo1/backups/$CI1/manifest.json"
ws status --json >"$T/st.json" 2>/dev/null
is "$(st_field backup)" "$CI2" "status: with the chain whole again, the incremental is the newest backup"

done_testing
