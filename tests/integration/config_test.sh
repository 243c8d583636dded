#!/usr/bin/env bash
# walship config check, and the configuration lines of issue 11, with the
# built binary: every value's origin, secrets never printed, errors that
# name FILE:LINE and the key with exit status 2, and a wal-push that shows
# the misread lines no longer archive unencrypted or to the wrong key.
# No server needed: the regions are file://.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra rb pg_wal/archive_status
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
ok $? "keygen for the test key"
# What every run must not print, anywhere.
SECRET=S3cr3t-AWS-1234567890
PGPASS=pgpw-0987654321
TOKEN=$(printf 'TOK%.0s' $(seq 1 21846))   # 65538 bytes: a 64 KiB line
check() { "$WALSHIP" --config "$1" config check "${@:2}" 2>&1; }
leaks() { printf '%s' "$1" | grep -qF -e "$SECRET" -e "$PGPASS" -e "${TOKEN:0:64}"; }

cat >full.conf <<EOF
[global]
spool_dir = $T/spool   # c
compression = zstd:3 # fast
  key_file = $T/key
pg_conninfo = host=/run/postgresql password=$PGPASS dbname=postgres ; the primary

[region ra]
url = file://$T/ra   # primary
mode = sync

[region rb]
url = s3://bucket/pfx#frag
mode = async
access_key_id = AKIAEXAMPLE
secret_access_key = $SECRET
session_token = $TOKEN
part_size = 32MB
EOF
chmod 600 full.conf

out=$(WALSHIP_PARALLEL=3 "$WALSHIP" --config "$T/full.conf" --log-level warning config check 2>&1)
ok $? "config check exits 0 on a valid file"
like "$out" "^key_file += $T/key +# $T/full.conf:4\$" "the indented key_file is read, with FILE:LINE"
like "$out" "^spool_dir += $T/spool +# $T/full.conf:2\$" "spool_dir without its comment"
like "$out" "^compression += zstd:3 +# $T/full.conf:3\$" "compression = zstd:3 # fast is zstd:3"
like "$out" "^url += file://$T/ra +# $T/full.conf:8\$" "the url without its # comment"
like "$out" "^url += s3://bucket/pfx#frag +#" "a # without a blank before it stays in the value"
like "$out" "^parallel += 3 +# WALSHIP_PARALLEL\$" "an environment value names its variable"
like "$out" "^log_level += warning +# --log-level\$" "a flag value names its flag"
like "$out" "^rpo_seconds += 60s +# default\$" "a default says so"
like "$out" "^part_size += 32MB +#" "sizes are shown as walship read them"
like "$out" "^secret_access_key += <redacted> +# $T/full.conf:15\$" "the secret key is redacted, its origin shown"
like "$out" "^session_token += <redacted> +# $T/full.conf:16\$" "the 64 KiB session token is read and redacted"
like "$out" "^pg_conninfo += .*password=<redacted>" "the conninfo password is redacted"
like "$out" "^\[region ra\] +# region 1 of 2, mode sync\$" "regions in order, with their mode (1)"
like "$out" "^\[region rb\] +# region 2 of 2, mode async\$" "regions in order, with their mode (2)"
like "$out" "configuration is valid" "says it is valid"
like "$out" "^archive_async_process += false +# default\$" "the archiver process is off by default (opt-in)"
like "$out" "^archive_async_idle += 30s +# default\$" "its idle time defaults to 30 s"
leaks "$out"; ok $((!$?)) "no secret anywhere in the output (key, conninfo password, token)"

out=$("$WALSHIP" --config full.conf --key-file "$T/other-key" config check 2>&1)
like "$out" "^key_file += $T/other-key +# --key-file\$" "--key-file overrides the file and says so"
like "$out" "warning: .*other-key" "a key file that cannot be loaded is a warning"

# ---- no key_file: valid, loudly warned ----
printf '[global]\nspool_dir = %s/spool\n\n[region ra]\nurl = file://%s/ra\n' "$T" "$T" >nokey.conf
out=$(check nokey.conf); st=$?
is "$st" 0 "a file without key_file is valid"
like "$out" "^key_file += \(not set\) +# default\$" "key_file shown as not set"
like "$out" "warning: key_file is not set: WAL and backups are archived UNENCRYPTED" "and warned about"

