/*
 * obj_test — the object format: round trips over sizes, compression and
 * encryption; every tamper case; key rotation; the sha256 tee.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aead.h"
#include "keys.h"
#include "obj.h"
#include "sha256tee.h"
#include "stream.h"
#include "tap.h"

#define TKEY "wal/000000010000000000000007"
#define TSYSID 7311113411111111111ULL
/* the header of an object bound to TKEY */
#define OBJ_HEADER_LEN (OBJ_HEADER_FIXED_LEN + sizeof TKEY - 1 + 8)
#define CHUNK_LOG2 12
#define CHUNK ((size_t)1 << CHUNK_LOG2)
#define FRAME (AEAD_CHUNK_HDR_LEN + CHUNK + AEAD_TAG_LEN)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random bytes, or text-like bytes that compress. */
static unsigned char *gen(size_t n, int compressible)
{
    unsigned char *p = malloc(n ? n : 1);

    for (size_t i = 0; i < n; i++)
        p[i] = compressible ? (unsigned char)("walship ships wal\n"[(i / 3 + (rnd() % 4 == 0)) % 18])
                            : (unsigned char)rnd();
    return p;
}

/* Push `in` into `s` in pieces of `piece` bytes (0: at once; SIZE_MAX: random
 * sizes), then close. */
static int push(struct sink *s, const unsigned char *in, size_t n, size_t piece, struct err *e)
{
    size_t off = 0;

    while (off < n) {
        size_t k = piece == 0 ? n - off : piece == SIZE_MAX ? 1 + rnd() % 9000 : piece;
        if (k > n - off)
            k = n - off;
        if (sink_write(s, in + off, k, e) < 0)
            return -1;
        off += k;
    }
    return sink_close(s, e);
}

static int encode(const unsigned char *in, size_t n, const struct obj_opts *o_, size_t piece,
                  unsigned char **out, size_t *outlen, struct err *e)
{
    struct sink *mem = mem_sink_new(0), *enc;
    struct obj_opts o = *o_;
    int rc = -1;

    if (o.bind.key == NULL) {
        o.bind.key = TKEY;
        o.bind.sysid = TSYSID;
    }
    if (obj_encoder_new(mem, &o, &enc, e) < 0) {
        sink_free(mem);
        return -1;
    }
    if (push(enc, in, n, piece, e) == 0) {
        *out = mem_sink_take(mem, outlen);
        rc = 0;
    }
    sink_free(enc);
    return rc;
}

/* Decode as `key` of cluster `sysid`; `*got`/`*gotlen` receive whatever
 * plaintext the decoder released, even when it failed. */
static int decode_as(const unsigned char *in, size_t n, const struct keyring *kr, unsigned flags, const char *key,
                     uint64_t sysid, size_t piece, unsigned char **got, size_t *gotlen, struct err *e)
{
    struct sink *mem = mem_sink_new(0), *dec;
    struct obj_bind bind = { key, sysid, 0, "" };
    int rc;

    if (obj_decoder_new(mem, kr, flags, &bind, &dec, e) < 0) {
        sink_free(mem);
        return -1;
    }
    rc = push(dec, in, n, piece, e);
    *got = mem_sink_take(mem, gotlen);
    sink_free(dec);
    return rc;
}

static int decode(const unsigned char *in, size_t n, const struct keyring *kr, unsigned flags, size_t piece,
                  unsigned char **got, size_t *gotlen, struct err *e)
{
    return decode_as(in, n, kr, flags, TKEY, TSYSID, piece, got, gotlen, e);
}

static struct keyring *kr_A, *kr_B, *kr_BA;
static unsigned char key_A[32], key_B[32];

