#!/bin/bash
# libcurl, libxml2, libpq and libarchive are loaded on first use (src/common/dynlib.h):
# the binary does not name them as needed libraries; a wal-push and a
# wal-fetch to a file:// region load none of them (backups, and the
# restores that need libarchive, are every backup and restore test); an s3:// region loads
# libcurl and libxml2 (and still works: a closed port is a network error,
# not a crash); a set pg_conninfo loads libpq to check it, and an invalid
# one is still refused when the configuration is read; backup-push loads
# libpq to connect.  LD_DEBUG=files lists every library the dynamic
# linker maps, dlopen included.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"

needed=$(readelf -d "$WALSHIP" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
diag "needed: $needed"
case " $needed" in
  *" libcurl"* | *" libxml2"* | *" libpq"* | *" libarchive"*)
    ok 1 "the binary does not name libcurl, libxml2, libpq or libarchive as needed" ;;
  *) ok 0 "the binary does not name libcurl, libxml2, libpq or libarchive as needed" ;;
esac

mkdir -p "$T/r1" "$T/spool" "$T/pg_wal/archive_status" "$T/out"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
SEG=$T/pg_wal/000000010000000000000001
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$SEG" 000000010000000000000001 7000000000000000001 --seed 1 \
  --seg-size 16777216
dead=$(pg_free_port)
conf() {   # FILE URL [EXTRA-GLOBAL-LINE]
  {
    printf '[global]\nkey_file = %s\nspool_dir = %s\nconnect_timeout = 2\nio_timeout = 2\nretry_deadline = 1\n' \
      "$T/key" "$T/spool"
    [ -n "${3:-}" ] && printf '%s\n' "$3"
    printf '\n[region r1]\nurl = %s\nmode = sync\n' "$2"
    case $2 in
      s3://*) printf 'endpoint = http://127.0.0.1:%s\npath_style = true\naccess_key_id = a\nsecret_access_key = b\n' \
                "$dead" ;;
    esac
  } >"$1"
  chmod 600 "$1"
}
conf "$T/file.conf" "file://$T/r1"
conf "$T/s3.conf" "s3://bucket/pfx"
conf "$T/pq.conf" "file://$T/r1" "pg_conninfo = host=127.0.0.1 port=$dead dbname=postgres connect_timeout=2"
conf "$T/badpq.conf" "file://$T/r1" "pg_conninfo = host='unterminated"

# run NAME CMD... : status in $st, the libraries mapped in $T/libs
run() {
  local name=$1
  shift
  LD_DEBUG=files LD_DEBUG_OUTPUT="$T/ld.$name" "$WALSHIP" "$@" >"$T/out/$name" 2>&1
  st=$?
  cat "$T/ld.$name".* 2>/dev/null | sed -n 's/.*file=\([^ ]*\) .*/\1/p' | sort -u >"$T/libs"
}
loaded() { grep -q "^$1" "$T/libs"; }

run push-file --config "$T/file.conf" wal-push "$SEG"
is "$st" 0 "wal-push to a file:// region succeeds"
loaded libcurl && ok 1 "it loads libcurl" || ok 0 "it does not load libcurl"
loaded libpq && ok 1 "it loads libpq" || ok 0 "it does not load libpq"
loaded libarchive && ok 1 "it loads libarchive" || ok 0 "it does not load libarchive"
loaded libxml2 && ok 1 "it loads libxml2" || ok 0 "it does not load libxml2"

run fetch-file --config "$T/file.conf" wal-fetch 000000010000000000000001 "$T/got" --no-prefetch
is "$st" 0 "wal-fetch from a file:// region succeeds"
cmp -s "$SEG" "$T/got"
ok $? "and restores the segment byte for byte"
loaded libcurl && ok 1 "wal-fetch loads libcurl" || ok 0 "wal-fetch does not load libcurl"
loaded libpq && ok 1 "wal-fetch loads libpq" || ok 0 "wal-fetch does not load libpq"
loaded libarchive && ok 1 "wal-fetch loads libarchive" || ok 0 "wal-fetch does not load libarchive"

