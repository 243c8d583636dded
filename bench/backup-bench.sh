#!/bin/bash
# bench/backup-bench.sh — full base backup and restore, walship side by side
# with pgBackRest 2.45 on the same database, the same storage, in the same
# run (DESIGN.md §8).
#
#   bench/backup-bench.sh [--storage posix|s3|both] [--scale N] [--runs R]
#                         [--big-mb M] [--warm] [--no-verify] [--profile]
#                         [--keep]
#
#   --storage    posix: pgBackRest repo1-type=posix vs a walship file://
#                region, both under one temp dir on the same disk;
#                s3: one local Swift s3api region (us-east-1) behind TLS
#                (pgBackRest's S3 driver speaks HTTPS only), a bucket per
#                tool, walship with ca_file, pgBackRest with
#                repo1-storage-ca-file.  Default: both when Swift is
#                installed, else posix.
#   --scale N    pgbench scale of the database (default 50: about 770 MB of
#                PGDATA, like DESIGN.md §8)
#   --big-mb M   add one table "big" of about M MiB whose rows are random
#                bytes (128 random bytes of bytea per row: zstd cannot
#                compress them), one relation in 1 GB segment files, so that
#                the database's time is dominated by one large relation
#                (default 0: none; e.g. --scale 10 --big-mb 1500)
#   --runs R     repetitions of each timed command; medians are reported
#                (default 3)
#   --warm       do not drop the page cache before each timed command
#                (default: as root, `sync; echo 3 > /proc/sys/vm/drop_caches`
#                before every timed command of every tool, so each one
#                reads PGDATA or the repository from disk)
#   --no-verify  skip the check that the restored clusters start, recover,
#                promote and hold every pgbench_accounts row
#   --profile    after the runs, per storage: one more backup per tool with
#                every statement's duration in the server log (where the
#                wall time goes: before pg_backup_start, pg_backup_start,
#                copy, pg_backup_stop, after), then one walship backup-push
#                and one backup-fetch under `perf record` (CPU by library
#                and thread, each thread's busy interval, the parts' sizes)
#   --keep       keep the work directory (printed) for inspection
#
# One PostgreSQL 15 primary (archive_mode = on, fsync = off as in
# tests/lib/pg.sh) loaded with pgbench -i -s N, no other load.  Its
# archive_command archives every segment to BOTH tools, walship first:
#   walship --config W wal-push %p && pgbackrest --stanza=bench archive-push %p
# so each tool's backup finds its WAL (the stop segment waits for both
# pushes, the same for both tools).  Both tools: zstd level 3 (walship
# compression = zstd:3; pgBackRest compress-type=zst compress-level=3),
# encryption (walship key_file from `walship keygen`, AES-256-GCM;
# pgBackRest repo1-cipher-type=aes-256-cbc), parallelism 2 (walship
# parallel = 2; pgBackRest process-max=2), a retention pass after each
# backup (walship retain_full = 99; pgBackRest repo1-retention-full=99).
# pgBackRest: start-fast=y, archive-check=y (walship also starts with a fast
# checkpoint and waits for the stop segment in every region).
#
# Timed, per storage, R times with the order of the tools alternating:
#   backup   walship backup-push  vs  pgbackrest backup --type=full
#   restore  walship backup-fetch LATEST DIR, and walship restore --pgdata
#            DIR --target-immediate (lists the archive, fetches, writes the
#            recovery settings; no --start)  vs  pgbackrest restore
#            --pg1-path=DIR; each into a fresh empty directory (mode 0700:
#            walship keeps an existing directory's mode).  All three
#            make the restored files durable (walship: syncfs; pgBackRest:
#            fsync per file).
# and once (not per storage), as the machine's own limits on the same data:
#   tar -cf - PGDATA | zstd -3 -T2 > FILE     and     zstd -dc FILE | tar -x
# (the latter without a sync: syncfs on a shared file system also waits for
# other work's dirty pages)
# Wall time, CPU (user + sys of every process the command started, not the
# PostgreSQL server's nor the storage server's) and peak RSS (largest single
# process) by bench/lib/measure.py; on s3 also the Swift servers' CPU over
# the same command (their PIDs' /proc/PID/stat before and after).  Stored size: walship backup-list
# --json stored_size, pgBackRest info repository size.  After the last run
# (unless --no-verify) the restored clusters are started with archive_mode
# = off and must promote and hold every row; the backup-fetch directory
# must hold the same files (names and sizes) as the restore one.
#
# Results: a table per storage (medians; ratio = pgBackRest's wall /
# the tool's wall, > 1 means walship is faster), the DESIGN.md §8 targets
# met or not, in bench/results/backup-YYYYmmdd-HHMMSS.txt and on stdout;
# progress on stderr.  Needs PostgreSQL 15, python3, zstd, pgbackrest
# (installed with apt-get when missing and run as root); s3 needs Swift
# (TESTING.md) and openssl; --profile needs perf.  Run as root (servers and
# tools then run as "postgres") or as the user that owns everything.
# Environment: WALSHIP (the binary; default _build/default/walship, else
# ./walship), TMPDIR.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$top/tests/lib/pg.sh"
# shellcheck source=/dev/null
. "$top/tests/lib/swift.sh"
# shellcheck source=/dev/null
. "$top/bench/lib/swift-tls.sh"

