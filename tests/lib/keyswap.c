/*
 * keyswap — an LD_PRELOAD shim for the integration tests: a key rotation
 * at an exact moment of a walship run.  The first time the process opens
 * KEYSWAP_PATH (the key_file), KEYSWAP_NEW is renamed over it right after
 * the open: the process reads the old key through its descriptor, and
 * every later look at the path sees the new file, as if the operator had
 * rotated the key in between.  Built by the test that uses it
 * (tests/lib/walship.sh: ws_keyswap_build); never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static void hook(const char *path, int fd)
{
    static int done;
    const char *want = getenv("KEYSWAP_PATH"), *repl = getenv("KEYSWAP_NEW");

    if (done || fd < 0 || want == NULL || repl == NULL || path == NULL || strcmp(path, want) != 0)
        return;
    done = 1;
    (void)rename(repl, want);
}

static int real_open(const char *sym, const char *path, int flags, mode_t mode)
{
    int (*real)(const char *, int, ...);

    *(void **)&real = dlsym(RTLD_NEXT, sym);
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    int fd;

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    fd = real_open("open", path, flags, mode);
    hook(path, fd);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    int fd;

    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;

        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    fd = real_open("open64", path, flags, mode);
    hook(path, fd);
    return fd;
}
