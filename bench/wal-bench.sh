#!/bin/bash
# bench/wal-bench.sh — WAL archiving and fetching, walship side by side with
# pgBackRest 2.45 on the same WAL, the same storage, in the same run
# (DESIGN.md §8).
#
#   bench/wal-bench.sh [--storage posix|s3|both] [--segments N] [--runs R]
#                      [--duration S] [--sustained-runs K] [--scale S]
#                      [--scenarios push,fetch,sustained] [--diag] [--keep]
#                      [--delay-ms N] [--proc] [--perf]
#
#   --storage         posix: pgBackRest repo1-type=posix vs a walship file://
#                     region, both under one temp dir on the same disk;
#                     s3: one local Swift s3api region (us-east-1) behind TLS
#                     (pgBackRest's S3 driver speaks HTTPS only), a bucket per
#                     tool.  Default: both when Swift is installed, else posix.
#   --segments N      ready segments for the synthetic push and the fetch
#                     (default 200)
#   --runs R          repetitions of each timed scenario; medians are
#                     reported (default 3)
#   --duration S      seconds of pgbench in the sustained scenario (default 60)
#   --sustained-runs K  repetitions of the sustained scenario per tool
#                     (default 1: it is one 60-sample time series per tool)
#   --scale S         pgbench scale (default 50, like DESIGN.md §8)
#   --keep            keep the work directory (printed) for inspection
#   --delay-ms N      s3 only: the fetch scenario reads through
#                     bench/lib/delayproxy.py, N ms each way (35: a 70 ms
#                     round trip between regions), for both tools; TLS passes
#                     through it unchanged.  Pushes go direct.  Default 0.
#   --scenarios LIST  comma-separated subset of push,fetch,sustained (default
#                     all; fetch needs push)
#   --proc            also run walship with archive_async_process = on (the
#                     local archiver process, docs/WAL.md) in the push and
#                     sustained scenarios, archive_async_idle = 2 (rows
#                     "walship + process", "walship-proc")
#   --perf            after the push runs, one more drain of walship (and of
#                     walship + process with --proc) under `perf record`,
#                     the run's processes only (daemons included: they are
#                     its descendants), not in the table; `perf report
#                     --sort comm,dso` and `--sort sym` of each are appended
#                     to the results
#   --diag            also run walship with parallel = 3 in the push scenario
#                     (diagnostic rows, not part of the comparison: push-ahead
#                     runs parallel - 1 threads beside the requested file)
#
# Both tools: zstd level 3, encryption (walship key_file from `walship
# keygen`; pgBackRest repo1-cipher-type=aes-256-cbc), parallelism 2 (walship
# parallel = 2; pgBackRest process-max=2).
#
# Scenarios, per storage:
#   push      N ready segments of real pgbench WAL in a pg_wal/archive_status
#             copy; bench/lib/archiver.sh does what PostgreSQL's archiver does
#             (archive_command through sh -c for each .ready, oldest first,
#             rename to .done on exit 0).  walship wal-push (push-ahead on,
#             spool_dir set) vs pgbackrest archive-push, archive-async=n and
#             archive-async=y.  Wall time until the last file was
#             acknowledged, and until the last process the run left behind
#             exited; CPU and peak RSS of every process of the run (daemons
#             included: bench/lib/measure.py is a child subreaper).  The
#             repository is then listed: all N objects must be there.
#   fetch     those N segments fetched back in order by bench/lib/restorer.sh
#             (what the startup process does with restore_command:
#             %p = pg_wal/RECOVERYXLOG, then renamed): walship wal-fetch with
#             prefetch (default) and --no-prefetch vs pgbackrest archive-get,
#             sync and async (archive-get-queue-max=128MB, the same 8
#             segments walship prefetches with parallel = 2).  After the
#             first run of each mode every restored file is compared with
#             the original (later runs: present and full size).
#   sustained a real PostgreSQL 15 whose archive_command is walship wal-push,
#             (with --proc: walship wal-push with the local archiver
#             process,) pgbackrest archive-push archive-async=n, then
#             archive-async=y, one after the other, each under pgbench -c 2
#             -j 2 -T S; pg_stat_archiver sampled once a second: segments/s
#             generated and archived, archive lag in segments (complete
#             segments not archived yet: the segment WAL is being written
#             to - 1 - last_archived_wal, on the same timeline), its max,
#             95th percentile (nearest rank), mean and the seconds it was
#             above 1, the count of .ready files, time to drain after
#             pgbench stops, archiving CPU from the tool's first call (the
#             switch's segment) to the end of the drain (the archiver and
#             everything it started, detached daemons included, through a
#             cpuacct cgroup when one can be made; else the archiver's
#             reaped children).
#
# The WAL is real: a throwaway cluster (archive_mode = on, archive_command
# = '' so that PostgreSQL keeps every segment) runs pgbench -i -s S, then
# rounds of CHECKPOINT + pgbench -c 2 -T 10 + an UPDATE of a tenth of
# pgbench_accounts, until N segments past the initial load are complete;
# those N are the input.  The pgBackRest stanza is created for that same
# cluster (the system identifier in the WAL must match).
#
# Results: a table per scenario (medians of R runs; ratio = pgBackRest's
# figure / walship's, > 1 means walship is faster), the DESIGN.md §8 targets
# met or not, in bench/results/wal-YYYYmmdd-HHMMSS.txt and on stdout;
# progress on stderr.  Needs PostgreSQL 15, python3, and pgbackrest (installed
# with apt-get when missing and run as root); s3 needs Swift (TESTING.md) and
# openssl.  Run as root (servers and tools then run as "postgres") or as the
# user that owns everything.  Environment: WALSHIP (the binary; default
# _build/default/walship, else ./walship), TMPDIR.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$top/tests/lib/pg.sh"
# shellcheck source=/dev/null
. "$top/tests/lib/swift.sh"
# shellcheck source=/dev/null
. "$top/bench/lib/swift-tls.sh"

