/*
 * manifest_read — a backup manifest from its JSON (manifest.h): every field
 * checked, anything malformed refused as ERR_CORRUPT naming the field.
 */
#include "manifest.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"
#include "util.h"
#include "wal.h"

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
    if (!r->failed && m->format != MAN_FORMAT && m->format != MAN_FORMAT_INCR && m->format != MAN_FORMAT_PIECES) {
        err_setf(r->e, ERR_CORRUPT, "%s: manifest format %u is not supported by this walship (it reads formats %d, "
                 "%d and %d)", r->what, m->format, MAN_FORMAT, MAN_FORMAT_INCR, MAN_FORMAT_PIECES);
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

static char *file_path(struct jread *r, json_t *f);

/* "parts" (numbered 1..N) and "tablespaces" (a path as a file's: "path" or "path_hex"). */
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
        char *p = r->failed ? NULL : file_path(r, t);

        if (!r->failed && man_add_tablespace(m, oid, p, r->e) < 0)
            r->failed = 1;
        free(p);
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

#define PIECE_BAD(...) (err_setf(r->e, ERR_CORRUPT, __VA_ARGS__), free(pv), -1)

/* A file of a full backup stored as pieces (format 3): at least two,
 * contiguous from 0 to the file's size, block-aligned, each in a part of
 * its own, and the file's sha256 the digest of theirs (man_pieces_sha). */
static int read_pieces(struct jread *r, json_t *f, struct manifest *m, const char *path, uint32_t part,
                       uint64_t size, uint32_t mode, int64_t mtime, const char *sha)
{
    json_t *arr = jget(r, f, "pieces", JSON_ARRAY);
    size_t n = arr != NULL ? json_array_size(arr) : 0, i, k;
    struct man_piece *pv;
    uint64_t at = 0;
    char want[65];
    int rc;

    if (r->failed)
        return -1;
    if (m->format != MAN_FORMAT_PIECES || m->incremental || part != 0 || json_object_get(f, "blocks") != NULL ||
        n < 2 || n > m->nparts)
        return err_setf(r->e, ERR_CORRUPT, "%s: file \"%s\": malformed pieces (format %u)", r->what, path,
                        m->format);
    if ((pv = calloc(n, sizeof *pv)) == NULL)
        return err_setf(r->e, ERR_NOMEM, "out of memory");
    for (i = 0; i < n; i++) {
        json_t *p = json_array_get(arr, i);

        pv[i].part = jint32(r, p, "part");
        pv[i].offset = jint(r, p, "offset");
        pv[i].size = jint(r, p, "size");
        jcopy(r, p, "sha256", pv[i].sha256, sizeof pv[i].sha256);
        if (r->failed) {
            free(pv);
            return -1;
        }
        if (pv[i].part < 1 || pv[i].part > m->nparts || pv[i].size == 0 || strlen(pv[i].sha256) != 64)
            return PIECE_BAD("%s: file \"%s\": piece %zu is malformed", r->what, path, i + 1);
        if (pv[i].offset != at)
            return PIECE_BAD("%s: file \"%s\": piece %zu starts at %llu, not at %llu (pieces must follow each other "
                             "without gap or overlap)", r->what, path, i + 1, (unsigned long long)pv[i].offset,
                             (unsigned long long)at);
        if (m->block_size != 0 && pv[i].offset % m->block_size != 0)
            return PIECE_BAD("%s: file \"%s\": piece %zu is not block-aligned", r->what, path, i + 1);
        for (k = 0; k < i; k++)
            if (pv[k].part == pv[i].part)
                return PIECE_BAD("%s: file \"%s\": two pieces in part %u", r->what, path, (unsigned)pv[i].part);
        if (pv[i].size > size - at)
            return PIECE_BAD("%s: file \"%s\": its pieces exceed its size", r->what, path);
        at += pv[i].size;
    }
    if (at != size)
        return PIECE_BAD("%s: file \"%s\": its pieces hold %llu of its %llu bytes", r->what, path,
                         (unsigned long long)at, (unsigned long long)size);
    if (man_pieces_sha(pv, (uint32_t)n, want) < 0 || strcmp(want, sha) != 0)
        return PIECE_BAD("%s: file \"%s\": its sha256 is not the digest of its pieces'", r->what, path);
    rc = man_add_file_pieces(m, path, size, mode, mtime, pv, (uint32_t)n, r->e);
    free(pv);
    return rc;
}

/* A file's name, malloc'd: "path", or "path_hex" for a name that is not
 * UTF-8 (manifest.c), whose bytes must not be NUL. */
static char *file_path(struct jread *r, json_t *f)
{
    json_t *hex = json_object_get(f, "path_hex");
    const char *h;
    char *out;
    size_t n, i;

    if (hex != NULL && json_object_get(f, "path") != NULL) {
        err_setf(r->e, ERR_CORRUPT, "%s: a manifest entry has both \"path\" and \"path_hex\"", r->what);
        r->failed = 1;
        return NULL;
    }
    if (hex == NULL) {
        json_t *path = jget(r, f, "path", JSON_STRING);

        out = path != NULL ? strdup(json_string_value(path)) : NULL;
        if (path != NULL && out == NULL) {
            err_setf(r->e, ERR_NOMEM, "out of memory");
            r->failed = 1;
        }
        return out;
    }
    if ((hex = jget(r, f, "path_hex", JSON_STRING)) == NULL)
        return NULL;
    h = json_string_value(hex);
    n = strlen(h);
    if (n == 0 || n % 2 != 0 || (out = malloc(n / 2 + 1)) == NULL) {
        err_setf(r->e, n % 2 || n == 0 ? ERR_CORRUPT : ERR_NOMEM, "%s: manifest field \"path_hex\" is malformed",
                 r->what);
        r->failed = 1;
        return NULL;
    }
    for (i = 0; i < n / 2; i++) {
        int hi = hex_digit((unsigned char)h[2 * i]), lo = hex_digit((unsigned char)h[2 * i + 1]);

        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(out);
            err_setf(r->e, ERR_CORRUPT, "%s: manifest field \"path_hex\" is malformed", r->what);
            r->failed = 1;
            return NULL;
        }
        out[i] = (char)(hi << 4 | lo);
    }
    out[n / 2] = '\0';
    return out;
}

