#!/bin/bash
# bench/fetch-ab.sh — backup-fetch of two walship binaries, interleaved on
# the same cluster and the same disk: each binary takes its own backup of
# the same database, then the fetches alternate (A, B, B of A's backup) R
# times, cold cache before each.  For changes of the backup format (a
# bench/backup-bench.sh invocation per binary compares them across minutes
# of a shared machine's load; this compares them within seconds).
#
#     bench/fetch-ab.sh OLD_BINARY NEW_BINARY [--scale N] [--big-mb M] [--runs R]
#
# Prints per run: label, wall s, CPU s (bench/lib/measure.py: the command's
# whole process tree), then the medians.  Posix (file://) region, zstd:3,
# encryption, parallel 2, as backup-bench.sh.  Runs as root (drop_caches).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$top/tests/lib/pg.sh"

A=${1:?old binary}
B=${2:?new binary}
shift 2
scale=10 big_mb=1500 runs=3
while [ $# -gt 0 ]; do
    case $1 in
        --scale) scale=$2; shift 2 ;;
        --big-mb) big_mb=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        *) echo "fetch-ab: unknown argument $1" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d "${TMPDIR:-/tmp}/walship-fetchab.XXXXXX")
chmod 755 "$W"
PGPORT=$(pg_free_port)
SRC=$W/pg
cleanup() { pg_stop "$SRC" immediate >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT
note() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

pg_init "$SRC" >/dev/null || exit 1
pg_conf "$SRC" "archive_mode = on"
pg_conf "$SRC" "max_wal_size = 4GB"
mkdir -p "$W/repo" "$W/spool" "$W/work" && chown -R "$(pg_user)" "$W/repo" "$W/spool" "$W/work"
"$B" keygen "$W/ws.key" >/dev/null 2>&1 && chown "$(pg_user)" "$W/ws.key"
cat >"$W/ws.conf" <<CONF
[global]
pgdata = $SRC/data
pg_conninfo = host=$SRC/sock port=$PGPORT user=postgres dbname=postgres
key_file = $W/ws.key
spool_dir = $W/spool
parallel = 2
compression = zstd:3

[region local]
url = file://$W/repo
mode = sync
CONF
chown "$(pg_user)" "$W/ws.conf"
pg_conf "$SRC" "archive_command = '$B --config $W/ws.conf wal-push %p'"
pg_start "$SRC" "$PGPORT" >/dev/null || exit 1
sql() { pg_sql "$SRC" "$PGPORT" "$1"; }
note "database: pgbench -i -s $scale, big $big_mb MiB"
pg_run "$PG_BIN/pgbench" -h "$SRC/sock" -p "$PGPORT" -U postgres -i -q -s "$scale" postgres >/dev/null 2>&1
if [ "$big_mb" -gt 0 ]; then
    sql "create table big (id int, pad bytea)" >/dev/null
    sql "insert into big select g, decode(md5(g::text || 'a') || md5(g::text || 'b') || md5(g::text || 'c') ||
          md5(g::text || 'd') || md5(g::text || 'e') || md5(g::text || 'f') || md5(g::text || 'g') ||
          md5(g::text || 'h'), 'hex') from generate_series(1, $((big_mb * 128 * 49))) g" >/dev/null
fi
sql "checkpoint" >/dev/null
push() { # LABEL BINARY LOG
    sync
    echo 3 >/proc/sys/vm/drop_caches
    pg_run python3 "$top/bench/lib/measure.py" "$W/work/m" -- "$2" --config "$W/ws.conf" backup-push >"$3" 2>&1 ||
        { cat "$3"; exit 1; }
    read -r _ wall _ user sys _ <"$W/work/m"
    note "backup-push $1: wall $wall s, CPU $(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}') s (user $user, sys $sys)"
}
push A "$A" "$W/work/push-a.log"
BA=$(ls "$W/repo/backups" | tail -1)
sleep 1
push B "$B" "$W/work/push-b.log"
BB=$(ls "$W/repo/backups" | tail -1)
note "backups: A $BA ($(grep -o '[0-9]* parts' "$W/work/push-a.log" | head -1)), B $BB ($(grep -o '[0-9]* parts' "$W/work/push-b.log" | head -1))"

fetch() { # LABEL BINARY BACKUP
    local d=$W/work/out
    rm -rf "$d"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    pg_run python3 "$top/bench/lib/measure.py" "$W/work/m" -- "$2" --config "$W/ws.conf" backup-fetch "$3" "$d" >/dev/null 2>&1
    read -r rc wall _ user sys _ <"$W/work/m"
    [ "$rc" = 0 ] || echo "$1: FAILED (rc $rc)"
    printf "%s %s %s\n" "$1" "$wall" "$(awk -v u="$user" -v s="$sys" "BEGIN{printf \"%.2f\", u+s}")" | tee -a "$W/results"
}
note "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= runs; i++)); do
    fetch "A-old-binary-old-backup" "$A" "$BA"
    fetch "B-new-binary-new-backup" "$B" "$BB"
    fetch "B-new-binary-old-backup" "$B" "$BA"
done
note "load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$W/results" <<'PY'
import sys, statistics, collections
r = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, w, c = line.split()
    r[k].append((float(w), float(c)))
for k, v in r.items():
    print("%-26s median wall %.2f s, CPU %.2f s; runs %s" % (k, statistics.median(x[0] for x in v),
          statistics.median(x[1] for x in v), " ".join("%.2f" % x[0] for x in v)))
PY
