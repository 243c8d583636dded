#include "manifest.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"
#include "util.h"
#include "wal.h"

struct manifest *man_new(void)
{
    struct manifest *m = calloc(1, sizeof *m);

    if (m != NULL)
        m->format = MAN_FORMAT;
    return m;
}

void man_free(struct manifest *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->nfiles; i++) {
        free(m->files[i].path);
        free(m->files[i].map);
    }
    for (i = 0; i < m->ntablespaces; i++)
        free(m->tablespaces[i].path);
    free(m->files);
    free(m->parts);
    free(m->tablespaces);
    free(m->name);
    free(m->walship_version);
    free(m->system_identifier);
    free(m->compression);
    free(m->key_id);
    free(m->recovery_settings);
    free(m->parent);
    free(m);
}

int man_add_file(struct manifest *m, const char *path, uint32_t part, uint64_t size, uint32_t mode,
                 int64_t mtime, const char sha256[65], struct err *e)
{
    struct man_file *f;

    if (m->nfiles == m->files_cap) {
        size_t cap = m->files_cap ? m->files_cap * 2 : 1024;
        struct man_file *nf = realloc(m->files, cap * sizeof *nf);

        if (nf == NULL)
            return err_setf(e, ERR_NOMEM, "out of memory growing the manifest");
        m->files = nf;
        m->files_cap = cap;
    }
    f = &m->files[m->nfiles];
    f->path = strdup(path);
    if (f->path == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    f->part = part;
    f->size = size;
    f->mode = mode;
    f->mtime = mtime;
    memcpy(f->sha256, sha256, 65);
    f->map = NULL;
    f->stored = size;
    memcpy(f->stored_sha256, sha256, 65);
    m->nfiles++;
    return 0;
}

int man_add_file_map(struct manifest *m, const char *path, uint32_t part, uint64_t size, uint32_t mode,
                     int64_t mtime, const char sha256[65], const char *map, uint64_t stored,
                     const char stored_sha256[65], struct err *e)
{
    struct man_file *f;
    char *mp = strdup(map);

    if (mp == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (man_add_file(m, path, part, size, mode, mtime, sha256, e) < 0) {
        free(mp);
        return -1;
    }
    f = &m->files[m->nfiles - 1];
    f->map = mp;
    f->stored = stored;
    memcpy(f->stored_sha256, stored_sha256, 65);
    return 0;
}

int man_add_part(struct manifest *m, const struct man_part *p, struct err *e)
{
    struct man_part *np = realloc(m->parts, (m->nparts + 1) * sizeof *np);

    if (np == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    m->parts = np;
    m->parts[m->nparts++] = *p;
    return 0;
}

int man_add_tablespace(struct manifest *m, uint32_t oid, const char *path, struct err *e)
{
    struct man_tablespace *nt = realloc(m->tablespaces, (m->ntablespaces + 1) * sizeof *nt);

    if (nt == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    m->tablespaces = nt;
    nt[m->ntablespaces].oid = oid;
    nt[m->ntablespaces].path = strdup(path);
    if (nt[m->ntablespaces].path == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    m->ntablespaces++;
    return 0;
}

static int file_cmp(const void *a, const void *b)
{
    const struct man_file *x = a, *y = b;

    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    return strcmp(x->path, y->path);
}

void man_sort(struct manifest *m)
{
    if (m->nfiles > 1)
        qsort(m->files, m->nfiles, sizeof *m->files, file_cmp);
}

const struct man_file *man_find_file(const struct manifest *m, const char *path)
{
    size_t i;

    for (i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].path, path) == 0)
            return &m->files[i];
    return NULL;
}

static int fptr_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct man_file *const *)a)->path, (*(const struct man_file *const *)b)->path);
}

const struct man_file **man_index(const struct manifest *m)
{
    const struct man_file **v = malloc((m->nfiles + 1) * sizeof *v);
    size_t i;

    if (v == NULL)
        return NULL;
    for (i = 0; i < m->nfiles; i++)
        v[i] = &m->files[i];
    if (m->nfiles > 1)
        qsort(v, m->nfiles, sizeof *v, fptr_cmp);
    return v;
}

const struct man_file *man_lookup(const struct manifest *m, const struct man_file **idx, const char *path)
{
    struct man_file key;
    const struct man_file *kp = &key, **hit;

    key.path = (char *)path;
    hit = m->nfiles ? bsearch(&kp, idx, m->nfiles, sizeof *idx, fptr_cmp) : NULL;
    return hit ? *hit : NULL;
}

void man_format_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL)
        snprintf(out, 32, "?");
    else
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- to JSON ---- */

