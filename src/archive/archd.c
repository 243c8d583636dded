/*
 * archd — the body of the local archiver process (archd.h).
 *
 * `parallel` worker threads share one list of .ready segments, oldest
 * first, rescanned whenever it runs dry; each keeps its own archiver (its
 * own region connections, opened once, the identity checked once by the
 * main archiver).  A segment is pushed under its claim lock and marked
 * pushed (with this process's tag) only when the push succeeded and the
 * file's identity was the same before and after it was read: the marker is
 * the only thing wal-push trusts, and it is written after the file is
 * durable everywhere, so a kill -9 at any point acknowledges nothing that
 * is not stored.  The main thread watches archive_status (inotify), the
 * stop conditions and the idle time, and removes markers whose segment
 * PostgreSQL has marked done.
 */
#include "archd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archd_int.h"
#include "archiver.h"
#include "util.h"
#include "wal.h"
#include "wal_push.h"

#define ARCHD_SKIP_MAX 64
#define ARCHD_FAIL_BACKOFF_MS 2000
#define ARCHD_BUSY_BACKOFF_MS 200
#define ARCHD_GC_MS 2000

struct archd;

struct archd_worker {
    struct archd *d;
    pthread_t th;
    int started;
    char cur[WAL_NAME_MAX];     /* the name being pushed, "" when none (under d->lock) */
    struct archiver a;
    int open;
};

struct archd_skip {
    char name[WAL_NAME_MAX];
    uint64_t until;
};

struct archd {
    const struct config *c;
    const struct keyring *kr;
    struct spool *sp;
    const char *tag;
    const struct note_sink *notes;
    char waldir[PATH_MAX], statusdir[PATH_MAX];
    struct archiver main;
    pthread_mutex_t lock;       /* everything below */
    pthread_cond_t cv;
    char **names;
    size_t n, next;
    struct archd_skip skip[ARCHD_SKIP_MAX];     /* failed or busy names, retried later */
    struct archd_worker w[WAL_PUSH_MAX_THREADS];
    int nw, stop;
    sem_t encode_slots, commit_slots;   /* `parallel` of each (archiver.h) */
    uint64_t last_work;
    unsigned long pushed, failed;
};

static int in_flight(struct archd *d, const char *name)
{
    int i;

    for (i = 0; i < d->nw; i++)
        if (strcmp(d->w[i].cur, name) == 0)
            return 1;
    return 0;
}

static int skipped(struct archd *d, const char *name, uint64_t now)
{
    int i;

    for (i = 0; i < ARCHD_SKIP_MAX; i++)
        if (d->skip[i].until > now && strcmp(d->skip[i].name, name) == 0)
            return 1;
    return 0;
}

static void skip_for(struct archd *d, const char *name, uint64_t ms)
{
    uint64_t now = now_ms();
    int i, at = 0;

    for (i = 0; i < ARCHD_SKIP_MAX; i++) {
        if (strcmp(d->skip[i].name, name) == 0 || d->skip[i].until <= now) {
            at = i;
            break;
        }
        if (d->skip[i].until < d->skip[at].until)
            at = i;
    }
    snprintf(d->skip[at].name, sizeof d->skip[at].name, "%s", name);
    d->skip[at].until = now + ms;
}

/* Under d->lock: the next segment to push into w->cur; 0 when stopping. */
static int next_name(struct archd *d, struct archd_worker *w)
{
    int rescanned = 0;

    for (;;) {
        uint64_t now = now_ms();

        if (d->stop)
            return 0;
        while (d->next < d->n) {
            const char *name = d->names[d->next++];

            if (in_flight(d, name) || skipped(d, name, now) || spool_has_marker(d->sp, name) ||
                archd_acked(d->sp, name, NULL, NULL) >= 0)
                continue;
            snprintf(w->cur, sizeof w->cur, "%s", name);
            return 1;
        }
        if (!rescanned) {
            spool_names_free(d->names, d->n);
            d->names = NULL;
            d->n = d->next = 0;
            wal_push_ready(d->statusdir, "", SIZE_MAX, &d->names, &d->n);
            rescanned = 1;
            continue;
        }
        {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&d->cv, &d->lock, &ts);
        }
        rescanned = 0;
    }
}

/* Push one segment as push-ahead does; the marker only after success with
 * the file unchanged from before it was read to after.  0 when there was
 * nothing to do (claimed elsewhere, archived meanwhile, or a .ready whose
 * segment is gone: PostgreSQL removes such an orphan itself, and it must
 * not keep the process from ever being idle), 1 when it pushed or tried. */
