/* pool: every index is run exactly once across the workers; the first error
 * wins and stops the others taking more; worker_open and worker_close run
 * once per worker, and a failing worker_open is the pool's error. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "tap.h"

struct job {
    atomic_int *hits;
    size_t fail_at;             /* an index that fails; (size_t)-1 none */
    atomic_int opened, closed, ran;
    int fail_open;
};

static int w_open(void *arg, void **ws, struct err *e)
{
    struct job *j = arg;

    atomic_fetch_add(&j->opened, 1);
    *ws = j;
    if (j->fail_open)
        return err_setf(e, ERR_NOMEM, "worker could not open");
    return 0;
}

static int w_item(void *arg, void *ws, size_t i, struct err *e)
{
    struct job *j = arg;

    if (ws != arg)
        return err_setf(e, ERR_INTERNAL, "wrong worker state");
    atomic_fetch_add(&j->hits[i], 1);
    atomic_fetch_add(&j->ran, 1);
    if (i == j->fail_at)
        return err_setf(e, ERR_CORRUPT, "item %zu failed", i);
    return 0;
}

static void w_close(void *arg, void *ws)
{
    struct job *j = arg;

    (void)ws;
    atomic_fetch_add(&j->closed, 1);
}

static void run(struct job *j, size_t n, int threads, int *rc, struct err *e)
{
    struct pool_job pj = { n, j, w_open, w_item, w_close };

    j->hits = calloc(n ? n : 1, sizeof *j->hits);
    for (size_t i = 0; i < n; i++)
        atomic_init(&j->hits[i], 0);
    atomic_init(&j->opened, 0);
    atomic_init(&j->closed, 0);
    atomic_init(&j->ran, 0);
    err_clear(e);
    *rc = pool_run(&pj, threads, e);
}

int main(void)
{
    struct err e = ERR_INIT;
    struct job j;
    int rc, once;

    memset(&j, 0, sizeof j);
    j.fail_at = (size_t)-1;
    run(&j, 1000, 4, &rc, &e);
    once = 1;
    for (size_t i = 0; i < 1000; i++)
        once = once && atomic_load(&j.hits[i]) == 1;
    ok(rc == 0 && once, "1000 indexes over 4 workers: each run exactly once");
    ok(atomic_load(&j.opened) == atomic_load(&j.closed) && atomic_load(&j.opened) >= 1 &&
           atomic_load(&j.opened) <= 4,
       "worker_open and worker_close once per worker (%d)", atomic_load(&j.opened));
    free(j.hits);

    run(&j, 3, 8, &rc, &e);
    ok(rc == 0 && atomic_load(&j.opened) <= 3, "no more workers than indexes (%d)", atomic_load(&j.opened));
    free(j.hits);

    run(&j, 0, 4, &rc, &e);
    ok(rc == 0 && atomic_load(&j.ran) == 0, "an empty range runs nothing");
    free(j.hits);

    run(&j, 10, 1, &rc, &e);
    ok(rc == 0 && atomic_load(&j.ran) == 10 && atomic_load(&j.opened) == 1, "one worker: the caller alone");
    free(j.hits);

    j.fail_at = 5;
    run(&j, 100000, 1, &rc, &e);
    ok(rc < 0 && e.code == ERR_CORRUPT && strcmp(e.msg, "item 5 failed") == 0 && atomic_load(&j.ran) == 6,
       "one worker: the first error stops the range: %s", e.msg);
    free(j.hits);

    run(&j, 100000, 4, &rc, &e);
    ok(rc < 0 && e.code == ERR_CORRUPT && strcmp(e.msg, "item 5 failed") == 0,
       "four workers: the failing item's error is returned: %s", e.msg);
    ok(atomic_load(&j.ran) < 100000, "and the others stop taking indexes (%d ran)", atomic_load(&j.ran));
    ok(atomic_load(&j.opened) == atomic_load(&j.closed), "every worker closed");
    free(j.hits);

    j.fail_at = (size_t)-1;
    j.fail_open = 1;
    run(&j, 100, 3, &rc, &e);
    ok(rc < 0 && e.code == ERR_NOMEM && atomic_load(&j.ran) == 0,
       "a failing worker_open is the pool's error and nothing runs: %s", e.msg);
    free(j.hits);
    return done_testing();
}