static void make_keys(void)
{
    struct err e = ERR_INIT;

    for (int i = 0; i < 32; i++) {
        key_A[i] = (unsigned char)(i + 1);
        key_B[i] = (unsigned char)(0xa0 ^ i);
    }
    kr_A = keys_new();
    kr_B = keys_new();
    kr_BA = keys_new();
    keys_add(kr_A, key_A, 1, "A", &e);
    keys_add(kr_B, key_B, 1, "B", &e);
    keys_add(kr_BA, key_B, 1, "B", &e);
    keys_add(kr_BA, key_A, 0, "A", &e);
}

static void round_trips(void)
{
    static const size_t sizes[] = { 0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 37 * CHUNK + 5 };
    static const size_t pieces[] = { 0, 1, 1000, SIZE_MAX };
    static const int levels[] = { 0, 1, 3 };

    for (int enc = 0; enc < 2; enc++)
        for (size_t li = 0; li < sizeof levels / sizeof *levels; li++)
            for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
                for (size_t pi = 0; pi < sizeof pieces / sizeof *pieces; pi++) {
                    size_t n = sizes[si];
                    int compressible = (si + pi) % 2;
                    unsigned char *in, *obj = NULL, *back = NULL;
                    size_t objlen = 0, backlen = 0;
                    struct obj_opts o = { levels[li], 0, n, CHUNK_LOG2, enc ? kr_A : NULL, { NULL, 0, 0, "" }, 0 };
                    struct err e = ERR_INIT;
                    int good;

                    if (pieces[pi] == 1 && n > 3 * CHUNK)
                        continue;
                    in = gen(n, compressible);
                    good = encode(in, n, &o, pieces[pi], &obj, &objlen, &e) == 0
                        && decode(obj, objlen, enc ? kr_A : NULL, 0, pieces[(pi + 1) % 4],
                                  &back, &backlen, &e) == 0
                        && backlen == n && (n == 0 || memcmp(back, in, n) == 0);
                    if (!ok(good, "round trip: %zu bytes, %s, zstd:%d, %s, pieces %zd",
                            n, compressible ? "text" : "random", levels[li],
                            enc ? "encrypted" : "plain", (ssize_t)pieces[pi]))
                        diag("%s (%zu of %zu bytes back)", e.msg, backlen, n);
                    if (levels[li] == 0 && enc == 1) {
                        /* Framing without compression: header + whole chunks. */
                        size_t nch = n == 0 ? 1 : (n + CHUNK - 1) / CHUNK;
                        is_int(objlen, OBJ_HEADER_LEN + n + nch * (AEAD_CHUNK_HDR_LEN + AEAD_TAG_LEN),
                               "  encoded size of %zu bytes is header + %zu chunk(s)", n, nch);
                    }
                    free(in);
                    free(obj);
                    free(back);
                }
}

static void big_round_trips(void)
{
    size_t n = (size_t)20 << 20;
    unsigned char *in = gen(n, 1), *obj = NULL, *back = NULL;
    size_t objlen = 0, backlen = 0;
    static const int workers[] = { 0, 2 };

    for (int w = 0; w < 2; w++) {
        struct obj_opts o = { 3, workers[w], 0, 0, kr_A, { NULL, 0, 0, "" }, 0 };
        struct err e = ERR_INIT;
        int good = encode(in, n, &o, 1 << 20, &obj, &objlen, &e) == 0
            && decode(obj, objlen, kr_A, 0, 65536, &back, &backlen, &e) == 0
            && backlen == n && memcmp(back, in, n) == 0;

        if (!ok(good, "20 MiB round trip, zstd:3, %d workers, default chunks (%zu bytes encoded)",
                workers[w], objlen))
            diag("%s", e.msg);
        free(obj);
        free(back);
        obj = back = NULL;
    }
    free(in);
}

/* A decode that must fail: the code, a message fragment, and the plaintext
 * released so far must be whole verified chunks of the original. */
