/*
 * repo_ident — a region's repository identity (identity.json, docs/FORMAT.md):
 * encoded and decoded, read, checked against the cluster, created on first
 * use, and remembered per host so that a region that loses it (an empty
 * mount point, a wrong prefix) is an error, never an empty repository.
 */
#include "repo.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autoconf.h"
#include "paths.h"
#include "util.h"

#define IDENT_MAX (64u << 10)

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

/* The region and the object, in front of a decoding error; an unencrypted
 * identity under a key_file is an archive begun without encryption,
 * which keys never continue (its objects could be forged): say how. */
static void ident_context(const struct repo *r, struct err *e)
{
    int plain = e->code == ERR_KEY && strstr(e->msg, OBJ_MSG_PLAIN) != NULL;

    err_prefix(e, "region %s: the repository identity (%s)", r->name, REPO_KEY_IDENTITY);
    if (plain) {
        char m[ERR_MSG_MAX + 512];

        snprintf(m, sizeof m, "%s.  This region holds an archive written without encryption; to encrypt from now "
                 "on, give the region a new, empty prefix and take a full backup there, or remove key_file to go "
                 "on unencrypted (docs/OPERATIONS.md, \"Turning encryption on\")", e->msg);
        err_setf(e, ERR_KEY, "%s", m);
    }
}

/* Read identity.json into *id.  A missing one is ERR_NOTFOUND as the
 * driver says it (the callers word it). */
