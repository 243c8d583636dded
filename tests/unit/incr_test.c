/*
 * incr_test — block-level incremental backups (issue 13): the block map
 * encoding (blockmap.h), the block hash list, incremental manifests, and
 * restoring a chain (restore/bkf_chain.c) from synthetic backups written
 * into a file:// region: files grown, shrunk, unchanged, new; a parent that
 * is itself incremental; a missing link, a parent manifest that is not the
 * one the child was taken against, a map that refers to blocks a link does
 * not hold, and stored blocks that do not assemble into the manifest's file;
 * the backup side of one file (map composed with the parent's, staging);
 * retention keeping the parents of every retained backup.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_fetch.h"
#include "bk_incr.h"
#include "blockmap.h"
#include "catalog.h"
#include "keys.h"
#include "log.h"
#include "obj.h"
#include "ret_fixture.h"
#include "retention.h"
#include "stor.h"
#include "tap.h"
#include "unit_fixture.h"
#include "util.h"
#include "wal.h"

#define BS 4096u
#define TEST_SYSID 7311234567890123456ULL

static char root[] = "/tmp/walship-incr-test-XXXXXX";
static struct config *conf;
static struct keyring *kr;
static const unsigned char test_key[KEYS_LEN] = "walship incremental test key!!!";

/* ---- block maps ---- */

static void test_maps(void)
{
    struct bm_map m = { NULL, 0, 0 }, p;
    struct bm_cursor c;
    struct err e = ERR_INIT;
    char *s = NULL;
    static const char *const bad[] = { "", "1*3", "0*2,1*3", "0*4,", ",0*4", "0*0,0*4", "01*4", "3*4", "0*4x",
                                       "0*18446744073709551617", "a*4", "0*2,,0*2" };
    size_t i;

    bm_map_push(&m, 1, 2, &e);
    bm_map_push(&m, 1, 1, &e);
    bm_map_push(&m, 0, 1, &e);
    bm_map_push(&m, 2, 0, &e);
    bm_map_push(&m, 2, 5, &e);
    ok(m.n == 3, "runs of the same depth merge, empty ones vanish");
    bm_map_format(&m, &s, &e);
    is_str(s, "1*3,0*1,2*5", "the map's text");
    ok(bm_map_parse(s, 9, 2, &p, &e) == 0 && p.n == 3 && p.runs[2].depth == 2 && p.runs[2].count == 5,
       "it parses back");
    bm_cursor_init(&c, &p);
    ok(bm_cursor_depth(&c, 0) == 1 && bm_cursor_depth(&c, 2) == 1 && bm_cursor_depth(&c, 3) == 0 &&
       bm_cursor_depth(&c, 4) == 2 && bm_cursor_depth(&c, 8) == 2 && bm_cursor_depth(&c, 9) == UINT32_MAX,
       "the cursor gives each block's depth");
    ok(bm_map_self_bytes(&p, 8 * BS + 100, BS) == BS, "own bytes: one full block");
    bm_map_free(&p);
    ok(bm_map_parse("0*2,1*1,0*1", 4, 1, &p, &e) == 0 && bm_map_self_bytes(&p, 3 * BS + 10, BS) == 2 * BS + 10,
       "own bytes count the partial last block");
    bm_map_free(&p);
    ok(bm_map_parse("", 0, 0, &p, &e) == 0 && p.n == 0, "an empty file has an empty map");
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&e);
        ok(bm_map_parse(bad[i], 4, 2, &p, &e) < 0 && e.code == ERR_CORRUPT, "refused: \"%s\"", bad[i]);
    }
    free(s);
    bm_map_free(&m);
}

