#!/bin/bash
# walship copy into a region that holds ANOTHER backup under the same name
# (docs/COPY.md "Already there"): two hosts of one cluster (a primary and
# a standby promoted for a drill, each with its own region, or a clock set
# back) took different backups in the same second.  copy must neither
# replace the destination's backup's objects with the source's (the
# destination's manifest would then list parts that are not its own) nor
# take it for a copy of the source's (an incremental of the source's would
# then be copied onto a parent it was not taken against): it refuses,
# naming the backup, exit 3, and changes nothing of it.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1" "$T/r2"
ws_key "$T/key"
CI=$(ws_pg_conninfo "$T/pg" "$PGPORT")
# The primary archives to both regions; each backup goes to one region.
ws_conf "$T/arch.conf" "$CI"
ws_region "$T/arch.conf" r1 "file://$T/r1" "mode = sync"
ws_region "$T/arch.conf" r2 "file://$T/r2" "mode = sync"
ws_conf "$T/b1.conf" "$CI"
ws_region "$T/b1.conf" r1 "file://$T/r1" "mode = sync"
ws_conf "$T/b2.conf" "$CI"
ws_region "$T/b2.conf" r2 "file://$T/r2" "mode = sync"
ws_conf "$T/copy.conf"
ws_region "$T/copy.conf" r1 "file://$T/r1"
ws_region "$T/copy.conf" r2 "file://$T/r2"
wc2() { pg_run "$WALSHIP" --config "$T/copy.conf" "$@"; }

SHIM=$T/clockshift.so
ws_clockshift_build "$SHIM"; ok $? "the clock shim builds (tests/lib/clockshift.c)"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/arch.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }

pg_run "$PG_BIN/pgbench" -i -s 1 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
t "a backup into r1" pg_run "$WALSHIP" --config "$T/b1.conf" backup-push
N=$(took)
[ -n "$N" ] && [ -e "$T/r1/backups/$N/manifest.json" ]; ok $? "r1 holds backup $N"
sql "create table more as select g, md5(g::text) as t from generate_series(1, 200000) g"

# Another backup, into r2, with a clock that reads N's second at its start.
Nsec=$(date -u -d "${N:0:4}-${N:4:2}-${N:6:2} ${N:9:2}:${N:11:2}:${N:13:2}" +%s)
M=
for try in 1 2 3; do
  while [ "$(date +%N | cut -c1)" -gt 2 ]; do sleep 0.05; done
  t "a different backup into r2, its host's clock set back to $N (try $try)" \
    pg_run env LD_PRELOAD="$SHIM" CLOCKSHIFT_SECONDS=$((Nsec - $(date +%s))) "$WALSHIP" --config "$T/b2.conf" backup-push
  M=$(took)
  [ "$M" = "$N" ] && break
  rm -rf "$T/r2/backups/$M"
done
is "$M" "$N" "r2 holds another backup under the same name"
cmp -s "$T/r1/backups/$N/manifest.json" "$T/r2/backups/$N/manifest.json"
[ $? -ne 0 ]; ok $? "...with another manifest"
cp -a "$T/r2/backups/$N" "$T/r2-before"

t_fail "copy r1 to r2 refuses the backup of the same name (exit 3)" 3 wc2 copy --from r1 --to r2
like "$T_OUT" "region r2 holds another backup under the name $N" "it names the backup"
unlike "$T_OUT" "copying its parts again" "it does not copy parts into r2's backup"
diff -r "$T/r2-before" "$T/r2/backups/$N" >/dev/null; ok $? "r2's backup $N is unchanged, object for object"
t "r2's backup verifies (--full)" wc2 verify --region r2 --full

t_fail "copy --dry-run says the same (exit 3)" 3 wc2 copy --from r1 --to r2 --dry-run
like "$T_OUT" "region r2 holds another backup under the name $N" "...naming it"

# r2's own copy of N, the same backup: copied parts are repaired as before
rm -rf "$T/r2/backups/$N"
t "copy r1 to r2 once r2's other backup is gone" wc2 copy --from r1 --to r2
rm "$T/r2/backups/$N/$(ls "$T/r2/backups/$N" | grep part- | head -1)"
t "a copy of the same backup with a part missing is repaired" wc2 copy --from r1 --to r2
like "$T_OUT" "copying its parts again" "...with the warning"
t "and verifies (--full)" wc2 verify --region r2 --full

# a source backup that lost its backup_label is not made visible in r2
rm -rf "$T/r2/backups/$N"
mv "$T/r1/backups/$N/backup_label" "$T/label.away"
t_fail "copy of a backup whose backup_label r1 lost: refused (exit 3)" 3 wc2 copy --from r1 --to r2
like "$T_OUT" "backups/$N/backup_label is missing" "...naming the missing object"
[ ! -e "$T/r2/backups/$N/manifest.json" ]; ok $? "...and r2 has no manifest for it"
mv "$T/label.away" "$T/r1/backups/$N/backup_label"
t "with it back, the copy is done" wc2 copy --from r1 --to r2
rm "$T/r2/backups/$N/backup_label"
t "a copy in r2 that lost its backup_label is taken for incomplete and repaired" wc2 copy --from r1 --to r2
[ -e "$T/r2/backups/$N/backup_label" ]; ok $? "...its backup_label is back"

done_testing