storage=""
nseg=200
runs=3
duration=60
sruns=1
scale=50
keep=0
delay_ms=0
DPORT="" DPID=""
diag=0
proc=0
perf=0
scenarios=push,fetch,sustained
while [ $# -gt 0 ]; do
    case $1 in
        --storage) storage=${2:?}; shift 2 ;;
        --storage=*) storage=${1#*=}; shift ;;
        --segments) nseg=${2:?}; shift 2 ;;
        --segments=*) nseg=${1#*=}; shift ;;
        --runs) runs=${2:?}; shift 2 ;;
        --runs=*) runs=${1#*=}; shift ;;
        --duration) duration=${2:?}; shift 2 ;;
        --duration=*) duration=${1#*=}; shift ;;
        --sustained-runs) sruns=${2:?}; shift 2 ;;
        --sustained-runs=*) sruns=${1#*=}; shift ;;
        --scale) scale=${2:?}; shift 2 ;;
        --scale=*) scale=${1#*=}; shift ;;
        --keep) keep=1; shift ;;
        --delay-ms) delay_ms=${2:?}; shift 2 ;;
        --diag) diag=1; shift ;;
        --proc) proc=1; shift ;;
        --perf) perf=1; shift ;;
        --scenarios) scenarios=${2:?}; shift 2 ;;
        --scenarios=*) scenarios=${1#*=}; shift ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "wal-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
have_swift=0
command -v swift-proxy-server >/dev/null && command -v memcached >/dev/null && have_swift=1
case $storage in
    "") if [ "$have_swift" = 1 ]; then storages="posix s3"; else storages=posix; fi ;;
    both) storages="posix s3" ;;
    posix | s3) storages=$storage ;;
    *) echo "wal-bench: --storage posix|s3|both" >&2; exit 2 ;;
esac
[[ $delay_ms =~ ^[0-9]+$ ]] || { echo "wal-bench: --delay-ms N (milliseconds each way)" >&2; exit 2; }
want() { case ",$scenarios," in *",$1,"*) return 0 ;; esac; return 1; }
if want fetch && ! want push; then echo "wal-bench: fetch needs push" >&2; exit 2; fi
case " $storages " in *" s3 "*) [ "$have_swift" = 1 ] || { echo "wal-bench: s3 needs Swift (see TESTING.md)" >&2; exit 2; } ;; esac

WALSHIP=${WALSHIP:-}
if [ -z "$WALSHIP" ]; then
    for c in "$top/_build/default/walship" "$top/walship"; do
        [ -x "$c" ] && { WALSHIP=$c; break; }
    done
fi
[ -n "$WALSHIP" ] && [ -x "$WALSHIP" ] || { echo "wal-bench: no walship binary (build it or set WALSHIP)" >&2; exit 2; }
[ -x "$PG_BIN/postgres" ] || { echo "wal-bench: PostgreSQL 15 is not installed ($PG_BIN)" >&2; exit 2; }
if ! command -v pgbackrest >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "wal-bench: installing pgbackrest" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >/dev/null 2>&1 ||
            { echo "wal-bench: apt-get install pgbackrest failed" >&2; exit 2; }
    else
        echo "wal-bench: pgbackrest is not installed (apt-get install pgbackrest)" >&2
        exit 2
    fi
fi
PGBR_VERSION=$(pgbackrest version 2>/dev/null)
WS_VERSION=$("$WALSHIP" --version 2>&1 | head -1)

note() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { note "FATAL: $*"; exit 1; }
own() { if [ "$(id -u)" = 0 ]; then chown -R "$(pg_user)" "$@"; fi; }
as_pg() { pg_run "$@"; }

