#include "walfetch.h"
#include "walfetch_int.h"

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
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "note.h"
#include "repo.h"
#include "util.h"
#include "wal.h"

/* The region's identity must be the cluster's: learn the cluster from it
 * when it is not known yet. */
static int region_cluster(struct repo *r, struct cluster_info *ci, struct err *e)
{
    if (repo_ident_load(r, e) < 0)
        return -1;
    if (ci->sysid == 0) {
        ci->sysid = r->id.sysid;
        ci->pg_major = r->id.pg_major;
        ci->seg_size = r->id.seg_size;
        return 0;
    }
    return repo_ident_check(r, ci->sysid, e);
}


/* A segment's first page must say it is this segment of this cluster. */
int walfetch_check_header(int fd, const char *name, const struct cluster_info *ci, struct err *e)
{
    unsigned char buf[CLUSTER_WAL_LONG_HEADER_LEN];
    struct wal_long_header h;
    struct wal_name w;
    struct stat st;
    ssize_t n;

    if (wal_parse(name, &w, e) < 0)
        return -1;
    if (w.kind != WAL_SEGMENT && w.kind != WAL_PARTIAL)
        return 0;
    if (fstat(fd, &st) < 0)
        return err_errno(e, ERR_IO, errno, "could not stat the fetched %s", name);
    do
        n = pread(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return err_errno(e, ERR_IO, errno, "could not read the fetched %s", name);
    if (cluster_parse_wal_header(buf, (size_t)n, &h, e) < 0 ||
        cluster_check_segment(&h, name, (uint64_t)st.st_size, ci->sysid, ci->pg_major, e) < 0)
        return err_prefix(e, "the archived %s is not what its name says", name);
    return 0;
}

struct header_arg {
    const char *name;
    const struct cluster_info *ci;
};

static int check_fetched(int fd, void *arg, struct err *e)
{
    const struct header_arg *h = arg;

    return walfetch_check_header(fd, h->name, h->ci, e);
}

/* Decode region object wal/NAME into DEST via a temp file, checked first. */
static int fetch_from(struct repo *r, const char *name, const char *dest, const struct cluster_info *ci,
                      struct err *e)
{
    char key[REPO_KEY_MAX];
    struct header_arg ha = { name, ci };
    struct repo_file_check chk = { check_fetched, &ha, 1 };

    if (repo_key_wal(key, sizeof key, name) < 0)
        return err_setf(e, ERR_USAGE, "WAL file name too long: \"%s\"", name);
    return repo_get_to_file_checked(r, key, dest, &chk, e);
}

/* One region: 0 fetched, WALFETCH_MISSING a definite "not here", -1 failed. */
static int try_region(const struct config *conf, const struct region_conf *rc, const struct keyring *kr,
                      const struct note_sink *notes, const char *name, const char *dest, struct cluster_info *ci,
                      struct repo **slot, struct err *e)
{
    struct repo *r = slot != NULL ? *slot : NULL;
    int res = -1;

    if (r == NULL && repo_open(rc, conf, notes, kr, 0, &r, e) < 0)
        return -1;
    if (ci->sysid == 0 && region_cluster(r, ci, e) < 0)
        goto out;
    r->id.sysid = ci->sysid;    /* objects must be bound to the cluster being recovered */
    r->have_id = 1;
    if (fetch_from(r, name, dest, ci, e) == 0) {
        res = 0;
        goto out;
    }
    if (e->code != ERR_NOTFOUND)
        goto out;
    /* "not found" counts only from a region that is this cluster's
     * repository: not from an empty mount point or a wrong prefix */
    {
        struct err ie = ERR_INIT;

        if (region_cluster(r, ci, &ie) < 0) {
            *e = ie;
            goto out;
        }
    }
    res = WALFETCH_MISSING;
out:
    if (slot != NULL)
        *slot = r;      /* kept open: the next fetch reuses its connection */
    else
        repo_free(r);
    return res;
}

void walfetch_warm(const struct config *conf, const struct keyring *kr, const struct note_sink *notes, const int *order,
                   int n, struct cluster_info *ci, struct repo **cache)
{
    const struct region_conf *rc;
    struct err e = ERR_INIT;

    if (n <= 0 || cache[order[0]] != NULL)
        return;
    rc = &conf->regions[order[0]];
    if (repo_open(rc, conf, notes, kr, 0, &cache[order[0]], &e) == 0 && region_cluster(cache[order[0]], ci, &e) < 0) {
        repo_free(cache[order[0]]);
        cache[order[0]] = NULL;
    }
}

int walfetch_one(const struct config *conf, const struct keyring *kr, const struct note_sink *notes, const int *order,
                 int n, const char *name, const char *dest, struct cluster_info *ci, int *served_by, struct err *e)
{
    return walfetch_one_cached(conf, kr, notes, order, n, name, dest, ci, NULL, served_by, e);
}

int walfetch_one_cached(const struct config *conf, const struct keyring *kr, const struct note_sink *notes,
                        const int *order, int n, const char *name, const char *dest, struct cluster_info *ci,
                        struct repo **cache, int *served_by, struct err *e)
{
    struct err first = ERR_INIT;
    int i, missing = 0, failed = 0;

    for (i = 0; i < n; i++) {
        const struct region_conf *rc = &conf->regions[order[i]];
        struct err re = ERR_INIT;
        int res = try_region(conf, rc, kr, notes, name, dest, ci, cache != NULL ? &cache[order[i]] : NULL, &re);

        if (res == 0) {
            if (failed)
                note(notes, LOG_WARNING, "%s came from region %s after: %s", name, rc->name, first.msg);
            *served_by = order[i];
            return 0;
        }
        if (res == WALFETCH_MISSING) {
            missing++;
            note(notes, LOG_DEBUG, "region %s does not have %s", rc->name, name);
            continue;
        }
        failed++;
        note(notes, LOG_WARNING, "%s", re.msg);
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

int walfetch_prefetch_dir(const char *dest, char *buf, size_t len)
{
    const char *slash = strrchr(dest, '/');

    if (slash == NULL)
        return snprintf(buf, len, "%s", WALFETCH_PREFETCH_DIR) >= (int)len ? -1 : 0;
    return snprintf(buf, len, "%.*s/%s", (int)(slash - dest), dest, WALFETCH_PREFETCH_DIR) >= (int)len ? -1 : 0;
}

/* How far a prefetcher looks: it keeps `count` segments ready ahead of
 * recovery and follows it as it consumes them, up to this many per run,
 * and gives up once recovery has taken nothing for PREFETCH_IDLE_MS. */
#define PREFETCH_HORIZON 4096
#define PREFETCH_IDLE_MS 120000
#define PREFETCH_WORKERS_MAX 16

struct prefetch {
    const struct config *conf;
    const struct keyring *kr;
    const struct note_sink *notes;
    struct cluster_info ci;
    const int *order;
    int n;
    char dir[PATH_MAX];
    char (*names)[WAL_NAME_LEN + 1];
    unsigned char *done;        /* names[i] fetched (or found prefetched) */
    int total;                  /* names: PREFETCH_HORIZON */
    int count;                  /* the window: at most this many ready and not consumed */
    uint64_t seg_size;
    int base;                   /* names before it were consumed by recovery */
    int next;
    int stop;
    int first_missing;          /* index of the first name the archive lacks (total: none) */
    char name[WAL_NAME_MAX + 1];    /* the segment before names[0] */
    dev_t lock_dev;             /* the lock file it holds: a wiped and re-created */
    ino_t lock_ino;             /* directory is another restore's */
    uint64_t moved_ms;          /* when recovery last consumed one */
    pthread_mutex_t lock;
    struct repo **caches[PREFETCH_WORKERS_MAX];   /* each worker's connections, kept from window to window */
};

struct worker_arg {
    struct prefetch *p;
    struct repo **cache;
};

static int prefetched(const struct prefetch *p, int i)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof path, "%s/%s", p->dir, p->names[i]);
    return access(path, F_OK) == 0;
}

static void drop_prefetched(const struct prefetch *p, int i)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof path, "%s/%s", p->dir, p->names[i]);
    (void)unlink(path);
}

