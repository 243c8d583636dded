/*
 * manifest_test — a backup's manifest (src/repo/manifest.c, manifest.h):
 * man_to_json and man_from_json are exact inverses for every field; a
 * manifest that lacks a field, repeats one, has one of the wrong type or
 * out of its range, lists an unsafe path or a file in no part, or comes
 * in a format this walship does not read is refused (ERR_CORRUPT), and
 * unknown fields are ignored.  What a stored manifest is bound to (checked
 * when the catalog loads it, src/repo/catalog.c): the backup name it is
 * stored under and the repository's cluster; a manifest copied under
 * another name or from another cluster is refused as foreign.
 */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "manifest.h"
#include "repo.h"
#include "tap.h"

#define SYSID 7311234567890123456ULL

static const char SHA_A[65] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char SHA_B[65] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static struct manifest *sample(void)
{
    struct manifest *m = man_new();
    struct man_part p1 = { 1, 3000000000ULL, 1200000000ULL, 2 }, p2 = { 2, 4096, 900, 1 };
    struct err e = ERR_INIT;

    m->name = strdup("20261203T081500Z");
    m->walship_version = strdup("0.3.0");
    m->start_lsn = 0x1000000028ULL;
    m->stop_lsn = 0x10FF000100ULL;
    m->timeline = 3;
    m->stop_timeline = 4;
    snprintf(m->start_wal, sizeof m->start_wal, "%s", "000000030000001000000000");
    snprintf(m->stop_wal, sizeof m->stop_wal, "%s", "0000000400000010000000FF");
    m->start_time = 1764749700;
    m->stop_time = 1764749760;
    m->pg_version = 150010;
    m->system_identifier = strdup("7311234567890123456");
    m->wal_segment_size = 16777216;
    m->compression = strdup("zstd:3");
    m->key_id = strdup("c0ffee00c0ffee00");
    m->original_size = 3000004096ULL;
    m->stored_size = 1200000900ULL;
    m->has_tablespace_map = 1;
    m->recovery_settings = strdup("restore_command (postgresql.auto.conf:3)");
    man_add_part(m, &p1, &e);
    man_add_part(m, &p2, &e);
    man_add_tablespace(m, 16385, "/srv/ts \"one\"", &e);
    man_add_file(m, "base/1/1259", 1, 2999999000ULL, 0600, 1764749000, SHA_A, &e);
    man_add_file(m, "global/pg_control", 1, 8192, 0600, 1764749001, SHA_B, &e);
    man_add_file(m, "pg_tblspc/16385/PG_15_202209061/5/16386", 2, 4096, 0640, 1764749002, SHA_A, &e);
    return m;
}

static int same(const struct manifest *a, const struct manifest *b)
{
    size_t i;

    if (a->format != b->format || strcmp(a->name, b->name) || strcmp(a->walship_version, b->walship_version) ||
        a->start_lsn != b->start_lsn || a->stop_lsn != b->stop_lsn || a->timeline != b->timeline ||
        a->stop_timeline != b->stop_timeline || strcmp(a->start_wal, b->start_wal) ||
        strcmp(a->stop_wal, b->stop_wal) || a->start_time != b->start_time || a->stop_time != b->stop_time ||
        a->pg_version != b->pg_version || strcmp(a->system_identifier, b->system_identifier) ||
        a->wal_segment_size != b->wal_segment_size || strcmp(a->compression, b->compression) ||
        (a->key_id == NULL) != (b->key_id == NULL) || (a->key_id && strcmp(a->key_id, b->key_id)) ||
        a->original_size != b->original_size || a->stored_size != b->stored_size ||
        a->has_tablespace_map != b->has_tablespace_map ||
        (a->recovery_settings == NULL) != (b->recovery_settings == NULL) ||
        (a->recovery_settings && strcmp(a->recovery_settings, b->recovery_settings)) || a->nparts != b->nparts ||
        a->ntablespaces != b->ntablespaces || a->nfiles != b->nfiles)
        return 0;
    for (i = 0; i < a->nparts; i++)
        if (a->parts[i].number != b->parts[i].number || a->parts[i].raw_size != b->parts[i].raw_size ||
            a->parts[i].stored_size != b->parts[i].stored_size || a->parts[i].files != b->parts[i].files)
            return 0;
    for (i = 0; i < a->ntablespaces; i++)
        if (a->tablespaces[i].oid != b->tablespaces[i].oid || strcmp(a->tablespaces[i].path, b->tablespaces[i].path))
            return 0;
    for (i = 0; i < a->nfiles; i++) {
        const struct man_file *x = &a->files[i], *y = &b->files[i];

        if (strcmp(x->path, y->path) || x->part != y->part || x->size != y->size || x->mode != y->mode ||
            x->mtime != y->mtime || strcmp(x->sha256, y->sha256))
            return 0;
    }
    return 1;
}

