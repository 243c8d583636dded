/*
 * fs — the file:// storage driver: a directory tree on a local or mounted
 * file system (the embedded default), NFS included; never below an fstab
 * mount point where nothing is mounted.
 *
 * Writes are atomic and durable: the object is written to a temp file
 * beside its final name (".walship-tmp-*", never listed), fsync'd, moved
 * into place without replacing anything (renameat2 RENAME_NOREPLACE, or
 * link() where the file system lacks it: an existing object makes the put
 * fail with ERR_EXISTS, so two writers racing on one name cannot both
 * succeed), and the directory fsync'd.  The region's root directory must
 * exist (like a bucket); directories below it are created on demand.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mapread.h"
#include "paths.h"
#include "stor.h"
#include "util.h"

#define TMP_PREFIX ".walship-tmp-"

struct fs {
    struct stor base;
    char *root;             /* absolute, no trailing slash */
};

static int fs_path(struct fs *f, const char *key, char *buf, size_t n, struct err *e)
{
    if (stor_key_valid(key, e) < 0)
        return err_prefix(e, "region %s", f->base.region);
    if ((size_t)snprintf(buf, n, "%s/%s", f->root, key) >= n)
        return err_setf(e, ERR_USAGE, "region %s: path for \"%s\" is too long", f->base.region, key);
    return 0;
}

static int fs_root_exists(struct fs *f, struct err *e)
{
    struct stat st;

    if (stat(f->root, &st) < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOBUCKET : ERR_IO, errno,
                         "region %s: storage directory \"%s\" is not usable", f->base.region, f->root);
    if (!S_ISDIR(st.st_mode))
        return err_setf(e, ERR_NOBUCKET, "region %s: \"%s\" is not a directory", f->base.region, f->root);
    return 0;
}

/* A key that is missing is "not found" only when the place it would be in
 * is a real directory: a top-level directory that is a dangling symlink
 * (its target unmounted or gone) is an error, never an end of archive. */
static int fs_missing_is_absent(struct fs *f, const char *key, struct err *e)
{
    const char *slash = strchr(key, '/');
    char top[PATH_MAX];
    struct stat st;

    if (fs_root_exists(f, e) < 0)
        return -1;
    if (slash == NULL)
        return 0;
    if (snprintf(top, sizeof top, "%s/%.*s", f->root, (int)(slash - key), key) >= (int)sizeof top)
        return err_setf(e, ERR_IO, "region %s: path too long", f->base.region);
    if (lstat(top, &st) < 0) {
        if (errno == ENOENT)
            return 0;   /* nothing there yet: a new repository */
        return err_errno(e, ERR_IO, errno, "region %s: could not look at \"%s\"", f->base.region, top);
    }
    if (S_ISLNK(st.st_mode) && stat(top, &st) < 0)
        return err_errno(e, ERR_IO, errno, "region %s: \"%s\" is a symbolic link to nothing (unmounted?)",
                         f->base.region, top);
    if (!S_ISDIR(st.st_mode))
        return err_setf(e, ERR_IO, "region %s: \"%s\" is not a directory", f->base.region, top);
    return 0;
}

/* ---- put: upload sink ---- */

struct fs_put {
    struct sink base;
    struct fs *f;
    int fd;
    int closed;
    unsigned flags;
    char *path;
    char *tmp;
};

/* Move the finished temp file to its name; never over an existing object
 * unless STOR_PUT_REPLACE.  -1 with errno. */
static int publish(const char *tmp, const char *path, unsigned flags)
{
    if (flags & STOR_PUT_REPLACE)
        return rename(tmp, path);
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* no RENAME_NOREPLACE here (some network file systems): link() never
     * replaces either; a file system with neither refuses the put */
    if (link(tmp, path) < 0)
        return -1;
    unlink(tmp);
    return 0;
}

