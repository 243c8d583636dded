/*
 * walfetch_serve — how a restore_command call takes a file the prefetcher
 * left in the prefetch directory (walfetch.h): checked again for the
 * cluster being recovered, then renamed onto DEST; the last segment before
 * the archive's end by copy (PostgreSQL reads it twice).  And what ties a
 * prefetcher to its directory and configuration (walfetch_int.h).
 */
#include "walfetch.h"
#include "walfetch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "util.h"
#include "wal.h"

/* The prefetcher's note of the last segment before the first one the
 * archive did not have (".end"): the file recovery is likely to ask for
 * twice.  PostgreSQL reads the last segment again when it ends recovery and
 * starts the new timeline; over a slow link that second download cost a
 * quarter of a second in the drill. */
static int is_last_before_end(const char *dir, const char *name)
{
    char path[PATH_MAX], buf[WAL_NAME_MAX];
    ssize_t n;
    int fd;

    if (snprintf(path, sizeof path, "%s/.end", dir) >= (int)sizeof path ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strcmp(buf, name) == 0;
}

/* Copy SRC to DEST through a temp file (the prefetched file stays). */
static int copy_file_to(const char *src, const char *dest, struct err *e)
{
    char tmp[PATH_MAX], buf[1 << 16];
    int in, out, rc = -1;
    ssize_t n;

    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
        return err_errno(e, ERR_IO, errno, "could not open \"%s\"", src);
    if ((out = open_tmp_beside(dest, tmp, sizeof tmp, e)) < 0) {
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write_all(out, buf, (size_t)n) < 0)
            break;
    if (n == 0 && fsync(out) == 0 && close(out) == 0) {
        out = -1;
        if (rename(tmp, dest) == 0)
            rc = 0;
    }
    if (rc < 0)
        err_errno(e, ERR_IO, errno, "could not copy prefetched \"%s\" to \"%s\"", src, dest);
    if (out >= 0)
        close(out);
    close(in);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int walfetch_serve_file(const char *path, const char *name, const char *dest, const struct cluster_info *ci,
                        struct err *e)
{
    struct stat a, b;
    int fd, rc = -1;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
    /* verified when it was fetched, for the prefetcher's cluster: it must
     * be this one's too (a prefetcher left from another restore) */
    if (ci->sysid != 0 && walfetch_check_header(fd, name, ci, e) < 0) {
        (void)unlink(path);
        goto out;
    }
    if (rename(path, dest) < 0) {
        err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not move \"%s\" to \"%s\"", path, dest);
        goto out;
    }
    if (fstat(fd, &a) < 0 || stat(dest, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        (void)unlink(dest);     /* replaced between the check and the rename */
        err_setf(e, ERR_IO, "the prefetched %s changed while it was served", name);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

int walfetch_from_prefetch(const char *name, const char *dest, const struct cluster_info *ci, unsigned wait_ms,
                           struct err *e)
{
    char dir[PATH_MAX], path[PATH_MAX], part[PATH_MAX];
    uint64_t deadline = now_ms() + wait_ms;

    if (walfetch_prefetch_dir(dest, dir, sizeof dir) < 0 ||
        snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
        snprintf(part, sizeof part, "%s/.%s.part", dir, name) >= (int)sizeof part || !walfetch_dir_trusted(dir))
        return 0;
    for (;;) {
        if (access(path, F_OK) == 0 && is_last_before_end(dir, name)) {
            int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), bad;

            if (fd < 0)
                return 0;
            bad = ci->sysid != 0 && walfetch_check_header(fd, name, ci, e) < 0;
            close(fd);
            if (bad) {
                (void)unlink(path);
                return -1;
            }
            if (copy_file_to(path, dest, e) == 0)
                return 1;
            /* no room for a copy (a full pg_wal, where the prefetched
             * file holds the space): served by rename as any other, and
             * PostgreSQL's second read of it downloads it again */
            err_clear(e);
        }
        if (walfetch_serve_file(path, name, dest, ci, e) == 0)
            return 1;
        if (e->code != ERR_NOTFOUND)
            return -1;
        err_clear(e);
        /* being prefetched right now: waiting beats downloading it twice */
        if (access(part, F_OK) != 0 || now_ms() >= deadline)
            return 0;
        usleep(10000);
    }
}

int walfetch_dir_trusted(const char *dir)
{
    struct stat st;

    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 022) == 0;
}

int walfetch_dir_is_ours(const char *dir, dev_t dev, ino_t ino)
{
    char path[PATH_MAX + 16];
    struct stat st;

    return snprintf(path, sizeof path, "%s/.lock", dir) < (int)sizeof path && stat(path, &st) == 0 &&
           st.st_dev == dev && st.st_ino == ino;
}

void walfetch_fingerprint(const struct config *conf, const int *order, int n, char out[17])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

    /* the regions asked, in the order asked: a restore_command that skips
     * a region restore could not reach must not get its answers from a
     * prefetcher that asks it */
    for (int i = 0; ok && i < n; i++) {
        const struct region_conf *rc = &conf->regions[order[i]];
        const char *f[3] = { rc->name, rc->url, rc->endpoint };

        for (int k = 0; ok && k < 3; k++)
            ok = EVP_DigestUpdate(md, f[k] ? f[k] : "", f[k] ? strlen(f[k]) + 1 : 1) == 1;
    }
    if (ok && conf->key_file != NULL) {
        /* the file, not its spelling: restore --key-file ./key runs its
         * prefetcher with the relative path and writes the absolute one
         * into restore_command */
        char abs[PATH_MAX];
        const char *k = realpath(conf->key_file, abs) != NULL ? abs : conf->key_file;

        ok = EVP_DigestUpdate(md, k, strlen(k)) == 1;
    }
    if (ok) {
        /* a prefetcher reads a profile's keys once: after they are rotated
         * in the shared credentials file it is an older configuration */
        char files[512];

        creds_profile_files_id(files, sizeof files);
        ok = EVP_DigestUpdate(md, files, strlen(files) + 1) == 1;
    }
    if (ok && EVP_DigestFinal_ex(md, d, &dn) == 1 && dn >= 8)
        hex_encode(d, 8, out);
    else
        snprintf(out, 17, "%s", "none");    /* matches nothing a working prefetcher has */
    out[16] = '\0';
    EVP_MD_CTX_free(md);
}
