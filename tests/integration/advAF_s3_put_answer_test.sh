#!/bin/bash
# Adversarial pass AF: wal-push against a PutObject answered "200 OK" with
# an S3 <Error> body and no ETag (a gateway or proxy in front of S3 that
# turns an error into a 200; S3 does it for CompleteMultipartUpload, never
# for a PutObject it kept).  Nothing was written.  With checksum = sha256
# on a server with conditional writes (the fault proxy's `conditional on`,
# as AWS), nothing in the answer was checked, and wal-push exited 0 for a
# segment that was not in the bucket: acknowledged WAL, lost.  It must
# fail; with checksum = md5 it already failed (the ETag is compared).
# Held, checked too: a PUT or a CompleteMultipartUpload carried out whose
# answer is lost before its first byte (the fault proxy's "lose ... blind"):
# the retry recognises the first attempt's object, exit 0, object whole.
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
fp_ctl "$C1" "conditional on" >/dev/null || { echo "Bail out! proxy control"; exit 1; }

SYS=7000000000000000078
ws_fake_pgdata "$T/pg" "$SYS"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1 || { echo "Bail out! keygen"; exit 1; }
n() { printf '0000000100000000000000%02X' "$1"; }
for i in 1 2 3 4; do
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$(n "$i")" "$(n "$i")" "$SYS" --seed "$i" \
    --seg-size 1048576 >/dev/null
done
conf() {   # FILE PREFIX CHECKSUM
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool-$3
parallel = 1
retry_deadline = 4
connect_timeout = 2
io_timeout = 5

[region r1]
url = s3://walship/$2
endpoint = http://127.0.0.1:$F1
aws_region = us-east-1
path_style = true
mode = sync
checksum = $3
credentials = static
access_key_id = test:tester
secret_access_key = testing
CONF
  chmod 600 "$1"
}
conf "$T/sha.conf" sha sha256
conf "$T/md5.conf" md5 md5
push() { (cd "$T/pg" && "$WALSHIP" --config "$1" wal-push "pg_wal/$2"); }
there() { "$WALSHIP" --config "$1" st ls wal/ 2>/dev/null | grep -c "^wal/$2\$"; }

for c in sha md5; do
  t "$c: wal-push $(n 1) (the repository's first segment)" push "$T/$c.conf" "$(n 1)"
  # the PUT is reset unanswered, its retry answered 200 <Error> without ETag:
  # neither reached the server
  fp_ctl "$C1" "lose /walship/$c/wal/$(n 3) drop 200 InternalError" >/dev/null
  push "$T/$c.conf" "$(n 3)" >"$T/$c.out" 2>&1
  st=$?
  n3=$(there "$T/$c.conf" "$(n 3)")
  fp_ctl "$C1" pass >/dev/null
  ok "$([ "$st" -ne 0 ] || [ "$n3" = 1 ] && echo 0 || echo 1)" \
    "$c: a PUT answered 200 with an <Error> and no ETag: wal-push exits 0 only if the segment is there (exit $st, in the bucket: $n3)"
  ok "$([ "$st" -ne 0 ] && echo 0 || echo 1)" "$c: ... it is not, so wal-push fails (exit $st)"
  like "$(cat "$T/$c.out")" "HTTP 200|ETag" "$c: ... naming the answer" || diag "$(tail -2 "$T/$c.out")"
  t "$c: pushed again, with the server answering properly, it is archived" push "$T/$c.conf" "$(n 3)"
  is "$(there "$T/$c.conf" "$(n 3)")" 1 "$c: ... and in the bucket"
done

# ---- the request carried out, its answer lost before a byte of it ----
# (held: the retry meets the first attempt's object and recognises it)
head -c 12582912 /dev/urandom >"$T/big"
for c in sha md5; do
  sed -i "s/^mode = sync/mode = sync\npart_size = 5MB/" "$T/$c.conf"
  cut0=$(fp_stat "$C1" truncations)
  fp_ctl "$C1" "lose /walship/$c/wal/$(n 4) blind" >/dev/null
  t "$c: wal-push whose PUT was carried out and its answer lost exits 0" push "$T/$c.conf" "$(n 4)"
  is "$(( $(fp_stat "$C1" truncations) - cut0 ))" 1 "$c: ... (the proxy lost that answer)"
  fp_ctl "$C1" pass >/dev/null
  rm -f "$T/got4"
  t "$c: ... and the segment is there" "$WALSHIP" --config "$T/$c.conf" st get "wal/$(n 4)" "$T/got4"
  t "$c: ... whole" cmp "$T/got4" "$T/pg/pg_wal/$(n 4)"
  cut0=$(fp_stat "$C1" truncations)
  fp_ctl "$C1" "lose ?uploadId= blind" >/dev/null
  t "$c: a multipart upload whose CompleteMultipartUpload was carried out and its answer lost succeeds" \
    "$WALSHIP" --config "$T/$c.conf" st put "$T/big" "big/$c"
  is "$(( $(fp_stat "$C1" truncations) - cut0 ))" 1 "$c: ... (the proxy lost that answer)"
  fp_ctl "$C1" pass >/dev/null
  rm -f "$T/gotbig"
  t "$c: ... and the object is there" "$WALSHIP" --config "$T/$c.conf" st get "big/$c" "$T/gotbig"
  t "$c: ... whole" cmp "$T/gotbig" "$T/big"
done
done_testing
