#include "walfetch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archiver.h"
#include "log.h"
#include "stor.h"
#include "util.h"
#include "wal.h"

/* Decode region object wal/NAME into DEST via a temp file. */
static int fetch_from(struct stor *s, const struct keyring *kr, const char *name, const char *dest, struct err *e)
{
    char key[128];

    snprintf(key, sizeof key, "wal/%s", name);
    return archive_fetch_to_file(s, key, kr, dest, e);
}

int walfetch_one(const struct config *conf, const struct keyring *kr, const int *order, int n, const char *name,
                 const char *dest, int *served_by, struct err *e)
{
    struct err first = ERR_INIT;
    int i, missing = 0, failed = 0;

    for (i = 0; i < n; i++) {
        const struct region_conf *rc = &conf->regions[order[i]];
        struct stor *s = NULL;
        struct err re = ERR_INIT;

        if (stor_open(rc, conf, &s, &re) == 0 && fetch_from(s, kr, name, dest, &re) == 0) {
            stor_free(s);
            if (failed)
                log_warning("%s came from region %s after: %s", name, rc->name, first.msg);
            *served_by = order[i];
            return 0;
        }
        stor_free(s);
        if (re.code == ERR_NOTFOUND) {
            missing++;
            log_debug("region %s does not have %s", rc->name, name);
            continue;
        }
        failed++;
        log_warning("%s", re.msg);
        if (first.code == ERR_OK)
            first = re;
    }
    if (failed == 0 && missing == n) {
        err_setf(e, ERR_NOTFOUND, "%s is not in the archive of any region (%d consulted)", name, n);
        return WALFETCH_MISSING;
    }
    if (failed == 1)
        *e = first;
    else
        err_setf(e, first.code, "%s could not be fetched: %d regions failed, %d do not have it; first: %s", name,
                 failed, missing, first.msg);
    return -1;
}

static int prefetch_dir_of(const char *dest, char *buf, size_t len)
{
    const char *slash = strrchr(dest, '/');

    if (slash == NULL)
        return snprintf(buf, len, "%s", WALFETCH_PREFETCH_DIR) >= (int)len ? -1 : 0;
    return snprintf(buf, len, "%.*s/%s", (int)(slash - dest), dest, WALFETCH_PREFETCH_DIR) >= (int)len ? -1 : 0;
}

int walfetch_from_prefetch(const char *name, const char *dest, unsigned wait_ms, struct err *e)
{
    char dir[PATH_MAX], path[PATH_MAX], part[PATH_MAX];
    uint64_t deadline = now_ms() + wait_ms;

    if (prefetch_dir_of(dest, dir, sizeof dir) < 0 ||
        snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(part, sizeof part, "%s/.%s.part", dir, name) >= (int)sizeof part)
        return 0;
    for (;;) {
        if (rename(path, dest) == 0)
            return 1;
        if (errno != ENOENT)
            return err_errno(e, ERR_IO, errno, "could not move prefetched \"%s\" to \"%s\"", path, dest);
        /* being prefetched right now: waiting beats downloading it twice */
        if (access(part, F_OK) != 0 || now_ms() >= deadline)
            return 0;
        usleep(10000);
    }
}

struct prefetch {
    const struct config *conf;
    const struct keyring *kr;
    const int *order;
    int n;
    char dir[PATH_MAX];
    char (*names)[WAL_NAME_LEN + 1];
    int count;
    int next;
    int stop;
    pthread_mutex_t lock;
};

static void *prefetch_worker(void *arg)
{
    struct prefetch *p = arg;

    for (;;) {
        char path[PATH_MAX + 64], tmpdest[PATH_MAX + 64];
        struct err e = ERR_INIT;
        int i, by, rc;

        pthread_mutex_lock(&p->lock);
        i = p->stop ? p->count : p->next++;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->count)
            return NULL;
        snprintf(path, sizeof path, "%s/%s", p->dir, p->names[i]);
        if (access(path, F_OK) == 0)
            continue;
        /* fetch into a hidden name, then publish: a prefetched file is
         * visible only complete and verified */
        snprintf(tmpdest, sizeof tmpdest, "%s/.%s.part", p->dir, p->names[i]);
        rc = walfetch_one(p->conf, p->kr, p->order, p->n, p->names[i], tmpdest, &by, &e);
        if (rc == 0) {
            if (rename(tmpdest, path) < 0)
                unlink(tmpdest);
            continue;
        }
        unlink(tmpdest);
        pthread_mutex_lock(&p->lock);
        p->stop = 1;    /* end of the archive, or trouble: wal-fetch will see for itself */
        pthread_mutex_unlock(&p->lock);
    }
}

/* Drop prefetched files that recovery has passed or that are stale. */
static void prefetch_sweep(const char *dir, const char *current)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    time_t now = time(NULL);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcmp(de->d_name, ".lock") == 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0)
            continue;
        if (now - st.st_mtime > 600 ||
            (de->d_name[0] != '.' && strncmp(de->d_name, current, 8) == 0 && strcmp(de->d_name, current) < 0))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

void walfetch_prefetch(const struct config *conf, const struct keyring *kr, const int *order, int n,
                       const char *name, const char *dest, uint64_t seg_size, int count, int parallel)
{
    struct prefetch p;
    pthread_t threads[16];
    char lockpath[PATH_MAX + 16];
    struct wal_name w;
    struct err e = ERR_INIT;
    int i, nt = 0, lockfd;

    if (count <= 0 || !wal_seg_size_valid(seg_size) || wal_parse(name, &w, &e) < 0 || w.kind != WAL_SEGMENT)
        return;
    memset(&p, 0, sizeof p);
    if (prefetch_dir_of(dest, p.dir, sizeof p.dir) < 0)
        return;
    if (mkdir(p.dir, 0700) < 0 && errno != EEXIST)
        return;
    snprintf(lockpath, sizeof lockpath, "%s/.lock", p.dir);
    lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (lockfd >= 0)
            close(lockfd);
        return;     /* a prefetcher is already at work */
    }
    prefetch_sweep(p.dir, name);
    p.conf = conf;
    p.kr = kr;
    p.order = order;
    p.n = n;
    p.count = count;
    p.names = calloc((size_t)count, sizeof *p.names);
    if (p.names == NULL)
        goto out;
    {
        uint64_t segno = wal_segno(&w, seg_size);

        for (i = 0; i < count; i++)
            wal_segment_name(w.tli, segno + 1 + (uint64_t)i, seg_size, p.names[i]);
    }
    pthread_mutex_init(&p.lock, NULL);
    if (parallel > 16)
        parallel = 16;
    for (i = 0; i < parallel; i++)
        if (pthread_create(&threads[nt], NULL, prefetch_worker, &p) == 0)
            nt++;
    for (i = 0; i < nt; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&p.lock);
out:
    free(p.names);
    close(lockfd);
}
