/*
 * cmd_wal_push — `walship wal-push PATH`, PostgreSQL's archive_command.
 *
 * Archives PATH (pg_wal/NAME, relative to PGDATA where PostgreSQL runs us)
 * to every region, and pushes ahead the next segments PostgreSQL has marked
 * .ready in archive_status, in parallel.  What was pushed ahead is recorded
 * in spool/pushed/NAME; when PostgreSQL then asks for that segment,
 * wal-push returns at once only if the file is the very file that was
 * archived: same device, inode, size, and modification and change times to
 * the nanosecond, recorded before and after it was read (any write changes
 * them, and no unprivileged process can set ctime back).  A claim lock per
 * name keeps two concurrent wal-push processes from pushing the same file
 * at once.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archiver.h"
#include "cluster.h"
#include "cmd.h"
#include "log.h"
#include "ship.h"
#include "spool.h"
#include "util.h"
#include "wal.h"

#define AHEAD_PER_WORKER 8

struct ahead {
    const struct config *conf;
    const struct keyring *kr;
    struct spool *sp;
    const struct archiver *main;    /* opened first: its identity checks hold for all */
    char statusdir[PATH_MAX];
    char waldir[PATH_MAX];
    char **names;
    size_t n;
    size_t next;            /* next index to take, under lock */
    pthread_mutex_t lock;
    unsigned long pushed, failed;
    int any_spooled;
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .ready segments after `self`, oldest first, at most `max`. */
static int ready_segments(const char *statusdir, const char *self, size_t max, char ***out, size_t *nout)
{
    DIR *d = opendir(statusdir);
    struct dirent *de;
    char **v = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    *nout = 0;
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct wal_name w;
        struct err e = ERR_INIT;
        char name[WAL_NAME_MAX];
        size_t len = strlen(de->d_name);

        if (len < 7 || len - 6 >= sizeof name || !str_has_suffix(de->d_name, ".ready"))
            continue;
        memcpy(name, de->d_name, len - 6);
        name[len - 6] = '\0';
        if (wal_parse(name, &w, &e) < 0 || w.kind != WAL_SEGMENT || strcmp(name, self) <= 0)
            continue;
        if (n == cap) {
            char **nv;
            cap = cap ? cap * 2 : 64;
            nv = realloc(v, cap * sizeof *v);
            if (nv == NULL)
                break;
            v = nv;
        }
        if ((v[n] = strdup(name)) == NULL)
            break;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof *v, name_cmp);
    while (n > max)
        free(v[--n]);
    *out = v;
    *nout = n;
    return 0;
}

/* Drop a claim: the lock file goes while we hold it, so claims/ does not
 * grow with every segment.  A process that opened the file before the
 * unlink may lock the orphaned inode and push the same name concurrently:
 * harmless, pushes are idempotent and markers are written only after
 * success. */
static void release_claim(struct spool *sp, const char *name, int lockfd)
{
    char path[PATH_MAX];

    if (lockfd < 0)
        return;
    if (snprintf(path, sizeof path, "%s/claims/%s", spool_dir(sp), name) < (int)sizeof path)
        unlink(path);
    spool_unlock(lockfd);
}

static void *ahead_worker(void *arg)
{
    struct ahead *ah = arg;
    struct archiver a;
    struct err e = ERR_INIT;

    if (archiver_open(ah->conf, ah->kr, ah->sp, &ah->main->cluster, ah->main, &a, &e) < 0) {
        log_warning("push-ahead: %s", e.msg);
        return NULL;
    }
    for (;;) {
        struct archive_report rep;
        struct stat before, after;
        char path[PATH_MAX], ready[PATH_MAX];
        const char *name;
        int lockfd = -1;
        size_t i;

        pthread_mutex_lock(&ah->lock);
        i = ah->next++;
        pthread_mutex_unlock(&ah->lock);
        if (i >= ah->n)
            break;
        name = ah->names[i];
        if (spool_has_marker(ah->sp, name))
            continue;
        {
            char claim[WAL_NAME_MAX + 8];
            snprintf(claim, sizeof claim, "claims/%s", name);
            if (spool_lock(ah->sp, claim, 0, &lockfd, &e) != 1)
                continue;   /* someone else is pushing it */
        }
        if (snprintf(ready, sizeof ready, "%s/%s.ready", ah->statusdir, name) >= (int)sizeof ready ||
            snprintf(path, sizeof path, "%s/%s", ah->waldir, name) >= (int)sizeof path ||
            access(ready, F_OK) != 0 || spool_has_marker(ah->sp, name)) {
            release_claim(ah->sp, name, lockfd);
            continue;       /* archived meanwhile */
        }
        err_clear(&e);
        if (stat(path, &before) == 0 && archive_push_file(&a, path, name, &rep, &e) == 0 &&
            stat(path, &after) == 0 && spool_same_file(&before, &after) &&
            spool_mark_pushed(ah->sp, name, rep.sha256_hex, &after, &e) == 0) {
            pthread_mutex_lock(&ah->lock);
            ah->pushed++;
            if (rep.spooled)
                ah->any_spooled = 1;
            pthread_mutex_unlock(&ah->lock);
            log_debug("pushed ahead %s", name);
        } else {
            pthread_mutex_lock(&ah->lock);
            ah->failed++;
            pthread_mutex_unlock(&ah->lock);
            log_debug("push-ahead of %s failed (PostgreSQL will retry it): %s", name, e.msg);
        }
        release_claim(ah->sp, name, lockfd);
    }
    archiver_close(&a);
    return NULL;
}

