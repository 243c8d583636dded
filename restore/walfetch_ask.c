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
 * connection open; it answers in two requests.
 *
 * The protocol is files in the prefetch directory (mode 0700, the server's
 * user only), each question with a token of its own:
 *   - the prefetcher touches ".serving" at least every few milliseconds
 *     while it answers; a call asks only when it is fresh;
 *   - the call writes ".ask-TOKEN" (atomically): NAME, the system
 *     identifier of the cluster it recovers (pg_control) and the
 *     fingerprint of its configuration's regions and key;
 *   - the prefetcher claims a question by removing it (the one whose
 *     unlink succeeds), and answers only a question of its own cluster and
 *     configuration (another's gets ".failed-TOKEN", and the prefetcher
 *     leaves: it belongs to another restore or an older configuration);
 *   - it fetches NAME then, afresh (nothing is remembered), and answers
 *     ".got-TOKEN" (decoded and verified as every fetch), ".absent-TOKEN"
 *     (every region answered "no such object", each after its identity was
 *     read again) or ".failed-TOKEN";
 *   - the call waits while its question is unclaimed and the heartbeat is
 *     fresh, or, once it is claimed, up to wait_ms; on failure, no answer
 *     or no prefetcher it fetches NAME itself, so an error is reported by
 *     the call that meets it.  A late answer to a question nobody waits for
 *     any more has a token nobody will ask with; it is swept.
 */
#include "walfetch.h"
#include "walfetch_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"
#include "util.h"
#include "wal.h"

#define ASK_PREFIX ".ask-"
#define HEARTBEAT ".serving"
#define ASK_POLL_US 3000
#define SERVE_POLL_US 5000
/* 2 s, not less: the heartbeat is touched between serve rounds, and a
 * round that answers a question over a slow link, or a loaded machine,
 * can hold it a while; a dead prefetcher costs at most this, once */
#define HEARTBEAT_STALE_MS 2000
#define ANSWER_SWEEP_S 60

static uint64_t mtime_ms(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000 + (uint64_t)st->st_mtim.tv_nsec / 1000000;
}

/* Has the prefetcher of `dir` touched its heartbeat just now? */
static int serving(const char *dir)
{
    char path[PATH_MAX + 16];
    struct timespec now;
    struct stat st;

    if (snprintf(path, sizeof path, "%s/%s", dir, HEARTBEAT) >= (int)sizeof path || stat(path, &st) < 0 ||
        clock_gettime(CLOCK_REALTIME, &now) < 0)
        return 0;
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 < mtime_ms(&st) + HEARTBEAT_STALE_MS;
}

static int answer_path(char *buf, size_t len, const char *dir, const char *what, const char *token)
{
    return snprintf(buf, len, "%s/.%s-%s", dir, what, token) >= (int)len ? -1 : 0;
}

