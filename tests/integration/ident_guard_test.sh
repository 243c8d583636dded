#!/bin/bash
# A region whose repository identity disappears under a long-running
# process (its file system unmounted, its directory replaced by an empty
# one) receives nothing more, and nothing is acknowledged for it (an
# adversarial review's findings): file:// regions and a cluster made of
# files, no server needed.
#   - the archiver process (archive_async_process) re-reads each region's
#     identity before it commits a segment: wal-push exits 3 for a segment
#     whose region was replaced while the process ran, and nothing lands in
#     the empty directory;
#   - the shipper re-reads it before it commits a spooled file: the files
#     stay in the spool, the error is in its state file, nothing lands in
#     the empty directory, and once the region is back they are shipped;
#   - a region that held this cluster's repository (the spool's known/) and
#     holds WAL objects but no identity now is not bound by `walship
#     upgrade` nor by wal-push: both say the identity was lost and how to
#     recover; with the known/ file removed (emptied on purpose) it is.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYS=7000000000000000011
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
seg() { ws_fake_ready "$T/pg" "$SYS" "$1" "$2"; }   # NAME SEED
push() {  # CONF NAME, and .ready renamed .done on exit 0 as PostgreSQL does
  (cd "$T/pg" && "$WALSHIP" --config "$1" wal-push "pg_wal/$2") || return
  mv "$T/pg/pg_wal/archive_status/$2.ready" "$T/pg/pg_wal/archive_status/$2.done" 2>/dev/null
  return 0
}
on_exit "ws_stop_daemons '$T'"
n() { printf '0000000100000000000000%02X' "$1"; }
objects() { find "$1" -type f -path '*/wal/*' ! -name '.walship-tmp-*' 2>/dev/null | wc -l; }

# ---- the archiver process ----
cat >"$T/a.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 5
archive_async_process = on
archive_async_idle = 60
log_level = info

[region r1]
url = file://$T/r1
mode = sync
CONF
SP=$T/spool/$SYS
seg "$(n 1)" 1
t "archiver process: segment 1 archived" push "$T/a.conf" "$(n 1)"
wait_for 30 bash -c ". '$TOP_SRCDIR/tests/lib/walship.sh'; [ -n \"\$(ws_lock_pid '$SP/archd.lock')\" ]"
archd=$(ws_lock_pid "$SP/archd.lock")
[ -n "$archd" ]; ok $? "... by the archiver process (pid ${archd:-none})"
[ -e "$T/r1/wal/$(n 1)" ]; ok $? "... into region r1"
mv "$T/r1" "$T/r1.real" && mkdir "$T/r1"      # r1's file system "unmounted"
seg "$(n 2)" 2
t_fail "segment 2 with r1 replaced by an empty directory: refused (exit 3)" 3 push "$T/a.conf" "$(n 2)"
is "$(ws_lock_pid "$SP/archd.lock")" "$archd" "... the same archiver process was running"
is "$(objects "$T/r1")" 0 "... nothing landed in the empty directory"
[ ! -e "$T/r1/identity.json" ]; ok $? "... and no identity was created there"
like "$(cat "$SP/archd.log" 2>/dev/null)" "could not archive $(n 2).*identity.*(gone|missing)" \
  "... the process's log says r1's identity is gone"
t "upgrade --dry-run of the empty r1" "$WALSHIP" --config "$T/a.conf" --region r1 upgrade --dry-run
like "$T_OUT" "empty, nothing to upgrade.*unless this host's spool remembers the region" \
  "... does not promise that the next push creates an identity there"
rm -rf "$T/r1" && mv "$T/r1.real" "$T/r1"
t "r1 back: segment 2 is archived" push "$T/a.conf" "$(n 2)"
[ -e "$T/r1/wal/$(n 2)" ]; ok $? "... into r1"
is "$(ws_lock_pid "$SP/archd.lock")" "$archd" "... the same archiver process still runs"
# another cluster's repository mounted in r1's place
SYSB=7000000000000000012
ws_fake_pgdata "$T/pgb" "$SYSB"
mkdir -p "$T/rb"
printf '[global]\nkey_file = %s\nspool_dir = %s\n\n[region rb]\nurl = file://%s\n' "$T/key" "$T/spoolb" "$T/rb" >"$T/b.conf"
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pgb/pg_wal/$(n 9)" "$(n 9)" "$SYSB" --seed 9 --seg-size 1048576 >/dev/null
t "cluster B archives to its own region" sh -c "cd '$T/pgb' && '$WALSHIP' --config '$T/b.conf' wal-push pg_wal/$(n 9)"
mv "$T/r1" "$T/r1.real" && mv "$T/rb" "$T/r1"
seg "$(n 6)" 6
t_fail "segment 6 with cluster B's repository in r1's place: refused (exit 3)" 3 push "$T/a.conf" "$(n 6)"
[ ! -e "$T/r1/wal/$(n 6)" ]; ok $? "... and not stored there"
like "$(cat "$SP/archd.log" 2>/dev/null)" "could not archive $(n 6).*identity changed since this process read it" \
  "... the process's log says r1's identity changed"