static void test_hashes(void)
{
    struct bh_set s, d;
    struct err e = ERR_INIT;
    unsigned char *buf = NULL, *h1 = malloc(3 * BM_HASH_LEN), *h2 = malloc(2 * BM_HASH_LEN);
    size_t len = 0, i;
    int bad = 0;

    memset(h1, 0x11, 3 * BM_HASH_LEN);
    memset(h2, 0x22, 2 * BM_HASH_LEN);
    bh_set_init(&s, BS);
    bh_set_add(&s, "base/5/16384", 2 * BS + 1, h1, &e);
    bh_set_add(&s, "base/1/1259", 2 * BS, h2, &e);
    ok(bh_set_encode(&s, &buf, &len, &e) == 0, "block hashes encode");
    ok(bh_set_decode(buf, len, "test", &d, &e) == 0 && d.n == 2 && d.block_size == BS, "and decode");
    ok(bh_set_find(&d, "base/5/16384") != NULL && bh_set_find(&d, "base/5/16384")->size == 2 * BS + 1 &&
       bh_set_find(&d, "base/5/16384")->h[0] == 0x11 && bh_set_find(&d, "nope") == NULL, "files are found by path");
    bh_set_free(&d);
    for (i = 1; i < len; i += 7)
        bad += bh_set_decode(buf, i, "test", &d, &e) == 0;
    ok(bad == 0, "every truncation is refused");
    buf[6] ^= 0x40;
    ok(bh_set_decode(buf, len, "test", &d, &e) < 0, "a bad block size is refused");
    free(buf);
    bh_set_free(&s);
}

static void test_manifest(void)
{
    struct manifest *m = man_new(), *back = NULL;
    struct err e = ERR_INIT;
    char sha[65], *json = NULL, *j2;
    size_t len = 0;
    struct man_part mp = { 1, 100000, 1000, 1 };

    memset(sha, 'a', 64);
    sha[64] = '\0';
    m->format = MAN_FORMAT_INCR;
    m->name = strdup("20261203T000000Z");
    m->walship_version = strdup("t");
    m->system_identifier = strdup("1");
    m->compression = strdup("none");
    m->incremental = 1;
    m->parent = strdup("20261202T000000Z");
    memcpy(m->parent_sha256, sha, 65);
    m->depth = 2;
    m->block_size = BS;
    m->blockhash_size = 10;
    memcpy(m->blockhash_sha256, sha, 65);
    man_add_part(m, &mp, &e);
    man_add_file_map(m, "base/1/100", 1, 3 * BS + 5, 0600, 1, sha, "2*2,0*2", BS + 5, sha, &e);
    man_add_file_map(m, "base/1/200", 0, 2 * BS, 0600, 1, sha, "1*2", 0, sha, &e);
    man_add_file(m, "PG_VERSION", 1, 3, 0600, 1, sha, &e);
    ok(man_to_json(m, &json, &len, &e) == 0, "an incremental manifest serialises");
    ok(man_from_json(json, len, "t", &back, &e) == 0, "and parses: %s", e.msg);
    if (back != NULL) {
        const struct man_file *f = man_find_file(back, "base/1/100");

        ok(back->incremental && back->depth == 2 && strcmp(back->parent, "20261202T000000Z") == 0 &&
           back->block_size == BS && back->format == MAN_FORMAT_INCR, "type, parent, depth, block size");
        ok(f != NULL && f->map != NULL && strcmp(f->map, "2*2,0*2") == 0 && f->stored == BS + 5 &&
           f->size == 3 * BS + 5, "a mapped file: map, stored and final size");
        ok(man_find_file(back, "PG_VERSION")->map == NULL, "a whole file has no map");
        man_free(back);
    }
#define BAD(from, to, what) \
    do { \
        char *p = strstr(json, from); \
        j2 = NULL; \
        if (p != NULL) { \
            j2 = xasprintf("%.*s%s%s", (int)(p - json), json, to, p + strlen(from)); \
            back = NULL; \
            ok(man_from_json(j2, strlen(j2), "t", &back, &e) < 0, "refused: %s (%s)", what, e.msg); \
            man_free(back); \
        } else { \
            ok(0, "test setup: %s not found", from); \
        } \
        free(j2); \
    } while (0)
    BAD("\"stored\":4101", "\"stored\":4100", "stored bytes that are not the map's own blocks");
    BAD("\"2*2,0*2\"", "\"3*2,0*2\"", "a depth beyond the chain");
    BAD("\"2*2,0*2\"", "\"2*2,0*1\"", "a map that does not cover the file");
    BAD("\"format\":2", "\"format\":1", "an incremental with format 1");
    BAD("\"format\":2", "\"format\":3", "an unknown format");
    BAD("\"type\":\"incr\"", "\"type\":\"diff\"", "an unknown type");
    BAD("\"depth\":2", "\"depth\":0", "an incremental at depth 0");
    BAD("\"part\":0", "\"part\":1", "own bytes of nothing in a part");
    free(json);
    man_free(m);
}

