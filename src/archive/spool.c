/* spool — see spool.h; the state files beside the queue are in spool_state.c. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo.h"
#include "spool_int.h"
#include "sha256tee.h"
#include "util.h"

#include <openssl/evp.h>

int spool_sub(struct spool *sp, char *buf, size_t len, const char *a, const char *b, const char *c)
{
    int n = snprintf(buf, len, "%s/%s%s%s%s%s", sp->dir, a, b ? "/" : "", b ? b : "", c ? "/" : "", c ? c : "");
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

void spool_free(struct spool *sp)
{
    if (sp == NULL)
        return;
    free(sp->dir);
    free(sp);
}

const char *spool_dir(const struct spool *sp)
{
    return sp->dir;
}

uint64_t spool_sysid(const struct spool *sp)
{
    return sp->sysid;
}

void spool_queue_name(const char *region, const char *url, const char *endpoint, char out[SPOOL_QUEUE_MAX])
{
    char id[REPO_REGION_ID_MAX];

    repo_region_id(region, url, endpoint, id);
    strlcopy(out, id, SPOOL_QUEUE_MAX);
}

int spool_clusters(const char *dir, char ***names, size_t *n, struct err *e)
{
    char **v = NULL;
    size_t k, i, j = 0;

    if (dir_list_sorted(dir, DIR_ONLY_DIRS | DIR_NO_HIDDEN, &v, &k, e) < 0)
        return -1;
    for (i = 0; i < k; i++) {
        uint64_t id;

        if (parse_u64(v[i], 1, UINT64_MAX, &id, &(struct err)ERR_INIT) == 0)
            v[j++] = v[i];
        else
            free(v[i]);
    }
    *names = v;
    *n = j;
    return 0;
}

uint64_t spool_legacy_entries(const char *dir)
{
    char path[PATH_MAX];
    char **q = NULL, **f = NULL;
    size_t nq = 0, nf = 0, i;
    uint64_t total = 0;

    if (snprintf(path, sizeof path, "%s/queue", dir) >= (int)sizeof path ||
        dir_list_sorted(path, DIR_ONLY_DIRS | DIR_NO_HIDDEN, &q, &nq, &(struct err)ERR_INIT) < 0)
        return 0;
    for (i = 0; i < nq; i++) {
        if (snprintf(path, sizeof path, "%s/queue/%s", dir, q[i]) < (int)sizeof path &&
            dir_list_sorted(path, DIR_ONLY_FILES | DIR_NO_HIDDEN, &f, &nf, &(struct err)ERR_INIT) == 0) {
            total += nf;
            dir_list_free(f, nf);
        }
    }
    dir_list_free(q, nq);
    return total;
}

int spool_save_identity(struct spool *sp, const char *json, size_t len, struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int fd;

    if (spool_sub(sp, path, sizeof path, "identity.json", NULL, NULL) < 0 ||
        snprintf(tmp, sizeof tmp, "%s/tmp/identity.%d", sp->dir, (int)getpid()) >= (int)sizeof tmp)
        return err_setf(e, ERR_IO, "spool path too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    if (write_all(fd, json, len) < 0 || fsync(fd) < 0 || close(fd) < 0) {
        unlink(tmp);
        return err_errno(e, ERR_IO, errno, "could not write \"%s\"", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return err_errno(e, ERR_IO, errno, "could not rename \"%s\"", tmp);
    }
    return fsync_dir(sp->dir, e);
}

int spool_load_identity(struct spool *sp, char **json, size_t *len, struct err *e)
{
    char path[PATH_MAX];
    unsigned char *buf;

    if (spool_sub(sp, path, sizeof path, "identity.json", NULL, NULL) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    if (read_file_all(path, 65536, &buf, len, e) < 0)
        return -1;
    *json = (char *)buf;
    return 0;
}

/* ---- usage ---- */

struct inode_set {
    struct { dev_t dev; ino_t ino; } *v;
    size_t n, cap;
};

static int inode_seen(struct inode_set *s, dev_t dev, ino_t ino)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (s->v[i].dev == dev && s->v[i].ino == ino)
            return 1;
    if (array_reserve(&s->v, &s->cap, s->n + 1, sizeof *s->v) < 0)
        return 1;   /* undercount rather than fail */
    s->v[s->n].dev = dev;
    s->v[s->n].ino = ino;
    s->n++;
    return 0;
}

