/*
 * backup_fetch — see backup_fetch.h for the contract.
 *
 * Per part: a downloader thread runs stor_get → decoder → pipe sink, the
 * worker thread reads the pipe with libarchive and writes entries.  The pipe
 * (bkf_pipe.h) hands the bytes to libarchive without a copy and carries
 * cancellation both ways (a failed part stops every other part).
 */
#include "backup_fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_fs.h"
#include "bkf_pipe.h"
#include "catalog.h"
#include "obj.h"
#include "util.h"
#include "wal.h"

#define PIPE_CAP ((size_t)4 << 20)
#define LABEL_MAX ((size_t)1 << 20)
#define PROGRESS_MS 100
#define WRITEBACK_STEP ((uint64_t)8 << 20)

struct dirrec {
    int root;
    char *rel;
    uint32_t mode;
    int64_t mtime;
};

struct fidx {
    const char *path;
    size_t i;
};

struct worker {
    struct bkf *c;
    struct stor *s;
    int own_stor;
    pthread_t th, dl_th;
    struct bkf_pipe pipe;
    uint32_t part;
    char key[300];
    int dl_rc;
    struct err dl_err;
    int cache_root, cache_fd;
    char cache_path[PATH_MAX];
    EVP_MD_CTX *md;
    uint64_t pend_bytes, pend_files;
};

struct bkf {
    const struct manifest *m;
    const struct keyring *kr;
    uint64_t sysid;                 /* the repository's cluster: every part is bound to it */
    const char *region;
    int *rootfd;                    /* [0] DIR, [1 + i] tablespace i */
    char **ts_target;               /* where each tablespace goes */
    const char **ts_new;            /* ts_target[i] when mapped, else NULL */
    uint32_t *ts_oid;
    struct fidx *idx;
    unsigned char *done;
    atomic_int abort;
    pthread_mutex_t mu;             /* everything below */
    size_t next_part;
    int failed;
    struct err err;
    struct dirrec *dirs;
    size_t ndirs, capdirs;
    struct bkf_progress prog;
    uint64_t last_prog_ms;
    bkf_progress_fn progress;
    void *progress_arg;
    struct worker *w;
    int nw;
};

/* ---- errors shared between threads ---- */

static void fail(struct bkf *c, const struct err *e)
{
    int i;

    pthread_mutex_lock(&c->mu);
    if (!c->failed) {
        c->failed = 1;
        c->err = *e;
    }
    pthread_mutex_unlock(&c->mu);
    atomic_store(&c->abort, 1);
    for (i = 0; i < c->nw; i++)
        bkf_pipe_wake(&c->w[i].pipe);
}

static void *download_main(void *arg)
{
    struct worker *w = arg;
    struct sink *ps = bkf_pipe_sink_new(&w->pipe), *dec = NULL;
    struct obj_bind bind = { w->key, w->c->sysid, 0 };

    w->dl_rc = -1;
    err_clear(&w->dl_err);
    if (ps == NULL) {
        err_setf(&w->dl_err, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (obj_decoder_new(ps, w->c->kr, 0, &bind, &dec, &w->dl_err) < 0) {
        sink_free(ps);
        goto out;
    }
    if (stor_get(w->s, w->key, dec, &w->dl_err) < 0)
        goto out;
    if (sink_close(dec, &w->dl_err) < 0)
        goto out;
    w->dl_rc = 0;
out:
    sink_free(dec);
    if (w->dl_err.code == ERR_NOTFOUND)
        w->dl_err.code = ERR_CORRUPT;       /* a complete backup lacks a part */
    bkf_pipe_writer_done(&w->pipe, w->dl_rc == 0);
    return NULL;
}

/* ---- paths ---- */

/* Which root a path belongs to: pg_tblspc/OID/... of a listed tablespace
 * goes to that tablespace's directory. */
static int route(const struct bkf *c, const char *path, const char **rel)
{
    size_t i;

    *rel = path;
    if (!str_has_prefix(path, "pg_tblspc/"))
        return 0;
    for (i = 0; i < c->m->ntablespaces; i++) {
        char pre[32];
        int n = snprintf(pre, sizeof pre, "pg_tblspc/%u", (unsigned)c->m->tablespaces[i].oid);

        if (strncmp(path, pre, (size_t)n) == 0 && (path[n] == '\0' || path[n] == '/')) {
            *rel = path[n] ? path + n + 1 : path + n;
            return (int)i + 1;
        }
    }
    return 0;
}

/* The directory holding `rel`'s last component, cached per worker. */
static int parent_fd(struct worker *w, int root, const char *rel, const char **leaf)
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
    if (bkf_open_dir(w->c->rootfd[root], dir, 1, &fd) < 0)
        return -1;
    if (w->cache_fd >= 0)
        close(w->cache_fd);
    w->cache_fd = fd;
    w->cache_root = root;
    memcpy(w->cache_path, dir, n + 1);
    return fd;
}

static int fidx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct fidx *)a)->path, ((const struct fidx *)b)->path);
}

