#!/bin/sh
# Run libFuzzer targets one after the other, each for SECONDS, niced, from
# its seed corpus (tests/fuzz/corpus/NAME, read-only) plus a working corpus
# in tests/fuzz/build/work-NAME; findings (crash-*, leak-*, timeout-*) land
# in tests/fuzz/build/findings-NAME.  Build them first with build-fuzzer.sh.
#
#   tests/fuzz/run-fuzzers.sh SECONDS [manifest history tar s3_xml obj]
#
# The summary line per target gives the executions and the result; record
# it in docs/FUZZING.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${FUZZ_BUILD:-$here/build}
secs=${1:?usage: run-fuzzers.sh SECONDS [TARGET...]}
shift
[ $# -gt 0 ] || set -- manifest history tar s3_xml obj
for t in "$@"; do
    bin=$out/${t}_fuzz
    [ -x "$bin" ] || { echo "$t: $bin is not built"; continue; }
    mkdir -p "$out/work-$t" "$out/findings-$t"
    start=$(date -u +%FT%TZ)
    nice -n 10 "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/findings-$t/" -print_final_stats=1 \
        "$out/work-$t" "$here/corpus/$t" >"$out/fuzz-$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz-$t.log")
    nfind=$(find "$out/findings-$t" -type f | wc -l)
    echo "$t: started $start, ${secs}s, ${execs:-?} executions, exit $rc, $nfind findings"
done