W=$(mktemp -d "${TMPDIR:-/tmp}/walship-walbench.XXXXXX") || exit 1
chmod 755 "$W"
own "$W"
SRC=$W/src
src_up=0
swift_dirs=()
cleanup() {
    local d
    if [ "$src_up" = 1 ]; then pg_stop "$SRC" immediate; fi
    if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null; fi
    for d in "${swift_dirs[@]}"; do swift_stop "$d"; done
    if [ -n "${CG:-}" ]; then
        for d in "$CG"/walbench-$$-*; do [ -d "$d" ] && cg_end "$d"; done
    fi
    if [ "$keep" = 1 ]; then
        note "work directory kept: $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$top/bench/results"
RES=$top/bench/results/wal-$(date +%Y%m%d-%H%M%S).txt
: >"$RES"
out() { printf '%s\n' "$*" | tee -a "$RES"; }
REC=$W/records            # storage scenario tool rep rc wall wall_all user sys rss objects stored_bytes
SUS=$W/sustained          # storage tool rep fields... (see sustained_run)
: >"$REC"
: >"$SUS"

# ---------------------------------------------------------------- helpers
segno() { # hex WAL file name -> segment number (16 MB segments)
    local n=$1
    echo $((16#${n:8:8} * 256 + 16#${n:16:8}))
}
med() { # median of the numbers on stdin
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ssql() { pg_sql "$SRC" "$PGPORT" "$1"; }

# ---------------------------------------------------------------- WAL source
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
PGPORT=$(pg_free_port)
note "walship: $WS_VERSION ($WALSHIP); $PGBR_VERSION; work dir $W"
note "source cluster: initdb, pgbench -i -s $scale"
pg_init "$SRC" || die "initdb"
pg_conf "$SRC" "archive_mode = on"
pg_conf "$SRC" "archive_command = ''"
pg_conf "$SRC" "max_wal_size = 4GB"
pg_conf "$SRC" "checkpoint_timeout = 30s"
pg_start "$SRC" "$PGPORT" || die "postgres did not start"
src_up=1
pgb() { pg_run "$PG_BIN/pgbench" -h "$SRC/sock" -p "$PGPORT" -U postgres "$@" postgres; }
pgb -i -q -s "$scale" >"$W/pgbench-init.log" 2>&1 || { cat "$W/pgbench-init.log" >&2; die "pgbench -i"; }
first=$(($(segno "$(ssql 'select pg_walfile_name(pg_current_wal_lsn())')") + 1))
last=$((first + nseg - 1))
note "generating WAL: segments $first..$last (CHECKPOINT + pgbench -T 10 + UPDATE of 10% of the rows, in rounds)"
round=0
while [ "$(segno "$(ssql 'select pg_walfile_name(pg_current_wal_lsn())')")" -le "$last" ]; do
    ssql "checkpoint" >/dev/null
    pgb -n -c 2 -j 2 -T 10 >>"$W/pgbench-gen.log" 2>&1 || die "pgbench"
    ssql "update pgbench_accounts set abalance = abalance + 1 where aid % 10 = $((round % 10))" >/dev/null
    round=$((round + 1))
done
mkdir -p "$W/segs"
SEGLIST=$W/seglist
: >"$SEGLIST"
for ((s = first; s <= last; s++)); do
    printf '00000001%08X%08X\n' $((s / 256)) $((s % 256)) >>"$SEGLIST"
done
while read -r f; do
    cp "$SRC/data/pg_wal/$f" "$W/segs/$f" || die "copy $f"
done <"$SEGLIST"
cp "$SRC/data/global/pg_control" "$W/pg_control"
own "$W/segs" "$W/pg_control" "$SEGLIST"
seg_bytes=$(du -cb "$W"/segs/* | tail -1 | cut -f1)
zstd_bytes=$(cat "$W"/segs/* | zstd -3 -T2 -c | wc -c)
note "input: $nseg segments ($(head -1 "$SEGLIST")..$(tail -1 "$SEGLIST")), $((seg_bytes / 1048576)) MiB, zstd -3: $((zstd_bytes / 1048576)) MiB"
# let the source archive its backlog into nowhere: it is the sustained
# scenario's cluster now
ssql "alter system set archive_command = '/bin/true'" >/dev/null
ssql "select pg_reload_conf()" >/dev/null

"$WALSHIP" keygen "$W/ws.key" >/dev/null 2>&1 || die "walship keygen"
own "$W/ws.key"
PGBR_PASS=$(openssl rand -hex 24)

# ---------------------------------------------------------------- storage setup
S="" SD="" S3PORT="" CERT=""
storage_setup() {
    S=$1
    SD=$W/$S
    mkdir -p "$SD"
    own "$SD"
    if [ "$S" = s3 ]; then
        note "s3: starting a Swift region (us-east-1) behind TLS"
        swift_tls_cert "$SD/tls" || die "openssl"
        chmod 644 "$SD/tls/cert.pem"
        swift_dirs+=("$SD/swift")
        swift_start_tls "$SD/swift" us-east-1 "$SD/tls/cert.pem" "$SD/tls/key.pem" pgbr walship || die "swift"
        S3PORT=$SWIFT_PORT
        CERT=$SD/tls/cert.pem
        if [ "$delay_ms" -gt 0 ]; then
            DPORT=$(pg_free_port)
            python3 "$top/bench/lib/delayproxy.py" --listen "127.0.0.1:$DPORT" --target "127.0.0.1:$S3PORT" \
                --delay-ms "$delay_ms" --pidfile "$SD/delay.pid" >"$SD/delay.log" 2>&1 &
            DPID=$!
            for _ in $(seq 50); do [ -s "$SD/delay.pid" ] && break; sleep 0.1; done
            [ -s "$SD/delay.pid" ] || die "the delay proxy did not start"
            note "s3: fetches go through a ${delay_ms} ms (each way) link on port $DPORT"
        fi
    fi
}
storage_teardown() {
    if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID="" DPORT=""; fi
    if [ "$S" = s3 ]; then swift_stop "$SD/swift"; fi
}

# ws_conf NAME [PARALLEL [PROC]]: a walship config for a fresh region/prefix
# NAME, with the archiver process when PROC is 1; prints its path
ws_conf() {
    local name=$1 conf=$SD/$1.ws.conf par=${2:-2} wproc=${3:-0}
    mkdir -p "$SD/ws-spool-$name"
    {
        echo "[global]"
        echo "key_file = $W/ws.key"
        echo "spool_dir = $SD/ws-spool-$name"
        echo "parallel = $par"
        echo "compression = zstd:3"
        # info with the process: wal-push says when and why it pushed a
        # file itself (counted in the run's line)
        echo "log_level = $([ "$wproc" = 1 ] && echo info || echo warning)"
        if [ "$wproc" = 1 ]; then
            echo "archive_async_process = on"
            echo "archive_async_idle = 2"
        fi
        echo
        if [ "$S" = posix ]; then
            mkdir -p "$SD/ws-repo-$name"
            echo "[region local]"
            echo "url = file://$SD/ws-repo-$name"
        else
            echo "[region us-east-1]"
            echo "url = s3://walship/$name"
            echo "endpoint = https://127.0.0.1:$S3PORT"
            echo "path_style = true"
            echo "ca_file = $CERT"
            echo "access_key_id = test:tester"
            echo "secret_access_key = testing"
        fi
    } >"$conf"
    chmod 600 "$conf"
    own "$conf" "$SD/ws-spool-$name"
    [ "$S" = posix ] && own "$SD/ws-repo-$name"
    echo "$conf"
}
# pgbr_conf OUT REPO ASYNC PG1PATH: a pgBackRest config on repository REPO
pgbr_conf() {
    local conf=$1 repo=$2 async=$3 pg1=$4
    mkdir -p "$SD/pgbr-spool-$repo" "$SD/pgbr-lock-$repo"
    {
        echo "[global]"
        if [ "$S" = posix ]; then
            echo "repo1-type=posix"
            echo "repo1-path=$SD/pgbr-repo-$repo"
        else
            echo "repo1-type=s3"
            echo "repo1-path=/$repo"
            echo "repo1-s3-bucket=pgbr"
            echo "repo1-s3-endpoint=127.0.0.1"
            echo "repo1-storage-port=${PGBR_PORT:-$S3PORT}"
            echo "repo1-storage-ca-file=$CERT"
            echo "repo1-s3-region=us-east-1"
            echo "repo1-s3-key=test:tester"
            echo "repo1-s3-key-secret=testing"
            echo "repo1-s3-uri-style=path"
        fi
        echo "repo1-cipher-type=aes-256-cbc"
        echo "repo1-cipher-pass=$PGBR_PASS"
        echo "compress-type=zst"
        echo "compress-level=3"
        echo "process-max=2"
        echo "archive-async=$async"
        echo "archive-get-queue-max=128MB"
        echo "spool-path=$SD/pgbr-spool-$repo"
        echo "lock-path=$SD/pgbr-lock-$repo"
        echo "log-level-console=warn"
        echo "log-level-stderr=warn"
        echo "log-level-file=off"
        echo
        echo "[bench]"
        echo "pg1-path=$pg1"
        echo "pg1-port=$PGPORT"
        echo "pg1-socket-path=$SRC/sock"
    } >"$conf"
    chmod 600 "$conf"
    own "$conf" "$SD/pgbr-spool-$repo" "$SD/pgbr-lock-$repo"
}
pgbr_stanza() { # CONF: stanza-create on a fresh repository (needs the source cluster up)
    as_pg pgbackrest --config="$1" --stanza=bench --pg1-path="$SRC/data" stanza-create >>"$SD/stanza.log" 2>&1 ||
        { tail -5 "$SD/stanza.log" >&2; die "pgbackrest stanza-create"; }
}
# fake_pgdata DIR [ready]: global/pg_control and pg_wal (the segments
# hard-linked, each .ready) or an empty pg_wal
fake_pgdata() {
    local d=$1 f
    rm -rf "$d"
    mkdir -p "$d/global" "$d/pg_wal/archive_status"
    cp "$W/pg_control" "$d/global/pg_control"
    if [ "${2:-}" = ready ]; then
        while read -r f; do
            ln "$W/segs/$f" "$d/pg_wal/$f"
            : >"$d/pg_wal/archive_status/$f.ready"
        done <"$SEGLIST"
    fi
    own "$d"
}
objects_ws() { # CONF -> "count bytes" of wal/ objects
    as_pg "$WALSHIP" --config "$1" st ls wal/ --long 2>/dev/null |
        awk '$3 ~ /^wal\/[0-9A-F]+$/ && length($3) == 28 { n++; b += $1 } END { printf "%d %d\n", n, b }'
}
objects_pgbr() { # CONF -> "count bytes" of archived segments
    as_pg pgbackrest --config="$1" --stanza=bench repo-ls --recurse --output=json archive/bench 2>/dev/null |
        python3 -c 'import json, re, sys
d = json.load(sys.stdin)
f = [v["size"] for k, v in d.items() if v["type"] == "file" and re.search(r"/[0-9A-F]{24}-[0-9a-f]{40}\.zst$", k)]
print(len(f), sum(f))'
}
measure() { # OUT CMD...: run CMD as the PostgreSQL user under measure.py
    local o=$1
    shift
    as_pg python3 "$top/bench/lib/measure.py" "$o" -- "$@"
}
warm() { cat "$W"/segs/* >/dev/null; }

# ---------------------------------------------------------------- push
push_run() { # TOOL REP
    local tool=$1 rep=$2 name=push-$1-$2 d conf cmd m objs
    d=$SD/data-$name
    fake_pgdata "$d" ready
    case $tool in
        walship | walship-p3 | walship-proc)
            conf=$(ws_conf "$name" "$([ "$tool" = walship-p3 ] && echo 3 || echo 2)" "$([ "$tool" = walship-proc ] && echo 1 || echo 0)")
            cmd="$WALSHIP --config $conf wal-push %p"
            ;;
        pgbr-sync | pgbr-async)
            conf=$SD/$name.pgbr.conf
            pgbr_conf "$conf" "$name" "$([ "$tool" = pgbr-async ] && echo y || echo n)" "$d"
            pgbr_stanza "$conf"
            cmd="pgbackrest --config=$conf --stanza=bench archive-push %p"
            ;;
    esac
    echo "$conf" >"$SD/last-$tool.conf"
    echo "$name" >"$SD/last-$tool.repo"
    warm
    sync
    m=$SD/$name.measure
    local srv0 srv
    srv0=$(swift_cpu_ticks "$SD/swift")
    measure "$m" bash "$top/bench/lib/archiver.sh" "$d" "$cmd" 2>"$SD/$name.log"
    local rc=$?
    # the storage server's CPU during the drain (Swift shares the cores)
    srv=$(awk -v a="$srv0" -v b="$(swift_cpu_ticks "$SD/swift")" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (b > a ? b - a : 0) / hz }')
    echo "$S $tool $rep $srv" >>"$W/srv-cpu"
    case $tool in walship*) objs=$(objects_ws "$conf") ;; *) objs=$(objects_pgbr "$conf") ;; esac
    read -r mrc wall wall_all user sys rss <"$m"
    [ "$rc" = 0 ] && [ "${objs%% *}" = "$nseg" ] ||
        note "  WARNING: $name: exit $rc, $objs objects in the repository (want $nseg); log: $(tail -3 "$SD/$name.log" | tr '\n' ' ')"
    echo "$S push $tool $rep $mrc $wall $wall_all $user $sys $rss $objs" >>"$REC"
    note "  push $tool run $rep: ${wall}s (all done ${wall_all}s), cpu $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')s$([ "$S" = s3 ] && echo ", storage server cpu ${srv}s"), rss ${rss}kB, repo: $objs"
    if [ "$tool" = walship-proc ]; then
        note "    wal-push pushed $(grep -c ' here: ' "$SD/$name.log") of $nseg itself: $(sed -n 's/.* here: //p' "$SD/$name.log" | sort | uniq -c | sort -rn | tr -s ' ' | tr '\n' ';')"
    fi
    rm -rf "$d"
}

# perf_run TOOL: one more drain under perf record (this run's processes
# only: the machine is shared), reported by process and library
perf_run() {
    local tool=$1 name=perf-$1 d conf pd=$W/perf-$S-$1.data
    d=$SD/data-$name
    fake_pgdata "$d" ready
    conf=$(ws_conf "$name" 2 "$([ "$tool" = walship-proc ] && echo 1 || echo 0)")
    warm
    sync
    perf record -F 499 -g -o "$pd" -- runuser -u "$(pg_user)" -- env PATH="$PG_BIN:$PATH" \
        bash "$top/bench/lib/archiver.sh" "$d" "$WALSHIP --config $conf wal-push %p" >/dev/null 2>"$SD/$name.log"
    perf report -i "$pd" --no-children --sort comm,dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
        awk '$1 ~ /%$/' | head -25 >"$W/perf-$S-$tool.txt"
    perf report -i "$pd" --no-children --sort sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' |
        awk '$1 ~ /%$/' | head -25 >"$W/perf-$S-$tool.sym.txt"
    note "  perf $tool: $(head -3 "$W/perf-$S-$tool.txt" | tr -s ' ' | tr '\n' ';')"
    rm -rf "$d"
}

# ---------------------------------------------------------------- fetch
fetch_run() { # MODE REP
    local mode=$1 rep=$2 name=fetch-$1-$2 d conf cmd m bad=0 f
    d=$SD/data-$name
    fake_pgdata "$d"
    case $mode in
        walship-prefetch | walship-noprefetch)
            conf=$(cat "$SD/last-walship.conf")
            if [ -n "$DPORT" ]; then    # the same region, over the slow link
                sed "s|127.0.0.1:$S3PORT|127.0.0.1:$DPORT|" "$conf" >"$SD/$name.ws.conf"
                conf=$SD/$name.ws.conf
                chmod 600 "$conf"
                own "$conf"
            fi
            cmd="$WALSHIP --config $conf wal-fetch %f %p"
            [ "$mode" = walship-noprefetch ] && cmd="$cmd --no-prefetch"
            ;;
        pgbr-sync | pgbr-async)
            conf=$SD/$name.pgbr.conf
            # the repository the last archive-async push filled
            local repo
            repo=$(cat "$SD/last-pgbr-async.repo")
            PGBR_PORT=$DPORT pgbr_conf "$conf" "$repo" "$([ "$mode" = pgbr-async ] && echo y || echo n)" "$d"
            rm -rf "$SD/pgbr-spool-$repo/archive/bench/in"
            cmd="pgbackrest --config=$conf --stanza=bench archive-get %f %p"
            ;;
    esac
    sync
    m=$SD/$name.measure
    measure "$m" bash "$top/bench/lib/restorer.sh" "$d" "$SEGLIST" "$cmd" 2>"$SD/$name.log"
    local rc=$?
    if [ "$rep" = 1 ]; then   # compare every restored file once per mode
        while read -r f; do
            cmp -s "$d/pg_wal/$f" "$W/segs/$f" || bad=$((bad + 1))
        done <"$SEGLIST"
    else                      # later runs: every file is there, full size
        while read -r f; do
            [ "$(stat -c %s "$d/pg_wal/$f" 2>/dev/null)" = "$(stat -c %s "$W/segs/$f")" ] || bad=$((bad + 1))
        done <"$SEGLIST"
    fi
    read -r mrc wall wall_all user sys rss <"$m"
    [ "$rc" = 0 ] && [ "$bad" = 0 ] ||
        note "  WARNING: $name: exit $rc, $bad restored files differ or are missing; log: $(tail -3 "$SD/$name.log" | tr '\n' ' ')"
    echo "$S fetch $mode $rep $mrc $wall $wall_all $user $sys $rss $((nseg - bad)) 0" >>"$REC"
    note "  fetch $mode run $rep: ${wall}s (all done ${wall_all}s), cpu $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')s, rss ${rss}kB, $((nseg - bad))/$nseg $([ "$rep" = 1 ] && echo identical || echo complete)"
    rm -rf "$d"
}

# ---------------------------------------------------------------- sustained
# sample: one line: epoch current_wal last_archived archived_count failed_count ready
#   current_wal is the segment WAL is being written to: the one holding the
#   next byte to write, pg_current_wal_lsn() + 1 (pg_walfile_name() names the
#   segment *before* an LSN on a segment boundary, XLByteToPrevSeg: right
#   after a switch it would name the segment just completed, and the lag
#   below would come out one short).  Its timeline is the insertion
#   timeline, as last_archived_wal's is the archived file's.
sample() {
    ssql "select extract(epoch from clock_timestamp())::numeric(20,3), pg_walfile_name(pg_current_wal_lsn() + 1),
                 coalesce(last_archived_wal, '-'), archived_count, failed_count,
                 (select count(*) from pg_ls_archive_statusdir() where name like '%.ready')
          from pg_stat_archiver" | tr '|' ' '
}
archiver_pid() { ssql "select pid from pg_stat_activity where backend_type = 'archiver'"; }
archiver_child_cpu() { # CPU seconds of the archiver's reaped children (archive_command runs)
    awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($14 + $15) / t }' "/proc/$(archiver_pid)/stat"
}
# cg_start NAME: a cpuacct cgroup for the archiver, so that everything it
# starts from now on is accounted, daemons that detach from it included
# (they never return to it to be reaped); prints its directory, or nothing
# when no cgroup can be made (not root, no cgroup v1 cpuacct)
CG=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpuacct(,|$)/ { print $2; exit }' /proc/mounts)
cg_start() {
    local d=$CG/walbench-$$-$1
    [ -n "$CG" ] && [ "$(id -u)" = 0 ] || return 0
    mkdir "$d" 2>/dev/null || return 0
    if echo "$(archiver_pid)" >"$d/tasks" 2>/dev/null; then
        echo "$d"
    else
        rmdir "$d"
    fi
}
cg_end() { # DIR: its processes (the archiver, a daemon still idling) back to the root group, then it goes
    local p
    for p in $(cat "$1/tasks" 2>/dev/null); do echo "$p" >"$CG/tasks" 2>/dev/null; done
    rmdir "$1" 2>/dev/null
}
sustained_run() { # TOOL REP
    local tool=$1 rep=$2 name=sust-$1-$2 conf cmd samples=$SD/sust-$1-$2.samples stop=$SD/sust-$1-$2.stop
    case $tool in
        walship | walship-proc)
            conf=$(ws_conf "$name" 2 "$([ "$tool" = walship-proc ] && echo 1 || echo 0)")
            cmd="$WALSHIP --config $conf wal-push %p"
            ;;
        pgbr-sync | pgbr-async)
            conf=$SD/$name.pgbr.conf
            pgbr_conf "$conf" "$name" "$([ "$tool" = pgbr-async ] && echo y || echo n)" "$SRC/data"
            pgbr_stanza "$conf"
            cmd="pgbackrest --config=$conf --stanza=bench archive-push %p"
            ;;
    esac
    # CPU from before the tool's first call on: a daemon the switch's segment
    # starts may live on into the pgbench run (walship's idles 2 s), and one
    # started before the cgroup would not be counted.  But first the
    # backlog goes to /bin/true (the WAL generation's .ready files before
    # the first run), or the first tool would be charged for it
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(sample | awk '{ print $6 }')" = 0 ] && break
        sleep 0.2
    done
    local cpu0 cpu1 s0 s1 t1 drain cg log0
    cg=$(cg_start "$name")
    cpu0=$(archiver_child_cpu)
    ssql "alter system set archive_command = '$cmd'" >/dev/null
    ssql "select pg_reload_conf()" >/dev/null
    ssql "select pg_switch_wal()" >/dev/null
    for ((i = 0; i < 600; i++)); do
        [ "$(sample | awk '{ print $6 }')" = 0 ] && break
        sleep 0.2
    done
    ssql "checkpoint" >/dev/null
    log0=$(wc -l <"$SRC/server.log")
    s0=$(sample)
    rm -f "$stop"
    (while [ ! -e "$stop" ]; do sample; sleep 1; done) >"$samples" 2>/dev/null &
    local spid=$!
    pgb -n -c 2 -j 2 -T "$duration" >"$SD/$name.pgbench" 2>&1
    s1=$(sample)
    t1=$(date +%s.%N)
    for ((i = 0; i < 3000; i++)); do
        [ "$(sample | awk '{ print $6 }')" = 0 ] && break
        sleep 0.2
    done
    drain=$(awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    touch "$stop"
    wait "$spid"
    local cpu how here
    if [ -n "$cg" ]; then
        cpu=$(awk '{ printf "%.1f", $1 / 1e9 }' "$cg/cpuacct.usage")
        how=cgroup
        cg_end "$cg"
    else
        cpu1=$(archiver_child_cpu)
        cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.1f", b - a }')
        how=reaped
    fi
    # segments wal-push pushed itself instead of the process ("pushing NAME here: why")
    here=-
    [ "$tool" = walship-proc ] && here=$(tail -n +"$((log0 + 1))" "$SRC/server.log" | grep -c ' here: ')
    local tps
    tps=$(sed -n 's/^tps = \([0-9]*\).* .*/\1/p' "$SD/$name.pgbench" | head -1)
    # lag per sample taken while pgbench ran: complete segments not archived
    # yet; a sample whose last_archived_wal is no segment of the timeline
    # written to (none yet, a .history or .backup file, another timeline)
    # does not count (skipped)
    local t0e t1e
    t0e=$(echo "$s0" | awk '{ print $1 }')
    t1e=$(echo "$s1" | awk '{ print $1 }')
    local line
    line=$(awk -v t0="$t0e" -v t1="$t1e" -v s0="$s0" -v s1="$s1" '
        function hex(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1; return v }
        function seg(n) { return hex(substr(n, 9, 8)) * 256 + hex(substr(n, 17, 8)) }
        $1 >= t0 && $1 <= t1 {
            if (length($3) != 24 || $3 !~ /^[0-9A-F]+$/ || substr($3, 1, 8) != substr($2, 1, 8)) { skip++; next }
            lag = seg($2) - 1 - seg($3); if (lag < 0) lag = 0
            n++; sl += lag; h[lag]++; if (lag > ml) ml = lag; if (lag > 1) over++
            sr += $6; if ($6 > mr) mr = $6
        }
        END {
            split(s0, a, " "); split(s1, b, " ")
            dt = b[1] - a[1]
            gen = (seg(b[2]) - seg(a[2])) / dt
            arc = (b[4] - a[4]) / dt
            k = int(0.95 * n); if (k < 0.95 * n) k++      # nearest rank
            for (v = 0; v <= ml; v++) { c += h[v]; if (c >= k) { p95 = v; break } }
            printf "%.2f %.2f %d %d %.2f %d %d %.2f %d %d %d", gen, arc, ml, p95, (n ? sl / n : 0), over, mr, (n ? sr / n : 0), n, skip, b[5] - a[5]
        }' "$samples")
    echo "$S $tool $rep ${tps:-NA} $line $drain $cpu $how $here" >>"$SUS"
    note "  sustained $tool run $rep: tps ${tps:-NA}, gen/arch seg/s, max/p95/mean lag, s lag>1, max/mean ready, samples, skipped, failures: $line; drain ${drain}s; archiving CPU ${cpu}s ($how)$([ "$here" = - ] || echo "; wal-push pushed $here itself")"
    # the next run starts from an empty backlog
    ssql "alter system set archive_command = '/bin/true'" >/dev/null
    ssql "select pg_reload_conf()" >/dev/null
}

# ---------------------------------------------------------------- report
fmt_table() { # STORAGE SCENARIO TOOLS... (first tool = walship, the reference)
    local st=$1 sc=$2
    shift 2
    local ref=$1 t wall wall_all cpu rss rwall rwall_all walls label
    rwall=$(awk -v s="$st" -v c="$sc" -v t="$ref" '$1 == s && $2 == c && $3 == t { print $6 }' "$REC" | med)
    rwall_all=$(awk -v s="$st" -v c="$sc" -v t="$ref" '$1 == s && $2 == c && $3 == t { print $7 }' "$REC" | med)
    out "$(printf '%-26s %8s %8s %9s %8s %6s %7s %8s  %s' tool 'wall s' 'seg/s' 'all-done' 'CPU s' 'cores' 'RSS MB' 'ratio' 'runs (wall s)')"
    for t in "$@"; do
        wall=$(awk -v s="$st" -v c="$sc" -v t="$t" '$1 == s && $2 == c && $3 == t { print $6 }' "$REC" | med)
        [ "$wall" = NA ] && continue
        wall_all=$(awk -v s="$st" -v c="$sc" -v t="$t" '$1 == s && $2 == c && $3 == t { print $7 }' "$REC" | med)
        cpu=$(awk -v s="$st" -v c="$sc" -v t="$t" '$1 == s && $2 == c && $3 == t { print $8 + $9 }' "$REC" | med)
        rss=$(awk -v s="$st" -v c="$sc" -v t="$t" '$1 == s && $2 == c && $3 == t { print $10 / 1024 }' "$REC" | med)
        walls=$(awk -v s="$st" -v c="$sc" -v t="$t" '$1 == s && $2 == c && $3 == t { printf "%s%s%s", sep, $6, ($5 != 0 ? "(FAILED)" : ""); sep = " " }' "$REC")
        case $t in
            walship) label="walship wal-push" ;;
            walship-p3) label="(walship parallel=3)" ;;
            walship-proc) label="walship + process" ;;
            walship-prefetch) label="walship wal-fetch" ;;
            walship-noprefetch) label="walship --no-prefetch" ;;
            pgbr-sync) label="pgBackRest $([ "$sc" = push ] && echo archive-push || echo archive-get)" ;;
            pgbr-async) label="pgBackRest async" ;;
            *) label=$t ;;
        esac
        out "$(printf '%-26s %8.2f %8.1f %9.2f %8.1f %6.2f %7.0f %8s  %s' "$label" "$wall" \
            "$(awk -v w="$wall" -v n="$nseg" 'BEGIN { print n / w }')" "$wall_all" "$cpu" \
            "$(awk -v c="$cpu" -v w="$wall_all" 'BEGIN { print c / w }')" "$rss" \
            "$([ "$t" = "$ref" ] && echo 1.00 || awk -v a="$wall" -v b="$rwall" 'BEGIN { printf "%.2f", a / b }')" "$walls")"
    done
    : "$rwall_all"
}
stored_line() { # STORAGE: stored bytes per tool after the push runs
    local st=$1
    awk -v s="$st" '$1 == s && $2 == "push" && $12 > 0 { b[$3] = $12 }
        END { for (t in b) printf "  %s %.1f MiB", t, b[t] / 1048576 }' "$REC"
}
target_line() { # LABEL ACTUAL_RATIO WANT
    local verdict
    verdict=$(awk -v a="$2" -v w="$3" 'BEGIN { if (a == "NA" || a == "") print "n/a"; else if (a >= w) printf "MET (%.2fx >= %.1fx)", a, w; else printf "NOT MET (%.2fx < %.1fx, walship would need to be %.0f%% faster)", a, w, (w / a - 1) * 100 }')
    out "  $1: $verdict"
}
ratio_of() { # STORAGE SCENARIO TOOL REF -> median(TOOL)/median(REF)
    local a b
    a=$(awk -v s="$1" -v c="$2" -v t="$3" '$1 == s && $2 == c && $3 == t { print $6 }' "$REC" | med)
    b=$(awk -v s="$1" -v c="$2" -v t="$4" '$1 == s && $2 == c && $3 == t { print $6 }' "$REC" | med)
    awk -v a="$a" -v b="$b" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.3f", a / b }'
}

