/*
 * bk_incr — see bk_incr.h.
 */
#include "bk_incr.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

/* ---- block hashes of a file read in pieces ---- */

int bh_acc_init(struct bh_acc *a, uint64_t size, uint32_t bs, struct err *e)
{
    memset(a, 0, sizeof *a);
    a->bs = bs;
    a->size = size;
    if (bs == 0 || size <= bs)
        return 0;
    a->h = malloc((size_t)bm_nblocks(size, bs) * BM_HASH_LEN);
    a->md = EVP_MD_CTX_new();
    if (a->h == NULL || a->md == NULL || EVP_DigestInit_ex(a->md, EVP_sha256(), NULL) != 1) {
        bh_acc_free(a);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}

static void acc_close_block(struct bh_acc *a)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;

    EVP_DigestFinal_ex(a->md, d, &dn);
    memcpy(a->h + a->b * BM_HASH_LEN, d, BM_HASH_LEN);
    a->b++;
    a->fill = 0;
    EVP_DigestInit_ex(a->md, EVP_sha256(), NULL);
}

void bh_acc_update(struct bh_acc *a, const unsigned char *p, size_t n)
{
    if (a->h == NULL)
        return;
    while (n > 0 && a->b < bm_nblocks(a->size, a->bs)) {
        uint32_t want = bm_block_len(a->size, a->bs, a->b) - a->fill;
        size_t k = n < want ? n : want;

        EVP_DigestUpdate(a->md, p, k);
        a->fill += (uint32_t)k;
        p += k;
        n -= k;
        if (a->fill == bm_block_len(a->size, a->bs, a->b))
            acc_close_block(a);
    }
}

unsigned char *bh_acc_take(struct bh_acc *a)
{
    unsigned char *h = a->h;

    if (h != NULL && a->b != bm_nblocks(a->size, a->bs))
        return NULL;    /* not every byte came: the caller failed anyway */
    a->h = NULL;
    return h;
}

void bh_acc_free(struct bh_acc *a)
{
    free(a->h);
    EVP_MD_CTX_free(a->md);
    memset(a, 0, sizeof *a);
}

/* ---- one file of an incremental ---- */

const struct bh_file *bk_incr_parent_of(const struct bk_incr *inc, const char *path, uint64_t size,
                                        const struct man_file **pf)
{
    const struct bh_file *ph;

    *pf = NULL;
    if (!inc->have_parent || size <= inc->block_size)
        return NULL;
    ph = bh_set_find(&inc->phash, path);
    if (ph == NULL)
        return NULL;
    *pf = man_lookup(inc->pman, inc->pidx, path);
    /* the hashes must describe the file the parent's manifest lists */
    if (*pf == NULL || (*pf)->size != ph->size)
        return NULL;
    return ph;
}

/* Read exactly len bytes at the current offset; past the end, zeros (a
 * file that shrank while read, as a full backup pads it). */
static int read_block(int fd, const char *src, unsigned char *p, size_t len, struct err *e)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_errno(e, ERR_IO, errno, "could not read \"%s\"", src);
        }
        if (n == 0) {
            memset(p + got, 0, len - got);
            break;
        }
        got += (size_t)n;
    }
    return 0;
}

int bk_incr_read(const struct bk_incr *inc, int fd, const char *src, uint64_t size, const struct bh_file *ph,
                 const struct man_file *pf, int tmpfd, unsigned char *buf, size_t buflen, uint64_t *done,
                 struct bk_incr_file *out, struct err *e)
{
    uint32_t bs = inc->block_size;
    uint64_t nb = bm_nblocks(size, bs), pnb = bm_nblocks(ph->size, bs), b;
    EVP_MD_CTX *whole = EVP_MD_CTX_new(), *own = EVP_MD_CTX_new();
    struct bm_map pmap = { NULL, 0, 0 }, map = { NULL, 0, 0 };
    struct bm_cursor pc;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn;
    int rc = -1;