/* ---- synthetic chains in a file:// region ---- */

struct tf {
    const char *path;
    const unsigned char *final;     /* the file as the backup read it */
    size_t size;
    const char *map;                /* NULL: whole */
};

static void sha_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[32];
    unsigned n = 0;

    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    hex_encode(d, 32, hex);
    hex[64] = '\0';
}

static struct repo *open_region(void)
{
    struct region_conf rc;
    struct repo *r = NULL;
    struct repo_ident id;
    struct err e = ERR_INIT;
    char url[PATH_MAX];

    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s/region", root);
    rc.name = "test";
    rc.url = url;
    repo_ident_init(&id, TEST_SYSID, 15, 16u << 20);
    if (repo_open(&rc, conf, NULL, kr, 0, &r, &e) < 0 || repo_ident_ensure(r, &id, &e) < 0)
        diag("repo: %s", e.msg);
    return r;
}

static la_ssize_t arch_write(struct archive *a, void *arg, const void *buf, size_t len)
{
    struct err e = ERR_INIT;

    (void)a;
    return sink_write(*(struct sink **)arg, buf, len, &e) < 0 ? -1 : (la_ssize_t)len;
}

static void tar_entry(struct archive *a, const char *path, unsigned type, const void *data, size_t len)
{
    struct archive_entry *ae = archive_entry_new();

    archive_entry_set_pathname(ae, path);
    archive_entry_set_filetype(ae, type);
    archive_entry_set_perm(ae, type == AE_IFDIR ? 0700 : 0600);
    archive_entry_set_mtime(ae, 1000, 0);
    archive_entry_set_size(ae, (la_int64_t)len);
    archive_write_header(a, ae);
    if (len > 0)
        archive_write_data(a, data, len);
    archive_entry_free(ae);
}

/* The own blocks of f (all of them when whole), and their SHA-256. */
static unsigned char *own_blocks(const struct tf *f, uint32_t depth_max, size_t *len)
{
    struct bm_map m;
    struct bm_cursor c;
    struct err e = ERR_INIT;
    unsigned char *out = malloc(f->size + 1);
    uint64_t b;

    *len = 0;
    if (f->map == NULL) {
        memcpy(out, f->final, f->size);
        *len = f->size;
        return out;
    }
    if (bm_map_parse(f->map, bm_nblocks(f->size, BS), depth_max, &m, &e) < 0)
        diag("test map %s: %s", f->map, e.msg);
    bm_cursor_init(&c, &m);
    for (b = 0; b < bm_nblocks(f->size, BS); b++)
        if (bm_cursor_depth(&c, b) == 0) {
            memcpy(out + *len, f->final + b * BS, bm_block_len(f->size, BS, b));
            *len += bm_block_len(f->size, BS, b);
        }
    bm_map_free(&m);
    return out;
}

static void put_small(struct repo *r, const char *name, const char *what, const void *buf, size_t len)
{
    struct err e = ERR_INIT;
    char key[256];

    snprintf(key, sizeof key, "backups/%s/%s", name, what);
    if (repo_put_buf(r, key, 3, buf, len, &e) < 0)
        diag("put %s: %s", key, e.msg);
}