static char *valid_json;
static size_t valid_len;

static void test_round_trip(void)
{
    struct manifest *m = sample(), *back = NULL;
    struct err e = ERR_INIT;
    char *again = NULL;
    size_t len;

    ok(man_to_json(m, &valid_json, &valid_len, &e) == 0, "a manifest with every field serialises");
    ok(strchr(valid_json, '\n') == NULL, "on one line");
    ok(man_from_json(valid_json, valid_len, "sample", &back, &e) == 0, "and parses back");
    ok(back != NULL && same(m, back), "every field round-trips (64-bit sizes, LSNs, quotes, key, settings)");
    ok(back != NULL && man_to_json(back, &again, &len, &e) == 0 && len == valid_len &&
           memcmp(again, valid_json, len) == 0,
       "and serialising it again gives the same bytes");
    like(valid_json, "\"start_time_text\":\"2025-12-03T08:15:00Z\"", "times are also written in ISO 8601");
    free(again);
    man_free(back);

    free(m->key_id);
    m->key_id = NULL;
    free(m->recovery_settings);
    m->recovery_settings = NULL;
    m->has_tablespace_map = 0;
    ok(man_to_json(m, &again, &len, &e) == 0 && man_from_json(again, len, "plain", &back, &e) == 0,
       "an unencrypted manifest without recovery settings");
    ok(back->key_id == NULL && back->recovery_settings == NULL && !back->has_tablespace_map && same(m, back),
       "keeps them absent");
    like(again, "\"key_id\":null", "(the key is written as null)");
    free(again);
    man_free(back);
    man_free(m);
}

/* File names are bytes: one that is not UTF-8 (which JSON cannot hold)
 * is written as "path_hex" and read back to the same bytes; a UTF-8 one
 * stays "path". */
static void test_binary_names(void)
{
    struct manifest *m = sample(), *back = NULL;
    struct err e = ERR_INIT;
    char *json = NULL;
    size_t len;

    man_add_file(m, "lat\xe4in", 1, 1, 0600, 1764749003, SHA_B, &e);
    man_add_file(m, "caf\xc3\xa9 \n x", 1, 1, 0600, 1764749003, SHA_B, &e);
    man_add_tablespace(m, 16390, "/srv/ts/lat\xe4in", &e);
    ok(man_to_json(m, &json, &len, &e) == 0, "a manifest with a file name that is not UTF-8 serialises");
    like(json, "\"path_hex\":\"2f7372762f74732f6c6174e4696e\"", "so does a tablespace LOCATION that is not UTF-8, in hex");
    like(json, "\"path_hex\":\"6c6174e4696e\"", "that name is written in hex");
    like(json, "\"path\":\"caf\xc3\xa9 \\n x\"", "a UTF-8 name is written as it is");
    ok(json != NULL && man_from_json(json, len, "bytes", &back, &e) == 0 && same(m, back),
       "both read back to the same bytes");
    free(json);
    man_free(back);
    man_free(m);
    back = NULL;
    json = strdup(valid_json);
    if (json != NULL && (len = strlen(json)) > 0) {
        char *at = strstr(json, "\"path\":\"global/pg_control\"");

        if (at != NULL) {
            /* "path" -> "path_hex" holding "2e2e" ("..") padded with spaces to the same length */
            memcpy(at, "\"path_hex\":\"2e2e\"             ", strlen("\"path\":\"global/pg_control\""));
        }
        ok(at != NULL && man_from_json(json, len, "dotdot", &back, &e) < 0 && e.code == ERR_CORRUPT,
           "a \"path_hex\" of \"..\" is refused as unsafe");
        man_free(back);
    }
    free(json);
}

