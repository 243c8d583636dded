#!/bin/bash
# restore and backup-fetch into a volume that is not mounted: --pgdata (or
# DIR, or a tablespace directory) at or below a mount point of /etc/fstab
# where nothing is mounted is refused before anything is made or fetched
# (exit 2, naming the mount point); once the volume is mounted, or with
# --allow-unmounted, the restore goes ahead (src/common/paths.c).
# Root only: each walship runs in a mount namespace of its own where a
# test fstab is bind-mounted over /etc/fstab (and, for "mounted", a tmpfs
# on the mount point), so the host's tables are never touched.
# A PostgreSQL 15 with a tablespace, archiving into one file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
[ "$(id -u)" = 0 ] || skip_all "needs root (a mount namespace, a bind mount over /etc/fstab)"
unshare -m --propagation private -- true 2>/dev/null || skip_all "unshare -m does not work here"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
on_exit "ws_stop_daemons '$T'"
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
mkdir -p "$T/tsp" && chown "$(pg_user)" "$T/tsp"
sql "CREATE TABLESPACE tsp LOCATION '$T/tsp'" >/dev/null
sql "CREATE TABLE t (x int) TABLESPACE tsp; INSERT INTO t SELECT generate_series(1, 1000)" >/dev/null
t "backup-push (a tablespace at $T/tsp)" pg_run "$WALSHIP" --config "$T/p.conf" backup-push

# the volume: $B/vol, listed in the test's fstab; $B/vol is an empty
# directory (its mount point); $B, where the restores go, is the
# PostgreSQL user's
B=$T/w
mkdir -p "$B/vol" && chown "$(pg_user)" "$B" "$B/vol" && chmod 755 "$T"
printf '# a test fstab\n/dev/sda1 / ext4 defaults 0 1\nLABEL=pgvol %s ext4 defaults,nofail 0 2\n' "$B/vol" >"$T/fstab"

# in_ns MOUNTED CMD...: CMD as the PostgreSQL user, in a mount namespace
# where /etc/fstab is the test's, and $T/vol a tmpfs when MOUNTED is 1
in_ns() {
  local mounted=$1; shift
  unshare -m --propagation private -- bash -c '
    mount --bind "$0" /etc/fstab || exit 99
    if [ "$1" = 1 ]; then mount -t tmpfs -o size=256m,mode=0755 tmpfs "$2" && chown "$3" "$2" || exit 99; fi
    shift 4
    exec runuser -u "$PGUSER_NS" -- env PATH="$PG_BIN:$PATH" "$@"' \
    "$T/fstab" "$mounted" "$B/vol" "$(pg_user)" x "$@"
}
export PGUSER_NS
PGUSER_NS=$(pg_user)
W=(--config "$T/p.conf")

t_fail "restore --pgdata below the unmounted volume: refused (exit 2)" 2 in_ns 0 "$WALSHIP" "${W[@]}" restore \
  --pgdata "$B/vol/data" --target-immediate --tablespace-map "$T/tsp=$B/ts1"
like "$T_OUT" "is on $B/vol, a mount point in /etc/fstab where nothing is mounted" "...naming the mount point"
like "$T_OUT" "--allow-unmounted" "...and the way to write there all the same"
[ ! -e "$B/vol/data" ]; ok $? "...before --pgdata is made"
t_fail "backup-fetch into it: refused (exit 2)" 2 in_ns 0 "$WALSHIP" "${W[@]}" backup-fetch LATEST "$B/vol/data" \
  --tablespace-map "$T/tsp=$B/ts1"
like "$T_OUT" "directory \"$B/vol/data\" is on $B/vol" "...naming DIR and the mount point"
[ ! -e "$B/vol/data" ] && [ ! -e "$B/ts1" ]; ok $? "...and nothing is made, the tablespace's directory neither"
t_fail "a tablespace mapped below the unmounted volume: refused (exit 2)" 2 in_ns 0 "$WALSHIP" "${W[@]}" \
  backup-fetch LATEST "$B/d1" --tablespace-map "$T/tsp=$B/vol/ts"
like "$T_OUT" "tablespace directory \"$B/vol/ts\" is on $B/vol" "...naming the tablespace directory"
[ ! -e "$B/d1" ]; ok $? "...before DIR is made"
t_fail "restore with its tablespace mapped there: refused too" 2 in_ns 0 "$WALSHIP" "${W[@]}" restore \
  --pgdata "$B/d2" --target-immediate --tablespace-map "$T/tsp=$B/vol/ts"
[ ! -e "$B/d2/backup_label" ]; ok $? "...and nothing restored"

# the host's own fstab has no such line: the same commands are not refused
# for it (the check reads the tables of the namespace the command runs in)
t "restore --pgdata into the volume once mounted (a tmpfs): works" in_ns 1 "$WALSHIP" "${W[@]}" restore \
  --pgdata "$B/vol/data" --target-immediate --tablespace-map "$T/tsp=$B/ts2"
like "$T_OUT" "fetched backup" "...the backup was fetched"
[ ! -e "$B/vol/data" ]; ok $? "...into the tmpfs (gone with its namespace), not the directory below it"
t "backup-fetch into the mounted volume: works" in_ns 1 "$WALSHIP" "${W[@]}" backup-fetch LATEST "$B/vol/data" \
  --tablespace-map "$T/tsp=$B/ts3"
t "restore --allow-unmounted: writes below the mount point all the same" in_ns 0 "$WALSHIP" "${W[@]}" restore \
  --pgdata "$B/vol/data" --target-immediate --tablespace-map "$T/tsp=$B/ts4" --allow-unmounted
[ -e "$B/vol/data/backup_label" ]; ok $? "...there: $B/vol/data/backup_label"
t "backup-fetch --allow-unmounted too" in_ns 0 "$WALSHIP" "${W[@]}" backup-fetch LATEST "$B/vol/d5" \
  --tablespace-map "$T/tsp=$B/vol/ts5" --allow-unmounted
[ -e "$B/vol/d5/backup_label" ] && [ -d "$B/vol/ts5" ]; ok $? "...DIR and the tablespace there"
t "a directory beside the mount point is not refused" in_ns 0 "$WALSHIP" "${W[@]}" backup-fetch LATEST "$B/volx" \
  --tablespace-map "$T/tsp=$B/ts6"

done_testing