/* One backup with one part; `parent` NULL for a full backup.  Returns the
 * manifest's SHA-256 in psha_out. */
static void make_backup(const char *name, const char *parent, const char *parent_sha, uint32_t depth,
                        const struct tf *files, size_t n, char psha_out[65], const char *tamper_sha)
{
    struct repo *r = open_region();
    struct manifest *m = tf_manifest_new(name);
    struct sink *up = NULL, *enc = NULL, *raw = NULL;
    struct archive *a = archive_write_new();
    struct obj_opts oo;
    struct err e = ERR_INIT;
    uint64_t stored = 0, rawn = 0;
    struct man_part mp;
    char key[256], label[256], *json = NULL;
    size_t i, jl = 0;

    if (parent != NULL)
        m->format = MAN_FORMAT_INCR;
    m->compression = strdup("zstd:3");
    m->key_id = strdup(keys_current(kr)->id_hex);
    m->block_size = BS;
    m->blockhash_size = 1;
    memset(m->blockhash_sha256, '0', 64);
    if (parent != NULL) {
        m->incremental = 1;
        m->parent = strdup(parent);
        snprintf(m->parent_sha256, sizeof m->parent_sha256, "%s", parent_sha);
        m->depth = depth;
    }
    snprintf(key, sizeof key, "backups/%s/part-0001", name);
    repo_obj_opts(r, key, 3, &oo);
    if (stor_put(r->st, key, &up, &e) < 0 || (up = count_sink_new(up, &stored)) == NULL ||
        obj_encoder_new(up, &oo, &enc, &e) < 0 || (raw = count_sink_new(enc, &rawn)) == NULL)
        diag("part: %s", e.msg);
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &raw, NULL, arch_write, NULL);
    tar_entry(a, "base", AE_IFDIR, NULL, 0);
    tar_entry(a, "base/1", AE_IFDIR, NULL, 0);
    for (i = 0; i < n; i++) {
        size_t ol;
        unsigned char *own = own_blocks(&files[i], depth, &ol);
        char fsha[65], osha[65];

        sha_hex(files[i].final, files[i].size, fsha);
        sha_hex(own, ol, osha);
        if (ol > 0 || files[i].map == NULL)
            tar_entry(a, files[i].path, AE_IFREG, own, ol);
        if (tamper_sha != NULL && strcmp(tamper_sha, files[i].path) == 0)
            fsha[5] = fsha[5] == '0' ? '1' : '0';
        if (files[i].map == NULL)
            man_add_file(m, files[i].path, 1, files[i].size, 0600, 1000, fsha, &e);
        else
            man_add_file_map(m, files[i].path, ol ? 1 : 0, files[i].size, 0600, 1000, fsha, files[i].map, ol, osha,
                             &e);
        m->original_size += files[i].size;
        free(own);
    }
    archive_write_close(a);
    archive_write_free(a);
    if (sink_close(raw, &e) < 0)
        diag("close part: %s", e.msg);
    sink_free(raw);
    memset(&mp, 0, sizeof mp);
    mp.number = 1;
    mp.raw_size = rawn;
    mp.stored_size = stored;
    man_add_part(m, &mp, &e);
    snprintf(label, sizeof label, "START WAL LOCATION: 1/28 (file 000000010000000100000000)\nCHECKPOINT LOCATION: "
             "1/60\nLABEL: walship %s\nSTART TIMELINE: 1\n", name);
    put_small(r, name, "backup_label", label, strlen(label));
    man_sort(m);
    if (man_to_json(m, &json, &jl, &e) < 0)
        diag("json: %s", e.msg);
    sha_hex(json, jl, psha_out);
    put_small(r, name, "manifest.json", json, jl);
    free(json);
    man_free(m);
    repo_free(r);
}