/* An incremental backup's manifest: what binds it to its parent survives. */
static void test_incremental(void)
{
    struct manifest *m = sample(), *back = NULL;
    struct err e = ERR_INIT;
    char *json = NULL;
    size_t len;

    m->format = MAN_FORMAT_INCR;
    m->incremental = 1;
    m->parent = strdup("20261202T081500Z");
    memcpy(m->parent_sha256, SHA_B, 65);
    m->depth = 3;
    m->block_size = 8192;
    m->blockhash_size = 123456;
    memcpy(m->blockhash_sha256, SHA_A, 65);
    ok(man_to_json(m, &json, &len, &e) == 0 && man_from_json(json, len, "incr", &back, &e) == 0,
       "an incremental manifest round-trips");
    ok(back != NULL && same(m, back) && back->incremental && back->format == MAN_FORMAT_INCR &&
           strcmp(back->parent, "20261202T081500Z") == 0 && strcmp(back->parent_sha256, SHA_B) == 0 &&
           back->depth == 3 && back->block_size == 8192 && back->blockhash_size == 123456 &&
           strcmp(back->blockhash_sha256, SHA_A) == 0,
       "with its parent, the parent manifest's SHA-256, depth and block hashes");
    man_free(back);
    {
        static const char *const keys[] = { "depth", "block_size" };
        static const json_int_t vals[] = { ((json_int_t)1 << 32) + 3, ((json_int_t)1 << 32) + 8192 };
        size_t i;

        for (i = 0; i < 2; i++) {
            json_t *root = json_loadb(json, len, 0, NULL);
            char *text;

            json_object_set_new(root, keys[i], json_integer(vals[i]));
            text = json_dumps(root, JSON_COMPACT);
            json_decref(root);
            back = NULL;
            err_clear(&e);
            ok(man_from_json(text, strlen(text), "incr", &back, &e) < 0 && e.code == ERR_CORRUPT,
               "an incremental manifest's %s past 32 bits is refused (not truncated into a valid one)", keys[i]);
            man_free(back);
            free(text);
        }
    }
    free(json);
    man_free(m);
}

static void test_find_sort(void)
{
    struct manifest *m = man_new();
    struct err e = ERR_INIT;
    struct man_part p = { 1, 1, 1, 1 };

    man_add_part(m, &p, &e);
    p.number = 2;
    man_add_part(m, &p, &e);
    man_add_file(m, "z", 1, 1, 0600, 0, SHA_A, &e);
    man_add_file(m, "a", 2, 1, 0600, 0, SHA_A, &e);
    man_add_file(m, "b", 1, 1, 0600, 0, SHA_A, &e);
    man_sort(m);
    ok(strcmp(m->files[0].path, "b") == 0 && strcmp(m->files[1].path, "z") == 0 &&
           strcmp(m->files[2].path, "a") == 0,
       "man_sort orders by part, then path");
    ok(man_find_file(m, "z") == &m->files[1] && man_find_file(m, "nope") == NULL, "man_find_file");
    man_free(m);
}

/* Parse the valid manifest with `edit` applied; 1 when it is refused as
 * corrupt with a message containing `needle`. */
static int refused(void (*edit)(json_t *root, const void *arg), const void *arg, const char *needle)
{
    json_error_t je;
    json_t *root = json_loadb(valid_json, valid_len, 0, &je);
    struct manifest *m = NULL;
    struct err e = ERR_INIT;
    char *text;
    int rc;

    edit(root, arg);
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    rc = man_from_json(text, strlen(text), "edited", &m, &e);
    free(text);
    if (rc == 0) {
        man_free(m);
        if (*needle != '\0')
            diag("accepted");
        return 0;
    }
    if (e.code != ERR_CORRUPT || strstr(e.msg, needle) == NULL) {
        diag("refused with code %d: %s", (int)e.code, e.msg);
        return 0;
    }
    return 1;
}

static void drop(json_t *root, const void *key)
{
    json_object_del(root, key);
}

struct setint {
    const char *key;
    json_int_t v;
};

static void set_int(json_t *root, const void *arg)
{
    const struct setint *s = arg;

    json_object_set_new(root, s->key, json_integer(s->v));
}

