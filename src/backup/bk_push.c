/*
 * bk_push — backup-push from start to end: the server (pg_backup_start and
 * stop), the backup lock, the regions and their identity, the parent of an
 * incremental, the parts (run by backup.c's workers), and per region the
 * stop segment's check, the label, the map and, last, the manifest.
 */
#include "backup.h"
#include "backup_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autoconf.h"
#include "cluster.h"
#include "note.h"
#include "pgconn.h"
#include "rconf.h"
#include "spool.h"
#include "util.h"
#include "wal.h"


/* The stop segment must be archived in each region (async: or spooled). */
static int check_wal(const struct config *c, struct repo *r, const struct region_conf *rc, struct spool *sp,
                     const char *seg, struct err *e)
{
    char key[REPO_KEY_MAX], queue[SPOOL_QUEUE_MAX];
    struct stor_stat ss;
    /* PostgreSQL archives the stop segment right after pg_backup_stop
     * switched away from it: wait for it as long as archive_timeout */
    uint64_t deadline = now_ms() + c->archive_timeout * 1000;

    repo_key_wal(key, sizeof key, seg);
    spool_queue_name(rc->name, rc->url, rc->endpoint, queue);
    for (;;) {
        err_clear(e);
        if (stor_head(r->st, key, &ss, e) == 0)
            return 0;
        if (e->code != ERR_NOTFOUND)
            return -1;
        if (rc->mode == REGION_ASYNC && sp != NULL && spool_is_queued(sp, queue, seg))
            return 0;
        if (now_ms() > deadline)
            return err_setf(e, ERR_NOTFOUND,
                            "region %s does not have WAL segment %s, which this backup needs to be consistent: "
                            "is archive_command set to walship wal-push?",
                            rc->name, seg);
        usleep(50000);
    }
}

struct progress_ctx {
    struct bk_job *j;
    const struct bk_opts *o;
    uint64_t total;
    int stop;
    pthread_mutex_t m;
    pthread_cond_t cv;
};

/* A cluster made by a restore may still carry recovery_target* and friends:
 * recorded in the manifest (verify reports it), told by the command.  Any
 * walship restore neutralises them (restore/rconf.h); other tools may not. */
static void note_recovery_settings(const struct note_sink *notes, const char *pgdata, struct manifest *m,
                                   struct bk_result *res)
{
    struct rconf_list l = { NULL, 0, 0 };
    struct err e = ERR_INIT;

    if (rconf_neutralise(pgdata, 0, NULL, &l, &e) < 0) {
        note(notes, LOG_WARNING, "could not check the configuration for recovery settings: %s", e.msg);
    } else {
        m->recovery_settings = rconf_summary(&l, sizeof res->recovery_settings - 1);
        if (m->recovery_settings != NULL)
            snprintf(res->recovery_settings, sizeof res->recovery_settings, "%s", m->recovery_settings);
    }
    rconf_list_free(&l);
}

static void *progress_thread(void *arg)
{
    struct progress_ctx *p = arg;

    pthread_mutex_lock(&p->m);
    while (!p->stop) {
        struct timespec ts;
        struct bk_progress pr;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->m, &ts);
        if (p->stop)
            break;
        pr.done = __atomic_load_n(&p->j->done, __ATOMIC_RELAXED);
        pr.total = p->total;
        p->o->progress(&pr, p->o->progress_arg);
    }
    pthread_mutex_unlock(&p->m);
    return NULL;
}

static int any_object(const struct stor_entry *ent, void *arg)
{
    (void)ent;
    *(int *)arg = 1;
    return 1;
}

/* Does any region hold an object under backups/NAME/ already? */
static int name_taken(struct repo *const *rp, int n, const char *name)
{
    char prefix[REPO_KEY_MAX];
    int r, found = 0;

    if (repo_key_backup(prefix, sizeof prefix, name, "") < 0)
        return 0;
    for (r = 0; r < n && !found; r++)
        if (rp[r] != NULL)
            (void)stor_list(rp[r]->st, prefix, any_object, &found, &(struct err)ERR_INIT);
    return found;
}

/* The server, the backup lock and the regions: everything bk_push needs
 * before the backup starts.  A region that is not this cluster's
 * repository is recorded as failed; at least one must be usable. */