static struct bkf_stats fetched;   /* of the last fetch() */

static int fetch(const char *name, const char *dir, struct err *e)
{
    struct region_conf rc;
    struct repo *s = NULL;
    struct manifest *m = NULL;
    struct bkf_opts o;
    char url[PATH_MAX];
    int r = -1;

    memset(&rc, 0, sizeof rc);
    snprintf(url, sizeof url, "file://%s/region", root);
    rc.name = "test";
    rc.url = url;
    memset(&o, 0, sizeof o);
    o.parallel = 2;
    if (repo_open(&rc, conf, NULL, kr, REPO_OPEN_IDENTITY, &s, e) == 0 && cat_load_manifest(s, name, &m, e) == 0)
        r = bkf_fetch(s, &rc, conf, m, dir, &o, &fetched, e);
    man_free(m);
    repo_free(s);
    return r;
}

static int file_is(const char *dir, const char *path, const unsigned char *data, size_t len)
{
    char p[PATH_MAX];
    unsigned char *buf = malloc(len + 2);
    int fd, same;
    ssize_t n;

    snprintf(p, sizeof p, "%s/%s", dir, path);
    fd = open(p, O_RDONLY);
    if (fd < 0) {
        free(buf);
        return 0;
    }
    n = read(fd, buf, len + 1);
    close(fd);
    same = n == (ssize_t)len && memcmp(buf, data, len) == 0;
    free(buf);
    return same;
}

static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n + 1);
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 131 + seed * 7919 + (i >> 12) * 17) & 0xff);
    return p;
}