static json_t *lsn_json(uint64_t lsn)
{
    char buf[24];
    wal_format_lsn(lsn, buf);
    return json_string(buf);
}

static json_t *u64_json(uint64_t v)
{
    /* JSON integers are exact in jansson up to 2^63; sizes and times fit. */
    return json_integer((json_int_t)v);
}

int man_to_json(const struct manifest *m, char **out, size_t *len, struct err *e)
{
    json_t *root = json_object(), *files = json_array(), *parts = json_array(), *tbs = json_array();
    char st[32], sp[32];
    size_t i;
    int bad = 0;

    if (root == NULL || files == NULL || parts == NULL || tbs == NULL) {
        json_decref(root);
        json_decref(files);
        json_decref(parts);
        json_decref(tbs);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    man_format_time(m->start_time, st);
    man_format_time(m->stop_time, sp);
    bad |= json_object_set_new(root, "format", json_integer(m->format));
    bad |= json_object_set_new(root, "name", json_string(m->name ? m->name : ""));
    bad |= json_object_set_new(root, "walship_version", json_string(m->walship_version ? m->walship_version : ""));
    bad |= json_object_set_new(root, "start_lsn", lsn_json(m->start_lsn));
    bad |= json_object_set_new(root, "stop_lsn", lsn_json(m->stop_lsn));
    bad |= json_object_set_new(root, "timeline", json_integer(m->timeline));
    bad |= json_object_set_new(root, "stop_timeline", json_integer(m->stop_timeline));
    bad |= json_object_set_new(root, "start_wal", json_string(m->start_wal));
    bad |= json_object_set_new(root, "stop_wal", json_string(m->stop_wal));
    bad |= json_object_set_new(root, "start_time", json_integer(m->start_time));
    bad |= json_object_set_new(root, "stop_time", json_integer(m->stop_time));
    bad |= json_object_set_new(root, "start_time_text", json_string(st));
    bad |= json_object_set_new(root, "stop_time_text", json_string(sp));
    bad |= json_object_set_new(root, "pg_version", json_integer(m->pg_version));
    bad |= json_object_set_new(root, "system_identifier",
                               json_string(m->system_identifier ? m->system_identifier : ""));
    bad |= json_object_set_new(root, "wal_segment_size", u64_json(m->wal_segment_size));
    bad |= json_object_set_new(root, "compression", json_string(m->compression ? m->compression : "none"));
    bad |= json_object_set_new(root, "key_id", m->key_id ? json_string(m->key_id) : json_null());
    bad |= json_object_set_new(root, "original_size", u64_json(m->original_size));
    bad |= json_object_set_new(root, "stored_size", u64_json(m->stored_size));
    bad |= json_object_set_new(root, "tablespace_map", json_boolean(m->has_tablespace_map));
    if (m->recovery_settings != NULL)
        bad |= json_object_set_new(root, "recovery_settings", json_string(m->recovery_settings));
    bad |= json_object_set_new(root, "type", json_string(m->incremental ? "incr" : "full"));
    if (m->incremental) {
        bad |= json_object_set_new(root, "parent", json_string(m->parent ? m->parent : ""));
        bad |= json_object_set_new(root, "parent_manifest_sha256", json_string(m->parent_sha256));
        bad |= json_object_set_new(root, "depth", json_integer(m->depth));
    }
    if (m->block_size != 0) {
        bad |= json_object_set_new(root, "block_size", json_integer(m->block_size));
        bad |= json_object_set_new(root, "blockhash_size", u64_json(m->blockhash_size));
        bad |= json_object_set_new(root, "blockhash_sha256", json_string(m->blockhash_sha256));
    }
    for (i = 0; i < m->nparts; i++) {
        json_t *p = json_pack("{s:I, s:I, s:I, s:I}", "number", (json_int_t)m->parts[i].number, "raw_size",
                              (json_int_t)m->parts[i].raw_size, "stored_size",
                              (json_int_t)m->parts[i].stored_size, "files", (json_int_t)m->parts[i].files);
        bad |= p == NULL || json_array_append_new(parts, p);
    }
    for (i = 0; i < m->ntablespaces; i++) {
        json_t *t = json_pack("{s:I, s:s}", "oid", (json_int_t)m->tablespaces[i].oid, "path",
                              m->tablespaces[i].path);
        bad |= t == NULL || json_array_append_new(tbs, t);
    }
    for (i = 0; i < m->nfiles; i++) {
        const struct man_file *f = &m->files[i];
        json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "path", f->path, "part", (json_int_t)f->part,
                              "size", (json_int_t)f->size, "mode", (json_int_t)f->mode, "mtime",
                              (json_int_t)f->mtime, "sha256", f->sha256);
        if (j != NULL && f->map != NULL) {
            bad |= json_object_set_new(j, "stored", u64_json(f->stored));
            bad |= json_object_set_new(j, "stored_sha256", json_string(f->stored_sha256));
            bad |= json_object_set_new(j, "blocks", json_string(f->map));
        }
        bad |= j == NULL || json_array_append_new(files, j);
    }
    bad |= json_object_set_new(root, "parts", parts);
    bad |= json_object_set_new(root, "tablespaces", tbs);
    bad |= json_object_set_new(root, "files", files);
    if (bad) {
        json_decref(root);
        return err_setf(e, ERR_NOMEM, "could not build the manifest JSON");
    }
    *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (*out == NULL)
        return err_setf(e, ERR_NOMEM, "could not serialize the manifest");
    *len = strlen(*out);
    return 0;
}

