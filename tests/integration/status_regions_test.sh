#!/bin/bash
# status without the primary (no pg_conninfo, or the primary down) and a
# region rolled back: its newest WAL objects deleted, by an attacker with
# write access to that bucket or a broken process (adversarial pass N).
# Each region was judged alone, against its spool: both said OK, exit 0,
# though one of them lacked acknowledged WAL that the other held, and a
# disaster that took the other region would restore less than was
# archived.  Now the regions are compared: the one behind is named with
# the segments it lacks, and past rpo_seconds it is an alarm.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

SYSID=7301234567890123456
ws_mkdirs "$T/spool" "$T/r1" "$T/r2"
ws_key "$T/key"
ws_fake_pgdata "$T/pg" "$SYSID"
ws_own "$T/pg"
ws_conf "$T/c.conf" "pgdata = $T/pg"
ws_region "$T/c.conf" r1 "file://$T/r1" "mode = sync"
ws_region "$T/c.conf" r2 "file://$T/r2" "mode = sync"
# the monitoring host: no primary to ask (no backup is taken here: every
# region has the no-backup alarm, exit 2, so the WAL lag is read from the
# rpo alarm alone)
ws_conf "$T/mon.conf" "rpo_seconds = 5min"
ws_region "$T/mon.conf" r1 "file://$T/r1"
ws_region "$T/mon.conf" r2 "file://$T/r2"
mon() { pg_run "$WALSHIP" --config "$T/mon.conf" "$@"; }
json() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }

for s in 1 2 3 4; do
  n=00000001000000000000000$s
  python3 "$TOP_SRCDIR/tests/lib/walseg.py" "$T/pg/pg_wal/$n" "$n" "$SYSID" --seed "$s" >/dev/null
  ws_own "$T/pg"
  t "wal-push $n to both regions" pg_run "$WALSHIP" --config "$T/c.conf" wal-push "$T/pg/pg_wal/$n"
done
rpo() { mon status --json 2>/dev/null | json '[(r["region"], r["lag_segments"], r["lag_behind_region"], r["alarm_rpo"]) for r in d["regions"]]'; }
t_fail "status: both regions hold the same WAL (exit 2: no backup)" 2 mon status
unlike "$T_OUT" "behind region|past rpo_seconds" "... neither is behind"
is "$(rpo)" "[('r1', 0, None, False), ('r2', 0, None, False)]" "JSON: no lag, no rpo alarm"

# r1 rolled back: its two newest segments are gone, an hour ago
rm -f "$T/r1/wal/000000010000000000000004" "$T/r1/wal/000000010000000000000003"
touch -d '-1 hour' "$T"/r2/wal/* "$T"/r1/wal/*
t_fail "status: r1 lacks WAL that r2 holds, for an hour (exit 2)" 2 mon status
like "$T_OUT" "lag: +2 segments behind region r2 \(its newest WAL: 000000010000000000000004\), [0-9]+ s .*<- past rpo_seconds" \
  "... naming the segments it lacks and the region that holds them"
is "$(rpo)" "[('r1', 2, 'r2', True), ('r2', 0, None, False)]" "JSON: lag_segments, lag_behind_region, alarm_rpo"
mon status --prometheus >"$T/prom" 2>/dev/null
grep -Eq '^walship_wal_lag_seconds\{region="r1"\} [0-9]{4}' "$T/prom"; ok $? "prometheus: r1's lag is an hour"

# a segment that reached one region a moment ago: a lag, not yet an alarm
touch "$T/r2/wal/000000010000000000000004"
t_fail "status: r1 a moment behind r2 (exit 2: no backup)" 2 mon status
like "$T_OUT" "lag: +2 segments behind region r2" "... the lag is shown"
is "$(rpo)" "[('r1', 2, 'r2', False), ('r2', 0, None, False)]" "... but it is not yet past rpo_seconds"
done_testing
