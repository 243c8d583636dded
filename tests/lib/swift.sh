#!/bin/bash
# tests/lib/swift.sh: start and stop OpenStack Swift "regions" with the s3api
# layer on 127.0.0.1, for walship's integration tests.
#
# As a library (bash):   . "$TOP_SRCDIR/tests/lib/swift.sh"
#   swift_start DIR LOCATION PORT [NAME]   one region: rings, devices, memcached,
#                                          account/container/object servers and an
#                                          s3api proxy on 127.0.0.1:PORT (PORT 0 or
#                                          empty: a free one; read it from DIR/port)
#   swift_start_regions DIR1 LOC1 PORT1 [DIR2 LOC2 PORT2 ...]
#                                          several regions, started side by side
#   swift_launch DIR LOCATION PORT [NAME] / swift_wait DIR...
#                                          the two halves of swift_start
#   swift_stop DIR                         kill exactly the PIDs in DIR/pids
#   swift_create_bucket PORT REGION BUCKET S3 CreateBucket (SigV4) as test:tester
#   swift_s3 PORT REGION METHOD PATH [BODYFILE] [HEADER:VALUE...]
#                                          one signed S3 request (python3, SigV4
#                                          with the real payload hash)
#   free_port / free_ports N               free TCP port(s) on 127.0.0.1
#   swift_pid DIR SERVER                   PID of proxy|account|container|object|memcached
# As a command:
#   tests/lib/swift.sh start DIR [NAME] LOCATION PORT
#   tests/lib/swift.sh stop DIR
#   tests/lib/swift.sh bucket PORT REGION BUCKET
#   tests/lib/swift.sh free-port [N]
#
# Credentials: access key "test:tester", secret "testing" (.admin of account
# AUTH_test); "test:reader"/"reading" is a user of the same account without
# .admin (every bucket operation answers 403 AccessDenied).
#
# Environment: SWIFT_PYTHON (default /usr/bin/python3, the one with the swift
# module), SWIFT_START_TIMEOUT (seconds per region, default 120:
# seen at 24 s on a loaded 2-core machine; it costs time only on a real failure), SWIFT_S3API_EXTRA (extra
# "key = value" lines for [filter:s3api], e.g. "min_segment_size = 5").

SWIFT_PYTHON=${SWIFT_PYTHON:-/usr/bin/python3}
SWIFT_START_TIMEOUT=${SWIFT_START_TIMEOUT:-120}
SWIFT_ACCESS_KEY=test:tester
SWIFT_SECRET_KEY=testing

_swift_err() { printf 'swift.sh: %s\n' "$*" >&2; }

# free_ports N: N distinct TCP ports that nobody listens on at 127.0.0.1,
# picked at random below the kernel's ephemeral range (so that outgoing
# connections, which take ephemeral ports, never collide with them).
free_ports() {
    "$SWIFT_PYTHON" "$(dirname "${BASH_SOURCE[0]}")/free_ports.py" "${1:-1}"
}

free_port() { free_ports 1; }

# _swift_wait_http URL DEADLINE_EPOCH PIDS...: poll URL until it answers 200;
# fail as soon as one of PIDS dies or the deadline passes.
_swift_http_ok() {
    [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null)" = 200 ]
}

swift_pid() {
    local dir=$1 name=$2
    [ -r "$dir/run/$name.pid" ] && cat "$dir/run/$name.pid"
}

# _swift_spawn DIR NAME CMD...: start CMD in the background, stdout+stderr to
# DIR/log/NAME.log, PID appended to DIR/pids and written to DIR/run/NAME.pid.
_swift_spawn() {
    local dir=$1 name=$2
    shift 2
    "$@" </dev/null >"$dir/log/$name.log" 2>&1 &
    local pid=$!
    echo "$pid" >>"$dir/pids"
    echo "$pid" >"$dir/run/$name.pid"
}

