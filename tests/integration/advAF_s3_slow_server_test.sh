#!/bin/bash
# Adversarial pass AF: the s3:// driver against a server that never ends
# an answer.  A real Swift region behind the fault proxy:
#   - a body that trickles 4 bytes a second (a slow loris server, a
#     broken middlebox): curl's low-speed cut at "less than 1 byte/s"
#     never fired, and wal-fetch (a restore_command) hung for as long as
#     the object had bytes (days for a WAL segment); it must end with an
#     error above 125 within io_timeout and retry_deadline, having written
#     nothing;
#   - a listing whose pages hold no key but always say there is more, each
#     with a new continuation token: st ls went round for ever; it must
#     fail and say why; so must delete's sweep of multipart uploads when
#     their pages do the same with new upload-id markers.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"

read -r P1 F1 C1 <<<"$(free_ports 3 | tr '\n' ' ')"
on_exit "swift_stop $T/s1"
swift_start_regions "$T/s1" us-east-1 "$P1" || { echo "Bail out! swift did not start"; exit 1; }
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }
on_exit "fp_stop $T/fp"
fp_start "$F1" "$P1" "$C1" "$T/fp" || { echo "Bail out! proxy"; exit 1; }

SYS=7000000000000000077
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1 || { echo "Bail out! keygen"; exit 1; }
n() { printf '0000000100000000000000%02X' "$1"; }
for i in 1 2; do
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n "$i")" "$(n "$i")" "$SYS" --seed "$i" \
    --seg-size 1048576 >/dev/null
done
cat >"$T/s3.conf" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 1
retry_deadline = 4
connect_timeout = 2
io_timeout = 3

[region r1]
url = s3://walship/slow
endpoint = http://127.0.0.1:$F1
aws_region = us-east-1
path_style = true
mode = sync
credentials = static
access_key_id = test:tester
secret_access_key = testing
CONF
chmod 600 "$T/s3.conf"
ws() { "$WALSHIP" --config "$T/s3.conf" "$@"; }
for i in 1 2; do
  t "wal-push $(n "$i") through the proxy" bash -c "cd '$T/pg' && '$WALSHIP' --config '$T/s3.conf' wal-push pg_wal/$(n "$i")"
done
mkdir -p "$T/restore/pg_wal"
fetch() { (cd "$T/restore" && timeout 300 "$WALSHIP" --config "$T/s3.conf" wal-fetch "$1" pg_wal/RECOVERYXLOG --no-prefetch); }

# ---- a body that trickles 4 bytes a second ----
fp_ctl "$C1" "trickle 100000 250" >/dev/null
fetch "$(n 1)" >"$T/trickle.out" 2>&1
st=$?
fp_ctl "$C1" pass >/dev/null
ok "$([ "$st" -ne 124 ] && echo 0 || echo 1)" "wal-fetch of a segment whose body trickles 4 bytes/s ends (exit $st, not a hang)"
ok "$([ "$st" -gt 125 ] && [ "$st" -ne 124 ] && echo 0 || echo 1)" "... with an error above 125, never 'not found' (exit $st)"
like "$(cat "$T/trickle.out")" "too slow|[Tt]imeout|timed out" "... saying the transfer was too slow" || diag "$(tail -3 "$T/trickle.out")"
ok "$([ ! -e "$T/restore/pg_wal/RECOVERYXLOG" ] && echo 0 || echo 1)" "... and nothing was written to the destination"
ok "$([ "$(fp_stat "$C1" trickles)" -gt 0 ] && echo 0 || echo 1)" "... (the proxy did trickle: $(fp_stat "$C1" trickles) answers)"

fp_ctl "$C1" "trickle 100000 250" >/dev/null
timeout 300 "$WALSHIP" --config "$T/s3.conf" st get "wal/$(n 2)" "$T/got2" >"$T/trickle2.out" 2>&1
st=$?
fp_ctl "$C1" pass >/dev/null
is "$st" 3 "st get of an object whose body trickles 4 bytes/s fails (exit 3, not a hang)"

t "once the server answers at speed, wal-fetch restores the segment" fetch "$(n 1)"
t "... byte for byte" cmp "$T/restore/pg_wal/RECOVERYXLOG" "$T/pg/pg_wal/$(n 1)"

# ---- a listing whose pages hold no key and always say there is more ----
fp_ctl "$C1" "listloop 1000000" >/dev/null
timeout 300 "$WALSHIP" --config "$T/s3.conf" st ls wal/ >"$T/loop.out" 2>&1
st=$?
loops=$(fp_stat "$C1" loops)
fp_ctl "$C1" pass >/dev/null
is "$st" 3 "st ls of a listing of empty pages, each with a new continuation token, fails (exit 3, not a hang)"
like "$(tail -1 "$T/loop.out")" "without a key" "... and says why" || diag "$(tail -2 "$T/loop.out")"
ok "$([ "${loops:-0}" -gt 0 ] && [ "${loops:-0}" -lt 1000000 ] && echo 0 || echo 1)" "... after a bounded number of pages ($loops)"
t "st ls of the real listing still works" ws st ls wal/
like "$T_OUT" "$(n 2)" "... and lists the segments"

# ---- ... and a ListMultipartUploads that does the same (delete's sweep) ----
loops0=$(fp_stat "$C1" loops)
fp_ctl "$C1" "listloop 1000000 uploads" >/dev/null
timeout 300 "$WALSHIP" --config "$T/s3.conf" delete >"$T/sweep.out" 2>&1
st=$?
loops=$(( $(fp_stat "$C1" loops) - ${loops0:-0} ))
fp_ctl "$C1" pass >/dev/null
ok "$([ "$st" -ne 124 ] && echo 0 || echo 1)" "delete, sweeping multipart uploads whose pages hold none and always say there is more, ends (exit $st, not a hang)"
like "$(cat "$T/sweep.out")" "without an upload" "... and says why the sweep failed" || diag "$(tail -2 "$T/sweep.out")"
ok "$([ "${loops:-0}" -gt 0 ] && [ "${loops:-0}" -lt 1000000 ] && echo 0 || echo 1)" "... after a bounded number of pages ($loops)"

done_testing
