#!/bin/bash
# tests/soak/soak.sh: walship's soak test (issue 11 item 8, docs/SOAK.md).
#
#   soak.sh [--minutes N] [--seed S] [--clients N] [--points N] [--keep]
#
# A PostgreSQL 15 primary archives through walship to three regions: two
# Swift s3api regions behind the fault proxy (us-east-1 sync, eu-west-1
# async with the spool and `walship ship`) and one file:// region (local,
# sync).  Clients (client.py) commit transactions and keep a ledger of what
# was acknowledged.  For N minutes, seeded random faults: a region dark,
# 503s, latency, connection resets, kill -9 of wal-push, ship and
# backup-push, an immediate stop of the primary and its restart; backups and
# `walship delete` run along the way.  Then writers stop, the last WAL is
# switched and archived everywhere, and per region the latest point and
# --points random moments are restored (`walship restore --start`, a
# configuration naming only that region) and compared with the ledger
# (ledger.py).  The last line is
#
#   T transactions acknowledged, L lost, R restores (K correct), F faults
#
# and the exit status is 0 only when L = 0 and K = R (2: the set-up failed).
# Needs what the integration tests need (Swift, memcached, PostgreSQL 15);
# run as root (servers then run as postgres) or as a user owning TMPDIR.
set -uo pipefail

MINUTES=2 SEED=1 CLIENTS=3 POINTS=1 KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) MINUTES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --points) POINTS=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $MINUTES =~ ^[0-9]+$ && $SEED =~ ^[0-9]+$ && $CLIENTS =~ ^[0-9]+$ && $POINTS =~ ^[0-9]+$ ]] ||
  { echo "soak.sh: --minutes, --seed, --clients, --points take whole numbers" >&2; exit 2; }
[ "$KEEP" = 1 ] && export KEEP_TMP=1
SOAK_DIR=$(cd "$(dirname "$0")" && pwd)
TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$SOAK_DIR/../.." && pwd)}
# the watchdog of tap.sh: the run, plus generous room for set-up and restores
export TEST_TIMEOUT=${TEST_TIMEOUT:-$((MINUTES * 60 + 1500))}
. "$TOP_SRCDIR/tests/lib/tap.sh"
# Swift's start-up is CPU-bound: on a loaded machine (load 25+ seen) 30 s
# per region is not enough
export SWIFT_START_TIMEOUT=${SWIFT_START_TIMEOUT:-90}
. "$TOP_SRCDIR/tests/lib/swift.sh"
. "$TOP_SRCDIR/tests/lib/faultproxy.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "SETUP FAILED: $*"; exit 2; }
[ -x "$WALSHIP" ] || die "no walship binary at $WALSHIP (set WALSHIP)"
command -v swift-proxy-server >/dev/null || die "swift is not installed"
[ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 is not installed"
log "soak: seed $SEED, $MINUTES min, $CLIENTS clients, $POINTS random moments per region, dir $T"
RANDOM=$SEED

# ---- regions: two Swift behind fault proxies, one file:// ----
read -r P1 P2 F1 F2 C1 C2 PGPORT RPORT <<<"$(free_ports 8 | tr '\n' ' ')"
swift_start_regions "$T/s1" us-east-1 "$P1" "$T/s2" eu-west-1 "$P2" || die "swift did not start"
on_exit "swift_stop $T/s1; swift_stop $T/s2"
swift_create_bucket "$P1" us-east-1 walship >/dev/null || die "bucket"
swift_create_bucket "$P2" eu-west-1 walship >/dev/null || die "bucket"
fp_start "$F1" "$P1" "$C1" "$T/fp1" || die "fault proxy 1"
fp_start "$F2" "$P2" "$C2" "$T/fp2" || die "fault proxy 2"
on_exit "fp_stop $T/fp1; fp_stop $T/fp2"
mkdir -p "$T/local" "$T/spool" "$T/rspool" "$T/ledger" "$T/r"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1 || die "keygen"

CONF=$T/walship.conf
global() {   # the [global] section; $1: extra lines
  printf '[global]\nkey_file = %s\nspool_dir = %s\nparallel = 2\nretry_deadline = 5\nconnect_timeout = 2\nio_timeout = 5\n%s' \
    "$T/key" "$2" "$1"
}
s3region() {   # NAME PORT MODE
  printf '\n[region %s]\nurl = s3://walship/soak\nendpoint = http://127.0.0.1:%s\npath_style = true\nmode = %s\naccess_key_id = test:tester\nsecret_access_key = testing\nretain_full = 2\n' "$1" "$2" "$3"
}
fileregion() { printf '\n[region local]\nurl = file://%s\nmode = sync\nretain_full = 3\n' "$T/local"; }
{
  global "pgdata = $T/pg/data
pg_conninfo = host=$T/pg/sock port=$PGPORT user=postgres dbname=postgres
archive_timeout = 60
garbage_hours = 0
" "$T/spool"
  s3region us-east-1 "$F1" sync
  s3region eu-west-1 "$F2" async
  fileregion
} >"$CONF"
# a restore configuration per region: that region only, directly (no proxy)
for r in us-east-1 eu-west-1 local; do
  { global "" "$T/rspool"
    case $r in
      us-east-1) s3region us-east-1 "$P1" sync ;;
      eu-west-1) s3region eu-west-1 "$P2" sync ;;
      local) fileregion ;;
    esac; } >"$T/restore-$r.conf"
