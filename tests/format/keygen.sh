#!/bin/sh
# walship keygen: mode 0600, prints the key id, refuses to overwrite, and the
# key it writes loads (the id is the one the object format records).
set -u
n=0
fail=0
t() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }

if [ ! -x "${WALSHIP:-}" ]; then
    echo "1..0 # SKIP walship is not built"
    exit 0
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/walship-keygen.XXXXXX")
trap 'rm -rf "$dir"' EXIT

id=$("$WALSHIP" keygen "$dir/key" 2>"$dir/err"); rc=$?
t $rc "keygen exits 0"
echo "$id" | grep -Eq '^[0-9a-f]{32}$'; t $? "prints a 32-hex-digit key id ($id)"
[ "$(stat -c %a "$dir/key")" = 600 ]; t $? "the key file has mode 0600"
grep -Eq '^[0-9a-f]{64}$' "$dir/key"; t $? "the key file holds 64 hex digits"
cp "$dir/key" "$dir/key.orig"
"$WALSHIP" keygen "$dir/key" >"$dir/out" 2>"$dir/err"; rc=$?
[ "$rc" -ne 0 ]; t $? "keygen over an existing file fails (exit $rc)"
grep -q "refusing to overwrite" "$dir/err"; t $? "... saying it refuses to overwrite"
cmp -s "$dir/key" "$dir/key.orig"; t $? "... and leaves the file alone"
[ ! -s "$dir/out" ]; t $? "... and prints no key id"
"$WALSHIP" keygen >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ]; t $? "keygen without FILE is a usage error (exit $rc)"
"$WALSHIP" keygen "$dir/no/such/dir/key" >/dev/null 2>&1; rc=$?
[ "$rc" = 3 ]; t $? "keygen into a missing directory fails with exit 3 (exit $rc)"
id2=$("$WALSHIP" keygen "$dir/key2" 2>/dev/null)
[ -n "$id2" ] && [ "$id2" != "$id" ]; t $? "a second key has another id"

echo "1..$n"
exit $fail
