#!/bin/bash
# walship verify and walship status with a real PostgreSQL 15 and two
# file:// regions (one sync, one async): a healthy archive verifies (also
# with --full); a deleted WAL segment, a deleted part and a flipped byte in
# a part are each found and named (exit 3; the flipped byte only with
# --full, since the size is unchanged); status prints JSON and Prometheus
# text with every field, exits 0 when healthy and 2 when a region lags past
# rpo_seconds or the newest backup is older than backup_max_age.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"
PGPORT=$(tap_free_port)

mkdir -p "$T/saved"
ws_mkdirs "$T/spool" "$T/ra" "$T/rb"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
conf() {   # OUT [LINE...]: [global] with the server, then LINEs
  local out=$1
  shift
  ws_conf "$out" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "$@"
}
CONF=$T/walship.conf
conf "$CONF"
ws_region "$CONF" a "file://$T/ra" "mode = sync"
ws_region "$CONF" b "file://$T/rb" "mode = async"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
wsc() { local c=$1; shift; pg_run "$WALSHIP" --config "$c" "$@"; }

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
# the detached background shipper may still be running when the test ends:
# stopped by the PID in its lock file
on_exit "ws_stop_daemons $T"
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
switch_and_wait() {   # switch WAL, wait until region a has it, drain the spool
  local last
  last=$(sql "select pg_walfile_name(pg_switch_wal())")
  wait_for 60 test -f "$T/ra/wal/$last" || return 1
  ws ship --once >/dev/null 2>&1
  wait_for 30 test -f "$T/rb/wal/$last"
}

pg_run "$PG_BIN/pgbench" -i -s 1 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
t "backup-push" ws backup-push
name=$(ls "$T/ra/backups" | tail -1)
for i in 1 2 3; do
  sql "insert into pgbench_history(tid, bid, aid, delta, mtime) select 1, 1, g, 0, now() from generate_series(1, 2000) g"
  switch_and_wait
done
ok $? "WAL after the backup is archived in both regions"

# ---- healthy ----
t "verify passes on a healthy archive" ws verify
like "$T_OUT" 'region a .*: OK' "verify reports region a OK"
like "$T_OUT" 'region b .*: OK' "verify reports region b OK"
t "verify --full passes on a healthy archive" ws verify --full
like "$T_OUT" 'files.* SHA-256 checked' "verify --full reports the files it checked"
json=$(ws verify --full --json 2>/dev/null)
is "$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); r=d[0]; print(r["ok"], r["backups"], r["files_checked"] > 100, r["objects_decoded"] > 5, len(r["problems"]))')" \
   "True 1 True True 0" "verify --json: ok, one backup, files and objects checked, no problems"

t "status exits 0 when healthy" ws status
like "$T_OUT" 'newest backup: +'"$name" "status text names the newest backup"
sj=$(ws status --json 2>/dev/null); st=$?
is "$st" 0 "status --json exits 0 when healthy"
is "$(printf '%s' "$sj" | python3 -c '
import json,sys
d=json.load(sys.stdin)
keys=["region","backup","backup_time","backup_age_seconds","wal","wal_time","lag_segments","lag_bytes","lag_seconds",
      "spool_files","spool_bytes","spool_oldest_age_seconds","last_error","alarm"]
print(d["primary_known"], len(d["regions"]), all(all(k in r for k in keys) for r in d["regions"]),
      [r["alarm"] for r in d["regions"]], d["regions"][0]["lag_segments"])' 2>&1)" \
   "True 2 True [False, False] 0" "status --json has every field per region, no alarm, no lag"
prom=$(ws status --prometheus 2>/dev/null)
ok $? "status --prometheus exits 0 when healthy"
like "$prom" '^# TYPE walship_wal_lag_seconds gauge' "prometheus: TYPE lines"
like "$prom" '# HELP walship_last_backup_age_seconds ' "prometheus: HELP lines"
like "$prom" 'walship_up\{region="b"\} 1' "prometheus: walship_up per region"
printf '%s\n' "$prom" | python3 -c '
import re,sys
for l in sys.stdin:
    l=l.rstrip("\n")
    if not l or l.startswith("# HELP ") or l.startswith("# TYPE "): continue
    assert re.match(r"^walship_[a-z_]+(\{region=\"[^\"]*\"\})? -?[0-9.e+]+$", l), l