_swift_log_tails() {
    local dir=$1 f
    for f in "$dir"/log/*.log; do
        [ -e "$f" ] || continue
        printf -- '--- %s (last 20 lines) ---\n' "$f" >&2
        tail -n 20 "$f" >&2
    done
}

_swift_write_confs() {
    local dir=$1 location=$2 port=$3 name=$4 acc=$5 con=$6 obj=$7 mc=$8 user
    user=$(id -un)
    cat >"$dir/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = walship-test-$name
swift_hash_path_prefix = walship-test

[storage-policy:0]
name = Policy-0
default = yes
EOF
    local common="bind_ip = 127.0.0.1
workers = 0
user = $user
swift_dir = $dir
devices = $dir/devices
mount_check = false
disable_fallocate = true
fallocate_reserve = 0
log_udp_host = 127.0.0.1
log_level = INFO"
    local kind port_
    for kind in account container object; do
        case $kind in
            account) port_=$acc ;;
            container) port_=$con ;;
            object) port_=$obj ;;
        esac
        cat >"$dir/$kind-server.conf" <<EOF
[DEFAULT]
bind_port = $port_
$common
log_name = $name-$kind

[pipeline:main]
pipeline = healthcheck $kind-server

[app:$kind-server]
use = egg:swift#$kind

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
    done
    cat >"$dir/proxy-server.conf" <<EOF
[DEFAULT]
bind_port = $port
$common
log_name = $name-proxy

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# Swift's defaults (0.5 s to connect to a storage server and have its
# "100 Continue", 10 s for a reply) answer 503 when two sanitizer builds
# share 2 cores with the servers; the tests are about walship, not that.
conn_timeout = 5
node_timeout = 60

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$mc

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = $location
storage_domain = s3.localhost
${SWIFT_S3API_EXTRA:-}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test_reader = reading

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
}

# The rings: what "swift-ring-builder NAME.builder create 6 1 1; add
# r1z1-127.0.0.1:PORT/d1 1; rebalance" does for each ring, in one python
# process instead of nine.
_swift_make_rings() {
    local dir=$1 acc=$2 con=$3 obj=$4
    "$SWIFT_PYTHON" - "$dir" "$acc" "$con" "$obj" <<'EOF'
import sys
from swift.common.ring import RingBuilder
d, ports = sys.argv[1], dict(zip(('account', 'container', 'object'), map(int, sys.argv[2:5])))
for name, port in ports.items():
    b = RingBuilder(6, 1, 1)
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
               'device': 'd1', 'weight': 1, 'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (d, name))
    b.get_ring().save('%s/%s.ring.gz' % (d, name))
EOF
}

# The object server keeps metadata in user xattrs: check the devices'
# filesystem has them (tmpfs before Linux 6.6 does not).
_swift_check_xattr() {
    "$SWIFT_PYTHON" - "$1" <<'EOF'
import os, sys
p = os.path.join(sys.argv[1], '.xattr-probe')
open(p, 'w').close()
try:
    os.setxattr(p, 'user.swift.probe', b'1')
except OSError as e:
    sys.exit('swift.sh: %s: no user xattrs (%s); set TMPDIR to an ext4/xfs directory' % (sys.argv[1], e))
finally:
    os.unlink(p)
EOF
}

# _swift_alive PID: running and not a zombie.
_swift_alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

# swift_launch DIR LOCATION PORT [NAME]: write the configuration and rings
# and start the five processes, without waiting for them (swift_wait).
swift_launch() {
    local dir=${1:?swift_launch DIR LOCATION PORT [NAME]} location=${2:?location} port=${3:-0}
    local name=${4:-$location}
    local acc con obj mc p5 memcached_bin
    if [ -s "$dir/pids" ]; then
        _swift_err "$dir: already started (stop it first)"
        return 1
    fi
    mkdir -p "$dir/devices/d1" "$dir/run" "$dir/log" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    : >"$dir/pids"
    _swift_check_xattr "$dir/devices/d1" || return 1
    memcached_bin=$(command -v memcached) || { _swift_err "memcached is not installed"; return 1; }
    command -v swift-proxy-server >/dev/null || { _swift_err "swift-proxy-server is not installed"; return 1; }
    { read -r acc; read -r con; read -r obj; read -r mc; read -r p5; } < <(free_ports 5) || return 1
    if [ -z "$port" ] || [ "$port" = 0 ]; then port=$p5; fi
    echo "$port" >"$dir/port"
    echo "$location" >"$dir/location"
    echo "$name" >"$dir/name"
    echo "memcached=$mc account=$acc container=$con object=$obj proxy=$port" >"$dir/ports"
    _swift_write_confs "$dir" "$location" "$port" "$name" "$acc" "$con" "$obj" "$mc" || return 1
    _swift_make_rings "$dir" "$acc" "$con" "$obj" >"$dir/log/rings.log" 2>&1 || {
        _swift_err "$name: building the rings failed"
        cat "$dir/log/rings.log" >&2
        return 1
    }
    local mcargs=(-l 127.0.0.1 -p "$mc" -U 0 -m 16 -c 256 -t 1 -P "$dir/run/memcached.pid.self")
    if [ "$(id -u)" = 0 ]; then mcargs+=(-u "$(id -un)"); fi
    _swift_spawn "$dir" memcached "$memcached_bin" "${mcargs[@]}"
    local kind
    for kind in account container object proxy; do
        _swift_spawn "$dir" "$kind" "swift-$kind-server" "$dir/$kind-server.conf" -v
    done
}

# swift_wait DIR...: wait (SWIFT_START_TIMEOUT per region) until every server of
# every region answers /healthcheck and its memcached listens.  On failure
# (a server died, or the deadline), print the logs' tails, stop every region
# given and return 1.
swift_wait() {
    # Start-ups overlap but share the CPUs: SWIFT_START_TIMEOUT per region.
    local limit=$((SWIFT_START_TIMEOUT * $#))
    local deadline=$((SECONDS + limit)) dir kind pid port pending up failed=
    local -A ready=()
    while :; do
        pending=
        for dir in "$@"; do
            for kind in memcached account container object proxy; do
                [ -n "${ready[$dir/$kind]:-}" ] && continue
                pid=$(swift_pid "$dir" "$kind") || pid=
                if [ -z "$pid" ] || ! _swift_alive "$pid"; then
                    _swift_err "$(cat "$dir/name" 2>/dev/null): $kind server (pid $pid) exited during start-up"
                    _swift_log_tails "$dir"
                    failed=1
                    break 2
                fi
                port=$(sed -n "s/.*\\b$kind=\\([0-9]*\\).*/\\1/p" "$dir/ports")
                up=
                if [ "$kind" = memcached ]; then
                    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; fi
                elif _swift_http_ok "http://127.0.0.1:$port/healthcheck"; then
                    up=1
                fi
                if [ -n "$up" ]; then
                    ready[$dir/$kind]=1
                else
                    pending="$pending $(cat "$dir/name" 2>/dev/null)/$kind"
                fi
            done
        done
        [ -z "$failed" ] && [ -z "$pending" ] && return 0
        if [ -z "$failed" ] && [ "$SECONDS" -ge "$deadline" ]; then
            _swift_err "not ready after ${limit}s, waiting for:$pending"
            for dir in "$@"; do _swift_log_tails "$dir"; done
            failed=1
        fi
        if [ -n "$failed" ]; then
            for dir in "$@"; do swift_stop "$dir"; done
            return 1
        fi
        sleep 0.2
    done
}

