/*
 * bkf_piece — files of a full backup stored as pieces (manifest format 3,
 * docs/BACKUP.md "Big files as pieces"); see bkf_tar.h.
 *
 * The tar entry of a piece says only the file's name: which bytes it holds
 * (offset, size) and their SHA-256 come from the manifest's piece for the
 * part being read (at most one per part), checked by bkf_tar's header
 * checks before any data is read.  Each piece is written at its offset
 * into the file created at its final size, hashed by the worker that
 * writes it, and refused when its SHA-256 is not the manifest's.  Since
 * the manifest's pieces cover the file exactly (manifest_read.c) and every
 * piece must be found (bkf_tar_check_done), a complete restore wrote every
 * byte of the file from a piece whose hash the manifest binds.
 */
#include "bkf_tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int bkf_piece_prepare(struct bkf_tar *t, struct err *e)
{
    const struct manifest *m = t->m;
    struct bkf_tar_worker w;
    size_t i;
    int rc = 0;

    if (bkf_tar_worker_init(&w, t) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < m->nfiles && rc == 0; i++)
        if (m->files[i].npieces > 0)
            rc = bkf_tar_precreate(&w, m->files[i].path, m->files[i].size, e);
    bkf_tar_worker_free(&w);
    return rc;
}

#define PIECE_ERR(code, ...) \
    (err_setf(e, code, __VA_ARGS__), \
     err_prefix(e, "backup %s in region %s, part %u: entry \"%s\" (piece at %llu, %llu bytes)", t->m->name, \
                t->region, w->part, name, (unsigned long long)p->offset, (unsigned long long)p->size))

int bkf_piece_extract(struct bkf_tar_worker *w, struct archive *a, const struct man_file *mf, const char *name,
                      struct err *e)
{
    struct bkf_tar *t = w->t;
    const struct man_piece *p = w->piece;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dglen = 0;
    char hex[65];
    int fd, rc = -1;

    fd = bkf_tar_open_existing(w, name, O_WRONLY);
    if (fd < 0)
        return PIECE_ERR(ERR_IO, "could not open the file made for it: %s", strerror(errno));
    if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        PIECE_ERR(ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    if (bkf_tar_copy(w, a, p->offset, p->size, fd, name, e) < 0)
        goto out;
    if (EVP_DigestFinal_ex(w->md, dg, &dglen) != 1 || dglen != 32) {
        PIECE_ERR(ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    hex_encode(dg, 32, hex);
    hex[64] = '\0';
    if (strcmp(hex, p->sha256) != 0) {
        PIECE_ERR(ERR_CORRUPT, "SHA-256 %.16s… differs from the manifest's %.16s…: the piece is damaged", hex,
                  p->sha256);
        goto out;
    }
    if (p->offset + p->size == mf->size)
        w->pend_files++;    /* counted once, with its last piece */
    rc = 0;
out:
    if (close(fd) < 0 && rc == 0)
        rc = PIECE_ERR(ERR_IO, "could not close: %s", strerror(errno));
    return rc;
}

int bkf_piece_finish(struct bkf_tar *t, struct err *e)
{
    const struct manifest *m = t->m;
    struct bkf_tar_worker w;
    size_t i;
    int rc = 0;

    if (bkf_tar_worker_init(&w, t) < 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < m->nfiles && rc == 0; i++) {
        const struct man_file *f = &m->files[i];
        struct timespec ts[2];
        int fd;

        if (f->npieces == 0)
            continue;
        fd = bkf_tar_open_existing(&w, f->path, O_WRONLY);
        ts[0].tv_sec = ts[1].tv_sec = (time_t)f->mtime;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        if (fd < 0 || fchmod(fd, (mode_t)(f->mode & BKF_MODE_MASK)) < 0 || futimens(fd, ts) < 0)
            rc = err_errno(e, ERR_IO, errno, "backup %s: could not set the mode and mtime of \"%s\"", m->name,
                           f->path);
        if (fd >= 0 && close(fd) < 0 && rc == 0)
            rc = err_errno(e, ERR_IO, errno, "backup %s: could not close \"%s\"", m->name, f->path);
    }
    bkf_tar_worker_free(&w);
    return rc;
}
