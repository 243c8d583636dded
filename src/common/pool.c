/*
 * pool — N threads over an index range, first error wins (pool.h).
 */
#include <string.h>

#include "pool.h"

static void fail(struct pool *p, const struct err *e)
{
    pthread_mutex_lock(&p->lock);
    if (!p->failed) {
        p->failed = 1;
        p->first = *e;
        if (p->first.code == ERR_OK)
            p->first.code = ERR_INTERNAL;   /* a -1 without a message is still a failure */
    }
    pthread_mutex_unlock(&p->lock);
}

/* The next index to work on; 0 when the range is used up or a worker failed. */
static int take(struct pool *p, size_t *i)
{
    int ok;

    pthread_mutex_lock(&p->lock);
    ok = !p->failed && p->next < p->job.n;
    if (ok)
        *i = p->next++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void pool_work(struct pool *p)
{
    struct err e = ERR_INIT;
    void *ws = NULL;
    size_t i;

    if (p->job.worker_open != NULL && p->job.worker_open(p->job.arg, &ws, &e) < 0) {
        fail(p, &e);
        return;
    }
    while (take(p, &i)) {
        err_clear(&e);
        if (p->job.item(p->job.arg, ws, i, &e) < 0) {
            fail(p, &e);
            break;
        }
    }
    if (p->job.worker_close != NULL)
        p->job.worker_close(p->job.arg, ws);
}

static void *thread_main(void *arg)
{
    pool_work(arg);
    return NULL;
}

int pool_start(struct pool *p, const struct pool_job *job, int nthreads)
{
    memset(p, 0, sizeof *p);
    p->job = *job;
    pthread_mutex_init(&p->lock, NULL);
    if (nthreads > POOL_MAX_THREADS)
        nthreads = POOL_MAX_THREADS;
    for (int i = 0; i < nthreads && (size_t)i < job->n; i++)
        if (pthread_create(&p->threads[p->nthreads], NULL, thread_main, p) == 0)
            p->nthreads++;
    return p->nthreads;
}

int pool_join(struct pool *p, struct err *e)
{
    int failed;

    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    pthread_mutex_destroy(&p->lock);
    failed = p->failed;
    if (failed && e != NULL)
        *e = p->first;
    return failed ? -1 : 0;
}

int pool_run(const struct pool_job *job, int nthreads, struct err *e)
{
    struct pool p;
    int threads = nthreads > 1 ? nthreads - 1 : 0;

    /* the caller is one of the workers: no thread that could find nothing */
    if (job->n < (size_t)threads + 1)
        threads = job->n > 0 ? (int)job->n - 1 : 0;
    pool_start(&p, job, threads);
    pool_work(&p);
    return pool_join(&p, e);
}