static int fs_put_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct fs_put *p = (struct fs_put *)s;

    if (write_all(p->fd, buf, len) < 0)
        return err_errno(e, ERR_IO, errno, "region %s: could not write \"%s\"", p->f->base.region, p->tmp);
    return 0;
}

static int fs_put_close(struct sink *s, struct err *e)
{
    struct fs_put *p = (struct fs_put *)s;
    char *slash;
    int rc;

    if (fsync(p->fd) < 0)
        return err_errno(e, ERR_IO, errno, "region %s: could not fsync \"%s\"", p->f->base.region, p->tmp);
    if (close(p->fd) < 0) {
        p->fd = -1;
        return err_errno(e, ERR_IO, errno, "region %s: could not close \"%s\"", p->f->base.region, p->tmp);
    }
    p->fd = -1;
    if (publish(p->tmp, p->path, p->flags) < 0) {
        if (errno == EEXIST)
            return err_setf(e, ERR_EXISTS, "region %s: \"%s\" already exists (not replaced)", p->f->base.region,
                            p->path + strlen(p->f->root) + 1);
        return err_errno(e, ERR_IO, errno, "region %s: could not move \"%s\" to \"%s\"", p->f->base.region,
                         p->tmp, p->path);
    }
    p->closed = 1;
    slash = strrchr(p->path, '/');
    *slash = '\0';
    rc = fsync_dir(p->path, e);
    *slash = '/';
    return rc;
}

static void fs_put_free(struct sink *s)
{
    struct fs_put *p = (struct fs_put *)s;

    if (p->fd >= 0)
        close(p->fd);
    if (!p->closed && p->tmp != NULL)
        unlink(p->tmp);
    free(p->path);
    free(p->tmp);
    free(p);
}

static const struct sink_ops fs_put_ops = { fs_put_write, fs_put_close, fs_put_free };

/* Create the directories between the root and `dir`, fsyncing each parent
 * of a directory we created so the new entry is durable. */
static int fs_make_dirs(struct fs *f, char *dir, struct err *e)
{
    size_t rootlen = strlen(f->root);
    char *p;

    for (p = dir + rootlen + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        {
            char saved = *p;

            *p = '\0';
            if (mkdir(dir, 0750) == 0) {
                char *slash = strrchr(dir, '/');
                *slash = '\0';
                if (fsync_dir(dir, e) < 0) {
                    *slash = '/';
                    *p = saved;
                    return -1;
                }
                *slash = '/';
            } else if (errno != EEXIST) {
                err_errno(e, ERR_IO, errno, "region %s: could not create directory \"%s\"", f->base.region, dir);
                *p = saved;
                return -1;
            }
            *p = saved;
            if (saved == '\0')
                return 0;
        }
    }
}

