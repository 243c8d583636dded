/*
 * cmd_wal_push — `walship wal-push PATH`, PostgreSQL's archive_command
 * (the engine is src/archive/wal_push.h), and `walship ship`, the shipper
 * of async regions' spooled files (src/archive/ship.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cmd.h"
#include "log.h"
#include "mapread.h"
#include "note.h"
#include "ship.h"
#include "spool.h"
#include "util.h"
#include "wal.h"
#include "wal_push.h"

int cmd_wal_push_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct keyring *kr = NULL;
    struct wal_push_result res;
    struct wal_name w;
    struct err e = ERR_INIT;
    const char *name = NULL, *slash;
    int rc;
    uint64_t t0 = now_ms();

    if (ctx->argc != 2)
        return cmd_usage("wal-push", "needs exactly one argument: the path of the WAL file (%%p)");
    /* before any thread, and inherited by the archiver process it forks:
     * segments are read from a mapping, guarded (src/io/mapread.h) */
    (void)mapread_install();
    slash = strrchr(ctx->argv[1], '/');
    name = slash ? slash + 1 : ctx->argv[1];
    memset(&res, 0, sizeof res);
    if (wal_parse(name, &w, &e) < 0 || config_require_regions(c, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0) {
        rc = -1;
    } else {
        rc = wal_push(c, kr, ctx->argv[1], &archd_spawner, &note_log_sink, &res, &e);
        if (res.ahead_err.code != ERR_OK)
            log_warning("%s", res.ahead_err.msg);
        if (rc == 0 && res.via_process)
            log_debug("%s archived by the archiver process", name);
        if (rc == 0 && !res.pushed_ahead_before)
            log_info("archived %s (%d uploaded, %d already there, %d spooled) in %llu ms", name, res.rep.uploaded,
                     res.rep.already, res.rep.spooled, (unsigned long long)(res.pushed_ms - t0));
        if (res.ahead_pushed || res.ahead_failed)
            log_info("pushed ahead %lu segments%s", res.ahead_pushed,
                     res.ahead_failed ? " (some failed; PostgreSQL retries them)" : "");
        if (res.shipper_spool != NULL)
            ship_spawn(c, res.shipper_spool);
        spool_free(res.shipper_spool);
    }
    keys_free(kr);
    if (rc == 0)
        return 0;
    log_error("could not archive %s: %s", ctx->argv[1], e.msg);
    rc = err_exit_status(&e);
    return rc == 1 ? EXIT_FAILURE3 : rc;    /* a missing %p is a failure, not "not found" */
}

/* `walship ship` by hand or from a timer: the cluster of pgdata, else the
 * only cluster with a spool under spool_dir (each region's identity is
 * checked against it before anything is shipped). */
static int ship_cluster(struct cmd_ctx *ctx, const struct keyring *kr, uint64_t *sysid, struct err *e)
{
    struct cluster_info ci;
    char **names = NULL;
    size_t n = 0;
    int rc;

    if (cmd_cluster(ctx, kr, 0, &ci, &(struct err)ERR_INIT) == 0) {
        *sysid = ci.sysid;
        return 0;
    }
    if (spool_clusters(ctx->conf->spool_dir, &names, &n, e) < 0)
        return -1;
    if (n == 1) {
        rc = parse_u64(names[0], 1, UINT64_MAX - 1, sysid, e);
    } else if (n == 0) {
        *sysid = 0;
        rc = err_setf(e, ERR_NOTFOUND, "the spool %s is empty: nothing to ship", ctx->conf->spool_dir);
    } else {
        rc = err_setf(e, ERR_CONFIG, "the spool %s holds the queues of %zu clusters: set pgdata to say which "
                      "one this configuration ships", ctx->conf->spool_dir, n);
    }
    spool_names_free(names, n);
    return rc;
}

int cmd_ship_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct ship_opts o = { 0, 0, &note_log_sink, 0 };
    struct ship_stats stats;
    struct keyring *kr = NULL;
    struct spool *sp = NULL;
    struct err e = ERR_INIT;
    uint64_t sysid = 0;
    int i, rc;

    for (i = 1; i < ctx->argc; i++) {
        if (strcmp(ctx->argv[i], "--once") == 0) {
            o.once = 1;
        } else if (strcmp(ctx->argv[i], "--system-identifier") == 0 && i + 1 < ctx->argc) {
            if (parse_u64(ctx->argv[++i], 1, UINT64_MAX - 1, &sysid, &e) < 0)
                return cmd_usage("ship", "bad --system-identifier: %s", e.msg);
        } else {
            return cmd_usage("ship", "unknown argument \"%s\"", ctx->argv[i]);
        }
    }
    if (config_require_regions(c, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0 ||
        (sysid == 0 && ship_cluster(ctx, kr, &sysid, &e) < 0) ||
        spool_open(c->spool_dir, c->spool_max_bytes, sysid, &sp, &e) < 0) {
        keys_free(kr);
        if (e.code == ERR_NOTFOUND) {
            log_info("%s", e.msg);
            return 0;
        }
        return cmd_fail(&e);
    }
    rc = ship_run(c, kr, sp, &o, &stats, &e);
    keys_free(kr);
    if (rc < 0) {
        spool_free(sp);
        return cmd_fail(&e);
    }
    if (stats.orphaned)
        log_warning("%lu spooled files wait for regions that are not configured: see %s/queue", stats.orphaned,
                    spool_dir(sp));
    spool_free(sp);
    if (!stats.ran)
        log_info("another shipper is running");
    else if (stats.shipped || stats.already)
        log_info("shipped %lu files (%lu were already there)", stats.shipped, stats.already);
    return 0;
}