static void test_chain(void)
{
    /* full: A 3.5 blocks, B 2 blocks, C small */
    unsigned char *A0 = pattern(3 * BS + BS / 2, 1), *B0 = pattern(2 * BS, 2), *C0 = pattern(100, 3);
    /* incr 1: A block 1 changed, grown to 4.25 blocks; B unchanged; D new */
    unsigned char *A1 = pattern(4 * BS + BS / 4, 4), *D1 = pattern(3 * BS, 5), *C1 = pattern(120, 6);
    /* incr 2: A shrunk to 2.5 blocks, block 2 partial and new; B block 0 changed; D unchanged */
    unsigned char *A2 = pattern(2 * BS + BS / 2, 7), *B2 = pattern(2 * BS, 8);
    char sF[65], s1[65], s2[65], junk[65];
    struct err e = ERR_INIT;
    char *d;

    memcpy(A1, A0, 3 * BS);             /* blocks 0, 2 as in the full; block 3 now full length */
    memset(A1 + BS, 0x5a, BS);          /* block 1 changed */
    memcpy(A2, A1, 2 * BS);             /* block 0 from the full, block 1 from incr 1 */
    memcpy(B2 + BS, B0 + BS, BS);       /* B block 1 from the full */
    {
        struct tf f[] = { { "base/1/100", A0, 3 * BS + BS / 2, NULL }, { "base/1/200", B0, 2 * BS, NULL },
                          { "base/1/pg_filenode.map", C0, 100, NULL } };
        make_backup("20261201T000000Z", NULL, NULL, 0, f, 3, sF, NULL);
    }
    {
        struct tf f[] = { { "base/1/100", A1, 4 * BS + BS / 4, "1*1,0*1,1*1,0*2" },
                          { "base/1/200", B0, 2 * BS, "1*2" }, { "base/1/300", D1, 3 * BS, NULL },
                          { "base/1/pg_filenode.map", C1, 120, NULL } };
        make_backup("20261202T000000Z", "20261201T000000Z", sF, 1, f, 4, s1, NULL);
    }
    {
        struct tf f[] = { { "base/1/100", A2, 2 * BS + BS / 2, "2*1,1*1,0*1" }, { "base/1/200", B2, 2 * BS, "0*1,2*1" },
                          { "base/1/300", D1, 3 * BS, "1*3" }, { "base/1/pg_filenode.map", C1, 120, NULL } };
        make_backup("20261203T000000Z", "20261202T000000Z", s1, 2, f, 4, s2, NULL);
    }
    d = xasprintf("%s/out2", root);
    ok(fetch("20261203T000000Z", d, &e) == 0, "an incremental of an incremental restores: %s", e.msg);
    ok(file_is(d, "base/1/100", A2, 2 * BS + BS / 2), "a shrunk file from three links");
    ok(file_is(d, "base/1/200", B2, 2 * BS), "a file from the newest and the full");
    ok(file_is(d, "base/1/300", D1, 3 * BS), "a file whole in the middle link");
    ok(file_is(d, "base/1/pg_filenode.map", C1, 120), "a whole file");
    /* hashed as assembled: of base/1/100 (2*1,1*1,0*1) only what arrived
     * before the blocks ahead of it is read back (blocks 1 and 2, once the
     * full backup wrote block 0), of base/1/200 nothing; reading both back
     * whole would be 4.5 blocks */
    ok(fetched.reread <= 2 * BS + BS / 2, "assembled files are hashed as they are written, not read back whole "
       "(%llu bytes read back)", (unsigned long long)fetched.reread);
    free(d);
    d = xasprintf("%s/out1", root);
    ok(fetch("20261202T000000Z", d, &e) == 0, "the first incremental restores: %s", e.msg);
    ok(file_is(d, "base/1/100", A1, 4 * BS + BS / 4), "a grown file: new blocks and a full-length former tail");
    ok(file_is(d, "base/1/200", B0, 2 * BS), "an unchanged file, all from the full");
    free(d);

    /* a map that refers to a link holding none of the file */
    {
        struct tf f[] = { { "base/1/300", D1, 3 * BS, "1*3" } };
        make_backup("20261204T000000Z", "20261203T000000Z", s2, 3, f, 1, junk, NULL);
    }
    d = xasprintf("%s/out3", root);
    err_clear(&e);
    ok(fetch("20261204T000000Z", d, &e) < 0 && strstr(e.msg, "holds no block of it") != NULL,
       "a map pointing at a link without the file is refused: %s", e.msg);
    free(d);
    /* a map that gives a link blocks it does not hold */
    {
        struct tf f[] = { { "base/1/200", B0, 2 * BS, "1*2" } };
        make_backup("20261204T000001Z", "20261203T000000Z", s2, 3, f, 1, junk, NULL);
    }
    d = xasprintf("%s/out3b", root);
    err_clear(&e);
    ok(fetch("20261204T000001Z", d, &e) < 0 && strstr(e.msg, "the chain is inconsistent") != NULL,
       "a map giving a link blocks it does not hold is refused: %s", e.msg);
    free(d);
    /* a parent manifest that is not the one the child was taken against */
    memset(junk, 'b', 64);
    junk[64] = '\0';
    {
        struct tf f[] = { { "base/1/200", B0, 2 * BS, "2*2" } };
        make_backup("20261205T000000Z", "20261202T000000Z", junk, 2, f, 1, junk, NULL);
    }
    d = xasprintf("%s/out4", root);
    err_clear(&e);
    ok(fetch("20261205T000000Z", d, &e) < 0 && strstr(e.msg, "is not the one") != NULL,
       "a parent whose manifest differs from the recorded one is refused: %s", e.msg);
    free(d);
    /* blocks that do not assemble into the manifest's file */
    {
        struct tf f[] = { { "base/1/100", A2, 2 * BS + BS / 2, "2*1,1*1,0*1" } };
        make_backup("20261206T000000Z", "20261202T000000Z", s1, 2, f, 1, junk, "base/1/100");
    }
    d = xasprintf("%s/out5", root);
    err_clear(&e);
    ok(fetch("20261206T000000Z", d, &e) < 0 && strstr(e.msg, "assembled from the chain") != NULL,
       "an assembled file whose SHA-256 differs is an error: %s", e.msg);
    free(d);
    /* a missing link */
    {
        char *p = xasprintf("%s/region/backups/20261201T000000Z/manifest.json", root);
        unlink(p);
        free(p);
    }
    d = xasprintf("%s/out6", root);
    err_clear(&e);
    ok(fetch("20261203T000000Z", d, &e) < 0 && strstr(e.msg, "needs backup 20261201T000000Z") != NULL,
       "a missing full backup is refused, named: %s", e.msg);
    {
        struct stat st;
        ok(stat(d, &st) < 0, "before anything is created");
    }
    free(d);
    free(A0), free(B0), free(C0), free(A1), free(D1), free(C1), free(A2), free(B2);
}

