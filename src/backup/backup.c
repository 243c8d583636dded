#include "backup.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autoconf.h"
#include "bk_incr.h"
#include "bk_walk.h"
#include "fault.h"
#include "log.h"
#include "manifest.h"
#include "multi.h"
#include "obj.h"
#include "pgconn.h"
#include "rconf.h"
#include "repo.h"
#include "spool.h"
#include "util.h"
#include "wal.h"

#define BK_READ_BUF (1u << 20)
#define BK_MIN_PART ((uint64_t)64 << 20)

struct bk_part {
    size_t first, last;         /* items[first .. last-1] */
    uint64_t planned;           /* file bytes at listing time */
    uint64_t raw, stored;
    uint32_t files;
};

struct bk_job {
    const struct config *c;
    const struct keyring *kr;
    struct repo *const *checked;   /* the regions whose identity bk_push checked (NULL: failed) */
    uint64_t sysid;                 /* the cluster's: every object is bound to it */
    const struct bk_list *list;
    const char *name;
    struct bk_part *parts;
    size_t nparts;
    size_t next_part;
    uint64_t target;            /* planned bytes per part */
    struct manifest *man;       /* files added under lock */
    pthread_mutex_t lock;
    int region_failed[BK_MAX_REGIONS];
    struct err region_err[BK_MAX_REGIONS];
    int fatal;                  /* a local fault: stop everything */
    struct err fatal_err;
    uint64_t done;              /* bytes of files read, atomically updated */
    uint32_t bs;                /* block size of the block hashes */
    const struct bk_incr *inc;  /* the parent, when incremental */
    struct bh_set own;          /* this backup's block hashes, under lock */
};

/* One file as it went into a part. */
struct pf_ent {
    size_t item;
    uint64_t size;
    char sha[65];
    char *map;                  /* incremental: block map, else NULL */
    uint64_t stored;
    char stored_sha[65];
    unsigned char *hashes;      /* block hashes, or NULL */
};

/* ---- one part: tar → count → encoder → count → fan-out ---- */

struct tar_out {
    struct sink *s;
    struct err *e;
    int failed;
};

static la_ssize_t tar_write_cb(struct archive *a, void *cd, const void *buf, size_t n)
{
    struct tar_out *t = cd;

    if (sink_write(t->s, buf, n, t->e) < 0) {
        t->failed = 1;
        archive_set_error(a, EIO, "%s", t->e->msg);
        return -1;
    }
    return (la_ssize_t)n;
}

static void job_region_fail(struct bk_job *j, int r, const struct err *e)
{
    pthread_mutex_lock(&j->lock);
    if (!j->region_failed[r]) {
        j->region_failed[r] = 1;
        j->region_err[r] = *e;
    }
    pthread_mutex_unlock(&j->lock);
}

static void job_fatal(struct bk_job *j, const struct err *e)
{
    pthread_mutex_lock(&j->lock);
    if (!j->fatal) {
        j->fatal = 1;
        j->fatal_err = *e;
    }
    pthread_mutex_unlock(&j->lock);
}

/* Has a local fault stopped the backup?  Read under the lock: workers set
 * it while others read it. */
static int job_stopped(struct bk_job *j)
{
    int f;

    pthread_mutex_lock(&j->lock);
    f = j->fatal;
    pthread_mutex_unlock(&j->lock);
    return f;
}

/* Copy one file into the tar; returns 1 if written, 0 if it vanished. */
/* Copy one file into the tar; returns 1 if written (or, incremental, if
 * nothing of it needed writing), 0 if it vanished. */