done
chmod 600 "$T"/*.conf "$T/key"
[ "$(id -u)" = 0 ] && chown -R "$(pg_user)" "$T/local" "$T/spool" "$T/rspool" "$T/r" "$T"/*.conf "$T/key"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }

# walship processes of this run, found only by the PID each writes into the
# lock file it holds (tests/lib/walship.sh, docs/OPERATIONS.md §6): the
# shipper's ship.lock and backup-push's backup.lock in the spool, a
# wal-push's claim on the segment it archives, a wal-fetch prefetcher's
# pg_wal/.walship-prefetch/.lock.  Never by pattern.
ws_lock_files() {   # SUBCOMMAND (ship, backup-push, wal-push) or all
  case $1 in
    ship) find "$T/spool" -name ship.lock -type f ;;
    backup-push) find "$T/spool" -name backup.lock -type f ;;
    wal-push) find "$T/spool" -path '*/claims/*' -type f ;;
    all) find "$T" \( -name ship.lock -o -name backup.lock -o -path '*/claims/*' \
                 -o -path '*/.walship-prefetch/.lock' \) -type f ;;
  esac 2>/dev/null
}
ws_pids() {   # SUBCOMMAND: the live walship PIDs holding its lock files
  local f
  while IFS= read -r f; do ws_lock_pid "$f"; done < <(ws_lock_files "$1") | sort -u
}
kill_ws_all() {   # every walship of this run that holds a lock, killed by PID
  local p
  for p in $(ws_pids all); do kill -9 "$p" 2>/dev/null; done
  return 0
}
on_exit kill_ws_all

# ---- the primary ----
pg_init "$T/pg" || die "initdb"
pg_conf "$T/pg" "archive_mode = on"
pg_conf "$T/pg" "archive_command = '$WALSHIP --config $CONF wal-push %p'"
pg_conf "$T/pg" "archive_timeout = 10s"
pg_conf "$T/pg" "checkpoint_timeout = 30s"
pg_conf "$T/pg" "max_connections = 40"
pg_start "$T/pg" "$PGPORT" || die "postgres did not start"
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
sql "create table acct (aid int primary key, bal bigint not null default 0);
     insert into acct(aid) select generate_series(1, 100);
     create table ledger (id text primary key, client int not null, seq int not null, delta int not null, pad text);
     create table nudge (at timestamptz default clock_timestamp())" || die "schema"
ws backup-push >"$T/backup0.log" 2>&1 || { cat "$T/backup0.log"; die "the first backup-push failed"; }
log "first backup done"