/* ---- from JSON ---- */

struct jread {
    const char *what;
    struct err *e;
    int failed;
};

static json_t *jget(struct jread *r, json_t *obj, const char *key, json_type type)
{
    json_t *v = json_object_get(obj, key);

    if (r->failed)
        return NULL;
    if (v == NULL || json_typeof(v) != type) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"%s\" is missing or has the wrong type", r->what, key);
        r->failed = 1;
        return NULL;
    }
    return v;
}

static uint64_t jint(struct jread *r, json_t *obj, const char *key)
{
    json_t *v = jget(r, obj, key, JSON_INTEGER);
    json_int_t i;

    if (v == NULL)
        return 0;
    i = json_integer_value(v);
    if (i < 0) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"%s\" is negative", r->what, key);
        r->failed = 1;
        return 0;
    }
    return (uint64_t)i;
}

/* A field that must fit 32 bits (timelines, versions, part numbers,
 * modes, OIDs): refused rather than truncated into another value. */
static uint32_t jint32(struct jread *r, json_t *obj, const char *key)
{
    uint64_t v = jint(r, obj, key);

    if (!r->failed && v > UINT32_MAX) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"%s\" is out of range", r->what, key);
        r->failed = 1;
        return 0;
    }
    return (uint32_t)v;
}

static char *jstr(struct jread *r, json_t *obj, const char *key)
{
    json_t *v = jget(r, obj, key, JSON_STRING);
    char *s;

    if (v == NULL)
        return NULL;
    s = strdup(json_string_value(v));
    if (s == NULL) {
        err_setf(r->e, ERR_NOMEM, "out of memory");
        r->failed = 1;
    }
    return s;
}

static uint64_t jlsn(struct jread *r, json_t *obj, const char *key)
{
    json_t *v = jget(r, obj, key, JSON_STRING);
    struct err why = ERR_INIT;
    uint64_t lsn = 0;

    /* a bad manifest is corrupt, whatever the LSN parser calls it */
    if (v != NULL && wal_parse_lsn(json_string_value(v), &lsn, &why) < 0) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"%s\": %s", r->what, key, why.msg);
        r->failed = 1;
    }
    return lsn;
}

static void jcopy(struct jread *r, json_t *obj, const char *key, char *dst, size_t n)
{
    json_t *v = jget(r, obj, key, JSON_STRING);

    if (v != NULL && strlcopy(dst, json_string_value(v), n) < 0) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"%s\" is too long", r->what, key);
        r->failed = 1;
    }
}

static int safe_rel_path(const char *p)
{
    const char *s;

    if (*p == '\0' || *p == '/')
        return 0;
    for (s = p; s != NULL; s = strchr(s, '/')) {
        if (*s == '/')
            s++;
        if (strncmp(s, "..", 2) == 0 && (s[2] == '/' || s[2] == '\0'))
            return 0;
        if (*s == '\0' || *s == '/')
            return 0;
    }
    return 1;
}

