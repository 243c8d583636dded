/*
 * cmd_restore_standby — what `restore --standby` prints (cmd_standby.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_restore_conf.h"
#include "cmd_standby.h"
#include "log.h"
#include "util.h"

void restore_standby_env_warning(const struct config *c)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    };
    char set[512] = "";
    size_t i, len = 0;

    if (c->path != NULL || c->nregions < 1 || c->regions[0].url == NULL || !str_has_prefix(c->regions[0].url, "s3://"))
        return;
    for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        int k;

        if (v == NULL || v[0] == '\0')
            continue;
        k = snprintf(set + len, sizeof set - len, "%s%s", len ? ", " : "", vars[i]);
        if (k > 0 && (size_t)k < sizeof set - len)
            len += (size_t)k;
    }
    if (len > 0)
        log_warning("the standby's restore_command names no credentials: its wal-fetch takes them from the "
                    "server's environment (%s here). A server started another way after a restart (pg_ctl, systemd) "
                    "lacks them and every fetch fails: set them in that environment, or make the standby from a "
                    "configuration file that names them (credentials = ...)", set);
}

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
