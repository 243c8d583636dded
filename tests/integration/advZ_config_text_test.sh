#!/usr/bin/env bash
# Adversarial pass Z: characters that make a configuration line mean
# something other than it looks (DESIGN.md §7: read exactly as written, or
# refused).  A no-break space (U+00A0) was refused, but not the other
# Unicode space characters: with an ideographic space (U+3000, what a CJK
# input method types), a narrow no-break space (U+202F) or an em space
# before "# comment", the comment stayed in the value, and
# `url = s3://bucket/prod<U+3000># primary` archived under the prefix
# "prod<U+3000># primary".  Nor were invisible characters (zero-width
# space), line separators an editor may show as a line break (U+2028, NEL)
# and text direction controls (the "Trojan source" trick: the line is
# displayed in another order than it is read).
# No server needed: config check, and wal-push to a file:// region.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra rb pg_wal/archive_status
check() { "$WALSHIP" --config "$1" config check 2>&1; }
conf() { printf "$@" >"$T/bad.conf"; chmod 600 "$T/bad.conf"; }
refused() {  # name, pattern
  local o st
  o=$(check "$T/bad.conf"); st=$?
  is "$st" 2 "refused with exit 2: $1"
  like "$o" "$2" "  $1: the message"
}

# name, UTF-8 bytes (printf escapes), what the message says
while IFS='|' read -r name bytes why; do
  conf "[region a]\nurl = s3://bucket/prod${bytes}# primary\nendpoint = http://127.0.0.1:9\n"
  refused "$name before a # comment" "bad.conf:2: .*$why.* at column 23"
done <<'EOF'
an ideographic space (U+3000)|\xe3\x80\x80|U\+3000
a narrow no-break space (U+202F)|\xe2\x80\xaf|U\+202F
an em space (U+2003)|\xe2\x80\x83|U\+2003
an ogham space mark (U+1680)|\xe1\x9a\x80|U\+1680
a medium mathematical space (U+205F)|\xe2\x81\x9f|U\+205F
a zero-width space (U+200B)|\xe2\x80\x8b|U\+200B
a word joiner (U+2060)|\xe2\x81\xa0|U\+2060
EOF
conf '[global]\npgdata = /srv/a\xe2\x80\xa8key_file = /k\n[region a]\nurl = file://%s/ra\n' "$T"
refused "a line separator (U+2028), shown as a line break by some editors" "bad.conf:2: .*U\+2028.* at column 16"
conf '[global]\npgdata = /srv/a\xc2\x85key_file = /k\n[region a]\nurl = file://%s/ra\n' "$T"
refused "a next-line control (U+0085, NEL)" "bad.conf:2: .*U\+0085.* at column 16"
conf '[global]\nkey_file = /etc/walship/key \xe2\x80\xae# old\n[region a]\nurl = file://%s/ra\n' "$T"
refused "a right-to-left override (U+202E)" "bad.conf:2: .*U\+202E.* at column 29"
conf '[global]\npgdata = /srv/\xe2\x81\xa6a\xe2\x81\xa9\n[region a]\nurl = file://%s/ra\n' "$T"
refused "a directional isolate (U+2066)" "bad.conf:2: .*U\+2066.* at column 15"
conf '[global]\npgdata = /srv/a\xe2\x80\x8f\n[region a]\nurl = file://%s/ra\n' "$T"
refused "a right-to-left mark (U+200F)" "bad.conf:2: .*U\+200F"

# a file saved in Latin-1 or Windows-1252: its no-break space is one byte
conf '[region a]\nurl = s3://bucket/prod\xa0# primary\nendpoint = http://127.0.0.1:9\n'
refused "a Latin-1 no-break space (byte 0xA0) before a # comment" "bad.conf:2: byte 0xA0 at column 23"
conf '[global]\npgdata = /srv/n\xe9w/\xf0\x9f\x98\xa0\n[region a]\nurl = file://%s/ra\n' "$T"
out=$(check "$T/bad.conf"); is "$?" 0 "other bytes that are not UTF-8, and 0xA0 inside a character, are taken as written"

# other UTF-8 is taken as written
conf '[global]\npgdata = /srv/donn\xc3\xa9es/\xe6\x95\xb0\xe6\x8d\xae\n[region a]\nurl = file://%s/ra\n' "$T"
out=$(check "$T/bad.conf"); is "$?" 0 "letters outside ASCII (é, CJK) are read"
like "$out" "^pgdata += /srv/donn.es/" "  as written"

# end to end: an async region's spool_dir whose comment follows an
# ideographic space; wal-push acknowledged WAL into a spool directory
# named after the comment, where the shipper configured without it never looks
mkdir -p global
python3 -c "import struct,sys; open('global/pg_control','wb').write(struct.pack('=Q', 7311234567890123456) + bytes(8184))"
echo 15 >PG_VERSION
python3 "$TOP_SRCDIR/tests/lib/walseg.py" pg_wal/000000010000000000000001 000000010000000000000001 7311234567890123456
printf '[global]\nspool_dir = %s/spool\xe3\x80\x80# local spool\n[region ra]\nurl = file://%s/ra\nmode = async\n' "$T" "$T" \
  >push.conf
chmod 600 push.conf
o=$("$WALSHIP" --config "$T/push.conf" wal-push pg_wal/000000010000000000000001 2>&1); st=$?
is "$st" 2 "wal-push with an ideographic space before a comment: exit 2"
like "$o" "push.conf:2: .*U\+3000" "  names the line and the character"
[ -z "$(find "$T" -maxdepth 1 -name '*#*')" ]; ok $? "  no spool directory named after the comment"

done_testing
