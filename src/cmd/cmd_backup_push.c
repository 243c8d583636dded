/*
 * cmd_backup_push — `walship backup-push`: a full base backup of the running
 * cluster to every region.  Progress on a terminal, quiet under cron; one
 * summary line at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "cmd.h"
#include "keys.h"
#include "log.h"
#include "note.h"
#include "retention.h"
#include "util.h"

static void human(uint64_t b, char *out, size_t n)
{
    if (b >= (1ULL << 30))
        snprintf(out, n, "%.1f GB", (double)b / (1 << 30));
    else if (b >= (1ULL << 20))
        snprintf(out, n, "%.1f MB", (double)b / (1 << 20));
    else
        snprintf(out, n, "%.1f kB", (double)b / 1024);
}

struct tty_progress {
    uint64_t t0;
};

static void show_progress(const struct bk_progress *p, void *arg)
{
    struct tty_progress *tp = arg;
    double secs = (double)(now_ms() - tp->t0) / 1000.0;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    char done[32], total[32];

    human(p->done, done, sizeof done);
    human(p->total, total, sizeof total);
    fprintf(stderr, "\r%s / %s (%3.0f%%), %.0f MB/s, ETA %.0f s   ", done, total,
            p->total ? 100.0 * (double)p->done / (double)p->total : 100.0, rate / (1 << 20),
            rate > 0 && p->total > p->done ? (double)(p->total - p->done) / rate : 0.0);
    fflush(stderr);
}

int cmd_backup_push_run(struct cmd_ctx *ctx)
{
    struct config *c = ctx->conf;
    struct keyring *kr = NULL;
    struct bk_opts o;
    struct bk_result res;
    struct tty_progress tp;
    struct err e = ERR_INIT;
    char orig[32], stored[32];
    int i, rc;

    memset(&o, 0, sizeof o);
    o.notes = &note_log_sink;
    for (i = 1; i < ctx->argc; i++) {
        const char *a = ctx->argv[i], *v;

        if (strcmp(a, "--pgdata") == 0 || strcmp(a, "--pg-conninfo") == 0 || strcmp(a, "--part-size") == 0) {
            if ((rc = cmd_option_value(ctx, &i, &v)) != 0)
                return rc;
            if (strcmp(a, "--part-size") == 0) {
                if (parse_size(v, &o.part_size, &e) < 0 || o.part_size < (1u << 20))
                    return cmd_usage("backup-push", "bad --part-size (at least 1MB)");
            } else if (config_set(c, strcmp(a, "--pgdata") == 0 ? "pgdata" : "pg_conninfo", v, a, &e) < 0) {
                return cmd_fail(&e);
            }
        } else if (strcmp(a, "--incremental") == 0) {
            o.incremental = 1;
        } else {
            return cmd_usage("backup-push", "unknown argument \"%s\"", a);
        }
    }
    if (config_require_regions(c, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0)
        return cmd_fail(&e);
    if (isatty(STDERR_FILENO)) {
        tp.t0 = now_ms();
        o.progress = show_progress;
        o.progress_arg = &tp;
    }
    rc = bk_push(c, kr, &o, &res, &e);
    if (o.progress != NULL)
        fprintf(stderr, "\n");
    human(res.original_size, orig, sizeof orig);
    human(res.stored_size, stored, sizeof stored);
    if (rc < 0) {
        for (i = 0; i < res.nregions && res.name[0]; i++)
            if (!res.regions[i].ok && res.regions[i].err.msg[0])
                log_error("region %s: %s", c->regions[i].name, res.regions[i].err.msg);
        keys_free(kr);
        return cmd_fail(&e);
    }
    printf("backup %s: %s in %zu files, stored %s (%.1f%%) in %zu parts, %.1f s; regions:", res.name, orig,
           res.nfiles, stored, res.original_size ? 100.0 * (double)res.stored_size / (double)res.original_size : 0,
           res.nparts, res.seconds);
    for (i = 0; i < res.nregions; i++)
        printf(" %s ok", c->regions[i].name);
    printf("\n");
    if (res.incremental)
        printf("backup %s is an incremental of backup %s\n", res.name, res.parent);
    if (res.recovery_settings[0])
        log_warning("the configuration backed up in %s carries recovery settings: %s. walship restore comments "
                    "them out; another tool, or starting the files as they are, would stop recovery at that "
                    "old target. Remove them from the cluster (docs/RESTORE.md).",
                    res.name, res.recovery_settings);
    rc = 0;
    /* Retention (docs/RETENTION.md); a failure here leaves the new backup
     * valid.  The new backup is protected by name: a clock that went back
     * may sort it among the old ones. */
    for (i = 0; c->delete_after_backup && i < c->nregions; i++) {
        struct ret_plan plan;
        struct ret_done done;

        if (ret_region(c, &c->regions[i], kr, &note_log_sink, time(NULL), 0, res.name, &plan, &done, &e) < 0) {
            log_warning("region %s: retention failed (the backup is valid): %s", c->regions[i].name, e.msg);
            rc = EXIT_FAILURE3;
        } else {
            cmd_ret_branch_warn(c->regions[i].name, &plan);
            if (done.backups || done.wal)
                log_info("region %s: retention deleted %zu backups and %zu WAL files", c->regions[i].name,
                         done.backups, done.wal);
        }
        if (done.kept_locked)
            log_info("region %s: %llu objects are kept under Object Lock until their retention ends",
                     c->regions[i].name, (unsigned long long)done.kept_locked);
        ret_plan_free(&plan);
        err_clear(&e);
    }
    keys_free(kr);
    return rc;
}
