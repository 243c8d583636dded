/*
 * bkf_dio — see bkf_dio.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bkf_dio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int bkf_dio_open(struct bkf_dio *d, int dfd, const char *leaf, uint64_t size)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fd;

    d->fill = 0;
    d->off = 0;
    d->direct = 0;
    if (size >= BKF_DIO_MIN && d->buf == NULL) {
        void *p = NULL;

        if (posix_memalign(&p, BKF_DIO_ALIGN, BKF_DIO_BUF) == 0)
            d->buf = p;
    }
    if (size >= BKF_DIO_MIN && d->buf != NULL) {
        fd = openat(dfd, leaf, flags | O_DIRECT, 0600);
        if (fd >= 0) {
            d->fd = fd;
            d->direct = 1;
            return fd;
        }
        if (errno != EINVAL)
            return -1;
    }
    d->fd = openat(dfd, leaf, flags, 0600);
    return d->fd;
}

/* Stop writing directly: the file system refused an O_DIRECT write. */
static int undirect(struct bkf_dio *d)
{
    int fl = fcntl(d->fd, F_GETFL);

    if (fl < 0 || fcntl(d->fd, F_SETFL, fl & ~O_DIRECT) < 0)
        return -1;
    d->direct = 0;
    return 0;
}

/* Write buf[0..n) at d->off (n a multiple of the alignment, or padded). */
static int flush(struct bkf_dio *d, size_t n)
{
    if (pwrite_all(d->fd, d->buf, n, (off_t)d->off) < 0) {
        if (errno != EINVAL || undirect(d) < 0 || pwrite_all(d->fd, d->buf, n, (off_t)d->off) < 0)
            return -1;
    }
    d->off += d->fill;
    d->fill = 0;
    return 0;
}

int bkf_dio_write(struct bkf_dio *d, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    if (!d->direct) {
        if (pwrite_all(d->fd, buf, len, (off_t)(d->off + d->fill)) < 0)
            return -1;
        d->off += len;
        return 0;
    }
    while (len > 0) {
        size_t k = BKF_DIO_BUF - d->fill < len ? BKF_DIO_BUF - d->fill : len;

        memcpy(d->buf + d->fill, p, k);
        d->fill += k;
        p += k;
        len -= k;
        if (d->fill == BKF_DIO_BUF && flush(d, BKF_DIO_BUF) < 0)
            return -1;
        if (!d->direct && len > 0)
            return bkf_dio_write(d, p, len);
    }
    return 0;
}

int bkf_dio_finish(struct bkf_dio *d)
{
    size_t n = d->fill, padded = n;

    if (!d->direct || n == 0)
        return 0;
    if (padded % BKF_DIO_ALIGN != 0) {
        memset(d->buf + n, 0, BKF_DIO_ALIGN - n % BKF_DIO_ALIGN);
        padded += BKF_DIO_ALIGN - n % BKF_DIO_ALIGN;
    }
    if (flush(d, padded) < 0)
        return -1;
    /* a padded last block: cut the file back to the bytes written */
    if (padded != n && ftruncate(d->fd, (off_t)d->off) < 0)
        return -1;
    return 0;
}

void bkf_dio_free(struct bkf_dio *d)
{
    free(d->buf);
    d->buf = NULL;
}
