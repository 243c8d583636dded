/*
 * bkf_dio — the direct writer of a restore's large files.  What must hold
 * whatever the sizes: every byte lands once at its offset (odd put sizes
 * across the 4 MiB buffers, a tail that is not whole blocks, a range that
 * starts past the file's start), bytes outside the range are untouched,
 * the descriptor comes back without O_DIRECT, a range too small or not
 * aligned is refused without a change, a failed write is reported by
 * put() or end() (never lost in the writer thread), and where the file
 * system takes no O_DIRECT (tmpfs) the caller is told to write itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bkf_dio.h"
#include "tap.h"

static unsigned char byte_at(uint64_t i)
{
    return (unsigned char)((i * 2654435761u) >> 11);
}

/* Write [base, base + size) of a new file in DIR through D in puts of
 * STEP bytes; check it; 1 when direct writes were used, 0 when begin()
 * refused, -1 on a failure (reported). */
static int roundtrip(struct bkf_dio *d, const char *dir, uint64_t base, uint64_t size, size_t step,
                     const char *what)
{
    char path[4096];
    unsigned char *buf = malloc(step), *back = NULL;
    uint64_t pos;
    int fd, r, good = 1, flags;

    snprintf(path, sizeof path, "%s/dio.XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0 || buf == NULL) {
        ok(0, "%s: a file in %s (%s)", what, dir, strerror(errno));
        free(buf);
        return -1;
    }
    unlink(path);
    /* bytes before the range must survive it */
    memset(buf, 0xA5, step < base ? step : (size_t)base);
    if (base > 0 && pwrite(fd, buf, step < base ? step : (size_t)base, 0) < 0)
        good = 0;
    r = bkf_dio_begin(d, fd, base, size);
    for (pos = 0; pos < size && good; pos += step) {
        size_t n = size - pos < step ? (size_t)(size - pos) : step;
        size_t i;

        for (i = 0; i < n; i++)
            buf[i] = byte_at(pos + i);
        if (r == 0 ? bkf_dio_put(d, buf, n) < 0 : pwrite(fd, buf, n, (off_t)(base + pos)) != (ssize_t)n)
            good = 0;
    }
    if (r == 0 && bkf_dio_end(d) < 0)
        good = 0;
    ok(good && r >= 0, "%s: written (%s)", what, r == 0 ? "direct" : "through the page cache");
    flags = fcntl(fd, F_GETFL);
    ok(flags >= 0 && !(flags & O_DIRECT), "%s: the descriptor is given back without O_DIRECT", what);
    back = malloc(size);
    if (back != NULL && pread(fd, back, size, (off_t)base) == (ssize_t)size) {
        for (pos = 0; pos < size && back[pos] == byte_at(pos); pos++)
            ;
        ok(pos == size, "%s: every byte at its offset (the first %llu agree)", what,
           (unsigned long long)pos);
    } else {
        ok(0, "%s: read back", what);
    }
    if (base > 0 && pread(fd, back, 1, (off_t)base - 1) == 1)
        ok(back[0] == 0xA5, "%s: the byte before the range untouched", what);
    {
        struct stat st;

        ok(fstat(fd, &st) == 0 && (uint64_t)st.st_size == base + size, "%s: the file ends where the range does",
           what);
    }
    free(back);
    free(buf);
    close(fd);
    return r == 0 ? 1 : r == 1 ? 0 : -1;
}

