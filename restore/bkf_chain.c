/*
 * bkf_chain — see bkf_chain.h.  The per-entry writing of a link's blocks
 * is bkf_chain_entry() (called by bkf_tar.c for the entries of a chain),
 * which also hashes each mapped file in block order as it is assembled;
 * the end (bkf_chain_finish) is bkf_chain_fin.c.
 */
#include "bkf_chain.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_tar.h"
#include "catalog.h"
#include "pool.h"
#include "util.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

void bkf_chain_free(struct bkf_chain *c)
{
    uint32_t d;
    size_t i;

    for (d = 1; c->links != NULL && d < c->n; d++)
        man_free(c->links[d]);
    for (d = 0; c->want != NULL && d < c->n; d++)
        free(c->want[d]);
    for (d = 0; c->lidx != NULL && d < c->n; d++)
        free(c->lidx[d]);
    free(c->lidx);
    for (i = 0; c->cf != NULL && c->links != NULL && i < c->links[0]->nfiles; i++) {
        bm_map_free(&c->cf[i].map);
        free(c->cf[i].lp);
        EVP_MD_CTX_free(c->cf[i].md);
    }
    for (i = 0; c->locks_init && i < BKF_LOCKS; i++)
        pthread_mutex_destroy(&c->locks[i]);
    free(c->links);
    free(c->want);
    free(c->tidx);
    free(c->cf);
    memset(c, 0, sizeof *c);
}

