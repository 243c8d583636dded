#!/bin/bash
# tests/integration/harness_test.sh: TAP test of the integration harness
# itself: two Swift s3api regions (tests/lib/swift.sh) and the fault proxy
# (tests/faultproxy.py), exercised with curl --aws-sigv4, without walship.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
HARNESS_TIMEOUT=${HARNESS_TIMEOUT:-300}

for need in swift-proxy-server swift-account-server swift-container-server \
    swift-object-server memcached curl python3 /usr/bin/python3; do
    if ! command -v "$need" >/dev/null 2>&1; then
        echo "1..0 # SKIP $need is not installed"
        exit 0
    fi
done

# shellcheck source=../lib/swift.sh disable=SC1091
. "$TOP_SRCDIR/tests/lib/swift.sh"
# shellcheck source=../lib/faultproxy.sh disable=SC1091
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/walship-harness.XXXXXX")
RA=$TMP/us-east-1
RB=$TMP/eu-west-1
FPD=$TMP/fp
WATCHDOG=
n=0
failed=0

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    fp_stop "$FPD" 2>/dev/null || true
    swift_stop "$RA" 2>/dev/null || true
    swift_stop "$RB" 2>/dev/null || true
    if [ -n "$WATCHDOG" ]; then
        kill -TERM "$WATCHDOG" 2>/dev/null || true
        wait "$WATCHDOG" 2>/dev/null || true
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A watchdog (one process): TERM this script if it runs past the limit.
python3 -c '
import os, signal, sys, time
limit, pid = int(sys.argv[1]), int(sys.argv[2])
time.sleep(limit)
try:
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        if b"harness_test" in f.read():
            sys.stderr.write("harness_test: watchdog: %d s elapsed, stopping\n" % limit)
            os.kill(pid, signal.SIGTERM)
except OSError:
    pass
' "$HARNESS_TIMEOUT" "$$" </dev/null &
WATCHDOG=$!

ok() { # ok CONDITION-STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
    fi
}
check() { # check DESCRIPTION COMMAND...
    local desc=$1
    shift
    if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi
}
diag() { printf '# %s\n' "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
S3_AK_URL='test%3Atester' # curl takes the access key (with its colon) from the URL
S3_SK=testing

# s3c PORT REGION METHOD PATH [BODYFILE] -- [CURL ARGS...]: one S3 request
# with curl --aws-sigv4 (payload hash given explicitly: Swift requires the
# header and curl 7.88 does not add it).  Writes the body to $TMP/out, prints
# "HTTP_CODE TIME_TOTAL NUM_CONNECTS", returns curl's exit status.
s3c() {
    local port=$1 region=$2 method=$3 path=$4 file=
    shift 4
    if [ $# -gt 0 ] && [ "$1" != -- ]; then file=$1; shift; fi
    [ "${1:-}" = -- ] && shift
    local hash=$EMPTY_SHA
    local args=(-sS --noproxy '*' --max-time "${S3C_MAX_TIME:-20}" -o "$TMP/out"
        -w '%{http_code} %{time_total} %{num_connects}\n'
        --aws-sigv4 "aws:amz:$region:s3")
    if [ -n "$file" ]; then
        hash=$(sha256sum "$file" | cut -d' ' -f1)
        args+=(-T "$file")
    fi
    [ "$method" = HEAD ] && args+=(-I) || args+=(-X "$method")
    curl "${args[@]}" -H "x-amz-content-sha256: $hash" "$@" \
        "http://${S3C_AK:-$S3_AK_URL}:${S3C_SK:-$S3_SK}@127.0.0.1:$port$path" 2>"$TMP/curl.err"
}
code_of() { echo "${1%% *}"; }
xml_code() { sed -n 's:.*<Code>\([^<]*\)</Code>.*:\1:p' "$TMP/out" | head -n 1; }

# -- two regions ---------------------------------------------------------

t0=$(now)
if swift_start_regions "$RA" us-east-1 0 "$RB" eu-west-1 0; then st=0; else st=1; fi
t1=$(now)
ok "$st" "two regions started (us-east-1, eu-west-1) in $(elapsed "$t0" "$t1") s"
if [ "$st" != 0 ]; then
    echo "Bail out! Swift did not start"
    exit 1
fi
PA=$(cat "$RA/port")
PB=$(cat "$RB/port")
rss=0
while read -r pid; do
    rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)))
done < <(cat "$RA/pids" "$RB/pids")
diag "regions on 127.0.0.1:$PA and 127.0.0.1:$PB, RSS of both: $((rss / 1024)) MB"

check "us-east-1 /healthcheck answers 200" _swift_http_ok "http://127.0.0.1:$PA/healthcheck"
check "eu-west-1 /healthcheck answers 200" _swift_http_ok "http://127.0.0.1:$PB/healthcheck"

