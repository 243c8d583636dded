#include "mapread.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLICE ((size_t)1 << 20)

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

int sink_pump_mapped(struct sink *s, int fd, uint64_t size, const char *what, struct err *e)
{
    unsigned char *map;
    uint64_t off;
    int rc = 0;

    if (!installed || size == 0 || size > MAPREAD_MAX)
        return 1;
    map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED)
        return 1;
    guard_hit = 0;
    guard_hi = (uintptr_t)map + (uintptr_t)size;
    guard_lo = (uintptr_t)map;
    for (off = 0; off < size && rc == 0; off += SLICE) {
        size_t n = size - off < SLICE ? (size_t)(size - off) : SLICE;

        rc = sink_write(s, map + off, n, e);
        if (rc == 0 && guard_hit)
            rc = err_setf(e, ERR_IO, "\"%s\" became shorter while it was read", what);
    }
    guard_lo = 0;
    guard_hi = 0;
    (void)munmap(map, (size_t)size);
    return rc;
}