/* Whether the prefetch directory's file system (pg_wal's) has twice the
 * window free: the prefetcher never takes more than half the free space.
 * The rest is PostgreSQL's: replay extends relations, keeps the segments
 * it restored until a restartpoint, and starts the new timeline's segment;
 * a pg_wal filled by segments fetched ahead made it fail (ENOSPC) where
 * it would have finished without them. */
static int room_for_window(const struct prefetch *p)
{
    struct statvfs sv;

    if (statvfs(p->dir, &sv) < 0)
        return 1;   /* cannot tell: the fetch itself will */
    return (uint64_t)sv.f_bavail * sv.f_frsize >= 2 * (uint64_t)p->count * p->seg_size;
}

/* Under p->lock: the next index to fetch, or -1 to stop.  Waits (lock
 * released) while the window is full; recovery consuming a segment (its
 * file renamed away) moves the window. */
static int take_next(struct prefetch *p)
{
    for (;;) {
        int k;

        /* the newest one recovery took moves the window past it; older
         * ones still here were skipped (recovery fetched them itself
         * before they were ready): they go */
        for (k = p->next - 1; k >= p->base; k--)
            if (p->done[k] && !prefetched(p, k))
                break;
        if (k >= p->base) {
            for (; p->base < k; p->base++)
                if (p->done[p->base])
                    drop_prefetched(p, p->base);
            p->base = k + 1;
            p->moved_ms = now_ms();
        }
        if (p->stop || p->next >= p->total)
            return -1;
        if (p->next < p->base + p->count)
            return p->next++;
        if (now_ms() - p->moved_ms > PREFETCH_IDLE_MS) {
            p->stop = 1;        /* recovery stopped asking: promoted, paused, or gone */
            return -1;
        }
        pthread_mutex_unlock(&p->lock);
        usleep(20000);
        pthread_mutex_lock(&p->lock);
    }
}

