#!/bin/bash
# tests/integration/s3_odd_test.sh: the s3:// driver against answers that a
# real S3 never gives but a misbehaving server, a proxy or a wrong endpoint
# does (an adversarial review's findings).  No Swift: a file:// repository
# made by wal-push is served by tests/lib/s3odd.py, which answers chosen
# keys oddly.
#   - a 404 without an S3 error code (an HTML page) is not "no such
#     object": wal-fetch must not exit 1 (PostgreSQL would end recovery and
#     promote without that segment) and st get must not exit 1;
#   - a 206 to a GET that asked for no range is not the whole object;
#   - a resumed GET answered from another offset than asked fails;
#   - a listing whose pages hand back the same continuation token fails
#     instead of looping forever;
#   - an endpoint with USER:PASS@ is refused, not silently stripped, and
#     the password is not echoed.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"
# shellcheck source=../lib/pg.sh
. "$TOP_SRCDIR/tests/lib/pg.sh"
# shellcheck source=../lib/walship.sh
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"
SYS=7000000000000000042
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
n() { printf '0000000100000000000000%02X' "$1"; }
for i in 1 2 3; do
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n "$i")" "$(n "$i")" "$SYS" --seed "$i" \
    --seg-size 1048576 >/dev/null
done
cat >"$T/file.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1

[region r1]
url = file://$T/repo
mode = sync
CONF
mkdir -p "$T/repo"
for i in 1 2 3; do
  t "wal-push $(n "$i") to the file:// repository" bash -c "cd '$T/pg' && '$WALSHIP' --config '$T/file.conf' wal-push pg_wal/$(n "$i")"
done
printf 'plain bytes, not an encoded object, 64 bytes long.............\n' >"$T/repo/rawhalf"
cp "$T/repo/rawhalf" "$T/repo/rawshift"

PORT=$(tap_free_port)
on_exit "[ -s '$T/s3odd.pid' ] && kill \$(cat '$T/s3odd.pid')"
python3 "$TOP_SRCDIR/tests/lib/s3odd.py" --listen "127.0.0.1:$PORT" --root "$T/repo" --bucket walship \
  --prefix pre --odd "bare404=$(n 2)" --odd bare404=rawbare --odd partial206=rawhalf --odd loop=loop \
  --odd cut=rawshift --odd shiftrange=rawshift --odd uploadloop=pre/ \
  --pidfile "$T/s3odd.pid" </dev/null >"$T/s3odd.log" 2>&1 &
wait_for 30 test -s "$T/s3odd.pid" || { echo "Bail out! s3odd did not start"; exit 1; }

cat >"$T/s3.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 3

[region r1]
url = s3://walship/pre
endpoint = http://127.0.0.1:$PORT
credentials = static
access_key_id = AK
secret_access_key = SK
CONF
chmod 600 "$T/s3.conf"
ws() { "$WALSHIP" --config "$T/s3.conf" "$@"; }
mkdir -p "$T/restore/pg_wal"
# without a prefetcher: each call stands alone
fetch() { (cd "$T/restore" && ws wal-fetch "$1" "pg_wal/RECOVERYXLOG" --no-prefetch); }

t "wal-fetch of a segment the server has" fetch "$(n 1)"
t_fail "wal-fetch of a segment nobody has (S3's 404 NoSuchKey): exit 1" 1 fetch "$(n 9)"
fetch "$(n 2)" >"$T/bare.out" 2>&1
st=$?
ok "$([ "$st" -gt 125 ] && echo 0 || echo 1)" "wal-fetch answered a 404 without an S3 error code: not exit 1 but above 125 (exit $st)"
like "$(cat "$T/bare.out")" "404" "... and says what the server answered"
t_fail "st get of a key answered with a bare 404: exit 3, not 1" 3 ws st get --raw rawbare "$T/x"

# ---- a 206 to a GET without Range ----
t_fail "st get --raw of an object answered 206 with half of it fails" 3 ws st get --raw rawhalf "$T/half"
like "$T_OUT" "206" "... naming the partial answer"
# ---- a resumed GET answered from another offset than asked ----
ws st get --raw rawshift "$T/shift" >"$T/shift.out" 2>&1
st=$?
if [ "$st" -eq 0 ]; then
  cmp -s "$T/shift" "$T/repo/rawshift"
  ok $? "st get --raw of an object cut mid-body and resumed from the wrong offset: exit 0 only with the right bytes"
else
  is "$st" 3 "st get --raw of an object cut mid-body and resumed from the wrong offset fails (exit 3)"
  like "$(cat "$T/shift.out")" "Content-Range" "... naming the Content-Range"
fi

# ---- a listing that loops on its token ----
timeout 60 "$WALSHIP" --config "$T/s3.conf" st ls loop/ >"$T/loop.out" 2>&1
st=$?
ok "$([ "$st" -eq 3 ] && echo 0 || echo 1)" "st ls of a listing that repeats its continuation token fails (exit $st, not a hang)"
like "$(tail -1 "$T/loop.out")" "continuation token" "... and says why"
is "$(grep '^loop/' "$T/loop.out" | sort | uniq -d)" "" "... having handed out no key twice"
t "st ls of a listing that ends" ws st ls wal/

# ---- a ListMultipartUploads whose markers do not lead on (delete's sweep) ----
timeout 60 "$WALSHIP" --config "$T/s3.conf" delete >"$T/uploads.out" 2>&1
st=$?
ok "$([ "$st" -ne 124 ] && echo 0 || echo 1)" "delete, sweeping multipart uploads whose listing repeats its markers, ends (exit $st, not a hang)"
like "$(cat "$T/uploads.out")" "markers that do not lead on" "... and says why the sweep failed"

# ---- an endpoint with USER:PASS@ ----
sed "s|^endpoint = http://|endpoint = http://walship:pa55word@|" "$T/s3.conf" >"$T/userinfo.conf"
chmod 600 "$T/userinfo.conf"
t_fail "an endpoint with a user name and password is refused (exit 2), not used without them" 2 \
  "$WALSHIP" --config "$T/userinfo.conf" st ls wal/
like "$T_OUT" "user name or password" "... saying why"
unlike "$T_OUT" "pa55word" "... without echoing the password"

done_testing
