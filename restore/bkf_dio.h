/*
 * bkf_dio — the direct (O_DIRECT) writer of a restore's large files.
 *
 * Why: restoring a large relation from a local repository is CPU-bound on
 * two cores, and a buffered write of each byte costs about as much CPU as
 * its decoding: the copy into the page cache, the page allocation and
 * the kernel's writeback of it (bench/write-floor.sh: 1.67 GB buffered +
 * fdatasync 3.78 s, with write-behind 2.07 s, O_DIRECT 0.89 s; the
 * buffered ways spend ~1.7 s of system CPU).  Here the extractor copies
 * each block into a ring of aligned buffers and writer threads write the
 * full ones with O_DIRECT, several at once, while the next fills; the
 * extractor waits on the disk only when the disk is the slower of the
 * two.  Memory: BKF_DIO_NBUF buffers of BKF_DIO_BUF (16 MiB) and
 * BKF_DIO_WRITERS threads per extracting thread, made on first use.
 *
 * Contract: one bkf_dio per extracting thread, used for one file range at
 * a time (begin, put..., end).  begin() turns O_DIRECT on for the given
 * descriptor (an open file description of this caller's own: the flag is
 * set on it); it refuses (returns 1, nothing changed) where the file
 * system does not take O_DIRECT or the range is not aligned, and the
 * caller writes as before.  A buffer is never touched while its write is
 * in flight (btrfs checksums a direct write's pages as they are).  A
 * direct write the file system rejects with
 * EINVAL is written again through the page cache: bytes are never lost to
 * a fallback.  end() writes what is left (through the page cache when its
 * length is not a multiple of the alignment), waits for every write and
 * gives the descriptor back without O_DIRECT.  Durability is the caller's
 * as before (its syncfs/fsync also flushes the device's cache).
 *
 * Errors: put() and end() return -1 with errno set by the failed write;
 * after an error the range must be ended (end() still waits for the
 * writers) and the file is not to be trusted.  Library code: no printing.
 */
#ifndef WALSHIP_BKF_DIO_H
#define WALSHIP_BKF_DIO_H

#include <stddef.h>
#include <stdint.h>

#define BKF_DIO_ALIGN 4096u
/* Measured with bench/fetch-ab.sh (docs/BACKUP.md): 4 x 4 MiB and two
 * writers; 8 x 1 MiB with four was slower, 2 x 4 MiB with one the same on
 * plain pgbench.  Overridable at build time for such measurements. */
#ifndef BKF_DIO_BUF
#define BKF_DIO_BUF ((size_t)4 << 20)
#endif
#ifndef BKF_DIO_NBUF
#define BKF_DIO_NBUF 4
#endif
#ifndef BKF_DIO_WRITERS
#define BKF_DIO_WRITERS 2
#endif
/* smaller ranges go through the page cache: the buffers and the
 * thread hand-off are not worth it for a few blocks */
#define BKF_DIO_MIN ((uint64_t)8 << 20)

struct bkf_dio;

struct bkf_dio *bkf_dio_new(void);
void bkf_dio_free(struct bkf_dio *d);

/* 0: direct writes of [base, base + size) of FD go through D; 1: not
 * possible here (write through the page cache); -1: error (errno). */
int bkf_dio_begin(struct bkf_dio *d, int fd, uint64_t base, uint64_t size);
int bkf_dio_put(struct bkf_dio *d, const void *buf, size_t len);
int bkf_dio_end(struct bkf_dio *d);

#endif
