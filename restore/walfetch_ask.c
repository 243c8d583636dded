/*
 * walfetch_ask — a restore_command call that misses the prefetch directory
 * hands its question to the running prefetcher instead of connecting on its
 * own (walfetch.h).
 *
 * Why: over a slow link the misses are what recovery waits for.  The drill
 * (70 ms round trip) showed each of them as a new process making a TCP and
 * TLS connection, reading the repository identity and asking for the
 * object: 0.25-0.5 s for every "is there a 00000002.history?" at start and
 * at promotion, and for the end of the archive.  The prefetcher has a
 * connection open and the identity read; it answers in two requests.
 *
 * The protocol is files in the prefetch directory (mode 0700, the server's
 * user only): the caller removes any old answer and creates ".ask-NAME";
 * the prefetcher removes the question, fetches NAME afresh (never from what
 * it learnt before the question: a "no" is as live as the caller's own),
 * and answers with NAME itself (decoded and verified, as every prefetched
 * file), ".absent-NAME" (every region answered "no such object", each
 * after its identity was read again: an emptied or substituted region is a
 * failure, never the end of the archive) or ".failed-NAME".  The caller
 * waits while the prefetcher holds its lock and up to wait_ms; on failure,
 * no answer or no prefetcher it fetches NAME itself, so an error is
 * reported by the call that meets it, with its own message.
 */
#include "walfetch.h"
#include "walfetch_int.h"

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
#include "util.h"
#include "wal.h"

#define ASK_PREFIX ".ask-"
#define ABSENT_PREFIX ".absent-"
#define FAILED_PREFIX ".failed-"
#define ASK_POLL_US 3000
#define SERVE_POLL_US 5000

/* Does a prefetcher hold the directory's lock? */
static int prefetcher_alive(const char *dir)
{
    char path[PATH_MAX];
    int fd, alive;

    if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    close(fd);
    return alive;
}

static int dir_path(char *buf, size_t len, const char *dir, const char *prefix, const char *name)
{
    return snprintf(buf, len, "%s/%s%s", dir, prefix, name) >= (int)len ? -1 : 0;
}

int walfetch_ask(const char *name, const char *dest, unsigned wait_ms, struct err *e)
{
    char dir[PATH_MAX], ask[PATH_MAX + 64], absent[PATH_MAX + 64], failed[PATH_MAX + 64], got[PATH_MAX + 64];
    uint64_t deadline = now_ms() + wait_ms;
    struct wal_name w;
    int fd, rc = 0;

    if (wal_parse(name, &w, &(struct err)ERR_INIT) < 0 || walfetch_prefetch_dir(dest, dir, sizeof dir) < 0 ||
        dir_path(ask, sizeof ask, dir, ASK_PREFIX, name) < 0 ||
        dir_path(absent, sizeof absent, dir, ABSENT_PREFIX, name) < 0 ||
        dir_path(failed, sizeof failed, dir, FAILED_PREFIX, name) < 0 || dir_path(got, sizeof got, dir, "", name) < 0)
        return 0;
    if (!prefetcher_alive(dir))
        return 0;
    (void)unlink(absent);
    (void)unlink(failed);
    if ((fd = open(ask, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        return 0;
    close(fd);
    for (;;) {
        if (access(got, F_OK) == 0) {
            rc = walfetch_from_prefetch(name, dest, 0, e);
            break;
        }
        if (access(absent, F_OK) == 0) {
            err_setf(e, ERR_NOTFOUND, "%s is not in the archive of any region (answered by the prefetcher)", name);
            rc = WALFETCH_ASK_MISSING;
            break;
        }
        if (access(failed, F_OK) == 0 || now_ms() >= deadline || !prefetcher_alive(dir))
            break;
        usleep(ASK_POLL_US);
    }
    (void)unlink(ask);
    (void)unlink(absent);
    (void)unlink(failed);
    return rc;
}

/* Answer one question: 1 when NAME was a segment found in the archive. */
static int answer(struct ask_server *s, const char *name)
{
    char tmp[PATH_MAX + 64], path[PATH_MAX + 64], mark[PATH_MAX + 64];
    struct cluster_info ci = s->ci;
    struct err e = ERR_INIT;
    struct wal_name w;
    int by, rc, fd;

    if (dir_path(tmp, sizeof tmp, s->dir, ".answer-", name) < 0 || dir_path(path, sizeof path, s->dir, "", name) < 0)
        return 0;
    rc = walfetch_one_cached(s->conf, s->kr, s->notes, s->order, s->n, name, tmp, &ci, s->cache, &by, &e);
    if (rc == 0 && rename(tmp, path) == 0)
        return wal_parse(name, &w, &e) == 0 && w.kind == WAL_SEGMENT;
    (void)unlink(tmp);
    if (dir_path(mark, sizeof mark, s->dir, rc == WALFETCH_MISSING ? ABSENT_PREFIX : FAILED_PREFIX, name) < 0)
        return 0;
    if ((fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0)
        close(fd);
    return 0;
}

/* The questions waiting in the directory, answered in name order is not
 * needed: PostgreSQL asks one at a time.  Returns how many were answered,
 * and sets *found_segment when one of them was a segment that exists. */
static int serve_round(struct ask_server *s, int *found_segment)
{
    DIR *d = opendir(s->dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char name[WAL_NAME_MAX + 1], path[PATH_MAX + 64];
        struct wal_name w;

        if (strncmp(de->d_name, ASK_PREFIX, strlen(ASK_PREFIX)) != 0 ||
            strlen(de->d_name + strlen(ASK_PREFIX)) > WAL_NAME_MAX)
            continue;
        snprintf(name, sizeof name, "%s", de->d_name + strlen(ASK_PREFIX));
        if (wal_parse(name, &w, &(struct err)ERR_INIT) < 0 || dir_path(path, sizeof path, s->dir, ASK_PREFIX, name) < 0)
            continue;
        (void)unlink(path);     /* taken: an answer follows the question */
        if (answer(s, name))
            *found_segment = 1;
        n++;
    }
    closedir(d);
    return n;
}

void *walfetch_ask_serve(void *arg)
{
    struct ask_server *s = arg;
    uint64_t last = now_ms();

    s->cache = calloc((size_t)s->conf->nregions + 1, sizeof *s->cache);
    if (s->cache == NULL)
        return NULL;
    /* connect and read the identity now: the first question (PostgreSQL
     * asks for the next timeline's history before anything) finds a
     * connection ready */
    walfetch_warm(s->conf, s->kr, s->notes, s->order, s->n, &s->ci, s->cache);
    for (;;) {
        int found = 0, done;

        if (serve_round(s, &found) > 0)
            last = now_ms();
        pthread_mutex_lock(s->lock);
        done = *s->workers_done;
        pthread_mutex_unlock(s->lock);
        /* once the window is closed, the archive growing is news for a new
         * prefetcher (the next wal-fetch starts it): this one goes */
        if (done && (found || now_ms() - last > WALFETCH_ASK_IDLE_MS))
            break;
        usleep(SERVE_POLL_US);
    }
    for (int k = 0; k < s->conf->nregions; k++)
        repo_free(s->cache[k]);
    free(s->cache);
    s->cache = NULL;
    return NULL;
}
