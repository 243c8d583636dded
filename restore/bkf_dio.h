/*
 * bkf_dio — writing a restored file without the page cache (O_DIRECT).
 *
 * The profile of a restore dominated by one large relation showed its
 * writing thread spending more CPU in the kernel's copy into the page cache
 * (copy_folio_from_iter) than in SHA-256.  With O_DIRECT the disk reads the
 * data from our buffer: the bytes are copied once, cache-hot, into an
 * aligned buffer, hashed there by the caller, and written in aligned
 * blocks.  The file's last block is written padded and the file cut to its
 * size.  A file system that refuses O_DIRECT (EINVAL at open or at the first
 * write, e.g. tmpfs on old kernels) gets ordinary writes, same bytes.
 *
 * One writer per worker thread; its buffer is reused from file to file.
 */
#ifndef WALSHIP_BKF_DIO_H
#define WALSHIP_BKF_DIO_H

#include <stddef.h>
#include <stdint.h>

#define BKF_DIO_ALIGN 4096
#define BKF_DIO_BUF ((size_t)1 << 20)
#define BKF_DIO_MIN ((uint64_t)1 << 20)   /* smaller files: ordinary writes */

struct bkf_dio {
    unsigned char *buf;     /* BKF_DIO_BUF bytes, BKF_DIO_ALIGN-aligned */
    size_t fill;
    uint64_t off;           /* file offset of buf[0] */
    int fd, direct;
};

/* Open `leaf` in `dfd` for writing (O_CREAT | O_EXCL | O_NOFOLLOW), direct
 * when `size` is at least BKF_DIO_MIN and the file system allows it.  The
 * fd, or -1 with errno. */
int bkf_dio_open(struct bkf_dio *d, int dfd, const char *leaf, uint64_t size);
/* Append len bytes (the caller hashes them first); -1 with errno. */
int bkf_dio_write(struct bkf_dio *d, const void *buf, size_t len);
/* Write what is buffered; the file ends after the bytes written (a padded
 * last block is cut).  -1 with errno.  The fd stays open (the caller
 * closes it). */
int bkf_dio_finish(struct bkf_dio *d);
void bkf_dio_free(struct bkf_dio *d);

#endif
