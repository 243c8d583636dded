/*
 * bkf_dio — see bkf_dio.h.  Two aligned buffers and one writer thread per
 * extractor; one mutex and one condition variable carry the hand-off (a
 * job at most is outstanding, so the buffer being filled is never the one
 * being written).
 */
#include "bkf_dio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct bkf_dio {
    unsigned char *buf[2];
    int cur;                /* the buffer the extractor fills */
    size_t fill;
    uint64_t off;           /* the file offset of buf[cur] */
    int fd, flags;          /* the range's descriptor, its flags before begin() */
    int direct;             /* O_DIRECT is still on (a rejected write turns it off) */
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int job, job_buf;       /* job: buf[job_buf] is to be written */
    size_t job_len;
    uint64_t job_off;
    int job_errno;          /* the range's first failed write */
    int quit;
};

/* Write LEN bytes at OFF; a write the file system refuses with EINVAL
 * (O_DIRECT it accepted at open but not for this write) goes again
 * through the page cache, from where it stopped.  0 or an errno. */
static int write_range(struct bkf_dio *d, const unsigned char *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(d->fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && d->direct) {
            if (fcntl(d->fd, F_SETFL, d->flags & ~O_DIRECT) < 0)
                return errno;
            d->direct = 0;
            continue;
        }
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    struct bkf_dio *d = arg;

    pthread_mutex_lock(&d->mu);
    for (;;) {
        int en;

        while (!d->job && !d->quit)
            pthread_cond_wait(&d->cv, &d->mu);
        if (!d->job)
            break;
        pthread_mutex_unlock(&d->mu);
        en = write_range(d, d->buf[d->job_buf], d->job_len, d->job_off);
        pthread_mutex_lock(&d->mu);
        if (en != 0 && d->job_errno == 0)
            d->job_errno = en;
        d->job = 0;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

struct bkf_dio *bkf_dio_new(void)
{
    struct bkf_dio *d = calloc(1, sizeof *d);

    if (d == NULL)
        return NULL;
    d->fd = -1;
    if (posix_memalign((void **)&d->buf[0], BKF_DIO_ALIGN, BKF_DIO_BUF) != 0 ||
        posix_memalign((void **)&d->buf[1], BKF_DIO_ALIGN, BKF_DIO_BUF) != 0) {
        free(d->buf[0]);
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->started = pthread_create(&d->th, NULL, writer_main, d) == 0;
    if (!d->started) {
        bkf_dio_free(d);
        return NULL;
    }
    return d;
}

void bkf_dio_free(struct bkf_dio *d)
{
    if (d == NULL)
        return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->quit = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->th, NULL);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->buf[0]);
    free(d->buf[1]);
    free(d);
}

int bkf_dio_begin(struct bkf_dio *d, int fd, uint64_t base, uint64_t size)
{
    int flags;

    if (size < BKF_DIO_MIN || base % BKF_DIO_ALIGN != 0)
        return 1;
    if ((flags = fcntl(fd, F_GETFL)) < 0)
        return -1;
    /* EINVAL: this file system takes no O_DIRECT (tmpfs before Linux 6.6) */
    if (fcntl(fd, F_SETFL, flags | O_DIRECT) < 0)
        return errno == EINVAL ? 1 : -1;
    d->fd = fd;
    d->flags = flags & ~O_DIRECT;
    d->direct = 1;
    d->off = base;
    d->fill = 0;
    d->job_errno = 0;
    return 0;
}

/* Wait until the writer is idle; its error, if the range has one. */
static int wait_idle(struct bkf_dio *d)
{
    int en;

    pthread_mutex_lock(&d->mu);
    while (d->job)
        pthread_cond_wait(&d->cv, &d->mu);
    en = d->job_errno;
    pthread_mutex_unlock(&d->mu);
    return en;
}

int bkf_dio_put(struct bkf_dio *d, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    while (len > 0) {
        size_t n = BKF_DIO_BUF - d->fill;
        int en;

        if (n > len)
            n = len;
        memcpy(d->buf[d->cur] + d->fill, p, n);
        d->fill += n;
        p += n;
        len -= n;
        if (d->fill < BKF_DIO_BUF)
            break;
        if ((en = wait_idle(d)) != 0) {
            errno = en;
            return -1;
        }
        pthread_mutex_lock(&d->mu);
        d->job = 1;
        d->job_buf = d->cur;
        d->job_len = d->fill;
        d->job_off = d->off;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        d->cur ^= 1;
        d->off += d->fill;
        d->fill = 0;
    }
    return 0;
}

int bkf_dio_end(struct bkf_dio *d)
{
    int en = wait_idle(d);

    if (en == 0 && d->fill > 0) {
        /* a tail that is not whole blocks goes through the page cache */
        if (d->fill % BKF_DIO_ALIGN != 0 && d->direct) {
            if (fcntl(d->fd, F_SETFL, d->flags) < 0)
                en = errno;
            d->direct = 0;
        }
        if (en == 0)
            en = write_range(d, d->buf[d->cur], d->fill, d->off);
    }
    if (d->direct && fcntl(d->fd, F_SETFL, d->flags) < 0 && en == 0)
        en = errno;
    d->direct = 0;
    d->fill = 0;
    d->fd = -1;
    if (en != 0) {
        errno = en;
        return -1;
    }
    return 0;
}
