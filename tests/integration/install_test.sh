#!/bin/bash
# make install DESTDIR=...: the binary, walship(1) and the contrib files land
# where walship(1) and docs/OPERATIONS.md say, and the man page renders
# without a warning.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"

command -v make >/dev/null || skip_all "make is not installed"
[ -f "$TOP_BUILDDIR/Makefile" ] || skip_all "no configured build directory"

prefix=$(sed -n 's/^prefix = //p' "$TOP_BUILDDIR/Makefile")
docdir=$(sed -n 's/^docdir = //p' "$TOP_BUILDDIR/Makefile" | sed "s|\${datarootdir}|$prefix/share|; s|\${PACKAGE_TARNAME}|walship|; s|\$(datarootdir)|$prefix/share|")
mandir=$(sed -n 's/^mandir = //p' "$TOP_BUILDDIR/Makefile" | sed "s|\${datarootdir}|$prefix/share|; s|\$(datarootdir)|$prefix/share|")
D=$T/inst

make -C "$TOP_BUILDDIR" install DESTDIR="$D" >"$T/install.log" 2>&1
ok $? "make install DESTDIR=$D" || diag "$(tail -5 "$T/install.log")"

[ -x "$D$prefix/bin/walship" ]; ok $? "the binary is in $prefix/bin"
"$D$prefix/bin/walship" --version >/dev/null 2>&1; ok $? "the installed binary runs"
[ -f "$D$mandir/man1/walship.1" ]; ok $? "walship(1) is in $mandir/man1"
for u in walship-backup.service walship-backup.timer walship-ship.service walship-ship.timer; do
  [ -f "$D$prefix/lib/systemd/system/$u" ]; ok $? "$u is in $prefix/lib/systemd/system"
done
for f in walship walship-alerts.yml postgresql.conf.walship; do
  [ -f "$D$docdir/examples/$f" ]; ok $? "$f is in $docdir/examples"
done

page=$D$mandir/man1/walship.1
if command -v man >/dev/null; then
  warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  out=$(MANWIDTH=80 man -l "$page" 2>/dev/null)
elif command -v groff >/dev/null; then
  warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  out=$(groff -man -Tutf8 "$page" 2>/dev/null)
else
  warn=; out=
fi
if [ -n "$out" ]; then
  is "$warn" "" "the man page renders without warnings"
  like "$out" "WALSHIP\(1\)" "and has its title"
else
  ok 0 "# SKIP neither man nor groff is installed"
fi

# Every command, global key and region key is in the page.
src=$TOP_SRCDIR
missing=
cmds=$(sed -n 's/^    { "\([a-z-]*\)", ".*/\1/p' "$src/src/cmd/main.c")
for c in $cmds; do
  grep -qF ".SS \"walship ${c//-/\\-}" "$src/docs/walship.1" || missing="$missing $c"
done
# (it read src/main.c, which does not exist: no command was ever checked)
[ "$(printf '%s\n' $cmds | grep -c .)" -ge 16 ]; ok $? "the commands are read from src/cmd/main.c ($(echo $cmds))"
is "$missing" "" "every command in src/cmd/main.c has a section in walship(1)"
missing=
for k in $(grep -oE '^\| `[a-z_]+`' "$src/docs/CONFIG.md" | tr -d '|` '); do
  grep -q "^\.B.* $k\b" "$src/docs/walship.1" || grep -q "^\.B $k$" "$src/docs/walship.1" || missing="$missing $k"
done
is "$missing" "" "every key in docs/CONFIG.md is in walship(1)"

# The units point at the installed binary.
grep -h '^ExecStart=' "$D$prefix/lib/systemd/system/"walship-*.service | grep -vq "^ExecStart=$prefix/bin/walship "
[ $? -ne 0 ]; ok $? "the units run $prefix/bin/walship"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$D$prefix/lib/systemd/system/"walship-*.service >"$T/verify.log" 2>&1
  # Only complaints about what is outside DESTDIR (the binary under
  # $prefix, the installed man page) are expected.
  grep -v -e 'is not executable' -e "Command 'man walship(1)'" "$T/verify.log" | grep -q .
  [ $? -ne 0 ]; ok $? "systemd-analyze verify accepts the units" || diag "$(cat "$T/verify.log")"
fi
# Another prefix: the units and the example name the binary where it went
# (they named /usr/local/bin whatever the prefix).
make -C "$TOP_BUILDDIR" install DESTDIR="$T/inst2" prefix=/opt/walship >"$T/install2.log" 2>&1
ok $? "make install prefix=/opt/walship" || diag "$(tail -5 "$T/install2.log")"
[ -x "$T/inst2/opt/walship/bin/walship" ] &&
  grep -h '^ExecStart=' "$T/inst2/opt/walship/lib/systemd/system/"walship-*.service | grep -vq "^ExecStart=/opt/walship/bin/walship "
[ $? -ne 0 ]; ok $? "... its units run /opt/walship/bin/walship"
grep -q "^archive_command = '/opt/walship/bin/walship wal-push %p'" \
  "$T/inst2/opt/walship/share/doc/walship/examples/postgresql.conf.walship"
ok $? "... and its postgresql.conf example names it"

if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
  python3 -c 'import sys,yaml
d=yaml.safe_load(open(sys.argv[1]))
assert d["groups"][0]["rules"]' "$D$docdir/examples/walship-alerts.yml"
  ok $? "the alert rules are valid YAML"
fi

done_testing