# ---- clients ----
python3 "$SOAK_DIR/client.py" --port "$PGPORT" --clients "$CLIENTS" --dir "$T/ledger" \
  --psql "$PG_BIN/psql" --seed "$SEED" >"$T/client.log" 2>&1 &
CLIENT_PID=$!
on_exit "kill -TERM $CLIENT_PID"

# ---- backups and delete along the way (own seeded stream) ----
backup_loop() {
  local n=0 i pause rc
  RANDOM=$((SEED + 7919))
  while [ ! -e "$T/stop" ]; do
    pause=$((20 + RANDOM % 20))
    for ((i = 0; i < pause; i++)); do [ -e "$T/stop" ] && return 0; sleep 1; done
    n=$((n + 1))
    ws backup-push >"$T/backup$n.log" 2>&1
    rc=$?
    log "backup-push #$n: exit $rc$( [ $rc -ne 0 ] && printf ' (%s)' "$(tail -1 "$T/backup$n.log")")"
    ws delete >"$T/delete$n.log" 2>&1
    rc=$?
    log "delete #$n: exit $rc$( [ $rc -ne 0 ] && printf ' (%s)' "$(tail -1 "$T/delete$n.log")")"
  done
}
backup_loop &
BACKUP_PID=$!
on_exit "touch $T/stop; kill $BACKUP_PID"

# ---- seeded faults ----
F=0
fault() { F=$((F + 1)); log "fault #$F: $*"; }
# LO HI: REPLY from the seeded stream (never in $(...): a subshell has its own RANDOM)
rnd() { REPLY=$(($1 + RANDOM % ($2 - $1 + 1))); }
kill9() {   # SUBCOMMAND WAIT_SECONDS: kill -9 one running walship SUBCOMMAND
  local what=$1 p delay
  rnd 0 9; delay=$REPLY   # drawn before the wait, so the seeded stream does not depend on timing
  local until=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$until" ]; do
    p=$(ws_pids "$what" | head -1)
    if [ -n "$p" ]; then
      sleep "0.0$delay"
      kill -9 "$p" 2>/dev/null && { fault "kill -9 $what (pid $p)"; return 0; }
    fi
    sleep 0.1
  done
  log "(no $what running to kill)"
}
KINDS=(sync-dark async-dark async-503 sync-503 latency reset reset-conn kill-wal-push kill-ship
       kill-backup-push crash-primary)
