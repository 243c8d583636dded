#include "manifest.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockmap.h"
#include "utf8.h"
#include "util.h"
#include "wal.h"

struct manifest *man_new(void)
{
    struct manifest *m = calloc(1, sizeof *m);

    if (m != NULL)
        m->format = MAN_FORMAT;
    return m;
}

void man_drop_files(struct manifest *m)
{
    size_t i;

    for (i = 0; i < m->nfiles; i++) {
        free(m->files[i].path);
        free(m->files[i].map);
        free(m->files[i].pieces);
    }
    free(m->files);
    m->files = NULL;
    m->nfiles = m->files_cap = 0;
}

void man_free(struct manifest *m)
{
    size_t i;

    if (m == NULL)
        return;
    man_drop_files(m);
    for (i = 0; i < m->ntablespaces; i++)
        free(m->tablespaces[i].path);
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
    f->pieces = NULL;
    f->npieces = 0;
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

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int man_pieces_sha(const struct man_piece *pieces, uint32_t npieces, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE], bin[32];
    unsigned int dn = 0;
    uint32_t i;
    int k, ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

    for (i = 0; ok && i < npieces; i++) {
        for (k = 0; ok && k < 32; k++) {
            int hi = hexval(pieces[i].sha256[2 * k]), lo = hi < 0 ? -1 : hexval(pieces[i].sha256[2 * k + 1]);

            ok = lo >= 0;
            if (ok)     /* hi is not negative either then: no shift of -1 (UB) */
                bin[k] = (unsigned char)(hi << 4 | lo);
        }
        ok = ok && pieces[i].sha256[64] == '\0' && EVP_DigestUpdate(md, bin, 32) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(md, d, &dn) == 1 && dn == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return -1;
    hex_encode(d, 32, out);
    out[64] = '\0';
    return 0;
}

const struct man_piece *man_piece_in(const struct man_file *f, uint32_t part)
{
    uint32_t i;

    for (i = 0; i < f->npieces; i++)
        if (f->pieces[i].part == part)
            return &f->pieces[i];
    return NULL;
}

int man_add_file_pieces(struct manifest *m, const char *path, uint64_t size, uint32_t mode, int64_t mtime,
                        const struct man_piece *pieces, uint32_t npieces, struct err *e)
{
    struct man_piece *pv = malloc((npieces + 1) * sizeof *pv);
    struct man_file *f;
    char sha[65];

    if (pv == NULL)
        return err_setf(e, ERR_NOMEM, "out of memory");
    if (man_pieces_sha(pieces, npieces, sha) < 0) {
        free(pv);
        return err_setf(e, ERR_CORRUPT, "file \"%s\": a piece's SHA-256 is malformed", path);
    }
    if (man_add_file(m, path, 0, size, mode, mtime, sha, e) < 0) {
        free(pv);
        return -1;
    }
    memcpy(pv, pieces, npieces * sizeof *pv);
    f = &m->files[m->nfiles - 1];
    f->pieces = pv;
    f->npieces = npieces;
    f->stored = 0;
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

/* A file's name: "path" when it is UTF-8, else "path_hex", its bytes in
 * hex (JSON holds UTF-8 only, and a file name in PGDATA is bytes). */
static int path_json(json_t *j, const char *path)
{
    const char *p;
    char *hex;
    size_t n;
    int rc;

    for (p = path; *p != '\0'; p += n)
        if ((n = utf8_seq_len(p)) == 0)
            break;
    if (*p == '\0')
        return json_object_set_new(j, "path", json_string(path));
    n = strlen(path);
    if ((hex = malloc(2 * n + 1)) == NULL)
        return -1;
    hex_encode((const unsigned char *)path, n, hex);
    rc = json_object_set_new(j, "path_hex", json_string(hex));
    free(hex);
    return rc;
}

static json_t *pieces_json(const struct man_file *f)
{
    json_t *a = json_array();
    uint32_t i;

    for (i = 0; a != NULL && i < f->npieces; i++) {
        const struct man_piece *p = &f->pieces[i];
        json_t *o = json_pack("{s:I, s:I, s:I, s:s}", "part", (json_int_t)p->part, "offset", (json_int_t)p->offset,
                              "size", (json_int_t)p->size, "sha256", p->sha256);

        if (o == NULL || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* [{oid, path or path_hex}]: a LOCATION is bytes, like a file name; NULL
 * out of memory. */
static json_t *tablespaces_json(const struct manifest *m)
{
    json_t *tbs = json_array();
    size_t i;

    for (i = 0; tbs != NULL && i < m->ntablespaces; i++) {
        json_t *t = json_pack("{s:I}", "oid", (json_int_t)m->tablespaces[i].oid);

        if (t == NULL || path_json(t, m->tablespaces[i].path) != 0) {
            json_decref(t);
            json_decref(tbs);
            return NULL;
        }
        if (json_array_append_new(tbs, t) != 0) {   /* t is gone either way */
            json_decref(tbs);
            return NULL;
        }
    }
    return tbs;
}

int man_to_json(const struct manifest *m, char **out, size_t *len, struct err *e)
{
    json_t *root = json_object(), *files = json_array(), *parts = json_array(), *tbs = tablespaces_json(m);
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
    for (i = 0; i < m->nfiles; i++) {
        const struct man_file *f = &m->files[i];
        json_t *j = json_object();

        bad |= j == NULL || path_json(j, f->path) != 0;
        if (j != NULL) {
            json_t *rest = json_pack("{s:I, s:I, s:I, s:I, s:s}", "part", (json_int_t)f->part, "size",
                                     (json_int_t)f->size, "mode", (json_int_t)f->mode, "mtime", (json_int_t)f->mtime,
                                     "sha256", f->sha256);

            bad |= rest == NULL || json_object_update(j, rest) != 0;
            json_decref(rest);
        }
        if (j != NULL && f->map != NULL) {
            bad |= json_object_set_new(j, "stored", u64_json(f->stored));
            bad |= json_object_set_new(j, "stored_sha256", json_string(f->stored_sha256));
            bad |= json_object_set_new(j, "blocks", json_string(f->map));
        }
        if (j != NULL && f->npieces > 0)
            bad |= json_object_set_new(j, "pieces", pieces_json(f));
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