/* Write the question ".ask-TOKEN" whole, or not at all. */
static int post_question(const char *dir, const char *token, const char *body)
{
    char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
    int fd, rc;

    if (answer_path(tmp, sizeof tmp, dir, "q", token) < 0 || answer_path(path, sizeof path, dir, "ask", token) < 0 ||
        (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return -1;
    rc = write_all(fd, body, strlen(body));
    if (close(fd) < 0 || rc < 0 || rename(tmp, path) < 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

/* Wait for the answer to TOKEN: 1 got, WALFETCH_ASK_MISSING, 0 none. */
static int await_answer(const char *dir, const char *token, const char *ask, uint64_t deadline)
{
    char got[PATH_MAX + 64], absent[PATH_MAX + 64], failed[PATH_MAX + 64];

    if (answer_path(got, sizeof got, dir, "got", token) < 0 ||
        answer_path(absent, sizeof absent, dir, "absent", token) < 0 ||
        answer_path(failed, sizeof failed, dir, "failed", token) < 0)
        return 0;
    for (;;) {
        if (access(got, F_OK) == 0)
            return 1;
        if (access(absent, F_OK) == 0)
            return WALFETCH_ASK_MISSING;
        if (access(failed, F_OK) == 0 || now_ms() >= deadline)
            return 0;
        /* unclaimed while nobody serves: nobody will */
        if (access(ask, F_OK) == 0 && !serving(dir))
            return 0;
        usleep(ASK_POLL_US);
    }
}

int walfetch_ask(const char *name, const char *dest, const struct cluster_info *ci, const char *fingerprint,
                 unsigned wait_ms, struct err *e)
{
    char dir[PATH_MAX], token[48], body[WAL_NAME_MAX + 96], ask[PATH_MAX + 64], got[PATH_MAX + 64];
    uint32_t rnd;
    int rc;

    if (ci->sysid == 0 || strcmp(fingerprint, "none") == 0 || wal_parse(name, &(struct wal_name){ 0 }, &(struct err)ERR_INIT) < 0 ||
        walfetch_prefetch_dir(dest, dir, sizeof dir) < 0 || !walfetch_dir_trusted(dir) || !serving(dir) ||
        getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        return 0;
    snprintf(token, sizeof token, "%ld.%08" PRIx32, (long)getpid(), rnd);
    snprintf(body, sizeof body, "%s %" PRIu64 " %s\n", name, ci->sysid, fingerprint);
    if (answer_path(ask, sizeof ask, dir, "ask", token) < 0 || answer_path(got, sizeof got, dir, "got", token) < 0 ||
        post_question(dir, token, body) < 0)
        return 0;
    rc = await_answer(dir, token, ask, now_ms() + (wait_ms < 1000 ? 1000 : wait_ms));
    if (rc == 1) {
        /* verified by the prefetcher for this cluster; checked again here */
        rc = walfetch_serve_file(got, name, dest, ci, e) == 0 ? 1 : -1;
    } else if (rc == WALFETCH_ASK_MISSING) {
        err_setf(e, ERR_NOTFOUND, "%s is not in the archive of any region (answered by the prefetcher)", name);
    }
    (void)unlink(ask);
    (void)unlink(got);
    {
        char p[PATH_MAX + 64];

        if (answer_path(p, sizeof p, dir, "absent", token) == 0)
            (void)unlink(p);
        if (answer_path(p, sizeof p, dir, "failed", token) == 0)
            (void)unlink(p);
    }
    return rc;
}

/* Leave the empty answer file KIND ("absent" or "failed") for TOKEN; a
 * caller that finds none waits out its deadline and fetches for itself. */
static void mark_answer(const struct ask_server *s, const char *kind, const char *token)
{
    char mark[PATH_MAX + 64];
    int fd;

    if (answer_path(mark, sizeof mark, s->dir, kind, token) == 0 &&
        (fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0)
        close(fd);
}

/* Answer the question of TOKEN about NAME: 1 when NAME was a segment that
 * exists (the archive has grown), -1 when the regions failed (not a
 * definite "no such object"), else 0. */
static int answer(struct ask_server *s, const char *token, const char *name)
{
    char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
    struct cluster_info ci = s->ci;
    struct err e = ERR_INIT;
    struct wal_name w;
    int by, rc;

    if (answer_path(tmp, sizeof tmp, s->dir, "tmp", token) < 0 || answer_path(path, sizeof path, s->dir, "got", token) < 0)
        return 0;
    rc = walfetch_one_cached(s->conf, s->kr, s->notes, s->order, s->n, name, tmp, &ci, s->cache, &by, &e);
    if (rc == 0 && rename(tmp, path) == 0)
        return wal_parse(name, &w, &e) == 0 && w.kind == WAL_SEGMENT;
    (void)unlink(tmp);
    mark_answer(s, rc == WALFETCH_MISSING ? "absent" : "failed", token);
    return rc == WALFETCH_MISSING ? 0 : -1;
}

/* Claim question file `ent` (its token after ".ask-"): read it, and take
 * it only if this server's unlink removed it.  1 with name/sysid/fp set. */
static int claim(const struct ask_server *s, const char *ent, char *name, uint64_t *sysid, char *fp)
{
    char path[PATH_MAX + 64], buf[WAL_NAME_MAX + 96];
    ssize_t n;
    int fd;

    if (snprintf(path, sizeof path, "%s/%s", s->dir, ent) >= (int)sizeof path ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (unlink(path) < 0)
        return 0;   /* another server's, or gone */
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%24s %" SCNu64 " %16s", name, sysid, fp) != 3 ||
        wal_parse(name, &(struct wal_name){ 0 }, &(struct err)ERR_INIT) < 0)
        return -1;
    return 1;
}

/* What one pass over the questions saw. */
struct round {
    int asked;
    int failed;                     /* a question the regions failed */
    int foreign;                    /* one from another cluster or configuration */
    char found[WAL_NAME_MAX + 1];   /* the newest segment found ("" none) */
};

/* One pass over the directory: answer the questions, sweep old answers. */
static void serve_round(struct ask_server *s, struct round *r)
{
    DIR *d = opendir(s->dir);
    struct dirent *de;
    time_t now = time(NULL);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        const char *tok = de->d_name + strlen(ASK_PREFIX);
        char name[WAL_NAME_MAX + 1], fp[17];
        uint64_t sysid;
        struct stat st;
        int c;

        if (strncmp(de->d_name, ASK_PREFIX, strlen(ASK_PREFIX)) != 0) {
            /* answers nobody collected (their caller gave up) */
            if ((strncmp(de->d_name, ".got-", 5) == 0 || strncmp(de->d_name, ".absent-", 8) == 0 ||
                 strncmp(de->d_name, ".failed-", 8) == 0) &&
                fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && now - st.st_mtime > ANSWER_SWEEP_S)
                (void)unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (strlen(tok) == 0 || strlen(tok) > 40 || (c = claim(s, de->d_name, name, &sysid, fp)) == 0)
            continue;
        r->asked = 1;
        if (c < 0 || sysid != s->ci.sysid || strcmp(fp, s->fingerprint) != 0) {
            r->foreign = 1;
            mark_answer(s, "failed", tok);
            continue;
        }
        c = answer(s, tok, name);
        if (c > 0 && strcmp(name, r->found) > 0)
            snprintf(r->found, sizeof r->found, "%s", name);
        else if (c < 0)
            r->failed = 1;
    }
    closedir(d);
}

void *walfetch_ask_serve(void *arg)
{
    struct ask_server *s = arg;
    uint64_t last = now_ms();
    char hb[PATH_MAX + 16];
    int hbfd = -1;

    s->cache = calloc((size_t)s->conf->nregions + 1, sizeof *s->cache);
    if (s->cache == NULL || snprintf(hb, sizeof hb, "%s/%s", s->dir, HEARTBEAT) >= (int)sizeof hb ||
        (hbfd = open(hb, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        goto out;
    /* connect and read the identity first (questions wait, unclaimed, for
     * HEARTBEAT_STALE_MS of heartbeat silence, then fetch for themselves) */
    walfetch_warm(s->conf, s->kr, s->notes, s->order, s->n, &s->ci, s->cache);
    for (;;) {
        struct round r;
        int done, leave = 0;

        /* the directory must still be ours: a wiped and re-created data
         * directory belongs to another restore */
        if (!walfetch_dir_is_ours(s->dir, s->lock_dev, s->lock_ino))
            break;
        (void)futimens(hbfd, NULL);
        memset(&r, 0, sizeof r);
        serve_round(s, &r);
        if (r.asked)
            last = now_ms();
        pthread_mutex_lock(&s->ctl->lock);
        done = s->ctl->workers_done;
        if (done && r.found[0] != '\0') {
            /* the archive has grown since the window closed: a standby's
             * next segment.  While following, the window opens again from
             * it, on the connections already open; otherwise it is news
             * for a new prefetcher (the next wal-fetch starts it) */
            if (!s->ctl->follow)
                leave = 1;
            else if (strcmp(r.found, s->ctl->grown) > 0) {
                snprintf(s->ctl->grown, sizeof s->ctl->grown, "%s", r.found);
                pthread_cond_signal(&s->ctl->changed);
            }
        }
        pthread_mutex_unlock(&s->ctl->lock);
        /* another cluster's or configuration's question: this prefetcher
         * is a leftover.  With the window closed, a failed question (a
         * region down, a key rotated under it) is left to the calls, each
         * on its own, and a prefetcher started after the next success */
        if (leave || r.foreign || (done && (r.failed || now_ms() - last > WALFETCH_ASK_IDLE_MS)))
            break;
        usleep(SERVE_POLL_US);
    }
out:
    if (hbfd >= 0) {
        if (walfetch_dir_is_ours(s->dir, s->lock_dev, s->lock_ino))
            (void)unlink(hb);
        close(hbfd);
    }
    if (s->cache != NULL)
        for (int k = 0; k < s->conf->nregions; k++)
            repo_free(s->cache[k]);
    free(s->cache);
    s->cache = NULL;
    pthread_mutex_lock(&s->ctl->lock);
    s->ctl->ended = 1;
    pthread_cond_signal(&s->ctl->changed);
    pthread_mutex_unlock(&s->ctl->lock);
    return NULL;
}
