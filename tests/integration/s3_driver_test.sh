#!/bin/bash
# tests/integration/s3_driver_test.sh: the s3:// driver and `walship st`
# against real Swift s3api regions on loopback.
#
# Starts two regions (us-east-1, and eu-west-1 with 100-key listing pages so
# that its listing crosses pages with few keys), the fault proxy in front of
# us-east-1, and a second, https swift-proxy of us-east-1 with a self-signed
# certificate for 127.0.0.1 and *.s3.localhost.  Runs the TAP program
# tests/integration/s3_driver_test (its results are numbered into ours),
# then the CLI: st check, put, get, ls, rm and their exit statuses.
#
# Environment: S3_DRIVER_TEST (the program; default the built one),
# S3_KEYS_A / S3_KEYS_B (keys for the listing checks), KEEP_TMP=1.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=../lib/tap.sh
. "$(dirname "$0")/../lib/tap.sh"
# shellcheck source=../lib/swift.sh
. "$TOP_SRCDIR/tests/lib/swift.sh"
# shellcheck source=../lib/faultproxy.sh
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"

for need in swift-proxy-server swift-object-server memcached curl python3; do
  command -v "$need" >/dev/null 2>&1 || skip_all "$need is not installed"
done
PROG=${S3_DRIVER_TEST:-$TOP_BUILDDIR/tests/integration/s3_driver_test}
[ -x "$PROG" ] || { echo "Bail out! $PROG is not built"; exit 1; }
[ -x "$WALSHIP" ] || { echo "Bail out! $WALSHIP is not built"; exit 1; }
started=$SECONDS

# ---- servers: every one is stopped at exit, even after a failure ----
read -r PA PB FL FC TL <<<"$(free_ports 5 | tr '\n' ' ')"
# tap.sh's watchdog is a subshell waiting on `sleep`: killing the subshell
# leaves the sleep holding our stdout, and the TAP driver reading it waits
# for that sleep.  Stop both (this hook runs last).
# shellcheck disable=SC2016 # expanded when the hook runs
on_exit 'kill "$_tap_watchdog" $(pgrep -P "$_tap_watchdog" 2>/dev/null) 2>/dev/null'
on_exit "swift_stop '$T/a'; swift_stop '$T/b'"
if ! { swift_launch "$T/a" us-east-1 "$PA" &&
  SWIFT_S3API_EXTRA="max_bucket_listing = 100" swift_launch "$T/b" eu-west-1 "$PB" &&
  swift_wait "$T/a" "$T/b"; }; then
  echo "Bail out! swift did not start"
  exit 1
fi
echo "# two regions up after $((SECONDS - started)) s (us-east-1 :$PA, eu-west-1 :$PB)"
on_exit "fp_stop '$T/fp'"
fp_start "$FL" "$PA" "$FC" "$T/fp" || { echo "Bail out! the fault proxy did not start"; exit 1; }

# The https proxy: the same region (rings, servers, memcached) behind a
# second proxy-server with cert_file/key_file; its PID goes into the
# region's pids, so swift_stop stops it too.
TLS_ENV=()
if command -v openssl >/dev/null 2>&1; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:s3.localhost,DNS:*.s3.localhost" \
    -keyout "$T/tls.key" -out "$T/tls.crt" >/dev/null 2>&1
  ok $? "self-signed certificate for 127.0.0.1 and *.s3.localhost"
  sed -e "s|^bind_port = .*|bind_port = $TL\\ncert_file = $T/tls.crt\\nkey_file = $T/tls.key|" \
    -e 's|^log_name = \(.*\)-proxy$|log_name = \1-tlsproxy|' "$T/a/proxy-server.conf" >"$T/a/tls-proxy-server.conf"
  swift-proxy-server "$T/a/tls-proxy-server.conf" -v </dev/null >"$T/a/log/tlsproxy.log" 2>&1 &
  echo $! >>"$T/a/pids"
  wait_for 60 curl -sf --noproxy '*' --max-time 2 --cacert "$T/tls.crt" "https://127.0.0.1:$TL/healthcheck"
  if ok $? "https proxy of us-east-1 answers with the self-signed certificate"; then
    TLS_ENV=(S3_TLS_PORT="$TL" S3_CA_FILE="$T/tls.crt")
  else
    diag "$(tail -5 "$T/a/log/tlsproxy.log")"
  fi
else
  echo "# openssl is not installed: no TLS checks"
fi