check "create bucket walship-test in us-east-1" swift_create_bucket "$PA" us-east-1 walship-test
check "create bucket walship-test in eu-west-1 (LocationConstraint)" swift_create_bucket "$PB" eu-west-1 walship-test
# (curl 7.88 signs "?location" without its "=": the python signer here.)
r=$(swift_s3 "$PB" eu-west-1 GET '/walship-test?location') || true
check "eu-west-1 reports its bucket's location (GetBucketLocation)" \
    grep -q '>eu-west-1</LocationConstraint>' <<<"$r"

# -- objects through the S3 API, directly ---------------------------------

head -c 100000 /dev/urandom >"$TMP/obj"
r=$(s3c "$PA" us-east-1 PUT /walship-test/wal/000000010000000000000001 "$TMP/obj") || true
ok "$([ "$(code_of "$r")" = 200 ] && echo 0 || echo 1)" "PUT object in us-east-1 with curl --aws-sigv4 ($r)"
r=$(s3c "$PA" us-east-1 GET /walship-test/wal/000000010000000000000001) || true
ok "$([ "$(code_of "$r")" = 200 ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" "GET it back, same bytes"
echo "eu data" >"$TMP/objb"
r=$(s3c "$PB" eu-west-1 PUT /walship-test/only-in-eu "$TMP/objb") || true
ok "$([ "$(code_of "$r")" = 200 ] && echo 0 || echo 1)" "PUT object in eu-west-1"
r=$(s3c "$PB" eu-west-1 GET /walship-test/wal/000000010000000000000001) || true
ok "$([ "$(code_of "$r")" = 404 ] && [ "$(xml_code)" = NoSuchKey ] && echo 0 || echo 1)" \
    "regions are independent: us-east-1's object is not in eu-west-1 ($(code_of "$r") $(xml_code))"
r=$(swift_s3 "$PB" eu-west-1 GET /walship-test/only-in-eu) || true
ok "$([ "$r" = "eu data" ] && echo 0 || echo 1)" "swift_s3 (python signer) reads eu-west-1's object"

# -- Swift checks signatures and the region ---------------------------------

r=$(S3C_SK=wrong s3c "$PA" us-east-1 GET /walship-test/wal/000000010000000000000001) || true
ok "$([ "$(code_of "$r")" = 403 ] && [ "$(xml_code)" = SignatureDoesNotMatch ] && echo 0 || echo 1)" \
    "wrong secret: 403 SignatureDoesNotMatch ($(code_of "$r") $(xml_code))"
r=$(s3c "$PA" eu-west-1 GET /walship-test/wal/000000010000000000000001) || true
ok "$([ "$(code_of "$r")" = 400 ] && [ "$(xml_code)" = AuthorizationHeaderMalformed ] && echo 0 || echo 1)" \
    "wrong region in the credential scope: 400 AuthorizationHeaderMalformed ($(code_of "$r") $(xml_code))"
r=$(S3C_AK='test%3Areader' S3C_SK=reading s3c "$PA" us-east-1 GET /walship-test/wal/000000010000000000000001) || true
ok "$([ "$(code_of "$r")" = 403 ] && [ "$(xml_code)" = AccessDenied ] && echo 0 || echo 1)" \
    "user without .admin: 403 AccessDenied ($(code_of "$r") $(xml_code))"
r=$(s3c "$PA" us-east-1 PUT /walship-test/bad-hash "$TMP/obj" -- -H "x-amz-content-sha256: $EMPTY_SHA") || true
ok "$([ "$(code_of "$r")" != 200 ] && echo 0 || echo 1)" \
    "a body that does not match x-amz-content-sha256 is refused ($(code_of "$r") $(xml_code))"

# -- through the fault proxy -------------------------------------------------

{ read -r PL; read -r PC; } < <(free_ports 2)
check "fault proxy started in front of us-east-1" fp_start "$PL" "$PA" "$PC" "$FPD"
KEY=/walship-test/wal/000000010000000000000001

r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$(code_of "$r")" = 200 ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" "GET through the proxy (pass)"

base=9
for _ in 1 2 3; do
    r=$(s3c "$PL" us-east-1 GET "$KEY") || true
    t=$(echo "$r" | cut -d' ' -f2)
    base=$(awk -v a="$base" -v b="$t" 'BEGIN { print (b < a) ? b : a }')
done
fp_ctl "$PC" 'delay 35' >/dev/null
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
t=$(echo "$r" | cut -d' ' -f2)
# a lower bound only: load can slow a request, never speed it up
ok "$(awk -v t="$t" 'BEGIN { exit !(t >= 0.070) }' && echo 0 || echo 1)" \
    "delay 35 ms each way: GET takes ${t} s (>= 0.070; ${base} s without)"
