#!/bin/bash
# bench/dr-drill.sh — the DR drill, timed: how long from "the primary is gone"
# to "the application can write" (RTO), broken down, walship side by side
# with pgBackRest 2.45 over the same slow link, and against PostgreSQL's own
# replay of the same WAL (DESIGN.md §8; issue 14).
#
#   bench/dr-drill.sh [--db-mb N] [--wal-mb N] [--delay-ms N] [--no-pgbr]
#                     [--no-standby] [--keep]
#
#   --db-mb N     size of the database (pgbench scale N/15; default 1024)
#   --wal-mb N    WAL written after the backups, replayed by each restore
#                 (pgbench -c 2 -j 2 until that much; default 1024)
#   --delay-ms N  one-way delay between the DR host and the region (default
#                 35: a 70 ms round trip), by bench/lib/delayproxy.py, a TCP
#                 proxy that passes TLS through unchanged
#   --no-pgbr     walship only
#   --no-standby  no warm standby (walship restore --standby)
#   --keep        keep the work directory
#
# One Swift s3api region (us-east-1) behind TLS (pgBackRest's S3 driver
# speaks HTTPS only; bench/lib/swift-tls.sh), a bucket per tool.  The primary
# archives to both tools directly (archive_command: walship wal-push, then
# pgbackrest archive-push, then a plain copy of the segment for the baseline);
# each tool takes a full backup (zstd:3, encryption, parallel 2), then the
# WAL is written.  Every restore then reads through the delay proxy:
#   standby   (walship) `walship restore --standby --start` made before the
#             WAL was written; it replays from the region as WAL arrives.
#             Timed: from `walship promote` to the first committed write
#             of another session (the command goes on to CHECKPOINT and
#             clean up; its own run time is printed below the table).
#   walship   `walship --from … restore --target-latest --start` on an empty
#             directory: its own report of fetch, replay and RTO.
#   pgbr      `pgbackrest restore` (archive-async, process-max 2), then
#             pg_ctl start until the server is promoted and writable.
#   baseline  the backup fetched by walship (untimed), then PostgreSQL alone
#             with restore_command = cp of the decoded segments: replay and
#             promotion only, the floor every cold restore pays.
# Each restored instance must hold the primary's final state (sum and count
# of pgbench_accounts, count of pgbench_history).  Results on stdout and in
# bench/results/dr-drill-YYYYmmdd-HHMMSS.txt; progress on stderr.  Run as
# root (servers and tools run as "postgres").  Needs PostgreSQL 15, Swift,
# openssl, python3, pgbackrest (unless --no-pgbr).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$top/tests/lib/pg.sh"
# shellcheck source=/dev/null
. "$top/tests/lib/swift.sh"
# shellcheck source=/dev/null
. "$top/bench/lib/swift-tls.sh"

db_mb=1024 wal_mb=1024 delay=35 pgbr=1 standby=1 keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --db-mb) db_mb=${2:?}; shift 2 ;;
        --wal-mb) wal_mb=${2:?}; shift 2 ;;
        --delay-ms) delay=${2:?}; shift 2 ;;
        --no-pgbr) pgbr=0; shift ;;
        --no-standby) standby=0; shift ;;
        --keep) keep=1; shift ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "dr-drill: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for v in "$db_mb" "$wal_mb"; do [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "dr-drill: sizes are whole MB" >&2; exit 2; }; done
[[ $delay =~ ^[0-9]+$ ]] || { echo "dr-drill: --delay-ms N" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "dr-drill: run as root" >&2; exit 2; }
WALSHIP=${WALSHIP:-$top/_build/default/walship}
[ -x "$WALSHIP" ] || { echo "dr-drill: no walship binary (build it or set WALSHIP)" >&2; exit 2; }
command -v swift-proxy-server >/dev/null || { echo "dr-drill: needs Swift (TESTING.md)" >&2; exit 2; }
if [ "$pgbr" = 1 ] && ! command -v pgbackrest >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y pgbackrest >/dev/null 2>&1 ||
        { echo "dr-drill: pgbackrest is not installed" >&2; exit 2; }
fi
if [ "$standby" = 1 ] && ! "$WALSHIP" help restore 2>/dev/null | grep -q -- --standby; then
    echo "dr-drill: this walship has no restore --standby: no warm standby" >&2
    standby=0
fi
scale=$(( (db_mb + 14) / 15 ))

note() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { note "FATAL: $*"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

W=$(mktemp -d "${TMPDIR:-/tmp}/walship-drill.XXXXXX") || exit 1
chmod 755 "$W"
chown postgres "$W"
SRC=$W/src
pids=() pgdirs=()
cleanup() {
    local d p
    for d in "${pgdirs[@]}"; do
        [ -f "$d/postmaster.pid" ] && pg_run "$PG_BIN/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    swift_stop "$W/swift" 2>/dev/null
    if [ "$keep" = 1 ]; then note "work directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$top/bench/results"
RES=$top/bench/results/dr-drill-$(date +%Y%m%d-%H%M%S).txt
out() { printf '%s\n' "$*" | tee -a "$RES"; }

# ---------------------------------------------------------------- the region, the link
note "region: Swift behind TLS; link: ${delay} ms each way"
swift_tls_cert "$W/tls" || die "openssl"
chmod 644 "$W/tls/cert.pem"
swift_start_tls "$W/swift" us-east-1 "$W/tls/cert.pem" "$W/tls/key.pem" walship pgbr || die "swift"
S3=$SWIFT_PORT
DP=$(pg_free_port)
python3 "$top/bench/lib/delayproxy.py" --listen "127.0.0.1:$DP" --target "127.0.0.1:$S3" --delay-ms "$delay" \
    --pidfile "$W/delay.pid" >"$W/delay.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -s "$W/delay.pid" ] && break; sleep 0.1; done
[ -s "$W/delay.pid" ] || die "the delay proxy did not start"

"$WALSHIP" keygen "$W/ws.key" >/dev/null 2>&1 || die "keygen"
PGBR_PASS=$(openssl rand -hex 24)
export AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing
ws_conf() { # FILE PORT
    printf '[global]\npgdata = %s\npg_conninfo = host=%s port=%s user=postgres dbname=postgres\n' \
        "$SRC/data" "$SRC/sock" "$PGPORT" >"$1"
    printf 'key_file = %s\nspool_dir = %s\nparallel = 2\ncompression = zstd:3\n\n' "$W/ws.key" "$W/ws-spool" >>"$1"
    printf '[region us-east-1]\nurl = s3://walship/drill\nendpoint = https://127.0.0.1:%s\npath_style = true\n' "$2" >>"$1"
    printf 'ca_file = %s\naccess_key_id = test:tester\nsecret_access_key = testing\n' "$W/tls/cert.pem" >>"$1"
    chmod 600 "$1"
}
pb_conf() { # FILE PORT
    {
        echo "[global]"
        echo "repo1-type=s3"; echo "repo1-path=/drill"; echo "repo1-s3-bucket=pgbr"
        echo "repo1-s3-endpoint=127.0.0.1"; echo "repo1-storage-port=$2"; echo "repo1-storage-ca-file=$W/tls/cert.pem"
        echo "repo1-s3-region=us-east-1"; echo "repo1-s3-key=test:tester"; echo "repo1-s3-key-secret=testing"
        echo "repo1-s3-uri-style=path"; echo "repo1-cipher-type=aes-256-cbc"; echo "repo1-cipher-pass=$PGBR_PASS"
        echo "compress-type=zst"; echo "compress-level=3"; echo "process-max=2"; echo "start-fast=y"
        echo "archive-async=y"; echo "spool-path=$W/pb-spool"; echo "lock-path=$W/pb-lock"
        echo "archive-get-queue-max=128MB"
        echo "log-level-console=warn"; echo "log-level-stderr=warn"; echo "log-level-file=off"
        echo; echo "[drill]"; echo "pg1-path=$SRC/data"; echo "pg1-port=$PGPORT"; echo "pg1-socket-path=$SRC/sock"
    } >"$1"
    chmod 600 "$1"
}

# ---------------------------------------------------------------- the primary
PGPORT=$(pg_free_port)
mkdir -p "$W/ws-spool" "$W/pb-spool" "$W/pb-lock" "$W/walcopy"
ws_conf "$W/ws.conf" "$S3"          # the primary's side: no delay
ws_conf "$W/ws-dr.conf" "$DP"       # (for reference; the drills use --from)
pb_conf "$W/pb.conf" "$S3"
pb_conf "$W/pb-dr.conf" "$DP"
chown -R postgres "$W"
note "primary: pgbench -i -s $scale (about $db_mb MB)"
pg_init "$SRC" || die "initdb"
arch="$WALSHIP --config $W/ws.conf wal-push %p"
[ "$pgbr" = 1 ] && arch="$arch && pgbackrest --config=$W/pb.conf --stanza=drill archive-push %p"
arch="$arch && cp %p $W/walcopy/%f"
pg_conf "$SRC" "archive_mode = on"
pg_conf "$SRC" "archive_command = '$arch'"
pg_conf "$SRC" "max_wal_size = 2GB"
pg_conf "$SRC" "checkpoint_timeout = 5min"
pg_start "$SRC" "$PGPORT" || die "postgres"
pgdirs+=("$SRC/data")
ssql() { pg_sql "$SRC" "$PGPORT" "$1"; }
if [ "$pgbr" = 1 ]; then
    pg_run pgbackrest --config="$W/pb.conf" --stanza=drill stanza-create >"$W/stanza.log" 2>&1 || die "stanza-create: $(tail -3 "$W/stanza.log")"
fi
pg_run "$PG_BIN/pgbench" -h "$SRC/sock" -p "$PGPORT" -U postgres -i -q -s "$scale" postgres >"$W/init.log" 2>&1 || die "pgbench -i"
ssql "checkpoint" >/dev/null
wait_archived() {
    local i
    for ((i = 0; i < 1200; i++)); do
        [ "$(ssql "select count(*) from pg_ls_archive_statusdir() where name like '%.ready'")" = 0 ] && return 0
        sleep 0.25
    done
    return 1
}
note "backups: walship backup-push$([ "$pgbr" = 1 ] && echo ", pgbackrest backup --type=full")"
pg_run "$WALSHIP" --config "$W/ws.conf" backup-push >"$W/ws-backup.log" 2>&1 || die "walship backup-push: $(tail -3 "$W/ws-backup.log")"
if [ "$pgbr" = 1 ]; then
    pg_run pgbackrest --config="$W/pb.conf" --stanza=drill backup --type=full >"$W/pb-backup.log" 2>&1 ||
        die "pgbackrest backup: $(tail -3 "$W/pb-backup.log")"
fi
FROM=(--from s3://walship/drill --endpoint "https://127.0.0.1:$DP" --path-style --region us-east-1
      --ca-file "$W/tls/cert.pem" --key-file "$W/ws.key")
wsdr() { pg_run env AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing "$WALSHIP" "${FROM[@]}" "$@"; }

# ---------------------------------------------------------------- the warm standby
SBPORT=$(pg_free_port)
if [ "$standby" = 1 ]; then
    note "warm standby: walship restore --standby --start"
    mkdir -m 700 "$W/standby" && chown postgres "$W/standby"
    wsdr restore --standby --pgdata "$W/standby" --start --port "$SBPORT" >"$W/standby.log" 2>&1 ||
        die "restore --standby: $(tail -5 "$W/standby.log")"
    pgdirs+=("$W/standby")
fi

# ---------------------------------------------------------------- the WAL
note "writing $wal_mb MB of WAL (pgbench -c 2 -j 2)"
lsn0=$(ssql "select pg_current_wal_lsn()")
while :; do
    pg_run "$PG_BIN/pgbench" -h "$SRC/sock" -p "$PGPORT" -U postgres -n -c 2 -j 2 -T 5 postgres >>"$W/load.log" 2>&1
    done_mb=$(ssql "select (pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1048576)::bigint")
    [ "$done_mb" -ge "$wal_mb" ] && break
done
STATE_SQL="select (select sum(abalance) || '/' || count(*) from pgbench_accounts) || '/' || (select count(*) from pgbench_history)"
want=$(ssql "$STATE_SQL")
ssql "select pg_switch_wal()" >/dev/null
wait_archived || die "the WAL was not archived"
walsegs=$(ls "$W/walcopy" | grep -c '^[0-9A-F]\{24\}$')
note "primary's final state $want; $done_mb MB of WAL, $walsegs segments archived; the primary goes away"
pg_stop "$SRC" immediate
out "# DR drill $(date -u +%FT%TZ): db ${db_mb} MB (scale $scale), WAL ${done_mb} MB after the backup, link ${delay} ms each way (TLS Swift)"
out "# walship: $("$WALSHIP" --version 2>&1 | head -1)$([ "$pgbr" = 1 ] && echo "; $(pgbackrest version)"); load $(cut -d' ' -f1-3 /proc/loadavg)"
out "$(printf '%-10s %8s %8s %8s %8s  %s' method fetch replay promote RTO check)"
row() { out "$(printf '%-10s %8s %8s %8s %8s  %s' "$@")"; }
q() { # PORT SQL
    pg_run "$PG_BIN/psql" -X -At -h "$SRC/sock" -p "$1" -U postgres -d postgres -c "$2" 2>/dev/null
}
writable() { # PORT: until a write commits
    local i
    for ((i = 0; i < 6000; i++)); do
        q "$1" "create table if not exists drill_probe(t timestamptz); insert into drill_probe values (now())" >/dev/null && return 0
        sleep 0.05
    done
    return 1
}
check() { # PORT
    [ "$(q "$1" "$STATE_SQL")" = "$want" ] && echo "same state" || echo "WRONG STATE: $(q "$1" "$STATE_SQL")"
}
stop_dir() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m immediate -w -t 30 stop >/dev/null 2>&1; }

# ---------------------------------------------------------------- standby promotion
if [ "$standby" = 1 ]; then
    note "standby: waiting for it to replay the last segment"
    for ((i = 0; i < 3000; i++)); do
        [ "$(q "$SBPORT" "$STATE_SQL")" = "$want" ] && break
        sleep 0.2
    done
    # the command runs on (walship promote checkpoints and cleans up once the
    # instance writes): the clock stops at the first write it lets through
    t0=$(now)
    if "$WALSHIP" help promote >/dev/null 2>&1; then
        pg_run "$WALSHIP" promote "$W/standby" >"$W/promote.log" 2>&1 &
    else
        pg_run "$PG_BIN/pg_ctl" -D "$W/standby" promote >"$W/promote.log" 2>&1 &
    fi
    ppid=$!
    writable "$SBPORT"
    t1=$(now)
    wait "$ppid" || note "promote failed: $(tail -3 "$W/promote.log")"
    t2=$(now)
    row standby - - "$(secs "$t0" "$t1")" "$(secs "$t0" "$t1")" "$(check "$SBPORT")"
    out "#   standby: the promote command itself ran $(secs "$t0" "$t2") s; it said: $(grep -E 'writable|checkpoint' "$W/promote.log" | sed 's/^ *//' | paste -sd';' -)"
    stop_dir "$W/standby"
fi

# ---------------------------------------------------------------- cold, walship
note "cold restore: walship"
RP=$(pg_free_port)
mkdir -m 700 "$W/r-ws" && chown postgres "$W/r-ws"
pgdirs+=("$W/r-ws")
t0=$(now)
wsdr restore --pgdata "$W/r-ws" --target-latest --start --port "$RP" >"$W/r-ws.log" 2>&1 || note "walship restore failed: $(tail -5 "$W/r-ws.log")"
t1=$(now)
f=$(sed -n 's/.*time: fetch \([0-9.]*\) s, replay \([0-9.]*\) s.*/\1/p' "$W/r-ws.log")
r=$(sed -n 's/.*time: fetch \([0-9.]*\) s, replay \([0-9.]*\) s.*/\2/p' "$W/r-ws.log")
row walship "${f:--}" "${r:--}" "(in replay)" "$(secs "$t0" "$t1")" "$(check "$RP")"
stop_dir "$W/r-ws"
[ "$keep" = 1 ] || rm -rf "$W/r-ws"     # --keep: its walship-restore.log shows each fetch

# ---------------------------------------------------------------- cold, pgBackRest
if [ "$pgbr" = 1 ]; then
    note "cold restore: pgbackrest"
    mkdir -m 700 "$W/r-pb" && chown postgres "$W/r-pb"
    pgdirs+=("$W/r-pb")
    t0=$(now)
    pg_run pgbackrest --config="$W/pb-dr.conf" --stanza=drill --pg1-path="$W/r-pb" --archive-mode=off restore >"$W/r-pb.log" 2>&1 ||
        note "pgbackrest restore failed: $(tail -3 "$W/r-pb.log")"
    t1=$(now)
    pg_run "$PG_BIN/pg_ctl" -D "$W/r-pb" -l "$W/r-pb-server.log" -o "-p $RP -c unix_socket_directories=$SRC/sock" start >/dev/null 2>&1
    writable "$RP"
    t2=$(now)
    row pgbr "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "(in replay)" "$(secs "$t0" "$t2")" "$(check "$RP")"
    stop_dir "$W/r-pb"
    rm -rf "$W/r-pb"
fi

# ---------------------------------------------------------------- PostgreSQL alone
note "baseline: PostgreSQL's replay with restore_command = cp"
mkdir -m 700 "$W/r-base" && chown postgres "$W/r-base"
pgdirs+=("$W/r-base")
pg_run "$WALSHIP" --config "$W/ws.conf" backup-fetch LATEST "$W/r-base" >"$W/r-base-fetch.log" 2>&1 || die "backup-fetch"
{
    echo "restore_command = 'cp $W/walcopy/%f %p'"
    echo "recovery_target_timeline = 'latest'"
    echo "archive_mode = off"
} >>"$W/r-base/postgresql.auto.conf"
touch "$W/r-base/recovery.signal"
chown postgres "$W/r-base/recovery.signal"
t1=$(now)
pg_run "$PG_BIN/pg_ctl" -D "$W/r-base" -l "$W/r-base-server.log" -o "-p $RP -c unix_socket_directories=$SRC/sock" start >/dev/null 2>&1
writable "$RP"
t2=$(now)
base=$(secs "$t1" "$t2")
row baseline - "$base" "(in replay)" "$base" "$(check "$RP")"
stop_dir "$W/r-base"
out "# fetch: the base backup onto the DR host; replay: start to promoted and writable (WAL fetched on demand);"
out "# RTO: the whole command.  Targets (DESIGN.md §8): cold restore within 1.1x of the baseline's replay;"
out "# a warm standby writable within 2 s of the promotion."
note "results in $RES"