storage=""
scale=50
big_mb=0
runs=3
warm=0
verify=1
profile=0
keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --storage) storage=${2:?}; shift 2 ;;
        --storage=*) storage=${1#*=}; shift ;;
        --scale) scale=${2:?}; shift 2 ;;
        --scale=*) scale=${1#*=}; shift ;;
        --big-mb) big_mb=${2:?}; shift 2 ;;
        --big-mb=*) big_mb=${1#*=}; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --warm) warm=1; shift ;;
        --no-verify) verify=0; shift ;;
        --profile) profile=1; shift ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "backup-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
have_swift=0
command -v swift-proxy-server >/dev/null && command -v memcached >/dev/null && have_swift=1
case $storage in
    "") if [ "$have_swift" = 1 ]; then storages="posix s3"; else storages=posix; fi ;;
    both) storages="posix s3" ;;
    posix | s3) storages=$storage ;;
    *) echo "backup-bench: --storage posix|s3|both" >&2; exit 2 ;;
esac
case " $storages " in *" s3 "*) [ "$have_swift" = 1 ] || { echo "backup-bench: s3 needs Swift (see TESTING.md)" >&2; exit 2; } ;; esac
[[ $scale =~ ^[1-9][0-9]*$ ]] || { echo "backup-bench: --scale N" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "backup-bench: --runs N" >&2; exit 2; }
[[ $big_mb =~ ^[0-9]+$ ]] || { echo "backup-bench: --big-mb M" >&2; exit 2; }

WALSHIP=${WALSHIP:-}
if [ -z "$WALSHIP" ]; then
    for c in "$top/_build/default/walship" "$top/walship"; do
        [ -x "$c" ] && { WALSHIP=$c; break; }
    done
fi
[ -n "$WALSHIP" ] && [ -x "$WALSHIP" ] || { echo "backup-bench: no walship binary (build it or set WALSHIP)" >&2; exit 2; }
[ -x "$PG_BIN/postgres" ] || { echo "backup-bench: PostgreSQL 15 is not installed ($PG_BIN)" >&2; exit 2; }
command -v zstd >/dev/null || { echo "backup-bench: zstd is not installed" >&2; exit 2; }
if [ "$profile" = 1 ] && ! command -v perf >/dev/null; then echo "backup-bench: --profile needs perf" >&2; exit 2; fi
if ! command -v pgbackrest >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "backup-bench: installing pgbackrest" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >/dev/null 2>&1 ||
            { echo "backup-bench: apt-get install pgbackrest failed" >&2; exit 2; }
    else
        echo "backup-bench: pgbackrest is not installed (apt-get install pgbackrest)" >&2
        exit 2
    fi
fi
if [ "$warm" = 0 ] && ! { [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/drop_caches ]; }; then
    echo "backup-bench: dropping the page cache needs root (or use --warm)" >&2
    exit 2
fi
PGBR_VERSION=$(pgbackrest version 2>/dev/null)
WS_VERSION=$("$WALSHIP" --version 2>&1 | head -1)

note() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { note "FATAL: $*"; exit 1; }
own() { if [ "$(id -u)" = 0 ]; then chown -R "$(pg_user)" "$@"; fi; }
as_pg() { pg_run "$@"; }

