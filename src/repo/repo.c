#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
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

#define IDENT_MAX (64u << 10)

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

int repo_open(const struct region_conf *rc, const struct config *c, const struct keyring *kr, unsigned flags,
              struct repo **out, struct err *e)
{
    struct repo *r = calloc(1, sizeof *r);

    if (r == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (stor_open(rc, c, &r->st, e) < 0) {
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

/* ---- identity ---- */

void repo_ident_init(struct repo_ident *id, uint64_t sysid, unsigned pg_major, uint32_t seg_size)
{
    memset(id, 0, sizeof *id);
    id->format = REPO_FORMAT;
    id->sysid = sysid;
    id->pg_major = pg_major;
    id->seg_size = seg_size;
    id->created = (int64_t)time(NULL);
    snprintf(id->created_by, sizeof id->created_by, "walship %s", PACKAGE_VERSION);
}

int repo_ident_to_json(const struct repo_ident *id, char **out, size_t *len, struct err *e)
{
    char sysid[24], when[32];
    struct tm tm;
    time_t t = (time_t)id->created;
    json_t *o;

    snprintf(sysid, sizeof sysid, "%llu", (unsigned long long)id->sysid);
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    o = json_pack("{s:i, s:s, s:i, s:I, s:s, s:I, s:s}", "walship_repository", (int)id->format,
                  "system_identifier", sysid, "pg_version", (int)id->pg_major, "wal_segment_size",
                  (json_int_t)id->seg_size, "created", when, "created_unix", (json_int_t)id->created, "created_by",
                  id->created_by);
    if (o == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    *out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (*out == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    *len = strlen(*out);
    return 0;
}

int repo_ident_from_json(const char *buf, size_t len, struct repo_ident *id, struct err *e)
{
    json_error_t je;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    json_int_t format = 0, pg = 0, seg = 0, created = 0;
    const char *sysid = NULL, *by = NULL;
    uint64_t v;
    int rc = -1;

    memset(id, 0, sizeof *id);
    if (o == NULL)
        return err_setf(e, ERR_CORRUPT, "the repository identity is not valid JSON (line %d: %s)", je.line, je.text);
    if (json_unpack_ex(o, &je, 0, "{s:I, s:s, s:I, s:I, s:I, s:s}", "walship_repository", &format,
                       "system_identifier", &sysid, "pg_version", &pg, "wal_segment_size", &seg, "created_unix",
                       &created, "created_by", &by) < 0) {
        err_setf(e, ERR_CORRUPT, "the repository identity lacks a field: %s", je.text);
        goto out;
    }
    if (format < 1 || format > REPO_FORMAT) {
        err_setf(e, ERR_CORRUPT, "the repository has format %lld; this walship knows formats up to %d "
                 "(written by a newer walship?)", (long long)format, REPO_FORMAT);
        goto out;
    }
    if (parse_u64(sysid, 1, UINT64_MAX - 1, &v, e) < 0) {
        err_prefix(e, "the repository identity's system_identifier");
        goto out;
    }
    if (pg < 9 || pg > 999 || seg < 0 || seg > UINT32_MAX) {
        err_setf(e, ERR_CORRUPT, "the repository identity has a bad pg_version or wal_segment_size");
        goto out;
    }
    id->format = (unsigned)format;
    id->sysid = v;
    id->pg_major = (unsigned)pg;
    id->seg_size = (uint32_t)seg;
    id->created = (int64_t)created;
    strlcopy(id->created_by, by, sizeof id->created_by);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static int any_entry(const struct stor_entry *ent, void *arg)
{
    (void)ent;
    *(int *)arg = 1;
    return 1;
}

/* No identity: is anything else there (walship 0.1.0's objects)? */
static int missing_identity(struct repo *r, struct err *e)
{
    struct err le = ERR_INIT;
    int found = 0;

    /* A listing that fails says nothing about 0.1.0 objects: report that,
     * or a first push would bind an unread 0.1.0 repository's root. */
    if (stor_list(r->st, REPO_WAL_DIR, any_entry, &found, &le) < 0 ||
        (!found && stor_list(r->st, REPO_BACKUP_DIR, any_entry, &found, &le) < 0)) {
        *e = le;
        return err_prefix(e, "region %s: no identity, and its objects could not be listed", r->name);
    }
    if (found)
        return err_setf(e, ERR_NOREPO,
                        "region %s (%s) holds WAL or backups but no repository identity (%s): it was written by "
                        "walship 0.1.0; run \"walship upgrade --region %s\" once to bind it",
                        r->name, r->st->where, REPO_KEY_IDENTITY, r->name);
    return err_setf(e, ERR_NOREPO,
                    "region %s (%s) holds no walship repository: %s is missing (an empty or unmounted "
                    "directory, a wrong bucket or prefix, or a region nothing was archived to yet)",
                    r->name, r->st->where, REPO_KEY_IDENTITY);
}

int repo_ident_load(struct repo *r, struct err *e)
{
    struct obj_bind bind = { REPO_KEY_IDENTITY, OBJ_SYSID_ANY, 0 };
    struct sink *mem = mem_sink_new(IDENT_MAX), *dec = NULL;
    const unsigned char *buf;
    size_t len;
    int rc = -1;

    r->have_id = 0;
    if (mem == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (obj_decoder_new(borrow_sink_new(mem), r->kr, 0, &bind, &dec, e) < 0)
        goto out;
    if (stor_get(r->st, REPO_KEY_IDENTITY, dec, e) < 0) {
        if (e->code == ERR_NOTFOUND)
            missing_identity(r, e);
        goto out;
    }
    if (sink_close(dec, e) < 0) {
        err_prefix(e, "region %s: the repository identity (%s)", r->name, REPO_KEY_IDENTITY);
        goto out;
    }
    buf = mem_sink_data(mem, &len);
    if (repo_ident_from_json((const char *)buf, len, &r->id, e) < 0) {
        err_prefix(e, "region %s", r->name);
        goto out;
    }
    if (r->id.sysid != bind.found_sysid) {
        err_setf(e, ERR_CORRUPT, "region %s: the repository identity names cluster %llu but is bound to %llu",
                 r->name, (unsigned long long)r->id.sysid, (unsigned long long)bind.found_sysid);
        goto out;
    }
    r->have_id = 1;
    rc = 0;
out:
    sink_free(dec);
    sink_free(mem);
    return rc;
}

int repo_ident_check(const struct repo *r, uint64_t sysid, struct err *e)
{
    if (!r->have_id)
        return err_setf(e, ERR_INTERNAL, "region %s: identity not loaded", r->name);
    if (r->id.sysid != sysid)
        return err_setf(e, ERR_FOREIGN,
                        "region %s (%s) belongs to the cluster with system identifier %llu, not to this cluster "
                        "(%llu): two clusters must not share a repository",
                        r->name, r->st->where, (unsigned long long)r->id.sysid, (unsigned long long)sysid);
    return 0;
}

static int ident_matches(const struct repo *r, const struct repo_ident *want, struct err *e)
{
    if (repo_ident_check(r, want->sysid, e) < 0)
        return -1;
    if ((want->pg_major != 0 && r->id.pg_major != want->pg_major) ||
        (want->seg_size != 0 && r->id.seg_size != want->seg_size))
        return err_setf(e, ERR_FOREIGN,
                        "region %s holds PostgreSQL %u WAL of %u-byte segments, this cluster is PostgreSQL %u with "
                        "%u-byte segments: a repository serves one major version (start a new prefix after "
                        "pg_upgrade)",
                        r->name, r->id.pg_major, r->id.seg_size, want->pg_major, want->seg_size);
    return 0;
}

void repo_region_id(const char *name, const char *url, const char *endpoint, char out[REPO_REGION_ID_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    char hex[17];
    size_t ul = url ? strlen(url) : 0;
    char *what;
    unsigned int n = 0;

    /* "file:///x/r/" and "file:///x/r" are one region */
    while (ul > 1 && url[ul - 1] == '/')
        ul--;
    what = xasprintf("%.*s\n%s", (int)ul, url ? url : "", endpoint ? endpoint : "");
    /* A name that is not the digest would let two regions meet; this fails
     * only when memory is gone, and then nothing may go on. */
    if (what == NULL || EVP_Digest(what, strlen(what), md, &n, EVP_sha256(), NULL) != 1)
        abort();
    free(what);
    hex_encode(md, 8, hex);
    snprintf(out, REPO_REGION_ID_MAX, "%.120s-%s", name, hex);
}

/* The memory of regions that held this cluster's identity: one file per
 * region under spool_dir/SYSID/known/ (when spool_dir is set).  A region
 * remembered there that has no identity now is an unmounted file system or
 * a changed prefix, never a new repository to create. */
static int known_path(const struct repo *r, uint64_t sysid, char *buf, size_t n)
{
    if (r->spool_dir == NULL || r->spool_dir[0] != '/')
        return -1;
    return snprintf(buf, n, "%s/%llu/known/%s", r->spool_dir, (unsigned long long)sysid, r->region_id) <
                   (int)n ? 0 : -1;
}

static void known_remember(const struct repo *r, uint64_t sysid)
{
    char path[PATH_MAX], dir[PATH_MAX];
    struct err ie = ERR_INIT;
    int fd;

    if (known_path(r, sysid, path, sizeof path) < 0 || access(path, F_OK) == 0)
        return;
    snprintf(dir, sizeof dir, "%s/%llu/known", r->spool_dir, (unsigned long long)sysid);
    if (mkdir_p(dir, 0700, &ie) < 0)
        return;     /* best effort: the protection is only as good as this dir */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
        (void)fsync_dir(dir, &ie);
    }
}

int repo_ident_ensure(struct repo *r, const struct repo_ident *want, struct err *e)
{
    struct err le = ERR_INIT;
    char *json = NULL, known[PATH_MAX];
    size_t len;
    int rc = -1;

    if (r->have_id || repo_ident_load(r, &le) == 0) {
        if (ident_matches(r, want, e) < 0)
            return -1;
        known_remember(r, want->sysid);
        return 0;
    }
    if (le.code != ERR_NOREPO || strstr(le.msg, "walship upgrade") != NULL) {
        *e = le;
        return -1;
    }
    if (want->sysid == 0 || want->pg_major == 0 || want->seg_size == 0)
        return err_setf(e, ERR_NOREPO, "%s; and this push cannot create it: the cluster's system identifier, "
                        "version or segment size is unknown here", le.msg);
    if (known_path(r, want->sysid, known, sizeof known) == 0 && access(known, F_OK) == 0)
        return err_setf(e, ERR_NOREPO,
                        "%s, yet it held this cluster's repository before (%s): is its file system unmounted, "
                        "or its prefix changed?  Not creating a new repository there; if the region was emptied "
                        "on purpose, remove that file",
                        le.msg, known);
    r->id = *want;
    if (repo_ident_to_json(want, &json, &len, e) < 0)
        goto out;
    if (repo_put_buf(r, REPO_KEY_IDENTITY, 0, json, len, e) < 0) {
        if (e->code != ERR_EXISTS)
            goto out;
        /* a racing writer created it first: it must be ours too */
        err_clear(e);
        if (repo_ident_load(r, e) < 0)
            goto out;
        rc = ident_matches(r, want, e);
        goto out;
    }
    r->have_id = 1;
    rc = 0;
out:
    if (rc == 0)
        known_remember(r, want->sysid);
    if (rc < 0 && e->code != ERR_FOREIGN)
        r->have_id = 0;
    free(json);
    return rc;
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
    struct obj_bind bind = { key, r->id.sysid, 0 };
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
    int fd, rc = -1;

    if (snprintf(tmp, sizeof tmp, "%s.walship-tmp.%d", dest, (int)getpid()) >= (int)sizeof tmp)
        return err_setf(e, ERR_USAGE, "path too long: \"%s\"", dest);
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_errno(e, ERR_IO, errno, "could not create \"%s\"", tmp);
    if (repo_get_to_fd(r, key, fd, e) < 0)
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
