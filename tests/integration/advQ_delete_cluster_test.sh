#!/bin/bash
# walship delete --region R where R's url points at ANOTHER cluster's
# repository (adversarial pass Q): delete refused two regions of two
# clusters ("choose one with --region"), but with --region naming the
# other cluster's region alone it applied this configuration's retention
# there, exit 0 (here: it removed that cluster's incomplete backup).  When
# the configuration's data directory can be read, the region must hold
# its cluster's repository; without one (a maintenance host) the regions
# must agree with each other, as before.  A cluster made of files.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

A=7000000000000000041
B=7000000000000000042
ws_fake_pgdata "$T/pga" "$A"
ws_fake_pgdata "$T/pgb" "$B"
mkdir -p "$T/ra" "$T/rb" "$T/spool"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
mk() {   # CONF PGDATA REGION-DIR
  printf '[global]\nkey_file = %s\nspool_dir = %s\npgdata = %s\n[region r]\nurl = file://%s\nmode = sync\n' \
    "$T/key" "$T/spool" "$2" "$3" >"$1"
}
mk "$T/a1.conf" "$T/pga" "$T/ra"
mk "$T/b1.conf" "$T/pgb" "$T/rb"
seg() {  # CONF PGDATA SYSID
  ws_fake_ready "$2" "$3" 000000010000000000000001 1 &&
    (cd "$2" && "$WALSHIP" --config "$1" wal-push pg_wal/000000010000000000000001)
}
seg "$T/a1.conf" "$T/pga" "$A" >/dev/null 2>&1
seg "$T/b1.conf" "$T/pgb" "$B" >/dev/null 2>&1
[ -e "$T/ra/identity.json" ] && [ -e "$T/rb/identity.json" ]; ok $? "two clusters' repositories, ra (A) and rb (B)"
# cluster B's backup in progress for two days (its host is down)
mkdir -p "$T/rb/backups/20261201T000000Z"
echo x >"$T/rb/backups/20261201T000000Z/part-0001"
touch -d '2 days ago' "$T/rb/backups/20261201T000000Z/part-0001"

# cluster A's configuration, where rb is a url typed wrong
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
pgdata = $T/pga
garbage_hours = 1
[region ra]
url = file://$T/ra
retain_full = 1
[region rb]
url = file://$T/rb
retain_full = 1
CONF
t_fail "delete over both regions: refused (exit 3)" 3 "$WALSHIP" --config "$T/a.conf" delete
t_fail "delete --region rb, another cluster's: refused (exit 3)" 3 "$WALSHIP" --config "$T/a.conf" delete --region rb
like "$T_OUT" "region rb holds the repository of cluster $B, not that of this configuration's data directory \\(cluster $A\\)" \
  "...naming both clusters"
[ -e "$T/rb/backups/20261201T000000Z/part-0001" ]; ok $? "...and cluster B's backup in progress is still there"
t_fail "delete --region rb --dry-run: refused too" 3 "$WALSHIP" --config "$T/a.conf" delete --region rb --dry-run
t "delete --region ra, this cluster's: runs" "$WALSHIP" --config "$T/a.conf" delete --region ra

# a maintenance host without a data directory: rb alone is one cluster
sed '/^pgdata/d' "$T/a.conf" >"$T/m.conf"
t "without pgdata, delete --region rb runs (the regions named agree)" \
  "$WALSHIP" --config "$T/m.conf" delete --region rb
[ ! -e "$T/rb/backups/20261201T000000Z" ]; ok $? "...and removes the stale incomplete backup"

# upgrade over an empty region and two clusters' repositories named the
# first region (the empty one) as the other cluster's
mkdir -p "$T/e0"
printf '[global]\nkey_file = %s\nspool_dir = %s\n[region e0]\nurl = file://%s\n[region ra]\nurl = file://%s\n[region rb]\nurl = file://%s\n' \
  "$T/key" "$T/spool" "$T/e0" "$T/ra" "$T/rb" >"$T/u.conf"
t_fail "upgrade --dry-run over two clusters' repositories: exit 3" 3 "$WALSHIP" --config "$T/u.conf" upgrade --dry-run
like "$T_OUT" "region rb: FAILED: it holds cluster $B, region ra cluster $A" "...naming the region that holds the other cluster"

done_testing
