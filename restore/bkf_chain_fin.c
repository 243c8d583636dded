/*
 * bkf_chain_fin — the end of a chain's restore (bkf_chain_finish, see
 * bkf_chain.h): every mapped file complete, its SHA-256 (as assembled, or
 * read back) equal to the target manifest's, its mode and mtime set.
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
#include "pool.h"
#include "util.h"

#define HASH_BUF ((size_t)1 << 20)

static int hash_file(int fd, const char *path, char hex[65], atomic_uint_least64_t *nread, struct err *e)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *buf = malloc(HASH_BUF), d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    off_t off = 0;
    int rc = -1;

    if (md == NULL || buf == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = pread(fd, buf, HASH_BUF, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err_errno(e, ERR_IO, errno, "could not read back \"%s\"", path);
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            err_setf(e, ERR_INTERNAL, "SHA-256 failed on \"%s\"", path);
            goto out;
        }
        off += n;
        atomic_fetch_add(nread, (uint64_t)n);
    }
    if (EVP_DigestFinal_ex(md, d, &dn) != 1) {
        err_setf(e, ERR_INTERNAL, "SHA-256 failed on \"%s\"", path);
        goto out;
    }
    hex_encode(d, 32, hex);
    hex[64] = '\0';
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

/* The SHA-256 the file got as it was assembled, when every block went in;
 * -1 (and hex "") when it was given up. */
static int assembled_sha(struct bkf_cfile *cf, uint64_t nb, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;

    hex[0] = '\0';
    if (cf->md == NULL || cf->hash_off || cf->hashed != nb || EVP_DigestFinal_ex(cf->md, d, &dn) != 1 || dn != 32)
        return -1;
    hex_encode(d, 32, hex);
    hex[64] = '\0';
    return 0;
}

/* One mapped file: every block written, its SHA-256, mode and mtime. */
static int finish_file(struct bkf_chain *c, struct bkf_tar_worker *w, size_t i, struct err *e)
{
    const struct manifest *m = c->links[0];
    const struct man_file *f = &m->files[i];
    uint64_t nb = bm_nblocks(f->size, c->bs), got = atomic_load(&c->cf[i].blocks);
    struct timespec ts[2];
    char hex[65] = "";
    int fd, ok;

    if (got != nb)
        return err_setf(e, ERR_CORRUPT, "backup %s: file \"%s\": %" PRIu64 " of its %" PRIu64 " blocks were restored "
                        "from the chain: the chain is inconsistent", m->name, f->path, got, nb);
    fd = bkf_tar_open_existing(w, f->path, O_RDWR);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "backup %s: could not open \"%s\" again", m->name, f->path);
    ok = atomic_load(&c->cf[i].verified) || (assembled_sha(&c->cf[i], nb, hex) == 0 && strcmp(hex, f->sha256) == 0) ||
         (hex[0] == '\0' && hash_file(fd, f->path, hex, &c->reread, e) == 0 && strcmp(hex, f->sha256) == 0);
    if (!ok && e->code == ERR_OK)
        err_setf(e, ERR_CORRUPT, "backup %s: file \"%s\" assembled from the chain has SHA-256 %.16s…, the "
                 "manifest's is %.16s…: a link of the chain is damaged", m->name, f->path, hex, f->sha256);
    ts[0].tv_sec = ts[1].tv_sec = (time_t)f->mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (ok && (fchmod(fd, (mode_t)(f->mode & BKF_MODE_MASK)) < 0 || futimens(fd, ts) < 0)) {
        err_errno(e, ERR_IO, errno, "could not set mode and mtime of \"%s\"", f->path);
        ok = 0;
    }
    close(fd);
    return ok ? 0 : -1;
}

/* Assembling the chain's files on the worker pool (pool.h): one file an
 * index, each worker with its own tar state. */
struct fin {
    struct bkf_chain *c;
    struct bkf_tar *t;
};

static int fin_open(void *arg, void **ws, struct err *e)
{
    struct fin *f = arg;
    struct bkf_tar_worker *w = malloc(sizeof *w);

    if (w == NULL || bkf_tar_worker_init(w, f->t) < 0) {
        free(w);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    *ws = w;
    return 0;
}

static int fin_item(void *arg, void *ws, size_t i, struct err *e)
{
    struct fin *f = arg;

    if (f->c->links[0]->files[i].map == NULL)
        return 0;
    return finish_file(f->c, ws, i, e);
}

static void fin_close(void *arg, void *ws)
{
    (void)arg;
    if (ws != NULL)
        bkf_tar_worker_free(ws);
    free(ws);
}

int bkf_chain_finish(struct bkf_chain *c, struct bkf_tar *t, int nthreads, struct err *e)
{
    struct fin f = { c, t };
    struct pool_job job = { c->links[0]->nfiles, &f, fin_open, fin_item, fin_close };

    if (nthreads > 16)
        nthreads = 16;
    return pool_run(&job, nthreads, e);
}
