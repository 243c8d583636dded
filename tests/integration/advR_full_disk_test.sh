#!/bin/bash
# A full disk on either side (adversarial pass R), on small tmpfs mounts:
# a file:// region that fills up (backup-push and the archive_command fail,
# nothing that reads as complete is left, and both work once space is
# freed); backup-fetch and restore into a data directory that fills up
# (exit 3 naming the full disk, no backup_label, no recovery settings; a
# rerun refuses the leftover until it is emptied); wal-fetch into a full
# pg_wal (exit 250, nothing at DEST) and a prefetch directory that fills
# up (never a short segment served; the prefetcher never takes more than
# half the free space; the last segment before the archive's
# end, served by copy, is served by rename when there is no room for the
# copy, not refused with 250); restore to the latest point whose TMPDIR
# fills up with pg_waldump's output (exit 3, never a promotion short of
# the archive's end); and a disk that fails the fsync of
# the data directory once backup_label is renamed into it (the fetch fails
# and backup_label goes again: a directory without it never looks like a
# complete backup).  Needs root (mount).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
[ "$(id -u)" = 0 ] || skip_all "needs root to mount a tmpfs"
mkdir -p "$T/probe"
mount -t tmpfs -o size=1m tmpfs "$T/probe" 2>/dev/null || skip_all "cannot mount a tmpfs here"
umount "$T/probe"

MOUNTS=()
tmpfs() {   # DIR SIZE: a tmpfs of SIZE at DIR, owned by the PostgreSQL user, unmounted at exit
  mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" || return 1
  chown "$(pg_user)" "$1"
  MOUNTS+=("$1")
}
unmount_all() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null; done
}
on_exit unmount_all
on_exit "ws_stop_daemons '$T'"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool"
tmpfs "$T/r1" 96m || { echo "Bail out! mount"; exit 1; }
ws_key "$T/key"
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/p.conf" "$@"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
pg_run "$PG_BIN/pgbench" -i -s 1 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
t "backup-push" ws backup-push
manifests() { find "$T/r1/backups" -name manifest.json | wc -l; }
archived() { sql "select coalesce(last_archived_wal, '') from pg_stat_archiver"; }

# ---- the region's disk fills up ----
dd if=/dev/zero of="$T/r1/filler" bs=1M >/dev/null 2>&1
t_fail "backup-push into a full region: exit 3" 3 ws backup-push
like "$T_OUT" "No space left on device" "...naming the full disk"
is "$(manifests)" 1 "...and no manifest written for it"
sql "create table during_full as select generate_series(1, 1000) i"
seg=$(sql "select pg_walfile_name(pg_current_wal_lsn())")
sql "select pg_switch_wal()" >/dev/null
wait_for 30 bash -c "[ \"\$(runuser -u postgres -- $PG_BIN/psql -X -At -h $T/pg/sock -p $PGPORT -U postgres -d postgres -c 'select failed_count from pg_stat_archiver')\" -gt 0 ]"
ok $? "the archive_command fails while the region is full"
[ ! -e "$T/r1/wal/$seg" ]; ok $? "...and $seg is not in the region"
is "$(find "$T/r1" -name '.walship-tmp-*' | wc -l)" 0 "...nor any temp file of the failed writes"
rm -f "$T/r1/filler"
wait_for 60 bash -c "[ -e '$T/r1/wal/$seg' ]"
ok $? "once space is freed, PostgreSQL's retry archives $seg"
t "backup-push works again" ws backup-push
is "$(manifests)" 2 "...two complete backups"
t "verify accepts the region" ws verify
# more segments after the last backup, for the wal-fetch cases
for i in 1 2 3 4 5; do sql "create table more$i as select generate_series(1, 1000) i; select pg_switch_wal()" >/dev/null; done
last=$(sql "select pg_walfile_name(pg_current_wal_lsn())")
sql "select pg_switch_wal()" >/dev/null
wait_for 60 bash -c "[ -e '$T/r1/wal/$last' ]"
ok $? "WAL up to $last is archived"