static int push_one(struct archd *d, struct archd_worker *w, const char *name, int alone)
{
    struct archive_report rep;
    struct stat before, after;
    char path[PATH_MAX], ready[PATH_MAX], claim[WAL_NAME_MAX + 8];
    struct err e = ERR_INIT;
    int lockfd = -1, ok;

    snprintf(claim, sizeof claim, "claims/%s", name);
    if (spool_lock(d->sp, claim, 0, &lockfd, &e) != 1) {
        pthread_mutex_lock(&d->lock);
        skip_for(d, name, ARCHD_BUSY_BACKOFF_MS);   /* a wal-push pushes it itself */
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    if (snprintf(ready, sizeof ready, "%s/%s.ready", d->statusdir, name) >= (int)sizeof ready ||
        snprintf(path, sizeof path, "%s/%s", d->waldir, name) >= (int)sizeof path || access(ready, F_OK) != 0 ||
        spool_has_marker(d->sp, name) || archd_acked(d->sp, name, NULL, NULL) >= 0) {
        archd_release_claim(d->sp, name, lockfd);
        return 0;   /* archived meanwhile */
    }
    if (stat(path, &before) < 0 && errno == ENOENT) {
        archd_release_claim(d->sp, name, lockfd);
        pthread_mutex_lock(&d->lock);
        skip_for(d, name, ARCHD_FAIL_BACKOFF_MS);
        pthread_mutex_unlock(&d->lock);
        return 0;   /* an orphan .ready: no segment to push */
    }
    if (!w->open) {
        if (archiver_open(d->c, d->kr, d->notes, d->sp, &d->main.cluster, &d->main, &w->a, &e) < 0) {
            archd_mark_failed(d->sp, name, e.msg);
            archd_release_claim(d->sp, name, lockfd);
            return 1;
        }
        w->open = 1;
        w->a.encode_slots = &d->encode_slots;
        w->a.commit_slots = &d->commit_slots;
    }
    w->a.zstd_workers = alone ? d->c->parallel : 0;
    ok = stat(path, &before) == 0 && archive_push_file(&w->a, path, name, &rep, &e) == 0 &&
         stat(path, &after) == 0 && spool_same_file(&before, &after) &&
         spool_mark_pushed_tag(d->sp, name, rep.sha256_hex, &after, d->tag, &e) == 0;
    pthread_mutex_lock(&d->lock);
    if (ok) {
        d->pushed++;
    } else {
        d->failed++;
        skip_for(d, name, ARCHD_FAIL_BACKOFF_MS);
    }
    pthread_mutex_unlock(&d->lock);
    if (ok) {
        archd_unmark_failed(d->sp, name);
        note(d->notes, LOG_INFO, "archived %s", name);
    } else {
        if (e.code == ERR_OK)
            err_setf(&e, ERR_IO, "\"%s\" changed while it was being archived", path);
        archd_mark_failed(d->sp, name, e.msg);
        note(d->notes, LOG_WARNING, "could not archive %s (wal-push will push it itself): %s", name, e.msg);
        /* new connections for the next one */
        archiver_close(&w->a);
        w->open = 0;
    }
    archd_release_claim(d->sp, name, lockfd);
    return 1;
}

static void *worker_main(void *arg)
{
    struct archd_worker *w = arg;
    struct archd *d = w->d;

    for (;;) {
        char name[WAL_NAME_MAX];
        int alone, worked;

        pthread_mutex_lock(&d->lock);
        if (!next_name(d, w)) {
            pthread_mutex_unlock(&d->lock);
            break;
        }
        snprintf(name, sizeof name, "%s", w->cur);
        alone = d->next >= d->n;
        pthread_mutex_unlock(&d->lock);
        worked = push_one(d, w, name, alone);
        pthread_mutex_lock(&d->lock);
        w->cur[0] = '\0';
        if (worked)
            d->last_work = now_ms();
        pthread_mutex_unlock(&d->lock);
    }
    if (w->open)
        archiver_close(&w->a);
    return NULL;
}

/* Markers whose segment is no longer .ready (PostgreSQL marked it done). */
static void gc_markers(struct archd *d)
{
    char dir[PATH_MAX], ready[PATH_MAX], p[PATH_MAX];
    struct dirent *de;
    DIR *dd;

    if (snprintf(dir, sizeof dir, "%s/pushed", spool_dir(d->sp)) >= (int)sizeof dir || (dd = opendir(dir)) == NULL)
        return;
    while ((de = readdir(dd)) != NULL) {
        size_t len = strcspn(de->d_name, ".");

        if (de->d_name[0] == '.' || len >= WAL_NAME_MAX)
            continue;
        if (snprintf(ready, sizeof ready, "%s/%.*s.ready", d->statusdir, (int)len, de->d_name) >=
                (int)sizeof ready ||
            access(ready, F_OK) == 0 || errno != ENOENT)
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) < (int)sizeof p)
            unlink(p);
    }
    closedir(dd);
}