int spool_usage(struct spool *sp, const char *queue, struct spool_usage *u, struct err *e)
{
    char path[PATH_MAX];
    struct inode_set seen = { NULL, 0, 0 };
    DIR *qd;
    struct dirent *rde;

    memset(u, 0, sizeof *u);
    if (spool_sub(sp, path, sizeof path, "queue", NULL, NULL) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    qd = opendir(path);
    if (qd == NULL && errno == ENOENT)
        return 0;   /* a spool never made (status reads it read-only): nothing spooled */
    if (qd == NULL)
        return err_errno(e, ERR_IO, errno, "could not open spool queue \"%s\"", path);
    while ((rde = readdir(qd)) != NULL) {
        char rpath[PATH_MAX];
        DIR *rd;
        struct dirent *de;

        if (rde->d_name[0] == '.')
            continue;
        if (queue != NULL && strcmp(queue, rde->d_name) != 0)
            continue;
        if (spool_sub(sp, rpath, sizeof rpath, "queue", rde->d_name, NULL) < 0 || (rd = opendir(rpath)) == NULL)
            continue;
        while ((de = readdir(rd)) != NULL) {
            struct stat st;

            if (de->d_name[0] == '.' || fstatat(dirfd(rd), de->d_name, &st, 0) < 0)
                continue;
            u->entries++;
            if (u->oldest == 0 || st.st_mtime < u->oldest)
                u->oldest = st.st_mtime;
            if (!inode_seen(&seen, st.st_dev, st.st_ino)) {
                u->objects++;
                u->bytes += (uint64_t)st.st_size;
            }
        }
        closedir(rd);
    }
    closedir(qd);
    free(seen.v);
    return 0;
}

/* ---- put ---- */

struct spool_put {
    struct sink base;
    struct spool *sp;
    int fd;
    int committed;
    char tmp[PATH_MAX];
    char *name;
    char **regions;
    size_t nregions;
    unsigned char *existed;     /* per queue: the name was queued already */
};

static int sp_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct spool_put *p = (struct spool_put *)s;

    if (write_all(p->fd, buf, len) < 0)
        return err_errno(e, ERR_IO, errno, "could not write to the spool (\"%s\")", p->tmp);
    return 0;
}

static int sp_close(struct sink *s, struct err *e)
{
    struct spool_put *p = (struct spool_put *)s;
    char dir[PATH_MAX], dst[PATH_MAX];
    size_t i;

    if (fsync(p->fd) < 0)
        return err_errno(e, ERR_IO, errno, "could not fsync \"%s\"", p->tmp);
    for (i = 0; i < p->nregions; i++) {
        if (spool_sub(p->sp, dir, sizeof dir, "queue", p->regions[i], NULL) < 0 ||
            spool_sub(p->sp, dst, sizeof dst, "queue", p->regions[i], p->name) < 0)
            return err_setf(e, ERR_IO, "spool path too long");
        if (mkdir_p(dir, 0700, e) < 0)
            return -1;
        if (link(p->tmp, dst) < 0) {
            if (errno != EEXIST)
                return err_errno(e, ERR_IO, errno, "could not queue \"%s\" for region %s in the spool", p->name,
                                 p->regions[i]);
            /* Another push queued this name meanwhile: the caller compares
             * contents (spool_put_existed) before counting it as queued. */
            p->existed[i] = 1;
        }
        if (fsync_dir(dir, e) < 0)
            return -1;
    }
    p->committed = 1;
    return 0;
}

static void sp_free(struct sink *s)
{
    struct spool_put *p = (struct spool_put *)s;
    size_t i;

    if (p->fd >= 0)
        close(p->fd);
    /* The queue entries hold the object now; the temp name goes either way. */
    if (p->tmp[0])
        unlink(p->tmp);
    for (i = 0; i < p->nregions; i++)
        free(p->regions[i]);
    free(p->regions);
    free(p->existed);
    free(p->name);
    free(p);
}


static const struct sink_ops sp_ops = { sp_write, sp_close, sp_free };

int spool_put_existed(const struct sink *s, size_t i)
{
    const struct spool_put *p = (const struct spool_put *)s;

    return s != NULL && s->ops == &sp_ops && i < p->nregions && p->existed[i];
}

int spool_put(struct spool *sp, const char *name, char *const *regions, size_t nregions, uint64_t size_hint,
              struct sink **out, struct err *e)
{
    struct spool_put *p;
    struct spool_usage u;
    size_t i;

    if (spool_usage(sp, NULL, &u, e) < 0)
        return -1;
    if (sp->max_bytes != 0 && u.bytes + size_hint > sp->max_bytes)
        return err_setf(e, ERR_IO,
                        "the spool is full: %llu bytes queued for async regions, spool_max_bytes is %llu "
                        "(\"%s\" not spooled; PostgreSQL keeps it and retries)",
                        (unsigned long long)u.bytes, (unsigned long long)sp->max_bytes, name);
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    p->base.ops = &sp_ops;
    p->sp = sp;
    p->fd = -1;
    p->name = strdup(name);
    p->regions = calloc(nregions ? nregions : 1, sizeof *p->regions);
    p->existed = calloc(nregions ? nregions : 1, 1);
    if (p->name == NULL || p->regions == NULL || p->existed == NULL)
        goto nomem;
    p->nregions = nregions;
    for (i = 0; i < nregions; i++)
        if ((p->regions[i] = strdup(regions[i])) == NULL)
            goto nomem;
    if (snprintf(p->tmp, sizeof p->tmp, "%s/tmp/%s.%d.%lx", sp->dir, name, (int)getpid(),
                 (unsigned long)random()) >= (int)sizeof p->tmp) {
        p->tmp[0] = '\0';
        sp_free(&p->base);
        return err_setf(e, ERR_IO, "spool path too long");
    }
    p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (p->fd < 0) {
        err_errno(e, ERR_IO, errno, "could not create \"%s\" in the spool", p->tmp);
        p->tmp[0] = '\0';
        sp_free(&p->base);
        return -1;
    }
    *out = &p->base;
    return 0;
nomem:
    sp_free(&p->base);
    return err_setf(e, ERR_NOMEM, "out of memory");
}

