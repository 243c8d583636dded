/*
 * pool — the one worker pool: N threads over an index range [0, n).
 *
 * Each worker takes the next index under a shared lock and runs the job's
 * item function on it, until the range is used up or something fails.  The
 * first error wins: it is kept, no worker takes another index after it, and
 * pool_join returns it.  An item that wants to go on after a failure of its
 * own (push-ahead counts failures, PostgreSQL retries them) returns 0.
 *
 * A job may give each worker state of its own (an open archiver, a
 * connection): worker_open runs once per worker before it takes an index,
 * worker_close once after.  A failing worker_open is that worker's error.
 *
 * The calling thread can work too (pool_work), which is how wal-push pushes
 * its own segment first and then helps with the rest.  Starting fewer
 * threads than asked (pthread_create failing) is not an error: the work is
 * shared among those that run.
 */
#ifndef WALSHIP_POOL_H
#define WALSHIP_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "err.h"

#define POOL_MAX_THREADS 64

struct pool_job {
    size_t n;                   /* indexes 0 .. n-1 */
    void *arg;
    int (*worker_open)(void *arg, void **ws, struct err *e);   /* optional */
    int (*item)(void *arg, void *ws, size_t i, struct err *e);
    void (*worker_close)(void *arg, void *ws);                  /* optional */
};

struct pool {
    struct pool_job job;
    pthread_mutex_t lock;
    size_t next;                /* under lock */
    int failed;                 /* under lock */
    struct err first;           /* the first error, under lock */
    pthread_t threads[POOL_MAX_THREADS];
    int nthreads;
};

/* Start up to `nthreads` threads (never more than there are indexes, at
 * most POOL_MAX_THREADS); returns how many run.  Always pair with
 * pool_join. */
int pool_start(struct pool *p, const struct pool_job *job, int nthreads);
/* The calling thread works as one more worker until the range is used up. */
void pool_work(struct pool *p);
/* Wait for the threads; -1 with the first error, else 0. */
int pool_join(struct pool *p, struct err *e);
/* pool_start + pool_work + pool_join: `nthreads` workers in all, counting
 * the caller. */
int pool_run(const struct pool_job *job, int nthreads, struct err *e);

#endif
