/*
 * wal_push — the engine of `walship wal-push PATH`, PostgreSQL's
 * archive_command (src/archive/wal_push.h).
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
#include "wal_push.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archd.h"
#include "archd_int.h"
#include "archiver.h"
#include "cluster.h"
#include "note.h"
#include "pool.h"
#include "ship.h"
#include "spool.h"
#include "timeline.h"
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
    const struct note_sink *notes;
    const char *tag;        /* of this binary and configuration, for the markers */
    pthread_mutex_t lock;   /* the counts below */
    unsigned long pushed, failed;
    int any_spooled;
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int wal_push_ready(const char *statusdir, const char *self, size_t max, char ***out, size_t *nout)
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
#define release_claim archd_release_claim

/* A push-ahead worker's own archiver; the main one's identity checks hold. */
static int ahead_open(void *arg, void **ws, struct err *e)
{
    struct ahead *ah = arg;
    struct archiver *a = malloc(sizeof *a);

    if (a == NULL)
        return err_setf(e, ERR_NOMEM, "push-ahead: out of memory");
    if (archiver_open(ah->conf, ah->kr, ah->notes, ah->sp, &ah->main->cluster, ah->main, a, e) < 0) {
        free(a);
        return err_prefix(e, "push-ahead");
    }
    *ws = a;
    return 0;
}

static void ahead_close(void *arg, void *ws)
{
    (void)arg;
    if (ws != NULL) {
        archiver_close(ws);
        free(ws);
    }
}

/* Push ahead segment i unless it is pushed, claimed or archived meanwhile;
 * a failure is counted, not an error: PostgreSQL will retry the segment. */
static int ahead_item(void *arg, void *ws, size_t i, struct err *e)
{
    struct ahead *ah = arg;
    struct archiver *a = ws;
    struct archive_report rep;
    struct stat before, after;
    char path[PATH_MAX], ready[PATH_MAX], claim[WAL_NAME_MAX + 8];
    const char *name = ah->names[i];
    int lockfd = -1;

    if (spool_has_marker(ah->sp, name))
        return 0;
    snprintf(claim, sizeof claim, "claims/%s", name);
    if (spool_lock(ah->sp, claim, 0, &lockfd, e) != 1)
        return 0;   /* someone else is pushing it */
    if (snprintf(ready, sizeof ready, "%s/%s.ready", ah->statusdir, name) >= (int)sizeof ready ||
        snprintf(path, sizeof path, "%s/%s", ah->waldir, name) >= (int)sizeof path ||
        access(ready, F_OK) != 0 || spool_has_marker(ah->sp, name)) {
        release_claim(ah->sp, name, lockfd);
        return 0;   /* archived meanwhile */
    }
    err_clear(e);
    if (stat(path, &before) == 0 && archive_push_file(a, path, name, &rep, e) == 0 &&
        stat(path, &after) == 0 && spool_same_file(&before, &after) &&
        spool_mark_pushed_tag(ah->sp, name, rep.sha256_hex, &after, ah->tag, e) == 0) {
        pthread_mutex_lock(&ah->lock);
        ah->pushed++;
        if (rep.spooled)
            ah->any_spooled = 1;
        pthread_mutex_unlock(&ah->lock);
        note(ah->notes, LOG_DEBUG, "pushed ahead %s", name);
    } else {
        pthread_mutex_lock(&ah->lock);
        ah->failed++;
        pthread_mutex_unlock(&ah->lock);
        note(ah->notes, LOG_DEBUG, "push-ahead of %s failed (PostgreSQL will retry it): %s", name, e->msg);
    }
    err_clear(e);
    release_claim(ah->sp, name, lockfd);
    return 0;
}

/* Which cluster the file belongs to, and the identity its regions must
 * have (created where missing). */
