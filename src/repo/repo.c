#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autoconf.h"
#include "cluster.h"
#include "sha256tee.h"
#include "util.h"

/* ---- keys ---- */

int repo_key_wal(char *buf, size_t n, const char *walname)
{
    int k = snprintf(buf, n, REPO_WAL_DIR "%s", walname);

    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int repo_key_backup(char *buf, size_t n, const char *backup, const char *what)
{
    int k = snprintf(buf, n, REPO_BACKUP_DIR "%s/%s", backup, what);

    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int repo_key_part(char *buf, size_t n, const char *backup, unsigned number)
{
    int k = snprintf(buf, n, REPO_BACKUP_DIR "%s/part-%04u", backup, number);

    return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* ---- open ---- */

int repo_open(const struct region_conf *rc, const struct config *c, const struct note_sink *notes,
              const struct keyring *kr, unsigned flags, struct repo **out, struct err *e)
{
    struct repo *r = calloc(1, sizeof *r);

    if (r == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (stor_open(rc, c, notes, &r->st, e) < 0) {
        free(r);
        return -1;
    }
    r->kr = kr;
    r->name = r->st->region;
    r->spool_dir = c->spool_dir;
    repo_region_id(rc->name, rc->url, rc->endpoint, r->region_id);
    if ((flags & REPO_OPEN_IDENTITY) && repo_ident_load(r, e) < 0) {
        repo_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void repo_free(struct repo *r)
{
    if (r == NULL)
        return;
    stor_free(r->st);
    free(r);
}

/* ---- a stage that checks a WAL segment's first page on the way ---- */

struct seg_check {
    struct sink base;
    char name[64];
    uint64_t sysid;
    unsigned pg_major;
    unsigned char head[CLUSTER_WAL_LONG_HEADER_LEN];
    size_t have;
    uint64_t total;
};

static int sc_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    struct seg_check *c = (struct seg_check *)s;

    if (c->have < sizeof c->head) {
        size_t k = sizeof c->head - c->have < len ? sizeof c->head - c->have : len;

        memcpy(c->head + c->have, buf, k);
        c->have += k;
    }
    c->total += len;
    return sink_write(s->next, buf, len, e);
}

static int sc_close(struct sink *s, struct err *e)
{
    struct seg_check *c = (struct seg_check *)s;
    struct wal_long_header h;

    /* before anything is committed: a segment must be what its name says */
    if (cluster_parse_wal_header(c->head, c->have, &h, e) < 0 ||
        cluster_check_segment(&h, c->name, c->total, c->sysid, c->pg_major, e) < 0)
        return -1;
    return sink_close(s->next, e);
}

static void sc_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops sc_ops = { sc_write, sc_close, sc_free };

int repo_segment_check_new(struct sink *next, const char *name, uint64_t sysid, unsigned pg_major,
                           struct sink **out, struct err *e)
{
    struct seg_check *c = calloc(1, sizeof *c);

    if (c == NULL) {
        sink_free(next);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    c->base.ops = &sc_ops;
    c->base.next = next;
    strlcopy(c->name, name, sizeof c->name);
    c->sysid = sysid;
    c->pg_major = pg_major;
    *out = &c->base;
    return 0;
}

/* ---- objects ---- */

void repo_obj_opts(const struct repo *r, const char *key, int level, struct obj_opts *o)
{
    memset(o, 0, sizeof *o);
    o->level = level;
    o->kr = r->kr;
    o->bind.key = key;
    o->bind.sysid = r->id.sysid;
}

int repo_get(struct repo *r, const char *key, struct sink *next, struct err *e)
{
    struct obj_bind bind = { key, r->id.sysid, 0, "" };
    struct sink *dec = NULL;
    int rc = -1;

    if (!r->have_id) {
        sink_free(next);
        return err_setf(e, ERR_INTERNAL, "region %s: reading \"%s\" before the repository identity", r->name, key);
    }
    if (obj_decoder_new(next, r->kr, 0, &bind, &dec, e) < 0) {
        sink_free(next);
        return -1;
    }
    if (stor_get(r->st, key, dec, e) < 0)
        goto out;
    if (sink_close(dec, e) < 0) {
        err_prefix(e, "region %s: object \"%s\"", r->name, key);
        goto out;
    }
    rc = 0;
out:
    sink_free(dec);
    return rc;
}

int repo_get_to_fd(struct repo *r, const char *key, int fd, struct err *e)
{
    struct sink *out = fd_sink_new(fd);

    if (out == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return repo_get(r, key, out, e);
}

int repo_get_to_file_checked(struct repo *r, const char *key, const char *dest, const struct repo_file_check *chk,
                             struct err *e)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    char *slash;
    struct sink *out;
    int fd, got, rc = -1;

    if (dest_replaceable(dest, NULL, e) < 0 || (fd = open_tmp_beside(dest, tmp, sizeof tmp, e)) < 0)
        return -1;
    /* a write error names DEST (a full pg_wal: "could not write
     * \"pg_wal/RECOVERYXLOG\": No space left on device") */
    if ((out = fd_sink_named(fd, dest)) == NULL) {
        err_setf(e, ERR_NOMEM, "out of memory");
        goto out;
    }
    got = repo_get(r, key, out, e);     /* takes `out` */
    if (got < 0)
        goto out;
    if (chk != NULL && chk->check != NULL && chk->check(fd, chk->arg, e) < 0) {
        err_prefix(e, "region %s", r->name);
        goto out;
    }
    if (fsync(fd) < 0) {
        err_errno(e, ERR_IO, errno, "could not fsync \"%s\"", tmp);
        goto out;
    }
    if (rename(tmp, dest) < 0) {
        err_errno(e, ERR_IO, errno, "could not rename \"%s\" to \"%s\"", tmp, dest);
        goto out;
    }
    if (chk == NULL || !chk->no_dir_sync) {
        strlcopy(dir, dest, sizeof dir);
        slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir)
            *slash = '\0';
        (void)fsync_dir(slash == NULL ? "." : slash == dir ? "/" : dir, &(struct err)ERR_INIT);
    }
    rc = 0;
out:
    close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int repo_get_to_file(struct repo *r, const char *key, const char *dest, struct err *e)
{
    return repo_get_to_file_checked(r, key, dest, NULL, e);
}

int repo_get_buf(struct repo *r, const char *key, size_t max, unsigned char **buf, size_t *len, struct err *e)
{
    struct sink *mem = mem_sink_new(max), *b;

    if (mem == NULL || (b = borrow_sink_new(mem)) == NULL) {
        sink_free(mem);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    if (repo_get(r, key, b, e) < 0) {
        sink_free(mem);
        return -1;
    }
    *buf = mem_sink_take(mem, len);
    sink_free(mem);
    if (*buf == NULL && *len != 0)
        return err_setf(e, ERR_NOMEM, "out of memory");
    return 0;
}

int repo_hash(struct repo *r, const char *key, char hex[65], struct err *e)
{
    unsigned char digest[SHA256_LEN];
    struct sink *ns = null_sink_new(), *tee = NULL;

    if (ns == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (sha256_tee_new(ns, digest, &tee, e) < 0) {
        sink_free(ns);
        return -1;
    }
    if (repo_get(r, key, tee, e) < 0)
        return -1;
    hex_encode(digest, SHA256_LEN, hex);
    return 0;
}

int repo_put_buf(struct repo *r, const char *key, int level, const void *buf, size_t len, struct err *e)
{
    struct sink *up = NULL, *enc = NULL;
    struct obj_opts oo;
    int rc = -1;

    if (!r->have_id && strcmp(key, REPO_KEY_IDENTITY) != 0)
        return err_setf(e, ERR_INTERNAL, "region %s: writing \"%s\" before the repository identity", r->name, key);
    if (stor_put(r->st, key, &up, e) < 0)
        return -1;
    repo_obj_opts(r, key, level, &oo);
    oo.size_hint = len;
    if (obj_encoder_new(up, &oo, &enc, e) < 0) {
        sink_free(up);
        return -1;
    }
    if (sink_write(enc, buf, len, e) < 0 || sink_close(enc, e) < 0)
        goto out;
    rc = 0;
out:
    sink_free(enc);
    return rc;
}

int repo_hash_file(const char *path, const struct keyring *kr, struct obj_bind *bind, char hex[65], uint64_t *size,
                   struct err *e)
{
    unsigned char digest[SHA256_LEN];
    struct sink *ns = null_sink_new(), *tee = NULL, *head;
    int fd, rc = -1;

    if (ns == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (sha256_tee_new(ns, digest, &tee, e) < 0) {
        sink_free(ns);
        return -1;
    }
    head = tee;
    /* a spooled object: hash what it decodes to (it may predate key_file) */
    if (bind != NULL && obj_decoder_new(tee, kr, OBJ_DEC_ALLOW_UNENCRYPTED, bind, &head, e) < 0) {
        sink_free(tee);
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, errno, "could not open \"%s\"", path);
        goto out;
    }
    if (sink_pump_fd(head, fd, path, 0, e) < 0 || sink_close(head, e) < 0)
        goto out;
    hex_encode(digest, SHA256_LEN, hex);
    if (size != NULL)
        *size = null_sink_count(ns);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    sink_free(head);
    return rc;
}