static void expect_fail(const unsigned char *obj, size_t len, const struct keyring *kr, unsigned flags,
                        const unsigned char *orig, size_t origlen, enum err_code code,
                        const char *fragment, int verbose, const char *name)
{
    unsigned char *got = NULL;
    size_t gotlen = 0;
    struct err e = ERR_INIT;
    int rc = decode(obj, len, kr, flags, SIZE_MAX, &got, &gotlen, &e);
    int good = rc < 0 && e.code == code && strstr(e.msg, fragment) != NULL
        && gotlen <= origlen && (gotlen % CHUNK == 0 || gotlen == origlen) && (gotlen == 0 || memcmp(got, orig, gotlen) == 0);

    if (verbose || !good) {
        if (!ok(good, "%s: %s", name, e.msg))
            diag("rc %d, code %s, want \"%s\"; released %zu bytes", rc, err_code_name(e.code),
                 fragment, gotlen);
    }
    free(got);
}

static int fails_quietly(const unsigned char *obj, size_t len, const struct keyring *kr,
                         const unsigned char *orig, size_t origlen, size_t *released, struct err *e)
{
    unsigned char *got = NULL;
    size_t gotlen = 0;
    int rc = decode(obj, len, kr, 0, SIZE_MAX, &got, &gotlen, e);
    int good = rc < 0 && gotlen % CHUNK == 0 && gotlen <= origlen
        && (gotlen == 0 || memcmp(got, orig, gotlen) == 0);

    *released = gotlen;
    free(got);
    return good;
}

