/*
 * eio_fstatat — for a unit test binary (include once): an entry whose stat
 * fails with EIO (a bad sector, an NFS server's ESTALE).  The binary's
 * fstatat stands in front of the C library's; set eio_name to the entry's
 * name, NULL to stop.  Tests that a failed look-up is never "no entry"
 * (docs/ARCHITECTURE.md, the file:// driver's rule).
 */
#ifndef WALSHIP_TEST_EIO_FSTATAT_H
#define WALSHIP_TEST_EIO_FSTATAT_H

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static const char *eio_name;

int fstatat(int fd, const char *restrict name, struct stat *restrict st, int flags)
{
    static int (*real)(int, const char *, struct stat *, int);

    if (eio_name != NULL && strcmp(name, eio_name) == 0) {
        errno = EIO;
        return -1;
    }
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "fstatat");
    return real(fd, name, st, flags);
}

#endif
