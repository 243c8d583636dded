#!/usr/bin/env bash
# Adversarial pass Z: command-line options that meant something other than
# they look.  getopt_long takes any unambiguous abbreviation, so
# "restore --pgdata A --pgd B" restored into B (cmd_option_twice compares
# spellings and saw two options), "restore --all" meant --allow-unmounted,
# and "--stand" --standby; and a value is taken from the next argument even
# when that is an option, so "restore --pgdata --start" restored into
# ./--start and did not start, and "promote --pg-user --force DIR" promoted
# without --force.  Now an abbreviation, or an option where its value
# should be, is a usage error (exit 2); "--pgdata=--start" still gives that
# value.  The same for the global options ("--config --region R").
# No server needed: the errors come before any storage is opened.
set -u
. "$(dirname "$0")/../lib/tap.sh"

cd "$T" || exit 1
mkdir -p ra
F=(--from "file://$T/ra")

t_fail "restore --pgdata --start: the value was forgotten" 2 "$WALSHIP" "${F[@]}" restore --pgdata --start
like "$T_OUT" "--pgdata needs a value, and \"--start\" is an option" "  says so"
[ ! -e "$T/--start" ]; ok $? "  nothing restored into ./--start"
t_fail "restore --pgdata A --pgd B: an abbreviation" 2 "$WALSHIP" "${F[@]}" restore --pgdata "$T/a" --pgd "$T/b"
like "$T_OUT" "\"--pgd\" stands for --pgdata: write it in full" "  names both spellings"
t_fail "restore --all (it meant --allow-unmounted)" 2 "$WALSHIP" "${F[@]}" restore --pgdata "$T/a" --all
like "$T_OUT" "\"--all\" stands for --allow-unmounted" "  says what it stood for"
t_fail "restore --stand (it meant --standby)" 2 "$WALSHIP" "${F[@]}" restore --pgdata "$T/a" --stand
t_fail "restore --pgdata=A --pgdat=B" 2 "$WALSHIP" "${F[@]}" restore --pgdata="$T/a" --pgdat="$T/b"
o=$("$WALSHIP" "${F[@]}" restore --pgdata=--start 2>&1)
unlike "$o" "is an option|stands for" "--pgdata=--start gives that value on purpose"
rm -rf -- "$T/--start"

t_fail "promote --pg-user --force DIR: the value was forgotten" 2 "$WALSHIP" promote --pg-user --force "$T/a"
like "$T_OUT" "--pg-user needs a value, and \"--force\" is an option" "  says so"
t_fail "promote --forc DIR: an abbreviation" 2 "$WALSHIP" promote --forc "$T/a"

printf '[region a]\nurl = file://%s/ra\n[region b]\nurl = file://%s/rb\n' "$T" "$T" >c.conf
chmod 600 c.conf
mkdir -p rb
t_fail "copy --from a --to b --fr b: an abbreviation" 2 "$WALSHIP" --config "$T/c.conf" copy --from a --to b --fr b
t_fail "copy --from --to b: the value was forgotten" 2 "$WALSHIP" --config "$T/c.conf" copy --from --to b

t_fail "--config --region a status: the value was forgotten" 2 "$WALSHIP" --config --region a status
like "$T_OUT" "option --config needs a value" "  says so"
t_fail "the same before wal-fetch: 250, not 2 (restore_command)" 250 \
  "$WALSHIP" --config --region a wal-fetch 000000010000000000000001 pg_wal/RECOVERYXLOG

done_testing