# ---- refused: exit 2, FILE:LINE and the key, nothing of the secrets ----
refused() {  # name, file, pattern; extra environment before the command via env
  local name=$1 file=$2 pat=$3; shift 3
  local o st
  o=$(env "$@" "$WALSHIP" --config "$file" config check 2>&1); st=$?
  is "$st" 2 "refused with exit 2: $name"
  like "$o" "$pat" "  $name: the message"
  if leaks "$o"; then ok 1 "  $name: no secret printed"; else ok 0 "  $name: no secret printed"; fi
}
conf() { printf "$@" >"$T/bad.conf"; chmod 600 "$T/bad.conf"; }

conf '[global]\nspool_dir = /x\nspool_dir = /y\n'
refused "a key given twice" bad.conf "bad.conf:3: key \"spool_dir\" is given twice in \[global\] \(first on line 2\)"
conf '[global]\n[region a]\nurl = file:///a\n[global]\n'
refused "a second [global]" bad.conf "bad.conf:4: section \[global\] is given twice"
conf '[region a]\nurl = file:///a\n[region a]\n'
refused "a region given twice" bad.conf "bad.conf:3: region \"a\" is defined twice"
conf '[region a] url = file:///a\n'
refused "a setting after a section header" bad.conf "bad.conf:1: text after the section header"
conf '[global]\nkey_file: /k\n'
refused "key: value" bad.conf "bad.conf:2: key \"key_file\""
conf '[region a]\nurl = file:///a\nsecret_access_key = %s\nbogus = 1\n' "$SECRET"
refused "an unknown key after a secret" bad.conf "bad.conf:4: unknown key \"bogus\" in \[region a\]"
conf '[region a]\nurl = file:///a\nsecret_access_key = %s\n' "$SECRET"; chmod 644 bad.conf
refused "a secret in a file others can read" bad.conf "holds a secret .* but its mode is 0644"
# a libpq password is a secret too (DESIGN.md §4): 0644 let every local user read it
conf '[global]\npg_conninfo = host=/run/postgresql password=%s dbname=postgres\n' "$PGPASS"; chmod 644 bad.conf
refused "a pg_conninfo password in a file others can read" bad.conf "holds a secret .*pg_conninfo.* mode is 0644"
conf '[global]\npg_conninfo = postgresql://walship:%s@localhost/postgres\n' "$PGPASS"; chmod 640 bad.conf
refused "a password in a postgresql:// URI, in a file its group can read" bad.conf "mode is 0640"
conf '[global]\npg_conninfo = host=/run/postgresql sslpassword=%s dbname=postgres\n' "$PGPASS"; chmod 644 bad.conf
refused "an sslpassword (the client key's passphrase) in a file others can read" bad.conf "holds a secret .* mode is 0644"
conf '[global]\npg_conninfo = host=/run/postgresql sslpassword=%s dbname=postgres\n[region a]\nurl = file://%s/ra\n' \
  "$PGPASS" "$T"
out=$(check bad.conf)
like "$out" "sslpassword=<redacted>" "config check shows an sslpassword as <redacted>"
if leaks "$out"; then ok 1 "  and nowhere in clear"; else ok 0 "  and nowhere in clear"; fi
conf '[global]\npg_conninfo = host=/run/postgresql dbname=postgres\n[region a]\nurl = file://%s/ra\n' "$T"
chmod 644 bad.conf
out=$(check bad.conf); is "$?" 0 "pg_conninfo without a password, mode 0644: read"
conf '[global]\nkey_file = "/k"\n'
refused "a quoted value" bad.conf "bad.conf:2: key \"key_file\": the value starts with a quote"
conf '[global]\nkey_file =\n'
refused "an empty value" bad.conf "bad.conf:2: key \"key_file\": empty value"
refused "WALSHIP_KEYFILE (a typo)" nokey.conf "unknown variable WALSHIP_KEYFILE \(did you mean WALSHIP_KEY_FILE\?\)" \
  WALSHIP_KEYFILE=/k
refused "an empty WALSHIP_KEY_FILE" nokey.conf "WALSHIP_KEY_FILE is set but empty" WALSHIP_KEY_FILE=
refused "a directory" "$T/ra" "is not a regular file \(it is a directory\)"

