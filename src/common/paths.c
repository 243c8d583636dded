/*
 * paths — see paths.h.
 *
 * An unmounted volume: after a reboot that did not mount it (a missing
 * device, a typo in fstab, a failed fsck), its mount point is an empty
 * directory of the root file system, and a restore into it looks like a
 * restore into a fresh directory.  It fills the wrong disk and, once the
 * volume is mounted, is hidden under it.  /etc/fstab is the host's own
 * record of where volumes belong; /proc/self/mounts what is mounted now.
 * A volume mounted some other way (a systemd .mount unit, a script) is not
 * seen: the check adds a refusal where the host says what it expects, it
 * does not prove the opposite.
 */
#include "paths.h"

#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* `p` made absolute (against the working directory) with ".", ".." and
 * repeated '/' resolved lexically; no trailing '/' but for "/". */
static int norm_path(const char *p, char out[PATH_MAX])
{
    char buf[PATH_MAX], *save = NULL, *comp;
    size_t n = 0;

    if (p[0] == '/') {
        if (strlcopy(buf, p, sizeof buf) < 0)
            return -1;
    } else {
        char cwd[PATH_MAX];

        if (getcwd(cwd, sizeof cwd) == NULL || snprintf(buf, sizeof buf, "%s/%s", cwd, p) >= (int)sizeof buf)
            return -1;
    }
    out[0] = '\0';
    for (comp = strtok_r(buf, "/", &save); comp != NULL; comp = strtok_r(NULL, "/", &save)) {
        size_t len = strlen(comp);

        if (strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0) {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;    /* the '/' before it */
            out[n] = '\0';
            continue;
        }
        if (n + 1 + len + 1 > PATH_MAX)
            return -1;
        out[n++] = '/';
        memcpy(out + n, comp, len + 1);
        n += len;
    }
    if (n == 0)
        memcpy(out, "/", 2);
    return 0;
}

int path_resolve(const char *p, char out[PATH_MAX])
{
    char abs[PATH_MAX], head[PATH_MAX], res[PATH_MAX], joined[2 * PATH_MAX + 2];
    char *slash;

    if (norm_path(p, abs) < 0 || strlcopy(head, abs, sizeof head) < 0)
        return -1;
    while (realpath(head, res) == NULL) {
        if ((errno != ENOENT && errno != ENOTDIR) || (slash = strrchr(head, '/')) == NULL)
            return strlcopy(out, abs, PATH_MAX);   /* unreadable: the lexical form */
        slash[slash == head ? 1 : 0] = '\0';
    }
    snprintf(joined, sizeof joined, "%s/%s", res, abs + strlen(head));
    return norm_path(joined, out);
}

int path_under(const char *base, const char *p, const char **rel)
{
    size_t n = strcmp(base, "/") == 0 ? 0 : strlen(base);

    if (strncmp(p, base, n) != 0 || (p[n] != '\0' && p[n] != '/'))
        return 0;
    *rel = p[n] == '/' ? p + n + 1 : p + n;
    return 1;
}

/* Is `dir` (as fstab writes it) mounted, by the table `mounts`? */
static int listed(FILE *mounts, const char *dir, const char *res)
{
    struct mntent me;
    char buf[4096];

    rewind(mounts);
    while (getmntent_r(mounts, &me, buf, sizeof buf) != NULL)
        if (strcmp(me.mnt_dir, dir) == 0 || strcmp(me.mnt_dir, res) == 0)
            return 1;
    return 0;
}

int path_unmounted_volume(const char *p, const char *fstab, const char *mounts, char *where, size_t wlen)
{
    FILE *ft, *mt;
    struct mntent me;
    char buf[4096], target[PATH_MAX], res[PATH_MAX];
    const char *rel;
    size_t best = 0;

    if (path_resolve(p, target) < 0 || (ft = setmntent(fstab, "r")) == NULL)
        return 0;
    if ((mt = setmntent(mounts, "r")) == NULL) {
        endmntent(ft);
        return 0;
    }
    while (getmntent_r(ft, &me, buf, sizeof buf) != NULL) {
        if (me.mnt_dir[0] != '/' || strcmp(me.mnt_dir, "/") == 0 || strcmp(me.mnt_type, "swap") == 0 ||
            path_resolve(me.mnt_dir, res) < 0 || strcmp(res, "/") == 0 || !path_under(res, target, &rel) ||
            strlen(res) <= best || listed(mt, me.mnt_dir, res))
            continue;
        best = strlen(res);
        snprintf(where, wlen, "%s", me.mnt_dir);
    }
    endmntent(mt);
    endmntent(ft);
    return best > 0;
}

int path_refuse_unmounted(const char *p, enum err_code code, const char *what, const char *then, struct err *e)
{
    char where[PATH_MAX];

    if (path_unmounted_volume(p, "/etc/fstab", "/proc/self/mounts", where, sizeof where) == 0)
        return 0;
    return err_setf(e, code, "%s \"%s\" is on %s, a mount point in /etc/fstab where nothing is mounted: %s", what, p,
                    where, then);
}

int path_check_mounted(const char *p, const char *what, struct err *e)
{
    return path_refuse_unmounted(p, ERR_USAGE, what, "the restore would fill the file system below it, and the "
                                 "volume, once mounted, would hide it (mount the volume, or give --allow-unmounted "
                                 "if writing there is meant)", e);
}