run push-s3 --config "$T/s3.conf" wal-push "$SEG"
[ "$st" != 0 ] && [ "$st" -lt 128 ]
ok $? "wal-push to an s3:// region on a closed port fails cleanly (status $st)"
loaded libcurl
ok $? "it loads libcurl"
loaded libxml2
ok $? "and libxml2"
like "$(cat "$T/out/push-s3")" "127\.0\.0\.1|connect|refused" "the error is the network's"

run push-pq --config "$T/pq.conf" wal-push "$SEG"
is "$st" 0 "wal-push with pg_conninfo set succeeds"
loaded libpq
ok $? "libpq is loaded to check pg_conninfo"

run push-badpq --config "$T/badpq.conf" wal-push "$SEG"
is "$st" 2 "an invalid pg_conninfo is still refused when the configuration is read"
like "$(cat "$T/out/push-badpq")" "pg_conninfo|connection string" "naming the setting"

run backup-dead --config "$T/pq.conf" backup-push
[ "$st" != 0 ] && [ "$st" -lt 128 ]
ok $? "backup-push to a server that does not listen fails cleanly (status $st)"
loaded libpq
ok $? "it loads libpq to connect"

# A library that cannot be loaded (WALSHIP_FAULT_INJECT=dlopen.SONAME makes
# it so) fails only what needs it, with its name.
export WALSHIP_FAULT_INJECT=dlopen.libcurl.so.4,dlopen.libxml2.so.2,dlopen.libarchive.so.13
run push-nocurl --config "$T/file.conf" wal-push "$SEG"
is "$st" 0 "without libcurl, libxml2 and libarchive, a wal-push to a file:// region succeeds"
run fetch-nocurl --config "$T/file.conf" wal-fetch 000000010000000000000001 "$T/got2" --no-prefetch
is "$st" 0 "and so does a wal-fetch from it"
run push-s3-nocurl --config "$T/s3.conf" wal-push "$SEG"
[ "$st" != 0 ] && [ "$st" -lt 128 ]
ok $? "a wal-push to an s3:// region fails cleanly without libcurl (status $st)"
like "$(cat "$T/out/push-s3-nocurl")" "libcurl\.so\.4.*s3:// regions" "naming libcurl and what it is for"
export WALSHIP_FAULT_INJECT=dlopen.libpq.so.5
run restore-nopq --config "$T/file.conf" restore --pgdata "$T/rst/data" --target-latest --start
[ "$st" != 0 ] && [ "$st" -lt 128 ]
ok $? "restore --start without libpq fails cleanly (status $st)"
like "$(cat "$T/out/restore-nopq")" "libpq\.so\.5" "naming libpq"
[ ! -e "$T/rst/data/PG_VERSION" ]
ok $? "before anything was restored"
run push-pq-nopq --config "$T/pq.conf" wal-push "$SEG"
is "$st" 3 "a configuration that sets pg_conninfo cannot be read without libpq (it is checked when read): exit 3"
like "$(cat "$T/out/push-pq-nopq")" "pg_conninfo.*libpq\.so\.5" "naming the setting and libpq"
unset WALSHIP_FAULT_INJECT

# The harness's net for the class of bug above (a call through a table
# not yet loaded is a NULL call): any walship run through pg_run that dies
# of SIGSEGV fails its script, even where the case only asked for "not 0".
mkdir -p "$T/net"
printf '#!/bin/sh\nkill -SEGV $$\n' >"$T/net/fake-walship"
chmod 755 "$T" "$T/net" "$T/net/fake-walship"   # pg_run runs it as postgres
cat >"$T/net/script.sh" <<'NET'
. "$TOP_SRCDIR/tests/lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
WALSHIP=$FAKE
pg_run "$WALSHIP" --version
[ "$?" -ne 0 ]; ok $? "a case that only asks for a failure"
done_testing
NET
net=$(TOP_SRCDIR=$TOP_SRCDIR FAKE="$T/net/fake-walship" TMPDIR="$T/net" bash "$T/net/script.sh" 2>&1)
st=$?
[ "$st" -ne 0 ]; ok $? "a script whose walship died of SIGSEGV fails (exit $st)"
like "$net" "not ok 2 - no walship process died of a crash signal" "naming the crash"

done_testing
