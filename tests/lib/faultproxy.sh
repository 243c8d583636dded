#!/bin/bash
# tests/lib/faultproxy.sh: bash helpers around tests/faultproxy.py.
#
#   fp_start LISTEN_PORT TARGET_PORT CONTROL_PORT DIR [DELAY_MS]
#       start a proxy 127.0.0.1:LISTEN_PORT -> 127.0.0.1:TARGET_PORT, control
#       on 127.0.0.1:CONTROL_PORT, initial one-way latency DELAY_MS; PID in
#       DIR/faultproxy.pid.launch, log in DIR/faultproxy.log; returns once it
#       listens.
#   fp_ctl CONTROL_PORT 'command'
#       send one control command, print the reply; fail on "ERR" or no reply.
#   fp_stat CONTROL_PORT KEY
#       one counter or setting from "status" (requests, errors, resets, ...).
#   fp_stop DIR
#       TERM the recorded PID (KILL after 5 s) and wait; safe to call twice.
#
# Commands (see tests/faultproxy.py or docs/TESTING-HARNESS.md): delay MS
# [MS_BACK], error N [STATUS [CODE]], reset N, reset-conn N, stall N,
# stall-conn N, stall-for SECONDS, truncate N K, lock PATTERN..., unlock,
# conditional on|off, dark, up, pass, clear,
# status, ping, shutdown.

FP_PYTHON=${FP_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
FP_SCRIPT=${FP_SCRIPT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/faultproxy.py}

fp_start() {
    local listen=${1:?fp_start LISTEN_PORT TARGET_PORT CONTROL_PORT DIR [DELAY_MS]}
    local target=${2:?target port} control=${3:?control port} dir=${4:?dir} delay=${5:-0}
    local pidfile pid i
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    pidfile=$dir/faultproxy.pid
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "fp_start: $dir: a proxy is already running" >&2
        return 1
    fi
    rm -f "$pidfile"
    "$FP_PYTHON" "$FP_SCRIPT" --listen "127.0.0.1:$listen" --target "127.0.0.1:$target" \
        --control "127.0.0.1:$control" --delay-ms "$delay" --pidfile "$pidfile" \
        </dev/null >>"$dir/faultproxy.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/faultproxy.pid.launch"
    # The proxy writes its pidfile once both ports listen.
    for ((i = 0; i < 100; i++)); do
        [ -s "$pidfile" ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "fp_start: faultproxy exited:" >&2
            tail -n 20 "$dir/faultproxy.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "fp_start: faultproxy not ready after 10 s" >&2
    tail -n 20 "$dir/faultproxy.log" >&2
    kill -TERM "$pid" 2>/dev/null || true
    return 1
}

# fp_ctl CONTROL_PORT COMMAND...: one command over the line protocol, with
# bash's /dev/tcp; 5 s to answer.
fp_ctl() {
    local port=${1:?fp_ctl CONTROL_PORT COMMAND} reply='' fd
    shift
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || { echo "fp_ctl: cannot reach 127.0.0.1:$port" >&2; return 1; }
    printf '%s\n' "$*" >&"$fd"
    IFS= read -r -t 5 -u "$fd" reply || true
    exec {fd}>&-
    printf '%s\n' "$reply"
    case $reply in
        OK*) return 0 ;;
        '') echo "fp_ctl: no reply to '$*'" >&2; return 1 ;;
        *) return 1 ;;
    esac
}

# fp_stat CONTROL_PORT KEY: one value from "status" (e.g. requests, errors).
fp_stat() {
    local reply kv
    reply=$(fp_ctl "$1" status) || return 1
    for kv in $reply; do
        case $kv in
            "$2"=*) printf '%s\n' "${kv#*=}"; return 0 ;;
        esac
    done
    return 1
}

fp_stop() {
    local dir=${1:?fp_stop DIR} pid i
    [ -s "$dir/faultproxy.pid.launch" ] || return 0
    pid=$(cat "$dir/faultproxy.pid.launch")
    # Only if that PID is still a faultproxy (not a recycled PID).
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "faultproxy.py"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            _fp_alive "$pid" || break
            sleep 0.1
        done
        if _fp_alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/faultproxy.pid.launch" "$dir/faultproxy.pid"
    return 0
}

# _fp_alive PID: running and not a zombie.
_fp_alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cmd=${1:-}
    shift || true
    case $cmd in
        start) fp_start "$@" ;;
        ctl) fp_ctl "$@" ;;
        stop) fp_stop "$@" ;;
        *)
            echo "usage: $0 start LISTEN_PORT TARGET_PORT CONTROL_PORT DIR [DELAY_MS] | ctl CONTROL_PORT COMMAND | stop DIR" >&2
            exit 2
            ;;
    esac
fi
