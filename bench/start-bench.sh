#!/bin/bash
# bench/start-bench.sh — the CPU of one archive_command / restore_command
# call: process start plus walship's own work, per call, for the walship
# under test and (with --vs) another walship binary, interleaved, and
# pgBackRest's `version` for scale.  This is the cost PostgreSQL pays once
# per WAL segment (docs/WAL.md, "Process start").
#
#   bench/start-bench.sh [--vs OTHER_WALSHIP] [--calls N] [--rounds R]
#
# Calls, each N times per round (default 200), R rounds (default 5),
# interleaved A B A B; the figure is CPU ms per call (user + sys of the
# reaped child, from wait4), median over the rounds, and the min-max:
#   version    walship --version: the process start alone
#   push-again wal-push of a segment the file:// region already holds
#              (PostgreSQL's retry after a crash: the segment is encoded,
#              the stored object read, decoded and compared: exit 0)
#   fetch      wal-fetch --no-prefetch of that segment from the region
# The region is file:// on local disk, with encryption (a keygen key) and
# zstd level 3, so the figures are the local work, no network.
# Environment: WALSHIP (default _build/default/walship), TMPDIR.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
WALSHIP=${WALSHIP:-$top/_build/default/walship}
[ -x "$WALSHIP" ] || WALSHIP=$top/walship
other="" calls=200 rounds=5
while [ $# -gt 0 ]; do
    case $1 in
        --vs) other=${2:?}; shift 2 ;;
        --calls) calls=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        *) echo "usage: $0 [--vs OTHER_WALSHIP] [--calls N] [--rounds R]" >&2; exit 2 ;;
    esac
done
W=$(mktemp -d "${TMPDIR:-/tmp}/walship-start-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/region" "$W/spool" "$W/pg_wal"
"$WALSHIP" keygen "$W/key" >/dev/null
chmod 600 "$W/key"
seg=000000010000000000000001
python3 "$top/tests/lib/walseg.py" "$W/pg_wal/$seg" "$seg" 7000000000000000001 --seed 1 --seg-size 16777216
printf '[global]\nkey_file = %s\nspool_dir = %s\ncompression = zstd:3\n\n[region r1]\nurl = file://%s/region\nmode = sync\n' \
    "$W/key" "$W/spool" "$W" >"$W/conf"
chmod 600 "$W/conf"
"$WALSHIP" --config "$W/conf" wal-push "$W/pg_wal/$seg" || { echo "first wal-push failed" >&2; exit 1; }
pgbr=$(command -v pgbackrest || true)

python3 - "$calls" "$rounds" "$W" "$seg" "$WALSHIP" "$other" "$pgbr" <<'PY'
import os, statistics, subprocess, sys
calls, rounds, w, seg, a, b, pgbr = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:]
conf = w + "/conf"
def argv(binary, what):
    if what == "version":
        return [binary, "version"] if binary == pgbr else [binary, "--version"]
    if what == "push-again":
        return [binary, "--config", conf, "wal-push", w + "/pg_wal/" + seg]
    return [binary, "--config", conf, "wal-fetch", seg, w + "/got", "--no-prefetch"]
def per_call_ms(cmd):
    cpu = 0.0
    for _ in range(calls):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, st, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(st)
        if p.returncode != 0:
            sys.exit("%s exited %d" % (" ".join(cmd), p.returncode))
        cpu += ru.ru_utime + ru.ru_stime
    return cpu / calls * 1000
tools = [("walship", a)] + ([("other", b)] if b else []) + ([("pgbackrest", pgbr)] if pgbr else [])
res = {}
for r in range(rounds):
    for what in ("version", "push-again", "fetch"):
        for name, binary in tools:
            if name == "pgbackrest" and what != "version":
                continue
            res.setdefault((name, what), []).append(per_call_ms(argv(binary, what)))
print("CPU ms per call (user+sys), median of %d rounds of %d calls [min-max]; %d cores, load %s"
      % (rounds, calls, os.cpu_count(), open("/proc/loadavg").read().split()[0]))
print("  walship: %s" % a)
if b:
    print("  other:   %s" % b)
for what in ("version", "push-again", "fetch"):
    row = []
    for name, _ in tools:
        v = res.get((name, what))
        if v:
            row.append("%s %.2f [%.2f-%.2f]" % (name, statistics.median(v), min(v), max(v)))
    if b and res.get(("walship", what)) and res.get(("other", what)):
        ratios = [o / n for o, n in zip(res[("other", what)], res[("walship", what)])]
        row.append("other/walship %.2fx" % statistics.median(ratios))
    print("%-11s %s" % (what, "  ".join(row)))
PY