# ---------------------------------------------------------------- main
for st in $storages; do
    storage_setup "$st"
    note "[$S] load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if want push; then
        note "[$S] push: $nseg ready segments x $runs runs (walship, pgBackRest sync, pgBackRest async)"
        for ((r = 1; r <= runs; r++)); do
            for tool in walship pgbr-sync pgbr-async; do push_run "$tool" "$r"; done
            if [ "$proc" = 1 ]; then push_run walship-proc "$r"; fi
            if [ "$diag" = 1 ]; then push_run walship-p3 "$r"; fi
        done
    fi
    if want push && [ "$perf" = 1 ]; then
        perf_run walship
        if [ "$proc" = 1 ]; then perf_run walship-proc; fi
    fi
    if want fetch; then
        note "[$S] fetch: $nseg segments x $runs runs"
        for ((r = 1; r <= runs; r++)); do
            for mode in walship-prefetch walship-noprefetch pgbr-sync pgbr-async; do fetch_run "$mode" "$r"; done
        done
    fi
    if want sustained; then
        note "[$S] sustained: pgbench -c 2 -j 2 -T $duration x $sruns per tool (walship,$([ "$proc" = 1 ] && echo " walship + process,") pgBackRest sync, pgBackRest async)"
        for ((r = 1; r <= sruns; r++)); do
            for tool in walship pgbr-sync pgbr-async; do sustained_run "$tool" "$r"; done
            if [ "$proc" = 1 ]; then sustained_run walship-proc "$r"; fi
        done
    fi
    storage_teardown
