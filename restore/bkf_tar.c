/*
 * bkf_tar — see bkf_tar.h.
 */
#include "bkf_tar.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_chain.h"
#include "bkf_dio.h"
#include "bkf_fs.h"
#include "util.h"
#include "ar_dl.h"  /* last: libarchive calls go through its table */

#define WRITEBACK_STEP ((uint64_t)8 << 20)

/* ---- the manifest ---- */

static int fidx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct bkf_fidx *)a)->path, ((const struct bkf_fidx *)b)->path);
}

static int check_manifest(const struct bkf_tar *t, struct err *e)
{
    const struct manifest *m = t->m;
    uint64_t *sum;
    size_t i;
    uint32_t k;
    int rc = 0;

    for (i = 0; i < m->nparts; i++)
        if (m->parts[i].number != i + 1)
            return err_setf(e, ERR_CORRUPT, "backup %s: the manifest's parts are not numbered 1..%zu", m->name,
                            m->nparts);
    for (i = 1; i < m->nfiles; i++)
        if (strcmp(t->idx[i - 1].path, t->idx[i].path) == 0)
            return err_setf(e, ERR_CORRUPT, "backup %s: the manifest lists \"%s\" twice", m->name, t->idx[i].path);
    /* objects of their own, checked: as files they would go in unchecked */
    for (i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].path, "backup_label") == 0 || strcmp(m->files[i].path, "tablespace_map") == 0)
            return err_setf(e, ERR_CORRUPT, "backup %s: the manifest lists \"%s\" as a file of the data directory, "
                            "which a backup never holds (it is an object of its own)", m->name, m->files[i].path);
    sum = calloc(m->nparts + 1, sizeof *sum);
    if (sum == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < m->nfiles && rc == 0; i++) {
        const struct man_file *f = &m->files[i];

        if (f->map != NULL && f->part == 0 && f->stored == 0)
            continue;   /* an incremental's file without blocks of its own */
        for (k = 0; k < f->npieces && rc == 0; k++) {
            const struct man_piece *p = &f->pieces[k];

            /* the manifest reader checked parts, offsets and sizes */
            if (p->part < 1 || p->part > m->nparts || (sum[p->part] += p->size) < p->size ||
                sum[p->part] > m->parts[p->part - 1].raw_size)
                rc = err_setf(e, ERR_CORRUPT, "backup %s: the manifest's pieces of \"%s\" do not fit in their parts",
                              m->name, f->path);
        }
        if (f->npieces > 0 || rc != 0)
            continue;
        if (f->part < 1 || f->part > m->nparts)
            rc = err_setf(e, ERR_CORRUPT, "backup %s: the manifest puts \"%s\" in part %u of %zu", m->name, f->path,
                          (unsigned)f->part, m->nparts);
        else if ((sum[f->part] += f->stored) > m->parts[f->part - 1].raw_size || sum[f->part] < f->stored)
            /* a tar holds every byte of its files (no sparse entries) */
            rc = err_setf(e, ERR_CORRUPT, "backup %s: the manifest's files of part %u add up to more than its %llu "
                          "tar bytes", m->name, (unsigned)f->part,
                          (unsigned long long)m->parts[f->part - 1].raw_size);
    }
    free(sum);
    return rc;
}