W=$(mktemp -d "${TMPDIR:-/tmp}/walship-backupbench.XXXXXX") || exit 1
chmod 755 "$W"
own "$W"
SRC=$W/pg
PGDATA_DIR=$SRC/data
src_up=0
swift_dirs=()
verify_dirs=()
cleanup() {
    local d
    for d in "${verify_dirs[@]}"; do
        [ -f "$d/postmaster.pid" ] && pg_run "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1
    done
    if [ "$src_up" = 1 ]; then pg_stop "$SRC" immediate; fi
    for d in "${swift_dirs[@]}"; do swift_stop "$d"; done
    if [ "$keep" = 1 ]; then
        note "work directory kept: $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$top/bench/results"
RES=$top/bench/results/backup-$(date +%Y%m%d-%H%M%S).txt
: >"$RES"
out() { printf '%s\n' "$*" | tee -a "$RES"; }
REC=$W/records   # storage op tool rep rc wall wall_all user sys rss_kb stored_bytes
: >"$REC"

# ---------------------------------------------------------------- helpers
med() { # median of the numbers on stdin
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ssql() { pg_sql "$SRC" "$PGPORT" "$1"; }
measure() { # OUT CMD...: run CMD as the PostgreSQL user under measure.py
    local o=$1
    shift
    as_pg python3 "$top/bench/lib/measure.py" "$o" -- "$@"
}
CACHE=cold
[ "$warm" = 1 ] && CACHE=warm
coldcache() { # before every timed command: write back, then drop clean pages
    sync
    if [ "$warm" = 0 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
freshdir() { # DIR: remove, recreate empty (mode 0700: walship keeps an existing
    # directory's mode, PostgreSQL wants 0700 or 0750), owned by the PostgreSQL user
    rm -rf "$1"
    mkdir -m 700 "$1"
    own "$1"
}
cpu_of() { awk -v u="$1" -v s="$2" 'BEGIN { print u + s }'; }
# srv_ticks: CPU clock ticks used so far by the storage server (Swift's
# proxy, object, container and account servers); 0 without one
srv_ticks() { if [ -n "$SD" ]; then swift_cpu_ticks "$SD/swift"; else echo 0; fi; }
CLK_TCK=$(getconf CLK_TCK)
SRV0=0
srv_mark() { SRV0=$(srv_ticks); }
# record STORAGE OP TOOL REP MEASUREFILE STORED LOG: append to REC, say it
# (the storage server's CPU since the last srv_mark is the 12th field)
record() {
    local st=$1 op=$2 tool=$3 rep=$4 m=$5 stored=$6 log=$7 mrc wall wall_all user sys rss srv
    read -r mrc wall wall_all user sys rss <"$m" || { mrc=255 wall=0 wall_all=0 user=0 sys=0 rss=0; }
    srv=$(awk -v a="$SRV0" -v b="$(srv_ticks)" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b > a ? b - a : 0) / hz }')
    echo "$st $op $tool $rep $mrc $wall $wall_all $user $sys $rss $stored $srv" >>"$REC"
    note "  $op $tool run $rep: ${wall}s, cpu $(cpu_of "$user" "$sys")s$([ "$st" = s3 ] && echo ", storage server cpu ${srv}s"), rss $((rss / 1024))MB$([ "$stored" -gt 0 ] 2>/dev/null && echo ", stored $((stored / 1048576))MB")$([ "$mrc" != 0 ] && echo "  FAILED (exit $mrc): $(tail -3 "$log" | tr '\n' ' ')")"
    [ "$mrc" = 0 ]
}
wait_archived() { # until no .ready is left (max 120 s)
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(ssql "select count(*) from pg_ls_archive_statusdir() where name like '%.ready'")" = 0 ] && return 0
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------- the database
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
PGPORT=$(pg_free_port)
note "walship: $WS_VERSION ($WALSHIP); $PGBR_VERSION; work dir $W; load average $LOAD0"
note "database: initdb, pgbench -i -s $scale"
pg_init "$SRC" || die "initdb"
pg_conf "$SRC" "archive_mode = on"
pg_conf "$SRC" "archive_command = '/bin/true'"   # the load's WAL is not needed by any backup
pg_conf "$SRC" "max_wal_size = 4GB"
pg_start "$SRC" "$PGPORT" || die "postgres did not start"
src_up=1
pg_run "$PG_BIN/pgbench" -h "$SRC/sock" -p "$PGPORT" -U postgres -i -q -s "$scale" postgres >"$W/pgbench-init.log" 2>&1 ||
    { cat "$W/pgbench-init.log" >&2; die "pgbench -i"; }
if [ "$big_mb" -gt 0 ]; then
    # 49 rows of 128 random bytes fill an 8 KiB page: 128 pages per MiB
    note "database: table big, about $big_mb MiB of random rows"
    ssql "create table big (id int, pad bytea)" >/dev/null || die "create table big"
    ssql "insert into big select g, decode(md5(g::text || 'a') || md5(g::text || 'b') || md5(g::text || 'c') ||
          md5(g::text || 'd') || md5(g::text || 'e') || md5(g::text || 'f') || md5(g::text || 'g') ||
          md5(g::text || 'h'), 'hex') from generate_series(1, $((big_mb * 128 * 49))) g" >/dev/null ||
        die "insert into big"
    note "database: big is $(ssql "select pg_size_pretty(pg_relation_size('big'))")"
fi
ssql "checkpoint" >/dev/null
ssql "select pg_switch_wal()" >/dev/null
wait_archived || die "the load's WAL was not archived"
pgdata_bytes=$(( $(du -sb "$PGDATA_DIR" | cut -f1) - $(du -sb "$PGDATA_DIR/pg_wal" | cut -f1) ))
ROWS=$((scale * 100000))
note "PGDATA without pg_wal: $((pgdata_bytes / 1048576)) MiB"

"$WALSHIP" keygen "$W/ws.key" >/dev/null 2>&1 || die "walship keygen"
own "$W/ws.key"
PGBR_PASS=$(openssl rand -hex 24)

# ---------------------------------------------------------------- the machine's limits
ref_runs() {
    local r m
    note "[machine] tar | zstd -3 -T2 and zstd -d | tar -x on PGDATA, $runs runs"
    for ((r = 1; r <= runs; r++)); do
        m=$W/ref-pack-$r.measure
        coldcache
        measure "$m" bash -c "{ tar -C '$PGDATA_DIR' --exclude='./pg_wal/*' --warning=no-file-changed -cf - .; [ \$? -le 1 ]; } | zstd -3 -T2 -q -f -o '$W/ref.tar.zst'" 2>"$W/ref-pack.log"
        record machine backup tar-zstd "$r" "$m" "$(stat -c %s "$W/ref.tar.zst" 2>/dev/null || echo 0)" "$W/ref-pack.log"
        freshdir "$W/ref-unpack"
        m=$W/ref-unpack-$r.measure
        coldcache
        measure "$m" bash -c "zstd -dc '$W/ref.tar.zst' | tar -C '$W/ref-unpack' -xf -" 2>"$W/ref-unpack.log"
        record machine restore zstd-tar "$r" "$m" 0 "$W/ref-unpack.log"
        rm -rf "$W/ref-unpack"
    done
}

# ---------------------------------------------------------------- storage setup
S="" SD="" S3PORT="" CERT="" WSCONF="" PBCONF=""
storage_setup() {
    S=$1
    SD=$W/$S
    mkdir -p "$SD"
    own "$SD"
    if [ "$S" = s3 ]; then
        note "[s3] starting a Swift region (us-east-1) behind TLS"
        swift_tls_cert "$SD/tls" || die "openssl"
        chmod 644 "$SD/tls/cert.pem"
        swift_dirs+=("$SD/swift")
        swift_start_tls "$SD/swift" us-east-1 "$SD/tls/cert.pem" "$SD/tls/key.pem" pgbr walship || die "swift"
        S3PORT=$SWIFT_PORT
        CERT=$SD/tls/cert.pem
    fi
    # walship
    WSCONF=$SD/walship.conf
    mkdir -p "$SD/ws-spool"
    {
        echo "[global]"
        echo "pgdata = $PGDATA_DIR"
        echo "pg_conninfo = host=$SRC/sock port=$PGPORT user=postgres dbname=postgres"
        echo "key_file = $W/ws.key"
        echo "spool_dir = $SD/ws-spool"
        echo "parallel = 2"
        echo "compression = zstd:3"
        echo
        if [ "$S" = posix ]; then
            mkdir -p "$SD/ws-repo"
            echo "[region local]"
            echo "url = file://$SD/ws-repo"
        else
            echo "[region us-east-1]"
            echo "url = s3://walship/bench"
            echo "endpoint = https://127.0.0.1:$S3PORT"
            echo "path_style = true"
            echo "ca_file = $CERT"
            echo "access_key_id = test:tester"
            echo "secret_access_key = testing"
        fi
        echo "retain_full = 99"
    } >"$WSCONF"
    chmod 600 "$WSCONF"
    # pgBackRest
    PBCONF=$SD/pgbackrest.conf
    mkdir -p "$SD/pgbr-spool" "$SD/pgbr-lock"
    {
        echo "[global]"
        if [ "$S" = posix ]; then
            echo "repo1-type=posix"
            echo "repo1-path=$SD/pgbr-repo"
        else
            echo "repo1-type=s3"
            echo "repo1-path=/bench"
            echo "repo1-s3-bucket=pgbr"
            echo "repo1-s3-endpoint=127.0.0.1"
            echo "repo1-storage-port=$S3PORT"
            echo "repo1-storage-ca-file=$CERT"
            echo "repo1-s3-region=us-east-1"
            echo "repo1-s3-key=test:tester"
            echo "repo1-s3-key-secret=testing"
            echo "repo1-s3-uri-style=path"
        fi
        echo "repo1-cipher-type=aes-256-cbc"
        echo "repo1-cipher-pass=$PGBR_PASS"
        echo "repo1-retention-full=99"
        echo "compress-type=zst"
        echo "compress-level=3"
        echo "process-max=2"
        echo "start-fast=y"
        echo "archive-check=y"
        echo "archive-async=n"
        echo "spool-path=$SD/pgbr-spool"
        echo "lock-path=$SD/pgbr-lock"
        echo "log-level-console=warn"
        echo "log-level-stderr=warn"
        echo "log-level-file=off"
        echo
        echo "[bench]"
        echo "pg1-path=$PGDATA_DIR"
        echo "pg1-port=$PGPORT"
        echo "pg1-socket-path=$SRC/sock"
    } >"$PBCONF"
    chmod 600 "$PBCONF"
    own "$WSCONF" "$PBCONF" "$SD/ws-spool" "$SD/pgbr-spool" "$SD/pgbr-lock"
    if [ "$S" = posix ]; then own "$SD/ws-repo"; fi
    as_pg pgbackrest --config="$PBCONF" --stanza=bench stanza-create >"$SD/stanza.log" 2>&1 ||
        { tail -5 "$SD/stanza.log" >&2; die "pgbackrest stanza-create"; }
    # archive to both tools from now on
    ssql "alter system set archive_command = '$WALSHIP --config $WSCONF wal-push %p && pgbackrest --config=$PBCONF --stanza=bench archive-push %p'" >/dev/null
    ssql "select pg_reload_conf()" >/dev/null
    ssql "select pg_switch_wal()" >/dev/null
    wait_archived || die "archiving to both tools does not work (see $SRC/server.log)"
    [ "$(ssql "select failed_count from pg_stat_archiver")" = 0 ] ||
        note "  WARNING: pg_stat_archiver reports failures: $(ssql "select last_failed_wal, last_failed_time from pg_stat_archiver")"
}
storage_teardown() {
    ssql "alter system set archive_command = '/bin/true'" >/dev/null
    ssql "select pg_reload_conf()" >/dev/null
    if [ "$S" = s3 ]; then swift_stop "$SD/swift"; fi
}

# ---------------------------------------------------------------- stored sizes
ws_stored() { # stored bytes of walship's newest backup
    as_pg "$WALSHIP" --config "$WSCONF" backup-list --json 2>/dev/null |
        python3 -c 'import json, sys
d = json.load(sys.stdin)
b = [x for x in d[0]["backups"] if x.get("complete")]
print(b[-1]["stored_size"] if b else 0)' 2>/dev/null || echo 0
}
pgbr_stored() { # repository bytes of pgBackRest's newest backup
    as_pg pgbackrest --config="$PBCONF" --stanza=bench info --output=json 2>/dev/null |
        python3 -c 'import json, sys
d = json.load(sys.stdin)
b = d[0]["backup"]
print(b[-1]["info"]["repository"]["size"] if b else 0)' 2>/dev/null || echo 0
}
ws_orig() {
    as_pg "$WALSHIP" --config "$WSCONF" backup-list --json 2>/dev/null |
        python3 -c 'import json, sys
d = json.load(sys.stdin)
b = [x for x in d[0]["backups"] if x.get("complete")]
print(b[-1]["original_size"] if b else 0)' 2>/dev/null || echo 0
}
pgbr_orig() {
    as_pg pgbackrest --config="$PBCONF" --stanza=bench info --output=json 2>/dev/null |
        python3 -c 'import json, sys
d = json.load(sys.stdin)
b = d[0]["backup"]
print(b[-1]["info"]["size"] if b else 0)' 2>/dev/null || echo 0
}

# ---------------------------------------------------------------- backup
backup_run() { # TOOL REP
    local tool=$1 rep=$2 m=$SD/backup-$1-$2.measure log=$SD/backup-$1-$2.log stored
    coldcache
    case $tool in
        walship) srv_mark; measure "$m" "$WALSHIP" --config "$WSCONF" backup-push >"$log" 2>&1 ;;
        pgbr) srv_mark; measure "$m" pgbackrest --config="$PBCONF" --stanza=bench backup --type=full >"$log" 2>&1 ;;
    esac
    case $tool in
        walship) stored=$(ws_stored) ;;
        pgbr) stored=$(pgbr_stored) ;;
    esac
    record "$S" backup "$tool" "$rep" "$m" "$stored" "$log"
}

