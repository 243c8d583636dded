#!/bin/bash
# tests/integration/netns_creds_test.sh: the credential endpoints whose
# address is fixed, which the loopback tests cannot reach:
#   - the ECS container endpoint, http://169.254.170.2 +
#     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
#   - instance metadata over IPv6, http://[fd00:ec2::254]
#     (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6).
# The script re-runs itself in a network namespace of its own (unshare -n,
# as root) whose only interface is a loopback carrying 127.0.0.1,
# 169.254.170.2 and fd00:ec2::254: nothing it sends can leave it, and the
# namespace goes away with its last process.  Inside, a Swift region and
# tests/awsstub.py (--link-local: the meta endpoints on 169.254.170.2:80
# and [fd00:ec2::254]:80, the S3 front on 127.0.0.1) play AWS.  Skips
# without root or namespaces.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail

if [ -z "${NETNS_CREDS_TEST_INSIDE:-}" ]; then
  why=
  if [ "$(id -u)" -ne 0 ]; then
    why="needs root for a network namespace"
  elif ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
    why="unshare or ip (iproute2) is not installed"
  elif ! unshare -n true 2>/dev/null; then
    why="network namespaces are not available here (unshare -n failed)"
  fi
  if [ -n "$why" ]; then
    echo "1..0 # SKIP $why"
    exit 0
  fi
  NETNS_CREDS_TEST_INSIDE=1 exec unshare -n -- bash "$0" "$@"
fi

# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"
# shellcheck source=../lib/swift.sh
. "$TOP_SRCDIR/tests/lib/swift.sh"

for need in swift-proxy-server swift-object-server memcached curl python3; do
  command -v "$need" >/dev/null 2>&1 || skip_all "$need is not installed"
done
[ -x "$WALSHIP" ] || { echo "Bail out! $WALSHIP is not built"; exit 1; }

# ---- the namespace: loopback only, with the two fixed AWS addresses ----
ip link set lo up &&
  ip addr add 169.254.170.2/32 dev lo &&
  ip -6 addr add fd00:ec2::254/128 dev lo nodad
ok $? "network namespace: lo up with 169.254.170.2 and fd00:ec2::254"
is "$(ip -o link | grep -vc ': lo:')" 0 "... and no interface but lo (nothing leaves it)"

read -r PA MP SP <<<"$(free_ports 3 | tr '\n' ' ')"
# shellcheck disable=SC2016 # expanded when the hook runs
on_exit 'kill "$_tap_watchdog" $(pgrep -P "$_tap_watchdog" 2>/dev/null) 2>/dev/null'
on_exit "swift_stop '$T/a'"
[ "$SWIFT_START_TIMEOUT" -lt 120 ] && SWIFT_START_TIMEOUT=120
swift_start "$T/a" us-east-1 "$PA" || { echo "Bail out! swift did not start"; exit 1; }
swift_create_bucket "$PA" us-east-1 creds >/dev/null
ok $? "bucket creds in us-east-1 (Swift s3api on :$PA)"

python3 "$TOP_SRCDIR/tests/awsstub.py" --meta "127.0.0.1:$MP" --s3 "127.0.0.1:$SP" --target "127.0.0.1:$PA" \
  --link-local --pidfile "$T/stub.pid" --log "$T/stub.log" </dev/null >>"$T/stub.out" 2>&1 &
on_exit "[ -s '$T/stub.pid' ] && kill \$(cat '$T/stub.pid') 2>/dev/null"
wait_for 20 test -s "$T/stub.pid"
wait_for 20 curl -sf --noproxy '*' "http://169.254.170.2/_ctl/stats"
ok $? "awsstub answers on 169.254.170.2:80"
curl -sf --noproxy '*' -g "http://[fd00:ec2::254]/_ctl/stats" >/dev/null
ok $? "... and on [fd00:ec2::254]:80"

ctl() { curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/set?$1" >/dev/null; }
stat() { curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

mkdir -p "$T/home"
write_conf() {   # CREDENTIALS
  {
    printf '[global]\nretry_deadline = 5\nconnect_timeout = 2\nio_timeout = 10\n\n'
    printf '[region us-east-1]\nurl = s3://creds/ns\nendpoint = http://127.0.0.1:%s\npath_style = true\n' "$SP"
    printf 'credentials = %s\n' "$1"
  } >"$T/c.conf"
  chmod 600 "$T/c.conf"
}
# ws VAR=VALUE... -- ARGS: walship with only the AWS variables given
ws() {
  local -a vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    -u AWS_WEB_IDENTITY_TOKEN_FILE -u AWS_ROLE_ARN -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
    -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_AUTHORIZATION_TOKEN \
    -u AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE -u AWS_EC2_METADATA_SERVICE_ENDPOINT \
    -u AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE -u AWS_ENDPOINT_URL_STS \
    HOME="$T/home" AWS_SHARED_CREDENTIALS_FILE="$T/none" AWS_CONFIG_FILE="$T/none" \
    AWS_EC2_METADATA_DISABLED=true "${vars[@]}" "$WALSHIP" --config "$T/c.conf" "$@"
}
check() {   # NAME WANT_REGEX VARS...
  local name=$1 want=$2 out st
  shift 2
  out=$(ws "$@" -- st check 2>&1)
  st=$?
  ok "$st" "$name: st check exits 0" || diag "$out"
  like "$out" "^region us-east-1: credentials: $want" "$name: st check names the source" &&
    diag "$(grep '^region us-east-1: credentials' <<<"$out")"
}

# ---- ECS: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI against 169.254.170.2 ----
ctl "container_token=none"
REL=(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/task-ecs)
write_conf container
n0=$(stat container)
check "container (relative URI)" 'container \(http://169\.254\.170\.2/v2/credentials/task-ecs\)' "${REL[@]}"
[ "$(stat container)" -gt "$n0" ]
ok $? "container (relative URI): the endpoint on 169.254.170.2 handed out the credentials"
write_conf auto
check "auto with a relative URI" 'auto: container \(http://169\.254\.170\.2/' "${REL[@]}"
ctl "container_token=ctok-secret"
write_conf container
out=$(ws "${REL[@]}" -- st check 2>&1)
is "$?" 3 "container (relative URI) refused by the endpoint (401): exits 3"
like "$out" '169\.254\.170\.2' "... and names the endpoint"
ctl "container_token=none"

# ---- IMDS over IPv6: AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 ----
V6=(AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6)
write_conf imds
n0=$(stat imds_token)
c0=$(stat imds_creds)
check "imds over IPv6" 'imds \(role walship-role\)' "${V6[@]}"
[ "$(stat imds_token)" -gt "$n0" ] && [ "$(stat imds_creds)" -gt "$c0" ]
ok $? "imds over IPv6: token and credentials came from [fd00:ec2::254]"
write_conf auto
check "auto: imds over IPv6 last" 'auto: imds \(role walship-role\)' "${V6[@]}"

# the IPv4 default, 169.254.169.254, has no route here: off EC2, fast
write_conf imds
t0=$SECONDS
out=$(ws AWS_EC2_METADATA_DISABLED=false -- st check 2>&1)
st=$?
is "$st" 3 "imds on the IPv4 default with nothing there: exits 3"
[ $((SECONDS - t0)) -le 10 ]
ok $? "... within 10 s ($((SECONDS - t0)) s)"
like "$out" '169\.254\.169\.254' "... naming the endpoint"

done_testing
