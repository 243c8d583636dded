#!/bin/bash
# spool_dir, or a file:// region, on a volume that is not mounted: a mount
# point of /etc/fstab at or above it where nothing is mounted.  WAL spooled there for an
# async region would lie below the mount point and be hidden once the
# volume mounts (acknowledged to PostgreSQL, never shipped), and the queue
# on the volume is out of sight now.  wal-push with an async region refuses
# (exit 2, naming the mount point) and writes nothing there; with sync
# regions only it archives without a spool and warns.
# Root only: walship runs in a mount namespace of its own where a test
# fstab is bind-mounted over /etc/fstab (and, for "mounted", a tmpfs on the
# mount point); file:// regions and a cluster made of files.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (a mount namespace, a bind mount over /etc/fstab)"
unshare -m --propagation private -- true 2>/dev/null || skip_all "unshare -m does not work here"

SYS=7000000000000000041
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
B=$T/w
mkdir -p "$B/vol" "$T/r1" "$T/r3"
printf '# a test fstab\n/dev/sda1 / ext4 defaults 0 1\nLABEL=spool %s ext4 defaults,nofail 0 2\n' "$B/vol" >"$T/fstab"
conf() {   # FILE [ASYNC_URL]
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $B/vol/spool
parallel = 1
retry_deadline = 3

[region r1]
url = file://$T/r1
mode = sync
CONF
  [ -z "${2:-}" ] || printf '\n[region r3]\nurl = %s\nmode = async\n' "$2" >>"$1"
}
conf "$T/async.conf" "file://$T/r3"
on_exit "ws_stop_daemons '$B/vol/spool'"
conf "$T/sync.conf"
seg() { python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$1" "$1" "$SYS" --seed "$2" --seg-size 1048576 >/dev/null; }
# in_ns MOUNTED CMD...: CMD in the cluster's directory, in a mount
# namespace where /etc/fstab is the test's, and $B/vol a tmpfs when MOUNTED
in_ns() {
  local mounted=$1; shift
  unshare -m --propagation private -- bash -c '
    mount --bind "$0" /etc/fstab || exit 99
    if [ "$1" = 1 ]; then mount -t tmpfs -o size=64m,mode=0755 tmpfs "$2" || exit 99; fi
    cd "$3" && shift 4 && exec "$@"' "$T/fstab" "$mounted" "$B/vol" "$T/pg" x "$@"
}
N1=000000010000000000000001
N2=000000010000000000000002
N3=000000010000000000000003
seg $N1 1; seg $N2 2; seg $N3 3

t_fail "wal-push with an async region, spool_dir on the unmounted volume: refused (exit 2)" 2 \
  in_ns 0 "$WALSHIP" --config "$T/async.conf" wal-push "pg_wal/$N1"
like "$T_OUT" "spool_dir \"$B/vol/spool\" is on $B/vol, a mount point in /etc/fstab where nothing is mounted" \
  "...naming spool_dir and the mount point"
[ -z "$(ls -A "$B/vol")" ]; ok $? "...and nothing is written below the mount point"
[ -z "$(ls -A "$T/r3")" ]; ok $? "...nor queued for the async region"

t "wal-push with sync regions only: archives without the spool" \
  in_ns 0 "$WALSHIP" --config "$T/sync.conf" wal-push "pg_wal/$N2"
like "$T_OUT" "no spool.*is on $B/vol, a mount point in /etc/fstab where nothing is mounted" "...and says why"
[ -e "$T/r1/wal/$N2" ]; ok $? "...the sync region has the file"
[ -z "$(ls -A "$B/vol")" ]; ok $? "...and nothing is written below the mount point"

t "once the volume is mounted (a tmpfs), the spool is used" \
  in_ns 1 "$WALSHIP" --config "$T/sync.conf" wal-push "pg_wal/$N3"
unlike "$T_OUT" "nothing is mounted" "...without the warning"
[ -z "$(ls -A "$B/vol")" ]; ok $? "...on the volume (gone with its namespace), not below it"
t "the host's own fstab has no such line: the async push works outside the namespace" \
  bash -c "cd '$T/pg' && '$WALSHIP' --config '$T/async.conf' wal-push 'pg_wal/$N1'"
ws_stop_daemons "$B/vol/spool"

# a file:// region on the unmounted volume: a first push would make a
# repository there that the volume hides once it mounts
cat >"$T/vreg.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 3

[region v]
url = file://$B/vol/repo
mode = sync
CONF
# (the shipper started outside the namespace above may still be writing
# its log into $B/vol/spool while it stops: only the region is looked at)
t_fail "wal-push into a file:// region on the unmounted volume: refused (exit 3)" 3 \
  in_ns 0 "$WALSHIP" --config "$T/vreg.conf" wal-push "pg_wal/$N1"
like "$T_OUT" "region v: its directory \"$B/vol/repo\" is on $B/vol, a mount point in /etc/fstab where nothing is mounted" \
  "...naming the region, its directory and the mount point"
[ ! -e "$B/vol/repo" ]; ok $? "...and nothing is written below the mount point (no region directory there)"
mkdir -p "$B/vol/repo"
t_fail "wal-fetch from it: an error, never \"not found\" (which would end a recovery)" 250 \
  in_ns 0 "$WALSHIP" --config "$T/vreg.conf" wal-fetch "$N1" "$T/got"
t "once mounted (a tmpfs with the directory), wal-push works" \
  in_ns 1 bash -c "mkdir -p '$B/vol/repo' && exec '$WALSHIP' --config '$T/vreg.conf' wal-push 'pg_wal/$N1'"

done_testing
