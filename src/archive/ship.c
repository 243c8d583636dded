#include "ship.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "note.h"
#include "obj.h"
#include "repo.h"
#include "util.h"
#include "watch.h"

#define SHIP_MAX_REGIONS 16
#define SHIP_BACKOFF_MAX_MS 15000

struct ship_region {
    const struct region_conf *rc;
    char queue[SPOOL_QUEUE_MAX];
    struct repo *rp;
    int ready;              /* opened, identity checked */
    uint64_t next_try_ms;
    unsigned backoff_ms;
    const struct note_sink *notes;  /* the command's (ship_opts) */
    struct spool_state st;  /* what status reads (spool.h) */
};

static void state_ok(struct ship_region *r)
{
    r->st.last_success = (int64_t)time(NULL);
    r->st.last_error_time = 0;
    r->st.last_error_code[0] = r->st.last_error[0] = '\0';
}

static void state_error(struct ship_region *r, const struct err *e)
{
    r->st.last_error_time = (int64_t)time(NULL);
    strlcopy(r->st.last_error_code, err_code_name(e->code), sizeof r->st.last_error_code);
    strlcopy(r->st.last_error, e->msg, sizeof r->st.last_error);
}

/* After a pass over the region's queue: its state, for `status`. */
static void state_write(struct ship_region *r, struct spool *sp)
{
    struct spool_usage u;
    struct err e = ERR_INIT;

    if (spool_usage(sp, r->queue, &u, &e) == 0) {
        r->st.backlog_files = u.entries;
        r->st.backlog_bytes = u.bytes;
    }
    strlcopy(r->st.region, r->rc->name, sizeof r->st.region);
    r->st.updated = (int64_t)time(NULL);
    if (spool_state_write(sp, r->queue, &r->st, &e) < 0)
        note(r->notes, LOG_WARNING, "%s", e.msg);
}

/* Open the region and make sure its repository is this cluster's (created
 * from the spool's copy of the identity when the region has none). */
static int ship_ready(struct ship_region *r, const struct config *conf, const struct keyring *kr, struct spool *sp,
                      struct err *e)
{
    struct repo_ident want;
    char *json = NULL;
    size_t len = 0;
    int rc;

    if (r->ready)
        return 0;
    if (r->rp == NULL && repo_open(r->rc, conf, r->notes, kr, 0, &r->rp, e) < 0)
        return -1;
    if (spool_load_identity(sp, &json, &len, e) < 0)
        return err_prefix(e, "the spool of cluster %llu has no identity to create region %s's with",
                          (unsigned long long)spool_sysid(sp), r->rc->name);
    rc = repo_ident_from_json(json, len, &want, e);
    free(json);
    if (rc < 0 || want.sysid != spool_sysid(sp))
        return rc < 0 ? -1 : err_setf(e, ERR_CORRUPT, "the spool's identity is not its cluster's");
    if (repo_ident_ensure(r->rp, &want, e) < 0)
        return -1;
    r->ready = 1;
    return 0;
}

#define SHIP_DAMAGED (-2)

/* Ship one queued file to one region.  1 = shipped, 0 = region had it,
 * SHIP_DAMAGED = the entry does not decode (bound to its name and this
 * cluster) and must not be shipped, -1 = error. */
static int ship_one(struct ship_region *r, struct spool *sp, const struct keyring *kr, const char *name,
                    struct err *e)
{
    char path[PATH_MAX], key[REPO_KEY_MAX], here[65];
    struct obj_bind bind;
    struct sink *up = NULL;
    int fd, rc = -1;