# swift_start DIR LOCATION PORT [NAME]: one region, ready when it returns
# (SWIFT_PORT is set to the proxy's port, also in DIR/port).
swift_start() {
    swift_launch "$@" || return 1
    swift_wait "$1" || return 1
    SWIFT_PORT=$(cat "$1/port")
}

# swift_start_regions DIR1 LOCATION1 PORT1 [DIR2 LOCATION2 PORT2 ...]: start
# several regions at once (their start-ups overlap), ready when it returns.
swift_start_regions() {
    local -a dirs=()
    if [ $# -eq 0 ] || [ $(($# % 3)) -ne 0 ]; then
        _swift_err "usage: swift_start_regions DIR LOCATION PORT [DIR LOCATION PORT ...]"
        return 1
    fi
    while [ $# -gt 0 ]; do
        swift_launch "$1" "$2" "$3" || {
            local d
            for d in "${dirs[@]}"; do swift_stop "$d"; done
            return 1
        }
        dirs+=("$1")
        shift 3
    done
    swift_wait "${dirs[@]}"
}

# swift_stop DIR: TERM every recorded PID that is still ours (its command
# line names DIR), KILL what is left after 5 s, wait for them, forget them.
swift_stop() {
    local dir=${1:?swift_stop DIR} pid i alive
    [ -s "$dir/pids" ] || return 0
    dir=$(cd "$dir" && pwd) || return 0
    local -a pids=()
    while read -r pid; do
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # Only a process whose command line names this region's dir: a PID
        # recycled since is somebody else's.
        if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/"; then
            pids+=("$pid")
        fi
    done <"$dir/pids"
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        # A stopped (SIGSTOP) server must be continued to see its TERM.
        kill -CONT "${pids[@]}" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive=0
            for pid in "${pids[@]}"; do
                if _swift_alive "$pid"; then
                    alive=1
                    break
                fi
            done
            [ "$alive" = 0 ] && break
            sleep 0.1
        done
        if [ "$alive" = 1 ]; then
            kill -KILL "${pids[@]}" 2>/dev/null || true
        fi
        # Reap those that are our children (no-op for the others).
        for pid in "${pids[@]}"; do
            wait "$pid" 2>/dev/null || true
        done
    fi
    mv -f "$dir/pids" "$dir/pids.stopped" 2>/dev/null || true
    rm -f "$dir"/run/*.pid
    return 0
}

# swift_s3 PORT REGION METHOD PATH [BODYFILE|-|''] [HEADER:VALUE ...]
# One SigV4-signed S3 request, path style, signing the SHA-256 of the real
# body (BODYFILE, "-" for stdin, absent or '' for none).  The response body
# goes to stdout; exit status 0 for 2xx, 1 otherwise.  Environment:
# S3_ACCESS_KEY, S3_SECRET_KEY (default test:tester / testing), S3_HOST (the
# Host header, default 127.0.0.1:PORT), S3_STATUS_FILE (the status code is
# written there), S3_VERBOSE=1 (status line and headers on stderr).
swift_s3() {
    S3_ACCESS_KEY=${S3_ACCESS_KEY:-$SWIFT_ACCESS_KEY} S3_SECRET_KEY=${S3_SECRET_KEY:-$SWIFT_SECRET_KEY} \
        "$SWIFT_PYTHON" -c "$_SWIFT_S3_PY" "$@"
}
# (The signer is passed with -c, so that stdin stays free for the body.)
_SWIFT_S3_PY=$(
    cat <<'EOF'
import datetime, hashlib, hmac, http.client, os, re, sys, urllib.parse
port, region, method, path = sys.argv[1:5]
rest = sys.argv[5:]
body = b''
if rest and not re.match(r'^[A-Za-z0-9-]+:', rest[0]):
    f = rest.pop(0)
    if f == '-':
        body = sys.stdin.buffer.read()
    elif f:
        with open(f, 'rb') as fh:
            body = fh.read()
ak = os.environ.get('S3_ACCESS_KEY', 'test:tester')
sk = os.environ.get('S3_SECRET_KEY', 'testing')
host = os.environ.get('S3_HOST') or '127.0.0.1:%s' % port
u = urllib.parse.urlsplit(path)
def enc(s, safe):
    return urllib.parse.quote(s, safe=safe)
cpath = enc(urllib.parse.unquote(u.path) or '/', '/~')
q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
cquery = '&'.join('%s=%s' % (enc(k, '~'), enc(v, '~')) for k, v in sorted(q))
now = datetime.datetime.now(datetime.timezone.utc)
amzdate, day = now.strftime('%Y%m%dT%H%M%SZ'), now.strftime('%Y%m%d')
hdrs = {'host': host, 'x-amz-date': amzdate,
        'x-amz-content-sha256': hashlib.sha256(body).hexdigest()}
for h in rest:
    k, v = h.split(':', 1)
    hdrs[k.strip().lower()] = v.strip()
signed = sorted(hdrs)
creq = '\n'.join([method, cpath, cquery] + ['%s:%s' % (k, hdrs[k]) for k in signed]
                 + ['', ';'.join(signed), hdrs['x-amz-content-sha256']])
scope = '%s/%s/s3/aws4_request' % (day, region)
sts = '\n'.join(['AWS4-HMAC-SHA256', amzdate, scope,
                 hashlib.sha256(creq.encode()).hexdigest()])
k = ('AWS4' + sk).encode()
for part in (day, region, 's3', 'aws4_request'):
    k = hmac.new(k, part.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
hdrs['authorization'] = ('AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s'
                         % (ak, scope, ';'.join(signed), sig))
c = http.client.HTTPConnection('127.0.0.1', int(port), timeout=30)
c.request(method, cpath + ('?' + cquery if cquery else ''), body=body, headers=hdrs)
r = c.getresponse()
data = r.read()
if os.environ.get('S3_VERBOSE') == '1':
    sys.stderr.write('HTTP %d %s\n' % (r.status, r.reason))
    for k, v in r.getheaders():
        sys.stderr.write('%s: %s\n' % (k, v))
if os.environ.get('S3_STATUS_FILE'):
    with open(os.environ['S3_STATUS_FILE'], 'w') as fh:
        fh.write('%d\n' % r.status)
sys.stdout.buffer.write(data)
sys.exit(0 if 200 <= r.status < 300 else 1)
EOF
)

# swift_create_bucket PORT REGION BUCKET: S3 CreateBucket with a
# LocationConstraint (none for us-east-1, as AWS wants).  A freshly started
# region on a loaded machine may answer 503 to its first requests: retried
# for up to SWIFT_BUCKET_TIMEOUT seconds (default 60); a retry that finds
# the bucket already ours (an earlier try created it but its answer was
# lost) succeeds.
swift_create_bucket() {
    local port=${1:?swift_create_bucket PORT REGION BUCKET} region=${2:?region} bucket=${3:?bucket}
    local tmp rc=1 out tries=0 end=$((SECONDS + ${SWIFT_BUCKET_TIMEOUT:-60}))
    tmp=$(mktemp "${TMPDIR:-/tmp}/swift-bucket.XXXXXX") || return 1
    if [ "$region" != us-east-1 ]; then
        printf '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>%s</LocationConstraint></CreateBucketConfiguration>' "$region" >"$tmp"
    fi
    while :; do
        tries=$((tries + 1))
        if out=$(swift_s3 "$port" "$region" PUT "/$bucket" "$tmp" 2>&1); then
            rc=0
            break
        fi
        if [ "$tries" -gt 1 ] && [[ $out == *BucketAlreadyOwnedByYou* ]]; then
            rc=0
            break
        fi
        [ "$SECONDS" -ge "$end" ] && break
        sleep 1
    done
    [ "$rc" -ne 0 ] && _swift_err "create bucket $bucket on 127.0.0.1:$port ($region) failed ($tries tries): $out"
    rm -f "$tmp"
    return "$rc"
}

# Command-line use.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cmd=${1:-}
    shift || true
    case $cmd in
        start)
            if [ $# -eq 4 ]; then
                swift_start "$1" "$3" "$4" "$2"
            elif [ $# -eq 3 ]; then
                swift_start "$1" "$2" "$3"
            else
                echo "usage: $0 start DIR [NAME] LOCATION PORT" >&2
                exit 2
            fi
            echo "$SWIFT_PORT"
            ;;
        stop) swift_stop "${1:?usage: $0 stop DIR}" ;;
        bucket) swift_create_bucket "$@" ;;
        free-port) free_ports "${1:-1}" ;;
        s3) swift_s3 "$@" ;;
        *)
            echo "usage: $0 start DIR [NAME] LOCATION PORT | stop DIR | bucket PORT REGION BUCKET | s3 PORT REGION METHOD PATH [FILE] [H:V...] | free-port [N]" >&2
            exit 2
            ;;
    esac
fi
