#!/bin/bash
# bench/ident-bench.sh — what re-reading each region's identity before every
# commit costs the archiver process (docs/WAL.md, "A region's identity is
# read again before each commit"): the same N-segment drain through the
# archiver process (archive_async_process = on, parallel 2, zstd:3,
# encryption), binary A and binary B alternated run by run, a fresh region
# and spool each run.  The segments are synthetic (a real long page header,
# then pages a quarter random and three quarters zeros: about 4:1 with
# zstd:3), made once and hard-linked into a pg_wal whose archive_status
# bench/lib/archiver.sh drains as PostgreSQL's archiver does.
#
#   bench/ident-bench.sh WALSHIP_A WALSHIP_B [--storage posix|s3]
#                        [--segments N] [--runs R] [--keep]
#
#   posix: a file:// region; s3: one local Swift s3api region (plain HTTP,
#   tests/lib/swift.sh).  Prints one line per run (wall seconds until the
#   last segment was acknowledged) and the medians.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
A=$1 B=$2
shift 2
STORAGE=posix N=200 RUNS=3 KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --storage) STORAGE=$2; shift ;;
    --segments) N=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --keep) KEEP=1 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
. "$TOP/tests/lib/swift.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/ident-bench.XXXXXX")
cleanup() {
  local f pid
  while IFS= read -r f; do
    read -r pid <"$f" 2>/dev/null && [ -n "$pid" ] && kill "$pid" 2>/dev/null
  done < <(find "$W" \( -name archd.lock -o -name ship.lock \) 2>/dev/null)
  [ -d "$W/swift" ] && swift_stop "$W/swift" >/dev/null 2>&1
  if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
SYS=7000000000000000077
mkdir -p "$W/pg/global" "$W/pg/pg_wal/archive_status" "$W/segs"
python3 - "$W/pg/global/pg_control" "$SYS" <<'PY'
import struct, sys
b = bytearray(8192)
b[0:8] = struct.pack('<Q', int(sys.argv[2]))
open(sys.argv[1], 'wb').write(b)
PY
echo 15 >"$W/pg/PG_VERSION"
"$A" keygen "$W/key" >/dev/null 2>&1
python3 - "$W/segs" "$SYS" "$N" <<'PY'
import random, struct, sys
out, sysid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = 16 << 20
for i in range(n):
    name = "00000001%08X%08X" % ((i + 1) >> 8, (i + 1) & 0xFF)
    pageaddr = (i + 1) * size
    hdr = struct.pack("=HHIQI4xQII", 0xD110, 0x0002, 1, pageaddr, 0, sysid, size, 8192)
    rnd = random.Random(i)
    with open("%s/%s" % (out, name), "wb") as f:
        f.write(hdr + bytes(8192 - len(hdr)))
        zeros = bytes(6144)
        for _ in range(size // 8192 - 1):
            f.write(rnd.randbytes(2048) + zeros)
PY
if [ "$STORAGE" = s3 ]; then
  PORT=$(free_port)
  swift_start "$W/swift" us-east-1 "$PORT" >/dev/null 2>&1 || { echo "swift did not start" >&2; exit 1; }
  swift_create_bucket "$PORT" us-east-1 bench >/dev/null || { echo "could not create the bucket" >&2; exit 1; }
fi

run() {   # BINARY RUN-ID: seconds of the drain
  local bin=$1 id=$2 url extra=
  rm -rf "$W/pg/pg_wal"/0* "$W/pg/pg_wal/archive_status"/* "$W/spool"
  for f in "$W/segs"/*; do
    ln "$f" "$W/pg/pg_wal/" && touch "$W/pg/pg_wal/archive_status/${f##*/}.ready"
  done
  if [ "$STORAGE" = s3 ]; then
    url=s3://bench/run$id
    extra=$(printf 'endpoint = http://127.0.0.1:%s\npath_style = true\naccess_key_id = test:tester\nsecret_access_key = testing\naws_region = us-east-1\n' "$PORT")
  else
    mkdir -p "$W/r$id"
    url=file://$W/r$id
  fi
  cat >"$W/c$id.conf" <<CONF
[global]
key_file = $W/key
spool_dir = $W/spool
parallel = 2
compression = zstd:3
archive_async_process = on
archive_async_idle = 2

[region r]
url = $url
mode = sync
$extra
CONF
  chmod 600 "$W/c$id.conf"
  local t0 t1
  t0=$(date +%s.%N)
  "$TOP/bench/lib/archiver.sh" "$W/pg" "$bin --config $W/c$id.conf wal-push %p" 2>"$W/run$id.err" || echo "run $id failed" >&2
  t1=$(date +%s.%N)
  local pid
  { read -r pid <"$W/spool/$SYS/archd.lock"; } 2>/dev/null && [ -n "$pid" ] && kill "$pid" 2>/dev/null
  sleep 1
  local got
  got=$("$bin" --config "$W/c$id.conf" st ls wal/ 2>/dev/null | grep -c '^wal/0000\|0000000100')
  [ "$got" -ge "$N" ] || echo "run $id: only $got objects" >&2
  echo "$t1 - $t0" | bc
}

declare -a ta tb
for ((i = 0; i < RUNS; i++)); do
  a=$(run "$A" "a$i"); b=$(run "$B" "b$i")
  echo "run $((i + 1)): A $a s, B $b s"
  ta+=("$a"); tb+=("$b")
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "storage $STORAGE, $N segments, $RUNS runs: median A $(med "${ta[@]}") s, B $(med "${tb[@]}") s"
