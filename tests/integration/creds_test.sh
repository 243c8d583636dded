#!/bin/bash
# tests/integration/creds_test.sh: S3 credentials from every source, their
# refresh, integrity and encryption headers, against loopback stubs.
#
# A real Swift s3api region (us-east-1) stores the objects.  tests/awsstub.py
# plays the AWS credential endpoints (IMDSv2, STS AssumeRoleWithWebIdentity,
# the container endpoint), written from AWS's published formats, and sits in
# front of Swift as the S3 endpoint walship talks to: it records each
# request's integrity and encryption headers and refuses expired session
# tokens the way S3 does (Swift ignores x-amz-security-token).  The stub
# hands out Swift's test:tester / testing keys with a session token
# "wstok.SOURCE.N.EXPIRY".
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"
# shellcheck source=../lib/swift.sh
. "$TOP_SRCDIR/tests/lib/swift.sh"

for need in swift-proxy-server swift-object-server memcached curl python3; do
  command -v "$need" >/dev/null 2>&1 || skip_all "$need is not installed"
done
[ -x "$WALSHIP" ] || { echo "Bail out! $WALSHIP is not built"; exit 1; }

read -r PA MP SP <<<"$(free_ports 3 | tr '\n' ' ')"
# shellcheck disable=SC2016 # expanded when the hook runs
on_exit 'kill "$_tap_watchdog" $(pgrep -P "$_tap_watchdog" 2>/dev/null) 2>/dev/null'
on_exit "swift_stop '$T/a'"
# the machine may be loaded: give Swift time
[ "$SWIFT_START_TIMEOUT" -lt 120 ] && SWIFT_START_TIMEOUT=120
swift_start "$T/a" us-east-1 "$PA" || { echo "Bail out! swift did not start"; exit 1; }
swift_create_bucket "$PA" us-east-1 creds >/dev/null
ok $? "bucket creds in us-east-1 (Swift s3api on :$PA)"

python3 "$TOP_SRCDIR/tests/awsstub.py" --meta "127.0.0.1:$MP" --s3 "127.0.0.1:$SP" --target "127.0.0.1:$PA" \
  --pidfile "$T/stub.pid" --log "$T/stub.log" </dev/null >>"$T/stub.out" 2>&1 &
on_exit "[ -s '$T/stub.pid' ] && kill \$(cat '$T/stub.pid') 2>/dev/null"
wait_for 20 test -s "$T/stub.pid"
wait_for 20 curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/stats"
ok $? "awsstub answers on :$MP (metadata, STS, container) and :$SP (S3 front)"

