#!/bin/bash
# walship copy does not propagate what the source region could not restore
# from (adversarial pass Q): an object in R1 that does not decode — another
# cluster's WAL file dropped into R1's prefix, a WAL object stored under
# another segment's name, one truncated, one with a flipped byte — was
# copied byte for byte into R2, exit 0, and R2 then looked as complete as
# R1.  Now every object is authenticated on its way (docs/COPY.md): those
# are named, not copied (no temp file left either), the good ones are,
# and copy exits 3.  file:// regions and a cluster made of files.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

A=7000000000000000021
B=7000000000000000022
ws_fake_pgdata "$T/pga" "$A"
ws_fake_pgdata "$T/pgb" "$B"
mkdir -p "$T/r1" "$T/r2" "$T/rx" "$T/spool"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
mk() {   # CONF PGDATA REGION-DIR
  printf '[global]\nkey_file = %s\nspool_dir = %s\npgdata = %s\n[region r]\nurl = file://%s\nmode = sync\n' \
    "$T/key" "$T/spool" "$2" "$3" >"$1"
}
mk "$T/a.conf" "$T/pga" "$T/r1"
mk "$T/b.conf" "$T/pgb" "$T/rx"
printf '[global]\nkey_file = %s\n[region r1]\nurl = file://%s\n[region r2]\nurl = file://%s\n' \
  "$T/key" "$T/r1" "$T/r2" >"$T/c.conf"
n() { printf '0000000100000000000000%02X' "$1"; }
push() {  # CONF PGDATA SYSID NUM
  ws_fake_ready "$2" "$3" "$(n "$4")" "$4" && (cd "$2" && "$WALSHIP" --config "$1" wal-push "pg_wal/$(n "$4")")
}
for i in 1 2 3 4 5; do push "$T/a.conf" "$T/pga" "$A" "$i" >/dev/null 2>&1; done
push "$T/b.conf" "$T/pgb" "$B" 6 >/dev/null 2>&1
[ "$(ls "$T/r1/wal" | wc -l)" = 5 ] && [ -e "$T/rx/wal/$(n 6)" ]; ok $? "r1 holds 5 WAL files, rx another cluster's"

# another cluster's object, one renamed, one truncated, one with a flipped byte
cp "$T/rx/wal/$(n 6)" "$T/r1/wal/$(n 6)"
cp "$T/r1/wal/$(n 1)" "$T/r1/wal/$(n 7)"
head -c 300000 "$T/r1/wal/$(n 2)" >"$T/trunc" && cat "$T/trunc" >"$T/r1/wal/$(n 2)"
python3 -c "
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" "$T/r1/wal/$(n 3)"

t_fail "copy r1 to r2: exit 3" 3 "$WALSHIP" --config "$T/c.conf" copy --from r1 --to r2
like "$T_OUT" "wal/$(n 6).*another cluster" "it names the other cluster's object"
like "$T_OUT" "wal/$(n 7).*renamed" "...the renamed one"
like "$T_OUT" "wal/$(n 2).*not copied" "...the truncated one"
like "$T_OUT" "wal/$(n 3).*not copied" "...the damaged one"
for i in 2 3 6 7; do
  [ ! -e "$T/r2/wal/$(n "$i")" ]; ok $? "$(n "$i") is not in r2"
done
for i in 1 4 5; do
  cmp -s "$T/r1/wal/$(n "$i")" "$T/r2/wal/$(n "$i")"; ok $? "$(n "$i") was copied"
done
is "$(find "$T/r2" -name '.walship-tmp-*' | wc -l)" 0 "no temp file is left in r2"
# (no backup is copied here: r2's one problem is that it has none)
t_fail "r2 verifies but for having no backup (exit 3)" 3 "$WALSHIP" --config "$T/c.conf" verify --region r2
unlike "$T_OUT" "PROBLEM wal/" "...no WAL problem in r2"
like "$T_OUT" "PROBLEM backups/: no complete backup" "...only the missing backup"

# a damaged copy in r2 of another size is replaced only by a good one
cp "$T/trunc" "$T/r2/wal/$(n 2)"
t_fail "a damaged source object never replaces a damaged destination one" 3 \
  "$WALSHIP" --config "$T/c.conf" copy --from r1 --to r2
cmp -s "$T/trunc" "$T/r2/wal/$(n 2)"; ok $? "...r2's copy is as it was"

mkdir -p "$T/r3"
printf '[global]\nkey_file = %s\n[region r1]\nurl = file://%s\n[region r3]\nurl = file://%s\n' \
  "$T/key" "$T/r1" "$T/r3" >"$T/d.conf"
rm -f "$T/r1/wal/$(n 2)" "$T/r1/wal/$(n 3)" "$T/r1/wal/$(n 6)" "$T/r1/wal/$(n 7)"
t "with the bad objects gone, copy r1 to a new region" "$WALSHIP" --config "$T/d.conf" copy --from r1 --to r3
like "$T_OUT" "wal +3 copied" "...copies the 3 good WAL files"

# after a key rotation: WAL under the new key, the copying host without it
"$WALSHIP" keygen "$T/key2" >/dev/null 2>&1
chmod 600 "$T/key2"
printf '[global]\nkey_file = %s\nold_key_files = %s\nspool_dir = %s\npgdata = %s\n[region r]\nurl = file://%s\nmode = sync\n' \
  "$T/key2" "$T/key" "$T/spool" "$T/pga" "$T/r1" >"$T/a2.conf"
push "$T/a2.conf" "$T/pga" "$A" 8 >/dev/null 2>&1
[ -e "$T/r1/wal/$(n 8)" ]; ok $? "a WAL file under the new key is in r1"
t_fail "copy by a host without the new key: exit 3" 3 "$WALSHIP" --config "$T/d.conf" copy --from r1 --to r3
like "$T_OUT" "wal/$(n 8).*not among the configured keys" "...naming the file and the key"
like "$T_OUT" "do not decode here" "...and the summary says so"
[ ! -e "$T/r3/wal/$(n 8)" ]; ok $? "...and it is not in r3"
printf 'old_key_files = %s\n' "$T/key2" >"$T/old"
sed -i "2r $T/old" "$T/d.conf"
t "with the new key in old_key_files, it is copied" "$WALSHIP" --config "$T/d.conf" copy --from r1 --to r3
cmp -s "$T/r1/wal/$(n 8)" "$T/r3/wal/$(n 8)"; ok $? "...byte for byte"

done_testing
