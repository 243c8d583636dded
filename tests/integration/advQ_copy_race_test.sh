#!/bin/bash
# walship copy racing a wal-push that writes the same WAL file into the
# destination (adversarial pass Q): the file was not in R2 when copy
# listed it, and is when copy publishes its own.  copy failed, exit 3,
# "already exists", for a file R2 then held correctly.  Now the file made
# meanwhile is compared as one found at the start: the same size is kept
# and counted as already there; the same content at another size (other
# compression) is kept; other content is kept, named, and copy exits 3.
# R2's file is never replaced.  file:// regions, a cluster made of files,
# and an LD_PRELOAD shim that publishes the other writer's file at the
# exact moment (tests/lib/renamehook.c).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

A=7000000000000000031
ws_fake_pgdata "$T/pga" "$A"
mkdir -p "$T/r1" "$T/r2" "$T/ra" "$T/rb" "$T/rc" "$T/spool"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
HOOK=$T/renamehook.so
ws_renamehook_build "$HOOK"; ok $? "the rename hook builds (tests/lib/renamehook.c)"
mk() {   # CONF REGION-DIR [extra global line]
  printf '[global]\nkey_file = %s\nspool_dir = %s\npgdata = %s\n%s\n[region r]\nurl = file://%s\nmode = sync\n' \
    "$T/key" "$T/spool" "$T/pga" "${3:-}" "$2" >"$1"
}
mk "$T/a.conf" "$T/r1"
mk "$T/ra.conf" "$T/ra"
mk "$T/rb.conf" "$T/rb" "compression = none"
mk "$T/rc.conf" "$T/rc" "compression = none"
printf '[global]\nkey_file = %s\n[region r1]\nurl = file://%s\n[region r2]\nurl = file://%s\n' \
  "$T/key" "$T/r1" "$T/r2" >"$T/c.conf"
n() { printf '0000000100000000000000%02X' "$1"; }
push() {  # CONF NUM SEED
  rm -f "$T/pga/pg_wal/$(n "$2")"
  ws_fake_ready "$T/pga" "$A" "$(n "$2")" "$3" && (cd "$T/pga" && "$WALSHIP" --config "$1" wal-push "pg_wal/$(n "$2")")
}
for i in 1 2 3; do push "$T/a.conf" "$i" "$i" >/dev/null 2>&1; done
push "$T/ra.conf" 2 2 >/dev/null 2>&1      # the same segment, written again: the same size
push "$T/rb.conf" 3 3 >/dev/null 2>&1      # the same segment, uncompressed: another size
push "$T/rc.conf" 1 99 >/dev/null 2>&1     # other content under 1's name
[ "$(ls "$T/r1/wal" | wc -l)" = 3 ] && [ -e "$T/ra/wal/$(n 2)" ] && [ -e "$T/rb/wal/$(n 3)" ] && [ -e "$T/rc/wal/$(n 1)" ]
ok $? "r1 holds 3 WAL files; the other writers' files are ready"
[ "$(stat -c %s "$T/rb/wal/$(n 3)")" != "$(stat -c %s "$T/r1/wal/$(n 3)")" ]; ok $? "...the uncompressed one has another size"
race() {  # NUM FROM: the other writer publishes FROM as r2's NUM just before copy does
  env LD_PRELOAD="$HOOK" RENAMEHOOK_SUFFIX="/wal/$(n "$1")" RENAMEHOOK_LINK="$2" \
    "$WALSHIP" --config "$T/c.conf" copy --from r1 --to r2
}

t "copy while a wal-push writes $(n 2) into r2 (same size)" race 2 "$T/ra/wal/$(n 2)"
like "$T_OUT" "wal +2 copied .* 1 skipped" "...it is counted as already there"
cmp -s "$T/ra/wal/$(n 2)" "$T/r2/wal/$(n 2)"; ok $? "...and r2 keeps the other writer's file"

rm "$T/r2/wal/$(n 3)"
t "copy while a wal-push writes $(n 3) into r2 (same content, another size)" race 3 "$T/rb/wal/$(n 3)"
cmp -s "$T/rb/wal/$(n 3)" "$T/r2/wal/$(n 3)"; ok $? "...r2 keeps the other writer's file"

rm "$T/r2/wal/$(n 1)"
t_fail "copy while another writer puts other content under $(n 1) into r2: exit 3" 3 race 1 "$T/rc/wal/$(n 1)"
like "$T_OUT" "already has wal/$(n 1) with other content" "...naming the file"
cmp -s "$T/rc/wal/$(n 1)" "$T/r2/wal/$(n 1)"; ok $? "...which r2 keeps as it is"
is "$(find "$T/r2" -name '.walship-tmp-*' | wc -l)" 0 "no temp file is left in r2"

done_testing