fp_ctl "$PC" 'delay 0' >/dev/null

fwd0=$(fp_stat "$PC" forwarded)
fp_ctl "$PC" 'error 2 503' >/dev/null
c1=$(s3c "$PL" us-east-1 GET "$KEY") || true
x1=$(xml_code)
rid=$(sed -n 's:.*<RequestId>\([^<]*\)</RequestId>.*:\1:p' "$TMP/out")
c2=$(s3c "$PL" us-east-1 GET "$KEY") || true
c3=$(s3c "$PL" us-east-1 GET "$KEY") || true
fwd1=$(fp_stat "$PC" forwarded)
ok "$([ "$(code_of "$c1")" = 503 ] && [ "$x1" = SlowDown ] && [ -n "$rid" ] && [ "$(code_of "$c2")" = 503 ] \
    && [ "$(code_of "$c3")" = 200 ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" \
    "error 2 503: two 503 SlowDown (RequestId $rid), then 200 ($(code_of "$c1") $(code_of "$c2") $(code_of "$c3"))"
ok "$([ $((fwd1 - fwd0)) = 1 ] && echo 0 || echo 1)" "the two failed requests never reached Swift"

fp_ctl "$PC" 'error 1 500' >/dev/null
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$(code_of "$r")" = 500 ] && [ "$(xml_code)" = InternalError ] && echo 0 || echo 1)" \
    "error 1 500: 500 InternalError ($(code_of "$r") $(xml_code))"

fp_ctl "$PC" 'error 2 503' >/dev/null
r=$(s3c "$PL" us-east-1 GET "$KEY" -- --retry 3 --retry-delay 1) || true
ok "$([ "$(code_of "$r")" = 200 ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" \
    "curl --retry gets through two 503s"

# Keep-alive: two requests on one connection, the first answered 503.
fp_ctl "$PC" 'error 1 503' >/dev/null
r=$(curl -sS --noproxy '*' --max-time 20 --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: $EMPTY_SHA" \
    -o /dev/null -w '%{http_code} %{num_connects}\n' "http://$S3_AK_URL:$S3_SK@127.0.0.1:$PL$KEY" \
    --next --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: $EMPTY_SHA" \
    -o "$TMP/out" -w '%{http_code} %{num_connects}\n' "http://$S3_AK_URL:$S3_SK@127.0.0.1:$PL$KEY" 2>"$TMP/curl.err") || true
ok "$([ "$(echo "$r" | tr '\n' ' ')" = "503 1 200 0 " ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" \
    "keep-alive: 503 then 200 on the same connection ($(echo "$r" | tr '\n' ' '))"

# An upload with Expect: 100-continue answered 503, then a good one.
head -c 2000000 /dev/urandom >"$TMP/big"
fp_ctl "$PC" 'error 1 503' >/dev/null
r=$(s3c "$PL" us-east-1 PUT /walship-test/big "$TMP/big" -- -H 'Expect: 100-continue') || true
r2=$(s3c "$PL" us-east-1 PUT /walship-test/big "$TMP/big") || true
r3=$(s3c "$PA" us-east-1 GET /walship-test/big) || true
ok "$([ "$(code_of "$r")" = 503 ] && [ "$(code_of "$r2")" = 200 ] && cmp -s "$TMP/big" "$TMP/out" && echo 0 || echo 1)" \
    "2 MB PUT (100-continue): 503, retried: 200, stored intact ($(code_of "$r") $(code_of "$r2") $(code_of "$r3"))"

fp_ctl "$PC" 'reset 1' >/dev/null
set +e
s3c "$PL" us-east-1 GET "$KEY" >/dev/null
rc=$?
set -e
err=$(cat "$TMP/curl.err")
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$rc" = 56 ] && [ "$(code_of "$r")" = 200 ] && echo 0 || echo 1)" \
    "reset 1: connection reset (curl exit $rc: $err), next request 200"

fp_ctl "$PC" 'reset-conn 1' >/dev/null
set +e
s3c "$PL" us-east-1 GET "$KEY" >/dev/null
rc=$?
set -e
# curl reports a reset that comes right after the handshake as "couldn't
# connect" (7), later ones as recv/send failures (56, 55) or an empty reply (52).
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$(case $rc in 7 | 52 | 55 | 56) [ "$(code_of "$r")" = 200 ] ;; *) false ;; esac; echo $?)" \
    "reset-conn 1: new connection reset (curl exit $rc), next 200"

fp_ctl "$PC" 'truncate 1 5000' >/dev/null
set +e
s3c "$PL" us-east-1 GET "$KEY" >/dev/null
rc=$?
set -e
got=$(stat -c %s "$TMP/out")
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$rc" = 18 ] && [ "$got" = 5000 ] && [ "$(code_of "$r")" = 200 ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" \
    "truncate 1 5000: curl sees a short read (exit $rc, $got bytes), next GET whole"