# A 10 MB line is refused with its own line number (it was reported wrong).
{ printf '[global]\n; a comment\n\nsession_token = '; head -c $((10 << 20)) /dev/zero | tr '\0' a; printf '\n[region a]\n'; } >bad.conf
refused "a 10 MB line" bad.conf "bad.conf:4: key \"session_token\": the line is [0-9]+ bytes long"

# A comment line longer than inih's 199 bytes that ends in a setting.
{ printf '[global]\n# '; head -c 300 /dev/zero | tr '\0' x; printf ' spool_dir = /elsewhere\n[region a]\nurl = file:///a\n'; } >long.conf
out=$(check long.conf)
like "$out" "^spool_dir += /var/lib/walship/spool +# default\$" "no setting comes from inside a long comment"

# ---- the command itself ----
t_fail "walship config without check is a usage error" 2 "$WALSHIP" --config nokey.conf config
t_fail "walship config check takes no argument" 2 "$WALSHIP" --config nokey.conf config check extra
"$WALSHIP" help config | grep -q "usage: walship config check"; ok $? "walship help config"
"$WALSHIP" --help | grep -qE '^  config +check the configuration'; ok $? "config is in walship --help"
printf '[global]\nspool_dir = %s/spool\n' "$T" >noregion.conf
out=$(check noregion.conf); st=$?
is "$st" 2 "no region configured: exit 2"
like "$out" "no region is configured" "  and says so"

# ---- issue 11 end to end: what wal-push does with these lines ----
cat >push.conf <<EOF
[global]
spool_dir = $T/spool   # c
compression = none ; so that unencrypted data would show
  key_file = $T/key

[region ra]
url = file://$T/ra   # primary
EOF
# the test directory plays the data directory PostgreSQL runs wal-push in:
# its pg_control names the cluster, a segment in pg_wal its segment size
mkdir -p global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/000000010000000000000001 000000010000000000000001 7311234567890123456
printf '1\t0/3000000\tPLAINTEXT-MARKER-%s\n' "$(date +%s%N)" >pg_wal/00000002.history
t "wal-push with the lines of issue 11" "$WALSHIP" --config push.conf wal-push pg_wal/00000002.history
[ -f "$T/ra/wal/00000002.history" ]; ok $? "archived under wal/, not under a key holding the comment"
! grep -rqF PLAINTEXT-MARKER "$T/ra"; ok $? "the indented key_file was applied: the archive is encrypted"
[ -d "$T/spool" ] && [ -z "$(ls -d "$T"/spool?* 2>/dev/null)" ]; ok $? "the spool directory has no comment in its name"

# ---- the cloud keys of issue 15: credentials source, STS, IMDSv1, SSE, checksum ----
cat >cloud.conf <<EOF
[region c]
url = s3://bucket/p
credentials = profile:prod
sts_endpoint = http://127.0.0.1:9/
imds_v1 = true
sse = aws:kms
sse_kms_key_id = alias/walship
sse_bucket_key = true
checksum = sha256
EOF
out=$(check cloud.conf); st=$?
is "$st" 0 "config check accepts credentials, sts_endpoint, imds_v1, sse, sse_kms_key_id, sse_bucket_key, checksum"
like "$out" "^credentials += profile:prod +# cloud.conf:3\$" "credentials shown with its origin"
like "$out" "^sse += aws:kms +#" "sse shown"
like "$out" "^sse_kms_key_id += alias/walship +#" "sse_kms_key_id shown"
like "$out" "^checksum += sha256 +#" "checksum shown"
conf '[region a]\nurl = s3://b/p\ncredentials = instance\n'
refused "an unknown credentials source" bad.conf "bad.conf:3: .*unknown credentials source \"instance\""
conf '[region a]\nurl = s3://b/p\ncredentials = profile:\n'
refused "profile: without a name" bad.conf "bad.conf:3: .*profile name"
conf '[region a]\nurl = s3://b/p\nsse = aes\n'
refused "sse other than AES256 or aws:kms" bad.conf "bad.conf:3: .*bad value \"aes\" \(use AES256 or aws:kms\)"
conf '[region a]\nurl = s3://b/p\nchecksum = crc32\n'
refused "checksum other than md5 or sha256" bad.conf "bad.conf:3: .*bad value \"crc32\" \(use md5 or sha256\)"

