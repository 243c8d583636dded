#!/bin/bash
# Adversarial pass AD: a key rotated by pointing a symbolic link at the new
# key file (key_file = /etc/walship/key -> key-2026, then -> key-2027, the
# old one named in old_key_files) never reached an instance made by
# `restore`: restore wrote realpath(--key-file) into restore_command, the
# file the link named at restore time, so the instance (a standby above
# all) kept the old key alone and every segment archived under the new
# one was refused ("key id ... not among the configured keys": exit 250,
# or 1 and a stall in standby mode).  restore now writes the path as given,
# made absolute (its links kept), and so for WALSHIP_OLD_KEY_FILES.
# A bare DR host (restore --from, no configuration file); file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo" "$T/r1" "$T/keys"
ws_key "$T/keys/key-1" || { echo "Bail out! keygen"; exit 1; }
ws_key "$T/keys/key-2" || { echo "Bail out! keygen"; exit 1; }
ln -s key-1 "$T/keys/key"
WS_KEY=$T/keys/key ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "old_key_files = $T/keys/old"
ln -s key-1 "$T/keys/old"     # until the rotation: the same key
ws_region "$CONF" local "file://$T/repo" "mode = sync"
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }

sql "create table t(i int)" >/dev/null
t "backup-push under key-1" pg_run "$WALSHIP" --config "$CONF" backup-push
BK=$(ls "$T/repo/backups" | head -1)
t "restore on a bare DR host with --key-file (a link to key-1), not started" \
  pg_run env WALSHIP_OLD_KEY_FILES="$T/keys/old" "$WALSHIP" restore --from "file://$T/repo" \
  --key-file "$T/keys/key" --pgdata "$T/r1/data" --backup "$BK"
AUTO=$(cat "$T/r1/data/postgresql.auto.conf" 2>/dev/null)
like "$AUTO" "--key-file'' ''$T/keys/key''" "restore_command names the key file as given (the link)"
unlike "$AUTO" "key-1" "... not the file it points to now"

# the rotation, on both hosts: the link names key-2, the old key stays readable
ln -sfn key-2 "$T/keys/key"
ln -sfn key-1 "$T/keys/old"
sql "insert into t select generate_series(1, 100)" >/dev/null
seg=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 60 test -f "$T/repo/wal/$seg"
ok $? "a segment archived after the rotation ($seg)"
keyid() {   # docs/FORMAT.md: SHA-256("walship key id v1" NUL key), first 16 bytes
  python3 -c 'import hashlib,sys; k=bytes.fromhex(open(sys.argv[1]).read().strip()); print(hashlib.sha256(b"walship key id v1\0"+k).hexdigest()[:32])' "$1"
}
is "$(od -An -tx1 -j8 -N16 "$T/repo/wal/$seg" | tr -d ' \n')" "$(keyid "$T/keys/key-2")" "... under key-2"

# restore_command as PostgreSQL would run it, from the data directory
cmd=$(sed -n "s/^restore_command = '\\(.*\\)'\$/\\1/p" "$T/r1/data/postgresql.auto.conf" | sed "s/''/'/g")
cmd=${cmd//%f/$seg}
cmd=${cmd//%p/pg_wal\/RECOVERYXLOG}
out=$(cd "$T/r1/data" && pg_run bash -c "$cmd" 2>&1); rc=$?
is "$rc" 0 "the restored instance's restore_command fetches it with the rotated key"
[ "$rc" -eq 0 ] || diag "$out"

done_testing
