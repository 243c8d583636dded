#!/usr/bin/env bash
# Adversarial pass Z: region keys that do nothing where they stand were
# dropped without a word (DESIGN.md §7: no line may silently drop a key).
# An S3 key in a file:// region (sse = aws:kms over a local directory,
# credentials, an endpoint; a region switched from s3:// to file:// for a
# drill keeps them) was ignored; sse_kms_key_id or sse_bucket_key without
# sse = aws:kms was called valid by config check and refused by every
# command when it opened the region; and --endpoint, --ca-file and
# --path-style with --from file:// were ignored.  All are
# refused now, exit 2, naming the key.  No server needed.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra
check() { "$WALSHIP" --config "$T/c.conf" config check 2>&1; }
conf() { printf "$@" >"$T/c.conf"; chmod 600 "$T/c.conf"; }
refused() {  # name, pattern
  local o st
  o=$(check); st=$?
  is "$st" 2 "refused with exit 2: $1"
  like "$o" "$2" "  $1: the message"
}

conf '[region a]\nurl = file://%s/ra\nsse = aws:kms\n' "$T"
refused "sse = aws:kms in a file:// region" "c.conf:3: key \"sse\" of \[region a\]: an S3 setting in a file:// region would not be used"
conf '[region a]\nurl = file://%s/ra\nendpoint = http://127.0.0.1:9000\n' "$T"
refused "an endpoint in a file:// region" "c.conf:3: key \"endpoint\" of \[region a\]: .*would not be used"
conf '[region a]\nurl = file://%s/ra\ncredentials = env\n' "$T"
refused "credentials in a file:// region" "c.conf:3: key \"credentials\" of \[region a\]"
conf '[region a]\nurl = file://%s/ra\nstorage_class = GLACIER\n' "$T"
refused "storage_class in a file:// region" "c.conf:3: key \"storage_class\" of \[region a\]"
conf '[region a]\nurl = file://%s/ra\nmode = async\nretain_full = 3\nretain_days = 7\n' "$T"
out=$(check); is "$?" 0 "url, mode, retain_full, retain_days in a file:// region are read"

conf '[region a]\nurl = s3://bucket/p\nendpoint = http://127.0.0.1:9\nsse_kms_key_id = alias/walship\n'
refused "sse_kms_key_id without sse = aws:kms" "c.conf:4: key \"sse_kms_key_id\" of \[region a\]: needs sse = aws:kms"
conf '[region a]\nurl = s3://bucket/p\nendpoint = http://127.0.0.1:9\nsse = AES256\nsse_bucket_key = true\n'
refused "sse_bucket_key with sse = AES256" "c.conf:5: key \"sse_bucket_key\" of \[region a\]: needs sse = aws:kms"
conf '[region a]\nurl = s3://bucket/p\nendpoint = http://127.0.0.1:9\nsse = aws:kms\nsse_kms_key_id = alias/w\nsse_bucket_key = true\n'
out=$(check); is "$?" 0 "sse_kms_key_id and sse_bucket_key with sse = aws:kms are read"

for opt in "--endpoint http://127.0.0.1:9" "--ca-file $T/ca.pem" "--path-style"; do
  # shellcheck disable=SC2086
  o=$("$WALSHIP" --from "file://$T/ra" $opt st ls 2>&1); st=$?
  is "$st" 2 "${opt%% *} with --from file://: exit 2"
  like "$o" "${opt%% *} is an S3 option" "  says why"
done
o=$("$WALSHIP" --from "file://$T/ra" --region dr st ls 2>&1); st=$?
unlike "$o" "S3 option" "--region with --from file:// is no S3 option"
# restore writes --aws-region into restore_command whatever the url: a
# standby's wal-fetch must keep working
o=$("$WALSHIP" --from "file://$T/ra" --aws-region us-east-1 st ls 2>&1); st=$?
unlike "$o" "S3 option" "--aws-region with --from file:// is still taken (restore_command carries it)"

done_testing