# ---- the archiver process (docs/WAL.md "Archiving throughput") ----
conf '[global]\narchive_async_process = on\narchive_async_idle = 2min\n[region a]\nurl = file:///a\n'
out=$(check bad.conf); st=$?
is "$st" 0 "archive_async_process = on with archive_async_idle = 2min is valid"
like "$out" "^archive_async_process += true +# bad.conf:2\$" "archive_async_process shown"
like "$out" "^archive_async_idle += 120s +# bad.conf:3\$" "archive_async_idle shown (in seconds)"
conf '[global]\narchive_async_process = sometimes\n[region a]\nurl = file:///a\n'
refused "archive_async_process not a boolean" bad.conf "bad.conf:2: .*archive_async_process"
conf '[global]\narchive_async_idle = 0\n[region a]\nurl = file:///a\n'
refused "archive_async_idle = 0" bad.conf "bad.conf:2: .*archive_async_idle \"0\" is out of range"
conf '[global]\narchive_async_idle = 2d\n[region a]\nurl = file:///a\n'
refused "archive_async_idle over a day" bad.conf "bad.conf:2: .*out of range \(1s to 1d\)"
conf '[global]\narchive_async_idle = soon\n[region a]\nurl = file:///a\n'
refused "archive_async_idle not a duration" bad.conf "bad.conf:2: .*archive_async_idle.*bad duration"

# ---- what the values mean together (docs/CONFIG.md, "What is refused after reading") ----
mkdir -p r1/sub r10
conf '[global]\nspool_dir = %s/spool\n[region a]\nurl = file://%s/r1\n[region b]\nurl = file://%s//r1/./\n' "$T" "$T" "$T"
refused "two regions in one directory" bad.conf \
  "region \"a\" \(file://$T/r1, bad.conf:4\) and region \"b\" \(file://$T//r1/\./, bad.conf:6\) are the same place"
ln -sfn r1 "$T/r1-link"
conf '[global]\nspool_dir = %s/spool\n[region a]\nurl = file://%s/r1\n[region b]\nurl = file://%s/r1-link\n' "$T" "$T" "$T"
refused "two regions in one directory, one through a symlink" bad.conf "region \"a\" .* and region \"b\" .* are the same place"
conf '[global]\nspool_dir = %s/spool\n[region a]\nurl = file://%s/r1\n[region b]\nurl = file://%s/r1/sub\n' "$T" "$T" "$T"
refused "a region inside another" bad.conf "region \"b\" \(file://$T/r1/sub, bad.conf:6\) is inside region \"a\" \(file://$T/r1, bad.conf:4\)"
conf '[global]\nspool_dir = %s/r1/spool\n[region a]\nurl = file://%s/r1\n' "$T" "$T"
refused "the spool inside a region" bad.conf "spool_dir \($T/r1/spool, bad.conf:2\) is inside region \"a\""
conf '[global]\nspool_dir = %s/r1\n[region a]\nurl = file://%s/r1/a\n' "$T" "$T"
refused "a region inside the spool" bad.conf "region \"a\" .* is inside spool_dir \($T/r1, bad.conf:2\)"
conf '[region a]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9000\n[region b]\nurl = s3://bkt/prod/\nendpoint = http://127.0.0.1:9000/\n'
refused "two S3 regions, one bucket and prefix on one endpoint" bad.conf "region \"a\" \(s3://bkt/prod, bad.conf:2\) and region \"b\" \(s3://bkt/prod/, bad.conf:5\) are the same place"
conf '[global]\nspool_dir = %s/spool\n[region a]\nurl = file://%s/r1\n[region b]\nurl = file://%s/r10\n' "$T" "$T" "$T"
out=$(check bad.conf); is "$?" 0 "regions /r1 and /r10 are two places"
conf '[region a]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9000\n[region b]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9001\n'
out=$(check bad.conf); is "$?" 0 "one bucket and prefix on two endpoints are two places"