static void tamper(int enc)
{
    const struct keyring *kr = enc ? kr_A : NULL;
    size_t n = 3 * CHUNK + 1000;
    unsigned char *in = gen(n, 0), *obj = NULL, *bad;
    size_t len = 0, bad_truncs = 0, bad_flips = 0;
    struct obj_opts o = { 0, 0, n, CHUNK_LOG2, kr, { NULL, 0, 0, "" }, 0 };
    struct err e = ERR_INIT;
    const char *mode = enc ? "encrypted" : "plain";

    if (!ok(encode(in, n, &o, 0, &obj, &len, &e) == 0, "%s: encode 4 chunks", mode)) {
        diag("%s", e.msg);
        return;
    }
    bad = malloc(len + FRAME);

    /* Truncation, at every length. */
    for (size_t cut = 0; cut < len; cut++) {
        size_t rel;
        if (!fails_quietly(obj, cut, kr, in, n, &rel, &e) || e.code != ERR_CORRUPT
            || strstr(e.msg, "truncated") == NULL) {
            if (bad_truncs++ < 3)
                diag("cut at %zu: %s (released %zu)", cut, e.msg, rel);
        }
    }
    is_int(bad_truncs, 0, "%s: every truncation (%zu lengths) fails as truncated, releasing only "
           "verified chunks", mode, len);
    expect_fail(obj, 0, kr, 0, in, n, ERR_CORRUPT, "truncated (header: 0 of 74", 1, "empty object");
    expect_fail(obj, 40, kr, 0, in, n, ERR_CORRUPT, "truncated (header: 40 of 74", 1, "cut in header");
    expect_fail(obj, OBJ_HEADER_LEN, kr, 0, in, n, ERR_CORRUPT, "no final chunk after 0 chunks", 1,
                "header only");
    expect_fail(obj, OBJ_HEADER_LEN + 2 * FRAME, kr, 0, in, n, ERR_CORRUPT,
                "no final chunk after 2 chunks", 1, "cut at a chunk boundary");
    expect_fail(obj, OBJ_HEADER_LEN + 2 * FRAME + 100, kr, 0, in, n, ERR_CORRUPT,
                "truncated in chunk 2", 1, "cut inside a chunk");

    /* A flipped bit, at every byte (every bit of the header). */
    for (size_t pos = 0; pos < len; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            size_t rel;
            if (pos >= OBJ_HEADER_LEN && bit != (int)(pos % 8))
                continue;
            memcpy(bad, obj, len);
            bad[pos] ^= (unsigned char)(1u << bit);
            if (!fails_quietly(bad, len, kr, in, n, &rel, &e)
                || (pos >= OBJ_HEADER_LEN && rel > (pos - OBJ_HEADER_LEN) / FRAME * CHUNK)) {
                if (bad_flips++ < 3)
                    diag("flip at %zu bit %d: %s (released %zu)", pos, bit, e.msg, rel);
            }
        }
    }
    is_int(bad_flips, 0, "%s: every flipped bit is detected, and no byte of a damaged chunk is "
           "released", mode);
    memcpy(bad, obj, len);
    bad[0] ^= 1;
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "not a walship object (bad magic)", 1, "magic");
    memcpy(bad, obj, len);
    bad[4] = 9;
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "unsupported format version 9", 1, "version");
    memcpy(bad, obj, len);
    bad[10] ^= 0x10;
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "header is corrupt", 1, "flip in the key id");
    memcpy(bad, obj, len);
    bad[OBJ_HEADER_LEN + 2 * FRAME + 500] ^= 4;
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "chunk 2 failed authentication", 1,
                "flip in chunk 2's payload");
    memcpy(bad, obj, len);
    bad[OBJ_HEADER_LEN + 3 * FRAME + 12] ^= 1;    /* final flag of the last chunk */
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "chunk 3", 1, "final flag cleared");
    memcpy(bad, obj, len);
    bad[OBJ_HEADER_LEN + FRAME + 7] ^= 1;         /* chunk 1's stored index */
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "chunk 1 failed authentication", 1,
                "flip in chunk 1's index");

    /* Reordering: swap chunks 1 and 2; duplicate chunk 1; drop chunk 1. */
    memcpy(bad, obj, len);
    memcpy(bad + OBJ_HEADER_LEN + FRAME, obj + OBJ_HEADER_LEN + 2 * FRAME, FRAME);
    memcpy(bad + OBJ_HEADER_LEN + 2 * FRAME, obj + OBJ_HEADER_LEN + FRAME, FRAME);
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT,
                "out of order: found chunk 2 where chunk 1 belongs", 1, "chunks 1 and 2 swapped");
    memcpy(bad, obj, len);
    memcpy(bad + OBJ_HEADER_LEN + 2 * FRAME, obj + OBJ_HEADER_LEN + FRAME, FRAME);
    expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT,
                "out of order: found chunk 1 where chunk 2 belongs", 1, "chunk 1 duplicated");
    memcpy(bad, obj, OBJ_HEADER_LEN + FRAME);
    memcpy(bad + OBJ_HEADER_LEN + FRAME, obj + OBJ_HEADER_LEN + 2 * FRAME, len - OBJ_HEADER_LEN - 2 * FRAME);
    expect_fail(bad, len - FRAME, kr, 0, in, n, ERR_CORRUPT, "out of order", 1, "chunk 1 missing");

    /* Trailing data, and a chunk from another object. */
    memcpy(bad, obj, len);
    bad[len] = 0;
    expect_fail(bad, len + 1, kr, 0, in, n, ERR_CORRUPT, "unexpected data after the final chunk", 1,
                "one byte appended");
    {
        unsigned char *obj2 = NULL;
        size_t len2 = 0;
        if (encode(in, n, &o, 0, &obj2, &len2, &e) == 0 && len2 == len) {
            memcpy(bad, obj, len);
            memcpy(bad + OBJ_HEADER_LEN + FRAME, obj2 + OBJ_HEADER_LEN + FRAME, FRAME);
            if (enc) {
                ok(memcmp(obj2 + OBJ_HEADER_LEN, obj + OBJ_HEADER_LEN, FRAME) != 0,
                   "%s: the same input encodes differently each time (a new data key)", mode);
                expect_fail(bad, len, kr, 0, in, n, ERR_CORRUPT, "chunk 1 failed authentication", 1,
                            "chunk spliced from another object");
            }
        }
        free(obj2);
    }
    free(bad);
    free(obj);
    free(in);
}

