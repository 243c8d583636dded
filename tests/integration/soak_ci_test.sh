#!/bin/bash
# The soak test (tests/soak/soak.sh, docs/SOAK.md) in CI: a 2-minute run with
# a fixed seed and one random moment per region, its log as TAP comments,
# its result line checked: no acknowledged transaction lost, every restore
# correct, faults actually injected.  SOAK_MINUTES / SOAK_SEED override.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
command -v memcached >/dev/null || skip_all "memcached is not installed"
[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
# The soak's value is the interplay of faults, not the build: CI runs it in
# the default build; the ASan build's time goes to the other integration
# tests, which cover the same code (WALSHIP_SOAK_ANY_BUILD=1 forces it).
if grep -q -- '-fsanitize=address' "$TOP_BUILDDIR/Makefile" 2>/dev/null && [ "${WALSHIP_SOAK_ANY_BUILD:-}" != 1 ]; then
  skip_all "the soak runs in the default build (docs/SOAK.md)"
fi

# ---- the checker itself can fail (a synthetic ledger, no servers) ----
L=$TOP_SRCDIR/tests/soak/ledger.py
mkdir -p "$T/led"
printf '%s\n' 'c1-1 1 1 100.000000 100.100000 5' 'c1-2 1 2 100.200000 100.300000 -2' \
  'c1-4 1 4 100.600000 100.700000 1' >"$T/led/acked.c1"
printf '%s\n' 'c1-3 1 3 100.400000 - 7' >"$T/led/doubt.c1"
printf '%s\n' 'c2-1 2 1 100.150000 100.250000 10' >"$T/led/acked.c2"
rows() { printf '%s\n' "$@" >"$T/rows"; }
lcheck() { python3 "$L" check "$T/led" "$T/rows" "$@" >/dev/null; }
rows 'c1-1 1 1 5' 'c1-2 1 2 -2' 'c1-4 1 4 1' 'c2-1 2 1 10'
t "checker: everything acknowledged is there at latest" lcheck 14 latest
rows 'c1-1 1 1 5' 'c1-2 1 2 -2' 'c1-3 1 3 7' 'c1-4 1 4 1' 'c2-1 2 1 10'
t "checker: an in-doubt transaction may be there" lcheck 21 latest
rows 'c1-1 1 1 5' 'c1-4 1 4 1' 'c2-1 2 1 10'
t_fail "checker: an acknowledged id missing at latest is lost" 1 lcheck 16 latest
rows 'c1-1 1 1 5' 'c1-2 1 2 -2' 'c1-4 1 4 1' 'c2-1 2 1 10' 'c9-1 9 1 0'
t_fail "checker: an id nobody sent is refused" 1 lcheck 14 latest
rows 'c1-1 1 1 5' 'c1-2 1 2 -2' 'c1-4 1 4 1' 'c2-1 2 1 10'
t_fail "checker: a balance that does not match the rows is refused" 1 lcheck 15 latest
rows 'c1-1 1 1 5' 'c2-1 2 1 10'
t "checker: at T, what was acknowledged by T (c1-2 in flight may be absent)" lcheck 15 time 100.26
rows 'c1-1 1 1 5'
t_fail "checker: at T, an id acknowledged before T must be there" 1 lcheck 5 time 100.26
rows 'c1-1 1 1 5' 'c1-2 1 2 -2' 'c2-1 2 1 10' 'c1-4 1 4 1'
t_fail "checker: at T, an id sent after T must not be there" 1 lcheck 14 time 100.35
rows 'c1-1 1 1 5' 'c1-4 1 4 1' 'c2-1 2 1 10'
t_fail "checker: a client's rows with a hole are refused" 1 lcheck 16 time 100.8
mkdir -p "$T/led2"
printf '%s\n' 'c1-1 1 1 100.0 100.1 1' 'c1-2 1 2 101.0 101.1 1' 'c1-3 1 3 102.0 102.1 1' \
  'c1-4 1 4 104.0 104.1 1' >"$T/led2/acked.c1"
echo '[{"backups":[{"complete":true,"stop_time_unix":98},{"complete":false}]}]' >"$T/bl.json"
is "$(python3 "$L" pick "$T/led2" "$T/bl.json" 5 9 | tr '\n' ' ')" "100.100500 101.100500 102.100500 " \
  "checker: moments are distinct, after the oldest backup + 2 s, before the last ack - 1 s"

# ---- the soak run ----
MIN=${SOAK_MINUTES:-2} SEED=${SOAK_SEED:-20261202}
# soak.sh makes its own work directory under TMPDIR (here: inside $T)
TMPDIR=$T TEST_TIMEOUT=840 "$TOP_SRCDIR/tests/soak/soak.sh" --minutes "$MIN" --seed "$SEED" --points 1 \
  >"$T/soak.out" 2>&1
st=$?
sed 's/^/# /' "$T/soak.out"
last=$(tail -1 "$T/soak.out")
re='^([0-9]+) transactions acknowledged, ([0-9]+) lost, ([0-9]+) restores \(([0-9]+) correct\), ([0-9]+) faults$'
like "$last" "$re" "the last line is the result line"
if [[ $last =~ $re ]]; then
  ta=${BASH_REMATCH[1]} lost=${BASH_REMATCH[2]} r=${BASH_REMATCH[3]} k=${BASH_REMATCH[4]} f=${BASH_REMATCH[5]}
else
  ta=0 lost=-1 r=0 k=-1 f=0
fi
is "$st" 0 "soak.sh exits 0 (seed $SEED, $MIN min)"
[ "$ta" -gt 100 ]; ok $? "clients had transactions acknowledged ($ta)"
is "$lost" 0 "no acknowledged transaction is lost"
is "$r" 6 "three regions restored at the latest point and at one random moment each"
is "$k" "$r" "every restore matches the ledger"
[ "$f" -ge 6 ]; ok $? "faults were injected ($f)"
grep -q 'fault #.*dark' "$T/soak.out"; ok $? "a region went dark"
grep -q 'fault #.*crash\|fault #.*immediate' "$T/soak.out"; ok $? "the primary was stopped with -m immediate"
grep -q 'fault #.*kill -9' "$T/soak.out"; ok $? "a walship process was killed with -9"
# backups and delete ran along the way (with this many faults, each may fail
# or be killed; the first backup, before the faults, must have succeeded)
grep -qE 'backup-push #[0-9]+: exit' "$T/soak.out" && grep -qE 'delete #[0-9]+: exit' "$T/soak.out"
ok $? "backup-push and delete ran during the run"
done_testing
