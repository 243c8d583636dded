#!/bin/bash
# bench/incr-bench.sh — block-level incremental backups (issue 13), walship
# side by side with pgBackRest 2.45 --type=incr on the same change, in one
# run, posix storage (a walship file:// region and a pgBackRest posix repo
# under one temp dir), zstd:3, encryption on, parallelism 2:
#
#   1. pgbench -i at --scale N (default 50), a full backup of each tool;
#   2. an update of 1% of pgbench_accounts rows by key range, a
#      checkpoint, an incremental of each tool;
#   3. the same with 1% of rows chosen at random (its parent: step 2's);
#   4. restore: walship backup-fetch of the full backup, of the range
#      incremental (a chain of 2) and of the random one (a chain of 3);
#      pgBackRest restore of its newest incr.
#
# Reports stored bytes, wall time and CPU (user+sys, every process) per
# command, measured by bench/lib/measure.py.  The page cache is warm (the
# machine is shared); one run each.  Needs root (to run as postgres),
# PostgreSQL 15, pgbackrest.
#
#   bench/incr-bench.sh [--scale N] [--keep]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
WALSHIP=${WALSHIP:-$top/_build/default/walship}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
scale=50 keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --scale) scale=$2; shift ;;
        --keep) keep=1 ;;
        *) echo "usage: $0 [--scale N] [--keep]" >&2; exit 2 ;;
    esac
    shift
done
command -v pgbackrest >/dev/null || { echo "incr-bench: pgbackrest is not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "incr-bench: run as root" >&2; exit 2; }

SD=$(mktemp -d "${TMPDIR:-/tmp}/incr-bench.XXXXXX")
chown postgres "$SD"
as_pg() { runuser -u postgres -- "$@"; }
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    as_pg "$PG_BIN/pg_ctl" -D "$SD/pg/data" -m immediate stop >/dev/null 2>&1
    [ "$keep" = 1 ] || rm -rf "$SD"
}
trap cleanup EXIT
die() { echo "incr-bench: $*" >&2; exit 1; }

as_pg mkdir -p "$SD/pg/sock" "$SD/ws-repo" "$SD/ws-spool" "$SD/pgbr-repo" "$SD/pgbr-spool" "$SD/pgbr-lock"
as_pg "$PG_BIN/initdb" -D "$SD/pg/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null || die initdb
cat >>"$SD/pg/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SD/pg/sock'
port = $PGPORT
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 4GB
autovacuum = off
CONF
as_pg "$PG_BIN/pg_ctl" -D "$SD/pg/data" -l "$SD/pg/log" -w start >/dev/null || die "postgres did not start"
sql() { as_pg "$PG_BIN/psql" -X -qAt -h "$SD/pg/sock" -p "$PGPORT" -U postgres -d postgres -c "$1"; }

as_pg "$WALSHIP" keygen "$SD/key" >/dev/null 2>&1
cat >"$SD/walship.conf" <<CONF
[global]
key_file = $SD/key
spool_dir = $SD/ws-spool
parallel = 2
compression = zstd:3
pg_conninfo = host=$SD/pg/sock port=$PGPORT user=postgres dbname=postgres

[region local]
url = file://$SD/ws-repo
mode = sync
CONF
cat >"$SD/pgbackrest.conf" <<CONF
[global]
repo1-type=posix
repo1-path=$SD/pgbr-repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=incr-bench-pass
repo1-retention-full=99
compress-type=zst
compress-level=3
process-max=2
start-fast=y
archive-check=y
spool-path=$SD/pgbr-spool
lock-path=$SD/pgbr-lock
log-level-console=warn
log-level-stderr=warn
log-level-file=off

[bench]
pg1-path=$SD/pg/data
pg1-port=$PGPORT
pg1-socket-path=$SD/pg/sock
CONF
chmod 600 "$SD/walship.conf" "$SD/pgbackrest.conf"
chown postgres "$SD/walship.conf" "$SD/pgbackrest.conf"
WS() { as_pg "$WALSHIP" --config "$SD/walship.conf" "$@"; }
PB() { as_pg pgbackrest --config="$SD/pgbackrest.conf" --stanza=bench "$@"; }

