/*
 * bkf_fs — see bkf_fs.h.
 */
#include "bkf_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_fetch.h"
#include "note.h"
#include "paths.h"
#include "util.h"

int bkf_clean_path(const char *p, int is_dir, char out[PATH_MAX])
{
    size_t n = strlen(p);
    const char *s;

    if (is_dir && n > 1 && p[n - 1] == '/')
        n--;
    if (n == 0 || n >= PATH_MAX || p[0] == '/')
        return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    for (s = out; s != NULL; s = strchr(s, '/')) {
        const char *end;
        size_t len;

        if (*s == '/')
            s++;
        end = strchr(s, '/');
        len = end ? (size_t)(end - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return -1;
    }
    return 0;
}

int bkf_open_dir(int rootfd, const char *rel, int create, int *out)
{
    char buf[PATH_MAX], *comp, *slash;
    int cur = rootfd;

    if (*rel == '\0') {
        *out = dup(rootfd);
        return *out < 0 ? -1 : 0;
    }
    if (strlcopy(buf, rel, sizeof buf) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (comp = buf; comp != NULL; comp = slash) {
        int fd;

        slash = strchr(comp, '/');
        if (slash != NULL)
            *slash++ = '\0';
        fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
            /* another part's thread may create it at the same moment */
            if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST)
                goto fail;
            fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
            goto fail;
        if (cur != rootfd)
            close(cur);
        cur = fd;
    }
    *out = cur;
    return 0;
fail:
    if (cur != rootfd) {
        int saved = errno;
        close(cur);
        errno = saved;
    }
    return -1;
}

int bkf_dir_state(const char *path, struct err *e)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return err_errno(e, errno == ENOTDIR ? ERR_USAGE : ERR_IO, errno, "could not open directory \"%s\"", path);
    }
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n ? 1 : 0;
}

int bkf_prepare_dir(const char *path, const char *what, int *fd, struct err *e)
{
    int st = bkf_dir_state(path, e);

    if (st < 0)
        return -1;
    if (st > 0)
        return err_setf(e, ERR_USAGE, "%s \"%s\" is not empty: refusing to restore into it", what, path);
    if (mkdir_p(path, 0700, e) < 0)
        return -1;
    *fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0)
        return err_errno(e, ERR_IO, errno, "could not open %s \"%s\"", what, path);
    /* Two restores into one directory at once (a retried one, a second
     * terminal) both found it empty above, and each wrote its backup's
     * files into the other's: the directory is locked while this restore
     * writes into it (the lock goes with the descriptor, at the end), and
     * found empty again under the lock.  A file system without flock on
     * directories (errors other than "held") is restored into unlocked. */
    if (flock(*fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
        close(*fd);
        *fd = -1;
        return err_setf(e, ERR_LOCKED, "another walship is restoring into %s \"%s\" right now (it holds the "
                        "directory's lock): let it finish (or stop it), then restore into an empty directory",
                        what, path);
    }
    st = bkf_dir_state(path, e);
    if (st != 0) {
        close(*fd);
        *fd = -1;
        return st < 0 ? -1 : err_setf(e, ERR_USAGE, "%s \"%s\" is not empty: refusing to restore into it (another "
                                      "restore wrote into it meanwhile?)", what, path);
    }
    /* an existing empty directory keeps whatever mode it was made with;
     * PostgreSQL refuses to start on a data directory others can read */
    if (fchmod(*fd, 0700) < 0) {
        int saved = errno;
        close(*fd);
        *fd = -1;
        return err_errno(e, ERR_IO, saved, "could not set the mode of %s \"%s\" to 0700", what, path);
    }
    return 0;
}

