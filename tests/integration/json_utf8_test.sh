#!/bin/bash
# Machine-readable output of names and paths that are not UTF-8: a folder
# under backups/ named in Latin-1 or with a stray byte, a file:// region
# whose path is not UTF-8.  jansson refuses such a string, and the object
# it was packed into used to vanish: `status --json` left the region out,
# `verify --json` said "ok": false with no problem, `backup-list --json`
# dropped the backup (or showed an unreadable region as "error": null,
# empty).  Every one must be there, its bytes shown as '?'.  No PostgreSQL
# needed (a fake data directory, synthetic WAL).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYSID=7300000000000000042
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_fake_pgdata "$T/pgd" "$SYSID"
ws_own "$T/pgd"
BAD=$(printf 'n\xe9w')
ws_conf "$T/c.conf" "pgdata = $T/pgd"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
ws_region "$T/c.conf" r2 "file://$T/$BAD" "mode = async"
ws_conf "$T/one.conf" "pgdata = $T/pgd"
ws_region "$T/one.conf" r1 "file://$T/r1" "mode = sync"
w() { pg_run "$WALSHIP" --config "$T/one.conf" "$@"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }

walseg "$T/pgd/pg_wal/000000010000000000000001" 000000010000000000000001 "$SYSID"
t "a segment archived to r1" w wal-push "$T/pgd/pg_wal/000000010000000000000001"
ODD=$(printf 'odd\xff')
mkdir -p "$T/r1/backups/$ODD" "$T/r1/backups/$BAD"
echo x >"$T/r1/backups/$ODD/part-0001"              # an incomplete folder
echo garbage >"$T/r1/backups/$BAD/manifest.json"     # a "backup" that does not load
ws_own "$T/r1"

t_fail "backup-list --all --json (a manifest does not load: exit 3)" 3 w backup-list --all --json
out=$(w backup-list --all --json 2>/dev/null)
is "$(json 'sorted((b["name"], b["complete"], "error" in b) for b in d[0]["backups"])' <<<"$out")" \
  "[('n?w', True, True), ('odd?', False, False)]" "both folders are listed, their names made UTF-8"

t_fail "verify --json (exit 3)" 3 w verify --json
out=$(w verify --json 2>/dev/null)
is "$(json '(d[0]["ok"], [p["object"] for p in d[0]["problems"]])' <<<"$out")" \
  "(False, ['backups/n?w/manifest.json'])" "the problem is in the JSON, not only 'ok': false"

out=$(pg_run "$WALSHIP" --config "$T/c.conf" status --json 2>/dev/null)
is "$(json '[(r["region"], r["readable"]) for r in d["regions"]]' <<<"$out")" \
  "[('r1', True), ('r2', False)]" "status --json: the region with a non-UTF-8 path is there"
like "$(json 'd["regions"][1]["error"]' <<<"$out")" "n\?w" "...with its error"
out=$(pg_run "$WALSHIP" --config "$T/c.conf" backup-list --json 2>/dev/null)
like "$(json 'd[1]["error"]' <<<"$out")" "not usable" "backup-list --json: r2's error is not null"
out=$(pg_run "$WALSHIP" --config "$T/c.conf" verify --json 2>/dev/null)
is "$(json '(len(d), d[1]["ok"], d[1]["error"] is not None)' <<<"$out")" "(2, False, True)" \
  "verify --json: r2 is there, not ok, with its error"

# ---- a name with a line break and an escape sequence: the text output and
# the log keep one line per line of walship's; nothing forged ----
EVIL=$(printf 'e\n2026-12-07 00:00:00.000 walship[1] x: ERROR: FORGED\033[2J')   # < 64 bytes
mkdir -p "$T/r1/backups/$EVIL"
echo garbage >"$T/r1/backups/$EVIL/manifest.json"
ws_own "$T/r1"
w backup-list --all >"$T/bl.out" 2>"$T/bl.err"
! grep -q '^2026-12-07 00:00:00.000 walship\[1\]' "$T/bl.out" "$T/bl.err"; ok $? "backup-list: no line starts with the forged record"
! grep -q "$(printf '\033')" "$T/bl.out" "$T/bl.err"; ok $? "... and no escape sequence reaches the terminal"
like "$(cat "$T/bl.out")" 'e\\n2026-12-07 00:00:00.000 walship\[1\] x: ERROR: FORGED\\x1b\[2J' "... the name shown with its line break escaped"
! grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ walship\[[0-9]+\] ' "$T/bl.err"; ok $? "... every log line is a record of walship's own" || diag "$(cat "$T/bl.err")"
w verify >"$T/v.out" 2>"$T/v.err"
! grep -q '^2026-12-07 00:00:00.000 walship\[1\]' "$T/v.out" "$T/v.err"; ok $? "verify: no line starts with the forged record"
! grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ walship\[[0-9]+\] ' "$T/v.err"; ok $? "... every log line is a record of walship's own" || diag "$(cat "$T/v.err")"

done_testing