static int fs_put(struct stor *s, const char *key, unsigned flags, struct sink **out, struct err *e)
{
    struct fs *f = (struct fs *)s;
    char path[PATH_MAX];
    struct fs_put *p;
    char *slash;
    const char *base;

    if (fs_path(f, key, path, sizeof path, e) < 0)
        return -1;
    base = strrchr(key, '/');
    base = base ? base + 1 : key;
    if (*base == '\0' || str_has_prefix(base, TMP_PREFIX))
        return err_setf(e, ERR_USAGE, "region %s: \"%s\" is not a valid object name", s->region, key);
    if (fs_root_exists(f, e) < 0)
        return -1;
    slash = strrchr(path, '/');
    *slash = '\0';
    if ((size_t)(slash - path) > strlen(f->root) && fs_make_dirs(f, path, e) < 0)
        return -1;
    *slash = '/';

    p = calloc(1, sizeof *p);
    if (p == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    p->base.ops = &fs_put_ops;
    p->f = f;
    p->fd = -1;
    p->flags = flags;
    p->path = strdup(path);
    *slash = '\0';
    p->tmp = xasprintf("%s/" TMP_PREFIX "%d-%lx-%s", path, (int)getpid(), (unsigned long)random(), base);
    *slash = '/';
    if (p->path == NULL || p->tmp == NULL) {
        fs_put_free(&p->base);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (p->fd < 0) {
        err_errno(e, ERR_IO, errno, "region %s: could not create \"%s\"", s->region, p->tmp);
        fs_put_free(&p->base);
        return -1;
    }
    *out = &p->base;
    return 0;
}

/* ---- get / head ---- */

static int fs_get(struct stor *s, const char *key, uint64_t off, uint64_t len, struct sink *out, struct err *e)
{
    struct fs *f = (struct fs *)s;
    char path[PATH_MAX], what[PATH_MAX + 64];
    struct stat st;
    int fd, rc = -1;

    if (fs_path(f, key, path, sizeof path, e) < 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;

        if ((saved == ENOENT || saved == ENOTDIR) && fs_missing_is_absent(f, key, e) < 0)
            return -1;
        return err_errno(e, saved == ENOENT || saved == ENOTDIR ? ERR_NOTFOUND : ERR_IO, saved,
                         "region %s: could not open \"%s\"", s->region, key);
    }
    if (fstat(fd, &st) < 0) {
        err_errno(e, ERR_IO, errno, "region %s: could not stat \"%s\"", s->region, key);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err_setf(e, ERR_NOTFOUND, "region %s: \"%s\" is not an object", s->region, key);
        goto out;
    }
    if (off > (uint64_t)st.st_size) {
        err_setf(e, ERR_USAGE, "region %s: range starts at %llu past the end of \"%s\" (%lld bytes)", s->region,
                 (unsigned long long)off, key, (long long)st.st_size);
        goto out;
    }
    if (len > (uint64_t)st.st_size - off)
        len = (uint64_t)st.st_size - off;
    snprintf(what, sizeof what, "%s\" in region \"%s", key, s->region);
    if (sink_pump_range(out, fd, off, len, what, e) < 0)
        goto out;
    rc = 0;
out:
    close(fd);
    return rc;
}

static int fs_head(struct stor *s, const char *key, struct stor_stat *out, struct err *e)
{
    struct fs *f = (struct fs *)s;
    char path[PATH_MAX];
    struct stat st;

    if (fs_path(f, key, path, sizeof path, e) < 0)
        return -1;
    if (stat(path, &st) < 0) {
        int saved = errno;

        if ((saved == ENOENT || saved == ENOTDIR) && fs_missing_is_absent(f, key, e) < 0)
            return -1;
        return err_errno(e, saved == ENOENT || saved == ENOTDIR ? ERR_NOTFOUND : ERR_IO, saved,
                         "region %s: could not stat \"%s\"", s->region, key);
    }
    if (!S_ISREG(st.st_mode))
        return err_setf(e, ERR_NOTFOUND, "region %s: \"%s\" is not an object", s->region, key);
    memset(out, 0, sizeof *out);
    out->size = (uint64_t)st.st_size;
    out->mtime = st.st_mtime;
    snprintf(out->etag, sizeof out->etag, "%llx-%llx-%llx", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size, (unsigned long long)st.st_mtime);
    return 0;
}

/* ---- list ---- */

struct fs_listing {
    struct stor_entry *ents;
    size_t n, cap;
};

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const struct stor_entry *)a)->key, ((const struct stor_entry *)b)->key);
}

/* A top-level directory may be a symbolic link (wal/ or backups/ on
 * another mount): listed through it, as fs_get reads through it; one to
 * nothing (its target unmounted) is an error, never an empty listing, or
 * copy published backups without their WAL.  Deeper links are left out. */
static int follow_top_link(struct fs *f, DIR *d, const char *rel, const char *name, struct stat *st, struct err *e)
{
    if (!S_ISLNK(st->st_mode) || *rel != '\0')
        return 0;
    if (fstatat(dirfd(d), name, st, 0) == 0)
        return 0;
    return err_errno(e, ERR_IO, errno, "region %s: \"%s/%s\" is a symbolic link to nothing (unmounted?)",
                     f->base.region, f->root, name);
}

