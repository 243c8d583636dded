/*
 * bk_piece — the plan of a backup's parts, and big files stored as pieces
 * (docs/BACKUP.md "Big files as pieces", manifest format 3).
 *
 * bk_plan() cuts the listing into units (a directory, a whole file, or a
 * piece of a big file) and the units into parts.  In a full backup a file
 * larger than the piece size (the part target rounded up to a block) is
 * cut into pieces of that size, the last one taking a remainder of at most
 * one block so that every piece holds more than a block.  Since a part is
 * closed as soon as it holds the target, every piece but the last closes
 * its part: the pieces of a file land in different parts, which restore
 * writes with different workers.  Incremental backups store no pieces.
 */
#include "backup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockmap.h"
#include "util.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

#define BK_MIN_PART ((uint64_t)64 << 20)

/* The pieces of a file of `size` bytes: 0 when it is stored whole. */
static uint32_t count_pieces(uint64_t size, uint64_t piece, uint32_t bs, uint64_t *last)
{
    uint64_t n, rem;

    if (piece == 0 || size <= piece)
        return 0;
    n = size / piece;
    rem = size - n * piece;
    if (rem > bs) {
        *last = rem;
        n++;
    } else {
        *last = piece + rem;
    }
    return n >= 2 ? (uint32_t)n : 0;
}

static int add_unit(struct bk_job *j, size_t *cap, size_t item, uint64_t off, uint64_t len, int big, uint32_t piece)
{
    if (j->nunits == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        struct bk_unit *nu = realloc(j->units, nc * sizeof *nu);

        if (nu == NULL)
            return -1;
        j->units = nu;
        *cap = nc;
    }
    j->units[j->nunits].item = item;
    j->units[j->nunits].off = off;
    j->units[j->nunits].len = len;
    j->units[j->nunits].big = big;
    j->units[j->nunits].piece = piece;
    j->nunits++;
    return 0;
}

/* A big file's pieces as units, and its entry in j->bigs. */
static int add_big(struct bk_job *j, size_t *cap, size_t item, uint64_t size, uint32_t n, uint64_t last)
{
    struct bk_big *b = &j->bigs[j->nbigs];
    uint32_t k;

    memset(b, 0, sizeof *b);
    b->item = item;
    b->size = size;
    b->npieces = n;
    b->pieces = calloc(n, sizeof *b->pieces);
    if (b->pieces == NULL)
        return -1;
    if (size > j->bs && (b->hashes = calloc((size_t)bm_nblocks(size, j->bs), BM_HASH_LEN)) == NULL) {
        free(b->pieces);
        return -1;
    }
    j->nbigs++;
    for (k = 0; k < n; k++) {
        b->pieces[k].offset = (uint64_t)k * j->piece_size;
        b->pieces[k].size = k + 1 < n ? j->piece_size : last;
        if (add_unit(j, cap, item, b->pieces[k].offset, b->pieces[k].size, (int)(j->nbigs - 1), k) < 0)
            return -1;
    }
    return 0;
}

/* The units: directories, whole files and pieces in listing order. */
static int plan_units(struct bk_job *j, const struct bk_list *l)
{
    size_t i, cap = 0;

    if ((j->bigs = calloc(l->n + 1, sizeof *j->bigs)) == NULL)
        return -1;
    for (i = 0; i < l->n; i++) {
        uint64_t last = 0;
        uint32_t n = l->items[i].is_dir || j->inc != NULL ? 0
                                                          : count_pieces(l->items[i].size, j->piece_size, j->bs, &last);

        if (n == 0 ? add_unit(j, &cap, i, 0, l->items[i].size, -1, 0) < 0
                   : add_big(j, &cap, i, l->items[i].size, n, last) < 0)
            return -1;
    }
    return 0;
}