int main(void)
{
    struct bkf_dio *d = bkf_dio_new();
    const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    int fd, r;

    ok(d != NULL, "a direct writer with its thread");
    if (d == NULL)
        return done_testing();
    snprintf(path, sizeof path, "%s/dio.XXXXXX", dir);
    fd = mkstemp(path);
    unlink(path);
    is_int(bkf_dio_begin(d, fd, 0, BKF_DIO_MIN - 1), 1, "a range under %llu bytes is refused",
           (unsigned long long)BKF_DIO_MIN);
    is_int(bkf_dio_begin(d, fd, 512, BKF_DIO_MIN * 2), 1, "a range at an unaligned offset is refused");
    ok(!(fcntl(fd, F_GETFL) & O_DIRECT), "... and leaves the descriptor as it was");
    close(fd);

    r = roundtrip(d, dir, 0, 3 * BKF_DIO_BUF + 12345, 65537, "3 buffers + an odd tail, odd puts");
    if (r == 0)
        diag("%s takes no O_DIRECT: the direct path is not exercised here", dir);
    roundtrip(d, dir, 8192, 2 * BKF_DIO_BUF + 8192, BKF_DIO_BUF, "from offset 8192, whole blocks, buffer-sized puts");
    roundtrip(d, dir, 1 << 20, BKF_DIO_MIN, 3 * BKF_DIO_BUF, "exactly the minimum, one put larger than both buffers");
    roundtrip(d, dir, 0, BKF_DIO_MIN + 1, 1, "one byte past the minimum, a byte at a time");
    if (access("/dev/shm", W_OK) == 0)
        roundtrip(d, "/dev/shm", 0, BKF_DIO_MIN + 4096 + 7, 100000, "on tmpfs (/dev/shm)");

    /* a write that fails in the writer thread: a descriptor not open for
     * writing (EBADF), as a full disk's ENOSPC would */
    snprintf(path, sizeof path, "%s/dio.XXXXXX", dir);
    fd = mkstemp(path);
    if (fd >= 0) {
        int rfd = open(path, O_RDONLY);
        unsigned char *buf = calloc(1, BKF_DIO_BUF);
        int failed = 0, en = 0, i;

        unlink(path);
        close(fd);
        r = bkf_dio_begin(d, rfd, 0, 4 * BKF_DIO_BUF);
        if (r == 0) {
            for (i = 0; i < 4 && !failed; i++)
                if (bkf_dio_put(d, buf, BKF_DIO_BUF) < 0)
                    failed = 1, en = errno;
            if (bkf_dio_end(d) < 0 && !failed)
                failed = 1, en = errno;
            ok(failed && en == EBADF, "a failed write is reported (errno %d, EBADF wanted)", en);
            /* the writer goes on serving after a failed range */
            roundtrip(d, dir, 0, BKF_DIO_MIN, 70000, "after a failed range");
        } else {
            ok(1, "# SKIP %s takes no O_DIRECT", dir);
        }
        free(buf);
        close(rfd);
    }
    /* a real full disk (root only): a 6 MiB tmpfs, a 16 MiB range */
    {
        char mnt[2048];

        snprintf(mnt, sizeof mnt, "%s/dio-full.XXXXXX", dir);
        if (getuid() == 0 && mkdtemp(mnt) != NULL && mount("tmpfs", mnt, "tmpfs", 0, "size=6m") == 0) {
            unsigned char *buf = calloc(1, 65536);
            int failed = 0, en = 0, i;

            snprintf(path, sizeof path, "%s/f", mnt);
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
            r = fd >= 0 ? bkf_dio_begin(d, fd, 0, (uint64_t)16 << 20) : -1;
            if (r == 0) {
                for (i = 0; i < 256 && !failed; i++)
                    if (bkf_dio_put(d, buf, 65536) < 0)
                        failed = 1, en = errno;
                if (bkf_dio_end(d) < 0 && !failed)
                    failed = 1, en = errno;
                ok(failed && en == ENOSPC, "a full disk is reported (errno %d, ENOSPC wanted)", en);
            } else {
                ok(r == 1, "a full disk: this tmpfs takes no O_DIRECT (Linux before 6.6): nothing to check");
            }
            if (fd >= 0)
                close(fd);
            free(buf);
            umount(mnt);
        } else {
            ok(1, "# SKIP a full disk needs root and a tmpfs mount");
        }
        rmdir(mnt);
    }
    bkf_dio_free(d);
    bkf_dio_free(NULL);
    ok(1, "freed (and free(NULL) is a no-op)");
    return done_testing();
}
