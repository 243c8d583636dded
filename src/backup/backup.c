#include "backup.h"
#include "backup_int.h"

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
#include "pool.h"
#include "rconf.h"
#include "repo.h"
#include "spool.h"
#include "util.h"
#include "wal.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

#define BK_READ_BUF (1u << 20)

/* One file as it went into a part. */
struct pf_ent {
    size_t item;
    uint64_t size;
    char sha[65];
    char *map;                  /* incremental: block map, else NULL */
    uint64_t stored;
    char stored_sha[65];
    unsigned char *hashes;      /* block hashes, or NULL */
    int big;                    /* a piece of j->bigs[big], or -1 */
    uint32_t piece;
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

/* Incremental: a file the parent has goes in as its changed blocks only
 * (bk_incr.c).  1 done, 0 the parent lacks it (store it whole), -1 failed. */
static int tar_file_incr(struct archive *a, struct tar_out *to, const struct bk_item *it, int fd,
                         const struct stat *st, unsigned char *buf, int tmpfd, struct pf_ent *out, struct bk_job *j,
                         struct err *e)
{
    const struct man_file *pfm;
    const struct bh_file *ph = bk_incr_parent_of(j->inc, it->path, (uint64_t)st->st_size, &pfm);
    struct bk_incr_file f;
    struct bk_incr_src src = { fd, it->src, it->path, st };

    if (ph == NULL)
        return 0;
    if (bk_incr_tar(j->inc, a, &to->failed, &src, ph, pfm, tmpfd, buf, BK_READ_BUF, &j->done, &f, e) < 0)
        return -1;
    memcpy(out->sha, f.sha, sizeof out->sha);
    memcpy(out->stored_sha, f.stored_sha, sizeof out->stored_sha);
    out->size = (uint64_t)st->st_size;
    out->stored = f.stored;
    out->map = f.map;
    out->hashes = f.hashes;
    return 1;
}

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
        int got = tar_file_incr(a, to, it, fd, &st, buf, tmpfd, out, j, e);

        if (got != 0) {
            close(fd);
            return got;
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
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            err_setf(e, ERR_INTERNAL, "SHA-256 failed on \"%s\"", it->src);
            goto out;
        }
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
    if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
        err_setf(e, ERR_INTERNAL, "SHA-256 failed on \"%s\"", it->src);
        goto out;
    }
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

        if (f->big >= 0) {
            bk_big_record(j, f->big, f->piece, part, f->sha, f->hashes);
            continue;   /* into the manifest once every piece is stored */
        }
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

/* The part's chain: raw count → encoder (bound to `key`) → stored count →
 * the fan-out to every region still in the backup. */
static int open_chain(struct bk_job *j, struct bk_part *p, struct repo **rp, const char *key,
                      struct multi_result *res, int *map, size_t *nb, struct sink **rawc, struct err *e)
{
    struct sink *tee = NULL, *enc = NULL, *counted;
    struct obj_opts oo;