'
ok $? "prometheus: every sample line is well-formed textfile format"

# ---- status alarms ----
CONF_AGE=$T/age.conf
conf "$CONF_AGE" "backup_max_age = 1s"
ws_region "$CONF_AGE" a "file://$T/ra" "mode = sync"
sleep 2
t_fail "status exits 2 when the newest backup is older than backup_max_age" 2 wsc "$CONF_AGE" status
like "$T_OUT" 'older than backup_max_age' "status says why"

cp -a "$T/ra" "$T/stale"
CONF_RPO=$T/rpo.conf
conf "$CONF_RPO" "rpo_seconds = 1"
ws_region "$CONF_RPO" a "file://$T/ra" "mode = sync"
ws_region "$CONF_RPO" stale "file://$T/stale" "mode = sync"
sql "insert into pgbench_history(tid, bid, aid, delta, mtime) select 1, 1, g, 0, now() from generate_series(1, 2000) g"
switch_and_wait
sleep 2
sj=$(wsc "$CONF_RPO" status --json 2>/dev/null); st=$?
is "$st" 2 "status exits 2 when a region lags past rpo_seconds"
is "$(printf '%s' "$sj" | python3 -c '
import json,sys
d={r["region"]: r for r in json.load(sys.stdin)["regions"]}
print(d["a"]["alarm_rpo"], d["stale"]["alarm_rpo"], d["stale"]["lag_segments"] >= 1, d["stale"]["lag_seconds"] >= 2)' 2>&1)" \
   "False True True True" "only the lagging region alarms, with segments and seconds of lag"
like "$(wsc "$CONF_RPO" status --prometheus 2>/dev/null)" 'walship_alarm\{region="stale"\} 1' "prometheus: walship_alarm for the lagging region"
# a region that cannot be listed: down and alarming, its lag unknown (no
# sample rather than 0), and a shipped alert rule that fires on it
mv "$T/stale" "$T/stale.away"
prom=$(wsc "$CONF_RPO" status --prometheus 2>/dev/null); st=$?
# the textfile line the alert rules give, run as given: the alarm must
# replace the healthy file (with "&&" it never did: status exits 2)
mkdir -p "$T/textfile" && chown "$(pg_user)" "$T/textfile"
printf 'walship_up{region="stale"} 1\nwalship_alarm{region="stale"} 0\n' >"$T/textfile/walship.prom"
line=$(sed -n '/^#   walship status --prometheus/,/^#   mv /{s/^#   //;p}' "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml" |
       sed "s#/var/lib/node_exporter#$T/textfile#g; s#^walship #\"\$WALSHIP\" --config \"\$CONF_RPO\" #")
like "$line" '^"\$WALSHIP" --config "\$CONF_RPO" status --prometheus > ' "the alert rules give a textfile line"
pg_run env WALSHIP="$WALSHIP" CONF_RPO="$CONF_RPO" bash -c "$line" 2>/dev/null
like "$(cat "$T/textfile/walship.prom")" 'walship_alarm\{region="stale"\} 1' \
  "the alert rules' textfile line publishes an alarm (status exits 2 then)"
mv "$T/stale.away" "$T/stale"
is "$st" 2 "status --prometheus exits 2 when a region cannot be listed"
like "$prom" 'walship_up\{region="stale"\} 0' "prometheus: walship_up 0 for the unreadable region"
like "$prom" 'walship_alarm\{region="stale"\} 1' "prometheus: walship_alarm 1 for it"
unlike "$prom" 'walship_wal_lag_seconds\{region="stale"\}' "prometheus: no lag sample for it (unknown, not 0)"
python3 - "$TOP_SRCDIR/contrib/prometheus/walship-alerts.yml" <<'PY'
import re, sys
exprs = re.findall(r"^\s*expr:\s*(.+)$", open(sys.argv[1]).read(), re.M)
assert any(re.fullmatch(r"walship_up\s*==\s*0", e.strip()) for e in exprs), exprs
assert any(re.fullmatch(r"walship_alarm\s*==\s*1", e.strip()) for e in exprs), exprs
assert any(re.fullmatch(r"walship_branches\s*==\s*1", e.strip()) for e in exprs), exprs
assert any(re.fullmatch(r"walship_standby_alarm\s*==\s*1", e.strip()) for e in exprs), exprs
assert any("node_textfile_mtime_seconds" in e and "walship" in e for e in exprs), exprs
assert any(re.fullmatch(r"walship_up\s*==\s*1\s+unless\s+on\(region\)\s+walship_last_backup_age_seconds", e.strip())
           for e in exprs), exprs
