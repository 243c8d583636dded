#!/bin/bash
# Where restore and backup-fetch put a backup's tablespaces on the DR host,
# when the backup's objects were written by someone who held the key (a
# compromised primary, an insider): adversarial pass Y.  A PostgreSQL 15
# with a tablespace, one backup in a file:// region; then, on the "DR
# host" (this host once the primary's tablespace directory is gone):
#   - run as root, restore and backup-fetch write a tablespace only where
#     the operator named it (--tablespace-map OLD=NEW, OLD=OLD to keep the
#     backup's path): before, root created and filled whatever absent or
#     empty directory the manifest named, and restore did not even say
#     where (docs/RESTORE.md "Restoring as root");
#   - a backup carrying backup_label or tablespace_map as a file of the
#     data directory is refused (exit 3): the file went in unchecked;
#   - modes: a restored file or directory gives group and others no write,
#     and no setuid (PostgreSQL's own never do); a tablespace's directory
#     gets the data directory's mode (before: 0777 when the backup said so);
#   - a manifest whose tablespace path is not canonical ("..", "//") is
#     refused (exit 3) before anything is created;
#   - the backup's tablespace_map must agree with its manifest: a line
#     moving a tablespace elsewhere is refused (exit 3) — before, it was
#     written into the restored tablespace_map, and PostgreSQL linked the
#     tablespace to the map's path, not to where restore had put its files;
#     a line for a tablespace the backup does not hold is left out, with a
#     warning — before, PostgreSQL made a link to the path it named.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
[ "$(id -u)" = 0 ] || skip_all "the DR host's root is what this test is about (run as root)"
on_exit "ws_stop_daemons '$T'"