done

out "walship WAL benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work shares the machine)"
out "walship: $WS_VERSION; $PGBR_VERSION; PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }')"
out "both: zstd level 3, encryption (walship AES-256-GCM key_file; pgBackRest aes-256-cbc), parallelism 2"
if want push || want fetch; then
    out "input: $nseg segments of pgbench WAL (scale $scale; tpcb with checkpoints + bulk updates), $((seg_bytes / 1048576)) MiB, zstd -3 alone: $((zstd_bytes / 1048576)) MiB"
    out "medians of $runs runs; ratio = tool's wall / walship's wall (> 1: walship is faster); all-done = until the last process the run started exited;"
    out "CPU = user+sys of every process of the run (not the storage server's); cores = CPU / all-done; RSS = largest single process"
fi
for st in $storages; do
    case $st in
        posix) desc="posix: pgBackRest repo1-type=posix vs walship file:// region, same disk" ;;
        s3) desc="s3: one local Swift s3api region (us-east-1) over TLS, bucket per tool" ;;
    esac
    out ""
    out "=== $desc ==="
    if want push; then
        out ""
        out "push: $nseg ready segments drained by an archiver loop (archive_command per .ready, oldest first)"
        fmt_table "$st" push walship pgbr-sync pgbr-async walship-p3 walship-proc
        out "stored:$(stored_line "$st")"
        if [ "$st" = s3 ]; then
            out "storage server CPU s (Swift's processes, user + system, median per drain):$(for t in walship pgbr-sync pgbr-async walship-p3 walship-proc; do
                v=$(awk -v s="$st" -v t="$t" '$1 == s && $2 == t { print $4 }' "$W/srv-cpu" 2>/dev/null | med)
                [ "$v" != NA ] && printf '  %s %s' "$t" "$v"
            done)"
        fi
        for f in "$W/perf-$st-walship.txt" "$W/perf-$st-walship-proc.txt"; do
            [ -s "$f" ] || continue
            out ""
            out "perf record -F 499 of one more drain (its processes only), $(basename "$f" .txt | sed "s/^perf-$st-//"): samples by process and library"
            while IFS= read -r l; do out "  $l"; done <"$f"
            out "  by symbol:"
            while IFS= read -r l; do out "  $l"; done <"${f%.txt}.sym.txt"
        done
    fi
    if want fetch; then
        out ""
        out "fetch: $nseg segments restored in order by a restore_command loop"
        fmt_table "$st" fetch walship-prefetch walship-noprefetch pgbr-sync pgbr-async
    fi
    if want sustained; then
        out ""
        out "sustained: pgbench -c 2 -j 2 -T $duration (scale $scale, checkpoint_timeout 30s), archive_command = the tool, pg_stat_archiver sampled every second"
        out "$(printf '%-18s %6s %6s %6s %4s %4s %5s %6s %5s %6s %8s %5s %7s  %s' tool tps 'gen/s' 'arch/s' \
            'max' 'p95' 'mean' 's >1' 'max' 'mean' 'samples' 'fails' 'drain s' 'CPU s')"
        out "$(printf '%-18s %6s %6s %6s %16s %13s' '' '' '' '' '---- lag ------' '-- ready --')"
        hows="" heres=""
        for tool in walship walship-proc pgbr-sync pgbr-async; do
            while read -r s t rep tps gen arc ml p95 mnl over mr mnr n skip fails drain cpu how here; do
                [ "$s" = "$st" ] && [ "$t" = "$tool" ] || continue
                out "$(printf '%-18s %6s %6s %6s %4s %4s %5s %6s %5s %6s %8s %5s %7s  %s' "$t #$rep" "$tps" "$gen" "$arc" \
                    "$ml" "$p95" "$mnl" "$over" "$mr" "$mnr" "$n$([ "$skip" = 0 ] || echo "+${skip}skipped")" "$fails" "$drain" "$cpu")"
                case " $hows " in *" $how "*) ;; *) hows="$hows $how" ;; esac
                [ "$here" = - ] || heres="$heres #$rep: $here"
            done <"$SUS"
        done
        out "  lag = complete segments not archived yet: the segment WAL is being written to (the one holding"
        out "  pg_current_wal_lsn() + 1) - 1 - last_archived_wal, same timeline; p95 = 95th percentile (nearest rank)"
        out "  of the samples; s >1 = samples with lag > 1; ready = .ready files; one sample a second while pgbench ran"
        case $hows in
            *reaped*) out "  CPU s: archive_command processes the archiver reaped (detached daemons NOT counted: no cgroup)" ;;
            *) out "  CPU s: the archiver and everything it started, detached daemons included (cpuacct cgroup)" ;;
        esac
        [ -z "$heres" ] || out "  walship-proc: segments wal-push pushed itself instead of the process:$heres"
    fi
    out ""
    out "DESIGN.md §8 targets ($st):"
    if want push; then
        target_line "$nseg ready segments: pgBackRest sync / walship >= 3x" "$(ratio_of "$st" push pgbr-sync walship)" 3
        target_line "$nseg ready segments: pgBackRest async / walship >= 1.5x" "$(ratio_of "$st" push pgbr-async walship)" 1.5
        if [ "$proc" = 1 ]; then
            target_line "$nseg ready segments: pgBackRest sync / walship + process >= 3x" "$(ratio_of "$st" push pgbr-sync walship-proc)" 3
            target_line "$nseg ready segments: pgBackRest async / walship + process >= 1.5x" "$(ratio_of "$st" push pgbr-async walship-proc)" 1.5
        fi
    fi
    if want sustained; then
        for tool in walship walship-proc; do
            awk -v s="$st" -v t="$tool" '$1 == s && $2 == t { n++; if ($7 > m) m = $7; if ($8 > p) p = $8; o += $10 }
                END { if (n) print m + 0, p + 0, o + 0 }' "$SUS" | {
                read -r ml p95 over || exit 0
                out "  archiving keeps up with pgbench, $tool, lag <= 1 segment: $([ "$ml" -le 1 ] && echo "MET (max lag $ml, p95 $p95)" || echo "NOT MET (max lag $ml segments, p95 $p95, $over samples above 1)")"
            }
        done
    fi
done
out ""
out "results: $RES"