static void keys_and_policy(void)
{
    size_t n = 5000;
    unsigned char *in = gen(n, 1), *objA = NULL, *objB = NULL, *objP = NULL, *back = NULL;
    size_t lenA = 0, lenB = 0, lenP = 0, backlen = 0;
    struct obj_opts oA = { 3, 0, n, 0, kr_A, { NULL, 0, 0, "" }, 0 }, oBA = { 3, 0, n, 0, kr_BA, { NULL, 0, 0, "" }, 0 },
                    oP = { 3, 0, n, 0, NULL, { NULL, 0, 0, "" }, 0 };
    struct obj_header_info info;
    struct err e = ERR_INIT;
    const struct keys_key *ka = keys_current(kr_A), *kb = keys_current(kr_B);

    encode(in, n, &oA, 0, &objA, &lenA, &e);
    encode(in, n, &oBA, 0, &objB, &lenB, &e);
    encode(in, n, &oP, 0, &objP, &lenP, &e);

    ok(obj_peek_header(objA, lenA, &info, &e) == 0 && info.cipher == OBJ_CIPHER_AES256GCM
       && info.compression == OBJ_COMP_ZSTD && info.version == OBJ_VERSION
       && info.chunk_size == (size_t)1 << OBJ_CHUNK_LOG2_DEFAULT, "peek: header fields");
    is_str(info.key_id_hex, ka->id_hex, "peek: key id of an object encrypted with key A");
    ok(obj_peek_header(objB, lenB, &info, &e) == 0 && strcmp(info.key_id_hex, kb->id_hex) == 0,
       "after rotation, new objects carry key B's id");
    ok(obj_peek_header(objP, lenP, &info, &e) == 0 && info.cipher == OBJ_CIPHER_NONE
       && info.key_id_hex[0] == '\0', "peek: an unencrypted object has no key id");
    ok(obj_peek_header("hello", 5, &info, &e) < 0 && e.code == ERR_CORRUPT
       && strstr(e.msg, "bad magic") != NULL, "peek: not ours");

    ok(decode(objA, lenA, kr_BA, 0, 0, &back, &backlen, &e) == 0 && backlen == n
       && memcmp(back, in, n) == 0, "an object under the old key decodes after rotation (old_key_files)");
    free(back);
    back = NULL;

    expect_fail(objA, lenA, kr_B, 0, in, n, ERR_KEY, ka->id_hex, 1, "key A's object, only key B");
    expect_fail(objA, lenA, kr_B, 0, in, n, ERR_KEY, "which is not among the configured keys", 0,
                "wrong key message");
    expect_fail(objB, lenB, kr_A, 0, in, n, ERR_KEY, kb->id_hex, 1, "key B's object, only key A");
    expect_fail(objA, lenA, NULL, 0, in, n, ERR_KEY, "no key_file is configured", 1,
                "encrypted object, no keys");
    expect_fail(objP, lenP, kr_A, 0, in, n, ERR_KEY, "refusing an unauthenticated object", 1,
                "unencrypted object while keys are configured");
    ok(decode(objP, lenP, kr_A, OBJ_DEC_ALLOW_UNENCRYPTED, 0, &back, &backlen, &e) == 0 && backlen == n,
       "... accepted with OBJ_DEC_ALLOW_UNENCRYPTED");
    free(back);
    back = NULL;
    ok(decode(objP, lenP, NULL, 0, 0, &back, &backlen, &e) == 0 && backlen == n,
       "an unencrypted object decodes without keys");
    free(back);

    /* A rotation half done: the old key moved to old_key_files, no key_file
     * yet.  An unencrypted object would be refused by this very keyring:
     * nothing is written at all. */
    {
        struct keyring *old_only = keys_new();
        struct obj_opts oO = { 3, 0, n, 0, old_only, { NULL, 0, 0, "" }, 0 };
        unsigned char *objO = NULL;
        size_t lenO = 0;

        keys_add(old_only, key_A, 0, "A", &e);
        ok(encode(in, n, &oO, 0, &objO, &lenO, &e) < 0 && e.code == ERR_CONFIG
           && strstr(e.msg, "no key_file") != NULL,
           "old_key_files without key_file: the encoder refuses to write an object its readers refuse (%s)",
           e.msg);
        free(objO);
        keys_free(old_only);
        err_clear(&e);
    }

    /* A forged header: key id of A, but B's wrapped key (checksum recomputed). */
    {
        unsigned char *forged = malloc(lenB), md[32];
        memcpy(forged, objB, lenB);
        memcpy(forged + 8, ka->id, KEYS_ID_LEN);
        EVP_Digest(forged, OBJ_HEADER_LEN - 8, md, NULL, EVP_sha256(), NULL);
        memcpy(forged + OBJ_HEADER_LEN - 8, md, 8);
        expect_fail(forged, lenB, kr_BA, 0, in, n, ERR_CORRUPT, "could not unwrap the data key", 1,
                    "key id swapped in a forged header");
        free(forged);
    }
    free(objA);
    free(objB);
    free(objP);
    free(in);
}