int bk_plan(struct bk_job *j, const struct bk_list *l, uint64_t part_size, int parallel, struct err *e)
{
    uint64_t target = l->total_bytes / (uint64_t)(parallel * 2), acc = 0;
    size_t i, start = 0;

    /* enough parts to keep every worker busy, none above part_size */
    if (target < BK_MIN_PART)
        target = BK_MIN_PART;
    if (target > part_size)
        target = part_size;
    j->target = target;
    j->piece_size = (target + j->bs - 1) / j->bs * j->bs;
    j->nparts = 0;
    if (plan_units(j, l) < 0 || (j->parts = calloc(j->nunits + 1, sizeof *j->parts)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < j->nunits; i++) {
        if (l->items[j->units[i].item].is_dir)
            continue;
        j->parts[j->nparts].pieces |= j->units[i].big >= 0;
        acc += j->units[i].len;
        if (acc >= target && i + 1 < j->nunits) {
            j->parts[j->nparts].first = start;
            j->parts[j->nparts].last = i + 1;
            j->parts[j->nparts].planned = acc;
            j->nparts++;
            start = i + 1;
            acc = 0;
        }
    }
    j->parts[j->nparts].first = start;
    j->parts[j->nparts].last = j->nunits;
    j->parts[j->nparts].planned = acc;
    j->nparts++;
    return 0;
}

void bk_plan_free(struct bk_job *j)
{
    size_t i;

    for (i = 0; j->bigs != NULL && i < j->nbigs; i++) {
        free(j->bigs[i].pieces);
        free(j->bigs[i].hashes);
    }
    free(j->bigs);
    free(j->units);
    free(j->parts);
    j->bigs = NULL;
    j->units = NULL;
    j->parts = NULL;
}

void bk_big_record(struct bk_job *j, int big, uint32_t piece, uint32_t part, const char sha[65],
                   const unsigned char *hashes)
{
    struct bk_big *b = &j->bigs[big];
    struct man_piece *p = &b->pieces[piece];

    p->part = part;
    memcpy(p->sha256, sha, 65);
    if (hashes != NULL && b->hashes != NULL)
        memcpy(b->hashes + (size_t)(p->offset / j->bs) * BM_HASH_LEN, hashes,
               (size_t)bm_nblocks(p->size, j->bs) * BM_HASH_LEN);
    b->done++;
}

int bk_bigs_finish(struct bk_job *j, struct err *e)
{
    size_t i;

    for (i = 0; i < j->nbigs; i++) {
        struct bk_big *b = &j->bigs[i];
        const struct bk_item *it = &j->list->items[b->item];

        if (b->done != b->npieces)
            return err_setf(e, ERR_INTERNAL, "\"%s\": %u of its %u pieces were stored", it->path,
                            (unsigned)b->done, (unsigned)b->npieces);
        if (man_add_file_pieces(j->man, it->path, b->size, it->mode, it->mtime, b->pieces, b->npieces, e) < 0)
            return -1;
        if (b->hashes != NULL) {
            int rc = bh_set_add(&j->own, it->path, b->size, b->hashes, e);

            b->hashes = NULL;   /* the set owns them, even on failure */
            if (rc < 0)
                return -1;
        }
    }
    if (j->nbigs > 0)
        j->man->format = MAN_FORMAT_PIECES;
    return 0;
}

/* Read len bytes at off; past the end (the file shrank, or vanished),
 * zeros: WAL replay from the backup's start repairs it, as for a whole
 * file that shrank. */
static int read_at(int fd, const char *src, unsigned char *p, size_t len, uint64_t off, struct err *e)
{
    size_t got = 0;

    while (fd >= 0 && got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return err_errno(e, ERR_IO, errno, "could not read \"%s\"", src);
        if (n == 0)
            break;
        got += (size_t)n;
    }
    memset(p + got, 0, len - got);
    return 0;
}

static int piece_entry(struct archive *a, int failed, const struct bk_item *it, uint64_t len, struct err *e)
{
    struct archive_entry *ent = archive_entry_new();
    int rc = 0;

    if (ent == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    archive_entry_set_pathname(ent, it->path);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, it->mode & 07777);
    archive_entry_set_size(ent, (la_int64_t)len);
    archive_entry_set_mtime(ent, it->mtime, 0);
    if (archive_write_header(a, ent) != ARCHIVE_OK) {
        if (!failed)
            err_setf(e, ERR_INTERNAL, "could not write the tar header of \"%s\": %s", it->path,
                     archive_error_string(a));
        rc = -1;
    }
    archive_entry_free(ent);
    return rc;
}

int bk_tar_piece(struct bk_job *j, struct archive *a, const int *failed, const struct bk_unit *u,
                 unsigned char *buf, size_t buflen, char sha[65], unsigned char **hashes, struct err *e)
{
    const struct bk_item *it = &j->list->items[u->item];
    EVP_MD_CTX *md;
    struct bh_acc acc;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    uint64_t left = u->len, off = u->off;
    int fd, rc = -1;

    if (ar_dl_load(e) < 0)
        return -1;
    md = EVP_MD_CTX_new();
    fd = open(it->src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    memset(&acc, 0, sizeof acc);
    if (fd < 0 && errno != ENOENT) {
        err_errno(e, ERR_IO, errno, "could not open \"%s\"", it->src);
        goto out;
    }
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || bh_acc_init(&acc, u->len, j->bs, e) < 0) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (piece_entry(a, *failed, it, u->len, e) < 0)
        goto out;
    while (left > 0) {
        size_t want = left < buflen ? (size_t)left : buflen;

        if (read_at(fd, it->src, buf, want, off, e) < 0)
            goto out;
        if (EVP_DigestUpdate(md, buf, want) != 1) {
            err_setf(e, ERR_INTERNAL, "SHA-256 failed on \"%s\"", it->src);
            goto out;
        }
        bh_acc_update(&acc, buf, want);
        if (archive_write_data(a, buf, want) != (la_ssize_t)want) {
            if (!*failed)
                err_setf(e, ERR_INTERNAL, "could not write \"%s\" into the archive: %s", it->path,
                         archive_error_string(a));
            goto out;
        }
        left -= want;
        off += want;
        __atomic_add_fetch(&j->done, (uint64_t)want, __ATOMIC_RELAXED);
    }
    if (EVP_DigestFinal_ex(md, d, &dn) != 1 || dn != 32) {
        err_setf(e, ERR_INTERNAL, "SHA-256 failed on \"%s\"", it->src);
        goto out;
    }
    hex_encode(d, 32, sha);
    sha[64] = '\0';
    *hashes = bh_acc_take(&acc);
    rc = 1;
out:
    bh_acc_free(&acc);
    EVP_MD_CTX_free(md);
    if (fd >= 0)
        close(fd);
    return rc;
}
