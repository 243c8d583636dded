#!/bin/bash
# A spool directory another user can write into is not trusted (an
# adversarial review's finding): its pushed markers make wal-push answer 0
# without reading the file, and its lock files are opened, truncated and
# written with the holder's PID, through a symbolic link if one was
# planted.  spool_dir/SYSID and its directories must be real directories
# owned by the user and writable by nobody else; spool_dir itself writable
# by others only with the sticky bit.  file:// regions, no server; root
# only (the "other user" is nobody).
#   - a planted link claims/NAME -> a file of ours: the file is not touched;
#   - a planted marker for a segment the region lacks: not accepted, the
#     segment is archived (exit 0 only with it in the region);
#   - with an async region, an untrusted spool fails the push (exit 2);
#   - the control: our own spool's push-ahead marker is accepted.
set -uo pipefail
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP_SRCDIR/tests/lib/walship.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (to play another user)"
SYS=7000000000000000041
ws_fake_pgdata "$T/pg" "$SYS"
mkdir -p "$T/r1" "$T/r2"
"$WALSHIP" keygen "$T/key" >/dev/null 2>&1
seg() { ws_fake_ready "$T/pg" "$SYS" "$1" "$2"; }   # NAME SEED
push() {  # CONF NAME, and .ready renamed .done on exit 0 as PostgreSQL does
  (cd "$T/pg" && "$WALSHIP" --config "$1" wal-push "pg_wal/$2") || return
  mv "$T/pg/pg_wal/archive_status/$2.ready" "$T/pg/pg_wal/archive_status/$2.done" 2>/dev/null
  return 0
}
on_exit "ws_stop_daemons '$T'"
n() { printf '0000000100000000000000%02X' "$1"; }
obj() { find "$T/$1" -type f -path '*/wal/*' -name "$2" ! -name '.walship-tmp-*' 2>/dev/null | head -n 1; }
conf() {  # FILE SPOOL [async]
  cat >"$1" <<CONF
[global]
key_file = $T/key
spool_dir = $2
parallel = 2
retry_deadline = 5
log_level = info

[region r1]
url = file://$T/r1
mode = sync
CONF
  [ -z "${3:-}" ] || printf '\n[region r2]\nurl = file://%s/r2\nmode = async\n' "$T" >>"$1"
  chmod 600 "$1"
}
conf "$T/a.conf" "$T/spool"
SP=$T/spool/$SYS

# ---- the control: our own spool, a push-ahead marker is honoured ----
seg "$(n 1)" 1
seg "$(n 2)" 2
t "segment 1 archived, segment 2 pushed ahead" push "$T/a.conf" "$(n 1)"
[ -e "$SP/pushed/$(n 2)" ]; ok $? "... segment 2's marker is in our spool"
t "segment 2: the marker is accepted" push "$T/a.conf" "$(n 2)"
! grep -q "archived" <<<"$T_OUT"; ok $? "... nothing pushed again"

# ---- the same spool, now another user's: its marker vouches for nothing ----
seg "$(n 3)" 3
seg "$(n 4)" 4
t "segment 3 archived, segment 4 pushed ahead" push "$T/a.conf" "$(n 3)"
[ -e "$SP/pushed/$(n 4)" ] && [ -n "$(obj r1 "$(n 4)")" ]; ok $? "... segment 4 marked and in r1"
rm -f "$(obj r1 "$(n 4)")"              # the marker now lies
chown -R nobody "$SP" && chmod -R a+rwX "$SP"
t "segment 4 with another user's spool: exit 0" push "$T/a.conf" "$(n 4)"
[ -n "$(obj r1 "$(n 4)")" ]; ok $? "... only because it was archived again (the marker was not taken)"
like "$T_OUT" "not trusted" "... and wal-push says the spool is not trusted"

# ---- a planted link among the claims: the file it names is not touched ----
echo precious >"$T/victim"
seg "$(n 5)" 5
ln -s "$T/victim" "$SP/claims/$(n 5)" && chown -h nobody "$SP/claims/$(n 5)"
t "segment 5 with a planted claims link: archived" push "$T/a.conf" "$(n 5)"
is "$(cat "$T/victim")" "precious" "... the file the link names is untouched"
[ -n "$(obj r1 "$(n 5)")" ]; ok $? "... segment 5 is in r1"

# ---- with an async region an untrusted spool is an error (exit 2) ----
conf "$T/b.conf" "$T/spool" async
seg "$(n 6)" 6
t_fail "segment 6, async region, another user's spool: exit 2 (configuration)" 2 push "$T/b.conf" "$(n 6)"
like "$T_OUT" "not trusted" "... naming the reason"
is "$(cat "$T/victim")" "precious" "... the victim still untouched"

# ---- our own spool, but group-writable, or a claims dir that is a link ----
chown -R root "$SP" && chmod -R go-w "$SP" && chmod 0770 "$SP"
t_fail "a group-writable spool directory: exit 2 with an async region" 2 push "$T/b.conf" "$(n 6)"
chmod 0700 "$SP" && mkdir -p "$T/elsewhere" && rm -rf "$SP/claims" && ln -s "$T/elsewhere" "$SP/claims"
t_fail "a claims directory that is a symbolic link: exit 2 with an async region" 2 push "$T/b.conf" "$(n 6)"
rm -f "$SP/claims"
t "the spool put right: segment 6 archived and spooled" push "$T/b.conf" "$(n 6)"

# ---- root on a spool the archiving user owns (a command run with sudo) ----
# root's directories there would be refused by that user's wal-push
conf "$T/c.conf" "$T/spool-n" async
mkdir -p "$T/spool-n" && chown nobody "$T/spool-n" && chmod 0700 "$T/spool-n"
seg "$(n 7)" 7
t_fail "wal-push as root, async region, spool_dir owned by nobody: exit 2" 2 push "$T/c.conf" "$(n 7)"
like "$T_OUT" "belongs to nobody.*sudo -u nobody" "... saying to run it as that user"
is "$(ls -A "$T/spool-n")" "" "... and nothing was made in it"
# status as root reads the archiving user's spool: the backlog is known
rm -rf "$T/spool-s" && cp -a "$T/spool" "$T/spool-s" && chown -R nobody "$T/spool-s" && chmod -R go-w "$T/spool-s"
before=$(find "$T/spool-s" | sort)
conf "$T/d.conf" "$T/spool-s" async
out=$(cd "$T/pg" && "$WALSHIP" --config "$T/d.conf" status 2>&1)
unlike "$out" "backlog unknown" "status as root on another user's spool: the backlog is known"
like "$out" "spool: +[0-9]+ files" "... and shown"
is "$(find "$T/spool-s" | sort)" "$before" "... and status made nothing in it"
done_testing
