#!/bin/bash
# bench/lib/archiver.sh — what PostgreSQL's archiver process does, without
# PostgreSQL: in DATADIR (the archive_command's working directory, like
# PGDATA), take the .ready files of pg_wal/archive_status oldest first, run
# the archive command for each through `sh -c` (PostgreSQL uses system()),
# with %p = pg_wal/NAME and %f = NAME, and rename NAME.ready to NAME.done
# when it exits 0.  Rescan until no .ready is left.  A failing command is
# retried after 1 s, three times in all (as PostgreSQL does), then the run
# fails.
#
#   archiver.sh DATADIR 'ARCHIVE COMMAND with %p and %f'
set -u
shopt -s nullglob
export LC_ALL=C
cd "$1" || exit 2
tmpl=$2
n=0
while :; do
    ready=(pg_wal/archive_status/*.ready)    # sorted (C locale): oldest first
    [ "${#ready[@]}" -eq 0 ] && break
    for r in "${ready[@]}"; do
        r=${r##*/}
        f=${r%.ready}
        [ -e "pg_wal/archive_status/$r" ] || continue
        c=${tmpl//%p/pg_wal\/$f}
        c=${c//%f/$f}
        tries=0
        until sh -c "$c"; do
            tries=$((tries + 1))
            if [ "$tries" -ge 3 ]; then
                echo "archiver.sh: archiving $f failed 3 times: $c" >&2
                exit 1
            fi
            sleep 1
        done
        mv "pg_wal/archive_status/$f.ready" "pg_wal/archive_status/$f.done" || exit 1
        n=$((n + 1))
    done
done
echo "archiver.sh: archived $n files" >&2
