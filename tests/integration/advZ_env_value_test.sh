#!/usr/bin/env bash
# Adversarial pass Z: WALSHIP_<KEY> values are taken literally, and so a
# carriage return (an environment file written on Windows, or
# $(cat file) of one), a trailing blank, or a Unicode space kept in the
# value what it does not show: WALSHIP_SPOOL_DIR="/var/lib/walship/spool\r"
# made wal-push acknowledge WAL into a spool directory "spool\r" (config
# check showed the path as if it were right: the carriage return does not
# show), which a shipper started without it never drains.  Such values are
# refused now (exit 2; wal-fetch: 250), naming the variable and the
# character.  An old_key_files list with no entry in it ("," from two unset
# variables) is refused as an empty value is.  No server needed: file://
# regions.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra pg_wal/archive_status global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/000000010000000000000001 000000010000000000000001 7311234567890123456
printf '[region ra]\nurl = file://%s/ra\nmode = async\n' "$T" >w.conf
chmod 600 w.conf

o=$(WALSHIP_SPOOL_DIR="$T/spool"$'\r' "$WALSHIP" --config "$T/w.conf" wal-push pg_wal/000000010000000000000001 2>&1); st=$?
is "$st" 2 "wal-push with a carriage return at the end of WALSHIP_SPOOL_DIR: exit 2"
like "$o" "WALSHIP_SPOOL_DIR holds a carriage return at character" "  names the variable and the character"
[ -z "$(find "$T" -maxdepth 1 -name "spool*")" ]; ok $? "  no spool directory was made, nothing acknowledged"

env_refused() {  # name, pattern, VAR=VALUE
  local o st
  o=$(env "$3" "$WALSHIP" --config "$T/w.conf" config check 2>&1); st=$?
  is "$st" 2 "refused with exit 2: $1"
  like "$o" "$2" "  $1: the message"
}
env_refused "a trailing blank in WALSHIP_SPOOL_DIR" "WALSHIP_SPOOL_DIR ends with a blank" "WALSHIP_SPOOL_DIR=$T/spool "
env_refused "a leading tab in WALSHIP_KEY_FILE" "WALSHIP_KEY_FILE starts with a blank" "WALSHIP_KEY_FILE=	$T/key"
env_refused "an ideographic space before a comment in WALSHIP_PGDATA" "WALSHIP_PGDATA holds a U\+3000 at character 12" \
  "WALSHIP_PGDATA=/srv/pgdata"$'\xe3\x80\x80'"# main"
env_refused "a line feed in WALSHIP_KEY_FILE" "WALSHIP_KEY_FILE holds a control character 0x0a" "WALSHIP_KEY_FILE=$T/key"$'\n'

o=$(WALSHIP_PG_CONNINFO=$'host=/run/postgresql\tdbname=postgres' "$WALSHIP" --config "$T/w.conf" config check 2>&1)
is "$?" 0 "a tab inside a value (a conninfo) is read"
o=$(WALSHIP_PGDATA="/srv/donn"$'\xc3\xa9'"es" "$WALSHIP" --config "$T/w.conf" config check 2>&1)
is "$?" 0 "letters outside ASCII are read"

# an old_key_files list with no entry: WALSHIP_OLD_KEY_FILES="$OLD1,$OLD2"
# with both unset replaced the file's old keys with none, without a word
printf '[global]\nold_key_files = %s/old1.key\n[region ra]\nurl = file://%s/ra\n' "$T" "$T" >o.conf
chmod 600 o.conf
o=$(WALSHIP_OLD_KEY_FILES=, "$WALSHIP" --config "$T/o.conf" config check 2>&1); st=$?
is "$st" 2 "WALSHIP_OLD_KEY_FILES=, (two unset variables): refused, the file's old keys not dropped"
like "$o" "WALSHIP_OLD_KEY_FILES: key \"old_key_files\": no key file in \",\"" "  says so"
printf '[global]\nold_key_files = , ,\n[region ra]\nurl = file://%s/ra\n' "$T" >o.conf
o=$("$WALSHIP" --config "$T/o.conf" config check 2>&1); st=$?
is "$st" 2 "old_key_files = , , in the file: refused like an empty value"

# restore_command: a bad environment is no "not in the archive"
o=$(WALSHIP_SPOOL_DIR="$T/spool"$'\r' "$WALSHIP" --config "$T/w.conf" wal-fetch 000000010000000000000001 \
  "$T/pg_wal/RECOVERYXLOG" 2>&1); st=$?
is "$st" 250 "wal-fetch with a carriage return in WALSHIP_SPOOL_DIR: exit 250, not 1 or 2"

done_testing