static int tar_file(struct archive *a, struct tar_out *to, const struct bk_item *it, unsigned char *buf,
                    int tmpfd, struct pf_ent *out, struct bk_job *j, struct err *e)
{
    char *sha_hex = out->sha;
    uint64_t *size_out = &out->size;
    struct bh_acc acc;
    struct archive_entry *ent = NULL;
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = NULL;
    struct stat st;
    uint64_t left;
    int fd, rc = -1;

    fd = open(it->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;   /* dropped since the walk: WAL replay handles it */
        return err_errno(e, ERR_IO, errno, "could not open \"%s\"", it->src);
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_setf(e, ERR_IO, "\"%s\" is no longer a regular file", it->src);
    }
    if (j->inc != NULL) {
        const struct man_file *pfm;
        const struct bh_file *ph = bk_incr_parent_of(j->inc, it->path, (uint64_t)st.st_size, &pfm);

        if (ph != NULL) {
            struct bk_incr_file f;
            struct bk_incr_src src = { fd, it->src, it->path, &st };

            rc = bk_incr_tar(j->inc, a, &to->failed, &src, ph, pfm, tmpfd, buf, BK_READ_BUF, &j->done, &f, e);
            close(fd);
            if (rc < 0)
                return -1;
            memcpy(out->sha, f.sha, sizeof out->sha);
            memcpy(out->stored_sha, f.stored_sha, sizeof out->stored_sha);
            out->size = (uint64_t)st.st_size;
            out->stored = f.stored;
            out->map = f.map;
            out->hashes = f.hashes;
            return 1;
        }
    }
    if (bh_acc_init(&acc, (uint64_t)st.st_size, j->bs, e) < 0) {
        close(fd);
        return -1;
    }
    md = EVP_MD_CTX_new();
    ent = archive_entry_new();
    if (md == NULL || ent == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    archive_entry_set_pathname(ent, it->path);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, st.st_mode & 07777);
    archive_entry_set_size(ent, st.st_size);
    archive_entry_set_mtime(ent, st.st_mtime, 0);
    if (archive_write_header(a, ent) != ARCHIVE_OK) {
        if (!to->failed)
            err_setf(e, ERR_INTERNAL, "could not write the tar header of \"%s\": %s", it->path,
                     archive_error_string(a));
        goto out;
    }
    left = (uint64_t)st.st_size;
    while (left > 0) {
        size_t want = left < BK_READ_BUF ? (size_t)left : BK_READ_BUF;
        ssize_t n = read(fd, buf, want);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_errno(e, ERR_IO, errno, "could not read \"%s\"", it->src);
            goto out;
        }
        if (n == 0) {
            /* shrank (truncated relation): pad to the size in the header */
            memset(buf, 0, want);
            n = (ssize_t)want;
        }
        EVP_DigestUpdate(md, buf, (size_t)n);
        bh_acc_update(&acc, buf, (size_t)n);
        if (archive_write_data(a, buf, (size_t)n) != n) {
            if (!to->failed)
                err_setf(e, ERR_INTERNAL, "could not write \"%s\" into the archive: %s", it->path,
                         archive_error_string(a));
            goto out;
        }
        left -= (uint64_t)n;
        __atomic_add_fetch(&j->done, (uint64_t)n, __ATOMIC_RELAXED);
    }
    EVP_DigestFinal_ex(md, digest, &dlen);
    hex_encode(digest, 32, sha_hex);
    *size_out = (uint64_t)st.st_size;
    out->stored = *size_out;
    out->hashes = bh_acc_take(&acc);
    rc = 1;
out:
    bh_acc_free(&acc);
    EVP_MD_CTX_free(md);
    archive_entry_free(ent);
    close(fd);
    return rc;
}

