#!/bin/bash
# Every early failure of wal-push, backup-push and restore (missing or
# unreadable configuration, bad arguments, a missing file, an unreadable or
# bad key, a region that cannot be opened, no server, nothing to restore)
# exits with its documented status and is clean under valgrind (memcheck:
# no invalid access, no use of uninitialised memory, no definite leak).
# In an ASan build, the build's own AddressSanitizer and LeakSanitizer do
# that job (valgrind cannot run ASan binaries); in a TSan build the paths
# still run, unchecked for memory.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"

U=$(pg_user)
mode=plain
if grep -q -- '-fsanitize=address' "$TOP_BUILDDIR/Makefile" 2>/dev/null; then
  mode=asan
  export ASAN_OPTIONS="exitcode=99:detect_leaks=1:${ASAN_OPTIONS:-}" LSAN_OPTIONS="exitcode=99:${LSAN_OPTIONS:-}"
elif grep -q -- '-fsanitize=thread' "$TOP_BUILDDIR/Makefile" 2>/dev/null; then
  mode=tsan
elif command -v valgrind >/dev/null; then
  mode=valgrind
fi
diag "memory checker: $mode"
mkdir -p "$T/r1" "$T/spool" "$T/pg_wal/archive_status" "$T/keydir" "$T/vg"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
head -c 100 /dev/urandom >"$T/badkey"
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg_wal/000000010000000000000001" 000000010000000000000001 \
  7000000000000000001 --seed 1 --seg-size 16777216
dead=$(pg_free_port)
conf() {   # FILE KEY URL
  cat >"$1" <<CONF
[global]
key_file = $2
spool_dir = $T/spool
pg_conninfo = host=127.0.0.1 port=$dead user=postgres dbname=postgres connect_timeout=2
connect_timeout = 2
io_timeout = 2
retry_deadline = 1

[region r1]
url = $3
mode = sync
CONF
  chmod 600 "$1"
}
conf "$T/good.conf" "$T/key" "file://$T/r1"
conf "$T/badkey.conf" "$T/badkey" "file://$T/r1"
conf "$T/dirkey.conf" "$T/keydir" "file://$T/r1"
conf "$T/nokey.conf" "$T/no-such-key" "file://$T/r1"
cp "$T/key" "$T/key000"
conf "$T/key000.conf" "$T/key000" "file://$T/r1"
conf "$T/s3dead.conf" "$T/key" "s3://bucket/pfx"
printf 'endpoint = http://127.0.0.1:%s\npath_style = true\naccess_key_id = a\nsecret_access_key = b\n' "$dead" \
  >>"$T/s3dead.conf"
conf "$T/filedead.conf" "$T/key" "file://$T/no-such-region"
mkdir -p "$T/r-empty"
conf "$T/empty.conf" "$T/key" "file://$T/r-empty"
printf '[global\nkey_file = \n' >"$T/broken.conf"
chmod 600 "$T/key" "$T/badkey" "$T/broken.conf"
chown -R "$U" "$T"
chmod 000 "$T/key000"

n=0
# check NAME WANT_STATUS walship-args...
check() {
  local name=$1 want=$2 st log
  shift 2
  n=$((n + 1))
  log=$T/vg/$n.log
  case $mode in
    valgrind)
      pg_run env TMPDIR="$T/vg" valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --child-silent-after-fork=yes --log-file="$log" \
        "$WALSHIP" "$@" >"$T/vg/$n.out" 2>&1 ;;
    *) pg_run env ASAN_OPTIONS="${ASAN_OPTIONS:-}" LSAN_OPTIONS="${LSAN_OPTIONS:-}" "$WALSHIP" "$@" \
        >"$T/vg/$n.out" 2>&1 ;;
  esac
  st=$?
  if [ "$st" = 99 ]; then
    ok 1 "$name: memory errors"
    diag "$(cat "$log" "$T/vg/$n.out" 2>/dev/null | head -40)"
  else
    is "$st" "$want" "$name: exits $want, memory clean"
    [ "$st" = "$want" ] || diag "$(tail -5 "$T/vg/$n.out")"
  fi
}
SEG=$T/pg_wal/000000010000000000000001