/* ---- the backup side: one file against its parent ---- */

static void test_incr_read(void)
{
    /* the parent: 4 blocks + 100 bytes, its map "0*1,2*2,1*2" (depth 2) */
    size_t psize = 4 * BS + 100, size = 6 * BS + 7;
    unsigned char *pdata = pattern(psize, 11), *data = pattern(size, 12), *ph = malloc(5 * BM_HASH_LEN);
    unsigned char buf[BS], back[3 * BS + 200];
    struct bk_incr inc;
    struct bh_file phf;
    struct man_file pf;
    struct bk_incr_file out;
    struct err e = ERR_INIT;
    uint64_t done = 0, b;
    char path[PATH_MAX];
    int fd, tmp;

    memcpy(data, pdata, 4 * BS);            /* blocks 0..3 unchanged */
    memset(data + 2 * BS + 5, 0xee, 10);    /* ... but block 2 */
    for (b = 0; b < 5; b++)
        bm_hash_block(pdata + b * BS, bm_block_len(psize, BS, b), ph + b * BM_HASH_LEN);
    memset(&inc, 0, sizeof inc);
    inc.block_size = BS;
    inc.parent_depth = 2;
    snprintf(inc.parent, sizeof inc.parent, "P");
    phf.path = "base/1/100";
    phf.size = psize;
    phf.h = ph;
    memset(&pf, 0, sizeof pf);
    pf.path = "base/1/100";
    pf.size = psize;
    pf.map = "0*1,2*2,1*2";
    snprintf(path, sizeof path, "%s/incr-read", root);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (write(fd, data, size) != (ssize_t)size)
        diag("write");
    lseek(fd, 0, SEEK_SET);
    tmp = bk_incr_staging_open(root, &e);
    ok(bk_incr_read(&inc, fd, path, size, &phf, &pf, tmp, buf, sizeof buf, &done, &out, &e) == 0, "a file is read "
       "against its parent: %s", e.msg);
    /* block 0: parent's own -> 1; block 1: parent depth 2 -> 3; block 2 changed -> 0; block 3: parent depth 1 -> 2;
     * block 4: the parent's was partial, now full -> 0; block 5, 6: new -> 0 */
    is_str(out.map, "1*1,3*1,0*1,2*1,0*3", "the map composes the parent's depths");
    ok(out.stored == 3 * BS + 7 && done == size, "own bytes: blocks 2, 4, 5 and the partial 6");
    ok(pread(tmp, back, sizeof back, 0) == (ssize_t)(3 * BS + 7) && memcmp(back, data + 2 * BS, BS) == 0 &&
       memcmp(back + BS, data + 4 * BS, 2 * BS + 7) == 0, "the staged blocks, in order");
    {
        char hex[65];

        sha_hex(data, size, hex);
        ok(strcmp(hex, out.sha) == 0, "the whole-file SHA-256 is of the file as read");
        sha_hex(back, 3 * BS + 7, hex);
        ok(strcmp(hex, out.stored_sha) == 0, "the stored SHA-256 is of the staged blocks");
    }
    bk_incr_file_free(&out);
    close(fd);
    close(tmp);
    free(pdata);
    free(data);
    free(ph);
}