static int tar_dir(struct archive *a, struct tar_out *to, const struct bk_item *it, struct err *e)
{
    struct archive_entry *ent = archive_entry_new();
    int rc = 0;

    if (ent == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    archive_entry_set_pathname(ent, it->path);
    archive_entry_set_filetype(ent, AE_IFDIR);
    archive_entry_set_perm(ent, it->mode);
    archive_entry_set_mtime(ent, it->mtime, 0);
    if (archive_write_header(a, ent) != ARCHIVE_OK) {
        if (!to->failed)
            err_setf(e, ERR_INTERNAL, "could not write directory \"%s\": %s", it->path, archive_error_string(a));
        rc = -1;
    }
    archive_entry_free(ent);
    return rc;
}

/* Upload sinks for the regions still healthy, behind one fan-out. */
static int open_fanout(struct bk_job *j, struct repo **rp, const char *key, struct multi_result *res, int *map,
                       size_t *nb, struct sink **out, struct err *e)
{
    struct sink *branches[BK_MAX_REGIONS];
    int r;

    *nb = 0;
    for (r = 0; r < j->c->nregions; r++) {
        struct err pe = ERR_INIT;
        int failed;

        pthread_mutex_lock(&j->lock);
        failed = j->region_failed[r];
        pthread_mutex_unlock(&j->lock);
        if (failed)
            continue;
        if (rp[r] == NULL || stor_put(rp[r]->st, key, &branches[*nb], &pe) < 0) {
            if (rp[r] == NULL)
                err_setf(&pe, ERR_INTERNAL, "region %s was not opened", j->c->regions[r].name);
            job_region_fail(j, r, &pe);
            continue;
        }
        {
            char point[96];

            snprintf(point, sizeof point, "upload.%s", j->c->regions[r].name);
            branches[*nb] = fault_wrap(branches[*nb], point);
        }
        res[*nb].name = j->c->regions[r].name;
        map[*nb] = r;
        (*nb)++;
    }
    if (*nb == 0)
        return err_setf(e, ERR_NET, "no region is left to upload \"%s\" to", key);
    if (multi_tee_new(branches, res, *nb, out, e) < 0) {
        size_t i;
        for (i = 0; i < *nb; i++)
            sink_free(branches[i]);
        return -1;
    }
    return 0;
}

/* After the part's chain was closed (chain_rc, chain_err): a region whose
 * object was not committed has failed, whatever stage failed. */
static void fanout_results(struct bk_job *j, struct multi_result *res, const int *map, size_t nb, int chain_rc,
                           const struct err *chain_err)
{
    size_t i;

    multi_settle(res, nb, chain_rc, chain_err);
    for (i = 0; i < nb; i++)
        if (!res[i].committed)
            job_region_fail(j, map[i], &res[i].err);
}

struct part_files {
    struct pf_ent *v;
    size_t n;
};

/* Into the manifest and the block hashes, under the job's lock. */
static int record_files(struct bk_job *j, struct part_files *pf, uint32_t part, struct err *e)
{
    size_t i;

    for (i = 0; i < pf->n; i++) {
        struct pf_ent *f = &pf->v[i];
        const struct bk_item *it = &j->list->items[f->item];
        int rc;

        if (f->map != NULL)
            rc = man_add_file_map(j->man, it->path, f->stored > 0 ? part : 0, f->size, it->mode, it->mtime, f->sha,
                                  f->map, f->stored, f->stored_sha, e);
        else
            rc = man_add_file(j->man, it->path, part, f->size, it->mode, it->mtime, f->sha, e);
        if (rc < 0)
            return -1;
        if (f->hashes != NULL) {
            rc = bh_set_add(&j->own, it->path, f->size, f->hashes, e);
            f->hashes = NULL;
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static void part_files_free(struct part_files *pf)
{
    size_t i;

    for (i = 0; pf->v != NULL && i < pf->n; i++) {
        free(pf->v[i].map);
        free(pf->v[i].hashes);
    }
    free(pf->v);
}

static int do_part(struct bk_job *j, struct repo **rp, size_t pi, unsigned char *buf, int tmpfd, struct err *e)
{
    struct bk_part *p = &j->parts[pi];
    struct multi_result res[BK_MAX_REGIONS];
    int map[BK_MAX_REGIONS];
    struct sink *tee = NULL, *enc = NULL, *counted = NULL, *rawc = NULL;
    struct archive *a = NULL;
    struct tar_out to;
    struct obj_opts oo;
    struct part_files pf = { NULL, 0 };
    char key[REPO_KEY_MAX], partname[32];
    size_t nb = 0, i;
    int rc = -1, closed = 0;

    snprintf(partname, sizeof partname, "part-%04zu", pi + 1);
    if (repo_key_backup(key, sizeof key, j->name, partname) < 0)
        return err_setf(e, ERR_INTERNAL, "key too long");
    if (open_fanout(j, rp, key, res, map, &nb, &tee, e) < 0)
        return -1;
    counted = count_sink_new(tee, &p->stored);
    if (counted == NULL) {
        sink_free(tee);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    memset(&oo, 0, sizeof oo);
    oo.level = j->c->compression_level;
    /* Files are never split, so one big relation makes one big part (a
     * 640 MB pgbench_accounts beside 100 MB of the rest): such a part
     * compresses with zstd's threads so it does not end up alone on one
     * core while the others idle. */
    oo.workers = p->planned > 2 * j->target ? j->c->parallel : 0;
    oo.size_hint = p->planned;
    oo.kr = j->kr;
    oo.bind.key = key;
    oo.bind.sysid = j->sysid;
    if (obj_encoder_new(counted, &oo, &enc, e) < 0) {
        sink_free(counted);
        return -1;
    }
    rawc = count_sink_new(enc, &p->raw);
    if (rawc == NULL) {
        sink_free(enc);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    pf.v = calloc(p->last - p->first + 1, sizeof *pf.v);
    a = archive_write_new();
    if (pf.v == NULL || a == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    to.s = rawc;
    to.e = e;
    to.failed = 0;
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 65536) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, &to, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK) {
        err_setf(e, ERR_INTERNAL, "libarchive: %s", archive_error_string(a));
        goto out;
    }
    for (i = p->first; i < p->last; i++) {
        const struct bk_item *it = &j->list->items[i];
        int got;

        if (job_stopped(j))
            goto out_quiet;
        if (it->is_dir) {
            if (tar_dir(a, &to, it, e) < 0)
                goto out;
            continue;
        }
        memset(&pf.v[pf.n], 0, sizeof pf.v[pf.n]);
        got = tar_file(a, &to, it, buf, tmpfd, &pf.v[pf.n], j, e);
        if (got < 0)
            goto out;
        if (got == 1)
            pf.v[pf.n++].item = i;
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        if (!to.failed)
            err_setf(e, ERR_INTERNAL, "libarchive: %s", archive_error_string(a));
        goto out;
    }
    /* close: the encoder flushes, the fan-out commits each region's object;
     * a region counts only if its object was committed */
    {
        struct err ce = ERR_INIT;
        int crc = sink_close(rawc, &ce);

        closed = 1;
        fanout_results(j, res, map, nb, crc, &ce);
        if (multi_settle(res, nb, crc, &ce) == 0) {
            *e = ce;
            goto out;
        }
    }
    p->files = 0;
    for (i = 0; i < pf.n; i++)
        p->files += pf.v[i].map == NULL || pf.v[i].stored > 0;
    pthread_mutex_lock(&j->lock);
    if (record_files(j, &pf, (uint32_t)(pi + 1), e) < 0) {
        pthread_mutex_unlock(&j->lock);
        goto out;
    }
    pthread_mutex_unlock(&j->lock);
    rc = 0;
    goto out;
out_quiet:
    err_setf(e, ERR_INTERNAL, "stopped");
out:
    if (rc < 0 && !closed) {
        /* nothing was committed: every region failed while writing, or the
         * chain did (reading PGDATA, compressing, encrypting) */
        fanout_results(j, res, map, nb, -1, e);
    }
    if (a != NULL)
        archive_write_free(a);
    sink_free(rawc);
    part_files_free(&pf);
    return rc;
}

static void *part_worker(void *arg)
{
    struct bk_job *j = arg;
    struct repo *rp[BK_MAX_REGIONS];
    unsigned char *buf = malloc(BK_READ_BUF);
    struct err e = ERR_INIT;
    int r, tmpfd = -1;

    memset(rp, 0, sizeof rp);
    if (buf == NULL) {
        err_setf(&e, ERR_NOMEM, "out of memory");
        job_fatal(j, &e);
        return NULL;
    }
    if (j->inc != NULL && (tmpfd = bk_incr_staging_open(j->c->spool_dir, &e)) < 0) {
        job_fatal(j, &e);
        free(buf);
        return NULL;
    }
    for (r = 0; r < j->c->nregions; r++) {
        if (j->checked[r] == NULL)
            continue;   /* failed already */
        if (repo_open(&j->c->regions[r], j->c, j->kr, 0, &rp[r], &e) < 0) {
            job_region_fail(j, r, &e);
            err_clear(&e);
            continue;
        }
        rp[r]->id = j->checked[r]->id;
        rp[r]->have_id = 1;
    }
    for (;;) {
        size_t pi;

        pthread_mutex_lock(&j->lock);
        pi = j->fatal ? j->nparts : j->next_part++;
        pthread_mutex_unlock(&j->lock);
        if (pi >= j->nparts)
            break;
        err_clear(&e);
        if (do_part(j, rp, pi, buf, tmpfd, &e) < 0) {
            int all_failed = 1;

            pthread_mutex_lock(&j->lock);
            for (r = 0; r < j->c->nregions; r++)
                if (!j->region_failed[r])
                    all_failed = 0;
            pthread_mutex_unlock(&j->lock);
            /* a region's failure is recorded per region; anything else
             * (reading PGDATA, memory) stops the backup */
            if (!all_failed || e.code != ERR_NET)
                job_fatal(j, &e);
            break;
        }
    }
    for (r = 0; r < j->c->nregions; r++)
        repo_free(rp[r]);
    if (tmpfd >= 0)
        close(tmpfd);
    free(buf);
    return NULL;
}

/* ---- orchestration ---- */

static void plan_parts(struct bk_job *j, const struct bk_list *l, uint64_t part_size, int parallel)
{
    uint64_t target = l->total_bytes / (uint64_t)(parallel * 2);
    uint64_t acc = 0;
    size_t i, start = 0;

    /* enough parts to keep every worker busy, none above part_size */
    if (target < BK_MIN_PART)
        target = BK_MIN_PART;
    if (target > part_size)
        target = part_size;
    j->nparts = 0;
    j->target = target;
    for (i = l->ndirs; i < l->n; i++) {
        acc += l->items[i].size;
        if (acc >= target && i + 1 < l->n) {
            j->parts[j->nparts].first = start;
            j->parts[j->nparts].last = i + 1;
            j->parts[j->nparts].planned = acc;
            j->nparts++;
            start = i + 1;
            acc = 0;
        }
    }
    j->parts[j->nparts].first = start;
    j->parts[j->nparts].last = l->n;
    j->parts[j->nparts].planned = acc;
    j->nparts++;
}

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
static void note_recovery_settings(const char *pgdata, struct manifest *m, struct bk_result *res)
{
    struct rconf_list l = { NULL, 0, 0 };
    struct err e = ERR_INIT;

    if (rconf_neutralise(pgdata, 0, NULL, &l, &e) < 0) {
        log_warning("could not check the configuration for recovery settings: %s", e.msg);
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

int bk_push(const struct config *c, const struct keyring *kr, const struct bk_opts *o, struct bk_result *res,
            struct err *e)
{
    struct bk_job j;
    struct bk_list list;
    struct pgconn *pg = NULL;
    struct pg_info info;
    struct pg_backup_stop_result stop = { 0, NULL, NULL };
    struct spool *sp = NULL;
    struct repo *rp[BK_MAX_REGIONS];
    struct repo_ident want;
    struct progress_ctx pc;
    struct bk_incr inc;
    unsigned char *bh_buf = NULL;
    size_t bh_len = 0;
    pthread_t threads[64], pthr;
    const char *pgdata;
    char label[128];
    uint64_t t0 = now_ms(), part_size = o->part_size ? o->part_size : ((uint64_t)1 << 30);
    int lockfd = -1, nthreads = 0, i, rc = -1, started = 0, have_progress = 0, r;
    uint32_t tli = 0;

    memset(res, 0, sizeof *res);
    memset(&j, 0, sizeof j);
    memset(&list, 0, sizeof list);
    memset(rp, 0, sizeof rp);
    memset(&inc, 0, sizeof inc);
    pthread_mutex_init(&j.lock, NULL);
    j.bs = BM_BLOCK_SIZE;
    if (c->nregions > BK_MAX_REGIONS)
        return err_setf(e, ERR_CONFIG, "at most %d regions are supported", BK_MAX_REGIONS);
    res->nregions = c->nregions;

    if (pg_connect(c->pg_conninfo, &pg, e) < 0 || pg_get_info(pg, &info, e) < 0)
        goto out;
    {
        uint64_t sysid;

        if (parse_u64(info.system_identifier, 1, UINT64_MAX - 1, &sysid, e) < 0) {
            err_prefix(e, "the server's system identifier");
            goto out;
        }
        repo_ident_init(&want, sysid, (unsigned)(info.version / 10000), (uint32_t)info.wal_segment_size);
        j.sysid = sysid;
    }
    if (spool_open(c->spool_dir, c->spool_max_bytes, want.sysid, &sp, e) < 0)
        goto out;
    r = spool_lock(sp, "backup.lock", 0, &lockfd, e);
    if (r <= 0) {
        if (r == 0)
            err_setf(e, ERR_LOCKED, "another backup-push of this cluster is running (lock %s/backup.lock)",
                     spool_dir(sp));
        goto out;
    }
    if (info.in_recovery) {
        err_setf(e, ERR_CONFIG, "the server is a standby: backup-push runs against the primary");
        goto out;
    }
    if (!info.archive_mode) {
        err_setf(e, ERR_CONFIG, "archive_mode is off: a backup without archived WAL cannot be restored "
                 "(set archive_mode = on and archive_command = 'walship wal-push %%p')");
        goto out;
    }
    pgdata = c->pgdata ? c->pgdata : info.data_directory;
    /* every region must be this cluster's repository (created on first use);
     * one that is not fails, the others still get the backup */
    for (r = 0; r < c->nregions; r++) {
        struct err re = ERR_INIT;

        if (repo_open(&c->regions[r], c, kr, 0, &rp[r], &re) < 0 || repo_ident_ensure(rp[r], &want, &re) < 0) {
            log_warning("%s", re.msg);
            repo_free(rp[r]);
            rp[r] = NULL;
            j.region_failed[r] = 1;
            j.region_err[r] = re;
        }
    }

    for (r = 0; r < c->nregions && rp[r] == NULL; r++)
        ;
    if (r == c->nregions) {
        *e = j.region_err[0];
        err_prefix(e, "no region can take the backup");
        goto out;
    }

    if (o->incremental) {
        struct bk_incr_policy pol = { c->max_chain, c->full_every, (int64_t)time(NULL) };
        int k = bk_incr_choose(&inc, rp, c->nregions, &pol, res->full_because, sizeof res->full_because, e);

        if (k < 0)
            goto out;
        if (k == 0) {
            log_warning("taking a full backup instead of an incremental: %s", res->full_because);
        } else {
            j.inc = &inc;
            j.bs = inc.block_size;
            res->incremental = 1;
            snprintf(res->parent, sizeof res->parent, "%s", inc.parent);
        }
    }
    bh_set_init(&j.own, j.bs);
    j.c = c;
    j.kr = kr;
    j.checked = rp;
    j.man = man_new();
    if (j.man == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    {
        /* names have whole seconds: a second backup-push within the same
         * second as one before waits for a name of its own (never writes
         * into another backup's folder) */
        time_t now = time(NULL);
        int tries;

        for (tries = 0;; tries++) {
            cat_new_name(now, res->name);
            if (!name_taken(rp, c->nregions, res->name) || tries >= 5)
                break;
            sleep(1);
            now = time(NULL);
        }
        j.man->start_time = now;
    }
    j.name = res->name;
    snprintf(label, sizeof label, "walship %s", res->name);
    if (pg_backup_begin(pg, label, &res->start_lsn, &tli, e) < 0)
        goto out;
    started = 1;
    log_info("backup %s started at %X/%X on timeline %u", res->name, (unsigned)(res->start_lsn >> 32),
             (unsigned)res->start_lsn, tli);

    if (bk_walk(pgdata, &list, e) < 0)
        goto out;
    note_recovery_settings(pgdata, j.man, res);
    j.list = &list;
    j.parts = calloc(list.n + 1, sizeof *j.parts);
    if (j.parts == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    plan_parts(&j, &list, part_size, c->parallel);

    memset(&pc, 0, sizeof pc);
    if (o->progress != NULL) {
        pc.j = &j;
        pc.o = o;
        pc.total = list.total_bytes;
        pthread_mutex_init(&pc.m, NULL);
        pthread_cond_init(&pc.cv, NULL);
        have_progress = pthread_create(&pthr, NULL, progress_thread, &pc) == 0;
    }
    for (i = 0; i < c->parallel && (size_t)i < j.nparts && i < 64; i++)
        if (pthread_create(&threads[nthreads], NULL, part_worker, &j) == 0)
            nthreads++;
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (have_progress) {
        pthread_mutex_lock(&pc.m);
        pc.stop = 1;
        pthread_cond_signal(&pc.cv);
        pthread_mutex_unlock(&pc.m);
        pthread_join(pthr, NULL);
    }
    if (nthreads == 0) {
        err_setf(e, ERR_INTERNAL, "could not start any worker thread");
        goto out;
    }
    if (j.fatal) {
        *e = j.fatal_err;
        goto out;
    }

    if (pg_backup_end(pg, c->archive_timeout, &stop, e) < 0)
        goto out;
    started = 0;
    res->stop_lsn = stop.lsn;

    /* the manifest */
    {
        struct manifest *m = j.man;
        size_t p;

        m->name = strdup(res->name);
        m->walship_version = strdup(PACKAGE_VERSION);
        m->start_lsn = res->start_lsn;
        m->stop_lsn = stop.lsn;
        m->timeline = tli;
        m->stop_timeline = tli;
        wal_segment_of_lsn(tli, res->start_lsn, info.wal_segment_size, m->start_wal);
        /* the stop LSN points just past the backup-end record: its segment */
        wal_segment_of_lsn(tli, stop.lsn - 1, info.wal_segment_size, m->stop_wal);
        m->stop_time = time(NULL);
        m->pg_version = (uint32_t)info.version;
        m->system_identifier = strdup(info.system_identifier);
        m->wal_segment_size = info.wal_segment_size;
        m->compression = c->compression_level ? xasprintf("zstd:%d", c->compression_level) : strdup("none");
        if (keys_current(kr) != NULL)
            m->key_id = strdup(keys_current(kr)->id_hex);
        m->has_tablespace_map = stop.tablespace_map && stop.tablespace_map[0] != '\0';
        if (bk_incr_manifest(j.inc, &j.own, j.bs, m, &bh_buf, &bh_len, e) < 0)
            goto out;
        for (p = 0; p < j.nparts; p++) {
            struct man_part mp = { (uint32_t)(p + 1), j.parts[p].raw, j.parts[p].stored, j.parts[p].files };

            if (man_add_part(m, &mp, e) < 0)
                goto out;
            m->stored_size += j.parts[p].stored;
        }
        for (p = 0; p < list.ntbs; p++)
            if (man_add_tablespace(m, list.tbs[p].oid, list.tbs[p].target, e) < 0)
                goto out;
        for (p = 0; p < m->nfiles; p++)
            m->original_size += m->files[p].size;
        man_sort(m);
        if (m->name == NULL || m->walship_version == NULL || m->system_identifier == NULL ||
            m->compression == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        res->original_size = m->original_size;
        res->stored_size = m->stored_size;
        res->nfiles = m->nfiles;
        res->nparts = j.nparts;
    }

    /* per region: WAL present, label, map, manifest last */
    {
        char *json = NULL;
        size_t jlen;

        if (man_to_json(j.man, &json, &jlen, e) < 0)
            goto out;
        for (r = 0; r < c->nregions; r++) {
            struct err re = ERR_INIT;
            char key[256];

            if (j.region_failed[r]) {
                res->regions[r].err = j.region_err[r];
                continue;
            }
            if (check_wal(c, rp[r], &c->regions[r], sp, j.man->stop_wal, &re) < 0 ||
                repo_key_backup(key, sizeof key, res->name, "blockhash") < 0 ||
                repo_put_buf(rp[r], key, c->compression_level, bh_buf, bh_len, &re) < 0 ||
                repo_key_backup(key, sizeof key, res->name, "backup_label") < 0 ||
                repo_put_buf(rp[r], key, c->compression_level, stop.backup_label, strlen(stop.backup_label),
                             &re) < 0 ||
                (j.man->has_tablespace_map &&
                 (repo_key_backup(key, sizeof key, res->name, "tablespace_map") < 0 ||
                  repo_put_buf(rp[r], key, c->compression_level, stop.tablespace_map,
                               strlen(stop.tablespace_map), &re) < 0)) ||
                repo_key_backup(key, sizeof key, res->name, CAT_MANIFEST) < 0 ||
                repo_put_buf(rp[r], key, c->compression_level, json, jlen, &re) < 0) {
                res->regions[r].err = re;
                continue;
            }
            res->regions[r].ok = 1;
        }
        free(json);
    }
    res->seconds = (double)(now_ms() - t0) / 1000.0;
    {
        char names[512] = "";
        int nfail = 0;
        struct err first = ERR_INIT;

        for (r = 0; r < c->nregions; r++) {
            if (res->regions[r].ok)
                continue;
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", nfail ? ", " : "",
                     c->regions[r].name);
            if (nfail++ == 0)
                first = res->regions[r].err;
        }
        if (nfail > 0) {
            err_setf(e, first.code == ERR_OK ? ERR_NET : first.code,
                     "backup %s is not complete in %d region%s (%s): %s", res->name, nfail, nfail > 1 ? "s" : "",
                     names, first.msg);
            goto out;
        }
    }
    rc = 0;
out:
    if (started) {
        struct pg_backup_stop_result ignored;
        struct err ie = ERR_INIT;
        /* end the backup on the server; the parts stay incomplete */
        if (pg_backup_end(pg, 1, &ignored, &ie) == 0)
            pg_backup_stop_result_free(&ignored);
    }
    for (r = 0; r < BK_MAX_REGIONS; r++)
        repo_free(rp[r]);
    pg_backup_stop_result_free(&stop);
    pg_disconnect(pg);
    man_free(j.man);
    bk_incr_free(&inc);
    bh_set_free(&j.own);
    free(bh_buf);
    free(j.parts);
    bk_list_free(&list);
    spool_unlock(lockfd);
    spool_free(sp);
    pthread_mutex_destroy(&j.lock);
    return rc;
}