conf '[global]\nspool_dir = spool\n[region a]\nurl = file:///a\n'
refused "a relative spool_dir" bad.conf "bad.conf:2: key \"spool_dir\": \"spool\" is a relative path; PostgreSQL runs archive_command"
conf '[global]\nold_key_files = /k/1, old.key\n[region a]\nurl = file:///a\n'
refused "a relative old key file" bad.conf "bad.conf:2: key \"old_key_files\": \"old.key\" is a relative path"
conf '[region a]\nurl = s3://bkt/p\nca_file = ca.pem\n'
refused "a relative ca_file" bad.conf "bad.conf:3: key \"ca_file\" of \[region a\]: \"ca.pem\" is a relative path"
refused "a relative WALSHIP_KEY_FILE" nokey.conf "WALSHIP_KEY_FILE: key \"key_file\": \"key\" is a relative path" WALSHIP_KEY_FILE=key
o=$(WALSHIP_CONFIG=nokey.conf "$WALSHIP" config check 2>&1); st=$?
is "$st" 2 "a relative WALSHIP_CONFIG: exit 2"
like "$o" "environment: WALSHIP_CONFIG: \"nokey.conf\" is a relative path" "  and says so"
for k in retry_deadline connect_timeout io_timeout archive_timeout; do
  conf '[global]\n%s = 0s\n[region a]\nurl = file:///a\n' "$k"
  refused "$k = 0" bad.conf "bad.conf:2: key \"$k\": 0 is not a limit: .* must be at least 1s"
done

# end to end: the key named relative to where it was tried ($T, which
# here also plays the data directory wal-push runs in) is refused even
# there, and nothing is archived
sed "s|^  key_file = .*|key_file = key|" push.conf >rel.conf; chmod 600 rel.conf
printf '1\t0/3000000\tPLAINTEXT-MARKER-%s\n' "$(date +%s%N)" >pg_wal/00000003.history
o=$("$WALSHIP" --config "$T/rel.conf" wal-push pg_wal/00000003.history 2>&1); st=$?
is "$st" 2 "wal-push with a relative key_file: exit 2"
like "$o" "rel.conf:4: key \"key_file\": \"key\" is a relative path" "  names the line and the key"
[ ! -e "$T/ra/wal/00000003.history" ]; ok $? "  nothing archived"
# a configuration file its group can write: refused, for every command
cp push.conf gw.conf; chmod 664 gw.conf
o=$("$WALSHIP" --config "$T/gw.conf" wal-push pg_wal/00000003.history 2>&1); st=$?
is "$st" 2 "wal-push with a group-writable configuration file: exit 2"
like "$o" "configuration file \"$T/gw.conf\" is writable by its group \(mode 0664\)" "  names the file and its mode"
[ ! -e "$T/ra/wal/00000003.history" ]; ok $? "  nothing archived"
chmod 646 gw.conf
refused "a configuration file others can write" "$T/gw.conf" "is writable by others \(mode 0646\)"
chmod 644 gw.conf
out=$(check gw.conf); is "$?" 0 "a configuration file of mode 0644 (no secret in it) is read"

# A password in an endpoint's URL (adversarial pass Q): it was accepted by
# config check ("configuration is valid") and printed in clear, though the
# S3 driver refuses it when the region is opened.  Refused, never echoed.
conf "[region a]\nurl = s3://bkt/prod\nendpoint = http://u:$SECRET@127.0.0.1:9000\n"
refused "an endpoint with USER:PASS@" bad.conf "bad.conf:3: key \"endpoint\": a URL with a user name or password"
conf "[region a]\nurl = s3://bkt/prod\nsts_endpoint = https://$SECRET@sts.example\n"
refused "an sts_endpoint with USER@" bad.conf "bad.conf:3: key \"sts_endpoint\": a URL with a user name or password"
# an @ in the endpoint's path is no user name, but a path is refused (the
# S3 driver refused it when it opened the region: adversarial pass Z)
conf '[region a]\nurl = s3://bkt/prod\nendpoint = http://127.0.0.1:9000/x@y\n'
refused "an @ in the endpoint's path: refused for the path" bad.conf "bad.conf:3: key \"endpoint\": .*a path after it"

# One directory under two paths, a bind mount (adversarial pass Q): the
# paths and their realpath() differ, and two regions over one directory
# were accepted: every segment "archived to both", one copy in truth.
mkdir -p "$T/bm"
if [ "$(id -u)" = 0 ] && mount --bind "$T/ra" "$T/bm" 2>/dev/null; then
  conf "[region a]\nurl = file://$T/ra\n[region b]\nurl = file://$T/bm\n"
  refused "two regions over one directory (a bind mount)" bad.conf "region \"a\" .* and region \"b\" .* are the same place"
  umount "$T/bm"
else
  for i in 1 2 3; do ok 0 "# SKIP no bind mount here (not root, or no CAP_SYS_ADMIN)"; done
fi

done_testing
