#!/bin/bash
# tests/integration/advT_creds_stub_test.sh: adversarial pass T, hostile
# credential endpoints (tests/awsstub.py).  An STS that quotes the web
# identity token back in its InvalidIdentityToken message (sts_echo=1): the
# token must appear neither on stderr nor in a command's JSON output
# (backup-list --json puts a region's error there, past the log's
# redaction).  Temporary credentials without an Expiration
# (no_expiration=1), from IMDS, the container endpoint or STS: refused, not
# used as never-expiring (never refreshed, a long-running process signed
# with them after their end).  An IMDSv2 token PUT that is not answered
# (token_stall): IMDSv1 with imds_v1 = true.  STS through http_proxy.  S3
# holding a token expired before its Expiration (revoked): refreshed.
# Only the stub's metadata port on 127.0.0.1 (and a dead port on 127.0.0.2);
# no S3 server is needed, the credentials fail first.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"

command -v python3 >/dev/null 2>&1 || skip_all "python3 is not installed"
command -v curl >/dev/null 2>&1 || skip_all "curl is not installed"
[ -x "$WALSHIP" ] || { echo "Bail out! $WALSHIP is not built"; exit 1; }

MP=$(tap_free_port); DEAD=$(tap_free_port)
python3 "$TOP_SRCDIR/tests/awsstub.py" --meta "127.0.0.1:$MP" --pidfile "$T/stub.pid" --log "$T/stub.log" \
  </dev/null >>"$T/stub.out" 2>&1 &
on_exit "[ -s '$T/stub.pid' ] && kill \$(cat '$T/stub.pid') 2>/dev/null"
wait_for 20 test -s "$T/stub.pid"
wait_for 20 curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/stats"
ok $? "awsstub answers on :$MP"
curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/set?sts_echo=1" >/dev/null

TOKEN=eyJhbGciOiJSUzI1NiJ9.advT-web-identity-secret-4c1d9e.c2lnbmF0dXJl
printf '%s\n' "$TOKEN" >"$T/wi-token"
chmod 600 "$T/wi-token"
{
  printf '[global]\nretry_deadline = 2\nconnect_timeout = 1\nio_timeout = 2\n\n'
  printf '[region us-east-1]\nurl = s3://creds/p\nendpoint = http://127.0.0.1:%s\npath_style = true\n' "$DEAD"
  printf 'sts_endpoint = http://127.0.0.1:%s/\ncredentials = web-identity\n' "$MP"
} >"$T/c.conf"
chmod 600 "$T/c.conf"