/* Which cluster the file belongs to, and the identity its regions must
 * have (created where missing). */
static int push_cluster(struct cmd_ctx *ctx, const char *path, const char *name, struct repo_ident *want,
                        struct err *e)
{
    const char *dir = ctx->conf->pgdata;
    struct cluster_info ci;

    if (dir == NULL && cluster_is_datadir("."))
        dir = ".";     /* PostgreSQL runs archive_command in the data directory */
    if (cluster_of_wal_file(dir, path, name, &ci, e) < 0)
        return -1;
    repo_ident_init(want, ci.sysid, ci.pg_major, ci.seg_size);
    return 0;
}

/* The spool keeps the identity for the shipper to create in async regions. */
static int spool_identity(struct spool *sp, const struct repo_ident *want, struct err *e)
{
    char *json = NULL;
    size_t len;
    int rc;

    if (spool_load_identity(sp, &json, &len, &(struct err)ERR_INIT) == 0) {
        struct repo_ident have;

        rc = repo_ident_from_json(json, len, &have, e);
        free(json);
        if (rc < 0)
            return err_prefix(e, "the spool's identity");
        /* the async regions get what the spool's identity says: a segment
         * of another size or major version must not reach them that way */
        if (have.sysid != want->sysid || (want->pg_major != 0 && have.pg_major != want->pg_major) ||
            (want->seg_size != 0 && have.seg_size != want->seg_size))
            return err_setf(e, ERR_FOREIGN,
                            "the spool of cluster %llu holds PostgreSQL %u with %u-byte segments, this cluster is "
                            "PostgreSQL %u with %u-byte segments: not spooling (start a new prefix after "
                            "pg_upgrade or pg_resetwal)",
                            (unsigned long long)have.sysid, have.pg_major, have.seg_size, want->pg_major,
                            want->seg_size);
        return 0;
    }
    if (want->seg_size == 0 || want->pg_major == 0)
        return 0;   /* the next segment will tell */
    if (repo_ident_to_json(want, &json, &len, e) < 0)
        return -1;
    rc = spool_save_identity(sp, json, len, e);
    free(json);
    return rc;
}