PY
ok $? "the shipped alert rules fire on walship_up == 0, walship_alarm == 1, walship_branches == 1, walship_standby_alarm == 1, a stale walship.prom and a region without a backup"

# ---- a deleted WAL segment ----
start=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backups"][-1]["start_wal"])')
after=()
for f in $(ls "$T/ra/wal" | grep -E '^[0-9A-F]{24}$' | LC_ALL=C sort); do [[ "$f" > "$start" ]] && after+=("$f"); done
victim=${after[1]:-}
[ -n "$victim" ] && [ "${#after[@]}" -ge 3 ]; ok $? "a WAL segment between the backup's start and the newest to delete ($victim)"
mv "$T/ra/wal/$victim" "$T/saved/"
t_fail "verify exits 3 when a WAL segment is missing" 3 ws --region a verify
like "$T_OUT" "PROBLEM wal/$victim: WAL segment $victim is missing" "verify names the missing segment"
t "the other region still verifies" ws --region b verify
mv "$T/saved/$victim" "$T/ra/wal/"
t "verify passes again once the segment is back" ws --region a verify
# a segment object cut short (an upload cut at 0 bytes, a truncated file):
# found without --full
cp -p "$T/ra/wal/$victim" "$T/saved/"
: >"$T/ra/wal/$victim"
t_fail "verify exits 3 when a WAL object is empty" 3 ws --region a verify
like "$T_OUT" "PROBLEM wal/$victim: $victim is 0 bytes, too few to be an encoded object" "  names it, without --full"
head -c 50 "$T/saved/$victim" >"$T/ra/wal/$victim"
t_fail "verify exits 3 when a WAL object holds 50 bytes" 3 ws --region a verify
cp -p "$T/saved/$victim" "$T/ra/wal/$victim"
t "verify passes again once it is whole" ws --region a verify

# ---- a deleted part ----
mv "$T/ra/backups/$name/part-0001" "$T/saved/"
t_fail "verify exits 3 when a part is missing" 3 ws --region a verify
like "$T_OUT" "backups/$name/part-0001.*is missing" "verify names the missing part"
vj=$(ws --region a verify --json 2>/dev/null)
is "$(printf '%s' "$vj" | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(r["ok"], [p["object"] for p in r["problems"]])')" \
   "False ['backups/$name/part-0001']" "verify --json lists the missing part as the only problem"
mv "$T/saved/part-0001" "$T/ra/backups/$name/"

# ---- a flipped byte ----
part=$T/ra/backups/$name/part-0001
python3 - "$part" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, 'r+b') as f:
    size = os.fstat(f.fileno()).st_size
    f.seek(size // 2)
    b = f.read(1)
    f.seek(size // 2)
    f.write(bytes([b[0] ^ 0x01]))
PY
t "verify without --full passes (the size is unchanged)" ws --region a verify
t_fail "verify --full exits 3 on a flipped byte" 3 ws --region a verify --full
like "$T_OUT" "PROBLEM backups/$name/part-0001: backup $name: part 1 does not decode: .*(authentic|corrupt|chunk)" \
  "verify --full names the damaged part and says it failed authentication"

# tap.sh's exit trap kills the watchdog's sleep before the watchdog itself,
# which can let it mark the run as timed out: stop the watchdog first.
wd_sleep=$(pgrep -P "$_tap_watchdog" 2>/dev/null)
kill "$_tap_watchdog" 2>/dev/null
[ -n "$wd_sleep" ] && kill $wd_sleep 2>/dev/null
done_testing