    if (repo_key_wal(key, sizeof key, name) < 0 || spool_entry_path(sp, r->queue, name, path, sizeof path) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    /* The entry is authenticated before it leaves: a truncated, damaged or
     * substituted file is never published under the name, and never dropped
     * as shipped. */
    bind.key = key;
    bind.sysid = spool_sysid(sp);
    bind.found_sysid = 0;
    bind.found_key_id[0] = '\0';
    if (repo_hash_file(path, kr, &bind, here, NULL, e) < 0) {
        if (e->code == ERR_NOTFOUND) {
            err_clear(e);
            return 0;   /* another shipper took it */
        }
        err_prefix(e, "spooled \"%s\" for region %s does not check", name, r->rc->name);
        return e->code == ERR_CORRUPT || e->code == ERR_FOREIGN ? SHIP_DAMAGED : -1;
    }
    /* An unencrypted entry for an encrypted repository (spooled by a
     * configuration without key_file), or the other way round: every
     * reader there refuses it, and shipped it would leave the spool for a
     * place no restore reads it from (adversarial pass AD).  Kept, loudly. */
    if ((bind.found_key_id[0] == '\0') != (r->rp->id_key[0] == '\0'))
        return err_setf(e, ERR_KEY,
                        "spooled \"%s\" for region %s is %s, but the region's repository is %s: not shipping it, "
                        "no reader of that repository could decode it (it stays in %s)",
                        name, r->rc->name, bind.found_key_id[0] ? "encrypted" : "not encrypted",
                        r->rp->id_key[0] ? "encrypted" : "not encrypted", path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;   /* another shipper took it */
        return err_errno(e, ERR_IO, errno, "could not open \"%s\"", path);
    }
    if (stor_put(r->rp->st, key, &up, e) < 0)
        goto out;
    up = fault_wrap(up, "ship.upload");
    /* The identity was read when the region was first reached, maybe hours
     * ago: read again right before the file is published and dropped from
     * the spool, or an unmounted file system's empty directory would take
     * it (docs/WAL.md). */
    if (repo_ident_guard_new(r->rp, up, &up, e) < 0) {
        up = NULL;
        goto out;
    }
    if (sink_pump_fd(up, fd, path, 0, e) < 0 || sink_close(up, e) < 0) {
        if (e->code == ERR_EXISTS) {
            char there[65];
            struct err ce = ERR_INIT;

            if (repo_hash(r->rp, key, there, &ce) < 0) {
                *e = ce;
                err_prefix(e, "could not compare spooled \"%s\" with region %s's copy", name, r->rc->name);
                goto out;
            }
            if (strcmp(here, there) != 0) {
                err_setf(e, ERR_EXISTS,
                         "region %s already has \"%s\" with different content: keeping the spooled copy "
                         "(are two primaries archiving to one prefix?)",
                         r->rc->name, key);
                goto out;
            }
            err_clear(e);
            rc = spool_done(sp, r->queue, name, e) < 0 ? -1 : 0;
        }
        goto out;
    }
    if (spool_done(sp, r->queue, name, e) < 0)
        goto out;
    rc = 1;
out:
    sink_free(up);
    close(fd);
    return rc;
}

/* Which configured region is this queue for?  NULL: none (the region was
 * removed, renamed to another url, or belongs to a configuration this one
 * is not).  A region that is sync now may have been async when the files
 * were queued (switched after an outage, with a backlog): its queue is
 * still its own, and shipping it is what fills its gap. */
static const struct region_conf *queue_region(const struct config *conf, const char *queue)
{
    char q[SPOOL_QUEUE_MAX];
    int i;

    for (i = 0; i < conf->nregions; i++) {
        const struct region_conf *rc = &conf->regions[i];

        spool_queue_name(rc->name, rc->url, rc->endpoint, q);
        if (strcmp(q, queue) == 0)
            return rc;
    }
    return NULL;
}

static void backoff(struct ship_region *r, uint64_t *wake)
{
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : 500;
    if (r->backoff_ms > SHIP_BACKOFF_MAX_MS)
        r->backoff_ms = SHIP_BACKOFF_MAX_MS;
    r->next_try_ms = now_ms() + r->backoff_ms;
    if (r->next_try_ms < *wake)
        *wake = r->next_try_ms;
}

/* One pass over one region's queue: how many files are left. */
static unsigned long ship_queue(struct ship_region *r, const struct config *conf, const struct keyring *kr,
                                struct spool *sp, char **names, size_t n, struct ship_stats *stats, int *progress,
                                uint64_t *wake)
{
    struct err oe = ERR_INIT;
    size_t k;

    if (ship_ready(r, conf, kr, sp, &oe) < 0) {
        backoff(r, wake);
        note(r->notes, LOG_WARNING, "region %s cannot take the spooled files (retrying in %u ms): %s", r->rc->name,
             r->backoff_ms, oe.msg);
        state_error(r, &oe);
        state_write(r, sp);
        return n;
    }
    for (k = 0; k < n; k++) {
        struct err se = ERR_INIT;
        int res = ship_one(r, sp, kr, names[k], &se);

        if ((res < 0 && se.code == ERR_EXISTS) || res == SHIP_DAMAGED) {
            /* the region holds another file of this name, or ours does not
             * decode: keep it for the operator, out of the way of the queue */
            struct err me = ERR_INIT;
            char kept[PATH_MAX];

            note(r->notes, LOG_ERROR, "%s", se.msg);
            state_error(r, &se);
            if (spool_set_aside(sp, r->queue, names[k], kept, sizeof kept, &me) < 0)
                note(r->notes, LOG_ERROR, "%s", me.msg);
            else
                note(r->notes, LOG_ERROR, "kept the spooled copy in %s", kept);
            stats->set_aside++;
            *progress = 1;
            continue;
        }
        if (res < 0) {
            backoff(r, wake);
            note(r->notes, se.code == ERR_NOREPO || se.code == ERR_FOREIGN ? LOG_ERROR : LOG_WARNING,
                 "could not ship %s to region %s (kept in the spool, retrying in %u ms): %s", names[k],
                 r->rc->name, r->backoff_ms, se.msg);
            state_error(r, &se);
            state_write(r, sp);
            return n - k;
        }
        state_ok(r);
        r->backoff_ms = 0;
        r->next_try_ms = 0;
        *progress = 1;
        if (res == 1)
            stats->shipped++;
        else
            stats->already++;
        note(r->notes, LOG_DEBUG, "shipped %s to region %s", names[k], r->rc->name);
    }
    state_write(r, sp);
    return 0;
}

/* The regions the shipper has met, across passes. */
struct ship_regions {
    struct ship_region v[SHIP_MAX_REGIONS];
    size_t n;
};

/* The shipper's region for a queue (its state read back from the file on
 * first sight); NULL when it tracks SHIP_MAX_REGIONS already. */
static struct ship_region *region_for(struct ship_regions *rs, const struct region_conf *rc, const char *queue,
                                      struct spool *sp, const struct note_sink *ns)
{
    struct ship_region *r;
    size_t k;