/* The manifest's scalar fields. */
static void read_header(struct jread *r, json_t *root, struct manifest *m)
{
    json_t *v;

    m->format = (unsigned)jint(r, root, "format");
    if (!r->failed && m->format != MAN_FORMAT && m->format != MAN_FORMAT_INCR) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest format %u is not supported by this walship (it reads formats %d "
                 "and %d)", r->what, m->format, MAN_FORMAT, MAN_FORMAT_INCR);
        r->failed = 1;
    }
    m->name = jstr(r, root, "name");
    m->walship_version = jstr(r, root, "walship_version");
    m->start_lsn = jlsn(r, root, "start_lsn");
    m->stop_lsn = jlsn(r, root, "stop_lsn");
    m->timeline = jint32(r, root, "timeline");
    m->stop_timeline = jint32(r, root, "stop_timeline");
    jcopy(r, root, "start_wal", m->start_wal, sizeof m->start_wal);
    jcopy(r, root, "stop_wal", m->stop_wal, sizeof m->stop_wal);
    m->start_time = (int64_t)jint(r, root, "start_time");
    m->stop_time = (int64_t)jint(r, root, "stop_time");
    m->pg_version = jint32(r, root, "pg_version");
    m->system_identifier = jstr(r, root, "system_identifier");
    m->wal_segment_size = jint(r, root, "wal_segment_size");
    m->compression = jstr(r, root, "compression");
    v = json_object_get(root, "key_id");
    if (!r->failed && json_is_string(v) && (m->key_id = strdup(json_string_value(v))) == NULL) {
        err_setf(r->e, ERR_NOMEM, "out of memory");
        r->failed = 1;
    }
    m->original_size = jint(r, root, "original_size");
    m->stored_size = jint(r, root, "stored_size");
    m->has_tablespace_map = json_is_true(json_object_get(root, "tablespace_map"));
    v = json_object_get(root, "recovery_settings");
    if (!r->failed && json_is_string(v) && (m->recovery_settings = strdup(json_string_value(v))) == NULL) {
        err_setf(r->e, ERR_NOMEM, "out of memory");
        r->failed = 1;
    }
}

/* "parts" (numbered 1..N) and "tablespaces". */
static void read_parts(struct jread *r, json_t *root, struct manifest *m)
{
    json_t *arr = jget(r, root, "parts", JSON_ARRAY);
    size_t i;

    for (i = 0; arr != NULL && !r->failed && i < json_array_size(arr); i++) {
        json_t *p = json_array_get(arr, i);
        struct man_part mp;

        mp.number = jint32(r, p, "number");
        mp.raw_size = jint(r, p, "raw_size");
        mp.stored_size = jint(r, p, "stored_size");
        mp.files = jint32(r, p, "files");
        if (!r->failed && (mp.number != i + 1)) {
            err_setf(r->e, ERR_CORRUPT, "%s: manifest parts are not numbered 1..N", r->what);
            r->failed = 1;
        }
        if (!r->failed && man_add_part(m, &mp, r->e) < 0)
            r->failed = 1;
    }
    arr = jget(r, root, "tablespaces", JSON_ARRAY);
    for (i = 0; arr != NULL && !r->failed && i < json_array_size(arr); i++) {
        json_t *t = json_array_get(arr, i);
        uint32_t oid = jint32(r, t, "oid");
        json_t *p = jget(r, t, "path", JSON_STRING);

        if (!r->failed && man_add_tablespace(m, oid, json_string_value(p), r->e) < 0)
            r->failed = 1;
    }
}

/* type, parent, depth, block_size, blockhash: absent in format 1 */
static int read_incr(struct jread *r, json_t *root, struct manifest *m)
{
    json_t *t = json_object_get(root, "type");

    m->incremental = json_is_string(t) && strcmp(json_string_value(t), "incr") == 0;
    if (t != NULL && !m->incremental && !(json_is_string(t) && strcmp(json_string_value(t), "full") == 0))
        return err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"type\" is neither \"full\" nor \"incr\"", r->what);
    if (m->incremental && m->format != MAN_FORMAT_INCR)
        return err_setf(r->e, ERR_CORRUPT, "%s: an incremental backup's manifest must have format %d", r->what,
                        MAN_FORMAT_INCR);
    if (m->incremental) {
        m->parent = jstr(r, root, "parent");
        jcopy(r, root, "parent_manifest_sha256", m->parent_sha256, sizeof m->parent_sha256);
        m->depth = jint32(r, root, "depth");
        if (r->failed)
            return -1;
        if (strlen(m->parent_sha256) != 64 || m->depth == 0 || m->depth > BM_MAX_DEPTH || m->parent[0] == '\0' ||
            strchr(m->parent, '/') != NULL)
            return err_setf(r->e, ERR_CORRUPT, "%s: the manifest's parent link is malformed", r->what);
    }
    if (json_object_get(root, "block_size") != NULL) {
        m->block_size = jint32(r, root, "block_size");
        m->blockhash_size = jint(r, root, "blockhash_size");
        jcopy(r, root, "blockhash_sha256", m->blockhash_sha256, sizeof m->blockhash_sha256);
        if (r->failed)
            return -1;
        if (m->block_size < 4096 || m->block_size > (1u << 24) || (m->block_size & (m->block_size - 1)) != 0 ||
            strlen(m->blockhash_sha256) != 64)
            return err_setf(r->e, ERR_CORRUPT, "%s: the manifest's block_size or blockhash is malformed", r->what);
    }
    if (m->incremental && m->block_size == 0)
        return err_setf(r->e, ERR_CORRUPT, "%s: an incremental backup's manifest has no block_size", r->what);
    return r->failed ? -1 : 0;
}

