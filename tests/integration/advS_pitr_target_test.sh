#!/bin/bash
# restore never reports success on the wrong data (adversarial pass S), a
# real PostgreSQL 15 archiving into a file:// region:
#   - a target PostgreSQL stops at before the chosen backup is consistent
#     (an xid committed while backup B1 ran) with --target-action shutdown:
#     PostgreSQL FATALs ("requested recovery stop point is before
#     consistent recovery point") and then logs "database system is shut
#     down"; restore used to call that "shut down at the target", exit 0;
#   - a target time whose offset is run together ("-100"): PostgreSQL
#     reads it as -01:00, restore read -10:00, a time 9 hours later, and
#     picked backup B2, taken after the target while the database was idle.
#     PostgreSQL replayed no transaction before its consistent point, so
#     nothing stopped it: exit 0 with a row committed after the target
#     (one the backup's files already held);
#   - a transaction that was rolled back as --target-xid: PostgreSQL stops
#     at its abort; restore says so;
#   - a restore point or xid PostgreSQL never reached from the newest
#     backup: exit 3, and the message says an older backup (--backup) may
#     hold it;
#   - a time after the last transaction in the archive: exit 3 (PostgreSQL
#     cannot tell it reached it), and the message says so;
#   - B2 carries log_min_messages = fatal: PostgreSQL's LOG lines restore
#     reads ("recovery stopping") were not written, and every restore
#     --start from it failed ("did not say it reached the recovery
#     target"), exit 3 with the target reached;
#   - B2's postgresql.conf names the primary's data_directory: restore
#     --start started the primary's own directory (the primary stopped),
#     writable and archiving, and said "NOT promoted", exit 3; and its
#     external_pid_file, the primary's, was written by the restored
#     instance (and removed when it stopped).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

PGPORT=$(pg_free_port); RPORT=$(pg_free_port)
U=$(pg_user)
ws_mkdirs "$T/r1" "$T/spool"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
CONF=$T/a.conf
ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")" "retry_deadline = 5"
ws_region "$CONF" r1 "file://$T/r1" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
on_exit "ws_stop_daemons '$T'"