struct push_ctx {
    const struct config *c;
    const struct keyring *kr;
    const struct note_sink *notes;
    struct pgconn *pg;
    struct pg_info info;
    struct spool *sp;
    int lockfd;
    struct repo *rp[BK_MAX_REGIONS];
    const char *pgdata;
    uint32_t tli;
    int started;                /* pg_backup_start done, pg_backup_stop not */
    const struct bk_incr *inc;  /* --incremental: the parent chosen */
};

static int push_open(struct push_ctx *x, struct bk_job *j, struct err *e)
{
    const struct config *c = x->c;
    struct repo_ident want;
    uint64_t sysid;
    int r;

    if (pg_connect(c->pg_conninfo, x->notes, &x->pg, e) < 0 || pg_get_info(x->pg, &x->info, e) < 0)
        return -1;
    if (parse_u64(x->info.system_identifier, 1, UINT64_MAX - 1, &sysid, e) < 0)
        return err_prefix(e, "the server's system identifier");
    repo_ident_init(&want, sysid, (unsigned)(x->info.version / 10000), (uint32_t)x->info.wal_segment_size);
    j->sysid = sysid;
    if (spool_open(c->spool_dir, c->spool_max_bytes, want.sysid, &x->sp, e) < 0)
        return -1;
    r = spool_lock(x->sp, "backup.lock", 0, &x->lockfd, e);
    if (r <= 0)
        return r == 0 ? err_setf(e, ERR_LOCKED, "another backup-push of this cluster is running (lock %s/backup.lock)",
                                 spool_dir(x->sp))
                      : -1;
    if (x->info.in_recovery)
        return err_setf(e, ERR_CONFIG, "the server is a standby: backup-push runs against the primary");
    if (!x->info.archive_mode)
        return err_setf(e, ERR_CONFIG, "archive_mode is off: a backup without archived WAL cannot be restored "
                        "(set archive_mode = on and archive_command = 'walship wal-push %%p')");
    x->pgdata = c->pgdata ? c->pgdata : x->info.data_directory;
    /* every region must be this cluster's repository (created on first use);
     * one that is not fails, the others still get the backup */
    for (r = 0; r < c->nregions; r++) {
        struct err re = ERR_INIT;

        if (repo_open(&c->regions[r], c, x->notes, x->kr, 0, &x->rp[r], &re) < 0 ||
            repo_ident_ensure(x->rp[r], &want, &re) < 0) {
            note(x->notes, LOG_WARNING, "%s", re.msg);
            repo_free(x->rp[r]);
            x->rp[r] = NULL;
            j->region_failed[r] = 1;
            j->region_err[r] = re;
        }
    }
    for (r = 0; r < c->nregions && x->rp[r] == NULL; r++)
        ;
    if (r == c->nregions) {
        *e = j->region_err[0];
        return err_prefix(e, "no region can take the backup");
    }
    return 0;
}

/* The files backed up must be the server's: pgdata set to a standby's data
 * directory (or a copy, or another cluster's) beside a pg_conninfo that
 * reaches the primary made a backup of files older than the start the
 * primary's label names, and a restore of it replayed from there on the
 * stale files: rows missing, reported restored (adversarial pass AH).
 * Right after pg_backup_start, the server's pg_control names the
 * checkpoint whose redo point is the backup's start; files whose
 * pg_control is not that cluster's or has not seen that checkpoint are
 * not the server's, and nor are those of a copy promoted to a timeline of
 * its own. */
