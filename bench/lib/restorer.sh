#!/bin/bash
# bench/lib/restorer.sh — what PostgreSQL's startup process does with a
# restore_command during archive recovery, without PostgreSQL: for each
# segment NAME of LIST in order, in DATADIR, run the restore command through
# `sh -c` with %f = NAME and %p = pg_wal/RECOVERYXLOG; it must exit 0 and
# leave a file; then rename it to pg_wal/NAME (KeepFileRestoredFromArchive).
#
#   restorer.sh DATADIR LIST 'RESTORE COMMAND with %f and %p'
set -u
cd "$1" || exit 2
list=$2
tmpl=$3
n=0
while read -r f; do
    [ -n "$f" ] || continue
    rm -f pg_wal/RECOVERYXLOG
    c=${tmpl//%p/pg_wal\/RECOVERYXLOG}
    c=${c//%f/$f}
    if ! sh -c "$c"; then
        echo "restorer.sh: restoring $f failed: $c" >&2
        exit 1
    fi
    [ -s pg_wal/RECOVERYXLOG ] || { echo "restorer.sh: $f: no file restored" >&2; exit 1; }
    mv pg_wal/RECOVERYXLOG "pg_wal/$f" || exit 1
    n=$((n + 1))
done <"$list"
echo "restorer.sh: restored $n files" >&2