# ---- the driver: tests/integration/s3_driver_test ----
# Its TAP results are renumbered into this script's; its own exit status
# and plan are checked too (a crash or a sanitizer abort fails here).
run_tap() {   # run_tap NAME COMMAND...
  local name=$1 line n=0 plan=-1 st=-1
  shift
  while IFS= read -r line; do
    case $line in
      "ok "*) n=$((n + 1)); ok 0 "${line#ok * - }" ;;
      "not ok "*) n=$((n + 1)); ok 1 "${line#not ok * - }" ;;
      1..*) plan=${line#1..}; plan=${plan%% *} ;;
      "@@exit "*) st=${line#@@exit } ;;
      "Bail out!"*) echo "# $line" ;;
      *) echo "$line" ;;
    esac
  done < <("$@"; echo "@@exit $?")
  is "$st" 0 "$name exited 0"
  [ "$plan" -gt 0 ] && [ "$n" -eq "$plan" ]
  ok $? "$name ran its whole plan ($n of $plan checks)"
}
t0=$SECONDS
run_tap s3_driver_test env S3_PORT_A="$PA" S3_PORT_B="$PB" S3_FAULT_PORT="$FL" S3_FAULT_CONTROL="$FC" "${TLS_ENV[@]}" \
  S3_BUCKET=drvtest S3_KEYS_A="${S3_KEYS_A:-1100}" S3_KEYS_B="${S3_KEYS_B:-250}" "$PROG"
echo "# s3_driver_test: $((SECONDS - t0)) s"

# ---- the command line: walship st ----
swift_create_bucket "$PA" us-east-1 walship >/dev/null
ok $? "bucket walship in us-east-1"
swift_create_bucket "$PB" eu-west-1 walship >/dev/null
ok $? "bucket walship in eu-west-1"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
ok $? "walship keygen"
mkdir -p "$T/spool" "$T/files"

# write_conf FILE [EU_SECRET]: two regions, 5 MiB parts
write_conf() {
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $T/spool
parallel = 2
retry_deadline = 5
connect_timeout = 2
io_timeout = 5

[region us-east-1]
url = s3://walship/it
endpoint = http://127.0.0.1:$PA
path_style = true
part_size = 5MB
access_key_id = test:tester
secret_access_key = testing

[region eu-west-1]
url = s3://walship/it
endpoint = http://127.0.0.1:$PB
path_style = true
part_size = 5MB
access_key_id = test:tester
secret_access_key = ${2:-testing}
CONF
  chmod 600 "$1"
}
CONF=$T/walship.conf
write_conf "$CONF"
ws() { "$WALSHIP" --config "$CONF" "$@"; }

# st check: both regions
out=$(ws st check 2>&1)
is "$?" 0 "st check with two regions exits 0"
is "$(printf '%s\n' "$out" | grep -c '^region .*: ok ')" 2 "st check prints one ok line per region"
like "$out" '^region us-east-1 \(s3://walship/it, sync\): ok ' "... for us-east-1"
like "$out" 'region eu-west-1 \(s3://walship/it, sync\): ok ' "... and for eu-west-1"
out=$(ws --region eu-west-1 st check 2>&1)
is "$?" 0 "st check --region eu-west-1 exits 0"
is "$(printf '%s\n' "$out" | grep -c ': ok ')" 1 "... and checks that region only"

# st check: a wrong secret for eu-west-1
write_conf "$T/badsecret.conf" not-the-secret
out=$("$WALSHIP" --config "$T/badsecret.conf" st check 2>&1)
is "$?" 3 "st check with a wrong secret for eu-west-1 exits 3"
like "$out" '^region eu-west-1: FAILED: .*signature does not match' "... eu-west-1 fails: signature does not match"
like "$out" 'region eu-west-1 \(bucket walship\)' "... the message names region and bucket"
like "$out" '^region us-east-1 \(s3://walship/it, sync\): ok ' "... and us-east-1 still reports ok"
out=$("$WALSHIP" --config "$T/badsecret.conf" --region us-east-1 st check 2>&1)
is "$?" 0 "st check --region us-east-1 with that configuration exits 0"

# encoded objects belong to a repository: without its identity, refused
head -c 300000 /dev/urandom >"$T/files/small"
t_fail "st put (encoded) to a region with no repository identity exits 3" 3 \
  ws --region us-east-1 st put "$T/files/small" wal/000000010000000000000001
like "$T_OUT" 'identity.json is missing' "... and says the identity is missing"
# the first wal-push creates it in every (sync) region
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/files/0000000100000000000000A0" 0000000100000000000000A0 7311234567890123456
t "wal-push of a segment creates the identity in both regions" ws wal-push "$T/files/0000000100000000000000A0"
out=$(ws st check 2>&1)
like "$out" '^region us-east-1: identity: cluster 7311234567890123456, PostgreSQL 15, 16777216-byte WAL segments' \
  "st check shows us-east-1's identity"
like "$out" '^region eu-west-1: identity: cluster 7311234567890123456' "st check shows eu-west-1's identity"

# st put / get, encoded (the default) and --raw, in both regions
head -c $((11 * 1024 * 1024 + 12345)) /dev/urandom >"$T/files/big"   # 3 parts of 5 MiB, raw
for r in us-east-1 eu-west-1; do
  t "st put (encoded) to $r" ws --region "$r" st put "$T/files/small" wal/000000010000000000000001
  t "st get (decoded) from $r" ws --region "$r" st get wal/000000010000000000000001 "$T/files/small.$r"
  cmp -s "$T/files/small" "$T/files/small.$r"
  ok $? "decoded bytes from $r equal the original"
  t "st get --raw of the encoded object from $r" ws --region "$r" st get --raw wal/000000010000000000000001 "$T/files/enc.$r"
  ! cmp -s "$T/files/small" "$T/files/enc.$r" && [ -s "$T/files/enc.$r" ]
  ok $? "... the stored object is not the plain bytes"
  t "st put --raw of 11 MiB to $r" ws --region "$r" st put "$T/files/big" raw/big --raw
  t "st get --raw from $r" ws --region "$r" st get raw/big "$T/files/big.$r" --raw
  cmp -s "$T/files/big" "$T/files/big.$r"
  ok $? "raw bytes from $r equal the original"
  t_fail "st get (decoded) of a raw object from $r fails" 3 ws --region "$r" st get raw/big "$T/files/bad.$r"
  [ ! -e "$T/files/bad.$r" ] && ! compgen -G "$T/files/*walship-tmp*" >/dev/null
  ok $? "... and leaves no file behind"