static void set_file_int(json_t *root, const void *arg)
{
    const struct setint *s = arg;

    json_object_set_new(json_array_get(json_object_get(root, "files"), 0), s->key, json_integer(s->v));
}

static void set_part_int(json_t *root, const void *arg)
{
    const struct setint *s = arg;

    json_object_set_new(json_array_get(json_object_get(root, "parts"), 1), s->key, json_integer(s->v));
}

static void set_file_str(json_t *root, const void *arg)
{
    const char *const *kv = arg;

    json_object_set_new(json_array_get(json_object_get(root, "files"), 0), kv[0], json_string(kv[1]));
}

static void set_str(json_t *root, const void *arg)
{
    const char *const *kv = arg;

    json_object_set_new(root, kv[0], json_string(kv[1]));
}

static void drop_file_key(json_t *root, const void *key)
{
    json_object_del(json_array_get(json_object_get(root, "files"), 0), key);
}

static void add_unknown(json_t *root, const void *arg)
{
    (void)arg;
    json_object_set_new(root, "a_field_from_the_future", json_string("ignored"));
}

static void test_refusals(void)
{
    static const char *required[] = { "format", "name", "walship_version", "start_lsn", "stop_lsn", "timeline",
                                      "stop_timeline", "start_wal", "stop_wal", "start_time", "stop_time",
                                      "pg_version", "system_identifier", "wal_segment_size", "compression",
                                      "original_size", "stored_size", "parts", "tablespaces", "files" };
    static const char *file_keys[] = { "path", "part", "size", "mode", "mtime", "sha256" };
    struct manifest *m = NULL;
    struct err e = ERR_INIT;
    size_t i;
    char *dup;

    for (i = 0; i < sizeof required / sizeof required[0]; i++)
        ok(refused(drop, required[i], required[i]), "a manifest without \"%s\" is refused, naming it", required[i]);
    for (i = 0; i < sizeof file_keys / sizeof file_keys[0]; i++)
        ok(refused(drop_file_key, file_keys[i], file_keys[i]), "a file entry without \"%s\" is refused",
           file_keys[i]);

    ok(refused(set_str, (const char *[]){ "timeline", "3" }, "timeline"), "a field of the wrong type is refused");
    ok(refused(set_int, &(struct setint){ "format", MAN_FORMAT_PIECES + 1 }, "is not supported"),
       "a newer format is refused, saying so");
    ok(refused(set_int, &(struct setint){ "format", 0 }, "format 0"), "format 0 is refused");
    ok(refused(set_int, &(struct setint){ "stored_size", -1 }, "negative"), "a negative size is refused");
    ok(refused(set_int, &(struct setint){ "timeline", (json_int_t)UINT32_MAX + 2 }, "timeline"),
       "a timeline past 32 bits is refused, not truncated");
    ok(refused(set_int, &(struct setint){ "pg_version", (json_int_t)1 << 40 }, "pg_version"),
       "a pg_version past 32 bits is refused");
    ok(refused(set_file_int, &(struct setint){ "part", 0 }, "malformed"), "a file in part 0 is refused");
    ok(refused(set_file_int, &(struct setint){ "part", 3 }, "malformed"), "a file in a part that does not exist");
    ok(refused(set_file_int, &(struct setint){ "part", (json_int_t)UINT32_MAX + 2 }, "part"),
       "a file part past 32 bits is refused (not truncated into part 1)");
    ok(refused(set_file_int, &(struct setint){ "mode", (json_int_t)UINT32_MAX + 0600 + 1 }, "mode"),
       "a mode past 32 bits is refused");
    ok(refused(set_part_int, &(struct setint){ "number", 3 }, "1..N"), "parts not numbered 1..N are refused");
    ok(refused(set_part_int, &(struct setint){ "number", (json_int_t)UINT32_MAX + 3 }, "number"),
       "a part number past 32 bits is refused (not truncated into 2)");
    ok(refused(set_str, (const char *[]){ "start_lsn", "10/zz" }, "start_lsn"), "an unparsable LSN is refused");
    ok(refused(set_str, (const char *[]){ "stop_wal", "0000000400000010000000FF0" }, "too long"),
       "a WAL name too long for its field is refused");
    ok(refused(set_file_str, (const char *[]){ "sha256", "abc" }, "malformed"), "a short sha256 is refused");
    ok(refused(set_file_str, (const char *[]){ "path", "../etc/passwd" }, "unsafe"), "a path out of PGDATA");
    ok(refused(set_file_str, (const char *[]){ "path", "/etc/passwd" }, "unsafe"), "an absolute path");
    ok(refused(set_file_str, (const char *[]){ "path", "base/../../x" }, "unsafe"), "a path through ..");
    ok(refused(set_file_str, (const char *[]){ "path", "base//x" }, "unsafe"), "an empty path component");
    ok(refused(set_file_str, (const char *[]){ "path", "" }, "unsafe"), "an empty path");
    ok(!refused(add_unknown, NULL, ""), "an unknown field is ignored");

    /* a field given twice: jansson's object would keep one silently */
    dup = malloc(valid_len + 32);
    snprintf(dup, valid_len + 32, "{\"timeline\":9,%s", valid_json + 1);
    ok(man_from_json(dup, strlen(dup), "dup", &m, &e) < 0 && e.code == ERR_CORRUPT, "a repeated field is refused");
    like(e.msg, "dup", "naming the source");
    free(dup);
    err_clear(&e);
    ok(man_from_json("[1,2]", 5, "arr", &m, &e) < 0 && e.code == ERR_CORRUPT, "a JSON array is refused");
    err_clear(&e);
    ok(man_from_json(valid_json, valid_len - 1, "cut", &m, &e) < 0 && e.code == ERR_CORRUPT,
       "a truncated manifest is refused");
}

