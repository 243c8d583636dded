#include "mapread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLICE ((size_t)1 << 20)
#define WINDOW ((uint64_t)16 << 20)     /* a ranged pump maps this much at a time */
#define MAP_MIN ((uint64_t)4 << 20)     /* below this, pread: a mapping's set-up and unmapping cost more */

static struct sigaction prev_bus;
static uintptr_t page_mask;
static volatile sig_atomic_t installed;

/* The range this thread is pumping, and whether a fault was met in it.
 * Read by the signal handler, which runs on the faulting thread. */
static __thread volatile uintptr_t guard_lo, guard_hi;
static __thread volatile sig_atomic_t guard_hit;

/* A fault that is not ours: do what would have been done without us. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
    struct sigaction dfl;

    if ((prev_bus.sa_flags & SA_SIGINFO) && prev_bus.sa_sigaction != NULL) {
        prev_bus.sa_sigaction(sig, si, uc);
        return;
    }
    if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN) {
        prev_bus.sa_handler(sig);
        return;
    }
    /* default action: returning re-runs the faulting access, which is
     * then fatal as it would have been */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(SIGBUS, &dfl, NULL);
    if (si->si_code <= 0)
        (void)raise(sig);   /* sent, not a fault: nothing re-runs */
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t at = (uintptr_t)si->si_addr, lo = guard_lo, hi = guard_hi;
    int saved = errno;

    if (si->si_code == BUS_ADRERR && lo != 0 && at >= lo && at < hi) {
        uintptr_t page = at & page_mask;

        /* the file ends before the mapping does: zero pages from here to
         * the end of the range, so the reader finishes on zeros */
        if (mmap((void *)page, hi - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            guard_hit = 1;
            errno = saved;
            return;
        }
    }
    pass_on(sig, si, uc);
    errno = saved;
}

int mapread_install(void)
{
    struct sigaction sa;
    long pg = sysconf(_SC_PAGESIZE);

    if (installed)
        return 0;
    if (pg <= 0 || (pg & (pg - 1)) != 0)
        return -1;
    page_mask = ~((uintptr_t)pg - 1);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &prev_bus) < 0)
        return -1;
    installed = 1;
    return 0;
}

/* Pump `len` bytes at `off` (page-aligned) of fd from one mapping.  0,
 * -1 with e set, 1 when the range could not be mapped (nothing written). */
static int pump_window(struct sink *s, int fd, uint64_t off, uint64_t len, const char *what, struct err *e)
{
    unsigned char *map;
    struct stat st;
    uint64_t at;
    int rc = 0;

    map = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
    if (map == MAP_FAILED)
        return 1;
    guard_hit = 0;
    guard_hi = (uintptr_t)map + (uintptr_t)len;
    guard_lo = (uintptr_t)map;
    for (at = 0; at < len && rc == 0; at += SLICE) {
        size_t n = len - at < SLICE ? (size_t)(len - at) : SLICE;

        rc = sink_write(s, map + at, n, e);
        if (rc == 0 && guard_hit)
            rc = err_setf(e, ERR_IO, "\"%s\" became shorter while it was read", what);
    }
    guard_lo = 0;
    guard_hi = 0;
    (void)munmap(map, (size_t)len);
    /* a cut inside the last page raises no fault: the bytes past the new
     * end read as zeros */
    if (rc == 0 && (fstat(fd, &st) < 0 || (uint64_t)st.st_size < off + len))
        rc = err_setf(e, ERR_IO, "\"%s\" became shorter while it was read", what);
    return rc;
}

int sink_pump_mapped(struct sink *s, int fd, uint64_t size, const char *what, struct err *e)
{
    if (!installed || size == 0 || size > MAPREAD_MAX)
        return 1;
    return pump_window(s, fd, 0, size, what, e);
}

static int pump_pread(struct sink *s, int fd, uint64_t off, uint64_t len, const char *what, struct err *e)
{
    unsigned char *buf = malloc(SLICE);
    int rc = -1;

    if (buf == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory reading \"%s\"", what);
    while (len > 0) {
        ssize_t n = pread(fd, buf, len < SLICE ? (size_t)len : SLICE, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err_errno(e, ERR_IO, errno, "could not read \"%s\"", what);
            goto out;
        }
        if (n == 0) {
            err_setf(e, ERR_IO, "\"%s\" became shorter while it was read", what);
            goto out;
        }
        if (sink_write(s, buf, (size_t)n, e) < 0)
            goto out;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int sink_pump_range(struct sink *s, int fd, uint64_t off, uint64_t len, const char *what, struct err *e)
{
    uint64_t end = off + len;

    /* windows of WINDOW bytes, the next one's read-ahead asked for
     * before the current one is mapped (MAP_POPULATE waits for its pages);
     * a start that is not page-aligned (a range from inside an object) is
     * read with pread, as is whatever cannot be mapped */
    while (installed && len >= MAP_MIN && off < end) {
        uint64_t n = end - off < WINDOW ? end - off : WINDOW;
        int rc;

        if ((off & ~(uint64_t)page_mask) != 0)
            break;
        if (off + n < end)
            (void)posix_fadvise(fd, (off_t)(off + n), (off_t)(end - off - n < WINDOW ? end - off - n : WINDOW),
                                POSIX_FADV_WILLNEED);
        rc = pump_window(s, fd, off, n, what, e);
        if (rc < 0)
            return -1;
        if (rc > 0)
            break;      /* could not be mapped: read the rest */
        off += n;
    }
    return off < end ? pump_pread(s, fd, off, end - off, what, e) : 0;
}