echo "# pgbench -i -s $scale" >&2
as_pg "$PG_BIN/pgbench" -i -s "$scale" -q -h "$SD/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1 || die pgbench
PB stanza-create >/dev/null 2>&1 || die "pgbackrest stanza-create"
sql "alter system set archive_command = '$WALSHIP --config $SD/walship.conf wal-push %p && pgbackrest --config=$SD/pgbackrest.conf --stanza=bench archive-push %p'" >/dev/null
sql "select pg_reload_conf()" >/dev/null
sql "checkpoint" >/dev/null

measure() { # LABEL CMD...: one line "LABEL wall user+sys"
    local label=$1 o="$SD/m.$RANDOM"
    shift
    as_pg python3 "$top/bench/lib/measure.py" "$o" -- "$@" >"$SD/last.log" 2>&1
    read -r rc wall _ user sys _ <"$o"
    [ "$rc" = 0 ] || { tail -5 "$SD/last.log" >&2; die "$label failed"; }
    printf '%-34s %8.2f s wall %8.2f s CPU\n' "$label" "$wall" "$(echo "$user + $sys" | bc)"
}
ws_newest() { ls "$SD/ws-repo/backups" | tail -1; }
ws_bytes() { du -sb "$SD/ws-repo/backups/$1" | cut -f1; }
pb_newest() { ls "$SD/pgbr-repo/backup/bench" | grep -E '^[0-9]{8}-[0-9]{6}F' | tail -1; }
pb_bytes() { du -sb "$SD/pgbr-repo/backup/bench/$1" | cut -f1; }
pb_last() { ls -d "$SD/pgbr-repo/backup/bench/"*[FDI] | tail -1 | xargs basename; }

echo "PGDATA $(du -sb "$SD/pg/data" | cut -f1) bytes, pgbench scale $scale"
measure "walship full" "$WALSHIP" --config "$SD/walship.conf" backup-push
WFULL=$(ws_newest)
echo "  stored $(ws_bytes "$WFULL") bytes"
measure "pgbackrest full" pgbackrest --config="$SD/pgbackrest.conf" --stanza=bench backup --type=full
echo "  stored $(pb_bytes "$(pb_last)") bytes"

rows=$((scale * 100000 / 100))
sql "update pgbench_accounts set abalance = abalance + 1 where aid between 1 and $rows" >/dev/null
sql "checkpoint" >/dev/null
echo "# 1% of pgbench_accounts by key range ($rows rows)"
measure "walship incremental (range)" "$WALSHIP" --config "$SD/walship.conf" backup-push --incremental
WI1=$(ws_newest)
echo "  stored $(ws_bytes "$WI1") bytes"
measure "pgbackrest incr (range)" pgbackrest --config="$SD/pgbackrest.conf" --stanza=bench backup --type=incr
echo "  stored $(pb_bytes "$(pb_last)") bytes"

sql "update pgbench_accounts set abalance = abalance + 1 where aid in (select (random() * $((scale * 100000 - 1)))::int + 1 from generate_series(1, $rows))" >/dev/null
sql "checkpoint" >/dev/null
echo "# 1% of pgbench_accounts at random"
measure "walship incremental (random)" "$WALSHIP" --config "$SD/walship.conf" backup-push --incremental
WI2=$(ws_newest)
echo "  stored $(ws_bytes "$WI2") bytes"
measure "pgbackrest incr (random)" pgbackrest --config="$SD/pgbackrest.conf" --stanza=bench backup --type=incr
echo "  stored $(pb_bytes "$(pb_last)") bytes"

echo "# restore"
measure "walship backup-fetch full" "$WALSHIP" --config "$SD/walship.conf" backup-fetch "$WFULL" "$SD/r-full"
measure "walship backup-fetch chain (range)" "$WALSHIP" --config "$SD/walship.conf" backup-fetch "$WI1" "$SD/r-chain1"
measure "walship backup-fetch chain (3)" "$WALSHIP" --config "$SD/walship.conf" backup-fetch "$WI2" "$SD/r-chain"
as_pg mkdir -p "$SD/r-pgbr"; chmod 700 "$SD/r-pgbr"
measure "pgbackrest restore incr" pgbackrest --config="$SD/pgbackrest.conf" --stanza=bench restore --pg1-path="$SD/r-pgbr"