static int ident_read(struct repo *r, struct repo_ident *id, char key_id[KEYS_ID_HEX_LEN + 1], struct err *e)
{
    struct obj_bind bind = { REPO_KEY_IDENTITY, OBJ_SYSID_ANY, 0, "" };
    struct sink *mem = mem_sink_new(IDENT_MAX), *dec = NULL;
    const unsigned char *buf;
    size_t len;
    int rc = -1;

    if (mem == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (obj_decoder_new(borrow_sink_new(mem), r->kr, 0, &bind, &dec, e) < 0)
        goto out;
    if (stor_get(r->st, REPO_KEY_IDENTITY, dec, e) < 0) {
        if (e->code != ERR_NOTFOUND)
            ident_context(r, e);
        goto out;
    }
    if (sink_close(dec, e) < 0) {
        ident_context(r, e);
        goto out;
    }
    buf = mem_sink_data(mem, &len);
    if (repo_ident_from_json((const char *)buf, len, id, e) < 0) {
        err_prefix(e, "region %s", r->name);
        goto out;
    }
    if (id->sysid != bind.found_sysid) {
        err_setf(e, ERR_CORRUPT, "region %s: the repository identity names cluster %llu but is bound to %llu",
                 r->name, (unsigned long long)id->sysid, (unsigned long long)bind.found_sysid);
        goto out;
    }
    if (key_id != NULL)
        memcpy(key_id, bind.found_key_id, KEYS_ID_HEX_LEN + 1);
    rc = 0;
out:
    sink_free(dec);
    sink_free(mem);
    return rc;
}

int repo_ident_load(struct repo *r, struct err *e)
{
    r->have_id = 0;
    if (ident_read(r, &r->id, r->id_key, e) < 0) {
        if (e->code == ERR_NOTFOUND)
            missing_identity(r, e);
        return -1;
    }
    r->have_id = 1;
    return 0;
}

static int ident_same(const struct repo_ident *a, const struct repo_ident *b)
{
    return a->format == b->format && a->sysid == b->sysid && a->pg_major == b->pg_major &&
           a->seg_size == b->seg_size && a->created == b->created && strcmp(a->created_by, b->created_by) == 0;
}

int repo_ident_recheck(struct repo *r, struct err *e)
{
    struct repo_ident now;
    char was[32], is[32];
    struct tm tm;
    time_t t;

    if (!r->have_id)
        return err_setf(e, ERR_INTERNAL, "region %s: identity not loaded", r->name);
    if (ident_read(r, &now, NULL, e) < 0) {
        if (e->code == ERR_NOTFOUND)
            return err_setf(e, ERR_NOREPO,
                            "region %s (%s): its repository identity (%s) is gone since this process read it: is "
                            "its file system unmounted, or its prefix changed?  Nothing is committed there until "
                            "it is back",
                            r->name, r->st->where, REPO_KEY_IDENTITY);
        return err_prefix(e, "region %s: its repository identity could not be read again before a commit", r->name);
    }
    if (ident_same(&r->id, &now))
        return 0;
    t = (time_t)r->id.created;
    gmtime_r(&t, &tm);
    strftime(was, sizeof was, "%Y-%m-%dT%H:%M:%SZ", &tm);
    t = (time_t)now.created;
    gmtime_r(&t, &tm);
    strftime(is, sizeof is, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return err_setf(e, ERR_FOREIGN,
                    "region %s (%s): its repository identity changed since this process read it (cluster %llu's "
                    "repository created %s, now cluster %llu's created %s): another file system is mounted there, "
                    "or the prefix changed.  Nothing is committed there by this process (one started now reads the "
                    "identity afresh)",
                    r->name, r->st->where, (unsigned long long)r->id.sysid, was, (unsigned long long)now.sysid, is);
}

/* ---- a stage that re-reads the identity before its next stage commits ---- */

struct ident_guard {
    struct sink base;
    struct repo *r;
};

static int ig_write(struct sink *s, const void *buf, size_t len, struct err *e)
{
    return sink_write(s->next, buf, len, e);
}

static int ig_close(struct sink *s, struct err *e)
{
    struct ident_guard *g = (struct ident_guard *)s;

    if (repo_ident_recheck(g->r, e) < 0)
        return -1;      /* next is never closed: freeing aborts it */
    return sink_close(s->next, e);
}

static void ig_free(struct sink *s)
{
    sink_free(s->next);
    free(s);
}

static const struct sink_ops ig_ops = { ig_write, ig_close, ig_free };

int repo_ident_guard_new(struct repo *r, struct sink *next, struct sink **out, struct err *e)
{
    struct ident_guard *g = calloc(1, sizeof *g);

    if (g == NULL) {
        sink_free(next);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    g->base.ops = &ig_ops;
    g->base.next = next;
    g->r = r;
    *out = &g->base;
    return 0;
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

/* A spool the memory must not be written into.  Root (a command run by
 * hand with sudo) in a spool another user owns: spool_dir/SYSID, or
 * spool_dir when that is not made yet.  spool_open refuses such a spool as
 * root; nothing may be written there either: a directory of root's would
 * make the owner's wal-push refuse the spool, and the owner controls every
 * path under it.  And a spool_dir on a volume that is not mounted (refused
 * by spool_open too): nothing below its mount point.  Checked only before
 * a write, which is rare (a region remembered once). */
static int spool_unwritable(const struct repo *r, uint64_t sysid)
{
    char dir[PATH_MAX];
    struct stat st;

    if (path_unmounted_volume(r->spool_dir, "/etc/fstab", "/proc/self/mounts", dir, sizeof dir) == 1)
        return 1;
    if (geteuid() != 0)
        return 0;
    if (snprintf(dir, sizeof dir, "%s/%llu", r->spool_dir, (unsigned long long)sysid) >= (int)sizeof dir)
        return 1;
    if (stat(dir, &st) < 0 && (errno != ENOENT || stat(r->spool_dir, &st) < 0))
        return errno != ENOENT;     /* no spool_dir at all: made by root, root's */
    return st.st_uid != 0;
}

/* The file holds the creation time of the identity it remembers and the
 * id of the key it is encrypted with ("-": not encrypted), which async
 * wal-push compares with its keys (wal_push.c); empty from walship before
 * that (the region only), the time alone from 0.2.0.  Best effort: the protection
 * is only as good as this directory.  Never through a link. */
static void known_remember(const struct repo *r, uint64_t sysid)
{
    char path[PATH_MAX], dir[PATH_MAX], line[32 + KEYS_ID_HEX_LEN];
    struct err ie = ERR_INIT;
    struct stat st;
    int fd, n;

    if (known_path(r, sysid, path, sizeof path) < 0 || (lstat(path, &st) == 0 && st.st_size > 0) ||
        spool_unwritable(r, sysid))
        return;
    snprintf(dir, sizeof dir, "%s/%llu/known", r->spool_dir, (unsigned long long)sysid);
    if (mkdir_p(dir, 0700, &ie) < 0)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    n = snprintf(line, sizeof line, "%lld %s\n", (long long)r->id.created, r->id_key[0] != '\0' ? r->id_key : "-");
    if (r->have_id && r->id.created > 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
        st.st_size == 0)
        (void)!write(fd, line, (size_t)n);
    (void)fsync(fd);
    close(fd);
    (void)fsync_dir(dir, &ie);
}

/* The identity read must be the repository the spool remembers there, not
 * another one of the same cluster mounted in its place (a second
 * repository made by hand, an old snapshot): WAL acknowledged into it
 * would be missing from the one restore reads. */
static int known_same(const struct repo *r, uint64_t sysid, struct err *e)
{
    char path[PATH_MAX];
    unsigned char *buf = NULL;
    struct err ie = ERR_INIT;
    long long was = 0;
    size_t len;

    if (!r->have_id || r->id.created <= 0 || known_path(r, sysid, path, sizeof path) < 0 ||
        read_file_all(path, 64, &buf, &len, &ie) < 0)
        return 0;   /* no memory of it (or not readable): nothing to compare */
    if (len == 0 || sscanf((const char *)buf, "%lld", &was) != 1)
        was = 0;    /* an empty file from before: the region only */
    free(buf);
    if (was <= 0 || was == (long long)r->id.created)
        return 0;
    return err_setf(e, ERR_FOREIGN,
                    "region %s (%s) holds a repository of this cluster created at %lld (Unix time), but this host's "
                    "spool knew another one there, created at %lld (%s): is another file system, an old snapshot "
                    "or a second repository mounted there, or the prefix changed?  Not archiving into it: restore "
                    "the mount (or the url); if the region was re-created on purpose, remove that file",
                    r->name, r->st->where, (long long)r->id.created, was, path);
}

int repo_ident_lost(const struct repo *r, uint64_t sysid, const char *what, struct err *e)
{
    char known[PATH_MAX];

    if (sysid == 0 || known_path(r, sysid, known, sizeof known) < 0 || access(known, F_OK) != 0)
        return 0;
    return err_setf(e, ERR_NOREPO,
                    "region %s (%s) %s, yet it held this cluster's repository before (cluster %llu; this host's "
                    "spool remembers it in %s): is its file system unmounted, another one mounted there, or its "
                    "prefix changed?  Not creating or binding a repository there: restore the mount (or the url) "
                    "and retry; if the region was emptied on purpose, remove that file first",
                    r->name, r->st->where, what, (unsigned long long)sysid, known);
}

/* Two writers of one host creating a region's identity at once (the
 * shipper and a wal-push, two wal-push, `copy` seeding the region) must not
 * each keep its own: on a store without conditional writes both PUTs can
 * succeed, and the one whose identity was replaced would remember a
 * creation time the region does not hold, and refuse that region from then
 * on.  Creation is serialised by spool_dir/SYSID/known/.create.lock; the
 * one that waited reads again (repo.h). */
#define CREATE_LOCK_WAIT_MS 60000u

int repo_ident_create_lock(const struct repo *r, uint64_t sysid, int *fd, struct err *e)
{
    char path[PATH_MAX], dir[PATH_MAX];
    struct err ie = ERR_INIT;
    struct stat st;
    int rc;

    *fd = -1;
    /* Only in a spool this cluster has on this host: its writers made it
     * (spool_open) before creating anything, and `copy` (run by hand)
     * must not make spool directories its owner would then refuse as not
     * trusted.  Not as root in another user's spool either (a lock file of
     * root's there could not be taken by its owner afterwards, and root
     * follows no path that user controls), nor below an unmounted volume. */
    if (known_path(r, sysid, path, sizeof path) < 0 ||
        snprintf(dir, sizeof dir, "%s/%llu", r->spool_dir, (unsigned long long)sysid) >= (int)sizeof dir ||
        stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || spool_unwritable(r, sysid) ||
        snprintf(dir, sizeof dir, "%s/%llu/known", r->spool_dir, (unsigned long long)sysid) >= (int)sizeof dir ||
        snprintf(path, sizeof path, "%s/.create.lock", dir) >= (int)sizeof path)
        return 0;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return 0;   /* best effort, as known_remember */
    rc = lock_file_wait(path, CREATE_LOCK_WAIT_MS, fd, &ie);
    if (rc < 0)
        return 0;
    if (rc == 0) {
        unsigned char *buf = NULL;
        size_t len = 0;
        long pid = 0;

        /* the holder notes its PID in the file (lock_note_holder): the
         * process to look at if it is stuck */
        if (read_file_all(path, 32, &buf, &len, &ie) == 0 && sscanf((const char *)buf, "%ld", &pid) != 1)
            pid = 0;
        free(buf);
        return err_setf(e, ERR_LOCKED,
                        "region %s has no repository identity, and another walship on this host (process %ld) has "
                        "been creating it for %u s (it holds %s): retry later, or stop that process if it is stuck",
                        r->name, pid, CREATE_LOCK_WAIT_MS / 1000, path);
    }
    return 1;
}

int repo_ident_ensure(struct repo *r, const struct repo_ident *want, struct err *e)
{
    struct err le = ERR_INIT;
    char *json = NULL;
    size_t len;
    int rc = -1, lock = -1;

    if (r->have_id || repo_ident_load(r, &le) == 0) {
        if (ident_matches(r, want, e) < 0 || known_same(r, want->sysid, e) < 0)
            return -1;
        known_remember(r, want->sysid);
        return 0;
    }
    if (le.code != ERR_NOREPO) {
        *e = le;
        return -1;
    }
    if (repo_ident_lost(r, want->sysid, "has no repository identity", &(struct err)ERR_INIT) < 0) {
        /* Another writer (the shipper, a wal-push) may have created it
         * between our read and this check: it remembers the region right
         * after its put.  One more read tells that from an unmounted file
         * system or a changed prefix.  WAL without an identity there is
         * what a writer that did not notice left: never 0.1.0's. */
        err_clear(&le);
        if (repo_ident_load(r, &le) == 0)
            return ident_matches(r, want, e) < 0 || known_same(r, want->sysid, e) < 0 ? -1 : 0;
        if (le.code != ERR_NOREPO) {
            *e = le;
            return -1;
        }
        if (repo_ident_lost(r, want->sysid,
                            strstr(le.msg, "walship upgrade") != NULL
                                ? "holds WAL or backups but no repository identity (identity.json)"
                                : "has no repository identity (identity.json)",
                            e) == 0)
            *e = le;    /* forgotten meanwhile: still nothing to create here now */
        return -1;
    }
    if (strstr(le.msg, "walship upgrade") != NULL) {
        *e = le;
        return -1;
    }
    if (want->sysid == 0 || want->pg_major == 0 || want->seg_size == 0)
        return err_setf(e, ERR_NOREPO, "%s; and this push cannot create it: the cluster's system identifier, "
                        "version or segment size is unknown here", le.msg);
    switch (repo_ident_create_lock(r, want->sysid, &lock, e)) {
    case -1:
        return -1;
    case 1:     /* the one that held it may have created it */
        err_clear(&le);
        if (repo_ident_load(r, &le) == 0) {
            rc = ident_matches(r, want, e) < 0 || known_same(r, want->sysid, e) < 0 ? -1 : 0;
            goto out;
        }
        if (le.code != ERR_NOREPO || strstr(le.msg, "walship upgrade") != NULL) {
            *e = le;
            goto out;
        }
    }
    r->id = *want;
    /* what repo_put_buf encrypts it with */
    snprintf(r->id_key, sizeof r->id_key, "%s", keys_current(r->kr) != NULL ? keys_current(r->kr)->id_hex : "");
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
    lock_file_release(lock);
    if (rc < 0 && e->code != ERR_FOREIGN)
        r->have_id = 0;
    free(json);
    return rc;
}

void repo_adopt_identity(struct repo *r, const struct repo *from)
{
    r->id = from->id;
    memcpy(r->id_key, from->id_key, sizeof r->id_key);
    r->have_id = 1;
}
