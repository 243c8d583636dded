#!/bin/bash
# What a base backup carries from a data directory of unusual shape, and
# how backup-fetch writes it back (file:// region, PostgreSQL 15): file
# names that are not ASCII or not UTF-8 (libarchive in the C locale
# refused the first, JSON the second); a cluster with group access
# (initdb -g), whose data directory must come back 0750; a tablespace
# inside the data directory, restored to its original place (it was
# carried twice and the restore failed on the second copy); tablespace
# directories that overlap the data directory or each other are refused
# before anything is written (they were mixed into one tree).
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/swift.sh"   # free_ports
. "$TOP_SRCDIR/tests/lib/pg.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"
on_exit "ws_stop_daemons '$T'"

[ -x "$PG_BIN/postgres" ] || skip_all "PostgreSQL 15 is not installed"

read -r PGPORT <<<"$(free_ports 1)"
CONF=$T/walship.conf
ws_mkdirs "$T/spool" "$T/repo"
ws_key "$T/key" || { echo "Bail out! keygen"; exit 1; }
ws_conf "$CONF" "$(ws_pg_conninfo "$T/pg" "$PGPORT")"
ws_region "$CONF" one "file://$T/repo" "mode = sync"
ws() { pg_run "$WALSHIP" --config "$CONF" "$@"; }
newdir() { mkdir -p "$T/$1"; chown "$(pg_user)" "$T/$1"; echo "$T/$1"; }

pg_init "$T/pg" -g || { echo "Bail out! initdb"; exit 1; }
ws_pg_archiving "$T/pg" "$CONF"
pg_start "$T/pg" "$PGPORT" || { echo "Bail out! postgres did not start"; exit 1; }
on_exit "pg_stop $T/pg immediate"
sql() { pg_sql "$T/pg" "$PGPORT" "$1"; }
D=$T/pg/data

# ---- a tablespace inside the data directory (PostgreSQL warns, and allows it) ----
pg_run mkdir "$D/tsin"
sql "create tablespace tsin location '$D/tsin'" 2>/dev/null
sql "create table tin (id int) tablespace tsin; insert into tin select generate_series(1, 5000)"
sql "checkpoint"

# ---- file names ----
pg_run bash -c "printf one >\"\$1/caf\$(printf '\\303\\251')\"; printf two >\"\$1/lat\$(printf '\\344')in\";
  printf three >\"\$1/with space\"; printf four >\"\$1/new
line\"" _ "$D"
pg_run ln -s /etc/hostname "$D/linked.conf"
t "backup-push of a data directory with names in UTF-8, in Latin-1, with a space and a newline" ws backup-push
like "$T_OUT" "1 symbolic link in PGDATA \\(linked.conf\\) is not in the backup" \
  "... warning of the symbolic link it leaves out (not a tablespace, not pg_wal)"
pg_run rm -f "$D/linked.conf"
R=$(newdir names)
t "backup-fetch of it" ws backup-fetch LATEST "$R/data" --tablespace-map "$D/tsin=$R/tsin"
names_same() {
  python3 - "$D" "$R/data" <<'PY'
import hashlib, os, sys
a, b = (p.encode() for p in sys.argv[1:3])
for n in (b'caf\xc3\xa9', b'lat\xe4in', b'with space', b'new\nline'):
    pa, pb = os.path.join(a, n), os.path.join(b, n)
    if open(pa, 'rb').read() != open(pb, 'rb').read() or os.stat(pa).st_mode != os.stat(pb).st_mode:
        sys.exit('%r differs' % n)
PY
}
t "every such file comes back under the same bytes, with its content and mode" names_same

# ---- group access ----
is "$(stat -c %a "$R/data") $(stat -c %a "$R/data/global") $(stat -c %a "$R/data/PG_VERSION")" "750 750 640" \
  "a cluster with group access (initdb -g) comes back with its data directory 0750, as pg_basebackup makes it"
rsql_mode() { pg_run "$PG_BIN/postgres" -D "$R/data" -C data_directory_mode 2>&1; }
is "$(rsql_mode)" "488" "so PostgreSQL keeps making its files readable by the group (data_directory_mode 0750 = 488)"

# ---- tablespaces that would overlap the data directory, or each other ----
for bad in "data" "data/base" "." "data/./x/../pg_tblspc"; do
  O=$(newdir "overlap-$(echo "$bad" | tr -c 'a-z\n' _)")
  t_fail "a tablespace mapped to \"$bad\" of the restore is refused (exit 2)" 2 \
    ws backup-fetch LATEST "$O/data" --tablespace-map "$D/tsin=$O/$bad"
  like "$T_OUT" "would be restored into" "and the message says why"
  is "$(ls -A "$O")" "" "and nothing was created"
done
# the same, reached through a symbolic link: DIR/base seen through "$O/via"
O=$(newdir overlap-link)
mkdir -p "$O/data"; chown "$(pg_user)" "$O/data"
ln -s "$O/data" "$O/via"
t_fail "a tablespace mapped through a symbolic link into the data directory's base/ is refused (exit 2)" 2 \
  ws backup-fetch LATEST "$O/data" --tablespace-map "$D/tsin=$O/via/base"
like "$T_OUT" "where the backup writes" "and the message says why"
is "$(ls -A "$O/data")" "" "and nothing was created"
t_fail "the data directory given through a symbolic link, a tablespace mapped to its real base/: refused" 2 \
  ws backup-fetch LATEST "$O/via" --tablespace-map "$D/tsin=$O/data/base"
is "$(ls -A "$O/data")" "" "and nothing was created"
sql "create tablespace ts2 location '$(newdir ts2)'" 2>/dev/null
sql "create table t2 (id int) tablespace ts2; insert into t2 values (1); checkpoint"
t "a second tablespace" ws backup-push
O=$(newdir nested)
t_fail "two tablespaces mapped one inside the other are refused (exit 2)" 2 \
  ws backup-fetch LATEST "$O/data" --tablespace-map "$D/tsin=$O/ts" --tablespace-map "$T/ts2=$O/ts/PG_15"
like "$T_OUT" "one inside the other" "and the message says so"
t "mapped side by side, inside the data directory where the backup has nothing, they restore" \
  ws backup-fetch LATEST "$O/data" --tablespace-map "$D/tsin=$O/data/tsa" --tablespace-map "$T/ts2=$O/data/tsb"

# ---- the tablespace inside the data directory, restored where it was ----
tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
TSIN_SUMS=$(tree_sums "$D/tsin")
pg_stop "$T/pg"
mv "$T/pg" "$T/pg.orig"
mkdir -p "$T/pg"; chown "$(pg_user)" "$T/pg"
t "backup-fetch to the original data directory, its tablespace inside it" \
  ws backup-fetch LATEST "$D" --tablespace-map "$T/ts2=$(newdir ts2-restored)"
is "$(tree_sums "$D/tsin")" "$TSIN_SUMS" "the tablespace comes back whole, in the place its link names"
like "$(readlink "$D"/pg_tblspc/*)" "^$D/tsin\$" "and the link is the original one"
rm -rf "$T/pg"
mv "$T/pg.orig" "$T/pg"

done_testing