static int fs_walk(struct fs *f, const char *rel, const char *prefix, struct fs_listing *l, struct err *e)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *de;
    int rc = -1;

    if ((size_t)snprintf(path, sizeof path, "%s%s%s", f->root, *rel ? "/" : "", rel) >= sizeof path)
        return err_setf(e, ERR_IO, "region %s: path too long under \"%s\"", f->base.region, rel);
    d = opendir(path);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return err_errno(e, ERR_IO, errno, "region %s: could not list \"%s\"", f->base.region, path);
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        char key[PATH_MAX];
        struct stat st;
        size_t plen = strlen(prefix);

        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
            continue;
        if (str_has_prefix(de->d_name, TMP_PREFIX))
            continue;
        if ((size_t)snprintf(key, sizeof key, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= sizeof key)
            continue;
        /* Prune: only descend or report where the key can still match. */
        if (strncmp(key, prefix, strlen(key) < plen ? strlen(key) : plen) != 0)
            continue;
        /* Only a name that vanished meanwhile is left out: an entry that
         * cannot be looked at (EIO, ESTALE) missing from the listing makes
         * a complete backup look incomplete, and retention delete it. */
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            err_errno(e, ERR_IO, errno, "region %s: could not stat \"%s\"", f->base.region, key);
            goto out;
        }
        if (follow_top_link(f, d, rel, de->d_name, &st, e) < 0)
            goto out;
        if (S_ISDIR(st.st_mode)) {
            if (fs_walk(f, key, prefix, l, e) < 0)
                goto out;
            continue;
        }
        if (!S_ISREG(st.st_mode) || !str_has_prefix(key, prefix))
            continue;
        if (array_reserve(&l->ents, &l->cap, l->n + 1, sizeof *l->ents) < 0) {
            err_setf(e, ERR_NOMEM, "out of memory listing region %s", f->base.region);
            goto out;
        }
        l->ents[l->n].key = strdup(key);
        if (l->ents[l->n].key == NULL) {
            err_setf(e, ERR_NOMEM, "out of memory listing region %s", f->base.region);
            goto out;
        }
        l->ents[l->n].size = (uint64_t)st.st_size;
        l->ents[l->n].mtime = st.st_mtime;
        l->n++;
    }
    if (errno != 0) {
        err_errno(e, ERR_IO, errno, "region %s: could not read directory \"%s\"", f->base.region, path);
        goto out;
    }
    rc = 0;
out:
    closedir(d);
    return rc;
}

static int fs_list(struct stor *s, const char *prefix, const char *after, stor_list_fn fn, void *arg,
                   struct err *e)
{
    struct fs *f = (struct fs *)s;
    struct fs_listing l = { NULL, 0, 0 };
    size_t i;
    int rc = -1;

    if (fs_root_exists(f, e) < 0)
        return -1;
    if (strstr(prefix, "..") != NULL || prefix[0] == '/')
        return err_setf(e, ERR_USAGE, "region %s: bad prefix \"%s\"", s->region, prefix);
    if (fs_walk(f, "", prefix, &l, e) < 0)
        goto out;
    if (l.n > 1)
        qsort(l.ents, l.n, sizeof *l.ents, ent_cmp);
    for (i = 0; i < l.n; i++)
        if ((after == NULL || strcmp(l.ents[i].key, after) > 0) && fn(&l.ents[i], arg) != 0)
            break;
    rc = 0;
out:
    for (i = 0; i < l.n; i++)
        free((char *)l.ents[i].key);
    free(l.ents);
    return rc;
}

/* ---- remove ---- */

