/*
 * renamehook — an LD_PRELOAD shim for the integration tests: another
 * writer acting at an exact moment of a walship run.  The first time the
 * process renames a file into a path ending with RENAMEHOOK_SUFFIX
 * (renameat2 or rename, as the file:// driver publishes an object), the
 * file RENAMEHOOK_UNLINK is removed first: a `delete` on another host,
 * say, taking a backup's manifest while a backup-push runs.  With
 * RENAMEHOOK_LINK, that file is linked to the path first instead: another
 * writer (a wal-push) publishing the same name a moment earlier.  Built by the
 * test that uses it (tests/lib/walship.sh: ws_renamehook_build); never
 * installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hook(const char *newpath)
{
    static int done;
    const char *suffix = getenv("RENAMEHOOK_SUFFIX"), *victim = getenv("RENAMEHOOK_UNLINK");
    const char *other = getenv("RENAMEHOOK_LINK");
    size_t n, k;

    if (done || suffix == NULL || (victim == NULL && other == NULL) || newpath == NULL)
        return;
    n = strlen(newpath);
    k = strlen(suffix);
    if (n < k || strcmp(newpath + n - k, suffix) != 0)
        return;
    done = 1;
    if (victim != NULL)
        unlink(victim);
    if (other != NULL)
        (void)link(other, newpath);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
    static int (*real)(int, const char *, int, const char *, unsigned int);

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "renameat2");
    hook(newpath);
    return real(olddirfd, oldpath, newdirfd, newpath, flags);
}

int rename(const char *oldpath, const char *newpath)
{
    static int (*real)(const char *, const char *);

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "rename");
    hook(newpath);
    return real(oldpath, newpath);
}