int bkf_tar_init(struct bkf_tar *t, const struct manifest *m, const char *region, const int *rootfd,
                 atomic_int *abort, struct err *e)
{
    size_t i;

    memset(t, 0, sizeof *t);
    t->m = m;
    t->region = region;
    t->rootfd = rootfd;
    t->abort = abort;
    atomic_init(&t->work, 0);
    pthread_mutex_init(&t->mu, NULL);
    t->idx = malloc((m->nfiles + 1) * sizeof *t->idx);
    t->done = calloc(m->nfiles + 1, 1);
    t->pbase = calloc(m->nfiles + 1, sizeof *t->pbase);
    if (t->idx == NULL || t->done == NULL || t->pbase == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    for (i = 0; i < m->nfiles; i++) {
        t->idx[i].path = m->files[i].path;
        t->idx[i].i = i;
        t->pbase[i + 1] = t->pbase[i] + m->files[i].npieces;
    }
    if ((t->pdone = calloc(t->pbase[m->nfiles] + 1, 1)) == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    qsort(t->idx, m->nfiles, sizeof *t->idx, fidx_cmp);
    return check_manifest(t, e);
}

void bkf_tar_free(struct bkf_tar *t)
{
    size_t i;

    if (t->m == NULL)
        return;     /* never initialised */
    for (i = 0; i < t->ndirs; i++)
        free(t->dirs[i].rel);
    free(t->dirs);
    free(t->idx);
    free(t->done);
    free(t->pbase);
    free(t->pdone);
    pthread_mutex_destroy(&t->mu);
    memset(t, 0, sizeof *t);
}

int bkf_tar_worker_init(struct bkf_tar_worker *w, struct bkf_tar *t)
{
    memset(w, 0, sizeof *w);
    w->t = t;
    w->cache_fd = -1;
    w->md = EVP_MD_CTX_new();
    return w->md == NULL ? -1 : 0;
}

void bkf_tar_worker_free(struct bkf_tar_worker *w)
{
    if (w->cache_fd >= 0)
        close(w->cache_fd);
    w->cache_fd = -1;
    bkf_dio_free(w->dio);
    w->dio = NULL;
    EVP_MD_CTX_free(w->md);
    w->md = NULL;
}

int bkf_tar_check_done(const struct bkf_tar *t, struct err *e)
{
    const struct manifest *m = t->m;
    size_t i;

    for (i = 0; i < m->nfiles; i++) {
        const struct man_file *f = &m->files[t->idx[i].i];
        uint32_t k;

        for (k = 0; k < f->npieces; k++)
            if (!t->pdone[t->pbase[t->idx[i].i] + k] && (t->want == NULL || t->want[f->pieces[k].part]))
                return err_setf(e, ERR_CORRUPT, "backup %s in region %s: piece %u of file \"%s\" (bytes %llu-%llu) "
                                "is listed in the manifest for part %u, but that part does not hold it", m->name,
                                t->region, (unsigned)(k + 1), f->path, (unsigned long long)f->pieces[k].offset,
                                (unsigned long long)(f->pieces[k].offset + f->pieces[k].size),
                                (unsigned)f->pieces[k].part);
        if (!t->done[t->idx[i].i] && m->files[t->idx[i].i].part != 0 &&
            (t->want == NULL || t->want[m->files[t->idx[i].i].part]))
            return err_setf(e, ERR_CORRUPT, "backup %s in region %s: file \"%s\" is listed in the manifest for part "
                            "%u, but that part does not hold it", m->name, t->region, t->idx[i].path,
                            (unsigned)m->files[t->idx[i].i].part);
    }
    return 0;
}

/* ---- the order of the parts ---- */

struct part_key {
    uint64_t size;
    uint32_t number;
    size_t i;
};

static int part_cmp(const void *a, const void *b)
{
    const struct part_key *x = a, *y = b;

    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->number < y->number ? -1 : x->number > y->number;
}

size_t *bkf_part_order(const struct manifest *m, struct err *e)
{
    size_t i, n = m->nparts, *order = malloc((n + 1) * sizeof *order);
    struct part_key *k = malloc((n + 1) * sizeof *k);

    if (order == NULL || k == NULL) {
        free(k);
        free(order);
        err_setf(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        k[i].size = m->parts[i].raw_size;
        k[i].number = m->parts[i].number;
        k[i].i = i;
    }
    qsort(k, n, sizeof *k, part_cmp);
    for (i = 0; i < n; i++)
        order[i] = k[i].i;
    free(k);
    return order;
}

/* ---- paths ---- */

/* Which root a path belongs to: pg_tblspc/OID/... of a listed tablespace
 * goes to that tablespace's directory. */
static int route(const struct bkf_tar *t, const char *path, const char **rel)
{
    /* a chain restores into the target's tablespaces, whatever a parent had */
    const struct manifest *m = t->chain != NULL ? t->chain->links[0] : t->m;
    size_t i;

    *rel = path;
    if (!str_has_prefix(path, "pg_tblspc/"))
        return 0;
    for (i = 0; i < m->ntablespaces; i++) {
        char pre[32];
        int n = snprintf(pre, sizeof pre, "pg_tblspc/%u", (unsigned)m->tablespaces[i].oid);

        if (strncmp(path, pre, (size_t)n) == 0 && (path[n] == '\0' || path[n] == '/')) {
            *rel = path[n] ? path + n + 1 : path + n;
            return (int)i + 1;
        }
    }
    return 0;
}

/* The directory holding `rel`'s last component, cached per worker. */
static int parent_fd(struct bkf_tar_worker *w, int root, const char *rel, const char **leaf)
{
    const char *slash = strrchr(rel, '/');
    size_t n = slash ? (size_t)(slash - rel) : 0;
    char dir[PATH_MAX];
    int fd;

    *leaf = slash ? slash + 1 : rel;
    memcpy(dir, rel, n);
    dir[n] = '\0';
    if (w->cache_fd >= 0 && w->cache_root == root && strcmp(w->cache_path, dir) == 0)
        return w->cache_fd;
    if (bkf_open_dir(w->t->rootfd[root], dir, 1, &fd) < 0)
        return -1;
    if (w->cache_fd >= 0)
        close(w->cache_fd);
    w->cache_fd = fd;
    w->cache_root = root;
    memcpy(w->cache_path, dir, n + 1);
    return fd;
}

/* ---- entries ---- */

#define ENTRY_ERR(code, ...) \
    (err_setf(e, code, __VA_ARGS__), \
     err_prefix(e, "backup %s in region %s, part %u: entry \"%s\"", t->m->name, t->region, w->part, name))

/* Everything that can be checked from the header, before any byte of data
 * is read: the manifest's file, its part, its size, no sparse map. */
static const struct man_file *check_file_header(struct bkf_tar_worker *w, struct archive_entry *ent,
                                                const char *name, size_t *fi, struct err *e)
{
    struct bkf_tar *t = w->t;
    struct bkf_fidx key, *hit;
    const struct man_file *mf;

    key.path = name;
    hit = bsearch(&key, t->idx, t->m->nfiles, sizeof *t->idx, fidx_cmp);
    if (hit == NULL)
        return ENTRY_ERR(ERR_CORRUPT, "the file is not in the manifest"), NULL;
    mf = &t->m->files[hit->i];
    w->piece = NULL;
    if (mf->npieces > 0) {
        /* the tar says nothing but the name: the manifest says which piece */
        if ((w->piece = man_piece_in(mf, w->part)) == NULL)
            return ENTRY_ERR(ERR_CORRUPT, "the manifest puts no piece of this file in this part"), NULL;
        if (t->pdone[t->pbase[hit->i] + (size_t)(w->piece - mf->pieces)])
            return ENTRY_ERR(ERR_CORRUPT, "the piece appears twice"), NULL;
    } else if (mf->part != w->part) {
        return ENTRY_ERR(ERR_CORRUPT, "the manifest puts this file in part %u", (unsigned)mf->part), NULL;
    }
    if (t->done[hit->i])
        return ENTRY_ERR(ERR_CORRUPT, "the file appears twice"), NULL;
    if (archive_entry_sparse_count(ent) > 0)
        return ENTRY_ERR(ERR_CORRUPT, "a sparse entry (%d regions declaring %lld bytes): walship never writes "
                         "sparse entries", archive_entry_sparse_count(ent), (long long)archive_entry_size(ent)),
               NULL;
    if (!archive_entry_size_is_set(ent) ||
        (uint64_t)archive_entry_size(ent) != (w->piece != NULL ? w->piece->size : mf->stored))
        return ENTRY_ERR(ERR_CORRUPT, "size %lld differs from the manifest's %llu", (long long)archive_entry_size(ent),
                         (unsigned long long)(w->piece != NULL ? w->piece->size : mf->stored)), NULL;
    if (w->piece != NULL)
        t->pdone[t->pbase[hit->i] + (size_t)(w->piece - mf->pieces)] = 1;
    *fi = hit->i;
    return mf;
}

/* Reserve SIZE bytes for a large file: ext4 and XFS let direct writes
 * into allocated blocks inside the file run side by side, where writes
 * that fill a hole or extend the file take turns (and a full disk shows
 * at once).  Where the file system cannot, ftruncate sizes it as before. */
static int reserve(int fd, uint64_t size)
{
    if (size >= BKF_DIO_MIN) {
        if (fallocate(fd, 0, 0, (off_t)size) == 0)
            return 0;
        if (errno == ENOSPC || errno == EDQUOT)
            return -1;
    }
    return ftruncate(fd, (off_t)size);
}

/* Direct writes for a large aligned range (bkf_dio.h), else NULL. */
static struct bkf_dio *direct_for(struct bkf_tar_worker *w, int fd, uint64_t base, uint64_t size)
{
    if (w->no_dio || size < BKF_DIO_MIN || base % BKF_DIO_ALIGN != 0)
        return NULL;
    if (w->dio == NULL && (w->dio = bkf_dio_new()) == NULL) {
        w->no_dio = 1;
        return NULL;
    }
    return bkf_dio_begin(w->dio, fd, base, size) == 0 ? w->dio : NULL;
}

int bkf_tar_copy(struct bkf_tar_worker *w, struct archive *a, uint64_t base, uint64_t size, int fd, const char *name,
                 struct err *e)
{
    struct bkf_tar *t = w->t;
    struct bkf_dio *dio;
    uint64_t pos = 0, flushed = 0;
    int rc = -1;

    if (ar_dl_load(e) < 0)
        return -1;
    dio = direct_for(w, fd, base, size);
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);

        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            ENTRY_ERR(ERR_CORRUPT, "could not read its data: %s", archive_error_string(a));
            goto out;
        }
        if (off < 0 || (uint64_t)off != pos || len > size - pos) {
            ENTRY_ERR(ERR_CORRUPT, "data at offset %lld (%zu bytes) where %llu of %llu bytes were expected",
                      (long long)off, len, (unsigned long long)pos, (unsigned long long)size);
            goto out;
        }
        if (EVP_DigestUpdate(w->md, buf, len) != 1) {
            ENTRY_ERR(ERR_INTERNAL, "SHA-256 failed");
            goto out;
        }
        if (dio != NULL ? bkf_dio_put(dio, buf, len) < 0 : pwrite_all(fd, buf, len, (off_t)(base + pos)) < 0) {
            ENTRY_ERR(ERR_IO, "could not write: %s", strerror(errno));
            goto out;
        }
        atomic_fetch_add(&t->work, (uint64_t)len);
        pos += len;
        if (dio == NULL && pos - flushed >= WRITEBACK_STEP) {
            /* start writeback now so that the final syncfs has little left */
            (void)sync_file_range(fd, (off_t)(base + flushed), (off_t)(pos - flushed), SYNC_FILE_RANGE_WRITE);
            flushed = pos;
        }
        w->pend_bytes += len;
        if (w->tick != NULL)
            w->tick(w, w->tick_arg);
    }
    if (dio == NULL && pos > flushed)
        (void)sync_file_range(fd, (off_t)(base + flushed), (off_t)(pos - flushed), SYNC_FILE_RANGE_WRITE);
    if (pos != size) {
        ENTRY_ERR(ERR_CORRUPT, "its data ends after %llu of %llu bytes", (unsigned long long)pos,
                  (unsigned long long)size);
        goto out;
    }
    rc = 0;
out:
    if (dio != NULL && bkf_dio_end(dio) < 0 && rc == 0)
        rc = ENTRY_ERR(ERR_IO, "could not write: %s", strerror(errno));
    return rc;
}