DECK=()
END=$((SECONDS + MINUTES * 60))
while [ "$SECONDS" -lt "$END" ]; do
  rnd 1 4; sleep "$REPLY"
  # a seeded shuffled deck: every kind once per round, in random order
  if [ "${#DECK[@]}" -eq 0 ]; then
    DECK=("${KINDS[@]}")
    for ((i = ${#DECK[@]} - 1; i > 0; i--)); do
      rnd 0 "$i"; k=${DECK[i]}; DECK[i]=${DECK[REPLY]}; DECK[REPLY]=$k
    done
  fi
  kind=${DECK[0]}; DECK=("${DECK[@]:1}")
  case $kind in
    sync-dark)
      rnd 3 12; d=$REPLY; fault "us-east-1 (sync) dark for ${d}s"
      fp_ctl "$C1" dark >/dev/null; sleep "$d"; fp_ctl "$C1" up >/dev/null ;;
    async-dark)
      rnd 3 20; d=$REPLY; fault "eu-west-1 (async) dark for ${d}s"
      fp_ctl "$C2" dark >/dev/null; sleep "$d"; fp_ctl "$C2" up >/dev/null ;;
    async-503)
      rnd 3 30; n=$REPLY; fault "eu-west-1 (async): the next $n requests answer 503"
      fp_ctl "$C2" "error $n 503" >/dev/null ;;
    sync-503)
      rnd 1 6; n=$REPLY; fault "us-east-1 (sync): the next $n requests answer 503"
      fp_ctl "$C1" "error $n 503" >/dev/null ;;
    latency)
      c=$C1 name=us-east-1; [ $((RANDOM % 2)) = 0 ] && { c=$C2 name=eu-west-1; }
      rnd 10 80; ms=$REPLY; rnd 5 15; d=$REPLY; fault "$name: ${ms} ms each way for ${d}s"
      fp_ctl "$c" "delay $ms" >/dev/null; sleep "$d"; fp_ctl "$c" "delay 0" >/dev/null ;;
    reset|reset-conn)
      c=$C1 name=us-east-1; [ $((RANDOM % 2)) = 0 ] && { c=$C2 name=eu-west-1; }
      rnd 1 4; n=$REPLY; fault "$name: $kind $n"
      fp_ctl "$c" "$kind $n" >/dev/null ;;
    kill-wal-push)
      # 100 ms each way to the sync region while waiting: a push then takes
      # long enough (several requests) for the kill to land in the middle
      fp_ctl "$C1" "delay 100" >/dev/null
      kill9 wal-push 15
      fp_ctl "$C1" "delay 0" >/dev/null ;;
    kill-ship)
      # a shipper runs while the spool has work: if none shows up, make
      # eu-west-1 dark for a moment so that the next one keeps retrying
      if [ -z "$(ws_pids ship)" ]; then
        fp_ctl "$C2" dark >/dev/null
        kill9 ship 15
        fp_ctl "$C2" up >/dev/null
      else
        kill9 ship 2
      fi ;;
    kill-backup-push)
      # the backup loop's, if one runs; else one of our own, killed 1-6 s in
      rnd 1 6; d=$REPLY
      bp=
      if [ -z "$(ws_pids backup-push)" ]; then
        ws backup-push >"$T/backup-killed.$F.log" 2>&1 &
        bp=$!
        sleep "$d"
      fi
      kill9 backup-push 3
      [ -n "$bp" ] && wait "$bp" ;;
    crash-primary)
      fault "pg_ctl stop -m immediate, then restart"
      pg_stop "$T/pg" immediate
      rnd 1 4; sleep "$REPLY"
      pg_start "$T/pg" "$PGPORT" || { sleep 5; pg_start "$T/pg" "$PGPORT"; } || die "the primary did not restart" ;;
  esac
done

# ---- stop writers, archive everything, everywhere ----
log "stopping writers and backups"
touch "$T/stop"
kill -TERM "$CLIENT_PID"; wait "$CLIENT_PID"
wait "$BACKUP_PID"
fp_ctl "$C1" clear >/dev/null; fp_ctl "$C2" clear >/dev/null
read -r TA TD _ _ <<<"$(python3 "$SOAK_DIR/ledger.py" summary "$T/ledger")"
log "ledger: $TA acknowledged, $TD in doubt"

R=0 K=0
: >"$T/lost"
check() {   # LABEL ROWS BALANCE MODE [T]: compare with the ledger, count
  local label=$1 out st
  out=$(python3 "$SOAK_DIR/ledger.py" check "$T/ledger" "$2" "$3" "$4" ${5:+"$5"} "$T/lost")
  st=$?
  log "$label: $out"
  return $st
}
dump() {   # PORT PREFIX: the ledger rows and the balance of a running instance
  pg_run "$PG_BIN/psql" -X -At -F ' ' -h 127.0.0.1 -p "$1" -U postgres -d postgres \
    -c "select id, client, seq, delta from ledger" >"$2.rows" 2>"$2.err" &&
  pg_run "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres \
    -c "select coalesce(sum(bal), 0) from acct" >"$2.bal" 2>>"$2.err"
}
dump "$PGPORT" "$T/primary" || die "cannot read the primary: $(cat "$T/primary.err")"
check "primary" "$T/primary.rows" "$(cat "$T/primary.bal")" latest || log "THE PRIMARY ITSELF DOES NOT MATCH THE LEDGER"

