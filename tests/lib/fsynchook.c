/*
 * fsynchook — an LD_PRELOAD shim for the integration tests: a directory
 * whose fsync fails (EIO) once a file named FSYNCHOOK_NAME is in it, the
 * disk failing just after a rename put that file in place.  Every fsync
 * of such a directory fails, once FSYNCHOOK_NAME appeared there.  Built
 * by the test that uses it (tests/lib/walship.sh: ws_fsynchook_build);
 * never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int fsync(int fd)
{
    static int (*real)(int);
    const char *name = getenv("FSYNCHOOK_NAME");
    struct stat st;

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "fsync");
    if (name != NULL && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && faccessat(fd, name, F_OK, 0) == 0) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}