# ---- backup-fetch and restore into a disk that fills up ----
tmpfs "$T/bf" 8m
t_fail "backup-fetch into a full disk: exit 3" 3 ws backup-fetch LATEST "$T/bf/data"
like "$T_OUT" "No space left on device" "...naming the full disk"
unlike "$T_OUT" "^restored backup" "...and never saying restored"
[ ! -e "$T/bf/data/backup_label" ]; ok $? "...no backup_label: the directory never looks complete"
mount -o remount,size=256m "$T/bf"
t_fail "a rerun once space is freed refuses the leftover (exit 2)" 2 ws backup-fetch LATEST "$T/bf/data"
like "$T_OUT" "is not empty" "...saying why"
rm -rf "$T/bf/data"
t "...and, emptied, the backup is fetched" ws backup-fetch LATEST "$T/bf/data"
[ -s "$T/bf/data/backup_label" ]; ok $? "...with its backup_label"

tmpfs "$T/rs" 8m
t_fail "restore into a full disk: exit 3" 3 ws restore --pgdata "$T/rs/data"
like "$T_OUT" "No space left on device" "...naming the full disk"
unlike "$T_OUT" "recovery settings written|restore complete" "...and never saying it restored"
[ ! -e "$T/rs/data/recovery.signal" ] && [ ! -e "$T/rs/data/backup_label" ]
ok $? "...no backup_label, no recovery.signal"

# ---- wal-fetch into a full pg_wal ----
D=$T/bf/data
first=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]*\))$/\1/p' "$D/backup_label")
tmpfs "$D/pg_wal" 8m
wf() { (cd "$D" && pg_run "$WALSHIP" --config "$T/p.conf" wal-fetch "$1" pg_wal/RECOVERYXLOG); }
t_fail "wal-fetch $first into a pg_wal with room for half a segment: exit 250" 250 wf "$first"
like "$T_OUT" "No space left on device" "...naming the full disk"
like "$T_OUT" 'could not write "pg_wal/RECOVERYXLOG"' "...and the file it could not write"
is "$(ls -A "$D/pg_wal")" "" "...and nothing left in pg_wal: no RECOVERYXLOG, no temp file"

# a pg_wal with room for RECOVERYXLOG and a prefetched segment or two:
# the prefetcher runs out of room; what it serves later is whole
mount -o remount,size=40m "$D/pg_wal"
segs=$(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | awk -v f="$first" '$0 >= f')
ws_mkdirs "$T/cmp"
bad=0 served=0
for s in $segs; do
  rm -f "$D/pg_wal/RECOVERYXLOG"     # as PostgreSQL does before it asks
  wf "$s" >"$T/wf.out" 2>&1
  st=$?
  if [ "$st" = 0 ]; then
    served=$((served + 1))
    ws st get "wal/$s" "$T/cmp/want" >/dev/null 2>&1
    cmp -s "$T/cmp/want" "$D/pg_wal/RECOVERYXLOG" || { bad=1; diag "$s: RECOVERYXLOG differs from the archive"; }
  elif [ "$st" = 250 ]; then
    [ ! -e "$D/pg_wal/RECOVERYXLOG" ] || { bad=1; diag "$s: exit 250 left a RECOVERYXLOG"; }
  else
    bad=1; diag "$s: exit $st: $(tail -2 "$T/wf.out")"
  fi
  sleep 0.3    # the prefetcher at work meanwhile
done
is "$bad" 0 "wal-fetch beside a prefetch directory that fills up: every segment whole, or exit 250 and nothing"
[ "$served" -gt 0 ]; ok $? "...($served of $(wc -w <<<"$segs") served)"
short=$(find "$D/pg_wal/.walship-prefetch" -regextype posix-extended -regex '.*/[0-9A-F]{24}' ! -size 16384k 2>/dev/null)
is "$short" "" "...and no short segment under its name in the prefetch directory"
ws_stop_daemons "$D/pg_wal"

# the prefetcher (parallel 2: a window of 8 segments) takes at most half
# the free space of pg_wal's file system: the rest is PostgreSQL's
fresh_pg_wal() {
  umount "$D/pg_wal" && mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$D/pg_wal" && chown "$(pg_user)" "$D/pg_wal"
}
fresh_pg_wal 96m
rm -f "$D/pg_wal/RECOVERYXLOG"
t "wal-fetch $first into a pg_wal of 96 MB" wf "$first"
sleep 3
ws_stop_daemons "$D/pg_wal"
avail=$(df -k --output=avail "$D/pg_wal" | tail -1)
[ "$avail" -ge $(((96 - 16) * 1024 / 2)) ]
ok $? "...the prefetcher left at least half of the 80 MB free beside RECOVERYXLOG ($avail KiB free)"
fresh_pg_wal 320m
t "wal-fetch $first into a pg_wal of 320 MB" wf "$first"
wait_for 60 bash -c "ls '$D/pg_wal/.walship-prefetch' | grep -qE '^[0-9A-F]{24}\$'"
ok $? "...where the window fits twice, it prefetches"
ws_stop_daemons "$D/pg_wal"

