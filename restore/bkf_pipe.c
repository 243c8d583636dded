/*
 * bkf_pipe — see bkf_pipe.h.  A ring buffer under one mutex and one
 * condition variable (both sides wait on it; every change broadcasts).
 */
#include "bkf_pipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "ar_dl.h"  /* last: libarchive calls go through its table */

int bkf_pipe_init(struct bkf_pipe *p, size_t cap, atomic_int *abort)
{
    memset(p, 0, sizeof *p);
    p->buf = malloc(cap);
    if (p->buf == NULL)
        return -1;
    p->cap = cap;
    p->batch = cap / 8 ? cap / 8 : 1;
    p->abort = abort;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return 0;
}

void bkf_pipe_destroy(struct bkf_pipe *p)
{
    if (p->buf == NULL)
        return;
    free(p->buf);
    p->buf = NULL;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

void bkf_pipe_reset(struct bkf_pipe *p)
{
    p->head = p->tail = p->used = p->lent = 0;
    p->eof = p->failed = p->writer_refused = 0;
    p->rwait = p->wwait = 0;
    p->reader = BKF_PIPE_RUNNING;
}

struct pipe_sink {
    struct sink base;
    struct bkf_pipe *p;
};

static int pipe_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct bkf_pipe *p = ((struct pipe_sink *)s)->p;
    const unsigned char *src = buf;

    pthread_mutex_lock(&p->mu);
    while (len > 0) {
        size_t n;

        if (p->used == p->cap) {
            /* full: sleep until a batch of room (or what is left) is free */
            size_t want = len < p->batch ? len : p->batch;

            p->wwait = 1;
            while (p->cap - p->used < want && p->reader == BKF_PIPE_RUNNING && !atomic_load(p->abort))
                pthread_cond_wait(&p->cv, &p->mu);
            p->wwait = 0;
        }
        if (p->reader == BKF_PIPE_ABORT || atomic_load(p->abort)) {
            p->writer_refused = 1;
            pthread_mutex_unlock(&p->mu);
            return err_setf(e, ERR_INTERNAL, "extraction stopped");
        }
        if (p->reader == BKF_PIPE_DISCARD)
            break;
        n = p->cap - p->used;
        if (n > p->cap - p->head)
            n = p->cap - p->head;
        if (n > len)
            n = len;
        memcpy(p->buf + p->head, src, n);
        p->head = (p->head + n) % p->cap;
        p->used += n;
        src += n;
        len -= n;
        if (p->rwait && p->used >= p->batch)
            pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static int pipe_close(struct sink *s, struct err *e)
{
    (void)s;
    (void)e;
    return 0;
}

static void pipe_free(struct sink *s)
{
    free(s);
}

static const struct sink_ops pipe_ops = { pipe_write, pipe_close, pipe_free };

struct sink *bkf_pipe_sink_new(struct bkf_pipe *p)
{
    struct pipe_sink *s = calloc(1, sizeof *s);

    if (s == NULL)
        return NULL;
    s->base.ops = &pipe_ops;
    s->p = p;
    return &s->base;
}

void bkf_pipe_writer_done(struct bkf_pipe *p, int ok)
{
    pthread_mutex_lock(&p->mu);
    if (ok)
        p->eof = 1;
    else
        p->failed = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void bkf_pipe_reader_done(struct bkf_pipe *p, int how)
{
    pthread_mutex_lock(&p->mu);
    p->reader = how;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int bkf_pipe_writer_refused(struct bkf_pipe *p)
{
    int r;

    pthread_mutex_lock(&p->mu);
    r = p->writer_refused;
    pthread_mutex_unlock(&p->mu);
    return r;
}

void bkf_pipe_wake(struct bkf_pipe *p)
{
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

la_ssize_t bkf_pipe_read(struct archive *a, void *arg, const void **out)
{
    struct bkf_pipe *p = arg;
    size_t n;

    if (ar_dl_load(NULL) < 0)   /* the caller made `a` with a libarchive of its own */
        return ARCHIVE_FATAL;
    pthread_mutex_lock(&p->mu);
    p->tail = (p->tail + p->lent) % p->cap;
    p->used -= p->lent;
    p->lent = 0;
    if (p->wwait)
        pthread_cond_broadcast(&p->cv);
    if (p->used == 0) {
        /* empty: sleep until a batch of data is there, or the end */
        p->rwait = 1;
        while (p->used < p->batch && !p->eof && !p->failed && !atomic_load(p->abort))
            pthread_cond_wait(&p->cv, &p->mu);
        p->rwait = 0;
    }
    if (p->used == 0 && !p->eof) {
        pthread_mutex_unlock(&p->mu);
        archive_set_error(a, EIO, "the download of this part failed");
        return -1;
    }
    n = p->used;
    if (n > p->cap - p->tail)
        n = p->cap - p->tail;
    p->lent = n;
    *out = p->buf + p->tail;
    pthread_mutex_unlock(&p->mu);
    return (la_ssize_t)n;
}

/* ---- a stage that refuses more bytes than the manifest lists ---- */

struct limit_sink {
    struct sink base;
    uint64_t max, *count;
    const char *what;
};

static int limit_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct limit_sink *l = (struct limit_sink *)s;

    if (len > l->max - *l->count)
        return err_setf(e, ERR_CORRUPT, "%s holds more than the manifest's %llu bytes", l->what,
                        (unsigned long long)l->max);
    *l->count += len;
    return sink_write(s->next, buf, len, e);
}

static int limit_close(struct sink *s, struct err *e)
{
    struct limit_sink *l = (struct limit_sink *)s;

    if (sink_close(s->next, e) < 0)
        return -1;
    if (*l->count != l->max)
        return err_setf(e, ERR_CORRUPT, "%s holds %llu bytes, the manifest says %llu", l->what,
                        (unsigned long long)*l->count, (unsigned long long)l->max);
    return 0;
}

static void limit_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops limit_ops = { limit_write, limit_close, limit_free };

struct sink *bkf_limit_sink_new(struct sink *next, uint64_t max, uint64_t *count, const char *what)
{
    struct limit_sink *l = calloc(1, sizeof *l);

    if (l == NULL)
        return NULL;
    l->base.ops = &limit_ops;
    l->base.next = next;
    l->max = max;
    l->count = count;
    l->what = what;
    *count = 0;
    return &l->base;
}