    if (open_fanout(j, rp, key, res, map, nb, &tee, e) < 0)
        return -1;
    counted = count_sink_new(tee, &p->stored);
    if (counted == NULL) {
        sink_free(tee);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    memset(&oo, 0, sizeof oo);
    oo.level = j->c->compression_level;
    /* An incremental's big file makes a big part: zstd's threads keep it
     * from running alone on one core.  Parts of pieces use them too: zstd's
     * jobs cost about 25% less CPU than one long stream (docs/BACKUP.md). */
    oo.workers = p->planned > 2 * j->target || p->pieces ? j->c->parallel : 0;
    oo.size_hint = p->planned;
    oo.kr = j->kr;
    oo.bind.key = key;
    oo.bind.sysid = j->sysid;
    if (obj_encoder_new(counted, &oo, &enc, e) < 0) {
        sink_free(counted);
        return -1;
    }
    *rawc = count_sink_new(enc, &p->raw);
    if (*rawc == NULL) {
        sink_free(enc);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* The part's directories and files into the tar stream: 1 done, 0 the job
 * stopped, -1 failed. */
static int write_items(struct bk_job *j, const struct bk_part *p, struct archive *a, struct tar_out *to,
                       unsigned char *buf, int tmpfd, struct part_files *pf, struct err *e)
{
    size_t i;

    for (i = p->first; i < p->last; i++) {
        const struct bk_unit *u = &j->units[i];
        const struct bk_item *it = &j->list->items[u->item];
        struct pf_ent *f = &pf->v[pf->n];
        int got;

        if (job_stopped(j))
            return 0;
        if (it->is_dir) {
            if (tar_dir(a, to, it, e) < 0)
                return -1;
            continue;
        }
        memset(f, 0, sizeof *f);
        f->big = u->big;
        f->piece = u->piece;
        f->size = f->stored = u->len;   /* a piece's; tar_file sets a whole file's */
        got = u->big >= 0 ? bk_tar_piece(j, a, &to->failed, u, buf, BK_READ_BUF, f->sha, &f->hashes, e)
                          : tar_file(a, to, it, buf, tmpfd, f, j, e);
        if (got < 0)
            return -1;
        if (got == 1)
            pf->v[pf->n++].item = u->item;
    }
    return 1;
}

static int do_part(struct bk_job *j, struct repo **rp, size_t pi, unsigned char *buf, int tmpfd, struct err *e)
{
    struct bk_part *p = &j->parts[pi];
    struct multi_result res[BK_MAX_REGIONS];
    int map[BK_MAX_REGIONS];
    struct sink *rawc = NULL;
    struct archive *a = NULL;
    struct tar_out to;
    struct part_files pf = { NULL, 0 };
    char key[REPO_KEY_MAX], partname[32];
    size_t nb = 0, i;
    int rc = -1, closed = 0, got;

    snprintf(partname, sizeof partname, "part-%04zu", pi + 1);
    if (repo_key_backup(key, sizeof key, j->name, partname) < 0)
        return err_setf(e, ERR_INTERNAL, "key too long");
    if (ar_dl_load(e) < 0)
        return -1;
    if (open_chain(j, p, rp, key, res, map, &nb, &rawc, e) < 0)
        return -1;
    pf.v = calloc(p->last - p->first + 1, sizeof *pf.v);
    a = archive_write_new();
    if (pf.v == NULL || a == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    to.s = rawc;
    to.e = e;
    to.failed = 0;
    /* names as bytes: in the C locale libarchive refused "café" (BACKUP.md) */
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a, 65536) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open2(a, &to, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK) {
        err_setf(e, ERR_INTERNAL, "libarchive: %s", archive_error_string(a));
        goto out;
    }
    if ((got = write_items(j, p, a, &to, buf, tmpfd, &pf, e)) < 0)
        goto out;
    if (got == 0)
        goto out_quiet;
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

/* A part worker's own state: its regions (opened again: a repo is used by
 * one thread at a time), its read buffer, its incremental staging file. */
struct bk_worker {
    struct repo *rp[BK_MAX_REGIONS];
    unsigned char *buf;
    int tmpfd;
};

static void part_worker_close(void *arg, void *ws)
{
    struct bk_job *j = arg;
    struct bk_worker *w = ws;
    int r;

    if (w == NULL)
        return;
    for (r = 0; r < j->c->nregions; r++)
        repo_free(w->rp[r]);
    if (w->tmpfd >= 0)
        close(w->tmpfd);
    free(w->buf);
    free(w);
}

/* A region that cannot be opened is that region's failure; anything else
 * (memory, the staging file) stops the backup. */
static int part_worker_open(void *arg, void **ws, struct err *e)
{
    struct bk_job *j = arg;
    struct bk_worker *w = calloc(1, sizeof *w);
    int r;

    if (w == NULL || (w->buf = malloc(BK_READ_BUF)) == NULL) {
        free(w);
        err_setf(e, ERR_NOMEM, "out of memory");
        job_fatal(j, e);
        return -1;
    }
    w->tmpfd = -1;
    if (j->inc != NULL && (w->tmpfd = bk_incr_staging_open(j->c->spool_dir, e)) < 0) {
        job_fatal(j, e);
        part_worker_close(j, w);
        return -1;
    }
    for (r = 0; r < j->c->nregions; r++) {
        struct err re = ERR_INIT;

        if (j->checked[r] == NULL)
            continue;   /* failed already */
        if (repo_open(&j->c->regions[r], j->c, j->notes, j->kr, 0, &w->rp[r], &re) < 0) {
            job_region_fail(j, r, &re);
            continue;
        }
        repo_adopt_identity(w->rp[r], j->checked[r]);
    }
    *ws = w;
    return 0;
}

/* One part.  A region's failure is recorded per region and the parts go
 * on; a failure once every region has failed on the network, or any other
 * (reading PGDATA, memory), stops the pool. */
static int part_item(void *arg, void *ws, size_t pi, struct err *e)
{
    struct bk_job *j = arg;
    struct bk_worker *w = ws;
    int r, all_failed = 1;

    if (do_part(j, w->rp, pi, w->buf, w->tmpfd, e) == 0)
        return 0;
    pthread_mutex_lock(&j->lock);
    for (r = 0; r < j->c->nregions; r++)
        if (!j->region_failed[r])
            all_failed = 0;
    pthread_mutex_unlock(&j->lock);
    if (!all_failed || e->code != ERR_NET)
        job_fatal(j, e);
    return -1;
}

int bk_run_parts(struct bk_job *j, int parallel, struct err *e)
{
    struct pool_job pj = { j->nparts, j, part_worker_open, part_item, part_worker_close };
    struct err pe = ERR_INIT;

    /* the pool's own error is either the job's fatal one or the network
     * failure of the last region, which the regions' results already say */
    (void)pool_run(&pj, parallel, &pe);
    if (job_stopped(j)) {
        *e = j->fatal_err;
        return -1;
    }
    return 0;
}