pg_init "$T/pg" || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_conf "$T/pg" "autovacuum = off"   # no transaction but ours (an idle backup must stay idle)
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
rsql() { PGCONNECT_TIMEOUT=5 pg_run timeout 20 "$PG_BIN/psql" -X -q -At -h "$T/pg/sock" -p "$RPORT" -U postgres -d postgres -c "$1" 2>/dev/null; }
on_exit "for d in $T/x*/data; do runuser -u $U -- $PG_BIN/pg_ctl -D \$d -m immediate stop; done"
newdir() { rm -rf "$T/x$1"; mkdir -p "$T/x$1"; chown "$U" "$T/x$1"; echo "$T/x$1/data"; }
stop_r() { pg_run "$PG_BIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1; }
took() { sed -n 's/^backup \([0-9TZ]*\): .*/\1/p' <<<"$T_OUT" | head -1; }
now_utc() { sql "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"; }

sql "create table ledger (id int primary key, xid bigint default txid_current(), lsn pg_lsn default pg_current_wal_lsn())"
sql "insert into ledger(id) values (1)"
sql "select pg_create_restore_point('before_b1')" >/dev/null

# ---- B1, with transactions committing while it runs ----
# (they commit from before the backup starts until after it ends, however
# slow either is: the loop stops when table bg_stop appears)
pg_run "$PG_BIN/psql" -X -q -h "$T/pg/sock" -p "$PGPORT" -U postgres -d postgres -c \
  "do \$\$ begin for i in 1000..900000 loop insert into ledger(id) values (i); commit; perform pg_sleep(0.005);
   exit when exists (select 1 from pg_class where relname = 'bg_stop'); end loop; end \$\$" &
BG=$!
bg_started() { [ "$(sql 'select count(*) > 0 from ledger where id >= 1000')" = t ]; }
wait_for 60 bg_started
ok $? "transactions commit in the background"
t "backup-push B1 while transactions commit" ws backup-push
B1=$(took)
sql "create table bg_stop ()"
wait "$BG"
sleep 1.2

# ---- rows a (id 10) and b (id 11) around a target time, then B2 (idle), then c (id 12) ----
sql "insert into ledger(id) values (10)"
sleep 1.2
TA=$(now_utc)
sleep 1.2
sql "insert into ledger(id) values (11)"
# a cluster whose log is quiet: B2 carries it (postgresql.auto.conf); and
# whose postgresql.conf names its data directory (its own: harmless there)
sql "alter system set log_min_messages = fatal" && sql "select pg_reload_conf()" >/dev/null
pg_conf "$T/pg" "data_directory = '$T/pg/data'"
pg_conf "$T/pg" "external_pid_file = '$T/pg/ext.pid'"   # read at start only: the primary's is still unset
sleep 1.2
t "backup-push B2 on an idle database" ws backup-push
B2=$(took)
sleep 1.2
ABORTED=$(sql "begin; insert into ledger(id) values (13); select txid_current(); rollback")
sql "insert into ledger(id) values (12)"
sql "select pg_create_restore_point('after_b2')" >/dev/null
last=$(sql "select pg_walfile_name(pg_switch_wal())")
wait_for 120 test -e "$T/r1/wal/$last"
ok $? "archived through $last"

# B1's start and stop LSN, and an xid that committed in between
read -r S1 E1 <<<"$(ws backup-list --json | python3 -c "import json,sys; b=[x for r in json.load(sys.stdin) for x in r['backups'] if x['name']=='$B1'][0]; print(b['start_lsn'], b['stop_lsn'])")"
XMID=$(sql "select l.xid from ledger l join ledger n on n.id = l.id + 1 where l.id >= 1000 and l.lsn > '$S1' and n.lsn < '$E1' order by l.id limit 1")
diag "B1 $B1 ($S1 .. $E1), xid $XMID committed while it ran; B2 $B2; target time $TA UTC; aborted xid $ABORTED"

# ---- a stop before consistency, --target-action shutdown ----
if [ -n "$XMID" ]; then
  d=$(newdir 1)
  t_fail "xid $XMID (committed while B1 ran) from B1, --target-action shutdown: exit 3" 3 \
    ws restore --pgdata "$d" --backup "$B1" --target-xid "$XMID" --target-action shutdown --start --port "$RPORT"
  like "$T_OUT" "NOT promoted" "...not reported as a shutdown at the target"
  like "$T_OUT" "before consistent recovery point" "...quoting PostgreSQL's reason"
  unlike "$T_OUT" "restore complete" "...and never 'restore complete'"
  like "$T_OUT" "before backup $B1 was consistent.*--backup" "...saying an older backup may reach it"
  grep -q "requested recovery stop point is before consistent recovery point" "$d/walship-restore.log"
  ok $? "...which is what PostgreSQL did"
  stop_r "$d"
else
  ok 1 "no transaction committed while B1 ran (the background loop was too slow?)"
fi

# ---- a run-together offset: -100 is -01:00 to PostgreSQL ----
L=$(python3 -c "import datetime as d; t=d.datetime.strptime('$TA','%Y-%m-%d %H:%M:%S.%f'); print((t-d.timedelta(hours=1)).strftime('%Y-%m-%d %H:%M:%S.%f'))")
is "$(sql "set timezone = UTC; select '$L-100'::timestamptz = '$TA+00'::timestamptz")" t \
  "PostgreSQL reads '$L-100' as $TA UTC"
d=$(newdir 2)
ws restore --pgdata "$d" --target-time "$L-100" --start --port "$RPORT" >"$T/r2.out" 2>&1
st=$?
T_OUT=$(cat "$T/r2.out")
if [ "$st" = 0 ]; then
  is "$(rsql 'select string_agg(id::text, $$,$$ order by id) from ledger where id < 1000')" "1,10" \
    "restore to '$L-100': exit 0 and exactly the rows before it (a, not b)"
  like "$T_OUT" "backup $B1" "...from B1, the backup that ended before the target"
else
  ok 1 "restore to '$L-100' exited $st"
  diag "$(tail -5 "$T/r2.out")"
fi
stop_r "$d"
t_fail "an offset of 3 digits or more without ':' beyond 15:59 is refused" 2 \
  ws restore --pgdata "$(newdir 3)" --target-time "$L+1600"

# ---- a rolled-back transaction as the target ----
d=$(newdir 4)
t "xid $ABORTED (rolled back): PostgreSQL stops at its abort" ws restore --pgdata "$d" --target-xid "$ABORTED" --start --port "$RPORT"
like "$T_OUT" "rolled back" "...and restore says the transaction was rolled back"
is "$(rsql 'select string_agg(id::text, $$,$$ order by id) from ledger where id < 1000')" "1,10,11" \
  "...the rows committed before it"
stop_r "$d"

# ---- a restore point before the newest backup ----
d=$(newdir 5)
t_fail "--target-name before_b1 (before B2 and B1 began): exit 3" 3 \
  ws restore --pgdata "$d" --target-name before_b1 --start --port "$RPORT"
like "$T_OUT" "recovery ended before configured recovery target" "...PostgreSQL's reason"
like "$T_OUT" "after backup $B2 began.*older backup with --backup" "...and the hint: an older backup, with --backup"
stop_r "$d"
d=$(newdir 6)
t "--target-name after_b2 (from B2, whose log_min_messages is fatal)" ws restore --pgdata "$d" --target-name after_b2 --start --port "$RPORT"
is "$(rsql 'select string_agg(id::text, $$,$$ order by id) from ledger where id < 1000')" "1,10,11,12" \
  "...every row before it"
[ ! -e "$T/pg/ext.pid" ]
ok $? "...and the backup's external_pid_file (the primary's) was not written"
stop_r "$d"

d=$(newdir 8)
t "--target-name after_b2 --target-action shutdown (from B2)" ws restore --pgdata "$d" --target-name after_b2 \
  --target-action shutdown --start --port "$RPORT"
like "$T_OUT" "shut down at the target" "...a shutdown at the target"
d=$(newdir 10)
t "--target-immediate --target-action shutdown (from B2: a server that stops within a poll)" \
  ws restore --pgdata "$d" --target-immediate --target-action shutdown --start --port "$RPORT"
like "$T_OUT" "shut down at the target" "...a shutdown at the target"
rep=$(sed -n 's/.*replay \([0-9.]*\) s.*/\1/p' <<<"$T_OUT")
python3 -c "import sys; sys.exit(0 if float('${rep:-99}') < 8 else 1)"
ok $? "...seen at once, not after the 10 s wait for a server never seen running (replay $rep s)"
grep -q "shutdown at recovery target" "$d/walship-restore.log"
ok $? "...which is what PostgreSQL did"

# ---- a time no transaction ended after ----
sleep 1.2
TEND=$(now_utc)
d=$(newdir 7)
t_fail "--target-time $TEND (no transaction ended after it): exit 3" 3 \
  ws restore --pgdata "$d" --target-time "$TEND+00" --start --port "$RPORT"
like "$T_OUT" "NOT promoted" "...not promoted"
like "$T_OUT" "no transaction ended after $TEND" "...and says why PostgreSQL could not tell it got there"
stop_r "$d"

# ---- the primary's data directory, named in the backup's postgresql.conf ----
# A restore on the primary's host (a dropped table: restore beside it) used
# to start PostgreSQL on the primary's own directory: refused while the
# primary runs (its lock file), and, once it was stopped, started as a
# primary, writable and archiving, while restore said "NOT promoted".
pg_stop "$T/pg" fast
d=$(newdir 9)
t "the primary stopped: restore --target-latest from B2 (data_directory = the primary's)" \
  ws restore --pgdata "$d" --target-latest --start --port "$RPORT"
like "$T_OUT" "commented out data_directory" "...which restore comments out, saying so"
is "$(rsql 'select current_setting($$data_directory$$)')" "$d" "...the restored instance runs in --pgdata"
is "$(rsql 'select string_agg(id::text, $$,$$ order by id) from ledger where id < 1000')" "1,10,11,12" \
  "...with every row"
[ ! -e "$T/pg/data/postmaster.pid" ]
ok $? "...and the primary's data directory was not started"
stop_r "$d"
stop_r "$T/pg/data"

done_testing
