/*
 * bkf_pipe — the part pipe of backup-fetch between the decoding thread and
 * libarchive's reader.  A side that sleeps is woken only once a batch
 * (cap/8) of data or room is there, so these check what batching must not
 * break: every byte arrives once and in order whatever the write sizes
 * against a tiny ring; an end of stream with less than a batch left still
 * wakes the reader (no hang: the test has an alarm); a failed producer
 * makes the reader's next read fail even with bytes short of a batch
 * pending; an aborting reader stops a producer blocked on a full pipe.
 */
#include <archive.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bkf_pipe.h"
#include "tap.h"

#define TOTAL 200003

static unsigned char byte_at(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

struct prod {
    struct bkf_pipe *p;
    size_t total;
    int fail_at_end;    /* end with writer_done(0) */
    int rc;
};

static void *producer(void *arg)
{
    struct prod *pr = arg;
    struct sink *s = bkf_pipe_sink_new(pr->p);
    unsigned char buf[4096];
    struct err e = ERR_INIT;
    size_t off = 0, step = 1;

    pr->rc = 0;
    while (s != NULL && off < pr->total) {
        size_t n = step < pr->total - off ? step : pr->total - off, i;

        for (i = 0; i < n; i++)
            buf[i] = byte_at(off + i);
        if (sink_write(s, buf, n, &e) < 0) {
            pr->rc = -1;
            break;
        }
        off += n;
        step = step * 7 % 4093 + 1;    /* 1, 8, 57, ...: sizes across the ring and the batch */
    }
    sink_free(s);
    bkf_pipe_writer_done(pr->p, pr->rc == 0 && !pr->fail_at_end);
    return NULL;
}

/* Read everything; 1 when it is exactly byte_at(0..total-1) and then EOF. */
static int drain(struct bkf_pipe *p, size_t total, int *failed)
{
    struct archive *a = archive_read_new();
    size_t got = 0;
    int good = 1;

    *failed = 0;
    for (;;) {
        const void *out;
        la_ssize_t n = bkf_pipe_read(a, p, &out);
        la_ssize_t i;

        if (n < 0) {
            *failed = 1;
            break;
        }
        if (n == 0)
            break;
        for (i = 0; i < n; i++)
            if (((const unsigned char *)out)[i] != byte_at(got + (size_t)i))
                good = 0;
        got += (size_t)n;
    }
    archive_read_free(a);
    return good && got == total;
}

static void run(size_t cap, size_t total, int fail_at_end, const char *what)
{
    atomic_int abort;
    struct bkf_pipe p;
    struct prod pr = { &p, total, fail_at_end, 0 };
    pthread_t th;
    int failed, exact;

    atomic_init(&abort, 0);
    if (bkf_pipe_init(&p, cap, &abort) < 0) {
        ok(0, "%s: pipe", what);
        return;
    }
    bkf_pipe_reset(&p);
    pthread_create(&th, NULL, producer, &pr);
    exact = drain(&p, total, &failed);
    bkf_pipe_reader_done(&p, BKF_PIPE_DISCARD);
    pthread_join(th, NULL);
    if (fail_at_end) {
        ok(failed, "%s: the reader's last read fails", what);
    } else {
        ok(!failed && exact, "%s: every byte once, in order, then EOF", what);
        is_int(pr.rc, 0, "%s: the producer finished", what);
    }
    bkf_pipe_destroy(&p);
}

static void *abort_later(void *arg)
{
    struct bkf_pipe *p = arg;

    usleep(100 * 1000);
    bkf_pipe_reader_done(p, BKF_PIPE_ABORT);
    return NULL;
}

int main(void)
{
    atomic_int abort;
    struct bkf_pipe p;
    struct prod pr;
    pthread_t th, ab;

    alarm(60);      /* a lost wake-up hangs: fail instead */
    run(64, TOTAL, 0, "a 64-byte ring (batch 8)");
    run(4096, TOTAL, 0, "a 4 KiB ring (batch 512)");
    run(1 << 20, TOTAL, 0, "a 1 MiB ring, less than one batch in all");
    run(1 << 20, 3, 0, "3 bytes: the end wakes the reader short of a batch");
    run(1 << 20, 0, 0, "an empty stream");
    run(4096, 1000, 1, "a producer failing after 1000 bytes");

    /* a producer blocked on a full pipe is stopped by the reader's abort */
    atomic_init(&abort, 0);
    if (bkf_pipe_init(&p, 64, &abort) == 0) {
        memset(&pr, 0, sizeof pr);
        pr.p = &p;
        pr.total = TOTAL;
        bkf_pipe_reset(&p);
        pthread_create(&th, NULL, producer, &pr);
        pthread_create(&ab, NULL, abort_later, &p);
        pthread_join(ab, NULL);
        pthread_join(th, NULL);
        is_int(pr.rc, -1, "an abort stops a producer blocked on a full pipe");
        ok(bkf_pipe_writer_refused(&p), "and the pipe says the reader refused it");
        bkf_pipe_destroy(&p);
    }
    return done_testing();
}