# ---- wal-push ----
check "wal-push, missing configuration" 2 --config "$T/no-such.conf" wal-push "$SEG"
check "wal-push, broken configuration" 2 --config "$T/broken.conf" wal-push "$SEG"
check "wal-push, no argument" 2 --config "$T/good.conf" wal-push
check "wal-push, two arguments" 2 --config "$T/good.conf" wal-push "$SEG" "$SEG"
check "wal-push, a missing file" 3 --config "$T/good.conf" wal-push "$T/pg_wal/000000010000000000000009"
check "wal-push, not a WAL name" 2 --config "$T/good.conf" wal-push "$T/key"
check "wal-push, missing key file" 2 --config "$T/nokey.conf" wal-push "$SEG"
check "wal-push, key file not readable" 2 --config "$T/key000.conf" wal-push "$SEG"
check "wal-push, key file is a directory" 2 --config "$T/dirkey.conf" wal-push "$SEG"
check "wal-push, a bad key" 2 --config "$T/badkey.conf" wal-push "$SEG"
check "wal-push, region directory missing" 3 --config "$T/filedead.conf" wal-push "$SEG"
check "wal-push, S3 region unreachable" 3 --config "$T/s3dead.conf" wal-push "$SEG"

# ---- backup-push ----
check "backup-push, missing configuration" 2 --config "$T/no-such.conf" backup-push
check "backup-push, unknown argument" 2 --config "$T/good.conf" backup-push --bogus
check "backup-push, bad --part-size" 2 --config "$T/good.conf" backup-push --part-size 1k
check "backup-push, missing key file" 2 --config "$T/nokey.conf" backup-push
check "backup-push, a bad key" 2 --config "$T/badkey.conf" backup-push
check "backup-push, key file not readable" 2 --config "$T/key000.conf" backup-push
check "backup-push, no server (a failure, not a configuration error)" 3 --config "$T/good.conf" backup-push

# ---- restore (r1 now holds a repository with WAL but no backup) ----
check "wal-push succeeds (and is clean too)" 0 --config "$T/good.conf" wal-push "$SEG"
check "restore, missing configuration" 2 --config "$T/no-such.conf" restore --target-latest --pgdata "$T/out1"
check "restore, unknown argument" 2 --config "$T/good.conf" restore --bogus
check "restore, no --pgdata" 2 --config "$T/good.conf" restore --target-latest
# an option given twice: which was meant?  (the last one used to win)
check "restore, --pgdata given twice" 2 --config "$T/good.conf" restore --target-latest --pgdata "$T/o8" --pgdata "$T/o9"
check "restore, --backup given twice" 2 --config "$T/good.conf" restore --backup a --pgdata "$T/o8" --backup=b
check "a global option given twice (--region)" 2 --config "$T/good.conf" --region a --region=b restore --pgdata "$T/o8"
check "--config given twice" 2 --config "$T/good.conf" --config "$T/nokey.conf" wal-push "$SEG"
check "status, --standby given twice" 2 --config "$T/good.conf" status --standby "$T/a" --standby="$T/b"
check "copy, --from given twice" 2 --config "$T/good.conf" copy --from r1 --to r2 --from r3
check "backup-fetch, --tablespace-map twice is fine (one per tablespace; here a missing backup: 1)" 1 \
  --config "$T/good.conf" backup-fetch NOSUCH "$T/o10" --tablespace-map /a=/b --tablespace-map /c=/d
check "restore, missing key file" 2 --config "$T/nokey.conf" restore --target-latest --pgdata "$T/out2"
check "restore, a bad key" 2 --config "$T/badkey.conf" restore --target-latest --pgdata "$T/out3"
check "restore, no backup to restore" 1 --config "$T/good.conf" restore --target-latest --pgdata "$T/out4"
check "restore, a region without a repository" 3 --config "$T/empty.conf" restore --target-latest --pgdata "$T/out7"
check "restore, region directory missing" 3 --config "$T/filedead.conf" restore --target-latest --pgdata "$T/out5"
check "restore, S3 region unreachable" 3 --config "$T/s3dead.conf" restore --target-latest --pgdata "$T/out6"
done_testing