fp_ctl "$PC" 'stall 1' >/dev/null
t0=$(now)
set +e
S3C_MAX_TIME=2 s3c "$PL" us-east-1 GET "$KEY" >/dev/null
rc=$?
set -e
t1=$(now)
fp_ctl "$PC" pass >/dev/null
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$rc" = 28 ] && [ "$(code_of "$r")" = 200 ] && echo 0 || echo 1)" \
    "stall 1: no answer (curl exit $rc after $(elapsed "$t0" "$t1") s), after pass: 200"

fp_ctl "$PC" 'stall-for 2' >/dev/null
set +e
S3C_MAX_TIME=1 s3c "$PL" us-east-1 GET "$KEY" >/dev/null
rc=$?
set -e
sleep 1.2
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$rc" = 28 ] && [ "$(code_of "$r")" = 200 ] && echo 0 || echo 1)" \
    "stall-for 2: hung (curl exit $rc), 2 s later: $(code_of "$r")"

fp_ctl "$PC" dark >/dev/null
set +e
s3c "$PL" us-east-1 GET "$KEY" >/dev/null
rc=$?
set -e
fp_ctl "$PC" up >/dev/null
r=$(s3c "$PL" us-east-1 GET "$KEY") || true
ok "$([ "$rc" = 7 ] && [ "$(code_of "$r")" = 200 ] && cmp -s "$TMP/obj" "$TMP/out" && echo 0 || echo 1)" \
    "dark: connection refused (curl exit $rc); up: 200 again"

fp_pid=$(cat "$FPD/faultproxy.pid.launch")
# the proxy handles a signal when its loop next runs: poll, do not sleep
kill -USR1 "$fp_pid"
rc=0
for _ in $(seq 50); do
  set +e
  s3c "$PL" us-east-1 GET "$KEY" >/dev/null
  rc=$?
  set -e
  [ "$rc" = 7 ] && break
  sleep 0.2
done
kill -USR2 "$fp_pid"
r=
for _ in $(seq 50); do
  r=$(s3c "$PL" us-east-1 GET "$KEY") || true
  [ "$(code_of "$r")" = 200 ] && break
  sleep 0.2
done
ok "$([ "$rc" = 7 ] && [ "$(code_of "$r")" = 200 ] && echo 0 || echo 1)" \
    "SIGUSR1 goes dark (curl exit $rc), SIGUSR2 comes back ($(code_of "$r"))"

ok "$(fp_ctl "$PC" 'status' | grep -q 'errors=7 ' && echo 0 || echo 1)" "proxy counted 7 injected errors"
r=$(curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$PC/ping") || true
ok "$([ "$r" = "OK pong" ] && echo 0 || echo 1)" "control over HTTP (curl GET /ping: $r)"
r=$(fp_ctl "$PC" 'frobnicate 3') && st=1 || st=0
ok "$([ "$st" = 0 ] && [ "${r#ERR}" != "$r" ] && echo 0 || echo 1)" "an unknown control command answers ERR ($r)"

# -- stop everything ---------------------------------------------------------

mapfile -t ours < <(cat "$RA/pids" "$RB/pids" "$FPD/faultproxy.pid.launch")
fp_stop "$FPD"
t0=$(now)
swift_stop "$RA"
swift_stop "$RB"
t1=$(now)
left=
for pid in "${ours[@]}"; do
    if _swift_alive "$pid"; then left="$left $pid"; fi
done
ok "$([ -z "$left" ] && echo 0 || echo 1)" "every recorded process stopped (${#ours[@]} PIDs, in $(elapsed "$t0" "$t1") s)${left:+; left:$left}"
stray=
# "[/]": the pattern does not match grep's own command line.
while read -r f; do
    p=${f#/proc/}
    p=${p%/cmdline}
    _swift_alive "$p" && stray="$stray $p"
done < <(grep -laE -- "${TMP}[/]" /proc/[0-9]*/cmdline 2>/dev/null || true)
ok "$([ -z "$stray" ] && echo 0 || echo 1)" "no process of ours left${stray:+:$stray}"
swift_stop "$RA"
check "swift_stop twice is harmless" swift_stop "$RB"

echo "1..$n"
if [ "$failed" -gt 0 ]; then
    diag "$failed of $n failed; logs in $TMP (KEEP_TMP=1 keeps them)"
    for f in "$RA"/log/proxy.log "$RB"/log/proxy.log "$FPD"/faultproxy.log; do
        [ -e "$f" ] && { diag "--- $f"; tail -n 15 "$f" | sed 's/^/# /'; }
    done
    exit 1
fi
exit 0
