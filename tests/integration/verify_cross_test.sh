#!/bin/bash
# verify compares the regions with each other.  Each region was verified
# alone, so two regions holding different copies of one WAL file under
# one name (a cold clone archiving with the same key, a hand-made repair,
# an attacker with write access but no key using a valid object of the
# same cluster) both verified OK, even with --full, while a restore's
# history depended on the region it ran from (adversarial pass N).  Copies
# whose stored sizes differ are decoded and compared; with --full, every
# copy two regions share is.  No server: a fake data directory and
# synthetic segments.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYSID=7301234567890123457
ws_mkdirs "$T/spool" "$T/r1" "$T/r2" "$T/x"
ws_key "$T/key"
ws_fake_pgdata "$T/pg" "$SYSID"
ws_own "$T/pg"
ws_conf "$T/c.conf" "pgdata = $T/pg"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
ws_region "$T/c.conf" r2 "file://$T/r2" "mode = sync"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }
n() { printf '0000000100000000000000%02X' "$1"; }

for s in 1 2 3; do
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n $s)" "$(n $s)" "$SYSID" --seed "$s" >/dev/null
  ws_own "$T/pg"
  t "wal-push $(n $s) to both regions" w wal-push "$T/pg/pg_wal/$(n $s)"
done
# no backup is taken here: each region alone is a problem for that
# (nothing in it can be restored), the comparison across them is not
t_fail "verify: both regions alike (exit 3: no backup in either)" 3 w verify
unlike "$T_OUT" "PROBLEM wal/" "... no WAL problem"
like "$T_OUT" "PROBLEM backups/: no complete backup" "... only the missing backup"
like "$T_OUT" "across regions: OK" "... compared across regions: OK"
like "$T_OUT" "3 WAL files held by two regions, 0 copies decoded" "... sizes equal: nothing to decode"
t_fail "verify --full: every common copy decoded (exit 3: no backup)" 3 w verify --full
unlike "$T_OUT" "PROBLEM wal/" "... no WAL problem"
like "$T_OUT" "3 WAL files held by two regions, 3 copies decoded and compared" "... all 3 compared"

# r2's copy of segment 3 replaced by another valid object of the cluster
# under that name, of another size (mostly zeros: it compresses)
python3 - "$T/pg/pg_wal/$(n 3)" "$T/x/zeros" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[65536:] = bytes(len(b) - 65536)
open(sys.argv[2], 'wb').write(b)
PY
ws_own "$T/x"
rm -f "$T/r2/wal/$(n 3)"
t "the other copy is put into r2 (st put: encoded and bound as walship writes it)" \
  w --region r2 st put "$T/x/zeros" "wal/$(n 3)"
t_fail "verify --region r2 alone (exit 3: no backup)" 3 w --region r2 verify
unlike "$T_OUT" "PROBLEM wal/" "... but no WAL problem: it cannot tell"
t_fail "verify: the regions hold different copies (exit 3)" 3 w verify
like "$T_OUT" "PROBLEM wal/$(n 3): regions r1 and r2 hold different copies" "... naming the file and both regions"
is "$(grep -c 'PROBLEM wal/' <<<"$T_OUT")" 1 "... each region alone has no WAL problem (the one is across regions)"
out=$(w verify --json 2>/dev/null)
is "$(json '[(x["ok"], x["copies_compared"], x["problems"][0]["object"]) for x in d if x.get("across_regions")]' <<<"$out")" \
  "[(False, 1, 'wal/$(n 3)')]" "JSON: the across-regions entry"

# the same size (random bytes: incompressible, as any seed): only --full tells
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/x/$(n 2)" "$(n 2)" "$SYSID" --seed 99 >/dev/null
ws_own "$T/x"
rm -f "$T/r2/wal/$(n 2)" "$T/r2/wal/$(n 3)" && cp -p "$T/r1/wal/$(n 3)" "$T/r2/wal/$(n 3)"
t "another copy of segment 2, of the same stored size, put into r2" w --region r2 st put "$T/x/$(n 2)" "wal/$(n 2)"
[ "$(stat -c %s "$T/r1/wal/$(n 2)")" = "$(stat -c %s "$T/r2/wal/$(n 2)")" ]; ok $? "... the stored sizes are equal"
t_fail "verify without --full: the sizes agree, nothing is decoded (exit 3: no backup)" 3 w verify
unlike "$T_OUT" "PROBLEM wal/" "... no WAL problem"
t_fail "verify --full: the copies differ (exit 3)" 3 w verify --full
like "$T_OUT" "PROBLEM wal/$(n 2): regions r1 and r2 hold different copies" "... found by decoding both"

# (st rm, used for the repair: a key that is not there is exit 1)
t_fail "st rm of a key that is not there: exit 1" 1 w --region r2 st rm "wal/$(n 9)"
t "st rm of the wrong copy" w --region r2 st rm "wal/$(n 2)"
t_fail "verify --full: the regions agree again (exit 3: no backup)" 3 w verify --full
unlike "$T_OUT" "PROBLEM wal/" "... no WAL problem"

done_testing