static int check_pgdata(const struct push_ctx *x, uint64_t sysid, uint64_t start, struct err *e)
{
    uint64_t fsysid, redo;
    uint32_t ftli;

    if (cluster_read_redo(x->pgdata, &fsysid, &redo, &ftli, e) < 0)
        return err_prefix(e, "pgdata \"%s\"", x->pgdata);
    if (fsysid != sysid)
        return err_setf(e, ERR_CONFIG, "pgdata \"%s\" holds cluster %llu, not the cluster of the server pg_conninfo "
                        "reaches (%llu, data directory \"%s\")", x->pgdata, (unsigned long long)fsysid,
                        (unsigned long long)sysid, x->info.data_directory);
    if (redo < start)
        return err_setf(e, ERR_CONFIG, "pgdata \"%s\" is not the data directory of the server pg_conninfo reaches "
                        "(\"%s\"): its pg_control has not seen the checkpoint the backup starts from (redo %X/%X "
                        "before %X/%X); a standby's data directory, or a copy?  Backing it up would restore old "
                        "data", x->pgdata, x->info.data_directory, (unsigned)(redo >> 32), (unsigned)redo,
                        (unsigned)(start >> 32), (unsigned)start);
    if (ftli != x->tli)
        return err_setf(e, ERR_CONFIG, "pgdata \"%s\" is not the data directory of the server pg_conninfo reaches "
                        "(\"%s\"): its last checkpoint is on timeline %u, the server's on %u (a copy of the "
                        "cluster, promoted?)", x->pgdata, x->info.data_directory, (unsigned)ftli, (unsigned)x->tli);
    return 0;
}

/* --incremental: the parent, or a full backup and why. */
static int choose_parent(struct push_ctx *x, struct bk_job *j, struct bk_incr *inc, struct bk_result *res,
                         struct err *e)
{
    struct bk_incr_policy pol = { x->c->max_chain, x->c->full_every, (int64_t)time(NULL) };
    int k = bk_incr_choose(inc, x->rp, x->c->nregions, &pol, res->full_because, sizeof res->full_because, e);

    if (k < 0)
        return -1;
    if (k == 0) {
        note(x->notes, LOG_WARNING, "taking a full backup instead of an incremental: %s", res->full_because);
        return 0;
    }
    j->inc = inc;
    j->bs = inc->block_size;
    res->incremental = 1;
    snprintf(res->parent, sizeof res->parent, "%s", inc->parent);
    return 0;
}

/* Claim an untaken name before anything else is written under it:
 * backups/NAME/claim, never replaced, region by region in the order of the
 * configuration.  Two backup-push of the same second on two hosts (or two
 * spools) both find the name free; the second to claim it in the first
 * region moves on to the next second, so neither writes parts into the
 * other's folder, and the name cannot go to one backup in one region and
 * to the other in another.  A region the claim cannot reach otherwise is
 * left to fail at its first part.  1 claimed, 0 taken. */
static int claim_name(struct repo *const *rp, int n, const char *name)
{
    char key[REPO_KEY_MAX], body[96];
    int r, len = snprintf(body, sizeof body, "walship backup-push %s, process %ld\n", name, (long)getpid());

    if (repo_key_backup(key, sizeof key, name, CAT_CLAIM) < 0)
        return 0;
    for (r = 0; r < n; r++) {
        struct err ce = ERR_INIT;

        if (rp[r] != NULL && repo_put_buf(rp[r], key, 1, body, (size_t)len, &ce) < 0 && ce.code == ERR_EXISTS)
            return 0;
    }
    return 1;
}

/* Names have whole seconds: a second backup-push within the same second
 * as one before waits for a name of its own, and never writes into another
 * backup's folder: a name still taken after 5 more seconds (a clock that
 * stands still or was set back onto older backups) fails the backup.
 * Sets the start time. */
static int choose_name(struct repo *const *rp, int n, char name[CAT_NAME_MAX], int64_t *start, struct err *e)
{
    time_t now = time(NULL);
    int tries;

    for (tries = 0;; tries++) {
        cat_new_name(now, name);
        if (!name_taken(rp, n, name) && claim_name(rp, n, name)) {
            *start = (int64_t)now;
            return 0;
        }
        if (tries >= 5)
            return err_setf(e, ERR_EXISTS,
                            "the backup name %s is taken, and so was every name of the 5 seconds before: is this "
                            "host's clock standing still, or set back onto older backups?  Not writing into another "
                            "backup's folder",
                            name);
        sleep(1);
        now = time(NULL);
    }
}

/* The parts, `parallel` at a time on the worker pool, with the progress
 * callback beside in a thread of its own (it ticks, it takes no parts). */
