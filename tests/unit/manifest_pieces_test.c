/*
 * manifest_pieces_test — manifest format 3 (src/repo/manifest*.c): a full
 * backup's big file stored as pieces round-trips, and a manifest whose
 * pieces do not cover the file exactly once (gap, overlap, short, long),
 * put two pieces of a file in one part, or a piece in a part that does not
 * exist, whose whole-file sha256 is not the digest of its pieces', or
 * that carries pieces in format 1 or 2, is refused (ERR_CORRUPT).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "tap.h"

static const char SHA_A[65] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char SHA_B[65] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
#define MB ((uint64_t)1 << 20)

static char *valid_json;
static size_t valid_len;

static struct manifest *sample(void)
{
    struct manifest *m = man_new();
    struct man_part p1 = { 1, 4 * MB, 1 * MB, 2 }, p2 = { 2, 4 * MB, 1 * MB, 1 }, p3 = { 3, 4 * MB, MB, 1 };
    struct man_piece pc[3] = { { 1, 0, 3 * MB, "" }, { 2, 3 * MB, 3 * MB, "" }, { 3, 6 * MB, MB + 5, "" } };
    struct err e = ERR_INIT;

    memcpy(pc[0].sha256, SHA_A, 65);
    memcpy(pc[1].sha256, SHA_B, 65);
    memcpy(pc[2].sha256, SHA_A, 65);
    m->format = MAN_FORMAT_PIECES;
    m->name = strdup("20261203T081500Z");
    m->walship_version = strdup("0.3.0");
    m->timeline = m->stop_timeline = 1;
    snprintf(m->start_wal, sizeof m->start_wal, "%s", "000000010000000000000002");
    snprintf(m->stop_wal, sizeof m->stop_wal, "%s", "000000010000000000000002");
    m->system_identifier = strdup("7311234567890123456");
    m->wal_segment_size = 16777216;
    m->compression = strdup("zstd:3");
    m->block_size = 32768;
    memcpy(m->blockhash_sha256, SHA_B, 65);
    man_add_part(m, &p1, &e);
    man_add_part(m, &p2, &e);
    man_add_part(m, &p3, &e);
    man_add_file(m, "global/pg_control", 1, 8192, 0600, 1764749001, SHA_B, &e);
    ok(man_add_file_pieces(m, "base/5/16384", 7 * MB + 5, 0600, 1764749000, pc, 3, &e) == 0,
       "a file of three pieces is added");
    return m;
}

static void test_round_trip(void)
{
    struct manifest *m = sample(), *back = NULL;
    struct err e = ERR_INIT;
    const struct man_file *f;
    char *again = NULL, want[65];
    size_t len;

    ok(man_to_json(m, &valid_json, &valid_len, &e) == 0, "serialises");
    like(valid_json, "\"format\":3", "as format 3");
    like(valid_json, "\"pieces\":[{\"part\":1,\"offset\":0,\"size\":3145728,\"sha256\":\"aaaa", "with its pieces");
    ok(man_from_json(valid_json, valid_len, "sample", &back, &e) == 0, "and parses back");
    f = back != NULL ? man_find_file(back, "base/5/16384") : NULL;
    ok(f != NULL && f->npieces == 3 && f->part == 0 && f->stored == 0 && f->size == 7 * MB + 5 &&
           f->pieces[1].part == 2 && f->pieces[1].offset == 3 * MB && f->pieces[2].size == MB + 5 &&
           strcmp(f->pieces[1].sha256, SHA_B) == 0,
       "the pieces round-trip");
    ok(f != NULL && man_pieces_sha(f->pieces, 3, want) == 0 && strcmp(want, f->sha256) == 0,
       "the file's sha256 is the digest of its pieces'");
    ok(f != NULL && man_piece_in(f, 3) == &f->pieces[2] && man_piece_in(f, 4) == NULL, "man_piece_in");
    {
        /* found by the manifest fuzzer under UBSan: a bad first hex digit
         * was shifted (-1 << 4) before the pair was refused */
        struct man_piece bad[1];

        memset(bad, 0, sizeof bad);
        memset(bad[0].sha256, 'a', 64);
        bad[0].sha256[10] = 'z';
        ok(man_pieces_sha(bad, 1, want) < 0, "a piece whose sha256 is not hex: refused");
    }
    ok(back != NULL && man_to_json(back, &again, &len, &e) == 0 && len == valid_len &&
           memcmp(again, valid_json, len) == 0,
       "and serialising it again gives the same bytes");
    free(again);
    man_free(back);
    man_free(m);
}

/* The valid manifest with `edit` applied is refused, naming `needle`. */
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
        diag("accepted");
        return 0;
    }
    if (e.code != ERR_CORRUPT || strstr(e.msg, needle) == NULL) {
        diag("refused with code %d: %s", (int)e.code, e.msg);
        return 0;
    }
    return 1;
}