    for (k = 0; k < rs->n; k++)
        if (strcmp(rs->v[k].queue, queue) == 0)
            return &rs->v[k];
    if (rs->n >= SHIP_MAX_REGIONS)
        return NULL;
    r = &rs->v[rs->n++];
    r->rc = rc;
    r->notes = ns;
    strlcopy(r->queue, queue, sizeof r->queue);
    (void)spool_state_read(sp, r->queue, &r->st, &(struct err)ERR_INIT);
    return r;
}

/* One pass over every queue: *left files remain, *progress set when any
 * was shipped or set aside, *wake lowered to the next retry. */
static int ship_pass(const struct config *conf, const struct keyring *kr, struct spool *sp, struct ship_regions *rs,
                     const struct note_sink *ns, struct ship_stats *stats, unsigned long *left, int *progress, uint64_t *wake, struct err *e)
{
    uint64_t now = now_ms();
    char **qnames = NULL;
    size_t nq = 0, i;
    int rc = -1;

    *left = 0;
    stats->orphaned = 0;
    if (spool_queues(sp, &qnames, &nq, e) < 0)
        return -1;
    for (i = 0; i < nq; i++) {
        const struct region_conf *rc_ = queue_region(conf, qnames[i]);
        struct ship_region *r;
        char **names = NULL;
        size_t n = 0;

        if (spool_list(sp, qnames[i], &names, &n, e) < 0)
            goto out;
        if (n == 0) {
            spool_names_free(names, n);
            continue;
        }
        if (rc_ == NULL) {
            /* never shipped anywhere else: the operator decides */
            note(ns, LOG_WARNING, "the spool holds %zu files in queue %s for a region that is not configured "
                 "(removed, or its url changed): left in %s/queue/%s", n, qnames[i], spool_dir(sp), qnames[i]);
            stats->orphaned += n;
            spool_names_free(names, n);
            continue;
        }
        r = region_for(rs, rc_, qnames[i], sp, ns);
        if (r == NULL || r->next_try_ms > now) {
            *left += n;
            if (r != NULL && r->next_try_ms < *wake)
                *wake = r->next_try_ms;
        } else {
            *left += ship_queue(r, conf, kr, sp, names, n, stats, progress, wake);
        }
        spool_names_free(names, n);
    }
    rc = 0;
out:
    spool_names_free(qnames, nq);
    return rc;
}

/* Does a configured region's queue hold an entry (an async region's, or
 * that of a region queued for while it was async)? */
int ship_has_work(const struct config *conf, struct spool *sp)
{
    char q[SPOOL_QUEUE_MAX];
    int i;

    for (i = 0; i < conf->nregions; i++) {
        const struct region_conf *rc = &conf->regions[i];
        struct spool_usage u;
        struct err e = ERR_INIT;

        spool_queue_name(rc->name, rc->url, rc->endpoint, q);
        if (spool_usage(sp, q, &u, &e) == 0 && u.entries > 0)
            return 1;
    }
    return 0;
}

int ship_run(const struct config *conf, const struct keyring *kr, struct spool *sp, const struct ship_opts *o,
             struct ship_stats *stats, struct err *e)
{
    struct ship_regions regs;
    struct proc_watch pw;
    size_t i;
    uint64_t last_progress = now_ms();
    unsigned max_idle_ms = (o->max_idle_s ? o->max_idle_s : 600) * 1000u;
    int lockfd = -1, rc = -1, got;