/* ---- retention keeps what a retained backup needs ---- */

static void chain_add(struct catalog *c, const char *name, double age_days, const char *parent, uint64_t segno)
{
    struct manifest *m = rf_add_full(c, name, (time_t)1800000000 - (time_t)(age_days * 86400), 1, segno);

    if (parent != NULL) {
        m->incremental = 1;
        m->parent = strdup(parent);
    }
}

static const char *plan_gone(const struct catalog *c, int full, uint64_t days, struct ret_plan *plan)
{
    static char buf[256];
    struct ret_policy p;
    struct err e = ERR_INIT;

    memset(&p, 0, sizeof p);
    p.retain_full = full;
    p.retain_days = days;
    p.now = (time_t)1800000000;
    memset(plan, 0, sizeof *plan);
    buf[0] = '\0';
    if (ret_plan_backups(c, &p, NULL, plan, &e) < 0) {
        snprintf(buf, sizeof buf, "error: %s", e.msg);
        return buf;
    }
    return rf_gone(plan);
}

static void test_retention(void)
{
    struct catalog c = { NULL, 0, 0 };
    struct ret_plan plan;
    char seg[25];

    chain_add(&c, "F1", 10, NULL, 10);
    chain_add(&c, "I1a", 9, "F1", 20);
    chain_add(&c, "I1b", 8, "I1a", 30);
    chain_add(&c, "F2", 5, NULL, 40);
    chain_add(&c, "I2a", 1, "F2", 50);
    is_str(plan_gone(&c, 1, 0, &plan), "F1,I1a,I1b", "retain_full = 1: the newest incremental keeps its full");
    ret_plan_free(&plan);
    is_str(plan_gone(&c, 2, 0, &plan), "", "retain_full = 2 keeps both chains");
    wal_segment_name(1, 10, 16u << 20, seg);
    ok(plan.have_cut && strcmp(plan.cut_wal, seg) == 0, "and the WAL from F1's start");
    ret_plan_free(&plan);
    is_str(plan_gone(&c, 0, 6, &plan), "I1a,I1b", "retain_days = 6: the old chain goes but its full (the anchor)");
    ok(plan.have_cut && strcmp(plan.cut_wal, seg) == 0, "and the WAL from the anchor F1's start");
    ret_plan_free(&plan);
    is_str(plan_gone(&c, 0, 9, &plan), "", "retain_days = 9 keeps I1b (8 days old), hence I1a and F1");
    ret_plan_free(&plan);
    /* retain_full counts full backups: a sibling incremental of the newest
     * full backup stays though it is not among the newest backups */
    chain_add(&c, "I2b", 0.5, "F2", 60);
    chain_add(&c, "I2c", 0.2, "I2b", 70);
    is_str(plan_gone(&c, 1, 0, &plan), "F1,I1a,I1b", "retain_full = 1 keeps the newest full backup's whole chain");
    ret_plan_free(&plan);
    cat_free(&c);
}

int main(void)
{
    struct err e = ERR_INIT;
    char *p;

    log_init("incr-test", LOG_ERROR);
    if (mkdtemp(root) == NULL)
        return 1;
    conf = config_new_default();
    kr = keys_new();
    keys_add(kr, test_key, 1, "test", &e);
    config_set(conf, "parallel", "2", "test", &e);
    p = xasprintf("%s/region", root);
    mkdir(p, 0700);
    free(p);

    test_maps();
    test_hashes();
    test_manifest();
    test_chain();
    test_retention();
    test_incr_read();

    keys_free(kr);
    config_free(conf);
    if (getenv("KEEP") == NULL) {
        p = xasprintf("rm -rf %s", root);
        if (system(p) != 0)
            diag("could not remove %s", root);
        free(p);
    }
    return done_testing();
}
