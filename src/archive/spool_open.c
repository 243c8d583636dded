/*
 * spool_open — whose spool this is, before anything is made in it: the
 * trust rules of the spool's directories (docs/WAL.md "The spool"), the
 * read-only view `status` takes, and the sweep of a crashed writer's temp
 * files.  Contract in spool.h.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "spool_int.h"
#include "util.h"

/* Remove temp files a crashed writer left behind (older than an hour, so a
 * live writer's file is never touched). */
static void sweep_tmp(struct spool *sp)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *de;
    time_t now = time(NULL);

    if (spool_sub(sp, path, sizeof path, "tmp", NULL, NULL) < 0 || (d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && now - st.st_mtime > 3600)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* The spool's markers make wal-push answer 0 without reading the file, and
 * its lock files are opened, truncated and written: a directory another
 * user can write into (made before walship first ran, in a shared parent)
 * would let that user plant a marker, or a link that makes us truncate a
 * file of ours.  Each directory must be a real one (not a link), ours, and
 * writable by nobody else; spool_dir itself must not let others swap them
 * (writable by others only with the sticky bit). */
static int trusted_dir(const char *path, int top, struct err *e)
{
    struct stat st;

    if ((top ? stat(path, &st) : lstat(path, &st)) < 0)
        return err_errno(e, ERR_IO, errno, "could not stat \"%s\"", path);
    if (!S_ISDIR(st.st_mode))
        return err_setf(e, ERR_CONFIG, "\"%s\" is not a directory (a symbolic link?): not trusted", path);
    if (top)
        return (st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)
                   ? err_setf(e, ERR_CONFIG, "\"%s\" is writable by every user without the sticky bit: not trusted",
                              path)
                   : 0;
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return err_setf(e, ERR_CONFIG,
                        "\"%s\" is owned by uid %lu, mode %04o: a spool directory must be owned by uid %lu and "
                        "writable by nobody else (not trusted)",
                        path, (unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned long)geteuid());
    return 0;
}

/* Root on a spool another user owns (the user archive_command runs as):
 * the directories and lock files root would create there are root's, and
 * that user's wal-push refuses them as not trusted: archiving would stop
 * over a command run by hand with sudo. */
static int root_on_others(const char *path, struct err *e)
{
    struct stat st;
    struct passwd pw, *res = NULL;
    char buf[1024], who[64];

    /* one others can write into is refused as not trusted, whoever runs */
    if (geteuid() != 0 || stat(path, &st) < 0 || st.st_uid == 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return 0;
    if (getpwuid_r(st.st_uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL)
        snprintf(who, sizeof who, "%s", pw.pw_name);
    else
        snprintf(who, sizeof who, "#%lu", (unsigned long)st.st_uid);
    return err_setf(e, ERR_CONFIG, "\"%s\" belongs to %s, not root (not trusted): run walship as the user "
                    "archive_command runs as (sudo -u %s walship ...); as root it would make spool files that "
                    "user's wal-push does not trust, and archiving would stop", path, who, who);
}

static struct spool *spool_new(const char *dir, uint64_t max_bytes, uint64_t sysid, struct err *e)
{
    struct spool *sp;

    if (dir == NULL || dir[0] != '/') {
        err_setf(e, ERR_CONFIG, "spool_dir must be an absolute path (got \"%s\")", dir ? dir : "");
        return NULL;
    }
    if (sysid == 0) {
        err_setf(e, ERR_INTERNAL, "a spool belongs to one cluster: its system identifier is unknown");
        return NULL;
    }
    /* A spool on a volume that did not mount: what is queued there lies
     * below the mount point, hidden once the volume is mounted (async
     * regions would never get files acknowledged to PostgreSQL), and the
     * queue on the volume is out of sight now. */
    if (path_refuse_unmounted(dir, ERR_CONFIG, "spool_dir", "files spooled there would be hidden once the volume is "
                              "mounted, and the spool on it is out of sight now; not using it (mount the volume)",
                              e) < 0)
        return NULL;
    sp = calloc(1, sizeof *sp);
    if (sp == NULL || (sp->dir = xasprintf("%s/%llu", dir, (unsigned long long)sysid)) == NULL) {
        free(sp);
        err_setf(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    sp->sysid = sysid;
    sp->max_bytes = max_bytes;
    return sp;
}

static const char *const subs[] = { "queue", "pushed", "claims", "tmp" };

int spool_open(const char *dir, uint64_t max_bytes, uint64_t sysid, struct spool **out, struct err *e)
{
    struct spool *sp = spool_new(dir, max_bytes, sysid, e);
    char path[PATH_MAX];
    size_t i;

    if (sp == NULL)
        return -1;
    /* before anything is made: whose spool this is */
    if (root_on_others(dir, e) < 0 || root_on_others(sp->dir, e) < 0 ||
        (access(dir, F_OK) == 0 && trusted_dir(dir, 1, e) < 0) ||
        (access(sp->dir, F_OK) == 0 && trusted_dir(sp->dir, 0, e) < 0))
        goto fail;
    for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (spool_sub(sp, path, sizeof path, subs[i], NULL, NULL) < 0 || mkdir_p(path, 0700, e) < 0 ||
            trusted_dir(path, 0, e) < 0)
            goto fail;
    if (trusted_dir(sp->dir, 0, e) < 0 || trusted_dir(dir, 1, e) < 0)
        goto fail;
    sweep_tmp(sp);
    *out = sp;
    return 0;
fail:
    spool_free(sp);
    return err_prefix(e, "spool_dir \"%s\"", dir);
}

int spool_open_ro(const char *dir, uint64_t sysid, struct spool **out, struct err *e)
{
    struct spool *sp = spool_new(dir, 0, sysid, e);
    struct stat st;
    char path[PATH_MAX];
    size_t i;

    if (sp == NULL)
        return -1;
    for (i = 0; i <= sizeof subs / sizeof subs[0]; i++) {
        if (i == 0 ? strlcopy(path, sp->dir, sizeof path) < 0 : spool_sub(sp, path, sizeof path, subs[i - 1], NULL, NULL) < 0)
            goto toolong;
        if (lstat(path, &st) == 0 && (!S_ISDIR(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH)))) {
            err_setf(e, ERR_CONFIG, "\"%s\" is not a directory writable only by its owner: not trusted", path);
            goto fail;
        }
    }
    *out = sp;
    return 0;
toolong:
    err_setf(e, ERR_CONFIG, "spool path too long");
fail:
    spool_free(sp);
    return err_prefix(e, "spool_dir \"%s\"", dir);
}
