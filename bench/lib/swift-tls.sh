# shellcheck shell=bash
# bench/lib/swift-tls.sh — one Swift s3api region behind TLS, for benchmarks
# that compare walship with pgBackRest (whose S3 driver speaks HTTPS only).
#
#   swift_tls_cert DIR                         self-signed cert for 127.0.0.1 (SAN
#                                              IP and DNS: pgBackRest checks only
#                                              DNS names and the CN):
#                                              DIR/cert.pem, DIR/key.pem
#   swift_start_tls DIR LOCATION CERT KEY BUCKET...
#                                              swift_start (tests/lib/swift.sh),
#                                              create BUCKETs over plain HTTP,
#                                              then restart the proxy with
#                                              cert_file/key_file (TESTING.md)
#                                              and wait for HTTPS /healthcheck.
#                                              SWIFT_PORT = the HTTPS port.
#   swift_cpu_ticks DIR                        CPU clock ticks (user + system)
#                                              used so far by the servers
#                                              whose PIDs are in DIR/pids; 0
#                                              without them.  Divide by
#                                              getconf CLK_TCK for seconds.
# Stop with swift_stop DIR as usual (the new proxy's PID is in DIR/pids).
# Needs tests/lib/swift.sh sourced first.

swift_tls_cert() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1,DNS:127.0.0.1 \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
}

swift_start_tls() {
    local dir=$1 location=$2 cert=$3 key=$4
    shift 4
    local b pid port i
    swift_start "$dir" "$location" 0 || return 1
    dir=$(cd "$dir" && pwd)
    port=$(cat "$dir/port")
    for b in "$@"; do
        swift_create_bucket "$port" "$location" "$b" >/dev/null || return 1
    done
    pid=$(swift_pid "$dir" proxy)
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        _swift_alive "$pid" || break
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    sed -i "/^bind_port = $port\$/a cert_file = $cert\nkey_file = $key" "$dir/proxy-server.conf"
    _swift_spawn "$dir" proxy swift-proxy-server "$dir/proxy-server.conf" -v
    for ((i = 0; i < 300; i++)); do
        if [ "$(curl -s --noproxy '*' --cacert "$cert" -o /dev/null -w '%{http_code}' --max-time 2 \
            "https://127.0.0.1:$port/healthcheck" 2>/dev/null)" = 200 ]; then
            # shellcheck disable=SC2034  # for the caller, like swift_start
            SWIFT_PORT=$port
            return 0
        fi
        _swift_alive "$(swift_pid "$dir" proxy)" || break
        sleep 0.1
    done
    _swift_err "TLS proxy on $port did not come up"
    tail -20 "$dir/log/proxy.log" >&2
    return 1
}

swift_cpu_ticks() {
    local p
    if [ -z "$1" ] || [ ! -s "$1/pids" ]; then echo 0; return; fi
    # fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends
    # the command name
    while read -r p; do cat "/proc/$p/stat" 2>/dev/null; done <"$1/pids" |
        awk '{ sub(/.*\) /, ""); if (NF > 13) t += $12 + $13 } END { print t + 0 }'
}