static int load_links(struct repo *r, const struct manifest *t, struct bkf_chain *c, struct err *e)
{
    uint32_t d;

    c->n = t->depth + 1;
    c->links = calloc(c->n, sizeof *c->links);
    c->want = calloc(c->n, sizeof *c->want);
    if (c->links == NULL || c->want == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    c->links[0] = (struct manifest *)t;
    for (d = 1; d < c->n; d++) {
        const struct manifest *child = c->links[d - 1];
        char sha[65];

        if (!child->incremental || child->parent == NULL)
            return err_setf(e, ERR_CORRUPT, "backup %s: backup %s (link %u of its chain) has no parent, but the "
                            "chain is %u backups long", t->name, child->name, (unsigned)(d - 1), (unsigned)c->n);
        if (cat_load_manifest_sha(r, child->parent, &c->links[d], sha, e) < 0) {
            if (e->code == ERR_NOTFOUND)
                e->code = ERR_CORRUPT;
            return err_prefix(e, "backup %s needs backup %s (link %u of its chain, the parent of %s), which is "
                              "missing or damaged in region %s", t->name, child->parent, (unsigned)d, child->name,
                              r->name);
        }
        if (strcmp(sha, child->parent_sha256) != 0)
            return err_setf(e, ERR_CORRUPT, "backup %s needs backup %s (link %u of its chain), but the manifest of %s "
                            "in region %s is not the one %s was taken against (SHA-256 %.16s…, expected %.16s…): "
                            "refusing the chain", t->name, child->parent, (unsigned)d, child->parent, r->name,
                            child->name, sha, child->parent_sha256);
        if (c->links[d]->depth != child->depth - 1 || c->links[d]->block_size != t->block_size ||
            (c->links[d]->depth == 0) == (c->links[d]->incremental != 0))
            return err_setf(e, ERR_CORRUPT, "backup %s: link %u of its chain (%s) has depth %u and block size %u, "
                            "expected %u and %u", t->name, (unsigned)d, c->links[d]->name,
                            (unsigned)c->links[d]->depth, (unsigned)c->links[d]->block_size,
                            (unsigned)(child->depth - 1), (unsigned)t->block_size);
    }
    if ((c->lidx = calloc(c->n, sizeof *c->lidx)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (d = 0; d < c->n; d++)
        if ((c->want[d] = calloc(c->links[d]->nparts + 1, 1)) == NULL || (c->lidx[d] = man_index(c->links[d])) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

/* Link d must list `path` with blocks of its own: mark its part wanted.
 * A full backup's file stored as pieces (format 3): every piece's part;
 * its pieces are written by several workers at once, out of block order,
 * so the target file is hashed by reading it back at the end (hash_off). */
static int want_file(struct bkf_chain *c, uint32_t d, const char *path, struct bkf_cfile *cf, struct err *e)
{
    const struct man_file *f = man_lookup(c->links[d], c->lidx[d], path);
    uint32_t k;

    if (f == NULL || (f->part == 0 && f->npieces == 0))
        return err_setf(e, ERR_CORRUPT, "backup %s: file \"%s\" refers to backup %s (link %u of the chain), which "
                        "holds no block of it", c->links[0]->name, path, c->links[d]->name, (unsigned)d);
    for (k = 0; k < f->npieces; k++)
        c->want[d][f->pieces[k].part] = 1;
    if (f->npieces > 0)
        cf->hash_off = 1;
    else
        c->want[d][f->part] = 1;
    return 0;
}

/* Depth d among the file's links (once). */
static int add_lprog(struct bkf_cfile *cf, uint32_t d)
{
    struct bkf_lprog *nv;
    uint32_t k;

    for (k = 0; k < cf->nlp; k++)
        if (cf->lp[k].depth == d)
            return 0;
    if ((nv = realloc(cf->lp, (cf->nlp + 1) * sizeof *nv)) == NULL)
        return -1;
    cf->lp = nv;
    cf->lp[cf->nlp].depth = d;
    cf->lp[cf->nlp].next = 0;
    cf->nlp++;
    return 0;
}

int bkf_chain_load(struct repo *r, const struct manifest *t, struct bkf_chain *c, struct err *e)
{
    size_t i, k;

    memset(c, 0, sizeof *c);
    c->bs = t->block_size;
    if (load_links(r, t, c, e) < 0)
        goto fail;
    c->tidx = man_index(t);
    c->cf = calloc(t->nfiles + 1, sizeof *c->cf);
    if (c->tidx == NULL || c->cf == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (i = 0; i < t->nparts; i++)
        c->want[0][i + 1] = 1;
    for (i = 0; i < t->nfiles; i++) {
        const struct man_file *f = &t->files[i];
        uint32_t last = UINT32_MAX;

        atomic_init(&c->cf[i].blocks, 0);
        atomic_init(&c->cf[i].verified, 0);
        if (f->map == NULL)
            continue;
        if (bm_map_parse(f->map, bm_nblocks(f->size, c->bs), t->depth, &c->cf[i].map, e) < 0) {
            err_prefix(e, "backup %s: file \"%s\"", t->name, f->path);
            goto fail;
        }
        for (k = 0; k < c->cf[i].map.n; k++) {
            uint32_t d = c->cf[i].map.runs[k].depth;

            if (d != 0 && d != last && want_file(c, d, f->path, &c->cf[i], e) < 0)
                goto fail;
            if (add_lprog(&c->cf[i], d) < 0) {
                err_setf(e, ERR_NOMEM, "out of memory");
                goto fail;
            }
            last = d;
        }
        bm_cursor_init(&c->cf[i].hc, &c->cf[i].map);
    }
    for (k = 0; k < BKF_LOCKS; k++)
        pthread_mutex_init(&c->locks[k], NULL);
    c->locks_init = 1;
    return 0;
fail:
    bkf_chain_free(c);
    return -1;
}

const struct man_file *bkf_chain_target(const struct bkf_chain *c, const char *path, struct bkf_cfile **cf)
{
    const struct man_file *f = man_lookup(c->links[0], c->tidx, path);

    if (f != NULL)
        *cf = &c->cf[f - c->links[0]->files];
    return f;
}

int bkf_chain_prepare(struct bkf_chain *c, struct bkf_tar *t, struct err *e)
{
    const struct manifest *m = c->links[0];
    struct bkf_tar_worker w;
    size_t i;
    int rc = 0;

    t->chain = c;
    t->depth = 0;
    t->want = c->want[0];
    if (bkf_tar_worker_init(&w, t) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < m->nfiles && rc == 0; i++)
        if (m->files[i].map != NULL)
            rc = bkf_tar_precreate(&w, m->files[i].path, m->files[i].size, e);
    bkf_tar_worker_free(&w);
    return rc;
}

/* ---- one entry of a link ---- */

/* The blocks an entry holds, in order: all of them (a whole file) or the
 * depth-0 runs of its map. */
struct self_iter {
    const struct bm_map *m;     /* NULL: whole (or a piece, from block `first`) */
    uint64_t first;
    int started;
    size_t run;
    uint64_t run_first;         /* first block after m->runs[run] once entered */
    uint64_t b, end;            /* current block; end of its run */
};

static int self_next(struct self_iter *s, uint64_t nblocks)
{
    if (s->m == NULL) {
        s->b = s->started ? s->b + 1 : s->first;
        s->started = 1;
        return s->b < nblocks;
    }
    if (s->started && s->b + 1 < s->end) {
        s->b++;
        return 1;
    }
    if (s->started)
        s->run++;
    s->started = 1;
    for (; s->run < s->m->n; s->run++) {
        uint64_t first = s->run_first;

        s->run_first += s->m->runs[s->run].count;
        if (s->m->runs[s->run].depth == 0) {
            s->b = first;
            s->end = s->run_first;
            return 1;
        }
    }
    return 0;
}

#define CHAIN_ERR(code, ...) \
    (err_setf(e, code, __VA_ARGS__), \
     err_prefix(e, "backup %s in region %s, part %u: entry \"%s\"", t->m->name, t->region, w->part, name))

struct scatter {
    struct self_iter it;
    struct bm_cursor tc;        /* the target's map */
    uint64_t nb;                /* blocks of the entry's file in this link */
    uint32_t blen, boff;        /* current block: its length here, bytes seen */
    int take;                   /* the target wants the current block from here */
    int have;                   /* a current block */
    /* hashing the target file in block order (not for a whole file) */
    pthread_mutex_t *mu;        /* its lock; NULL: not hashing here */
    int own;                    /* the current block goes into cf->md from the stream */
    int fd;
    unsigned char *buf;         /* for reading blocks back */
};

#define REREAD_BUF ((size_t)256 << 10)

/* With the file's lock held: hash the blocks at the frontier that their
 * links have written, reading them back, as far as they go.  An error
 * gives up (the file is read back whole at the end). */
static void hash_advance(struct bkf_chain *c, struct bkf_cfile *cf, const struct man_file *tf, uint32_t bs,
                         struct scatter *s)
{
    uint64_t nb = bm_nblocks(tf->size, bs);

    while (!cf->hash_off && cf->hashed < nb) {
        uint32_t d = bm_cursor_depth(&cf->hc, cf->hashed), k;
        uint64_t upto, off, end;

        for (k = 0; k < cf->nlp && cf->lp[k].depth != d; k++)
            ;
        if (k == cf->nlp || cf->lp[k].next <= cf->hashed)
            return;
        upto = cf->hc.run_first + cf->map.runs[cf->hc.run].count;
        if (upto > cf->lp[k].next)
            upto = cf->lp[k].next;
        if (s->buf == NULL && (s->buf = malloc(REREAD_BUF)) == NULL) {
            cf->hash_off = 1;
            return;
        }
        end = upto * bs < tf->size ? upto * bs : tf->size;
        for (off = cf->hashed * bs; off < end;) {
            size_t want = end - off < REREAD_BUF ? (size_t)(end - off) : REREAD_BUF;
            ssize_t n = pread(s->fd, s->buf, want, (off_t)off);

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || EVP_DigestUpdate(cf->md, s->buf, (size_t)n) != 1) {
                cf->hash_off = 1;
                return;
            }
            off += (uint64_t)n;
            atomic_fetch_add(&c->reread, (uint64_t)n);
        }
        cf->hashed = upto;
    }
}

/* A block the target takes from here starts: is it the next to hash? */
static void hash_block_start(struct bkf_cfile *cf, struct scatter *s)
{
    s->own = 0;
    if (s->mu == NULL)
        return;
    pthread_mutex_lock(s->mu);
    if (!cf->hash_off && cf->md == NULL &&
        ((cf->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(cf->md, EVP_sha256(), NULL) != 1))
        cf->hash_off = 1;
    s->own = !cf->hash_off && cf->hashed == s->it.b;
    pthread_mutex_unlock(s->mu);
}

/* ... and is written: this link's progress, and the frontier moved on. */
static void hash_block_done(struct bkf_chain *c, struct bkf_cfile *cf, const struct man_file *tf, uint32_t depth,
                            struct scatter *s)
{
    uint32_t k;

    if (s->mu == NULL)
        return;
    pthread_mutex_lock(s->mu);
    for (k = 0; k < cf->nlp; k++)
        if (cf->lp[k].depth == depth)
            cf->lp[k].next = s->it.b + 1;
    if (s->own && !cf->hash_off) {
        cf->hashed = s->it.b + 1;
        bm_cursor_depth(&cf->hc, cf->hashed);
    }
    s->own = 0;
    hash_advance(c, cf, tf, c->bs, s);
    pthread_mutex_unlock(s->mu);
}

static int scatter_block(struct bkf_tar_worker *w, struct scatter *s, const struct man_file *mf,
                         const struct man_file *tf, struct bkf_cfile *cf, const char *name, struct err *e)
{
    struct bkf_tar *t = w->t;
    uint32_t bs = t->chain->bs;

    if (!self_next(&s->it, s->nb))
        return CHAIN_ERR(ERR_CORRUPT, "more data than its block map holds");
    s->blen = bm_block_len(mf->size, bs, s->it.b);
    s->boff = 0;
    s->have = 1;
    s->take = bm_cursor_depth(&s->tc, s->it.b) == t->depth;
    if (s->take && bm_block_len(tf->size, bs, s->it.b) != s->blen)
        return CHAIN_ERR(ERR_CORRUPT, "block %" PRIu64 " has %u bytes here, the target backup's file %u",
                         s->it.b, (unsigned)s->blen, (unsigned)bm_block_len(tf->size, bs, s->it.b));
    if (s->take)
        hash_block_start(cf, s);
    return 0;
}

static int scatter_data(struct bkf_tar_worker *w, struct archive *a, const struct man_file *mf,
                        const struct man_file *tf, struct bkf_cfile *cf, int fd, struct scatter *s, int hash,
                        const char *name, struct err *e)
{
    struct bkf_tar *t = w->t;
    uint64_t pos = 0, stored = w->piece != NULL ? w->piece->size : mf->stored;

    for (;;) {
        const unsigned char *p;
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);

        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return CHAIN_ERR(ERR_CORRUPT, "could not read its data: %s", archive_error_string(a));
        if (off < 0 || (uint64_t)off != pos || len > stored - pos)
            return CHAIN_ERR(ERR_CORRUPT, "data at offset %lld (%zu bytes) where %" PRIu64 " of %" PRIu64
                             " bytes were expected", (long long)off, len, pos, stored);
        if (hash && EVP_DigestUpdate(w->md, buf, len) != 1)
            return CHAIN_ERR(ERR_INTERNAL, "SHA-256 failed");
        atomic_fetch_add(&t->work, (uint64_t)len);
        pos += len;
        for (p = buf; len > 0;) {
            size_t k;

            if ((!s->have || s->boff == s->blen) && scatter_block(w, s, mf, tf, cf, name, e) < 0)
                return -1;
            k = s->blen - s->boff < len ? s->blen - s->boff : len;
            if (s->take) {
                if (pwrite_all(fd, p, k, (off_t)(s->it.b * t->chain->bs + s->boff)) < 0)
                    return CHAIN_ERR(ERR_IO, "could not write: %s", strerror(errno));
                w->pend_bytes += k;
                /* the frontier waits for this block: nobody else touches md */
                if (s->own && EVP_DigestUpdate(cf->md, p, k) != 1)
                    return CHAIN_ERR(ERR_INTERNAL, "SHA-256 failed");
            }
            s->boff += (uint32_t)k;
            if (s->take && s->boff == s->blen) {
                atomic_fetch_add(&cf->blocks, 1);
                hash_block_done(t->chain, cf, tf, t->depth, s);
            }
            p += k;
            len -= k;
        }
        if (w->tick != NULL)
            w->tick(w, w->tick_arg);
    }
    if (pos != stored)
        return CHAIN_ERR(ERR_CORRUPT, "its data ends after %" PRIu64 " of %" PRIu64 " bytes", pos, stored);
    return 0;
}

int bkf_chain_entry(struct bkf_tar_worker *w, struct archive *a, const struct man_file *mf, const char *name,
                    struct err *e)
{
    struct bkf_tar *t = w->t;
    struct bkf_cfile *cf = NULL;
    const struct man_file *tf = bkf_chain_target(t->chain, name, &cf);
    struct bm_map own = { NULL, 0, 0 };
    struct scatter s;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dglen = 0;
    char hex[65];
    int fd, rc = -1, whole;

    if (ar_dl_load(e) < 0)
        return -1;
    if (tf == NULL || tf->map == NULL) {
        /* the target does not have it, or stores it whole itself */
        if (archive_read_data_skip(a) != ARCHIVE_OK)
            return CHAIN_ERR(ERR_CORRUPT, "could not skip its data: %s", archive_error_string(a));
        return 0;
    }
    memset(&s, 0, sizeof s);
    if (mf->map != NULL &&
        bm_map_parse(mf->map, bm_nblocks(mf->size, t->chain->bs), t->chain->links[t->depth]->depth, &own, e) < 0)
        return CHAIN_ERR(ERR_CORRUPT, "%s", e->msg);
    s.it.m = mf->map != NULL ? &own : NULL;
    s.nb = bm_nblocks(mf->size, t->chain->bs);
    if (w->piece != NULL) {
        /* a piece of a full backup's file: its blocks only (block-aligned) */
        s.it.first = w->piece->offset / t->chain->bs;
        s.nb = bm_nblocks(w->piece->offset + w->piece->size, t->chain->bs);
    }
    bm_cursor_init(&s.tc, &cf->map);
    fd = bkf_tar_open_existing(w, name, O_RDWR);
    if (fd < 0) {
        bm_map_free(&own);
        return CHAIN_ERR(ERR_IO, "could not open the file made for it: %s", strerror(errno));
    }
    /* The whole target file from this link only: its stream is the file,
     * and hashing it spares reading it back.  Otherwise the file is hashed
     * in block order as the links write it (hash_block_start/done): the
     * blocks this stream writes at the frontier from the stream, others
     * read back once every block before them is hashed; the file's
     * SHA-256 is checked at the end (bkf_chain_finish), which checks what
     * this stream wrote too. */
    whole = w->piece == NULL && cf->map.n == 1 && cf->map.runs[0].depth == t->depth && mf->stored == tf->size;
    s.fd = fd;
    s.mu = whole || w->piece != NULL ? NULL : &t->chain->locks[(size_t)(cf - t->chain->cf) % BKF_LOCKS];
    if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        CHAIN_ERR(ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    if (scatter_data(w, a, mf, tf, cf, fd, &s, whole || w->piece != NULL, name, e) < 0)
        goto out;
    if (EVP_DigestFinal_ex(w->md, dg, &dglen) != 1) {
        CHAIN_ERR(ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    hex_encode(dg, 32, hex);
    hex[64] = '\0';
    if (w->piece != NULL && strcmp(hex, w->piece->sha256) != 0) {
        CHAIN_ERR(ERR_CORRUPT, "SHA-256 %.16s… of its piece at %" PRIu64 " differs from the manifest's %.16s…: "
                  "backup %s is damaged", hex, w->piece->offset, w->piece->sha256, t->m->name);
        goto out;
    }
    if (whole && strcmp(hex, man_file_stored_sha(mf)) != 0) {
        CHAIN_ERR(ERR_CORRUPT, "SHA-256 %.16s… differs from the manifest's %.16s…: backup %s is damaged", hex,
                  man_file_stored_sha(mf), t->m->name);
        goto out;
    }
    if (whole && strcmp(hex, tf->sha256) == 0)
        atomic_store(&cf->verified, 1);
    w->pend_files++;
    rc = 0;
out:
    if (close(fd) < 0 && rc == 0)
        rc = CHAIN_ERR(ERR_IO, "could not close: %s", strerror(errno));
    free(s.buf);
    bm_map_free(&own);
    return rc;
}
