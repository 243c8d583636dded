#!/bin/bash
# Two restores into one directory at once (adversarial pass W): an
# operator's restore and a retried one, or two terminals.  Each checked
# that the directory was empty before writing anything, so both went on:
# the second restored its backup into the directory the first was filling,
# and said "ok"; the first then failed on a file the other had made with
# "could not create the file: File exists", reported as a damaged backup.
# With two different backups (a --target-time in each) the one that failed
# could leave files of its backup in the other's "successful" restore.  The
# directory is now locked (flock on it) while a restore writes into it, and
# found empty under that lock; the second is refused and says why.
#
# Deterministic: the first restore reads its backup_label through a FIFO
# put in place of the object in a copy of the region, and stays in open()
# (holding the directory) until the test lets it go.  file:// regions, a
# real PostgreSQL 15 for the backup.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
command -v mkfifo >/dev/null && command -v pgrep >/dev/null || skip_all "mkfifo or pgrep is not installed"

ws_copy_pair
on_exit "ws_stop_daemons '$T'"
sql "create table t (i int)"
sql "insert into t select generate_series(1, 1000)"
t "backup-push" pg_run "$WALSHIP" --config "$T/p.conf" backup-push
NAME=$(took)
[ -n "$NAME" ]; ok $? "backup $NAME taken"
pg_stop "$T/pg" fast

# r1 as it is, and a copy of it whose backup_label is a FIFO (the slow one)
cp -a "$T/r1" "$T/rslow"
LABEL=$T/rslow/backups/$NAME/backup_label
mv "$LABEL" "$T/label.real"
mkfifo "$LABEL"
ws_own "$T/rslow"
ws_conf "$T/slow.conf"
ws_region "$T/slow.conf" slow "file://$T/rslow"
ws_conf "$T/fast.conf"
ws_region "$T/fast.conf" r1 "file://$T/r1"
ws_mkdirs "$T/dst"
DST=$T/dst/data

# the first restore: stays in open() of the FIFO until a writer opens it
pg_run "$WALSHIP" --config "$T/slow.conf" backup-fetch "$NAME" "$DST" >"$T/a.out" 2>&1 &
A=$!
on_exit "timeout 5 sh -c 'echo >\"$LABEL\"' 2>/dev/null"
waiting() {   # a walship of the slow configuration blocked in open() of the FIFO
  local p
  for p in $(pgrep -f -- "$T/slow.conf backup-fetch"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = walship ] && grep -qs wait_for_partner /proc/"$p"/task/*/wchan && return 0
  done
  return 1
}
wait_for 30 waiting
ok $? "the first restore has prepared $DST and is reading its backup"

# the second one, into the same directory, while the first is at work
pg_run "$WALSHIP" --config "$T/fast.conf" backup-fetch "$NAME" "$DST" >"$T/b.out" 2>&1
st=$?
diag "$(cat "$T/b.out")"
[ "$st" -ne 0 ]; ok $? "a second restore into the same directory meanwhile fails (exit $st)"
grep -q "another walship is restoring into" "$T/b.out"
ok $? "... saying that another restore is writing into it"
[ ! -e "$DST/PG_VERSION" ]
ok $? "... and writes nothing there"

# let the first go: its label is not a file (a test artefact), it fails
timeout 10 sh -c "echo >'$LABEL'"
wait "$A"
rm -f "$LABEL"
diag "first restore: $(tail -1 "$T/a.out")"
[ -z "$(ls -A "$DST")" ]; ok $? "the first restore left the directory empty"

# nobody restoring: the directory is free again, and restored whole
t "then a restore into it succeeds" pg_run "$WALSHIP" --config "$T/fast.conf" backup-fetch "$NAME" "$DST"
[ -s "$DST/PG_VERSION" ] && [ -s "$DST/backup_label" ]; ok $? "... PG_VERSION and backup_label are there"
pg_run "$WALSHIP" --config "$T/fast.conf" backup-fetch "$NAME" "$DST" >"$T/c.out" 2>&1
st=$?
[ "$st" -ne 0 ] && grep -q "is not empty" "$T/c.out"
ok $? "and a restore into the restored directory is refused as not empty (exit $st)"

done_testing