/* Start the workers; the main thread watches. */
static int run_workers(struct archd *d)
{
    struct archd_watch wt;
    uint64_t idle_ms = d->c->archive_async_idle * 1000, last_gc = 0;
    int i, ifd;

    ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd >= 0 && inotify_add_watch(ifd, d->statusdir, IN_CREATE | IN_MOVED_TO) < 0) {
        close(ifd);
        ifd = -1;
    }
    archd_watch_init(&wt, d->c, d->kr);
    d->last_work = now_ms();
    /* twice `parallel` threads, at most `parallel` encoding and at most
     * `parallel` committing at once: encoding goes on while uploads and
     * fsyncs wait (docs/WAL.md) */
    d->nw = 2 * d->c->parallel < WAL_PUSH_MAX_THREADS ? 2 * d->c->parallel : WAL_PUSH_MAX_THREADS;
    note(d->notes, LOG_INFO, "archiver process %ld serving %s with %d workers, %d encoding and %d committing at once",
         (long)getpid(), d->waldir, d->nw, d->c->parallel, d->c->parallel);
    for (i = 0; i < d->nw; i++) {
        d->w[i].d = d;
        d->w[i].started = pthread_create(&d->w[i].th, NULL, worker_main, &d->w[i]) == 0;
    }
    for (;;) {
        struct pollfd pfd = { ifd, POLLIN, 0 };
        char buf[4096];
        uint64_t now;
        int busy = 0;

        if (ifd >= 0 && poll(&pfd, 1, 200) > 0)
            while (read(ifd, buf, sizeof buf) > 0)
                ;
        else if (ifd < 0)
            usleep(20000);
        now = now_ms();
        if (now - last_gc >= ARCHD_GC_MS) {
            gc_markers(d);
            last_gc = now;
        }
        pthread_mutex_lock(&d->lock);
        for (i = 0; i < d->nw; i++)
            busy |= d->w[i].cur[0] != '\0';
        if (archd_watch_changed(&wt, d->sp)) {
            note(d->notes, LOG_INFO, "archiver process: binary or configuration changed, or asked to stop");
            d->stop = 1;
        } else if (!busy && now - d->last_work >= idle_ms) {
            d->stop = 1;
        }
        pthread_cond_broadcast(&d->cv);
        i = d->stop;
        pthread_mutex_unlock(&d->lock);
        if (i)
            break;
    }
    for (i = 0; i < d->nw; i++)
        if (d->w[i].started)
            pthread_join(d->w[i].th, NULL);
    if (ifd >= 0)
        close(ifd);
    return 0;
}

int archd_run(const struct config *c, const struct keyring *kr, struct spool *sp, const struct repo_ident *want,
              const char *waldir, const char *tag, const struct note_sink *notes, struct err *e)
{
    struct archd *d;
    int lockfd = -1, got, i, rc = -1;

    got = spool_lock(sp, ARCHD_LOCK, 500, &lockfd, e);
    if (got <= 0)
        return got;     /* another one runs */
    if (archd_write_id(sp, waldir, tag, e) < 0) {
        spool_unlock(lockfd);
        return -1;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL) {
        spool_unlock(lockfd);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    d->c = c;
    d->kr = kr;
    d->sp = sp;
    d->tag = tag;
    d->notes = notes;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (snprintf(d->waldir, sizeof d->waldir, "%s", waldir) >= (int)sizeof d->waldir ||
        snprintf(d->statusdir, sizeof d->statusdir, "%s/archive_status", waldir) >= (int)sizeof d->statusdir) {
        err_setf(e, ERR_IO, "WAL directory path too long");
        goto out;
    }
    /* every region's identity once; the workers share the verdict */
    if (archiver_open(c, kr, notes, sp, want, NULL, &d->main, e) < 0)
        goto out;
    for (i = 0; i < c->nregions; i++)
        if (d->main.bad[i]) {
            *e = d->main.bad_err[i];
            err_prefix(e, "archiver process: region %s", c->regions[i].name);
            goto out;   /* wal-push pushes itself and reports it */
        }
    sem_init(&d->encode_slots, 0, (unsigned)c->parallel);
    sem_init(&d->commit_slots, 0, (unsigned)c->parallel);
    run_workers(d);
    sem_destroy(&d->encode_slots);
    sem_destroy(&d->commit_slots);
    note(notes, LOG_INFO, "archiver process %ld exits: %lu archived, %lu failed", (long)getpid(), d->pushed,
         d->failed);
    rc = 0;
out:
    archiver_close(&d->main);
    spool_names_free(d->names, d->n);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->lock);
    free(d);
    spool_unlock(lockfd);
    return rc;
}