/* ---- queue ---- */

int spool_list(struct spool *sp, const char *queue, char ***names, size_t *n, struct err *e)
{
    char path[PATH_MAX];

    if (spool_sub(sp, path, sizeof path, "queue", queue, NULL) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    return dir_list_sorted(path, DIR_ONLY_FILES | DIR_NO_HIDDEN, names, n, e);
}

int spool_queues(struct spool *sp, char ***names, size_t *n, struct err *e)
{
    char path[PATH_MAX];

    if (spool_sub(sp, path, sizeof path, "queue", NULL, NULL) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    return dir_list_sorted(path, DIR_ONLY_DIRS | DIR_NO_HIDDEN, names, n, e);
}

void spool_names_free(char **names, size_t n)
{
    dir_list_free(names, n);
}

int spool_entry_path(struct spool *sp, const char *queue, const char *name, char *buf, size_t len)
{
    return spool_sub(sp, buf, len, "queue", queue, name);
}

int spool_is_queued(struct spool *sp, const char *queue, const char *name)
{
    char path[PATH_MAX];

    return spool_entry_path(sp, queue, name, path, sizeof path) == 0 && access(path, F_OK) == 0;
}

int spool_done(struct spool *sp, const char *queue, const char *name, struct err *e)
{
    char path[PATH_MAX], dir[PATH_MAX];

    if (spool_entry_path(sp, queue, name, path, sizeof path) < 0 ||
        spool_sub(sp, dir, sizeof dir, "queue", queue, NULL) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    if (unlink(path) < 0 && errno != ENOENT)
        return err_errno(e, ERR_IO, errno, "could not remove \"%s\" from the spool", path);
    return fsync_dir(dir, e);
}

uint64_t spool_conflicts(struct spool *sp, const char *queue)
{
    char dir[PATH_MAX], **names = NULL;
    size_t n = 0;

    if (spool_sub(sp, dir, sizeof dir, "conflicts", queue, NULL) < 0 ||
        dir_list_sorted(dir, DIR_NO_HIDDEN | DIR_ONLY_FILES, &names, &n, &(struct err)ERR_INIT) < 0)
        return 0;
    dir_list_free(names, n);
    return n;
}

#define SPOOL_ASIDE_MAX 1000

/* Moved, never over another copy set aside before under the name (a second
 * push of the name with other content, acknowledged too): that one was
 * replaced by rename() and lost.  The first keeps NAME, later ones NAME.N. */
int spool_set_aside(struct spool *sp, const char *queue, const char *name, char *kept, size_t kept_len,
                    struct err *e)
{
    char from[PATH_MAX], qdir[PATH_MAX], dir[PATH_MAX], to[PATH_MAX];
    unsigned n;

    if (spool_entry_path(sp, queue, name, from, sizeof from) < 0 ||
        spool_sub(sp, qdir, sizeof qdir, "queue", queue, NULL) < 0 ||
        spool_sub(sp, dir, sizeof dir, "conflicts", queue, NULL) < 0)
        return err_setf(e, ERR_IO, "spool path too long");
    if (mkdir_p(dir, 0700, e) < 0)
        return -1;
    for (n = 0;; n++) {
        if (n >= SPOOL_ASIDE_MAX)
            return err_setf(e, ERR_IO, "could not set \"%s\" aside: %s/%s.1 to .%u are taken", from, dir, name,
                            SPOOL_ASIDE_MAX - 1);
        if ((n == 0 ? snprintf(to, sizeof to, "%s/%s", dir, name)
                    : snprintf(to, sizeof to, "%s/%s.%u", dir, name, n)) >= (int)sizeof to)
            return err_setf(e, ERR_IO, "spool path too long");
        if (link(from, to) == 0)
            break;
        if (errno != EEXIST)
            return err_errno(e, ERR_IO, errno, "could not move \"%s\" to \"%s\"", from, to);
    }
    if (kept != NULL)
        strlcopy(kept, to, kept_len);
    if (fsync_dir(dir, e) < 0)
        return -1;
    if (unlink(from) < 0 && errno != ENOENT)
        return err_errno(e, ERR_IO, errno, "could not remove \"%s\" from the queue (set aside as \"%s\")", from,
                         to);
    return fsync_dir(qdir, e);
}

/* ---- locks ---- */

int spool_lock(struct spool *sp, const char *lockname, unsigned wait_ms, int *fd, struct err *e)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof path, "%s/%s", sp->dir, lockname) >= (int)sizeof path)
        return err_setf(e, ERR_IO, "spool path too long");
    /* never through a link: the holder's PID is written into the file */
    return lock_file_wait(path, wait_ms, fd, e);
}

void spool_unlock(int fd)
{
    lock_file_release(fd);
}
