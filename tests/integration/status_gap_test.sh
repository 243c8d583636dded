#!/bin/bash
# status and a region that silently lost WAL in the middle (adversarial
# pass V): a segment between the newest backup's start and the newest
# archived one deleted (a broken lifecycle rule, a hand's `st rm`, bit rot
# in a file server).  status looked only at the newest segment: it said
# "OK", lag 0, exit 0, while a restore to latest from that region stops at
# the hole.  Now the hole is an alarm, named.  Also: a primary that
# pg_conninfo names but that cannot be asked (password changed, pg_hba,
# down) left the lag and PostgreSQL's archiver unknown and status said OK
# (walship_archiver_failing absent, so no rule could fire); and --json
# gave an unreadable region lag_seconds 0.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1"
ws_key "$T/key"
ws_conf "$T/c.conf" "rpo_seconds = 1d" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
w() { pg_run "$WALSHIP" --config "$T/c.conf" "$@"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/c.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"

t "backup-push" w backup-push
for i in 1 2 3 4; do
  sql "create table t$i as select 1" >/dev/null
  seg=$(sql "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 test -e "$T/r1/wal/$seg"
done
ok $? "four more segments archived (up to $seg)"
t "status: all is there (exit 0)" w status

# a segment in the middle disappears; the newest is still there
mid=$(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | sort | tail -3 | head -1)
mv "$T/r1/wal/$mid" "$T/saved"
t_fail "status: a hole in the region's WAL is an alarm (exit 2)" 2 w status
like "$T_OUT" "gap: +$mid is missing.*<- alarm" "... naming the missing segment"
out=$(w status --json 2>/dev/null)
is "$(json '(d["regions"][0]["alarm"], d["regions"][0]["gap"])' <<<"$out")" "(True, '$mid')" "JSON: gap, alarm"
out=$(w status --prometheus 2>/dev/null)
like "$out" 'walship_wal_gap\{region="r1"\} 1' "prometheus: walship_wal_gap 1"
like "$out" 'walship_alarm\{region="r1"\} 1' "prometheus: walship_alarm 1"
t_fail "verify agrees: restore to latest would stop there" 3 w verify
like "$T_OUT" "$mid" "... verify names it too"

# put it back: OK again
mv "$T/saved" "$T/r1/wal/$mid"
t "status: OK again (exit 0)" w status
out=$(w status --prometheus 2>/dev/null)
like "$out" 'walship_wal_gap\{region="r1"\} 0' "prometheus: walship_wal_gap 0"

# the only backup's manifest lost: nothing can be restored from r1, and
# verify said OK ("1 incomplete backup not checked", exit 0)
b=$(ls "$T/r1/backups" | head -1)
mv "$T/r1/backups/$b/manifest.json" "$T/manifest.save"
t_fail "verify: no complete backup is a problem (exit 3)" 3 w verify
like "$T_OUT" "PROBLEM backups/: no complete backup: nothing in this region can be restored" "... said so"
t_fail "status: no backup (exit 2)" 2 w status
mv "$T/manifest.save" "$T/r1/backups/$b/manifest.json"
t "verify: OK with the manifest back" w verify

# every walship_* metric an alert rule names is one status prints
# (walship_standby_*: with --standby, in the binary)
w status --prometheus >"$T/all.prom" 2>/dev/null
missing=$(python3 - "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml" "$T/all.prom" "$WALSHIP" <<'PY'
import re, sys
exprs = re.findall(r"^\s*expr:\s*(.+)$", open(sys.argv[1]).read(), re.M)
typed = set(re.findall(r"^# TYPE (\S+) ", open(sys.argv[2]).read(), re.M))
binary = open(sys.argv[3], "rb").read()
names = {n for e in exprs for n in re.findall(r"\bwalship_[a-z_]+", e)}
print(" ".join(sorted(n for n in names if n not in typed and not (n.startswith("walship_standby_") and n.encode() in binary))))
PY
)
is "$missing" "" "every walship_* metric in the alert rules is emitted"
grep -q 'expr: walship_wal_gap == 1' "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml"; ok $? "a shipped rule fires on walship_wal_gap"
grep -q 'expr: walship_primary_up == 0' "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml"; ok $? "a shipped rule fires on walship_primary_up == 0"

# the primary cannot be asked: not OK, and said
pg_stop "$T/pg" fast
t_fail "status: the primary named by pg_conninfo cannot be asked (exit 2)" 2 w status
like "$T_OUT" "primary: .*<- alarm" "... an alarm line for the primary"
out=$(w status --prometheus 2>/dev/null)
like "$out" 'walship_primary_up 0' "prometheus: walship_primary_up 0"
out=$(w status --json 2>/dev/null)
is "$(json 'd["primary_known"]' <<<"$out")" "False" "JSON: primary_known false"

# the key cannot be read (moved, its permissions changed): status cannot
# look at any region.  --prometheus printed nothing, so the textfile line
# published an empty file and only absent() fired, after 30 minutes; now
# every configured region is down and alarming, which the rules page on
mv "$T/key" "$T/key.away"
out=$(w status --prometheus 2>/dev/null); st=$?
is "$st" 3 "status --prometheus without its key: exit 3"
like "$out" 'walship_up\{region="r1"\} 0' "... walship_up 0 for each region"
like "$out" 'walship_alarm\{region="r1"\} 1' "... walship_alarm 1"
mv "$T/key.away" "$T/key"

# an unreadable region: its lag is unknown in JSON, not 0
ws_conf "$T/mon.conf" "rpo_seconds = 1d"
ws_region "$T/mon.conf" gone "file://$T/nonexistent"
out=$(pg_run "$WALSHIP" --config "$T/mon.conf" status --json 2>/dev/null)
is "$(json '(d["regions"][0]["readable"], d["regions"][0]["lag_seconds"], d["regions"][0]["lag_segments"], d["regions"][0]["lag_bytes"])' <<<"$out")" \
  "(False, None, None, None)" "JSON: an unreadable region's lag is null, not 0"
done_testing