/* Store `m` (renamed `as_name`, of cluster `sysid`) as backup `key_name`'s
 * manifest and load it through the catalog. */
static int store_and_load(struct repo *r, const char *key_name, const char *as_name, const char *sysid,
                          struct err *e)
{
    struct manifest *m = sample(), *back = NULL;
    char key[REPO_KEY_MAX], *json = NULL;
    size_t len;
    int rc;

    free(m->name);
    m->name = strdup(as_name);
    free(m->system_identifier);
    m->system_identifier = strdup(sysid);
    if (man_to_json(m, &json, &len, e) < 0 || repo_key_backup(key, sizeof key, key_name, CAT_MANIFEST) < 0 ||
        repo_put_buf(r, key, 1, json, len, e) < 0) {
        diag("could not store: %s", e->msg);
        rc = -2;
    } else {
        rc = cat_load_manifest(r, key_name, &back, e);
    }
    if (rc == 0 && (back == NULL || strcmp(back->name, as_name) != 0))
        rc = -3;
    man_free(back);
    man_free(m);
    free(json);
    return rc;
}

static void test_binding(void)
{
    static const unsigned char key[KEYS_LEN] = "walship manifest unit test key!";
    char root[] = "/tmp/walship-manifest-test-XXXXXX", url[PATH_MAX + 8], sys[24], cmd[PATH_MAX + 16];
    struct config *conf = config_new_default();
    struct keyring *kr = keys_new();
    struct region_conf rc;
    struct repo_ident id;
    struct repo *r = NULL;
    struct err e = ERR_INIT;

    log_init("manifest-test", LOG_ERROR);
    if (mkdtemp(root) == NULL || keys_add(kr, key, 1, "test", &e) < 0) {
        ok(0, "a file:// region for the binding tests");
        return;
    }
    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s", root);
    rc.name = "local";
    rc.url = url;
    repo_ident_init(&id, SYSID, 15, 16u << 20);
    ok(repo_open(&rc, conf, NULL, kr, 0, &r, &e) == 0 && repo_ident_ensure(r, &id, &e) == 0,
       "a file:// region of cluster %llu", (unsigned long long)SYSID);
    snprintf(sys, sizeof sys, "%llu", (unsigned long long)SYSID);
    ok(store_and_load(r, "20261203T081500Z", "20261203T081500Z", sys, &e) == 0,
       "a manifest stored under its own name, of the region's cluster, loads");
    err_clear(&e);
    ok(store_and_load(r, "20261203T090000Z", "20261203T081500Z", sys, &e) == -1 && e.code == ERR_FOREIGN,
       "a manifest copied under another backup's name is refused as foreign");
    like(e.msg, "names backup 20261203T081500Z", "saying which backup it names");
    err_clear(&e);
    ok(store_and_load(r, "20261203T091500Z", "20261203T091500Z", "7000000000000000009", &e) == -1 &&
           e.code == ERR_FOREIGN,
       "a manifest of another cluster is refused as foreign");
    like(e.msg, "7000000000000000009", "naming the other cluster");
    err_clear(&e);
    ok(store_and_load(r, "20261203T093000Z", "20261203T093000Z", "not-a-number", &e) == -1 &&
           e.code == ERR_FOREIGN,
       "a manifest whose cluster is not a number is refused");
    repo_free(r);
    keys_free(kr);
    config_free(conf);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
}

