#!/bin/bash
# kill -9 at several moments (adversarial pass R) of backup-fetch, restore,
# wal-fetch and backup-push, then the rerun: it finishes correctly or
# refuses clearly, and nothing is left that looks complete and is not.
#   - backup-fetch / restore: a directory without backup_label, which a
#     rerun refuses (exit 2, "not empty") until it is emptied; a directory
#     with backup_label is the whole backup, file for file;
#   - wal-fetch: DEST is the old file or the new one, whole; the rerun
#     fetches it and removes the temp file the killed call left;
#   - backup-push: `verify` accepts the region after every kill, every
#     backup it lists is fetched whole, and the next backup-push works.
# A PostgreSQL 15 archiving into one file:// region.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port)
ws_mkdirs "$T/spool" "$T/r1" "$T/k"
ws_key "$T/key"
ws_conf "$T/p.conf" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$T/p.conf" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$T/p.conf" "$@"; }
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
on_exit "ws_stop_daemons '$T'"
pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$T/p.conf"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
pg_run "$PG_BIN/pgbench" -i -s 5 -q -h "$T/pg/sock" -p "$PGPORT" -U postgres postgres >/dev/null 2>&1
t "backup-push" ws backup-push

# walship itself in the background, as the PostgreSQL user, its PID in KPID
# (setpriv execs it: the PID is walship's, not a wrapper's); then kill -9
# after $1 seconds, the wait status in KST
killed() {
  local d=$1; shift
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$(pg_user)" --regid="$(id -g "$(pg_user)")" --init-groups "$WALSHIP" --config "$T/p.conf" "$@" \
      >/dev/null 2>&1 &
  else
    "$WALSHIP" --config "$T/p.conf" "$@" >/dev/null 2>&1 &
  fi
  KPID=$!
  sleep "$d"
  kill -KILL "$KPID" 2>/dev/null
  wait "$KPID" 2>/dev/null
  KST=$?
}

t "a reference fetch" ws backup-fetch LATEST "$T/k/ref"
DELAYS="0.02 0.1 0.2 0.35 0.6"

# ---- backup-fetch and restore ----
for cmd in backup-fetch restore; do
  bad=0 kills=0
  for d in $DELAYS; do
    rm -rf "$T/k/data"
    if [ "$cmd" = restore ]; then killed "$d" restore --pgdata "$T/k/data"; else killed "$d" backup-fetch LATEST "$T/k/data"; fi
    [ "$KST" = 137 ] && kills=$((kills + 1))
    if [ -e "$T/k/data/backup_label" ]; then
      # complete: every file of the backup, as fetched whole (restore adds
      # its recovery settings, and may have been killed before them)
      diff -rq -x postgresql.auto.conf -x postgresql.conf -x recovery.signal -x 'walship-restore*' \
        -x '*.walship-tmp*' -x .walship-prefetch "$T/k/ref" "$T/k/data" >"$T/diff" 2>&1 ||
        { bad=1; diag "$cmd killed after $d s: backup_label, but $(head -3 "$T/diff")"; }
    elif [ -e "$T/k/data" ] && [ -n "$(ls -A "$T/k/data")" ]; then
      ws backup-fetch LATEST "$T/k/data" >"$T/out" 2>&1
      st=$?
      [ "$st" = 2 ] && grep -q "is not empty" "$T/out" ||
        { bad=1; diag "$cmd killed after $d s: the rerun exited $st: $(tail -1 "$T/out")"; }
    fi
  done
  is "$bad" 0 "$cmd killed at $DELAYS s ($kills killed): a whole backup, or a leftover the rerun refuses"
  rm -rf "$T/k/data"
  t "...and into an emptied directory the $cmd finishes" ws "$cmd" $([ "$cmd" = restore ] && echo --pgdata) \
    $([ "$cmd" = backup-fetch ] && echo LATEST) "$T/k/data"
  [ -s "$T/k/data/backup_label" ]; ok $? "...with backup_label"
done
ws_stop_daemons "$T/k"

# ---- wal-fetch into RECOVERYXLOG that holds another segment ----
for i in 1 2 3; do sql "create table w$i as select generate_series(1, 20000) i; select pg_switch_wal()" >/dev/null; done
segs=$(ls "$T/r1/wal" | grep -E '^[0-9A-F]{24}$' | tail -3)
a=$(head -1 <<<"$segs") b=$(tail -1 <<<"$segs")
ws st get "wal/$a" "$T/k/a" >/dev/null 2>&1 && ws st get "wal/$b" "$T/k/b" >/dev/null 2>&1
ok $? "segments $a and $b decoded for comparison"
D=$T/k/data
bad=0
for d in 0.01 0.03 0.06 0.1 0.2; do
  cp "$T/k/a" "$D/pg_wal/RECOVERYXLOG" && chown "$(pg_user)" "$D/pg_wal/RECOVERYXLOG"
  (cd "$D" && killed "$d" wal-fetch --no-prefetch "$b" pg_wal/RECOVERYXLOG)
  cmp -s "$T/k/a" "$D/pg_wal/RECOVERYXLOG" || cmp -s "$T/k/b" "$D/pg_wal/RECOVERYXLOG" ||
    { bad=1; diag "wal-fetch killed after $d s: RECOVERYXLOG is neither $a nor $b"; }
done
is "$bad" 0 "wal-fetch killed at several moments: RECOVERYXLOG is the old segment or the new one, whole"
(cd "$D" && touch pg_wal/RECOVERYXLOG.walship-tmp.999999 && chown "$(pg_user)" pg_wal/RECOVERYXLOG.walship-tmp.999999)
t "...the rerun fetches $b" bash -c "cd '$D' && runuser -u $(pg_user) -- '$WALSHIP' --config '$T/p.conf' wal-fetch --no-prefetch $b pg_wal/RECOVERYXLOG"
cmp -s "$T/k/b" "$D/pg_wal/RECOVERYXLOG"; ok $? "...whole"
is "$(ls -A "$D/pg_wal" | grep -c walship-tmp)" 0 "...and the temp files of killed calls are gone"

# ---- backup-push ----
bad=0
for d in 0.05 0.15 0.3 0.5 0.8; do
  killed "$d" backup-push
  ws verify >"$T/out" 2>&1 || { bad=1; diag "backup-push killed after $d s: verify: $(tail -2 "$T/out")"; }
done
is "$bad" 0 "backup-push killed at several moments: verify accepts the region each time"
names=$(ws backup-list --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print("\n".join(b["name"] for r in (d if isinstance(d, list) else d.get("regions", [d])) for b in r.get("backups", [])))' 2>/dev/null)
[ -n "$names" ]; ok $? "backup-list lists the backups ($(wc -l <<<"$names"))"
bad=0
for n in $names; do
  rm -rf "$T/k/each"
  ws backup-fetch "$n" "$T/k/each" >"$T/out" 2>&1 || { bad=1; diag "backup $n: $(tail -1 "$T/out")"; }
done
is "$bad" 0 "...and every one of them is fetched whole"
t "the next backup-push works" ws backup-push
t "...and verify accepts the region" ws verify

done_testing