done
printf 'via stdin' | ws st put - raw/stdin --raw >/dev/null 2>&1
ok $? "st put from stdin (first region by default)"
is "$(ws --region us-east-1 st get raw/stdin - --raw 2>/dev/null)" "via stdin" "st get to stdout"

# st ls
out=$(ws --region eu-west-1 st ls 2>&1)
is "$?" 0 "st ls exits 0"
is "$out" "$(printf 'identity.json\nraw/big\nwal/000000010000000000000001\nwal/0000000100000000000000A0')" \
  "st ls lists the region's keys in order"
out=$(ws st ls raw/ 2>&1)
is "$out" "$(printf 'raw/big\nraw/stdin')" "st ls PREFIX lists that prefix only"
out=$(ws st ls --long raw/ 2>&1)
like "$out" "^ *$((11 * 1024 * 1024 + 12345))  20[0-9-]+T[0-9:]+Z  raw/big$" "st ls --long shows size, time and key"
like "$out" "^2 objects, $((11 * 1024 * 1024 + 12345 + 9)) bytes$" "st ls --long sums up"
is "$(ws st ls nothing/ 2>&1)" "" "st ls of an empty prefix prints nothing"

# st rm; st get of a missing key
t "st rm" ws --region eu-west-1 st rm raw/big
is "$(ws --region eu-west-1 st ls raw/ 2>&1)" "" "the removed key is not listed"
t_fail "st rm of a missing key exits 1 (a repair naming the wrong key must not read as done)" 1 \
  ws --region eu-west-1 st rm raw/big
like "$T_OUT" 'raw/big' "... the message names the key"
t_fail "st get --raw of a removed key exits 1" 1 ws --region eu-west-1 st get raw/big "$T/files/gone" --raw
like "$T_OUT" 'raw/big' "... the message names the key"
[ ! -e "$T/files/gone" ]
ok $? "... and writes no file"
t_fail "st get (decoded) of a missing key exits 1" 1 ws st get wal/000000010000000F000000FF "$T/files/gone"
t_fail "st get of an invalid key exits 2" 2 ws st get ../etc/passwd "$T/files/gone"
t_fail "st with an unknown region exits 2" 2 ws --region nowhere st ls

# a secret in a file others can read
write_conf "$T/open.conf"
chmod 644 "$T/open.conf"
t_fail "a configuration holding secret_access_key with mode 0644 exits 2" 2 "$WALSHIP" --config "$T/open.conf" st ls
like "$T_OUT" 'mode is 0644' "... and says why"
t_fail "... also for st check" 2 "$WALSHIP" --config "$T/open.conf" st check

# a bare DR host reading from an endpoint whose certificate a private CA
# signed: --ca-file, and DR options without --from are refused
if [ ${#TLS_ENV[@]} -gt 0 ]; then
  dr() { AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing "$WALSHIP" --from s3://walship/it \
    --endpoint "https://127.0.0.1:$TL" --path-style --region us-east-1 --key-file "$T/key" "$@"; }
  t "--from over https with --ca-file: st ls" dr --ca-file "$T/tls.crt" st ls wal/
  like "$T_OUT" 'wal/000000010000000000000001' "... lists the region's WAL"
  t_fail "... without --ca-file the certificate is refused (exit 3)" 3 dr st ls wal/
  like "$T_OUT" '[Cc]ertificate|SSL' "... and the message says it is the certificate"
else
  echo "# no https proxy: --ca-file not checked"
fi
AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing t_fail "an unreadable --ca-file exits 2 at once" 2 \
  "$WALSHIP" --from s3://walship/it --endpoint "https://127.0.0.1:$PA" --path-style --region us-east-1 \
  --key-file "$T/key" --ca-file "$T/no-such-ca.pem" st ls wal/
like "$T_OUT" 'ca_file .*no-such-ca.pem.* cannot be read' "... naming the file"
t_fail "--ca-file without --from exits 2" 2 "$WALSHIP" --config "$CONF" --ca-file /etc/hosts st ls
like "$T_OUT" '--ca-file goes with --from' "... and says so"
t_fail "--endpoint without --from exits 2" 2 "$WALSHIP" --config "$CONF" --endpoint http://127.0.0.1:1 st ls
like "$T_OUT" '--endpoint goes with --from' "... and says so"

echo "# total $((SECONDS - started)) s"
done_testing