# ---------------------------------------------------------------- restore
restore_run() { # TOOL REP
    local tool=$1 rep=$2 m=$SD/restore-$1-$2.measure log=$SD/restore-$1-$2.log d=$SD/rs-$1
    freshdir "$d"
    coldcache
    srv_mark
    case $tool in
        ws-fetch) measure "$m" "$WALSHIP" --config "$WSCONF" backup-fetch LATEST "$d" >"$log" 2>&1 ;;
        ws-restore) measure "$m" "$WALSHIP" --config "$WSCONF" restore --pgdata "$d" --target-immediate >"$log" 2>&1 ;;
        pgbr) measure "$m" pgbackrest --config="$PBCONF" --stanza=bench restore --pg1-path="$d" >"$log" 2>&1 ;;
    esac
    record "$S" restore "$tool" "$rep" "$m" 0 "$log"
}

# verify_cluster DIR LABEL: start the restored cluster (archive_mode off,
# its own port and socket), wait until promoted, count the rows
VPORT=""
verify_cluster() {
    local d=$1 label=$2 i rows promoted=0 vs=$W/vsock
    mkdir -p "$vs"
    own "$vs" "$d"
    [ -n "$VPORT" ] || VPORT=$(pg_free_port)
    verify_dirs+=("$d")
    if ! pg_run "$PG_BIN/pg_ctl" -D "$d" -l "$SD/verify-$label.log" -w -t 180 \
        -o "-p $VPORT -c listen_addresses='' -c unix_socket_directories='$vs' -c archive_mode=off" start >/dev/null 2>&1; then
        out "  verify $S $label: FAILED, the restored cluster did not start: $(tail -3 "$SD/verify-$label.log" | tr '\n' ' ')"
        return 1
    fi
    for ((i = 0; i < 600; i++)); do
        if [ "$(pg_run "$PG_BIN/psql" -X -At -h "$vs" -p "$VPORT" -U postgres -d postgres -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; then
            promoted=1
            break
        fi
        sleep 0.2
    done
    rows=$(pg_run "$PG_BIN/psql" -X -At -h "$vs" -p "$VPORT" -U postgres -d postgres -c 'select count(*) from pgbench_accounts' 2>&1)
    pg_run "$PG_BIN/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null 2>&1
    if [ "$promoted" = 1 ] && [ "$rows" = "$ROWS" ]; then
        VERIFY+=("  verify $S $label: OK (recovered, promoted, $rows pgbench_accounts rows)")
        return 0
    fi
    VERIFY+=("  verify $S $label: FAILED (promoted=$promoted, pgbench_accounts: $rows, want $ROWS; log $SD/verify-$label.log)")
    return 1
}
filelist() { # DIR: "path size" of the regular files, minus the recovery settings
    (cd "$1" && find . -type f ! -name postgresql.auto.conf ! -name recovery.signal ! -name 'walship-restore.log' -printf '%P %s\n' | LC_ALL=C sort)
}
VERIFY=()
verify_restores() {
    if diff <(filelist "$SD/rs-ws-fetch") <(filelist "$SD/rs-ws-restore") >"$SD/verify-files.diff"; then
        VERIFY+=("  verify $S walship backup-fetch: OK (the same $(filelist "$SD/rs-ws-fetch" | wc -l) files and sizes as walship restore)")
    else
        VERIFY+=("  verify $S walship backup-fetch: FAILED, backup-fetch and restore differ: $(head -4 "$SD/verify-files.diff" | tr '\n' ' ')")
    fi
    verify_cluster "$SD/rs-ws-restore" walship-restore
    verify_cluster "$SD/rs-pgbr" pgbackrest-restore
}

# ---------------------------------------------------------------- profile
PROFILE_OUT=()
pout() { PROFILE_OUT+=("$@"); }
# phase_run TOOL: one more backup (cold cache) with every statement's
# duration and the checkpoints in the server log (log_line_prefix %n: epoch);
# prints where its wall time went
phase_run() {
    local tool=$1 log=$SD/phase-$1.log n0 t0 t1
    n0=$(wc -l <"$SRC/server.log")
    coldcache
    t0=$(date +%s.%N)
    case $tool in
        walship) as_pg "$WALSHIP" --config "$WSCONF" backup-push >"$log" 2>&1 ;;
        pgbr) as_pg pgbackrest --config="$PBCONF" --stanza=bench backup --type=full >"$log" 2>&1 ;;
    esac
    t1=$(date +%s.%N)
    tail -n +"$((n0 + 1))" "$SRC/server.log" | awk -v t0="$t0" -v t1="$t1" -v tool="$tool" '
        # statements may span lines: a continuation line has no epoch prefix
        $1 ~ /^[0-9]+\.[0-9]+$/ {
            ct = $1; cd = ""
            if (/duration: [0-9.]+ ms +(statement|execute)/)
                for (i = 1; i <= NF; i++) if ($i == "duration:") cd = $(i + 1) / 1000
            if (/checkpoint starting/ && ck0 == "") ck0 = $1
            if (/checkpoint complete/ && ck1 == "") ck1 = $1
        }
        cd != "" && /pg_backup_start\(/ { se = ct; ss = ct - cd; cd = "" }
        cd != "" && /pg_backup_stop\(/ { pe = ct; ps = ct - cd; cd = "" }
        END {
            if (se == "" || pe == "") { printf "  %s: pg_backup_start/stop not found in the server log\n", tool; exit }
            printf "  %-10s wall %5.2f s = before pg_backup_start %5.2f | pg_backup_start %5.2f (checkpoint %5.2f) | copy %5.2f | pg_backup_stop %5.2f | after %5.2f\n",
                (tool == "pgbr" ? "pgBackRest" : tool), t1 - t0, ss - t0, se - ss, (ck1 != "" ? ck1 - ck0 : 0), ps - se, pe - ps, t1 - pe
        }'
}
profile_backup() {
    local p=$SD/perf.data t
    note "[$S] profile: one more backup per tool with statement timings; walship backup-push and backup-fetch under perf record"
    ssql "alter system set log_min_duration_statement = 0" >/dev/null
    ssql "alter system set log_checkpoints = on" >/dev/null
    ssql "alter system set log_line_prefix = '%n [%p] '" >/dev/null
    ssql "select pg_reload_conf()" >/dev/null
    pout "" "--- profile ($S): where the wall time of one backup goes (server log: statement durations, checkpoint; $CACHE cache) ---"
    for t in walship pgbr; do
        mapfile -t -O "${#PROFILE_OUT[@]}" PROFILE_OUT < <(phase_run "$t")
    done
    pout "  (pg_backup_stop waits until the stop segment is archived: archive_command = walship wal-push && pgbackrest archive-push;"
    pout "   after = manifest, the tool's own archive check, retention, exit)"
    ssql "alter system reset log_min_duration_statement" >/dev/null
    ssql "alter system reset log_checkpoints" >/dev/null
    ssql "alter system reset log_line_prefix" >/dev/null
    ssql "select pg_reload_conf()" >/dev/null
    # walship backup-push and backup-fetch under perf record: CPU by thread
    # and library, and when each thread was busy
    coldcache
    perf record -g -F 999 -o "$p" -- runuser -u "$(pg_user)" -- "$WALSHIP" --config "$WSCONF" backup-push \
        >"$SD/profile-push.log" 2>&1
    pout "--- perf record -F 999 of one walship backup-push ($CACHE cache): $(grep -o 'in [0-9]* parts, [0-9.]* s' "$SD/profile-push.log") ---"
    perf_summary "$p"
    pout "  parts of that backup (raw = tar bytes read, compressed and hashed by one worker thread each):"
    mapfile -t -O "${#PROFILE_OUT[@]}" PROFILE_OUT < <(as_pg "$WALSHIP" --config "$WSCONF" st get \
        "backups/$(ws_newest)/manifest.json" - 2>/dev/null | python3 -c 'import json, sys
m = json.load(sys.stdin)
big = {}
for f in m["files"]:
    if f.get("size", 0) > big.get(f["part"], ("", 0))[1]:
        big[f["part"]] = (f["path"], f["size"])
for p in m["parts"]:
    b = big.get(p["number"], ("-", 0))
    print("    part %d: %7.1f MiB raw, %5.1f MiB stored, %4d files, largest %s %.1f MiB" % (p["number"], p["raw_size"] / 1048576,
          p["stored_size"] / 1048576, p["files"], b[0], b[1] / 1048576))' 2>/dev/null)
    freshdir "$SD/rs-profile"
    coldcache
    perf record -g -F 999 -o "$p.fetch" -- runuser -u "$(pg_user)" -- "$WALSHIP" --config "$WSCONF" backup-fetch LATEST \
        "$SD/rs-profile" >"$SD/profile-fetch.log" 2>&1
    pout "--- perf record -F 999 of one walship backup-fetch ($CACHE cache): $(grep -o 'in [0-9.]* s ([0-9]* MB/s)' "$SD/profile-fetch.log") ---"
    perf_summary "$p.fetch"
    rm -rf "$SD/rs-profile"
}
ws_newest() {
    as_pg "$WALSHIP" --config "$WSCONF" backup-list --json 2>/dev/null |
        python3 -c 'import json, sys; print([x for x in json.load(sys.stdin)[0]["backups"] if x.get("complete")][-1]["name"])'
}
perf_summary() { # PERFDATA: CPU by library; per thread: CPU, busy interval, CPU by library; top functions
    local p=$1
    pout "  CPU by library (self, all threads, kernel included):"
    mapfile -t -O "${#PROFILE_OUT[@]}" PROFILE_OUT < <(perf report -i "$p" -g none --no-children --sort dso --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -8 | sed 's/^ */    /')
    pout "  threads (samples at 999 Hz ~ CPU s; busy = first to last sample, from the first sample of the run):"
    mapfile -t -O "${#PROFILE_OUT[@]}" PROFILE_OUT < <(perf script -i "$p" -F tid,time 2>/dev/null | awk '
        { t = $2 + 0; k = $1; if (!(k in f)) f[k] = t; l[k] = t; n[k]++; if (t0 == "" || t < t0) t0 = t }
        END { for (k in f) if (n[k] >= 20) printf "    tid %-8s %5.2f s CPU, busy %5.2f .. %5.2f s\n", k, n[k] / 999, f[k] - t0, l[k] - t0 }' | sort -k8 -g)
    pout "  CPU by thread and library (top 10):"
    mapfile -t -O "${#PROFILE_OUT[@]}" PROFILE_OUT < <(perf report -i "$p" -g none --no-children --sort pid,dso --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -10 | sed 's/^ */    /')
    # (a stripped library's samples spread over bare addresses: its share
    # is in the lines by library above)
    pout "  CPU by function (self, all threads, top 15 with a symbol):"
    mapfile -t -O "${#PROFILE_OUT[@]}" PROFILE_OUT < <(perf report -i "$p" -g none --no-children --sort dso,sym --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | grep -vE '\[\.\] 0x[0-9a-f]+ *$' | head -15 | sed 's/^ */    /')
}

# ---------------------------------------------------------------- report
col() { # STORAGE OP TOOL FIELD-EXPR -> median over runs
    awk -v s="$1" -v o="$2" -v t="$3" '$1 == s && $2 == o && $3 == t { print '"$4"' }' "$REC" | med
}
# shellcheck disable=SC2016  # awk field expressions for col()
fmt_table() { # STORAGE OP REF TOOLS... (REF = pgBackRest: ratio = REF wall / tool wall)
    local st=$1 op=$2 ref=$3 t wall wall_all cpu srv rss stored walls label rwall
    shift 3
    rwall=$(col "$st" "$op" "$ref" '$6')
    out "$(printf '%-40s %8s %8s %6s %8s %10s %8s %8s  %s' tool 'wall s' 'CPU s' 'cores' 'srv CPU' 'RSS MB' 'stored MB' 'ratio' 'runs (wall s)')"
    for t in "$@"; do
        wall=$(col "$st" "$op" "$t" '$6')
        [ "$wall" = NA ] && continue
        wall_all=$(col "$st" "$op" "$t" '$7')
        cpu=$(col "$st" "$op" "$t" '$8 + $9')
        srv=$(col "$st" "$op" "$t" '($12 == "" ? 0 : $12)')
        rss=$(col "$st" "$op" "$t" '$10 / 1024')
        stored=$(col "$st" "$op" "$t" '$11 / 1048576')
        walls=$(awk -v s="$st" -v o="$op" -v t="$t" '$1 == s && $2 == o && $3 == t { printf "%s%s%s", sep, $6, ($5 != 0 ? "(FAILED)" : ""); sep = " " }' "$REC")
        case $op/$t in
            backup/walship) label="walship backup-push" ;;
            backup/pgbr) label="pgBackRest backup --type=full" ;;
            backup/tar-zstd) label="tar | zstd -3 -T2 (machine limit)" ;;
            restore/ws-fetch) label="walship backup-fetch LATEST" ;;
            restore/ws-restore) label="walship restore --target-immediate" ;;
            restore/pgbr) label="pgBackRest restore" ;;
            restore/zstd-tar) label="zstd -d | tar -x, no sync (machine)" ;;
            *) label=$t ;;
        esac
        out "$(printf '%-40s %8.2f %8.2f %6.2f %8s %8.0f %10s %8s  %s' "$label" "$wall" "$cpu" \
            "$(awk -v c="$cpu" -v w="$wall_all" 'BEGIN { print (w > 0 ? c / w : 0) }')" \
            "$(awk -v v="$srv" -v s="$st" 'BEGIN { if (s == "s3") printf "%.2f", v; else print "-" }')" "$rss" \
            "$(awk -v b="$stored" 'BEGIN { if (b > 0) printf "%.1f", b; else print "-" }')" \
            "$(awk -v a="$rwall" -v b="$wall" 'BEGIN { if (a == "NA" || b == 0) print "-"; else printf "%.2f", a / b }')" "$walls")"
    done
}
# shellcheck disable=SC2016
target_line() { # LABEL STORAGE OP TOOL (ratio pgbr wall / TOOL wall >= 2)
    local a b verdict
    a=$(col "$2" "$3" pgbr '$6')
    b=$(col "$2" "$3" "$4" '$6')
    verdict=$(awk -v a="$a" -v b="$b" 'BEGIN {
        if (a == "NA" || b == "NA" || b == 0) { print "n/a"; exit }
        r = a / b
        if (r >= 2) printf "MET (pgBackRest/walship = %.2fx >= 2x: walship %.2f s <= 0.5 x %.2f s = %.2f s)", r, b, a, a / 2
        else printf "NOT MET (pgBackRest/walship = %.2fx < 2x: walship %.2f s > 0.5 x %.2f s = %.2f s; %.2f s or %.0f%% too slow)", r, b, a, a / 2, b - a / 2, (b / (a / 2) - 1) * 100 }')
    out "  $1: $verdict"
}