seg=$(sql "select pg_walfile_name(pg_switch_wal())")
archived() {
  local a
  a=$(sql "select coalesce(last_archived_wal, '') from pg_stat_archiver")
  [[ ${a:0:24} > $seg || ${a:0:24} == "$seg" ]]
}
for ((i = 0; i < 60; i++)); do
  archived && break
  # wake an archiver that backs off after failures
  [ $((i % 5)) = 4 ] && sql "insert into nudge default values; select pg_switch_wal()" >/dev/null
  sleep 3
done
archived || die "PostgreSQL did not archive $seg within 180 s: $(sql 'select * from pg_stat_archiver')"
for ((i = 0; i < 30; i++)); do ws ship --once >"$T/ship-final.log" 2>&1 && break; sleep 3; done
for r in us-east-1 eu-west-1 local; do
  pg_run "$WALSHIP" --config "$T/restore-$r.conf" st ls "wal/$seg" 2>/dev/null | grep -q "$seg" ||
    die "$r does not hold $seg after the drain"
done
log "every region holds the last segment $seg; the primary stops"
pg_stop "$T/pg" fast
ws backup-list >"$T/backup-list.txt" 2>&1
sed 's/^/    /' "$T/backup-list.txt"

# ---- restores, per region: the latest point and random moments ----
restore_check() {   # REGION LABEL MODE [EPOCH]
  local r=$1 label=$2 mode=$3 at=${4:-} d target st
  d=$T/r/$label/data
  mkdir -p "$T/r/$label"; [ "$(id -u)" = 0 ] && chown "$(pg_user)" "$T/r/$label"
  if [ "$mode" = latest ]; then
    target=(--target-latest)
  else
    target=(--target-time "$(date -u -d "@$at" '+%Y-%m-%d %H:%M:%S.%6N+00')")
  fi
  R=$((R + 1))
  log "$label: walship restore ${target[*]}"
  pg_run timeout -k 10 600 "$WALSHIP" --config "$T/restore-$r.conf" restore --pgdata "$d" "${target[@]}" \
    --start --port "$RPORT" >"$T/r/$label.log" 2>&1
  st=$?
  if [ $st -ne 0 ]; then
    log "$label: restore ${target[*]} FAILED (exit $st): $(tail -3 "$T/r/$label.log" | tr '\n' ' ')"
  elif ! dump "$RPORT" "$T/r/$label"; then
    log "$label: cannot read the restored instance: $(cat "$T/r/$label.err")"
  elif check "$label (${target[*]})" "$T/r/$label.rows" "$(cat "$T/r/$label.bal")" "$mode" $at; then
    K=$((K + 1))
  fi
  pg_run "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  kill_ws_all
  [ "$KEEP" = 1 ] || rm -rf "$d"
}
ri=0
for r in us-east-1 eu-west-1 local; do
  ri=$((ri + 1))
  restore_check "$r" "$r-latest" latest
  pg_run "$WALSHIP" --config "$T/restore-$r.conf" backup-list --json >"$T/r/$r.backups.json" 2>"$T/r/$r.backups.err" ||
    log "$r: backup-list failed: $(tail -1 "$T/r/$r.backups.err")"
  n=0
  for at in $(python3 "$SOAK_DIR/ledger.py" pick "$T/ledger" "$T/r/$r.backups.json" $((SEED * 31 + ri)) "$POINTS"); do
    n=$((n + 1))
    restore_check "$r" "$r-t$n" time "$at"
  done
  if [ "$n" -lt "$POINTS" ]; then   # each moment that could not be drawn counts as a failed restore
    log "$r: only $n of $POINTS moments between its oldest backup and the last commit"
    R=$((R + POINTS - n))
  fi
done

L=$(sort -u "$T/lost" | wc -l)
[ "$L" -gt 0 ] && log "lost ids: $(sort -u "$T/lost" | head -20 | tr '\n' ' ')"
log "seed $SEED"
echo "$TA transactions acknowledged, $L lost, $R restores ($K correct), $F faults"
[ "$L" -eq 0 ] && [ "$K" -eq "$R" ]
