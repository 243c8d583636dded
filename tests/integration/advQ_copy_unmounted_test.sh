#!/bin/bash
# walship copy into a region whose file system is not mounted (adversarial
# pass Q): an empty directory where this host's spool remembers the
# cluster's repository (docs/WAL.md "Known regions").  wal-push refuses to
# create a repository there; copy seeded it, exit 0: a whole copy written
# under the mount point (onto the root file system), hidden again once the
# mount is back, while the operator thinks the region is caught up.  copy
# now refuses as wal-push does, exit 3, and writes nothing; with the known/
# file removed (emptied on purpose) it seeds the region.  A cluster made
# of files.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

A=7000000000000000051
ws_fake_pgdata "$T/pga" "$A"
mkdir -p "$T/r1" "$T/r2" "$T/spool"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
pgdata = $T/pga
[region r1]
url = file://$T/r1
mode = sync
[region r2]
url = file://$T/r2
mode = sync
CONF
n() { printf '0000000100000000000000%02X' "$1"; }
for i in 1 2; do
  ws_fake_ready "$T/pga" "$A" "$(n "$i")" "$i" && (cd "$T/pga" && "$WALSHIP" --config "$T/a.conf" wal-push "pg_wal/$(n "$i")") >/dev/null 2>&1
done
[ -e "$T/r1/wal/$(n 2)" ] && [ -e "$T/r2/wal/$(n 2)" ]; ok $? "both regions hold the cluster's WAL"
known=$(find "$T/spool" -path '*known*' -type f | head -1)
[ -n "$known" ]; ok $? "this host's spool remembers the regions ($known)"

mv "$T/r2" "$T/r2.mounted"
mkdir "$T/r2"   # the mount point, with nothing mounted on it
t_fail "copy into r2, unmounted: refused (exit 3)" 3 "$WALSHIP" --config "$T/a.conf" copy --from r1 --to r2
like "$T_OUT" "region r2 .* has no repository identity .* held this cluster's repository before" "...saying why"
is "$(find "$T/r2" -mindepth 1 | wc -l)" 0 "...and nothing is written under the mount point"
t_fail "copy --dry-run says the same (exit 3)" 3 "$WALSHIP" --config "$T/a.conf" copy --from r1 --to r2 --dry-run

rm -f "$T"/spool/*/known/r2-*
t "with r2's known/ file removed (emptied on purpose), copy seeds it" "$WALSHIP" --config "$T/a.conf" copy --from r1 --to r2
cmp -s "$T/r1/wal/$(n 2)" "$T/r2/wal/$(n 2)"; ok $? "...byte for byte"

done_testing
