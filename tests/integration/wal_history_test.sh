#!/bin/bash
# wal-push and timeline history files.  Any content was archived under a
# TLI.history name (adversarial pass M: a garbage 0000000A.history went in
# with exit 0), and an archived history file becomes the archive's latest
# timeline: every restore to latest then refused, its history unusable,
# until someone removed the object from every region.  Now a history file
# must read as PostgreSQL writes one.  No server: a fake data directory.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYSID=7301234567890123458
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_fake_pgdata "$T/pg" "$SYSID"
ws_conf "$T/c.conf" "pgdata = $T/pg"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/000000010000000000000001" 000000010000000000000001 "$SYSID" >/dev/null
ws_own "$T/pg"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
hist() { printf "$2" >"$T/pg/pg_wal/$1"; ws_own "$T/pg"; }

t "a segment is archived (the repository exists)" w wal-push "$T/pg/pg_wal/000000010000000000000001"

hist 0000000A.history 'garbage, not a history file\n'
t_fail "garbage under a history name: refused (exit 3)" 3 w wal-push "$T/pg/pg_wal/0000000A.history"
like "$T_OUT" "is not a timeline history file as PostgreSQL writes it" "... saying why"
[ ! -e "$T/r1/wal/0000000A.history" ]; ok $? "... nothing archived"

hist 0000000B.history '# only a comment\n\n'
t_fail "a history file naming no parent: refused" 3 w wal-push "$T/pg/pg_wal/0000000B.history"
like "$T_OUT" "names no parent timeline" "... saying so"

hist 00000003.history '1\t0/3000000\tno recovery target specified\n3\t0/5000000\tx\n'
t_fail "a parent not below the file's own timeline: refused" 3 w wal-push "$T/pg/pg_wal/00000003.history"
like "$T_OUT" "out of order" "... saying so"

hist 00000004.history '1\t0/6000000\tx\n2\t0/5000000\ty\n'
t_fail "switch points going back: refused" 3 w wal-push "$T/pg/pg_wal/00000004.history"

hist 00000005.history '1\t0/3000000\tx\x00\n'
t_fail "a NUL byte: refused" 3 w wal-push "$T/pg/pg_wal/00000005.history"

hist 00000002.history '1\t0/3000000\tno recovery target specified\n'
t "a history file as PostgreSQL writes it: archived" w wal-push "$T/pg/pg_wal/00000002.history"
[ -e "$T/r1/wal/00000002.history" ]; ok $? "... it is in the region"
hist 00000006.history '1\t0/3000000\tno recovery target specified\n\n2\t0/4000000\tat restore point "p"\n# x\n5\t0/4000000\tbefore 2026-12-07 00:00:00+00\n'
t "parents 1, 2, 5 with comments and blank lines: archived" w wal-push "$T/pg/pg_wal/00000006.history"

done_testing
