#!/usr/bin/env bash
# Adversarial pass Z: s3:// urls and endpoints that `config check` called
# valid (exit 0) and every command refused when it opened the region: a
# USER:PASS@ in the url (printed in clear by config check, and by every
# command's error, into PostgreSQL's log when wal-push reports it), a ".."
# or "//" in the prefix, a bad bucket name, an endpoint with a path, a query
# or a fragment.  Now refused when read, with FILE:LINE and the key, and the
# password never echoed.  No server needed.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
SECRET=Sup3r-S3cret-Pw-4711
check() { "$WALSHIP" --config "$1" config check 2>&1; }
conf() { printf "$@" >"$T/bad.conf"; chmod 600 "$T/bad.conf"; }
refused() {  # name, pattern
  local o st
  o=$(check "$T/bad.conf"); st=$?
  is "$st" 2 "refused with exit 2: $1"
  like "$o" "$2" "  $1: the message"
}

conf "[region a]\nurl = s3://AKIAEXAMPLE:$SECRET@bucket/prod\nendpoint = http://127.0.0.1:9\n"
chmod 644 bad.conf
o=$(check "$T/bad.conf"); st=$?
is "$st" 2 "config check: a USER:PASS@ in an s3:// url is refused"
like "$o" "bad.conf:2: key \"url\": .*user name or password" "  names the line and the key"
printf '%s' "$o" | grep -qF "$SECRET"; ok $((!$?)) "  and does not print the secret"
o=$("$WALSHIP" --config "$T/bad.conf" st ls 2>&1)
printf '%s' "$o" | grep -qF "$SECRET"; ok $((!$?)) "  nor does any other command (st ls)"
conf "[region a]\nurl = s3://AKIAEXAMPLE:pa/$SECRET@bucket/prod\nendpoint = http://127.0.0.1:9\n"
o=$(check "$T/bad.conf"); st=$?
is "$st" 2 "a USER:PASS@ whose password holds a /: refused"
printf '%s' "$o" | grep -qF "$SECRET"; ok $((!$?)) "  and the password is not printed"
conf "[region a]\nurl = s3://bucket/prod\nendpoint = http://u:pa/$SECRET@127.0.0.1:9\n"
o=$(check "$T/bad.conf"); st=$?
is "$st" 2 "an endpoint's USER:PASS@ whose password holds a /: refused"
printf '%s' "$o" | grep -qF "$SECRET"; ok $((!$?)) "  and the password is not printed"
conf '[region a]\nurl = s3://bucket/prod/../other\nendpoint = http://127.0.0.1:9\n'
refused "\"..\" in an s3:// prefix" "bad.conf:2: key \"url\": .*prefix"
conf '[region a]\nurl = s3://bucket/prod//x\nendpoint = http://127.0.0.1:9\n'
refused "\"//\" inside an s3:// prefix" "bad.conf:2: key \"url\": .*prefix"
conf '[region a]\nurl = s3:///prod\nendpoint = http://127.0.0.1:9\n'
refused "no bucket name" "bad.conf:2: key \"url\": .*no bucket name"
conf '[region a]\nurl = s3://bucket!/prod\nendpoint = http://127.0.0.1:9\n'
refused "a bad character in the bucket name" "bad.conf:2: key \"url\": .*bucket name"
conf '[region a]\nurl = s3://bucket/prod\nendpoint = http://127.0.0.1:9/other-bucket\n'
refused "an endpoint with a path" "bad.conf:3: key \"endpoint\": .*path"
conf '[region a]\nurl = s3://bucket/prod\nendpoint = http://127.0.0.1:9?x-id=1\n'
refused "an endpoint with a query" "bad.conf:3: key \"endpoint\": .*query"
conf '[region a]\nurl = s3://bucket/prod\nendpoint = http://127.0.0.1:9#eu\n'
refused "an endpoint with a fragment" "bad.conf:3: key \"endpoint\": .*fragment"
o=$("$WALSHIP" --from s3://bucket/prod --endpoint http://127.0.0.1:9/x config check 2>&1); st=$?
is "$st" 2 "--endpoint with a path is refused too"
# what every command accepts, config check accepts
for good in 's3://bucket//prod/' 's3://Bucket_1/prod' 's3://bucket' 's3://bucket/pfx#frag'; do
  conf '[region a]\nurl = %s\nendpoint = http://127.0.0.1:9/\n' "$good"
  out=$(check "$T/bad.conf"); is "$?" 0 "accepted: url = $good"
done
conf '[region a]\nurl = s3://bucket/prod\nendpoint = https://s3.eu-west-1.amazonaws.com:443/\n'
out=$(check "$T/bad.conf"); is "$?" 0 "accepted: an endpoint with a port and a trailing /"

done_testing