int bkf_write_small(int dirfd, const char *dir, const char *name, const void *buf, size_t len, struct err *e)
{
    char tmp[64];
    int fd, rc = -1;

    snprintf(tmp, sizeof tmp, "%s.walship-tmp", name);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s/%s\"", dir, tmp);
    if (write_all(fd, buf, len) < 0 || fsync(fd) < 0) {
        err_errno(e, ERR_IO, errno, "could not write \"%s/%s\"", dir, tmp);
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        err_errno(e, ERR_IO, errno, "could not rename \"%s/%s\" into place", dir, tmp);
        goto out;
    }
    if (fsync(dirfd) < 0) {
        /* in place but maybe not durable, and the fetch fails: it goes
         * again, or a failed fetch left a backup_label (DIR looks complete) */
        err_errno(e, ERR_IO, errno, "could not fsync \"%s\" after renaming \"%s\" into it", dir, name);
        (void)unlinkat(dirfd, name, 0);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int bkf_abs_path_ok(const char *p)
{
    const char *s;

    if (p[0] != '/' || p[1] == '\0')
        return 0;
    for (s = p + 1;; s++) {
        const char *end = strchr(s, '/');
        size_t len = end ? (size_t)(end - s) : strlen(s);

        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (end == NULL)
            return 1;
        s = end;
    }
}

/* One line of a tablespace_map, unescaped as PostgreSQL's
 * read_tablespace_map does: the OID up to the first blank, then the path. */
static int tsmap_line(const struct manifest *m, const char *line, size_t *which, struct err *e)
{
    const char *sp = strchr(line, ' ');
    uint64_t oid = 0;
    const char *d;
    size_t i;

    for (d = line; sp != NULL && d < sp && *d >= '0' && *d <= '9' && oid <= UINT32_MAX; d++)
        oid = oid * 10 + (uint64_t)(*d - '0');
    if (sp == NULL || sp == line || d != sp || oid > UINT32_MAX)
        return err_setf(e, ERR_CORRUPT, "backup %s: its tablespace_map holds a line that is not \"OID PATH\"",
                        m->name);
    for (i = 0; i < m->ntablespaces && m->tablespaces[i].oid != oid; i++)
        ;
    if (i == m->ntablespaces) {
        *which = SIZE_MAX;  /* not in the backup */
        return 0;
    }
    if (strcmp(m->tablespaces[i].path, sp + 1) != 0)
        return err_setf(e, ERR_CORRUPT, "backup %s: its tablespace_map puts tablespace %u at \"%s\", its manifest "
                        "at \"%s\": the backup's objects disagree (damaged or forged), restore refuses to guess",
                        m->name, (unsigned)oid, sp + 1, m->tablespaces[i].path);
    *which = i;
    return 0;
}

/* Append `s` escaped as do_pg_backup_start does ('\\', '\n', '\r'). */
static size_t put_esc(char *out, const char *s)
{
    size_t k = 0;

    for (; *s; s++) {
        if (*s == '\\' || *s == '\n' || *s == '\r')
            out[k++] = '\\';
        out[k++] = *s;
    }
    return k;
}

int bkf_build_tsmap(const unsigned char *in, size_t len, const struct manifest *m, const char *const *targets,
                    const struct note_sink *notes, char **out, size_t *outlen, struct err *e)
{
    size_t i, n = 0, used = 0, cap = 1, which = 0;     /* cap: the final NUL */
    char *line = malloc(len + 1), *buf, *seen = calloc(m->ntablespaces + 1, 1);
    int bs = 0;

    for (i = 0; i < m->ntablespaces; i++)
        cap += 16 + 2 * strlen(targets[i]);     /* each tablespace's line at most once */
    buf = malloc(cap);
    if (line == NULL || buf == NULL || seen == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (i = 0; i <= len; i++) {
        unsigned char ch = i < len ? in[i] : '\n';     /* a last line without its newline */

        if (!bs && (ch == '\n' || ch == '\r')) {
            if (n == 0)
                continue;
            line[n] = '\0';
            n = 0;
            if (tsmap_line(m, line, &which, e) < 0)
                goto fail;
            if (which == SIZE_MAX) {
                note(notes, LOG_WARNING, "backup %s: its tablespace_map names a tablespace its manifest does not "
                     "hold (%.*s): that line is left out of the restored tablespace_map (dropped while the backup "
                     "ran, or forged); PostgreSQL links no directory for it", m->name,
                     (int)strcspn(line, " "), line);
                continue;
            }
            if (seen[which]++) {
                err_setf(e, ERR_CORRUPT, "backup %s: its tablespace_map names tablespace %u twice", m->name,
                         (unsigned)m->tablespaces[which].oid);
                goto fail;
            }
            used += (size_t)snprintf(buf + used, cap - used, "%u ", (unsigned)m->tablespaces[which].oid);
            used += put_esc(buf + used, targets[which]);
            buf[used++] = '\n';
        } else if (!bs && ch == '\\') {
            bs = 1;
        } else {
            line[n++] = (char)ch;
            bs = 0;
        }
    }
    buf[used] = '\0';
    free(line);
    free(seen);
    *out = buf;
    *outlen = used;
    return 0;
fail:
    free(line);
    free(seen);
    free(buf);
    return -1;
}

unsigned bkf_data_dir_mode(const struct bkf_dir *dirs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (dirs[i].root == 0 && strcmp(dirs[i].rel, "global") == 0)
            return (dirs[i].mode & 0050) == 0050 ? 0750 : 0700;
    return 0700;
}

/* Does the backup write anything at or below `rel` in DIR? */
static const char *backup_owns(const struct manifest *m, const char *rel)
{
    size_t i, n = strlen(rel);

    for (i = 0; i < m->nfiles; i++)
        if (strncmp(m->files[i].path, rel, n) == 0 && (m->files[i].path[n] == '/' || m->files[i].path[n] == '\0'))
            return m->files[i].path;
    return NULL;
}

int bkf_check_roots(const char *dir, const struct manifest *m, const char *const *targets, int allow_unmounted,
                    struct err *e)
{
    char d[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    const char *rel, *own;
    size_t i, k;

    if (path_resolve(dir, d) < 0)
        return err_errno(e, ERR_USAGE, errno ? errno : ENAMETOOLONG, "directory \"%s\": path too long", dir);
    if (!allow_unmounted && path_check_mounted(dir, "directory", e) < 0)
        return -1;
    for (i = 0; i < m->ntablespaces; i++) {
        unsigned oid = (unsigned)m->tablespaces[i].oid;

        if (path_resolve(targets[i], a) < 0)
            return err_setf(e, ERR_USAGE, "tablespace directory \"%s\": path too long", targets[i]);
        if (!allow_unmounted && path_check_mounted(targets[i], "tablespace directory", e) < 0)
            return -1;
        if (path_under(a, d, &rel))
            return err_setf(e, ERR_USAGE, "tablespace %u would be restored into \"%s\", which %s the data directory "
                            "\"%s\" (use --tablespace-map OLD=NEW)", oid, targets[i], *rel ? "contains" : "is",
                            dir);
        if (path_under(d, a, &rel) && (own = backup_owns(m, rel)) != NULL)
            return err_setf(e, ERR_USAGE, "tablespace %u would be restored into \"%s\", where the backup writes "
                            "\"%s\" of the data directory (use --tablespace-map OLD=NEW)", oid, targets[i], own);
        for (k = 0; k < m->ntablespaces; k++) {
            if (k == i || path_resolve(targets[k], b) < 0 || !path_under(b, a, &rel))
                continue;
            return err_setf(e, ERR_USAGE, "tablespaces %u and %u would be restored into \"%s\" and \"%s\", one "
                            "inside the other (use --tablespace-map OLD=NEW)", (unsigned)m->tablespaces[k].oid, oid,
                            targets[k], targets[i]);
        }
    }
    return 0;
}

/* "/srv/ts/../../root/.ssh" reads as /srv/ts to whoever skims it, hence
 * bkf_abs_path_ok on the manifest's paths. */
int bkf_plan_tablespaces(const struct manifest *m, const struct bkf_opts *o, char **ts_target, struct err *e)
{
    size_t i, k;

    for (i = 0; i < m->ntablespaces; i++)
        if (!bkf_abs_path_ok(m->tablespaces[i].path))
            return err_setf(e, ERR_CORRUPT, "backup %s: tablespace %u has a path that is not absolute and canonical "
                            "(as PostgreSQL keeps a LOCATION): \"%s\"", m->name, (unsigned)m->tablespaces[i].oid,
                            m->tablespaces[i].path);

    for (k = 0; k < o->ntsmap; k++) {
        const struct bkf_tsmap *t = &o->tsmap[k];

        if (t->old_path[0] != '/' || t->new_path[0] != '/')
            return err_setf(e, ERR_USAGE, "--tablespace-map %s=%s: both paths must be absolute", t->old_path,
                            t->new_path);
        for (i = 0; i < m->ntablespaces && strcmp(m->tablespaces[i].path, t->old_path) != 0; i++)
            ;
        if (i == m->ntablespaces)
            return err_setf(e, ERR_USAGE, "--tablespace-map %s=%s: backup %s has no tablespace at %s", t->old_path,
                            t->new_path, m->name, t->old_path);
    }
    for (i = 0; i < m->ntablespaces; i++) {
        const char *target = m->tablespaces[i].path;

        for (k = 0; k < o->ntsmap && strcmp(o->tsmap[k].old_path, target) != 0; k++)
            ;
        if (k < o->ntsmap)
            target = o->tsmap[k].new_path;
        else if (o->named_tablespaces)
            return err_setf(e, ERR_USAGE, "backup %s: tablespace %u would be restored at \"%s\", a path the backup "
                            "names: run as root, restore writes a tablespace only where told; give --tablespace-map "
                            "%s=NEWDIR (or %s=%s to keep that path)", m->name, (unsigned)m->tablespaces[i].oid,
                            target, target, target, target);
        if (target[0] != '/')
            return err_setf(e, ERR_CORRUPT, "backup %s: tablespace %u has a relative path \"%s\"", m->name,
                            (unsigned)m->tablespaces[i].oid, target);
        for (k = 0; k < i; k++)
            if (strcmp(ts_target[k], target) == 0 || m->tablespaces[k].oid == m->tablespaces[i].oid)
                return err_setf(e, ERR_USAGE, "backup %s: tablespaces %u and %u would share \"%s\"", m->name,
                                (unsigned)m->tablespaces[k].oid, (unsigned)m->tablespaces[i].oid, target);
        if ((ts_target[i] = strdup(target)) == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory");
    }
    return 0;
}