# ---------------------------------------------------------------- main
ref_runs
for st in $storages; do
    storage_setup "$st"
    note "[$S] load average $(cut -d' ' -f1-3 /proc/loadavg); backups: $runs runs per tool"
    for ((r = 1; r <= runs; r++)); do
        if ((r % 2)); then order="walship pgbr"; else order="pgbr walship"; fi
        for tool in $order; do backup_run "$tool" "$r"; done
    done
    ws_orig_b=$(ws_orig)
    pgbr_orig_b=$(pgbr_orig)
    eval "ORIG_$S='walship $((ws_orig_b / 1048576)) MiB, pgBackRest $((pgbr_orig_b / 1048576)) MiB'"
    note "[$S] load average $(cut -d' ' -f1-3 /proc/loadavg); restores: $runs runs per tool"
    for ((r = 1; r <= runs; r++)); do
        if ((r % 2)); then order="ws-fetch ws-restore pgbr"; else order="pgbr ws-restore ws-fetch"; fi
        for tool in $order; do restore_run "$tool" "$r"; done
    done
    if [ "$verify" = 1 ]; then
        note "[$S] verifying the restored clusters of the last run"
        verify_restores
    fi
    rm -rf "$SD"/rs-*
    if [ "$profile" = 1 ]; then profile_backup; fi
    storage_teardown