static int push_cluster(const struct config *c, const char *path, const char *name, struct repo_ident *want,
                        struct err *e)
{
    const char *dir = c->pgdata;
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

/* The spool, with the cluster's identity where async regions need it; none
 * (and no push-ahead) when there is no usable spool and no async region. */
/* With async regions only, nothing checks a region's identity before the
 * file is acknowledged: a file of another cluster (pushed by hand, without
 * pgdata) would be spooled for regions that will never take it.  The
 * spool's memory tells: a region another cluster's spool knows as its own
 * (spool_dir/SYSID/known/REGION, written when an identity was checked)
 * is not this cluster's. */
static int async_regions_foreign(const struct config *c, const struct repo_ident *want, struct err *e)
{
    char **names = NULL, id[REPO_REGION_ID_MAX], path[PATH_MAX];
    size_t n = 0, k;
    int i, rc = 0;

    if (spool_clusters(c->spool_dir, &names, &n, &(struct err)ERR_INIT) < 0)
        return 0;   /* nothing known to compare with */
    for (k = 0; k < n && rc == 0; k++) {
        if (strtoull(names[k], NULL, 10) == want->sysid)
            continue;
        for (i = 0; i < c->nregions && rc == 0; i++) {
            repo_region_id(c->regions[i].name, c->regions[i].url, c->regions[i].endpoint, id);
            if (snprintf(path, sizeof path, "%s/%s/known/%s", c->spool_dir, names[k], id) < (int)sizeof path &&
                access(path, F_OK) == 0)
                rc = err_setf(e, ERR_FOREIGN,
                              "region %s holds the repository of cluster %s (%s), and this file belongs to cluster "
                              "%llu: not spooling it (one configuration serves one cluster; set pgdata, or push "
                              "from the data directory)",
                              c->regions[i].name, names[k], path, (unsigned long long)want->sysid);
        }
    }
    spool_names_free(names, n);
    return rc;
}

/* An async region's repository is read with the key its identity was
 * encrypted with: the spool's memory of the region (known/REGION, written
 * when the shipper or a push read or created the identity) names that key,
 * or "-" for none.  A file spooled under keys that do not fit would be
 * acknowledged and never shipped, or shipped unreadable: with key_file
 * removed, wal-push spooled unencrypted WAL (exit 0) that the shipper, once
 * the key was back, put into the encrypted repository, where every reader
 * refuses it (adversarial pass AD). */
static int async_keys_fit(const struct config *c, const struct keyring *kr, uint64_t sysid, struct err *e)
{
    char id[REPO_REGION_ID_MAX], path[PATH_MAX], key[KEYS_ID_HEX_LEN + 2];
    unsigned char *buf, bin[KEYS_ID_LEN];
    long long created;
    size_t len, j;
    int i, n;

    for (i = 0; c->spool_dir != NULL && i < c->nregions; i++) {
        if (c->regions[i].mode != REGION_ASYNC)
            continue;
        repo_region_id(c->regions[i].name, c->regions[i].url, c->regions[i].endpoint, id);
        if (snprintf(path, sizeof path, "%s/%llu/known/%s", c->spool_dir, (unsigned long long)sysid, id) >=
                (int)sizeof path ||
            read_file_all(path, 128, &buf, &len, &(struct err)ERR_INIT) < 0)
            continue;   /* not known yet: the shipper checks it before it ships */
        n = sscanf((const char *)buf, "%lld %33s", &created, key);
        free(buf);
        if (n != 2)
            continue;   /* remembered by an older walship: the key is not known */
        if (strcmp(key, "-") == 0) {
            if (keys_count(kr) == 0)
                continue;
            return err_setf(e, ERR_KEY,
                            "region %s holds a repository written without encryption (%s), and key_file is set: "
                            "what is spooled for it now could never be shipped there.  Not spooling it; to "
                            "encrypt from now on, give the region a new, empty prefix (docs/OPERATIONS.md, "
                            "\"Turning encryption on\"), or remove key_file", c->regions[i].name, path);
        }
        for (j = 0; j < KEYS_ID_LEN && strlen(key) == KEYS_ID_HEX_LEN; j++) {
            int hi = hex_digit(key[2 * j]), lo = hex_digit(key[2 * j + 1]);

            if (hi < 0 || lo < 0)
                break;
            bin[j] = (unsigned char)(hi << 4 | lo);
        }
        if (j == KEYS_ID_LEN && keys_find(kr, bin) == NULL)
            return err_setf(e, ERR_KEY,
                            "region %s holds a repository encrypted with key id %s (its identity; %s), which %s: "
                            "nothing spooled now could be shipped there or restored.  Not spooling it; configure "
                            "that key (key_file, or old_key_files after a rotation)",
                            c->regions[i].name, key, path,
                            keys_count(kr) == 0 ? "is not configured: there is no key_file"
                                                : "is not among the configured keys (key_file, old_key_files)");
    }
    return 0;
}

static int open_spool(const struct config *c, const struct keyring *kr, const struct repo_ident *want, int has_async,
                      const struct note_sink *notes, struct spool **sp, struct err *e)
{
    int i, has_sync = 0;

    *sp = NULL;
    for (i = 0; i < c->nregions; i++)
        if (c->regions[i].mode != REGION_ASYNC)
            has_sync = 1;
    if (has_async && !has_sync && c->spool_dir != NULL && async_regions_foreign(c, want, e) < 0)
        return -1;
    if (has_async && async_keys_fit(c, kr, want->sysid, e) < 0)
        return -1;
    if (spool_open(c->spool_dir, c->spool_max_bytes, want->sysid, sp, e) < 0 ||
        (has_async && spool_identity(*sp, want, e) < 0)) {
        if (has_async)
            return -1;
        /* a spool it does not trust (another user's) is worth saying */
        note(notes, e->code == ERR_CONFIG ? LOG_WARNING : LOG_DEBUG, "no spool, no push-ahead: %s", e->msg);
        spool_free(*sp);
        *sp = NULL;
        err_clear(e);
    }
    return 0;
}

/* Claim `name`; 1 when it was pushed ahead as this very file (nothing more
 * to do), 0 to archive it, -1 on error. */
static int claim_and_check_ahead(const struct config *c, struct spool *sp, const char *path, const char *name,
                                 const char *tag, const struct note_sink *notes, int *lockfd, struct err *e)
{
    char claim[WAL_NAME_MAX + 8];
    struct stat st;

    snprintf(claim, sizeof claim, "claims/%s", name);
    if (spool_lock(sp, claim, (unsigned)(c->retry_deadline * 1000), lockfd, e) < 0)
        return -1;
    if (!spool_has_marker(sp, name))
        return 0;
    if (stat(path, &st) < 0)
        return err_errno(e, ERR_IO, errno, "could not stat \"%s\"", path);
    if (spool_pushed_matches_tag(sp, name, &st, tag)) {
        spool_unmark_pushed(sp, name);
        note(notes, LOG_DEBUG, "%s was pushed ahead with the same content", name);
        return 1;
    }
    note(notes, LOG_WARNING,
         "%s was pushed ahead, but not as this very file (changed since, or pushed by another binary or "
         "configuration): archiving it again",
         name);
    spool_unmark_pushed(sp, name);
    return 0;
}

/* Start the push-ahead workers on the .ready segments after `name`. */
static int ahead_start(struct ahead *ah, struct pool *pool, const struct config *c, const struct keyring *kr,
                       struct spool *sp, const struct archiver *a, const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    struct pool_job job = { 0, ah, ahead_open, ahead_item, ahead_close };
    int n = c->parallel - 1;

    if (dlen == 0)
        snprintf(ah->waldir, sizeof ah->waldir, ".");
    else
        snprintf(ah->waldir, sizeof ah->waldir, "%.*s", (int)dlen, path);
    if (snprintf(ah->statusdir, sizeof ah->statusdir, "%s/archive_status", ah->waldir) >= (int)sizeof ah->statusdir)
        ah->statusdir[0] = '\0';
    ah->conf = c;
    ah->kr = kr;
    ah->sp = sp;
    ah->main = a;
    wal_push_ready(ah->statusdir, name, (size_t)(c->parallel - 1) * AHEAD_PER_WORKER, &ah->names, &ah->n);
    job.n = ah->n;
    return pool_start(pool, &job, n < WAL_PUSH_MAX_THREADS ? n : WAL_PUSH_MAX_THREADS);
}

/* pg_wal: the directory of `path`. */
static void wal_dir(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL || slash == path)
        snprintf(out, len, "%s", slash == NULL ? "." : "/");
    else
        snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* Hand the segment to the archiver process when it is one PostgreSQL
 * marked .ready; 1 when the process archived this very file. */
static int handoff(const struct config *c, const struct keyring *kr, struct spool *sp, const struct repo_ident *want,
                   const char *path, const char *name, const char *tag, const struct archd_spawn *spawn,
                   const struct note_sink *notes)
{
    char waldir[PATH_MAX], ready[PATH_MAX];

    wal_dir(path, waldir, sizeof waldir);
    if (snprintf(ready, sizeof ready, "%s/archive_status/%s.ready", waldir, name) >= (int)sizeof ready ||
        access(ready, F_OK) != 0)
        return 0;   /* not PostgreSQL's archiver asking: push it here */
    return archd_handoff(c, kr, sp, want, waldir, path, name, tag, spawn, notes);
}

/* A TLI.history file must read as PostgreSQL writes one: at least one
 * "parentTLI<TAB>switchpoint" line, parents below TLI and rising, switch
 * points not going back.  Archived, a garbage or hand-made one becomes
 * the archive's latest timeline, and every restore to latest refuses
 * (its history unusable) until someone deletes it from every region. */
static int check_history(const char *path, const struct wal_name *w, struct err *e)
{
    unsigned char *text = NULL;
    size_t len;
    int rc;

    if (read_file_all(path, TL_HISTORY_MAX, &text, &len, e) < 0)
        return -1;
    rc = tl_history_valid((const char *)text, len, w->tli, e);
    free(text);
    if (rc < 0 && e->code == ERR_CORRUPT)
        err_prefix(e, "\"%s\" is not a timeline history file as PostgreSQL writes it (not archived, since it would "
                   "become the archive's latest timeline)", path);
    return rc;
}

int wal_push(const struct config *c, const struct keyring *kr, const char *path, const struct archd_spawn *spawn,
             const struct note_sink *notes, struct wal_push_result *res, struct err *e)
{
    char tag[ARCHD_TAG_LEN + 1] = "";
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    struct spool *sp = NULL;
    struct archiver a;
    struct repo_ident want;
    struct ahead ah;
    struct pool pool;
    struct wal_name w;
    struct stat before;
    int nthreads = 0, i, lockfd = -1, rc = -1, has_async = 0, got, ahead = 0;

    memset(res, 0, sizeof *res);
    memset(&ah, 0, sizeof ah);
    ah.notes = notes;
    pthread_mutex_init(&ah.lock, NULL);
    if (wal_parse(name, &w, e) < 0 || (w.kind == WAL_HISTORY && check_history(path, &w, e) < 0) ||
        push_cluster(c, path, name, &want, e) < 0) {
        pthread_mutex_destroy(&ah.lock);
        return -1;
    }
    for (i = 0; i < c->nregions; i++)
        if (c->regions[i].mode == REGION_ASYNC)
            has_async = 1;
    memset(&a, 0, sizeof a);
    if (open_spool(c, kr, &want, has_async, notes, &sp, e) < 0)
        goto out;
    if (sp != NULL && archd_tag(c, kr, tag, e) < 0)
        goto out;
    ah.tag = tag;
    /* The archiver process (docs/WAL.md): no process start, TLS handshake
     * or identity read per segment, and both cores busy between calls. */
    if (sp != NULL && spawn != NULL && c->archive_async_process && w.kind == WAL_SEGMENT &&
        handoff(c, kr, sp, &want, path, name, tag, spawn, notes) == 1) {
        res->pushed_ahead_before = 1;
        res->via_process = 1;
        if (has_async || ship_has_work(c, sp))
            res->shipper_spool = sp;
        rc = 0;
        goto out;
    }
    /* A segment pushed ahead as this very file costs a stat, nothing more:
     * checked before the regions are opened, because after a push-ahead
     * batch PostgreSQL calls once per pushed segment, one after the other,
     * and every region's identity read in each of those calls kept the
     * cores idle between batches (docs/WAL.md, the profile). */
    if (sp != NULL && (got = claim_and_check_ahead(c, sp, path, name, tag, notes, &lockfd, e)) != 0) {
        if (got > 0) {
            res->pushed_ahead_before = 1;
            rc = 0;
        }
        goto out;
    }
    /* every region's identity is checked once, here, before anything is
     * pushed; push-ahead workers share the verdict */
    if (archiver_open(c, kr, notes, NULL, &want, NULL, &a, e) < 0)
        goto out;
    a.sp = sp;

    /* Push ahead the next .ready segments while we push this one. */
    if (sp != NULL && w.kind == WAL_SEGMENT && c->parallel > 1) {
        nthreads = ahead_start(&ah, &pool, c, kr, sp, &a, path, name);
        ahead = 1;
    }
    a.zstd_workers = nthreads > 0 ? 0 : c->parallel;
    if (stat(path, &before) < 0)
        memset(&before, 0, sizeof before);
    if (archive_push_file(&a, path, name, &res->rep, e) == 0) {
        rc = 0;
        res->pushed_ms = now_ms();
        if (sp != NULL && c->archive_async_process && w.kind == WAL_SEGMENT)
            archd_ack_own(sp, &before, path, name, res->rep.sha256_hex, tag);
        /* then help push ahead: every core works until the queue is empty */
        if (nthreads > 0)
            pool_work(&pool);
    }
    if (ahead)
        pool_join(&pool, &res->ahead_err);
    res->ahead_pushed = ah.pushed;
    res->ahead_failed = ah.failed;
    /* the caller starts the shipper; with sync regions only, for a backlog
     * queued while one of them was async */
    if (sp != NULL && (has_async || ship_has_work(c, sp)))
        res->shipper_spool = sp;
out:
    archiver_close(&a);
    spool_names_free(ah.names, ah.n);
    pthread_mutex_destroy(&ah.lock);
    if (sp != NULL)
        release_claim(sp, name, lockfd);
    if (res->shipper_spool == NULL)
        spool_free(sp);
    return rc;
}
