/*
 * cmd_restore_standby — what `restore --standby` prints (cmd_standby.h).
 */
#include <limits.h>
#include <stdio.h>

#include "cmd_restore_conf.h"
#include "cmd_standby.h"

void restore_standby_not_started(const char *pg_bin, const char *pgdata)
{
    char qbin[PATH_MAX * 4 + 16], qdata[PATH_MAX * 4];

    restore_conf_shell_quote(qbin, sizeof qbin, pg_bin, "/pg_ctl");
    restore_conf_shell_quote(qdata, sizeof qdata, pgdata, "");
    printf("standby settings written to %s/postgresql.auto.conf (standby.signal, no recovery target); start it "
           "with:\n  %s -D %s start\n",
           pgdata, qbin, qdata);
    printf("It replays the archive until it is promoted; watch it with:\n  walship status --standby %s\n"
           "and promote it with:\n  walship promote %s\n",
           qdata, qdata);
}

void restore_standby_started(const struct rcv_result *st, const char *backup, const char *region, const char *pgdata,
                             double fetch_s, double ready_s)
{
    char qdata[PATH_MAX * 4];

    restore_conf_shell_quote(qdata, sizeof qdata, pgdata, "");
    printf("standby running: backup %s from region %s, replaying the archive\n", backup, region);
    printf("  accepting read-only connections at LSN %s%s%s%s%s, logged in as %s\n", st->lsn[0] ? st->lsn : "?",
           st->tli[0] ? ", timeline " : "", st->tli, st->xact_time[0] ? ", last transaction at " : "",
           st->xact_time, st->user[0] ? st->user : "?");
    printf("  time: fetch %.1f s, until read-only connections %.1f s, total %.1f s\n", fetch_s, ready_s,
           fetch_s + ready_s);
    printf("  it never promotes on its own; watch it with: walship status --standby %s\n"
           "  promote it with: walship promote %s\n",
           qdata, qdata);
}