/* A file stored as a block map: the map must cover the file with depths
 * within the chain, and the stored bytes be exactly its own blocks. */
static int read_map_file(struct jread *r, json_t *f, struct manifest *m, const char *path, uint32_t part,
                         uint64_t size, uint32_t mode, int64_t mtime, const char *sha)
{
    json_t *blocks = jget(r, f, "blocks", JSON_STRING), *ssha = jget(r, f, "stored_sha256", JSON_STRING);
    uint64_t stored = jint(r, f, "stored");
    struct bm_map map;
    int ok;

    if (r->failed)
        return -1;
    if (!m->incremental || strlen(json_string_value(ssha)) != 64)
        return err_setf(r->e, ERR_CORRUPT, "%s: manifest entry for \"%s\" is malformed", r->what, path);
    if (bm_map_parse(json_string_value(blocks), bm_nblocks(size, m->block_size), m->depth, &map, r->e) < 0)
        return err_prefix(r->e, "%s: file \"%s\"", r->what, path);
    ok = bm_map_self_bytes(&map, size, m->block_size) == stored && (stored == 0) == (part == 0);
    bm_map_free(&map);
    if (!ok)
        return err_setf(r->e, ERR_CORRUPT, "%s: file \"%s\": its stored bytes do not match its block map", r->what,
                        path);
    return man_add_file_map(m, path, part, size, mode, mtime, sha, json_string_value(blocks), stored,
                            json_string_value(ssha), r->e);
}

/* "files": each a safe relative path in one of the parts. */
static void read_files(struct jread *r, json_t *root, struct manifest *m)
{
    json_t *arr = jget(r, root, "files", JSON_ARRAY);
    size_t i;

    for (i = 0; arr != NULL && !r->failed && i < json_array_size(arr); i++) {
        json_t *f = json_array_get(arr, i);
        json_t *path = jget(r, f, "path", JSON_STRING);
        uint32_t part = jint32(r, f, "part");
        uint64_t size = jint(r, f, "size");
        uint32_t mode = jint32(r, f, "mode");
        int64_t mtime = (int64_t)jint(r, f, "mtime");
        json_t *sha = jget(r, f, "sha256", JSON_STRING);

        if (r->failed)
            break;
        if (!safe_rel_path(json_string_value(path))) {
            err_setf(r->e, ERR_CORRUPT, "%s: manifest lists an unsafe path \"%s\"", r->what,
                     json_string_value(path));
            r->failed = 1;
            break;
        }
        if (strlen(json_string_value(sha)) != 64 || part > m->nparts ||
            (part == 0 && json_object_get(f, "blocks") == NULL)) {
            err_setf(r->e, ERR_CORRUPT, "%s: manifest entry for \"%s\" is malformed", r->what,
                     json_string_value(path));
            r->failed = 1;
            break;
        }
        if (json_object_get(f, "blocks") != NULL) {
            if (read_map_file(r, f, m, json_string_value(path), part, size, mode & 07777, mtime,
                              json_string_value(sha)) < 0)
                r->failed = 1;
        } else if (man_add_file(m, json_string_value(path), part, size, mode & 07777, mtime, json_string_value(sha),
                                r->e) < 0) {
            r->failed = 1;
        }
    }
}

int man_from_json(const char *buf, size_t len, const char *what, struct manifest **out, struct err *e)
{
    struct jread r = { what, e, 0 };
    json_error_t jerr;
    json_t *root;
    struct manifest *m;

    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return err_setf(e, ERR_CORRUPT, "%s: manifest is not valid JSON (line %d: %s)", what, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_setf(e, ERR_CORRUPT, "%s: manifest is not a JSON object", what);
    }
    m = man_new();
    if (m == NULL) {
        json_decref(root);
        return err_setf(e, ERR_NOMEM, "out of memory");
    }
    read_header(&r, root, m);
    if (!r.failed && read_incr(&r, root, m) < 0)
        r.failed = 1;
    read_parts(&r, root, m);
    read_files(&r, root, m);
    json_decref(root);
    if (r.failed) {
        man_free(m);
        return -1;
    }
    *out = m;
    return 0;
}