ctl() { curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/set?$1" >/dev/null; }
stat() { curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
reqs() { curl -sf --noproxy '*' "http://127.0.0.1:$MP/_ctl/requests"; }

mkdir -p "$T/home" "$T/aws" "$T/files"
printf 'wi-token\n' >"$T/wi-token"
printf 'ctok-secret\n' >"$T/ctok"
cat >"$T/aws/credentials" <<EOF
[default]
aws_access_key_id = test:nobody
aws_secret_access_key = wrong

[prod]
aws_access_key_id = test:tester
aws_secret_access_key = testing
EOF
cat >"$T/proc.py" <<EOF
import json, time
exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
print(json.dumps({"Version": 1, "AccessKeyId": "test:tester", "SecretAccessKey": "testing",
                  "SessionToken": "wstok.process.1.%d" % (time.time() + 3600), "Expiration": exp}))
EOF
# the process gets SIGPIPE as any program expects it (walship ignores it)
cat >"$T/proc.sh" <<EOF
ign=\$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/\$\$/status)
[ \$(( 0x\$ign & 0x1000 )) -eq 0 ] || { echo "SIGPIPE ignored" >&2; exit 1; }
exec python3 $T/proc.py
EOF
cat >"$T/aws/config" <<EOF
[default]
region = us-east-1

[profile proc]
credential_process = sh $T/proc.sh

[profile wi]
role_arn = arn:aws:iam::123456789012:role/walship-wi
web_identity_token_file = $T/wi-token
role_session_name = walship-test

[profile broken]
credential_process = python3 -c "print('no json')"

[profile nokeys]
region = eu-west-1
EOF

# write_conf CREDENTIALS [EXTRA LINES]
write_conf() {
  {
    printf '[global]\nparallel = 2\nretry_deadline = 5\nconnect_timeout = 2\nio_timeout = 10\n\n'
    printf '[region us-east-1]\nurl = s3://creds/p\nendpoint = http://127.0.0.1:%s\npath_style = true\n' "$SP"
    printf 'part_size = 5MB\nsts_endpoint = http://127.0.0.1:%s/\n' "$MP"
    [ -n "$1" ] && printf 'credentials = %s\n' "$1"
    [ $# -gt 1 ] && printf '%s\n' "${@:2}"
  } >"$T/c.conf"
  chmod 600 "$T/c.conf"
}

# ws [VAR=VALUE...] -- ARGS: walship with a clean AWS environment (HOME and
# the shared files in $T, nothing that reaches outside 127.0.0.1).
ws() {
  local -a vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    -u AWS_WEB_IDENTITY_TOKEN_FILE -u AWS_ROLE_ARN -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
    -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_AUTHORIZATION_TOKEN -u AWS_ENDPOINT_URL_STS \
    HOME="$T/home" AWS_SHARED_CREDENTIALS_FILE="$T/aws/credentials" AWS_CONFIG_FILE="$T/aws/config" \
    AWS_EC2_METADATA_DISABLED=true "${vars[@]}" "$WALSHIP" --config "$T/c.conf" "$@"
}
IMDS=(AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$MP")
WI=(AWS_WEB_IDENTITY_TOKEN_FILE="$T/wi-token" AWS_ROLE_ARN=arn:aws:iam::123456789012:role/walship-env)
CT=(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$MP/v2/credentials/task-1"
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$T/ctok")
ENVK=(AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing)

# check NAME WANT_SOURCE_REGEX VARS... : st check passes and names the source
check() {
  local name=$1 want=$2 out st
  shift 2
  out=$(ws "$@" -- st check 2>&1)
  st=$?
  ok "$st" "$name: st check exits 0" || diag "$out"
  like "$out" "^region us-east-1: credentials: $want" "$name: st check names the source" &&
    diag "$(grep '^region us-east-1: credentials' <<<"$out")"
  printf '%s\n' "$out" >>"$T/all-output"
}

# ---- each source, selected explicitly ----
write_conf static "access_key_id = test:tester" "secret_access_key = testing"
check "static" 'static \(access key test:tester\)'
write_conf env
check "env" 'env \(AWS_ACCESS_KEY_ID test:tester\)' "${ENVK[@]}"
write_conf imds
check "imds" 'imds \(role walship-role\)' "${IMDS[@]}"
[ "$(stat imds_token)" -ge 1 ]
ok $? "imds: an IMDSv2 token was asked for with a TTL"
write_conf web-identity
check "web-identity (env, sts_endpoint key)" 'web-identity \(role arn:aws:iam::123456789012:role/walship-env\)' "${WI[@]}"
write_conf web-identity
sed -i '/^sts_endpoint/d' "$T/c.conf"
check "web-identity (AWS_ENDPOINT_URL_STS)" 'web-identity \(role ' "${WI[@]}" AWS_ENDPOINT_URL_STS="http://127.0.0.1:$MP/"
write_conf container
check "container (full URI, token file)" "container \\(http://127.0.0.1:$MP/v2/credentials/task-1\\)" "${CT[@]}"
check "container (full URI, token variable)" 'container ' \
  AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$MP/v2/credentials/task-1" AWS_CONTAINER_AUTHORIZATION_TOKEN=ctok-secret
write_conf profile:prod
check "profile:prod (credentials file)" 'profile \(prod, access key test:tester\)'
write_conf profile
check "profile with AWS_PROFILE" 'profile \(prod, ' AWS_PROFILE=prod
write_conf profile:proc
check "profile:proc (credential_process)" 'profile \(proc, credential_process\)'
write_conf profile:wi
check "profile:wi (role_arn + web_identity_token_file)" 'profile \(wi, web identity role arn:aws:iam::123456789012:role/walship-wi\)'

# ---- auto: the AWS SDKs' order ----
write_conf ""
check "auto: env before everything" 'auto: env ' "${ENVK[@]}" "${WI[@]}" "${CT[@]}" "${IMDS[@]}" AWS_PROFILE=prod
check "auto: web identity before profile, container, imds" 'auto: web-identity ' "${WI[@]}" "${CT[@]}" "${IMDS[@]}" AWS_PROFILE=prod
check "auto: profile before container and imds" 'auto: profile \(prod' "${CT[@]}" "${IMDS[@]}" AWS_PROFILE=prod
mv "$T/aws/credentials" "$T/aws/credentials.off"
mv "$T/aws/config" "$T/aws/config.off"
check "auto: container before imds" 'auto: container ' "${CT[@]}" "${IMDS[@]}"
check "auto: imds last" 'auto: imds \(role walship-role\)' "${IMDS[@]}"
out=$(ws -- st check 2>&1)
is "$?" 2 "auto with no source at all exits 2"
like "$out" 'no S3 credentials found: tried .*EC2 instance metadata' "... naming every source tried"
start=$SECONDS
out=$(ws AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$((MP + 20000 > 65000 ? MP - 1 : MP + 20000))" -- st check 2>&1)
is "$?" 2 "auto, metadata service unreachable: exits 2 (the chain ends)"
[ $((SECONDS - start)) -le 10 ]
ok $? "... within 10 s ($((SECONDS - start)) s): off EC2 the metadata probe fails fast"
mv "$T/aws/credentials.off" "$T/aws/credentials"
mv "$T/aws/config.off" "$T/aws/config"

# ---- IMDSv1 is off unless asked for ----
ctl "token_status=404&imdsv1=1"
write_conf imds
out=$(ws "${IMDS[@]}" -- st check 2>&1)
is "$?" 3 "imds without an IMDSv2 token: exits 3 (IMDSv1 off by default)"
like "$out" 'IMDSv1 is off \(imds_v1 = true allows it\)' "... and says how to allow IMDSv1"
write_conf imds "imds_v1 = true"
check "imds_v1 = true falls back to IMDSv1" 'imds \(role walship-role, IMDSv1\)' "${IMDS[@]}"
ctl "token_status=200&imdsv1=0"
before=$(stat imds_401)
out=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/latest/meta-data/iam/security-credentials/")
is "$out" 401 "the stub refuses metadata without a token (401), as IMDSv2-only instances do"

# ---- wrong, expired, malformed and slow answers: clear errors, no hang ----
write_conf web-identity
printf 'not-the-token\n' >"$T/bad-token"
out=$(ws AWS_WEB_IDENTITY_TOKEN_FILE="$T/bad-token" AWS_ROLE_ARN=arn:aws:iam::1:role/x -- st check 2>&1)
is "$?" 3 "web identity with a token STS refuses: exits 3"
like "$out" 'InvalidIdentityToken' "... naming STS's error code"
out=$(ws AWS_WEB_IDENTITY_TOKEN_FILE="$T/missing" AWS_ROLE_ARN=arn:aws:iam::1:role/x -- st check 2>&1)
ok $([ $? -ne 0 ] && echo 0 || echo 1) "web identity with a missing token file fails"
like "$out" 'web identity token file' "... naming the token file"
write_conf container
out=$(ws AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$MP/v2/credentials/task-1" AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong -- st check 2>&1)
is "$?" 3 "container endpoint with a wrong authorization token: exits 3"
like "$out" 'HTTP 401' "... with the endpoint's 401"
out=$(ws AWS_CONTAINER_CREDENTIALS_FULL_URI="http://192.0.2.1/creds" -- st check 2>&1)
is "$?" 2 "container full URI over plain http to a non-loopback host: exits 2"
write_conf profile:nosuch
out=$(ws -- st check 2>&1)
is "$?" 2 "a profile in neither file: exits 2"
like "$out" 'profile "nosuch" is in neither' "... naming the profile"
write_conf profile:broken
out=$(ws -- st check 2>&1)
is "$?" 3 "credential_process printing junk: exits 3"
like "$out" 'credential_process: the output is not JSON' "... saying so"
write_conf profile:nokeys
out=$(ws -- st check 2>&1)
is "$?" 2 "a profile without credentials: exits 2"

ctl "expired=1"
for src in imds web-identity container; do
  write_conf "$src"
  out=$(ws "${IMDS[@]}" "${WI[@]}" "${CT[@]}" -- st check 2>&1)
  is "$?" 3 "$src handing out expired credentials: exits 3"
  like "$out" "credentials from $src expired already" "... saying they expired"
done
ctl "expired=0&malformed=1"
for src in imds web-identity container; do
  write_conf "$src"
  out=$(ws "${IMDS[@]}" "${WI[@]}" "${CT[@]}" -- st check 2>&1)
  is "$?" 3 "$src with a malformed answer: exits 3"
  like "$out" 'not a JSON object|not XML' "... saying the answer is malformed"
done
ctl "malformed=0&stall=30"
write_conf imds
start=$SECONDS
out=$(ws "${IMDS[@]}" -- st check 2>&1)
st=$?
ok $([ "$st" -eq 3 ] && echo 0 || echo 1) "imds that never answers: exits 3 (got $st)"
[ $((SECONDS - start)) -le 20 ]
ok $? "... after a bounded wait ($((SECONDS - start)) s), not a hang"
ctl "stall=0"

# ---- temporary credentials refreshed during a long multipart upload ----
# Credentials live 12 s; the upload takes about 16 s (data trickles in),
# the S3 front refuses any request signed with an expired token.  (12, not
# 8: walship refreshes with a quarter of the life left, and the stub keeps
# whole seconds, so 8 left a margin of 1 s that a loaded machine can eat.)
ctl "ttl=12"
for src in imds web-identity; do
  write_conf "$src"
  before=$(stat tokens_seen)
  exp_before=$(stat s3_expired)
  out=$({ for _ in 1 2 3 4 5 6 7 8; do head -c 2000000 /dev/urandom; sleep 2; done; } |
    ws "${IMDS[@]}" "${WI[@]}" WALSHIP_LOG_LEVEL=debug -- st put --raw - "slow/$src" 2>&1)
  st=$?
  is "$st" 0 "$src: a 16 s multipart upload with 12 s credentials succeeds" ||
    diag "$(printf '%s\n' "$out" | grep -v DEBUG | tail -3)" \
      "$(reqs | python3 -c 'import json,sys; print([(x["method"], x.get("token_left")) for x in json.load(sys.stdin)[-12:]])')"
  seen=$(( $(stat tokens_seen) - before ))
  ok $([ "$seen" -ge 2 ] && echo 0 || echo 1) "... signed with $seen session tokens (refreshed before expiry)"
  is "$(( $(stat s3_expired) - exp_before ))" 0 "... and no request carried an expired token"
  like "$out" 'credentials refreshed from' "... the refresh is logged at debug"
  printf '%s\n' "$out" >>"$T/all-output"
done
ctl "ttl=3600"

# ---- secrets never printed ----
all=$(cat "$T/all-output")
if grep -qE 'wstok\.|ctok-secret|wi-token|testing' <<<"$all"; then
  ok 1 "no secret key, session token, container or web identity token in any output"
  diag "$(grep -E 'wstok\.|ctok-secret|wi-token|testing' <<<"$all" | head -3)"
else
  ok 0 "no secret key, session token, container or web identity token in any output"
fi

# ---- integrity headers on every upload ----
write_conf static "access_key_id = test:tester" "secret_access_key = testing"
head -c 300000 /dev/urandom >"$T/files/small"
head -c 12000000 /dev/urandom >"$T/files/big"
n0=$(reqs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
t "single PUT" ws -- st put --raw "$T/files/small" int/small
t "multipart PUT (3 parts)" ws -- st put --raw "$T/files/big" int/big
t "read back the multipart object" ws -- st get --raw int/big "$T/files/big.back"
cmp -s "$T/files/big" "$T/files/big.back"
ok $? "... identical"
summary=$(reqs | python3 -c "
import json,sys
r=json.load(sys.stdin)[$n0:]
puts=[x for x in r if x['method']=='PUT']
print(len(puts), sum(1 for x in puts if x.get('md5_ok')), sum(1 for x in puts if 'partNumber' in x['query']))")
read -r nput nmd5 nparts <<<"$summary"
is "$nparts" 3 "the multipart upload sent 3 parts"
is "$nmd5" "$nput" "every PUT (single and each part: $nput) carried a correct Content-MD5"
ctl "s3_bad_etag=1"
out=$(ws -- st put --raw "$T/files/small" int/badetag 2>&1)
is "$?" 3 "a PUT whose answer has an ETag that is not the body's MD5: exits 3"
like "$out" 'ETag 0123456789abcdef0123456789abcdef, but the MD5 of the body sent is' "... saying which"
ctl "s3_bad_etag=0"
write_conf static "access_key_id = test:tester" "secret_access_key = testing" "checksum = sha256"
n0=$(reqs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
t "checksum = sha256: single PUT" ws -- st put --raw "$T/files/small" int/small256
out=$(ws -- st put --raw "$T/files/big" int/big256 2>&1)
st=$?
summary=$(reqs | python3 -c "
import json,sys
r=json.load(sys.stdin)[$n0:]
puts=[x for x in r if x['method']=='PUT']
create=[x for x in r if x['method']=='POST' and x['query']=='uploads']
print(len(puts), sum(1 for x in puts if x.get('sha256_ok')), sum(1 for x in create if x.get('x-amz-checksum-algorithm')=='SHA256'))")
read -r nput nsha ncreate <<<"$summary"
is "$nsha" "$nput" "checksum = sha256: every PUT ($nput) carried a correct x-amz-checksum-sha256"
is "$ncreate" 1 "... and CreateMultipartUpload named the algorithm"
# Swift's s3api refuses ChecksumSHA256 in CompleteMultipartUpload
# (MalformedXML): the driver completes without, says so, and goes on with
# Content-MD5 (docs/S3.md)
is "$st" 0 "checksum = sha256: a multipart upload to Swift completes (exit $st)"
like "$out" "refused the part checksums of CompleteMultipartUpload \\(MalformedXML.*using Content-MD5 from now on" \
  "... with a warning that names the fallback"
t "... and reads back" ws -- st get --raw int/big256 "$T/files/big256.back"
cmp -s "$T/files/big" "$T/files/big256.back"
ok $? "... equal to what was sent"

# ---- server-side encryption headers ----
KEY=arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
write_conf static "access_key_id = test:tester" "secret_access_key = testing" "sse = aws:kms" \
  "sse_kms_key_id = $KEY" "sse_bucket_key = true"
ctl "s3_deny_sse=1"
n0=$(reqs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
out=$(ws -- st put --raw "$T/files/small" sse/small 2>&1)
is "$?" 3 "sse = aws:kms with a KMS key the credentials may not use: exits 3"
like "$out" "SSE-KMS key $KEY" "... the error names the key id"
out=$(ws -- st put --raw "$T/files/big" sse/big 2>&1)
is "$?" 3 "... also for a multipart upload"
summary=$(reqs | python3 -c "
import json,sys
r=json.load(sys.stdin)[$n0:]
ok=lambda x: x.get('x-amz-server-side-encryption')=='aws:kms' and x.get('x-amz-server-side-encryption-aws-kms-key-id')=='$KEY' and x.get('x-amz-server-side-encryption-bucket-key-enabled')=='true'
print(sum(1 for x in r if x['method']=='PUT' and ok(x)), sum(1 for x in r if x['method']=='POST' and x['query']=='uploads' and ok(x)))")
read -r nsse ncsse <<<"$summary"
is "$nsse" 1 "the single PUT carried sse, the key id and the bucket key"
is "$ncsse" 1 "CreateMultipartUpload carried them too"
ctl "s3_deny_sse=0"
write_conf static "access_key_id = test:tester" "secret_access_key = testing" "sse = AES256"
out=$(ws -- st put --raw "$T/files/small" sse/aes 2>&1)
is "$?" 3 "sse = AES256 against a server without SSE (Swift s3api): exits 3"
like "$out" 'NotImplemented: Server-side encryption is not supported' "... with the server's reason"
write_conf static "access_key_id = test:tester" "secret_access_key = testing" "sse_kms_key_id = $KEY"
out=$(ws -- st check 2>&1)
is "$?" 2 "sse_kms_key_id without sse = aws:kms: exits 2"

# ---- region errors name the region to set ----
write_conf static "access_key_id = test:tester" "secret_access_key = testing" "aws_region = eu-west-1"
out=$(ws -- st check 2>&1)
is "$?" 3 "requests signed for eu-west-1 to a us-east-1 bucket: exits 3"
like "$out" 'set aws_region = us-east-1 in \[region us-east-1\]' "... naming the real region and the key to set"

done_testing