static int extract_file(struct bkf_tar_worker *w, struct archive *a, struct archive_entry *ent, const char *name,
                        struct err *e)
{
    struct bkf_tar *t = w->t;
    const struct man_file *mf;
    const char *rel, *leaf;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dglen;
    char hex[65];
    struct timespec ts[2];
    size_t fi = 0;
    int root, dfd, fd, rc = -1;

    if ((mf = check_file_header(w, ent, name, &fi, e)) == NULL)
        return -1;
    if (t->chain != NULL && (t->depth > 0 || mf->map != NULL)) {
        if (w->piece == NULL)
            t->done[fi] = 1;
        return bkf_chain_entry(w, a, mf, name, e);
    }
    if (w->piece != NULL)
        return bkf_piece_extract(w, a, mf, name, e);
    root = route(t, name, &rel);
    if (*rel == '\0')
        return ENTRY_ERR(ERR_CORRUPT, "a file where a tablespace directory belongs");
    dfd = parent_fd(w, root, rel, &leaf);
    if (dfd < 0)
        return ENTRY_ERR(errno == ENOTDIR || errno == ELOOP ? ERR_CORRUPT : ERR_IO,
                         "could not open its directory: %s", strerror(errno));
    fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return ENTRY_ERR(errno == EEXIST ? ERR_CORRUPT : ERR_IO, "could not create the file: %s", strerror(errno));
    t->done[fi] = 1;
    if (mf->size >= BKF_DIO_MIN && reserve(fd, mf->size) < 0) {
        ENTRY_ERR(ERR_IO, "could not reserve %llu bytes: %s", (unsigned long long)mf->size, strerror(errno));
        goto out;
    }
    if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
        ENTRY_ERR(ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    if (bkf_tar_copy(w, a, 0, mf->size, fd, name, e) < 0)
        goto out;
    if (EVP_DigestFinal_ex(w->md, dg, &dglen) != 1) {
        ENTRY_ERR(ERR_INTERNAL, "SHA-256 failed");
        goto out;
    }
    hex_encode(dg, dglen, hex);
    if (strcmp(hex, mf->sha256) != 0) {
        ENTRY_ERR(ERR_CORRUPT, "SHA-256 %.16s… differs from the manifest's %.16s…: the file is damaged", hex,
                  mf->sha256);
        goto out;
    }
    ts[0].tv_sec = ts[1].tv_sec = (time_t)mf->mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (fchmod(fd, (mode_t)(mf->mode & BKF_MODE_MASK)) < 0 || futimens(fd, ts) < 0) {
        ENTRY_ERR(ERR_IO, "could not set mode and mtime: %s", strerror(errno));
        goto out;
    }
    w->pend_files++;
    rc = 0;
out:
    if (close(fd) < 0 && rc == 0)
        rc = ENTRY_ERR(ERR_IO, "could not close: %s", strerror(errno));
    return rc;
}

static int extract_dir(struct bkf_tar_worker *w, struct archive_entry *ent, const char *name, struct err *e)
{
    struct bkf_tar *t = w->t;
    struct bkf_dir *d;
    const char *rel;
    int root = route(t, name, &rel), fd;

    if (bkf_open_dir(t->rootfd[root], rel, 1, &fd) < 0)
        return ENTRY_ERR(errno == ENOTDIR || errno == ELOOP ? ERR_CORRUPT : ERR_IO,
                         "could not create the directory: %s", strerror(errno));
    close(fd);
    pthread_mutex_lock(&t->mu);
    if (t->ndirs == t->capdirs) {
        size_t cap = t->capdirs ? 2 * t->capdirs : 256;
        struct bkf_dir *nd = realloc(t->dirs, cap * sizeof *nd);

        if (nd == NULL) {
            pthread_mutex_unlock(&t->mu);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        t->dirs = nd;
        t->capdirs = cap;
    }
    d = &t->dirs[t->ndirs];
    d->rel = strdup(rel);
    if (d->rel == NULL) {
        pthread_mutex_unlock(&t->mu);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    d->root = root;
    d->mode = (uint32_t)archive_entry_perm(ent) & BKF_MODE_MASK;
    d->mtime = (int64_t)archive_entry_mtime(ent);
    t->ndirs++;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int extract_entry(struct bkf_tar_worker *w, struct archive *a, struct archive_entry *ent, struct err *e)
{
    struct bkf_tar *t = w->t;
    const char *raw = archive_entry_pathname(ent);
    char name[PATH_MAX];
    mode_t type = archive_entry_filetype(ent);

    if (raw == NULL)
        raw = archive_entry_pathname_utf8(ent);
    if (raw == NULL) {
        err_setf(e, ERR_CORRUPT, "backup %s in region %s, part %u: an entry has no readable name", t->m->name,
                 t->region, w->part);
        return -1;
    }
    snprintf(name, sizeof name, "%s", raw);
    if (archive_entry_hardlink(ent) != NULL)
        return ENTRY_ERR(ERR_CORRUPT, "hard links are not allowed in a backup");
    if (type != AE_IFREG && type != AE_IFDIR)
        return ENTRY_ERR(ERR_CORRUPT, "%s entries are not allowed in a backup (only files and directories)",
                         type == AE_IFLNK ? "symlink" : "special file");
    if (bkf_clean_path(raw, type == AE_IFDIR, name) < 0)
        return ENTRY_ERR(ERR_CORRUPT, "unsafe path (absolute, or with an empty, \".\" or \"..\" component)");
    if (type == AE_IFDIR && archive_entry_size(ent) > 0)
        return ENTRY_ERR(ERR_CORRUPT, "a directory entry with %lld bytes of data", (long long)archive_entry_size(ent));
    if (type == AE_IFDIR && t->chain != NULL && t->depth > 0)
        return 0;   /* a parent's directory: the target's own list is the one */
    return type == AE_IFDIR ? extract_dir(w, ent, name, e) : extract_file(w, a, ent, name, e);
}

int bkf_tar_part(struct bkf_tar_worker *w, struct archive *a, uint32_t part, struct err *e)
{
    struct bkf_tar *t = w->t;
    struct archive_entry *ent;
    int r, rc = -1;

    if (ar_dl_load(e) < 0)
        return -1;
    w->part = part;
    w->file[0] = '\0';
    while (t->abort == NULL || !atomic_load(t->abort)) {
        r = archive_read_next_header(a, &ent);
        if (r == ARCHIVE_EOF) {
            rc = 0;
            break;
        }
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            err_setf(e, ERR_CORRUPT, "backup %s in region %s, part %u: bad tar stream: %s", t->m->name, t->region,
                     part, archive_error_string(a));
            break;
        }
        if (extract_entry(w, a, ent, e) < 0) {
            const char *p = archive_entry_pathname(ent);

            snprintf(w->file, sizeof w->file, "%s", p ? p : "");
            break;
        }
    }
    if (rc < 0 && t->abort != NULL && atomic_load(t->abort))
        err_setf(e, ERR_INTERNAL, "stopped");   /* another part failed first: its error is kept */
    if (w->cache_fd >= 0) {
        close(w->cache_fd);
        w->cache_fd = -1;
    }
    return rc;
}

int bkf_tar_precreate(struct bkf_tar_worker *w, const char *path, uint64_t size, struct err *e)
{
    struct bkf_tar *t = w->t;
    const char *rel, *leaf;
    int root = route(t, path, &rel), dfd, fd;

    if (*rel == '\0')
        return err_setf(e, ERR_CORRUPT, "backup %s: a file \"%s\" where a tablespace directory belongs", t->m->name,
                        path);
    dfd = parent_fd(w, root, rel, &leaf);
    if (dfd < 0)
        return err_errno(e, errno == ENOTDIR || errno == ELOOP ? ERR_CORRUPT : ERR_IO, errno,
                         "backup %s: could not create the directory of \"%s\"", t->m->name, path);
    fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, errno == EEXIST ? ERR_CORRUPT : ERR_IO, errno, "backup %s: could not create \"%s\"",
                         t->m->name, path);
    if (reserve(fd, size) < 0) {
        int en = errno;

        close(fd);
        return err_errno(e, ERR_IO, en, "backup %s: could not size \"%s\"", t->m->name, path);
    }
    if (close(fd) < 0)
        return err_errno(e, ERR_IO, errno, "backup %s: could not create \"%s\"", t->m->name, path);
    return 0;
}

int bkf_tar_open_existing(struct bkf_tar_worker *w, const char *path, int flags)
{
    const char *rel, *leaf;
    int root = route(w->t, path, &rel), dfd;

    dfd = parent_fd(w, root, rel, &leaf);
    if (dfd < 0)
        return -1;
    return openat(dfd, leaf, flags | O_NOFOLLOW | O_CLOEXEC);
}
