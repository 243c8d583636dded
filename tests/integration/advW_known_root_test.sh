#!/bin/bash
# root running wal-push by hand on a spool that belongs to another user
# (adversarial pass W, the spool's first use).  spool_open refuses that
# spool as root (not trusted, and root's files there would stop the
# owner's archiving), and wal-push goes on without it for sync regions; but
# the memory of known regions (spool_dir/SYSID/known/REGION) was still
# written by root: its directories made by root when absent (the owner's
# next wal-push then refuses spool_dir/SYSID as "owned by uid 0"), and its
# file opened through a symbolic link the owner planted there (root then
# created a file wherever the link pointed: /etc/nologin, say).  Root now
# writes nothing into a spool that is not root's, and never through a link.
# file:// region, a cluster made of files; root only (the owner is nobody).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (to play another user)"
id nobody >/dev/null 2>&1 || skip_all "no user nobody"
SYS=7000000000000000071
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
conf() {  # FILE SPOOL
  printf '[global]\nkey_file = %s\nspool_dir = %s\nparallel = 1\nretry_deadline = 3\n[region r1]\nurl = file://%s/r1\nmode = sync\n' \
    "$T/key" "$2" "$T" >"$1"
  chmod 600 "$1"
}
push() { ws_fake_ready "$T/pg" "$SYS" "$2" "${2: -1}" && (cd "$T/pg" && "$WALSHIP" --config "$1" wal-push "pg_wal/$2"); }
N1=000000010000000000000001
N2=000000010000000000000002
N3=000000010000000000000003

conf "$T/a.conf" "$T/spool"
t "the first push (root's own spool then)" push "$T/a.conf" $N1
K=$(ls "$T/spool/$SYS/known/" | grep '^r1-' | head -1)
[ -n "$K" ]; ok $? "the spool remembers region r1 ($K)"
# the spool is given to its owner, who plants a link where the memory is
chown -R nobody "$T/spool"
rm -f "$T/spool/$SYS/known/$K"
ln -s "$T/planted" "$T/spool/$SYS/known/$K"
chown -h nobody "$T/spool/$SYS/known/$K"
t "root's wal-push by hand archives into the sync region" push "$T/a.conf" $N2
[ ! -e "$T/planted" ]; ok $? "... and creates nothing through the link planted in known/"
[ -z "$(find "$T/spool" -user 0)" ]; ok $? "... nor anything of root's in that spool"

# a spool directory of the owner's that has no cluster yet: root makes none
mkdir -p "$T/spool2"; chown nobody "$T/spool2"
conf "$T/b.conf" "$T/spool2"
t "root's wal-push with another user's empty spool" push "$T/b.conf" $N3
[ ! -e "$T/spool2/$SYS" ]; ok $? "... makes no spool_dir/SYSID there (the owner would refuse it as root's)"

done_testing