static int fs_remove(struct stor *s, const char *key, struct err *e)
{
    struct fs *f = (struct fs *)s;
    char path[PATH_MAX];
    char *slash;

    if (fs_path(f, key, path, sizeof path, e) < 0)
        return -1;
    if (unlink(path) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return err_errno(e, ERR_IO, errno, "region %s: could not remove \"%s\"", s->region, key);
    }
    /* Tidy now-empty directories up to the root; failure is harmless. */
    while ((slash = strrchr(path, '/')) != NULL && (size_t)(slash - path) > strlen(f->root)) {
        *slash = '\0';
        if (rmdir(path) < 0)
            break;
    }
    if (slash != NULL) {
        *slash = '\0';
        return fsync_dir(path, e);
    }
    return 0;
}

static int fs_remove_many(struct stor *s, const char *const *keys, size_t n, struct err *e)
{
    size_t i;

    for (i = 0; i < n && fs_remove(s, keys[i], e) == 0; i++)
        ;
    return i < n ? -1 : 0;
}

/* ---- sweep: temp files of writers that died ---- */

static int sweep_dir(struct fs *f, int dfd, const char *rel, time_t older_than, uint64_t *removed, struct err *e)
{
    DIR *d = fdopendir(dfd);
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        close(dfd);
        return err_errno(e, ERR_IO, errno, "region %s: could not read \"%s\"", f->base.region, rel);
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

            if (sub >= 0)
                rc = sweep_dir(f, sub, de->d_name, older_than, removed, e);
            continue;
        }
        if (S_ISREG(st.st_mode) && str_has_prefix(de->d_name, TMP_PREFIX) && st.st_mtime < older_than) {
            long pid = 0;

            /* ".walship-tmp-PID-...": a writer of this host that still runs
             * keeps its file, however old */
            if (sscanf(de->d_name + strlen(TMP_PREFIX), "%ld-", &pid) == 1 && pid > 0 &&
                (kill((pid_t)pid, 0) == 0 || errno == EPERM))
                continue;
            if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                (*removed)++;
        }
    }
    closedir(d);
    return rc;
}

static int fs_sweep(struct stor *s, time_t older_than, uint64_t *removed, struct err *e)
{
    struct fs *f = (struct fs *)s;
    int dfd;

    if (fs_root_exists(f, e) < 0)
        return -1;
    dfd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return err_errno(e, ERR_IO, errno, "region %s: could not open \"%s\"", s->region, f->root);
    return sweep_dir(f, dfd, f->root, older_than, removed, e);
}

static void fs_free(struct stor *s)
{
    struct fs *f = (struct fs *)s;

    free(f->root);
    free(s->region);
    free(s->where);
    free(f);
}

static const struct stor_ops fs_ops = {
    STOR_OPS_VERSION, fs_put, fs_get, fs_head, fs_list, fs_remove, fs_remove_many, fs_sweep, fs_free,
};

static int fs_open(const struct stor_opts *o, struct stor **out, struct err *e)
{
    struct fs *f;
    size_t len;

    if (!str_has_prefix(o->url, "file:///"))
        return err_setf(e, ERR_CONFIG, "region %s: bad url \"%s\" (use file:///PATH)", o->name, o->url);
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    f->base.ops = &fs_ops;
    f->root = strdup(o->url + 7);
    f->base.region = strdup(o->name);
    for (len = f->root ? strlen(f->root) : 0; len > 1 && f->root[len - 1] == '/';)
        f->root[--len] = '\0';
    if (f->root == NULL || f->base.region == NULL || (f->base.where = xasprintf("directory %s", f->root)) == NULL) {
        fs_free(&f->base);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    /* a first push would make a repository the volume hides once mounted */
    if (path_refuse_unmounted(f->root, ERR_NOBUCKET, "its directory", "not reading or writing below it (mount the "
                              "volume)", e) < 0) {
        fs_free(&f->base);
        return err_prefix(e, "region %s", o->name);
    }
    *out = &f->base;
    return 0;
}

const struct stor_driver stor_driver_fs = { STOR_DRIVER_VERSION, "file://", fs_open };