/* "files": each a safe relative path in one of the parts. */
static void read_files(struct jread *r, json_t *root, struct manifest *m)
{
    json_t *arr = jget(r, root, "files", JSON_ARRAY);
    size_t i;

    m->files_listed = arr != NULL ? json_array_size(arr) : 0;
    for (i = 0; arr != NULL && !r->failed && i < json_array_size(arr); i++) {
        json_t *f = json_array_get(arr, i);
        char *path = file_path(r, f);
        uint32_t part = jint32(r, f, "part");
        uint64_t size = jint(r, f, "size");
        uint32_t mode = jint32(r, f, "mode") & 07777;
        int64_t mtime = (int64_t)jint(r, f, "mtime");
        json_t *sha = jget(r, f, "sha256", JSON_STRING);
        const char *hash = sha != NULL ? json_string_value(sha) : NULL;

        if (r->failed) {
            /* the field's error is set */
        } else if (!safe_rel_path(path)) {
            err_setf(r->e, ERR_CORRUPT, "%s: manifest lists an unsafe path \"%s\"", r->what, path);
            r->failed = 1;
        } else if (strlen(hash) != 64 || part > m->nparts ||
                   (part == 0 && json_object_get(f, "blocks") == NULL && json_object_get(f, "pieces") == NULL)) {
            err_setf(r->e, ERR_CORRUPT, "%s: manifest entry for \"%s\" is malformed", r->what, path);
            r->failed = 1;
        } else if (json_object_get(f, "pieces") != NULL) {
            if (read_pieces(r, f, m, path, part, size, mode, mtime, hash) < 0)
                r->failed = 1;
        } else if (json_object_get(f, "blocks") != NULL) {
            if (read_map_file(r, f, m, path, part, size, mode, mtime, hash) < 0)
                r->failed = 1;
        } else if (man_add_file(m, path, part, size, mode, mtime, hash, r->e) < 0) {
            r->failed = 1;
        }
        free(path);
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