    memset(out, 0, sizeof *out);
    (void)buflen;   /* buf holds at least one block */
    out->hashes = malloc((size_t)nb * BM_HASH_LEN + 1);
    if (whole == NULL || own == NULL || out->hashes == NULL || EVP_DigestInit_ex(whole, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(own, EVP_sha256(), NULL) != 1) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (pf->map != NULL && bm_map_parse(pf->map, pnb, inc->parent_depth, &pmap, e) < 0) {
        err_prefix(e, "backup %s: file \"%s\"", inc->parent, pf->path);
        goto out;
    }
    bm_cursor_init(&pc, &pmap);
    if (ftruncate(tmpfd, 0) < 0 || lseek(tmpfd, 0, SEEK_SET) < 0) {
        err_errno(e, ERR_IO, errno, "could not reset the staging file");
        goto out;
    }
    for (b = 0; b < nb; b++) {
        uint32_t len = bm_block_len(size, bs, b);
        unsigned char *h = out->hashes + b * BM_HASH_LEN;
        uint32_t depth = 0;

        if (read_block(fd, src, buf, len, e) < 0)
            goto out;
        EVP_DigestUpdate(whole, buf, len);
        bm_hash_block(buf, len, h);
        if (b < pnb && bm_block_len(ph->size, bs, b) == len && memcmp(h, ph->h + b * BM_HASH_LEN, BM_HASH_LEN) == 0)
            depth = (pf->map != NULL ? bm_cursor_depth(&pc, b) : 0) + 1;
        if (depth == 0) {
            EVP_DigestUpdate(own, buf, len);
            if (write_all(tmpfd, buf, len) < 0) {
                err_errno(e, ERR_IO, errno, "could not write the staging file");
                goto out;
            }
            out->stored += len;
        }
        if (bm_map_push(&map, depth, 1, e) < 0)
            goto out;
        __atomic_add_fetch(done, (uint64_t)len, __ATOMIC_RELAXED);
    }
    EVP_DigestFinal_ex(whole, d, &dn);
    hex_encode(d, 32, out->sha);
    EVP_DigestFinal_ex(own, d, &dn);
    hex_encode(d, 32, out->stored_sha);
    if (bm_map_format(&map, &out->map, e) < 0)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(whole);
    EVP_MD_CTX_free(own);
    bm_map_free(&pmap);
    bm_map_free(&map);
    if (rc < 0)
        bk_incr_file_free(out);
    return rc;
}

void bk_incr_file_free(struct bk_incr_file *f)
{
    free(f->map);
    free(f->hashes);
    f->map = NULL;
    f->hashes = NULL;
}

int bk_incr_emit(struct archive *a, int tmpfd, uint64_t len, unsigned char *buf, size_t buflen, const char *path,
                 struct err *e)
{
    uint64_t off = 0;

    if (ar_dl_load(e) < 0)
        return -1;
    while (off < len) {
        size_t want = len - off < buflen ? (size_t)(len - off) : buflen;
        ssize_t n = pread(tmpfd, buf, want, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_errno(e, ERR_IO, n < 0 ? errno : EIO, "could not read back the staged blocks of \"%s\"", path);
        if (archive_write_data(a, buf, (size_t)n) != n)
            return err_setf(e, ERR_INTERNAL, "could not write \"%s\" into the archive: %s", path,
                            archive_error_string(a));
        off += (uint64_t)n;
    }
    return 0;
}

int bk_incr_tar(const struct bk_incr *inc, struct archive *a, const int *sink_failed, const struct bk_incr_src *s,
                const struct bh_file *ph, const struct man_file *pf, int tmpfd, unsigned char *buf, size_t buflen,
                uint64_t *done, struct bk_incr_file *out, struct err *e)
{
    struct archive_entry *ent;

    if (ar_dl_load(e) < 0)
        return -1;
    if (bk_incr_read(inc, s->fd, s->src, (uint64_t)s->st->st_size, ph, pf, tmpfd, buf, buflen, done, out, e) < 0)
        return -1;
    if (out->stored == 0)
        return 0;   /* nothing of its own: no tar entry (part 0) */
    if ((ent = archive_entry_new()) == NULL) {
        bk_incr_file_free(out);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    archive_entry_set_pathname(ent, s->path);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, s->st->st_mode & 07777);
    archive_entry_set_size(ent, (la_int64_t)out->stored);
    archive_entry_set_mtime(ent, s->st->st_mtime, 0);
    if (archive_write_header(a, ent) != ARCHIVE_OK) {
        if (!*sink_failed)
            err_setf(e, ERR_INTERNAL, "could not write the tar header of \"%s\": %s", s->path,
                     archive_error_string(a));
        archive_entry_free(ent);
        bk_incr_file_free(out);
        return -1;
    }
    archive_entry_free(ent);
    if (bk_incr_emit(a, tmpfd, out->stored, buf, buflen, s->path, e) < 0) {
        bk_incr_file_free(out);
        return -1;
    }
    return 0;
}

int bk_incr_staging_open(const char *dir, struct err *e)
{
    char path[4096];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd >= 0)
        return fd;
    if (snprintf(path, sizeof path, "%s/walship-incr-XXXXXX", dir) >= (int)sizeof path)
        return err_setf(e, ERR_IO, "spool_dir path too long");
    fd = mkstemp(path);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create a staging file in \"%s\"", dir);
    unlink(path);
    return fd;
}

int bk_incr_manifest(const struct bk_incr *inc, struct bh_set *own, uint32_t bs, struct manifest *m,
                     unsigned char **bh, size_t *bhlen, struct err *e)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;

    if (bh_set_encode(own, bh, bhlen, e) < 0)
        return -1;
    if (EVP_Digest(*bh, *bhlen, d, &dn, EVP_sha256(), NULL) != 1)
        return err_setf(e, ERR_NOMEM, "out of memory");
    hex_encode(d, 32, m->blockhash_sha256);
    m->blockhash_sha256[64] = '\0';
    m->blockhash_size = *bhlen;
    m->block_size = bs;
    if (inc != NULL) {
        m->format = MAN_FORMAT_INCR;
        m->incremental = 1;
        m->depth = inc->parent_depth + 1;
        memcpy(m->parent_sha256, inc->parent_sha, sizeof m->parent_sha256);
        if ((m->parent = strdup(inc->parent)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}