static int run_parts(struct bk_job *j, const struct bk_opts *o, const struct bk_list *list, struct err *e)
{
    pthread_t pthr;
    struct progress_ctx pc;
    int rc, have_progress = 0;

    memset(&pc, 0, sizeof pc);
    if (o->progress != NULL) {
        pc.j = j;
        pc.o = o;
        pc.total = list->total_bytes;
        pthread_mutex_init(&pc.m, NULL);
        pthread_cond_init(&pc.cv, NULL);
        have_progress = pthread_create(&pthr, NULL, progress_thread, &pc) == 0;
    }
    rc = bk_run_parts(j, j->c->parallel, e);
    if (have_progress) {
        pthread_mutex_lock(&pc.m);
        pc.stop = 1;
        pthread_cond_signal(&pc.cv);
        pthread_mutex_unlock(&pc.m);
        pthread_join(pthr, NULL);
        pthread_cond_destroy(&pc.cv);
        pthread_mutex_destroy(&pc.m);
    }
    return rc;
}

/* The manifest's fields, once the server said where the backup stops. */
static int fill_manifest(struct push_ctx *x, struct bk_job *j, const struct bk_list *list,
                         const struct pg_backup_stop_result *stop, struct bk_result *res, unsigned char **bh_buf,
                         size_t *bh_len, struct err *e)
{
    struct manifest *m = j->man;
    uint64_t segsz = x->info.wal_segment_size;
    size_t p;

    m->name = strdup(res->name);
    m->walship_version = strdup(PACKAGE_VERSION);
    m->start_lsn = res->start_lsn;
    m->stop_lsn = stop->lsn;
    m->timeline = x->tli;
    m->stop_timeline = x->tli;
    wal_segment_of_lsn(x->tli, res->start_lsn, segsz, m->start_wal);
    /* the stop LSN points just past the backup-end record: its segment */
    wal_segment_of_lsn(x->tli, stop->lsn - 1, segsz, m->stop_wal);
    m->stop_time = time(NULL);
    m->pg_version = (uint32_t)x->info.version;
    m->system_identifier = strdup(x->info.system_identifier);
    m->wal_segment_size = segsz;
    m->compression = x->c->compression_level ? xasprintf("zstd:%d", x->c->compression_level) : strdup("none");
    if (keys_current(x->kr) != NULL)
        m->key_id = strdup(keys_current(x->kr)->id_hex);
    m->has_tablespace_map = stop->tablespace_map && stop->tablespace_map[0] != '\0';
    if (bk_bigs_finish(j, e) < 0 || bk_incr_manifest(j->inc, &j->own, j->bs, m, bh_buf, bh_len, e) < 0)
        return -1;
    for (p = 0; p < j->nparts; p++) {
        struct man_part mp = { (uint32_t)(p + 1), j->parts[p].raw, j->parts[p].stored, j->parts[p].files };

        if (man_add_part(m, &mp, e) < 0)
            return -1;
        m->stored_size += j->parts[p].stored;
    }
    for (p = 0; p < list->ntbs; p++)
        if (man_add_tablespace(m, list->tbs[p].oid, list->tbs[p].target, e) < 0)
            return -1;
    for (p = 0; p < m->nfiles; p++)
        m->original_size += m->files[p].size;
    man_sort(m);
    if (m->name == NULL || m->walship_version == NULL || m->system_identifier == NULL || m->compression == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    res->original_size = m->original_size;
    res->stored_size = m->stored_size;
    res->nfiles = m->nfiles;
    res->nparts = j->nparts;
    return 0;
}

/* One region: the stop segment archived, then the block hashes, the label,
 * the map, a check that every part is there and, last, the manifest (from
 * then on the backup exists). */
static int publish(struct push_ctx *x, int r, const struct bk_job *j, const struct pg_backup_stop_result *stop,
                   const unsigned char *bh_buf, size_t bh_len, const char *json, size_t jlen, struct err *e)
{
    const char *name = j->name;
    int level = x->c->compression_level;
    struct repo *rp = x->rp[r];
    char key[256];

    if (check_wal(x->c, rp, &x->c->regions[r], x->sp, j->man->stop_wal, e) < 0 ||
        repo_key_backup(key, sizeof key, name, "blockhash") < 0 ||
        repo_put_buf(rp, key, level, bh_buf, bh_len, e) < 0 ||
        repo_key_backup(key, sizeof key, name, "backup_label") < 0 ||
        repo_put_buf(rp, key, level, stop->backup_label, strlen(stop->backup_label), e) < 0)
        return -1;
    if (j->man->has_tablespace_map &&
        (repo_key_backup(key, sizeof key, name, "tablespace_map") < 0 ||
         repo_put_buf(rp, key, level, stop->tablespace_map, strlen(stop->tablespace_map), e) < 0))
        return -1;
    /* every part is there at its size just before the manifest makes the
     * backup exist: a `delete` that took this backup in progress for an
     * abandoned one (garbage_hours 0, a clock ahead) fails the backup */
    if (cat_parts_present(rp, name, j->man, e) < 0)
        return err_prefix(e, "not writing the manifest (was a part removed while the backup ran: a `delete` with a "
                          "small garbage_hours, or a clock ahead?); the backup failed");
    if (x->inc != NULL) {
        char why[768];
        int d = bk_incr_recheck(x->inc, rp, why, sizeof why, e);

        if (d != 0)
            return d < 0 ? -1 : err_setf(e, ERR_CORRUPT, "not writing the manifest of incremental backup %s: %s (a "
                                         "`delete` while the backup ran?); the backup failed in this region", name, why);
    }
    if (repo_key_backup(key, sizeof key, name, CAT_MANIFEST) < 0)
        return err_setf(e, ERR_INTERNAL, "backup name too long: %s", name);
    if (repo_put_buf(rp, key, level, json, jlen, e) < 0)
        return -1;
    if (x->inc != NULL) {
        /* a `delete` between that check and the write: not "ok" over a
         * parent that is gone (adversarial pass P) */
        char why[768];
        int d = bk_incr_confirm(x->inc, rp, name, why, sizeof why, e);

        if (d != 0)
            return d < 0 ? -1 : err_setf(e, ERR_CORRUPT, "incremental backup %s: %s (a `delete` while the backup "
                                         "ran?): its manifest was removed again; the backup failed in this region",
                                         name, why);
    }
    return 0;
}

/* Every region that failed, named in one error. */
static int regions_outcome(const struct config *c, struct bk_result *res, struct err *e)
{
    char names[512] = "";
    int nfail = 0, r;
    struct err first = ERR_INIT;

    for (r = 0; r < c->nregions; r++) {
        if (res->regions[r].ok)
            continue;
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", nfail ? ", " : "", c->regions[r].name);
        if (nfail++ == 0)
            first = res->regions[r].err;
    }
    if (nfail == 0)
        return 0;
    /* an incomplete backup is a failure (exit 3), even when a region's own
     * error was "not found" (the stop segment never archived, a part
     * removed): exit 1 would say the thing asked for does not exist */
    if (first.code == ERR_OK || first.code == ERR_NOTFOUND)
        first.code = ERR_NET;
    return err_setf(e, first.code, "backup %s is not complete in %d region%s (%s): %s",
                    res->name, nfail, nfail > 1 ? "s" : "", names, first.msg);
}

static void push_close(struct push_ctx *x)
{
    int r;

    if (x->started) {
        struct pg_backup_stop_result ignored;
        struct err ie = ERR_INIT;
        /* end the backup on the server; the parts stay incomplete */
        if (pg_backup_end(x->pg, 1, &ignored, &ie) == 0)
            pg_backup_stop_result_free(&ignored);
    }
    for (r = 0; r < BK_MAX_REGIONS; r++)
        repo_free(x->rp[r]);
    pg_disconnect(x->pg);
    spool_unlock(x->lockfd);
    spool_free(x->sp);
}

int bk_push(const struct config *c, const struct keyring *kr, const struct bk_opts *o, struct bk_result *res,
            struct err *e)
{
    struct push_ctx x;
    struct bk_job j;
    struct bk_list list;
    struct pg_backup_stop_result stop = { 0, NULL, NULL };
    struct bk_incr inc;
    unsigned char *bh_buf = NULL;
    size_t bh_len = 0, jlen;
    char label[128], *json = NULL;
    uint64_t t0 = now_ms(), part_size = o->part_size ? o->part_size : ((uint64_t)1 << 30);
    int rc = -1, r;

    memset(res, 0, sizeof *res);
    memset(&x, 0, sizeof x);
    memset(&j, 0, sizeof j);
    memset(&list, 0, sizeof list);
    memset(&inc, 0, sizeof inc);
    x.c = c;
    x.kr = kr;
    x.notes = o->notes;
    x.lockfd = -1;
    pthread_mutex_init(&j.lock, NULL);
    j.bs = BM_BLOCK_SIZE;
    if (c->nregions > BK_MAX_REGIONS) {
        pthread_mutex_destroy(&j.lock);
        return err_setf(e, ERR_CONFIG, "at most %d regions are supported", BK_MAX_REGIONS);
    }
    res->nregions = c->nregions;
    if (push_open(&x, &j, e) < 0 || (o->incremental && choose_parent(&x, &j, &inc, res, e) < 0))
        goto out;
    x.inc = inc.have_parent ? &inc : NULL;
    bh_set_init(&j.own, j.bs);
    j.c = c;
    j.kr = kr;
    j.notes = o->notes;
    j.checked = x.rp;
    if ((j.man = man_new()) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (choose_name(x.rp, c->nregions, res->name, &j.man->start_time, e) < 0)
        goto out;
    j.name = res->name;
    snprintf(label, sizeof label, "walship %s", res->name);
    if (pg_backup_begin(x.pg, label, &res->start_lsn, &x.tli, e) < 0)
        goto out;
    x.started = 1;
    if (check_pgdata(&x, j.sysid, res->start_lsn, e) < 0)
        goto out;
    note(o->notes, LOG_INFO, "backup %s started at %X/%X on timeline %u", res->name,
         (unsigned)(res->start_lsn >> 32), (unsigned)res->start_lsn, x.tli);
    if (bk_walk(x.pgdata, &list, e) < 0)
        goto out;
    if (list.nlinks_skipped > 0)
        note(o->notes, LOG_WARNING, "%zu symbolic link%s in PGDATA (%s%s) %s not in the backup: only tablespaces "
             "and pg_wal are followed, and a restore will lack %s", list.nlinks_skipped,
             list.nlinks_skipped == 1 ? "" : "s", list.first_link_skipped, list.nlinks_skipped > 1 ? ", ..." : "",
             list.nlinks_skipped == 1 ? "is" : "are", list.nlinks_skipped == 1 ? "it" : "them");
    note_recovery_settings(o->notes, x.pgdata, j.man, res);
    j.list = &list;
    if (bk_plan(&j, &list, part_size, c->parallel, e) < 0)
        goto out;
    if (run_parts(&j, o, &list, e) < 0 || pg_backup_end(x.pg, c->archive_timeout, &stop, e) < 0)
        goto out;
    x.started = 0;
    res->stop_lsn = stop.lsn;
    if (bk_tablespaces_new(x.pgdata, stop.tablespace_map, label, sizeof label) > 0)
        note(o->notes, LOG_WARNING, "tablespace %s was created while backup %s ran: a restore of it replays the "
             "CREATE TABLESPACE at the path it was made with, which --tablespace-map cannot move, and PostgreSQL "
             "empties that path's PG_* directory first; never restore it on this host (docs/RESTORE.md), and take "
             "a new backup", label, res->name);
    if (fill_manifest(&x, &j, &list, &stop, res, &bh_buf, &bh_len, e) < 0 || man_to_json(j.man, &json, &jlen, e) < 0)
        goto out;
    for (r = 0; r < c->nregions; r++) {
        struct err re = ERR_INIT;

        if (j.region_failed[r])
            res->regions[r].err = j.region_err[r];
        else if (publish(&x, r, &j, &stop, bh_buf, bh_len, json, jlen, &re) < 0)
            res->regions[r].err = re;
        else
            res->regions[r].ok = 1;
    }
    res->seconds = (double)(now_ms() - t0) / 1000.0;
    rc = regions_outcome(c, res, e);
out:
    push_close(&x);
    free(json);
    pg_backup_stop_result_free(&stop);
    man_free(j.man);
    bk_incr_free(&inc);
    bh_set_free(&j.own);
    free(bh_buf);
    bk_plan_free(&j);
    bk_list_free(&list);
    pthread_mutex_destroy(&j.lock);
    return rc;
}
