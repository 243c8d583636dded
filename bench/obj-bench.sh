#!/bin/bash
# bench/obj-bench.sh — throughput and memory of walship's object encoder and
# decoder, side by side with `zstd -L | openssl enc -aes-256-ctr` on the same
# input in the same run (openssl enc has no GCM mode).
#
#   bench/obj-bench.sh [INPUT]
#
# Without INPUT it builds one: a tar of the PGDATA of a throwaway PostgreSQL
# after `pgbench -i -s $BENCH_SCALE` (default 50, like DESIGN.md §8), or, when
# PostgreSQL is not installed, $BENCH_SIZE (default 1G) of generated
# table-like text.  Each figure is the best of $BENCH_RUNS (default 3) runs;
# MB/s counts plaintext bytes (10^6) per second of wall time; RSS is the peak
# resident size from /usr/bin/time (for a pipeline, its largest process).
# Then the same round trip is run on 20 MiB and on 2 GiB of generated data to
# show that peak memory does not depend on the object's size.
#
# Needs a built tree (bench/obj_bench: `make check` builds it; set
# TOP_BUILDDIR for an out-of-tree build), zstd, openssl, /usr/bin/time.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${TOP_BUILDDIR:-$top}
ob=$build/bench/obj_bench
runs=${BENCH_RUNS:-3}
[ -x "$ob" ] || { echo "obj-bench: $ob not built (run make check first)" >&2; exit 2; }
for t in zstd openssl /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "obj-bench: $t is needed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/walship-bench.XXXXXX")
chmod 711 "$work"     # the postgres user must reach $work/pg
pgdir=""
cleanup() {
    if [ -n "$pgdir" ]; then pg_stop "$pgdir" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

input=${1:-}
if [ -z "$input" ]; then
    input=$work/input
    if [ -x /usr/lib/postgresql/15/bin/pgbench ] && [ -f "$top/tests/lib/pg.sh" ]; then
        # shellcheck source=/dev/null
        . "$top/tests/lib/pg.sh"
        pgdir=$work/pg
        port=$(pg_free_port)
        echo "building the input: pgbench -i -s ${BENCH_SCALE:-50} ..." >&2
        pg_init "$pgdir"
        pg_start "$pgdir" "$port"
        pg_run "$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "${BENCH_SCALE:-50}" postgres >/dev/null 2>&1
        pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qAtc CHECKPOINT postgres >/dev/null
        pg_stop "$pgdir"
        pgdir=""
        tar -C "$work/pg" -cf "$input" data
        rm -rf "$work/pg"
        what="tar of PGDATA after pgbench -i -s ${BENCH_SCALE:-50}"
    else
        "$ob" gen "${BENCH_SIZE:-1G}" >"$input"
        what="generated table-like text"
    fi
else
    what=$input
fi
size=$(stat -c %s "$input")
cat "$input" >/dev/null

openssl rand -hex 32 >"$work/key"
chmod 600 "$work/key"
hexkey=$(cat "$work/key")
iv=000102030405060708090a0b0c0d0e0f

# best SECONDS RSS_KB of $runs runs of a shell command
best() {
    local cmd=$1 bs="" brss=0 s rss
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %M" -o "$work/time" sh -c "$cmd" 2>"$work/err" || { cat "$work/err" >&2; exit 3; }
        read -r s rss <"$work/time"
        if [ -z "$bs" ] || awk -v a="$s" -v b="$bs" 'BEGIN { exit !(a < b) }'; then bs=$s; fi
        [ "$rss" -gt "$brss" ] && brss=$rss
    done
    echo "$bs $brss"
}

mbps() { awk -v n="$size" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s / 1e6 : 0) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

printf 'input: %s, %.1f MiB; %d runs each, best shown; %s cores\n\n' "$what" \
    "$(awk -v n="$size" 'BEGIN { print n / 1048576 }')" "$runs" "$(nproc)"
printf '%-7s %-8s %-8s | %10s %9s %9s | %10s %9s %9s | %6s\n' \
    op level threads "walship" "MB/s" "RSS MiB" "cli" "MB/s" "RSS MiB" "w/cli"

row() {
    local op=$1 level=$2 t=$3 wcmd=$4 ccmd=$5 wr cr ws wrss cs crss
    wr=$(best "$wcmd"); cr=$(best "$ccmd")
    read -r ws wrss <<<"$wr"; read -r cs crss <<<"$cr"
    printf '%-7s zstd:%-3s %-8s | %9ss %9s %9s | %9ss %9s %9s | %5sx\n' "$op" "$level" "$t" \
        "$ws" "$(mbps "$ws")" "$(mib "$wrss")" "$cs" "$(mbps "$cs")" "$(mib "$crss")" \
        "$(awk -v a="$cs" -v b="$ws" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
}

for level in 1 3; do
    "$ob" encode -l "$level" -k "$work/key" <"$input" >"$work/obj$level" 2>/dev/null
    zstd -q -"$level" -T1 -c <"$input" | openssl enc -aes-256-ctr -K "$hexkey" -iv "$iv" >"$work/cli$level"
done
for level in 1 3; do
    row encode "$level" 1 \
        "'$ob' encode -l $level -k '$work/key' <'$input' >/dev/null" \
        "zstd -q -$level -T1 -c <'$input' | openssl enc -aes-256-ctr -K $hexkey -iv $iv >/dev/null"
    row encode "$level" 2 \
        "'$ob' encode -l $level -w 2 -k '$work/key' <'$input' >/dev/null" \
        "zstd -q -$level -T2 -c <'$input' | openssl enc -aes-256-ctr -K $hexkey -iv $iv >/dev/null"
done
for level in 1 3; do
    row decode "$level" 1 \
        "'$ob' decode -k '$work/key' <'$work/obj$level' >/dev/null" \
        "openssl enc -d -aes-256-ctr -K $hexkey -iv $iv <'$work/cli$level' | zstd -q -d -c >/dev/null"
done
printf '\nencoded size: walship zstd:1 %s, zstd:3 %s; cli zstd:1 %s, zstd:3 %s bytes\n' \
    "$(stat -c %s "$work/obj1")" "$(stat -c %s "$work/obj3")" \
    "$(stat -c %s "$work/cli1")" "$(stat -c %s "$work/cli3")"

printf '\npeak RSS of an in-memory round trip (encode | decode, zstd:3, encrypted):\n'
for w in 0 2; do
    for n in 20M 2G; do
        /usr/bin/time -f "%e %M" -o "$work/time" "$ob" roundtrip "$n" -l 3 -w "$w" -k "$work/key" 2>"$work/err" ||
            { cat "$work/err" >&2; exit 3; }
        read -r s rss <"$work/time"
        printf '  %4s, %d zstd workers: %6s MiB peak RSS (%ss)\n' "$n" "$w" "$(mib "$rss")" "$s"
    done
done