static void *prefetch_worker(void *arg)
{
    struct prefetch *p = ((struct worker_arg *)arg)->p;
    struct repo **cache = ((struct worker_arg *)arg)->cache;

    for (;;) {
        char path[PATH_MAX + 64], tmpdest[PATH_MAX + 64];
        struct err e = ERR_INIT;
        struct cluster_info ci;
        int i, by, rc;

        pthread_mutex_lock(&p->lock);
        i = take_next(p);
        ci = p->ci;
        pthread_mutex_unlock(&p->lock);
        if (i < 0)
            break;
        snprintf(path, sizeof path, "%s/%s", p->dir, p->names[i]);
        if (!walfetch_dir_is_ours(p->dir, p->lock_dev, p->lock_ino)) {
            pthread_mutex_lock(&p->lock);
            p->stop = 1;
            pthread_mutex_unlock(&p->lock);
            break;
        }
        if (access(path, F_OK) == 0) {
            rc = 0;             /* an earlier prefetcher's */
        } else if (!room_for_window(p)) {
            rc = -1;            /* stop: the space left is PostgreSQL's */
        } else {
            /* fetch into a hidden name, then publish: a prefetched file is
             * visible only complete and verified.  One connection per
             * region and worker for the whole run: over a slow link a new
             * TLS connection costs a round trip or two. */
            snprintf(tmpdest, sizeof tmpdest, "%s/.%s.part", p->dir, p->names[i]);
            rc = walfetch_one_cached(p->conf, p->kr, p->notes, p->order, p->n, p->names[i], tmpdest, &ci, cache,
                                     &by, &e);
            if (rc == 0 && rename(tmpdest, path) < 0)
                rc = -1;
            if (rc != 0)
                unlink(tmpdest);
        }
        pthread_mutex_lock(&p->lock);
        if (rc == 0) {
            p->done[i] = 1;
        } else {
            p->stop = 1;    /* end of the archive, or trouble: wal-fetch will see for itself */
            if (rc == WALFETCH_MISSING && i < p->first_missing)
                p->first_missing = i;
        }
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

/* Write ".end" (is_last_before_end) when the archive lacked a name, and
 * every name before it is there: the last segment before that gap. */
static void note_end(const struct prefetch *p)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    const char *last;
    int fd, i;

    if (p->first_missing >= p->total || !walfetch_dir_is_ours(p->dir, p->lock_dev, p->lock_ino))
        return;
    for (i = 0; i < p->first_missing; i++)
        if (!p->done[i])
            return;     /* a hole before it: no single "last" segment */
    last = p->first_missing == 0 ? p->name : p->names[p->first_missing - 1];
    snprintf(path, sizeof path, "%s/.end", p->dir);
    snprintf(tmp, sizeof tmp, "%s/.end.tmp", p->dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    i = write_all(fd, last, strlen(last));
    if (close(fd) == 0 && i == 0)
        (void)rename(tmp, path);
    else
        unlink(tmp);
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

/* Open the window on the segments after NAME (of its timeline): nothing
 * prefetched yet, nothing consumed. */
static void open_window(struct prefetch *p, const char *name, const struct wal_name *w, uint64_t seg_size)
{
    uint64_t segno = wal_segno(w, seg_size);
    char path[PATH_MAX + 16];

    snprintf(p->name, sizeof p->name, "%s", name);
    for (int i = 0; i < p->total; i++)
        wal_segment_name(w->tli, segno + 1 + (uint64_t)i, seg_size, p->names[i]);
    memset(p->done, 0, (size_t)p->total);
    p->base = p->next = p->stop = 0;
    p->first_missing = p->total;
    p->moved_ms = now_ms();
    /* the last window's end is not the archive's end any more */
    snprintf(path, sizeof path, "%s/.end", p->dir);
    (void)unlink(path);
    prefetch_sweep(p->dir, name);
}

/* One window: `nt` workers (at most PREFETCH_WORKERS_MAX) until it closes. */
static void run_window(struct prefetch *p, int nt)
{
    struct worker_arg args[PREFETCH_WORKERS_MAX];
    pthread_t threads[PREFETCH_WORKERS_MAX];
    int i, started = 0;

    for (i = 0; i < nt; i++) {
        args[i].p = p;
        args[i].cache = p->caches[i];
        if (pthread_create(&threads[started], NULL, prefetch_worker, &args[i]) == 0)
            started++;
    }
    for (i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

/* After a window closed: wait for the question server to report that the
 * archive has grown (into next: 1) or to leave (0). */
static int await_growth(struct prefetch_ctl *ctl, uint64_t started_ms, char next[WAL_NAME_MAX + 1])
{
    int grown = 0;

    pthread_mutex_lock(&ctl->lock);
    ctl->workers_done = 1;
    while (!ctl->ended && ctl->grown[0] == '\0')
        pthread_cond_wait(&ctl->changed, &ctl->lock);
    if (!ctl->ended) {
        snprintf(next, WAL_NAME_MAX + 1, "%s", ctl->grown);
        ctl->grown[0] = '\0';
        ctl->workers_done = 0;
        ctl->follow = now_ms() - started_ms < WALFETCH_FOLLOW_MS;
        grown = 1;
    }
    pthread_mutex_unlock(&ctl->lock);
    return grown;
}

/* Take the prefetch directory's lock: its fd, or -1 (a prefetcher is at
 * work there already, or no directory). */
static int lock_dir(const char *dir, dev_t *dev, ino_t *ino)
{
    char lockpath[PATH_MAX + 16];
    struct stat lst;
    int fd;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    /* a real directory of ours, not a link planted to point elsewhere:
     * the sweep deletes what it finds in it */
    if (lstat(dir, &lst) < 0 || !S_ISDIR(lst.st_mode) || lst.st_uid != geteuid())
        return -1;
    snprintf(lockpath, sizeof lockpath, "%s/.lock", dir);
    fd = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || fstat(fd, &lst) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    lock_note_holder(fd);   /* who prefetches, for the operator */
    *dev = lst.st_dev;
    *ino = lst.st_ino;
    return fd;
}

void walfetch_prefetch(const struct config *conf, const struct keyring *kr, const struct note_sink *notes,
                       const int *order, int n, const struct cluster_info *ci, const char *name, const char *dest,
                       uint64_t seg_size, int count, int parallel)
{
    struct prefetch p;
    struct ask_server ask;
    struct prefetch_ctl ctl;
    pthread_t asker;
    struct wal_name w;
    struct err e = ERR_INIT;
    char next[WAL_NAME_MAX + 1];
    uint64_t started_ms = now_ms();
    int i, asking, lockfd;

    if (count <= 0 || !wal_seg_size_valid(seg_size) || wal_parse(name, &w, &e) < 0 || w.kind != WAL_SEGMENT)
        return;
    memset(&p, 0, sizeof p);
    memset(&ask, 0, sizeof ask);
    memset(&ctl, 0, sizeof ctl);
    if (walfetch_prefetch_dir(dest, p.dir, sizeof p.dir) < 0 ||
        (lockfd = lock_dir(p.dir, &p.lock_dev, &p.lock_ino)) < 0)
        return;
    ask.lock_dev = p.lock_dev;
    ask.lock_ino = p.lock_ino;
    walfetch_fingerprint(conf, order, n, ask.fingerprint);
    p.conf = conf;
    p.kr = kr;
    p.notes = notes;
    p.ci = *ci;
    p.order = order;
    p.n = n;
    p.count = count;
    p.seg_size = seg_size;
    p.total = PREFETCH_HORIZON;
    p.names = calloc((size_t)p.total, sizeof *p.names);
    p.done = calloc((size_t)p.total, 1);
    if (p.names == NULL || p.done == NULL)
        goto out;
    if (parallel > PREFETCH_WORKERS_MAX)
        parallel = PREFETCH_WORKERS_MAX;
    for (i = 0; i < parallel; i++)
        p.caches[i] = calloc((size_t)conf->nregions + 1, sizeof *p.caches[i]);   /* NULL: connect per fetch */
    pthread_mutex_init(&p.lock, NULL);
    pthread_mutex_init(&ctl.lock, NULL);
    pthread_cond_init(&ctl.changed, NULL);
    ctl.follow = 1;
    /* one thread answers wal-fetch's questions (walfetch_ask.c) */
    ask.conf = conf;
    ask.kr = kr;
    ask.notes = notes;
    ask.order = order;
    ask.n = n;
    ask.ci = *ci;
    ask.dir = p.dir;
    ask.ctl = &ctl;
    open_window(&p, name, &w, seg_size);
    asking = pthread_create(&asker, NULL, walfetch_ask_serve, &ask) == 0;
    for (;;) {
        run_window(&p, parallel);
        note_end(&p);
        /* a standby: the archive grows a segment at a time, and the window
         * opens again from the one a question found */
        if (!asking || !await_growth(&ctl, started_ms, next) || wal_parse(next, &w, &e) < 0)
            break;
        open_window(&p, next, &w, seg_size);
    }
    if (asking) {
        pthread_mutex_lock(&ctl.lock);
        ctl.workers_done = 1;
        ctl.follow = 0;
        pthread_mutex_unlock(&ctl.lock);
        pthread_join(asker, NULL);
    }
    pthread_cond_destroy(&ctl.changed);
    pthread_mutex_destroy(&ctl.lock);
    pthread_mutex_destroy(&p.lock);
    for (i = 0; i < parallel; i++) {
        for (int k = 0; p.caches[i] != NULL && k < conf->nregions; k++)
            repo_free(p.caches[i][k]);
        free(p.caches[i]);
    }
out:
    free(p.names);
    free(p.done);
    lock_clear_holder(lockfd);
    close(lockfd);
}
