#!/bin/bash
# walship st check with two S3 regions whose urls differ but reach one
# place (adversarial pass Q): one bucket and prefix through two host names
# of one endpoint (127.0.0.1 and localhost), as a load balancer's name and
# a server's would be.  The configuration's check compares the endpoints
# as written and cannot tell; st check said "ok" for both, and every
# segment was then "archived to both", one copy in truth.  st check now
# writes a probe object into each region and looks for it in the others:
# such a pair is FAILED, exit 3; another prefix of the same bucket is not.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

command -v swift-proxy-server >/dev/null || skip_all "swift is not installed"
getent hosts localhost >/dev/null || skip_all "localhost does not resolve"

read -r P1 <<<"$(free_ports 1 | tr '\n' ' ')"
on_exit "swift_stop $T/s1"
swift_start_regions "$T/s1" us-east-1 "$P1" || { echo "Bail out! swift did not start"; exit 1; }
swift_create_bucket "$P1" us-east-1 walship >/dev/null || { echo "Bail out! could not create a bucket"; exit 1; }

"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
chmod 600 "$T/key"
reg() {  # NAME PREFIX HOST
  printf '\n[region %s]\nurl = s3://walship/%s\nendpoint = http://%s:%s\naws_region = us-east-1\npath_style = true\n' \
    "$1" "$2" "$3" "$P1"
  printf 'access_key_id = test:tester\nsecret_access_key = testing\n'
}
{ printf '[global]\nkey_file = %s\nretry_deadline = 10\n' "$T/key"; reg a prod 127.0.0.1; reg b prod localhost; } >"$T/same.conf"
{ printf '[global]\nkey_file = %s\nretry_deadline = 10\n' "$T/key"; reg a prod 127.0.0.1; reg c other localhost; } >"$T/two.conf"
chmod 600 "$T/same.conf" "$T/two.conf"

t "config check cannot tell the two names apart" "$WALSHIP" --config "$T/same.conf" config check
t_fail "st check: one bucket and prefix under two names is FAILED (exit 3)" 3 \
  "$WALSHIP" --config "$T/same.conf" st check
like "$T_OUT" "region b: FAILED: an object written to region a is in region b too" "...naming both regions"
like "$T_OUT" "region a: FAILED: an object written to region b is in region a too" "...both ways"
t "st check: two prefixes of one bucket are two places" "$WALSHIP" --config "$T/two.conf" st check
unlike "$T_OUT" "FAILED" "...nothing failed"
t "st ls" "$WALSHIP" --config "$T/two.conf" --region a st ls walship-probe/
is "$T_OUT" "" "no probe object is left behind"

done_testing