int cmd_wal_push_run(struct cmd_ctx *ctx)
{
    const struct config *c = ctx->conf;
    struct keyring *kr = NULL;
    struct spool *sp = NULL;
    struct archiver a;
    struct archive_report rep;
    struct repo_ident want;
    struct ahead ah;
    pthread_t threads[64];
    struct wal_name w;
    struct err e = ERR_INIT;
    const char *path, *name = NULL, *slash;
    int nthreads = 0, i, lockfd = -1, rc = EXIT_FAILURE3, has_async = 0, opened = 0;
    uint64_t t0 = now_ms();

    memset(&ah, 0, sizeof ah);
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&ah.lock, NULL);
    if (ctx->argc != 2) {
        rc = cmd_usage("wal-push", "needs exactly one argument: the path of the WAL file (%%p)");
        goto out;
    }
    path = ctx->argv[1];
    slash = strrchr(path, '/');
    name = slash ? slash + 1 : path;
    if (wal_parse(name, &w, &e) < 0 || config_require_regions(c, &e) < 0 || cmd_load_keyring(ctx, &kr, &e) < 0 ||
        push_cluster(ctx, path, name, &want, &e) < 0)
        goto fail;
    for (i = 0; i < c->nregions; i++)
        if (c->regions[i].mode == REGION_ASYNC)
            has_async = 1;
    /* every region's identity is checked once, here, before anything is
     * kept locally for the cluster; push-ahead workers share the verdict */
    if (archiver_open(c, kr, NULL, &want, NULL, &a, &e) < 0)
        goto fail;
    opened = 1;
    if (spool_open(c->spool_dir, c->spool_max_bytes, want.sysid, &sp, &e) < 0 ||
        (has_async && spool_identity(sp, &want, &e) < 0)) {
        if (has_async)
            goto fail;
        log_debug("no spool, no push-ahead: %s", e.msg);
        spool_free(sp);
        sp = NULL;
        err_clear(&e);
    }
    a.sp = sp;

    if (sp != NULL) {
        char claim[WAL_NAME_MAX + 8];
        struct stat st;

        snprintf(claim, sizeof claim, "claims/%s", name);
        if (spool_lock(sp, claim, (unsigned)(c->retry_deadline * 1000), &lockfd, &e) < 0)
            goto fail;
        if (spool_has_marker(sp, name)) {
            if (stat(path, &st) < 0) {
                err_errno(&e, ERR_IO, errno, "could not stat \"%s\"", path);
                goto fail;
            }
            if (spool_pushed_matches(sp, name, &st)) {
                spool_unmark_pushed(sp, name);
                log_debug("%s was pushed ahead with the same content", name);
                rc = 0;
                goto out;
            }
            log_warning("%s was pushed ahead but has changed since: archiving it again", name);
            spool_unmark_pushed(sp, name);
        }
    }

    /* Push ahead the next .ready segments while we push this one. */
    if (sp != NULL && w.kind == WAL_SEGMENT && c->parallel > 1) {
        size_t dlen = slash ? (size_t)(slash - path) : 0;

        if (dlen == 0)
            snprintf(ah.waldir, sizeof ah.waldir, ".");
        else
            snprintf(ah.waldir, sizeof ah.waldir, "%.*s", (int)dlen, path);
        if (snprintf(ah.statusdir, sizeof ah.statusdir, "%s/archive_status", ah.waldir) >=
            (int)sizeof ah.statusdir)
            ah.statusdir[0] = '\0';
        ah.conf = c;
        ah.kr = kr;
        ah.sp = sp;
        ah.main = &a;
        ready_segments(ah.statusdir, name, (size_t)(c->parallel - 1) * AHEAD_PER_WORKER, &ah.names, &ah.n);
        for (i = 0; i < c->parallel - 1 && (size_t)i < ah.n && i < 64; i++)
            if (pthread_create(&threads[nthreads], NULL, ahead_worker, &ah) == 0)
                nthreads++;
    }

    a.zstd_workers = nthreads > 0 ? 0 : c->parallel;
    if (archive_push_file(&a, path, name, &rep, &e) < 0)
        goto join;
    rc = 0;
    log_info("archived %s (%d uploaded, %d already there, %d spooled) in %llu ms", name, rep.uploaded,
             rep.already, rep.spooled, (unsigned long long)(now_ms() - t0));
    /* then help push ahead: every core works until the queue is empty */
    if (nthreads > 0)
        ahead_worker(&ah);
join:
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (ah.pushed || ah.failed)
        log_info("pushed ahead %lu segments%s", ah.pushed, ah.failed ? " (some failed; PostgreSQL retries them)" : "");
    if (sp != NULL && has_async)
        ship_spawn(c, sp);
    if (rc != 0)
        goto fail;
    goto out;
fail:
    log_error("could not archive %s: %s", name != NULL ? ctx->argv[1] : "", e.msg);
    rc = err_exit_status(&e);
    if (rc == 1)
        rc = EXIT_FAILURE3;     /* a missing %p is a failure, not "not found" */
out:
    if (opened)
        archiver_close(&a);
    spool_names_free(ah.names, ah.n);
    pthread_mutex_destroy(&ah.lock);
    if (sp != NULL && name != NULL)
        release_claim(sp, name, lockfd);
    spool_free(sp);
    keys_free(kr);
    return rc;
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
    struct ship_opts o = { 0, 0 };
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
    spool_free(sp);
    keys_free(kr);
    if (rc < 0)
        return cmd_fail(&e);
    if (stats.orphaned)
        log_warning("%lu spooled files wait for regions that are not configured: see %s/queue", stats.orphaned,
                    spool_dir(sp));
    if (!stats.ran)
        log_info("another shipper is running");
    else if (stats.shipped || stats.already)
        log_info("shipped %lu files (%lu were already there)", stats.shipped, stats.already);
    return 0;
}