static void compressed_tamper(void)
{
    /* With compression the plaintext released before a failure must still be
     * a prefix of the original. */
    size_t n = 300000;
    unsigned char *in = gen(n, 0), *obj = NULL, *got = NULL;
    size_t len = 0, gotlen = 0;
    struct obj_opts o = { 1, 0, n, CHUNK_LOG2, kr_A, { NULL, 0, 0, "" }, 0 };
    struct err e = ERR_INIT;
    int rc;

    encode(in, n, &o, 0, &obj, &len, &e);
    obj[len / 4 * 3] ^= 0x40;
    rc = decode(obj, len, kr_A, 0, 4096, &got, &gotlen, &e);
    ok(rc < 0 && e.code == ERR_CORRUPT && gotlen > 0 && gotlen < n && memcmp(got, in, gotlen) == 0,
       "zstd:1: a flip mid-object fails, released %zu bytes, all of them good (%s)", gotlen, e.msg);
    free(got);
    free(obj);
    free(in);
}

/* Where an object belongs is in its authenticated header. */
static void binding(int enc)
{
    const struct keyring *kr = enc ? kr_A : NULL;
    const char *mode = enc ? "encrypted" : "plain";
    size_t n = 2 * CHUNK + 10, len = 0, gotlen = 0;
    unsigned char *in = gen(n, 1), *obj = NULL, *got = NULL, *v1 = NULL;
    struct obj_opts o = { 3, 0, n, CHUNK_LOG2, kr, { NULL, 0, 0, "" }, 0 };
    struct obj_header_info info;
    struct err e = ERR_INIT;
    size_t v1len = 0;

    if (!ok(encode(in, n, &o, 0, &obj, &len, &e) == 0, "%s: encode bound to %s", mode, TKEY))
        diag("%s", e.msg);
    ok(obj_peek_header(obj, len, &info, &e) == 0 && info.version == OBJ_VERSION && info.sysid == TSYSID &&
           strcmp(info.key, TKEY) == 0 && info.header_len == OBJ_HEADER_LEN,
       "%s: the header carries the key and the system identifier", mode);
    ok(decode(obj, len, kr, 0, 0, &got, &gotlen, &e) == 0 && gotlen == n && memcmp(got, in, n) == 0,
       "%s: decodes where it was written", mode);
    free(got);
    got = NULL;
    ok(decode_as(obj, len, kr, 0, "wal/000000010000000000000008", TSYSID, 0, &got, &gotlen, &e) < 0 &&
           e.code == ERR_FOREIGN && strstr(e.msg, "was written as \"" TKEY "\"") != NULL && gotlen == 0,
       "%s: under another name: refused, naming both (%s)", mode, e.msg);
    free(got);
    got = NULL;
    ok(decode_as(obj, len, kr, 0, TKEY, TSYSID + 1, 0, &got, &gotlen, &e) < 0 && e.code == ERR_FOREIGN &&
           strstr(e.msg, "7311113411111111111") != NULL && strstr(e.msg, "7311113411111111112") != NULL &&
           gotlen == 0,
       "%s: for another cluster: refused, naming both (%s)", mode, e.msg);
    free(got);
    got = NULL;
    {
        struct sink *mem = mem_sink_new(0), *dec;
        struct obj_bind any = { TKEY, OBJ_SYSID_ANY, 0, "" };
        int rc = obj_decoder_new(mem, kr, 0, &any, &dec, &e) == 0 ? push(dec, obj, len, 0, &e) : -1;

        ok(rc == 0 && any.found_sysid == TSYSID, "%s: OBJ_SYSID_ANY decodes and reports the cluster", mode);
        sink_free(dec);
    }
    /* a forged header: the name rewritten and the header check recomputed */
    {
        unsigned char *bad = malloc(len), md[32];
        size_t at = OBJ_HEADER_LEN - 8;

        memcpy(bad, obj, len);
        bad[at - 1] = '9';      /* ...0007 -> ...0009 */
        EVP_Digest(bad, at, md, NULL, EVP_sha256(), NULL);
        memcpy(bad + at, md, 8);
        ok(decode_as(bad, len, kr, 0, "wal/000000010000000000000009", TSYSID, 0, &got, &gotlen, &e) < 0 &&
               e.code == ERR_CORRUPT && strstr(e.msg, "chunk 0 failed authentication") != NULL && gotlen == 0,
           "%s: a renamed object with a rewritten header fails authentication (%s)", mode, e.msg);
        free(got);
        got = NULL;
        free(bad);
    }
    /* version 1 (walship 0.1.0): refused unless upgrading */
    o.version = OBJ_VERSION_LEGACY;
    ok(encode(in, n, &o, 0, &v1, &v1len, &e) == 0 && v1len == len - (OBJ_HEADER_LEN - OBJ_HEADER_V1_LEN),
       "%s: a version 1 object can still be written (tests of upgrade)", mode);
    ok(decode(v1, v1len, kr, 0, 0, &got, &gotlen, &e) < 0 && e.code == ERR_FOREIGN &&
           strstr(e.msg, "walship upgrade") != NULL,
       "%s: a version 1 object is refused: %s", mode, e.msg);
    free(got);
    got = NULL;
    ok(decode(v1, v1len, kr, OBJ_DEC_ALLOW_LEGACY, 0, &got, &gotlen, &e) == 0 && gotlen == n &&
           memcmp(got, in, n) == 0,
       "%s: ...and decodes for upgrade", mode);
    free(got);
    got = NULL;
    o.version = 0;
    o.bind.key = "";
    {
        struct sink *mem = mem_sink_new(0), *s2 = NULL;

        ok(obj_encoder_new(mem, &o, &s2, &e) < 0 && e.code == ERR_INTERNAL,
           "%s: an encoder needs a key to bind to", mode);
        sink_free(mem);
    }
    free(v1);
    free(obj);
    free(in);
}

static void tee(void)
{
    size_t n = 1000003;
    unsigned char *in = gen(n, 1), want[32], digest[32] = { 0 };
    struct sink *null = null_sink_new(), *t;
    struct err e = ERR_INIT;

    EVP_Digest(in, n, want, NULL, EVP_sha256(), NULL);
    ok(sha256_tee_new(null, digest, &t, &e) == 0 && push(t, in, n, 7777, &e) == 0, "sha256 tee");
    is_mem(digest, want, 32, "sha256 tee: digest of what passed");
    is_int(null_sink_count(null), n, "sha256 tee: every byte passed on");
    sink_free(t);
    free(in);
}

int main(void)
{
    make_keys();
    round_trips();
    big_round_trips();
    tamper(1);
    tamper(0);
    keys_and_policy();
    compressed_tamper();
    binding(1);
    binding(0);
    tee();
    keys_free(kr_A);
    keys_free(kr_B);
    keys_free(kr_BA);
    return done_testing();
}
