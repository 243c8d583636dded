/*
 * clockshift — an LD_PRELOAD shim for the integration tests: time(),
 * gettimeofday() and clock_gettime(CLOCK_REALTIME*) of the process run
 * CLOCKSHIFT_SECONDS seconds off the real clock (a host whose clock
 * is wrong).  Monotonic clocks are left alone.  Built by the test that
 * uses it (tests/lib/walship.sh: ws_clockshift_build); never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/select.h>     /* struct timeval, without gettimeofday's declaration */
#include <time.h>

static long shift(void)
{
    const char *s = getenv("CLOCKSHIFT_SECONDS");

    return s != NULL ? strtol(s, NULL, 10) : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    int rc;

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "clock_gettime");
    rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += shift();
    return rc;
}

time_t time(time_t *out)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL)
        *out = ts.tv_sec;
    return ts.tv_sec;
}

int gettimeofday(struct timeval *tv, void *tz);
int gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;

    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (tv != NULL) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return 0;
}