PGPORT=$(pg_free_port)
CONF=$T/walship.conf
U=$(pg_user)
ws_mkdirs "$T/spool" "$T/repo1" "$T/p/ts" "$T/get"
ws_own "$T/p"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "compression = zstd:3" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
# the DR host: no configuration file, run as root
dr() { env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" "$@"; }
drpg() { pg_run env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
sql "create tablespace ts1 location '$T/p/ts'"
sql "create table tt (id int) tablespace ts1; insert into tt select generate_series(1, 1000); checkpoint"
OID=$(sql "select oid from pg_tablespace where spcname = 'ts1'")
# an include of a path the primary does not have (the DR host may)
echo "include_if_exists = '$T/fifo'" >>"$T/pg/data/postgresql.auto.conf"
t "a backup of a cluster with a tablespace" ws backup-push || { echo "Bail out! backup-push"; exit 1; }
B=$(ls "$T/repo1/backups" | tail -1)
pg_stop "$T/pg"
# the DR host has no directory at the primary's tablespace path
mv "$T/p/ts" "$T/ts-primary"
cp -a "$T/repo1/backups/$B" "$T/orig"
pristine() { rm -rf "$T/repo1/backups/$B"; cp -a "$T/orig" "$T/repo1/backups/$B"; }
put() {   # FILE NAME: re-encode FILE as the backup's object NAME (what a key holder can do)
  chown "$U" "$1"
  ws st rm "backups/$B/$2" >/dev/null 2>&1
  ws st put "$1" "backups/$B/$2" >/dev/null 2>&1
}
ws st get "backups/$B/manifest.json" "$T/get/m.json" >/dev/null 2>&1 &&
  ws st get "backups/$B/tablespace_map" "$T/get/tsmap" >/dev/null 2>&1 &&
  ws st get "backups/$B/part-0001" "$T/get/p.tar" >/dev/null 2>&1
ok $? "(the manifest, the tablespace map and part 1 decoded)"
is "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["parts"]))' "$T/get/m.json")" 1 \
  "(the backup is one part)"
is "$(cat "$T/get/tsmap")" "$OID $T/p/ts" "(the tablespace map names the primary's path)"
fresh() { rm -rf "$T/$1"; mkdir -p "$T/$1"; chown "$U" "$T/$1"; echo "$T/$1"; }

# ---- run as root: a tablespace goes only where the operator said ----
D=$(fresh dr1)
t_fail "restore as root, the backup's tablespace path not named: refused (exit 2)" 2 \
  dr restore --pgdata "$D/data" --target-immediate
like "$T_OUT" "tablespace $OID .*$T/p/ts.*--tablespace-map" "... naming the tablespace, its path and the option"
[ ! -e "$T/p/ts" ]; ok $? "... creating nothing at the backup's path"
[ ! -e "$D/data/backup_label" ]; ok $? "... and fetching nothing"
t_fail "backup-fetch as root, the same: refused (exit 2)" 2 dr backup-fetch "$B" "$D/bf"
[ ! -e "$T/p/ts" ]; ok $? "... creating nothing at the backup's path"
D=$(fresh dr2)
t "restore as root with --tablespace-map OLD=OLD restores at the backup's path" \
  dr restore --pgdata "$D/data" --target-immediate --tablespace-map "$T/p/ts=$T/p/ts"
like "$T_OUT" "tablespace $OID: $T/p/ts" "... and says where the tablespace went"
ls -d "$T"/p/ts/PG_15_* >/dev/null 2>&1; ok $? "... its files are there"
rm -rf "$T/p/ts"
D=$(fresh dr3)
t "restore as root with --tablespace-map OLD=NEW" \
  dr restore --pgdata "$D/data" --target-immediate --tablespace-map "$T/p/ts=$D/ts"
like "$T_OUT" "tablespace $OID: $D/ts" "... says where the tablespace went"
is "$(cat "$D/data/tablespace_map")" "$OID $D/ts" "... the restored tablespace_map names the new path"
D=$(fresh dr4)
t "restore as the server's user needs no --tablespace-map" drpg restore --pgdata "$D/data" --target-immediate
like "$T_OUT" "tablespace $OID: $T/p/ts" "... and says where the tablespace went"
rm -rf "$T/p/ts"

# ---- a manifest's tablespace path that is not canonical ----
for bad in "$T/dr5/ts/../evil" "$T/dr5//evil" "$T/dr5/./evil" "$T/dr5/evil/"; do
  python3 - "$T/get/m.json" "$T/get/m2.json" "$bad" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["tablespaces"][0]["path"] = sys.argv[3]
open(sys.argv[2], "w").write(json.dumps(m, separators=(",", ":")))
PY
  put "$T/get/m2.json" manifest.json
  D=$(fresh dr5)
  t_fail "a manifest placing the tablespace at \"$bad\": refused (exit 3)" 3 \
    drpg restore --pgdata "$D/data" --target-immediate
  like "$T_OUT" "tablespace $OID .*not .*canonical" "... saying why"
  [ ! -e "$D/evil" ]; ok $? "... creating nothing there"
  [ ! -e "$D/data/backup_label" ]; ok $? "... and fetching nothing"
done
pristine

# ---- a tablespace_map that disagrees with the manifest ----
printf '%s %s\n' "$OID" "$T/elsewhere" >"$T/get/tsmap2"
put "$T/get/tsmap2" tablespace_map
D=$(fresh dr6)
t_fail "a tablespace_map moving the tablespace elsewhere than the manifest: refused (exit 3)" 3 \
  drpg restore --pgdata "$D/data" --target-immediate --tablespace-map "$T/p/ts=$D/ts"
like "$T_OUT" "tablespace_map.*$T/elsewhere" "... naming the path it gives"
[ ! -e "$D/data/backup_label" ] && [ ! -e "$D/ts" ]; ok $? "... before anything is fetched"
pristine
printf '%s %s\n%s %s\n' "$OID" "$T/p/ts" 99999 "$T/evil" >"$T/get/tsmap3"
put "$T/get/tsmap3" tablespace_map
D=$(fresh dr7)
t "a tablespace_map with a line for a tablespace the backup does not hold: restored" \
  drpg restore --pgdata "$D/data" --target-immediate --tablespace-map "$T/p/ts=$D/ts"
like "$T_OUT" "tablespace_map.*99999.*left out" "... with a warning naming it"
is "$(cat "$D/data/tablespace_map")" "$OID $D/ts" "... the restored tablespace_map has the backup's tablespace alone"
pristine

# ---- a tablespace_map carried as a file of the data directory ----
# A backup never carries backup_label or tablespace_map as files (PostgreSQL
# returns them; they are objects of their own).  A forged part holding a
# "tablespace_map" file, its manifest saying there is no tablespace_map
# object, put that file in the restored data directory unchecked:
# PostgreSQL linked the tablespace where it said.
cat >"$T/get/addfile.py" <<'PY'
import hashlib, io, json, os, sys, tarfile
src, dst, msrc, mdst, name, text = sys.argv[1:7]
data = text.encode()
tin = tarfile.open(src, "r:")
tout = tarfile.open(dst, "w", format=tarfile.PAX_FORMAT)
for m in tin.getmembers():
    tout.addfile(m, tin.extractfile(m) if m.isfile() else None)
ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o600; ti.mtime = 1700000000
tout.addfile(ti, io.BytesIO(data))
tout.close()
man = json.load(open(msrc))
man["parts"][0]["raw_size"] = os.path.getsize(dst)
man["tablespace_map"] = False
man["files"].append({"path": name, "part": 1, "size": len(data), "mode": 0o600, "mtime": 1700000000,
                     "sha256": hashlib.sha256(data).hexdigest()})
open(mdst, "w").write(json.dumps(man, separators=(",", ":")))
PY
python3 "$T/get/addfile.py" "$T/get/p.tar" "$T/get/p3.tar" "$T/get/m.json" "$T/get/m4.json" tablespace_map \
    "$OID $T/elsewhere
" && put "$T/get/p3.tar" part-0001 &&
  python3 - "$T/get/m4.json" "$(stat -c %s "$T/repo1/backups/$B/part-0001")" <<'PY' && put "$T/get/m4.json" manifest.json
import json, sys
m = json.load(open(sys.argv[1])); m["parts"][0]["stored_size"] = int(sys.argv[2])
open(sys.argv[1], "w").write(json.dumps(m, separators=(",", ":")))
PY
ok $? "(a tablespace_map file added to the part and the manifest, no tablespace_map object)"
D=$(fresh dr11)
t_fail "a backup carrying tablespace_map as a file: refused (exit 3)" 3 \
  dr restore --pgdata "$D/data" --target-immediate --tablespace-map "$T/p/ts=$D/ts"
like "$T_OUT" "tablespace_map" "... naming it"
[ ! -e "$D/data/tablespace_map" ] && [ ! -e "$D/data/backup_label" ]; ok $? "... writing neither"
pristine

# ---- modes: a restore gives nobody else write access ----
# PostgreSQL makes files 0600 (0640) and directories 0700 (0750), and a
# tablespace's directory the data directory's mode; a backup asking for
# more (world-writable directories, a setuid bit) is not followed: before,
# the tablespace's directory came back 0777 and a file 4777 → 0777.
cat >"$T/get/modes.py" <<'PY'
import io, json, sys, tarfile
src, dst, msrc, mdst, oid = sys.argv[1:6]
tin = tarfile.open(src, "r:")
tout = tarfile.open(dst, "w", format=tarfile.PAX_FORMAT)
for m in tin.getmembers():
    data = tin.extractfile(m).read() if m.isfile() else None
    if m.isdir() and m.name.rstrip("/") in ("base", "pg_tblspc/" + oid):
        m.mode = 0o777
    tout.addfile(m, io.BytesIO(data) if data is not None else None)
tout.close()
import os
man = json.load(open(msrc))
man["parts"][0]["raw_size"] = os.path.getsize(dst)
for f in man["files"]:
    if f["path"] == "PG_VERSION":
        f["mode"] = 0o4777
open(mdst, "w").write(json.dumps(man, separators=(",", ":")))
PY
python3 "$T/get/modes.py" "$T/get/p.tar" "$T/get/p2.tar" "$T/get/m.json" "$T/get/m3.json" "$OID" &&
  put "$T/get/p2.tar" part-0001 &&
  python3 - "$T/get/m3.json" "$(stat -c %s "$T/repo1/backups/$B/part-0001")" <<'PY' && put "$T/get/m3.json" manifest.json
import json, sys
m = json.load(open(sys.argv[1])); m["parts"][0]["stored_size"] = int(sys.argv[2])
open(sys.argv[1], "w").write(json.dumps(m, separators=(",", ":")))
PY
ok $? "(the part's directories made 0777, PG_VERSION 4777 in the manifest, re-encoded)"
D=$(fresh dr9)
t "backup-fetch of it as root" dr backup-fetch "$B" "$D/data" --tablespace-map "$T/p/ts=$D/ts"
is "$(stat -c %a "$D/ts")" 700 "... the tablespace's directory gets the data directory's mode (0700), not 0777"
is "$(stat -c %a "$D/data/base")" 755 "... a directory asking for 0777 gets 0755 (no write for others)"
is "$(stat -c %a "$D/data/PG_VERSION")" 755 "... a file asking for 4777 gets 0755 (no setuid, no write for others)"
pristine

# ---- wal-fetch into a directory others can write to ----
# A prefetcher is only ever started for a DEST in pg_wal, and keeps its
# files in DEST's directory/.walship-prefetch.  wal-fetch took a file
# from that directory whoever had made it: run as root by hand into a
# shared directory (wal-fetch SEG /tmp/x/seg, for pg_waldump), it served
# a file "nobody" had planted there, unchecked (no cluster in the working
# directory to check it against), exit 0.
SEG=$(ls "$T/repo1/wal" | grep -E '^[0-9A-F]{24}$' | head -1)
ws st get "wal/$SEG" "$T/get/seg.ref" >/dev/null 2>&1; ok $? "(segment $SEG of the archive decoded)"
SH=$T/shared
for dest in "$SH/seg" "$SH/pg_wal/RECOVERYXLOG"; do
  rm -rf "$SH"; mkdir -p -m 1777 "$SH" "$(dirname "$dest")"; chmod 1777 "$(dirname "$dest")"
  runuser -u nobody -- sh -c 'mkdir "$1/.walship-prefetch" && echo planted >"$1/.walship-prefetch/$2" && echo "$2" >"$1/.walship-prefetch/.end"' \
    sh "$(dirname "$dest")" "$SEG"
  ok $? "(nobody planted $(dirname "$dest")/.walship-prefetch/$SEG)"
  t "wal-fetch as root into $dest" sh -c 'cd / && exec "$@"' sh env WALSHIP_CONFIG= "$WALSHIP" \
    --from "file://$T/repo1" --key-file "$T/key" wal-fetch "$SEG" "$dest" --no-prefetch
  cmp -s "$dest" "$T/get/seg.ref"; ok $? "... it holds the archive's segment, not the planted file"
  is "$(stat -c %U "$dest" 2>/dev/null)" root "... a file of root's own"
done
rm -rf "$SH"

# ---- an include that names a FIFO on the DR host ----
# The backup's postgresql.auto.conf includes $T/fifo, which the DR host
# has as a FIFO (systemd hosts have /run/initctl): restore, reading the
# backup's configuration for recovery settings, opened it and waited for
# a writer for ever, after the fetch.
mkfifo "$T/fifo"
D=$(fresh dr10)
timeout 120 env WALSHIP_CONFIG= "$WALSHIP" --from "file://$T/repo1" --key-file "$T/key" restore \
  --pgdata "$D/data" --target-immediate --tablespace-map "$T/p/ts=$D/ts" >"$T/fifo.out" 2>&1
is "$?" 0 "restore of a backup including a FIFO of the DR host ends (exit 0, no hang)"
like "$(cat "$T/fifo.out")" "$T/fifo .*not checked" "... saying the include was not checked"
rm -f "$T/fifo"

# the pristine backup restores and starts, the tablespace's rows there
D=$(fresh dr8)
RPORT=$(pg_free_port)
t "the pristine backup restores with --start" drpg restore --pgdata "$D/data" --target-immediate \
  --tablespace-map "$T/p/ts=$D/ts" --start --port "$RPORT"
on_exit "[ -f $D/data/postmaster.pid ] && runuser -u postgres -- $PG_BIN/pg_ctl -D $D/data -m immediate stop"
is "$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c 'select count(*) from tt' 2>&1)" \
  1000 "... with the tablespace's rows"
is "$(readlink "$D/data/pg_tblspc/$OID")" "$D/ts" "... linked to the mapped directory"
pg_run "$PG_BIN/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null 2>&1

done_testing