done

out "walship base-backup benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work shares the machine)"
out "walship: $WS_VERSION; $PGBR_VERSION; PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }')"
out "database: pgbench -i -s $scale$([ "$big_mb" -gt 0 ] && echo " + table big of $big_mb MiB random rows (one relation)"), PGDATA without pg_wal $((pgdata_bytes / 1048576)) MiB, no write load during the runs"
out "both: zstd level 3, encryption (walship AES-256-GCM key_file; pgBackRest aes-256-cbc), parallelism 2, archive_command = walship wal-push && pgbackrest archive-push"
out "page cache: $([ "$warm" = 0 ] && echo "dropped before every timed command of every tool (sync; echo 3 > /proc/sys/vm/drop_caches)" || echo "warm (--warm)")"
out "medians of $runs runs, tools alternating; ratio = pgBackRest's wall / the tool's wall (> 1: the tool is faster than pgBackRest);"
out "CPU = user+sys of every process the command started (not PostgreSQL's, not the storage server's); cores = CPU / wall; srv CPU = user+sys of the Swift servers (proxy, object, container, account; s3 only) over the same command; RSS = largest single process"
out ""
out "=== machine limits on the same PGDATA (no encryption, one tar stream) ==="
fmt_table machine backup none tar-zstd
fmt_table machine restore none zstd-tar
for st in $storages; do
    case $st in
        posix) desc="posix: pgBackRest repo1-type=posix vs walship file:// region, same disk" ;;
        s3) desc="s3: one local Swift s3api region (us-east-1) over TLS, a bucket per tool" ;;
    esac
    out ""
    out "=== $desc ==="
    out ""
    out "backup (stored MB = the tool's own report for the backup; original size: $(eval echo "\${ORIG_$st:-?}"))"
    fmt_table "$st" backup pgbr walship pgbr
    out ""
    out "restore into an empty directory"
    fmt_table "$st" restore pgbr ws-fetch ws-restore pgbr
    out ""
    out "DESIGN.md §8 targets ($st):"
    target_line "backup-push wall <= 0.5 x pgBackRest backup" "$st" backup walship
    target_line "restore wall <= 0.5 x pgBackRest restore (backup-fetch)" "$st" restore ws-fetch
    target_line "restore wall <= 0.5 x pgBackRest restore (restore --target-immediate)" "$st" restore ws-restore
done
if [ "${#VERIFY[@]}" -gt 0 ]; then
    out ""
    out "restored clusters (last run; started with archive_mode = off):"
    for v in "${VERIFY[@]}"; do out "$v"; done
fi
for v in "${PROFILE_OUT[@]}"; do out "$v"; done
failed=$(awk '$5 != 0' "$REC" | wc -l)
if [ "$failed" -gt 0 ]; then
    out ""
    out "WARNING: $failed timed commands failed (marked FAILED above; their logs are in the work directory, kept with --keep)"
fi
out ""
out "results: $RES"