    memset(stats, 0, sizeof *stats);
    memset(&regs, 0, sizeof regs);
    /* In the foreground (--once), wait for a background shipper to finish
     * rather than report success while it still works. */
    got = spool_lock(sp, "ship.lock", o->once ? (o->lock_wait_ms ? o->lock_wait_ms : 120000) : 0, &lockfd, e);
    if (got < 0)
        return -1;
    if (got == 0 && o->once && ship_has_work(conf, sp))
        return err_setf(e, ERR_NET, "another shipper held %s/ship.lock all the time this one waited, and files "
                        "are still waiting in the spool: nothing was shipped by this one", spool_dir(sp));
    if (got == 0)
        return 0;   /* another shipper is at work (--once: and it shipped everything) */
    stats->ran = 1;
    proc_watch_init(&pw, conf, kr);

    for (;;) {
        uint64_t now = now_ms(), wake = now + SHIP_BACKOFF_MAX_MS;
        unsigned long left = 0;
        int progress = 0;

        if (ship_pass(conf, kr, sp, &regs, o->notes, stats, &left, &progress, &wake, e) < 0)
            goto out;
        stats->left = left;
        if (progress)
            last_progress = now_ms();
        if (left == 0) {
            /* Nothing more this shipper can do; in the foreground, files it
             * could not ship anywhere are a failure the caller must see. */
            if (o->once && (stats->orphaned > 0 || stats->set_aside > 0)) {
                err_setf(e, ERR_EXISTS,
                         "%lu spooled files are in queues of regions that are not configured and %lu were set "
                         "aside in %s/conflicts; they were not shipped",
                         stats->orphaned, stats->set_aside, spool_dir(sp));
                goto out;
            }
            /* A wal-push that spooled a file while we held the lock found
             * a shipper at work and started none: after letting go, look
             * once more, and take the lock back if there is work (if
             * another shipper took it, that one ships it). */
            spool_unlock(lockfd);
            lockfd = -1;
            if (o->once || !ship_has_work(conf, sp) || spool_lock(sp, "ship.lock", 0, &lockfd, e) <= 0) {
                err_clear(e);
                rc = 0;
                goto out;
            }
            continue;
        }
        if (progress)
            continue;   /* new files may have arrived meanwhile */
        if (o->once) {
            err_setf(e, ERR_NET, "%lu files are still waiting in the spool for their async regions", left);
            goto out;
        }
        if (proc_watch_changed(&pw)) {
            /* keys rotated, a region's url or credentials fixed: failing
             * on with what it started with helps nobody */
            note(o->notes, LOG_INFO, "its binary, configuration, key or credentials files changed, and %lu files "
                 "are still waiting: leaving them to a shipper started with the new ones (the next wal-push starts "
                 "it)", left);
            rc = 0;
            goto out;
        }
        if (now_ms() - last_progress > max_idle_ms) {
            err_setf(e, ERR_NET, "no progress for %u s; %lu files left in the spool (the next wal-push restarts "
                     "the shipper)", max_idle_ms / 1000, left);
            goto out;
        }
        now = now_ms();
        if (wake > now)
            usleep((useconds_t)((wake - now) * 1000));
    }
out:
    for (i = 0; i < regs.n; i++)
        repo_free(regs.v[i].rp);
    if (lockfd >= 0)
        spool_unlock(lockfd);
    return rc;
}

uint64_t ship_orphans(const struct config *conf, struct spool *sp, char *names, size_t len)
{
    char **q = NULL, **f = NULL;
    size_t nq = 0, nf = 0, i;
    uint64_t total = 0;

    names[0] = '\0';
    if (spool_queues(sp, &q, &nq, &(struct err)ERR_INIT) < 0)
        return 0;
    for (i = 0; i < nq; i++) {
        if (queue_region(conf, q[i]) != NULL || spool_list(sp, q[i], &f, &nf, &(struct err)ERR_INIT) < 0)
            continue;
        if (nf > 0) {
            size_t used = strlen(names);

            snprintf(names + used, len - used, "%s%s", used ? ", " : "", q[i]);
            total += nf;
        }
        spool_names_free(f, nf);
    }
    spool_names_free(q, nq);
    return total;
}