/* The header-only reader: the header fields of the full parse, the count
 * of entries, no list; whatever the layout of the text. */
static int headers_match(const char *json, size_t len, size_t want_listed, const char *what)
{
    struct manifest *h = NULL, *f = NULL;
    struct err e = ERR_INIT;
    char *jh = NULL, *jf = NULL;
    size_t lh = 0, lf = 0;
    int good;

    if (man_headers_from_json(json, len, what, &h, &e) < 0 || man_from_json(json, len, what, &f, &e) < 0) {
        diag("%s: %s", what, e.msg);
        man_free(h);
        return 0;
    }
    man_drop_files(f);
    good = h->files == NULL && h->nfiles == 0 && h->files_listed == want_listed && f->files_listed == want_listed &&
           man_to_json(h, &jh, &lh, &e) == 0 && man_to_json(f, &jf, &lf, &e) == 0 && lh == lf &&
           memcmp(jh, jf, lh) == 0;
    free(jh);
    free(jf);
    man_free(h);
    man_free(f);
    return good;
}

static void test_headers(void)
{
    struct manifest *m = sample();
    struct err e = ERR_INIT;
    json_error_t je;
    json_t *root;
    char *json = NULL, *p, *text;
    size_t len = 0;

    /* paths that hold what a scan of the text could trip on */
    man_add_file(m, "base/1/a]b}c,\"d\\", 2, 1, 0600, 1, SHA_B, &e);
    man_add_file(m, "base/1/[{\"files\": []}]", 2, 1, 0600, 1, SHA_B, &e);
    ok(man_to_json(m, &json, &len, &e) == 0, "a manifest with brackets and quotes in its paths serialises");
    ok(headers_match(json, len, 5, "compact"), "header-only: the same header fields and 5 entries listed");
    root = json_loadb(json, len, 0, &je);
    text = json_dumps(root, JSON_INDENT(3) | JSON_SORT_KEYS);
    ok(text != NULL && headers_match(text, strlen(text), 5, "indented"),
       "... from indented text with the keys in another order");
    free(text);
    /* "files" spelled with an escape: not found by the scan, parsed whole */
    p = strstr(json, "\"files\"");
    if (p != NULL) {
        static const char key[] = "\"fil\\u0065s\"";
        size_t kl = strlen(key), at = (size_t)(p - json);
        char *esc = malloc(len + kl);

        memcpy(esc, json, at);
        memcpy(esc + at, key, kl);
        memcpy(esc + at + kl, p + 7, len - at - 7);
        ok(headers_match(esc, len + kl - 7, 5, "escaped key"), "... with the key \"files\" spelled with an escape");
        free(esc);
    }
    json_object_set_new(root, "files", json_array());
    text = json_dumps(root, JSON_COMPACT);
    ok(text != NULL && headers_match(text, strlen(text), 0, "no files"), "... with an empty list");
    free(text);
    json_decref(root);
    {
        struct manifest *h = NULL;

        ok(man_headers_from_json(json, len / 2, "cut", &h, &e) < 0 && h == NULL,
           "a manifest cut short is refused by the header-only reader too");
        ok(man_headers_from_json(json, len - 1, "cut", &h, &e) < 0 && h == NULL, "... by one byte");
    }
    free(json);
    man_free(m);
}

int main(void)
{
    test_round_trip();
    test_binary_names();
    test_incremental();
    test_find_sort();
    test_refusals();
    test_binding();
    test_headers();
    free(valid_json);
    return done_testing();
}