ws() {
  local -a vars=()
  while [ $# -gt 0 ] && [[ $1 == *=* ]]; do vars+=("$1"); shift; done
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_ENDPOINT_URL_STS \
    HOME="$T" AWS_SHARED_CREDENTIALS_FILE="$T/none" AWS_CONFIG_FILE="$T/none" AWS_EC2_METADATA_DISABLED=true \
    AWS_WEB_IDENTITY_TOKEN_FILE="$T/wi-token" AWS_ROLE_ARN=arn:aws:iam::123456789012:role/walship-advT \
    "${vars[@]}" "$WALSHIP" --config "$T/c.conf" "$@"
}

out=$(ws st check 2>&1)
st=$?
ok $([ "$st" -ne 0 ] && echo 0 || echo 1) "a refused web identity token: st check fails (exit $st)"
like "$out" "InvalidIdentityToken" "... naming STS's error code"
ok $(printf '%s' "$out" | grep -qF "$TOKEN" && echo 1 || echo 0) "... and the token it quoted is not on stderr" ||
  diag "$out"

out=$(ws backup-list --json 2>"$T/err")
ok $( (printf '%s' "$out"; cat "$T/err") | grep -qF "$TOKEN" && echo 1 || echo 0) \
  "backup-list --json: the region's error in the JSON does not carry the token" || diag "$out"
like "$out" "InvalidIdentityToken" "... the error is there, without it"

curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/set?sts_echo=0&no_expiration=1&web_token=$TOKEN" >/dev/null
sed -i 's/^credentials = .*/credentials = web-identity/' "$T/c.conf"
out=$(ws st check 2>&1)
st=$?
ok $([ "$st" -eq 3 ] && echo 0 || echo 1) "STS credentials without Expiration: refused (exit $st)" || diag "$out"
like "$out" "Expiration" "... saying why"
for src in imds container; do
  sed -i "s/^credentials = .*/credentials = $src/" "$T/c.conf"
  out=$(ws AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$MP" \
        AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$MP/v2/credentials/t" \
        AWS_CONTAINER_AUTHORIZATION_TOKEN=ctok-secret st check 2>&1)
  st=$?
  ok $([ "$st" -eq 3 ] && echo 0 || echo 1) "$src credentials without Expiration: refused (exit $st)" || diag "$out"
  like "$out" "no Expiration" "... saying why"
done

# IMDSv2's token PUT not answered (the hop limit of 1 drops its answer in a
# container on EC2), with imds_v1 = true: IMDSv1, as the SDKs fall back
# after a timeout; without imds_v1: an error naming IMDSv2.
curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/set?no_expiration=0&token_stall=8&imdsv1=1" >/dev/null
sed -i "s/^credentials = .*/credentials = imds/" "$T/c.conf"
imds() { ws AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$MP" st check 2>&1; }
out=$(imds)
like "$out" "IMDSv2 token" "token PUT unanswered, imds_v1 off: the error names the token request"
printf 'imds_v1 = true\n' >>"$T/c.conf"
out=$(imds)
like "$out" "credentials: imds \\(role walship-role, IMDSv1\\)" "... with imds_v1 = true: IMDSv1 after the timeout" ||
  diag "$out"

# STS is a public AWS endpoint like S3: through http_proxy / https_proxy
# when they are set (the SDKs do; the S3 requests of the same command do),
# where only the link-local endpoints must never be proxied.  The stub is
# the proxy; the STS address behind it (127.0.0.2, a dead port) is reached
# only through it.
sed -i "s|^sts_endpoint = .*|sts_endpoint = http://127.0.0.2:$DEAD/|; s/^credentials = .*/credentials = web-identity/" \
  "$T/c.conf"
out=$(ws http_proxy="http://127.0.0.1:$MP" no_proxy= NO_PROXY= st check 2>&1)
like "$out" "credentials: web-identity \\(role arn:aws:iam::123456789012:role/walship-advT\\)" \
  "STS through http_proxy: credentials from web identity" || diag "$out"
n=$(curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['sts_proxied'])")
ok $([ "$n" -ge 1 ] && echo 0 || echo 1) "... the STS request went to the proxy ($n)"

# S3 answers ExpiredToken for credentials whose Expiration is an hour away
# (the session was revoked, or this host's clock is behind S3's): walship
# must fetch new ones and sign the retry with them, not repeat the dead
# token until its own idea of the expiry.  The stub's S3 front (--s3) has
# no server behind it: the refreshed request fails as a network error,
# which is enough to see which token it carried.
S3P=$(tap_free_port)
python3 "$TOP_SRCDIR/tests/awsstub.py" --meta "127.0.0.1:$(tap_free_port)" --s3 "127.0.0.1:$S3P" \
  --target "127.0.0.1:$DEAD" --pidfile "$T/stub2.pid" --log "$T/stub2.log" </dev/null >>"$T/stub2.out" 2>&1 &
on_exit "[ -s '$T/stub2.pid' ] && kill \$(cat '$T/stub2.pid') 2>/dev/null"
wait_for 20 test -s "$T/stub2.pid"
curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/set?revoked=1&imdsv1=0&token_stall=0" >/dev/null
sed -i "s|^endpoint = .*|endpoint = http://127.0.0.1:$S3P|; s/^credentials = .*/credentials = imds/; /^imds_v1/d" \
  "$T/c.conf"
printf 'x\n' >"$T/obj"
imds_fetches() {
  curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['imds_creds'])"
}
n0=$(imds_fetches)
out=$(ws AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$MP" \
      st put "$T/obj" advT-obj 2>&1)
n=$(( $(imds_fetches) - n0 ))
ok $([ "$n" -ge 2 ] && echo 0 || echo 1) "S3 says ExpiredToken before the Expiration: new credentials fetched ($n fetches)" ||
  diag "$out"
unlike "$out" "session token has expired" "... and the retry is not refused for the old token again"
done_testing