static json_t *big_file(json_t *root)
{
    return json_array_get(json_object_get(root, "files"), 1);
}

struct pset {
    size_t piece;
    const char *key;
    json_int_t v;
};

static void set_piece(json_t *root, const void *arg)
{
    const struct pset *s = arg;

    json_object_set_new(json_array_get(json_object_get(big_file(root), "pieces"), s->piece), s->key,
                        json_integer(s->v));
}

static void set_root_int(json_t *root, const void *arg)
{
    const struct pset *s = arg;

    json_object_set_new(root, s->key, json_integer(s->v));
}

static void set_file_int(json_t *root, const void *arg)
{
    const struct pset *s = arg;

    json_object_set_new(big_file(root), s->key, json_integer(s->v));
}

static void swap_sha(json_t *root, const void *arg)
{
    json_t *pv = json_object_get(big_file(root), "pieces");
    json_t *a = json_object_get(json_array_get(pv, 0), "sha256"), *b = json_object_get(json_array_get(pv, 1), "sha256");
    char *sa = strdup(json_string_value(a));

    (void)arg;
    json_string_set(a, json_string_value(b));
    json_string_set(b, sa);
    free(sa);
}

static void drop_piece(json_t *root, const void *arg)
{
    json_array_remove(json_object_get(big_file(root), "pieces"), *(const size_t *)arg);
}

static void make_incr(json_t *root, const void *arg)
{
    (void)arg;
    json_object_set_new(root, "format", json_integer(MAN_FORMAT_INCR));
    json_object_set_new(root, "type", json_string("incr"));
    json_object_set_new(root, "parent", json_string("20261203T071500Z"));
    json_object_set_new(root, "parent_manifest_sha256", json_string(SHA_A));
    json_object_set_new(root, "depth", json_integer(1));
}

static void test_refusals(void)
{
    static const size_t last = 2, first = 0;

    ok(refused(set_piece, &(struct pset){ 1, "offset", 3 * MB + 32768 }, "without gap or overlap"),
       "a gap between two pieces");
    ok(refused(set_piece, &(struct pset){ 1, "offset", 3 * MB - 32768 }, "without gap or overlap"),
       "two pieces that overlap");
    ok(refused(set_piece, &(struct pset){ 2, "size", MB + 4 }, "hold"), "pieces short of the file's size");
    ok(refused(set_piece, &(struct pset){ 2, "size", MB + 6 }, "exceed its size"), "pieces past the file's size");
    ok(refused(drop_piece, &last, "hold"), "a missing last piece");
    ok(refused(drop_piece, &first, "without gap or overlap"), "a missing first piece");
    ok(refused(set_piece, &(struct pset){ 1, "part", 1 }, "two pieces in part 1"), "two pieces in one part");
    ok(refused(set_piece, &(struct pset){ 1, "part", 4 }, "malformed"), "a piece in a part that does not exist");
    ok(refused(set_piece, &(struct pset){ 1, "size", 0 }, "malformed"), "an empty piece");
    ok(refused(swap_sha, NULL, "digest of its pieces"), "two pieces' hashes swapped");
    ok(refused(set_file_int, &(struct pset){ 0, "part", 1 }, "malformed pieces"), "a pieced file with a part");
    ok(refused(set_root_int, &(struct pset){ 0, "format", MAN_FORMAT }, "malformed pieces (format 1)"),
       "pieces in a format-1 manifest");
    ok(refused(make_incr, NULL, "malformed pieces (format 2)"), "pieces in an incremental (format 2)");
    ok(refused(set_root_int, &(struct pset){ 0, "format", MAN_FORMAT_PIECES + 1 }, "format 4 is not supported"),
       "format 4 is refused by number");
}

static void test_format(void)
{
    struct manifest *m = sample(), *back = NULL;
    struct err e = ERR_INIT;
    char *json = NULL;
    size_t len;

    /* no piece: a full backup stays format 1 (bk_bigs_finish sets 3 only
     * when there are pieces); a format-3 manifest without pieces reads */
    m->nfiles = 1;
    free(m->files[1].path);
    free(m->files[1].pieces);
    m->format = MAN_FORMAT;
    ok(man_to_json(m, &json, &len, &e) == 0 && strstr(json, "\"format\":1") != NULL &&
           strstr(json, "pieces") == NULL,
       "a manifest without pieces is written as format 1");
    ok(man_from_json(json, len, "plain", &back, &e) == 0 && back->format == MAN_FORMAT, "and read back");
    free(json);
    man_free(back);
    man_free(m);
}

int main(void)
{
    test_round_trip();
    test_refusals();
    test_format();
    free(valid_json);
    return done_testing();
}
