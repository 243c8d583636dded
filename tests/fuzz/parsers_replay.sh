#!/bin/sh
# Replay the manifest, history and tar fuzz corpora (tests/fuzz/corpus/*)
# through their fuzz targets under the normal build: TAP, one line per
# input.  A target aborts on a finding, which fails the test.
b=${TOP_BUILDDIR:-.}/tests/fuzz
c=${TOP_SRCDIR:-.}/tests/fuzz/corpus
n=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in manifest history tar; do
    if ! "$b/${t}_replay" "$c/$t" >"$out" 2>&1; then
        cat "$out"
        echo "Bail out! the $t target failed on its corpus (see above)"
        exit 1
    fi
    # renumber the three TAP streams into one
    while IFS= read -r line; do
        case "$line" in
            "ok "*|"not ok "*)
                n=$((n + 1))
                echo "$line" | sed "s/^\(not \)\{0,1\}ok [0-9]* -/\1ok $n - $t:/"
                ;;
            1..*) ;;
            *) echo "$line" ;;
        esac
    done <"$out"
done
echo "1..$n"