/* ---- progress ---- */

static void progress_add(struct worker *w, int force)
{
    struct bkf *c = w->c;
    uint64_t now;

    if (!force && w->pend_bytes < ((uint64_t)4 << 20))
        return;
    pthread_mutex_lock(&c->mu);
    c->prog.bytes_done += w->pend_bytes;
    c->prog.files_done += w->pend_files;
    w->pend_bytes = w->pend_files = 0;
    now = now_ms();
    if (c->progress != NULL && (force || now - c->last_prog_ms >= PROGRESS_MS)) {
        c->last_prog_ms = now;
        c->progress(&c->prog, c->progress_arg);
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- entries ---- */

#define ENTRY_ERR(code, ...) \
    (err_setf(e, code, __VA_ARGS__), \
     err_prefix(e, "backup %s in region %s, part %u: entry \"%s\"", c->m->name, c->region, w->part, name))

static int write_all_at(int fd, const void *buf, size_t len, off_t off)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

static void hash_zeros(EVP_MD_CTX *md, uint64_t n)
{
    static const unsigned char zero[65536];

    while (n > 0) {
        size_t k = n > sizeof zero ? sizeof zero : (size_t)n;
        EVP_DigestUpdate(md, zero, k);
        n -= k;
    }
}

static int extract_file(struct worker *w, struct archive *a, struct archive_entry *ent, const char *name,
                        struct err *e)
{
    struct bkf *c = w->c;
    struct fidx key, *hit;
    const struct man_file *mf;
    const char *rel, *leaf;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned dglen;
    char hex[65];
    uint64_t pos = 0, flushed = 0;
    struct timespec ts[2];
    int root, dfd, fd, r, rc = -1;

    key.path = name;
    hit = bsearch(&key, c->idx, c->m->nfiles, sizeof *c->idx, fidx_cmp);
    if (hit == NULL)
        return ENTRY_ERR(ERR_CORRUPT, "the file is not in the manifest");
    mf = &c->m->files[hit->i];
    if (mf->part != w->part)
        return ENTRY_ERR(ERR_CORRUPT, "the manifest puts this file in part %u", (unsigned)mf->part);
    if (c->done[hit->i])
        return ENTRY_ERR(ERR_CORRUPT, "the file appears twice");
    if (!archive_entry_size_is_set(ent) || (uint64_t)archive_entry_size(ent) != mf->size)
        return ENTRY_ERR(ERR_CORRUPT, "size %lld differs from the manifest's %llu",
                         (long long)archive_entry_size(ent), (unsigned long long)mf->size);
    root = route(c, name, &rel);
    if (*rel == '\0')
        return ENTRY_ERR(ERR_CORRUPT, "a file where a tablespace directory belongs");
    dfd = parent_fd(w, root, rel, &leaf);
    if (dfd < 0)
        return ENTRY_ERR(errno == ENOTDIR || errno == ELOOP ? ERR_CORRUPT : ERR_IO,
                         "could not open its directory: %s", strerror(errno));
    fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return ENTRY_ERR(errno == EEXIST ? ERR_CORRUPT : ERR_IO, "could not create the file: %s",
                         strerror(errno));
    c->done[hit->i] = 1;
    EVP_DigestInit_ex(w->md, EVP_sha256(), NULL);
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;

        r = archive_read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            ENTRY_ERR(ERR_CORRUPT, "could not read its data: %s", archive_error_string(a));
            goto out;
        }
        if (off < 0 || (uint64_t)off < pos || (uint64_t)off + len > mf->size) {
            ENTRY_ERR(ERR_CORRUPT, "data outside the file's declared size");
            goto out;
        }
        hash_zeros(w->md, (uint64_t)off - pos);     /* a sparse hole */
        EVP_DigestUpdate(w->md, buf, len);
        if (write_all_at(fd, buf, len, (off_t)off) < 0) {
            ENTRY_ERR(ERR_IO, "could not write: %s", strerror(errno));
            goto out;
        }
        pos = (uint64_t)off + len;
        if (pos - flushed >= WRITEBACK_STEP) {
            /* start writeback now so that the final syncfs has little left */
            (void)sync_file_range(fd, (off_t)flushed, (off_t)(pos - flushed), SYNC_FILE_RANGE_WRITE);
            flushed = pos;
        }
        w->pend_bytes += len;
        progress_add(w, 0);
    }
    if (pos > flushed)
        (void)sync_file_range(fd, (off_t)flushed, (off_t)(pos - flushed), SYNC_FILE_RANGE_WRITE);
    if (pos < mf->size) {
        hash_zeros(w->md, mf->size - pos);
        if (ftruncate(fd, (off_t)mf->size) < 0) {
            ENTRY_ERR(ERR_IO, "could not extend: %s", strerror(errno));
            goto out;
        }
    }
    EVP_DigestFinal_ex(w->md, dg, &dglen);
    hex_encode(dg, dglen, hex);
    if (strcmp(hex, mf->sha256) != 0) {
        ENTRY_ERR(ERR_CORRUPT, "SHA-256 %.16s… differs from the manifest's %.16s…: the file is damaged", hex,
                  mf->sha256);
        goto out;
    }
    ts[0].tv_sec = ts[1].tv_sec = (time_t)mf->mtime;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (fchmod(fd, (mode_t)(mf->mode & 0777)) < 0 || futimens(fd, ts) < 0) {
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

static int extract_dir(struct worker *w, struct archive_entry *ent, const char *name, struct err *e)
{
    struct bkf *c = w->c;
    struct dirrec *d;
    const char *rel;
    int root = route(c, name, &rel), fd;

    if (bkf_open_dir(c->rootfd[root], rel, 1, &fd) < 0)
        return ENTRY_ERR(errno == ENOTDIR || errno == ELOOP ? ERR_CORRUPT : ERR_IO,
                         "could not create the directory: %s", strerror(errno));
    close(fd);
    pthread_mutex_lock(&c->mu);
    if (c->ndirs == c->capdirs) {
        size_t cap = c->capdirs ? 2 * c->capdirs : 256;
        struct dirrec *nd = realloc(c->dirs, cap * sizeof *nd);

        if (nd == NULL) {
            pthread_mutex_unlock(&c->mu);
            return err_setf(e, ERR_NOMEM, "out of memory");
        }
        c->dirs = nd;
        c->capdirs = cap;
    }
    d = &c->dirs[c->ndirs];
    d->rel = strdup(rel);
    if (d->rel == NULL) {
        pthread_mutex_unlock(&c->mu);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    d->root = root;
    d->mode = (uint32_t)archive_entry_perm(ent) & 0777;
    d->mtime = (int64_t)archive_entry_mtime(ent);
    c->ndirs++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static int extract_entry(struct worker *w, struct archive *a, struct archive_entry *ent, struct err *e)
{
    struct bkf *c = w->c;
    const char *raw = archive_entry_pathname(ent);
    char name[PATH_MAX];
    mode_t type = archive_entry_filetype(ent);

    if (raw == NULL)
        raw = archive_entry_pathname_utf8(ent);
    if (raw == NULL) {
        err_setf(e, ERR_CORRUPT, "backup %s in region %s, part %u: an entry has no readable name", c->m->name,
                 c->region, w->part);
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
    return type == AE_IFDIR ? extract_dir(w, ent, name, e) : extract_file(w, a, ent, name, e);
}

/* ---- one part ---- */

static int run_part(struct worker *w, struct err *e)
{
    struct bkf *c = w->c;
    struct archive *a = NULL;
    struct archive_entry *ent;
    char file[PATH_MAX] = "";
    int r, rc = -1, started = 0;

    bkf_pipe_reset(&w->pipe);
    if (pthread_create(&w->dl_th, NULL, download_main, w) != 0)
        return err_setf(e, ERR_INTERNAL, "could not start a download thread");
    started = 1;
    a = archive_read_new();
    if (a == NULL || archive_read_support_format_tar(a) != ARCHIVE_OK) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    if (archive_read_open(a, &w->pipe, NULL, bkf_pipe_read, NULL) != ARCHIVE_OK) {
        err_setf(e, ERR_CORRUPT, "backup %s in region %s, part %u: not a tar stream: %s", c->m->name, c->region,
                 w->part, archive_error_string(a));
        goto out;
    }
    while (!atomic_load(&c->abort)) {
        r = archive_read_next_header(a, &ent);
        if (r == ARCHIVE_EOF) {
            rc = 0;
            break;
        }
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            err_setf(e, ERR_CORRUPT, "backup %s in region %s, part %u: bad tar stream: %s", c->m->name, c->region,
                     w->part, archive_error_string(a));
            break;
        }
        if (extract_entry(w, a, ent, e) < 0) {
            snprintf(file, sizeof file, "%s", archive_entry_pathname(ent) ? archive_entry_pathname(ent) : "");
            break;
        }
    }
    if (rc < 0 && atomic_load(&c->abort))
        err_setf(e, ERR_INTERNAL, "stopped");   /* another part failed first: fail() keeps its error */
out:
    bkf_pipe_reader_done(&w->pipe, rc == 0 ? BKF_PIPE_DISCARD : BKF_PIPE_ABORT);
    if (started)
        pthread_join(w->dl_th, NULL);
    archive_read_free(a);
    if (w->cache_fd >= 0) {
        close(w->cache_fd);
        w->cache_fd = -1;
    }
    if (w->dl_rc < 0 && !bkf_pipe_writer_refused(&w->pipe)) {
        /* the download or the decoder failed: that is the cause */
        *e = w->dl_err;
        err_prefix(e, "backup %s in region %s: part %u (%s)%s%s%s", c->m->name, c->region, w->part, w->key,
                   file[0] ? ": while writing \"" : "", file, file[0] ? "\"" : "");
        return -1;
    }
    return rc;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct bkf *c = w->c;
    struct err e = ERR_INIT;

    for (;;) {
        size_t i;

        pthread_mutex_lock(&c->mu);
        i = c->next_part++;
        pthread_mutex_unlock(&c->mu);
        if (i >= c->m->nparts || atomic_load(&c->abort))
            break;
        w->part = c->m->parts[i].number;
        snprintf(w->key, sizeof w->key, "backups/%s/part-%04u", c->m->name, (unsigned)w->part);
        if (run_part(w, &e) < 0) {
            fail(c, &e);
            break;
        }
        pthread_mutex_lock(&c->mu);
        c->prog.parts_done++;
        pthread_mutex_unlock(&c->mu);
        progress_add(w, 1);
    }
    return NULL;
}

/* ---- preparation and finishing ---- */

static int fetch_small(struct repo *r, const char *name, const char *what, struct sink **out, struct err *e)
{
    char key[300];
    struct sink *mem = mem_sink_new(LABEL_MAX), *b;

    *out = NULL;
    if (mem == NULL || (b = borrow_sink_new(mem)) == NULL) {
        sink_free(mem);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (repo_key_backup(key, sizeof key, name, what) < 0 || repo_get(r, key, b, e) < 0) {
        if (e->code == ERR_NOTFOUND)
            e->code = ERR_CORRUPT;
        sink_free(mem);
        return err_prefix(e, "backup %s: could not read its %s", name, what);
    }
    *out = mem;
    return 0;
}

static int depth_cmp(const void *a, const void *b)
{
    const struct dirrec *x = a, *y = b;
    size_t dx = *x->rel != '\0', dy = *y->rel != '\0';
    const char *p;

    for (p = x->rel; *p; p++)
        dx += *p == '/';
    for (p = y->rel; *p; p++)
        dy += *p == '/';
    if (dx != dy)
        return dx > dy ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

static int finish(struct bkf *c, const char *dir, struct sink *label, struct sink *tsmap, struct err *e)
{
    const struct manifest *m = c->m;
    const unsigned char *data;
    size_t i, len;
    int fd;

    for (i = 0; i < m->nfiles; i++)
        if (!c->done[c->idx[i].i])
            return err_setf(e, ERR_CORRUPT, "backup %s in region %s: file \"%s\" is listed in the "
                            "manifest for part %u, but that part does not hold it", m->name, c->region, c->idx[i].path,
                            (unsigned)m->files[c->idx[i].i].part);
    if (m->ntablespaces > 0) {
        if (bkf_open_dir(c->rootfd[0], "pg_tblspc", 1, &fd) < 0)
            return err_errno(e, ERR_IO, errno, "could not create \"%s/pg_tblspc\"", dir);
        for (i = 0; i < m->ntablespaces; i++) {
            char oid[16];

            snprintf(oid, sizeof oid, "%u", (unsigned)m->tablespaces[i].oid);
            if (symlinkat(c->ts_target[i], fd, oid) < 0) {
                err_errno(e, ERR_IO, errno, "could not create the symlink \"%s/pg_tblspc/%s\"", dir, oid);
                close(fd);
                return -1;
            }
        }
        close(fd);
    }
    if (c->ndirs > 1)
        qsort(c->dirs, c->ndirs, sizeof *c->dirs, depth_cmp);
    for (i = 0; i < c->ndirs; i++) {
        const struct dirrec *d = &c->dirs[i];
        struct timespec ts[2];

        fd = -1;
        ts[0].tv_sec = ts[1].tv_sec = (time_t)d->mtime;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        if (bkf_open_dir(c->rootfd[d->root], d->rel, 0, &fd) < 0 || fchmod(fd, (mode_t)d->mode) < 0 ||
            futimens(fd, ts) < 0 || fsync(fd) < 0) {
            err_errno(e, ERR_IO, errno, "could not set mode and mtime of directory \"%s\"%s%s", d->rel,
                      d->root ? " in tablespace directory " : "", d->root ? c->ts_target[d->root - 1] : "");
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
    }
    for (i = 0; i <= m->ntablespaces; i++)
        if (syncfs(c->rootfd[i]) < 0 || fsync(c->rootfd[i]) < 0)
            return err_errno(e, ERR_IO, errno, "could not flush \"%s\" to disk", i ? c->ts_target[i - 1] : dir);
    if (tsmap != NULL) {
        char *buf;
        int rc;

        data = mem_sink_data(tsmap, &len);
        buf = bkf_rewrite_tsmap(data, len, c->ts_oid, (const char *const *)c->ts_new, m->ntablespaces, &len);
        if (buf == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        rc = bkf_write_small(c->rootfd[0], dir, "tablespace_map", buf, len, e);
        free(buf);
        if (rc < 0)
            return -1;
    }
    data = mem_sink_data(label, &len);
    return bkf_write_small(c->rootfd[0], dir, "backup_label", data, len, e);
}

/* Targets of the tablespaces after mapping, each checked. */
static int plan_tablespaces(struct bkf *c, const struct bkf_opts *o, struct err *e)
{
    const struct manifest *m = c->m;
    size_t i, k;

    for (k = 0; k < o->ntsmap; k++) {
        const struct bkf_tsmap *t = &o->tsmap[k];

        if (t->old_path[0] != '/' || t->new_path[0] != '/')
            return err_setf(e, ERR_USAGE, "--tablespace-map %s=%s: both paths must be absolute", t->old_path,
                            t->new_path);
        for (i = 0; i < m->ntablespaces && strcmp(m->tablespaces[i].path, t->old_path) != 0; i++)
            ;
        if (i == m->ntablespaces)
            return err_setf(e, ERR_USAGE, "--tablespace-map %s=%s: backup %s has no tablespace at %s", t->old_path,
                            t->new_path, m->name, t->old_path);
    }
    for (i = 0; i < m->ntablespaces; i++) {
        const char *target = m->tablespaces[i].path;

        for (k = 0; k < o->ntsmap; k++)
            if (strcmp(o->tsmap[k].old_path, target) == 0)
                target = o->tsmap[k].new_path;
        if (target[0] != '/')
            return err_setf(e, ERR_CORRUPT, "backup %s: tablespace %u has a relative path \"%s\"", m->name,
                            (unsigned)m->tablespaces[i].oid, target);
        for (k = 0; k < i; k++)
            if (strcmp(c->ts_target[k], target) == 0 || m->tablespaces[k].oid == m->tablespaces[i].oid)
                return err_setf(e, ERR_USAGE, "backup %s: tablespaces %u and %u would share \"%s\"", m->name,
                                (unsigned)m->tablespaces[k].oid, (unsigned)m->tablespaces[i].oid, target);
        if ((c->ts_target[i] = strdup(target)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
        c->ts_oid[i] = m->tablespaces[i].oid;
        c->ts_new[i] = strcmp(target, m->tablespaces[i].path) != 0 ? c->ts_target[i] : NULL;
    }
    return 0;
}

static int check_manifest(const struct bkf *c, struct err *e)
{
    const struct manifest *m = c->m;
    size_t i;

    for (i = 0; i < m->nfiles; i++) {
        if (m->files[i].part < 1 || m->files[i].part > m->nparts)
            return err_setf(e, ERR_CORRUPT, "backup %s: the manifest puts \"%s\" in part %u of %zu", m->name,
                            m->files[i].path, (unsigned)m->files[i].part, m->nparts);
        if (i > 0 && strcmp(c->idx[i - 1].path, c->idx[i].path) == 0)
            return err_setf(e, ERR_CORRUPT, "backup %s: the manifest lists \"%s\" twice", m->name, c->idx[i].path);
    }
    return 0;
}

/* backup_label must be this backup's: the label walship gave it and the
 * start point its manifest records (belt and braces beside the binding of
 * every object to its backup's folder). */
static int check_label(const struct manifest *m, struct sink *label, struct err *e)
{
    const unsigned char *buf;
    char want[128], lsn[24], *text;
    size_t len;
    int ok;

    buf = mem_sink_data(label, &len);
    text = malloc(len + 1);
    if (text == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    memcpy(text, buf, len);
    text[len] = '\0';
    wal_format_lsn(m->start_lsn, lsn);
    snprintf(want, sizeof want, "START WAL LOCATION: %s (file %s)\n", lsn, m->start_wal);
    ok = strncmp(text, want, strlen(want)) == 0;
    snprintf(want, sizeof want, "\nLABEL: walship %s\n", m->name);
    ok = ok && strstr(text, want) != NULL;
    free(text);
    if (!ok)
        return err_setf(e, ERR_FOREIGN, "backup %s: its backup_label does not describe it (start %s in %s, label "
                        "\"walship %s\"): refusing it", m->name, lsn, m->start_wal, m->name);
    return 0;
}

int bkf_fetch(struct repo *r, const struct region_conf *rc, const struct config *conf, const struct manifest *m,
              const char *dir, const struct bkf_opts *o, struct bkf_stats *st, struct err *e)
{
    struct bkf c;
    struct sink *label = NULL, *tsmap = NULL;
    uint64_t t0 = now_ms();
    size_t i, nroots = 1 + m->ntablespaces;
    int k, started = 0, rcode = -1;

    memset(&c, 0, sizeof c);
    c.m = m;
    c.kr = r->kr;
    c.sysid = r->id.sysid;
    c.region = r->name;
    c.progress = o->progress;
    c.progress_arg = o->progress_arg;
    atomic_init(&c.abort, 0);
    pthread_mutex_init(&c.mu, NULL);
    c.rootfd = malloc(nroots * sizeof *c.rootfd);
    c.ts_target = calloc(m->ntablespaces + 1, sizeof *c.ts_target);
    c.ts_new = calloc(m->ntablespaces + 1, sizeof *c.ts_new);
    c.ts_oid = calloc(m->ntablespaces + 1, sizeof *c.ts_oid);
    c.idx = malloc((m->nfiles + 1) * sizeof *c.idx);
    c.done = calloc(m->nfiles + 1, 1);
    c.nw = o->parallel < 1 ? 1 : o->parallel;
    if ((size_t)c.nw > m->nparts)
        c.nw = m->nparts ? (int)m->nparts : 1;
    c.w = calloc((size_t)c.nw, sizeof *c.w);
    if (c.rootfd == NULL || c.ts_target == NULL || c.ts_new == NULL || c.ts_oid == NULL || c.idx == NULL ||
        c.done == NULL || c.w == NULL) {
        free(c.w);
        c.w = NULL;
        c.nw = 0;
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < nroots; i++)
        c.rootfd[i] = -1;
    for (i = 0; i < m->nfiles; i++) {
        c.idx[i].path = m->files[i].path;
        c.idx[i].i = i;
    }
    qsort(c.idx, m->nfiles, sizeof *c.idx, fidx_cmp);
    if (check_manifest(&c, e) < 0 || plan_tablespaces(&c, o, e) < 0)
        goto out;
    c.prog.bytes_total = m->original_size;
    c.prog.files_total = m->nfiles;
    c.prog.parts_total = (uint32_t)m->nparts;

    /* refuse before creating anything */
    if ((k = bkf_dir_state(dir, e)) != 0) {
        if (k > 0)
            err_setf(e, ERR_USAGE, "directory \"%s\" is not empty: refusing to restore into it", dir);
        goto out;
    }
    for (i = 0; i < m->ntablespaces; i++) {
        int st_ = bkf_dir_state(c.ts_target[i], e);
        if (st_ < 0)
            goto out;
        if (st_ > 0) {
            err_setf(e, ERR_USAGE, "tablespace directory \"%s\" (tablespace %u) is not empty: refusing to restore "
                     "into it (use --tablespace-map OLD=NEW)", c.ts_target[i], (unsigned)m->tablespaces[i].oid);
            goto out;
        }
    }
    if (bkf_prepare_dir(dir, "directory", &c.rootfd[0], e) < 0)
        goto out;
    for (i = 0; i < m->ntablespaces; i++)
        if (bkf_prepare_dir(c.ts_target[i], "tablespace directory", &c.rootfd[1 + i], e) < 0)
            goto out;
    if (fetch_small(r, m->name, "backup_label", &label, e) < 0 || check_label(m, label, e) < 0)
        goto out;
    if (m->has_tablespace_map && fetch_small(r, m->name, "tablespace_map", &tsmap, e) < 0)
        goto out;

    for (k = 0; k < c.nw; k++) {
        struct worker *w = &c.w[k];

        w->c = &c;
        w->cache_fd = -1;
        w->md = EVP_MD_CTX_new();
        if (bkf_pipe_init(&w->pipe, PIPE_CAP, &c.abort) < 0 || w->md == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory");
            goto out;
        }
        if (k == 0) {
            w->s = r->st;
        } else if (stor_open(rc, conf, &w->s, e) < 0) {
            err_prefix(e, "backup %s", m->name);
            goto out;
        } else {
            w->own_stor = 1;
        }
    }
    for (k = 0; k < c.nw; k++, started++)
        if (pthread_create(&c.w[k].th, NULL, worker_main, &c.w[k]) != 0) {
            struct err te = ERR_INIT;
            err_setf(&te, ERR_INTERNAL, "could not start a worker thread");
            fail(&c, &te);
            break;
        }
    for (k = 0; k < started; k++)
        pthread_join(c.w[k].th, NULL);
    if (c.failed) {
        *e = c.err;
        goto out;
    }
    if (finish(&c, dir, label, tsmap, e) < 0)
        goto out;
    if (c.progress != NULL)
        c.progress(&c.prog, c.progress_arg);
    if (st != NULL) {
        st->files = c.prog.files_done;
        st->bytes = c.prog.bytes_done;
        st->dirs = c.ndirs;
        st->parts = (uint32_t)m->nparts;
        st->tablespaces = (uint32_t)m->ntablespaces;
        st->ms = now_ms() - t0;
    }
    rcode = 0;
out:
    for (k = 0; k < c.nw; k++) {
        struct worker *w = &c.w[k];

        if (w->c == NULL)
            continue;
        if (w->own_stor)
            stor_free(w->s);
        EVP_MD_CTX_free(w->md);
        bkf_pipe_destroy(&w->pipe);
    }
    for (i = 0; c.rootfd != NULL && i < nroots; i++)
        if (c.rootfd[i] >= 0)
            close(c.rootfd[i]);
    for (i = 0; c.ts_target != NULL && i < m->ntablespaces; i++)
        free(c.ts_target[i]);
    for (i = 0; i < c.ndirs; i++)
        free(c.dirs[i].rel);
    free(c.dirs);
    free(c.ts_target);
    free(c.ts_new);
    free(c.ts_oid);
    free(c.rootfd);
    free(c.idx);
    free(c.done);
    free(c.w);
    sink_free(label);
    sink_free(tsmap);
    pthread_mutex_destroy(&c.mu);
    return rcode;
}
