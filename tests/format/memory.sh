#!/bin/sh
# Peak memory of an encode | decode round trip does not depend on the size of
# the object: 16 MiB and 256 MiB (zstd:1, encrypted; with and without zstd
# workers) must peak within 16 MiB of each other.  The full-size comparison
# (20 MiB vs 2 GiB) is in bench/obj-bench.sh.
set -u
ob=${TOP_BUILDDIR:-.}/bench/obj_bench
if [ ! -x "$ob" ]; then
    echo "1..0 # SKIP bench/obj_bench is not built"
    exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/walship-mem.XXXXXX")
trap 'rm -rf "$dir"' EXIT
printf '%064d\n' 7 >"$dir/key"
chmod 600 "$dir/key"
n=0
fail=0
rss() {
    "$ob" roundtrip "$1" -l 1 -w "$2" -k "$dir/key" 2>"$dir/out" || { cat "$dir/out" >&2; echo 0; return; }
    sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p' "$dir/out"
}
for w in 0 2; do
    small=$(rss 16M $w)
    big=$(rss 256M $w)
    n=$((n + 1))
    if [ "$small" -gt 0 ] && [ "$big" -gt 0 ] && [ "$big" -le $((small + 16384)) ]; then
        echo "ok $n - $w workers: peak RSS ${small} kB for 16 MiB, ${big} kB for 256 MiB"
    else
        echo "not ok $n - $w workers: peak RSS ${small} kB for 16 MiB, ${big} kB for 256 MiB"
        fail=1
    fi
done
echo "1..$n"
exit $fail
