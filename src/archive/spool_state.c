/*
 * spool_state — the small files wal-push and the shipper keep beside the
 * spool's queue (spool.h): the shipper's state per region (state/QUEUE.json,
 * which `status` reads) and the push-ahead markers (pushed/NAME).  Both are
 * written to a temporary file and renamed into place, never fsync'd: a file
 * lost in a crash is rewritten by the next pass or costs a re-push.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_int.h"
#include "util.h"

/* ---- the shipper's state per region ---- */

int spool_state_write(struct spool *sp, const char *queue, const struct spool_state *st, struct err *e)
{
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
    json_t *o;
    char *text;
    int fd, rc = -1;

    if (spool_sub(sp, dir, sizeof dir, "state", NULL, NULL) < 0 ||
        snprintf(path, sizeof path, "%s/%s.json", dir, queue) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, queue, (int)getpid()) >= (int)sizeof tmp)
        return err_setf(e, ERR_IO, "spool path too long");
    if (mkdir_p(dir, 0700, e) < 0)
        return -1;
    o = json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:I, s:I}", "region", st->region, "updated",
                  (json_int_t)st->updated, "last_success", (json_int_t)st->last_success, "last_error_time",
                  (json_int_t)st->last_error_time, "last_error_code", st->last_error_code, "last_error",
                  st->last_error, "backlog_files", (json_int_t)st->backlog_files, "backlog_bytes",
                  (json_int_t)st->backlog_bytes);
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
        goto out;
    }
    /* no fsync: a state lost in a crash is rewritten by the next pass */
    if (write_all(fd, text, strlen(text)) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        err_errno(e, ERR_IO, errno, "could not write \"%s\"", path);
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

int spool_state_read(struct spool *sp, const char *queue, struct spool_state *st, struct err *e)
{
    char path[PATH_MAX];
    unsigned char *buf = NULL;
    json_error_t je;
    json_int_t upd = 0, ok_t = 0, err_t = 0, files = 0, bytes = 0;
    const char *region = "", *code = "", *msg = "";
    size_t len;
    json_t *o;
    int rc = -1;

    memset(st, 0, sizeof *st);
    if (snprintf(path, sizeof path, "%s/state/%s.json", sp->dir, queue) >= (int)sizeof path)
        return err_setf(e, ERR_IO, "spool path too long");
    if (read_file_all(path, 65536, &buf, &len, e) < 0)
        return -1;
    o = json_loadb((const char *)buf, len, 0, &je);
    free(buf);
    if (o == NULL || json_unpack_ex(o, &je, 0, "{s:s, s:I, s:I, s:I, s:s, s:s, s:I, s:I}", "region", &region,
                                    "updated", &upd, "last_success", &ok_t, "last_error_time", &err_t,
                                    "last_error_code", &code, "last_error", &msg, "backlog_files", &files,
                                    "backlog_bytes", &bytes) < 0) {
        err_setf(e, ERR_CORRUPT, "the shipper's state \"%s\" is unreadable: %s", path, je.text);
        goto out;
    }
    strlcopy(st->region, region, sizeof st->region);
    strlcopy(st->last_error_code, code, sizeof st->last_error_code);
    strlcopy(st->last_error, msg, sizeof st->last_error);
    st->updated = (int64_t)upd;
    st->last_success = (int64_t)ok_t;
    st->last_error_time = (int64_t)err_t;
    st->backlog_files = (uint64_t)files;
    st->backlog_bytes = (uint64_t)bytes;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* ---- push-ahead markers ---- */

/* A file's identity: any write to it changes mtime and ctime (which no
 * unprivileged process can set back), a replacement changes the inode. */
static int identity(const struct stat *st, char *out, size_t n)
{
    return snprintf(out, n, "%llu %llu %llu %lld.%09ld %lld.%09ld", (unsigned long long)st->st_dev,
                    (unsigned long long)st->st_ino, (unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec,
                    st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

int spool_mark_pushed(struct spool *sp, const char *name, const char *sha256_hex, const struct stat *st,
                      struct err *e)
{
    return spool_mark_pushed_tag(sp, name, sha256_hex, st, NULL, e);
}

/* The marker: the file's identity, its SHA-256 when the push computed one
 * ("-" otherwise: only a region that already held the name makes a push
 * hash the file; nothing reads this line back), and the tag of what wrote
 * it (the configuration and binary, archd.h), when there is one. */
int spool_mark_pushed_tag(struct spool *sp, const char *name, const char *sha256_hex, const struct stat *st,
                          const char *tag, struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX], body[384], id[160];
    int fd, n;

    if (spool_sub(sp, path, sizeof path, "pushed", name, NULL) < 0 ||
        snprintf(tmp, sizeof tmp, "%s/tmp/pushed-%s.%d.%lx", sp->dir, name, (int)getpid(),
                 (unsigned long)pthread_self()) >= (int)sizeof tmp)
        return err_setf(e, ERR_IO, "spool path too long");
    identity(st, id, sizeof id);
    n = snprintf(body, sizeof body, "%s\n%s\n%s%s", id, sha256_hex != NULL && sha256_hex[0] != '\0' ? sha256_hex : "-",
                 tag ? tag : "", tag ? "\n" : "");
    if (n < 0 || n >= (int)sizeof body)
        return err_setf(e, ERR_IO, "push-ahead marker too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    if (write_all(fd, body, (size_t)n) < 0 || close(fd) < 0) {
        unlink(tmp);
        return err_errno(e, ERR_IO, errno, "could not write \"%s\"", tmp);
    }
    /* No fsync: a marker lost in a crash only costs a re-push. */
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return err_errno(e, ERR_IO, errno, "could not rename \"%s\"", tmp);
    }
    return 0;
}

int spool_has_marker(struct spool *sp, const char *name)
{
    char path[PATH_MAX];

    return spool_sub(sp, path, sizeof path, "pushed", name, NULL) == 0 && access(path, F_OK) == 0;
}

int spool_same_file(const struct stat *a, const struct stat *b)
{
    char x[160], y[160];

    identity(a, x, sizeof x);
    identity(b, y, sizeof y);
    return strcmp(x, y) == 0;
}

int spool_pushed_matches(struct spool *sp, const char *name, const struct stat *st)
{
    return spool_pushed_matches_tag(sp, name, st, NULL);
}

int spool_pushed_matches_tag(struct spool *sp, const char *name, const struct stat *st, const char *tag)
{
    char path[PATH_MAX], id[160];
    unsigned char *buf;
    const unsigned char *third;
    size_t len, idlen, taglen;
    struct err ignored = ERR_INIT;
    int match;

    if (spool_sub(sp, path, sizeof path, "pushed", name, NULL) < 0)
        return 0;
    if (read_file_all(path, 400, &buf, &len, &ignored) < 0)
        return 0;
    identity(st, id, sizeof id);
    idlen = strlen(id);
    match = len > idlen && memcmp(buf, id, idlen) == 0 && buf[idlen] == '\n';
    if (match && tag != NULL) {
        /* the third line must be the tag, whole */
        third = memchr(buf + idlen + 1, '\n', len - idlen - 1);
        taglen = strlen(tag);
        match = third != NULL && (size_t)(buf + len - (third + 1)) == taglen + 1 &&
                memcmp(third + 1, tag, taglen) == 0 && third[1 + taglen] == '\n';
    }
    free(buf);
    return match;
}

void spool_unmark_pushed(struct spool *sp, const char *name)
{
    char path[PATH_MAX];

    if (spool_sub(sp, path, sizeof path, "pushed", name, NULL) == 0)
        unlink(path);
}