# the last segment before the archive's end is served by copy (PostgreSQL
# reads it twice); with no room left for the copy, by rename
fresh_pg_wal 320m
prev=$(awk -v l="$last" '$0 < l' <<<"$segs" | tail -1)
t "wal-fetch $prev (the one before the last)" wf "$prev"
wait_for 60 bash -c "[ \"\$(cat '$D/pg_wal/.walship-prefetch/.end' 2>/dev/null)\" = '$last' ] && [ -e '$D/pg_wal/.walship-prefetch/$last' ]"
ok $? "...the prefetcher holds $last, the last before the archive's end"
rm -f "$D/pg_wal/RECOVERYXLOG"
dd if=/dev/zero of="$D/pg_wal/filler" bs=1M >/dev/null 2>&1
t "wal-fetch $last into a pg_wal with no room for a copy of it: served by rename (exit 0)" wf "$last"
ws st get "wal/$last" "$T/cmp/want" >/dev/null 2>&1
cmp -s "$T/cmp/want" "$D/pg_wal/RECOVERYXLOG"; ok $? "...the whole segment"
ws_stop_daemons "$D/pg_wal"

# ---- restore to the latest point with a TMPDIR that fills up ----
# The end of the archive is the last record pg_waldump prints for the
# newest segment, its output a file in TMPDIR: cut short by a full disk
# (pg_waldump does not check its writes) it named an earlier record, and
# restore promoted there, "restore complete", the last transactions gone.
sql "create table big as select g, repeat('x', 200) pad from generate_series(1, 200000) g"
sql "create table marker as select 'the last transaction' what"
endseg=$(sql "select pg_walfile_name(pg_current_wal_lsn())")
sql "select pg_switch_wal()" >/dev/null
wait_for 60 bash -c "[ -e '$T/r1/wal/$endseg' ]"
ok $? "the segment of the last transaction, $endseg, is archived"
tmpfs "$T/tmpd" 16448k     # the newest segment and 64 KiB
chmod 1777 "$T/tmpd"
ws_mkdirs "$T/rz"
RP=$(pg_free_port)
on_exit "pg_stop $T/rz immediate"
t_fail "restore --start to the latest point, pg_waldump's output cut short in a full TMPDIR: exit 3" 3 \
  pg_run env TMPDIR="$T/tmpd" "$WALSHIP" --config "$T/p.conf" restore --pgdata "$T/rz/data" --start --port "$RP"
unlike "$T_OUT" "restore complete" "...never a promotion short of the archive's end"
like "$T_OUT" "cut short" "...saying why"
pg_stop "$T/rz" immediate
rm -rf "$T/rz/data"
mount -o remount,size=256m "$T/tmpd"
t "with room in TMPDIR, the restore reaches the end of the archive" \
  pg_run env TMPDIR="$T/tmpd" "$WALSHIP" --config "$T/p.conf" restore --pgdata "$T/rz/data" --start --port "$RP"
is "$(pg_run "$PG_BIN/psql" -X -At -h "$T/pg/sock" -p "$RP" -U postgres -d postgres -c 'select what from marker' 2>&1)" \
  "the last transaction" "...with the last transaction"
pg_stop "$T/rz" immediate

# ---- the disk fails right after backup_label is renamed into place ----
if ws_fsynchook_build "$T/fsynchook.so"; then
  mkdir -p "$T/hk" && chown "$(pg_user)" "$T/hk"
  t_fail "backup-fetch whose directory fsync fails once backup_label is in place: exit 3" 3 \
    pg_run env LD_PRELOAD="$T/fsynchook.so" FSYNCHOOK_NAME=backup_label "$WALSHIP" --config "$T/p.conf" \
    backup-fetch LATEST "$T/hk/data"
  like "$T_OUT" "backup_label" "...naming backup_label"
  [ ! -e "$T/hk/data/backup_label" ]; ok $? "...and backup_label is gone again: a failed fetch never looks complete"
else
  ok 0 "# SKIP no C compiler for the fsync shim"
fi

done_testing