mv "$T/r1" "$T/rb" && mv "$T/r1.real" "$T/r1"
t "r1 back: segment 6 is archived" push "$T/a.conf" "$(n 6)"
# a second repository of this same cluster mounted in r1's place (made by
# hand with another spool, an old snapshot): the archiver process refuses
# it, and so must the wal-push that takes over from it
sleep 1.1   # another creation second than r1's
sed -e "s|spool_dir = $T/spool|spool_dir = $T/spoolc|" -e "s|url = file://$T/r1|url = file://$T/r1c|" \
  -e 's/^archive_async_process = on/archive_async_process = off/' "$T/a.conf" >"$T/c.conf"
chmod 600 "$T/c.conf"
mkdir -p "$T/r1c"
seg "$(n 7)" 7
t "a second repository of the cluster, made with another spool" push "$T/c.conf" "$(n 7)"
mv "$T/r1" "$T/r1.real" && mv "$T/r1c" "$T/r1"
seg "$(n 8)" 8
t_fail "segment 8 with a second repository of this cluster in r1's place: refused (exit 3)" 3 push "$T/a.conf" "$(n 8)"
like "$T_OUT" "spool knew another one there" "... the wal-push that took over says the spool knew another repository there"
[ ! -e "$T/r1/wal/$(n 8)" ]; ok $? "... and stored nothing there"
mv "$T/r1" "$T/r1c" && mv "$T/r1.real" "$T/r1"
t "r1 back: segment 8 is archived" push "$T/a.conf" "$(n 8)"
ws_stop_daemons "$T/spool"

# ---- after an incident: WAL objects, no identity ----
mv "$T/r1" "$T/r1.real" && mkdir -p "$T/r1/wal"
cp -p "$T/r1.real/wal/$(n 2)" "$T/r1/wal/"
sed -i 's/^archive_async_process = on/archive_async_process = off/' "$T/a.conf"
seg "$(n 3)" 3
t_fail "wal-push into a remembered region with WAL but no identity: refused (exit 3)" 3 push "$T/a.conf" "$(n 3)"
like "$T_OUT" "held this cluster's repository before" "... saying it held this cluster's repository"
if grep -q "run \"walship upgrade" <<<"$T_OUT"; then ok 1 "... and not advising upgrade"; else ok 0 "... and not advising upgrade"; fi
t_fail "upgrade --region r1 --dry-run: refused (exit 3)" 3 "$WALSHIP" --config "$T/a.conf" --region r1 upgrade --dry-run
t_fail "upgrade --region r1: refused (exit 3)" 3 "$WALSHIP" --config "$T/a.conf" --region r1 upgrade
like "$T_OUT" "held this cluster.s repository before \(cluster $SYS" "... saying the region held this cluster's repository"
like "$T_OUT" "unmounted|mount" "... that its mount may have changed"
like "$T_OUT" "$SP/known/r1-" "... and naming the known/ file to remove if it was emptied on purpose"
[ ! -e "$T/r1/identity.json" ]; ok $? "... and no identity was written"
rm -f "$SP"/known/r1-*
t "with the known/ file removed (emptied on purpose): upgrade binds it" \
  "$WALSHIP" --config "$T/a.conf" --region r1 upgrade
[ -e "$T/r1/identity.json" ]; ok $? "... and writes its identity"
rm -rf "$T/r1" && mv "$T/r1.real" "$T/r1"
t "r1 back: segment 3 is archived" push "$T/a.conf" "$(n 3)"

# ---- the shipper ----
mkdir -p "$T/r3" && : >"$T/r3/wal"     # wal/ blocked: the shipper reads the identity, then fails
cat >"$T/s.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool3
parallel = 1
log_level = info

[region r3]
url = file://$T/r3
mode = async
CONF
S3=$T/spool3/$SYS
for i in 4 5; do
  seg "$(n "$i")" "$i"
  t "segment $i spooled for async region r3" push "$T/s.conf" "$(n "$i")"
done
queued() { find "$S3"/queue/ -path '*/r3-*/0000*' -type f 2>/dev/null | wc -l; }
wait_for 60 test -e "$T/r3/identity.json"
ok $? "the shipper created r3's identity"
shipper=$(ws_lock_pid "$S3/ship.lock")
[ -n "$shipper" ]; ok $? "... and is retrying (pid ${shipper:-none})"
mv "$T/r3" "$T/r3.real" && mkdir "$T/r3"      # r3's file system "unmounted"
refused() { grep -qE "identity.*(gone|missing)" "$S3"/state/r3-*.json 2>/dev/null; }
gone() { [ "$(queued)" = 0 ]; }
wait_for 30 bash -c "$(declare -f refused gone queued); S3='$S3'; refused || gone"
is "$(queued)" 2 "r3 replaced while the shipper runs: both files stay in the spool"
is "$(objects "$T/r3")" 0 "... nothing landed in the empty directory"
refused; ok $? "... and r3's state file says its identity is gone"
like "$(cat "$S3/ship.log" 2>/dev/null)" "identity.*(gone|missing)" "... as does the shipper's log"
is "$(ws_lock_pid "$S3/ship.lock")" "$shipper" "... the shipper goes on (retrying later)"
ws_stop_daemons "$T/spool3"
rm -rf "$T/r3" && mv "$T/r3.real" "$T/r3" && rm -f "$T/r3/wal"
t "r3 back: ship --once ships them" "$WALSHIP" --config "$T/s.conf" ship --once --system-identifier "$SYS"
is "$(objects "$T/r3")" 2 "... both are in r3"
is "$(queued)" 0 "... and the spool is empty"
done_testing
